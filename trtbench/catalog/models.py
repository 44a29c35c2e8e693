"""Model architectures: bundled presets, or a HF `config.json`, reduced to what sizing and timing need."""

from __future__ import annotations

import contextlib
import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from trtbench.errors import SpecError
from trtbench.files import read_input


@dataclass(frozen=True)
class ModelArch:
    """A decoder; a mixture of experts when `experts` > 0: `dense_layers` of its layers have a dense FFN, the
    others route each token to `top_k` of `experts` FFNs of width `moe_intermediate` (plus a shared FFN of width
    `shared_intermediate`, which every token passes through); where the dense layers sit changes neither memory
    nor time. Multi-head latent attention (DeepSeek) when `kv_lora` > 0: queries through a `q_lora` bottleneck
    (none when 0), keys and values cached as one `kv_lora` latent plus a `rope_dim` key, expanded per head to
    `nope_dim` + `rope_dim` query/key and `v_dim` value dimensions. Attention is over the whole context except
    in `sliding_layers` (the last `sliding_window` tokens, the only ones their KV cache keeps: gpt-oss, Mistral
    v0.1) and `chunked_layers` (within chunks of `attention_chunk` tokens: Llama 4). `vision_params`: a
    multimodal checkpoint's vision encoder, held in 16 bits and idle in a text benchmark."""

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
    sliding_window: int = 0
    sliding_layers: int = 0
    attention_chunk: int = 0
    chunked_layers: int = 0
    vision_params: int = 0
    checkpoint_quant: str = ""  # "mxfp4": the config.json's checkpoint ships MXFP4 experts (gpt-oss)

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
        return self.transformer_params + self.embedding_params + self.lm_head_params + self.vision_params

    @property
    def attention_groups(self) -> list[tuple[int, int | None]]:
        """(layers, the most keys one query attends to; None: its whole context) per kind of attention layer."""
        full = self.layers - self.sliding_layers - self.chunked_layers
        groups = [(full, None), (self.sliding_layers, self.sliding_window), (self.chunked_layers, self.attention_chunk)]
        return [(n, span) for n, span in groups if n]

    def kv_tokens_held(self, length: int) -> float:
        """Tokens of KV cache a sequence of `length` holds, averaged over the layers. A sliding-window layer keeps
        its window: TensorRT-LLM frees the blocks that leave it and sizes a pool per window (taken here as split
        in proportion to what a sequence needs). A chunked layer keeps the whole sequence: Llama 4's pool is not
        partitioned (NVIDIA's kvcache.md: "chunked attention does not partition the pools")."""
        return length - self.sliding_layers / self.layers * max(0, length - self.sliding_window)

    def describe(self) -> str:
        """`46.7B parameters, 12.9B active per token (8 experts, top-2)`, or `8.0B parameters (dense)`, and what
        is not plain full attention: `; 18 of 36 layers attend to the last 128 tokens`."""
        if not self.is_moe:
            text = f"{self.params / 1e9:.1f}B parameters (dense)"
        else:
            active = self.active_params + self.embedding_params + self.lm_head_params
            text = (f"{self.params / 1e9:.1f}B parameters, {active / 1e9:.1f}B active per token ({self.experts} "
                    f"experts, top-{self.top_k})")
        if self.sliding_layers:
            text += f"; {self.sliding_layers} of {self.layers} layers attend to the last {self.sliding_window:,} tokens"
        if self.chunked_layers:
            text += (f"; {self.chunked_layers} of {self.layers} layers attend within {self.attention_chunk:,}-token "
                     f"chunks")
        if self.vision_params:
            text += f"; {self.vision_params / 1e9:.1f}B of them a vision encoder, idle here"
        return text

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


