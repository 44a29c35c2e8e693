"""Every pattern of the failure table, checked with the exact messages the CLI reference quotes and with the
corpus of real failure logs from TensorRT-LLM's issues (tests/data/failure_logs: each log's class and decisive
line as a maintainer would give them); the deciding line found in a log far larger than memory should hold,
and quoted without control characters or stack frames."""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path

import pytest

from trtbench.backends.trtllm.evidence import PATTERNS, Failure
from trtbench.backends.trtllm.failures import classify
from trtbench.backends.trtllm.parse import LogScan, log_lines, scan_log

LOGS = Path(__file__).parent / "data" / "failure_logs"
CORPUS = json.loads((LOGS / "index.json").read_text())

REFERENCE_MESSAGES = [
    ("[TRT] [E] 2: [virtualMemoryBuffer.cpp::resizePhysical::140] Error Code 2: OutOfMemory (no further information)",
     "oom", "build"),
    ("[TRT] [E] 2: [virtualMemoryBuffer.cpp::resizePhysical::140] Error Code 2: OutOfMemory (Requested size was "
     "16654532608 bytes.)", "oom", "build"),
    ("[TRT] [W] Requested amount of GPU memory (24793579520 bytes) could not be allocated. There may not be enough "
     "free memory for allocation to succeed.", "oom", "build"),
    ("[TRT] [E] 2: [globWriter.cpp::makeResizableGpuMemory::423] Error Code 2: OutOfMemory (no further information)",
     "oom", "build"),
    # Printed after any build failure: it names no cause, so alone it is an error of the build, not an OOM.
    ("[TRT-LLM] [E] Engine building failed, please check the error log.", "error", "engine build"),
    ("The model requires at least: 140.00 GB, the total GPU memory of 79.65 is insufficient.", "oom", "weights load"),
    ("[TRT-LLM] [RANK 1] [E] Failed to initialize executor on rank 1: Executor creation failed due to insufficient "
     "GPU memory.", "oom", "KV cache allocation"),
    ("The following component could not be created: KV cache", "oom", "KV cache allocation"),
    ("The amount of KV cache memory is insufficient to run this model. Please try with more GPUs.", "oom",
     "KV cache allocation"),
    ("[TensorRT-LLM][ERROR] CUDA runtime error in ::cudaMallocAsync(ptr, n, mCudaStream->get()): out of memory "
     "(/src/tllmBuffers.h:112)", "oom", "runtime"),
    ("[TensorRT-LLM][ERROR] CUDA runtime error in ::cudaMallocAsync(ptr, n, mMemPool->getPool(), "
     "mCudaStream->get()): out of memory (/src/tllmBuffers.h:125)", "oom", "runtime"),
    ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 MiB. GPU 0 has a total capacity of 22.19 GiB "
     "of which 1.50 MiB is free", "oom", "runtime"),
    ("Killed", "oom", "host memory"),
    ("Engine supports a max sequence of 8192. Provided dataset contains a maximum sequence of 32768. Please rebuild "
     "a new engine to support this dataset.", "infeasible", "max_seq_len"),
    ("The sum of prompt length (16384) and query length (0) max_tokens (16384) should not exceed max_seq_len (8192)",
     "infeasible", "max_seq_len"),
    ("The sum of prompt length (16384), query length (0) should not exceed max_num_tokens (8192)", "infeasible",
     "max_num_tokens"),
    ("`default_max_tokens` (-12) must be greater than 0, `default_max_tokens` (-12) = max_seq_len (8192) - "
     "`splited_prompt_len` (8204) - `query_token_len` (0)", "infeasible", "max_seq_len"),
    ("Adjusted max_seq_len to 86720", "infeasible", "max_seq_len"),
    ("MPI_ABORT was invoked on rank 1 in communicator MPI_COMM_WORLD with errorcode 1.", "crash", "MPI"),
    ("[TensorRT-LLM][ERROR] Assertion failed: Failed: MPI error /src/mpiUtils.cpp:211 '6'", "crash", "MPI"),
    ("PRTE ERROR: Bad parameter in file base/odls_base_default_fns.c at line 962", "crash", "MPI"),
    # What NVIDIA's source and click print when trtbench sends what a release refuses: trtbench's bug.
    ("Model is a file or directory, please provide a model name.", "driver_error", "model name"),
    ("Error: No such option: --warmup", "driver_error", "CLI"),
    ("Error: No such command 'build'.", "driver_error", "CLI"),
    ("Error: Got unexpected extra argument (x)", "driver_error", "CLI"),
    ("Error: Invalid value for '--backend': 'tensorrt' is not one of 'pytorch', '_autodeploy'.", "driver_error",
     "CLI"),
    ("Error: Missing option '--engine_dir'.", "driver_error", "CLI"),
    ("Error: Option '--dataset' requires an argument.", "driver_error", "CLI"),
    ("Error: Mutually exclusive options from 'Request Load Control Options' option group cannot be used at the "
     "same time", "driver_error", "CLI"),
    ("Error: All options from 'Build Engine with IFB Scheduler Limits' option group should be specified",
     "driver_error", "CLI"),
    ("ValueError: tensorrtx is not a known backend, check help for available options.", "driver_error", "backend"),
    ("AssertionError: max_seq_len is not a runtime parameter for C++ backend", "driver_error", "max_seq_len"),
    ("Multiple engine build options detected, please choose only one engine build option. Exiting.",
     "driver_error", "engine build"),
    ("Unspecified max_seq_len for engine build. Exiting.", "driver_error", "engine build"),
    ("ValueError: 'meta-llama/Llama-3.1-8B' is not a model that is configured for benchmarking.", "driver_error",
     "engine build"),
]


