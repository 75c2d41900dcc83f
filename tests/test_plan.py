"""ttsplan.planner.plan / ttsplan.planner.strategies: plans on synthetic and real tables, JSON round trip."""
from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ttsplan.features.errors import TtsplanError
from ttsplan.features.schema import validate_sample_table
from ttsplan.fitting.cost import CostModel
from ttsplan.fitting.success import PromptSuccessModel
from ttsplan.planner.budget import Budget
from ttsplan.planner.plan import Allocation, Baseline, ConfigPlan, Plan, make_plan
from ttsplan.planner.strategies import STRATEGIES, cost_matrix, get_strategy, parse_strategies


def synthetic(prompts: int = 24, k: int = 12, configs: tuple[str, ...] = ("a",), reward: bool = False,
              seed: int = 0) -> pl.DataFrame:
    """Prompts with success probabilities spread over (0, 1); wrong answers concentrate on "w0"."""
    rng = np.random.default_rng(seed)
    rows = []
    for cfg in configs:
        for i in range(prompts):
            p = (i + 0.5) / prompts
            for j in range(k):
                ok = bool(rng.random() < p)
                ans = "gold" if ok else f"w{int(rng.integers(0, 3)) if rng.random() < 0.5 else 0}"
                row = {"config": cfg, "model": "gemma-3-270m", "prompt_id": f"q{i:03d}", "sample_idx": j,
                       "answer": ans, "correct": ok, "output_tokens": int(rng.integers(5, 40)), "prompt_tokens": 30}
                if reward:
                    row["reward"] = float(rng.normal(1.0 if ok else 0.0, 0.7))
                rows.append(row)
    return validate_sample_table(pl.DataFrame(rows))


@pytest.fixture(scope="module")
def table() -> pl.DataFrame:
    return synthetic(configs=("a", "b"))


def test_registry() -> None:
    assert get_strategy("SC").name == "majority" and get_strategy("bon").name == "best-of-n"
    with pytest.raises(TtsplanError, match='Did you mean "best-of-n"'):
        get_strategy("best-of-m")
    assert [s.name for s in parse_strategies(None)] == ["greedy", "majority", "best-of-n"]
    assert "weighted-majority" in [s.name for s in parse_strategies("weighted-majority")]
    with pytest.raises(TtsplanError) as exc:
        parse_strategies("majorty,gredy")
    assert "majority" in str(exc.value) and "greedy" in str(exc.value)


def test_strategy_accuracy_and_cost() -> None:
    t = synthetic(reward=True)
    m = PromptSuccessModel().fit(t)
    grid = [1, 4, 16]
    greedy = STRATEGIES["greedy"].accuracy(m, grid)
    assert np.isnan(greedy[:, 1:]).all() and np.allclose(greedy[:, 0], m.expected_accuracy("pass", [1])[:, 0])
    maj, bon = STRATEGIES["majority"].accuracy(m, grid), STRATEGIES["best-of-n"].accuracy(m, grid)
    wm = STRATEGIES["weighted-majority"].accuracy(m, grid)
    for j in range(len(grid)):  # per N: the better on average of maj@N and BoN@N, not a per-prompt max
        better = bon if bon[:, j].mean() > maj[:, j].mean() else maj
        assert np.allclose(wm[:, j], better[:, j])
    assert np.allclose(STRATEGIES["best-of-majority"].accuracy(m, grid), (maj + bon) / 2)
    lo, hi = STRATEGIES["majority"].accuracy(m, grid, "lower"), STRATEGIES["majority"].accuracy(m, grid, "upper")
    assert (lo <= maj + 1e-12).all() and (maj <= hi + 1e-12).all()
    # costs: samples = N (greedy 1); tokens = prompt + N × output; priced units from the cost model
    lp, lo_ = np.array([30.0]), np.array([10.0])
    assert cost_matrix("greedy", grid, lp, lo_, "samples").tolist() == [[1, 1, 1]]
    assert cost_matrix("majority", grid, lp, lo_, "tokens").tolist() == [[40, 70, 190]]
    cm = CostModel("gemma-3-270m", "H100")
    usd = cost_matrix("best-of-n", grid, lp, lo_, "usd", cm)
    ref = cm.price(n=np.array(grid), prompt_tokens=30, output_tokens=10, strategy="best-of-n", batch_prompts=64)
    assert np.allclose(usd[0], ref["cost_usd"])
    assert (usd > cost_matrix("majority", grid, lp, lo_, "usd", cm)).all()  # the verifier pass costs
    with pytest.raises(TtsplanError, match="--model"):
        cost_matrix("majority", grid, lp, lo_, "usd")


