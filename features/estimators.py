"""Exact, unbiased estimators of repeated-sampling accuracy (DESIGN §4), vectorized over prompts.

For a prompt with n recorded samples, the value at k is the expectation over all k-subsets drawn
without replacement — the same number brute-force enumeration of the C(n, k) subsets gives.

- :func:`pass_at_k` — 1 − C(n−c, k)/C(n, k), in log space (stable for n = 10,000 and k up to n).
- :func:`bon_at_k` — the correctness of the highest-reward sample among k; ties averaged.
- :func:`maj_at_k` — plurality vote among k (uniform tie-breaking, null answers never win), exact by
  a generating-polynomial dynamic programme over answer clusters: one pass over the winner's vote count
  serves every k, prompts with the same cluster sizes share it, and processes share the prompts.
- :func:`weighted_maj_at_k` — reward-weighted vote, Monte Carlo with its standard error.
- :func:`prompt_curves` / :func:`curves` — per-prompt values and per-config curves with
  bootstrap-over-prompts confidence intervals.

>>> round(float(pass_at_k(10, 3, 2)), 12)  # 1 - C(7,2)/C(10,2) = 1 - 21/45
0.533333333333
>>> float(maj_at_k_prompt(["a", "a", "b"], [True, True, False], [1, 3])[1])
1.0
"""
from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import lru_cache
from typing import Any

import numpy as np
import polars as pl
from scipy.special import gammaln

from ttsplan.features.defaults import DEFAULT_CI_CONFIDENCE
from ttsplan.features.errors import TtsplanError, did_you_mean
from ttsplan.features.schema import has_values, table_kind

METRICS = ("pass", "maj", "bon")
DEFAULT_KS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
_SHORT_PRODUCT = 64


# --------------------------------------------------------------------------------------------- pass@k
def log_comb(n: np.ndarray | float, k: np.ndarray | float) -> np.ndarray:
    """log C(n, k) for real arrays (−inf where k < 0 or k > n)."""
    n, k = np.asarray(n, dtype=float), np.asarray(k, dtype=float)
    with np.errstate(invalid="ignore"):
        out = gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)
    return np.where((k < 0) | (k > n), -np.inf, out)


def pass_at_k(n: np.ndarray | int, c: np.ndarray | int, k: np.ndarray | int) -> np.ndarray:
    """Unbiased pass@k = 1 − C(n−c, k)/C(n, k); NaN where k > n. Broadcasts its arguments.

    >>> pass_at_k([5, 5], [0, 5], 2).tolist()
    [0.0, 1.0]
    """
    n, c, k = np.broadcast_arrays(np.asarray(n, dtype=float), np.asarray(c, dtype=float),
                                  np.asarray(k, dtype=float))
    out = np.full(n.shape, np.nan)
    valid = k <= n
    fail = n - c
    certain = valid & (fail < k)
    out[certain] = 1.0
    rest = valid & ~certain
    f, nn, kk, cc = fail[rest], n[rest], k[rest], c[rest]
    # log C(n-c, k) - log C(n, k) = [lgΓ(f+1) − lgΓ(n+1)] − [lgΓ(f−k+1) − lgΓ(n−k+1)]
    log_ratio = (gammaln(f + 1) - gammaln(nn + 1)) - (gammaln(f - kk + 1) - gammaln(nn - kk + 1))
    # where min(k, c) is small the ratio is a short product: Σ_{j<m} log1p(−x/(n−j)), m = min(k, c),
    # x = the other one; this keeps full relative precision when pass@k is tiny (e.g. n = 10,000, k = 1)
    m = np.minimum(kk, cc)
    short = m <= _SHORT_PRODUCT
    if short.any():
        x, ns, ms = np.maximum(kk, cc)[short], nn[short], m[short]
        acc = np.zeros(x.shape)
        for j in range(int(ms.max())):
            live = j < ms
            acc[live] += np.log1p(-x[live] / (ns[live] - j))
        log_ratio[short] = acc
    out[rest] = 0.0 - np.expm1(log_ratio)
    out[rest & (c == 0)] = 0.0
    return out


# --------------------------------------------------------------------------------------------- BoN@k
def _average_ties(sorted_rewards: np.ndarray, sorted_correct: np.ndarray) -> np.ndarray:
    """Replace, in place, each correctness value by the mean over its run of tied rewards (rows sorted).
    Only the tied positions are touched."""
    row, col = np.nonzero(sorted_rewards[:, 1:] == sorted_rewards[:, :-1])  # col + 1 ties with col
    if row.size:
        new = np.ones(row.size, dtype=bool)  # first pair of a run of ties
        new[1:] = (row[1:] != row[:-1]) | (col[1:] != col[:-1] + 1)
        end = np.append(new[1:], True)  # last pair of a run
        run = np.cumsum(new) - 1
        row, col, run = np.append(row, row[end]), np.append(col, col[end] + 1), np.append(run, run[end])
        sorted_correct[row, col] = (np.bincount(run, weights=sorted_correct[row, col]) / np.bincount(run))[run]
    return sorted_correct


