"""Which TensorRT-LLM is installed, and what its trtllm-bench accepts and prints.

Every release gate lives here, one property each, read off the real click options of each release
(NVIDIA's source at release commits, as tests/data/trtllm_bench_options.json keeps them: its `gates` names
the source behind each gate below, and tests/test_gates.py holds each gate to it). A flag is sent only where
a source shows the release takes it. A release newer than the newest known runs as the newest known: the
gates are `at_least` comparisons, and the caller warns once, naming what was not checked.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from trtbench.errors import TrtbenchError

SUPPORTED = ((0, 12), (1, 3))  # inclusive major.minor range
SUPPORTED_TEXT = "0.12 to 1.3"
NEWEST_TEXT = "1.3.0"  # what trtbench plans for when no TensorRT-LLM is installed (the PyTorch path)
# What a release newer than NEWEST_TEXT is driven with unchecked (said in the warning that it runs as the newest).
UNCHECKED = "trtllm-bench's CLI options, its LLM-API YAML keys and its report format"
_VERSION = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?")


@dataclass(frozen=True, order=True)
class TrtllmVersion:
    major: int
    minor: int
    patch: int = 0
    text: str = ""

    @classmethod
    def parse(cls, text: str) -> TrtllmVersion:
        match = _VERSION.match(text.strip())
        if not match:
            raise TrtbenchError(f"cannot read TensorRT-LLM version {text!r}; expected e.g. 0.21.0 or 1.1.0rc3")
        version = cls(int(match[1]), int(match[2]), int(match[3] or 0), text.strip())
        if (version.major, version.minor) < SUPPORTED[0]:
            raise TrtbenchError(f"TensorRT-LLM {version.text} is not supported; trtbench drives {SUPPORTED_TEXT}")
        return version

    @property
    def newer_than_known(self) -> bool:
        """A release after the newest trtbench knows: driven as the newest, with a warning."""
        return (self.major, self.minor) > SUPPORTED[1]

    def at_least(self, major: int, minor: int) -> bool:
        return (self.major, self.minor) >= (major, minor)

    # What trtllm-bench throughput accepts, by release.
    @property
    def has_streaming(self) -> bool:
        return self.at_least(0, 13)

    @property
    def has_pytorch_backend(self) -> bool:
        return self.at_least(0, 17)

    @property
    def has_extra_llm_api_options(self) -> bool:
        return self.at_least(0, 17)

    @property
    def llm_api_options_flag(self) -> str:
        """1.2 names the option `--config` (`--extra_llm_api_options` stays as an alias)."""
        return "--config" if self.at_least(1, 2) else "--extra_llm_api_options"

    @property
    def has_warmup(self) -> bool:
        return self.at_least(0, 17)

    @property
    def has_report_json(self) -> bool:
        """From 0.19: it came into throughput.py with --ep after the 0.17 branch, and no source shows it on the
        0.18 branch (gates.has_report_json); 0.17 and 0.18 are read from their text report. latency's came in the
        same commit (@77d7fe1e low_latency.py), so the gate is one for both subcommands."""
        return self.at_least(0, 19)

    @property
    def has_model_path(self) -> bool:
        """Global --model_path from 0.17 (throughput.py @77d7fe1e reads bench_env.checkpoint_path); 0.12 has
        none, and 0.13-0.16's BenchmarkEnvironment (@385626572) no field for one (gates.has_model_path)."""
        return self.at_least(0, 17)

    @property
    def log_level_evidence(self) -> Literal["shown", "unproven", "absent"]:
        """Global --log_level: shown by 1.0's bench.py (@8b13f594); not in 0.12's bench.py, and 0.13-0.16's
        throughput sets its own level; 0.17-0.21 no source read (gates.log_level_evidence)."""
        if self.at_least(1, 0):
            return "shown"
        return "unproven" if self.at_least(0, 17) else "absent"

    @property
    def applies_runtime_max_num_tokens(self) -> bool:
        """0.12-0.16 take a runtime --max_num_tokens but run with the max batch size in its place (run.py
        @20709ce9, throughput.py @385626572: `runtime_max_bs if runtime_max_tokens else engine_tokens`);
        fixed at @77d7fe1e. There the engine's build value is what runs."""
        return self.at_least(0, 17)

    @property
    def picks_fp8_kv_for_fp8_weights(self) -> bool:
        """1.x PyTorch path: throughput runs an FP8 checkpoint with an FP8 KV cache whatever kv_cache_config.dtype
        says (it takes only auto or fp8; perf-benchmarking.md @b93e14ca, reference note fp8_checkpoint_kv_cache_1.x)."""
        return self.at_least(1, 0)

    @property
    def has_latency_command(self) -> bool:
        """`trtllm-bench latency` as trtbench drives it, from 0.14 (low_latency.py @b0880169, the 0.14.0 release
        commit). 0.12 has none; no source for 0.13's was read (tests/data/trtllm_bench_latency_options.json,
        `refused`)."""
        return self.at_least(0, 14)

    @property
    def latency_engine_only(self) -> bool:
        """Before 1.0 latency loads only a TensorRT engine: `--engine_dir` required, no `--backend`, and no
        `--tp/--pp/--ep` (the engine's mapping runs); 1.0.0rc4 adds them (latency options `evidence`)."""
        return not self.at_least(1, 0)

    @property
    def latency_has_warmup(self) -> bool:
        """latency `--warmup` from 0.19 (@77d7fe1e, in the 0.19 branch); unproven on the 0.15-0.18 branches, absent
        in 0.14 (@b0880169)."""
        return self.at_least(0, 19)

    @property
    def has_concurrency(self) -> bool:
        return self.at_least(0, 17)

    @property
    def has_parallel_options(self) -> bool:
        """--tp/--pp as options of throughput."""
        return self.at_least(0, 17)

    @property
    def has_ep(self) -> bool:
        """--ep from 0.19: 0.18.1 answers `No such option: --ep` (NVIDIA/TensorRT-LLM#3583)."""
        return self.at_least(0, 19)

    @property
    def has_attention_dp(self) -> bool:
        """LLM-API `enable_attention_dp` with the experts spread by --ep, from 0.19: the key is LlmArgs' (listed for
        0.17-0.20 by the reference; BaseLlmArgs.enable_attention_dp through 1.x), but 0.17 and 0.18 have no --ep
        (gates.has_attention_dp)."""
        return self.at_least(0, 19)

    @property
    def chunked_context_flags(self) -> tuple[str, str] | tuple[str] | tuple[()]:
        """How throughput takes chunked prefill: from 1.1 `--enable_chunked_context/--disable_chunked_context`
        (on by default), in 1.0 the flag `--enable_chunked_context` alone (off by default), before 1.0
        not at all (off)."""
        if self.at_least(1, 1):
            return ("--enable_chunked_context", "--disable_chunked_context")
        return ("--enable_chunked_context",) if self.at_least(1, 0) else ()

    @property
    def build_seq_len_flag(self) -> str:
        """`trtllm-bench build`'s sequence-length option: `--max_seq_length` in 0.12, `--max_seq_len` after."""
        return "--max_seq_length" if not self.at_least(0, 13) else "--max_seq_len"

    @property
    def has_eos_id(self) -> bool:
        return self.at_least(1, 0)

    @property
    def has_tensorrt_backend(self) -> bool:
        """The TRT engine path; removed in 1.3."""
        return not self.at_least(1, 3)

    @property
    def engine_backend_flag(self) -> list[str]:
        """Before 1.0 the engine path is `--backend` left unset; from 1.0 it is named `tensorrt`."""
        return ["--backend", "tensorrt"] if self.at_least(1, 0) else []

    @property
    def dataset_ids_key(self) -> str:
        return "logits" if not self.at_least(0, 13) else "input_ids"

    @property
    def kv_yaml_style(self) -> Literal["pytorch_backend_config", "top_level", "kv_cache_config"]:
        """Where the LLM-API YAML takes the KV cache dtype: 0.17-0.20 `pytorch_backend_config.kv_cache_dtype`,
        0.21 the top-level `kv_cache_dtype` (PR #5752 moved it into KvCacheConfig after the 0.21 branch; its
        revert #6208), 1.0+ `kv_cache_config.dtype`."""
        if self.at_least(1, 0):
            return "kv_cache_config"
        return "top_level" if self.at_least(0, 21) else "pytorch_backend_config"

    @property
    def cuda_graph_padding_key(self) -> str:
        """`cuda_graph_config`'s padding switch: `padding_enabled` on 0.21, renamed `enable_padding` by PR #6003
        after the 0.21 branch (the config classes forbid unknown keys)."""
        return "enable_padding" if self.at_least(1, 0) else "padding_enabled"


