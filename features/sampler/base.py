"""Engine protocol, sampling configuration and the per-completion record every engine returns.

>>> SamplerConfig(k=4, temperature=0.7).k
4
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import asdict, dataclass, field
from typing import Protocol, runtime_checkable

from ttsplan.features.errors import TtsplanError
from ttsplan.features.tasks import Prompt

REWARDS = ("self_certainty", "mean_logprob")
#: how an engine serves per-request calls: ``batch`` (in-process, :meth:`Engine.sample_many` on a
#: batch at a time) or ``async`` (streaming: one awaitable request per sample on :meth:`AsyncEngine.session`).
ENGINE_KINDS = ("batch", "async")


@dataclass(frozen=True)
class SamplerConfig:
    """Sampling parameters of one run (one ``config`` label in the SampleTable).

    ``batch_prompts`` prompts (each with all ``k`` samples) go through the model together; a
    chunk of that many prompts is also the unit written to disk, so Ctrl-C loses at most one.
    ``reward``: verifier-style score from the model's own distribution, ``self_certainty`` (mean over
    generated tokens of KL(uniform ‖ p), Kang et al. 2025) or ``mean_logprob``.
    """

    k: int = 16
    temperature: float = 0.7
    top_p: float = 1.0
    max_new_tokens: int = 32
    seed: int = 0
    stop: tuple[str, ...] = ("\n",)
    batch_prompts: int = 2
    config: str | None = None
    reward: str = "self_certainty"
    keep_text: bool = True

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.k, int) or self.k < 1:
            problems.append(f"k must be an integer >= 1, got {self.k!r}")
        if not (isinstance(self.temperature, (int, float)) and math.isfinite(self.temperature)
                and self.temperature >= 0):
            problems.append(f"temperature must be a finite number >= 0, got {self.temperature!r}")
        if not (0 < self.top_p <= 1):
            problems.append(f"top_p must be in (0, 1], got {self.top_p!r}")
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            problems.append(f"max_new_tokens must be an integer >= 1, got {self.max_new_tokens!r}")
        if not isinstance(self.batch_prompts, int) or self.batch_prompts < 1:
            problems.append(f"batch_prompts must be an integer >= 1, got {self.batch_prompts!r}")
        if self.reward not in REWARDS:
            problems.append(f"reward must be one of {', '.join(REWARDS)}, got {self.reward!r}")
        if isinstance(self.stop, str):
            object.__setattr__(self, "stop", (self.stop,))
        if problems:
            raise TtsplanError("SamplerConfig: " + "; ".join(problems) + ".")

    def params(self) -> dict:
        """JSON-able parameters (for provenance and resume checks)."""
        d = asdict(self)
        d["stop"] = list(self.stop)
        return d


@dataclass
class Completion:
    """One sampled completion with exact per-token statistics.

    ``logprob`` is the sum of the sampled tokens' log-probabilities and ``entropy`` the mean
    entropy (nats) of the full next-token distribution, both under the model's raw (temperature-1)
    distribution. ``reward`` is the configured self-score (higher is better).
    """

    text: str
    output_tokens: int
    prompt_tokens: int | None = None
    logprob: float | None = None
    entropy: float | None = None
    reward: float | None = None
    finish_reason: str | None = None
    token_ids: list[int] = field(default_factory=list)
    token_logprobs: list[float] = field(default_factory=list)
    token_entropies: list[float] = field(default_factory=list)


@runtime_checkable
class Engine(Protocol):
    """What the sampler and ``ttsplan run`` need from an engine.

    ``generate`` returns, for each prompt in order, exactly ``cfg.k`` completions in sample order.
    Sampling of (prompt, sample_idx) must depend only on ``cfg.seed``, the prompt id and the sample
    index (not on batch composition), so reruns and resumed runs reproduce the same table.

    The per-request calls draw single samples: ``sample_one(prompt, sample_idx, cfg)`` one completion,
    ``sample_many([(prompt, sample_idx), …], cfg)`` one completion per request, in order, each seeded
    by its own (prompt, sample_idx) whatever else is in the call. ``kind`` (one of
    :data:`ENGINE_KINDS`) declares how a caller should drive them: ``"batch"`` engines sample a batch
    of requests per call; ``"async"`` engines also give :class:`AsyncEngine` ``session()``.
    """

    name: str
    model_name: str
    kind: str

    def generate(self, prompts: Sequence[Prompt], cfg: SamplerConfig) -> list[list[Completion]]: ...

    def sample_one(self, prompt: Prompt, sample_idx: int, cfg: SamplerConfig) -> Completion: ...

    def sample_many(self, requests: Sequence[tuple[Prompt, int]], cfg: SamplerConfig) -> list[Completion]: ...

    def provenance(self) -> dict: ...


class RequestSession(Protocol):
    """An open connection of an ``async`` engine: many :meth:`request` calls may be awaited at once."""

    async def request(self, prompt: Prompt, sample_idx: int, cfg: SamplerConfig) -> Completion: ...


@runtime_checkable
class AsyncEngine(Engine, Protocol):
    """An engine of kind ``"async"``: ``async with engine.session() as s: await s.request(p, j, cfg)``."""

    def session(self) -> AbstractAsyncContextManager[RequestSession]: ...


def sample_alias(prompt: Prompt, sample_idx: int) -> Prompt:
    """``prompt`` under the id ``"<id>#<sample_idx>"``: how batch engines seed single samples.

    >>> sample_alias(Prompt("p", "Q?"), 3).id
    'p#3'
    """
    return dataclasses.replace(prompt, id=f"{prompt.id}#{sample_idx}")


class BatchEngine:
    """Per-request calls for in-process engines whose ``generate`` samples whole batches (hf, vllm).

    Request ``(p, j)`` is drawn as the one sample (``k = 1``) of ``p`` under the id ``"p#j"``
    (:func:`sample_alias`), so it gets the engine's own seed for that id whatever else shares its
    batch: reruns, resumed runs and other batch sizes reproduce it.
    """

    kind = "batch"

    def generate(self, prompts: Sequence[Prompt], cfg: SamplerConfig) -> list[list[Completion]]:
        raise NotImplementedError

    def sample_many(self, requests: Sequence[tuple[Prompt, int]], cfg: SamplerConfig) -> list[Completion]:
        """One completion per ``(prompt, sample_idx)``, in order (see the class doc for seeding)."""
        if not requests:
            return []
        one = dataclasses.replace(cfg, k=1)
        return [group[0] for group in self.generate([sample_alias(p, j) for p, j in requests], one)]

    def sample_one(self, prompt: Prompt, sample_idx: int, cfg: SamplerConfig) -> Completion:
        """One completion of ``prompt`` for ``sample_idx``."""
        return self.sample_many([(prompt, sample_idx)], cfg)[0]


def sample_seed(seed: int, prompt_id: str, sample_idx: int) -> int:
    """A 63-bit seed for one (prompt, sample) stream, independent of batching.

    >>> sample_seed(0, "p", 1) == sample_seed(0, "p", 1) != sample_seed(0, "p", 2)
    True
    """
    h = hashlib.sha256(f"{seed}/{prompt_id}/{sample_idx}".encode()).digest()
    return int.from_bytes(h[:8], "little") >> 1


def prompt_seed(seed: int, prompt_id: str) -> int:
    """A 31-bit seed for all samples of one prompt (engines with one seed per request, e.g. vLLM)."""
    h = hashlib.sha256(f"{seed}/{prompt_id}".encode()).digest()
    return int.from_bytes(h[:4], "little") >> 1


__all__ = ["SamplerConfig", "Completion", "Engine", "AsyncEngine", "RequestSession", "BatchEngine", "ENGINE_KINDS",
           "REWARDS", "sample_alias", "sample_seed", "prompt_seed"]
