"""``ttsplan fit``: predict test-time-scaling gains from one validation pass (curve extrapolation by default,
or ridge on config features), scored leave-one-config-out beside the baselines."""
from __future__ import annotations

import math
import warnings
from enum import Enum
from pathlib import Path

import polars as pl
import typer

from ttsplan.cli.common import (
    TableOrJson,
    check_ranges,
    emit,
    err_console,
    print_warnings,
    to_json,
    user_errors,
)
from ttsplan.cli.options import TableOrJsonOpt
from ttsplan.features.errors import TtsplanError
from ttsplan.features.io import read_table, to_counts, write_atomic
from ttsplan.features.schema import validate_count_table
from ttsplan.fitting.gain import fit_report


class Method(str, Enum):
    curve = "curve"
    ridge = "ridge"


class Target(str, Enum):
    bon = "bon"
    maj = "maj"
    pass_ = "pass"


def load_for_gain(files: list[Path], target: str) -> pl.DataFrame:
    """Read the inputs; a mix of sample and count tables is allowed for ``--target pass`` (sample
    tables are collapsed to counts, so only count features remain)."""
    try:
        return read_table(files)[0]
    except TtsplanError as exc:
        if "got a mix" not in str(exc):
            raise
        if target != "pass":
            raise TtsplanError(f"target {target!r} needs sample tables only, got a mix of sample and count tables. "
                               "Pass only sample tables, or use --target pass.") from None
    parts = []
    for f in files:
        df, kind = read_table([f])
        parts.append(df if kind == "counts" else to_counts(df))
    return validate_count_table(pl.concat(parts, how="vertical_relaxed"))


RHO, TAU, MAE = "LOCO Spearman ρ", "LOCO Kendall τ", "LOCO MAE"
LRHO, LTAU, LMAE = "LODO ρ", "LODO τ", "LODO MAE"


def _ci(ci: list | None, digits: int = 3) -> str:
    return f"[{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]" if ci and ci[0] is not None else ""


def _diff(d: dict | None) -> str:
    if d is None:
        return ""
    mae = "" if d["mae_difference"] is None else f"; MAE {d['mae_difference']:+.4f} {_ci(d['mae_difference_ci'], 4)}"
    return f"ρ {d['spearman_difference']:+.3f} {_ci(d['spearman_difference_ci'])}{mae}"


def _predictor_name(report: dict) -> str:
    if report.get("method") == "curve":
        return (f"predictor: gain extrapolated to {report['n']} from each config's own {report['k_features']} samples "
                f"(curve law or success model, chosen in the training folds; {report['curve_law']} on all)")
    return f"predictor ({', '.join(report['features'])})"


def _side_by_side(report: dict) -> list[dict]:
    """Predictor and baselines: same held-out target, same configurations, same bootstrap; LOCO and LODO."""
    pct = f"{int(report['confidence'] * 100)}%"
    has_lodo = "lodo_spearman" in report
    scoring = ("law chosen without the held-out config" if report.get("method") == "curve"
               else "leave-one-config-out ridge")
    best = next(b for b in report["baselines"] if b["name"] == report["best_baseline"])
    rows = [{"method": _predictor_name(report), "scoring": scoring,
             RHO: report["loco_spearman"], TAU: report["loco_kendall"], MAE: report["loco_mae"],
             **({LRHO: report["lodo_spearman"], LTAU: report["lodo_kendall"], LMAE: report["lodo_mae"]}
                if has_lodo else {}),
             "detail": f"{pct} CI ρ {_ci(report['loco_spearman_ci'])}, MAE {_ci(report['loco_mae_ci'], 4)}; "
                       f"− best baseline ({report['best_baseline']}) LOCO {_diff(best['vs_predictor'])}"
                       + (f"; LODO vs {report['best_baseline_lodo']}: "
                          f"ρ {report['predictor_minus_best_baseline_lodo_spearman']:+.3f} "
                          f"{_ci(report['predictor_minus_best_baseline_lodo_spearman_ci'])}" if has_lodo else "")}]
    for b in report["baselines"]:
        rows.append({"method": f"baseline: {b['description']}", "scoring": b["scoring"],
                     RHO: b["loco_spearman"], TAU: b["loco_kendall"], MAE: b["loco_mae"],
                     **({LRHO: b["lodo_spearman"], LTAU: b["lodo_kendall"], LMAE: b["lodo_mae"]} if has_lodo else {}),
                     "detail": f"{pct} CI ρ {_ci(b['loco_spearman_ci'])}; predictor − this (paired): LOCO "
                               f"{_diff(b['vs_predictor'])}"
                               + (f"; LODO {_diff(b.get('vs_predictor_lodo'))}" if has_lodo else "")})
    return rows


