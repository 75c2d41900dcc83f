"""The numbers behind each figure of ``ttsplan report``, as JSON-ready dicts (no drawing here).

Each ``<name>_data`` function returns one figure's data; each holds a ``command``: the ``ttsplan`` call
whose ``--format json`` output carries the same numbers. :func:`ttsplan.report.build.build_report` runs
them all; :mod:`ttsplan.report.drawing` draws them.

>>> import polars as pl
>>> from ttsplan.features.schema import validate_sample_table
>>> rows = [{"config": "c", "prompt_id": f"p{i}", "sample_idx": j, "answer": str(j % 2 if i % 2 else 1),
...          "correct": (j % 2 == 1) if i % 2 else True} for i in range(6) for j in range(4)]
>>> d = curves_data(validate_sample_table(pl.DataFrame(rows)), n_boot=0)
>>> [(r["metric"], r["k"], r["value"]) for r in d["rows"] if r["k"] == 1]
[('maj', 1, 0.75), ('pass', 1, 0.75)]
"""
from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ttsplan.features.defaults import DEFAULT_CI_CONFIDENCE, DEFAULT_GPU
from ttsplan.features.errors import TtsplanError
from ttsplan.features.estimators import curves
from ttsplan.features.schema import has_values, table_kind
from ttsplan.fitting.cost import LENGTH_DISTRIBUTIONS, CostModel
from ttsplan.fitting.gain import fit_report
from ttsplan.planner.option_grid import cost_at_samples
from ttsplan.planner.plan import fit_success, prepare, prompt_lengths
from ttsplan.planner.strategies import cost_matrix

#: every figure of the report, in the order of index.html
FIGURES: tuple[str, ...] = ("curves", "frontier", "allocation", "gain", "stability", "cost_breakdown")
#: estimator of ``ttsplan curves`` -> the planner strategy it measures
METRIC_STRATEGY = {"maj": "majority", "bon": "best-of-n", "pass": "pass@n"}
#: cost unit -> (axis label, display scale)
UNITS = {"samples": ("samples per prompt", 1.0), "tokens": ("tokens per prompt, prompt + generated", 1.0),
         "eflops": ("Kinetics eFLOPs per prompt", 1.0), "seconds": ("GPU-seconds per prompt", 1.0),
         "usd": ("dollars per 1,000 prompts", 1000.0)}
#: (row key, label, colour) of each part of the cost breakdown, bottom to top
BREAKDOWN_PARTS = (("prefill_s", "prefill (prompt)", "#9edae5"),
                   ("weights_s", "decode: weight reads", "#1f77b4"),
                   ("kv_s", "decode: KV-cache reads", "#d62728"),
                   ("compute_s", "decode: compute beyond memory time", "#ff7f0e"),
                   ("overhead_s", "fixed per-step overhead", "#c7c7c7"),
                   ("verify_s", "verifier scoring", "#2ca02c"))
#: the keys of ``ttsplan estimate --format json`` that every cost-breakdown row carries
ESTIMATE_KEYS = ("n", "tokens", "generated_tokens", "verifier_tokens", "flops", "bytes", "eflops", "kv_cache_bytes",
                 "waves", "prefill_s", "decode_s", "verify_s", "latency_s", "cost_usd")


def _ks(table: pl.DataFrame) -> list[int]:
    """Powers of two up to the largest per-prompt sample count, plus that count."""
    if table_kind(table) == "counts":
        k_max = int(table["samples"].max())
    else:
        k_max = int(table.group_by(["config", "prompt_id"]).len()["len"].max())
    ks = [2 ** i for i in range(int(math.log2(max(k_max, 1))) + 1)]
    return ks + ([k_max] if ks[-1] != k_max else [])


def _files_arg(files: Sequence[str | Path] | None) -> str:
    return " ".join(str(f) for f in files) if files else "FILE"


