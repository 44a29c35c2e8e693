#!/usr/bin/env python3
"""Fake of TensorRT-LLM's examples/quantization/quantize.py (tests only): writes a checkpoint."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fakebuild import failure, log_call

parser = argparse.ArgumentParser()
parser.add_argument("--model_dir", required=True)
parser.add_argument("--dtype", choices=["auto", "float16", "bfloat16", "float32"], default="auto")
parser.add_argument("--qformat", choices=["nvfp4", "fp8", "int8_sq", "int4_awq", "w4a8_awq", "int8_wo", "int4_wo",
                                          "full_prec"], default="full_prec")
parser.add_argument("--kv_cache_dtype", choices=["int8", "fp8"])
parser.add_argument("--calib_size", type=int, default=512)
parser.add_argument("--calib_dataset")
parser.add_argument("--calib_max_seq_length", type=int, default=512)
parser.add_argument("--tp_size", type=int, default=1)
parser.add_argument("--pp_size", type=int, default=1)
parser.add_argument("--output_dir", required=True)
args = parser.parse_args()
log_call("quantize.py")
print(f"Loading {args.model_dir} ...", flush=True)
failure("quantize")
out = Path(args.output_dir)
out.mkdir(parents=True, exist_ok=True)
quant = {"quant_algo": "FP8" if args.qformat == "fp8" else None,
         "kv_cache_quant_algo": args.kv_cache_dtype.upper() if args.kv_cache_dtype else None}
(out / "config.json").write_text(json.dumps({"architecture": "LlamaForCausalLM", "dtype": args.dtype,
                                             "quantization": quant,
                                             "mapping": {"world_size": args.tp_size * args.pp_size,
                                                         "tp_size": args.tp_size, "pp_size": args.pp_size}}))
for rank in range(args.tp_size * args.pp_size):
    (out / f"rank{rank}.safetensors").write_bytes(b"\0" * 1024)
print(f"Quantized model exported to {out}", flush=True)
