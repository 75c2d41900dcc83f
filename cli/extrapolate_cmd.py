"""``ttsplan extrapolate``: fit scaling laws on K samples per prompt, choose one, check it at K2."""
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
    print_warnings,
    user_errors,
)
from ttsplan.cli.options import ConfidenceOpt, OutFileOpt, TableOrJsonOpt
from ttsplan.features.defaults import DEFAULT_CONFIDENCE
from ttsplan.features.errors import TtsplanError, did_you_mean
from ttsplan.features.io import read_counts, read_samples
from ttsplan.fitting.scaling import ALL_LAWS, LAWS, extrapolate_maj, extrapolate_pass


class Metric(str, Enum):
    pass_ = "pass"
    maj = "maj"


class Resample(str, Enum):
    prompts = "prompts"
    both = "both"


def _law_names(laws: str) -> list[str]:
    names: list[str] = []
    for token in (s.strip() for s in laws.split(",")):
        for name in (LAWS if token == "all" else [token] if token else []):
            if name not in names:
                names.append(name)
    bad = [x for x in names if x not in ALL_LAWS]
    if bad or not names:
        raise TtsplanError(f"--laws must be 'all' or names from {', '.join(ALL_LAWS)}, got {laws!r}."
                           f"{did_you_mean(bad[0], ALL_LAWS) if bad else ''}")
    return names


def _mean(values: list) -> float | None:
    vals = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return sum(vals) / len(vals) if vals else None


def extrapolate_report(files: list[Path], fit_k: int, predict_k: int, laws: str, seed: int, n_boot: int,
                       metric: str = "pass", confidence: float = DEFAULT_CONFIDENCE, resample: str = "prompts",
                       model_error: bool | None = None) -> dict:
    """pass: :func:`ttsplan.fitting.scaling.extrapolate_pass` on the counts (sample tables are collapsed);
    maj: :func:`ttsplan.fitting.scaling.extrapolate_maj` on a sample table. ``model_error`` None: the
    metric's default (off for pass, on for maj)."""
    if model_error is None:
        model_error = metric == "maj"
    if metric == "maj":
        table = extrapolate_maj(read_samples(files), fit_k, predict_k, seed=seed, n_boot=n_boot,
                                confidence=confidence, resample=resample, model_error=model_error)
        rows = table.to_dicts()
        return {"metric": "maj", "fit_k": fit_k, "predict_k": predict_k, "seed": seed, "confidence": confidence,
                "resample": resample, "model_error": model_error, "per_config": rows,
                "mean_abs_error": _mean([r["abs_error"] for r in rows]),
                "coverage": _mean([r["covered"] for r in rows])}
    names = _law_names(laws)
    res = extrapolate_pass(read_counts(files), fit_k, predict_k, laws=names, seed=seed, n_boot=n_boot,
                           confidence=confidence, resample=resample, model_error=model_error)
    table = res.per_law
    mae = table.group_by("law").agg(pl.col("abs_error").mean()).sort("law")
    maes = {r["law"]: r["abs_error"] for r in mae.iter_rows(named=True)}
    selected = res.selected.to_dicts()
    report = {"metric": "pass", "fit_k": fit_k, "predict_k": predict_k, "seed": seed, "confidence": confidence,
              "resample": resample, "model_error": model_error,
              "per_config": table.select("config", "law", "predicted", "ci_low", "ci_high", "actual",
                                         "abs_error").to_dicts(),
              "mean_abs_error": maes,
              "selection": {ds or "(none)": {"law": s.law, "reason": s.reason, "validation_k": s.val_k,
                                             "scored_at_k": s.fit_k, "scored_configs": s.n_scored,
                                             "validation_mae": s.scores}
                            for ds, s in res.selections.items()},
              "selected": selected,
              "selected_mae": _mean([r["abs_error"] for r in selected]),
              "coverage": _mean([r["covered"] for r in selected])}
    if "aggregate_power_law" in maes and len(maes) > 1:
        others = {k: v for k, v in maes.items() if k != "aggregate_power_law"}
        best = min(others, key=others.get)
        report["best_law"] = best
        report["baseline_ratio"] = (maes["aggregate_power_law"] / others[best]) if others[best] > 0 else None
    return report


def _table_rows(report: dict) -> list[dict]:
    if report["metric"] == "maj":
        rows = [{k: r[k] for k in ("config", "predicted", "ci_low", "ci_high", "actual", "abs_error", "covered")}
                for r in report["per_config"]]
        rows.append({"config": "(mean over configs)", "abs_error": report["mean_abs_error"],
                     "covered": report["coverage"]})
        return rows
    rows = [dict(r) for r in report["per_config"]]
    rows += [{"config": "(mean over configs)", "law": law, "abs_error": v} for law, v in report["mean_abs_error"].items()]
    rows += [{k: r[k] for k in ("config", "law", "predicted", "ci_low", "ci_high", "actual", "abs_error", "covered")}
             | {"config": f"{r['config']} (selected)"} for r in report["selected"]]
    if report["selected"]:
        rows.append({"config": "(selected, mean over configs)", "law": "selected", "abs_error": report["selected_mae"],
                     "covered": report["coverage"]})
    return rows


