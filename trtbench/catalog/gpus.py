"""GPU specifications and the names people and NVML give them.

Figures are dense (no 2:4 sparsity) per GPU, from the project's hardware reference
(`docs/hardware.md` cites the sources). `mem_total_mib` is what nvidia-smi/NVML report as
the device total, because TensorRT-LLM sizes everything from that, not from the marketing size.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from trtbench.errors import SpecError


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
    link_gb_s: float = 32.0  # GPU-to-GPU bandwidth per direction: NVLink or a bridge; else PCIe 4 x16

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


GPUS: dict[str, GPU] = {
    g.id: g
    for g in (
        GPU("h100-sxm", "H100 SXM 80GB", 989, 1979, 81559, 3.35, 700,
            ("NVIDIA H100 80GB HBM3",), ("H100-SXM-80GB", "H100-SXM5-80GB", "H100-SXM5", "H100-80GB-HBM3"),
            link_gb_s=450),
        GPU("h100-pcie", "H100 PCIe 80GB", 756, 1513, 81559, 2.0, 350,
            ("NVIDIA H100 PCIe",), ("H100-PCIE-80GB",), link_gb_s=300),
        GPU("h100-nvl", "H100 NVL 94GB", 835, 1670, 95330, 3.9, 400,
            ("NVIDIA H100 NVL",), ("H100-NVL-94GB",), link_gb_s=300),
        GPU("h200-sxm", "H200 SXM 141GB", 989, 1979, 143771, 4.8, 700,
            ("NVIDIA H200",), ("H200-SXM-141GB", "H200"), link_gb_s=450),
        GPU("gh200", "GH200 96GB", 989, 1979, 97871, 4.0, 900,
            ("NVIDIA GH200 480GB",), ("GH200-96GB",), link_gb_s=450),
        GPU("b200", "B200 180GB", 2250, 4500, 183359, 8.0, 1000,
            ("NVIDIA B200",), ("B200-180GB",), link_gb_s=900),
        GPU("a100-sxm-80gb", "A100 SXM 80GB", 312, None, 81920, 2.039, 400,
            ("NVIDIA A100-SXM4-80GB",), ("A100-SXM4-80GB", "A100-80GB-SXM"), link_gb_s=300),
        GPU("a100-sxm-40gb", "A100 SXM 40GB", 312, None, 40960, 1.555, 400,
            ("NVIDIA A100-SXM4-40GB",), ("A100-SXM4-40GB",), link_gb_s=300),
        GPU("a100-pcie-80gb", "A100 PCIe 80GB", 312, None, 81920, 1.935, 300,
            ("NVIDIA A100 80GB PCIe",), ("A100-PCIE-80GB",), link_gb_s=300),
        GPU("a30", "A30 24GB", 165, None, 24576, 0.933, 165,
            ("NVIDIA A30",), ("A30-24GB",), link_gb_s=100),
        GPU("l40s", "L40S 48GB", 362, 733, 46068, 0.864, 350,
            ("NVIDIA L40S",), ("L40S-48GB",)),
        GPU("l4", "L4 24GB", 121, 242, 23034, 0.300, 72,
            ("NVIDIA L4",), ("L4-24GB",)),
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