# ------------------------------------------------------------------------------------------ data
def curves_data(table: pl.DataFrame, ks: Sequence[int] | None = None, n_boot: int = 200, seed: int = 0,
                confidence: float = DEFAULT_CI_CONFIDENCE, files: Sequence[str | Path] | None = None) -> dict[str, Any]:
    """Accuracy vs N per configuration and metric with bootstrap intervals (= ``ttsplan curves``)."""
    ks = sorted(set(ks or _ks(table)))
    metrics = ["pass", "maj", "bon"]
    rows = curves(table, metrics=metrics, ks=ks, n_boot=n_boot, seed=seed, confidence=confidence,
                  kind=table_kind(table)).to_dicts()
    k_arg = ",".join(map(str, ks))
    return {"title": "Accuracy vs N per strategy", "metrics": metrics, "ks": ks, "n_boot": n_boot, "seed": seed,
            "confidence": confidence, "rows": rows,
            "command": f"ttsplan curves {_files_arg(files)} --metric pass --metric maj --metric bon --k {k_arg} "
                       f"--bootstrap {n_boot} --confidence {confidence} --seed {seed} --format json"}


def _lengths(table: pl.DataFrame) -> pl.DataFrame:
    return prompt_lengths(table).with_columns(pl.col("prompt_tokens").fill_null(0.0),
                                              pl.col("output_tokens").fill_null(1.0))


def _pareto(cost: np.ndarray, acc: np.ndarray) -> list[int]:
    """Indices of the points no other point beats (cheaper-or-equal and more accurate), by cost."""
    order = np.lexsort((-acc, cost))
    best, out = -np.inf, []
    for i in order:
        if acc[i] > best + 1e-12:
            out.append(int(i))
            best = acc[i]
    return out


def _planner_arrays(table: pl.DataFrame, unit: str, cost_model: Any, batch_prompts: int) -> Any:
    """The accuracy and cost arrays exactly as :func:`ttsplan.planner.plan.make_plan` builds them (with its
    default calibration of the success model onto the empirical curves of a sample table)."""
    kw: dict[str, Any] = {"cost_model": cost_model, "batch_prompts": batch_prompts}
    if table_kind(table) == "samples":
        post = fit_success(table)
        kw.update(posteriors=post, calibrate=(table, post, 0))
    return prepare(table, unit, **kw)


