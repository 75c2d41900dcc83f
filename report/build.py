"""``build_report``: the data of every figure of ``ttsplan report`` in one dict (no drawing here)."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from ttsplan.features.defaults import DEFAULT_GPU
from ttsplan.features.errors import TtsplanError
from ttsplan.features.schema import has_values, table_kind
from ttsplan.planner.plan import make_plan, resolve_cost_model
from ttsplan.planner.policy_plan import PolicyPlan
from ttsplan.report.figure_data import (
    FIGURES,
    allocation_data,
    cost_breakdown_data,
    curves_data,
    frontier_data,
    gain_data,
    policy_plan_points,
)

#: ``progress(message)``: called before each slow step (the CLI prints it dimmed to stderr)
Progress = Callable[[str], None]


def no_progress(_: str) -> None:
    """The default ``progress``: says nothing."""


def build_report(table: pl.DataFrame, plan: Any = None, model: str | None = None, gpu: str = DEFAULT_GPU,
                 files: Sequence[str | Path] | None = None, n_boot: int = 200, gain_target: str | None = None,
                 gain_n: int | None = None, gain_boot: int = 1000, seed: int = 0,
                 figures: Sequence[str] = FIGURES, progress: Progress = no_progress,
                 calibration: str | Path | None = None) -> dict[str, Any]:
    """Compute the data of every figure; a figure that cannot be drawn from this data is listed in
    ``skipped`` with the reason instead of failing the whole report."""
    unknown = [f for f in figures if f not in FIGURES]
    if unknown:
        raise TtsplanError(f"figures must be among {', '.join(FIGURES)}, got {', '.join(unknown)}.")
    cost_model = None
    if model is not None:  # priced as `ttsplan plan` prices (the shipped calibration on H100)
        cost_model = resolve_cost_model(model, gpu, calibration)
    out: dict[str, Any] = {"figures": {}, "skipped": {}, "model": getattr(cost_model, "model", None) and
                           cost_model.model.name, "gpu": getattr(cost_model, "gpu", None) and cost_model.gpu.name,
                           "sources": [str(f) for f in files or []],
                           "configs": sorted(table["config"].unique().to_list())}
    figs = out["figures"]

    def attempt(name: str, fn: Callable[[], dict]) -> None:
        if name not in figures:
            return
        progress(f"computing {name} …")
        try:
            figs[name] = fn()
        except TtsplanError as exc:
            out["skipped"][name] = str(exc)

    need_curves = "curves" in figures or "frontier" in figures
    if need_curves:
        progress("computing curves (exact estimators, bootstrap over prompts) …")
    curves = curves_data(table, n_boot=n_boot, seed=seed, files=files) if need_curves else None
    if "curves" in figures:
        figs["curves"] = curves
    if isinstance(plan, PolicyPlan):  # schema 2: policies, cross-validated; no per-prompt allocation to draw
        out["plan"] = {"schema_version": plan.schema_version, "objective": plan.objective.describe(),
                       "recommended_by_dataset": plan.recommended_by_dataset(), "model": plan.model,
                       "gpu": plan.gpu}

        def frontier_with_policy() -> dict:
            by_task = plan.recommended_by_dataset()  # highlight the plan's choice for the first task
            data = frontier_data(table, curves["rows"], None, cost_model,
                                 highlight=by_task[sorted(by_task)[0]] if by_task else None)
            data["plan_points"] = policy_plan_points(plan, table, data["highlighted_config"], cost_model,
                                                     data["units"], data["batch_prompts"])
            return data

        attempt("frontier", frontier_with_policy)
        if "allocation" in figures:
            out["skipped"]["allocation"] = ("a policy plan (schema 2) has no per-prompt allocation to draw; "
                                            "pass a per-prompt plan (`ttsplan plan --per-prompt --out`) for it.")
    else:
        if plan is None and ("frontier" in figures or "allocation" in figures):
            progress("planning (fit success model, price, allocate) …")
            try:
                plan = make_plan(table, None, unit="samples", model=model, gpu=gpu, calibration=calibration)
            except TtsplanError as exc:
                out["skipped"]["allocation"] = f"no plan: {exc}"
        if plan is not None:
            out["plan"] = {"recommended_config": plan.recommended_config, "budget": plan.budget.describe(),
                           "model": plan.model, "gpu": plan.gpu}
        attempt("frontier", lambda: frontier_data(table, curves["rows"], plan, cost_model))
        if plan is not None:
            attempt("allocation", lambda: allocation_data(plan, files=files))
    if "gain" in figures or "stability" in figures:
        progress("fitting the gain predictor (LOCO, bootstrap-Lasso stability) …")
        try:
            rep = gain_data(table, gain_target, gain_n, n_boot=gain_boot, seed=seed, files=files)
        except TtsplanError as exc:
            for f in ("gain", "stability"):
                if f in figures:
                    out["skipped"][f] = str(exc)
        else:
            base = {k: rep[k] for k in ("target", "n", "k_features", "n_configs", "method", "features", "command")}
            if "gain" in figures:
                best = next(b for b in rep["baselines"] if b["name"] == rep["best_baseline"])
                figs["gain"] = {"title": "Predicted vs actual gain (leave one configuration out)", **base,
                                **{k: rep[k] for k in ("loco_spearman", "loco_spearman_ci", "loco_kendall",
                                                       "loco_mae", "confidence", "predictions")},
                                **{k: rep[k] for k in ("curve_law", "curve_law_loco") if k in rep},
                                "best_baseline": {"name": best["name"], "description": best["description"],
                                                  "loco_spearman": best["loco_spearman"]}}
            if "stability" in figures:
                if rep["stability"]:
                    figs["stability"] = {"title": "Feature stability (bootstrap Lasso)", **base,
                                         "stability": rep["stability"]}
                else:
                    out["skipped"]["stability"] = (f"feature stability needs at least 4 configurations, got "
                                                   f"{rep['n_configs']}.")
    if "cost_breakdown" in figures:
        lp = 150.0
        if table_kind(table) == "samples" and has_values(table, "prompt_tokens"):
            lp = float(round(table["prompt_tokens"].cast(pl.Float64).mean()))
        attempt("cost_breakdown", lambda: cost_breakdown_data(model or "gemma-3-270m", gpu, lp))
    return out


__all__ = ["Progress", "build_report", "no_progress"]
