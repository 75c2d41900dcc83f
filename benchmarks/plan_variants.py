"""Two planner variants measured against the shipped selection on held-out prompts (issue "Plans that
hold on new prompts"); neither is adopted, this script keeps the figures reproducible.

For every configuration and split (half the prompts plan, half are held out) it compares the policy
that :func:`ttsplan.planner.crossfit.select` picks on the planning half (the plan's deployed choice;
default objective: match majority@N_max within 0.5 pt, margin 1 standard error) with a variant:

``learned``  adds a *learned stopping table* to the candidates: per vote state (leader votes a,
             runner-up votes b, samples n) the accuracy lost by stopping now instead of at the cap,
             plus ``REGRET_FLIP_COST`` per changed answer, averaged over the planning prompts' vote
             trajectories (16 sample orders) and shrunk towards the regret table with ``--prior``
             pseudo-prompts: an empirical prior over answer-distribution shapes. Its thresholds are
             the regret rule's. The candidates' scores on the planning prompts are cross-fitted
             (5 inner folds: a prompt is scored by a table fitted without it), so the choice carries
             no in-sample optimism; the deployed table is fitted on the whole planning half.
``pooled``   shrinks each candidate's shortfall towards its mean over the table's configurations
             (empirical Bayes: between-configuration variance over the within-configuration squared
             standard error), with one split of prompt ids shared by all configurations so no
             configuration's held-out prompts enter another's estimate.

Printed per set: mean savings vs majority@N_max, mean accuracy drop and the worst configuration's mean
drop (points) on the held-out halves, base vs variant.

    python benchmarks/plan_variants.py learned [--splits 20] [--prior 4] [--in-sample]
    python benchmarks/plan_variants.py pooled
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl

from ttsplan.data import DEFAULT_SAMPLES
from ttsplan.features.io import read_samples
from ttsplan.features.schema import validate_sample_table
from ttsplan.planner.crossfit import Objective, select
from ttsplan.planner.option_grid import (
    ADAPTIVE_THRESHOLDS,
    DEFAULT_ORDERS,
    OptionGrid,
    replay_confidence_table,
    score_policies,
    trajectories,
)
from ttsplan.planner.policies import AdaptivePolicy, FixedPolicy
from ttsplan.planner.replay import prepare, sample_orders
from ttsplan.planner.stopping import REGRET_FLIP_COST, regret_table

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "samples"
SETS = {"sc40 AddSub": [SHARED / "sc40_addsub.parquet"], "sc40 AQuA": [SHARED / "sc40_aqua.parquet"],
        "default data": [DEFAULT_SAMPLES]}
THRESHOLDS = ADAPTIVE_THRESHOLDS["regret"]


def learned_table(tr, rows: np.ndarray, cap: int, prior: float) -> np.ndarray:
    """``T[a, b, n]`` = 1 − (mean accuracy lost by stopping at the state + flip cost × P(answer changes)),
    over the trajectories of prompts ``rows``, each prompt weighing 1 (its orders share it), shrunk
    towards :func:`regret_table` with ``prior`` pseudo-prompts."""
    top, sec, right, lead = tr.top[:, rows], tr.second[:, rows], tr.right[:, rows], tr.leader[:, rows]
    orders = top.shape[0]
    n = np.broadcast_to(np.arange(cap + 1), top.shape)
    idx = ((top * (cap + 1) + sec) * (cap + 1) + n).ravel()
    loss = (right[:, :, cap:].astype(float) - right).ravel()
    flip = (lead[:, :, cap:] != lead).ravel().astype(float)
    size = (cap + 1) ** 3
    count = np.bincount(idx, minlength=size) / orders
    lost = np.bincount(idx, loss, minlength=size) / orders
    flips = np.bincount(idx, flip, minlength=size) / orders
    regret = regret_table(cap).ravel()
    table = 1.0 - (lost + REGRET_FLIP_COST * flips + prior * (1.0 - regret)) / (count + prior)
    return table.reshape(cap + 1, cap + 1, cap + 1)


def replay_learned(tr, table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(thresholds, prompts) accuracy and samples of the table rule at every threshold (min N 1)."""
    runs = [replay_confidence_table(tr, lambda cap: table, t) for t in THRESHOLDS]
    return np.array([r[0] for r in runs]), np.array([r[1] for r in runs])


def with_learned(grid: OptionGrid, tr, plan: np.ndarray, prior: float, seed: int, in_sample: bool = False
                 ) -> OptionGrid:
    """``grid`` plus the learned-table candidates: fitted on ``plan``, cross-fitted on ``plan`` itself
    (``in_sample``: scored on ``plan`` by the table fitted on it, to show the optimism)."""
    cap = grid.n_max
    acc, smp = replay_learned(tr, learned_table(tr, plan, cap, prior))
    fold = np.random.default_rng([seed, 5]).permutation(np.arange(plan.size) % 5)
    for f in range(0 if in_sample else 5):
        a, s = replay_learned(tr, learned_table(tr, plan[fold != f], cap, prior))
        cols = plan[fold == f]
        acc[:, cols], smp[:, cols] = a[:, cols], s[:, cols]
    # stand-in policy objects (the learned rule is not a shipped rule); rows after the grid's are "learned"
    extra = tuple(AdaptivePolicy("horizon", t, 1, cap) for t in THRESHOLDS)
    return replace(grid, policies=grid.policies + extra, accuracy=np.vstack([grid.accuracy, acc]),
                   samples=np.vstack([grid.samples, smp]), tokens=np.vstack([grid.tokens, smp]))


