"""TensorRT-LLM's in-flight batching for `trtllm-bench throughput`, simulated iteration by iteration but
skipping ahead in closed form whenever nothing changes but the KV lengths.

All requests are issued at t=0 (warmup is not simulated: trtllm-bench excludes it). Each iteration:
1. GUARANTEED_NO_EVICT capacity scheduler: admit waiting requests in order while the blocks for their
   whole sequence are free and fewer than max_batch_size (and `concurrency`) are active; the first
   that does not fit stops admission.
2. Micro-batch scheduler: every generating request costs one token; context requests fill what is left
   of max_num_tokens in order, whole prompts (chunked context off: the first that does not fit stops)
   or chunks in multiples of tokens_per_block (chunked context on).
3. One forward pass, timed by a StepModel. A generation-only pass runs the smallest captured CUDA graph that
   holds its batch, padded with dummy requests (trtllm-bench turns padding on), which the GEMMs, experts and
   all-reduces process as tokens; a pass with context, or larger than every graph, runs eager at its own size.
   Under attention DP every rank pads to the largest rank's batch: the ranks are simulated alike.
Requests with identical lengths that start together move as one cohort, so a 30,000-request point is
a few thousand events. Between events a run of n identical iterations costs n x the step time at the
run's mean KV length (exact while one roofline regime holds, as the KV term is linear).
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from dataclasses import dataclass, field

from trtbench.sim.steptime import Batch, StepModel


@dataclass(frozen=True)
class SchedulerLimits:
    kv_blocks: int
    tokens_per_block: int
    max_batch_size: int
    max_num_tokens: int
    chunked_context: bool
    concurrency: int | None = None
    seq_blocks: int = 0  # blocks one sequence holds (sliding-window layers keep less); 0: all of isl + osl
    ranks: int = 1  # attention-DP ranks, each batching its own requests against limits of its own
    graph_sizes: tuple[int, ...] = ()  # CUDA-graph batch sizes a generation-only step is padded up to; () none


QUANTILES = (50, 90, 95, 99)


@dataclass(frozen=True)
class SimResult:
    wall_s: float
    avg_latency_s: float
    avg_ttft_s: float
    avg_tpot_s: float
    avg_concurrency: float  # as trtllm-bench defines it: sum of latencies / wall time
    iterations: int
    # Per-request distributions, as trtllm-bench reports them: `ttft_p95_ms`, `tpot_p50_ms`, `latency_p99_ms`...
    percentiles: dict[str, float] = field(default_factory=dict)


def weighted_percentiles(samples: list[tuple[int, float]], name: str) -> dict[str, float]:
    """Nearest-rank percentiles (ms) of `count` requests each taking `seconds`: `{name}_p50_ms`, ..."""
    ordered = sorted(samples, key=lambda s: s[1])
    total = sum(count for count, _ in ordered)
    out = {}
    for q in QUANTILES:
        rank, seen = math.ceil(q / 100 * total), 0
        for count, seconds in ordered:
            seen += count
            if seen >= rank:
                out[f"{name}_p{q}_ms"] = seconds * 1000
                break
    return out


class _Pending:
    """Admitted requests still in their context phase: `count` requests with `done` prompt tokens each,
    sent by the client at `sent` (their mean)."""

    __slots__ = ("count", "done", "sent")

    def __init__(self, count: int, sent: float, done: int = 0) -> None:
        self.count, self.sent, self.done = count, sent, done


class _Generating:
    """Requests that produced their first token at iteration `start` (time `first`), sent at `sent`."""

    __slots__ = ("count", "first", "sent", "start")

    def __init__(self, count: int, start: int, first: float, sent: float) -> None:
        self.count, self.start, self.first, self.sent = count, start, first, sent


class _Client:
    """When the benchmark sends each request: all at t=0, or, under a concurrency limit N, N at t=0 and one
    more each time one finishes. Requests are admitted in the order they were sent."""

    def __init__(self, requests: int, concurrency: int | None) -> None:
        first = min(requests, concurrency or requests)
        self.unsent = requests - first
        self.waiting = first  # sent, not yet admitted
        self.sent: deque[list[float]] = deque([[first, 0.0]])  # [count, time] not yet admitted

    def finished(self, count: int, t: float) -> None:
        more = min(count, self.unsent)
        if more:
            self.unsent -= more
            self.waiting += more
            self.sent.append([more, t])

    def admit(self, count: int) -> float:
        """Take `count` sent requests, oldest first; their mean send time."""
        self.waiting -= count
        total, left = 0.0, count
        while left:
            head = self.sent[0]
            take = min(left, int(head[0]))
            total += take * head[1]
            head[0] -= take
            left -= take
            if head[0] == 0:
                self.sent.popleft()
        return total / count


class Infeasible(Exception):
    """No progress is possible (a prompt that can never be scheduled)."""


def simulate(isl: int, osl: int, requests: int, limits: SchedulerLimits, step: StepModel) -> SimResult:
    """Under attention DP (`limits.ranks` > 1) each rank admits and batches its own share of the requests (and of
    the concurrency limit) against its own KV pool and batch limits, in step with the others: one rank is
    simulated, and the wall time is its; together the ranks run `ranks` x its concurrency."""
    ranks = limits.ranks
    if ranks == 1:
        return _simulate_rank(isl, osl, requests, limits, step)
    share = dataclasses.replace(limits, concurrency=-(-limits.concurrency // ranks) if limits.concurrency else None)
    one = _simulate_rank(isl, osl, -(-requests // ranks), share, step)
    return dataclasses.replace(one, avg_concurrency=one.avg_concurrency * ranks)


def _simulate_rank(isl: int, osl: int, requests: int, limits: SchedulerLimits, step: StepModel) -> SimResult:
    tpb = limits.tokens_per_block
    seq_blocks = limits.seq_blocks or -(-(isl + osl) // tpb)
    cap = min(limits.max_batch_size, limits.concurrency or requests)
    if limits.kv_blocks < seq_blocks:
        raise Infeasible(f"one sequence needs {seq_blocks} KV blocks; the pool has {limits.kv_blocks}")
    if not limits.chunked_context and isl > limits.max_num_tokens:
        raise Infeasible(f"prompt of {isl} tokens exceeds max_num_tokens {limits.max_num_tokens}")

    t = 0.0
    it = 0  # iterations run so far
    client = _Client(requests, limits.concurrency)
    free_blocks, active = limits.kv_blocks, 0
    pending: deque[_Pending] = deque()
    gen: deque[_Generating] = deque()
    gen_count = 0
    gen_start_sum = 0  # sum of count x start over generating cohorts: their KV lengths in O(1)
    ttfts: list[tuple[int, float]] = []
    tpots: list[tuple[int, float]] = []
    latencies: list[tuple[int, float]] = []

    while client.waiting or pending or gen:
        admit = min(client.waiting, free_blocks // seq_blocks, cap - active)
        if admit > 0:
            pending.append(_Pending(admit, client.admit(admit)))
            free_blocks -= admit * seq_blocks
            active += admit

        # Micro-batch: all generating requests, then contexts in order within the token budget.
        budget = limits.max_num_tokens - gen_count
        slots = limits.max_batch_size - gen_count
        ctx_tokens = ctx_seqs = finished_ctx = 0
        pairs = prefix = finished_sent = 0.0
        while pending and budget > 0 and slots > 0:
            head = pending[0]
            remaining = isl - head.done
            whole = min(head.count, budget // remaining, slots)
            if whole > 0:
                ctx_tokens += whole * remaining
                pairs += whole * remaining * (head.done + (remaining + 1) / 2)
                prefix += whole * head.done
                finished_ctx += whole
                finished_sent += whole * head.sent
                ctx_seqs += whole
                budget -= whole * remaining
                slots -= whole
                head.count -= whole
                if head.count == 0:
                    pending.popleft()
                    continue
            if limits.chunked_context and budget >= tpb and slots > 0:
                chunk = budget // tpb * tpb  # < remaining: the request did not fit whole
                ctx_tokens += chunk
                pairs += chunk * (head.done + (chunk + 1) / 2)
                prefix += head.done
                ctx_seqs += 1
                budget -= chunk
                head.count -= 1
                if head.count == 0:
                    pending.popleft()
                pending.appendleft(_Pending(1, head.sent, head.done + chunk))  # it goes on first next time
            break  # the first request that does not fit whole stops the walk

        kv_gen = gen_count * (isl + it) - gen_start_sum  # KV tokens the generating requests hold
        if ctx_tokens == 0 and gen_count == 0:
            raise Infeasible("nothing can be scheduled")

        if ctx_tokens == 0:
            # Admission just took all it could, so nothing changes until the oldest cohort finishes:
            # skip there in one step.
            n = gen[0].start + osl - it
            mean_kv = kv_gen + gen_count * (n - 1) / 2
            padded = next((size for size in limits.graph_sizes if size >= gen_count), gen_count)
            dt = n * step.iteration_s(Batch(padded, gen_count, padded, mean_kv, mean_kv))
        else:
            n = 1
            batch = Batch(ctx_tokens + gen_count, ctx_seqs + gen_count, gen_count + finished_ctx,
                          pairs + kv_gen, kv_gen + prefix)
            dt = step.iteration_s(batch)
        t += dt
        it += n
        if finished_ctx:
            # Their first token comes out of this iteration; their KV is isl + 1 from the next.
            gen.append(_Generating(finished_ctx, it - 1, t, finished_sent / finished_ctx))
            gen_count += finished_ctx
            gen_start_sum += finished_ctx * (it - 1)
        while gen and gen[0].start + osl <= it:  # its last token came out of iteration start + osl - 1
            done = gen.popleft()
            gen_count -= done.count
            gen_start_sum -= done.count * done.start
            free_blocks += done.count * seq_blocks
            active -= done.count
            client.finished(done.count, t)
            latencies.append((done.count, t - done.sent))
            ttfts.append((done.count, done.first - done.sent))
            tpots.append((done.count, (t - done.first) / (osl - 1) if osl > 1 else 0.0))

    def mean(samples: list[tuple[int, float]]) -> float:
        return sum(c * s for c, s in samples) / requests

    return SimResult(wall_s=t, avg_latency_s=mean(latencies), avg_ttft_s=mean(ttfts), avg_tpot_s=mean(tpots),
                     avg_concurrency=mean(latencies) * requests / t if t else 0.0, iterations=it,
                     percentiles={**weighted_percentiles(ttfts, "ttft"), **weighted_percentiles(tpots, "tpot"),
                                  **weighted_percentiles(latencies, "latency")})