@lru_cache(maxsize=4096)
def expected_max_load(tokens: int, experts: int, top_k: int, groups: int) -> float:
    """Expected routed (token, expert) pairs at the busiest of `groups` equal groups of experts (the EP ranks; or
    single experts with `groups` = `experts`), each token sending its `top_k` to distinct experts uniformly at
    random: E[max] = sum over m >= 0 of 1 - P(load <= m)^groups, treating the groups' loads as independent (7% low
    for 3 tokens on 8 experts top-2 against enumeration, within 2% of sampling from 32 tokens up). One group's
    load is a sum of `tokens` hypergeometric draws (of its top_k, how many land in the group): exact by
    convolution for small batches, normal beyond (mean over 200). Never below the mean T k / groups, never above
    T min(k, experts per group)."""
    if tokens <= 0 or experts <= 0:
        return 0.0
    per_group = experts // groups
    cap = tokens * min(top_k, per_group)
    mean = tokens * top_k / groups
    if groups <= 1:
        return mean
    draw = [math.comb(per_group, j) * math.comb(experts - per_group, top_k - j) / math.comb(experts, top_k)
            for j in range(min(top_k, per_group) + 1)]
    var_one = sum(j * j * p for j, p in enumerate(draw)) - (top_k / groups) ** 2
    if mean <= 200:
        pmf = np.ones(1)
        for _ in range(tokens):
            pmf = np.convolve(pmf, draw)
        below, cdf = 0, np.minimum(np.cumsum(pmf), 1.0)
    else:  # P(load <= m) for m within 10 sd of the mean; every m below counts 1
        sd = math.sqrt(tokens * var_one)
        below = max(0, math.floor(mean - 10 * sd))
        m = np.arange(below, min(cap, math.ceil(mean + 10 * sd)) + 1)
        cdf = np.array([0.5 * (1 + math.erf((x + 0.5 - mean) / (sd * math.sqrt(2)))) for x in m])
    return float(min(cap, max(mean, below + np.sum(1 - cdf ** groups))))


def keys_attended(first: int, last: int, span: int | None) -> int:
    """(query, key) pairs of one query at each context length from `first` to `last`, each attending to at
    most `span` keys (None: all): the sum of min(c, span) for c in first..last."""
    if last < first:
        return 0
    if span is None or last <= span:
        return (first + last) * (last - first + 1) // 2
    below = keys_attended(first, span, None) if first <= span else 0
    return below + span * (last - max(first - 1, span))


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
        _llama("Llama-3.1-405B", 16384, 53248, 126, 128, 128),
        _llama("Llama-3.2-1B", 2048, 8192, 16, 32, 64, tie=True),
        _llama("Llama-3.2-3B", 3072, 8192, 28, 24, 128, tie=True),
        ModelArch("Mistral-7B", 4096, 14336, 32, 32, 8, 128, 32000, max_position=32768),
        ModelArch("Qwen2.5-7B", 3584, 18944, 28, 28, 4, 128, 152064, qkv_bias=True),
        # Mixtures of experts, from their published config.json (mistralai/Mixtral-8x7B-v0.1, Qwen/Qwen3-30B-A3B,
        # Qwen/Qwen3-235B-A22B)
        ModelArch("Mixtral-8x7B", 4096, 14336, 32, 32, 8, 128, 32000, max_position=32768, experts=8, top_k=2,
                  moe_intermediate=14336),
        ModelArch("Qwen3-30B-A3B", 2048, 6144, 48, 32, 4, 128, 151936, max_position=40960, experts=128, top_k=8,
                  moe_intermediate=768),
        ModelArch("Qwen3-235B-A22B", 4096, 12288, 94, 64, 4, 128, 151936, max_position=40960, experts=128, top_k=8,
                  moe_intermediate=1536),
        # deepseek-ai/DeepSeek-V3 (R1 shares the architecture): latent attention, 3 dense layers, then 256
        # routed experts (top-8) and one shared expert; the multi-token-prediction layer is not counted; head_dim
        # is hidden / heads as the config implies it, unused by latent attention
        *(ModelArch(name, 7168, 18432, 61, 128, 128, 56, 129280, max_position=163840, experts=256, top_k=8,
                    moe_intermediate=2048, shared_intermediate=2048, dense_layers=3, q_lora=1536, kv_lora=512,
                    rope_dim=64, nope_dim=128, v_dim=128) for name in ("DeepSeek-V3", "DeepSeek-R1")),
        # meta-llama/Llama-4-Scout-17B-16E-Instruct: every layer MoE (16 experts, top-1, and a shared expert of
        # the same width), three layers in four with chunked attention (8,192 tokens), and a 34-layer vision
        # encoder (hidden 1,408, MLP 5,632)
        ModelArch("Llama-4-Scout-17B-16E", 5120, 16384, 48, 40, 8, 128, 202048, max_position=10485760,
                  experts=16, top_k=1, moe_intermediate=8192, shared_intermediate=8192, attention_chunk=8192,
                  chunked_layers=36, vision_params=34 * (4 * 1408 * 1408 + 2 * 1408 * 5632)),
        # openai/gpt-oss-120b and -20b: experts as wide as the model (2,880), top-4, attention biases, every
        # other layer a 128-token sliding window (their per-head attention sinks are 64 numbers a layer)
        *(ModelArch(name, 2880, 2880, layers, 64, 8, 64, 201088, qkv_bias=True, experts=experts, top_k=4,
                    moe_intermediate=2880, sliding_window=128, sliding_layers=layers // 2)
          for name, layers, experts in (("gpt-oss-120b", 36, 128), ("gpt-oss-20b", 24, 32))),
    )
}

