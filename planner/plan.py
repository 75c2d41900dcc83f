"""The planner end to end: fit → price → allocate → a versioned, JSON round-trippable :class:`Plan`.

:func:`make_plan` takes a labeled SampleTable or CountTable (one or more configurations), a
:class:`~ttsplan.planner.budget.Budget` and optionally a model + GPU for pricing, and for every
configuration

* fits the per-prompt success model (:class:`ttsplan.fitting.success.PromptSuccessModel`; with ``pilot=k0``
  a :class:`~ttsplan.fitting.success.PilotSuccessModel` reads only ``k0`` unlabeled samples per prompt, whose
  cost is counted: every planned N is ≥ k0 and includes the pilot samples),
* prices every (strategy, N) on the grid (:func:`ttsplan.planner.strategies.cost_matrix`),
* allocates per prompt (:func:`ttsplan.planner.allocate.allocate`, risk-averse with ``risk_averse=True``:
  choices by the lower credible bound), and
* records the config-level recommendation (one strategy and N for the whole task) and the
  baselines: uniform N per strategy and Snell-style difficulty bins.

The budget applies to each configuration separately (each is one way to run the task);
``Plan.recommended_config`` is the configuration with the highest planned accuracy;
``Plan.recommended_by_dataset()`` gives the best one per task (configurations of different tasks are
not alternatives), and those are the ones marked ``*`` in the tables.

>>> import polars as pl
>>> from ttsplan.features.schema import validate_sample_table
>>> rows = [{"config": "c", "prompt_id": f"p{i}", "sample_idx": j, "answer": str((i + j) % 3 if i % 2 else 1),
...          "correct": ((i + j) % 3 == 1) if i % 2 else True} for i in range(8) for j in range(6)]
>>> plan = make_plan(validate_sample_table(pl.DataFrame(rows)), Budget(4, "samples", per_prompt=True))
>>> plan.configs[0].per_prompt_cost <= 32
True
>>> Plan.from_json(plan.to_json()) == plan
True
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import polars as pl
from ttsplan.features.defaults import DEFAULT_CONFIDENCE, DEFAULT_GPU
from ttsplan.features.errors import TtsplanError
from ttsplan.features.schema import table_kind
from ttsplan.planner.allocate import (
    allocate,
    config_level,
    difficulty_bins,
    min_cost_total,
    uniform_baselines,
)
from ttsplan.planner.budget import Budget, normalize_unit
from ttsplan.planner.curve_calibration import calibration_offsets
from ttsplan.planner.plan_model import (
    DEFAULT_BUDGET_N,
    SCHEMA_VERSION,
    Allocation,
    Baseline,
    ConfigPlan,
    Plan,
    _model_hash,
    check_prompts_match,
    parse_plan_json,
    prompt_text_hash,
    table_hash,
)
from ttsplan.planner.option_arrays import (
    DEFAULT_GRID,
    Prepared,
    fit_success,
    pilot_posteriors,
    prepare,
    prompt_lengths,
    resolve_cost_model,
)
from ttsplan.planner.pricing import Pricing

def _strategy_mix(names: list[str], s_idx: np.ndarray) -> tuple[tuple[str, int], ...]:
    cnt = Counter(names[i] for i in s_idx.tolist())
    return tuple(sorted(cnt.items(), key=lambda kv: (-kv[1], kv[0])))


def plan_config(prep: Prepared, cfg: str, budget: Budget, risk_averse: bool = False,
                pilot: int | None = None) -> tuple[ConfigPlan, list[Allocation], Any]:
    """Allocate one configuration; returns its ConfigPlan, per-prompt allocations and the raw result."""
    r = prep.rows[cfg]
    P = r.size
    unit = budget.unit
    mean, low, high = prep.mean[r], prep.low[r], prep.high[r]
    cost = prep.costs[unit][r]
    total = budget.total(P)
    res = allocate(mean, cost, total, decision=low if risk_averse else None)
    rows = np.arange(P)
    s_idx, g_idx = res.strategy_index, res.grid_index
    names = [s.name for s in prep.strategies]

    def at(a: np.ndarray, s: np.ndarray, g: np.ndarray) -> np.ndarray:
        return a[rows, s, g]

    def other(u: str, s: np.ndarray, g: np.ndarray) -> np.ndarray | None:
        return at(prep.costs[u][r], s, g) if u in prep.costs else None

    pilot_cost = float(cost.min(axis=(1, 2)).sum()) if pilot else 0.0
    lvl = config_level(low if risk_averse else mean, cost, total)
    baselines = []
    for b in uniform_baselines(mean, cost, total):
        s = b["strategy_index"]
        baselines.append(Baseline("uniform", names[s], None if b["grid_index"] is None else prep.grid[b["grid_index"]],
                                  b["accuracy"], b["cost"]))
    bins = difficulty_bins(mean, cost, total, difficulty=-prep.p_mean[r])
    baselines.append(Baseline("difficulty-bins", None, None, bins["accuracy"], bins["cost"]))

    def mean_or_none(x: np.ndarray | None) -> float | None:
        return None if x is None else float(x.mean())

    if lvl is not None:
        s, g = lvl["strategy_index"], lvl["grid_index"]
        sv, gv = np.full(P, s), np.full(P, g)
        usd = other("usd", sv, gv)
        lvl_fields = {"strategy": names[s], "n": prep.grid[g], "expected_accuracy": float(mean[:, s, g].mean()),
                      "accuracy_low": float(low[:, s, g].mean()), "accuracy_high": float(high[:, s, g].mean()),
                      "expected_cost": float(cost[:, s, g].sum()),
                      "tokens_per_prompt": mean_or_none(other("tokens", sv, gv)),
                      "seconds_per_prompt": mean_or_none(other("seconds", sv, gv)),
                      "usd_total": None if usd is None else float(usd.sum())}
    else:
        lvl_fields = dict.fromkeys(("strategy", "n", "expected_accuracy", "accuracy_low", "accuracy_high",
                                    "expected_cost", "tokens_per_prompt", "seconds_per_prompt", "usd_total"))
    usd_p = other("usd", s_idx, g_idx)
    n_chosen = np.asarray(prep.grid)[g_idx]
    n_chosen = np.where([prep.strategies[i].single_sample for i in s_idx], 1, n_chosen)
    cp = ConfigPlan(
        config=cfg, n_prompts=int(P), budget_total=float(total), **lvl_fields,
        per_prompt_accuracy=float(res.accuracy.mean()), per_prompt_low=float(at(low, s_idx, g_idx).mean()),
        per_prompt_high=float(at(high, s_idx, g_idx).mean()), per_prompt_cost=float(res.total_cost),
        per_prompt_tokens=mean_or_none(other("tokens", s_idx, g_idx)),
        per_prompt_seconds=mean_or_none(other("seconds", s_idx, g_idx)),
        per_prompt_usd=None if usd_p is None else float(usd_p.sum()),
        pilot_cost=pilot_cost, min_cost=float(min_cost_total(cost, mean)), lam=float(res.lam),
        strategy_mix=_strategy_mix(names, s_idx), mean_n=float(n_chosen.mean()), baselines=tuple(baselines))
    pids = prep.keys["prompt_id"].to_numpy()[r]
    lo_c, hi_c = at(low, s_idx, g_idx), at(high, s_idx, g_idx)
    allocs = [Allocation(cfg, str(pids[i]), names[s_idx[i]], int(n_chosen[i]), float(res.accuracy[i]),
                         float(lo_c[i]), float(hi_c[i]), float(res.cost[i])) for i in range(P)]
    return cp, allocs, res


def make_plan(table: pl.DataFrame, budget: Budget | None = None, *, unit: str | None = None,
              strategies: Sequence[str] | str | None = None, model: str | None = None, gpu: str | None = DEFAULT_GPU,
              pilot: int | None = None, risk_averse: bool = False, grid: Sequence[int] = DEFAULT_GRID,
              confidence: float = DEFAULT_CONFIDENCE, batch_prompts: int = 64, calibrate: bool = True,
              calibration: Any = None, extrapolate: bool = False) -> Plan:
    """Plan every configuration of ``table`` (a validated SampleTable or CountTable) under ``budget`` (see the
    module docstring).

    ``calibrate`` (default): shift the success model's per-config pass / maj / BoN curves onto the exact
    empirical curves of the labeled samples (:func:`calibration_offsets`), so the config-level choice
    between strategies follows the data where it has samples; the model shapes the per-prompt
    differences and extrapolates beyond the sampled k.

    ``budget=None``: the cost of majority vote with N = 8 on every prompt, in ``unit`` (default samples).
    ``extrapolate``: allow N above the samples recorded per prompt (the success model predicts them; the
    plan notes it); by default the grid stops at the fewest samples recorded for a prompt.
    """
    unit = normalize_unit(unit or (budget.unit if budget else "samples"))
    if budget is not None and budget.unit != unit:
        budget = Budget(budget.amount, unit, budget.per_prompt)
    pricing = None if model is None else Pricing(model, gpu or DEFAULT_GPU, calibration)
    cost_model = None if pricing is None else pricing.cost_model
    if table.height == 0:
        raise TtsplanError("data must have at least one prompt, got an empty table. Pass a non-empty table.")
    recorded = (int(table["samples"].min()) if table_kind(table) == "counts"
                else int(table.group_by(["config", "prompt_id"]).len()["len"].min()))
    extrapolated = [int(g) for g in grid if int(g) > recorded]
    if not extrapolate:  # N stays where there is evidence
        grid = [int(g) for g in grid if int(g) <= recorded] or [recorded]
    cal = None
    if calibrate and table_kind(table) == "samples":
        cal_post = fit_success(table, pilot, confidence)
        cal = (table, cal_post, int(pilot or 0))
        prep = prepare(table, unit, strategies, grid, cost_model, pilot, confidence, batch_prompts,
                       posteriors=cal_post, calibrate=cal)
    else:
        prep = prepare(table, unit, strategies, grid, cost_model, pilot, confidence, batch_prompts)
    is_default = budget is None
    datasets = dict(table.select("config", "dataset").unique().sort("config").iter_rows())
    cfg_plans, allocs = [], []
    for cfg in prep.configs:
        b = budget
        if b is None:  # cost of majority@8 per prompt in this unit (samples: 8/prompt)
            if unit == "samples":
                b = Budget(DEFAULT_BUDGET_N, "samples", per_prompt=True)
            else:
                r = prep.rows[cfg]
                names = [s.name for s in prep.strategies]
                ref = names.index("majority") if "majority" in names else next(
                    (i for i, s in enumerate(prep.strategies) if not s.single_sample), 0)
                gi = min(int(np.searchsorted(prep.grid, DEFAULT_BUDGET_N)), len(prep.grid) - 1)
                b = Budget(float(prep.costs[unit][r][:, ref, gi].mean()), unit, per_prompt=True)
        cp, al, _ = plan_config(prep, cfg, b, risk_averse, pilot)
        cfg_plans.append(replace(cp, dataset=datasets.get(cfg)))
        allocs += al
    if is_default:
        budget = Budget(DEFAULT_BUDGET_N, "samples", per_prompt=True) if unit == "samples" else \
            Budget(float(np.mean([c.budget_total / c.n_prompts for c in cfg_plans])), unit, per_prompt=True)
    best = max(cfg_plans, key=lambda c: (c.per_prompt_accuracy, -c.per_prompt_cost)).config
    mhash = _model_hash([prep.mean, prep.low, prep.high, {u: float(v.sum()) for u, v in prep.costs.items()},
                         model, gpu, pilot, confidence])
    notes = list(prep.notes)
    if extrapolate and extrapolated:
        big = sorted({a.n for a in allocs if a.n > recorded})
        notes.append(f"extrapolated: N above the {recorded} samples recorded per prompt ({', '.join(map(str, big))}) "
                     "priced and predicted by the success model, not measured" if big else
                     f"--extrapolate allowed N above {recorded}, none was chosen")
    if cost_model is None:
        notes.append("no --model given: seconds and dollars are not priced (pass --model, e.g. gemma-3-270m)")
    else:
        notes.append(pricing.note())
    return Plan(budget=budget, mode="pilot" if pilot else "per-prompt",
                strategies=tuple(s.name for s in prep.strategies), grid=tuple(prep.grid),
                configs=tuple(cfg_plans), allocations=tuple(allocs), recommended_config=best,
                input_hash=table_hash(table), model_hash=mhash,
                model=None if cost_model is None else cost_model.model.name,
                gpu=None if cost_model is None else cost_model.gpu.name, pilot_k0=int(pilot) if pilot else None,
                risk_averse=bool(risk_averse), budget_is_default=is_default, notes=tuple(notes))


__all__ = [
    "DEFAULT_BUDGET_N",
    "DEFAULT_GRID",
    "SCHEMA_VERSION",
    "Allocation",
    "Baseline",
    "ConfigPlan",
    "Plan",
    "Prepared",
    "calibration_offsets",
    "check_prompts_match",
    "fit_success",
    "make_plan",
    "parse_plan_json",
    "pilot_posteriors",
    "plan_config",
    "prepare",
    "prompt_lengths",
    "prompt_text_hash",
    "resolve_cost_model",
    "table_hash",
]
