"""What a PyTorch-path FP8 or NVFP4 build quantizes, and with what, worked out before anything runs.

The PyTorch backend only loads pre-quantized checkpoints, so an FP8 or NVFP4 "engine" there is a Hugging Face
checkpoint quantized by NVIDIA ModelOpt (modelopt_ptq.py, run as a subprocess). Everything that changes
its bytes is in `Quantization` and so in the BuildConfig's hash: the source checkpoint's digest, the
ModelOpt recipe, the ModelOpt / torch / transformers versions, and the calibration data. A checkpoint that
already holds FP8 or NVFP4 weights (`build.checkpoint`, or the model itself: declared) is loaded as it is.
"""

from __future__ import annotations

import hashlib
import json
import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict

from trtbench.backends.trtllm.dataset import DEFAULT_SEED, DatasetSpec, dataset_path
from trtbench.backends.trtllm.version import TrtllmVersion
from trtbench.errors import TrtbenchError, Unsupported
from trtbench.precision import KvDtype, Precision
from trtbench.spec import SweepSpec

INSTALL = "pip install 'trtbench[quantize]'"
BYTES_HASHED_UP_TO = 64 * 2**20  # a bigger file (a weight shard) counts by size and mtime: planning reads no 16 GB
# Not fetched from the hub: Meta's original consolidated weights and other formats the export does not read.
HUB_IGNORED = ["original/*", "*.pth", "*.gguf", "*.onnx", "*.msgpack", "*.h5"]
# modelopt.torch.quantization's configs, as hf_ptq.py --qformat fp8 / nvfp4 uses them; the KV cache, FP8 for both
# (NVFP4's default too), is --kv_cache_qformat fp8
WEIGHT_RECIPES = {Precision.FP8: "FP8_DEFAULT_CFG", Precision.NVFP4: "NVFP4_DEFAULT_CFG"}
KV_RECIPE = "FP8_KV_CFG"
# hf_quant_config.json's quant_algo for each, as ModelOpt's export writes it and TensorRT-LLM reads it
QUANT_ALGOS = {Precision.FP8: "FP8", Precision.NVFP4: "NVFP4"}
# NVIDIA's pre-quantized hub checkpoints: nvidia/Llama-3.1-8B-Instruct-FP8; nvidia/Llama-3.1-8B-Instruct-FP4 and
# nvidia/Qwen3.5-397B-A17B-NVFP4 (their model cards: ModelOpt NVFP4)
NVIDIA_HUB = {Precision.FP8: re.compile(r"nvidia/.+-fp8", re.IGNORECASE),
              Precision.NVFP4: re.compile(r"nvidia/.+-(nv)?fp4", re.IGNORECASE)}


class Calibration(BaseModel):
    """The calibration data: a file of the user's (by content), else the sweep's synthetic token ids."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    file: str | None  # None: `samples` x `seq_len` random ids over [0, vocab), as trtllm-bench datasets
    file_sha256: str | None
    vocab: int | None
    seed: int | None
    samples: int
    seq_len: int

    def synthetic(self) -> DatasetSpec | None:
        if self.vocab is None or self.seed is None:
            return None
        return DatasetSpec(isl=self.seq_len, osl=1, count=self.samples, vocab=self.vocab, seed=self.seed)

    def path(self) -> Path:
        """The file the quantizer reads: the user's, or the synthetic dataset (written before the build)."""
        synthetic = self.synthetic()
        if synthetic is not None:
            return dataset_path(synthetic)
        assert self.file is not None
        return Path(self.file)