def bon_weights(n: int, ks: Sequence[int]) -> np.ndarray:
    """W[i, j] = P(the max of a k_j-subset sits at ascending rank i+1) = C(i, k−1)/C(n, k)."""
    i = np.arange(n, dtype=float)[:, None]
    k = np.asarray(ks, dtype=float)[None, :]
    w = np.exp(log_comb(i, k - 1) - log_comb(float(n), k))
    w[:, (k > n).ravel()] = np.nan
    return w


def bon_at_k(rewards: np.ndarray, correct: np.ndarray, ks: Sequence[int]) -> np.ndarray:
    """Best-of-k for a (prompts × n) block: expected correctness of the top-reward sample among k.

    Rewards may contain NaN (missing): those samples rank below every scored one (ties among them).
    Returns (prompts × len(ks)); NaN where k > n.

    >>> bon_at_k(np.array([[0.1, 0.9, 0.5]]), np.array([[1, 0, 1]]), [1, 3]).round(4).tolist()
    [[0.6667, 0.0]]
    """
    rewards = np.asarray(rewards, dtype=float)
    correct = np.asarray(correct)
    if rewards.ndim == 1:
        rewards, correct = rewards[None, :], correct[None, :]
    missing = np.isnan(rewards)
    if missing.any():
        rewards = np.where(missing, -np.inf, rewards)
    order = np.argsort(rewards, axis=1)  # order within ties is irrelevant: ties are averaged
    r_sorted = np.take_along_axis(rewards, order, axis=1)
    c_sorted = np.take_along_axis(correct, order, axis=1).astype(float, copy=False)  # a new array
    return _average_ties(r_sorted, c_sorted) @ bon_weights(rewards.shape[1], ks)


# --------------------------------------------------------------------------------------------- maj@k
@lru_cache(maxsize=8)
def _comb_table(n: int) -> np.ndarray:
    """Pascal's triangle C[a, b] for 0 <= a, b <= n as exact-valued floats (n <= 1020), 0 above."""
    table = np.zeros((n + 1, n + 1))
    table[:, 0] = 1.0
    for a in range(1, n + 1):
        table[a, 1:a + 1] = table[a - 1, 1:a + 1] + table[a - 1, 0:a]
    return table


_EXACT_MAX_N = 1020  # C(1020, 510) < 1.8e308: plain float counts are exact to rounding up to here
_TRACKED_MIN, _TRACKED_MAX = 4, 6  # other clusters followed by the incremental DP (2**tracked products per row)
_SCRATCH_T = 6  # clusters of up to this size may be left to the from-scratch count
_LEVEL_BYTES = 8 << 20  # subset-product memory per chunk of rows (cache-sized)


