"""``ttsplan report``: figures (PNG + SVG), figures.json with the numbers behind them, and index.html."""
from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ttsplan.cli.common import TableOrJson, emit, err_console, user_errors
from ttsplan.cli.options import GpuOpt
from ttsplan.cli.plan_cmd import _model_from_table
from ttsplan.data import DEFAULT_SAMPLES
from ttsplan.features.defaults import DEFAULT_GPU
from ttsplan.features.errors import TtsplanError, did_you_mean
from ttsplan.features.io import read_table
from ttsplan.fitting.specs import get_gpu_spec, get_model_spec
from ttsplan.planner.policy_plan import read_plan
from ttsplan.report import FIGURES, build_report, render_report

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
                                                          "index.html.")] = Path("ttsplan-report"),
    model: Annotated[str | None, typer.Option(help="Model for eFLOPs, seconds and dollars (catalog name or spec "
                                                   "file; default: the table's model if in the catalog).")] = None,
    gpu: GpuOpt = DEFAULT_GPU,
    calibration: Annotated[str | None, typer.Option(help="calib.json from `ttsplan calibrate --out`, or 'none' for "
                                                         "the plain roofline (default: the one shipped for the GPU, "
                                                         "H100).")] = None,
    plan: Annotated[Path | None, typer.Option(help="Use this plan JSON (from `ttsplan plan --out`) instead of "
                                                   "planning with the default budget.")] = None,
    figures: Annotated[str | None, typer.Option(help="Comma-separated subset of: curves, frontier, allocation, "
                                                     "gain, stability, cost_breakdown.")] = None,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for the curve bands (0: none).")] = 200,
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
    wanted = tuple(FIGURES) if figures is None else tuple(f.strip() for f in figures.split(",") if f.strip())
    check_report_options(files=files, out=out, model=model, gpu=gpu, calibration=calibration, plan=plan, figures=wanted,
                         known_figures=tuple(FIGURES), bootstrap=bootstrap, gain_target=gain_target,
                         gain_n=gain_n, gain_boot=gain_boot)
    if not files:
        files = [DEFAULT_DATA]
        model = model or DEFAULT_MODEL
    table, _ = read_table(files)
    if model is None:
        model = _model_from_table(table)
    loaded = None
    if plan is not None:
        loaded = read_plan(plan.read_text())

    def progress(msg: str) -> None:
        err_console.print(f"[dim]{escape(msg)}[/]", markup=True, highlight=False)

    report = build_report(table, plan=loaded, model=model, gpu=gpu, files=[str(f) for f in files],
                          n_boot=bootstrap, gain_target=gain_target, gain_n=gain_n, gain_boot=gain_boot, seed=seed,
                          figures=wanted, progress=progress, calibration=calibration)
    if not report["figures"]:
        raise TtsplanError("the data must support at least one figure, got none: "
                           + "; ".join(f"{k}: {v}" for k, v in report["skipped"].items()))
    written = _render_into(out, lambda stage: render_report(
        report, stage, formats=("png", "svg") if svg else ("png",), progress=progress, compact=compact))
    for name, why in report["skipped"].items():
        err_console.print(f"[yellow]skipped {escape(name)}:[/] {escape(why)}", markup=True, highlight=False)
    rows = [{"file": str(p), "bytes": p.stat().st_size} for p in written]
    emit(rows, format, title=f"ttsplan report → {out}/index.html")


PLOT_HINT = "Install the plotting extra with `pip install 'ttsplan[plot]'`."