_PYTHON_NAME = re.compile(r"python(\d+(\.\d+)?)?")
# Reads the installed distribution's metadata: imports nothing of TensorRT-LLM (or of the user's).
_ASK_VERSION = ("from importlib.metadata import version\n"
                "for name in ('tensorrt_llm', 'tensorrt-llm'):\n"
                "    try: print(version(name)); break\n"
                "    except Exception: pass\n")


def python_of(executable: str) -> str:
    """The Python that owns a console script: its shebang's interpreter (`#!/usr/bin/env python3` too),
    else a Python beside it (a wrapper script in a virtual environment's bin/)."""
    try:
        first = Path(executable).read_bytes()[:256].split(b"\n", 1)[0].decode(errors="replace")
    except OSError:
        first = ""
    parts = first[2:].split() if first.startswith("#!") else []
    if parts and Path(parts[0]).name == "env":
        parts = [p for p in parts[1:] if not p.startswith("-")]
    if parts and _PYTHON_NAME.fullmatch(Path(parts[0]).name):
        return parts[0]
    for name in ("python3", "python"):
        beside = Path(executable).parent / name
        if beside.exists():
            return str(beside)
    what = f"a {Path(parts[0]).name} script" if parts else "not a Python script"
    raise TrtbenchError(f"cannot tell which Python runs {executable} ({what}); set trtllm.version in the spec")


