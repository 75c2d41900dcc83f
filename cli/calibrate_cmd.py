"""``ttsplan calibrate``: fit the cost model's efficiencies per (GPU, engine) on measured serving rows."""
from __future__ import annotations

import warnings
from enum import Enum
from pathlib import Path

import typer

from ttsplan.cli.common import TableOrJson, emit, err_console, print_warnings, user_errors


class GroupBy(str, Enum):
    engine = "engine"
    model = "model"


@user_errors
def calibrate(
    csv: Path = typer.Argument(..., help="Serving rows in the format of ../shared/data/serving/h100_silicon.csv."),
    evaluate: Path = typer.Option(None, "--evaluate", help="Second CSV scored with the first file's calibration."),
    out: Path = typer.Option(None, "--out", help="Write the calibration JSON here (for `estimate --calibration`)."),
    group_by: GroupBy = typer.Option(GroupBy.engine, "--group-by", help="One fit per (GPU, engine) or per model too."),
    no_loo: bool = typer.Option(False, "--no-loo", help="Skip leave-one-out (faster; loo_* become null)."),
    include_moe: bool = typer.Option(False, "--include-moe",
                                     help="Also fit MoE catalog models (per model; reported apart under 'moe')."),
    no_correction: bool = typer.Option(False, "--no-correction",
                                       help="Physics parameters only, no ridge or tree residual correction."),
    trees: int = typer.Option(60, "--trees", min=0,
                              help="Extremely randomized trees per target fitted on the residual log error "
                                   "(inside each leave-one-out fold); 0 = ridge correction only."),
    fmt: TableOrJson = typer.Option(TableOrJson.table, "--format", help="table or json on stdout."),
) -> None:
    """Calibrate compute/memory efficiency, per-step and all-reduce time on measured TTFT/TPOT.

    Dense models in aggregated mode are used; disaggregated and unknown-model rows are skipped (counted
    in "skipped"); MoE rows too unless --include-moe (then fitted per model and reported apart). MAPEs
    are in percent, row-weighted over the dense groups; naive_* is the uncalibrated peak roofline.

    Example:

        ttsplan calibrate ../shared/data/serving/h100_silicon.csv --out calib.json --format json
        ttsplan estimate --model Qwen3-32B --gpu H100 --tp 2 --n 8 --prompt-tokens 1024 \\
            --output-tokens 512 --calibration calib.json
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from ttsplan.fitting.calibration import Calibrator

    with warnings.catch_warnings(record=True) as caught, \
            Progress(TextColumn("leave-one-out"), BarColumn(), MofNCompleteColumn(), TextColumn("refits"),
                     TimeElapsedColumn(), console=err_console, transient=True, disable=no_loo) as bar:
        warnings.simplefilter("always")
        task = bar.add_task("loo", total=None)
        cal = Calibrator(loo=not no_loo, correction=not no_correction, group_by=group_by.value,
                         include_moe=include_moe, trees=trees).fit(
            csv, progress=lambda done, total: bar.update(task, completed=done, total=total))
        test = cal.evaluate(evaluate) if evaluate is not None else None
    print_warnings(caught)
    overall = cal.overall()
    report = {
        "loo_mape_ttft": overall.get("loo_mape_ttft"), "loo_mape_tpot": overall.get("loo_mape_tpot"),
        "naive_mape_ttft": overall["naive_mape_ttft"], "naive_mape_tpot": overall["naive_mape_tpot"],
        "physics_loo_mape_ttft": overall.get("physics_loo_mape_ttft"),
        "physics_loo_mape_tpot": overall.get("physics_loo_mape_tpot"),
        "linear_loo_mape_ttft": overall.get("linear_loo_mape_ttft"),
        "linear_loo_mape_tpot": overall.get("linear_loo_mape_tpot"),
        "fit_mape_ttft": overall["fit_mape_ttft"], "fit_mape_tpot": overall["fit_mape_tpot"],
        "rows": int(sum(m["rows"] for m in cal.metrics_ if not m["moe"])),
        "moe": cal.overall(moe=True) | {"rows": int(sum(m["rows"] for m in cal.metrics_ if m["moe"]))},
        "groups": cal.metrics_,
        "params": [{"gpu": e["gpu"], "engine": e["engine"], **({"model": e["model"]} if "model" in e else {}),
                    "estimates": e["params"], "ci95": e["intervals"]} for e in cal.to_dict()["entries"]],
        "skipped": cal.skipped_,
    }
    if test is not None:
        report.update(test_rows=test["rows"], test_mape_ttft=test["test_mape_ttft"],
                      test_mape_tpot=test["test_mape_tpot"], test_naive_mape_ttft=test["test_naive_mape_ttft"],
                      test_naive_mape_tpot=test["test_naive_mape_tpot"])
    if out is not None:
        cal.save(out)
        err_console.print(f"wrote {out}")
    if fmt.value == "json":
        emit(report, "json")
        return
    rows = []
    for m, e in zip(cal.metrics_, report["params"]):
        est = e["estimates"]
        rows.append({"gpu": m["gpu"], "engine": m["engine"], "model": m.get("model", "(all dense)"),
                     "rows": m["rows"], "loo_mape_ttft": m.get("loo_mape_ttft"),
                     "physics_loo_ttft": m.get("physics_loo_mape_ttft"), "naive_mape_ttft": m["naive_mape_ttft"],
                     "loo_mape_tpot": m.get("loo_mape_tpot"), "physics_loo_tpot": m.get("physics_loo_mape_tpot"),
                     "naive_mape_tpot": m["naive_mape_tpot"],
                     "e_c": est["e_c"], "e_m": est["e_m"], "t_fixed_ms": est["t_fixed_s"] * 1e3,
                     "t_allreduce_us": est["t_allreduce_s"] * 1e6})
    if len([m for m in cal.metrics_ if not m["moe"]]) > 1:
        rows.append({"gpu": "all", "engine": "all", "model": "(dense, row-weighted)", "rows": report["rows"],
                     "loo_mape_ttft": overall.get("loo_mape_ttft"),
                     "physics_loo_ttft": overall.get("physics_loo_mape_ttft"),
                     "naive_mape_ttft": overall["naive_mape_ttft"], "loo_mape_tpot": overall.get("loo_mape_tpot"),
                     "physics_loo_tpot": overall.get("physics_loo_mape_tpot"),
                     "naive_mape_tpot": overall["naive_mape_tpot"],
                     "e_c": None, "e_m": None, "t_fixed_ms": None, "t_allreduce_us": None})
    emit(rows, "table", title=f"calibration on {report['rows']} rows (MAPE %; loo = physics + ridge + trees, "
                              "physics_loo = step model alone, naive = uncalibrated roofline)")
    if test is not None:
        emit([{"file": str(evaluate), "rows": test["rows"], "test_mape_ttft": test["test_mape_ttft"],
                       "naive_mape_ttft": test["test_naive_mape_ttft"], "test_mape_tpot": test["test_mape_tpot"],
                       "naive_mape_tpot": test["test_naive_mape_tpot"]}], "table", title="held-out evaluation")


def register(app: typer.Typer) -> None:
    app.command("calibrate")(calibrate)
