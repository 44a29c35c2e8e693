"""The PyTorch path's FP8 builder through the real ModelOpt, on CPU: a tiny random Llama made here (no
download), built with `trtbench build` for TensorRT-LLM 1.2, and its export checked against what
TensorRT-LLM's PyTorch loader reads (shared/reference/modelopt-fp8.md, sections 2 to 4).

Loading the export with plain transformers would silently drop the scales, so the weights are
dequantized by hand. Needs the `test` extra (`make test` installs it); skipped without it."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from importlib.metadata import version
from importlib.util import find_spec
from pathlib import Path

import pytest

from trtbench.backends.trtllm.build.cache import EngineCache
from trtbench.backends.trtllm.build.engine import model_path_for
from trtbench.backends.trtllm.build.plan import build_config
from trtbench.backends.trtllm.version import TrtllmVersion
from trtbench.spec import parse_spec

if find_spec("modelopt") is None:  # found, not imported: the quantizer subprocess imports it (seconds)
    pytest.skip("needs the quantize extra (pip install -e '.[test]')", allow_module_level=True)
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
safetensors_torch = pytest.importorskip("safetensors.torch")

LAYERS = 2
PROJECTIONS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
               "mlp.up_proj", "mlp.down_proj")
UNQUANTIZED = ("model.embed_tokens.weight", "lm_head.weight", "model.norm.weight",
               *(f"model.layers.{i}.{n}.weight" for i in range(LAYERS)
                 for n in ("input_layernorm", "post_attention_layernorm")))
TEXT = ("the quick brown fox jumps over a lazy dog while seven bold wizards quietly judge every "
        "sphinx of black quartz and many big jackdaws love my box of liquor")
WORDS = TEXT.split(" ")
SPEC = """\
name: tinyq
model: {{name: tiny/llama, path: {model}}}
gpu: h100-sxm
precision: {precision}
kv_cache_dtype: {kv}
backend: trtllm
trtllm: {{version: 1.2.0}}
build: {{calibration: {calibration}}}
grid: {{isl: [16], osl: [16]}}
requests: {{default: {{fixed: 4}}}}
"""
V12 = TrtllmVersion.parse("1.2.0")
FP8_KV_SCHEME = {"dynamic": False, "num_bits": 8, "type": "float"}  # reference section 2, exact


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer Llama with random bf16 weights and a word-level tokenizer, as save_pretrained writes it."""
    path = tmp_path_factory.mktemp("tiny-llama")
    torch.manual_seed(0)
    config = transformers.LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=LAYERS,
                                      num_attention_heads=4, num_key_value_heads=2, vocab_size=512,
                                      max_position_embeddings=256)
    transformers.LlamaForCausalLM(config).to(torch.bfloat16).save_pretrained(path)
    tiny_tokenizer(path)
    return path


