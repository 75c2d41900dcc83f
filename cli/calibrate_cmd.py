"""``ttsplan calibrate``: fit the cost model on measured serving rows, validate it, score it on other rows."""
from __future__ import annotations

import warnings
from enum import Enum
from pathlib import Path
from typing import Any

import typer

from ttsplan.cli.common import TableOrJson, emit, err_console, print_warnings, user_errors
from ttsplan.cli.options import TableOrJsonOpt
from ttsplan.fitting.calibration import Calibrator, check_overlap


class GroupBy(str, Enum):
    engine = "engine"
    model = "model"


#: table column -> metrics key (MAPE %)
_COLUMNS = {"loo": "loo_mape", "lomo": "lomo_mape", "loeo": "loeo_mape", "logo": "logo_mape",
            "phys_loo": "physics_loo_mape", "naive": "naive_mape"}


#: ... without the validation folds: the deployed calibration in sample (trees interpolate: TTFT fit ≈ 0)
_FIT_COLUMNS = {"fit": "fit_mape", "phys_fit": "physics_fit_mape", "naive": "naive_mape"}


def _mape_row(m: dict[str, Any], logo: bool, validated: bool) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for what in ("ttft", "tpot"):
        for col, key in (_COLUMNS if validated else _FIT_COLUMNS).items():
            if col == "logo" and not logo:
                continue
            row[f"{what}_{col}"] = m.get(f"{key}_{what}")
    return row


