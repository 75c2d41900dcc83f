"""Exact, unbiased estimators of repeated-sampling accuracy (DESIGN §4), vectorized over prompts.

For a prompt with n recorded samples, the value at k is the expectation over all k-subsets drawn
without replacement — the same number brute-force enumeration of the C(n, k) subsets gives.

- :func:`pass_at_k` — 1 − C(n−c, k)/C(n, k), in log space (stable for n = 10,000 and k up to n).
- :func:`bon_at_k` — the correctness of the highest-reward sample among k; ties averaged.
- :func:`maj_at_k` — plurality vote among k (uniform tie-breaking, null answers never win), exact by
  a generating-polynomial dynamic programme over answer clusters.
- :func:`weighted_maj_at_k` — reward-weighted vote, Monte Carlo with its standard error.
- :func:`prompt_curves` / :func:`curves` — per-prompt values and per-config curves with
  bootstrap-over-prompts confidence intervals.

>>> round(float(pass_at_k(10, 3, 2)), 12)  # 1 - C(7,2)/C(10,2) = 1 - 21/45
0.533333333333
>>> float(maj_at_k_prompt(["a", "a", "b"], [True, True, False], [1, 3])[1])
1.0
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache

import numpy as np
import polars as pl
from scipy.special import gammaln

from ttsplan.features.errors import TtsplanError
from ttsplan.features.schema import has_values

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
def _tie_averaged(sorted_rewards: np.ndarray, sorted_correct: np.ndarray) -> np.ndarray:
    """Replace each correctness value by the mean over its run of tied rewards (rows sorted)."""
    p, n = sorted_rewards.shape
    new_run = np.ones((p, n), dtype=bool)
    new_run[:, 1:] = sorted_rewards[:, 1:] != sorted_rewards[:, :-1]
    run_id = np.cumsum(new_run, axis=1) - 1 + (np.arange(p) * n)[:, None]
    flat_id = run_id.ravel()
    sums = np.bincount(flat_id, weights=sorted_correct.ravel(), minlength=p * n)
    sizes = np.bincount(flat_id, minlength=p * n)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / sizes
    return means[flat_id].reshape(p, n)


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
    correct = np.asarray(correct, dtype=float)
    if rewards.ndim == 1:
        rewards, correct = rewards[None, :], correct[None, :]
    rewards = np.where(np.isnan(rewards), -np.inf, rewards)
    order = np.argsort(rewards, axis=1, kind="stable")
    r_sorted = np.take_along_axis(rewards, order, axis=1)
    c_sorted = np.take_along_axis(correct, order, axis=1)
    c_avg = _tie_averaged(r_sorted, c_sorted)
    return c_avg @ bon_weights(rewards.shape[1], ks)


# --------------------------------------------------------------------------------------------- maj@k
def _gauss_legendre_01(degree: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes/weights on [0, 1] integrating polynomials up to ``degree`` exactly."""
    q = degree // 2 + 1
    x, w = np.polynomial.legendre.leggauss(q)
    return (x + 1) / 2, w / 2


@lru_cache(maxsize=8)
def _comb_table(n: int) -> np.ndarray:
    """Pascal's triangle C[a, b] for 0 <= a, b <= n as exact-valued floats (n <= 1020), 0 above."""
    table = np.zeros((n + 1, n + 1))
    table[:, 0] = 1.0
    for a in range(1, n + 1):
        table[a, 1:a + 1] = table[a - 1, 1:a + 1] + table[a - 1, 0:a]
    return table


_EXACT_MAX_N = 1020  # C(1020, 510) < 1.8e308: plain float counts are exact to rounding up to here


