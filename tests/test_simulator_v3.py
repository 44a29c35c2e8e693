"""Simulator v3: the physics the step model gained (all-reduce by message size and topology, GEMM cost by
per-rank shape, explicit non-KV memory), the names NVIDIA's tables and NVML use, and honesty about
what the calibration covers. Expected values come from the public figures the docstrings cite."""

from __future__ import annotations

import json

import pytest

from trtbench.catalog.gpus import Interconnect, resolve_gpu
from trtbench.deployment import make_deployment
from trtbench.sim import calibration
from trtbench.sim.comm import allreduce_s
from trtbench.sim.memory import graph_batch_sizes, plan_memory
from trtbench.sim.steptime import shape_efficiency
from trtbench.sim.table import predict, regime
from trtbench.spec import RuntimeSpec

H100 = resolve_gpu("h100-sxm")


def _busbw_gb_s(gpu, ranks: int, size: float) -> float:
    """nccl-tests' bus bandwidth of one all-reduce: 2(n-1)/n x size / time."""
    return 2 * (ranks - 1) / ranks * size / allreduce_s(gpu, ranks, size) / 1e9


@pytest.mark.parametrize(("size", "low", "high"), [
    (2e6, 100, 135), (8e6, 210, 330), (16e6, 210, 350), (128e6, 400, 520),  # H100 SXM, nccl-tests (NVLS)
])
def test_nvswitch_all_reduce_bandwidth_follows_the_public_curve(size, low, high):
    assert low <= _busbw_gb_s(H100, 8, size) <= high


def test_a_one_token_all_reduce_costs_the_custom_kernels_floor():
    assert 3e-6 <= allreduce_s(H100, 8, 8192 * 2) <= 4e-6  # one decode token of a 70B: 16 KB
    assert allreduce_s(H100, 1, 1e9) == 0.0  # one GPU: nothing to reduce


def test_pcie_boxes_pay_for_leaving_the_nvlink_pairs():
    pcie, sxm = resolve_gpu("A100-PCIE-80GB"), resolve_gpu("A100-SXM4-80GB")
    assert pcie.interconnect is Interconnect.NVLINK_PAIRS and sxm.interconnect is Interconnect.NVSWITCH
    message = 4e6  # a decode batch of 256 tokens of a 70B
    # TP2 stays on the bridge; TP4 crosses PCIe peer to peer: 25 us + 2 x 3/4 x (4 + 1) MB / 25 GB/s = 325 us
    assert allreduce_s(pcie, 2, message) < 50e-6
    assert allreduce_s(pcie, 4, message) == pytest.approx(25e-6 + 1.5 * 5e6 / 25e9)
    assert allreduce_s(pcie, 4, message) > 5 * allreduce_s(sxm, 4, message)  # 325 us vs 55 us
    l40s = resolve_gpu("L40S")  # PCIe only, Gen4: the ring slows as it crosses sockets
    assert allreduce_s(l40s, 2, message) < allreduce_s(l40s, 4, message) < allreduce_s(l40s, 8, message)


def test_tp8_on_a_pcie_box_is_no_better_than_tp4_when_communication_dominates():
    def rate(gpu: str, tp: int) -> float:
        dep = make_deployment("meta-llama/Llama-3.1-70B", gpu, "fp8", tp=tp,
                              runtime=RuntimeSpec(kv_cache_free_gpu_mem_fraction=0.95))
        return predict(dep, 128, 2048, 3000).metrics.output_tok_per_s

    assert rate("l40s", 8) < 1.3 * rate("l40s", 4)
    assert rate("h100-sxm", 8) > 1.3 * rate("h100-sxm", 4)  # NVSwitch: TP8 still pays


