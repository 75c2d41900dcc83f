"""How well the per-prompt success model predicts maj@N from a few samples (issue 7, DESIGN §6).

For every shared sample-level configuration: fit :class:`ttsplan.fitting.success.PromptSuccessModel` on k
random samples per prompt (seeded), predict the mean maj@N (N = 40, or the largest k the data has), and
compare with the exact maj@N of the full data. Two predictions side by side: the plug-in value at each
prompt's posterior mean p (``quadrature_points=1``) and the posterior average (the default, 12 bins).

    python benchmarks/success_maj.py [--k 8] [--n 40] [--seeds 3]
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ttsplan.features.estimators import prompt_curves  # noqa: E402
from ttsplan.features.io import read_samples  # noqa: E402
from ttsplan.features.schema import split_configs_by_dataset  # noqa: E402
from ttsplan.fitting.scaling import subsample_samples  # noqa: E402
from ttsplan.fitting.success import PromptSuccessModel  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "samples"
FILES = ("sc40_addsub", "sc40_aqua", "game24_gpt4", "cruxeval_codellama7b")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=8, help="samples per prompt the model is fitted on")
    ap.add_argument("--n", type=int, default=40, help="N of the predicted maj@N (capped at the data's k)")
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    if not DATA.exists():
        sys.exit(f"skip: {DATA} is absent (the shared data sits beside the checkout)")
    errors: dict[int, list[float]] = {1: [], 12: []}
    print(f"{'config':52s} {'N':>3s} {'actual':>7s} {'plug-in (min-max)':>18s} {'averaged (min-max)':>19s}")
    for name in FILES:
        table = split_configs_by_dataset(read_samples(DATA / f"{name}.parquet"))
        for cfg in sorted(table["config"].unique().to_list()):
            sub = table.filter(pl.col("config") == cfg)
            n = min(args.n, int(sub.group_by("prompt_id").len()["len"].min()))
            actual = float(prompt_curves(sub, "maj", [n])["value"].mean())
            preds: dict[int, list[float]] = {1: [], 12: []}
            for seed in range(args.seeds):
                post = PromptSuccessModel().fit(subsample_samples(sub, args.k, seed=seed)).posteriors_
                for q in preds:
                    v = float(dataclasses.replace(post, quadrature_points=q).expected_accuracy("maj", [n]).mean())
                    preds[q].append(v)
                    errors[q].append(abs(v - actual))
            label = f"{name}: {cfg}"
            print(f"{label[:52]:52s} {n:3d} {actual:7.3f} {min(preds[1]):8.3f}-{max(preds[1]):.3f} "
                  f"{min(preds[12]):9.3f}-{max(preds[12]):.3f}")
    print(f"mean absolute error over configs x seeds: plug-in {np.mean(errors[1]):.4f}, "
          f"posterior-averaged {np.mean(errors[12]):.4f} (ratio {np.mean(errors[1]) / np.mean(errors[12]):.2f}x)")


if __name__ == "__main__":
    main()
