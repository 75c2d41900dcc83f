"""Architecture and hardware specs for the cost model: :class:`ModelSpec`, :class:`GpuSpec`, catalogs.

A :class:`ModelSpec` carries every number needed to count parameters exactly (explicit ``head_dim``,
tied embeddings, qkv bias, qk-norm, norms per layer, optional MoE experts) and to size the KV cache.
A :class:`GpuSpec` carries dense peak FLOP/s per dtype, memory bandwidth, memory, interconnect
bandwidth and a default $/hour (override it with ``dataclasses.replace`` or ``usd_per_hour=``).

>>> get_model_spec("qwen/qwen3-0.6b").params
596049920
>>> get_gpu_spec("h100").intensity("bf16").__round__(1)
295.3
>>> load_model_spec({"name": "tiny", "layers": 2, "hidden": 64, "q_heads": 4, "kv_heads": 2,
...                  "head_dim": 16, "ffn": 128, "vocab": 100}).params
86848

Sources of the catalog numbers: each model's Hugging Face ``config.json``; GPU datasheets (dense,
i.e. without structured sparsity). Dollar rates are round on-demand cloud prices (late 2025) and
are only defaults.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from ttsplan.features.errors import TtsplanError, did_you_mean

BYTES_PER_DTYPE = {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0, "fp4": 0.5, "int4": 0.5}


def _dtype_bytes(dtype: str, what: str) -> float:
    key = str(dtype).lower().replace("bfloat16", "bf16").replace("float16", "fp16").replace("float32", "fp32")
    if key not in BYTES_PER_DTYPE:
        raise TtsplanError(f"{what} must be one of {sorted(BYTES_PER_DTYPE)}, got {dtype!r}."
                           + did_you_mean(str(dtype), BYTES_PER_DTYPE))
    return BYTES_PER_DTYPE[key]


@dataclass(frozen=True)
class ModelSpec:
    """Decoder-only transformer architecture (Llama/Qwen/Gemma style, SwiGLU/GeGLU MLP).

    ``ffn`` is the intermediate size of one MLP (of one expert for MoE). ``norms_per_layer`` is 2
    for Llama/Qwen, 4 for Gemma 2/3. ``bytes_per_weight`` / ``bytes_per_kv`` default to bf16.
    MoE: ``experts`` > 0 routed experts of size ``ffn``, ``experts_per_token`` active, router
    ``hidden × experts`` per layer, optional ``shared_ffn`` dense MLP.
    """

    name: str
    layers: int
    hidden: int
    q_heads: int
    kv_heads: int
    head_dim: int
    ffn: int
    vocab: int
    tied_embeddings: bool = False
    qkv_bias: bool = False
    qk_norm: bool = False
    norms_per_layer: int = 2
    gated_mlp: bool = True
    bytes_per_weight: float = 2.0
    bytes_per_kv: float = 2.0
    experts: int = 0
    experts_per_token: int = 0
    shared_ffn: int = 0
    hf_id: str = ""
    aliases: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        problems = []
        for f in ("layers", "hidden", "q_heads", "kv_heads", "head_dim", "ffn", "vocab"):
            v = getattr(self, f)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                problems.append(f"{f} must be an integer >= 1, got {v!r}")
        if not problems and self.q_heads % self.kv_heads:
            problems.append(f"q_heads must be a multiple of kv_heads, got {self.q_heads} and {self.kv_heads}")
        for f in ("bytes_per_weight", "bytes_per_kv"):
            v = getattr(self, f)
            if not isinstance(v, (int, float)) or v <= 0:
                problems.append(f"{f} must be > 0, got {v!r}")
        if self.experts < 0 or self.experts_per_token < 0 or self.shared_ffn < 0:
            problems.append("experts, experts_per_token and shared_ffn must be >= 0")
        if self.experts and not 1 <= self.experts_per_token <= self.experts:
            problems.append(f"experts_per_token must be in 1..experts={self.experts}, got {self.experts_per_token}")
        if problems:
            raise TtsplanError(f"model spec {self.name!r} is invalid: " + "; ".join(problems)
                               + ". Fix the spec file or config.json.")

    # -- parameter accounting -------------------------------------------------------------
    @property
    def attn_params_per_layer(self) -> int:
        q, kv, d, h = self.q_heads, self.kv_heads, self.head_dim, self.hidden
        n = h * q * d + 2 * h * kv * d + q * d * h
        if self.qkv_bias:
            n += q * d + 2 * kv * d
        if self.qk_norm:
            n += 2 * d
        return n

    def _mlp(self, width: int) -> int:
        return (3 if self.gated_mlp else 2) * self.hidden * width

    def _mlp_layer(self, routed_experts: int) -> int:
        """MLP weights of one layer counting ``routed_experts`` routed experts (MoE: plus router and shared)."""
        if not self.experts:
            return self._mlp(self.ffn)
        return routed_experts * self._mlp(self.ffn) + self.hidden * self.experts + (
            self._mlp(self.shared_ffn) if self.shared_ffn else 0)

    @property
    def mlp_params_per_layer(self) -> int:
        """All MLP weights of one layer (every expert, router and shared expert for MoE)."""
        return self._mlp_layer(self.experts)

    @property
    def active_mlp_params_per_layer(self) -> int:
        """MLP weights one token uses in one layer (MoE: experts_per_token experts, router, shared)."""
        return self._mlp_layer(self.experts_per_token)

    @property
    def embedding_params(self) -> int:
        return self.vocab * self.hidden

    @property
    def params(self) -> int:
        """Total parameters (embedding counted once when tied)."""
        per_layer = self.attn_params_per_layer + self.mlp_params_per_layer + self.norms_per_layer * self.hidden
        head = 0 if self.tied_embeddings else self.vocab * self.hidden
        return self.layers * per_layer + self.embedding_params + head + self.hidden

    @property
    def matmul_params(self) -> int:
        """Parameters multiplied per generated token (active layers + LM head; not the lookup table)."""
        per_layer = self.attn_params_per_layer + self.active_mlp_params_per_layer
        return self.layers * per_layer + self.vocab * self.hidden

    @property
    def weight_bytes(self) -> float:
        """Bytes of all weights in memory."""
        return self.params * self.bytes_per_weight

    @property
    def expert_params(self) -> int:
        """Parameters of one routed expert (0 for a dense model)."""
        return self._mlp(self.ffn) if self.experts else 0

    @property
    def streamed_weight_bytes(self) -> float:
        """Weight bytes read by one forward step of a single token: every active matmul weight (the
        embedding table of an untied model is only gathered, not streamed)."""
        return self.matmul_params * self.bytes_per_weight

    def weight_bytes_read(self, tokens: Any) -> Any:
        """Weight bytes read by one forward step over ``tokens`` tokens (array-friendly).

        Dense: all matmul weights. MoE: shared weights + the experts the batch touches; with uniform
        routing of k of E experts per token, E·(1 − (1 − k/E)^tokens) experts per layer are read.
        """
        if not self.experts:
            return self.matmul_params * self.bytes_per_weight + 0.0 * np.asarray(tokens, dtype=float)
        E, k = self.experts, self.experts_per_token
        touched = E * (1.0 - (1.0 - k / E) ** np.maximum(np.asarray(tokens, dtype=float), 1.0))
        shared = self.matmul_params - self.layers * k * self.expert_params
        return (shared + self.layers * touched * self.expert_params) * self.bytes_per_weight

    @property
    def kv_elements_per_token(self) -> int:
        """K and V elements cached per token over all layers: D = 2·H_kv·d_head·layers."""
        return 2 * self.kv_heads * self.head_dim * self.layers

    @property
    def kv_bytes_per_token(self) -> float:
        return self.kv_elements_per_token * self.bytes_per_kv

    @property
    def attn_flops_per_token_per_context(self) -> int:
        """FLOPs of QK^T and AV for one query token against one cached token, all layers."""
        return 4 * self.q_heads * self.head_dim * self.layers

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["aliases"] = list(self.aliases)
        return d


@dataclass(frozen=True)
class GpuSpec:
    """One accelerator: dense peak FLOP/s per dtype, bandwidths in bytes/s, memory in bytes, $/hour."""

    name: str
    peak_flops: Mapping[str, float]
    mem_bandwidth: float
    memory_bytes: float
    usd_per_hour: float
    interconnect_bandwidth: float = 0.0
    aliases: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        problems = []
        if not self.peak_flops or any((not isinstance(v, (int, float))) or v <= 0 for v in self.peak_flops.values()):
            problems.append(f"peak_flops must map dtypes to positive FLOP/s, got {dict(self.peak_flops)!r}")
        for f in ("mem_bandwidth", "memory_bytes"):
            if not isinstance(getattr(self, f), (int, float)) or getattr(self, f) <= 0:
                problems.append(f"{f} must be > 0, got {getattr(self, f)!r}")
        if not isinstance(self.usd_per_hour, (int, float)) or self.usd_per_hour < 0:
            problems.append(f"usd_per_hour must be >= 0, got {self.usd_per_hour!r}")
        if problems:
            raise TtsplanError(f"GPU spec {self.name!r} is invalid: " + "; ".join(problems) + ".")

    def flops(self, dtype: str = "bf16") -> float:
        """Dense peak FLOP/s for ``dtype`` (fp8 falls back to bf16 on GPUs without fp8 units)."""
        key = str(dtype).lower()
        if key in self.peak_flops:
            return float(self.peak_flops[key])
        if key in ("fp16",) and "bf16" in self.peak_flops:
            return float(self.peak_flops["bf16"])
        if key in ("fp8", "int8", "fp4", "int4"):
            for k in ("fp8", "bf16"):
                if k in self.peak_flops:
                    return float(self.peak_flops[k])
        raise TtsplanError(f"dtype must be one of {sorted(self.peak_flops)} for GPU {self.name}, got {dtype!r}."
                           + did_you_mean(str(dtype), self.peak_flops))

    def intensity(self, dtype: str = "bf16") -> float:
        """Arithmetic intensity I = peak FLOP/s ÷ memory bandwidth (FLOPs per byte)."""
        return self.flops(dtype) / self.mem_bandwidth


def _m(name: str, hf: str, layers: int, hidden: int, q: int, kv: int, hd: int, ffn: int, vocab: int,
       tied: bool, bias: bool = False, qkn: bool = False, aliases: tuple[str, ...] = (), **kw: Any) -> ModelSpec:
    return ModelSpec(name=name, layers=layers, hidden=hidden, q_heads=q, kv_heads=kv, head_dim=hd, ffn=ffn,
                     vocab=vocab, tied_embeddings=tied, qkv_bias=bias, qk_norm=qkn, hf_id=hf, aliases=aliases, **kw)


#: Built-in model catalog (values from each model's HF config.json).
MODELS: dict[str, ModelSpec] = {s.name: s for s in [
    _m("Qwen2.5-0.5B", "Qwen/Qwen2.5-0.5B", 24, 896, 14, 2, 64, 4864, 151936, True, bias=True),
    _m("Qwen2.5-1.5B", "Qwen/Qwen2.5-1.5B", 28, 1536, 12, 2, 128, 8960, 151936, True, bias=True),
    _m("Qwen2.5-3B", "Qwen/Qwen2.5-3B", 36, 2048, 16, 2, 128, 11008, 151936, True, bias=True),
    _m("Qwen2.5-7B", "Qwen/Qwen2.5-7B", 28, 3584, 28, 4, 128, 18944, 152064, False, bias=True),
    _m("Qwen2.5-14B", "Qwen/Qwen2.5-14B", 48, 5120, 40, 8, 128, 13824, 152064, False, bias=True),
    _m("Qwen2.5-32B", "Qwen/Qwen2.5-32B", 64, 5120, 40, 8, 128, 27648, 152064, False, bias=True),
    _m("Qwen2.5-72B", "Qwen/Qwen2.5-72B", 80, 8192, 64, 8, 128, 29568, 152064, False, bias=True),
    _m("Qwen3-0.6B", "Qwen/Qwen3-0.6B", 28, 1024, 16, 8, 128, 3072, 151936, True, qkn=True),
    _m("Qwen3-1.7B", "Qwen/Qwen3-1.7B", 28, 2048, 16, 8, 128, 6144, 151936, True, qkn=True),
    _m("Qwen3-4B", "Qwen/Qwen3-4B", 36, 2560, 32, 8, 128, 9728, 151936, True, qkn=True),
    _m("Qwen3-8B", "Qwen/Qwen3-8B", 36, 4096, 32, 8, 128, 12288, 151936, False, qkn=True),
    _m("Qwen3-14B", "Qwen/Qwen3-14B", 40, 5120, 40, 8, 128, 17408, 151936, False, qkn=True),
    _m("Qwen3-32B", "Qwen/Qwen3-32B", 64, 5120, 64, 8, 128, 25600, 151936, False, qkn=True),
    _m("Llama-3.1-8B", "meta-llama/Llama-3.1-8B", 32, 4096, 32, 8, 128, 14336, 128256, False,
       aliases=("meta-llama/Llama-3.1-8B-Instruct", "Llama-3.1-8B-Instruct", "Meta-Llama-3.1-8B")),
    _m("Llama-3.1-70B", "meta-llama/Llama-3.1-70B", 80, 8192, 64, 8, 128, 28672, 128256, False,
       aliases=("meta-llama/Llama-3.1-70B-Instruct", "Llama-3.1-70B-Instruct", "Meta-Llama-3.1-70B")),
    _m("Llama-3.2-1B", "meta-llama/Llama-3.2-1B", 16, 2048, 32, 8, 64, 8192, 128256, True,
       aliases=("meta-llama/Llama-3.2-1B-Instruct", "Llama-3.2-1B-Instruct")),
    _m("Llama-3.2-3B", "meta-llama/Llama-3.2-3B", 28, 3072, 24, 8, 128, 8192, 128256, True,
       aliases=("meta-llama/Llama-3.2-3B-Instruct", "Llama-3.2-3B-Instruct")),
    _m("DeepSeek-R1-Distill-Qwen-1.5B", "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", 28, 1536, 12, 2, 128, 8960,
       151936, False, bias=True, aliases=("r1-distill-qwen-1.5b",)),
    _m("DeepSeek-R1-Distill-Qwen-7B", "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", 28, 3584, 28, 4, 128, 18944,
       152064, False, bias=True, aliases=("r1-distill-qwen-7b",)),
    _m("Gemma-3-270M", "google/gemma-3-270m", 18, 640, 4, 1, 256, 2048, 262144, True, qkn=True,
       norms_per_layer=4, aliases=("google/gemma-3-270m-it", "gemma-3-270m-it", "gemma3-270m")),
    # Mixture-of-experts (ffn = one expert's intermediate size)
    _m("Qwen3-30B-A3B", "Qwen/Qwen3-30B-A3B", 48, 2048, 32, 4, 128, 768, 151936, False, qkn=True,
       experts=128, experts_per_token=8, aliases=("Qwen/Qwen3-30B-A3B-FP8", "Qwen3-30B-A3B-FP8")),
    _m("Qwen3-235B-A22B", "Qwen/Qwen3-235B-A22B", 94, 4096, 64, 4, 128, 1536, 151936, False, qkn=True,
       experts=128, experts_per_token=8, aliases=("Qwen/Qwen3-235B-A22B-FP8", "Qwen3-235B-A22B-FP8")),
]}
# Instruct variants of Qwen share the base architecture.
for _s in list(MODELS.values()):
    if _s.name.startswith(("Qwen2.5-", "Qwen3-")) and "Instruct" not in _s.name:
        extra = (f"{_s.hf_id}-Instruct", f"{_s.name}-Instruct") if _s.name.startswith("Qwen2.5") else ()
        MODELS[_s.name] = replace(_s, aliases=_s.aliases + extra)

_TB = 1e12
#: Built-in GPU catalog (dense peak, no sparsity). $/hour are defaults only.
GPUS: dict[str, GpuSpec] = {g.name: g for g in [
    GpuSpec("H100", {"bf16": 989.4e12, "fp8": 1978.9e12, "fp32": 66.9e12}, 3.35 * _TB, 80e9, 2.50, 450e9,
            aliases=("h100_sxm", "h100-sxm", "h100 sxm", "h100-sxm5-80gb")),
    GpuSpec("H200", {"bf16": 989.4e12, "fp8": 1978.9e12, "fp32": 66.9e12}, 4.8 * _TB, 141e9, 3.50, 450e9,
            aliases=("h200_sxm", "h200-sxm")),
    GpuSpec("A100", {"bf16": 312e12, "fp32": 19.5e12}, 2.039 * _TB, 80e9, 1.50, 300e9,
            aliases=("a100-80gb", "a100_80gb", "a100 80gb", "a100-sxm4-80gb")),
    GpuSpec("L40S", {"bf16": 362.05e12, "fp8": 733e12, "fp32": 91.6e12}, 0.864 * _TB, 48e9, 1.00, 32e9,
            aliases=("l40s-48gb",)),
    GpuSpec("B200", {"bf16": 2250e12, "fp8": 4500e12, "fp4": 9000e12, "fp32": 80e12}, 8.0 * _TB, 180e9, 6.00,
            900e9, aliases=("b200_sxm", "hgx-b200")),
    GpuSpec("RTX4090", {"bf16": 165.2e12, "fp8": 330.3e12, "fp32": 82.6e12}, 1.008 * _TB, 24e9, 0.40, 32e9,
            aliases=("rtx-4090", "rtx 4090", "4090", "geforce-rtx-4090")),
]}


def _norm(name: str) -> str:
    return str(name).strip().lower().replace("_", "-").replace(" ", "-")


def _lookup(name: str, catalog: Mapping[str, Any], what: str, hint: str) -> Any:
    key = _norm(name)
    table: dict[str, Any] = {}
    for spec in catalog.values():
        for n in (spec.name, getattr(spec, "hf_id", ""), *spec.aliases):
            if n:
                table[_norm(n)] = spec
                table[_norm(n.split("/")[-1])] = spec
    if key in table:
        return table[key]
    raise TtsplanError(f"{what} must be one of {', '.join(catalog)}, got {name!r}."
                       + did_you_mean(str(name).split("/")[-1], list(catalog)) + f" {hint}")


def get_model_spec(name: str | ModelSpec | Path) -> ModelSpec:
    """A catalog model by name or HF id (case-insensitive), or a spec / config file path.

    >>> get_model_spec("Llama-3.1-8B").params
    8030261248
    """
    if isinstance(name, ModelSpec):
        return name
    p = Path(str(name))
    if p.suffix.lower() in (".json", ".toml") or p.is_file():
        return load_model_spec(p)
    return _lookup(str(name), MODELS, "model",
                   "Or pass a config.json / .toml spec file (see docs/cost-model.md).")


def get_gpu_spec(name: str | GpuSpec | Path) -> GpuSpec:
    """A catalog GPU by name (case-insensitive, e.g. ``h100_sxm``), or a JSON/TOML spec file path."""
    if isinstance(name, GpuSpec):
        return name
    p = Path(str(name))
    if p.suffix.lower() in (".json", ".toml") or p.is_file():
        return load_gpu_spec(p)
    return _lookup(str(name), GPUS, "gpu", "Or pass a JSON/TOML GPU spec file.")


def _read_mapping(source: str | Path | Mapping[str, Any], what: str) -> tuple[dict[str, Any], str]:
    if isinstance(source, Mapping):
        return dict(source), str(source.get("name", what))
    p = Path(source)
    if not p.is_file():
        raise TtsplanError(f"{what} file must exist, got {str(p)!r}. Check the path.")
    try:
        import tomllib  # Python >= 3.11
    except ImportError:  # pragma: no cover - Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        text = p.read_text()
        data = tomllib.loads(text) if p.suffix.lower() == ".toml" else json.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise TtsplanError(f"{p}: {what} file must be valid {p.suffix.lstrip('.').upper() or 'JSON'}, "
                           f"got a parse error ({str(exc).splitlines()[0][:160]}).") from None
    if not isinstance(data, dict):
        raise TtsplanError(f"{p}: {what} file must hold an object, got {type(data).__name__}.")
    return data, p.parent.name if p.name == "config.json" else p.stem


_SPEC_FIELDS = {f.name for f in fields(ModelSpec)}


def load_model_spec(source: str | Path | Mapping[str, Any], name: str | None = None) -> ModelSpec:
    """Build a ModelSpec from a HF ``config.json`` (dict or file) or a JSON/TOML file with spec fields.

    HF keys understood: num_hidden_layers, hidden_size, num_attention_heads, num_key_value_heads,
    head_dim, intermediate_size (moe_intermediate_size, num_experts, num_experts_per_tok for MoE),
    vocab_size, tie_word_embeddings, attention_bias, model_type, torch_dtype.
    """
    data, default_name = _read_mapping(source, "model spec")
    if "text_config" in data and isinstance(data["text_config"], dict):  # multimodal wrappers (Gemma 3 4B+)
        data = {**data, **data["text_config"]}
    if "num_hidden_layers" not in data:
        unknown = sorted(set(data) - _SPEC_FIELDS)
        if unknown:
            raise TtsplanError(f"model spec must use the fields {sorted(_SPEC_FIELDS)} (or be a HF config.json), "
                               f"got unknown keys {unknown}." + did_you_mean(unknown[0], _SPEC_FIELDS))
        missing = [f for f in ("layers", "hidden", "q_heads", "kv_heads", "head_dim", "ffn", "vocab") if f not in data]
        if missing:
            raise TtsplanError(f"model spec must set {missing}, got keys {sorted(data)}. Add them to the file.")
        data.setdefault("name", name or default_name)
        if "aliases" in data:
            data["aliases"] = tuple(data["aliases"])
        for f in ("bytes_per_weight", "bytes_per_kv"):
            if isinstance(data.get(f), str):
                data[f] = _dtype_bytes(data[f], f)
        return ModelSpec(**data)
    mt = str(data.get("model_type", "")).lower()
    try:
        hidden = int(data["hidden_size"])
        q = int(data["num_attention_heads"])
        kw: dict[str, Any] = dict(
            name=name or str(data.get("_name_or_path") or default_name).split("/")[-1] or "custom",
            layers=int(data["num_hidden_layers"]), hidden=hidden, q_heads=q,
            kv_heads=int(data.get("num_key_value_heads") or q),
            head_dim=int(data.get("head_dim") or hidden // q),
            ffn=int(data.get("moe_intermediate_size") if data.get("num_experts") or data.get("n_routed_experts")
                    else data["intermediate_size"]),
            vocab=int(data["vocab_size"]),
            tied_embeddings=bool(data.get("tie_word_embeddings", mt.startswith("gemma"))),
            qkv_bias=bool(data.get("attention_bias", mt == "qwen2")),
            qk_norm=mt.startswith(("qwen3", "gemma3")),
            norms_per_layer=4 if mt.startswith(("gemma2", "gemma3")) else 2,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise TtsplanError(f"config.json must have numeric {exc} (and the usual HF architecture keys), got "
                           f"keys {sorted(data)[:12]}. Pass a full HF config.json or a spec file.") from None
    experts = int(data.get("num_experts") or data.get("n_routed_experts") or 0)
    if experts:
        kw.update(experts=experts, experts_per_token=int(data.get("num_experts_per_tok") or 1),
                  shared_ffn=int(data.get("shared_expert_intermediate_size") or 0))
    dt = data.get("torch_dtype") or data.get("dtype")
    if isinstance(dt, str) and dt.lower() in ("bfloat16", "float16", "float32"):
        kw["bytes_per_weight"] = _dtype_bytes(dt, "torch_dtype")
    return ModelSpec(**kw)


def load_gpu_spec(source: str | Path | Mapping[str, Any]) -> GpuSpec:
    """A GpuSpec from a JSON/TOML file or dict with fields name, peak_flops{dtype: FLOP/s},
    mem_bandwidth (bytes/s), memory_bytes, usd_per_hour, interconnect_bandwidth."""
    data, default_name = _read_mapping(source, "GPU spec")
    allowed = {f.name for f in fields(GpuSpec)}
    unknown = sorted(set(data) - allowed)
    missing = sorted({"peak_flops", "mem_bandwidth", "memory_bytes", "usd_per_hour"} - set(data))
    if unknown or missing:
        raise TtsplanError(f"GPU spec must have fields {sorted(allowed)}, got unknown {unknown} and missing "
                           f"{missing}." + (did_you_mean(unknown[0], allowed) if unknown else ""))
    data.setdefault("name", default_name)
    data["aliases"] = tuple(data.get("aliases", ()))
    if not isinstance(data["peak_flops"], Mapping):
        raise TtsplanError(f"peak_flops must be a table dtype -> FLOP/s, got {data['peak_flops']!r}.")
    return GpuSpec(**data)
