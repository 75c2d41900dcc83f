"""Validation sampler: engines (hf, vllm, replay) that write graded SampleTables.

>>> from ttsplan.features.sampler import SamplerConfig, ValidationSampler, ReplayEngine
>>> SamplerConfig(k=4).k
4

torch / transformers / vllm are imported only inside the engines that need them.
"""
from ttsplan.features.sampler.base import Completion, Engine, SamplerConfig, prompt_seed, sample_seed
from ttsplan.features.sampler.replay import ReplayEngine
from ttsplan.features.sampler.runner import Progress, ValidationSampler, collect, parse_shard

ENGINES = ("hf", "vllm", "replay", "openai")


def make_engine(name: str, model: str | None = None, **kwargs):
    """Build an engine by name (``hf``, ``vllm``; ``replay`` needs ``table=``)."""
    from ttsplan.features.errors import TtsplanError, did_you_mean

    if name == "hf":
        from ttsplan.features.sampler.hf import HFEngine

        return HFEngine(model or "gemma3-270m", **kwargs)
    if name == "vllm":
        from ttsplan.features.sampler.vllm import VLLMEngine

        if not model:
            raise TtsplanError("--model must name a model for the vllm engine, got none.")
        return VLLMEngine(model, **kwargs)
    if name == "replay":
        return ReplayEngine(**kwargs)
    if name == "openai":  # any OpenAI-compatible server (features/sampler/openai.py)
        from ttsplan.features.sampler.openai import OpenAIEngine

        if not kwargs.get("base_url"):
            raise TtsplanError("--base-url must give the server for --engine openai, got none. "
                               "Pass e.g. --base-url http://127.0.0.1:8080.")
        return OpenAIEngine(model=model, **kwargs)
    raise TtsplanError(f"engine must be one of {', '.join(ENGINES)}, got {name!r}.{did_you_mean(name, ENGINES)}")


__all__ = ["SamplerConfig", "Completion", "Engine", "ValidationSampler", "ReplayEngine", "Progress",
           "collect", "parse_shard", "make_engine", "sample_seed", "prompt_seed", "ENGINES"]
