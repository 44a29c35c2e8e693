"""How long one all-reduce of the TP ranks' hidden states takes, as a function of the message size: the
faster of a one-shot kernel (every rank reads the n-1 other buffers: latency + (n-1) S / link) and a ring
(latency + 2(n-1)/n S over a bus bandwidth that grows with S as peak x S / (S + half)).

All from public measurements, none fitted to throughput rows:
- NVLink (NVSwitch boards, or the bridge of a PCIe pair at TP2): TensorRT-LLM's custom one-shot kernel has
  a ~3 us floor for small messages; H100 SXM bus bandwidth is ~100-135 GB/s at 2 MB, 210-330 GB/s at 8-16 MB
  and 400-520 GB/s at >= 128 MB (nccl-tests, NVLS). With peak 480 GB/s and half 6 MB this gives, at 8 GPUs,
  109 GB/s at 2 MB (one-shot), 259 and 337 GB/s at 8 and 16 MB, 456 GB/s at 128 MB (ring), and 3.2 us for
  a one-token decode message.
- PCIe rings (no NVLink, or TP4/TP8 on bridged pairs): ~20-30 us per call and ~10-20 GB/s bus bandwidth on
  Gen4 dual-socket servers, falling as the ring crosses sockets (NVIDIA/nccl-tests#178: ~20 GB/s once the
  ring leaves the NVLink pairs; aiconfigurator's L40S table ~30/8/2 GB/s at 2/4/8 GPUs). Gen5 doubles the link.
- Unknown interconnects (a GH200 system that does not say how its superchips connect) are costed as a
  Gen5 PCIe ring, and flagged as outside calibration where the prediction is shown.
"""

from __future__ import annotations

from trtbench.catalog.gpus import GPU, Interconnect

NVLINK_LATENCY_S = 3e-6
NVLINK_HALF_BYTES = 6e6  # message size at which NVLink reaches half its peak bus bandwidth
PCIE_LATENCY_S = 25e-6
PCIE_HALF_BYTES = 1e6
PCIE_GEN4_BUSBW_GB_S = {2: 20.0, 4: 10.0, 8: 5.0}  # by ranks in the ring; beyond 8: the 8-GPU figure


def link(gpu: GPU, ranks: int) -> tuple[float, float, float]:
    """(latency s, peak bus bandwidth B/s, half-bandwidth message bytes) of an all-reduce over `ranks`."""
    nvlink = gpu.interconnect is Interconnect.NVSWITCH or (gpu.interconnect is Interconnect.NVLINK_PAIRS
                                                          and ranks == 2)
    if nvlink and gpu.nvlink_busbw_gb_s:
        return NVLINK_LATENCY_S, gpu.nvlink_busbw_gb_s * 1e9, NVLINK_HALF_BYTES
    pcie = PCIE_GEN4_BUSBW_GB_S[min((r for r in PCIE_GEN4_BUSBW_GB_S if r >= ranks), default=8)]
    gen = 5 if gpu.interconnect is Interconnect.UNKNOWN else gpu.pcie_gen
    return PCIE_LATENCY_S, pcie * 1e9 * 2 ** (gen - 4), PCIE_HALF_BYTES


def alltoall_s(gpu: GPU, ranks: int, message_bytes: float) -> float:
    """One all-to-all in which each rank holds `message_bytes` and keeps 1/ranks of it (an expert-parallel
    dispatch or combine): (n-1)/n of it crosses the links, at the bus bandwidth an all-reduce of that size
    gets (0 on one GPU)."""
    if ranks <= 1:
        return 0.0
    latency, peak, half = link(gpu, ranks)
    return latency + (ranks - 1) / ranks * (message_bytes + half) / peak


def allreduce_s(gpu: GPU, ranks: int, message_bytes: float) -> float:
    """One all-reduce of `message_bytes` per rank across `ranks` GPUs (0 on one GPU)."""
    if ranks <= 1:
        return 0.0
    latency, peak, half = link(gpu, ranks)
    one_shot = (ranks - 1) * message_bytes / peak
    ring = 2 * (ranks - 1) / ranks * (message_bytes + half) / peak  # S / busbw(S), busbw = peak S / (S + half)
    return latency + min(one_shot, ring)
