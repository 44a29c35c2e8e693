"""Attention data parallelism (TensorRT-LLM's enable_attention_dp, NVIDIA's DEP rows): the spec field and axis, the
release gate and its YAML key, per-rank memory and KV budget, `plan`'s per-rank limits and the step model."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.conftest import SMALL_SPEC
from tests.fakes import clidata
from tests.test_grid import SIM
from trtbench.backends.trtllm.command import llm_api_options, refuse_unrunnable
from trtbench.backends.trtllm.version import TrtllmVersion
from trtbench.deployment import make_deployment
from trtbench.errors import SpecError, Unsupported
from trtbench.grid import expand
from trtbench.records import Status
from trtbench.sim.calibration import coverage
from trtbench.sim.ifb import IfbModel
from trtbench.sim.memory import plan_memory
from trtbench.sim.predict import predict_point
from trtbench.spec import parse_spec

GATES = clidata._data()["gates"]
MOE = SMALL_SPEC.replace("meta-llama/Llama-3.1-8B", "mistralai/Mixtral-8x7B-v0.1") + "tp: 2\nep: 2\n"
DEP8 = """\
name: dep8
model: deepseek-ai/DeepSeek-R1
gpu: h200-sxm
precision: fp8
kv_cache_dtype: fp8
backend: sim
tp: 8
ep: 8
attention_dp: true
grid:
  isl: [1024]
  osl: [1024]
requests:
  default: {fixed: 1000}