def scan(text: str) -> LogScan:
    return scan_log(text.splitlines())


@pytest.mark.parametrize(("message", "status", "where"), REFERENCE_MESSAGES)
def test_reference_message(message, status, where):
    found = scan(f"[TRT-LLM] [I] starting\n{message}\nsome trailing line\n").failure
    assert found is not None and (found.status, found.where) == (status, where)
    assert found.line == message


def test_every_pattern_is_exercised_by_a_reference_message_or_a_real_log():
    lines = [m for m, _, _ in REFERENCE_MESSAGES]
    for entry in CORPUS:
        lines += (LOGS / entry["log"]).read_text().splitlines()
    for pattern in PATTERNS:
        assert any(pattern.regex.search(line.strip()) for line in lines), pattern.regex.pattern


@pytest.mark.parametrize("entry", CORPUS, ids=[e["log"] for e in CORPUS])
def test_real_failure_log(entry):
    """Each real log: the class a maintainer gives it, and its decisive line (as posted) as the evidence."""
    failure = classify(1, False, scan_log(log_lines(LOGS / entry["log"])), False)
    assert (failure.status, failure.kind, failure.where) == (entry["status"], entry["kind"], entry["where"])
    # A line longer than a cause holds is cut, marked with an ellipsis.
    assert failure.line == entry["line"] or (failure.line.endswith("…") and entry["line"].startswith(failure.line[:-1]))
    assert failure.line.isprintable() and not re.search(r"0x[0-9a-fA-F]{6}|^#\d+ |^\d+\s+0x", failure.line)


def test_the_corpus_covers_every_class_from_real_issues():
    assert len(CORPUS) >= 40 and all(re.fullmatch(r"https://github\.com/(NVIDIA/TensorRT-LLM|triton-inference-server/"
                                                  r"tensorrtllm_backend|[\w.-]+/[\w.-]+)/issues/\d+", e["source"])
                                     for e in CORPUS)
    kinds = {e["kind"] for e in CORPUS}
    assert kinds >= {"oom", "infeasible", "nccl", "assertion", "worker", "mpi", "cuda", "missing", "cli"}
    assert {e["where"] for e in CORPUS if e["kind"] == "oom"} >= {"build", "engine load", "KV cache allocation",
                                                                    "runtime"}
    assert {e["where"] for e in CORPUS if e["kind"] == "infeasible"} >= {"max_seq_len", "max_num_tokens",
                                                                           "optimization profile", "precision"}