def _maj_signature(sizes: tuple[int, ...], quality: tuple[float, ...], n_null: int,
                   ks: tuple[int, ...]) -> np.ndarray:
    """maj@k for one answer-cluster signature (cluster sizes, their correctness, null count).

    P(cluster j wins) = Σ_t C(m_j, t) · [y^{k−t}] Π_{i≠j}(Σ_{x<t} C(m_i,x) y^x + z·C(m_i,t) y^t)
    · (1+y)^{m_null} / C(n, k), integrated over z ∈ [0, 1] so that a tie among s+1 leaders
    contributes 1/(s+1) (∫ z^s dz, exact by Gauss–Legendre). Clusters smaller than t cannot reach t
    and fold, with the null answers, into one free binomial factor (Vandermonde); for t above every
    other cluster the sum is the hypergeometric P(x_j = t). The polynomial work stays small.
    """
    n = sum(sizes) + n_null
    ks_arr = np.asarray(ks, dtype=np.int64)
    out = np.zeros(len(ks))
    if not sizes:
        return out
    if n > _EXACT_MAX_N:
        raise TtsplanError(f"exact maj@k supports up to {_EXACT_MAX_N} samples per prompt, got {n}. "
                           "Subsample the prompt's answers first.")
    comb = _comb_table(n)
    total = comb[n, np.minimum(ks_arr, n)]
    sizes_arr = np.asarray(sizes)
    kmax = int(ks_arr.max())
    for j, (m_j, q_j) in enumerate(zip(sizes, quality)):
        if q_j == 0.0:
            continue
        others = np.delete(sizes_arr, j)
        top = int(others.max()) if others.size else 0
        t_hi = min(m_j, kmax)
        if t_hi > top:  # nobody else can reach t: hypergeometric P(x_j = t)
            t = np.arange(top + 1, t_hi + 1)[:, None]
            rest = ks_arr[None, :] - t
            ok = (rest >= 0) & (rest <= n - m_j)
            pmf = comb[m_j, t] * np.where(ok, comb[n - m_j, np.clip(rest, 0, n)], 0.0) / total[None, :]
            out += q_j * pmf.sum(axis=0)
        t_lo_hi = min(t_hi, top)
        if t_lo_hi < 1:
            continue
        nodes, weights = _gauss_legendre_01(len(others))
        polys = np.zeros((t_lo_hi, len(others) * t_lo_hi + 1))
        frees = np.empty(t_lo_hi, dtype=np.int64)
        for t in range(1, t_lo_hi + 1):
            active = others[others >= t]
            frees[t - 1] = int(others[others < t].sum()) + n_null
            poly = np.ones((len(nodes), 1))
            for m_i in active:
                coef = comb[m_i, : t + 1]
                base = coef.copy()
                base[t] = 0.0  # Σ_{x<t} C(m_i, x) y^x, plus z·C(m_i, t)·y^t per quadrature node below
                conv = np.array([np.convolve(row, base) for row in poly])
                conv[:, t:] += (nodes * coef[t])[:, None] * poly
                poly = conv
            integrated = weights @ poly
            polys[t - 1, : integrated.size] = integrated
        t_col = np.arange(1, t_lo_hi + 1)[:, None, None]
        d = np.arange(polys.shape[1])[None, None, :]
        rest = ks_arr[None, :, None] - t_col - d  # (T, K, D)
        ok = (rest >= 0) & (rest <= frees[:, None, None])
        bg = np.where(ok, comb[frees[:, None, None], np.clip(rest, 0, n)], 0.0)
        per_t = np.einsum("tkd,td->tk", bg, polys) * comb[m_j, 1:t_lo_hi + 1][:, None]
        out += q_j * per_t.sum(axis=0) / total
    out[ks_arr > n] = np.nan
    return np.minimum(out, 1.0)


_BATCH_MAX_OTHERS = 5  # (6 clusters) subset-product DP holds 2**J polynomials per row


