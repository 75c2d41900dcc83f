"""Policy plans: value objects, the option grid against brute force, nested selection, held-out runs."""
from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from ttsplan.cli.main import app
from ttsplan.data import DEFAULT_SAMPLES
from ttsplan.features.errors import TtsplanError
from ttsplan.features.io import read_samples
from ttsplan.features.schema import validate_sample_table
from ttsplan.planner.crossfit import Objective, PlanOptions, crossfit, select
from ttsplan.planner.option_grid import OptionGrid, score_policies
from ttsplan.planner.policies import AdaptivePolicy, FixedPolicy, policy_from_dict
from ttsplan.planner.policy_plan import PolicyPlan, make_policy_plan, read_plan

runner = CliRunner()


def _table(rows: list[tuple[str, list[str], list[bool]]]) -> pl.DataFrame:
    return validate_sample_table(pl.DataFrame(
        [{"config": "c", "prompt_id": pid, "sample_idx": j, "answer": a, "correct": ok}
         for pid, answers, oks in rows for j, (a, ok) in enumerate(zip(answers, oks))]))


# -- value objects --------------------------------------------------------------------------------
@pytest.mark.parametrize("make, message", [
    (lambda: FixedPolicy("majority", 0), "n must be a whole number >= 1"),
    (lambda: FixedPolicy("majorty", 4), 'Did you mean "majority"'),
    (lambda: AdaptivePolicy("horizon", 0.9, min_n=5, cap=4), "min_n must be <= cap"),
    (lambda: AdaptivePolicy("betta", 0.9), 'Did you mean "beta"'),
    (lambda: policy_from_dict({"kind": "fixed", "strategy": "majority", "n": "eight"}), "n must be a whole number"),
    (lambda: policy_from_dict([1, 2]), "policy must be a JSON object"),
])
def test_policies_validate_themselves(make, message: str) -> None:
    with pytest.raises(TtsplanError, match=message.replace("(", r"\(")):
        make()


def test_plan_options_name_every_problem_at_once() -> None:
    with pytest.raises(TtsplanError) as exc:
        PlanOptions(folds=1, orders=0, confidence=1.5, families=("fixd",))
    msg = str(exc.value)
    assert all(x in msg for x in ("folds must be", "orders must be", "confidence must be", 'Did you mean "fixed"'))
    assert PlanOptions(families=["adaptive", "fixed", "adaptive"]).families == ("adaptive", "fixed")
    with pytest.raises(TtsplanError, match="options must be a PlanOptions"):
        make_policy_plan(_table([("p0", ["a", "b"], [True, False]), ("p1", ["a", "a"], [True, True])]), None, {"orders": 2})


def test_objective_parse() -> None:
    assert Objective.parse(None).reference_n is None
    assert Objective.parse("majority@8", 0.01).reference_n == 8
    assert Objective.parse("0.75").target == 0.75
    for bad, msg in (("1.5", "target must be an accuracy"), ("majority@0", "whole N >= 1"), ("lots", "--target must")):
        with pytest.raises(TtsplanError, match=msg):
            Objective.parse(bad)


# -- option grid against brute force ---------------------------------------------------------------
def _brute_majority(answers: list[str], correct: dict[str, bool], n: int) -> float:
    """maj@n by enumerating every n-subset, ties split uniformly."""
    vals = []
    for sub in itertools.combinations(answers, n):
        cnt = Counter(sub)
        top = max(cnt.values())
        tied = [a for a, c in cnt.items() if c == top]
        vals.append(sum(correct[a] for a in tied) / len(tied))
    return float(np.mean(vals))


def test_fixed_policies_are_exact_majority() -> None:
    rows = [("p0", ["1", "2", "1", "3", "2", "1"], [True, False, True, False, False, True]),
            ("p1", ["5", "5", "4", "4", "6", "4"], [False, False, True, True, False, True])]
    grid = score_policies(_table(rows), "c", orders=2)
    for i, (_, answers, oks) in enumerate(rows):
        truth = dict(zip(answers, oks))
        for n in range(1, 7):
            k = grid.index(FixedPolicy("majority", n))
            assert grid.accuracy[k, i] == pytest.approx(_brute_majority(answers, truth, n))
            assert grid.samples[k, i] == n


