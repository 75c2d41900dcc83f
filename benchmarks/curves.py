"""Speed and memory of `ttsplan.features.estimators.curves` on a large synthetic table, beside today's.

Issue 20 target: 40,000 prompts × 256 samples (10,240,000 rows; answers from a few clusters, rewards),
pass/maj/BoN curves at k = 1, 2, 4, …, 256 with 200 bootstrap resamples, ≥ 3× faster than the
implementation of commit 05bdbc1 (copied below as ``reference_*``, so it stays callable) and ≤ 5 s in total
on an idle 2-core machine, with identical results. Both run in this one process, metric by metric, and
the script prints their times, the speed-up, the largest difference between their outputs and the load
average (the machine may be shared: the ratio is the figure to compare across machines).

Also printed (issue 4): peak memory (target ≤ 6 GB) and the speed-up over a straightforward per-prompt
Python implementation of the same estimators (run on a subsample and scaled).

    python benchmarks/curves.py                  # full size
    python benchmarks/curves.py --prompts 2000   # quick
"""
from __future__ import annotations

import argparse
import math
import os
import resource
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache

import numpy as np
import polars as pl

from ttsplan.features.errors import TtsplanError, did_you_mean
from ttsplan.features.estimators import (DEFAULT_KS, METRICS, bon_weights, curves, maj_at_k_prompt,
                                         pass_at_k)
from ttsplan.features.schema import has_values, validate_sample_table


# ------------------------------------------------------------------------------------------------
# reference: the curves path of ttsplan.features.estimators as of commit 05bdbc1 (before issue 20),
# names prefixed with reference_; pass_at_k and bon_weights are unchanged and imported.
# ------------------------------------------------------------------------------------------------
def reference_tie_averaged(sorted_rewards: np.ndarray, sorted_correct: np.ndarray) -> np.ndarray:
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


def reference_bon_at_k(rewards: np.ndarray, correct: np.ndarray, ks: Sequence[int]) -> np.ndarray:
    """Best-of-k for a (prompts × n) block: expected correctness of the top-reward sample among k.

    Rewards may contain NaN (missing): those samples rank below every scored one (ties among them).
    Returns (prompts × len(ks)); NaN where k > n.

    >>> reference_bon_at_k(np.array([[0.1, 0.9, 0.5]]), np.array([[1, 0, 1]]), [1, 3]).round(4).tolist()
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
    c_avg = reference_tie_averaged(r_sorted, c_sorted)
    return c_avg @ bon_weights(rewards.shape[1], ks)


def reference_gauss_legendre_01(degree: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes/weights on [0, 1] integrating polynomials up to ``degree`` exactly."""
    q = degree // 2 + 1
    x, w = np.polynomial.legendre.leggauss(q)
    return (x + 1) / 2, w / 2


@lru_cache(maxsize=8)
def reference_comb_table(n: int) -> np.ndarray:
    """Pascal's triangle C[a, b] for 0 <= a, b <= n as exact-valued floats (n <= 1020), 0 above."""
    table = np.zeros((n + 1, n + 1))
    table[:, 0] = 1.0
    for a in range(1, n + 1):
        table[a, 1:a + 1] = table[a - 1, 1:a + 1] + table[a - 1, 0:a]
    return table


_REFERENCE_EXACT_MAX_N = 1020  # C(1020, 510) < 1.8e308: plain float counts are exact to rounding up to here