def _maj_rows_batched(m_target: np.ndarray, others: np.ndarray, m_null: np.ndarray, n: int,
                      ks: tuple[int, ...]) -> np.ndarray:
    """P(target cluster wins a k-subset vote) for many rows at once (same n, same J other clusters).

    The same generating polynomial as :func:`_maj_signature`, organised for vectorization: for all
    subsets R of the J other clusters keep Prod_R(y) = (1+y)^{m_null} · Π_{i∈R} Σ_{x<t} C(m_i,x) y^x,
    updated from t to t+1 by adding each cluster's next term (J·2^{J−1} array operations per t,
    shared by every row). At each t the z-integrated polynomial is
    Σ_{U⊆W} Π_{i∈U} C(m_i,t) · y^{t|U|} · Prod_{W∖U}(y) / (|U|+1), and only its coefficients at
    y^{k−t} for the requested k are read.
    """
    rows, j_others = others.shape
    ks_arr = np.asarray(ks, dtype=np.int64)
    kmax = int(min(ks_arr.max(), n))
    comb = _comb_table(n)
    length = kmax + 1
    nsub = 1 << j_others
    full = nsub - 1
    popcount = np.array([bin(u).count("1") for u in range(nsub)])
    # layout (subset, degree, row): every update and read below touches contiguous row vectors
    prod = np.repeat(comb[m_null[None, :], np.arange(length)[:, None]][None], nsub, axis=0)
    out = np.zeros((rows, len(ks)))
    total = comb[n, np.minimum(ks_arr, n)]
    t_max = int(min(m_target.max(initial=0), kmax))
    top_other = int(others.max(initial=0))
    for t in range(1, t_max + 1):
        c = comb[others, t] if t <= n else np.zeros_like(others, dtype=float)  # 0 where m_i < t
        c_target = comb[m_target, t]  # 0 where m_target < t
        coefs = [np.ones(rows)]
        for u in range(1, nsub):
            low = (u & -u).bit_length() - 1
            coefs.append(coefs[u ^ (1 << low)] * c[:, low])
        for ki, k in enumerate(ks_arr):
            r = int(k) - t
            if r < 0 or k > n:
                continue
            acc = np.zeros(rows)
            for u in range(nsub):
                shift = t * popcount[u]
                if shift <= r:
                    acc += coefs[u] * prod[full ^ u, r - shift] / (popcount[u] + 1)
            out[:, ki] += c_target * acc / total[ki]
        if t <= top_other and t < length:
            hi = kmax - t + 1  # later steps read coefficients below kmax - t only
            if hi > t:
                for i in range(j_others):
                    bit = 1 << i
                    for subset in range(nsub):
                        if subset & bit:
                            prod[subset, t:hi] += c[None, :, i] * prod[subset ^ bit, : hi - t]
    out[:, ks_arr > n] = np.nan
    return out


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
    sizes, quality, n_null = _clusters(answers, correct)
    return _maj_signature(sizes, quality, n_null, tuple(int(k) for k in ks))


def _maj_chunk(args: tuple[list, tuple[int, ...]]) -> list[np.ndarray]:
    sigs, ks = args
    return [_maj_signature(s, q, n0, ks) for s, q, n0 in sigs]


def _maj_batch_job(args: tuple[np.ndarray, np.ndarray, np.ndarray, int, tuple[int, ...]]) -> np.ndarray:
    return _maj_rows_batched(*args)


_CHUNK_ROWS = 2048