def check_report_options(*, files: list[Path] | None, out: Path, model: str | None, gpu: str,
                         calibration: str | None = None,
                         plan: Path | None, figures: tuple[str, ...], known_figures: tuple[str, ...],
                         bootstrap: int, gain_target: str | None, gain_n: int | None, gain_boot: int) -> None:
    """Every check that needs no data, run before anything is read or written; one message for all problems."""
    problems: list[str] = []
    if importlib.util.find_spec("matplotlib") is None:
        problems.append(f"ttsplan report must have matplotlib installed, got no module matplotlib. {PLOT_HINT}")
    if not files and not DEFAULT_DATA.is_file():
        problems.append(f"the embedded default dataset must exist at {DEFAULT_DATA}, got no such file. "
                        "Generate it with `python data/make_default.py`, or pass a FILE.")
    problems += out_dir_problems(out)
    for what, value, lookup in (("--gpu", gpu, get_gpu_spec), ("--model", model, get_model_spec)):
        if value is None:
            continue
        try:
            lookup(value)
        except TtsplanError as exc:
            problems.append(f"{what}: {exc}")
    if calibration is not None and calibration.lower() != "none" and not Path(calibration).is_file():
        problems.append(f"--calibration must be a calib.json written by `ttsplan calibrate --out` or 'none', got "
                        f"{calibration!r}, which does not exist.")
    if plan is not None and not plan.is_file():
        problems.append(f"--plan must be a plan JSON file, got {str(plan)!r} which is not a file. Write one with "
                        "`ttsplan plan ... --out plan.json`.")
    unknown = [f for f in figures if f not in known_figures]
    if unknown or not figures:
        problems.append(f"--figures must be among (comma-separated) {', '.join(known_figures)}, got "
                        f"{', '.join(unknown) or 'none'}.{did_you_mean(unknown[0], known_figures) if unknown else ''}")
    if bootstrap < 0:
        problems.append(f"--bootstrap must be >= 0, got {bootstrap}. Use 0 for no bands.")
    if gain_boot < 1:
        problems.append(f"--gain-boot must be >= 1, got {gain_boot}.")
    if gain_n is not None and gain_n < 1:
        problems.append(f"--gain-n must be >= 1, got {gain_n}.")
    if gain_target is not None and gain_target not in ("maj", "bon", "pass"):
        problems.append(f"--gain-target must be maj, bon or pass, got {gain_target!r}.")
    if problems:
        raise TtsplanError(" ".join(problems))


def out_dir_problems(out: Path) -> list[str]:
    """Why ``out`` cannot be (or become) a directory we write into; empty when it can."""
    if out.exists() and not out.is_dir():
        return [(f"--out must be a directory (or a path to create), got {str(out)!r} which is a file. "
                 "Pick another --out or remove the file.")]
    if (out / "__init__.py").exists():
        return [(f"--out must not be a Python package, got {str(out)!r} which holds __init__.py (writing the "
                 "figures there would mix them into source code). Pick another --out, e.g. ttsplan-report/.")]
    probe = out
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        return [(f"--out must be a path under a directory, got {str(out)!r} under the file {str(probe)!r}. "
                 "Pick another --out.")]
    if probe.exists() and not os.access(probe, os.W_OK | os.X_OK):
        return [(f"--out must be writable, got {str(out)!r} where {str(probe)!r} is not writable. Pick another "
                 "--out or fix the permissions.")]
    return []


def _render_into(out: Path, render) -> list[Path]:
    """Run ``render(stage_dir)`` in a hidden directory beside ``out``, then move its files into ``out``.

    A failure while rendering leaves nothing behind: no partial ``out`` and no directory we created.
    """
    created = None  # the topmost directory this call creates, removed again on failure
    probe = out
    while not probe.exists():
        created = probe
        if probe.parent == probe:
            break
        probe = probe.parent
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name or 'report'}.", suffix=".tmp", dir=out.parent))
    try:
        staged = render(stage)
        out.mkdir(exist_ok=True)
        written = []
        for p in staged:
            target = out / Path(p).name
            os.replace(p, target)
            written.append(target)
        return written
    except BaseException:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def register(app: typer.Typer) -> None:
    app.command("report", help=HELP,
                short_help="Write figures, figures.json and index.html for sample tables.")(report_command)