def reference_maj_signature(sizes: tuple[int, ...], quality: tuple[float, ...], n_null: int,
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
    if n > _REFERENCE_EXACT_MAX_N:
        raise TtsplanError(f"exact maj@k supports up to {_REFERENCE_EXACT_MAX_N} samples per prompt, got {n}. "
                           "Subsample the prompt's answers first.")
    comb = reference_comb_table(n)
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
        nodes, weights = reference_gauss_legendre_01(len(others))
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


_REFERENCE_BATCH_MAX_OTHERS = 5  # (6 clusters) subset-product DP holds 2**J polynomials per row


def reference_maj_rows_batched(m_target: np.ndarray, others: np.ndarray, m_null: np.ndarray, n: int,
                      ks: tuple[int, ...]) -> np.ndarray:
    """P(target cluster wins a k-subset vote) for many rows at once (same n, same J other clusters).

    The same generating polynomial as :func:`reference_maj_signature`, organised for vectorization: for all
    subsets R of the J other clusters keep Prod_R(y) = (1+y)^{m_null} · Π_{i∈R} Σ_{x<t} C(m_i,x) y^x,
    updated from t to t+1 by adding each cluster's next term (J·2^{J−1} array operations per t,
    shared by every row). At each t the z-integrated polynomial is
    Σ_{U⊆W} Π_{i∈U} C(m_i,t) · y^{t|U|} · Prod_{W∖U}(y) / (|U|+1), and only its coefficients at
    y^{k−t} for the requested k are read.
    """
    rows, j_others = others.shape
    ks_arr = np.asarray(ks, dtype=np.int64)
    kmax = int(min(ks_arr.max(), n))
    comb = reference_comb_table(n)
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


def reference_maj_chunk(args: tuple[list, tuple[int, ...]]) -> list[np.ndarray]:
    sigs, ks = args
    return [reference_maj_signature(s, q, n0, ks) for s, q, n0 in sigs]


def reference_maj_batch_job(args: tuple[np.ndarray, np.ndarray, np.ndarray, int, tuple[int, ...]]) -> np.ndarray:
    return reference_maj_rows_batched(*args)


_REFERENCE_CHUNK_ROWS = 2048


def reference_maj_at_k(signatures: Sequence[tuple[tuple[int, ...], tuple[float, ...], int]], ks: Sequence[int],
             workers: int | None = None) -> np.ndarray:
    """maj@k for many prompts given as cluster signatures ``(sizes, qualities, n_null)``.

    Identical signatures are computed once. Prompts with at most 6 answer clusters go through the
    vectorized subset-product DP (:func:`reference_maj_rows_batched`, one row per cluster that has any
    correctness), the rest through the per-prompt DP (:func:`reference_maj_signature`). ``workers`` > 1
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
        if len(sizes) - 1 > _REFERENCE_BATCH_MAX_OTHERS or n > _REFERENCE_EXACT_MAX_N:
            slow.append(s_idx)
            continue
        for j, q in enumerate(quality):
            if q > 0:
                others = sizes[:j] + sizes[j + 1:]
                groups.setdefault((n, len(others)), []).append((s_idx, sizes[j], others, n_null, q))
    jobs, owners = [], []
    for (n, _), rows in sorted(groups.items()):
        rows.sort(key=lambda r: max(r[2], default=0))  # similar ranges of t per chunk
        for lo in range(0, len(rows), _REFERENCE_CHUNK_ROWS):
            chunk = rows[lo:lo + _REFERENCE_CHUNK_ROWS]
            jobs.append((np.array([r[1] for r in chunk]), np.array([r[2] for r in chunk], dtype=np.int64).reshape(len(chunk), -1),
                         np.array([r[3] for r in chunk]), n, ks))
            owners.append((np.array([r[0] for r in chunk]), np.array([r[4] for r in chunk])))
    if workers is None:
        workers = min(os.cpu_count() or 1, 8) if len(jobs) > 2 else 1
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(reference_maj_batch_job, jobs))
    else:
        results = [reference_maj_batch_job(job) for job in jobs]
    for (s_idx, q), res in zip(owners, results):
        np.add.at(values, s_idx, q[:, None] * res)
    if slow:
        values[slow] = np.asarray(reference_maj_chunk(([distinct[i] for i in slow], ks))).reshape(-1, len(ks))
    too_big = [sum(s) + z for s, _, z in distinct]
    values[np.asarray(too_big)[:, None] < np.asarray(ks)[None, :]] = np.nan
    return np.minimum(values, 1.0)[index]


def reference_check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise TtsplanError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}.{did_you_mean(metric, METRICS)}")


def reference_labeled(table: pl.DataFrame) -> pl.DataFrame:
    if not has_values(table, "correct"):
        raise TtsplanError("curves need graded samples: column \"correct\" must have values, got only nulls. "
                           "Grade the samples (ttsplan sample grades them) first.")
    return table.filter(pl.col("correct").is_not_null())


def reference_blocks(table: pl.DataFrame) -> list[pl.DataFrame]:
    """Split a sorted sample table into blocks of prompts that share the same sample count."""
    sizes = table.group_by(["config", "prompt_id"], maintain_order=True).len()
    table = table.join(sizes, on=["config", "prompt_id"], how="left", maintain_order="left")
    return [b.drop("len") for _, b in sorted(table.partition_by("len", as_dict=True).items())]


def reference_prompt_curves(table: pl.DataFrame, metric: str, ks: Sequence[int], kind: str | None = None,
                  workers: int | None = None) -> pl.DataFrame:
    """Per-prompt exact values: columns ``config, prompt_id, k, value``.

    ``table`` is a validated SampleTable or CountTable (``kind`` inferred from the columns); count
    tables support only ``pass``. ``value`` is null where k exceeds the prompt's sample count or the
    metric needs a column the data lacks (``bon`` without rewards).
    """
    reference_check_metric(metric)
    ks = sorted({int(k) for k in ks})
    kind = kind or ("counts" if "correct_samples" in table.columns else "samples")
    if kind == "counts":
        if metric != "pass":
            raise TtsplanError(f"metric {metric!r} needs per-sample answers/rewards, got a count table. "
                               "Use --metric pass for count tables.")
        keys = table.select("config", "prompt_id")
        values = pass_at_k(table["samples"].to_numpy()[:, None], table["correct_samples"].to_numpy()[:, None],
                           np.asarray(ks)[None, :])
        return reference_long(keys, ks, values)
    table = reference_labeled(table)
    if metric == "pass":
        counts = (table.group_by(["config", "prompt_id"], maintain_order=True)
                  .agg(pl.len().alias("n"), pl.col("correct").cast(pl.Int64).sum().alias("c")))
        values = pass_at_k(counts["n"].to_numpy()[:, None], counts["c"].to_numpy()[:, None], np.asarray(ks)[None, :])
        return reference_long(counts.select("config", "prompt_id"), ks, values)
    frames = []
    for block in reference_blocks(table):
        keys = block.select("config", "prompt_id").unique(maintain_order=True)
        n = block.height // keys.height
        if metric == "bon":
            reward = block["reward"].to_numpy().astype(float).reshape(-1, n)
            values = reference_bon_at_k(reward, block["correct"].to_numpy().astype(float).reshape(-1, n), ks)
            values[np.isnan(reward).all(axis=1)] = np.nan  # no rewards at all for this prompt
        else:
            values = reference_maj_at_k(reference_signatures(block, keys), ks, workers=workers)
        frames.append(reference_long(keys, ks, values))
    return pl.concat(frames).sort(["config", "prompt_id", "k"])


def reference_signatures(block: pl.DataFrame, keys: pl.DataFrame) -> list[tuple[tuple[int, ...], tuple[float, ...], int]]:
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


def reference_long(keys: pl.DataFrame, ks: Sequence[int], values: np.ndarray) -> pl.DataFrame:
    rep = keys.select(pl.all().repeat_by(len(ks)).explode())
    vals = values.reshape(-1)
    return rep.with_columns(
        pl.Series("k", np.tile(np.asarray(ks, dtype=np.int64), keys.height)),
        pl.Series("value", vals).fill_nan(None),
    )


def reference_bootstrap_mean_ci(values: np.ndarray, n_boot: int, seed: int, confidence: float) -> tuple[np.ndarray, np.ndarray]:
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


def reference_curves(table: pl.DataFrame, metrics: Sequence[str] = METRICS, ks: Sequence[int] = DEFAULT_KS,
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
        reference_check_metric(metric)
        if kind == "counts" and metric != "pass":
            continue
        if kind == "samples" and metric == "bon" and not has_values(table, "reward"):
            continue
        if kind == "samples" and metric == "maj" and not has_values(table, "answer"):
            continue
        per = reference_prompt_curves(table, metric, ks, kind=kind, workers=workers)
        for config in sorted(per["config"].unique().to_list()):
            sub = per.filter(pl.col("config") == config).sort(["prompt_id", "k"])
            mat = sub["value"].to_numpy(allow_copy=True).astype(float).reshape(-1, len(set(ks)))
            kk = np.asarray(sorted(set(ks)))
            ok = ~np.isnan(mat).any(axis=0)
            if not ok.any():
                continue
            mean = mat[:, ok].mean(axis=0)
            lo, hi = reference_bootstrap_mean_ci(mat[:, ok], n_boot, seed, confidence)
            for k, v, a, b in zip(kk[ok], mean, lo, hi):
                rows.append({"config": config, "metric": metric, "k": int(k), "value": float(v),
                             "ci_low": float(min(a, v)), "ci_high": float(max(b, v))})
    schema = {"config": pl.String, "metric": pl.String, "k": pl.Int64, "value": pl.Float64,
              "ci_low": pl.Float64, "ci_high": pl.Float64}
    return pl.DataFrame(rows, schema=schema).sort(["config", "metric", "k"])


# ------------------------------------------------------------------------------------------------
def synthetic(prompts: int, k: int, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    p_correct = rng.beta(0.8, 0.8, prompts)
    # wrong mass over 3 wrong answers with a dominant one; 2% of samples have no answer
    wrong = rng.dirichlet([2.0, 0.7, 0.3], prompts) * (1 - p_correct)[:, None] * 0.98
    probs = np.column_stack([p_correct * 0.98, wrong, np.full(prompts, 0.02)])
    u = rng.random((prompts, k))
    codes = (u[:, :, None] > np.cumsum(probs, axis=1)[:, None, :]).sum(axis=2)  # 0 = correct, 4 = null
    answers = np.array(["42", "41", "24", "7", None], dtype=object)
    correct = codes == 0
    reward = rng.normal(0.0, 1.0, (prompts, k)) + 0.8 * correct
    return pl.DataFrame({
        "config": pl.Series(np.repeat(np.array([f"cfg{i % 4}" for i in range(prompts)]), k)),
        "prompt_id": pl.Series(np.repeat(np.array([f"p{i:06d}" for i in range(prompts)]), k)),
        "sample_idx": np.tile(np.arange(k, dtype=np.int32), prompts),
        "answer": pl.Series(answers[codes.ravel()], dtype=pl.String),
        "correct": correct.ravel(),
        "reward": reward.ravel().round(3),  # rounding makes ties happen
    })


def naive_prompt(answers: list, correct: list, rewards: list, ks: list[int]) -> list[float]:
    """Per-prompt Python: pass@k by math.comb, BoN@k by a loop over ranks, maj@k by the same DP called per prompt."""
    n, c = len(correct), sum(correct)
    out = [1 - math.comb(n - c, k) / math.comb(n, k) for k in ks]
    order = sorted(range(n), key=lambda i: rewards[i])
    for k in ks:
        total = 0.0
        i = 0
        while i < n:
            j = i
            while j + 1 < n and rewards[order[j + 1]] == rewards[order[i]]:
                j += 1
            mean_c = sum(correct[order[t]] for t in range(i, j + 1)) / (j - i + 1)
            total += sum(math.comb(t, k - 1) for t in range(i, j + 1)) * mean_c
            i = j + 1
        out.append(total / math.comb(n, k))
    out.extend(maj_at_k_prompt(answers, correct, ks).tolist())
    return out


def _timed(func, table: pl.DataFrame, metric: str, ks: list[int], n_boot: int) -> tuple[float, pl.DataFrame]:
    t0 = time.perf_counter()
    res = func(table, metrics=[metric], ks=ks, n_boot=n_boot, seed=0)
    return time.perf_counter() - t0, res


def _max_diff(a: pl.DataFrame, b: pl.DataFrame) -> float:
    if not a.select("config", "metric", "k").equals(b.select("config", "metric", "k")):
        return math.inf
    return max(float((a[c] - b[c]).abs().max() or 0.0) for c in ("value", "ci_low", "ci_high"))


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" (1/5/15 min) on {os.cpu_count()} CPUs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=40_000)
    parser.add_argument("--k", type=int, default=256)
    parser.add_argument("--bootstrap", type=int, default=200)
    parser.add_argument("--naive-prompts", type=int, default=100)
    parser.add_argument("--no-reference", action="store_true", help="skip today's implementation")
    args = parser.parse_args()
    ks = [2 ** i for i in range(int(math.log2(args.k)) + 1)]
    metrics = ("pass", "bon", "maj")

    t0 = time.perf_counter()
    table = validate_sample_table(synthetic(args.prompts, args.k))
    t_build = time.perf_counter() - t0
    print(f"table: {table.height:,} rows ({args.prompts:,} prompts × {args.k}) built+validated in {t_build:.1f} s")
    print(f"load average before: {_load()}")

    new, ref = {}, {}
    for metric in metrics:  # this implementation first, so that its peak memory is its own
        new[metric] = _timed(curves, table, metric, ks, args.bootstrap)
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
    children_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024 ** 2
    if not args.no_reference:
        print(f"load average between: {_load()}")
        for metric in metrics:
            ref[metric] = _timed(reference_curves, table, metric, ks, args.bootstrap)
    print(f"{'':8s}{'today':>9s}{'new':>9s}{'speed-up':>10s}   max |difference| (value, CI)")
    for metric in metrics:
        t_new, res = new[metric]
        if ref:
            t_ref, res_ref = ref[metric]
            print(f"  {metric:5s}{t_ref:8.2f}s{t_new:8.2f}s{t_ref / t_new:9.1f}×   {_max_diff(res_ref, res):.1e}"
                  f"  ({res.height} curve points)")
        else:
            print(f"  {metric:5s}{'-':>9s}{t_new:8.2f}s   ({res.height} curve points)")
    total = sum(t for t, _ in new.values())
    if ref:
        total_ref = sum(t for t, _ in ref.values())
        print(f"  total{total_ref:8.2f}s{total:8.2f}s{total_ref / total:9.1f}×   "
              "(targets: ≥ 3× and ≤ 5 s on an idle 2-core machine)")
    else:
        print(f"  total{'-':>9s}{total:8.2f}s")
    print(f"load average after: {_load()}")
    print(f"peak RSS {peak_gb:.2f} GB (largest worker {children_gb:.2f} GB; target ≤ 6 GB)"
          + (f"; {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2:.2f} GB after today's" if ref else ""))

    sub = table.filter(pl.col("prompt_id").is_in(table["prompt_id"].unique().sort()[: args.naive_prompts].implode()))
    t0 = time.perf_counter()
    for _, g in sub.group_by(["config", "prompt_id"]):
        naive_prompt(g["answer"].to_list(), [int(x) for x in g["correct"].to_list()], g["reward"].to_list(), ks)
    t_naive = (time.perf_counter() - t0) * args.prompts / args.naive_prompts
    print(f"naive per-prompt Python (measured on {args.naive_prompts} prompts, scaled to {args.prompts:,}): "
          f"{t_naive:.1f} s, without bootstrap")
    print(f"speed-up vectorized / naive: {t_naive / total:.1f}×")


if __name__ == "__main__":
    main()
