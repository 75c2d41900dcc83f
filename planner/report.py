"""Figures of a test-time-scaling study: the data behind each plot, and its rendering (``ttsplan report``).

Two layers, so every picture can be checked against numbers:

* ``*_data`` functions compute the exact data of one figure as a JSON-ready dict (each holds a
  ``command``: the ``ttsplan`` call whose ``--format json`` output carries the same numbers);
  :func:`build_report` runs them all and returns ``{"figures": {name: data}, "skipped": {name: why}}``.
* :func:`render_report` draws every figure with matplotlib (imported lazily, Agg backend, no display)
  and writes ``<name>.png`` + ``<name>.svg``, ``figures.json`` (the data) and ``index.html``, all
  atomically.

Figures (:data:`FIGURES`):

==================  ===========================================================================
``curves``          accuracy vs N per strategy (pass@N, maj@N, BoN@N) with bootstrap bands,
                    log-N axis, one panel per configuration (= ``ttsplan curves``)
``frontier``        accuracy vs cost per prompt (tokens, eFLOPs, GPU-seconds, dollars) of every
                    (configuration, strategy, N), the Pareto frontier, and the plan's points
``allocation``      per-prompt allocation histogram of the plan's recommended configuration
                    (= the ``allocations`` of ``ttsplan plan --format json``)
``gain``            LOCO predicted vs actual gain (metric@N − pass@1) per configuration with
                    Spearman ρ (= ``predictions`` of ``ttsplan fit --format json``)
``stability``       bootstrap-Lasso selection frequency per feature (= ``stability`` of the same)
``cost_breakdown``  where one prompt's GPU time goes — prefill, weight reads, KV-cache reads,
                    compute beyond the memory time — as N and L_out grow (= ``ttsplan estimate``)
==================  ===========================================================================

>>> import polars as pl
>>> from ttsplan.features.schema import validate_sample_table
>>> rows = [{"config": "c", "prompt_id": f"p{i}", "sample_idx": j, "answer": str(j % 2 if i % 2 else 1),
...          "correct": (j % 2 == 1) if i % 2 else True} for i in range(6) for j in range(4)]
>>> d = curves_data(validate_sample_table(pl.DataFrame(rows)), n_boot=0)
>>> [(r["metric"], r["k"], r["value"]) for r in d["rows"] if r["k"] == 1]
[('maj', 1, 0.75), ('pass', 1, 0.75)]
"""
from __future__ import annotations

import html
import io
import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ttsplan.features.errors import TtsplanError
from ttsplan.features.estimators import curves
from ttsplan.features.io import write_atomic
from ttsplan.features.schema import has_values
from ttsplan.fitting.cost import LENGTH_DISTRIBUTIONS, CostModel
from ttsplan.fitting.gain import fit_report
from ttsplan.fitting.success import split_configs_by_dataset
from ttsplan.planner.plan import fit_success, make_plan, prepare, prompt_lengths, resolve_cost_model
from ttsplan.planner.strategies import cost_matrix

FIGURES: tuple[str, ...] = ("curves", "frontier", "allocation", "gain", "stability", "cost_breakdown")
METRIC_LABELS = {"pass": "pass@N (any correct; oracle coverage)", "maj": "maj@N (majority vote)",
                 "bon": "BoN@N (best of N by reward)"}
METRIC_STRATEGY = {"maj": "majority", "bon": "best-of-n", "pass": "pass@n"}
METRIC_COLORS = {"pass": "#7f7f7f", "maj": "#1f77b4", "bon": "#d62728"}
STRATEGY_COLORS = {"greedy": "#7f7f7f", "majority": "#1f77b4", "best-of-n": "#d62728",
                   "weighted-majority": "#9467bd", "best-of-majority": "#ff7f0e", "pass@n": "#2ca02c"}
UNITS = {"samples": ("samples per prompt", 1.0), "tokens": ("tokens per prompt, prompt + generated", 1.0),
         "eflops": ("Kinetics eFLOPs per prompt", 1.0), "seconds": ("GPU-seconds per prompt", 1.0),
         "usd": ("dollars per 1,000 prompts", 1000.0)}
