"""ttsplan.planner.budget: a frozen, self-validating Budget."""
from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ttsplan.features.errors import TtsplanError
from ttsplan.planner.budget import UNITS, Budget, normalize_unit


def test_total_and_per_prompt() -> None:
    assert Budget(8, "samples", per_prompt=True).total(10) == 80.0
    assert Budget(500, "tokens").total(10) == 500.0
    assert Budget(500, "tokens").per_prompt_amount(10) == 50.0


def test_units_and_aliases() -> None:
    assert Budget(1, "USD").unit == "usd"
    assert Budget(1, "$").unit == "usd"
    assert Budget(1, "gpu-seconds").unit == "seconds"
    assert Budget(1, "eflops").priced and not Budget(1, "tokens").priced
    for u in UNITS:
        assert normalize_unit(u) == u


@pytest.mark.parametrize("amount", [0, -1, float("nan"), float("inf"), "abc", None])
def test_bad_amount(amount) -> None:
    with pytest.raises(TtsplanError, match="budget must be a finite number > 0"):
        Budget(amount, "samples")


def test_unknown_unit_did_you_mean() -> None:
    with pytest.raises(TtsplanError, match='Did you mean "tokens"'):
        Budget(5, "tokns")


def test_all_problems_reported_at_once() -> None:
    with pytest.raises(TtsplanError) as exc:
        Budget(-1, "tokns")
    assert "finite number" in str(exc.value) and "unit must be" in str(exc.value)


def test_frozen() -> None:
    b = Budget(8, "samples")
    with pytest.raises(dataclasses.FrozenInstanceError):
        b.amount = 9  # type: ignore[misc]


def test_parse() -> None:
    assert Budget.parse("8/prompt") == Budget(8, "samples", per_prompt=True)
    assert Budget.parse("8x", "tokens") == Budget(8, "tokens", per_prompt=True)
    assert Budget.parse("1,000", "tokens") == Budget(1000, "tokens")
    assert Budget.parse("2e6", "tokens").describe() == "2,000,000 tokens in total"
    with pytest.raises(TtsplanError, match="--budget 8/prompt"):
        Budget.parse("lots")


def test_total_needs_prompts() -> None:
    with pytest.raises(TtsplanError, match="n_prompts must be >= 1"):
        Budget(8).total(0)


@given(st.floats(min_value=1e-6, max_value=1e12, allow_nan=False), st.sampled_from(UNITS), st.booleans())
def test_dict_round_trip(amount: float, unit: str, per_prompt: bool) -> None:
    b = Budget(amount, unit, per_prompt)
    assert Budget.from_dict(b.to_dict()) == b
    assert Budget.parse(repr(amount) + ("/prompt" if per_prompt else ""), unit) == b