def test_plan_basics(table: pl.DataFrame) -> None:
    plan = make_plan(table, Budget(4, "samples", per_prompt=True))
    assert plan.mode == "per-prompt" and plan.schema_version == 1
    assert "best-of-n" not in plan.strategies  # no reward column
    assert any("no reward column" in n for n in plan.notes)
    assert len(plan.allocations) == table.select("config", "prompt_id").unique().height
    for c in plan.configs:
        assert c.per_prompt_cost <= c.budget_total + 1e-9
        assert c.expected_cost is None or c.expected_cost <= c.budget_total + 1e-9
        assert c.per_prompt_low <= c.per_prompt_accuracy <= c.per_prompt_high
        assert {b.name for b in c.baselines} == {"uniform", "difficulty-bins"}
    assert all(a.n in plan.grid for a in plan.allocations)
    assert plan.recommended_config in {"a", "b"}
    assert plan.summary().columns == ["config", "plan", "strategy", "n", "estimate", "ci_low", "ci_high", "cost"]


def _best_at_cost(options: list[list[tuple[int, float]]], budget: int) -> float:
    """Exact knapsack optimum by dynamic programming over integer sample costs: the most total accuracy of
    one option per prompt with total cost <= budget."""
    best = np.full(budget + 1, -np.inf)
    best[0] = 0.0
    for opts in options:
        nxt = np.full(budget + 1, -np.inf)
        for c, a in opts:
            if c <= budget:
                nxt[c:] = np.maximum(nxt[c:], best[:budget + 1 - c] + a)
        best = nxt
    return float(best.max())


def test_per_prompt_plan_is_optimal_at_its_spend(table: pl.DataFrame) -> None:
    """The per-prompt allocation maximizes the summed expected accuracy among all allocations that cost no
    more (exact DP over every option), on curves rebuilt from the success model (calibrate=False)."""
    plan = make_plan(table, Budget(4, "samples", per_prompt=True), calibrate=False)
    grid = list(plan.grid)
    m = PromptSuccessModel(confidence=0.9).fit(table)
    greedy, maj = STRATEGIES["greedy"].accuracy(m, grid), STRATEGIES["majority"].accuracy(m, grid)
    alloc = plan.allocations_frame()
    for cfg in ("a", "b"):
        rows = [i for i, (c, _) in enumerate(m.keys_.iter_rows()) if c == cfg]
        options = [[(1, float(greedy[i, 0]))] + [(n, float(maj[i, j])) for j, n in enumerate(grid)] for i in rows]
        got = alloc.filter(pl.col("config") == cfg)
        spent, total = int(got["n"].sum()), float(got["expected_accuracy"].sum())
        assert spent <= 4 * len(rows)
        assert total == pytest.approx(_best_at_cost(options, spent), abs=1e-9)


def test_plan_json_round_trip(table: pl.DataFrame) -> None:
    plan = make_plan(table, Budget(150, "tokens", per_prompt=True), model="gemma-3-270m", gpu="H100")
    text = plan.to_json()
    assert Plan.from_json(text) == plan
    assert Plan.from_json(text).to_json() == text
    d = json.loads(text)
    assert d["schema_version"] == 1 and len(d["input_hash"]) == 16 and d["model"] == "Gemma-3-270M"
    assert all(c["usd_total"] is None or c["usd_total"] > 0 for c in d["configs"])
    with pytest.raises(TtsplanError, match="schema_version"):
        Plan.from_json(text.replace('"schema_version": 1', '"schema_version": 99'))


def test_larger_budget_never_lowers_accuracy(table: pl.DataFrame) -> None:
    prev = {}
    for b in (1, 2, 3, 5, 8, 16, 64):
        plan = make_plan(table, Budget(b, "samples", per_prompt=True))
        for c in plan.configs:
            assert c.per_prompt_accuracy >= prev.get(c.config, 0.0) - 1e-12
            prev[c.config] = c.per_prompt_accuracy


def test_reward_strategies_and_risk_averse() -> None:
    t = synthetic(reward=True)
    plan = make_plan(t, Budget(6, "samples", per_prompt=True), strategies="majority,best-of-n,weighted-majority")
    assert plan.strategies == ("majority", "best-of-n", "weighted-majority")
    safe = make_plan(t, Budget(6, "samples", per_prompt=True), risk_averse=True)
    assert safe.risk_averse and safe.configs[0].per_prompt_cost <= 6 * 24 + 1e-9
    with pytest.raises(TtsplanError, match="best-of-n needs a reward column"):
        make_plan(synthetic(), Budget(6, "samples", per_prompt=True), strategies="best-of-n")


