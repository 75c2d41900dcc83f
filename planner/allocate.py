"""Budgeted allocation of (strategy, N) per prompt, and the baselines it is compared with.

:func:`allocate` solves, for P prompts and an option grid of S strategies × G values of N,

    maximize Σ_p acc[p, s_p, g_p]   subject to   Σ_p cost[p, s_p, g_p] ≤ budget

by Lagrangian relaxation: each prompt takes the option maximizing ``acc − λ·cost``; λ is found by
bisection so that the total meets the budget, then the prompts whose choice changes at the final
bracket are upgraded in a fixed order while the budget allows, so the leftover is less than one
allocation step (one prompt's move to its next option). Everything is numpy over prompts × options
(chunked; for large P a 4,096-prompt subsample brackets λ first and only prompts whose choice differs
inside the bracket are re-evaluated). ``decision`` (e.g. the lower credible bound: the risk-averse
plan) can drive the choice while ``accuracy`` is what is reported.

Baselines: :func:`uniform_baselines` (one N for every prompt, per strategy, the largest that fits),
:func:`config_level` (the best single (strategy, N) for the whole task), :func:`difficulty_bins`
(Snell et al. 2024: prompts binned by predicted difficulty, the best (strategy, N) per bin at the
per-prompt budget).

>>> import numpy as np
>>> acc = np.array([[[0.5, 0.9]], [[0.1, 0.2]]])      # 2 prompts, 1 strategy, N in (1, 2)
>>> cost = np.array([[[1.0, 2.0]], [[1.0, 2.0]]])
>>> r = allocate(acc, cost, budget=3.0)
>>> r.grid_index.tolist(), float(r.total_cost)        # the extra sample goes to the first prompt
([1, 0], 3.0)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ttsplan.features.errors import TtsplanError

_CHUNK_ELEMENTS = 8_000_000
_SUBSAMPLE = 4096
_LAM_MIN, _LAM_MAX = 1e-10, 1e10


@dataclass(frozen=True)
class AllocationResult:
    """Per-prompt choice (``strategy_index``, ``grid_index``) with its accuracy and cost."""

    strategy_index: np.ndarray
    grid_index: np.ndarray
    accuracy: np.ndarray
    decision_value: np.ndarray
    cost: np.ndarray
    total_cost: float
    budget: float
    lam: float

    @property
    def mean_accuracy(self) -> float:
        return float(self.accuracy.mean())


def _prepare(accuracy: np.ndarray, cost: np.ndarray, decision: np.ndarray | None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    acc = np.asarray(accuracy)
    if acc.ndim != 3:
        raise TtsplanError(f"accuracy must be a prompts × strategies × grid array, got shape {acc.shape}.")
    if acc.shape[0] == 0:
        raise TtsplanError("accuracy must cover at least one prompt, got none. Check that the data has prompts.")
    dec = acc if decision is None else np.asarray(decision)
    if dec.shape != acc.shape:
        raise TtsplanError(f"decision must have the shape of accuracy {acc.shape}, got {dec.shape}.")
    c = np.broadcast_to(np.asarray(cost), acc.shape)
    scale = float(np.nanmax(np.asarray(cost)))
    if not np.isfinite(scale) or scale <= 0:
        raise TtsplanError(f"costs must be finite and > 0, got a maximum of {scale}.")
    return acc, dec, c, scale


def _rows_eval(dec: np.ndarray, c: np.ndarray, scale: float, lam: float, rows: slice | np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """Flat option index and its cost for ``rows`` at multiplier ``lam`` (cost normalized by ``scale``)."""
    m = dec.shape[1] * dec.shape[2]
    if isinstance(rows, slice):
        rng = range(*rows.indices(dec.shape[0]))
        starts = list(range(rng.start, rng.stop, max(1, _CHUNK_ELEMENTS // m)))
        pieces = [slice(s, min(s + max(1, _CHUNK_ELEMENTS // m), rng.stop)) for s in starts]
    else:
        step = max(1, _CHUNK_ELEMENTS // m)
        pieces = [rows[i:i + step] for i in range(0, len(rows), step)]
    idx_out, cost_out = [], []
    lam_n = lam / scale
    for piece in pieces:
        d = np.asarray(dec[piece]).reshape(-1, m)
        cc = np.asarray(c[piece]).reshape(-1, m)
        obj = cc * np.asarray(lam_n, dtype=cc.dtype)
        np.subtract(d, obj, out=obj)
        np.nan_to_num(obj, copy=False, nan=-np.inf)
        j = obj.argmax(axis=1)
        idx_out.append(j)
        cost_out.append(np.take_along_axis(cc, j[:, None], axis=1)[:, 0].astype(float))
    if not idx_out:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    return np.concatenate(idx_out), np.concatenate(cost_out)


def min_cost_total(cost: np.ndarray, accuracy: np.ndarray) -> float:
    """Cost of the cheapest plan: every prompt on its cheapest available option (chunked)."""
    acc = np.asarray(accuracy)
    c = np.broadcast_to(np.asarray(cost), acc.shape)
    m = int(np.prod(acc.shape[1:]))
    step = max(1, _CHUNK_ELEMENTS // max(m, 1))
    total = 0.0
    for i in range(0, acc.shape[0], step):
        cc = np.asarray(c[i:i + step], dtype=float).reshape(-1, m)
        cc = np.where(np.isnan(acc[i:i + step].reshape(-1, m)), np.inf, cc)
        total += float(cc.min(axis=1).sum())
    return total


def _bisect(dec: np.ndarray, c: np.ndarray, scale: float, rows: np.ndarray | slice, budget: float,
            lo: float, hi: float, widen: float = 30.0) -> tuple[float, float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Bracket and bisect λ for ``rows`` so that cost(λ_hi) ≤ budget < cost(λ_lo) (or λ_lo = λ_min fits).

    Only prompts whose choice differs between the bracket ends are re-evaluated.
    """
    idx_lo, cost_lo = _rows_eval(dec, c, scale, lo, rows)
    while lo > _LAM_MIN and cost_lo.sum() <= budget:  # widen downwards
        lo = max(lo / widen, _LAM_MIN)
        idx_lo, cost_lo = _rows_eval(dec, c, scale, lo, rows)
    if cost_lo.sum() <= budget:
        return lo, lo, idx_lo, cost_lo, idx_lo, cost_lo
    idx_hi, cost_hi = _rows_eval(dec, c, scale, hi, rows)
    while cost_hi.sum() > budget and hi < _LAM_MAX:  # widen upwards
        lo, idx_lo, cost_lo = hi, idx_hi, cost_hi
        hi = min(hi * widen, _LAM_MAX)
        idx_hi, cost_hi = _rows_eval(dec, c, scale, hi, rows)
    if cost_hi.sum() > budget:  # even λ_max overspends: the cheapest options (exists: checked by caller)
        sub = np.arange(dec.shape[0])[rows]
        flat_c = np.where(np.isnan(dec[sub]), np.inf, c[sub]).reshape(len(sub), -1)
        idx_hi = flat_c.argmin(axis=1)
        cost_hi = flat_c[np.arange(len(sub)), idx_hi].astype(float)
        return lo, hi, idx_lo, cost_lo, idx_hi, cost_hi
    base = np.arange(dec.shape[0])[rows] if isinstance(rows, slice) else np.asarray(rows)
    for _ in range(200):
        marg = np.flatnonzero(idx_lo != idx_hi)
        if marg.size == 0 or hi / lo - 1 < 1e-13:
            break
        mid = float(np.sqrt(lo * hi))
        j, cj = _rows_eval(dec, c, scale, mid, base[marg])
        trial = cost_hi.copy()
        trial[marg] = cj
        if trial.sum() > budget:
            lo = mid
            idx_lo, cost_lo = idx_lo.copy(), cost_lo.copy()
            idx_lo[marg], cost_lo[marg] = j, cj
        else:
            hi = mid
            idx_hi = idx_hi.copy()
            idx_hi[marg] = j
            cost_hi = trial
    return lo, hi, idx_lo, cost_lo, idx_hi, cost_hi


