"""Blackwell GPUs and `precision: nvfp4`: the catalog against NVIDIA's datasheets, NVFP4 weights worked by hand."""

from __future__ import annotations

import json

import pytest

from trtbench.backends.trtllm.validate import label_problems
from trtbench.catalog.gpus import resolve_gpu
from trtbench.catalog.models import PRESETS
from trtbench.deployment import Sizing, make_deployment, sizing_of
from trtbench.errors import SpecError
from trtbench.precision import KvDtype, Precision, default_kv
from trtbench.sim import calibration
from trtbench.sim.heuristics import engine_gib
from trtbench.sim.memory import weights_bytes_per_rank

# Per GPU, typed from NVIDIA's pages (rates: dense TFLOPS, the sparse figure halved where only it is given; rack and
# HGX totals divided by their GPUs) and nvidia-smi's device total (MiB) from public logs:
# B200: HGX B200, nvidia.com/en-us/data-center/hgx: 8 GPUs, FP4 144 PF sparse, FP8 72 PF, BF16 36 PF sparse,
#   NVLink 5, NVSwitch; 183359 MiB (NVIDIA/TensorRT-LLM#10278). HBM 7.7 TB/s from NVIDIA's Blackwell datasheet (the
#   HGX page's 64 TB/s over 8 GPUs rounds up): the driver's 7680-bit bus x 3996 MHz x 2 / 8 = 7.67 TB/s.
# GB200: GB200 NVL72, nvidia.com/en-us/data-center/gb200-nvl72: 72 GPUs, FP4 1,440 PF, FP8 720 PF, BF16 360 PF
#   sparse, 576 TB/s, NVLink 5 domain of 72; 189471 MiB.
# B300: HGX B300: FP4 108 PF dense, FP8 72 PF and BF16 36 PF sparse, 8 TB/s per GPU, NVLink 5; 275040 MiB.
# GB300: GB300 NVL72, nvidia.com/en-us/data-center/gb300-nvl72: FP4 1,080 PF dense, FP8 720 PF and BF16 360 PF
#   sparse, 576 TB/s, NVLink 5 domain of 72; 284208 MiB.
# RTX PRO 6000 Blackwell Server Edition datasheet: 4 PFLOPS FP4 sparse, 1,597 GB/s GDDR7, PCIe, no NVLink; 97887 MiB.
DATASHEET = {  # id: (names, FP4, FP8, BF16 TFLOPS, TB/s, MiB, NVLink generation, NVLink domain)
    "b200": (("B200 180GB", "NVIDIA B200", "b200"), 144_000 / 8 / 2, 72_000 / 8 / 2, 36_000 / 8 / 2, 7.7,
             183359, 5, 8),
    "gb200": (("GB200 192GB", "NVIDIA GB200", "gb200"), 1_440_000 / 72 / 2, 720_000 / 72 / 2, 360_000 / 72 / 2,
              576 / 72, 189471, 5, 72),
    "b300": (("B300 288GB", "NVIDIA B300 SXM6 AC", "b300"), 108_000 / 8, 72_000 / 8 / 2, 36_000 / 8 / 2, 8.0,
             275040, 5, 8),
    "gb300": (("GB300 288GB", "NVIDIA GB300", "gb300"), 1_080_000 / 72, 720_000 / 72 / 2, 360_000 / 72 / 2,
              576 / 72, 284208, 5, 72),
    "rtx-pro-6000-bse": (("NVIDIA RTX PRO 6000 Blackwell Server Edition", "RTX PRO 6000 Blackwell Server Edition"),
                         4000 / 2, 4000 / 4, 4000 / 8, 1.597, 97887, 0, 0),
}


@pytest.mark.parametrize("gpu_id", DATASHEET)
def test_each_blackwell_gpu_resolves_and_matches_its_datasheet(gpu_id):
    names, fp4, fp8, bf16, tb_s, mib, gen, domain = DATASHEET[gpu_id]
    for name in names:
        assert resolve_gpu(name).id == gpu_id
    gpu = resolve_gpu(gpu_id)
    assert (gpu.fp4_tflops, gpu.fp8_tflops, gpu.bf16_tflops) == (fp4, fp8, bf16)
    assert (gpu.hbm_tb_s, gpu.mem_total_mib, gpu.nvlink_gen, gpu.nvlink_domain) == (tb_s, mib, gen, domain)
    assert gpu.family == "blackwell" and gpu.peak_flops("nvfp4") == fp4 * 1e12


def test_nvfp4_weights_of_llama_8b_by_hand():
    """Llama-3.1-8B: 8,030,261,248 parameters, of them the embedding and lm_head 2 x 128,256 x 4,096 = 1,050,673,152
    kept 16-bit (2,101,346,304 B); the other 6,979,588,096 at 4 bits plus an FP8 scale per 16, 9/16 B:
    3,926,018,304 B. 6,027,364,608 B on one GPU; the KV cache FP8 unless told."""
    dep = make_deployment("meta-llama/Llama-3.1-8B", "B200 180GB", "nvfp4")
    assert weights_bytes_per_rank(dep) == 6_027_364_608
    assert dep.kv_dtype_bytes == 1 and default_kv(Precision.NVFP4) is KvDtype.FP8


