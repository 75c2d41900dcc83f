"""Plans scored on prompts they were not made on (issue "Plans that hold on new prompts").

For every configuration: 20 random prompt splits, half for planning and half held out. The plan is
chosen from the planning half only (default objective: match majority@N_max within 0.5 pt, nested
cross-fitting inside the half for its predicted figures); it is then run on the held-out half
(fixed policies: exact estimators; adaptive ones: AdaptiveSession replayed over random sample
orders). Printed per configuration, means over splits:

  acc        realized accuracy of the plan on the held-out half
  drop_pt    majority@N_max − plan accuracy on the held-out half (points)
  samples    realized samples per prompt
  save_max   N_max / samples (savings vs majority@N_max)
  save_uni   N_uni / samples, N_uni = the smallest uniform majority N whose exact accuracy on the
             held-out half reaches the plan's realized accuracy (savings vs the best uniform N)
  cov_acc    share of splits whose 90% prediction interval (for this many new prompts) holds the
             realized accuracy; cov_smp the same for samples per prompt
  err_acc    mean |predicted − realized| accuracy (points); base_err the same for the simplest
             baseline, majority@N_max's accuracy on the planning half as a forecast of the held-out half
  err_smp    mean |predicted − realized| / realized samples per prompt

    python benchmarks/plan_holdout.py                 # sc40 (addsub + aqua) and the default data
    python benchmarks/plan_holdout.py --splits 5 FILE # any labeled SampleTable
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import polars as pl

from ttsplan.data import DEFAULT_SAMPLES
from ttsplan.features.io import read_samples
from ttsplan.features.schema import validate_sample_table
from ttsplan.planner.crossfit import Objective, PlanOptions
from ttsplan.planner.holdout import holdout, summarize

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "samples"


def show(name: str, res: pl.DataFrame) -> pl.DataFrame:
    s = summarize(res)
    print(f"{'config':52s} {'Nmax':>4s} {'acc':>6s} {'drop_pt':>7s} {'worst':>6s} {'samples':>7s} {'save_max':>8s} "
          f"{'save_uni':>8s} {'cov_acc':>7s} {'cov_smp':>7s} {'err_acc':>7s} {'base_err':>8s} {'err_smp':>7s}  most chosen")
    for r in s.iter_rows(named=True):
        print(f"{r['config'][:52]:52s} {r['n_max']:4d} {r['accuracy']:6.3f} {r['drop_pt']:7.2f} {r['worst_drop_pt']:6.2f} "
              f"{r['samples']:7.2f} {r['savings_vs_nmax']:8.2f} {(r['savings_vs_uniform'] or float('nan')):8.2f} "
              f"{r['accuracy_coverage']:7.2f} {r['samples_coverage']:7.2f} {r['accuracy_error_pt']:7.2f} "
              f"{r['baseline_error_pt']:8.2f} {r['samples_error'] * 100:6.1f}%  {r['most_chosen']}")
    m = s.select(pl.exclude("config", "most_chosen", "n_max", "splits").mean()).row(0, named=True)
    worst = float(s["drop_pt"].max())
    print(f"{name}: {s.height} configs; mean savings vs majority@N_max {m['savings_vs_nmax']:.2f}x, vs the smallest "
          f"uniform N at the same accuracy {m['savings_vs_uniform']:.2f}x; mean drop {m['drop_pt']:.2f} pt (worst "
          f"config mean {worst:.2f} pt); 90% interval coverage: accuracy {m['accuracy_coverage']:.2f}, samples "
          f"{m['samples_coverage']:.2f}; mean |pred - real| accuracy {m['accuracy_error_pt']:.2f} pt (baseline "
          f"{m['baseline_error_pt']:.2f} pt), samples {m['samples_error'] * 100:.1f}%")
    return s


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--splits", type=int, default=20)
    ap.add_argument("--orders", type=int, default=16)
    ap.add_argument("--tolerance", type=float, default=0.005)
    ap.add_argument("--margin", type=float, default=None, help="selection margin in standard errors")
    ap.add_argument("--policies", default="fixed,adaptive", help="candidate families: fixed, adaptive, two-stage")
    args = ap.parse_args()
    kw = {} if args.margin is None else {"margin": args.margin}
    objective = Objective.majority(None, args.tolerance, **kw)
    options = PlanOptions(orders=args.orders, families=tuple(args.policies.split(",")))
    print(f"load average {os.getloadavg()[0]:.2f}; objective: {objective.describe()}; margin {objective.margin} se; "
          f"{args.splits} splits, {args.orders} sample orders; candidates {args.policies}", flush=True)
    groups = {"custom": args.files} if args.files else {
        "sc40": [SHARED / "sc40_addsub.parquet", SHARED / "sc40_aqua.parquet"], "default data": [DEFAULT_SAMPLES]}
    overall = []
    for name, files in groups.items():
        t0 = time.perf_counter()
        missing = [f for f in files if not f.exists()]
        if missing:
            print(f"{name}: skipped, missing {', '.join(map(str, missing))}")
            continue
        res = pl.concat([holdout(validate_sample_table(read_samples([f])), objective, options,
                                 repeats=args.splits).with_columns((pl.lit(f"{f.stem}:") + pl.col("config"))
                                                                  .alias("config")) for f in files])
        overall.append(show(name, res))
        print(f"({time.perf_counter() - t0:.0f} s)\n", flush=True)
    if overall:
        allc = pl.concat(overall)
        print(f"over all {allc.height} configs: mean savings vs the smallest uniform N at the same accuracy "
              f"{allc['savings_vs_uniform'].mean():.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