def allocate(accuracy: np.ndarray, cost: np.ndarray, budget: float, decision: np.ndarray | None = None,
             seed: int = 0) -> AllocationResult:
    """Choose one (strategy, N) per prompt maximizing total ``decision`` (default ``accuracy``) within ``budget``.

    ``accuracy``/``decision``: prompts × strategies × grid (NaN = option not available);
    ``cost``: broadcastable to that shape, > 0. Raises :class:`TtsplanError` when the budget is below
    the cheapest plan (the message gives that minimum).
    """
    acc, dec, c, scale = _prepare(accuracy, cost, decision)
    P, S, G = acc.shape
    budget = float(budget)
    if not np.isfinite(budget) or budget <= 0:
        raise TtsplanError(f"budget must be a finite number > 0, got {budget}.")
    def too_small() -> TtsplanError:
        cheapest = min_cost_total(c, dec)
        if not np.isfinite(cheapest):
            return TtsplanError("every prompt must have at least one available option, got prompts with none. "
                                "Check the strategies and the grid.")
        return TtsplanError(f"budget must cover the cheapest plan ({cheapest:.6g}), got {budget:.6g}. "
                            f"Raise --budget to at least {cheapest:.6g} in total ({cheapest / P:.6g}/prompt).")

    if P * S * G <= 20_000_000 and min_cost_total(c, dec) > budget * (1 + 1e-12):
        raise too_small()
    lo, hi = _LAM_MIN, _LAM_MAX
    if P > 4 * _SUBSAMPLE:  # bracket λ on a subsample, then confirm on everything
        rows = np.sort(np.random.default_rng(seed).choice(P, _SUBSAMPLE, replace=False))
        slo, shi = _bisect(dec, c, scale, rows, budget * _SUBSAMPLE / P, lo, hi)[:2]
        guess = float(np.sqrt(slo * shi))
        lo, hi = max(guess / 1.04, _LAM_MIN), min(guess * 1.04, _LAM_MAX)
        widen = 1.25
    else:
        widen = 30.0
    lo, hi, idx_lo, cost_lo, idx_hi, cost_hi = _bisect(dec, c, scale, slice(0, P), budget, lo, hi, widen)
    if cost_hi.sum() > budget * (1 + 1e-12) or not np.isfinite(cost_hi.sum()):
        raise too_small()
    # fill: upgrade the prompts that move inside the final bracket, in prompt order, while they fit
    idx, cst = idx_hi.copy(), cost_hi.copy()
    if cost_lo.sum() > budget:
        left = budget - float(cst.sum())
        for r in np.flatnonzero(idx_lo != idx_hi):
            step = cost_lo[r] - cst[r]
            if step > left:
                break
            idx[r], cst[r] = idx_lo[r], cost_lo[r]
            left -= step
    s_idx, g_idx = np.divmod(idx, G)
    r_ = np.arange(P)
    chosen_acc = np.asarray(acc[r_, s_idx, g_idx], dtype=float)
    chosen_dec = np.asarray(dec[r_, s_idx, g_idx], dtype=float)
    chosen_cost = np.asarray(c[r_, s_idx, g_idx], dtype=float)
    return AllocationResult(s_idx.astype(np.int64), g_idx.astype(np.int64), chosen_acc, chosen_dec, chosen_cost,
                            float(chosen_cost.sum()), budget, float(hi))