class Quantization(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str  # the checkpoint directory quantized (model.path, or the hub model's snapshot)
    source_digest: str
    recipe: list[str]  # ModelOpt configs, merged in order
    modelopt: str | None  # installed versions; None: not installed (a dry run still plans)
    torch: str | None
    transformers: str | None
    calibration: Calibration


class Declared(NamedTuple):
    precision: Precision  # FP8 or NVFP4
    source: str  # the local checkpoint, or the hub name


def declared(name: str, path: str | None) -> Declared | None:
    """What a model already holds FP8 or NVFP4 weights as, to be loaded as they are: `path` when its
    hf_quant_config.json (ModelOpt's) or config.json quantization_config says so, else `name` when it is one of
    NVIDIA's pre-quantized hub checkpoints (NVIDIA_HUB); None otherwise. A local checkpoint is judged by its
    files alone: they are what trtllm-bench loads, whatever the name says."""
    if path:
        algo = checkpoint_quant(Path(path))[0]
        held = next((p for p, a in QUANT_ALGOS.items() if a == algo), None)
        return Declared(held, path) if held else None
    held = next((p for p, hub in NVIDIA_HUB.items() if hub.fullmatch(name)), None)
    return Declared(held, name) if held else None


def checkpoint_quant(path: Path) -> tuple[str | None, str | None]:
    """(weights, KV cache) quantization a local checkpoint declares, upper-case, as TensorRT-LLM reads them:
    hf_quant_config.json's quant_algo and kv_cache_quant_algo, else config.json's quantization_config
    (quant_method fp8, or modelopt with its quant_algo; no KV cache algorithm there)."""
    if (path / "hf_quant_config.json").is_file():
        quant = _read_json(path / "hf_quant_config.json").get("quantization")
        quant = quant if isinstance(quant, dict) else {}
        return _upper(quant.get("quant_algo")), _upper(quant.get("kv_cache_quant_algo"))
    config = _read_json(path / "config.json") if (path / "config.json").is_file() else {}
    quant = config.get("quantization_config")
    if not isinstance(quant, dict):
        return None, None
    method = str(quant.get("quant_method", "")).lower()
    return ("FP8" if method == "fp8" else _upper(quant.get("quant_algo")) if method == "modelopt"
            else _upper(method or None)), None


def _upper(value: object) -> str | None:
    return str(value).upper() if value is not None else None


def prequantized_checkpoint(spec: SweepSpec) -> str | None:
    """The pre-quantized checkpoint the PyTorch path's FP8 or NVFP4 points load as it is: `build.checkpoint`,
    else the model itself where it declares weights of the point's precision. The other points of a precision
    grid load the model itself (planning refuses one that holds quantized weights: refuse_unloadable_precision)."""
    if spec.precision not in WEIGHT_RECIPES:
        return None
    own = declared(spec.model.name, spec.model.path)
    return spec.build.checkpoint or (own.source if own and own.precision is spec.precision else None)




def refuse_unloadable_precision(spec: SweepSpec) -> None:
    """A model that holds FP8 (NVFP4) weights runs at FP8 (NVFP4) only: loading them gives those GEMMs whatever
    the point's label."""
    own = declared(spec.model.name, spec.model.path)
    if own is not None and spec.precision is not own.precision:
        raise Unsupported(f"precision: {spec.precision}: {own.source} holds pre-quantized "
                          f"{QUANT_ALGOS[own.precision]} weights, which are loaded as they are and cannot run as "
                          f"{spec.precision}; use precision: {own.precision}, or the 16-bit model")


def quantization_for(spec: SweepSpec, fetch: bool) -> Quantization | None:
    """The quantization `spec`'s PyTorch-path build needs (FP8 or NVFP4 weights, no pre-quantized checkpoint to
    load), or None. `fetch`: download a hub model that is not in the local Hugging Face cache; without it such a
    model plans as not fetched (None), e.g. for a dry run."""
    if spec.precision not in WEIGHT_RECIPES or prequantized_checkpoint(spec):
        return None
    source = source_dir(spec, fetch)
    if source is None:
        return None
    recipe = [WEIGHT_RECIPES[spec.precision], *([KV_RECIPE] if spec.kv is KvDtype.FP8 else [])]
    return Quantization(source=str(source), source_digest=checkpoint_digest(source), recipe=recipe,
                        modelopt=installed("nvidia-modelopt"), torch=installed("torch"),
                        transformers=installed("transformers"), calibration=calibration_for(spec, source))


def calibration_for(spec: SweepSpec, source: Path) -> Calibration:
    c = spec.build.calibration
    if c.path is None:
        vocab = _read_json(source / "config.json").get("vocab_size")
        if not isinstance(vocab, int) or vocab < 2:
            raise TrtbenchError(f"{source / 'config.json'}: no vocab_size to draw calibration tokens from; set "
                                f"build.calibration.path")
        return Calibration(file=None, file_sha256=None, vocab=vocab, seed=DEFAULT_SEED, samples=c.samples,
                           seq_len=c.seq_len)
    path = Path(c.path).resolve()
    try:
        digest = file_sha256(path)
    except OSError as exc:
        raise TrtbenchError(f"build.calibration.path {c.path}: {exc.strerror or exc}") from None
    return Calibration(file=str(path), file_sha256=digest, vocab=None, seed=None, samples=c.samples,
                       seq_len=c.seq_len)


def source_dir(spec: SweepSpec, fetch: bool) -> Path | None:
    """model.path, else the hub model's snapshot directory (downloaded if `fetch`, else only if cached)."""
    if spec.model.path:
        path = Path(spec.model.path).resolve()
        if not (path / "config.json").is_file():
            raise TrtbenchError(f"model.path {spec.model.path} is not a Hugging Face checkpoint (no config.json)")
        return path
    name = spec.model.name
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        if fetch:
            raise TrtbenchError(f"quantizing {name} needs ModelOpt, torch and transformers: {INSTALL}") from None
        return None
    try:
        return Path(snapshot_download(name, local_files_only=not fetch, ignore_patterns=HUB_IGNORED))
    except Exception as exc:  # not cached, offline, unknown, gated: huggingface_hub raises each differently
        if not fetch:
            return None
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise TrtbenchError(f"cannot fetch {name} from the Hugging Face hub ({why}); set model.path to a local "
                            f"checkpoint, or log in (HF_TOKEN) if the model is gated") from None


def checkpoint_digest(path: Path) -> str:
    """sha256 over the checkpoint's top-level files: names and bytes, or, for a file over
    BYTES_HASHED_UP_TO, its size and modification time."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")):
        stat = file.stat()
        content = file_sha256(file) if stat.st_size <= BYTES_HASHED_UP_TO else f"{stat.st_size}@{stat.st_mtime_ns}"
        digest.update(f"{file.name}\0{content}\n".encode())
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def installed(distribution: str) -> str | None:
    """The installed version, from package metadata (importing torch takes seconds)."""
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def require_quantizer(q: Quantization) -> None:
    missing = [name for name, v in (("ModelOpt", q.modelopt), ("torch", q.torch), ("transformers", q.transformers))
               if v is None]
    if missing:
        raise TrtbenchError(f"quantizing with ModelOpt needs {', '.join(missing)}: {INSTALL}")


def warnings_for(q: Quantization, trtllm_version: str | None) -> list[str]:
    """What the manifest says about a quantized checkpoint that may not serve as well as it could."""
    notes = []
    if q.calibration.file is None:
        notes.append(f"calibrated on {q.calibration.samples} random token sequences, not text: activation and KV "
                     f"scales may not fit real prompts; set build.calibration.path")
    if q.transformers and int(q.transformers.split(".")[0]) >= 5 and trtllm_version \
            and not TrtllmVersion.parse(trtllm_version).at_least(1, 3):
        # transformers 5 writes RoPE settings as config.json `rope_parameters`; the 4.x that releases before
        # 1.3 pin (4.57.1 lately) reads only `rope_theta` / `rope_scaling`, and silently falls back to defaults.
        notes.append(f"transformers {q.transformers} wrote config.json's RoPE settings as rope_parameters; "
                     f"TensorRT-LLM {trtllm_version} pins transformers 4 (4.57.1 lately), which reads rope_theta / "
                     f"rope_scaling: quantize with transformers<5 for this release")
    return notes


def _read_json(file: Path) -> dict[str, object]:
    try:
        config = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise TrtbenchError(f"cannot read {file}: {exc}") from None
    return config if isinstance(config, dict) else {}