def test_narrow_tp_slices_reach_less_of_the_gemm_peak():
    # N / (N + 1024) of the best-shape rate (70.9% of peak on H100 FP8): 35% of peak at 1k columns,
    # 57% at 4k, 63% at 8k: inside the public 25-50% (TP8 slices) and 60-72% (large shapes)
    assert shape_efficiency(1024) == pytest.approx(0.5)
    assert 0.25 <= 0.709 * shape_efficiency(1024) <= 0.50
    assert 0.60 <= 0.709 * shape_efficiency(8192) <= 0.72
    assert H100.best_gemm_fraction("fp8") == 0.709 and H100.best_gemm_fraction("bf16") == 0.803
    assert resolve_gpu("A100-SXM4-80GB").best_gemm_fraction("fp8") == 0.869  # no FP8: its BF16 figure


def test_blackwell_gemm_rates_are_their_own_measurements():
    # ml-engineering's MAMF table: B200 BF16 1745.0 of 2250, FP8 3432.5 of 4500; GB200 FP8 3615.6 of 5000
    b200 = resolve_gpu("B200 180GB")
    assert b200.best_gemm_fraction("bf16") == pytest.approx(1745.0 / 2250, abs=1e-3)
    assert b200.best_gemm_fraction("fp8") == pytest.approx(3432.5 / 4500, abs=1e-3)
    assert resolve_gpu("GB200 192GB").best_gemm_fraction("fp8") == pytest.approx(3615.6 / 5000, abs=1e-3)
    # RTX PRO 6000 has no MAMF of its own: B200's, not Hopper's 0.709
    assert resolve_gpu("RTX PRO 6000 Blackwell Server Edition").best_gemm_fraction("fp8") == pytest.approx(0.763)
    # NVFP4: 3,904 TFLOP/s where FP8 reaches 2,545 at the same shape on B200 (vLLM's kernel benchmarks), so
    # 0.763 x 1.534 / 2 = 58.5% of the 9 PFLOPS FP4 peak: 5.27 PFLOPS at best shape, 1.53x FP8's 3.43
    assert b200.best_gemm_fraction("nvfp4") == pytest.approx(0.5852, abs=1e-3)
    assert b200.peak_flops("nvfp4") * b200.best_gemm_fraction("nvfp4") == pytest.approx(5.267e15, rel=1e-3)


def test_cuda_graph_sizes_are_trtllm_benchs_with_padding():
    assert graph_batch_sizes(2048) == [1, 2, 4, *range(8, 129, 8), 256, 512, 1024, 2048]
    assert graph_batch_sizes(256) == [1, 2, 4, *range(8, 129, 8), 256]
    assert graph_batch_sizes(100) == [1, 2, 4, *range(8, 97, 8), 100]


def test_non_kv_memory_is_context_graphs_and_communication_buffers():
    one = plan_memory(make_deployment("meta-llama/Llama-3.1-8B", "h100-sxm", "fp8",
                                      runtime=RuntimeSpec(max_batch_size=256, max_num_tokens=8192)), 1024, 1024)
    two = plan_memory(make_deployment("meta-llama/Llama-3.1-8B", "h100-sxm", "fp8", tp=2,
                                      runtime=RuntimeSpec(max_batch_size=256, max_num_tokens=8192)), 1024, 1024)
    assert one.overhead_gib == pytest.approx(1.0 + 20 * 60 / 1024)  # 20 graphs for batch sizes up to 256
    assert two.overhead_gib == pytest.approx(1.0 + 20 * 60 / 1024 + 0.36)


@pytest.mark.parametrize(("name", "gpu_id"), [
    ("GH200 96GB HBM3 CG1", "gh200"), ("GH200 120GB", "gh200"), ("GH200 480GB", "gh200"),
    ("NVIDIA GH200 480GB", "gh200"), ("A100-SXM4-80GB", "a100-sxm-80gb"), ("A100-PCIE-80GB", "a100-pcie-80gb"),
    ("L40S", "l40s"), ("H100 SXM", "h100-sxm"), ("H200 SXM 141GB", "h200-sxm"), ("NVIDIA H100 NVL", "h100-nvl"),
])
def test_names_from_nvidias_tables_and_nvml_resolve(name, gpu_id):
    assert resolve_gpu(name).id == gpu_id


