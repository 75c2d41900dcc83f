"""Speed and memory of `ttsplan.features.estimators.curves` on a large synthetic table.

Issue 4 target: 40,000 prompts × 256 samples (10,240,000 rows; answers from a few clusters,
rewards), pass/maj/BoN curves at k = 1, 2, 4, …, 256 with 200 bootstrap resamples in ≤ 20 s on
2 cores with peak memory ≤ 6 GB. Prints the vectorized time per metric, the peak resident memory,
and the speed-up over a straightforward per-prompt Python implementation of the same estimators
(run on a subsample and scaled), all measured in this one run.

    python benchmarks/curves.py                  # full size
    python benchmarks/curves.py --prompts 2000   # quick
"""
from __future__ import annotations

import argparse
import math
import resource
import time

import numpy as np
import polars as pl

from ttsplan.features.estimators import curves, maj_at_k_prompt
from ttsplan.features.schema import validate_sample_table


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=40_000)
    parser.add_argument("--k", type=int, default=256)
    parser.add_argument("--bootstrap", type=int, default=200)
    parser.add_argument("--naive-prompts", type=int, default=100)
    args = parser.parse_args()
    ks = [2 ** i for i in range(int(math.log2(args.k)) + 1)]

    t0 = time.perf_counter()
    table = validate_sample_table(synthetic(args.prompts, args.k))
    t_build = time.perf_counter() - t0
    print(f"table: {table.height:,} rows ({args.prompts:,} prompts × {args.k}) built+validated in {t_build:.1f} s")

    timings = {}
    for metric in ("pass", "bon", "maj"):
        t0 = time.perf_counter()
        res = curves(table, metrics=[metric], ks=ks, n_boot=args.bootstrap, seed=0)
        timings[metric] = time.perf_counter() - t0
        print(f"  {metric:4s}: {timings[metric]:7.2f} s  ({res.height} curve points)")
    total = sum(timings.values())
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
    children_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024 ** 2
    print(f"vectorized total: {total:.2f} s (target ≤ 20 s); peak RSS {peak_gb:.2f} GB "
          f"(largest worker {children_gb:.2f} GB; target ≤ 6 GB)")

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
