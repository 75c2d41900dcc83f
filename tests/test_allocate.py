"""ttsplan.planner.allocate: hand-computed allocations, brute force, and hypothesis invariants."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ttsplan.features.errors import TtsplanError
from ttsplan.planner.allocate import (
    allocate,
    config_level,
    difficulty_bins,
    min_cost_total,
    uniform_baselines,
)

# two prompts, one strategy, N in (1, 2, 4), cost = N
ACC = np.array([[[0.5, 0.8, 0.9]], [[0.5, 0.54, 0.6]]])
COST = np.array([1.0, 2.0, 4.0])[None, None, :]


@pytest.mark.parametrize("budget, expect_n, expect_acc", [
    (2, [1, 1], 1.0),      # the cheapest plan
    (3, [2, 1], 1.3),      # p1: 1→2 gains 0.3 per sample, best first step
    (5, [4, 1], 1.4),      # next best slope: p1 2→4 (0.05/sample) over p2 1→2 (0.04)
    (6, [4, 2], 1.44),
    (8, [4, 4], 1.5),
    (100, [4, 4], 1.5),    # more than enough: the most accurate plan, budget left unused
])
def test_hand_computed(budget: float, expect_n: list[int], expect_acc: float) -> None:
    r = allocate(ACC, COST, budget)
    assert [(1, 2, 4)[g] for g in r.grid_index] == expect_n
    assert r.accuracy.sum() == pytest.approx(expect_acc)
    assert r.total_cost <= budget


def test_greedy_versus_majority() -> None:
    # strategy 0 = greedy (N=1 only), strategy 1 = majority; a unanimous prompt stays greedy
    acc = np.array([[[0.95, np.nan], [0.95, 0.96]], [[0.5, np.nan], [0.5, 0.9]]])
    cost = np.array([[1.0, 1.0], [1.0, 3.0]])[None]
    r = allocate(acc, cost, budget=4.0)
    assert r.strategy_index.tolist() == [0, 1] and r.grid_index.tolist() == [0, 1]


def test_budget_below_cheapest_plan() -> None:
    with pytest.raises(TtsplanError, match=r"Raise --budget to at least 2"):
        allocate(ACC, COST, 1.5)
    assert min_cost_total(COST, ACC) == 2.0


def test_risk_averse_uses_decision() -> None:
    lower = ACC.copy()
    lower[0] = [[0.5, 0.5, 0.5]]  # the lower bound says p1 gains nothing from more samples
    r = allocate(ACC, COST, 3.0, decision=lower)
    assert r.grid_index.tolist() == [0, 1]
    assert r.accuracy.tolist() == [0.5, 0.54]  # reported: the expected accuracy


def test_bad_shapes_and_costs() -> None:
    with pytest.raises(TtsplanError, match="prompts × strategies × grid"):
        allocate(np.zeros((2, 3)), np.ones(3), 1.0)
    with pytest.raises(TtsplanError, match="at least one prompt"):
        allocate(np.zeros((0, 1, 2)), np.ones(2), 1.0)
    with pytest.raises(TtsplanError, match="costs must be finite and > 0"):
        allocate(ACC, np.zeros(3), 1.0)


def test_baselines() -> None:
    uni = uniform_baselines(ACC, COST, 4.0)  # uniform N=2 costs 4
    assert uni[0]["grid_index"] == 1 and uni[0]["accuracy"] == pytest.approx(0.67)
    assert uniform_baselines(ACC, COST, 1.0)[0]["grid_index"] is None
    lvl = config_level(ACC, COST, 8.0)
    assert (lvl["grid_index"], lvl["cost"]) == (2, 8.0)
    bins = difficulty_bins(ACC, COST, 6.0, difficulty=np.array([0.0, 1.0]), bins=2)
    assert bins["cost"] <= 6.0 and bins["grid_index"].tolist() == [1, 1]  # each bin: 3/prompt → N=2


@st.composite
def problems(draw, max_prompts: int = 8):
    P = draw(st.integers(1, max_prompts))
    S = draw(st.integers(1, 3))
    G = draw(st.integers(1, 4))
    acc = draw(hnp.arrays(float, (P, S, G), elements=st.floats(0, 1)))
    mask = draw(hnp.arrays(bool, (P, S, G), elements=st.booleans()))
    mask[:, 0, 0] = False  # every prompt keeps one option
    acc = np.where(mask, np.nan, acc)
    base = np.cumsum(draw(hnp.arrays(float, (S, G), elements=st.floats(0.1, 5))), axis=1)
    scale = draw(hnp.arrays(float, (P, 1, 1), elements=st.floats(0.5, 2)))
    cost = base[None] * scale
    lo = min_cost_total(cost, acc)
    hi = float(np.where(np.isnan(acc), 0, cost).reshape(P, -1).max(axis=1).sum())
    f1, f2 = sorted(draw(st.lists(st.floats(0, 1.2), min_size=2, max_size=2)))
    return acc, cost, lo + f1 * (hi - lo) + 1e-9, lo + f2 * (hi - lo) + 1e-9


@settings(max_examples=150, deadline=None)
@given(problems())
def test_invariants(problem) -> None:
    acc, cost, b1, b2 = problem
    r1, r2 = allocate(acc, cost, b1), allocate(acc, cost, b2)
    for r, b in ((r1, b1), (r2, b2)):
        assert r.total_cost <= b * (1 + 1e-12)                             # never exceeds the budget
        assert not np.isnan(acc[np.arange(len(acc)), r.strategy_index, r.grid_index]).any()  # on the grid
        assert r.total_cost == pytest.approx(cost[np.arange(len(acc)), r.strategy_index, r.grid_index].sum())
    assert r2.accuracy.sum() >= r1.accuracy.sum() - 1e-9                  # more budget never hurts


@settings(max_examples=100, deadline=None)
@given(problems(max_prompts=3))
def test_optimal_at_the_cost_it_spends(problem) -> None:
    """Lagrangian optimality: no allocation spending at most as much is more accurate (brute force)."""
    acc, cost, b, _ = problem
    P, S, G = acc.shape
    r = allocate(acc, cost, b)
    opts = [[(s, g) for s in range(S) for g in range(G) if not np.isnan(acc[p, s, g])] for p in range(P)]
    best = -1.0
    for combo in itertools.product(*opts):
        c = sum(cost[p, s, g] for p, (s, g) in enumerate(combo))
        if c <= r.total_cost * (1 + 1e-12):
            best = max(best, sum(acc[p, s, g] for p, (s, g) in enumerate(combo)))
    assert r.accuracy.sum() >= best - 1e-9


def test_large_problem_uses_subsample_and_meets_budget() -> None:
    rng = np.random.default_rng(1)
    P, G = 20_000, 16
    p = rng.beta(0.7, 0.7, P)[:, None, None]
    n = np.arange(1, G + 1)[None, None, :]
    acc = 1 - (1 - p) ** n
    cost = (n * rng.lognormal(3, 0.5, P)[:, None, None]).astype(float)
    budget = 4 * float(cost[:, 0, 0].sum())
    r = allocate(acc, cost, budget)
    assert r.total_cost <= budget
    assert budget - r.total_cost < float(cost.max())  # within one allocation step
    # Independent truth: every prompt's curve is concave in N at a constant cost c_p per extra sample, so the
    # best fractional allocation of a spend S (an upper bound on any allocation costing <= S) takes the
    # 300,000 single-sample steps in decreasing gain/cost order. The allocation must reach that bound at
    # its own spend (Lagrangian optimality) and cannot exceed it at the budget.
    a, c = acc[:, 0, :], cost[:, 0, :]
    gain, step = np.diff(a, axis=1).ravel(), np.diff(c, axis=1).ravel()
    order = np.argsort(-gain / step, kind="stable")
    cum_cost, cum_gain = np.cumsum(step[order]), np.cumsum(gain[order])

    def fractional_best(spend: float) -> float:
        rest = spend - c[:, 0].sum()
        j = int(np.searchsorted(cum_cost, rest, side="right"))
        done_cost, done_gain = (cum_cost[j - 1], cum_gain[j - 1]) if j > 0 else (0.0, 0.0)
        part = (rest - done_cost) / step[order][j] * gain[order][j] if j < order.size else 0.0
        return float(a[:, 0].sum() + done_gain + part)

    assert r.accuracy.sum() == pytest.approx(fractional_best(r.total_cost), abs=1e-6)
    assert r.accuracy.sum() <= fractional_best(budget) + 1e-6
    assert r.accuracy == pytest.approx(acc[np.arange(P), 0, r.grid_index])  # reported = the chosen option's