def _scratch_counts(t: int, kp: np.ndarray, m_null: np.ndarray, others: np.ndarray, comb: np.ndarray,
                    kmax: int) -> np.ndarray:
    """Winning-subset counts given x_target = t, built from scratch (rows with more clusters able to reach
    t than the incremental DP tracks; cheap because that only happens while t is small):
    Σ_s [z^s y^{k−t}] Π_i (Σ_{x<t} C(m_i,x) y^x + z·C(m_i,t)·y^t) · (1+y)^{free} / (s+1).
    Returns (len(kp), rows)."""
    rows = others.shape[0]
    active = others >= t
    n_active = int(active.sum(axis=1).max())
    s_cap = min(kmax // t - 1, n_active)  # s clusters tied with the target at t need (s+1)·t <= k votes
    depth = kmax - t + 1
    free = m_null + np.where(active, 0, others).sum(axis=1)
    poly = np.zeros((s_cap + 1, depth, rows))  # (ties s, degree, row)
    poly[0] = comb[free[None, :], np.arange(depth)[:, None]]
    for i in range(n_active):
        m_i = np.where(active[:, i], others[:, i], 0)  # clusters are sorted: the active ones come first
        s_hi = min(i, s_cap) + 1  # ties so far
        new = poly[:s_hi + 1].copy() if s_hi <= s_cap else poly.copy()
        for x in range(1, min(t, depth)):
            new[:s_hi, x:] += comb[m_i, x] * poly[:s_hi, :depth - x]
        if s_cap >= 1 and t < depth:
            top_s = min(s_hi, s_cap)
            new[1:top_s + 1, t:] += comb[m_i, t] * poly[:top_s, :depth - t]
        poly[:new.shape[0]] = new
    out = np.zeros((len(kp), rows))
    weights = 1.0 / np.arange(1, s_cap + 2)
    for ki, k in enumerate(kp):
        if k >= t:
            out[ki] = weights @ poly[:, k - t]
    return out


class _Level:
    """The rows for which exactly ``level`` of their tracked clusters can still reach t, packed in slots
    0..live−1: ``x[S]`` (S ⊆ those clusters, as a bit mask) = Π_{i∈S} Σ_{x<t} C(m_i,x) y^x ·
    (1+y)^{m_null + completed clusters}, laid out (slot, subset, degree). ``exit`` is the last t a row
    belongs here; rows leave in batches, once a quarter of them are due (``due``)."""

    def __init__(self, level: int, capacity: int, depth: int) -> None:
        self.x = np.zeros((capacity, 1 << level, depth + 1))  # degree ``depth`` stays 0: read for k < t·(…)
        self.cube = self.x.reshape((capacity,) + (2,) * level + (depth + 1,))  # an axis per cluster
        self.buffer = np.empty((capacity,) + (2,) * (level - 1) + (depth + 1,))
        self.rows = np.empty(capacity, dtype=np.int64)
        self.exit = np.empty(capacity, dtype=np.int64)
        self.live = 0
        self.due = 0

    def _schedule(self) -> None:
        quarter = (self.live + 3) // 4
        self.due = int(np.partition(self.exit[:self.live], quarter - 1)[quarter - 1]) + 1 if self.live else 1 << 62

    def add(self, rows: np.ndarray, exit_t: np.ndarray, state: np.ndarray) -> None:
        lo, hi = self.live, self.live + rows.size
        self.x[lo:hi, :, :state.shape[2]] = state
        self.rows[lo:hi] = rows
        self.exit[lo:hi] = exit_t
        self.live = hi
        self._schedule()

    def drop(self, leaving: np.ndarray, depth: int) -> None:
        """Remove the live slots flagged in ``leaving``, moving the last live rows into their places."""
        stay = self.live - int(leaving.sum())
        holes = np.flatnonzero(leaving[:stay])
        movers = stay + np.flatnonzero(~leaving[stay:])
        self.x[holes, :, :depth] = self.x[movers, :, :depth]
        self.rows[holes] = self.rows[movers]
        self.exit[holes] = self.exit[movers]
        self.live = stay
        self._schedule()


def _maj_rows(n: np.ndarray, m_null: np.ndarray, m_target: np.ndarray, others: np.ndarray,
              ks: Sequence[int], tracked: int = _TRACKED_MIN) -> np.ndarray:
    """P(a target cluster wins the plurality vote of a uniform k-subset of n samples), exactly, per row.

    Row r: ``n[r]`` samples, a target cluster of ``m_target[r]``, the other clusters ``others[r]`` (sorted
    descending, zero-padded) and ``m_null[r]`` null answers; ties among s+1 leaders count 1/(s+1).
    With x_target = t, the winning subsets are counted by
    C(m_target, t) · [y^{k−t}] ∫₀¹ Π_i (Σ_{x<t} C(m_i,x) y^x + z·C(m_i,t) y^t) dz · (1+y)^{m_null}, i.e.
    Σ_U Π_{i∈U} C(m_i,t) · y^{t|U|} · Π_{i∉U} Σ_{x<t} C(m_i,x) y^x / (|U|+1) over the sets U of tied clusters.
    One pass over t = 1, 2, … serves every k: the subset products Π_{i∈S} Σ_{x<t} C(m_i,x) y^x are updated
    in place from t to t+1 (each cluster adds one term), truncated at the largest requested k < n; a cluster
    smaller than t is complete and folds into the free binomial, which halves the subsets to follow
    (rows move down a :class:`_Level`). With all others below t the count is hypergeometric; k = n is the
    plain vote; while more than the ``tracked`` largest other clusters reach t, it is counted from scratch.
    Returns (rows × len(ks)); NaN where k > n.
    """
    rows, width = others.shape
    n = np.broadcast_to(np.asarray(n, dtype=np.int64), (rows,))
    ks_arr = np.asarray(ks, dtype=np.int64)
    out = np.zeros((rows, len(ks_arr)))
    if rows == 0:
        return out
    top = others[:, 0] if width else np.zeros(rows, dtype=np.int64)
    live = np.flatnonzero((ks_arr >= 1) & (ks_arr < n.max()))
    if live.size:
        out[:, live] = _maj_counts(n, m_null, m_target, others, ks_arr[live], tracked, top)
    whole = ks_arr[None, :] == n[:, None]  # every sample drawn: the plurality cluster(s) win outright
    vote = np.where(m_target >= top, 1.0 / (1 + (others == m_target[:, None]).sum(axis=1)), 0.0)
    out = np.where(whole, vote[:, None], out)
    out[ks_arr[None, :] > n[:, None]] = np.nan
    return out


def _maj_counts(n: np.ndarray, m_null: np.ndarray, m_target: np.ndarray, others: np.ndarray, kp: np.ndarray,
                tracked: int, top: np.ndarray) -> np.ndarray:
    """The dynamic programme of :func:`_maj_rows` for 1 <= k < max(n): (rows × len(kp)) probabilities."""
    rows, width = others.shape
    comb = _comb_table(int(n.max()))
    nk, kmax = len(kp), int(kp.max())
    counts = np.zeros((nk, rows))
    tracked = min(width, tracked)
    padded = np.concatenate([others[:, :tracked], np.zeros((rows, 1), dtype=others.dtype)], axis=1)
    t0 = others[:, tracked] + 1 if width > tracked else np.ones(rows, dtype=np.int64)  # first t read incrementally
    free = m_null + others[:, tracked:].sum(axis=1)
    last = np.minimum(np.minimum(m_target, top), kmax)  # last t with some other cluster able to reach t
    exit_t = np.where((last >= t0)[:, None], np.minimum(last[:, None], padded[:, :tracked]), 0)  # last t per level
    start = (padded[:, :tracked] >= 1).sum(axis=1)  # level at t = 1
    visits = exit_t >= padded[:, 1:] + 1  # the row spends some t at level a (a column per level)
    levels = {a: _Level(a, int(visits[:, a - 1].sum()), kmax) for a in range(tracked, 0, -1)}
    for a, lv in levels.items():
        first = np.flatnonzero((start == a) & (exit_t[:, a - 1] >= 1))
        lv.add(first, exit_t[first, a - 1], comb[free[first], None, :kmax])
    sel = np.flatnonzero(top < np.minimum(m_target, kmax))  # t above every other cluster: hypergeometric
    if sel.size:
        m, outside, floor = m_target[sel], (n - m_target)[sel], top[sel]
        for ki, k in enumerate(kp):
            t = np.arange(int(floor.min()) + 1, min(int(k), int(m.max())) + 1)
            if t.size:
                terms = comb[m[:, None], t] * comb[outside[:, None], k - t]
                terms[t[None, :] <= floor[:, None]] = 0.0
                counts[ki, sel] += terms.sum(axis=1)
    popcounts = [np.array([u.bit_count() for u in range(1 << a)]) for a in range(tracked + 1)]
    rest = [((1 << a) - 1) ^ np.arange(1 << a) for a in range(tracked + 1)]  # the complement of U
    for t in range(1, min(kmax, int(m_target.max())) + 1):
        c_target = comb[m_target, t]
        sel = np.flatnonzero((t0 > t) & (m_target >= t))  # untracked clusters still reach t
        if sel.size:
            counts[:, sel] += c_target[sel] * _scratch_counts(t, kp, m_null[sel], others[sel], comb, kmax)
        depth = kmax - t + 1
        for a, lv in levels.items():  # rows whose smallest tracked clusters are complete move down, in
            # batches: a row kept too long only costs time (C(m_i, t) = 0 for its completed clusters)
            if t >= lv.due:
                leaving = lv.exit[:lv.live] < t
                slots = np.flatnonzero(leaving)
                moved = lv.rows[slots]
                down = (padded[moved, :a] >= t).sum(axis=1)
                for b in np.unique(down[(down > 0) & (last[moved] >= t)]):
                    go = (down == b) & (last[moved] >= t)  # keep the subsets holding the completed ones
                    subsets = np.arange(1 << b) | (((1 << a) - 1) ^ ((1 << b) - 1))
                    levels[b].add(moved[go], exit_t[moved[go], b - 1], lv.x[slots[go]][:, subsets, :depth])
                lv.drop(leaving, depth)
        for a, lv in levels.items():
            size = lv.live
            if not size:
                continue
            idx = lv.rows[:size]
            x = lv.x[:size]
            c = comb[others[idx, :a].T, t]  # (a, rows): 0 where the cluster is below t
            nsub = 1 << a
            coefs = np.empty((nsub, size))  # C(m_target, t) · Π_{i∈U} C(m_i, t)
            coefs[0] = np.where((t0[idx] <= t) & (top[idx] >= t), c_target[idx], 0.0)
            for u in range(1, nsub):
                low = (u & -u).bit_length() - 1
                np.multiply(coefs[u ^ (1 << low)], c[low], out=coefs[u])
            coefs /= (1 + popcounts[a])[:, None]  # ties among |U|+1 leaders
            k0 = int(np.searchsorted(kp, t))
            deg = kp[None, k0:] - t * (1 + popcounts[a][:, None])  # read y^{k − t − t|U|} of Π over the rest
            deg[deg < 0] = kmax  # the zero row
            counts[k0:, idx] += np.einsum("ruk,ur->kr", x[:, rest[a][:, None], deg], coefs)
            hi = kmax - t  # later steps read degrees below kmax − t only
            if hi > t:
                for i in range(a):  # Σ_{x<t} → Σ_{x<=t}: add C(m_i, t)·y^t times the product without i
                    axis = (slice(None, size),) + (slice(None),) * (a - 1 - i)
                    term = np.multiply(lv.cube[axis + (0,)][..., :hi - t], c[i].reshape((size,) + (1,) * a),
                                       out=lv.buffer[:size][..., :hi - t])
                    target = lv.cube[axis + (1,)][..., t:hi]
                    np.add(target, term, out=target)
    with np.errstate(invalid="ignore", divide="ignore"):  # k > n: 0/0, replaced by the caller
        return (counts / comb[n[None, :], kp[:, None]]).T


def _maj_job(args: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[int, ...], int]) -> np.ndarray:
    return _maj_rows(*args)


