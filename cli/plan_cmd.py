"""``ttsplan plan``: choose strategy and N per prompt under a budget, priced on a GPU."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ttsplan.data import DEFAULT_SAMPLES
from ttsplan.cli.common import TableOrJson, emit, err_console, to_json, user_errors
from ttsplan.features.errors import TtsplanError
from ttsplan.features.io import read_table, write_atomic

DEFAULT_DATA = DEFAULT_SAMPLES
DEFAULT_MODEL = "gemma-3-270m"

HELP = """Plan test-time compute: per configuration, the best strategy and N for the whole task and a
per-prompt allocation of (strategy, N) that maximizes expected accuracy within the budget.

With no FILE it plans the embedded default dataset (data/default_samples.parquet, Gemma 3 270M),
priced for gemma-3-270m on the GPU. Without --budget the budget is the cost of majority vote with
N=8 on every prompt. Budgets: a number is a total for the task, "8/prompt" is per prompt.
Units: samples, tokens, flops, eflops, seconds (GPU-seconds), usd (the last four need --model).

Example:

    ttsplan plan
    ttsplan plan data/default_samples.parquet --budget 4/prompt --unit samples --out plan.json
    ttsplan plan runs.parquet --budget 0.002/prompt --unit usd --model Qwen3-8B --gpu H100
"""


def _model_from_table(table) -> str | None:
    """The table's model name when it is unique and in the cost catalog."""
    from ttsplan.fitting.specs import get_model_spec

    if "model" not in table.columns:
        return None
    names = [m for m in table["model"].drop_nulls().unique().to_list()]
    if len(names) != 1:
        return None
    try:
        return get_model_spec(names[0]).name
    except TtsplanError:
        return None


@user_errors
def plan_command(
    files: Annotated[list[Path] | None, typer.Argument(
        help="Labeled sample or count tables (default: the embedded data/default_samples.parquet).")] = None,
    budget: Annotated[str | None, typer.Option(help="Budget: a total (5000) or per prompt (8/prompt).")] = None,
    unit: Annotated[str, typer.Option(help="samples, tokens, flops, eflops, seconds or usd.")] = "samples",
    model: Annotated[str | None, typer.Option(help="Model to price seconds and dollars (catalog name or "
                                                   "config file).")] = None,
    gpu: Annotated[str, typer.Option(help="GPU for pricing.")] = "H100",
    strategies: Annotated[str | None, typer.Option(help="Comma-separated: greedy, majority, best-of-n, "
                                                        "weighted-majority, best-of-majority.")] = None,
    pilot: Annotated[int | None, typer.Option(help="Per-prompt mode from K0 unlabeled pilot samples per prompt "
                                                   "(their cost counts).")] = None,
    risk_averse: Annotated[bool, typer.Option("--risk-averse", help="Choose by the lower credible bound.")] = False,
    out: Annotated[Path | None, typer.Option(help="Write the plan JSON here (atomically).")] = None,
    format: Annotated[TableOrJson, typer.Option("--format", "-f", help="Output format.")] = TableOrJson.table,
) -> None:
    from ttsplan.planner.budget import Budget, normalize_unit
    from ttsplan.planner.plan import make_plan

    unit = normalize_unit(unit)
    b = Budget.parse(budget, unit) if budget is not None else None
    if not files:
        if not DEFAULT_DATA.is_file():
            raise TtsplanError(f"the embedded default dataset must exist at {DEFAULT_DATA}, got no such file. "
                               "Generate it with `python data/make_default.py`, or pass a FILE.")
        files = [DEFAULT_DATA]
        model = model or DEFAULT_MODEL
    table, _ = read_table(files)
    model = model or _model_from_table(table)
    plan = make_plan(table, b, unit=unit, strategies=strategies, model=model, gpu=gpu, pilot=pilot,
                     risk_averse=risk_averse)
    if out is not None:
        write_atomic(out, plan.to_json(indent=1) + "\n")
        err_console.print(f"wrote {out}")
    if getattr(format, "value", format) == "json":
        typer.echo(to_json(plan.to_dict()))
        return
    src = ", ".join(Path(f).name for f in files)
    emit(plan.rows("config"), "table", title=f"one strategy and N per configuration — {src}")
    emit(plan.rows("per-prompt"), "table", title="per-prompt plan (strategy and N chosen per prompt)")
    typer.echo(plan.describe())


def register(app: typer.Typer) -> None:
    app.command("plan", help=HELP,
                short_help="Choose strategy and N per configuration and per prompt under a budget.")(plan_command)
