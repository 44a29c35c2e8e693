"""GPU specifications, how the GPUs of a system are connected, and the names people, NVIDIA's tables and
NVML give them.

Figures are dense (no 2:4 sparsity) per GPU, from the project's hardware reference
(`docs/hardware.md` cites the sources; the Blackwell ones beside their entries). `mem_total_mib` is
what nvidia-smi/NVML report as the device total, because TensorRT-LLM sizes everything from that, not from the
marketing size.
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
    fp4_tflops: float | None = None  # None: no FP4 tensor cores (before Blackwell)
    nvlink_gen: int = 0  # NVLink generation; 0: none recorded
    nvlink_domain: int = 0  # GPUs one NVLink/NVSwitch fabric joins (HGX 8, GB200/GB300 NVL72 72); 0: none
    pcie_p2p: bool = True  # GPUs reach each other over PCIe peer to peer (data-centre cards; not GeForce boards)

    @property
    def mem_total_bytes(self) -> float:
        return self.mem_total_mib * 2**20

    @property
    def mem_total_gib(self) -> float:
        return self.mem_total_mib / 1024

    def gemm_dtype(self, precision: str) -> str:
        """The tensor-core input a GEMM in `precision` runs at: NVFP4 at FP4, FP8 at FP8, where the GPU has them;
        16-bit otherwise (MXFP4 experts on Hopper are dequantized to 16 bits in the kernel)."""
        if precision == "nvfp4" and self.fp4_tflops is not None:
            return "fp4"
        return "fp8" if precision == "fp8" and self.fp8_tflops is not None else "bf16"

    def peak_flops(self, precision: str) -> float:
        """Tensor-core peak for GEMMs in `precision`."""
        rate = {"fp4": self.fp4_tflops, "fp8": self.fp8_tflops}.get(self.gemm_dtype(precision)) or self.bf16_tflops
        return rate * 1e12

    def best_gemm_fraction(self, precision: str) -> float:
        """The measured best-shape GEMM fraction of peak in `precision` (16-bit where FP8 is missing), else
        the family's (its measured GPU's). No public FP4 MAMF exists: FP4 is FP8's fraction times what NVFP4
        gains over FP8 at one shape in one benchmark, over the 2x of its peak (`FP4_OVER_FP8`)."""
        dtype = self.gemm_dtype(precision)
        if dtype == "fp4":
            return self.best_gemm_fraction("fp8") * FP4_OVER_FP8 / 2
        return dict(self.mamf).get(dtype) or FAMILY_MAMF[self.family][dtype]

    def expert_gemm_factor(self, precision: str) -> float:
        """The routed experts' GEMMs against a dense GEMM of the same precision: MXFP4 experts on Hopper decode
        every weight tile to 16 bits inside the kernel (no FP4 tensor cores) and reach less than a 16-bit GEMM
        at large batches (`MXFP4_DECODE_HOPPER`); 1 otherwise."""
        return MXFP4_DECODE_HOPPER if precision == "mxfp4" and self.family == "hopper" else 1.0


# Stas Bekman, ml-engineering "Maximum Achievable Matmul FLOPS" (the reference's table): H100 SXM BF16 80.3%,
# FP8 70.9%; A100 SXM BF16 86.9%; B200 SXM BF16 77.6%, FP8 76.3% (its table since 2025, with B300 and GB200).
# Families without a measurement take the nearest measured one: Blackwell GPUs without their own, B200's.
FAMILY_MAMF = {"hopper": {"bf16": 0.803, "fp8": 0.709}, "ampere": {"bf16": 0.869, "fp8": 0.869},
               "ada": {"bf16": 0.803, "fp8": 0.709}, "blackwell": {"bf16": 0.776, "fp8": 0.763}}
# NVFP4 over FP8 GEMM throughput at one shape on B200, both CUTLASS through vLLM's kernel benchmarks without the
# activation quantisation (TensorRT-LLM fuses it into the norm before): N=6144, K=4096, M=16384, NVFP4 3,904
# TFLOP/s (vllm-project/vllm#20646) against FP8 2,545 (vllm#19566). FP4's peak is twice FP8's; its GEMMs reach
# 1.53x, their block scales and narrower K tiles costing the rest.
FP4_OVER_FP8 = 3904 / 2545
# triton_kernels' Hopper MXFP4 x 16-bit matmul (what TensorRT-LLM's TRITON MoE backend runs gpt-oss with on
# Hopper), after its retuning (triton-lang/triton#11361, H100): at large M it is 25.7% slower than casting the
# weights to 16 bits on every call and running a dense matmul, so at most 0.743 of a dense 16-bit GEMM's rate.
MXFP4_DECODE_HOPPER = 1 - 0.257
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
        # Blackwell. Rates: NVIDIA's sparse figures halved where NVIDIA gives no dense one; per GPU from the
        # 8-GPU HGX and 72-GPU NVL72 totals. Memory: the nvidia-smi total of public logs; TDP: its power limit.
        # B200: HGX B200 (nvidia.com/en-us/data-center/hgx): FP4 144 PF sparse / 72 dense, FP8 72 PF and
        # BF16 36 PF sparse, NVLink 5 at 1.8 TB/s per GPU, 8 GPUs per NVSwitch domain; 183359 MiB, 1000 W
        # (NVIDIA/TensorRT-LLM#10278). HBM: 7.7 TB/s, NVIDIA's Blackwell datasheet (ai-dynamo/aiconfigurator#1246),
        # not the HGX page's 64 TB/s over 8: the driver reports a 7680-bit bus at 3996 MHz, 7.67 TB/s (pytorch/ao#4002).
        GPU("b200", "B200 180GB", 2250, 4500, 183359, 7.7, 1000,
            ("NVIDIA B200",), ("B200-180GB", "B200"), NVSWITCH, 800, 5, (("bf16", 0.776), ("fp8", 0.763)),
            family="blackwell", fp4_tflops=9000,
            nvlink_gen=5, nvlink_domain=8),
        # GB200: GB200 NVL72 (nvidia.com/en-us/data-center/gb200-nvl72): 72 GPUs, FP4 1,440 PF, FP8 720 PF,
        # BF16 360 PF sparse, 576 TB/s HBM3e, NVLink 5 (130 TB/s, 1.8 TB/s per GPU) across all 72; nvidia-smi
        # "NVIDIA GB200", 189471 MiB, 1200 W.
        GPU("gb200", "GB200 192GB", 2500, 5000, 189471, 8.0, 1200,
            ("NVIDIA GB200",), ("GB200-192GB", "GB200", "GB200 NVL72"), NVSWITCH, 800, 5,
            (("bf16", 0.729), ("fp8", 0.723)), family="blackwell",
            fp4_tflops=10000, nvlink_gen=5, nvlink_domain=72),
        # B300: HGX B300 (nvidia.com/en-us/data-center/hgx): FP4 144 PF sparse / 108 PF dense, FP8 72 PF and
        # BF16 36 PF sparse, 8 TB/s and 288 GB HBM3e per GPU, NVLink 5 at 1.8 TB/s, 8 GPUs per domain, PCIe Gen6;
        # nvidia-smi "NVIDIA B300 SXM6 AC", 275040 MiB, 1100 W.
        GPU("b300", "B300 288GB", 2250, 4500, 275040, 8.0, 1100,
            ("NVIDIA B300 SXM6 AC",), ("B300-288GB", "B300", "B300 SXM6"), NVSWITCH, 800, 6,
            (("bf16", 0.786), ("fp8", 0.745)), family="blackwell",
            fp4_tflops=13500, nvlink_gen=5, nvlink_domain=8),
        # GB300: GB300 NVL72 (nvidia.com/en-us/data-center/gb300-nvl72): 72 GPUs, FP4 1,440 PF sparse / 1,080 PF
        # dense, FP8 720 PF and BF16 360 PF sparse, 576 TB/s, 288 GB per GPU, NVLink 5 across all 72; nvidia-smi
        # "NVIDIA GB300", 284208 MiB, 1400 W.
        GPU("gb300", "GB300 288GB", 2500, 5000, 284208, 8.0, 1400,
            ("NVIDIA GB300",), ("GB300-288GB", "GB300", "GB300 NVL72"), NVSWITCH, 800, 6, family="blackwell",
            fp4_tflops=15000, nvlink_gen=5, nvlink_domain=72),
        # RTX PRO 6000 Blackwell Server Edition (its datasheet, nvidia.com/en-us/data-center/rtx-pro-6000-blackwell-
        # server-edition): 96 GB GDDR7 at 1,597 GB/s, 4 PFLOPS FP4 with sparsity (2,000 dense; FP8 and BF16 at
        # half and a quarter of FP4, Blackwell's tensor-core ratio), 600 W, PCIe Gen5, no NVLink; 97887 MiB.
        GPU("rtx-pro-6000-bse", "RTX PRO 6000 Blackwell Server Edition", 500, 1000, 97887, 1.597, 600,
            ("NVIDIA RTX PRO 6000 Blackwell Server Edition",), ("RTX-PRO-6000-BSE", "RTX PRO 6000 Server"),
            pcie_gen=5, family="blackwell", fp4_tflops=2000),
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