def _default_workers() -> int:
    """The CPU cores this process may use (1 when unknown)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _run_jobs(func: Callable[[Any], np.ndarray], jobs: list, workers: int) -> list[np.ndarray]:
    """``[func(j) for j in jobs]``, over a process pool when ``workers`` > 1 (in this process if none starts).

    Workers are forked where the platform can (no re-import; they run numpy code only).
    """
    workers = min(workers, len(jobs))
    if workers > 1:
        try:
            context = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
            with ProcessPoolExecutor(workers, mp_context=context) as pool:
                return list(pool.map(func, jobs))
        except (OSError, NotImplementedError, BrokenProcessPool):
            pass
    return [func(job) for job in jobs]


_PARALLEL_MIN_WORK = 500_000  # rows × k-range below which a process pool costs more than it saves


def _maj_arrays(sizes: np.ndarray, quality: np.ndarray, n_null: np.ndarray, ks: Sequence[int],
                workers: int | None = None) -> np.ndarray:
    """maj@k for prompts given as arrays: cluster sizes (prompts × clusters, descending, 0-padded), their
    correctness, null counts. Returns (prompts × len(ks)).

    Each cluster with some correctness is one row of :func:`_maj_rows`; rows are identified by
    (n, nulls, own size, other sizes) — a row's value depends on nothing else — and computed once each, in
    chunks of similar length, spread over ``workers`` processes (default: the usable cores).
    """
    ks = tuple(int(k) for k in ks)
    sizes = np.asarray(sizes, dtype=np.int64).reshape(len(n_null), -1)
    quality = np.asarray(quality, dtype=float).reshape(sizes.shape)
    n_null = np.asarray(n_null, dtype=np.int64)
    n = sizes.sum(axis=1) + n_null
    big = (n > _EXACT_MAX_N) & (sizes > 0).any(axis=1)
    if big.any():
        raise TtsplanError(f"exact maj@k supports up to {_EXACT_MAX_N} samples per prompt, got {int(n[big].max())}. "
                           "Subsample the prompt's answers first.")
    values = np.zeros((len(n), len(ks)))
    prompt, col = np.nonzero((quality > 0) & (sizes > 0))
    if prompt.size:
        keep = np.ones((prompt.size, sizes.shape[1] + 1), dtype=bool)
        keep[np.arange(prompt.size), col] = False  # the prompt's other clusters, still in descending order
        others = np.pad(sizes, ((0, 0), (0, 1)))[prompt][keep].reshape(prompt.size, -1)
        others = others[:, : max(int((others > 0).sum(axis=1).max()), 1)]
        key = np.column_stack([n[prompt], n_null[prompt], sizes[prompt, col], others])
        unique, inverse = np.unique(key, axis=0, return_inverse=True)
        jobs, owners = [], []
        other = unique[:, 3:]
        # follow at least 4 other clusters, and every one that is large (left to the from-scratch count, a
        # big cluster would make every early t expensive), up to 6 (2**6 subset products)
        tracked = np.minimum(np.maximum(np.minimum((other > 0).sum(axis=1), _TRACKED_MIN),
                                        (other > _SCRATCH_T).sum(axis=1)), _TRACKED_MAX)
        for level in np.unique(tracked):
            rows = np.flatnonzero(tracked == level)  # by n, then by how long the DP runs
            ordered = rows[np.lexsort((-np.minimum(unique[rows, 2], unique[rows, 3]), unique[rows, 0]))]
            kmax = max([k for k in ks if k < unique[rows, 0].max()], default=1)
            chunk = max(16, min(_LEVEL_BYTES // (8 * kmax * (2 << int(level))), -(-ordered.size // 2)))
            for lo in range(0, ordered.size, chunk):
                part = ordered[lo:lo + chunk]
                oth = other[part]
                oth = oth[:, : max(int((oth > 0).sum(axis=1).max()), 1)]
                jobs.append((unique[part, 0], unique[part, 1], unique[part, 2], oth, ks, int(level)))
                owners.append(part)
        work = sum(job[2].size * max([k for k in ks if k < job[0].max()], default=0) for job in jobs)
        if workers is None:
            workers = _default_workers() if work >= _PARALLEL_MIN_WORK else 1
        results = _run_jobs(_maj_job, jobs, max(1, int(workers)))
        per_row = np.zeros((len(unique), len(ks)))
        for part, res in zip(owners, results):
            per_row[part] = res
        np.add.at(values, prompt, quality[prompt, col][:, None] * per_row[inverse.reshape(-1)])
    values[n[:, None] < np.asarray(ks)[None, :]] = np.nan
    return np.minimum(values, 1.0)


def _clusters(answers: Sequence[str | None], correct: Sequence) -> tuple[tuple[int, ...], tuple[float, ...], int]:
    groups: dict[str, list[float]] = {}
    n_null = 0
    for a, c in zip(answers, correct):
        if a is None:
            n_null += 1
        else:
            groups.setdefault(a, []).append(float(c))
    items = sorted(((len(v), float(np.mean(v))) for v in groups.values()), reverse=True)
    return tuple(s for s, _ in items), tuple(q for _, q in items), n_null


def maj_at_k_prompt(answers: Sequence[str | None], correct: Sequence, ks: Sequence[int]) -> np.ndarray:
    """Exact maj@k for one prompt from its answers and per-sample correctness.

    A cluster's correctness is the mean ``correct`` of its samples (1 or 0 for a consistent grader).
    """
    return maj_at_k([_clusters(answers, correct)], ks, workers=1)[0]


def maj_at_k(signatures: Sequence[tuple[tuple[int, ...], tuple[float, ...], int]], ks: Sequence[int],
             workers: int | None = None) -> np.ndarray:
    """maj@k for many prompts given as cluster signatures ``(sizes, qualities, n_null)``.

    One dynamic programme over the winner's vote count serves every k (:func:`_maj_rows`); prompts with
    the same cluster sizes share it; ``workers`` processes share the prompts (default: the usable cores,
    for inputs big enough to gain; 1 = this process). Returns (prompts × len(ks)); NaN where k > n.

    >>> maj_at_k([((2, 1), (1.0, 0.0), 0)], [1, 2, 3]).round(4).tolist()  # answers a, a, b; a correct
    [[0.6667, 0.6667, 1.0]]
    """
    width = max((len(s) for s, _, _ in signatures), default=0)
    sizes = np.zeros((len(signatures), width), dtype=np.int64)
    quality = np.zeros((len(signatures), width))
    for i, (s, q, _) in enumerate(signatures):
        order = sorted(range(len(s)), key=lambda j: (-s[j], -q[j]))
        sizes[i, :len(s)] = [s[j] for j in order]
        quality[i, :len(s)] = [q[j] for j in order]
    n_null = np.array([int(z) for _, _, z in signatures], dtype=np.int64)
    return _maj_arrays(sizes, quality, n_null, ks, workers=workers)


def weighted_maj_at_k(answers: Sequence[str | None], rewards: Sequence[float], correct: Sequence,
                      ks: Sequence[int], draws: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Reward-weighted majority vote among k samples by Monte Carlo.

    Returns ``(estimate, standard_error)`` per k; the standard error is that of the mean of
    ``draws`` independent subset draws (≤ 0.5/sqrt(draws)). Weight = reward (NaN counts as 0).
    """
    rng = np.random.default_rng(seed)
    n = len(answers)
    codes = {a: i for i, a in enumerate(sorted({a for a in answers if a is not None}))}
    code = np.array([codes.get(a, -1) if a is not None else -1 for a in answers])
    w = np.nan_to_num(np.asarray(rewards, dtype=float), nan=0.0)
    w = np.where(code >= 0, w - min(w.min(), 0.0) + 1e-12, 0.0)
    cluster_correct = np.zeros(max(len(codes), 1))
    corr = np.asarray(correct, dtype=float)
    for a, i in codes.items():
        cluster_correct[i] = corr[code == i].mean()
    est, se = np.full(len(ks), np.nan), np.full(len(ks), np.nan)
    for ki, k in enumerate(ks):
        if k > n or not codes:
            continue
        picks = np.argsort(rng.random((draws, n)), axis=1)[:, :k]
        totals = np.zeros((draws, len(codes)))
        rows = np.repeat(np.arange(draws), k)
        c = code[picks].ravel()
        keep = c >= 0
        np.add.at(totals, (rows[keep], c[keep]), w[picks].ravel()[keep])
        best = totals.max(axis=1, keepdims=True)
        leaders = (totals == best) & (best > 0)
        share = leaders / np.maximum(leaders.sum(axis=1, keepdims=True), 1)
        val = share @ cluster_correct
        est[ki], se[ki] = val.mean(), val.std(ddof=1) / np.sqrt(draws)
    return est, se