@user_errors
def calibrate(
    csv: Path = typer.Argument(..., help="Serving rows in the format of ../shared/data/serving/h100_silicon.csv."),
    evaluate: Path = typer.Option(None, "--evaluate",
                                  help="Second CSV scored with this calibration (transfer MAPE on its rows of a "
                                       "calibrated engine and of a model or GPU seen here)."),
    out: Path = typer.Option(None, "--out", help="Write the calibration JSON here (for `estimate` / `plan "
                                                 "--calibration`)."),
    group_by: GroupBy = typer.Option(GroupBy.engine, "--group-by",
                                     help="Physics per engine (shared across GPUs) or per engine and model."),
    no_loo: bool = typer.Option(False, "--no-loo", help="Skip the validation folds (leave-one-out, -model-out, "
                                                        "-engine-out, -GPU-out; faster, their figures null)."),
    include_moe: bool = typer.Option(False, "--include-moe",
                                     help="Also fit MoE catalog models (per model; reported apart under 'moe')."),
    no_correction: bool = typer.Option(False, "--no-correction",
                                       help="Physics only: no per-GPU residual stages (ridge, trees)."),
    trees: int = typer.Option(60, "--trees", min=0,
                              help="Extremely randomized trees fitted on the residual TTFT log error per (GPU, "
                                   "engine), inside every validation fold; 0 = ridge correction only."),
    fmt: TableOrJsonOpt = TableOrJson.table,
) -> None:
    """Calibrate the serving cost model on measured TTFT/TPOT, validate it out of sample, and score transfer.

    The physics (compute/memory efficiency, per-step, all-reduce and request overheads, prefill interference
    and queueing) is fitted per engine with every GPU constant taken from the GPU spec, so it prices GPUs
    without rows of their own; ridge and tree residual stages refine each (GPU, engine) on the models it was
    fitted on. Validation refits everything from a cold start in every fold: leave-one-out (loo), leave-one-
    model-out (lomo), leave-one-engine-out (loeo), leave-one-GPU-out (logo, with rows of 2+ GPUs);
    phys_loo = the shared physics alone, naive = the uncalibrated peak roofline. MAPEs are in percent,
    row-weighted. Dense models in aggregated mode are used; other rows are counted in "skipped".

    Example:

        ttsplan calibrate ../shared/data/serving/h100_silicon.csv --out calib.json \\
            --evaluate ../shared/data/serving/blackwell_silicon.csv
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

    if evaluate is not None:
        check_overlap(csv, evaluate, include_moe=include_moe)  # bad input before any fitting
    with warnings.catch_warnings(record=True) as caught, \
            Progress(TextColumn("validation"), BarColumn(), MofNCompleteColumn(), TextColumn("folds"),
                     TimeElapsedColumn(), console=err_console, transient=True, disable=no_loo) as bar:
        warnings.simplefilter("always")
        task = bar.add_task("folds", total=None)
        cal = Calibrator(loo=not no_loo, correction=not no_correction, group_by=group_by.value,
                         include_moe=include_moe, trees=trees).fit(
            csv, progress=lambda done, total: bar.update(task, completed=done, total=total))
        test = cal.evaluate(evaluate) if evaluate is not None else None
    print_warnings(caught)
    report = cal.report(test)
    if out is not None:
        cal.save(out)
        err_console.print(f"wrote {out}")
    if fmt.value == "json":
        emit(report, "json")
        return
    logo = any(m.get("logo_mape_ttft") is not None for m in cal.metrics_)
    rows = [{"gpu": m["gpu"], "engine": m["engine"], "model": m.get("model", m["models"]), "rows": m["rows"],
             **_mape_row(m, logo, not no_loo)} for m in cal.metrics_]
    if sum(not m["moe"] for m in cal.metrics_) > 1:
        rows.append({"gpu": "all", "engine": "all", "model": "(dense, row-weighted)", "rows": report["rows"],
                     **_mape_row(cal.overall(), logo, not no_loo)})
    if no_loo:
        title = ("calibration MAPE % in sample (fit: the deployed calibration — its trees interpolate, so TTFT fit "
                 "means nothing; phys_fit: shared physics alone; naive: uncalibrated roofline; drop --no-loo for "
                 "out-of-sample figures)")
    else:
        title = ("calibration MAPE % (loo / lomo / loeo" + (" / logo" if logo else "") + ": leave-one-row / model / "
                 "engine" + (" / GPU" if logo else "") + " out, cold-start refits; phys_loo: shared physics alone; "
                 "naive: uncalibrated roofline)")
    emit(rows, "table", title=title)
    phys = [{"engine": p["engine"], **({"model": p["model"]} if "model" in p else {}), "rows": p["rows"],
             "gpus": ", ".join(p["gpus"]), "e_c": p["params"]["e_c"], "e_m": p["params"]["e_m"],
             "t_fixed_ms": p["params"]["t_fixed_s"] * 1e3, "t_allreduce_us": p["params"]["t_allreduce_s"] * 1e6,
             "t_request_ms": p["params"]["t_request_s"] * 1e3, "gamma": p["params"]["prefill_interference"],
             "beta": p["params"]["prefill_queue"], "kappa": p["params"]["kv_memory_fraction"],
             "w": p["params"]["prefill_wait"]} for p in report["physics"]]
    emit(phys, "table", title="shared physics per engine (fractions of the GPU spec; '*' = pooled, for engines "
                              "never calibrated)")
    if test is not None:
        trows = [{"gpu": g["gpu"], "engine": g["engine"], "model": g["model"], "dtype": g["dtype"],
                  "rows": g["rows"], "model_seen": g["model_seen_on_engine"], "residual": g["residual"],
                  "ttft": g["test_mape_ttft"], "ttft_phys": g["test_physics_mape_ttft"],
                  "ttft_naive": g["test_naive_mape_ttft"], "tpot": g["test_mape_tpot"],
                  "tpot_phys": g["test_physics_mape_tpot"], "tpot_naive": g["test_naive_mape_tpot"]}
                 for g in test["groups"]]
        trows.append({"gpu": "all", "engine": "all", "model": "", "dtype": "", "rows": test["rows"],
                      "model_seen": None, "residual": None, "ttft": test["test_mape_ttft"],
                      "ttft_phys": test["test_physics_mape_ttft"], "ttft_naive": test["test_naive_mape_ttft"],
                      "tpot": test["test_mape_tpot"], "tpot_phys": test["test_physics_mape_tpot"],
                      "tpot_naive": test["test_naive_mape_tpot"]})
        skipped = ", ".join(f"{k}: {v}" for k, v in test["skipped"].items())
        emit(trows, "table", title=f"transfer to {evaluate.name} (MAPE %, the deployed calibration as CostModel "
                                   f"prices it" + (f"; not scored: {skipped}" if skipped else "") + ")")


def register(app: typer.Typer) -> None:
    app.command("calibrate")(calibrate)