BREAKDOWN_PARTS = (("prefill_s", "prefill (prompt)", "#9edae5"),
                   ("weights_s", "decode: weight reads", "#1f77b4"),
                   ("kv_s", "decode: KV-cache reads", "#d62728"),
                   ("compute_s", "decode: compute beyond memory time", "#ff7f0e"),
                   ("overhead_s", "fixed per-step overhead", "#c7c7c7"),
                   ("verify_s", "verifier scoring", "#2ca02c"))
ESTIMATE_KEYS = ("n", "tokens", "generated_tokens", "verifier_tokens", "flops", "bytes", "eflops", "kv_cache_bytes",
                 "waves", "prefill_s", "decode_s", "verify_s", "latency_s", "cost_usd")

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def _kind(table: pl.DataFrame) -> str:
    return "counts" if "correct_samples" in table.columns else "samples"


def _ks(table: pl.DataFrame) -> list[int]:
    """Powers of two up to the largest per-prompt sample count, plus that count."""
    if _kind(table) == "counts":
        k_max = int(table["samples"].max())
    else:
        k_max = int(table.group_by(["config", "prompt_id"]).len()["len"].max())
    ks = [2 ** i for i in range(int(math.log2(max(k_max, 1))) + 1)]
    return ks + ([k_max] if ks[-1] != k_max else [])


def _files_arg(files: Sequence[str | Path] | None) -> str:
    return " ".join(str(f) for f in files) if files else "FILE"


# ------------------------------------------------------------------------------------------ data
def curves_data(table: pl.DataFrame, ks: Sequence[int] | None = None, n_boot: int = 200, seed: int = 0,
                confidence: float = 0.95, files: Sequence[str | Path] | None = None) -> dict[str, Any]:
    """Accuracy vs N per configuration and metric with bootstrap intervals (= ``ttsplan curves``)."""
    ks = sorted(set(ks or _ks(table)))
    metrics = ["pass", "maj", "bon"]
    rows = curves(table, metrics=metrics, ks=ks, n_boot=n_boot, seed=seed, confidence=confidence,
                  kind=_kind(table)).to_dicts()
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
    if "correct_samples" not in table.columns:
        post = fit_success(table)
        kw.update(posteriors=post, calibrate=(table, post, 0))
    return prepare(table, unit, **kw)


def frontier_data(table: pl.DataFrame, curve_rows: list[dict], plan: Any = None, cost_model: Any = None,
                  batch_prompts: int = 64, max_n: int | None = 64) -> dict[str, Any]:
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
    if _kind(table) == "counts":
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
    rec = plan.recommended_config if plan is not None else max(
        prep.configs, key=lambda c: float(prep.mean[prep.rows[c]].mean(axis=0).max()))
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
    return "maj" if _kind(table) == "samples" and has_values(table, "answer") else "pass"