def frontier_data(table: pl.DataFrame, curve_rows: list[dict], plan: Any = None, cost_model: Any = None,
                  batch_prompts: int = 64, max_n: int | None = 64, highlight: str | None = None) -> dict[str, Any]:
    """Accuracy vs cost per prompt of running every (configuration, strategy, N) uniformly, its Pareto
    frontier in each cost unit, and the plan's points.

    ``points`` carry the planner's accuracy estimates (its success model, calibrated onto the empirical
    curves as :func:`ttsplan.planner.plan.make_plan` does; mean over prompts, with the mean 90% credible
    bounds) of the planner's strategies on its N grid (N ≤ ``max_n``) — the numbers the planner
    optimizes, so the plan's points are comparable with the frontier (the config-level choice lies on
    it; the per-prompt plan on or above it). Only configurations of the highlighted configuration's
    ``dataset`` are compared (other tasks are not alternatives). ``measured`` carries the exact in-sample accuracy of
    majority / best-of-N at the recorded N (from the curves) for the same costs, to check the
    prediction. Costs are per prompt, priced like the planner prices them
    (:func:`ttsplan.planner.strategies.cost_matrix`, ``batch_prompts`` prompts sharing the GPU).
    """
    if table_kind(table) == "counts":
        raise TtsplanError("the accuracy-cost frontier needs a sample table with answers or rewards, got a count "
                           "table: only one sample per prompt (greedy) can be planned from counts, so there is no "
                           "trade-off to draw. Pass sample tables.")
    if not has_values(table, "output_tokens"):
        units = ["samples"]
    else:
        units = ["tokens"] + (["eflops", "seconds", "usd"] if cost_model is not None else [])
    prep = _planner_arrays(table, "eflops" if "eflops" in units else units[0], cost_model, batch_prompts)
    grid = [g for g in prep.grid if max_n is None or g <= max_n]
    # configurations are alternatives only for the same task: keep the recommended config's dataset
    ds = {c: d for c, d in (table.group_by("config").agg(pl.col("dataset").drop_nulls().first())
                            .iter_rows())} if "dataset" in table.columns else {}
    best = max(prep.configs, key=lambda c: float(prep.mean[prep.rows[c]].mean(axis=0).max()))
    rec = plan.recommended_config if plan is not None else (highlight if highlight in prep.configs else best)
    task = ds.get(rec)
    configs = [c for c in prep.configs if ds.get(c) == task]
    points: list[dict] = []
    for cfg in configs:
        r = prep.rows[cfg]
        for si, s in enumerate(prep.strategies):
            for gi, g in enumerate(grid):
                if s.single_sample and gi > 0:
                    break
                points.append({"config": cfg, "strategy": s.name, "n": 1 if s.single_sample else int(g),
                               "accuracy": float(prep.mean[r, si, gi].mean()),
                               "ci_low": float(prep.low[r, si, gi].mean()),
                               "ci_high": float(prep.high[r, si, gi].mean()),
                               **{u: float(prep.costs[u][r, si, gi].mean()) for u in units}})
    acc = np.array([p["accuracy"] for p in points], dtype=float)
    frontier = {u: _pareto(np.array([p[u] for p in points], dtype=float), acc) for u in units} if points else {}
    lengths = _lengths(table)
    measured: list[dict] = []
    metrics = [m for m in ("maj", "bon") if any(r["metric"] == m for r in curve_rows)] or ["pass"]
    for cfg in sorted({r["config"] for r in curve_rows} & set(configs)):
        lp_cfg = lengths.filter(pl.col("config") == cfg)
        lp = lp_cfg["prompt_tokens"].to_numpy().astype(float)
        lo = lp_cfg["output_tokens"].to_numpy().astype(float)
        for m in metrics:
            rows = sorted((r for r in curve_rows if r["config"] == cfg and r["metric"] == m), key=lambda r: r["k"])
            if not rows:
                continue
            ks = [r["k"] for r in rows]
            costs = {u: cost_matrix(METRIC_STRATEGY[m], ks, lp, lo, u, cost_model, batch_prompts).mean(axis=0)
                     for u in units}
            for j, r in enumerate(rows):
                measured.append({"config": cfg, "metric": m, "strategy": METRIC_STRATEGY[m], "n": r["k"],
                                 "accuracy": r["value"], "ci_low": r["ci_low"], "ci_high": r["ci_high"],
                                 **{u: float(costs[u][j]) for u in units}})
    plan_points: list[dict] = []
    if plan is not None:
        cfg = plan.recommended_config
        cp = next(c for c in plan.configs if c.config == cfg)
        al = plan.allocations_frame().filter(pl.col("config") == cfg)
        al = al.join(lengths.filter(pl.col("config") == cfg), on=["config", "prompt_id"], how="left")
        lp = al["prompt_tokens"].fill_null(0.0).to_numpy().astype(float)
        lo = al["output_tokens"].fill_null(1.0).to_numpy().astype(float)
        per = {u: np.zeros(al.height) for u in units}
        strat, ns = al["strategy"].to_numpy(), al["n"].to_numpy()
        for s in sorted(set(strat.tolist())):
            for n in sorted(set(ns[strat == s].tolist())):
                idx = np.flatnonzero((strat == s) & (ns == n))
                for u in units:
                    per[u][idx] = cost_matrix(s, [int(n)], lp[idx], lo[idx], u, cost_model, batch_prompts)[:, 0]
        plan_points.append({"label": "per-prompt plan", "config": cfg, "strategy": "mixed", "n": cp.mean_n,
                            "accuracy": cp.per_prompt_accuracy, "ci_low": cp.per_prompt_low,
                            "ci_high": cp.per_prompt_high, **{u: float(per[u].mean()) for u in units}})
        if cp.strategy is not None:
            cl = lengths.filter(pl.col("config") == cfg)
            lvl = {u: float(cost_matrix(cp.strategy, [cp.n], cl["prompt_tokens"].to_numpy().astype(float),
                                        cl["output_tokens"].to_numpy().astype(float), u, cost_model,
                                        batch_prompts).mean())
                   for u in units}
            plan_points.append({"label": f"{cp.strategy} N={cp.n} for every prompt", "config": cfg,
                                "strategy": cp.strategy, "n": cp.n, "accuracy": cp.expected_accuracy,
                                "ci_low": cp.accuracy_low, "ci_high": cp.accuracy_high, **lvl})
    model = getattr(getattr(cost_model, "model", None), "name", None)
    gpu = getattr(getattr(cost_model, "gpu", None), "name", None)
    labels = {u: UNITS[u][0] for u in units}
    scale = {u: UNITS[u][1] for u in units}
    if "usd" in units and points and float(np.median([p["usd"] for p in points])) * 1e3 < 0.01:
        labels["usd"], scale["usd"] = "dollars per million prompts", 1e6
    return {"title": "Accuracy vs cost per prompt", "units": units, "unit_labels": labels,
            "display_scale": scale, "model": model, "gpu": gpu,
            "batch_prompts": batch_prompts, "strategies": [s.name for s in prep.strategies], "grid": grid,
            "recommended_config": plan.recommended_config if plan is not None else None,
            "highlighted_config": rec, "dataset": task, "configs": configs,
            "excluded_configs": [c for c in prep.configs if c not in configs],
            "points": points, "frontier": frontier, "measured": measured, "plan_points": plan_points,
            "accuracy_is": "points and plan_points: the planner's estimates (success model calibrated onto the "
                           "empirical curves; bounds: mean 90% credible); measured: exact in-sample estimates",
            "command": "ttsplan plan FILE --format json (baselines, per_prompt_* of the recommended config)"}