def test_trtllm_bench_sizes_an_nvfp4_checkpoint_by_its_elements():
    """tuning.py: safetensors elements x BYTES_PER_ELEM[NVFP4] = 0.5. The 6,979,588,096 quantized weights are
    3,489,794,048 U8 packs and 436,224,256 FP8 scales, the 1,050,673,152 kept weights one BF16 element each:
    4,976,691,456 elements x 0.5 = 2,488,345,728 B = 2.3175 GiB."""
    assert engine_gib(PRESETS["Llama-3.1-8B"], Precision.NVFP4) == pytest.approx(2_488_345_728 / 2**30)


def test_from_1_3_rc14_trtllm_bench_sizes_a_checkpoint_by_its_bytes():
    """NVIDIA/TensorRT-LLM#13498 (its DeepSeek-V3.2-NVFP4: 183.70 GB by elements, 386.54 by bytes, 2.10x): each
    tensor at its dtype's width, as the checkpoint holds it, so the same 8B checkpoint is the 6,027,364,608 B
    worked above (2.42x its element estimate), and an FP8 one 6,979,588,096 x 1 + 1,050,673,152 x 2 =
    9,080,934,400 B where elements x 1 gave 8,030,261,248. From that release a point's limits use it."""
    arch = PRESETS["Llama-3.1-8B"]
    assert engine_gib(arch, Precision.NVFP4, Sizing.BYTES) == pytest.approx(6_027_364_608 / 2**30)
    assert engine_gib(arch, Precision.FP8, Sizing.BYTES) == pytest.approx(9_080_934_400 / 2**30)
    assert engine_gib(arch, Precision.FP8) == pytest.approx(8_030_261_248 / 2**30)
    assert [sizing_of(v) for v in ("1.2.0", "1.3.0rc13", "1.3.0rc14", "1.3.0rc22", "1.3.0rc23", "1.3", "1.4.0rc1",
                                   None)] == [Sizing.ELEMENTS, Sizing.ELEMENTS, Sizing.BYTES, Sizing.BYTES,
                                              Sizing.MLA, Sizing.MLA, Sizing.MLA, Sizing.MLA]
    assert make_deployment("meta-llama/Llama-3.1-8B", "b200", "nvfp4", release="1.3.0rc14").sizing is Sizing.BYTES


def test_nvfp4_before_blackwell_is_refused_in_one_line(cli):
    with pytest.raises(SpecError, match=r"precision: nvfp4 needs FP4 tensor cores \(Blackwell\); the H100 SXM 80GB "
                                        r"\(hopper\) has none"):
        make_deployment("meta-llama/Llama-3.1-8B", "h100-sxm", "nvfp4")
    result = cli("predict", "--gpu", "h100-sxm", "--precision", "nvfp4", "--isl", "128", "--osl", "128",
                 "--requests", "10")
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1 and "nvfp4" in result.err


def test_a_b200_nvfp4_prediction_runs_outside_the_calibration(cli):
    result = cli("predict", "--gpu", "B200 180GB", "--model", "meta-llama/Llama-3.1-8B", "--precision", "nvfp4",
                 "--isl", "1024", "--osl", "1024", "--requests", "1000", "--json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["gpu"] == "b200" and data["status"] == "ok" and data["metrics"]["output_tok_per_s"] > 0
    cover = calibration.coverage(make_deployment("meta-llama/Llama-3.1-8B", "b200", "nvfp4"))
    assert not cover.calibrated and len(cover.outside) == 1
    assert cover.outside[0].startswith("no calibration rows for Llama-3.1-8B")  # NVFP4 on B200 itself has rows
    # The deployment NVIDIA's NVFP4 rows ran is inside: its weights were fitted, not borrowed from FP8.
    assert calibration.coverage(make_deployment("meta-llama/Llama-3.1-405B", "b200", "nvfp4", tp=8)).calibrated


@pytest.mark.parametrize("gpu", ["gb200", "b300", "gb300", "rtx-pro-6000-bse"])
def test_predict_accepts_every_blackwell_gpu_with_nvfp4(cli, gpu):
    result = cli("predict", "--gpu", gpu, "--precision", "nvfp4", "--isl", "128", "--osl", "128", "--requests", "100",
                 "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["status"] == "ok"


def test_an_nvfp4_report_fits_the_nvfp4_label():
    info = {"quantization": "NVFP4", "kv_cache_dtype": "FP8"}
    assert label_problems(Precision.NVFP4, KvDtype.FP8, info) == []
    assert label_problems(Precision.FP8, KvDtype.FP8, info) == [
        "the report says quantization NVFP4, the point is labelled FP8 weights"]