def test_adaptive_policy_stops_a_unanimous_prompt_by_hand() -> None:
    # beta rule: P(Bin(a + 1, 1/2) <= a) = 1 - 2^-(a+1) reaches 0.95 at a = 4 unanimous votes (31/32)
    rows = [("p0", ["7"] * 10, [True] * 10), ("p1", ["1", "2"] * 5, [True, False] * 5)]
    grid = score_policies(_table(rows), "c", orders=8, policies=[AdaptivePolicy("beta", 0.95, 1, 10)])
    assert grid.samples[0, 0] == 4 and grid.accuracy[0, 0] == 1.0
    # two answers alternating: never settled before the cap; at 10 samples the 5-5 tie is split
    assert grid.samples[0, 1] > 4 and 0 <= grid.accuracy[0, 1] <= 1


@pytest.mark.parametrize("rule, thresholds", [("regret", (0.8, 0.97, 0.994)), ("horizon", (0.8, 0.95)),
                                               ("beta", (0.8, 0.95))])
def test_trajectory_replay_equals_the_session(rule: str, thresholds: tuple[float, ...]) -> None:
    """The option grid's fast replay (one pass over the orders, every threshold read off it) must give
    exactly what AdaptiveSession gives: ties, null answers (a sample that never votes) and short prompts."""
    from ttsplan.planner.option_grid import replay_prompts, replay_table_rule, trajectories
    from ttsplan.planner.replay import prepare, sample_orders

    rng = np.random.default_rng(5)
    rows = []
    for i in range(30):
        k = 12 if i % 7 else 9                                  # some prompts have fewer samples
        answers = [None if rng.random() < 0.15 else str(rng.choice(3, p=[0.5, 0.3, 0.2])) for _ in range(k)]
        rows.append((f"p{i}", answers, [a == "0" for a in answers]))
    (cs,) = prepare(_table(rows), with_rewards=False)
    perms = sample_orders(cs, 6, 0, salt=7)
    for cap in (12, 7):
        tr = trajectories(cs, perms, cap)
        for t in thresholds:
            for min_n in (1, 3):
                p = AdaptivePolicy(rule, t, min_n, cap)
                for fast, slow in zip(replay_table_rule(tr, p), replay_prompts(cs, p, perms)):
                    np.testing.assert_array_equal(fast, slow)


def test_option_grid_rows_match_the_session_replay_of_each_policy() -> None:
    from ttsplan.planner.option_grid import replay_prompts
    from ttsplan.planner.replay import prepare, sample_orders

    t = validate_sample_table(read_samples([DEFAULT_SAMPLES])).filter(
        pl.col("config") == "gemma3-270m/larger/3shot/T1")
    grid = score_policies(t, "gemma3-270m/larger/3shot/T1", orders=3)
    assert grid.accuracy.shape == grid.samples.shape == grid.tokens.shape == (len(grid.policies), len(grid.prompt_ids))
    (cs,) = prepare(t.filter(pl.col("sample_idx") < grid.n_max), with_rewards=False)
    perms = sample_orders(cs, 3, 0, salt=7)
    for i, p in enumerate(grid.policies):
        if p.kind == "adaptive":
            acc, smp, tok = replay_prompts(cs, p, perms)
            np.testing.assert_array_equal(grid.accuracy[i], acc)
            np.testing.assert_array_equal(grid.samples[i], smp)
            np.testing.assert_array_equal(grid.tokens[i], tok)


# -- selection -------------------------------------------------------------------------------------
def _grid(acc: np.ndarray, cost: np.ndarray, n_max: int = 3) -> OptionGrid:
    pols = tuple(FixedPolicy("majority", n) for n in range(1, n_max + 1)) + tuple(
        AdaptivePolicy("beta", 0.5 + 0.4 * (i + 1) / (acc.shape[0] + 1), 1, n_max)
        for i in range(acc.shape[0] - n_max))
    return OptionGrid("c", tuple(f"p{i}" for i in range(acc.shape[1])), pols, acc, cost, cost, acc[:n_max], n_max, 1)


