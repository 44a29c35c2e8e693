"""GPUs as containers, Kubernetes and MIG name them: CUDA_VISIBLE_DEVICES of GPU UUIDs (or unique prefixes)
and MIG devices, mapped onto what NVML sees (the fake in tests/fakes/site), each point given the names the
user gave; a point this machine cannot hold is left without a record, and a sweep that can place none
exits 2 before anything runs."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.conftest import SMALL_SPEC, TRTLLM_SPEC, load_fake_nvml, load_records
from trtbench.errors import TrtbenchError
from trtbench.executors.base import Task
from trtbench.executors.gpus import Gpu, node_gpus, schedule, unplaceable
from trtbench.grid import IdentityRule, expand
from trtbench.records import Status
from trtbench.spec import parse_spec
from trtbench.store import RunStore

A = "GPU-8932f937-d72c-4106-c12f-20bd9faed9f6"
B = "GPU-8932f9aa-0000-4106-c12f-20bd9faed9f6"  # shares 6 hex digits with A: "GPU-8932f9" names neither alone
C = "GPU-c0ffee00-1111-2222-3333-444444444444"
MIG_GPU = "GPU-5c89852c-d268-c3f3-1b07-005d5ae1dc3f"
MIG_NEW = "MIG-d9a47cfb-d1f2-d08c-b40e-0812b597ae69"  # how drivers from R470 name a MIG device
MIG_OLD = f"MIG-{MIG_GPU}/2/0"  # how R450 named it, and what CUDA still takes
MIG_OTHER = "MIG-11111111-2222-3333-4444-555555555555"
NODE = [A, B, C, {"uuid": MIG_GPU, "mig": [[MIG_NEW, 1, 0], [MIG_OTHER, 2, 0]]}]
TP2 = TRTLLM_SPEC.replace("isl: [128, 2048]", "isl: [128, 2048]\n  tp: [2]").replace("tp: 1\n", "")


@pytest.fixture
def nvml(monkeypatch: pytest.MonkeyPatch) -> Callable[[list], None]:
    """The fake NVML in this process (the benchmark's sees it through PYTHONPATH); `nvml(gpus)` says what it
    sees (FAKE_NVML_DEVICES)."""
    load_fake_nvml(monkeypatch)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return lambda gpus: monkeypatch.setenv("FAKE_NVML_DEVICES", json.dumps(gpus))


def _visible(monkeypatch: pytest.MonkeyPatch, value: str, wanted: str | int | list[int] = "auto") -> list[Gpu]:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", value)
    return node_gpus(wanted)


def _refused(monkeypatch: pytest.MonkeyPatch, value: str, wanted: str | int | list[int] = "auto") -> str:
    with pytest.raises(TrtbenchError) as caught:
        _visible(monkeypatch, value, wanted)
    message = str(caught.value)
    assert "\n" not in message and len(message) < 300  # one line, whatever the variable held
    return message


def test_uuids_prefixes_and_mig_devices_are_the_devices_named_as_given(nvml, monkeypatch):
    nvml(NODE)
    assert _visible(monkeypatch, f"{A},{B}") == [Gpu(A), Gpu(B)]
    assert _visible(monkeypatch, "GPU-c0ffee, GPU-8932f937") == [Gpu("GPU-c0ffee"), Gpu("GPU-8932f937")]
    assert _visible(monkeypatch, f"{MIG_NEW},{MIG_OLD}") == [Gpu(MIG_NEW, mig=True), Gpu(MIG_OLD, mig=True)]
    assert _visible(monkeypatch, f"2,{A}") == [Gpu("2"), Gpu(A)]  # indices and UUIDs mixed, in the given order
    assert _visible(monkeypatch, f"{C},{A},{B}", 2) == [Gpu(C), Gpu(A)]  # a count: the first N of those named


def test_without_cuda_visible_devices_nvml_gives_whole_gpus_by_index_and_mig_devices_by_uuid(nvml):
    nvml(NODE)
    assert node_gpus("auto") == [Gpu("0"), Gpu("1"), Gpu("2"), Gpu(MIG_NEW, mig=True), Gpu(MIG_OTHER, mig=True)]
    assert node_gpus(2) == [Gpu("0"), Gpu("1")]
    with pytest.raises(TrtbenchError, match=r"executor.gpus: 8 asks for more GPUs than NVML sees \(5\)"):
        node_gpus(8)


@pytest.mark.parametrize(("value", "said"), [
    ("GPU-deadbeef-0000-0000-0000-000000000000", "'GPU-deadbeef-0000-0000-0000-000000000000' names no device NVML "
                                                 "sees (4 GPU(s), 2 MIG device(s))"),
    ("GPU-8932f9", "'GPU-8932f9' begins 2 GPUs' UUIDs"),
    ("MIG-99999999-0000-0000-0000-000000000000", "names no device NVML sees"),
    (f"MIG-{MIG_GPU}/9/0", "names no device NVML sees"),  # a GPU instance that does not exist
    ("7", "'7' names no device NVML sees"),
    ("3", "'3' is GPU 3, in MIG mode: CUDA runs only on its MIG devices"),
    (MIG_GPU, "in MIG mode"),
    (f"0,{A}", "names one GPU twice ('0' and '" + A + "')"),
    (f"{MIG_NEW},MIG-{MIG_GPU}/1/0", "names one GPU twice"),  # one MIG device in both of its forms
    ("", "'' is not a GPU"),  # set but empty: CUDA sees no GPU
    ("-1", "'-1' is not a GPU"),
    ("0,,1", "'' is not a GPU"),
    ("gpu-8932f937", "is not a GPU"),  # CUDA wants the GPU- of nvidia-smi
    ("GPU-", "is not a GPU"),
    ("0;reboot", "is not a GPU"),
    ("GPU-8932\x1b[2J", r"'GPU-8932\x1b[2J' is not a GPU"),  # a terminal escape shown escaped
    ("٣", "is not a GPU"),  # a digit, but not one CUDA reads
    ("1" * 5000, "..."),  # cut short in the message
])
def test_an_entry_that_names_no_usable_device_is_one_line(nvml, monkeypatch, value, said):
    nvml(NODE)
    message = _refused(monkeypatch, value)
    assert message.startswith("CUDA_VISIBLE_DEVICES") and said in message


def test_executor_gpus_ids_and_counts_are_checked_as_cuda_visible_devices_is(nvml, monkeypatch):
    nvml([A, B])
    assert node_gpus([1, 0]) == [Gpu("1"), Gpu("0")]
    with pytest.raises(TrtbenchError, match=r"executor\.gpus: '2' names no device NVML sees"):
        node_gpus([0, 2])
    assert "asks for more GPUs than CUDA_VISIBLE_DEVICES names (1)" in _refused(monkeypatch, A, 2)


def test_without_nvml_the_entries_are_the_devices_counted_as_given(monkeypatch):
    # conftest hides pynvml: as on a machine whose container shows no NVML library
    assert _visible(monkeypatch, f"{A},{MIG_NEW},{MIG_OLD},3") == [Gpu(A), Gpu(MIG_NEW, mig=True),
                                                                  Gpu(MIG_OLD, mig=True), Gpu("3")]
    assert "names one GPU twice" in _refused(monkeypatch, f"{A},{A}")
    assert "is not a GPU" in _refused(monkeypatch, "")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert node_gpus(2) == [Gpu("0"), Gpu("1")]
    with pytest.raises(TrtbenchError, match="found no GPU"):
        node_gpus("auto")


def test_a_wide_point_takes_whole_gpus_and_one_gpu_points_take_mig_devices_too():
    gpus = [Gpu(MIG_NEW, mig=True), Gpu("0"), Gpu("1"), Gpu(MIG_OLD, mig=True)]
    wide, *narrow = (Task(p, gpus=g, expected_s=5 if g == 2 else 1)
                     for p, g in zip(expand(parse_spec(SMALL_SPEC), IdentityRule(())), (2, 1, 1), strict=False))
    slots = sorted((slot.task.gpus, slot.gpus, slot.start_s) for slot in schedule([*narrow, wide], gpus))
    assert slots == [(1, (0,), 0), (1, (3,), 0), (2, (1, 2), 0)]  # all three at once
    assert unplaceable(wide.gpus, gpus[1:2] + gpus[3:]) == ("needs 2 GPUs, executor gpus has 1 whole GPU(s) and 1 MIG "
                                                       "device(s), and a process sees one MIG device only")
    assert unplaceable(wide.gpus, gpus[1:3]) is None and unplaceable(narrow[0].gpus, gpus[:1]) is None
    assert unplaceable(narrow[0].gpus, []) == "needs 1 GPUs, executor gpus has 0"


def _sweep(cli, write_spec, text: str):
    return cli("sweep", "--no-plots", str(write_spec(text + "executor: {kind: gpus}\n")))


@pytest.mark.slow
def test_points_run_on_the_gpus_cuda_visible_devices_names_by_uuid(cli, write_spec, tmp_path, fake_bench, nvml,
                                                                   monkeypatch):
    nvml(NODE)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", f"{B},{A}")
    result = _sweep(cli, write_spec, TRTLLM_SPEC)
    assert result.code == 0, result.err
    records = load_records(tmp_path / "runs" / "tiny" / "results.jsonl")
    assert len(records) == 4 and all(r["status"] == "ok" for r in records)
    given = [p["gpus"] for p in fake_bench.printed()]
    # each benchmark got one of the UUIDs, as given; the first two started at once, one on each
    assert len(given) == 4 and set(given) == {A, B}


@pytest.mark.slow
def test_points_run_on_mig_devices_in_either_form_and_wider_ones_are_not_placed_on_them(
        cli, write_spec, tmp_path, fake_bench, nvml, monkeypatch):
    """CUDA shows a process one MIG device only: a TP2 point cannot use two of them."""
    nvml(NODE)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", f"{MIG_NEW},{MIG_OLD}")
    result = _sweep(cli, write_spec, TRTLLM_SPEC)
    assert result.code == 0, result.err
    assert {p["gpus"] for p in fake_bench.printed()} == {MIG_NEW, MIG_OLD}
    assert len(load_records(tmp_path / "runs" / "tiny" / "results.jsonl")) == 4

    result = cli("sweep", "--no-plots", "--out", str(tmp_path / "tp2"), str(write_spec(TP2 + "executor: {kind: gpus}\n",
                                                                                   "tp2.yaml")))
    assert result.code == 2
    assert "needs 2 GPUs, executor gpus has 0 whole GPU(s) and 2 MIG device(s), and a process sees one MIG " \
           "device only" in " ".join(result.err.split())


@pytest.mark.slow
def test_a_uuid_nvml_does_not_know_is_one_line_and_nothing_runs(cli, write_spec, tmp_path, fake_bench, nvml,
                                                                 monkeypatch):
    nvml([A, B])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", f"{A},{C}")
    result = _sweep(cli, write_spec, TRTLLM_SPEC)
    assert result.code == 2
    assert f"CUDA_VISIBLE_DEVICES: '{C}' names no device NVML sees" in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert fake_bench.printed() == [] and not (tmp_path / "runs" / "tiny" / "results.jsonl").exists()


@pytest.mark.slow
def test_a_grid_no_point_of_which_fits_exits_2_before_anything_runs(cli, write_spec, tmp_path, fake_bench,
                                                                     monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    result = _sweep(cli, write_spec, TP2)
    assert result.code == 2
    said = " ".join(result.err.split())
    assert ("--executor gpus can run none of the 4 point(s) to run on this machine (4 point(s): needs 2 GPUs, "
            "executor gpus has 1); nothing was run or recorded") in said
    assert fake_bench.printed() == []
    assert not (tmp_path / "runs" / "tiny").exists()  # refused before the run directory is made


@pytest.mark.slow
def test_an_old_executor_verdict_is_not_a_record_a_resume_keeps(cli, write_spec, tmp_path, fake_bench,
                                                                 monkeypatch):
    """Runs recorded by trtbench before this change hold `infeasible: needs N GPUs; executor gpus has M` for the
    points wider than their machine: a resume with enough GPUs runs them; one without runs nothing and says so
    (exit 2: none of them fits)."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    assert _sweep(cli, write_spec, TP2).code == 0
    store = RunStore(tmp_path / "runs" / "tiny")
    old = store.records()
    with store.lock():  # as the old executor recorded them on a one-GPU machine
        for record in old:
            store.submit(record.model_copy(update={"status": Status.INFEASIBLE, "metrics": None, "attempt": "old" +
                                                   record.attempt, "cause": "needs 2 GPUs; executor gpus has 1"}))
        store.merge()
    assert all(r.status is Status.INFEASIBLE for r in store.records())

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    result = _sweep(cli, write_spec, TP2)
    assert result.code == 2 and "can run none of the 4 point(s)" in " ".join(result.err.split())
    assert len(fake_bench.printed()) == 4  # nothing more ran

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,0")
    result = _sweep(cli, write_spec, TP2)
    assert result.code == 0, result.err
    assert [p["gpus"] for p in fake_bench.printed()][4:] == ["1,0"] * 4
    assert all(r.status is Status.OK for r in store.records())
