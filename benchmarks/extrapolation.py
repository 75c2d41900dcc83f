"""Extrapolation with a chosen law and intervals, scored against the recorded data (issue 18, item 4).

pass@10,000 from 100 samples per problem, seeds 0-4 (each seed draws a new hypergeometric subsample):
on ``monkeys_pythia_math`` (where the selection rule was designed) and, out of sample, on the Pythia
checkpoint tables (configs with at least 10,000 samples on every problem). For each table: MAE of every
law and of the selected one, and how often the selected law's interval holds the actual value, over the
(config, seed) cases, split by whether the counts identify pass@N (see
``ttsplan.fitting.scaling.homogeneity_pvalue``).

maj@40 from 8 samples on the sc40 tables and maj@16 from 4 on the default data, seeds 0-4: MAE and
interval coverage of the answer urn (``extrapolate_maj``) against the exact maj@N of the recorded
samples; beside it the per-prompt success model's maj@N (``PromptSuccessModel``, fitted on a random
fit-k subset) and the noise floor (0.8 × the spread of a single realisation under the fitted urn); beside the
bootstrap interval, the same interval stretched by the in-range calibration (``model_scale``, what
``--model-error`` applies: the urn fitted on half of the fit-k samples, scored at fit-k).

    python benchmarks/extrapolation.py [--part pass|maj|all] [--n-boot 100] [--resample prompts|both]
                                       [--model-error off|on]
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ttsplan.features.io import read_counts, read_samples
from ttsplan.fitting.scaling import (
    LAWS,
    extrapolate_maj,
    extrapolate_pass,
    stretch_interval,
    subsample_samples,
)
from ttsplan.fitting.success import PromptSuccessModel

SHARED = REPO.parent / "shared" / "data"
PASS_TABLES = ("monkeys_pythia_math", "monkeys_pythia_checkpoints_math", "monkeys_pythia_checkpoints_gsm8k")
MAJ_TABLES = ((SHARED / "samples" / "sc40_addsub.parquet", 8, 40), (SHARED / "samples" / "sc40_aqua.parquet", 8, 40),
              (REPO / "data" / "default_samples.parquet", 4, 16))
SEEDS = range(5)


def pass_part(n_boot: int, resample: str, model_error: bool = True, fit_k: int = 100, predict_k: int = 10_000) -> None:
    for name in PASS_TABLES:
        path = SHARED / "counts" / f"{name}.parquet"
        if not path.exists():
            print(f"skip {name}: {path} is absent")
            continue
        counts = read_counts(path)
        full = counts.group_by("config").agg(pl.col("samples").min().alias("m")).filter(pl.col("m") >= predict_k)
        counts = counts.filter(pl.col("config").is_in(full["config"].implode()))
        print(f"\n== {name}: {full.height} configs with >= {predict_k:,} samples on every problem; "
              f"pass@{predict_k:,} from {fit_k}, resample={resample}, n_boot={n_boot}, model_error={model_error}")
        selected, per_law = [], []
        for seed in SEEDS:
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = extrapolate_pass(counts, fit_k, predict_k, laws=LAWS, seed=seed, n_boot=n_boot, resample=resample,
                                       model_error=model_error)
            sel = res.selected.with_columns(pl.lit(seed).alias("seed"))
            selected.append(sel)
            per_law.append(res.per_law.with_columns(pl.lit(seed).alias("seed")))
            maes = dict(res.per_law.group_by("law").agg(pl.col("abs_error").mean()).iter_rows())
            picks = "; ".join(f"{s.law} ({s.reason})" for s in res.selections.values())
            print(f"seed {seed}: " + ", ".join(f"{law} {maes.get(law, float('nan')):.4f}" for law in LAWS)
                  + f" | selected {sel['abs_error'].mean():.4f} over {sel.height} configs, covered "
                  f"{int(sel['covered'].sum())}/{sel['covered'].count()} | picked {picks} [{time.perf_counter() - t0:.0f}s]")
        sel = pl.concat(selected)
        law = pl.concat(per_law)
        print("MAE over (config, seed): " + ", ".join(
            f"{k} {v:.4f}" for k, v in sorted(law.group_by("law").agg(pl.col("abs_error").mean()).iter_rows()))
              + f"; selected {sel['abs_error'].mean():.4f} (fits per law differ where a law could not be fitted)")
        print(f"selected law's 90% interval holds the actual value in {int(sel['covered'].sum())} of "
              f"{sel['covered'].count()} (config, seed) cases = {sel['covered'].mean():.1%}; "
              f"mean width {(sel['ci_high'] - sel['ci_low']).mean():.3f}")
        for ident, g in sorted(sel.group_by("identified"), key=lambda t: str(t[0][0])):
            print(f"  identified={ident[0]}: {g.height} cases, coverage {g['covered'].mean():.1%}, "
                  f"MAE {g['abs_error'].mean():.4f}, mean width {(g['ci_high'] - g['ci_low']).mean():.3f}, "
                  f"solved prompts at k={fit_k}: median {g['solved_prompts'].median():.0f}")


def maj_part(n_boot: int, resample: str) -> None:
    cases = []
    for path, fit_k, n in MAJ_TABLES:
        if not path.exists():
            print(f"skip {path.name}: absent")
            continue
        table = read_samples(path)
        print(f"\n== {path.name}: maj@{n} from {fit_k} samples per prompt, resample={resample}, n_boot={n_boot}")
        for seed in SEEDS:
            t0 = time.perf_counter()
            res = extrapolate_maj(table, fit_k, n, seed=seed, n_boot=n_boot, resample=resample, model_error=False)
            success = []
            for cfg in res["config"].to_list():
                sub = table.filter(pl.col("config") == cfg)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    post = PromptSuccessModel().fit(subsample_samples(sub, fit_k, seed=seed)).posteriors_
                success.append(float(post.expected_accuracy("maj", [n]).mean()))
            cal = [stretch_interval(r["predicted"], r["ci_low"], r["ci_high"], r["model_scale"] or float("nan"))
                   for r in res.iter_rows(named=True)]
            res = res.with_columns(pl.Series("success_model", success), pl.lit(path.name).alias("file"),
                                   pl.lit(seed).alias("seed"), pl.Series("cal_low", [c[0] for c in cal]),
                                   pl.Series("cal_high", [c[1] for c in cal]))
            res = res.with_columns(((pl.col("cal_low") <= pl.col("actual")) & (pl.col("actual") <= pl.col("cal_high")))
                                   .alias("cal_covered"))
            cases.append(res)
            print(f"seed {seed}: urn MAE {res['abs_error'].mean():.4f}, covered {int(res['covered'].sum())}/"
                  f"{res.height}, calibrated (default, x{res['model_scale'][0]:.2f}) {int(res['cal_covered'].sum())}/"
                  f"{res.height}; success model MAE {(res['success_model'] - res['actual']).abs().mean():.4f} "
                  f"[{time.perf_counter() - t0:.0f}s]")
        one = pl.concat([c for c in cases if c["file"][0] == path.name])
        for (cfg,), g in sorted(one.group_by("config"), key=lambda t: str(t[0][0])):
            print(f"  {cfg[:48]:48s} actual {g['actual'][0]:.3f}  urn {g['predicted'].min():.3f}-"
                  f"{g['predicted'].max():.3f}  covered {int(g['covered'].sum())}/{g.height}  "
                  f"success model {g['success_model'].min():.3f}-{g['success_model'].max():.3f}")
    if not cases:
        return
    every = pl.concat(cases)
    print("\nsummary over (config, seed) cases:")
    for label, g in (("sc40 (maj@40 from 8)", every.filter(pl.col("file").str.starts_with("sc40"))),
                     ("default (maj@16 from 4)", every.filter(~pl.col("file").str.starts_with("sc40"))),
                     ("all", every)):
        if g.height == 0:
            continue
        sd = g["outcome_sd"].mean()
        print(f"  {label:24s} {g.height:3d} cases: urn MAE {g['abs_error'].mean():.4f} (bias "
              f"{(g['predicted'] - g['actual']).mean():+.4f}), 90% coverage {g['covered'].mean():.1%}, mean width "
              f"{(g['ci_high'] - g['ci_low']).mean():.3f}; success model MAE "
              f"{(g['success_model'] - g['actual']).abs().mean():.4f}; noise floor ~{0.8 * sd:.4f} "
              f"(outcome sd {sd:.4f})")
        print(f"  {'':24s} calibrated in range (the default; --no-model-error is the line above; scale {g['model_scale'].min():.2f}-"
              f"{g['model_scale'].max():.2f}): 90% coverage {int(g['cal_covered'].sum())}/{g.height} = "
              f"{g['cal_covered'].mean():.1%}, mean width {(g['cal_high'] - g['cal_low']).mean():.3f}; "
              f"diagnostic: point minus its in-range error, MAE "
              f"{(g['predicted'] - g['val_error'] - g['actual']).abs().mean():.4f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("pass", "maj", "all"), default="all")
    ap.add_argument("--n-boot", type=int, default=100)
    ap.add_argument("--resample", choices=("prompts", "both"), default="prompts")
    ap.add_argument("--model-error", choices=("on", "off"), default="off",
                    help="widen the intervals by the law's in-range validation error (off: bootstrap only)")
    args = ap.parse_args()
    if not SHARED.exists():
        sys.exit(f"skip: {SHARED} is absent (the shared data sits beside the checkout)")
    np.seterr(all="ignore")
    if args.part in ("pass", "all"):
        pass_part(args.n_boot, args.resample, args.model_error == "on")
    if args.part in ("maj", "all"):
        maj_part(args.n_boot, args.resample)


if __name__ == "__main__":
    main()