def realized(grid: OptionGrid, i: int, test: np.ndarray) -> dict:
    acc = float(grid.accuracy[i, test].mean())
    return {"drop": 100 * (float(grid.majority[-1, test].mean()) - acc),
            "savings": grid.n_max / float(grid.samples[i, test].mean())}


def run_learned(files: list[Path], splits: int, prior: float, objective: Objective, in_sample: bool = False
                ) -> list[dict]:
    out = []
    for f in files:
        table = validate_sample_table(read_samples([f]))
        for c, cfg in enumerate(sorted(table["config"].unique().to_list())):
            grid = score_policies(table, cfg, orders=DEFAULT_ORDERS, seed=0)
            (cs,) = prepare(table.filter((pl.col("config") == cfg) & (pl.col("sample_idx") < grid.n_max)),
                            with_rewards=False)
            tr = trajectories(cs, sample_orders(cs, DEFAULT_ORDERS, 0, salt=7), grid.n_max)
            rng = np.random.default_rng([0, c, 17])
            for r in range(splits):
                perm = rng.permutation(len(grid.prompt_ids))
                test, plan = np.sort(perm[: perm.size // 2]), np.sort(perm[perm.size // 2:])
                out.append({"config": cfg, "variant": "base", **realized(grid, select(grid, plan, objective), test)})
                g2 = with_learned(grid, tr, plan, prior, r, in_sample)
                out.append({"config": cfg, "variant": "learned", **realized(g2, select(g2, plan, objective), test)})
    return out


def pooled_choice(grids: list[OptionGrid], plans: list[np.ndarray], objective: Objective) -> list[int]:
    """Per configuration, the cheapest candidate whose shrunk shortfall + margin × its standard error is
    within the tolerance (majority@N_max otherwise)."""
    d = np.array([(g.majority[-1, p][None] - g.accuracy[:, p]).mean(axis=1) for g, p in zip(grids, plans)])
    se = np.array([(g.majority[-1, p][None] - g.accuracy[:, p]).std(axis=1, ddof=1) / np.sqrt(p.size)
                   for g, p in zip(grids, plans)])
    mu = d.mean(axis=0)
    tau2 = np.maximum(d.var(axis=0, ddof=1) - (se ** 2).mean(axis=0), 0.0)
    weight = tau2 / (tau2 + se ** 2 + 1e-12)
    shrunk = mu + weight * (d - mu)
    se_post = np.sqrt(weight * se ** 2 + (1 - weight) ** 2 * (se ** 2).mean(axis=0) / len(grids))
    picks = []
    for g, p, dm, s in zip(grids, plans, shrunk, se_post):
        ok = dm + objective.margin * s <= objective.tolerance + 1e-12
        if not ok.any():
            picks.append(g.index(FixedPolicy("majority", g.n_max)))
            continue
        cost = g.samples[:, p].mean(axis=1)
        feasible = np.flatnonzero(ok)
        best = feasible[cost[feasible] <= cost[feasible].min() + 1e-9]
        picks.append(int(best[np.argmax(g.accuracy[best][:, p].mean(axis=1))]))
    return picks


def run_pooled(files: list[Path], splits: int, objective: Objective) -> list[dict]:
    table = validate_sample_table(read_samples(files))
    grids = [score_policies(table, c, orders=DEFAULT_ORDERS, seed=0) for c in sorted(table["config"].unique().to_list())]
    if len({g.n_max for g in grids}) != 1:
        raise SystemExit("pooled: every configuration must record the same N_max (aligned candidates)")
    ids = sorted({p for g in grids for p in g.prompt_ids})
    out = []
    for r in range(splits):
        held = set(np.random.default_rng([r, 99]).choice(ids, len(ids) // 2, replace=False).tolist())
        masks = [np.array([p in held for p in g.prompt_ids]) for g in grids]
        plans, tests = [np.flatnonzero(~m) for m in masks], [np.flatnonzero(m) for m in masks]
        for g, p, t, i in zip(grids, plans, tests, pooled_choice(grids, plans, objective)):
            out.append({"config": g.config, "variant": "base", **realized(g, select(g, p, objective), t)})
            out.append({"config": g.config, "variant": "pooled", **realized(g, i, t)})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("variant", choices=("learned", "pooled"))
    ap.add_argument("--splits", type=int, default=20)
    ap.add_argument("--prior", type=float, default=4.0, help="learned: pseudo-prompts of the regret table")
    ap.add_argument("--in-sample", action="store_true", help="learned: score the planning prompts with the table "
                    "fitted on them (shows the optimism the cross-fitting removes)")
    args = ap.parse_args()
    objective = Objective.majority()
    print(f"load average {os.getloadavg()[0]:.2f}; {args.variant}; {args.splits} splits; {objective.describe()}")
    for name, files in SETS.items():
        if not all(f.exists() for f in files):
            print(f"{name}: skipped, missing {', '.join(str(f) for f in files if not f.exists())}")
            continue
        rows = (run_learned(files, args.splits, args.prior, objective, args.in_sample) if args.variant == "learned"
                else run_pooled(files, args.splits, objective))
        per = (pl.DataFrame(rows).group_by("config", "variant").agg(pl.col("drop").mean(), pl.col("savings").mean())
               .group_by("variant").agg(pl.col("savings").mean(), pl.col("drop").mean().alias("mean_drop_pt"),
                                        pl.col("drop").max().alias("worst_config_drop_pt")).sort("variant"))
        for r in per.iter_rows(named=True):
            print(f"{name:14s} {r['variant']:8s} savings vs majority@N_max {r['savings']:.2f}x  mean drop "
                  f"{r['mean_drop_pt']:.2f} pt  worst config {r['worst_config_drop_pt']:.2f} pt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