def test_select_by_hand() -> None:
    acc = np.array([[0.5, 0.5], [0.7, 0.7], [0.8, 0.8], [0.79, 0.79]])
    cost = np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0], [1.5, 1.5]])
    g = _grid(acc, cost)
    rows = np.arange(2)
    # match majority@3 (0.8) within 1 pt: the adaptive row (0.79 at 1.5) is the cheapest qualifying
    assert select(g, rows, Objective.majority(3, tolerance=0.01, margin=0)) == 3
    assert select(g, rows, Objective.majority(3, tolerance=0.005, margin=0)) == 2
    assert select(g, rows, Objective.absolute(0.6, margin=0)) == 3
    assert select(g, rows, Objective.within_budget(2.0)) == 3   # 0.79 at 1.5 beats 0.7 at 2
    assert select(g, rows, Objective.within_budget(1.2)) == 0


def test_nested_selection_removes_the_winners_curse() -> None:
    """40 candidates with the same true accuracy 0.5 (independent coin flips per prompt): the in-sample best
    looks far better than 0.5; the cross-fitted estimate of the same choice does not."""
    rng = np.random.default_rng(0)
    n_cand, n_prompts = 40, 200
    acc = (rng.random((n_cand, n_prompts)) < 0.5).astype(float)
    g = _grid(acc, np.ones_like(acc), n_max=3)
    cf = crossfit(g, Objective.within_budget(1.0), folds=5, seed=0)
    in_sample = float(acc[g.index(cf.policy)].mean())
    assert in_sample - 0.5 > 0.05                       # optimistic: the max of 40 noisy means
    assert abs(cf.accuracy.mean - 0.5) < 0.04           # honest
    assert cf.accuracy.low < 0.5 < cf.accuracy.high + 0.02


# -- plans -----------------------------------------------------------------------------------------
def test_policy_plan_json_round_trip_and_v1_reader(tmp_path: Path) -> None:
    rows = [(f"p{i}", [str((i * j) % 3) for j in range(6)], [(i * j) % 3 == 0 for j in range(6)]) for i in range(10)]
    plan = make_policy_plan(_table(rows), options=PlanOptions(orders=2))
    assert PolicyPlan.from_json(plan.to_json()) == plan
    assert read_plan(plan.to_json()) == plan
    with pytest.raises(TtsplanError, match="must be a JSON object"):
        read_plan("[1, 2]")
    with pytest.raises(TtsplanError, match="schema_version must be 1 or 2"):
        read_plan('{"schema_version": 7}')
    bad = json.loads(plan.to_json())
    bad["configs"][0]["policy"] = {"kind": "fixed", "strategy": "majority", "n": -3}
    with pytest.raises(TtsplanError, match="n must be a whole number >= 1, got -3"):
        read_plan(json.dumps(bad))


