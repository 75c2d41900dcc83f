"""Calibration of the success model's curves onto the exact curves of the labeled samples: per
configuration and metric, the offset (exact empirical mean − model mean) on the grid
(:func:`calibration_offsets`), applied to the strategies' cached (mean, lower, upper) (:func:`fill_calibrated`).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl
from ttsplan.features.estimators import prompt_curves
from ttsplan.features.schema import has_values
from ttsplan.planner.strategies import posterior_bounds, posterior_expected


def calibration_offsets(table: pl.DataFrame, post: Any, metrics: Sequence[str], grid: Sequence[int],
                        skip: int = 0) -> dict[tuple[str, str], np.ndarray]:
    """Per (config, metric): exact empirical mean curve − the model's mean curve, on ``grid``.

    Empirical values are the exact estimators (:func:`ttsplan.features.estimators.prompt_curves`) on the labeled
    samples with ``sample_idx >= skip`` (the pilot's samples excluded, so they match how a plan is
    scored); the model's are :func:`ttsplan.planner.strategies.posterior_expected` for the same prompts. Beyond
    the largest N the data supports, the offset at that N is carried forward. N = 1 of ``pass`` is the
    greedy calibration.
    """
    t = table.filter(pl.col("correct").is_not_null() & (pl.col("sample_idx") >= skip))
    t = t.with_columns(pl.col("sample_idx") - skip)
    grid = [int(g) for g in grid]
    out: dict[tuple[str, str], np.ndarray] = {}
    keys = post.keys
    kmax = max(1, int(t.group_by(["config", "prompt_id"]).len()["len"].max() or 1))
    all_ks = [g for g in grid if g <= kmax] or [grid[0]]
    model_all = {m: posterior_expected(post, m, all_ks) for m in metrics}
    for cfg in sorted(keys["config"].unique().to_list()):
        sub = t.filter(pl.col("config") == cfg)
        if sub.height == 0:
            continue
        sizes = sub.group_by("prompt_id").len()["len"]
        kmin = int(sizes.min())
        rows = np.flatnonzero((keys["config"] == cfg).to_numpy())
        sub = sub.filter(pl.col("sample_idx") < kmin)
        ks = [g for g in grid if g <= kmin]
        if not ks:  # the data has fewer samples per prompt than the smallest N: nothing to calibrate
            continue
        for metric in metrics:
            if metric == "bon" and not has_values(sub, "reward"):
                continue
            emp = prompt_curves(sub, metric, ks).group_by("k").agg(pl.col("value").mean()).sort("k")["value"]
            emp = emp.to_numpy(allow_copy=True).astype(float)
            model = model_all[metric][rows][:, [all_ks.index(k) for k in ks]].mean(axis=0)
            off = np.interp(grid, ks, emp - model)  # constant beyond the last supported N
            out[(cfg, metric)] = off
            if metric == "pass":
                out[(cfg, "pass1")] = np.array([float(emp[0] - model[0])]) if ks[0] == 1 else np.zeros(1)
    return out


def fill_calibrated(memo: dict, post: Any, keys: pl.DataFrame, metrics: Sequence[str], grid: Sequence[int],
                    offsets: dict[tuple[str, str], np.ndarray], notes: list[str]) -> None:
    """Pre-fill the strategies' metric cache with offset-corrected (mean, lower, upper), clipped to [0, 1]."""
    configs = keys["config"].to_numpy()
    for metric, g in [(m, tuple(grid)) for m in metrics] + [("pass", (1,))]:
        mid = posterior_expected(post, metric, list(g))
        lo, hi = posterior_bounds(post, metric, list(g))
        lo, hi = np.minimum(lo, mid), np.maximum(hi, mid)
        for cfg in set(configs.tolist()):
            key = (cfg, "pass1" if g == (1,) and metric == "pass" else metric)
            if key not in offsets:
                continue
            r = configs == cfg
            off = offsets[key][None, :]
            mid[r], lo[r], hi[r] = mid[r] + off, lo[r] + off, hi[r] + off
        memo[(metric, g)] = tuple(np.clip(x, 0.0, 1.0) for x in (mid, lo, hi))
    if offsets:
        worst = max(offsets.items(), key=lambda kv: float(np.abs(kv[1]).max()))
        notes.append(f"calibrated to the exact curves of the labeled samples (largest correction "
                     f"{float(worst[1][np.abs(worst[1]).argmax()]):+.3f} on {worst[0][1]} of {worst[0][0]!r})")


__all__ = ["calibration_offsets", "fill_calibrated"]