def default_gain_n(table: pl.DataFrame) -> int:
    """Half the samples every configuration has (features use the other half), at least 2."""
    if _kind(table) == "counts":
        per_cfg = table.group_by("config").agg(pl.col("samples").min().alias("k"))
    else:
        per_cfg = table.group_by(["config", "prompt_id"]).len().group_by("config").agg(pl.col("len").min().alias("k"))
    return max(2, int(per_cfg["k"].min()) // 2)


def gain_data(table: pl.DataFrame, target: str | None = None, n: int | None = None, n_boot: int = 1000,
              seed: int = 0, files: Sequence[str | Path] | None = None) -> dict[str, Any]:
    """The report of ``ttsplan fit --target T --n N --format json`` (LOCO predictions, ρ, stability)."""
    import warnings

    target = target or default_gain_target(table)
    n = int(n or default_gain_n(table))
    features = "counts" if _kind(table) == "counts" else "core"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        rep = fit_report(table, target, n, features=features, n_boot=n_boot, seed=seed)
    rep = json.loads(_to_json(rep))
    rep["command"] = f"ttsplan fit {_files_arg(files)} --target {target} --n {n} --features {features} " \
                     f"--n-boot {n_boot} --seed {seed} --format json"
    return rep


def cost_breakdown_data(model: str | Any = "gemma-3-270m", gpu: str | Any = "H100", prompt_tokens: float = 150.0,
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
                       f"--format json  (and --n {n_at} --output-tokens L for each L in "
                       f"{','.join(map(str, output_tokens))})"}


def _to_json(obj: Any) -> str:
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


def build_report(table: pl.DataFrame, plan: Any = None, model: str | None = None, gpu: str = "H100",
                 files: Sequence[str | Path] | None = None, n_boot: int = 200, gain_target: str | None = None,
                 gain_n: int | None = None, gain_boot: int = 1000, seed: int = 0,
                 figures: Sequence[str] = FIGURES, progress: Progress = _quiet) -> dict[str, Any]:
    """Compute the data of every figure; a figure that cannot be drawn from this data is listed in
    ``skipped`` with the reason instead of failing the whole report."""
    unknown = [f for f in figures if f not in FIGURES]
    if unknown:
        raise TtsplanError(f"figures must be among {', '.join(FIGURES)}, got {', '.join(unknown)}.")
    table = split_configs_by_dataset(table)
    cost_model = None
    if model is not None:  # priced as `ttsplan plan` prices (the shipped calibration on H100)
        cost_model = resolve_cost_model(model, gpu)
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
    if plan is None and ("frontier" in figures or "allocation" in figures):
        progress("planning (fit success model, price, allocate) …")
        try:
            plan = make_plan(table, None, unit="samples", model=model, gpu=gpu)
        except TtsplanError as exc:
            out["skipped"]["allocation"] = f"no plan: {exc}"
    if plan is not None:
        out["plan"] = {"recommended_config": plan.recommended_config, "budget": plan.budget.describe(),
                       "model": plan.model, "gpu": plan.gpu}
    attempt("frontier", lambda: frontier_data(table, curves["rows"], plan, cost_model))
    if plan is not None:
        attempt("allocation", lambda: allocation_data(plan, files=files))
    if "gain" in figures or "stability" in figures:
        progress("fitting the gain predictor (LOCO, bootstrap-Lasso) …")
        try:
            rep = gain_data(table, gain_target, gain_n, n_boot=gain_boot, seed=seed, files=files)
        except TtsplanError as exc:
            for f in ("gain", "stability"):
                if f in figures:
                    out["skipped"][f] = str(exc)
        else:
            base = {k: rep[k] for k in ("target", "n", "k_features", "n_configs", "features", "command")}
            if "gain" in figures:
                figs["gain"] = {"title": "Predicted vs actual gain (leave one configuration out)", **base,
                                **{k: rep[k] for k in ("loco_spearman", "loco_spearman_ci", "loco_kendall",
                                                       "loco_mae", "confidence", "predictions")}}
            if "stability" in figures:
                if rep["stability"]:
                    figs["stability"] = {"title": "Feature stability (bootstrap Lasso)", **base,
                                         "stability": rep["stability"]}
                else:
                    out["skipped"]["stability"] = (f"feature stability needs at least 4 configurations, got "
                                                   f"{rep['n_configs']}.")
    if "cost_breakdown" in figures:
        lp = 150.0
        if _kind(table) == "samples" and has_values(table, "prompt_tokens"):
            lp = float(round(table["prompt_tokens"].cast(pl.Float64).mean()))
        attempt("cost_breakdown", lambda: cost_breakdown_data(model or "gemma-3-270m", gpu, lp))
    return out


# ------------------------------------------------------------------------------------------ rendering
STYLE = {"font.size": 12, "axes.titlesize": 13, "axes.labelsize": 12, "xtick.labelsize": 11, "ytick.labelsize": 11,
         "legend.fontsize": 11, "figure.titlesize": 15, "axes.grid": True, "grid.alpha": 0.3,
         "axes.spines.top": False, "axes.spines.right": False, "svg.hashsalt": "ttsplan", "svg.fonttype": "none"}


def _short_names(names: Sequence[str]) -> dict[str, str]:
    """Drop the prefix every name shares up to a '/' (``gemma3-270m/larger/3shot`` → ``larger/3shot``)."""
    names = list(names)
    if len(names) < 2:
        return {n: n for n in names}
    prefix = os.path.commonprefix(names)
    cut = prefix.rfind("/") + 1
    return {n: (n[cut:] or n) for n in names}


def _fmt_count(x: float) -> str:
    for div, suf in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.3g}{suf}"
    return f"{x:.3g}"


def _fmt_seconds(s: float) -> str:
    if s >= 1:
        return f"{s:.3g} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms"
    return f"{s * 1e6:.3g} µs"


def _money(x: float) -> str:
    return f"${x:.2g}" if x < 1 else f"${x:,.0f}"