# ---------------------------------------------------------------------------------------- tables
def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise TtsplanError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}.{did_you_mean(metric, METRICS)}")


def _labeled(table: pl.DataFrame) -> pl.DataFrame:
    if not has_values(table, "correct"):
        raise TtsplanError("curves need graded samples: column \"correct\" must have values, got only nulls. "
                           "Grade the samples (ttsplan sample grades them) first.")
    if table.get_column("correct").null_count() == 0:
        return table  # nothing to drop: no copy
    return table.filter(pl.col("correct").is_not_null())


def _blocks(table: pl.DataFrame) -> list[tuple[pl.DataFrame, pl.DataFrame, int]]:
    """Split a sample table into blocks of prompts that share the same sample count n.

    Returns ``(block, keys, n)`` per distinct n (ascending), each prompt's n rows contiguous in ``block``
    and ``keys`` (config, prompt_id) in block order. A validated table is sorted, so its prompts are found
    as runs; any other order is sorted first.
    """
    runs = _sorted_runs(table)
    if runs is None:
        table = table.sort(["config", "prompt_id"], maintain_order=True)
        runs = _sorted_runs(table, check=False)
    keys, _, lengths = runs
    distinct = np.unique(lengths)
    if distinct.size <= 1:
        return [(table, keys, int(n)) for n in distinct]
    blocks = []
    for n in distinct:
        mine = lengths == n
        blocks.append((table.filter(pl.Series(np.repeat(mine, lengths))), keys.filter(pl.Series(mine)), int(n)))
    return blocks