def maj_at_k(signatures: Sequence[tuple[tuple[int, ...], tuple[float, ...], int]], ks: Sequence[int],
             workers: int | None = None) -> np.ndarray:
    """maj@k for many prompts given as cluster signatures ``(sizes, qualities, n_null)``.

    Identical signatures are computed once. Prompts with at most 6 answer clusters go through the
    vectorized subset-product DP (:func:`_maj_rows_batched`, one row per cluster that has any
    correctness), the rest through the per-prompt DP (:func:`_maj_signature`). ``workers`` > 1
    spreads chunks over processes (default: up to the CPU count for big inputs).
    Returns (prompts × len(ks)).
    """
    ks = tuple(int(k) for k in ks)
    unique: dict[tuple, int] = {}
    index = np.empty(len(signatures), dtype=np.int64)
    for i, sig in enumerate(signatures):
        index[i] = unique.setdefault(sig, len(unique))
    distinct = list(unique)
    values = np.zeros((len(distinct), len(ks)))
    # rows for the batched DP, grouped by (n, number of other clusters)
    groups: dict[tuple[int, int], list[tuple[int, int, tuple[int, ...], int, float]]] = {}
    slow: list[int] = []
    for s_idx, (sizes, quality, n_null) in enumerate(distinct):
        n = sum(sizes) + n_null
        if len(sizes) - 1 > _BATCH_MAX_OTHERS or n > _EXACT_MAX_N:
            slow.append(s_idx)
            continue
        for j, q in enumerate(quality):
            if q > 0:
                others = sizes[:j] + sizes[j + 1:]
                groups.setdefault((n, len(others)), []).append((s_idx, sizes[j], others, n_null, q))
    jobs, owners = [], []
    for (n, _), rows in sorted(groups.items()):
        rows.sort(key=lambda r: max(r[2], default=0))  # similar ranges of t per chunk
        for lo in range(0, len(rows), _CHUNK_ROWS):
            chunk = rows[lo:lo + _CHUNK_ROWS]
            jobs.append((np.array([r[1] for r in chunk]), np.array([r[2] for r in chunk], dtype=np.int64).reshape(len(chunk), -1),
                         np.array([r[3] for r in chunk]), n, ks))
            owners.append((np.array([r[0] for r in chunk]), np.array([r[4] for r in chunk])))
    if workers is None:
        workers = min(os.cpu_count() or 1, 8) if len(jobs) > 2 else 1
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(_maj_batch_job, jobs))
    else:
        results = [_maj_batch_job(job) for job in jobs]
    for (s_idx, q), res in zip(owners, results):
        np.add.at(values, s_idx, q[:, None] * res)
    if slow:
        values[slow] = np.asarray(_maj_chunk(([distinct[i] for i in slow], ks))).reshape(-1, len(ks))
    too_big = [sum(s) + z for s, _, z in distinct]
    values[np.asarray(too_big)[:, None] < np.asarray(ks)[None, :]] = np.nan
    return np.minimum(values, 1.0)[index]


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
        from ttsplan.features.errors import did_you_mean

        raise TtsplanError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}.{did_you_mean(metric, METRICS)}")


def _labeled(table: pl.DataFrame) -> pl.DataFrame:
    if not has_values(table, "correct"):
        raise TtsplanError("curves need graded samples: column \"correct\" must have values, got only nulls. "
                           "Grade the samples (ttsplan sample grades them) first.")
    return table.filter(pl.col("correct").is_not_null())


def _blocks(table: pl.DataFrame) -> list[pl.DataFrame]:
    """Split a sorted sample table into blocks of prompts that share the same sample count."""
    sizes = table.group_by(["config", "prompt_id"], maintain_order=True).len()
    table = table.join(sizes, on=["config", "prompt_id"], how="left", maintain_order="left")
    return [b.drop("len") for _, b in sorted(table.partition_by("len", as_dict=True).items())]


def prompt_curves(table: pl.DataFrame, metric: str, ks: Sequence[int], kind: str | None = None,
                  workers: int | None = None) -> pl.DataFrame:
    """Per-prompt exact values: columns ``config, prompt_id, k, value``.

    ``table`` is a validated SampleTable or CountTable (``kind`` inferred from the columns); count
    tables support only ``pass``. ``value`` is null where k exceeds the prompt's sample count or the
    metric needs a column the data lacks (``bon`` without rewards).
    """
    _check_metric(metric)
    ks = sorted({int(k) for k in ks})
    kind = kind or ("counts" if "correct_samples" in table.columns else "samples")
    if kind == "counts":
        if metric != "pass":
            raise TtsplanError(f"metric {metric!r} needs per-sample answers/rewards, got a count table. "
                               "Use --metric pass for count tables.")
        keys = table.select("config", "prompt_id")
        values = pass_at_k(table["samples"].to_numpy()[:, None], table["correct_samples"].to_numpy()[:, None],
                           np.asarray(ks)[None, :])
        return _long(keys, ks, values)
    table = _labeled(table)
    if metric == "pass":
        counts = (table.group_by(["config", "prompt_id"], maintain_order=True)
                  .agg(pl.len().alias("n"), pl.col("correct").cast(pl.Int64).sum().alias("c")))
        values = pass_at_k(counts["n"].to_numpy()[:, None], counts["c"].to_numpy()[:, None], np.asarray(ks)[None, :])
        return _long(counts.select("config", "prompt_id"), ks, values)
    frames = []
    for block in _blocks(table):
        keys = block.select("config", "prompt_id").unique(maintain_order=True)
        n = block.height // keys.height
        if metric == "bon":
            reward = block["reward"].to_numpy().astype(float).reshape(-1, n)
            values = bon_at_k(reward, block["correct"].to_numpy().astype(float).reshape(-1, n), ks)
            values[np.isnan(reward).all(axis=1)] = np.nan  # no rewards at all for this prompt
        else:
            values = maj_at_k(_signatures(block, keys), ks, workers=workers)
        frames.append(_long(keys, ks, values))
    return pl.concat(frames).sort(["config", "prompt_id", "k"])