TICK_FORMAT: dict[str, Callable[[float], str]] = {
    "samples": lambda v: f"{v:g}", "tokens": lambda v: f"{v:,.0f}" if v >= 1 else f"{v:.2g}",
    "eflops": _fmt_count, "seconds": lambda v: _fmt_seconds(v), "usd": _money}


def _unit_axis(ax: Any, unit: str) -> None:
    """Log x axis with readable major labels (no crowded minor labels)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0), numticks=12))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: TICK_FORMAT[unit](v)))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _log2_ticks(ax: Any, values: Sequence[float]) -> None:
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

    ticks = sorted({v for v in values})
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticklabels([f"{int(t)}" for t in ticks])


def plot_curves(data: dict, fig_factory: Callable) -> Any:
    rows = data["rows"]
    configs = sorted({r["config"] for r in rows})
    shown = configs[:16]
    short = _short_names(configs)
    cols = min(4, len(shown))
    nrows = math.ceil(len(shown) / cols)
    fig, axes = fig_factory(nrows, cols, figsize=(3.6 * cols + 1.0, 3.0 * nrows + 1.4), sharex=True, sharey=True,
                            squeeze=False, layout="constrained")
    metrics = [m for m in data["metrics"] if any(r["metric"] == m for r in rows)]
    for ax, cfg in zip(axes.flat, shown):
        for m in metrics:
            pts = sorted((r for r in rows if r["config"] == cfg and r["metric"] == m), key=lambda r: r["k"])
            if not pts:
                continue
            k = [p["k"] for p in pts]
            ax.fill_between(k, [p["ci_low"] for p in pts], [p["ci_high"] for p in pts], color=METRIC_COLORS[m],
                            alpha=0.18, linewidth=0)
            ax.plot(k, [p["value"] for p in pts], "-o", color=METRIC_COLORS[m], ms=3.5, lw=1.8,
                    label=METRIC_LABELS[m])
        ax.set_xscale("log", base=2)
        ax.set_title(short[cfg], fontsize=11)
        ax.set_ylim(-0.02, 1.02)
    for ax in axes.flat[len(shown):]:
        ax.set_visible(False)
    _log2_ticks(axes.flat[0], data["ks"])
    for ax in axes[-1]:
        ax.set_xlabel("N (samples per prompt, log scale)")
    for ax in axes[:, 0]:
        ax.set_ylabel("accuracy (share of prompts)")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    conf = round(data["confidence"] * 100)
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 3), frameon=False)
    title = f"{data['title']} — shaded: {conf}% bootstrap interval over prompts"
    if len(configs) > len(shown):
        title += f" (first {len(shown)} of {len(configs)} configurations)"
    fig.suptitle(title)
    return fig


def plot_frontier(data: dict, fig_factory: Callable) -> Any:
    units = data["units"]
    cols = 2 if len(units) > 1 else 1
    nrows = math.ceil(len(units) / cols)
    size = (6.6 * cols, 4.4 * nrows + 1.6) if cols > 1 else (11.0, 6.6)
    fig, axes = fig_factory(nrows, cols, figsize=size, squeeze=False, layout="constrained")
    pts, meas = data["points"], data["measured"]
    rec = data["highlighted_config"]
    short = _short_names(sorted({p["config"] for p in pts}))
    acc = np.array([p["accuracy"] for p in pts])
    is_rec = np.array([p["config"] == rec for p in pts])
    for ax, u in zip(axes.flat, units):
        scale = data["display_scale"][u]
        x = np.array([p[u] for p in pts]) * scale
        if (~is_rec).any():
            ax.scatter(x[~is_rec], acc[~is_rec], s=9, color="#bbbbbb", linewidths=0, zorder=1,
                       label="other configurations, any strategy and N (predicted)")
        for s in data["strategies"]:
            mine = sorted((i for i in np.flatnonzero(is_rec) if pts[i]["strategy"] == s), key=lambda i: pts[i]["n"])
            if not mine:
                continue
            col = STRATEGY_COLORS.get(s, "black")
            if len(mine) == 1:
                ax.scatter(x[mine], acc[mine], s=30, color=col, zorder=3, label=f"{s} (predicted)")
            else:
                ax.plot(x[mine], acc[mine], "-", color=col, lw=1.6, zorder=3,
                        label=f"{s}, N = {pts[mine[0]]['n']}…{pts[mine[-1]]['n']} (predicted)")
        for m in sorted({q["metric"] for q in meas}):
            sel = [q for q in meas if q["config"] == rec and q["metric"] == m]
            if sel:
                ax.scatter([q[u] * scale for q in sel], [q["accuracy"] for q in sel], s=34, facecolors="none",
                           edgecolors=STRATEGY_COLORS[METRIC_STRATEGY[m]], linewidths=1.3, zorder=4,
                           label=f"{METRIC_STRATEGY[m]}, measured at N ≤ {max(q['n'] for q in sel)}")
        fr = data["frontier"][u]
        fx, fy = x[fr], acc[fr]
        if len(fx):
            ax.step(np.r_[fx, fx[-1]], np.r_[fy, fy[-1]], where="post", color="black", lw=1.2, zorder=2,
                    label="Pareto frontier (best predicted accuracy at that cost)")
        for mk, pp in zip(["*", "D"], data["plan_points"]):
            y, lo, hi = pp["accuracy"], pp["ci_low"], pp["ci_high"]
            ax.errorbar([pp[u] * scale], [y], yerr=[[y - lo], [hi - y]], fmt=mk, ms=16 if mk == "*" else 8,
                        color="#2ca02c" if mk == "*" else "#8c564b", mec="black", mew=0.8, capsize=3, elinewidth=1,
                        zorder=6, label=f"plan: {pp['label']} (90% interval)")
        _unit_axis(ax, u)
        ax.set_xlabel(data["unit_labels"][u] + " (log scale)")
        ax.set_ylabel("accuracy (share of prompts)")
    for ax in axes.flat[len(units):]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    where = (f"{data['model']} on {data['gpu']}, {data['batch_prompts']} prompts per batch" if data["model"] else
             "no --model given: token costs only")
    fig.legend(handles, labels, loc="outside lower center", ncol=3 if cols > 1 else 2, frameon=False, fontsize=10)
    task = f"task {data['dataset']}: " if data.get("dataset") else ""
    nc = len(data["configs"])
    fig.suptitle(f"{data['title']} — {task}{nc} configuration{'s' if nc != 1 else ''}; {where}\n"
                 f"lines: configuration {short.get(rec, rec)}"
                 + (" (the plan's recommendation)" if data["recommended_config"] else ""))
    return fig


def plot_allocation(data: dict, fig_factory: Callable) -> Any:
    fig, (ax, ax2) = fig_factory(1, 2, figsize=(13, 5.0), gridspec_kw={"width_ratios": [1.5, 1]})
    counts = data["counts"]
    ns = sorted({c["n"] for c in counts})
    strategies = [s for s in STRATEGY_COLORS if any(c["strategy"] == s for c in counts)]
    bottom = np.zeros(len(ns))
    pos = np.arange(len(ns))
    for s in strategies:
        h = np.array([sum(c["prompts"] for c in counts if c["strategy"] == s and c["n"] == n) for n in ns], float)
        ax.bar(pos, h, bottom=bottom, color=STRATEGY_COLORS[s], label=s, edgecolor="white", lw=0.5)
        bottom += h
    ax.set_xticks(pos, [str(n) for n in ns])
    ax.set_xlabel("N planned for the prompt (samples)")
    ax.set_ylabel("prompts")
    ax.legend(title="strategy", frameon=False)
    ax.set_title(f"{data['n_prompts']} prompts; mean N = {data['mean_n']:.1f}; budget {data['budget']}",
                 fontsize=11)
    # right: expected accuracy per prompt vs N, showing who gets more samples
    al = data["allocations"]
    for s in strategies:
        sel = [a for a in al if a["strategy"] == s]
        jitter = np.random.default_rng(0).uniform(-0.12, 0.12, len(sel))
        ax2.scatter([ns.index(a["n"]) + j for a, j in zip(sel, jitter)], [a["expected_accuracy"] for a in sel],
                    s=16, color=STRATEGY_COLORS[s], alpha=0.7, label=s)
    ax2.set_xticks(pos, [str(n) for n in ns])
    ax2.set_xlabel("N planned for the prompt (samples)")
    ax2.set_ylabel("predicted accuracy of the prompt")
    ax2.set_ylim(-0.02, 1.02)
    ax2.set_title("predicted accuracy of each prompt at its N", fontsize=11)
    fig.suptitle(f"{data['title']} — {data['config']}")
    fig.tight_layout()
    return fig


def plot_gain(data: dict, fig_factory: Callable) -> Any:
    fig, (ax, side) = fig_factory(1, 2, figsize=(11.5, 6.4), layout="constrained",
                                  gridspec_kw={"width_ratios": [1.4, 1]})
    preds = sorted(data["predictions"], key=lambda p: -p["actual"])
    x = np.array([p["predicted"] for p in preds], float)
    y = np.array([p["actual"] for p in preds], float)
    ax.scatter(x, y, s=60, color="#1f77b4", edgecolor="black", lw=0.5, zorder=3)
    lo, hi = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
    pad = 0.08 * (hi - lo or 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "--", color="gray", lw=1, label="predicted = actual")
    labelled = len(preds) <= 30
    if labelled:
        for i, p in enumerate(preds, 1):
            ax.annotate(str(i), (p["predicted"], p["actual"]), fontsize=9, xytext=(5, 4), textcoords="offset points",
                        color="#222222")
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_aspect("equal", adjustable="box")
    t, n = data["target"], data["n"]
    ax.set_xlabel(f"predicted gain, {t}@{n} − pass@1\n(accuracy, model trained without that configuration)")
    ax.set_ylabel(f"actual gain, {t}@{n} − pass@1 (accuracy)")
    ci = data["loco_spearman_ci"]
    conf = round(data["confidence"] * 100)
    ci_txt = f"\n{conf}% CI [{ci[0]:.2f}, {ci[1]:.2f}]" if ci and ci[0] is not None else ""
    ax.text(0.03, 0.97, f"Spearman ρ = {data['loco_spearman']:.3f}{ci_txt}\nMAE = {data['loco_mae']:.3f}",
            transform=ax.transAxes, va="top", fontsize=11,
            bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.9, "edgecolor": "#cccccc"})
    ax.legend(loc="lower right", frameon=False)
    side.axis("off")
    names = [p["config"] for p in preds]
    short = _short_names(names)
    prefix = names[0][: len(names[0]) - len(short[names[0]])] if names else ""
    lines = ([f"{i:>2}  {short[p['config']]}" for i, p in enumerate(preds, 1)] if labelled else
             [f"{len(preds)} configurations: names and values", "in figures.json (gain.predictions)"])
    head = f"configurations{f' ({prefix}…)' if prefix else ''}, by actual gain\n\n"
    side.text(0.0, 1.0, (head if labelled else "") + "\n".join(lines)
              + "\n\nfeatures: "
              + ", ".join(data["features"]), transform=side.transAxes, va="top", ha="left", fontsize=9.5,
              family="monospace", wrap=True)
    fig.suptitle(f"{data['title']}: {data['n_configs']} configurations")
    return fig


def plot_stability(data: dict, fig_factory: Callable) -> Any:
    rows = sorted(data["stability"], key=lambda r: r["selection_frequency"])
    fig, ax = fig_factory(1, 1, figsize=(9.5, 0.42 * len(rows) + 1.9), layout="constrained")
    core = set(data["features"])
    colors = ["#1f77b4" if r["feature"] in core else "#aec7e8" for r in rows]
    y = np.arange(len(rows))
    ax.barh(y, [r["selection_frequency"] for r in rows], color=colors, edgecolor="black", lw=0.4)
    ax.set_yticks(y, [r["feature"] for r in rows])
    for yi, r in zip(y, rows):
        ax.text(min(r["selection_frequency"], 1.0) + 0.01, yi, f"{r['selection_frequency']:.2f} "
                f"(mean coef {r['mean_coef']:+.3f})", va="center", fontsize=9)
    ax.set_xlim(0, 1.3)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0])
    ax.set_xlabel("selection frequency (share of bootstrap resamples that keep the feature)")
    ax.grid(axis="y", visible=False)
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color="#1f77b4", label="used by the gain model"), Patch(color="#aec7e8", label="other candidate")],
              loc="lower right", frameon=False)
    ax.set_title(f"{data['title']}\npredicting the gain {data['target']}@{data['n']} − pass@1 over "
                 f"{data['n_configs']} configurations", fontsize=12)
    return fig


def plot_cost_breakdown(data: dict, fig_factory: Callable) -> Any:
    fig, axes = fig_factory(1, 2, figsize=(14, 5.8), sharey=True, layout="constrained")
    every = data["vs_n"]["rows"] + data["vs_output"]["rows"]
    parts = [(k, lab, col) for k, lab, col in BREAKDOWN_PARTS
             if any(r[k] > 0.005 * r["latency_s"] for r in every)]
    for ax, key, xkey, xlab, fixed in (
            (axes[0], "vs_n", "n", "N (samples per prompt)", f"L_out = {data['vs_n']['output_tokens']:,} tokens"),
            (axes[1], "vs_output", "output_tokens", "L_out (generated tokens per sample)",
             f"N = {data['vs_output']['n']}")):
        rows = data[key]["rows"]
        pos = np.arange(len(rows))
        bottom = np.zeros(len(rows))
        total = np.array([sum(r[k] for k, _, _ in parts) for r in rows])
        for k, lab, col in parts:
            share = np.array([r[k] for r in rows]) / np.where(total > 0, total, 1.0) * 100
            ax.bar(pos, share, bottom=bottom, color=col, label=lab, edgecolor="white", lw=0.5)
            bottom += share
        for p, r in zip(pos, rows):
            ax.text(p, 101.5, _fmt_seconds(r["latency_s"]), ha="center", va="bottom", fontsize=9, rotation=0)
        ax.set_xticks(pos, [f"{int(r[xkey]):,}" for r in rows])
        ax.set_xlabel(xlab)
        ax.set_ylim(0, 112)
        ax.set_yticks([0, 25, 50, 75, 100])
        ax.grid(axis="x", visible=False)
        ax.set_title(f"growing {'N' if key == 'vs_n' else 'L_out'} at {fixed}", fontsize=12)
    axes[0].set_ylabel("share of the prompt's GPU time (%)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), frameon=False, fontsize=11)
    fig.suptitle(f"{data['title']}: {data['model']} on {data['gpu']}, {data['strategy']} vote, "
                 f"{data['prompt_tokens']:g}-token prompt\nnumbers above the bars: the prompt's latency "
                 "(uncalibrated roofline, one prompt on the GPU)")
    return fig


PLOTTERS: dict[str, Callable[[dict, Callable], Any]] = {
    "curves": plot_curves, "frontier": plot_frontier, "allocation": plot_allocation, "gain": plot_gain,
    "stability": plot_stability, "cost_breakdown": plot_cost_breakdown}

CAPTIONS = {
    "curves": "Exact accuracy-vs-N curves (expectation over all N-subsets of the recorded samples), one panel per "
              "configuration; bands are bootstrap intervals over prompts. pass@N is an oracle (some sample correct) "
              "and bounds what any selector can reach.",
    "frontier": "Every (configuration, strategy, N) of the task priced per prompt, with the planner's accuracy "
                "estimates; the black staircase is the Pareto frontier. The star is the planner's per-prompt "
                "allocation, the diamond its single (strategy, N) for every prompt; hollow circles are measured "
                "accuracies on the recorded samples.",
    "allocation": "How the plan spends the budget: prompts per planned N, coloured by strategy, and each prompt's "
                  "predicted accuracy at its N.",
    "gain": "Each point is one configuration: the gain it gets from N samples, predicted from one validation pass "
            "by a ridge model trained on the other configurations, against the measured gain.",
    "stability": "How often bootstrap-Lasso keeps each candidate feature; stable features carry the prediction.",
    "cost_breakdown": "Roofline split of one prompt's GPU time. Small models with long generations spend most decode "
                      "time reading the KV cache, not the weights: the Kinetics effect FLOP counts miss.",
}


def _compact_png(data: bytes, colors: int = 96) -> bytes:
    """Palette-quantized PNG (about a third of the size; for figures committed to docs)."""
    from PIL import Image  # a matplotlib dependency

    out = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").quantize(colors=colors, method=Image.Quantize.MEDIANCUT).save(
        out, format="png", optimize=True)
    return out.getvalue()


def _save(fig: Any, path: Path, fmt: str, compact: bool = False) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=100 if fmt == "png" else None, metadata={"Software": "ttsplan"} if fmt == "png"
                else {"Creator": "ttsplan", "Date": None})
    data = _compact_png(buf.getvalue()) if compact and fmt == "png" else buf.getvalue()
    write_atomic(path, data)
    return path


def _subplots(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float], layout: str | None = None,
              **kw: Any) -> tuple[Any, Any]:
    """``plt.subplots`` without pyplot: a bare :class:`matplotlib.figure.Figure` (no GUI, no global
    state; saving uses the Agg canvas)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout=layout)
    return fig, fig.subplots(nrows, ncols, **kw)


