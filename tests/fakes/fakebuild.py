"""Shared by the fake build tools (tests only): what an engine directory looks like, failure modes,
and a call log so tests can tell whether a tool ran at all.

FAKE_BUILD_CALLS: file that gets one line per tool call. FAKE_BUILD_FAIL: calibration | build_oom |
requested_memory | host_killed | no_output. FAKE_BUILD_SLEEP: seconds to stall half way through
writing the engine (to kill a build mid-way).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def log_call(tool: str) -> None:
    path = os.environ.get("FAKE_BUILD_CALLS")
    if path:
        with open(path, "a") as fh:
            fh.write(f"{tool} {' '.join(sys.argv[1:])}\n")


def failure(step: str) -> None:
    """Emulate the failure FAKE_BUILD_FAIL names, if it belongs to `step` (quantize | build)."""
    mode = os.environ.get("FAKE_BUILD_FAIL", "")
    messages = {
        ("quantize", "calibration"): ("Traceback (most recent call last):\n  File \"quantize.py\", line 512\n"
                                      "RuntimeError: calibration failed: no calibration data (cnn_dailymail)", 1),
        ("quantize", "host_killed"): ("Killed", 137),
        ("build", "build_oom"): ("[TRT] [E] 2: [virtualMemoryBuffer.cpp::resizePhysical::140] Error Code 2: "
                                 "OutOfMemory (no further information)\n[TRT-LLM] [E] Engine building failed, please "
                                 "check the error log.", 1),
        ("build", "requested_memory"): ("[TRT] [W] Requested amount of GPU memory (24793579520 bytes) could not be "
                                        "allocated. There may not be enough free memory for allocation to succeed.", 1),
    }
    if (step, mode) in messages:
        text, code = messages[(step, mode)]
        print(text, flush=True)
        sys.exit(code)


def write_engine(out: Path, *, quant_algo: str | None, kv_algo: str | None, tp: int, pp: int,
                 build_config: dict[str, object]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    if os.environ.get("FAKE_BUILD_FAIL") == "no_output":
        return
    config = {
        "version": os.environ.get("FAKE_TRTLLM_VERSION", "0.16.0"),
        "pretrained_config": {"architecture": "LlamaForCausalLM", "dtype": "bfloat16",
                              "quantization": {"quant_algo": quant_algo, "kv_cache_quant_algo": kv_algo},
                              "mapping": {"world_size": tp * pp, "tp_size": tp, "pp_size": pp, "gpus_per_node": 8},
                              "num_hidden_layers": 32, "num_key_value_heads": 8},
        "build_config": {**build_config, "max_beam_width": 1, "kv_cache_type": "PAGED",
                         "speculative_decoding_mode": 1, "auto_parallel_config": {"gpus_per_node": 8}},
    }
    for rank in range(tp * pp):
        print(f"[TRT-LLM] [I] Serializing engine to {out}/rank{rank}.engine...", flush=True)
        with open(out / f"rank{rank}.engine", "wb") as fh:
            fh.write(b"\0" * 2048)
            fh.flush()
            time.sleep(float(os.environ.get("FAKE_BUILD_SLEEP", "0")))
            fh.write(b"\1" * 2048)
        print("[TRT-LLM] [I] Engine serialized. Total time: 00:00:01", flush=True)
    (out / "config.json").write_text(json.dumps(config, indent=4))
    print("[TRT-LLM] [I] Total time of building all engines: 00:00:01", flush=True)
