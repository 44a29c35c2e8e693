"""GPU specifications, how the GPUs of a system are connected, and the names people, NVIDIA's tables and
NVML give them.

Figures are dense (no 2:4 sparsity) per GPU, from the project's hardware reference
(`docs/hardware.md` cites the sources). `mem_total_mib` is what nvidia-smi/NVML report as
the device total, because TensorRT-LLM sizes everything from that, not from the marketing size.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from trtbench.errors import SpecError
from trtbench.precision import Named


class Interconnect(Named):
    """How the GPUs of one system reach each other: what an all-reduce across TP ranks crosses."""

    NVSWITCH = "nvswitch"  # SXM boards (HGX): every GPU to every GPU over NVLink
    NVLINK_PAIRS = "nvlink-pairs"  # PCIe cards bridged in pairs: NVLink for TP2, PCIe beyond
    PCIE = "pcie"  # no NVLink (L40S, L4)
    UNKNOWN = "unknown"  # not stated by the GPU alone (GH200 systems, several nodes)


@dataclass(frozen=True)
class GPU:
    id: str
    name: str
    bf16_tflops: float
    fp8_tflops: float | None  # None: no FP8 tensor cores (Ampere)
    mem_total_mib: float
    hbm_tb_s: float
    tdp_w: float
    nvml_names: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    interconnect: Interconnect = Interconnect.PCIE
    # Bus bandwidth (GB/s) a large all-reduce reaches over NVLink (nccl-tests busbw): NVSwitch systems,
    # or the bridge of an NVLink pair; 0 without NVLink.
    nvlink_busbw_gb_s: float = 0.0
    pcie_gen: int = 4
    # Best-shape dense GEMM as a fraction of peak (Stas Bekman's MAMF, ml-engineering), per input dtype:
    # what the fitted GEMM efficiency is relative to, so a factor fitted on Hopper FP8 carries to Ampere BF16.
    mamf: tuple[tuple[str, float], ...] = ()
    family: str = "hopper"

    @property
    def mem_total_bytes(self) -> float:
        return self.mem_total_mib * 2**20

    @property
    def mem_total_gib(self) -> float:
        return self.mem_total_mib / 1024

    def peak_flops(self, precision: str) -> float:
        """Tensor-core peak for GEMMs in `precision`; FP8 falls back to 16-bit where unsupported."""
        if precision == "fp8" and self.fp8_tflops is not None:
            return self.fp8_tflops * 1e12
        return self.bf16_tflops * 1e12

    def best_gemm_fraction(self, precision: str) -> float:
        """The measured best-shape GEMM fraction of peak in `precision` (16-bit where FP8 is missing), else
        the family's: Hopper's measured H100 SXM figures where a GPU has none of its own."""
        dtype = "fp8" if precision == "fp8" and self.fp8_tflops is not None else "bf16"
        return dict(self.mamf).get(dtype) or FAMILY_MAMF[self.family][dtype]


# Stas Bekman, ml-engineering "Maximum Achievable Matmul FLOPS" (the reference's table): H100 SXM BF16 80.3%,
# FP8 70.9%; A100 SXM BF16 86.9%. Families without a measurement take the nearest measured one.
FAMILY_MAMF = {"hopper": {"bf16": 0.803, "fp8": 0.709}, "ampere": {"bf16": 0.869, "fp8": 0.869},
               "ada": {"bf16": 0.803, "fp8": 0.709}, "blackwell": {"bf16": 0.803, "fp8": 0.709}}
NVSWITCH, PAIRS = Interconnect.NVSWITCH, Interconnect.NVLINK_PAIRS

GPUS: dict[str, GPU] = {
    g.id: g
    for g in (
        GPU("h100-sxm", "H100 SXM 80GB", 989, 1979, 81559, 3.35, 700,
            ("NVIDIA H100 80GB HBM3",), ("H100-SXM-80GB", "H100-SXM5-80GB", "H100-SXM5", "H100-80GB-HBM3",
                                         "H100 SXM"), NVSWITCH, 480, 5, (("bf16", 0.803), ("fp8", 0.709))),
        GPU("h100-pcie", "H100 PCIe 80GB", 756, 1513, 81559, 2.0, 350,
            ("NVIDIA H100 PCIe",), ("H100-PCIE-80GB", "H100 PCIe"), PAIRS, 250, 5),
        GPU("h100-nvl", "H100 NVL 94GB", 835, 1670, 95330, 3.9, 400,
            ("NVIDIA H100 NVL",), ("H100-NVL-94GB", "H100 NVL"), PAIRS, 250, 5),
        GPU("h200-sxm", "H200 SXM 141GB", 989, 1979, 143771, 4.8, 700,
            ("NVIDIA H200",), ("H200-SXM-141GB", "H200", "H200 SXM"), NVSWITCH, 480, 5),
        GPU("gh200", "GH200 96GB HBM3", 989, 1979, 97871, 4.0, 900,
            ("NVIDIA GH200 480GB", "NVIDIA GH200 120GB"),
            ("GH200-96GB", "GH200 96GB HBM3 CG1", "GH200 480GB", "GH200 120GB", "GH200"), Interconnect.UNKNOWN,
            0, 5, (("bf16", 0.836), ("fp8", 0.776))),
        GPU("b200", "B200 180GB", 2250, 4500, 183359, 8.0, 1000,
            ("NVIDIA B200",), ("B200-180GB", "B200"), NVSWITCH, 800, 5, family="blackwell"),
        GPU("a100-sxm-80gb", "A100 SXM 80GB", 312, None, 81920, 2.039, 400,
            ("NVIDIA A100-SXM4-80GB",), ("A100-SXM4-80GB", "A100-80GB-SXM", "A100 SXM4 80GB"), NVSWITCH, 230, 4,
            (("bf16", 0.869),), "ampere"),
        GPU("a100-sxm-40gb", "A100 SXM 40GB", 312, None, 40960, 1.555, 400,
            ("NVIDIA A100-SXM4-40GB",), ("A100-SXM4-40GB",), NVSWITCH, 230, 4, (("bf16", 0.869),), "ampere"),
        GPU("a100-pcie-80gb", "A100 PCIe 80GB", 312, None, 81920, 1.935, 300,
            ("NVIDIA A100 80GB PCIe",), ("A100-PCIE-80GB", "A100 PCIe"), PAIRS, 180, 4, (("bf16", 0.811),),
            "ampere"),
        GPU("a30", "A30 24GB", 165, None, 24576, 0.933, 165,
            ("NVIDIA A30",), ("A30-24GB",), PAIRS, 120, 4, family="ampere"),
        GPU("l40s", "L40S 48GB", 362, 733, 46068, 0.864, 350,
            ("NVIDIA L40S",), ("L40S-48GB", "L40S"), family="ada"),
        GPU("l4", "L4 24GB", 121, 242, 23034, 0.300, 72,
            ("NVIDIA L4",), ("L4-24GB", "L4"), family="ada"),
    )
}


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


_LOOKUP: dict[str, str] = {}
for _gpu in GPUS.values():
    for _name in (_gpu.id, _gpu.name, *_gpu.nvml_names, *_gpu.aliases):
        _LOOKUP[_norm(_name)] = _gpu.id


def resolve_gpu(name: str) -> GPU:
    """Canonical GPU for an id, alias or NVML device name; unknown names list the known ids."""
    gpu_id = _LOOKUP.get(_norm(name))
    if gpu_id is None:
        raise SpecError(f"unknown GPU {name!r}; known: {', '.join(GPUS)} (or 'auto')")
    return GPUS[gpu_id]