def test_regimes():
    assert (regime(2048, 128), regime(128, 2048), regime(1000, 2000), regime(500, 2000)) == (
        "prefill-heavy", "decode-heavy", "mixed", "decode-heavy")


INFO = {"cv": {"groups": {"tp": ["1", "2", "4", "8"], "gpu": ["h100-sxm", "h200-sxm"]},
               "by_tp": {"1": 4.1, "2": 6.0, "4": 3.7, "8": 7.9}},
        "mape_pct": 4.9, "release_factors": {"0.19": 0.975, "0.21": 0.968, "1.0": 1.019}}


def test_a_release_runs_at_its_own_speed_and_one_without_rows_borrows_the_nearest():
    assert calibration.release_factor("0.21", INFO) == (0.968, None)
    assert calibration.release_factor(None, INFO) == (1.0, None)  # unstated: the physics fit's average
    borrowed = (0.975, "release 0.17 has no calibration rows (used 0.19's speed)")
    assert calibration.release_factor("0.17", INFO) == borrowed
    assert calibration.release_factor("1.2", INFO)[0] == 1.019
    d = make_deployment("meta-llama/Llama-3.1-8B", "h200-sxm", "fp8", release="v0.21.0")
    assert d.release == "0.21"
    assert make_deployment("meta-llama/Llama-3.1-8B", "h200-sxm", "fp8", release="1.0 (doc revision)").release == "1.0"
    # the same point is 1.019 / 0.968 faster on 1.0 than on 0.21 (every iteration scales)
    from trtbench.sim.ifb import IfbModel

    factors = calibration.load()[0]
    model = IfbModel(factors, INFO)
    rate = {r: predict(make_deployment("meta-llama/Llama-3.1-8B", "h200-sxm", "fp8", release=r), 1000, 1000, 3000,
                       model).metrics.output_tok_per_s for r in ("0.21", "1.0")}
    assert rate["1.0"] / rate["0.21"] == pytest.approx(1.019 / 0.968)
    outside = calibration.coverage(make_deployment("meta-llama/Llama-3.1-8B", "h200-sxm", "fp8", release="0.17"), INFO)
    assert outside.outside == ("release 0.17 has no calibration rows (used 0.19's speed)",)


def test_coverage_says_when_a_deployment_is_outside_the_calibration():
    inside = calibration.coverage(make_deployment("meta-llama/Llama-3.1-70B", "h200-sxm", "fp8", tp=4), INFO)
    assert inside.calibrated and inside.expected_error_pct == 3.7 and inside.outside == ()
    l40s = calibration.coverage(make_deployment("meta-llama/Llama-3.1-8B", "l40s", "bf16", tp=2), INFO)
    assert not l40s.calibrated and l40s.expected_error_pct is None and l40s.lower_bound
    assert any("no calibration rows for L40S 48GB (ada" in r for r in l40s.outside)
    assert any("bf16 weights" in r for r in l40s.outside)
    gh200 = calibration.coverage(make_deployment("meta-llama/Llama-3.1-8B", "gh200", "fp8", tp=2), INFO)
    assert any("connect is unknown" in r for r in gh200.outside)
    tp16 = calibration.coverage(make_deployment("meta-llama/Llama-3.1-70B", "h100-sxm", "fp8", tp=16), INFO)
    assert tp16.outside == ("TP16 (fitted on TP 1, 2, 4, 8)",)


