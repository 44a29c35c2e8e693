"""`python -m trtbench.backends.trtllm.build.modelopt_ptq`: quantize a Hugging Face checkpoint to FP8 or NVFP4
with NVIDIA ModelOpt and export it as TensorRT-LLM's PyTorch backend loads it: hf_quant_config.json, the weights
(FP8: float8_e4m3fn with a scalar weight_scale; NVFP4: two 4-bit values per uint8 with float8_e4m3fn
weight_scale per 16 and a scalar weight_scale_2), input_scale, and k_scale / v_scale with an FP8 KV cache recipe.

The builder runs it as a step (process.run_logged): the sweep can end it, its output is the build log, and
trtbench itself never imports torch. It calls ModelOpt's library, not the example hf_ptq.py, which refuses
to run without a GPU and calibrates on a hub dataset; on CPU ModelOpt's FP8 and NVFP4 fake-quantization run
eagerly.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from pydantic import BaseModel, ConfigDict

# The source files the export does not rewrite and a loader does not need: the weights it replaces.
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".index.json")


class CalibrationRow(BaseModel):
    """One JSON line: token ids (a trtllm-bench dataset, e.g. the sweep's synthetic one) or text."""

    model_config = ConfigDict(extra="ignore")

    input_ids: list[int] | None = None
    text: str | None = None
    prompt: str | None = None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m trtbench.backends.trtllm.build.modelopt_ptq")
    parser.add_argument("--source", type=Path, required=True, help="Hugging Face checkpoint directory")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--recipe", nargs="+", required=True, help="ModelOpt config names, e.g. NVFP4_DEFAULT_CFG "
                                                                    "FP8_KV_CFG (KV cache configs are merged in)")
    parser.add_argument("--calibration", type=Path, required=True,
                        help="JSON lines with input_ids, text or prompt; any other file is plain text")
    parser.add_argument("--samples", type=int, required=True)
    parser.add_argument("--seq-len", type=int, required=True)
    args = parser.parse_args(argv)

    import modelopt
    import modelopt.torch.quantization as mtq
    import torch
    import transformers
    from modelopt.torch.export import export_hf_checkpoint

    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"modelopt {modelopt.__version__}, torch {torch.__version__}, transformers {transformers.__version__}, "
          f"on {device}", flush=True)
    model = transformers.AutoModelForCausalLM.from_pretrained(args.source, dtype="auto").to(device).eval()
    samples = calibration_ids(args.calibration, args.source, args.samples, args.seq_len)
    if not samples:
        sys.exit(f"calibration file {args.calibration} holds no samples")
    config = getattr(mtq, args.recipe[0])
    for kv in args.recipe[1:]:
        config = mtq.update_quant_cfg_with_kv_cache_quant(config, getattr(mtq, kv)["quant_cfg"])

    def forward_loop(m: torch.nn.Module) -> None:
        with torch.no_grad():
            for ids in samples:
                m(torch.tensor([ids], device=device))

    print(f"calibrating on {len(samples)} samples of up to {args.seq_len} tokens from {args.calibration}", flush=True)
    mtq.quantize(model, config, forward_loop)
    print(f"exporting to {args.output}", flush=True)
    export_hf_checkpoint(model, export_dir=args.output)
    for file in sorted(args.source.iterdir()):  # tokenizer, chat template, license: what the export left out
        if file.is_file() and not file.name.startswith(".") and not (args.output / file.name).exists() \
                and not file.name.endswith(WEIGHT_SUFFIXES):
            shutil.copy2(file, args.output / file.name)
    quant = json.loads((args.output / "hf_quant_config.json").read_text())["quantization"]
    print(f"quantized: quant_algo {quant['quant_algo']}, kv_cache_quant_algo {quant['kv_cache_quant_algo']}",
          flush=True)


def calibration_ids(path: Path, source: Path, samples: int, seq_len: int) -> list[list[int]]:
    """Up to `samples` sequences of at most `seq_len` token ids: one per JSON line (text tokenized with the
    checkpoint's tokenizer), or a plain text file tokenized whole and cut into `seq_len` windows."""
    if path.suffix == ".jsonl":
        rows = [row for row in map(CalibrationRow.model_validate_json, filter(str.strip, path.read_text().splitlines()))
                if row.input_ids or row.text or row.prompt][:samples]
        texts = iter(_tokenize(source, [row.text or row.prompt or "" for row in rows if not row.input_ids]))
        ids = [(row.input_ids or next(texts))[:seq_len] for row in rows]
    else:
        (whole,) = _tokenize(source, [path.read_text()])
        ids = [whole[i:i + seq_len] for i in range(0, len(whole), seq_len)][:samples]
    return [i for i in ids if i]


def _tokenize(source: Path, texts: list[str]) -> list[list[int]]:
    if not texts:
        return []
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source)
    return [tokenizer(text, add_special_tokens=False)["input_ids"] for text in texts]


if __name__ == "__main__":
    main()
