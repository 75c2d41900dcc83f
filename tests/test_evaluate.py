"""ttsplan.planner.evaluate: split, cost-to-match, and held-out scoring on synthetic and real samples."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from test_plan import synthetic  # tests/ is on sys.path under pytest

from ttsplan.features.errors import TtsplanError
from ttsplan.features.estimators import prompt_curves
from ttsplan.planner.evaluate import _cost_to_match, evaluate, parse_budgets, split_prompts

KEYS = {"config", "savings_vs_uniform_bon", "savings_vs_uniform_majority", "oracle_fraction", "accuracy",
        "uniform_accuracy", "cost", "budget", "budgets", "test_prompts"}


def test_split_is_seeded_disjoint_and_complete() -> None:
    ids = [f"p{i}" for i in range(20)]
    v1, t1 = split_prompts(ids, 0.5, 3)
    assert (v1, t1) == split_prompts(list(reversed(ids)), 0.5, 3)
    assert set(v1).isdisjoint(t1) and sorted(v1 + t1) == sorted(ids) and len(t1) == 10
    assert split_prompts(ids, 0.5, 4) != (v1, t1)
    with pytest.raises(TtsplanError, match="test_fraction"):
        split_prompts(ids, 1.0, 0)


def test_cost_to_match_hand_computed() -> None:
    ns = np.array([1, 2, 3, 4])
    curve = np.array([0.5, 0.6, 0.7, 0.72])
    assert _cost_to_match(curve, ns, 0.65) == (pytest.approx(2.5), False)
    assert _cost_to_match(curve, ns, 0.6) == (pytest.approx(2.0), False)
    assert _cost_to_match(curve, ns, 0.9) == (4.0, True)   # never reached: a lower bound at the cap
    assert _cost_to_match(curve, ns, 0.25)[0] == pytest.approx(0.5)


def test_parse_budgets() -> None:
    assert parse_budgets("4, 8,16/prompt") == [4.0, 8.0, 16.0]
    assert parse_budgets(None) is None and parse_budgets("auto") is None
    with pytest.raises(TtsplanError, match="--budgets"):
        parse_budgets("four")


def _pool_curve(t: pl.DataFrame, seed: int, pilot: int) -> np.ndarray:
    """Uniform majority accuracy at N = 1..pool on the test prompts' samples after the pilot."""
    _, test = split_prompts(t["prompt_id"].unique().to_list(), 0.5, seed)
    pool = (t.filter(pl.col("prompt_id").is_in(test) & (pl.col("sample_idx") >= pilot))
            .with_columns(pl.col("sample_idx") - pilot))
    ks = list(range(1, int(pool.group_by("prompt_id").len()["len"].min()) + 1))
    return prompt_curves(pool, "maj", ks).group_by("k").agg(pl.col("value").mean()).sort("k")["value"].to_numpy()


def _samples_to_match(curve: np.ndarray, accuracy: float) -> tuple[float, bool]:
    """Brute-force search, on a 1e-4 grid of N in [0, pool], for the first N where the piecewise-linear
    uniform curve through (0, 0), (1, maj@1), … reaches ``accuracy``; (pool, True) if it never does."""
    ns = np.arange(0, curve.size + 1, dtype=float)
    x = np.linspace(0.0, curve.size, curve.size * 10_000 + 1)
    ok = np.flatnonzero(np.interp(x, ns, np.r_[0.0, curve]) >= accuracy - 1e-12)
    return (float(curve.size), True) if ok.size == 0 else (float(x[ok[0]]), False)


def _check_savings(r: dict, curve: np.ndarray) -> None:
    """savings = the samples per prompt uniform majority needs for the plan's realized accuracy / the plan's."""
    need, capped = _samples_to_match(curve, r["accuracy"])
    assert r["majority_capped"] is capped
    assert r["majority_cost_to_match"] == pytest.approx(need, abs=2e-4)
    assert r["savings_vs_uniform_majority"] == pytest.approx(need / r["cost"], abs=2e-4 / r["cost"])