def test_pilot_mode_counts_pilot_cost() -> None:
    t = synthetic(prompts=30, k=12)
    plan = make_plan(t, Budget(6, "samples", per_prompt=True), pilot=4)
    assert plan.mode == "pilot" and plan.pilot_k0 == 4 and "greedy" not in plan.strategies
    assert min(a.n for a in plan.allocations) >= 4
    c = plan.configs[0]
    assert c.pilot_cost == 4 * 30 and c.per_prompt_cost <= 6 * 30 + 1e-9
    with pytest.raises(TtsplanError, match="cheapest plan"):
        make_plan(t, Budget(3, "samples", per_prompt=True), pilot=4)


def test_bad_inputs() -> None:
    with pytest.raises(TtsplanError, match="at least one prompt"):
        make_plan(synthetic().clear(), Budget(4))
    with pytest.raises(TtsplanError, match='Did you mean "usd"'):
        make_plan(synthetic(), Budget(4), unit="usdd")
    with pytest.raises(TtsplanError, match="--model"):
        make_plan(synthetic(), Budget(4, "usd"))


def test_default_budget_is_majority_at_8(table: pl.DataFrame) -> None:
    plan = make_plan(table)
    assert plan.budget_is_default and plan.budget == Budget(8, "samples", per_prompt=True)
    assert "default" in plan.describe()


def test_real_data_plan(shared_data) -> None:
    from ttsplan.features.io import read_table

    t, _ = read_table(shared_data / "samples" / "game24_gpt4.parquet")
    plan = make_plan(t, Budget(8, "samples", per_prompt=True))
    for c in plan.configs:
        uni = next(b for b in c.baselines if b.strategy == "majority")
        assert c.per_prompt_accuracy >= uni.expected_accuracy - 1e-9  # the plan is at least the uniform one
        assert c.per_prompt_cost <= 800 + 1e-9


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=5), st.integers(1, 256), finite, finite), min_size=1, max_size=6),
       st.floats(1e-3, 1e9), st.sampled_from(["samples", "usd"]), st.booleans())
def test_json_round_trips_exactly(allocs, amount, unit, per_prompt) -> None:
    al = tuple(Allocation("c", pid, "majority", n, a, a - 1, a + 1, abs(c)) for pid, n, a, c in allocs)
    base = (Baseline("uniform", "majority", 4, allocs[0][2], 1.5), Baseline("difficulty-bins", None, None, None, None))
    cp = ConfigPlan("c", len(al), amount, "majority", 4, 0.1, 0.05, 0.2, 1.0, None, 1e-3, 2.0, 0.3, 0.2, 0.4, 1.0,
                    None, None, None, 0.0, 1.0, 0.01, (("majority", len(al)),), 4.0, base)
    plan = Plan(Budget(amount, unit, per_prompt), "per-prompt", ("majority",), (1, 2, 4), (cp,), al, "c", "h", "m",
                notes=("x",))
    assert Plan.from_json(plan.to_json()) == plan


def test_calibration_matches_exact_curves(table: pl.DataFrame) -> None:
    """With calibration the uniform baselines at N <= k match the exact estimators' config means."""
    from ttsplan.features.estimators import prompt_curves

    plan = make_plan(table, Budget(8, "samples", per_prompt=True))
    exact = prompt_curves(table, "maj", [8]).group_by("config").agg(pl.col("value").mean()).sort("config")
    for c, want in zip(plan.configs, exact["value"].to_list()):
        uni = next(b for b in c.baselines if b.name == "uniform" and b.strategy == "majority")
        assert uni.n == 8 and uni.expected_accuracy == pytest.approx(want, abs=0.01)  # up to clipping at 0 and 1
    raw = make_plan(table, Budget(8, "samples", per_prompt=True), calibrate=False)
    assert any("calibrated" in n for n in plan.notes) and not any("calibrated" in n for n in raw.notes)


def test_recommendation_per_task() -> None:
    """Configurations of different tasks are not alternatives: one recommendation per dataset."""
    easy = synthetic(configs=("easy-a", "easy-b"), seed=1).with_columns(pl.lit("easy").alias("dataset"))
    hard = synthetic(configs=("hard-a",), seed=2).with_columns(
        pl.lit("hard").alias("dataset"), (pl.col("correct") & (pl.col("sample_idx") % 3 == 0)).alias("correct"))
    plan = make_plan(validate_sample_table(pl.concat([easy, hard])), strategies=["majority"])
    by_dataset = plan.recommended_by_dataset()
    assert set(by_dataset) == {"easy", "hard"} and by_dataset["hard"] == "hard-a"
    easy_best = max((c for c in plan.configs if c.dataset == "easy"), key=lambda c: c.per_prompt_accuracy)
    assert by_dataset["easy"] == easy_best.config
    assert "recommended for hard:" in plan.describe()
    assert Plan.from_json(plan.to_json()).recommended_by_dataset() == by_dataset
