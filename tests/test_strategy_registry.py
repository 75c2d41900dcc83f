"""One registry of strategy names and aliases (fitting/strategy_registry.py) serves the cost model and the
planner: every alias either accepted before is accepted by both, meaning the same strategy."""
from __future__ import annotations

import pytest

from ttsplan.features.errors import TtsplanError
from ttsplan.fitting import cost
from ttsplan.fitting.strategy_registry import ALIASES, STRATEGIES, resolve_strategy_name
from ttsplan.planner import strategies as planner

#: the two registries before they were merged (fitting/cost.py, planner/strategies.py)
OLD_COST_ALIASES = {"self-consistency": "majority", "bon": "best-of-n", "best_of_n": "best-of-n",
                    "pass@k": "pass@n", "beam": "beam-search", "maj": "majority"}
OLD_PLANNER_ALIASES = {"maj": "majority", "self-consistency": "majority", "sc": "majority", "bon": "best-of-n",
                       "best_of_n": "best-of-n", "bestofn": "best-of-n", "weighted": "weighted-majority",
                       "weighted_majority": "weighted-majority", "wmaj": "weighted-majority",
                       "bom": "best-of-majority", "best_of_majority": "best-of-majority", "pass": "pass@n",
                       "pass@k": "pass@n", "oracle": "pass@n"}


def test_every_old_alias_is_kept_with_its_meaning():
    assert {**OLD_COST_ALIASES, **OLD_PLANNER_ALIASES} == ALIASES
    assert set(ALIASES.values()) <= set(STRATEGIES)


@pytest.mark.parametrize("alias", sorted(ALIASES))
def test_cost_model_and_planner_read_an_alias_alike(alias):
    target = ALIASES[alias]
    assert cost.resolve_strategy(alias.upper()) == target
    if target in planner.STRATEGIES:
        assert planner.get_strategy(f" {alias} ").name == target
    else:  # beam search is priced, never planned
        with pytest.raises(TtsplanError, match="strategy must be one of greedy, majority"):
            planner.get_strategy(alias)


def test_planner_plans_registry_names_with_the_registry_traits():
    assert set(planner.STRATEGIES) == set(STRATEGIES) - {"beam-search"}
    for name, s in planner.STRATEGIES.items():
        assert s.single_sample == STRATEGIES[name][1], name
    assert cost.STRATEGIES is STRATEGIES


def test_unknown_names_get_one_message_with_a_hint():
    with pytest.raises(TtsplanError, match='got \'majorty\'. Did you mean "majority"'):
        resolve_strategy_name("majorty")
    with pytest.raises(TtsplanError, match="strategy must be one of greedy, majority, pass@n, best-of-n"):
        cost.resolve_strategy("nope")
