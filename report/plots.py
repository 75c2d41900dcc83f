"""One ``plot_<name>(data, fig_factory)`` per figure of ``ttsplan report``: draws a figure's data (from
:mod:`ttsplan.report.figure_data`) on axes made by ``fig_factory`` (``plt.subplots``-like). matplotlib's
helpers are imported inside the functions that need them."""
from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ttsplan.report.figure_data import BREAKDOWN_PARTS, METRIC_STRATEGY

METRIC_LABELS = {"pass": "pass@N (any correct; oracle coverage)", "maj": "maj@N (majority vote)",
                 "bon": "BoN@N (best of N by reward)"}
METRIC_COLORS = {"pass": "#7f7f7f", "maj": "#1f77b4", "bon": "#d62728"}
STRATEGY_COLORS = {"greedy": "#7f7f7f", "majority": "#1f77b4", "best-of-n": "#d62728",
                   "weighted-majority": "#9467bd", "best-of-majority": "#ff7f0e", "pass@n": "#2ca02c"}


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
    curve = data.get("method") == "curve"
    how = "law chosen without that configuration" if curve else "model trained without that configuration"
    ax.set_xlabel(f"predicted gain, {t}@{n} − pass@1\n(accuracy, {how})")
    ax.set_ylabel(f"actual gain, {t}@{n} − pass@1 (accuracy)")
    ci = data["loco_spearman_ci"]
    conf = round(data["confidence"] * 100)
    ci_txt = f"\n{conf}% CI [{ci[0]:.2f}, {ci[1]:.2f}]" if ci and ci[0] is not None else ""
    bb = data.get("best_baseline")
    bb_txt = (f"\nbest baseline ({bb['name']}): ρ = {bb['loco_spearman']:.3f}"
              if bb and bb.get("loco_spearman") is not None else "")
    ax.text(0.03, 0.97, f"Spearman ρ = {data['loco_spearman']:.3f}{ci_txt}\nMAE = {data['loco_mae']:.3f}{bb_txt}",
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
    if curve:
        laws = ", ".join(f"{k} {v}/{sum(data['curve_law_loco'].values())}"
                         for k, v in data.get("curve_law_loco", {}).items())
        what = (f"predictor: each configuration's own {t}@j curve,\nj ≤ {data['k_features']}, extrapolated to "
                f"{n} (curve law or\nsuccess model, chosen per fold: {laws})")
    else:
        what = "features: " + ", ".join(data["features"])
    side.text(0.0, 1.0, (head if labelled else "") + "\n".join(lines)
              + "\n\n" + what, transform=side.transAxes, va="top", ha="left", fontsize=9.5,
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

    curve = data.get("method") == "curve"
    used = "also a candidate of the curve predictor" if curve else "used by the gain model"
    ax.legend(handles=[Patch(color="#1f77b4", label=used), Patch(color="#aec7e8", label="other candidate")],
              loc="lower right", frameon=False)
    note = "\n(the gain figure's curve predictor is not fitted on these features)" if curve else ""
    ax.set_title(f"{data['title']}\npredicting the gain {data['target']}@{data['n']} − pass@1 over "
                 f"{data['n_configs']} configurations{note}", fontsize=12)
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

__all__ = ["METRIC_COLORS", "METRIC_LABELS", "PLOTTERS", "STRATEGY_COLORS", "plot_allocation", "plot_cost_breakdown",
           "plot_curves", "plot_frontier", "plot_gain", "plot_stability"]
