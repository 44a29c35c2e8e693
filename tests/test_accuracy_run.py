"""`trtbench accuracy run SPEC`: trtllm-eval (the faithful fake in tests/fakes) on each artifact of an FP8-vs-BF16
sweep, the gate against the BF16 reference, and the report that keeps a failing artifact out of every ranking."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import TRTLLM_SPEC
from trtbench.accuracy.gate import Gate, verdicts
from trtbench.accuracy.records import AccuracyRecord, Artifact
from trtbench.backends.trtllm.evaluate import parse_scores
from trtbench.precision import KvDtype, Precision
from trtbench.records import Status
from trtbench.spec import AccuracySpec


def _datasets(tmp_path: Path) -> tuple[Path, Path]:
    cnn, mmlu = tmp_path / "data" / "cnn_dailymail", tmp_path / "data" / "mmlu"
    cnn.mkdir(parents=True)
    (mmlu / "dev").mkdir(parents=True)
    (mmlu / "dev" / "abstract_algebra_dev.csv").write_text("What is 1+1?,1,2,3,4,B\n")
    return cnn, mmlu


def _spec(tmp_path: Path, extra: str = "") -> str:
    cnn, mmlu = _datasets(tmp_path)
    return (TRTLLM_SPEC.replace("precision: fp8\n", "").replace("grid:\n", "grid:\n  precision: [fp8, bf16]\n")
            .replace("isl: [128, 2048]", "isl: [128]").replace("osl: [128, 1024]", "osl: [128]")
            + f"accuracy:\n  samples: 57\n  datasets: {{cnn_dailymail: {cnn}, mmlu: {mmlu}}}\n" + extra)


@pytest.fixture
def fake_eval(fake_bench, tmp_path, monkeypatch):
    record = tmp_path / "eval-record.jsonl"
    monkeypatch.setenv("FAKE_EVAL_RECORD", str(record))
    monkeypatch.delenv("FAKE_EVAL_FAIL", raising=False)
    # The FP8 checkpoint loses 2.5 ROUGE-1 points: below 0.99 x the BF16 reference's 38.512 = 38.127
    monkeypatch.setenv("FAKE_EVAL_SCORES", json.dumps({"FP8": {"rouge1": 36.0, "accuracy": 68.1}}))
    return lambda: [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []


def test_an_fp8_artifact_that_fails_the_gate_is_kept_out_of_every_ranking(cli, write_spec, tmp_path, fake_eval):
    spec = write_spec(_spec(tmp_path))
    assert cli("sweep", "--no-plots", str(spec)).code == 0
    result = cli("accuracy", "run", str(spec))
    assert result.code == 1, result.err  # a gate failed: CI stops here
    runs = fake_eval()
    assert sorted((r["model"], r["task"]) for r in runs) == [
        ("meta-llama/Llama-3.1-8B", "cnn_dailymail"), ("meta-llama/Llama-3.1-8B", "mmlu"),
        ("nvidia/Llama-3.1-8B-FP8", "cnn_dailymail"), ("nvidia/Llama-3.1-8B-FP8", "mmlu")]
    for run in runs:  # trtllm-eval's own spelling, and the spec's sample count
        argv = run["argv"]
        assert "--kv_cache_free_gpu_memory_fraction" in argv and argv[argv.index("--num_samples") + 1] == "57"
    err = " ".join((result.out + result.err).split())  # the verdict table is on stdout, progress on stderr
    assert "FAIL" in err and "cnn_dailymail rouge1 36.00 < 0.99 x 38.51 = 38.13" in err

    report = (tmp_path / "runs" / "tiny" / "report.md").read_text()
    top = report.split("## Top 10")[1].split("\n## ")[0]
    assert "| fp8 |" not in top and "| bf16 |" in top and "reference" in top
    gate = report.split("## Accuracy Gate")[1].split("\n## ")[0]
    # 36.000 - 38.512 = -2.512; MMLU 68.10 - 68.30 = -0.20
    assert "cnn_dailymail rouge1 36.00 (-2.51)" in gate and "mmlu accuracy 68.10 (-0.20)" in gate
    assert "Excluded from every ranking" in gate and "| fp8 | 128 | 128 |" in gate
    df = pd.read_csv(tmp_path / "runs" / "tiny" / "results.csv")
    assert dict(zip(df["precision"], df["accuracy"], strict=True)) == {"fp8": "FAIL", "bf16": "reference"}

    again = cli("accuracy", "run", str(spec))  # resumed: every task already scored, nothing runs again
    assert again.code == 1 and len(fake_eval()) == 4 and "0 to run" in " ".join(again.err.split())


def test_failed_evaluations_are_recorded_and_leave_the_gate_unchecked(cli, write_spec, tmp_path, fake_eval,
                                                                      monkeypatch):
    spec = write_spec(_spec(tmp_path))
    for fail, status, said in (("oom", Status.OOM, "CUDA out of memory"), ("crash", Status.CRASH, "SIGSEGV")):
        monkeypatch.setenv("FAKE_EVAL_FAIL", fail)
        result = cli("accuracy", "run", str(spec))
        assert result.code == 1, result.err
        lines = [json.loads(x) for x in (tmp_path / "runs" / "tiny" / "accuracy.jsonl").read_text().splitlines()]
        assert {(r["status"], said in r["cause"]) for r in lines[-4:]} == {(status.value, True)}
        assert "not checked" in result.out  # the verdict table
    monkeypatch.delenv("FAKE_EVAL_FAIL")
    (tmp_path / "data" / "mmlu" / "dev" / "abstract_algebra_dev.csv").unlink()  # the dataset is not there
    result = cli("accuracy", "run", str(spec))
    lines = [json.loads(x) for x in (tmp_path / "runs" / "tiny" / "accuracy.jsonl").read_text().splitlines()]
    mmlu = [r for r in lines[-4:] if r["task"] == "mmlu"]
    assert mmlu and all(r["status"] == "error" and "abstract_algebra_dev.csv" in r["cause"] for r in mmlu)
    assert all(r["status"] == "ok" for r in lines[-4:] if r["task"] == "cnn_dailymail")


def test_accuracy_run_refuses_what_it_cannot_do(cli, write_spec, tmp_path):
    sim = _spec(tmp_path).replace("backend: trtllm", "backend: sim")
    result = cli("accuracy", "run", str(write_spec(sim)))
    assert result.code == 2 and "cannot run trtllm-eval" in result.err and len(result.err.splitlines()) == 1
    plain = cli("accuracy", "run", str(write_spec(TRTLLM_SPEC, "plain.yaml")))
    assert plain.code == 2 and "no accuracy: section" in plain.err
    only_fp8 = _spec(tmp_path / "x").replace("  precision: [fp8, bf16]\n", "").replace("grid:",
                                                                                     "precision: fp8\ngrid:")
    refused = cli("accuracy", "run", str(write_spec(only_fp8, "fp8.yaml")))
    assert refused.code == 2 and "accuracy.reference: bf16 is not a precision of this sweep" in refused.err


def _record(precision: str, task: str, scores: dict[str, float], status: Status = Status.OK) -> AccuracyRecord:
    artifact = Artifact(precision=Precision(precision), kv_cache_dtype=KvDtype.FP8, tp=1, pp=1)
    return AccuracyRecord(artifact=artifact, task=task, samples=100, status=status, scores=scores, model="m",
                          trtllm_version="1.1.0", command=[], log="l", wall_s=1.0, finished_at="t")


def test_the_gate_by_hand():
    """0.99 x 40.00 = 39.60: a candidate at exactly 39.60 passes, one at 39.59 fails; MMLU 70 x 0.99 = 69.3."""
    acc = AccuracySpec(tasks=["cnn_dailymail", "mmlu"], datasets={"cnn_dailymail": "/d", "mmlu": "/m"})
    ref = [_record("bf16", "cnn_dailymail", {"rouge1": 40.0, "rouge2": 20.0}),
           _record("bf16", "mmlu", {"accuracy": 70.0})]
    at_line = [_record("fp8", "cnn_dailymail", {"rouge1": 39.6, "rouge2": 19.8}), _record("fp8", "mmlu",
                                                                                           {"accuracy": 69.3})]
    below = [_record("fp16", "cnn_dailymail", {"rouge1": 39.59, "rouge2": 20.5}),
             _record("fp16", "mmlu", {"accuracy": 71.0})]
    failed_run = [_record("fp8", "cnn_dailymail", {}, Status.OOM)]
    artifacts = {r.artifact for r in ref + at_line + below}
    got = verdicts(ref + at_line + below, acc, artifacts)
    gates = {a.precision.value: v.gate for a, v in got.items()}
    assert gates == {"bf16": Gate.REFERENCE, "fp8": Gate.PASS, "fp16": Gate.FAIL}
    fp16 = next(v for a, v in got.items() if a.precision is Precision.FP16)
    assert fp16.reasons == ("cnn_dailymail rouge1 39.59 < 0.99 x 40.00 = 39.60",)
    assert fp16.deltas["mmlu"]["accuracy"] == pytest.approx(1.0)
    later = verdicts(ref + at_line + failed_run, acc, artifacts)  # the latest record of a key wins only in load()
    assert {v.gate for a, v in later.items() if a.precision is Precision.FP8} == {Gate.UNKNOWN}
    assert verdicts(at_line, acc, {at_line[0].artifact})[at_line[0].artifact].gate is Gate.UNKNOWN  # no reference


def test_scores_are_read_as_trtllm_eval_logs_them():
    """Lines as cnn_dailymail.py and mmlu.py log them; beam 1's scores are not beam 0's."""
    prefix = "[11/27/2026-10:00:00] [TRT-LLM] [I] "
    cnn = [f"{prefix}Beam 0 rouge scores:", f"{prefix}\trouge1: 38.123", f"{prefix}\trouge2: 15.2",
           f"{prefix}\trougeL: 24.5", f"{prefix}\trougeLsum: 35.01", f"{prefix}Beam 1 rouge scores:",
           f"{prefix}\trouge1: 1.0"]
    assert parse_scores(cnn, "cnn_dailymail") == ({"rouge1": 38.123, "rouge2": 15.2, "rougeL": 24.5,
                                                   "rougeLsum": 35.01}, None)
    mmlu = [f"{prefix}Average accuracy 50.00 (2) - abstract_algebra", f"{prefix}MMLU weighted average accuracy: "
            "68.12 (14042)"]
    assert parse_scores(mmlu, "mmlu") == ({"accuracy": 68.12}, 14042)
    assert parse_scores([f"{prefix}TRTLLM execution time: 93.511 seconds."], "mmlu") == ({}, None)


def test_compare_puts_the_accuracy_change_beside_the_speed_ratio(cli, write_spec, tmp_path, fake_eval):
    """A BF16 run, then an FP8 run gated against it (accuracy.reference_run): compare B = FP8 vs A = BF16."""
    both = _spec(tmp_path)
    bf16 = both.replace("name: tiny", "name: bf16").replace("  precision: [fp8, bf16]\n", "").replace(
        "grid:", "precision: bf16\ngrid:")
    fp8 = both.replace("name: tiny", "name: fp8").replace("  precision: [fp8, bf16]\n", "").replace(
        "grid:", "precision: fp8\ngrid:") + "  reference_run: runs/bf16\n"
    for name, text, code in (("bf16", bf16, 0), ("fp8", fp8, 1)):
        spec = write_spec(text, f"{name}.yaml")
        assert cli("sweep", "--no-plots", str(spec)).code == 0
        assert cli("accuracy", "run", str(spec)).code == code
    result = cli("compare", "--no-plots", "runs/bf16", "runs/fp8")
    assert result.code == 0, result.err
    text = (tmp_path / "runs" / "compare_bf16_vs_fp8" / "compare.md").read_text()
    # ROUGE-1 36.00 (FP8) - 38.51 (BF16); MMLU 68.10 - 68.30
    assert "| cnn_dailymail | rouge1 | 38.51 | 36.00 | -2.51 |" in text
    assert "| mmlu | accuracy | 68.30 | 68.10 | -0.20 |" in text
