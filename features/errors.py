"""User-facing errors shared by every package.

Everything that is the caller's fault (bad files, bad arguments) raises a subclass of
:class:`TtsplanError`; the CLI turns these into one message and exit code 2.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class TtsplanError(ValueError):
    """Bad input: the message says what is wrong and how to fix it."""


class SchemaError(TtsplanError):
    """A table violates its contract. ``problems`` lists every violation found."""

    def __init__(self, name: str, problems: list[str]):
        self.name = name
        self.problems = list(problems)
        head = f"{name}: {len(self.problems)} problem{'s' if len(self.problems) != 1 else ''} found"
        super().__init__(head + "\n" + "\n".join(f"  - {p}" for p in self.problems))


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ' Did you mean "x"?' for the closest choice, or '' when nothing is close.

    >>> did_you_mean("promt_id", ["prompt_id", "config"])
    ' Did you mean "prompt_id"?'
    """
    choices = list(choices)
    lower = {c.lower(): c for c in choices}
    if word.lower() in lower:
        return f' Did you mean "{lower[word.lower()]}"?'
    match = difflib.get_close_matches(word.lower(), list(lower), n=1, cutoff=0.6)
    return f' Did you mean "{lower[match[0]]}"?' if match else ""