def tiny_tokenizer(path: Path) -> None:
    """A word-level tokenizer over WORDS, saved beside a tiny model."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    tokenizer = Tokenizer(models.WordLevel({"[UNK]": 0, **{w: i + 1 for i, w in enumerate(sorted(set(WORDS)))}},
                                           unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    transformers.PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]").save_pretrained(path)


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # no model of a real cache counts as fetched
    monkeypatch.setenv("TRTBENCH_CACHE_DIR", str(tmp_path / "cache"))


def spec_text(model: Path | str, precision: str = "fp8", kv: str = "fp8", calibration: str = "{samples: 8, seq_len: 32}"
              ) -> str:
    return SPEC.format(model=model, precision=precision, kv=kv, calibration=calibration)


def only_artifact(engines: Path) -> Path:
    (artifact,) = [p for p in engines.iterdir() if not p.name.startswith(".")]
    return artifact


def check_fp8_weights(source: Path, export: Path) -> dict[str, torch.Tensor]:
    """Every projection FP8 with scalar float32 scales, weight_scale = amax / 448 (E4M3's largest value),
    and weight * weight_scale within E4M3's rounding of the source: half a step, 2^-4 of the value in the
    normal range, 2^-10 x scale among the subnormals. The rest of the tensors bit for bit the source's."""
    src = safetensors_torch.load_file(source / "model.safetensors")
    out = safetensors_torch.load_file(export / "model.safetensors")
    for i in range(LAYERS):
        for proj in PROJECTIONS:
            name = f"model.layers.{i}.{proj}"
            weight, scale, input_scale = out[f"{name}.weight"], out[f"{name}.weight_scale"], out[f"{name}.input_scale"]
            assert weight.dtype == torch.float8_e4m3fn and weight.shape == src[f"{name}.weight"].shape
            assert scale.dtype == input_scale.dtype == torch.float32 and scale.shape == input_scale.shape == ()
            original = src[f"{name}.weight"].float()
            assert scale.item() == pytest.approx(original.abs().max().item() / 448, rel=1e-6)
            error = (weight.float() * scale - original).abs()
            assert bool((error <= original.abs() / 16 + scale / 1024).all()), name
            assert input_scale.item() > 0
    for name in UNQUANTIZED:
        assert out[name].dtype == torch.bfloat16 and torch.equal(out[name], src[name])
    return out


@pytest.mark.slow
def test_fp8_weights_and_fp8_kv_cache_calibrated_on_text(cli, write_spec, tmp_path, tiny_llama):
    calibration = tmp_path / "calibration.jsonl"
    calibration.write_text("".join(json.dumps({"text": " ".join(WORDS[i:] + WORDS[:i])}) + "\n" for i in range(8)))
    spec = write_spec(spec_text(tiny_llama, calibration=f"{{path: {calibration}, samples: 8, seq_len: 32}}"))
    result = cli("build", str(spec))
    assert result.code == 0, result.err
    artifact = only_artifact(tmp_path / "engines")
    export = artifact / "model"
    assert artifact.name.startswith("llama_fp8_kv-fp8_pytorch_")

    assert json.loads((export / "hf_quant_config.json").read_text())["quantization"] == {
        "quant_algo": "FP8", "kv_cache_quant_algo": "FP8", "exclude_modules": ["lm_head", "model.embed_tokens"]}
    inline = json.loads((export / "config.json").read_text())["quantization_config"]
    assert inline["quant_method"] == "modelopt" and inline["quant_algo"] == "FP8"
    assert inline["kv_cache_scheme"] == FP8_KV_SCHEME
    tensors = check_fp8_weights(tiny_llama, export)
    for i in range(LAYERS):
        attn = f"model.layers.{i}.self_attn"
        for kv in ("k", "v"):  # the KV cache scales the loader reads from k_proj / v_proj
            scale = tensors[f"{attn}.{kv}_proj.{kv}_scale"]
            assert scale.dtype == torch.float32 and scale.shape == () and scale.item() > 0
        # q, k and v read one input (ModelOpt makes their scales equal so they can be fused)
        assert tensors[f"{attn}.q_proj.input_scale"] == tensors[f"{attn}.k_proj.input_scale"] \
            == tensors[f"{attn}.v_proj.input_scale"]
    assert (export / "tokenizer.json").read_bytes() == (tiny_llama / "tokenizer.json").read_bytes()

    manifest = json.loads((artifact / "manifest.json").read_text())
    q = manifest["config"]["quantization"]
    assert manifest["status"] == "ok" and manifest["trtllm_version"] == "1.2.0"
    assert manifest["model_path"] == str(export.resolve()) and manifest["model_subdir"] == "model"
    assert q["recipe"] == ["FP8_DEFAULT_CFG", "FP8_KV_CFG"] and q["source"] == str(tiny_llama.resolve())
    assert (q["modelopt"], q["torch"], q["transformers"]) == (version("nvidia-modelopt"), version("torch"),
                                                              version("transformers"))
    assert q["calibration"] == {"file": str(calibration.resolve()), "seed": None, "vocab": None, "samples": 8,
                                "seq_len": 32,
                                "file_sha256": hashlib.sha256(calibration.read_bytes()).hexdigest()}
    assert [s["name"] for s in manifest["steps"]] == ["quantization"]
    assert "calibrating on 8 samples" in (artifact / "build.log").read_text()
    rope = [w for w in manifest["warnings"] if "rope_parameters" in w]  # transformers 5 for a 1.2 release
    assert len(rope) == int(int(version("transformers").split(".")[0]) >= 5) and "random token" not in str(manifest)

    before = (artifact / "manifest.json").read_bytes()
    again = cli("build", str(spec))
    assert again.code == 0 and "already built" in again.err
    assert (artifact / "manifest.json").read_bytes() == before and only_artifact(tmp_path / "engines") == artifact


@pytest.mark.slow
def test_fp8_weights_with_16_bit_kv_cache_on_synthetic_tokens(cli, write_spec, tmp_path, tiny_llama):
    result = cli("build", str(write_spec(spec_text(tiny_llama, kv="auto"))))
    assert result.code == 0, result.err
    artifact = only_artifact(tmp_path / "engines")
    export = artifact / "model"
    assert json.loads((export / "hf_quant_config.json").read_text())["quantization"] == {
        "quant_algo": "FP8", "kv_cache_quant_algo": None, "exclude_modules": ["lm_head", "model.embed_tokens"]}
    assert "kv_cache_scheme" not in json.loads((export / "config.json").read_text())["quantization_config"]
    tensors = check_fp8_weights(tiny_llama, export)
    assert not [name for name in tensors if name.endswith(("k_scale", "v_scale"))]

    manifest = json.loads((artifact / "manifest.json").read_text())
    calibration = manifest["config"]["quantization"]["calibration"]
    assert manifest["config"]["quantization"]["recipe"] == ["FP8_DEFAULT_CFG"]
    # the sweep's own synthetic dataset: 8 rows of 32 ids over the vocabulary, prepare_dataset.py's seed
    assert calibration == {"file": None, "file_sha256": None, "vocab": 512, "seed": 420, "samples": 8, "seq_len": 32}
    rows = (tmp_path / "cache/datasets/isl32_osl1_n8_v512_s420_input_ids_eosnone.jsonl").read_text().splitlines()
    assert len(rows) == 8 and all(0 <= t < 512 for row in rows for t in json.loads(row)["input_ids"])
    assert any("calibrated on 8 random token sequences" in w for w in manifest["warnings"])
    assert "calibrated on 8 random token sequences" in result.err.replace("\n", " ")


def test_fp16_is_the_source_checkpoint_plus_manifest(cli, write_spec, tmp_path, tiny_llama):
    text = spec_text(tiny_llama, precision="fp16")
    result = cli("build", str(write_spec(text)))
    assert result.code == 0, result.err
    artifact = only_artifact(tmp_path / "engines")
    assert sorted(p.name for p in artifact.iterdir()) == ["manifest.json"]  # nothing copied, nothing run
    manifest = json.loads((artifact / "manifest.json").read_text())
    assert manifest["model_path"] == str(tiny_llama.resolve()) and manifest["config"]["quantization"] is None
    config = build_config(parse_spec(text), V12)
    assert model_path_for(EngineCache(tmp_path / "engines"), config) == tiny_llama.resolve()


def test_a_hub_model_that_cannot_be_fetched_is_one_line(cli, write_spec):
    text = spec_text("x").replace("{name: tiny/llama, path: x}", "nobody/no-such-model")
    dry = cli("build", str(write_spec(text)), "--dry-run")
    assert dry.code == 0, dry.err
    assert "fetch nobody/no-such-model from the Hugging Face hub, then quantize it to FP8" in dry.out
    result = cli("build", str(write_spec(text)))
    assert result.code == 2
    assert len(result.err.strip().splitlines()) == 1
    assert "cannot fetch nobody/no-such-model from the Hugging Face hub" in result.err


@pytest.mark.slow
def test_killed_quantization_leaves_nothing_reusable(write_spec, tmp_path, tiny_llama):
    """Killed with trtbench (the whole group) while ModelOpt calibrates: the staging copy is all there is."""
    text = spec_text(tiny_llama, calibration="{samples: 400, seq_len: 128}")
    spec = write_spec(text)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parent.parent),
                                                        os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "trtbench", "build", str(spec)], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any("calibrating on" in log.read_text()
                                                  for log in (tmp_path / "engines").glob(".staging/*/build.log")):
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    cache = EngineCache(tmp_path / "engines")
    config = build_config(parse_spec(text), V12)
    assert list((tmp_path / "engines").glob(".staging/*/build.log"))  # the build that was killed
    assert not cache.path(config).exists() and cache.reusable(config) is None

    done = subprocess.run([sys.executable, "-m", "trtbench", "build", str(spec)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert cache.reusable(config) is not None
    assert list((tmp_path / "engines" / ".staging").iterdir()) == []  # the dead build's staging is swept


@pytest.mark.slow
def test_an_fp8_sweep_quantizes_once_and_every_point_loads_that_checkpoint(cli, write_spec, tmp_path, tiny_llama,
                                                                          fake_bench):
    """`trtbench sweep` on the PyTorch path with FP8 weights from a 16-bit model: the sweep builds the
    ModelOpt checkpoint before its first point, and each point's trtllm-bench loads it (--model_path)."""
    fake_bench.version("1.2.0")
    text = spec_text(tiny_llama).replace(f"path: {tiny_llama}}}",
                                         f"path: {tiny_llama}, config: {tiny_llama / 'config.json'}}}")
    text = text.replace("grid: {isl: [16], osl: [16]}", "grid: {isl: [16, 32], osl: [16]}")
    result = cli("sweep", "--no-plots", str(write_spec(text)))
    assert result.code == 0, result.err
    export = (only_artifact(tmp_path / "engines") / "model").resolve()
    assert (export / "hf_quant_config.json").is_file()
    records = [json.loads(line) for line in (tmp_path / "runs" / "tinyq" / "results.jsonl").read_text().splitlines()]
    assert len(records) == 2
    for record in records:
        assert record["status"] == "ok", record["cause"]
        command = record["command"]
        assert command[command.index("--model_path") + 1] == str(export)
    assert len(fake_bench.printed()) == 2


E2M1 = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)  # FP4 (E2M1) magnitudes by code; bit 3 is the sign


@pytest.mark.slow
def test_nvfp4_weights_and_fp8_kv_cache_in_modelopts_export_layout(cli, write_spec, tmp_path, tiny_llama):
    """`precision: nvfp4` on a Blackwell GPU: ModelOpt's NVFP4_DEFAULT_CFG + FP8_KV_CFG, run on CPU, exported as
    NVIDIA's NVFP4 checkpoints ship (hf_quant_config.json quant_algo NVFP4, group_size 16): two E2M1 values per
    uint8 (even column in the low nibble), a float8_e4m3fn scale per 16 and a float32 weight_scale_2 per tensor."""
    spec = write_spec(spec_text(tiny_llama, precision="nvfp4").replace("gpu: h100-sxm", "gpu: b200"))
    result = cli("build", str(spec))
    assert result.code == 0, result.err
    artifact = only_artifact(tmp_path / "engines")
    export = artifact / "model"
    assert artifact.name.startswith("llama_nvfp4_kv-fp8_pytorch_")
    assert json.loads((export / "hf_quant_config.json").read_text())["quantization"] == {
        "quant_algo": "NVFP4", "kv_cache_quant_algo": "FP8", "group_size": 16,
        "exclude_modules": ["lm_head", "model.embed_tokens"]}
    inline = json.loads((export / "config.json").read_text())["quantization_config"]
    assert (inline["quant_method"], inline["quant_algo"], inline["kv_cache_scheme"]) == ("modelopt", "NVFP4",
                                                                                          FP8_KV_SCHEME)
    assert inline["config_groups"]["group_0"]["weights"] == {"dynamic": False, "num_bits": 4, "type": "float",
                                                             "group_size": 16}
    manifest = json.loads((artifact / "manifest.json").read_text())
    assert manifest["status"] == "ok" and manifest["config"]["quantization"]["recipe"] == ["NVFP4_DEFAULT_CFG",
                                                                                           "FP8_KV_CFG"]

    src = safetensors_torch.load_file(tiny_llama / "model.safetensors")
    out = safetensors_torch.load_file(export / "model.safetensors")
    lut = torch.tensor(E2M1 + tuple(-v for v in E2M1))
    for i in range(LAYERS):
        for proj in PROJECTIONS:
            name = f"model.layers.{i}.{proj}"
            original = src[f"{name}.weight"].float()
            rows, cols = original.shape
            packed, scale, scale_2 = out[f"{name}.weight"], out[f"{name}.weight_scale"], out[f"{name}.weight_scale_2"]
            assert packed.dtype == torch.uint8 and packed.shape == (rows, cols // 2)
            assert scale.dtype == torch.float8_e4m3fn and scale.shape == (rows, cols // 16)
            assert scale_2.dtype == out[f"{name}.input_scale"].dtype == torch.float32
            assert scale_2.shape == out[f"{name}.input_scale"].shape == ()
            # unpacked and scaled back, within E2M1's largest half step (1, between 4 and 6) of each block's scale
            codes = torch.stack([packed & 0x0F, packed >> 4], dim=-1).reshape(rows, cols).long()
            block = (scale.float() * scale_2).repeat_interleave(16, dim=1)
            assert bool(((lut[codes] * block - original).abs() <= 1.01 * block).all()), name
        for kv in ("k", "v"):
            kv_scale = out[f"model.layers.{i}.self_attn.{kv}_proj.{kv}_scale"]
            assert kv_scale.dtype == torch.float32 and kv_scale.shape == () and kv_scale.item() > 0
    for name in UNQUANTIZED:
        assert out[name].dtype == torch.bfloat16 and torch.equal(out[name], src[name])
