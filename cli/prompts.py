"""The PROMPTS argument of ``ttsplan sample`` and ``ttsplan run``: a prompt file or ``tasks:FAMILY[:N]``.

>>> prompts, is_tasks = load_prompts("tasks:larger:2", shots=0, seed=0)
>>> len(prompts), is_tasks, stop_strings(None, is_tasks)
(2, True, ('\\n',))
"""
from __future__ import annotations

import codecs

from ttsplan.features.errors import TtsplanError, did_you_mean
from ttsplan.features.tasks import FAMILIES, Prompt, format_prompt, make_tasks, read_prompts


def load_prompts(spec: str, shots: int, seed: int) -> tuple[list[Prompt], bool]:
    """``(prompts, is_tasks)``: ``tasks:FAMILY[:N]`` (N generated tasks, default 64, with ``shots``
    worked examples) or a JSONL prompt/problem file."""
    if spec.startswith("tasks:"):
        parts = spec.split(":")
        family = parts[1] if len(parts) > 1 else ""
        try:
            n = int(parts[2]) if len(parts) > 2 else 64
        except ValueError:
            raise TtsplanError(f"PROMPTS must be tasks:FAMILY[:N] with an integer N, got {spec!r}.") from None
        if family not in FAMILIES:
            raise TtsplanError(f"PROMPTS task family must be one of {', '.join(FAMILIES)}, got {family!r}."
                               f"{did_you_mean(family, FAMILIES)}")
        return [format_prompt(p, shots, seed=seed) for p in make_tasks(family, n, seed=seed)], True
    return read_prompts(spec, shots=shots), False


def stop_strings(stop: str | None, is_tasks: bool) -> tuple[str, ...]:
    """``--stop`` with escapes decoded; by default a newline for task families and nothing for files."""
    if stop:
        return (codecs.decode(stop, "unicode_escape"),)
    return ("\n",) if is_tasks else ()


__all__ = ["load_prompts", "stop_strings"]