def _rows(report: dict) -> list[dict]:
    """The predictor's details: split, verdict, leave-one-model-out, coefficients, stability, feature sets."""
    rows = [{"quantity": "configurations", "value": report["n_configs"],
             "detail": report["split"]},
            {"quantity": "predictor − best baseline ρ (LOCO)", "value": report["predictor_minus_best_baseline_spearman"],
             "detail": f"vs {report['best_baseline']}, paired bootstrap "
                       f"{_ci(report['predictor_minus_best_baseline_spearman_ci'])}; better: "
                       f"{report['better_by_loco_spearman']}"}]
    if "lodo_spearman" in report:
        rows.append({"quantity": "predictor − best baseline ρ (LODO)",
                     "value": report["predictor_minus_best_baseline_lodo_spearman"],
                     "detail": f"vs {report['best_baseline_lodo']}, paired bootstrap "
                               f"{_ci(report['predictor_minus_best_baseline_lodo_spearman_ci'])}; better: "
                               f"{report['better_by_lodo_spearman']}; {report['n_datasets']} datasets held out "
                               "one at a time"})
    else:
        rows.append({"quantity": "leave-one-dataset-out", "value": None, "detail": report["lodo_note"]})
    if "agreement_note" in report:
        rows.append({"quantity": "agreement baseline", "value": None, "detail": report["agreement_note"]})
    if report.get("method") == "curve":
        laws = ", ".join(f"{k} {v}" for k, v in report["curve_law_loco"].items())
        rows.append({"quantity": "curve law", "value": report["curve_law"],
                     "detail": f"chosen on all configurations (deployment); per LOCO fold: {laws}"})
    if "lomo_spearman" in report:
        rows.append({"quantity": "leave-one-model-out ρ", "value": report["lomo_spearman"],
                     "detail": f"predictor, CI {_ci(report['lomo_spearman_ci'])}, {report['n_models']} models"})
    for name, coef in report["coefficients"].items():
        rows.append({"quantity": f"coef {name}", "value": coef, "detail": "standardized"})
    for s in report["stability"]:
        rows.append({"quantity": f"stability {s['feature']}", "value": s["selection_frequency"],
                     "detail": f"mean coef {s['mean_coef']:+.4f}"})
    for s in report["feature_sets"]:
        rows.append({"quantity": f"LOCO ρ, {s['feature_set']} ({s['n_features']})", "value": s["loco_spearman"],
                     "detail": f"CI [{s['ci_low']:.3f}, {s['ci_high']:.3f}], MAE {s['loco_mae']:.4f}"})
    return rows