# Suffixes that name a variant of the same architecture (chat tuning, a quantized export, a release tag).
_VARIANT = re.compile(r"(-(instruct|chat|hf|base|fp8|fp16|bf16|fp4|nvfp4|awq|gptq|v\d+(\.\d+)*))+$")


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
    "intermediate_size_mlp": 1 << 20,
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
    "moe_layer_freq": 4096,
    "decoder_sparse_step": 4096,
    "interleave_moe_layer_step": 4096,
    "kv_lora_rank": 1 << 20,
    "q_lora_rank": 1 << 20,
    "qk_rope_head_dim": 4096,
    "qk_nope_head_dim": 4096,
    "v_head_dim": 4096,
    "sliding_window": 1 << 30,
    "max_window_layers": 4096,
    "attention_chunk_size": 1 << 30,
    "sliding_window_pattern": 4096,
}


def unmodelled(cfg: dict[str, Any]) -> str | None:
    """The first field of a (text) config naming something trtbench does not model, as `field (what)`; None
    when every layer is full, sliding-window or chunked attention with a dense or top-k expert FFN."""
    for key in ("full_attention_interval", "linear_num_value_heads", "attn_type_list"):
        if cfg.get(key) not in (None, 0, False, {}, []):
            return f"{key} (linear-attention layers)"
    layer_types = cfg.get("layer_types")
    if isinstance(layer_types, list):
        other = sorted({t for t in layer_types if t not in ("full_attention", "sliding_attention")}, key=str)
        if other:
            return f"layer_types ({', '.join(map(str, other))} layers)"
    method = _quant_method(cfg)
    if method is not None and method not in ("fp8", "mxfp4"):
        return f"quantization_config ({method[:20]} weights: trtbench sizes 16-bit, FP8 and MXFP4 checkpoints)"
    return None


def _quant_method(cfg: dict[str, Any]) -> str | None:
    """The weight format a config's quantization_config declares, lower-case (ModelOpt's by its quant_algo)."""
    quant = cfg.get("quantization_config")
    if not isinstance(quant, dict) or quant.get("quant_method") is None:
        return None
    return str(quant.get("quant_algo") if quant["quant_method"] == "modelopt" else quant["quant_method"]).lower()


class Count(Protocol):
    """A config's field as a positive whole number within _LIMITS; `default` where absent or null."""

    def __call__(self, key: str, default: int | None = None) -> int: ...


def _counter(cfg: dict[str, Any], where: str) -> Count:
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
    return count