def _signatures(block: pl.DataFrame, keys: pl.DataFrame) -> list[tuple[tuple[int, ...], tuple[float, ...], int]]:
    """Answer-cluster signature (sizes desc, their mean correctness, null count) per prompt, in key order."""
    clusters = (block.group_by(["config", "prompt_id", "answer"])
                .agg(pl.len().alias("size"), pl.col("correct").cast(pl.Float64).mean().alias("quality"))
                .sort(["config", "prompt_id", "size", "quality"], descending=[False, False, True, True]))
    per_prompt = (clusters.group_by(["config", "prompt_id"], maintain_order=True)
                  .agg(pl.col("size").filter(pl.col("answer").is_not_null()).alias("sizes"),
                       pl.col("quality").filter(pl.col("answer").is_not_null()).alias("qualities"),
                       pl.col("size").filter(pl.col("answer").is_null()).sum().alias("n_null")))
    per_prompt = keys.join(per_prompt, on=["config", "prompt_id"], how="left", maintain_order="left")
    return [(tuple(s), tuple(q), int(z or 0)) for s, q, z in
            zip(per_prompt["sizes"].to_list(), per_prompt["qualities"].to_list(), per_prompt["n_null"].to_list())]


def _long(keys: pl.DataFrame, ks: Sequence[int], values: np.ndarray) -> pl.DataFrame:
    rep = keys.select(pl.all().repeat_by(len(ks)).explode())
    vals = values.reshape(-1)
    return rep.with_columns(
        pl.Series("k", np.tile(np.asarray(ks, dtype=np.int64), keys.height)),
        pl.Series("value", vals).fill_nan(None),
    )


def bootstrap_mean_ci(values: np.ndarray, n_boot: int, seed: int, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile CI of the column means of ``values`` (prompts × columns) by resampling prompts."""
    p = values.shape[0]
    if n_boot <= 0 or p < 2:
        mean = values.mean(axis=0)
        return mean, mean
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(p, np.full(p, 1.0 / p), size=n_boot).astype(np.float32)
    boot = (counts @ values.astype(np.float32)) / p
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(boot, [alpha, 1 - alpha], axis=0)
    return lo.astype(float), hi.astype(float)


def curves(table: pl.DataFrame, metrics: Sequence[str] = METRICS, ks: Sequence[int] = DEFAULT_KS,
           n_boot: int = 200, seed: int = 0, confidence: float = 0.95, kind: str | None = None,
           workers: int | None = None) -> pl.DataFrame:
    """Per-config accuracy-vs-k curves with bootstrap-over-prompts CIs.

    Columns ``config, metric, k, value, ci_low, ci_high``; a (config, metric, k) row is present only
    where every prompt of the config has at least k samples and the metric's inputs exist
    (``bon`` needs rewards, ``maj`` needs answers; count tables give ``pass`` only).
    """
    kind = kind or ("counts" if "correct_samples" in table.columns else "samples")
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
