"""How long one all-reduce of the TP ranks' hidden states takes, as a function of the message size: the
faster of a one-shot kernel (every rank reads the n-1 other buffers: latency + (n-1) S / link) and a ring
(latency + 2(n-1)/n S over a bus bandwidth that grows with S as peak x S / (S + half)).

All from public measurements, none fitted to throughput rows:
- NVLink (NVSwitch boards, or the bridge of a PCIe pair at TP2): TensorRT-LLM's custom one-shot kernel has
  a ~3 us floor for small messages; H100 SXM bus bandwidth is ~100-135 GB/s at 2 MB, 210-330 GB/s at 8-16 MB
  and 400-520 GB/s at >= 128 MB (nccl-tests, NVLS). With peak 480 GB/s and half 6 MB this gives, at 8 GPUs,
  109 GB/s at 2 MB (one-shot), 259 and 337 GB/s at 8 and 16 MB, 456 GB/s at 128 MB (ring), and 3.2 us for
  a one-token decode message.
- PCIe rings (no NVLink, or TP4/TP8 on bridged pairs): ~25 us per call. The bus bandwidth depends on whether
  the GPUs reach each other peer to peer (P2P, the data-centre cards: L40S, A100/H100 PCIe) or through host
  memory (P2P off, as on GeForce boards). With P2P on Gen4, nccl-tests all_reduce_perf reaches ~25.7 GB/s busbw
  on 4 GPUs at >= 256 MB (tinygrad/open-gpu-kernel-modules#36, 4x RTX 4090 with P2P enabled); 8 GPUs on Gen5
  reach 28 GB/s and 4 reach 35 GB/s (NVIDIA/nccl#1639, 8x RTX 5090, "determined by the bandwidth your CPU and
  memory can deliver"), so 8 on Gen4 ~14 GB/s. Without P2P: ~20 GB/s on 2 GPUs falling as the ring crosses
  sockets (NVIDIA/nccl-tests#178; aiconfigurator's L40S table ~30/8/2 GB/s at 2/4/8 GPUs). Gen5 doubles the
  link.
- Unknown interconnects (a GH200 system that does not say how its superchips connect) are costed as a
  Gen5 PCIe ring, and flagged as outside calibration where the prediction is shown.
- Measured curves where they exist (`MEASURED`): the same two forms fitted to aiconfigurator's collector tables
  (ai-dynamo, the aiconfigurator_core 0.12.0 wheel on PyPI: TensorRT-LLM 1.3.0rc20's all-reduce, strategy AUTO
  under CUDA graphs, bf16; NCCL 2.29.2 all_gather and reduce_scatter, fp16; 2, 4 and 8 GPUs, 16 KB to 1 GB, least
  squares on log time). Blackwell on NVSwitch takes both: the generic curve, a guess from NVLink 5's line rate,
  was 32% faster than B200's all-reduce measurements and 28% than its all-gathers. Hopper takes the measured
  all-gather / reduce-scatter (attention DP's MoE traffic) but keeps the nccl-tests curve above for its TP
  all-reduce: the measured, unfused all-reduce is 20% slower, and the dense tables' Llama runs, which fuse it
  with the residual add and RMSNorm, fit the nccl-tests curve (3.5% on H200's table) better than the unfused one
  (4.0% after a refit).
"""

from __future__ import annotations

from dataclasses import dataclass

from trtbench.catalog.gpus import GPU, Interconnect

NVLINK_LATENCY_S = 3e-6
NVLINK_HALF_BYTES = 6e6  # message size at which NVLink reaches half its peak bus bandwidth
PCIE_LATENCY_S = 25e-6
PCIE_HALF_BYTES = 1e6
# Gen4 bus bandwidth by ranks in the ring (beyond 8: the 8-GPU figure), peer to peer and through host memory
PCIE_GEN4_P2P_BUSBW_GB_S = {2: 25.0, 4: 25.0, 8: 14.0}
PCIE_GEN4_HOST_BUSBW_GB_S = {2: 20.0, 4: 10.0, 8: 5.0}


@dataclass(frozen=True)
class Curve:
    """A collective's time over `ranks` GPUs: latency + the faster of a one-shot pass ((n-1) S / one_shot_bps,
    all-reduce only) and a ring (its bytes + half over ring_bps, the bus bandwidth growing as S / (S + half))."""

    latency_s: float
    ring_bps: float
    half_bytes: float
    one_shot_bps: float = 0.0


# Fitted to the tables named above; mean error over their 2-8-GPU points: B200's all-reduce 8.3%, all-gather /
# reduce-scatter 16.3% (B200) and 15.5% (H100 and H200 together).
MEASURED: dict[str, dict[str, Curve]] = {
    "hopper": {"gather": Curve(1.14e-6, 248e9, 2.9e6)},
    "blackwell": {"all_reduce": Curve(4.89e-6, 594e9, 9.0e6, one_shot_bps=531e9),
                  "gather": Curve(1.56e-6, 439e9, 8.2e6)},
}


def curve_of(gpu: GPU, ranks: int, collective: str) -> Curve:
    """`collective` ("all_reduce" or "gather") over `ranks`: the measured curve of the GPU's NVSwitch generation
    where there is one, else the link's generic curve (NVLink, or a PCIe ring by P2P, generation and ranks)."""
    measured = MEASURED.get(gpu.family, {}).get(collective) if gpu.interconnect is Interconnect.NVSWITCH else None
    if measured:
        return measured
    nvlink = gpu.interconnect is Interconnect.NVSWITCH or (gpu.interconnect is Interconnect.NVLINK_PAIRS
                                                          and ranks == 2)
    if nvlink and gpu.nvlink_busbw_gb_s:
        peak = gpu.nvlink_busbw_gb_s * 1e9
        return Curve(NVLINK_LATENCY_S, peak, NVLINK_HALF_BYTES, one_shot_bps=peak)
    table = PCIE_GEN4_P2P_BUSBW_GB_S if gpu.pcie_p2p else PCIE_GEN4_HOST_BUSBW_GB_S
    pcie = table[min((r for r in table if r >= ranks), default=8)]
    gen = 5 if gpu.interconnect is Interconnect.UNKNOWN else gpu.pcie_gen
    peak = pcie * 1e9 * 2 ** (gen - 4)
    return Curve(PCIE_LATENCY_S, peak, PCIE_HALF_BYTES, one_shot_bps=peak)


def gather_s(gpu: GPU, ranks: int, total_bytes: float) -> float:
    """One all-gather (`total_bytes`: what every rank holds after it) or reduce-scatter (what every rank holds
    before it), as NCCL's ring runs them: (n-1)/n of it crosses each rank's links (0 on one GPU)."""
    if ranks <= 1:
        return 0.0
    c = curve_of(gpu, ranks, "gather")
    return c.latency_s + (ranks - 1) / ranks * (total_bytes + c.half_bytes) / c.ring_bps


def allreduce_s(gpu: GPU, ranks: int, message_bytes: float) -> float:
    """One all-reduce of `message_bytes` per rank across `ranks` GPUs (0 on one GPU)."""
    if ranks <= 1:
        return 0.0
    c = curve_of(gpu, ranks, "all_reduce")
    one_shot = (ranks - 1) * message_bytes / c.one_shot_bps
    ring = 2 * (ranks - 1) / ranks * (message_bytes + c.half_bytes) / c.ring_bps  # S / busbw(S)
    return c.latency_s + min(one_shot, ring)