# ------------------------------------------------------------------------------------------ baselines
def uniform_baselines(accuracy: np.ndarray, cost: np.ndarray, budget: float) -> list[dict]:
    """Per strategy index: the largest grid index whose uniform total cost fits (None when nothing fits).

    Returns ``[{"strategy_index", "grid_index", "accuracy", "cost"}]`` (mean accuracy, total cost).
    """
    acc = np.asarray(accuracy, dtype=float)
    c = np.broadcast_to(np.asarray(cost, dtype=float), acc.shape)
    mean_acc = acc.mean(axis=0)
    tot = c.sum(axis=0)
    out = []
    for s in range(acc.shape[1]):
        ok = np.flatnonzero(~np.isnan(acc[:, s, :]).any(axis=0) & (tot[s] <= budget * (1 + 1e-12)))
        if ok.size == 0:
            out.append({"strategy_index": s, "grid_index": None, "accuracy": None, "cost": None})
            continue
        g = int(ok[np.argmax(tot[s, ok])])
        out.append({"strategy_index": s, "grid_index": g, "accuracy": float(mean_acc[s, g]), "cost": float(tot[s, g])})
    return out


def config_level(accuracy: np.ndarray, cost: np.ndarray, budget: float) -> dict | None:
    """The best single (strategy, N) for every prompt of a task within ``budget`` (None if none fits)."""
    acc = np.asarray(accuracy, dtype=float)
    c = np.broadcast_to(np.asarray(cost, dtype=float), acc.shape)
    valid = ~np.isnan(acc).any(axis=0)
    mean_acc = np.where(valid, np.nan_to_num(acc).mean(axis=0), -np.inf)
    tot = c.sum(axis=0)
    ok = valid & (tot <= budget * (1 + 1e-12))
    if not ok.any():
        return None
    score = np.where(ok, mean_acc, -np.inf)
    best = score.max()
    cand = np.flatnonzero((score >= best - 1e-12).ravel())
    j = int(cand[np.argmin(tot.ravel()[cand])])
    s, g = divmod(j, acc.shape[2])
    return {"strategy_index": s, "grid_index": g, "accuracy": float(mean_acc[s, g]), "cost": float(tot[s, g])}