@pytest.fixture(scope="module")
def default_half() -> tuple[pl.DataFrame, pl.DataFrame]:
    """One configuration of the embedded default data, prompts split in two halves at random."""
    t = validate_sample_table(read_samples([DEFAULT_SAMPLES])).filter(
        pl.col("config") == "gemma3-270m/first_letter/3shot/T0.5")
    ids = sorted(t["prompt_id"].unique().to_list())
    rng = np.random.default_rng(0)
    plan_ids = set(rng.permutation(ids)[: len(ids) // 2].tolist())
    return t.filter(pl.col("prompt_id").is_in(plan_ids)), t.filter(~pl.col("prompt_id").is_in(plan_ids))


def test_plan_on_one_half_holds_on_the_other_through_run(default_half, tmp_path: Path) -> None:
    plan_part, held = default_half
    plan = make_policy_plan(plan_part, options=PlanOptions(orders=8))
    (plan_file := tmp_path / "plan.json").write_text(plan.to_json())
    held.write_parquet(rec := tmp_path / "held.parquet")
    ids = sorted(held["prompt_id"].unique().to_list())
    gold = dict(held.filter(pl.col("correct")).select("prompt_id", "answer").unique("prompt_id").iter_rows())
    (prompts := tmp_path / "prompts.jsonl").write_text("".join(
        json.dumps({"id": i, "prompt": f"q {i}", "answer": gold.get(i, "no-gold"), "kind": "short"}) + "\n" for i in ids))
    r = runner.invoke(app, ["run", str(plan_file), "--prompts", str(prompts), "--engine", "replay", "--model", str(rec),
                            "--out", str(tmp_path / "run"), "--format", "json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    c = plan.configs[0]
    lo, hi = c.accuracy.prediction_interval(len(ids), unit_interval=True)
    assert lo <= summary["accuracy"] <= hi
    assert summary["mean_samples"] <= c.policy.max_samples


def test_export_refuses_an_adaptive_policy_and_run_a_missing_config(default_half, tmp_path: Path) -> None:
    plan = make_policy_plan(default_half[0], options=PlanOptions(orders=2))
    (plan_file := tmp_path / "plan.json").write_text(plan.to_json())
    (prompts := tmp_path / "p.jsonl").write_text('{"id": "x", "prompt": "q", "answer": "a"}\n')
    out = tmp_path / "req.jsonl"
    if plan.configs[0].policy.kind == "adaptive":
        r = runner.invoke(app, ["export", str(plan_file), "--to", "vllm-batch", "--prompts", str(prompts),
                                "--out", str(out)])
        assert r.exit_code == 2 and "Execute it with `ttsplan run" in r.output and not out.exists()
    r = runner.invoke(app, ["run", str(plan_file), "--prompts", str(prompts), "--engine", "replay", "--model",
                            str(DEFAULT_SAMPLES), "--config", "nope", "--out", str(tmp_path / "r")])
    assert r.exit_code == 2 and "--config must be a configuration of the plan" in r.output
    assert not (tmp_path / "r").exists()


# -- pricing ---------------------------------------------------------------------------------------
def test_calibrated_and_uncalibrated_prices_differ_and_say_which(default_half, tmp_path: Path) -> None:
    from ttsplan.planner.pricing import Pricing

    cal, raw = Pricing("Qwen3-8B", "H100"), Pricing("Qwen3-8B", "H100", "none")
    assert cal.calibrated and not raw.calibrated
    assert "calibration ttsplan.data/h100_calibration.json" in cal.note() and "uncalibrated roofline" in raw.note()
    assert "lies outside the 33B–71B it was fitted on" in cal.note()            # Qwen3-8B: 8.2B parameters
    assert "lies outside" not in Pricing("Llama-3.1-70B", "H100").note()
    assert "no calibration for this GPU ships" in Pricing("Qwen3-8B", "A100").note()
    plans = {}
    for name, pricing in (("cal", cal), ("raw", raw)):
        plans[name] = make_policy_plan(default_half[0], options=PlanOptions(orders=2), pricing=pricing)
    c, r = plans["cal"].configs[0], plans["raw"].configs[0]
    assert c.policy == r.policy and c.samples == r.samples          # pricing does not change the choice
    assert c.seconds_per_prompt > 2 * r.seconds_per_prompt          # calibrated efficiencies are below peak
    assert any("uncalibrated" in n for n in plans["raw"].notes) and not any("uncalibrated" in n
                                                                            for n in plans["cal"].notes)
    out = tmp_path / "never.json"
    res = runner.invoke(app, ["plan", "--calibration", str(tmp_path / "missing.json"), "--out", str(out)])
    assert res.exit_code == 2 and "--calibration must be a calib.json" in res.output and not out.exists()


def test_priced_policies_are_exact_for_fixed_n_and_interpolate_adaptive(default_half) -> None:
    from ttsplan.planner.option_grid import price_grid
    from ttsplan.planner.plan import prompt_lengths
    from ttsplan.planner.pricing import Pricing
    from ttsplan.planner.strategies import cost_matrix

    table = default_half[0]
    grid = score_policies(table, table["config"][0], orders=2)
    cm = Pricing("Qwen3-8B", "H100").cost_model
    lengths = prompt_lengths(table).sort("prompt_id")
    assert lengths["prompt_id"].to_list() == list(grid.prompt_ids)
    per_n = cost_matrix("majority", range(1, grid.n_max + 1), lengths["prompt_tokens"].to_numpy(),
                        lengths["output_tokens"].to_numpy(), "usd", cm).T
    priced = price_grid(grid, "usd", per_n).costs["usd"]
    for i, p in enumerate(grid.policies):
        if p.kind == "fixed":                      # a fixed N costs exactly majority N on every prompt
            np.testing.assert_allclose(priced[i], per_n[p.n - 1], rtol=1e-12)
        else:                                      # an adaptive policy lies between its floor and ceiling N
            lo = np.floor(grid.samples[i]).astype(int)
            hi = np.minimum(lo + 1, grid.n_max)
            cols = np.arange(priced.shape[1])
            a, b = per_n[lo - 1, cols], per_n[hi - 1, cols]
            assert np.all(priced[i] >= np.minimum(a, b) - 1e-18) and np.all(priced[i] <= np.maximum(a, b) + 1e-18)
            frac = (grid.samples[i] > lo) & (a != b)             # strictly between whole N: interpolated
            assert np.all((priced[i][frac] - a[frac]) * (b[frac] - priced[i][frac]) > 0)
    with pytest.raises(TtsplanError, match="per_n must have shape"):
        price_grid(grid, "usd", per_n[:-1])


def test_priced_budget_plans_policies_within_the_budget(default_half) -> None:
    from ttsplan.planner.crossfit import objective_cost
    from ttsplan.planner.option_grid import price_grid  # noqa: F401 (the grid below is priced by the plan)
    from ttsplan.planner.pricing import Pricing

    table = default_half[0]
    pricing = Pricing("Qwen3-8B", "H100")
    opts = PlanOptions(orders=2)
    free = make_policy_plan(table, Objective.within_budget(1e9, "seconds"), opts, pricing=pricing).configs[0]
    cheap = make_policy_plan(table, Objective.within_budget(1.0, "samples"), opts, pricing=pricing).configs[0]
    # a budget halfway between one sample's cost and the unconstrained plan's must bind and be respected
    budget = (cheap.seconds_per_prompt + free.seconds_per_prompt) / 2
    plan = make_policy_plan(table, Objective.within_budget(budget, "seconds"), options=PlanOptions(orders=2), pricing=pricing)
    c = plan.configs[0]
    assert c.cost is not None and c.cost.mean <= budget + 1e-12
    assert c.cost.mean == pytest.approx(c.seconds_per_prompt, rel=1e-12)
    assert c.samples.mean < free.samples.mean
    assert PolicyPlan.from_json(plan.to_json()) == plan
    assert "seconds/prompt" in plan.describe()
    with pytest.raises(TtsplanError, match="must be priced by a cost model"):
        make_policy_plan(table, Objective.within_budget(budget, "seconds"), options=PlanOptions(orders=2))
    grid = score_policies(table, table["config"][0], orders=2)
    with pytest.raises(TtsplanError, match="must be priced by a cost model"):
        objective_cost(grid, "usd")


def test_cli_priced_budget_gives_a_policy_plan_and_needs_a_model(tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    r = runner.invoke(app, ["plan", "--budget", "1/prompt", "--unit", "usd", "--out", str(out), "-f", "json"])
    assert r.exit_code == 0, r.output
    plan = read_plan(out.read_text())
    assert isinstance(plan, PolicyPlan) and plan.objective.unit == "usd"
    assert all(c.cost is not None and c.cost.mean <= 1.0 for c in plan.configs)
    t = validate_sample_table(read_samples([DEFAULT_SAMPLES])).drop("model", strict=False)
    t.write_parquet(nomodel := tmp_path / "nomodel.parquet")
    out2 = tmp_path / "never.json"
    r = runner.invoke(app, ["plan", str(nomodel), "--budget", "1/prompt", "--unit", "seconds", "--out", str(out2)])
    assert r.exit_code == 2 and "--unit seconds must be priced for a model" in r.output and not out2.exists()


def test_savings_line_warns_when_the_cross_validated_shortfall_exceeds_the_tolerance() -> None:
    t = validate_sample_table(read_samples([DEFAULT_SAMPLES])).filter(
        pl.col("config").is_in(["gemma3-270m/larger/3shot/T0.5", "gemma3-270m/first_letter/3shot/T0.5"]))
    plan = make_policy_plan(t)
    by = {c.config: c for c in plan.configs}
    text = plan.describe()
    for config, c in by.items():
        line = next(x for x in text.splitlines() if x.split(": ", 1)[-1].startswith(config))
        assert ("WARNING" in line) == (c.shortfall.mean > plan.objective.tolerance), line
    assert by["gemma3-270m/larger/3shot/T0.5"].shortfall.mean > 0.005          # this one is not confirmed
    assert by["gemma3-270m/first_letter/3shot/T0.5"].shortfall.mean <= 0.005  # this one is


# -- two-stage policies ------------------------------------------------------------------------------
def test_two_stage_policies_are_candidates_on_request_and_run(default_half, tmp_path: Path) -> None:
    from dataclasses import replace

    from ttsplan.planner.option_grid import check_families

    plan_part, held = default_half
    config = plan_part["config"][0]
    grid = score_policies(plan_part, config, orders=2, families=("two-stage",))
    kinds = {p.describe().split()[0] for p in grid.policies}
    assert kinds == {"majority", "two-stage"}                     # the reference majority@N_max stays
    assert [p for p in grid.policies if p.kind == "fixed"] == [FixedPolicy("majority", grid.n_max)]
    assert grid.accuracy.shape[0] == len(grid.policies)
    default = score_policies(plan_part, config, orders=2)
    assert not any(getattr(p, "two_stage", False) for p in default.policies)
    with pytest.raises(TtsplanError, match='Did you mean "two-stage"'):
        check_families(["two-stag"])
    two = AdaptivePolicy("pilot", 0.95, 4, grid.n_max)
    assert two.describe().startswith("two-stage majority (pilot 4") and policy_from_dict(two.to_dict()) == two
    plan = make_policy_plan(plan_part, options=PlanOptions(orders=2))
    plan = replace(plan, configs=(replace(plan.configs[0], policy=two),))
    (plan_file := tmp_path / "plan.json").write_text(plan.to_json())
    held.write_parquet(rec := tmp_path / "held.parquet")
    ids = sorted(held["prompt_id"].unique().to_list())
    (prompts := tmp_path / "prompts.jsonl").write_text("".join(
        json.dumps({"id": i, "prompt": f"q {i}", "answer": "x", "kind": "short"}) + "\n" for i in ids))
    r = runner.invoke(app, ["run", str(plan_file), "--prompts", str(prompts), "--engine", "replay", "--model",
                            str(rec), "--out", str(tmp_path / "run"), "--format", "json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert 4 <= summary["mean_samples"] <= grid.n_max          # every prompt gets its pilot of 4, none passes the cap
    r = runner.invoke(app, ["plan", "--policies", "fixed,bogus", "--out", str(tmp_path / "never.json")])
    assert r.exit_code == 2 and "--policies must be among" in r.output and not (tmp_path / "never.json").exists()


# -- per-prompt plans for new prompts from an unlabeled pilot ----------------------------------------
def test_pilot_file_plans_new_unlabeled_prompts_and_refuses_others(default_half, tmp_path: Path) -> None:
    lab, held = default_half
    lab.write_parquet(lab_file := tmp_path / "lab.parquet")
    pilot = held.filter(pl.col("sample_idx") < 4).drop("correct")            # unlabeled: no correct column
    pilot.write_parquet(pilot_file := tmp_path / "pilot.parquet")
    ids = sorted(pilot["prompt_id"].unique().to_list())
    (prompts := tmp_path / "p.jsonl").write_text("".join(
        json.dumps({"id": i, "prompt": f"q {i}", "answer": "x", "kind": "short"}) + "\n" for i in ids))
    out = tmp_path / "plan.json"
    r = runner.invoke(app, ["plan", str(lab_file), "--pilot-file", str(pilot_file), "--prompts", str(prompts),
                            "--budget", "6/prompt", "--out", str(out), "--format", "json"])
    assert r.exit_code == 0, r.output
    plan = read_plan(out.read_text())
    assert plan.mode == "pilot" and plan.pilot_k0 == 4
    assert sorted(a.prompt_id for a in plan.allocations) == ids               # exactly the new prompts
    assert all(4 <= a.n <= 16 for a in plan.allocations)                      # N >= pilot, <= recorded evidence
    assert plan.configs[0].per_prompt_cost <= 6 * len(ids) + 1e-9
    assert dict(plan.prompt_hashes).keys() == set(ids)
    other = tmp_path / "other.jsonl"
    other.write_text(prompts.read_text().replace('"q ', '"a different question '))
    req = tmp_path / "req.jsonl"
    r = runner.invoke(app, ["export", str(out), "--to", "vllm-batch", "--prompts", str(other), "--out", str(req)])
    assert r.exit_code == 2 and "different text than the plan was made for" in r.output and not req.exists()
    r = runner.invoke(app, ["run", str(out), "--prompts", str(other), "--engine", "replay", "--model", str(lab_file),
                            "--out", str(tmp_path / "run")])
    assert r.exit_code == 2 and "different text" in r.output and not (tmp_path / "run").exists()
    r = runner.invoke(app, ["export", str(out), "--to", "vllm-batch", "--prompts", str(prompts), "--out", str(req)])
    assert r.exit_code == 0, r.output
    sent = {json.loads(line)["custom_id"].split("::")[-1]: json.loads(line)["body"]["n"]
            for line in req.read_text().splitlines()}
    assert sent == {a.prompt_id: a.n - 4 for a in plan.allocations if a.n > 4}   # N counts the 4 pilot samples
    assert "N − 4 more" in r.stderr


def test_edited_v1_plan_is_refused(tmp_path: Path) -> None:
    from ttsplan.planner.plan import make_plan
    from ttsplan.planner.budget import Budget

    rows = [(f"p{i}", [str((i * j) % 3) for j in range(6)], [(i * j) % 3 == 0 for j in range(6)]) for i in range(10)]
    d = json.loads(make_plan(_table(rows), Budget(3, "samples", per_prompt=True)).to_json())
    short = json.loads(json.dumps(d))
    short["allocations"]["n"] = short["allocations"]["n"][:-2]
    with pytest.raises(TtsplanError, match="same length, got .*n: 8"):
        read_plan(json.dumps(short))
    neg = json.loads(json.dumps(d))
    neg["allocations"]["n"][0] = -3
    with pytest.raises(TtsplanError, match=r"n must be whole numbers >= 1, got \[-3\]"):
        read_plan(json.dumps(neg))


def test_a_second_run_into_the_same_out_is_refused(default_half, tmp_path: Path) -> None:
    from ttsplan.features.sampler.checkpoint import shard_lock

    plan = make_policy_plan(default_half[0], options=PlanOptions(orders=2))
    (plan_file := tmp_path / "plan.json").write_text(plan.to_json())
    (prompts := tmp_path / "p.jsonl").write_text('{"id": "first_letter-0000", "prompt": "q", "answer": "j", '
                                                 '"kind": "short"}\n')
    out = tmp_path / "run"
    args = ["run", str(plan_file), "--prompts", str(prompts), "--engine", "replay", "--model", str(DEFAULT_SAMPLES),
            "--out", str(out)]
    with shard_lock(out, (0, 1)):                       # another run holds the directory
        r = runner.invoke(app, args)
    assert r.exit_code == 2 and "must be written by one run at a time" in r.output
    assert not (out / "run.json").exists()
    r = runner.invoke(app, args)                         # once it is gone, the run goes ahead
    assert r.exit_code == 0, r.output
    assert (out / "summary.json").exists()


def test_no_n_above_the_recorded_samples_unless_extrapolating(tmp_path: Path) -> None:
    from ttsplan.planner.budget import Budget
    from ttsplan.planner.plan import make_plan

    rows = [(f"p{i}", [str((i * j) % 4) for j in range(6)], [(i * j) % 4 == 0 for j in range(6)]) for i in range(12)]
    t = _table(rows)
    plan = make_plan(t, Budget(20, "samples", per_prompt=True))
    assert max(a.n for a in plan.allocations) <= 6 and max(plan.grid) == 6
    assert not any("extrapolated" in n for n in plan.notes)
    wide = make_plan(t, Budget(20, "samples", per_prompt=True), extrapolate=True)
    assert max(wide.grid) > 6
    if max(a.n for a in wide.allocations) > 6:
        assert any(n.startswith("extrapolated: N above the 6 samples") for n in wide.notes)