def policy_plan_points(plan: Any, table: pl.DataFrame, config: str, cost_model: Any, units: Sequence[str],
                       batch_prompts: int = 64) -> list[dict[str, Any]]:
    """The frontier point of a policy plan (schema 2) on ``config``: its cross-validated accuracy and
    interval, priced per prompt at its expected samples (majority, linear between whole N)."""
    cp = next((c for c in plan.configs if c.config == config), None)
    if cp is None:
        return []
    lengths = prompt_lengths(table.filter(pl.col("config") == config))
    lp = lengths["prompt_tokens"].fill_null(0.0).to_numpy().astype(float)
    lo = lengths["output_tokens"].fill_null(1.0).to_numpy().astype(float)
    s = float(cp.samples.mean)
    ns = range(1, int(np.floor(s)) + 2)
    cost = {u: float(cost_at_samples(cost_matrix("majority", ns, lp, lo, u, cost_model, batch_prompts).T,
                                     np.full(lp.size, s)).mean()) for u in units}
    a = cp.accuracy
    return [{"label": f"{cp.policy.describe()}, cross-validated", "config": config, "strategy": "majority",
             "n": s, "accuracy": a.mean, "ci_low": a.low, "ci_high": a.high, **cost}]


def allocation_data(plan: Any, config: str | None = None, files: Sequence[str | Path] | None = None
                    ) -> dict[str, Any]:
    """How many prompts got each (strategy, N) in the plan (default: its recommended configuration)."""
    cfg = config or plan.recommended_config
    al = plan.allocations_frame().filter(pl.col("config") == cfg)
    if al.height == 0:
        raise TtsplanError(f"config must be one of the plan's configurations, got {cfg!r}.")
    counts = al.group_by(["strategy", "n"]).len().sort(["n", "strategy"]).rename({"len": "prompts"}).to_dicts()
    cp = next(c for c in plan.configs if c.config == cfg)
    budget = plan.budget.describe()
    return {"title": "Per-prompt allocation", "config": cfg, "budget": budget, "budget_unit": plan.budget.unit,
            "budget_is_default": plan.budget_is_default, "n_prompts": al.height, "mean_n": cp.mean_n,
            "grid": list(plan.grid), "counts": counts,
            "allocations": al.select("prompt_id", "strategy", "n", "expected_accuracy", "expected_cost").to_dicts(),
            "uniform_baselines": [{"strategy": b.strategy, "n": b.n, "expected_accuracy": b.expected_accuracy}
                                  for b in cp.baselines if b.name == "uniform"],
            "per_prompt_accuracy": cp.per_prompt_accuracy,
            "command": f"ttsplan plan {_files_arg(files)} --format json  (allocations where config = {cfg!r})"}


def default_gain_target(table: pl.DataFrame) -> str:
    """maj when the table has answers, else pass."""
    return "maj" if table_kind(table) == "samples" and has_values(table, "answer") else "pass"