def difficulty_bins(accuracy: np.ndarray, cost: np.ndarray, budget: float, difficulty: np.ndarray,
                    bins: int = 5) -> dict:
    """Snell-style baseline: quantile bins of ``difficulty``; per bin the best (strategy, N) at the
    per-prompt budget. Returns ``strategy_index``, ``grid_index`` (per prompt), ``accuracy`` (mean),
    ``cost`` (total) and ``bin`` (per prompt)."""
    acc = np.asarray(accuracy, dtype=float)
    c = np.broadcast_to(np.asarray(cost, dtype=float), acc.shape)
    P = acc.shape[0]
    d = np.asarray(difficulty, dtype=float)
    order = np.argsort(d, kind="stable")
    b = np.empty(P, dtype=np.int64)
    b[order] = np.minimum(np.arange(P) * bins // max(P, 1), bins - 1)
    per_prompt = budget / P
    s_idx = np.zeros(P, dtype=np.int64)
    g_idx = np.zeros(P, dtype=np.int64)
    for k in range(bins):
        rows = np.flatnonzero(b == k)
        if rows.size == 0:
            continue
        best = config_level(acc[rows], c[rows], per_prompt * rows.size)
        if best is None:  # nothing fits this bin's share: cheapest option
            flat = np.where(np.isnan(acc[rows]), np.inf, c[rows]).mean(axis=0)
            s, g = divmod(int(np.argmin(flat)), acc.shape[2])
        else:
            s, g = best["strategy_index"], best["grid_index"]
        s_idx[rows], g_idx[rows] = s, g
    r = np.arange(P)
    return {"strategy_index": s_idx, "grid_index": g_idx, "bin": b,
            "accuracy": float(np.nan_to_num(acc[r, s_idx, g_idx]).mean()), "cost": float(c[r, s_idx, g_idx].sum())}


__all__ = ["AllocationResult", "allocate", "config_level", "difficulty_bins", "min_cost_total", "uniform_baselines"]
