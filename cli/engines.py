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

from ttsplan.features.errors import TtsplanError
from ttsplan.features.sampler import Engine, make_engine


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


def build_engine(engine: str, model: str | None, *, config: str | None = None, device: str = "cpu",
                 base_url: str | None = None, api_key_env: str | None = None, chat: bool = False,
                 concurrency: int = 8, top_logprobs: int = 5, extra_body: str | None = None) -> Engine:
    """The engine named by ``--engine`` with its options.

    ``replay`` serves the recorded SampleTable ``--model`` (``config`` picks one of its configurations);
    ``openai`` is checked against the server at once (wrong URL or model: one message before any work);
    ``hf`` runs on ``device``; ``top_logprobs < 0`` asks the openai server for none.
    """
    if engine == "replay":
        if not model:
            raise TtsplanError("--model must be a recorded SampleTable for --engine replay, got none.")
        return make_engine("replay", table=model, config=config)
    if engine == "openai":  # see docs/openai-engine.md
        eng = make_engine("openai", model, base_url=base_url, api_key_env=api_key_env, chat=chat,
                          concurrency=concurrency, top_logprobs=None if top_logprobs < 0 else top_logprobs,
                          extra_body=parse_extra_body(extra_body))
        eng.check()
        return eng
    if engine == "hf":
        return make_engine("hf", model, device=device)
    return make_engine(engine, model)


__all__ = ["build_engine", "parse_extra_body"]