def test_evaluate_synthetic() -> None:
    t = synthetic(prompts=40, k=24, configs=("a", "b"))
    rows = evaluate(t, budgets=[6, 10, 50], pilot=4, seed=1)
    assert [r["config"] for r in rows] == ["a", "b"]
    for r in rows:
        assert KEYS <= set(r)
        assert r["savings_vs_uniform_bon"] is None  # no reward column
        curve = _pool_curve(t.filter(pl.col("config") == r["config"]), seed=1, pilot=4)
        for b in r["budgets"]:
            if "skipped" not in b:
                _check_savings(b, curve)
        assert 0 < r["oracle_fraction"] <= 1 + 1e-9
        assert r["cost"] <= 6 + 1e-9 and r["budget"] == 6
        assert r["budgets"][2]["skipped"].startswith("budget above the held-out pool")
        assert r["pool"] == 20 and r["test_prompts"] == 20


def test_uniform_curve_is_the_exact_estimator() -> None:
    """uniform_accuracy at a whole N equals the exact maj@N over the test prompts' held-out pool."""
    t = synthetic(prompts=20, k=16, seed=3)
    r = evaluate(t, budgets=[8], pilot=4, seed=0)[0]
    _, test = split_prompts(t["prompt_id"].unique().to_list(), 0.5, 0)
    pool = (t.filter(pl.col("prompt_id").is_in(test) & (pl.col("sample_idx") >= 4))
            .with_columns(pl.col("sample_idx") - 4))
    ks = list(range(1, 13))
    curve = prompt_curves(pool, "maj", ks).group_by("k").agg(pl.col("value").mean()).sort("k")["value"].to_numpy()
    assert r["uniform_majority_accuracy"] == pytest.approx(float(np.interp(r["cost"], ks, curve)))
    need = r["majority_cost_to_match"]
    if not r["majority_capped"]:
        assert float(np.interp(need, ks, curve)) == pytest.approx(r["accuracy"], abs=1e-9)


def test_bad_inputs() -> None:
    t = synthetic(prompts=10, k=6)
    with pytest.raises(TtsplanError, match="Lower --pilot"):
        evaluate(t, pilot=4)
    with pytest.raises(TtsplanError, match="empty table"):
        evaluate(t.clear())
    with pytest.raises(TtsplanError, match='Did you mean "majority"'):
        evaluate(t, strategies="majorty", pilot=2)
    with pytest.raises(TtsplanError, match="Pass --budgets between"):
        evaluate(t, budgets=[100], pilot=2)


def test_real_data(shared_data) -> None:
    from ttsplan.features.io import read_table

    t, _ = read_table(shared_data / "samples" / "game24_gpt4.parquet")
    rows = evaluate(t.filter(pl.col("config") == "gpt-4/T0.7/game24-standard"), budgets=[8], pilot=4)
    r = rows[0]
    assert r["test_prompts"] == 50 and r["pool"] == 96
    assert 0 < r["accuracy"] < 0.3 and 0 < r["oracle_fraction"] <= 1 + 1e-9
    assert r["savings_vs_uniform_bon"] is None
    _check_savings(r, _pool_curve(t.filter(pl.col("config") == "gpt-4/T0.7/game24-standard"), seed=0, pilot=4))


def test_unscorable_config_is_skipped_not_fatal() -> None:
    t = synthetic(prompts=20, k=12, configs=("a", "b"))
    t = t.with_columns(pl.when(pl.col("config") == "b").then(False).otherwise(pl.col("correct")).alias("correct"))
    rows = evaluate(t, pilot=3)
    assert rows[0]["accuracy"] is not None and "skipped" not in rows[0]
    assert "no correct sample" in rows[1]["skipped"] and rows[1]["accuracy"] is None
    with pytest.raises(TtsplanError, match="no correct sample"):
        evaluate(t.filter(pl.col("config") == "b"), pilot=3)