def make_figure(name: str, data: dict) -> Any:
    """The matplotlib Figure of one figure's data (e.g. ``report["figures"]["curves"]``); in a notebook
    the last expression of a cell displays it."""
    import matplotlib

    if name not in PLOTTERS:
        raise TtsplanError(f"figure must be one of {', '.join(FIGURES)}, got {name!r}.")
    with matplotlib.rc_context(STYLE):
        return PLOTTERS[name](data, _subplots)


def render_figure(name: str, data: dict, out_dir: str | Path, formats: Sequence[str] = ("png", "svg"),
                  compact: bool = False) -> list[Path]:
    """Draw one figure from its data and write ``<out_dir>/<name>.<fmt>`` for each format (atomically);
    ``compact``: palette-quantized PNG (smaller, for committed docs)."""
    import matplotlib

    with matplotlib.rc_context(STYLE):
        fig = PLOTTERS[name](data, _subplots)
        return [_save(fig, Path(out_dir) / f"{name}.{fmt}", fmt, compact) for fmt in formats]


def _index_html(report: dict, formats: Sequence[str]) -> str:
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>ttsplan report</title>",
             ("<style>body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;"
              "color:#222}img{max-width:100%;border:1px solid #ddd}figure{margin:2em 0}"
              "figcaption{color:#444;margin-top:.4em}code{background:#f4f4f4;padding:0 .2em}</style></head><body>"),
             "<h1>ttsplan report</h1>"]
    src = ", ".join(report.get("sources") or []) or "(in-memory table)"
    parts.append(f"<p>Data: <code>{html.escape(src)}</code> — {len(report.get('configs', []))} configurations."
                 + (f" Priced for <b>{html.escape(str(report['model']))}</b> on <b>{html.escape(str(report['gpu']))}"
                    "</b>." if report.get("model") else "")
                 + (f" Plan: budget {html.escape(report['plan']['budget'])}, recommended configuration "
                    f"<code>{html.escape(report['plan']['recommended_config'])}</code>." if report.get("plan") else "")
                 + " The numbers behind every figure are in <a href='figures.json'>figures.json</a>.</p>")
    for name in FIGURES:
        if name in report["figures"]:
            d = report["figures"][name]
            links = " ".join(f"<a href='{name}.{f}'>{f.upper()}</a>" for f in formats)
            parts.append(f"<figure id='{name}'><h2>{html.escape(d.get('title', name))}</h2>"
                         f"<img src='{name}.png' alt='{html.escape(d.get('title', name))}'>"
                         f"<figcaption>{html.escape(CAPTIONS[name])} {links}"
                         + (f"<br>Same numbers: <code>{html.escape(d['command'])}</code>" if d.get("command") else "")
                         + "</figcaption></figure>")
        elif name in report["skipped"]:
            parts.append(f"<h2>{name}</h2><p><i>Not drawn: {html.escape(report['skipped'][name])}</i></p>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def render_report(report: dict, out_dir: str | Path, formats: Sequence[str] = ("png", "svg"),
                  progress: Progress = _quiet, compact: bool = False) -> list[Path]:
    """Write every figure of ``report`` (from :func:`build_report`), ``figures.json`` and ``index.html``."""
    bad = [f for f in formats if f not in ("png", "svg", "pdf")]
    if bad or "png" not in formats:
        raise TtsplanError(f"formats must include png and be among png, svg, pdf, got {', '.join(formats)}.")
    out_dir = Path(out_dir)
    written: list[Path] = []
    for name in FIGURES:
        if name in report["figures"]:
            progress(f"drawing {name} …")
            written += render_figure(name, report["figures"][name], out_dir, formats, compact)
    for name, d in report["figures"].items():
        d["files"] = [f"{name}.{f}" for f in formats]
    written.append(write_atomic(out_dir / "figures.json", _to_json(report) + "\n"))
    written.append(write_atomic(out_dir / "index.html", _index_html(report, formats)))
    return written


__all__ = ["FIGURES", "allocation_data", "build_report", "cost_breakdown_data", "curves_data", "default_gain_n",
           "default_gain_target", "frontier_data", "gain_data", "make_figure", "render_figure", "render_report"]