def load_hf_config(path: Path, name: str) -> ModelArch:
    """A HF config.json; a multimodal one (`text_config`) as its text decoder plus its vision encoder."""
    path, top = _read_config(path)
    where = f"model config {path}"
    cfg = top
    if "text_config" in top:
        if not isinstance(top["text_config"], dict):
            raise SpecError(f"{where}: text_config is not a JSON object")
        cfg = {"tie_word_embeddings": top.get("tie_word_embeddings", False), **top["text_config"]}
        if "quantization_config" in top:
            cfg.setdefault("quantization_config", top["quantization_config"])
    if (field := unmodelled(cfg)) is not None:
        raise SpecError(f"{where}: {field} is not modelled by trtbench (full, sliding-window or chunked attention, "
                        f"dense or top-k expert FFNs); refusing rather than planning it as something it is not")
    count = _counter(cfg, where)
    hidden, heads, layers = count("hidden_size"), count("num_attention_heads"), count("num_hidden_layers")
    if cfg.get("head_dim") is None and hidden % heads:
        raise SpecError(f"{where}: num_attention_heads ({heads}) does not divide hidden_size ({hidden}); "
                        f"give head_dim")
    kv_heads = count("num_key_value_heads", heads)
    if heads % kv_heads:
        raise SpecError(f"{where}: num_key_value_heads ({kv_heads}) does not divide num_attention_heads ({heads})")
    max_position = count("max_position_embeddings", 131072)
    return ModelArch(
        name=name,
        hidden=hidden,
        intermediate=count("intermediate_size_mlp", count("intermediate_size")),  # Llama 4 names its dense FFN so
        layers=layers,
        heads=heads,
        kv_heads=kv_heads,
        head_dim=count("head_dim", hidden // heads),
        vocab=count("vocab_size"),
        tie_embeddings=bool(cfg.get("tie_word_embeddings", False)),
        qkv_bias=bool(cfg.get("attention_bias", cfg.get("model_type") == "qwen2")),
        max_position=max_position,
        vision_params=_vision(top.get("vision_config"), where) if "text_config" in top else 0,
        checkpoint_quant="mxfp4" if _quant_method(cfg) == "mxfp4" else "",
        **_experts(cfg, where, count, layers),
        **_latent(cfg, count),
        **_windows(cfg, where, count, layers, max_position),
    )


def _vision(vision: Any, where: str) -> int:
    """A vision encoder's transformer layers (attention and a two-matrix MLP), from vision_config: what it
    holds to within its patch embedding and projector (Llama 4 Scout's: 809M of 872M)."""
    if not isinstance(vision, dict):
        raise SpecError(f"{where}: a multimodal config (text_config) without a vision_config object")
    count = _counter(vision, f"{where}: vision_config")
    hidden = count("hidden_size")
    return count("num_hidden_layers") * (4 * hidden * hidden + 2 * hidden * count("intermediate_size"))


# Families whose sliding_window, with no layer_types, applies to every layer (Mistral-7B-v0.1 and its kin).
_WINDOW_ON_EVERY_LAYER = {"mistral", "mixtral"}


def _windows(cfg: dict[str, Any], where: str, count: Count, layers: int, max_position: int) -> dict[str, int]:
    """Sliding-window layers (gpt-oss's layer_types, Mistral v0.1's window on every layer, Qwen2's above
    max_window_layers, Gemma 3's all but every sliding_window_pattern-th) and Llama 4's chunked layers (the
    RoPE layers: no_rope_layers 1, three in four)."""
    out: dict[str, int] = {}
    layer_types = cfg.get("layer_types")
    window = count("sliding_window", None) if cfg.get("sliding_window") not in (None, 0, False) else 0
    if isinstance(layer_types, list):
        if len(layer_types) != layers:
            raise SpecError(f"{where}: layer_types lists {len(layer_types)} layers, num_hidden_layers is {layers}")
        sliding = layer_types.count("sliding_attention")
    elif window and cfg.get("use_sliding_window", True) and window < max_position:
        if "max_window_layers" in cfg:
            sliding = max(0, layers - count("max_window_layers", 0))
        elif "sliding_window_pattern" in cfg:  # Gemma 3: every pattern-th layer is full
            sliding = layers - layers // count("sliding_window_pattern", None)
        elif cfg.get("model_type") in _WINDOW_ON_EVERY_LAYER:
            sliding = layers
        else:
            raise SpecError(f"{where}: sliding_window ({window}) without layer_types, which says which layers "
                            f"slide, is not modelled by trtbench for model_type {cfg.get('model_type')!r}; "
                            f"refusing rather than guessing (add layer_types to the config)")
    else:
        sliding = 0
    if sliding:
        out |= {"sliding_layers": sliding, "sliding_window": window or count("sliding_window", None)}  # or: missing
    if cfg.get("attention_chunk_size"):
        rope = cfg.get("no_rope_layers") or [int((i + 1) % 4 != 0) for i in range(layers)]
        if not isinstance(rope, list) or len(rope) != layers:
            raise SpecError(f"{where}: no_rope_layers must list one 0 or 1 per layer ({layers})")
        out |= {"chunked_layers": sum(1 for r in rope if r), "attention_chunk": count("attention_chunk_size", None)}
    if out.get("sliding_layers", 0) + out.get("chunked_layers", 0) > layers:
        raise SpecError(f"{where}: both sliding_window and attention_chunk_size on the same layers")
    return out


def _latent(cfg: dict[str, Any], count: Count) -> dict[str, int]:
    """DeepSeek's multi-head latent attention fields (q_lora_rank null: no query bottleneck)."""
    if not cfg.get("kv_lora_rank"):
        return {}
    return {"kv_lora": count("kv_lora_rank", None), "q_lora": count("q_lora_rank", 0),
            "rope_dim": count("qk_rope_head_dim", None), "nope_dim": count("qk_nope_head_dim", None),
            "v_dim": count("v_head_dim", None)}


def _experts(cfg: dict[str, Any], where: str, count: Count, layers: int) -> dict[str, int]:
    """The MoE fields of a config: Mixtral's and Llama 4's num_local_experts, Qwen-MoE's num_experts,
    DeepSeek's n_routed_experts; experts as wide as intermediate_size unless moe_intermediate_size says
    otherwise; a shared expert (Qwen2-MoE's width, DeepSeek's count of routed-width experts, Llama 4's one);
    and which layers are MoE, each family by its own rule (`_moe_layers`)."""
    key = next((k for k in ("num_local_experts", "num_experts", "n_routed_experts") if cfg.get(k)), None)
    if key is None:
        return {}
    experts, top_k = count(key, None), count("num_experts_per_tok", None)
    if top_k > experts:
        raise SpecError(f"{where}: num_experts_per_tok ({top_k}) is more than {key} ({experts})")
    width = count("moe_intermediate_size", count("intermediate_size", None))
    moe = _moe_layers(cfg, where, count, layers, key)
    if not moe:
        raise SpecError(f"{where}: {key} is set but the config's layer rules leave no MoE layer")
    shared = (width if cfg.get("model_type") == "llama4_text" else count("shared_expert_intermediate_size", 0)
              or count("n_shared_experts", 0) * width)
    return {"experts": experts, "top_k": top_k, "moe_intermediate": width, "dense_layers": layers - len(moe),
            "shared_intermediate": shared}


def _moe_layers(cfg: dict[str, Any], where: str, count: Count, layers: int, key: str) -> set[int]:
    """The indices of the MoE layers, as each family's modelling code picks them: DeepSeek from
    first_k_dense_replace every moe_layer_freq-th; Qwen-MoE every decoder_sparse_step-th but mlp_only_layers;
    Llama 4 its moe_layers list or every interleave_moe_layer_step-th; Mixtral and gpt-oss all."""
    if key == "n_routed_experts":
        first, freq = count("first_k_dense_replace", 0), count("moe_layer_freq", 1)
        return {i for i in range(first, layers) if i % freq == 0}
    if key == "num_experts":
        dense = cfg.get("mlp_only_layers") or []
        if not isinstance(dense, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in dense):
            raise SpecError(f"{where}: mlp_only_layers must be a list of layer indices")
        step = count("decoder_sparse_step", 1)
        return {i for i in range(layers) if (i + 1) % step == 0} - set(dense)
    listed = cfg.get("moe_layers")
    if isinstance(listed, list) and listed:
        return {i for i in listed if isinstance(i, int) and 0 <= i < layers}
    step = count("interleave_moe_layer_step", 1)
    return {i for i in range(layers) if (i + 1) % step == 0}


def _read_config(path: Path) -> tuple[Path, dict[str, Any]]:
    """The config file's path (a directory means its config.json) and its JSON object."""
    with contextlib.suppress(OSError):  # an unreadable path is read_input's to name
        if path.is_dir():
            path = path / "config.json"
    raw = read_input(path, MAX_CONFIG_BYTES, "model config", "a config.json is a few KiB")
    try:
        cfg = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON, a 5,000-digit number, deep nesting
        raise SpecError(f"cannot read model config {path}: {exc}") from None
    if not isinstance(cfg, dict):
        raise SpecError(f"model config {path}: not a JSON object")
    return path, cfg