def test_oom_wins_over_the_mpi_abort_it_causes():
    log = ("MPI_ABORT was invoked on rank 0 in communicator MPI_COMM_WORLD with errorcode 1.\n"
           "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 MiB.\n")
    failure = classify(1, False, scan(log), False)
    assert failure.status == "oom" and failure.line.startswith("torch.OutOfMemoryError")


def test_the_first_line_of_the_deciding_pattern_is_the_evidence():
    log = ("CUDA error: out of memory (first)\nMPI_ABORT was invoked on rank 0\nCUDA error: out of memory (second)\n")
    assert classify(1, False, scan(log), False).line == "CUDA error: out of memory (first)"


def test_oom_followed_by_40_mib_of_noise_is_still_oom(tmp_path):
    log = tmp_path / "run.log"
    noise = "[11/21/2026-10:00:02] [TRT-LLM] [I] rank 1 shutting down worker 12, freeing buffers...\n"
    with log.open("w") as fh:
        fh.write("[TRT-LLM] [I] starting\nMPI_ABORT was invoked on rank 1 in communicator MPI_COMM_WORLD\n"
                 "The following component could not be created: KV cache\n")
        fh.write(noise * (40 * 2**20 // len(noise) + 1))
    assert log.stat().st_size > 40 * 2**20
    failure = classify(1, False, scan_log(log_lines(log)), False)
    assert (failure.status, failure.where) == ("oom", "KV cache allocation")
    assert failure.line == "The following component could not be created: KV cache"


def test_success_is_exit_0_with_a_report():
    assert classify(0, False, scan("all good"), True) is None


def test_nonzero_exit_with_a_report_is_still_a_failure():
    failure = classify(3, False, scan("report printed\nthen Segfault in teardown"), True)
    assert failure is not None and failure.status == "error" and failure.where == "exit 3"
    assert failure.line == "then Segfault in teardown"


def test_timeout_beats_everything():
    failure = classify(-9, True, scan("Killed\nstill waiting for rank 0"), False, timeout_s=600)
    assert failure.status == "timeout" and "timeout of 600 s" in failure.line and "rank 0" in failure.line


def test_signal_is_a_crash_naming_the_signal():
    failure = classify(-signal.SIGSEGV, False, scan("running"), False)
    assert failure.status == "crash" and "SIGSEGV" in failure.line


def test_exit_0_without_report_is_no_report_and_says_probably_oom():
    failure = classify(0, False, scan("[TRT-LLM] [I] Loading model..."), False)
    assert failure.status == "no_report" and "probably an OOM" in failure.cause


def test_unknown_failure_quotes_the_last_line():
    failure = classify(1, False, scan("line one\nValueError: something odd\n\n"), False)
    assert failure.cause == "error (exit 1): ValueError: something odd"


def test_unknown_failure_quotes_its_first_error_line_not_the_traceback_after_it():
    log = ("[TRT-LLM] [I] Loading model\nValueError: rope_scaling must have a 'type'\nTraceback (most recent call "
           "last):\n  File \"/usr/bin/trtllm-bench\", line 8, in <module>\n1       0x7f3a740272b5 tensorrt_llm::x()\n")
    assert classify(1, False, scan(log), False).cause == "error (exit 1): ValueError: rope_scaling must have a 'type'"


def test_a_consequence_quotes_the_error_that_explains_it():
    # An MPI abort or a dead worker follows the error that caused it; with no known root cause, the kind is the
    # consequence's and the evidence the error line.
    log = ("[TRT-LLM] [E] Failed to load tokenizer: KeyError 'model_max_length'\n"
           "MPI_ABORT was invoked on rank 0 in communicator MPI_COMM_WORLD with errorcode 1.\n")
    failure = classify(1, False, scan(log), False)
    assert (failure.status, failure.kind, failure.where) == ("crash", "mpi", "MPI")
    assert failure.line == "[TRT-LLM] [E] Failed to load tokenizer: KeyError 'model_max_length'"


def test_a_build_failure_names_its_cause_not_oom():
    # TensorRT-LLM prints the wrapper after any build failure (NVIDIA/TensorRT-LLM#1428: FP8 on an A100).
    log = ("[TRT] [E] 9: [standardEngineBuilder.cpp::buildEngine::2266] Error Code 9: Internal Error (Networks with "
           "FP8 precision require hardware with FP8 support.)\n[TRT-LLM] [E] Engine building failed, please check "
           "the error log.\n")
    failure = classify(1, False, scan(log), False)
    assert (failure.status, failure.where) == ("infeasible", "precision") and "Error Code 9" in failure.line


def test_an_out_of_memory_is_placed_in_the_phase_the_log_was_in():
    oom = "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 MiB."
    for before, where in (("[TRT-LLM] [I] Build TensorRT engine Unnamed Network 0", "build"),
                          ("[TensorRT-LLM][INFO] Loaded engine size: 8806 MiB", "engine load"),
                          ("[TRT-LLM] [I] Estimated max memory in KV cache : 5.95 GiB", "KV cache allocation"),
                          ("[TRT-LLM] [I] Starting benchmark...", "runtime"), ("", "runtime")):
        assert classify(1, False, scan(f"{before}\n{oom}\n"), False).where == where


def test_a_float_prompt_length_is_still_over_max_num_tokens():
    log = "ValueError: The sum of prompt length (9351.0), query length (0) should not exceed max_num_tokens (8192)"
    failure = classify(1, False, scan(log), False)
    assert (failure.status, failure.where) == ("infeasible", "max_num_tokens")


def test_a_stack_frame_is_never_the_evidence():
    # Frames that name NCCL or an assertion decide nothing; a trace pasted on the message's line is cut off.
    log = ("2       0x7a14577171ec tensorrt_llm::runtime::NcclCommunicator::createComm(int, int) + 316\n"
           "#3 0x7f00 in tensorrt_llm::common::throwRuntimeError Assertion failed\n"
           "[TensorRT-LLM][ERROR] Assertion failed: mNextBlocks.empty() (/src/kvCacheManager.cpp:160) 1 0x7fd6cf49d68d "
           "/opt/libtriton_tensorrtllm.so(+0x1668d) [0x7fd6cf49d68d]\n")
    failure = classify(1, False, scan(log), False)
    assert failure.cause == ("crash (C++ assertion): [TensorRT-LLM][ERROR] Assertion failed: mNextBlocks.empty() "
                             "(/src/kvCacheManager.cpp:160)")


def test_no_output_at_all_says_so():
    assert classify(1, False, scan(""), False).cause == "error (exit 1): (no output)"


def test_evidence_is_quoted_without_control_characters():
    colored = "\x1b[31m[E]\x1b[0m torch.OutOfMemoryError: CUDA out of memory.\x07\tTried to allocate 2.00 MiB"
    assert scan(colored).failure.line == "[E] torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 MiB"
    # The last line: a colour reset alone is no output; a NUL and a DEL are dropped.
    failure = classify(1, False, scan("Segfault\x00 in\x7f teardown\n\x1b[0m\n"), False)
    assert failure.cause == "error (exit 1): Segfault in teardown"
    assert len(classify(1, False, scan("x" * 2000), False).line) == 500


def test_a_manifest_failure_from_before_is_made_printable():
    failure = Failure.from_dict({"status": "oom", "where": "build", "line": "\x1b[1mError Code 2: OutOfMemory\x1b[0m"})
    assert failure.line == "Error Code 2: OutOfMemory" and failure.kind == ""  # written before kinds were kept


def test_a_failure_keeps_its_kind_through_a_manifest():
    failure = scan("Failed, NCCL error /src/allreducePlugin.cpp:295 'internal error'\n").failure
    assert Failure.from_dict(failure.as_dict()) == failure and failure.kind == "nccl"