@user_errors
def extrapolate(
    files: list[Path] = typer.Argument(..., help="Count table(s), or sample tables (collapsed to counts for pass)."),
    fit_k: int = typer.Option(..., "--fit-k", help="Samples per prompt the laws are fitted on (random subsample)."),
    predict_k: int = typer.Option(..., "--predict-k", help="k to predict at, compared with the recorded samples."),
    metric: Metric = typer.Option(Metric.pass_, "--metric", help="pass (scaling laws on counts) or maj (answer urn "
                                                                 "on a sample table)."),
    laws: str = typer.Option("all", "--laws", help="pass: candidate laws, all (beta, per_problem_power_law, "
                                                   "aggregate_power_law = the baseline), or a comma list of those, "
                                                   "'all' and pooled_beta (fitted jointly over the table's configs)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the subsample, the validation draws and the bootstrap."),
    n_boot: int = typer.Option(100, "--n-boot", help="Bootstrap replicates for the intervals (0: none)."),
    confidence: ConfidenceOpt = DEFAULT_CONFIDENCE,
    resample: Resample = typer.Option(Resample.prompts, "--resample",
                                      help="prompts: resample prompts; both: also each prompt's samples (counts "
                                           "their noise twice, wider)."),
    model_error: bool | None = typer.Option(None, "--model-error/--no-model-error",
                                            help="Widen the interval by the model's error measured inside the "
                                                 "observed range. pass (default off): the selected law fitted on "
                                                 "fit-k/10, scored at fit-k, scaled to predict-k. maj (default on): "
                                                 "the urn fitted on fit-k/2, scored at fit-k; the interval is "
                                                 "stretched until those checks are covered."),
    fmt: TableOrJsonOpt = TableOrJson.table,
    out: OutFileOpt = None,
) -> None:
    """Extrapolate pass@k (or maj@k) from a small subsample, with intervals, and measure the error.

    pass: every law is fitted on fit-k samples per prompt; one law per dataset is chosen by validation
    inside the observed range (fitted on fit-k/10, scored at fit-k; the aggregate power law unless another
    beats it by more than one standard error) and its 90% bootstrap interval is checked against the
    recorded data. maj: an answer urn fitted on fit-k samples continues each prompt to predict-k.

    Example:

        ttsplan extrapolate ../shared/data/counts/monkeys_pythia_math.parquet --fit-k 100 --predict-k 10000

        ttsplan extrapolate ../shared/data/samples/sc40_aqua.parquet --metric maj --fit-k 8 --predict-k 40 \\
            --format json
    """
    check_ranges(("--fit-k", fit_k, fit_k >= 1, "be >= 1"),
                 ("--predict-k", predict_k, predict_k >= 1, "be >= 1"),
                 ("--n-boot", n_boot, n_boot >= 0, "be >= 0 (0: no intervals)"),
                 ("--confidence", confidence, 0 < confidence < 1, "be strictly between 0 and 1"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            report = extrapolate_report(list(files), fit_k, predict_k, laws, seed, n_boot, metric.value, confidence,
                                        resample.value, model_error)
        finally:
            print_warnings(caught)
    if fmt.value == "json":
        emit(report, "json", out)
        return
    if report["metric"] == "maj":
        scales = {r["model_scale"] for r in report["per_config"] if r.get("model_scale") is not None}
        how = (f", stretched x{max(scales):.2f} by the in-range check" if report["model_error"] and scales
               else ", bootstrap only" if not report["model_error"] else "")
        title = f"maj@{predict_k} extrapolated from {fit_k} samples per prompt ({confidence:.0%} intervals{how})"
        columns = ["config", "predicted", "ci_low", "ci_high", "actual", "abs_error", "covered"]
    else:
        chosen = ", ".join(f"{ds}: {s['law']}" for ds, s in report["selection"].items())
        title = (f"pass@{predict_k} extrapolated from {fit_k} samples per prompt; law chosen by validation "
                 f"(fit on {fit_k // 10}, scored at {fit_k}): {chosen}")
        columns = ["config", "law", "predicted", "ci_low", "ci_high", "actual", "abs_error", "covered"]
    emit(_table_rows(report), "table", out, title=title, columns=columns)


def register(app: typer.Typer) -> None:
    app.command("extrapolate")(extrapolate)
