"""Model architectures: bundled presets, or a HF `config.json`, reduced to what sizing and timing need."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trtbench.errors import SpecError


@dataclass(frozen=True)
class ModelArch:
    """A decoder with full attention on every layer; a mixture of experts when `experts` > 0: every layer but
    the first `dense_layers` routes each token to `top_k` of `experts` FFNs of width `moe_intermediate` (plus a
    shared FFN of width `shared_intermediate`, which every token passes through). Multi-head latent attention
    (DeepSeek) when `kv_lora` > 0: queries through a `q_lora` bottleneck (none when 0), keys and values
    cached as one `kv_lora` latent plus a `rope_dim` key, expanded per head to `nope_dim` + `rope_dim` query/key
    and `v_dim` value dimensions."""

    name: str
    hidden: int
    intermediate: int  # the FFN width of dense layers
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tie_embeddings: bool = False
    qkv_bias: bool = False
    max_position: int = 131072
    experts: int = 0
    top_k: int = 0
    moe_intermediate: int = 0
    shared_intermediate: int = 0
    dense_layers: int = 0
    q_lora: int = 0
    kv_lora: int = 0
    rope_dim: int = 0
    nope_dim: int = 0
    v_dim: int = 0

    @property
    def is_mla(self) -> bool:
        return self.kv_lora > 0

    @property
    def is_moe(self) -> bool:
        return self.experts > 0

    @property
    def moe_layers(self) -> int:
        return self.layers - self.dense_layers if self.is_moe else 0

    @property
    def attention_params_per_layer(self) -> int:
        d, dh = self.hidden, self.head_dim
        if self.is_mla:
            qk = self.heads * (self.nope_dim + self.rope_dim)
            q = d * self.q_lora + self.q_lora + self.q_lora * qk if self.q_lora else d * qk
            kv = d * (self.kv_lora + self.rope_dim) + self.kv_lora + self.kv_lora * self.heads * (
                self.nope_dim + self.v_dim)
            return q + kv + self.heads * self.v_dim * d + 2 * d
        attn = d * self.heads * dh + 2 * d * self.kv_heads * dh + self.heads * dh * d
        bias = (self.heads + 2 * self.kv_heads) * dh if self.qkv_bias else 0
        return attn + bias + 2 * d  # and the two norms

    @property
    def expert_params(self) -> int:
        """One routed expert's gate, up and down projections."""
        return 3 * self.hidden * self.moe_intermediate

    @property
    def router_params(self) -> int:
        """The MoE layers' routers (ModelOpt's FP8 export leaves them 16-bit)."""
        return self.moe_layers * self.hidden * self.experts

    @property
    def params_per_layer(self) -> int:
        """A dense layer's parameters."""
        return self.attention_params_per_layer + 3 * self.hidden * self.intermediate

    def _moe_layer_params(self, routed: float) -> float:
        """A MoE layer with `routed` experts' weights counted: attention, router, shared FFN, experts."""
        d = self.hidden
        return (self.attention_params_per_layer + d * self.experts + 3 * d * self.shared_intermediate
                + routed * self.expert_params)

    @property
    def embedding_params(self) -> int:
        return self.vocab * self.hidden

    @property
    def lm_head_params(self) -> int:
        return 0 if self.tie_embeddings else self.vocab * self.hidden

    def streamed_params(self, touched: float) -> float:
        """Transformer parameters read when `touched` experts per MoE layer are active: all of a dense model."""
        dense = (self.layers - self.moe_layers) * self.params_per_layer
        return dense + self.moe_layers * self._moe_layer_params(touched) + self.hidden

    @property
    def transformer_params(self) -> int:
        """Every parameter of the layers (all experts), no embedding or head: what the GPUs hold."""
        return round(self.streamed_params(self.experts))

    @property
    def active_params(self) -> int:
        """Transformer parameters one token multiplies through (its top-k experts): what its FLOPs scale with."""
        return round(self.streamed_params(self.top_k))

    @property
    def active_ffn(self) -> int:
        """The FFN width one token passes through in a MoE layer (all layers of a dense model)."""
        return self.top_k * self.moe_intermediate + self.shared_intermediate if self.is_moe else self.intermediate

    @property
    def params(self) -> int:
        return self.transformer_params + self.embedding_params + self.lm_head_params

    def describe(self) -> str:
        """`46.7B parameters, 12.9B active per token (8 experts, top-2)`, or `8.0B parameters (dense)`."""
        if not self.is_moe:
            return f"{self.params / 1e9:.1f}B parameters (dense)"
        active = self.active_params + self.embedding_params + self.lm_head_params
        return (f"{self.params / 1e9:.1f}B parameters, {active / 1e9:.1f}B active per token ({self.experts} experts, "
                f"top-{self.top_k})")

    def kv_bytes_per_token(self, kv_dtype_bytes: int, tp: int = 1) -> int:
        """KV cache bytes per token on one TP rank, as TensorRT-LLM's runtime sizes it: with latent attention
        one latent and one RoPE key per layer, whole on every rank."""
        if self.is_mla:
            return self.layers * (self.kv_lora + self.rope_dim) * kv_dtype_bytes
        kv_heads_per_rank = max(1, self.kv_heads // tp)
        return 2 * self.layers * kv_heads_per_rank * self.head_dim * kv_dtype_bytes


def expected_experts(tokens: float, experts: int, top_k: int) -> float:
    """Distinct experts a batch of `tokens` touches in one layer, each token routed to `top_k` of `experts`
    uniformly: E (1 - (1 - k/E)^T). One token touches k; a large batch, all E."""
    if experts == 0 or tokens <= 0:
        return 0.0
    return experts * (1 - (1 - top_k / experts) ** tokens)


def _llama(name: str, hidden: int, inter: int, layers: int, heads: int, head_dim: int,
           tie: bool = False, max_position: int = 131072) -> ModelArch:
    return ModelArch(name, hidden, inter, layers, heads, 8, head_dim, 128256, tie, False, max_position)


PRESETS: dict[str, ModelArch] = {
    m.name: m
    for m in (
        _llama("Llama-3.1-8B", 4096, 14336, 32, 32, 128),
        _llama("Llama-3-8B", 4096, 14336, 32, 32, 128, max_position=8192),
        _llama("Llama-3.1-70B", 8192, 28672, 80, 64, 128),
        _llama("Llama-3.3-70B", 8192, 28672, 80, 64, 128),
        _llama("Llama-3.2-1B", 2048, 8192, 16, 32, 64, tie=True),
        _llama("Llama-3.2-3B", 3072, 8192, 28, 24, 128, tie=True),
        ModelArch("Mistral-7B", 4096, 14336, 32, 32, 8, 128, 32000, max_position=32768),
        ModelArch("Qwen2.5-7B", 3584, 18944, 28, 28, 4, 128, 152064, qkv_bias=True),
        # Mixtures of experts, from their published config.json (mistralai/Mixtral-8x7B-v0.1, Qwen/Qwen3-30B-A3B)
        ModelArch("Mixtral-8x7B", 4096, 14336, 32, 32, 8, 128, 32000, max_position=32768, experts=8, top_k=2,
                  moe_intermediate=14336),
        ModelArch("Qwen3-30B-A3B", 2048, 6144, 48, 32, 4, 128, 151936, max_position=40960, experts=128, top_k=8,
                  moe_intermediate=768),
        # deepseek-ai/DeepSeek-V3 (R1 shares the architecture): latent attention, 3 dense layers, then 256
        # routed experts (top-8) and one shared expert; the multi-token-prediction layer is not counted; head_dim
        # is hidden / heads as the config implies it, unused by latent attention
        *(ModelArch(name, 7168, 18432, 61, 128, 128, 56, 129280, max_position=163840, experts=256, top_k=8,
                    moe_intermediate=2048, shared_intermediate=2048, dense_layers=3, q_lora=1536, kv_lora=512,
                    rope_dim=64, nope_dim=128, v_dim=128) for name in ("DeepSeek-V3", "DeepSeek-R1")),
    )
}

# Suffixes that name a variant of the same architecture (chat tuning, a quantized export, a release tag).
_VARIANT = re.compile(r"(-(instruct|chat|hf|base|fp8|fp16|bf16|awq|gptq|v\d+(\.\d+)*))+$")


def _preset_key(name: str) -> str:
    base = name.strip().rstrip("/").split("/")[-1]
    base = re.sub(r"^meta-", "", base, flags=re.IGNORECASE)
    return _VARIANT.sub("", base.lower())


_BY_KEY = {_preset_key(k): v for k, v in PRESETS.items()}


def find_preset(name: str) -> ModelArch | None:
    """The preset for a HF name such as `meta-llama/Meta-Llama-3.1-8B-Instruct` or `Llama-3.1-8B`."""
    return _BY_KEY.get(_preset_key(name))


def resolve_model(name: str, preset: str | None = None, config: str | Path | None = None) -> ModelArch:
    """An explicit config.json wins, then an explicit preset, then the preset the HF name implies."""
    if config is not None:
        return load_hf_config(Path(config), name)
    arch = find_preset(preset or name)
    if arch is None:
        what = f"preset {preset!r}" if preset else f"model {name!r}"
        raise SpecError(
            f"no architecture for {what}; give model.config (a HF config.json) or model.preset, "
            f"one of: {', '.join(PRESETS)}"
        )
    return arch


MAX_CONFIG_BYTES = 1 << 20  # a config.json is a few KiB
# Upper bounds per config.json field, far above any released model (largest today: hidden 16,384,
# intermediate 53,248, 126 layers, 128 heads, head_dim 256, vocab 262,144, context 10M), so a typo is
# refused here rather than sized into nonsense.
_LIMITS = {
    "hidden_size": 1 << 20,
    "intermediate_size": 1 << 20,
    "num_hidden_layers": 4096,
    "num_attention_heads": 4096,
    "num_key_value_heads": 4096,
    "head_dim": 4096,
    "vocab_size": 1 << 24,
    "max_position_embeddings": 1 << 30,
    "num_local_experts": 1 << 16,
    "num_experts": 1 << 16,
    "num_experts_per_tok": 1 << 16,
    "moe_intermediate_size": 1 << 20,
    "shared_expert_intermediate_size": 1 << 20,
    "n_routed_experts": 1 << 16,
    "n_shared_experts": 1 << 16,
    "first_k_dense_replace": 4096,
    "kv_lora_rank": 1 << 20,
    "q_lora_rank": 1 << 20,
    "qk_rope_head_dim": 4096,
    "qk_nope_head_dim": 4096,
    "v_head_dim": 4096,
}


# config.json fields that make a model something ModelArch does not describe (a decoder with full attention on
# every layer, dense or with plain top-k experts): such a model is refused, never sized as something else.
_UNMODELLED = {
    "mlp_only_layers": "dense layers among the MoE layers",
    "full_attention_interval": "linear-attention layers", "linear_num_value_heads": "linear-attention layers",
    "attn_type_list": "linear-attention layers", "text_config": "a multimodal model's text part",
}


def unmodelled(cfg: dict[str, Any]) -> str | None:
    """The first field of `cfg` naming an architecture trtbench does not model, as `field (what)`; None
    for a dense decoder or a plain mixture of experts. Zero, null or empty values are absent."""
    for key, what in _UNMODELLED.items():
        value = cfg.get(key)
        if value not in (None, 0, False, {}, []):
            return f"{key} ({what})"
    layer_types = cfg.get("layer_types")
    if isinstance(layer_types, list):
        other = sorted({t for t in layer_types if t != "full_attention"}, key=str)
        if other:
            return f"layer_types ({', '.join(map(str, other))} layers)"
    for key in ("decoder_sparse_step", "moe_layer_freq"):
        step = cfg.get(key, 1)
        if step not in (None, 1):
            return f"{key} ({step}: MoE on every {step}th layer only)"
    window = cfg.get("sliding_window")
    if isinstance(window, int) and window > 0 and cfg.get("use_sliding_window", True) and window < cfg.get(
            "max_position_embeddings", 131072):
        return f"sliding_window ({window}-token attention window)"
    return None


def load_hf_config(path: Path, name: str) -> ModelArch:
    path, cfg = _read_config(path)
    where = f"model config {path}"
    if (field := unmodelled(cfg)) is not None:
        raise SpecError(f"{where}: {field} is not modelled by trtbench (decoders with full attention on every "
                        f"layer, dense or top-k mixtures of experts); refusing rather than planning it as something "
                        f"it is not")

    def count(key: str, default: int | None = None) -> int:
        """A positive whole number within _LIMITS; `default` where the field is absent or null."""
        value = cfg.get(key)
        if value is None and default is not None:
            return default
        if value is None:
            raise SpecError(f"{where}: {key} is missing")
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _LIMITS[key]:
            raise SpecError(f"{where}: {key} must be a whole number from 1 to {_LIMITS[key]:,} "
                            f"(got {repr(value)[:40]})")
        return value

    hidden, heads = count("hidden_size"), count("num_attention_heads")
    if cfg.get("head_dim") is None and hidden % heads:
        raise SpecError(f"{where}: num_attention_heads ({heads}) does not divide hidden_size ({hidden}); "
                        f"give head_dim")
    kv_heads = count("num_key_value_heads", heads)
    if heads % kv_heads:
        raise SpecError(f"{where}: num_key_value_heads ({kv_heads}) does not divide num_attention_heads ({heads})")
    return ModelArch(
        name=name,
        hidden=hidden,
        intermediate=count("intermediate_size"),
        layers=count("num_hidden_layers"),
        heads=heads,
        kv_heads=kv_heads,
        head_dim=count("head_dim", hidden // heads),
        vocab=count("vocab_size"),
        tie_embeddings=bool(cfg.get("tie_word_embeddings", False)),
        qkv_bias=bool(cfg.get("attention_bias", cfg.get("model_type") == "qwen2")),
        max_position=count("max_position_embeddings", 131072),
        **_experts(cfg, where, count),
        **_latent(cfg, count),
    )


def _latent(cfg: dict[str, Any], count: Callable[[str, int | None], int]) -> dict[str, int]:
    """DeepSeek's multi-head latent attention fields (q_lora_rank null: no query bottleneck)."""
    if not cfg.get("kv_lora_rank"):
        return {}
    return {"kv_lora": count("kv_lora_rank", None), "q_lora": count("q_lora_rank", 0),
            "rope_dim": count("qk_rope_head_dim", None), "nope_dim": count("qk_nope_head_dim", None),
            "v_dim": count("v_head_dim", None)}


def _experts(cfg: dict[str, Any], where: str, count: Callable[[str, int | None], int]) -> dict[str, int]:
    """The MoE fields of a config: Mixtral's num_local_experts, Qwen-MoE's num_experts, DeepSeek's
    n_routed_experts (with n_shared_experts and first_k_dense_replace); experts as wide as intermediate_size
    unless moe_intermediate_size says otherwise; Qwen2-MoE's shared expert."""
    key = next((k for k in ("num_local_experts", "num_experts", "n_routed_experts") if cfg.get(k)), None)
    if key is None:
        return {}
    experts, top_k = count(key, None), count("num_experts_per_tok", None)
    if top_k > experts:
        raise SpecError(f"{where}: num_experts_per_tok ({top_k}) is more than {key} ({experts})")
    width = count("moe_intermediate_size", count("intermediate_size", None))
    dense = count("first_k_dense_replace", 0)
    if dense >= count("num_hidden_layers", None):
        raise SpecError(f"{where}: first_k_dense_replace ({dense}) leaves no MoE layer")
    return {"experts": experts, "top_k": top_k, "moe_intermediate": width, "dense_layers": dense,
            # Qwen2-MoE names the shared expert's width; DeepSeek counts shared experts of the routed width
            "shared_intermediate": count("shared_expert_intermediate_size", 0) or count("n_shared_experts", 0)
            * width}


def _read_config(path: Path) -> tuple[Path, dict[str, Any]]:
    """The config file's path (a directory means its config.json) and its JSON object."""
    try:
        if path.is_dir():
            path = path / "config.json"
        with path.open("rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise SpecError(f"model config not found: {path}") from None
    except OSError as exc:
        raise SpecError(f"cannot read model config {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise SpecError(f"model config {path}: larger than {MAX_CONFIG_BYTES >> 20} MiB; a config.json is a few KiB")
    try:
        cfg = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON, a 5,000-digit number, deep nesting
        raise SpecError(f"cannot read model config {path}: {exc}") from None
    if not isinstance(cfg, dict):
        raise SpecError(f"model config {path}: not a JSON object")
    return path, cfg
