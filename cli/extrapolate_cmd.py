"""``ttsplan extrapolate``: fit scaling laws on K samples per prompt, check them at K2."""
from __future__ import annotations

import warnings
from pathlib import Path

import polars as pl
import typer

from ttsplan.cli.common import TableOrJson, check_ranges, emit, print_warnings, user_errors
from ttsplan.features.errors import TtsplanError


def extrapolate_report(files: list[Path], fit_k: int, predict_k: int, laws: str, seed: int, n_boot: int) -> dict:
    """Read the table (sample tables are collapsed to counts), run :func:`ttsplan.fitting.scaling.extrapolation_table`."""
    from ttsplan.features.io import read_counts
    from ttsplan.fitting.scaling import ALL_LAWS, LAWS, extrapolation_table

    names: list[str] = []
    for token in (s.strip() for s in laws.split(",")):
        for name in (LAWS if token == "all" else [token] if token else []):
            if name not in names:
                names.append(name)
    bad = [x for x in names if x not in ALL_LAWS]
    if bad or not names:
        from ttsplan.features.errors import did_you_mean

        raise TtsplanError(f"--laws must be 'all' or names from {', '.join(ALL_LAWS)}, got {laws!r}."
                           f"{did_you_mean(bad[0], ALL_LAWS) if bad else ''}")
    counts = read_counts(files)
    table = extrapolation_table(counts, fit_k, predict_k, laws=names, seed=seed, n_boot=n_boot)
    mae = table.group_by("law").agg(pl.col("abs_error").mean()).sort("law")
    maes = {r["law"]: r["abs_error"] for r in mae.iter_rows(named=True)}
    report = {"fit_k": fit_k, "predict_k": predict_k, "seed": seed,
              "per_config": table.select("config", "law", "predicted", "ci_low", "ci_high", "actual",
                                         "abs_error").to_dicts(),
              "mean_abs_error": maes}
    if "aggregate_power_law" in maes and len(maes) > 1:
        others = {k: v for k, v in maes.items() if k != "aggregate_power_law"}
        best = min(others, key=others.get)
        report["best_law"] = best
        report["baseline_ratio"] = (maes["aggregate_power_law"] / others[best]) if others[best] > 0 else None
    return report


@user_errors
def extrapolate(
    files: list[Path] = typer.Argument(..., help="Count table(s), or sample tables (collapsed to counts)."),
    fit_k: int = typer.Option(..., "--fit-k", help="Samples per prompt the laws are fitted on (random subsample)."),
    predict_k: int = typer.Option(..., "--predict-k", help="k to predict pass@k at, compared with the full data."),
    laws: str = typer.Option("all", "--laws", help="all (beta, per_problem_power_law, aggregate_power_law = the "
                                                   "baseline), or a comma list of those, 'all' and pooled_beta "
                                                   "(fitted jointly over the table's configs)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the hypergeometric subsample and the bootstrap."),
    n_boot: int = typer.Option(100, "--n-boot", help="Bootstrap replicates for prediction intervals (0: none)."),
    fmt: TableOrJson = typer.Option(TableOrJson.table, "--format", help="table or json."),
    out: Path = typer.Option(None, "--out", help="Write the output here instead of stdout."),
) -> None:
    """Extrapolate pass@k from a small subsample and measure the error against the full data.

    Example:

        ttsplan extrapolate ../shared/data/counts/monkeys_pythia_math.parquet --fit-k 100 --predict-k 10000

        ttsplan extrapolate ../shared/data/counts/monkeys_pythia_math.parquet --fit-k 100 --predict-k 10000 \\
            --laws all,pooled_beta --format json
    """
    check_ranges(("--fit-k", fit_k, fit_k >= 1, "be >= 1"),
                 ("--predict-k", predict_k, predict_k >= 1, "be >= 1"),
                 ("--n-boot", n_boot, n_boot >= 0, "be >= 0 (0: no intervals)"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            report = extrapolate_report(list(files), fit_k, predict_k, laws, seed, n_boot)
        finally:
            print_warnings(caught)
    if fmt.value == "json":
        emit(report, "json", out)
        return
    rows = [dict(r) for r in report["per_config"]]
    rows += [{"config": "(mean over configs)", "law": law, "abs_error": v} for law, v in report["mean_abs_error"].items()]
    emit(rows, "table", out, title=f"pass@{predict_k} extrapolated from {fit_k} samples per prompt",
         columns=["config", "law", "predicted", "ci_low", "ci_high", "actual", "abs_error"])


def register(app: typer.Typer) -> None:
    app.command("extrapolate")(extrapolate)
