"""trtllm-eval: the argument list for one artifact and task, and the scores it logs.

Options as NVIDIA's source has them (tensorrt_llm/commands/eval.py, evaluate/cnn_dailymail.py, evaluate/mmlu.py):
the group takes `--model` (a checkpoint directory or hub name; an engine directory with `--tokenizer` on the
TensorRT path), `--backend pytorch|tensorrt`, `--tp_size/--pp_size` and
`--kv_cache_free_gpu_memory_fraction` (trtllm-bench spells it `--kv_cache_free_gpu_mem_fraction`); each task
takes `--dataset_path`, `--num_samples`, `--random_seed`. cnn_dailymail logs `Beam 0 rouge scores:` and then
`\\trouge1: 38.123` per metric (x 100); mmlu logs `MMLU weighted average accuracy: 68.12 (14042)`.
"""

from __future__ import annotations

import re

from trtbench.backends.trtllm.command import Invocation, model_and_path
from trtbench.spec import AccuracySpec, EvalTask

_ROUGE = re.compile(r"\b(rouge1|rouge2|rougeL|rougeLsum):\s*(-?\d+(?:\.\d+)?)\s*$")
_BEAM = re.compile(r"Beam (\d+) rouge scores:")
_MMLU = re.compile(r"MMLU weighted average accuracy:\s*(-?\d+(?:\.\d+)?)\s*\((\d+)\)")
RANDOM_SEED = 0  # trtllm-eval's default, said explicitly so every artifact sees the same samples


def eval_model(inv: Invocation) -> str:
    """What `--model` loads: the checkpoint directory or hub name on the PyTorch path, the engine directory
    on the TensorRT path."""
    model, model_path = model_and_path(inv)
    return model_path or model if inv.mode == "pytorch" else str(inv.engine_dir)


def eval_args(inv: Invocation, executable: str, task: EvalTask, acc: AccuracySpec) -> list[str]:
    args = [executable, "--model", eval_model(inv)]
    if inv.mode == "pytorch":
        args += ["--backend", "pytorch"]
    else:
        args += ["--tokenizer", inv.spec.model.path or inv.spec.model.name, "--backend", "tensorrt"]
    args += ["--tp_size", str(inv.spec.tp), "--pp_size", str(inv.spec.pp), *(["--ep_size", str(inv.spec.ep)]
                                                                               if inv.spec.ep else []),
             "--kv_cache_free_gpu_memory_fraction", str(inv.spec.runtime.kv_cache_free_gpu_mem_fraction)]
    if inv.options_yaml is not None:  # the FP8 KV cache of a 16-bit model, CUDA graphs: as the benchmark ran
        args += ["--extra_llm_api_options", str(inv.options_yaml)]
    args += [task, "--dataset_path", acc.datasets[task], "--random_seed", str(RANDOM_SEED)]
    if acc.samples is not None:
        args += ["--num_samples", str(acc.samples)]
    if task == "cnn_dailymail" and acc.rouge_path:
        args += ["--rouge_path", acc.rouge_path]
    return args


def parse_scores(lines: list[str], task: EvalTask) -> tuple[dict[str, float], int | None]:
    """The scores trtllm-eval logged for `task` (beam 0 for ROUGE), and how many samples MMLU says it scored;
    ({}, None) when it logged none."""
    if task == "mmlu":
        for line in reversed(lines):
            if found := _MMLU.search(line):
                return {"accuracy": float(found[1])}, int(found[2])
        return {}, None
    scores: dict[str, float] = {}
    beam = None
    for line in lines:
        if found := _BEAM.search(line):
            beam = int(found[1])
        elif beam == 0 and (metric := _ROUGE.search(line)):
            scores[metric[1]] = float(metric[2])
    return scores, None
