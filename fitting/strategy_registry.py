"""The one registry of test-time-scaling strategy names: every strategy the package prices or plans, what
pricing needs to know of it, and every alias accepted for it (on the command line and in the API).

:mod:`ttsplan.fitting.cost` prices every name here (:data:`STRATEGIES`); :mod:`ttsplan.planner.strategies`
adds the accuracy model of the names it can plan (all but ``beam-search``). Both resolve a user's spelling
with :func:`resolve_strategy_name`, so an alias means the same strategy everywhere.

>>> resolve_strategy_name("Self-Consistency")
'majority'
>>> resolve_strategy_name("bom", ("majority", "best-of-majority"))
'best-of-majority'
>>> resolve_strategy_name("majorty", ("greedy", "majority"))
Traceback (most recent call last):
...
ttsplan.features.errors.TtsplanError: strategy must be one of greedy, majority, got 'majorty'. Did you mean "majority"?
"""
from __future__ import annotations

from collections.abc import Iterable

from ttsplan.features.errors import TtsplanError, did_you_mean

#: strategy -> (needs a verifier scoring pass, forces n = 1, beam search)
STRATEGIES: dict[str, tuple[bool, bool, bool]] = {
    "greedy": (False, True, False),
    "majority": (False, False, False),
    "pass@n": (False, False, False),
    "best-of-n": (True, False, False),
    "weighted-majority": (True, False, False),
    "best-of-majority": (True, False, False),
    "beam-search": (False, False, True),
}

#: alias (lower case) -> strategy name
ALIASES: dict[str, str] = {
    "maj": "majority", "self-consistency": "majority", "sc": "majority",
    "bon": "best-of-n", "best_of_n": "best-of-n", "bestofn": "best-of-n",
    "weighted": "weighted-majority", "weighted_majority": "weighted-majority", "wmaj": "weighted-majority",
    "bom": "best-of-majority", "best_of_majority": "best-of-majority",
    "pass": "pass@n", "pass@k": "pass@n", "oracle": "pass@n",
    "beam": "beam-search",
}


def canonical_strategy_name(name: str) -> str:
    """``name`` stripped, lower-cased and with an alias replaced by its strategy (not checked)."""
    key = str(name).strip().lower()
    return ALIASES.get(key, key)


def resolve_strategy_name(name: str, choices: Iterable[str] = STRATEGIES) -> str:
    """The strategy ``name`` (or an alias, any case) stands for; a :class:`TtsplanError` with "Did you mean"
    unless it is one of ``choices`` (default: every strategy)."""
    choices = tuple(choices)
    key = canonical_strategy_name(name)
    if key not in choices:
        raise TtsplanError(f"strategy must be one of {', '.join(choices)}, got {name!r}."
                           + did_you_mean(str(name), choices))
    return key


__all__ = ["ALIASES", "STRATEGIES", "canonical_strategy_name", "resolve_strategy_name"]