def detect_version(bench: str, timeout_s: float = 120) -> TrtllmVersion:
    """The installed `tensorrt_llm` distribution's version, as the Python that runs trtllm-bench sees it.
    Isolated mode and a neutral working directory: no file of the current directory, no PYTHONPATH."""
    python = python_of(bench)
    if shutil.which(python) is None and not Path(python).exists():
        raise TrtbenchError(f"cannot find {python}, the Python of {bench}; set trtllm.version in the spec")
    try:
        with tempfile.TemporaryDirectory(prefix="trtbench-version-") as neutral:
            done = subprocess.run([python, "-I", "-c", _ASK_VERSION], capture_output=True, text=True,
                                  timeout=timeout_s, check=False, cwd=neutral, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TrtbenchError(f"cannot ask {python} for the TensorRT-LLM version ({exc}); "
                            f"set trtllm.version in the spec") from None
    lines = [line for line in done.stdout.splitlines() if _VERSION.match(line.strip())]
    if done.returncode != 0 or not lines:
        raise TrtbenchError(f"{python} has no tensorrt_llm package installed (isolated mode, PYTHONPATH not "
                            f"read); set trtllm.version in the spec")
    return TrtllmVersion.parse(lines[-1])


def known_version(pinned: str | None, executable: str) -> TrtllmVersion | None:
    """The pinned version, else the installed one, else None (no TensorRT-LLM here: planning and dry
    runs still work)."""
    if pinned:
        return TrtllmVersion.parse(pinned)
    bench = shutil.which(executable)
    return detect_version(bench) if bench else None