def test_predict_json_states_the_calibration_and_its_coverage(cli):
    inside = cli("predict", "--gpu", "h200-sxm", "--model", "meta-llama/Llama-3.1-70B", "--tp", "4", "--isl", "128",
                 "--osl", "2048", "--requests", "3000", "--json")
    assert inside.code == 0, inside.err
    cal = json.loads(inside.out)["calibration"]
    committed = calibration.load()[1]
    assert cal["fitted_on"] == committed["fitted_on"] and cal["fit_mape_pct"] == committed["mape_pct"]
    # the error stated is one of its groups' held out of the fit, never the fit's own: the groups of the dense rows,
    # which a dense FP8 deployment is judged on
    cv = committed["cv"]["by_kind"]["dense"]
    assert cal["calibrated"] is True and cal["expected_error_pct"] == cal["error_pct"] and not cal["lower_bound"]
    assert cal["error_pct"] in (cv["by_tp"]["4"], cv["by_gpu"]["h200-sxm"], cv["by_model"]["70B"])
    outside = cli("predict", "--gpu", "A100-PCIE-80GB", "--model", "meta-llama/Llama-3.1-8B", "--precision", "bf16",
                  "--tp", "4", "--isl", "128", "--osl", "2048", "--requests", "3000", "--json")
    data = json.loads(outside.out)
    assert data["status"] == "ok" and data["metrics"]["output_tok_per_s"] > 0
    assert data["calibration"]["calibrated"] is False and data["calibration"]["expected_error_pct"] is None
    assert data["calibration"]["lower_bound"] is True and data["calibration"]["error_pct"] > 0
    assert any("A100 PCIe 80GB" in r for r in data["calibration"]["outside"])


def test_a_simulated_report_says_whether_the_sweep_is_inside_the_calibration(cli, write_spec, tmp_path):
    from tests.conftest import SMALL_SPEC

    assert cli("sweep", "--no-plots", str(write_spec(SMALL_SPEC))).code == 0
    report = " ".join((tmp_path / "runs" / "tiny" / "report.md").read_text().split())
    assert "This sweep is inside its calibration: out-of-sample error about" in report  # H100 SXM, FP8, TP1
    assert "expect an error of about" not in report
    # a GPU no calibration table has (the MoE/Blackwell table brought L40S, A100 SXM, GH200 and B200 rows in)
    l4 = SMALL_SPEC.replace("gpu: h100-sxm", "gpu: l4").replace("name: tiny", "name: l4")
    assert cli("sweep", "--no-plots", str(write_spec(l4))).code == 0
    report = " ".join((tmp_path / "runs" / "l4" / "report.md").read_text().split())
    assert "outside the calibration**: no calibration rows for L4 24GB" in report


def test_predict_takes_the_release_and_refuses_one_that_is_not_a_version(cli):
    ok = cli("predict", "--gpu", "h200-sxm", "--release", "v1.0.0", "--isl", "128", "--osl", "128", "--requests", "100",
             "--json")
    assert ok.code == 0, ok.err
    assert json.loads(ok.out)["release"] == "1.0"
    bad = cli("predict", "--gpu", "h200-sxm", "--release", "banana", "--isl", "128", "--osl", "128", "--requests", "1")
    assert bad.code == 2 and "--release 'banana' is not a TensorRT-LLM version" in bad.err


def test_the_memory_model_against_a_public_trtllm_bench_log():
    """NVIDIA/TensorRT-LLM#6294 (v0.20, H100 80GB, Llama-3.1-8B FP8 with FP8 KV, fraction 0.8): "max_num_requests=
    4096, max_num_tokens=23552", "Allocated 52.51 GiB for max tokens in paged KV cache (860320)", "Creating CUDA
    graph instances for 24 batch sizes"."""
    d = make_deployment("meta-llama/Llama-3.1-8B", "h100-sxm", "fp8", runtime=RuntimeSpec(
        kv_cache_free_gpu_mem_fraction=0.8, max_batch_size=4096, max_num_tokens=23552))
    plan = plan_memory(d, 128, 29)  # the log's max_seq_len 157
    assert len(graph_batch_sizes(4096)) == 24
    assert plan.kv_pool_gib == pytest.approx(52.51, rel=0.03)
    assert plan.kv_tokens == pytest.approx(860320, rel=0.03)
