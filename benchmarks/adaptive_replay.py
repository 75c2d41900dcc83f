"""Sample reduction of every stopping rule vs self-consistency@all on the shared sc40 data (issue 9).

For each dataset × rule: sweep the rule's threshold grid (20 random sample orders per threshold, the
same orders at every threshold), pick the threshold with the largest mean samples ratio whose accuracy
drop is ≤ 0.5 points on **every** config of the dataset, and print per config: samples ratio (5–95 %
over orders), accuracy drop (5–95 %), accuracy std over orders. The threshold is chosen on the same
data it is scored on (in-sample), so a transfer check applies the other dataset's choice as well.

    /work/venv/bin/python benchmarks/adaptive_replay.py [--orders 20] [--seed 0] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ttsplan.features.io import read_samples  # noqa: E402
from ttsplan.planner.replay import best_threshold, replay, sweep  # noqa: E402
from ttsplan.planner.stopping import RULE_NAMES  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "samples"
DATASETS = ("sc40_addsub", "sc40_aqua")
MAX_DROP = 0.005


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rules", default=",".join(RULE_NAMES))
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if not DATA.is_dir():
        sys.exit(f"shared data not found at {DATA}")
    rules = args.rules.split(",")
    out: dict = {"orders": args.orders, "seed": args.seed, "max_drop": MAX_DROP, "datasets": {}}
    chosen: dict = {}
    t0 = time.perf_counter()
    for ds in DATASETS:
        table = read_samples(DATA / f"{ds}.parquet")
        out["datasets"][ds] = {}
        for rule in rules:
            rows = sweep(table, rule, orders=args.orders, seed=args.seed)
            best = best_threshold(rows, MAX_DROP)
            chosen[(ds, rule)] = None if best is None else best["threshold"]
            out["datasets"][ds][rule] = {"sweep": rows, "best": best}
    print(f"# adaptive replay: {args.orders} orders, seed {args.seed}, drop <= {MAX_DROP * 100:.1f} pt on every "
          f"config ({time.perf_counter() - t0:.1f}s)")
    print("dataset      rule      thr    config                          samples  ratio (5-95%)        "
          "acc     sc_acc  drop_pt (5-95%)        acc_sd_pt")
    for ds in DATASETS:
        for rule in rules:
            best = out["datasets"][ds][rule]["best"]
            if best is None:
                print(f"{ds:12} {rule:9} none: no threshold keeps the drop <= {MAX_DROP * 100:.1f} pt on every config")
                continue
            for r in best["rows"]:
                print(f"{ds:12} {rule:9} {r['threshold']:<6g} {r['config'][:31]:31} {r['mean_samples']:6.2f}  "
                      f"{r['samples_ratio']:5.2f}x ({r['samples_ratio_lo']:.2f}-{r['samples_ratio_hi']:.2f})  "
                      f"{r['accuracy']:.4f}  {r['sc_accuracy']:.4f}  {r['accuracy_drop'] * 100:+.2f} "
                      f"({r['accuracy_drop_lo'] * 100:+.2f}..{r['accuracy_drop_hi'] * 100:+.2f})  "
                      f"{r['accuracy_std'] * 100:.2f}")
            print(f"{ds:12} {rule:9} mean samples ratio over configs: {best['mean_samples_ratio']:.2f}x")
    print("\n# transfer: threshold chosen on the other dataset")
    for ds, other in ((DATASETS[0], DATASETS[1]), (DATASETS[1], DATASETS[0])):
        table = read_samples(DATA / f"{ds}.parquet")
        for rule in rules:
            t = chosen.get((other, rule))
            if t is None:
                continue
            rows = replay(table, rule, t, orders=args.orders, seed=args.seed)
            ratio = sum(r["samples_ratio"] for r in rows) / len(rows)
            worst = max(r["accuracy_drop"] for r in rows)
            print(f"{ds:12} {rule:9} thr {t:<6g} (from {other}): mean ratio {ratio:.2f}x, worst drop {worst * 100:+.2f} pt")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=str))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
