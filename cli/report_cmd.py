"""``ttsplan report``: figures (PNG + SVG), figures.json with the numbers behind them, and index.html."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ttsplan.data import DEFAULT_SAMPLES
from ttsplan.cli.common import TableOrJson, emit, err_console, parse_int_list, user_errors
from ttsplan.features.errors import TtsplanError
from ttsplan.features.io import read_table

DEFAULT_DATA = DEFAULT_SAMPLES
DEFAULT_MODEL = "gemma-3-270m"

HELP = """Draw the report of a test-time-scaling study: accuracy-vs-N curves with intervals, accuracy vs cost with the Pareto frontier and the plan's point, the plan's per-prompt allocation, predicted vs actual gain, feature stability, and where one prompt's GPU time goes (weights vs KV vs prefill).

Writes DIR/<figure>.png and .svg, DIR/figures.json (the exact numbers behind every plot, with the ttsplan command that prints the same numbers) and DIR/index.html. With no FILE it reports the embedded default dataset (data/default_samples.parquet, Gemma 3 270M) priced for gemma-3-270m. A figure the data cannot support (e.g. feature stability with fewer than 4 configurations) is skipped with the reason.

Example:

    ttsplan report --out report/
    ttsplan report --out docs/figures --no-svg --compact
    ttsplan report runs.parquet --out report/ --model Qwen3-8B --plan plan.json
"""


@user_errors
def report_command(
    files: Annotated[list[Path] | None, typer.Argument(
        help="Labeled sample or count tables (default: the embedded data/default_samples.parquet).")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for the figures, figures.json and "
                                                          "index.html.")] = Path("report"),
    model: Annotated[str | None, typer.Option(help="Model for eFLOPs, seconds and dollars (catalog name or spec "
                                                   "file; default: the table's model if in the catalog).")] = None,
    gpu: Annotated[str, typer.Option(help="GPU for pricing.")] = "H100",
    plan: Annotated[Path | None, typer.Option(help="Use this plan JSON (from `ttsplan plan --out`) instead of "
                                                   "planning with the default budget.")] = None,
    figures: Annotated[str | None, typer.Option(help="Comma-separated subset of: curves, frontier, allocation, "
                                                     "gain, stability, cost_breakdown.")] = None,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for the curve bands.")] = 200,
    gain_target: Annotated[str | None, typer.Option(help="Gain figure target: maj, bon or pass (default: maj "
                                                         "when the data has answers).")] = None,
    gain_n: Annotated[int | None, typer.Option(help="Gain figure N (default: the largest N every "
                                                    "configuration has samples for).")] = None,
    gain_boot: Annotated[int, typer.Option(help="Bootstrap replicates for the gain model's intervals.")] = 1000,
    svg: Annotated[bool, typer.Option("--svg/--no-svg", help="Also write SVG files.")] = True,
    compact: Annotated[bool, typer.Option("--compact", help="Palette-quantized PNGs (about 3x smaller; for "
                                                            "figures committed to docs).")] = False,
    seed: Annotated[int, typer.Option(help="Seed of every bootstrap.")] = 0,
    format: Annotated[TableOrJson, typer.Option("--format", "-f", help="Summary of written files.")] =
        TableOrJson.table,
) -> None:
    from ttsplan.planner.report import FIGURES, build_report, render_report

    if not files:
        if not DEFAULT_DATA.is_file():
            raise TtsplanError(f"the embedded default dataset must exist at {DEFAULT_DATA}, got no such file. "
                               "Generate it with `python data/make_default.py`, or pass a FILE.")
        files = [DEFAULT_DATA]
        model = model or DEFAULT_MODEL
    if bootstrap < 0 or gain_boot < 1:
        raise TtsplanError(f"--bootstrap must be >= 0 and --gain-boot >= 1, got {bootstrap} and {gain_boot}.")
    if gain_n is not None:
        parse_int_list(str(gain_n), "--gain-n")
    if gain_target is not None and gain_target not in ("maj", "bon", "pass"):
        raise TtsplanError(f"--gain-target must be maj, bon or pass, got {gain_target!r}.")
    wanted = tuple(FIGURES) if figures is None else tuple(f.strip() for f in figures.split(",") if f.strip())
    table, _ = read_table(files)
    if model is None:
        from ttsplan.cli.plan_cmd import _model_from_table

        model = _model_from_table(table)
    loaded = None
    if plan is not None:
        from ttsplan.planner.plan import Plan

        loaded = Plan.from_json(plan.read_text())

    def progress(msg: str) -> None:
        err_console.print(f"[dim]{msg}[/]", markup=True, highlight=False)

    report = build_report(table, plan=loaded, model=model, gpu=gpu, files=[str(f) for f in files],
                          n_boot=bootstrap, gain_target=gain_target, gain_n=gain_n, gain_boot=gain_boot, seed=seed,
                          figures=wanted, progress=progress)
    if not report["figures"]:
        raise TtsplanError("the data must support at least one figure, got none: "
                           + "; ".join(f"{k}: {v}" for k, v in report["skipped"].items()))
    written = render_report(report, out, formats=("png", "svg") if svg else ("png",), progress=progress,
                            compact=compact)
    for name, why in report["skipped"].items():
        err_console.print(f"[yellow]skipped {name}:[/] {why}", markup=True, highlight=False)
    rows = [{"file": str(p), "bytes": p.stat().st_size} for p in written]
    emit(rows, format, title=f"ttsplan report → {out}/index.html")


def register(app: typer.Typer) -> None:
    app.command("report", help=HELP,
                short_help="Write figures, figures.json and index.html for sample tables.")(report_command)