def _sorted_runs(table: pl.DataFrame, check: bool = True) -> tuple[pl.DataFrame, np.ndarray, np.ndarray] | None:
    """``(keys, start row, length)`` of the runs of equal (config, prompt_id); None (with ``check``) unless the
    runs are in increasing key order, i.e. each prompt is one run, as in a validated (sorted) table."""
    if table.height == 0:
        return table.select("config", "prompt_id"), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    cfg, pid = table.get_column("config"), table.get_column("prompt_id")
    change = (cfg.ne_missing(cfg.shift(1)) | pid.ne_missing(pid.shift(1))).to_numpy()
    change[0] = True
    starts = np.flatnonzero(change)
    keys = table.select("config", "prompt_id")[starts]
    if check and keys.height > 1:
        cfg, pid = keys.get_column("config"), keys.get_column("prompt_id")
        if cfg.null_count() or pid.null_count():
            return None
        a_cfg, b_cfg, a_pid, b_pid = cfg.head(-1), cfg.tail(-1), pid.head(-1), pid.tail(-1)
        if not ((b_cfg > a_cfg) | ((b_cfg == a_cfg) & (b_pid > a_pid))).all():
            return None
    return keys, starts, np.diff(np.append(starts, table.height))


def _cluster_arrays(block: pl.DataFrame, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Answer clusters of a block of n-sample prompts: sizes (prompts × clusters, descending, 0-padded),
    their mean correctness, and the null-answer count per prompt."""
    codes = block.get_column("answer").cast(pl.Categorical).to_physical()
    null_code = int(codes.max() or 0) + 1
    codes = codes.fill_null(null_code).to_numpy()
    key = codes.astype(np.uint32 if null_code < 1 << 31 else np.uint64) << 1
    key |= block.get_column("correct").to_numpy()
    key = key.reshape(-1, n)
    key.sort(axis=1)  # per prompt: answer, then correctness
    starts = np.ones(key.shape, dtype=bool)
    np.not_equal(key[:, 1:], key[:, :-1], out=starts[:, 1:])
    bounds = np.flatnonzero(starts)  # runs of one answer with one correctness value
    length = np.diff(bounds, append=key.size)
    run_key = key.ravel()[bounds]
    prompt, code, good = bounds // n, run_key >> 1, run_key & 1
    first = np.ones(bounds.size, dtype=bool)  # an answer's wrong and right runs are adjacent
    first[1:] = (prompt[1:] != prompt[:-1]) | (code[1:] != code[:-1])
    cluster = np.cumsum(first) - 1
    size = np.bincount(cluster, weights=length).astype(np.int64)
    n_correct = np.bincount(cluster, weights=length * good)
    prompt, code = prompt[first], code[first]
    null = code == null_code
    n_null = np.bincount(prompt[null], weights=size[null], minlength=key.shape[0]).astype(np.int64)
    prompt, size, quality = prompt[~null], size[~null], n_correct[~null] / size[~null]
    order = np.lexsort((-quality, -size, prompt))
    prompt, size, quality = prompt[order], size[order], quality[order]
    rank = np.arange(prompt.size) - np.searchsorted(prompt, prompt)  # position within the prompt
    width = int(rank.max()) + 1 if rank.size else 0
    sizes = np.zeros((key.shape[0], width), dtype=np.int64)
    qualities = np.zeros((key.shape[0], width))
    sizes[prompt, rank] = size
    qualities[prompt, rank] = quality
    return sizes, qualities, n_null


def prompt_curves(table: pl.DataFrame, metric: str, ks: Sequence[int], kind: str | None = None,
                  workers: int | None = None) -> pl.DataFrame:
    """Per-prompt exact values: columns ``config, prompt_id, k, value``.

    ``table`` is a validated SampleTable or CountTable (``kind`` inferred from the columns); count
    tables support only ``pass``. ``value`` is null where k exceeds the prompt's sample count or the
    metric needs a column the data lacks (``bon`` without rewards). ``workers``: processes for ``maj``
    (default: the usable cores when the input is big enough to gain; 1 = this process only).
    """
    _check_metric(metric)
    ks = sorted({int(k) for k in ks})
    kind = kind or table_kind(table)
    if kind == "counts":
        if metric != "pass":
            raise TtsplanError(f"metric {metric!r} needs per-sample answers/rewards, got a count table. "
                               "Use --metric pass for count tables.")
        keys = table.select("config", "prompt_id")
        return _long(keys, ks, _pass_values(table["samples"].to_numpy(), table["correct_samples"].to_numpy(), ks))
    table = _labeled(table)
    if metric == "pass":
        runs = _sorted_runs(table)
        if runs is not None:
            keys, starts, n = runs
            c = np.add.reduceat(table.get_column("correct").cast(pl.Int64).to_numpy(), starts) if starts.size else n
        else:
            counts = (table.group_by(["config", "prompt_id"], maintain_order=True)
                      .agg(pl.len().alias("n"), pl.col("correct").cast(pl.Int64).sum().alias("c")))
            keys, n, c = counts.select("config", "prompt_id"), counts["n"].to_numpy(), counts["c"].to_numpy()
        return _long(keys, ks, _pass_values(n, c, ks))
    frames = []
    for block, keys, n in _blocks(table):
        if metric == "bon":
            reward = np.asarray(block.get_column("reward").to_numpy(), dtype=float).reshape(-1, n)
            values = bon_at_k(reward, block.get_column("correct").to_numpy().reshape(-1, n), ks)
            values[np.isnan(reward).all(axis=1)] = np.nan  # no rewards at all for this prompt
        else:
            values = _maj_arrays(*_cluster_arrays(block, n), ks, workers=workers)
        frames.append(_long(keys, ks, values))
    return pl.concat(frames).sort(["config", "prompt_id", "k"])


def _pass_values(n: np.ndarray, c: np.ndarray, ks: Sequence[int]) -> np.ndarray:
    """pass@k (prompts × len(ks)), computed once per distinct (n, c)."""
    pairs, inverse = np.unique(np.column_stack([n, c]), axis=0, return_inverse=True)
    return pass_at_k(pairs[:, :1], pairs[:, 1:], np.asarray(ks)[None, :])[inverse.reshape(-1)]


def _long(keys: pl.DataFrame, ks: Sequence[int], values: np.ndarray) -> pl.DataFrame:
    rep = keys.select(pl.all().repeat_by(len(ks)).explode())
    vals = values.reshape(-1)
    return rep.with_columns(
        pl.Series("k", np.tile(np.asarray(ks, dtype=np.int64), keys.height)),
        pl.Series("value", vals).fill_nan(None),
    )


_BOOT_CACHE_MAX = 10_000_000  # resample counts kept for reuse (float32: up to 40 MB each, 2 kept)


@lru_cache(maxsize=2)
def _bootstrap_counts(p: int, n_boot: int, seed) -> np.ndarray:
    """How often each of p prompts is drawn in each of n_boot resamples (float32, read-only). Configs with
    the same prompt count — and each metric of a curves call — draw the same resamples: cached."""
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(p, np.full(p, 1.0 / p), size=n_boot).astype(np.float32)
    counts.flags.writeable = False
    return counts


def bootstrap_mean_ci(values: np.ndarray, n_boot: int, seed: int, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile CI of the column means of ``values`` (prompts × columns) by resampling prompts."""
    p = values.shape[0]
    if n_boot <= 0 or p < 2:
        mean = values.mean(axis=0)
        return mean, mean
    if isinstance(seed, (int, np.integer)) and p * n_boot <= _BOOT_CACHE_MAX:
        counts = _bootstrap_counts(p, n_boot, int(seed))
    else:
        counts = _bootstrap_counts.__wrapped__(p, n_boot, seed)
    boot = (counts @ values.astype(np.float32)) / p
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(boot, [alpha, 1 - alpha], axis=0)
    return lo.astype(float), hi.astype(float)


def curves(table: pl.DataFrame, metrics: Sequence[str] = METRICS, ks: Sequence[int] = DEFAULT_KS,
           n_boot: int = 200, seed: int = 0, confidence: float = DEFAULT_CI_CONFIDENCE, kind: str | None = None,
           workers: int | None = None) -> pl.DataFrame:
    """Per-config accuracy-vs-k curves with bootstrap-over-prompts CIs.

    Columns ``config, metric, k, value, ci_low, ci_high``; a (config, metric, k) row is present only
    where every prompt of the config has at least k samples and the metric's inputs exist
    (``bon`` needs rewards, ``maj`` needs answers; count tables give ``pass`` only). ``workers`` as in
    :func:`prompt_curves`.
    """
    kind = kind or table_kind(table)
    if not 0 < confidence < 1:
        raise TtsplanError(f"confidence must be in (0, 1), got {confidence}.")
    rows = []
    for metric in metrics:
        _check_metric(metric)
        if kind == "counts" and metric != "pass":
            continue
        if kind == "samples" and metric == "bon" and not has_values(table, "reward"):
            continue
        if kind == "samples" and metric == "maj" and not has_values(table, "answer"):
            continue
        per = prompt_curves(table, metric, ks, kind=kind, workers=workers)
        for config in sorted(per["config"].unique().to_list()):
            sub = per.filter(pl.col("config") == config).sort(["prompt_id", "k"])
            mat = sub["value"].to_numpy(allow_copy=True).astype(float).reshape(-1, len(set(ks)))
            kk = np.asarray(sorted(set(ks)))
            ok = ~np.isnan(mat).any(axis=0)
            if not ok.any():
                continue
            mean = mat[:, ok].mean(axis=0)
            lo, hi = bootstrap_mean_ci(mat[:, ok], n_boot, seed, confidence)
            for k, v, a, b in zip(kk[ok], mean, lo, hi):
                rows.append({"config": config, "metric": metric, "k": int(k), "value": float(v),
                             "ci_low": float(min(a, v)), "ci_high": float(max(b, v))})
    schema = {"config": pl.String, "metric": pl.String, "k": pl.Int64, "value": pl.Float64,
              "ci_low": pl.Float64, "ci_high": pl.Float64}
    return pl.DataFrame(rows, schema=schema).sort(["config", "metric", "k"])