def default_gain_n(table: pl.DataFrame) -> int:
    """Half the samples every configuration has (features use the other half), at least 2."""
    if table_kind(table) == "counts":
        per_cfg = table.group_by("config").agg(pl.col("samples").min().alias("k"))
    else:
        per_cfg = table.group_by(["config", "prompt_id"]).len().group_by("config").agg(pl.col("len").min().alias("k"))
    return max(2, int(per_cfg["k"].min()) // 2)


def gain_data(table: pl.DataFrame, target: str | None = None, n: int | None = None, n_boot: int = 1000,
              seed: int = 0, files: Sequence[str | Path] | None = None) -> dict[str, Any]:
    """The report of ``ttsplan fit --target T --n N --format json``: the default predictor (the curve
    predictor) with its LOCO predictions and ρ, and the bootstrap-Lasso stability of the candidate config
    features (what a sparse linear model on them would keep; the curve predictor itself uses none of them)."""
    target = target or default_gain_target(table)
    n = int(n or default_gain_n(table))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        rep = fit_report(table, target, n, n_boot=n_boot, seed=seed)
    rep = json.loads(to_json(rep))
    rep["command"] = f"ttsplan fit {_files_arg(files)} --target {target} --n {n} " \
                     f"--n-boot {n_boot} --seed {seed} --format json"
    return rep


def cost_breakdown_data(model: str | Any = "gemma-3-270m", gpu: str | Any = DEFAULT_GPU, prompt_tokens: float = 150.0,
                        ns: Sequence[int] = (1, 2, 4, 8, 16, 32, 64, 128, 256), n_at: int = 16,
                        output_tokens: Sequence[int] = (128, 512, 2048, 8192, 32768), output_at: int = 4096,
                        strategy: str = "majority") -> dict[str, Any]:
    """GPU time of one prompt split into prefill, decode weight reads, decode KV reads, compute beyond the
    memory time, fixed overhead and verifier scoring, as N grows (at ``output_at`` tokens) and as
    L_out grows (at ``n_at`` samples); uncalibrated roofline, one prompt per batch.

    The parts sum to ``latency_s`` of ``ttsplan estimate`` (which the rows also carry, key for key).
    """
    cm = model if isinstance(model, CostModel) else CostModel(model, gpu)
    m, e = cm.model, cm.efficiency
    bw_time = 1.0 / (cm.bandwidth * e.e_m)

    def point(n: int, lout: float) -> dict[str, Any]:
        out = cm.price(np.array([n]), prompt_tokens, lout, strategy=strategy, batch_prompts=1)
        row = {k: float(np.asarray(out[k]).ravel()[0]) for k in ESTIMATE_KEYS if k != "n"}
        waves = row["waves"]
        dec = cm.decode(LENGTH_DISTRIBUTIONS["fixed"], 1.0 / waves, n, prompt_tokens, lout)
        steps = float(dec["steps"].ravel()[0])
        w_bytes = steps * float(np.asarray(m.weight_bytes_read(n / waves)))
        weights_s = waves * w_bytes * bw_time
        kv_s = waves * (float(dec["bytes"].ravel()[0]) - w_bytes) * bw_time
        overhead_s = waves * steps * (e.t_fixed_s + float(np.asarray(cm.allreduce_s(n / waves))))
        compute_s = max(row["decode_s"] - weights_s - kv_s - overhead_s, 0.0)
        return {"n": int(n), "prompt_tokens": float(prompt_tokens), "output_tokens": float(lout), **row,
                "weights_s": weights_s, "kv_s": kv_s, "compute_s": compute_s, "overhead_s": overhead_s,
                "request_s": e.t_request_s}

    return {"title": "Where the GPU time of one prompt goes", "model": m.name, "gpu": cm.gpu.name,
            "strategy": strategy, "prompt_tokens": float(prompt_tokens), "calibrated": False,
            "parts": [{"key": k, "label": lab} for k, lab, _ in BREAKDOWN_PARTS],
            "vs_n": {"output_tokens": output_at, "rows": [point(n, output_at) for n in ns]},
            "vs_output": {"n": n_at, "rows": [point(n_at, lo) for lo in output_tokens]},
            "command": f"ttsplan estimate --model {m.name} --gpu {cm.gpu.name} --strategy {strategy} "
                       f"--n {','.join(map(str, ns))} --prompt-tokens {prompt_tokens:g} --output-tokens {output_at} "
                       f"--calibration none --format json  (and --n {n_at} --output-tokens L for each L in "
                       f"{','.join(map(str, output_tokens))})"}


def to_json(obj: Any) -> str:
    """JSON text of a report or figure: NaN and inf as null, numpy scalars as numbers."""
    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        if isinstance(v, np.generic):
            return clean(v.item())
        return v

    return json.dumps(clean(obj), indent=1, default=str, allow_nan=False)


__all__ = ["BREAKDOWN_PARTS", "ESTIMATE_KEYS", "FIGURES", "METRIC_STRATEGY", "UNITS", "allocation_data",
           "cost_breakdown_data", "curves_data", "default_gain_n", "default_gain_target", "frontier_data",
           "gain_data", "to_json"]
