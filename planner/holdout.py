"""The whole planning pipeline scored on held-out prompts (``ttsplan evaluate``, ``benchmarks/plan_holdout.py``).

For each configuration and each of ``repeats`` random prompt splits: the policy is chosen from the
planning prompts only (with its nested cross-fitted accuracy and prediction intervals, as
:func:`~ttsplan.planner.policy_plan.make_policy_plan` does), then its realized accuracy and samples
are read off the held-out prompts (exact maj@N for fixed policies; ``AdaptiveSession`` replayed over
random sample orders for adaptive ones) beside majority@N_max and the smallest uniform majority N that
reaches the same accuracy on those held-out prompts.

>>> import polars as pl
>>> from ttsplan.features.schema import validate_sample_table
>>> rows = [{"config": "c", "prompt_id": f"p{i}", "sample_idx": j, "answer": "a" if (i * j) % 5 else "b",
...          "correct": bool((i * j) % 5)} for i in range(20) for j in range(8)]
>>> res = holdout(validate_sample_table(pl.DataFrame(rows)), options=PlanOptions(orders=2), repeats=2)
>>> res.height, sorted(res.columns)[:3]
(2, ['accuracy', 'accuracy_covered', 'accuracy_high'])
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from ttsplan.features.errors import TtsplanError
from ttsplan.features.io import TableBlocks, as_blocks
from ttsplan.planner.crossfit import (
    DEFAULT_CONFIDENCE,
    DEFAULT_FOLDS,
    Objective,
    PlanOptions,
    bootstrap_estimate,
    crossfit,
)
from ttsplan.planner.option_grid import OptionGrid, score_policies


def _split_rows(grid: OptionGrid, rng: np.random.Generator, test_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    p = len(grid.prompt_ids)
    n_test = int(round(p * test_fraction))
    if n_test < 2 or p - n_test < 2:
        raise TtsplanError(f"test_fraction {test_fraction} must leave at least 2 planning and 2 held-out prompts "
                           f"of {grid.config!r} ({p} prompts), got {p - n_test} and {n_test}. Use more prompts "
                           "or a test fraction nearer 0.5.")
    perm = rng.permutation(p)
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def score_split(grid: OptionGrid, plan_rows: np.ndarray, test_rows: np.ndarray, objective: Objective, *,
                folds: int = DEFAULT_FOLDS, confidence: float = DEFAULT_CONFIDENCE, seed: int = 0) -> dict:
    """Plan on ``plan_rows``, realize on ``test_rows``; one row of :func:`holdout`."""
    cf = crossfit(grid, objective, rows=plan_rows, folds=folds, confidence=confidence, seed=seed)
    i = grid.index(cf.policy)
    acc = float(grid.accuracy[i, test_rows].mean())
    smp = float(grid.samples[i, test_rows].mean())
    maj_test = grid.majority[:, test_rows].mean(axis=1)
    n_uni = grid.uniform_n(acc, test_rows)
    smp_est = bootstrap_estimate(grid.samples[i, plan_rows], confidence, seed=seed)
    lo, hi = cf.accuracy.prediction_interval(test_rows.size, confidence, unit_interval=True)
    slo, shi = smp_est.prediction_interval(test_rows.size, confidence)
    return {"config": grid.config, "policy": cf.policy.describe(), "n_max": grid.n_max,
            "plan_prompts": int(plan_rows.size), "test_prompts": int(test_rows.size),
            "predicted_accuracy": cf.accuracy.mean, "accuracy_low": lo, "accuracy_high": hi, "accuracy": acc,
            "accuracy_covered": bool(lo <= acc <= hi),
            "majority_nmax": float(maj_test[-1]), "drop": float(maj_test[-1]) - acc,
            "predicted_samples": smp_est.mean, "samples_low": slo, "samples_high": shi, "samples": smp,
            "samples_covered": bool(slo <= smp <= shi),
            "savings_vs_nmax": grid.n_max / smp, "uniform_n": n_uni,
            "savings_vs_uniform": None if n_uni is None else n_uni / smp,
            "baseline_predicted_accuracy": float(grid.majority[-1, plan_rows].mean())}


def holdout(table: pl.DataFrame | TableBlocks, objective: Objective | None = None,
            options: PlanOptions | None = None, *, repeats: int = 1, test_fraction: float = 0.5,
            progress: Callable[[str], None] | None = None) -> pl.DataFrame:
    """One row per (configuration, split): predicted vs realized accuracy and samples (see the module doc);
    ``options`` as in :func:`~ttsplan.planner.policy_plan.make_policy_plan` (its seed also seeds the splits).
    ``table`` may be :class:`~ttsplan.features.io.TableBlocks` (a table larger than memory; the same rows)."""
    opts = options or PlanOptions()
    blocks = table if isinstance(table, TableBlocks) else as_blocks(table)
    problems = []
    if not isinstance(opts, PlanOptions):
        problems.append(f"options must be a PlanOptions, got {type(opts).__name__}. Pass PlanOptions(orders=8).")
    if not (isinstance(repeats, int) and repeats >= 1):
        problems.append(f"repeats must be a whole number >= 1, got {repeats!r}.")
    if not (isinstance(test_fraction, float) and 0 < test_fraction < 1):
        problems.append(f"test_fraction must be in (0, 1), got {test_fraction!r}. Try 0.5.")
    if blocks.kind == "counts":
        problems.append("evaluate needs a sample table (answers per sample), got a count table.")
    if problems:
        raise TtsplanError("evaluate: " + " ".join(problems))
    if blocks.rows == 0:
        raise TtsplanError("data must have at least one prompt, got an empty table. Pass a non-empty table.")
    seed, folds, confidence = opts.seed, opts.folds, opts.confidence
    objective = objective or Objective.majority()
    rows = []
    c = 0
    for part in blocks:
        parts = {key[0]: sub for key, sub in part.partition_by("config", as_dict=True).items()}
        total = max(len(blocks.configs), c + len(parts))
        for config in sorted(parts):
            if progress:
                progress(f"[{c + 1}/{total}] {config}")
            grid = score_policies(parts[config], config, orders=opts.orders, seed=seed,
                                  reference_n=objective.reference_n, families=opts.families)
            rng = np.random.default_rng([seed, c, 17])
            for r in range(repeats):
                plan_rows, test_rows = _split_rows(grid, rng, test_fraction)
                rows.append({"split": r, **score_split(grid, plan_rows, test_rows, objective, folds=folds,
                                                       confidence=confidence, seed=seed + r)})
            c += 1
    return pl.DataFrame(rows)


def summarize(results: pl.DataFrame) -> pl.DataFrame:
    """Per configuration, means over splits (coverage = share of splits inside the interval)."""
    return (results.group_by("config").agg(
        pl.len().alias("splits"), pl.col("n_max").first(), pl.col("accuracy").mean(),
        pl.col("predicted_accuracy").mean(), (pl.col("drop") * 100).mean().alias("drop_pt"),
        (pl.col("drop") * 100).max().alias("worst_drop_pt"), pl.col("samples").mean(),
        pl.col("savings_vs_nmax").mean(), pl.col("savings_vs_uniform").mean(),
        pl.col("accuracy_covered").mean().alias("accuracy_coverage"),
        pl.col("samples_covered").mean().alias("samples_coverage"),
        ((pl.col("predicted_accuracy") - pl.col("accuracy")).abs() * 100).mean().alias("accuracy_error_pt"),
        ((pl.col("baseline_predicted_accuracy") - pl.col("majority_nmax")).abs() * 100).mean()
        .alias("baseline_error_pt"),
        ((pl.col("predicted_samples") - pl.col("samples")).abs() / pl.col("samples")).mean()
        .alias("samples_error"),
        pl.col("policy").mode().first().alias("most_chosen"))
        .sort("config"))


__all__ = ["holdout", "score_split", "summarize"]