"""


def test_unset_attention_dp_leaves_every_id_and_is_an_axis():
    base = [p.id for p in expand(parse_spec(MOE), SIM)]
    assert [p.id for p in expand(parse_spec(MOE), SIM)] == base
    swept = expand(parse_spec(MOE.replace("grid:\n", "grid:\n  attention_dp: [false, true]\n")), SIM)
    assert [p.values["attention_dp"] for p in swept] == [False] * 4 + [True] * 4
    assert len({p.id for p in swept}) == 8 and not {p.id for p in swept} & set(base)
    assert {p.id for p in expand(parse_spec(MOE + "attention_dp: true\n"), SIM)} == {p.id for p in swept[4:]}


@pytest.mark.parametrize("release", clidata.releases())
def test_the_yaml_carries_enable_attention_dp_only_where_the_evidence_shows_it(release):
    """The gate against tests/data: the key is accepted (llm_api_keys) exactly where the gate sends it, from 0.19
    (gates.has_attention_dp); before, the point is refused in one line, never run as TP and labelled DEP."""
    rel = clidata.release(release)
    v = TrtllmVersion.parse(rel["version"])
    accepted = "enable_attention_dp" in ((rel.get("llm_api_keys") or {}).get("top") or {}).get("accepted", [])
    assert v.has_attention_dp is accepted is (tuple(map(int, release.split("."))) >= (0, 19))
    assert release not in GATES["has_attention_dp"]["unproven"] or not v.has_attention_dp
    spec = parse_spec(MOE.replace("backend: sim", "backend: trtllm") + "attention_dp: true\n").at({})
    if not v.has_attention_dp:
        with pytest.raises(SpecError, match="has no --ep to spread the experts"):
            refuse_unrunnable(spec, v, "pytorch")
        return
    refuse_unrunnable(spec, v, "pytorch")
    options = llm_api_options(spec, v, "pytorch")
    assert options is not None and options["enable_attention_dp"] is True
    assert "enable_attention_dp" not in (llm_api_options(parse_spec(MOE).at({}), v, "pytorch") or {})


@pytest.mark.parametrize(("release", "sent"), [("0.18.0", False), ("0.19.0", True), ("1.0.0", True), ("1.3.0", True)])
def test_a_pinned_dry_run(release, sent, cli, write_spec, tmp_path, monkeypatch):
    """`sweep --dry-run` pinned to a release: from 0.19 it runs with the YAML file and --ep; before, one line."""
    monkeypatch.setenv("TRTBENCH_CACHE_DIR", str(tmp_path / "cache"))
    checkpoint = tmp_path / "Mixtral-FP8"
    checkpoint.mkdir()
    (checkpoint / "hf_quant_config.json").write_text('{"quantization": {"quant_algo": "FP8"}}')
    spec = MOE.replace("backend: sim", "backend: trtllm") + (f"attention_dp: true\ntrtllm: {{version: {release}}}\n"
                                                             f"build: {{checkpoint: {checkpoint}}}\n")
    result = cli("sweep", "--no-plots", "--dry-run", str(write_spec(spec)))
    if not sent:
        assert result.code == 2 and "has no --ep to spread the experts" in result.err
        assert len([line for line in result.err.splitlines() if "error" in line]) == 1
        return
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines and all("--ep 2" in line and ("--config" in line or "--extra_llm_api_options" in line)
                         for line in lines)


@pytest.mark.parametrize(("model", "tp", "said"), [
    ("meta-llama/Llama-3.1-8B", 2, "is dense"),
    ("mistralai/Mixtral-8x7B-v0.1", 1, "needs tp > 1"),
])
def test_refused_for_dense_models_and_one_rank(model, tp, said):
    with pytest.raises(Unsupported, match=said):
        make_deployment(model, "h200-sxm", "fp8", tp=tp, attention_dp=True)


def test_ep_below_tp_under_attention_dp_is_one_line(cli, write_spec):
    result = cli("sweep", "--no-plots", str(write_spec(MOE.replace("tp: 2\nep: 2\n", "tp: 2\n") +
                                                       "attention_dp: true\n")))
    assert result.code == 2 and "needs ep equal to tp" in result.err and len(result.err.splitlines()) == 1


def test_deepseek_r1_fp8_dep8_on_h200_memory_per_rank_by_hand():
    """DeepSeek-R1 FP8, 8 H200s (140.40 GiB each), DEP8, ISL 1024 + OSL 1024, fraction 0.90, on 1.2.
    Weights per GPU: attention, the 3 dense layers' FFN, the shared experts and norms (15,157,844,992 FP8
    parameters) whole, 1 B each; the routed experts 58 layers x 256 x 3 x 7168 x 2048 = 653,908,770,816 over 8
    ranks = 81,738,596,352 B; the routers (106,430,464) and the embedding and head (1,853,358,080) whole at 2 B =
    3,919,577,088 B. Sum 100,816,018,432 B = 93.89 GiB (TP8 splits all of it: 78.35 GiB).
    KV budget per rank: 1.2's trtllm-bench heuristic ignores attention DP (to 1.3.0rc13), so its max_batch_size
    384 and max_num_tokens 2048 are each rank's. Activations for 2048 tokens of whole hidden states, 2 x (2 x 18432 +
    4 x 7168) x 2048 = 268,435,456 B, plus fp32 logits 384 x 129,280 x 4 = 198,574,080 B: 0.4349 GiB. Runtime:
    1 GiB context + 21 graph sizes x 60 MiB + 0.36 GiB buffers = 2.5905 GiB. Pool (140.4014 - 93.8922 - 0.4349 -
    2.5905) x 0.90 = 39.135 GiB; at 61 x 576 = 35,136 B per token (the latent, for this rank's own sequences only)
    that is 1,195,936 tokens in 32-token blocks, 37,373 blocks / 64 per sequence = 583 sequences per rank:
    4,664 over the 8 ranks, where TP8 keeps every sequence's latent on every rank (795 in all)."""
    dep = make_deployment("deepseek-ai/DeepSeek-R1", "h200-sxm", "fp8", tp=8, attention_dp=True, release="1.2")
    plan = plan_memory(dep, 1024, 1024)
    assert plan.verdict is Status.OK
    assert plan.weights_gib == pytest.approx(100_816_018_432 / 2**30, abs=1e-6)
    assert plan.weights_gib == pytest.approx(93.89, abs=0.005)
    assert (plan.max_batch_size, plan.max_num_tokens) == (384, 2048)
    assert plan.activation_gib == pytest.approx(467_009_536 / 2**30, abs=1e-6)
    assert plan.overhead_gib == pytest.approx(1 + 21 * 60 / 1024 + 0.36, abs=1e-9)
    assert plan.kv_pool_gib == pytest.approx(39.135, abs=0.001)
    assert plan.kv_bytes_per_token == 35_136
    assert plan.kv_tokens == 1_195_936 and plan.max_concurrent_seqs == 583
    tp8 = plan_memory(make_deployment("deepseek-ai/DeepSeek-R1", "h200-sxm", "fp8", tp=8, release="1.2"), 1024, 1024)
    assert tp8.max_concurrent_seqs == 795 < 8 * plan.max_concurrent_seqs


def test_deepseek_r1_fp8_dep8_from_1_3_rc23_sizes_each_rank_by_hand():
    """As above on a release whose trtllm-bench sizes attention DP per rank (NVIDIA/TensorRT-LLM#13498, from
    1.3.0rc14) with latent attention's compressed KV (#16707, from 1.3.0rc23). Engine: the checkpoint's bytes,
    15,157,844,992 + 653,908,770,816 at 1 B and 1,959,788,544 at 2 B = 672,986,404,352 B, / 8 ranks = 78.3459 GiB
    against one GPU's 140.4014 GiB: cache (140.4014 - 78.3459) x 0.90 = 55.850 GiB; 61 x 576 x 1 = 35,136 B a
    token, 72 MiB a 1k/1k request: 833.4 requests -> max_batch_size 896 (a multiple of 128); tokens 1,666.7 ->
    2048. Where 1.2 read K and V of 128 heads of hidden / heads = 56 over the group, 2 x 61 x 128 x 56 x 1 =
    874,496 B a token, and settled on 384."""
    for version in ("1.3.0rc23", "1.4.0rc1", None):
        dep = make_deployment("deepseek-ai/DeepSeek-R1", "h200-sxm", "fp8", tp=8, attention_dp=True, release=version)
        plan = plan_memory(dep, 1024, 1024)
        assert (plan.max_batch_size, plan.max_num_tokens) == (896, 2048), version
    mha = make_deployment("deepseek-ai/DeepSeek-R1", "h200-sxm", "fp8", tp=8, attention_dp=True, release="1.3.0rc22")
    assert plan_memory(mha, 1024, 1024).max_batch_size < 896  # per rank, but each token as 128 heads' K and V


def test_plan_prints_per_rank_limits_for_a_dep8_deepseek_r1(cli, write_spec):
    """As worked above for the newest release (the spec states none), and a spec's run asks trtllm-bench for
    NVIDIA's CUDA-graph sizes: up to max_batch_size 896, 11 of them (1, 2, 4 ... 256, 384, 512) and 896, 12 pools
    not trtllm-bench's 21+, so the runtime takes 1 + 12 x 60 / 1024 + 0.36 = 2.0631 GiB. Activations 268,435,456 B
    + fp32 logits 896 x 129,280 x 4 = 731,774,976 B = 0.6815 GiB. Pool (140.4014 - 93.8922 - 0.6815 - 2.0631) x
    0.90 = 39.388 GiB = 1,203,683 tokens of 35,136 B, 37,615 whole blocks = 1,203,680 tokens, 587 sequences of 64
    blocks per rank."""
    result = cli("plan", str(write_spec(DEP8)))
    text = " ".join(result.out.split())
    assert result.code == 0, result.err
    for header in ("DP ranks", "max_batch_size per rank", "KV tokens per rank", "Max seqs per rank"):
        assert header in text, header
    assert "1,203,680" in text and " 587 " in text and " 896 " in text


def test_dep_beats_tp_on_a_decode_heavy_moe_workload_and_is_outside_the_calibration():
    """Direction only. Decode of a 256-expert model is bound by reading the experts and the KV cache: under TP8
    every rank holds every sequence's latent KV (MLA is not split by heads), so the pool admits 8x fewer sequences
    and each step's expert reads are shared by fewer tokens; DEP8 runs 8 batches that each fill a rank's own pool,
    with no attention all-reduce, and the experts see all 8 ranks' tokens at once."""
    perf = IfbModel()
    out = {}
    for adp in (False, True):
        dep = make_deployment("deepseek-ai/DeepSeek-R1", "h200-sxm", "fp8", tp=8, attention_dp=adp)
        outcome = predict_point(dep, perf, 1024, 2048, 4096)
        assert outcome.status is Status.OK
        out[adp] = outcome.metrics.output_tok_per_s
    assert out[True] > out[False]
    covered = coverage(dep, perf.info)
    assert not covered.calibrated and any("attention data parallelism" in o for o in covered.outside)


def test_predict_takes_attention_dp(cli):
    result = cli("predict", "--gpu", "h200-sxm", "--model", "deepseek-ai/DeepSeek-R1", "--tp", "8", "--attention-dp",
                 "--isl", "1024", "--osl", "1024", "--requests", "1000", "--json")
    assert result.code == 0, result.err
    shown = json.loads(result.out)
    assert shown["attention_dp"] is True and shown["memory"]["max_batch_size"] == 896  # each rank's, as worked above
    assert any("attention data parallelism" in o for o in shown["calibration"]["outside"])


def test_results_csv_carries_ep_and_attention_dp_so_predict_csv_models_the_run(cli, tmp_path):
    """A DEP8 run's results.csv names its ep and attention DP, unswept, so `predict --csv` on it predicts the
    deployment that ran (the same simulated throughput), not TP8 with every expert split."""
    (tmp_path / "dep8.yaml").write_text(DEP8)
    assert cli("sweep", "dep8.yaml", "--no-plots").code == 0
    results = pd.read_csv(tmp_path / "runs/dep8/results.csv")
    assert (results["ep"] == 8).all() and results["attention_dp"].all()
    assert cli("predict", "--csv", "runs/dep8/results.csv", "--out", "again.csv").code == 0
    again = pd.read_csv(tmp_path / "again.csv")["pred_output_tok_per_s"]
    # the same model of the same deployment; the run's CUDA-graph sizes (trtbench's list) and the CSV's (trtllm-bench's
    # own) differ a little
    assert again.tolist() == pytest.approx(results["output_tok_per_s"].tolist(), rel=0.01)
    results.drop(columns=["ep", "attention_dp"]).to_csv(tmp_path / "as_tp8.csv", index=False)
    assert cli("predict", "--csv", "as_tp8.csv", "--out", "tp8.csv").code == 0  # what the CSV used to say
    tp8 = pd.read_csv(tmp_path / "tp8.csv")["pred_output_tok_per_s"]
    assert abs(tp8[0] / results["output_tok_per_s"][0] - 1) > 0.2
