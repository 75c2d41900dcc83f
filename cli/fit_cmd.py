"""``ttsplan fit``: predict test-time-scaling gains from one validation pass (ridge + LOCO)."""
from __future__ import annotations

import warnings
from enum import Enum
from pathlib import Path

import polars as pl
import typer

from ttsplan.cli.common import (
    TableOrJson,
    emit,
    err_console,
    print_warnings,
    to_json,
    user_errors,
)
from ttsplan.features.errors import TtsplanError
from ttsplan.features.io import read_table, to_counts, write_atomic


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
    from ttsplan.features.schema import validate_count_table

    parts = []
    for f in files:
        df, kind = read_table([f])
        parts.append(df if kind == "counts" else to_counts(df))
    return validate_count_table(pl.concat(parts, how="vertical_relaxed"))


def _rows(report: dict) -> list[dict]:
    ci = report["loco_spearman_ci"]
    rows = [{"quantity": "configurations", "value": report["n_configs"], "detail": f"target {report['target']}@{report['n']} − pass@1"},
            {"quantity": "LOCO Spearman ρ", "value": report["loco_spearman"],
             "detail": f"{int(report['confidence'] * 100)}% CI [{ci[0]:.3f}, {ci[1]:.3f}]" if ci[0] is not None else ""},
            {"quantity": "LOCO Kendall τ", "value": report["loco_kendall"], "detail": ""},
            {"quantity": "LOCO MAE", "value": report["loco_mae"],
             "detail": "CI [{:.4f}, {:.4f}]".format(*report["loco_mae_ci"]) if report["loco_mae_ci"][0] is not None else ""}]
    if "lomo_spearman" in report:
        lc = report["lomo_spearman_ci"]
        rows.append({"quantity": "leave-one-model-out ρ", "value": report["lomo_spearman"],
                     "detail": f"CI [{lc[0]:.3f}, {lc[1]:.3f}], {report['n_models']} models"})
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
    features: str = typer.Option("core", "--features",
                                 help="core (agreement spread, first-correct position, length variance + entropy), "
                                      "all, counts, model (the success model's own gain prediction from the "
                                      "validation samples), or a comma-separated list."),
    k_features: str = typer.Option(None, "--k-features",
                                   help="Compute features from the first K samples per prompt (default: N, the same "
                                        "validation budget for every configuration; 'all' for every sample)."),
    alpha: float = typer.Option(1.0, "--alpha", help="Ridge penalty on standardized coefficients."),
    n_boot: int = typer.Option(1000, "--n-boot", help="Bootstrap replicates for the intervals."),
    seed: int = typer.Option(0, "--seed", help="Random seed (bootstrap, subsampling)."),
    fmt: TableOrJson = typer.Option(TableOrJson.table, "--format", help="table or json on stdout."),
    out: Path = typer.Option(None, "--out", help="Also write the fitted model and report as JSON here."),
) -> None:
    """Fit a gain predictor and score it leave-one-config-out.

    Configurations with fewer than N samples per prompt are skipped with a warning naming them.

    Example:

        ttsplan fit samples/sc40_addsub.parquet samples/sc40_aqua.parquet samples/game24_gpt4.parquet \\
            samples/cruxeval_codellama7b.parquet --target maj --n 10 --k-features 4 --out gain_model.json

        ttsplan fit samples/game24_gpt4.parquet counts/evalperf.parquet --target pass --n 16 --features counts
    """
    from ttsplan.fitting.gain import fit_report

    table = load_for_gain(list(files), target.value)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            report = fit_report(table, target.value, n, features=features, k_features=k_features, alpha=alpha,
                                n_boot=n_boot, seed=seed)
        finally:
            print_warnings(caught)
    if out is not None:
        write_atomic(out, to_json(report) + "\n")
        err_console.print(f"wrote {out}")
    if fmt.value == "json":
        emit(report, "json")
    else:
        emit(_rows(report), "table", title=f"gain predictor: {target.value}@{n} − pass@1")


def register(app: typer.Typer) -> None:
    app.command("fit")(fit)