@user_errors
def fit(
    files: list[Path] = typer.Argument(..., help="Sample or count tables (parquet / jsonl / csv, or shard dirs)."),
    target: Target = typer.Option(..., "--target", help="Gain of bon@N, maj@N or pass@N over pass@1."),
    n: int = typer.Option(..., "--n", help="N: samples per prompt at deployment (the gain is measured at N)."),
    features: str = typer.Option(None, "--features",
                                 help="Ridge only (--method ridge; refused with curve): core, the default (agreement "
                                      "spread, first-correct position, length variance + entropy), all, counts, "
                                      "model (the success model's own gain prediction from the validation "
                                      "samples), or a comma-separated list."),
    k_features: int = typer.Option(None, "--k-features",
                                   help="Compute features from the first K samples per prompt (count tables: K drawn "
                                        "without replacement); the gain is measured on the other samples only, so K + N must not exceed what is recorded "
                                        "(default: half of what is recorded, min(R // 2, R − N) with R the fewest "
                                        "samples per prompt among configurations recording more than N)."),
    method: Method = typer.Option(Method.curve, "--method",
                                  help="curve (default: each configuration's own metric@j curve over j <= K "
                                       "extrapolated to N; the law, or the success model, is chosen inside the "
                                       "training folds; beats the observed-gain baseline on the shared data, "
                                       "docs/fitting.md) or ridge (on --features; ranks below the observed-gain "
                                       "baseline there: LOCO ρ 0.877 vs 0.878 on the sample tables + default data, "
                                       "0.709 vs 0.901 on the count tables)."),
    alpha: float = typer.Option(1.0, "--alpha",
                                help="Ridge penalty on standardized coefficients: the ridge predictor's, and with "
                                     "either method the LOCO-mapped baseline's and the feature-set table's."),
    n_boot: int = typer.Option(1000, "--n-boot", help="Bootstrap replicates for the intervals (>= 1)."),
    seed: int = typer.Option(0, "--seed", help="Random seed (bootstrap; the hypergeometric split of count tables)."),
    fmt: TableOrJsonOpt = TableOrJson.table,
    out: Path = typer.Option(None, "--out", help="Also write the fitted model and report as JSON here."),
) -> None:
    """Fit a gain predictor and score it leave-one-config-out and leave-one-dataset-out, beside baselines.

    Features come from the first K samples of each prompt; the target gain (metric@N − pass@1) is the
    unbiased estimate on the remaining samples, never on a sample the features saw. Configurations with
    fewer than K + N samples per prompt are skipped with a warning naming them.

    The baseline is the gain observed on the same K feature samples (pass@K, maj@K or bon@K − pass@1),
    scored against the same held-out target twice: ranked as is (ρ, τ; nothing is fitted) and mapped to
    the target's scale by the same leave-one-config-out ridge on that one feature (ρ, τ, MAE). They are
    printed beside the predictor with the paired bootstrap interval of predictor − baseline, and the
    verdict names whichever has the higher ρ. Sample tables with answers add the agreement baseline (mean
    top-answer share of the K samples, its direction learned on the training configurations). Every row
    is also scored leave-one-dataset-out (LODO) where there are at least 3 datasets.

    The predictor (--method curve, the default) extrapolates each configuration's own metric@j curve
    (j = 1..K) to N by a small law (log-linear, power, −log(1 − ·) power, saturating) or takes the
    success model's prediction, whichever ranks the training configurations' held-out gains best (chosen
    again in every fold). --method ridge fits a ridge on --features instead; it ranks below the
    observed-gain baseline on the shared data (docs/fitting.md).

    Example:

        ttsplan fit samples/sc40_addsub.parquet samples/sc40_aqua.parquet samples/game24_gpt4.parquet \\
            samples/cruxeval_codellama7b.parquet --target maj --n 10 --k-features 4 --out gain_model.json

        ttsplan fit counts/*.parquet --target pass --n 16 --k-features 4

        ttsplan fit samples/game24_gpt4.parquet counts/evalperf.parquet --target pass --n 16 --k-features 4 \\
            --method ridge --features counts
    """
    check_ranges(("--n", n, n >= 2, "be >= 2 (the gain at N = 1 is 0 by definition)"),
                 ("--n-boot", n_boot, n_boot >= 1, "be >= 1 (the intervals are bootstrap intervals; e.g. 1000)"),
                 ("--alpha", alpha, math.isfinite(alpha) and alpha >= 0, "be a finite number >= 0"),
                 ("--k-features", k_features, k_features is None or k_features >= 1, "be >= 1"))
    if features is not None and method is Method.curve:
        raise TtsplanError(f"--features must go with --method ridge, got --features {features} with the curve "
                           "predictor (--method curve, the default), which uses no feature set. Add --method ridge, "
                           "or drop --features.")
    table = load_for_gain(list(files), target.value)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            report = fit_report(table, target.value, n, features=features, k_features=k_features, alpha=alpha,
                                n_boot=n_boot, seed=seed, method=method.value)
        finally:
            print_warnings(caught)
    if out is not None:
        write_atomic(out, to_json(report) + "\n")
        err_console.print(f"wrote {out}")
    if fmt.value == "json":
        emit(report, "json")
    else:
        split = f"features from {report['k_features']} samples per prompt, target from the others"
        emit(_side_by_side(report), "table",
             title=f"{target.value}@{n} − pass@1: predictor vs baselines, leave one config (LOCO) / dataset (LODO) "
                   f"out ({split})")
        emit(_rows(report), "table", title=f"gain predictor: {target.value}@{n} − pass@1")


def register(app: typer.Typer) -> None:
    app.command("fit")(fit)
