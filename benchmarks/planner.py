"""Benchmark: allocation for 100,000 prompts × 6 strategies × N in 1..256 (target ≤ 5 s on 2 cores).

Synthetic but realistically shaped inputs (float32, built before timing): p ~ Beta(0.7, 0.7) per prompt;
greedy = p at N = 1 only; pass@N = 1 − (1 − p)^N; majority ≈ Φ(√N (p − q)/s) with q = 0.4 (1 − p);
best-of-N, weighted-majority and best-of-majority as saturating mixtures; cost = N × the prompt's
output length (log-normal), × 1.3 for reward strategies (verifier pass). Prints the allocation time,
one full (strategy, N) argmax pass over all prompts for scale, the ratio of the two, and the peak
resident memory (the inputs alone are 2 × 614 MB).

    python benchmarks/planner.py [--prompts 100000] [--max-n 256]
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
from scipy import special

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ttsplan.planner.allocate import _prepare, _rows_eval, allocate


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def build(prompts: int, max_n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.beta(0.7, 0.7, prompts).astype(np.float32)
    length = rng.lognormal(5.0, 0.6, prompts).astype(np.float32)
    n = np.arange(1, max_n + 1, dtype=np.float32)
    acc = np.empty((prompts, 6, max_n), dtype=np.float32)
    cost = np.empty((prompts, 6, max_n), dtype=np.float32)
    step = 10_000
    for i in range(0, prompts, step):
        pp = p[i:i + step, None]
        q = 0.4 * (1 - pp)
        s = np.sqrt(np.maximum(pp + q - (pp - q) ** 2, 1e-6))
        maj = special.ndtr(np.sqrt(n)[None, :] * (pp - q) / s).astype(np.float32)
        pas = (1 - (1 - pp) ** n[None, :]).astype(np.float32)
        bon = (pp + (pas - pp) * 0.5).astype(np.float32)
        a = acc[i:i + step]
        a[:, 0, :] = np.nan
        a[:, 0, 0] = pp[:, 0]
        a[:, 1], a[:, 2] = maj, bon
        a[:, 3], a[:, 4], a[:, 5] = np.maximum(maj, bon), 0.5 * (maj + bon), pas
        ln = length[i:i + step, None]
        c = cost[i:i + step]
        c[:, 0, :] = ln
        c[:, 1] = c[:, 5] = n[None, :] * ln
        c[:, 2] = c[:, 3] = c[:, 4] = 1.3 * n[None, :] * ln
    return acc, cost


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=100_000)
    ap.add_argument("--max-n", type=int, default=256)
    ap.add_argument("--budget-n", type=float, default=16.0, help="budget: this many samples' cost per prompt")
    args = ap.parse_args(argv)
    rss0 = rss_mb()
    t0 = time.perf_counter()
    acc, cost = build(args.prompts, args.max_n)
    t_build = time.perf_counter() - t0
    rss_inputs = rss_mb()
    budget = float(args.budget_n * cost[:, 1, 0].astype(np.float64).sum())
    t0, c0 = time.perf_counter(), time.process_time()
    res = allocate(acc, cost, budget)
    t_alloc, c_alloc = time.perf_counter() - t0, time.process_time() - c0
    rss_alloc = rss_mb()
    _, d, c, scale = _prepare(acc, cost, None)
    t0 = time.perf_counter()
    _rows_eval(d, c, scale, float(res.lam), slice(0, args.prompts))
    t_pass = time.perf_counter() - t0
    counts = np.bincount(res.strategy_index, minlength=6)
    print(f"options: {args.prompts:,} prompts × 6 strategies × N in 1..{args.max_n} "
          f"= {acc.size:,} (float32 inputs {2 * acc.nbytes / 2**20:,.0f} MiB, built in {t_build:.1f} s)")
    print(f"allocate: {t_alloc:.2f} s wall, {c_alloc:.2f} s CPU (target ≤ 5 s); one full argmax pass: {t_pass:.2f} s; "
          f"allocate / pass = {t_alloc / t_pass:.1f}×")
    print(f"budget used: {res.total_cost / budget:.6f} of {budget:,.0f}; leftover {budget - res.total_cost:,.1f} "
          f"(one step ≤ {float(cost.max()):,.0f}); mean accuracy {res.mean_accuracy:.4f}; strategies chosen "
          f"{dict(zip(['greedy', 'majority', 'best-of-n', 'weighted', 'best-of-maj', 'pass@n'], counts.tolist()))}")
    print(f"peak RSS: start {rss0:,.0f} MiB, after inputs {rss_inputs:,.0f} MiB, after allocate {rss_alloc:,.0f} MiB "
          f"(allocation working set ≈ {rss_alloc - rss_inputs:,.0f} MiB)")


if __name__ == "__main__":
    main()
