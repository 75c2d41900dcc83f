"""``ttsplan plan``: the cheapest policy per configuration for new prompts, cross-validated; per-prompt plans."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from ttsplan.cli.common import (
    TableOrJson,
    check_tolerance,
    emit,
    err_console,
    policy_objective,
    throttled_progress,
    to_json,
    user_errors,
)
from ttsplan.cli.options import GpuOpt, PoliciesOpt, TableOrJsonOpt
from ttsplan.data import DEFAULT_SAMPLES
from ttsplan.features.defaults import DEFAULT_GPU
from ttsplan.features.errors import TtsplanError
from ttsplan.features.io import read_blocks, read_table, write_atomic
from ttsplan.features.tasks import read_prompts
from ttsplan.fitting.specs import get_gpu_spec, get_model_spec
from ttsplan.planner.budget import PRICED_UNITS, Budget, normalize_unit
from ttsplan.planner.crossfit import Objective, PlanOptions
from ttsplan.planner.pilot_plan import make_pilot_plan
from ttsplan.planner.plan import make_plan
from ttsplan.planner.policy_plan import make_policy_plan
from ttsplan.planner.pricing import pricing_or_none

DEFAULT_DATA = DEFAULT_SAMPLES
DEFAULT_MODEL = "gemma-3-270m"

HELP = """Plan test-time compute for the task's future prompts: per configuration, the cheapest policy
(majority vote with a fixed N, or adaptive stopping that samples each prompt until its vote is settled)
that reaches the accuracy you want, with figures estimated on prompts the choice was not made on.

With no options it answers: how much cheaper than majority vote with every recorded sample
(majority@N_max) can I reach the same accuracy (within --tolerance points)? Accuracy is
cross-validated over --folds folds of prompts, the choice of policy re-made inside each fold; adaptive
policies are replayed through the runtime session over --orders random sample orders. No N beyond
the samples recorded per prompt is planned.

With no FILE it plans the embedded default dataset (data/default_samples.parquet, Gemma 3 270M),
priced for gemma-3-270m on --gpu (on H100 with the calibration that ships with the package, elsewhere
with the uncalibrated roofline; the note names which).

Objectives: --target 0.9 (least cost with accuracy >= 0.9), --target majority@8 (match uniform
majority with N=8 within --tolerance), --budget 6/prompt (most accuracy within 6 samples per prompt;
--unit tokens for output tokens, or flops, eflops, seconds, usd priced for --model on --gpu: each
policy is priced per prompt at its expected samples). --per-prompt, --pilot, --strategies and
--risk-averse make the per-prompt allocation plan of schema 1, whose figures are fitted and scored
on the same labeled prompts.

Example:

    ttsplan plan
    ttsplan plan ../shared/data/samples/sc40_addsub.parquet --target majority@40 --tolerance 0.5 --out plan.json
    ttsplan plan runs.parquet --target 0.85 --model Qwen3-8B --gpu H100
    ttsplan plan runs.parquet --budget 6/prompt
    ttsplan plan --budget 0.0000007/prompt --unit usd
"""



def _model_from_table(table) -> str | None:
    """The table's model name when it is unique and in the cost catalog."""
    if "model" not in table.columns:
        return None
    return _catalog_model(table["model"].drop_nulls().unique().to_list())


def _catalog_model(names: list[str]) -> str | None:
    if len(names) != 1:
        return None
    try:
        return get_model_spec(names[0]).name
    except TtsplanError:
        return None


@user_errors
def plan_command(
    files: Annotated[list[Path] | None, typer.Argument(
        help="Labeled sample tables (default: the embedded data/default_samples.parquet).")] = None,
    target: Annotated[str | None, typer.Option(
        help="Accuracy to reach: a number in [0, 1], or majority@N (default: majority@N_max).")] = None,
    tolerance: Annotated[float, typer.Option(
        help="Accuracy points below majority@N still counted as matching it (0.5 = half a point).")] = 0.5,
    budget: Annotated[str | None, typer.Option(help="Instead of --target: most accuracy within a budget, a total "
                                                    "(5000) or per prompt (8/prompt).")] = None,
    unit: Annotated[str, typer.Option(help="Cost unit of --budget and of 'least cost': samples, tokens (output "
                                           "tokens), or flops, eflops, seconds, usd (priced for --model on --gpu)."
                                      )] = "samples",
    model: Annotated[str | None, typer.Option(help="Model to price seconds and dollars (catalog name or "
                                                   "config file).")] = None,
    gpu: GpuOpt = DEFAULT_GPU,
    calibration: Annotated[str | None, typer.Option(help="calib.json from `ttsplan calibrate --out`, or 'none' "
                                                         "(default: the shipped H100 calibration on H100, else "
                                                         "the uncalibrated roofline).")] = None,
    folds: Annotated[int, typer.Option(help="Folds of prompts for cross-validation (>= 2).")] = 5,
    orders: Annotated[int, typer.Option(help="Random sample orders replayed per adaptive policy (>= 1).")] = 16,
    policies: PoliciesOpt = "fixed,adaptive",
    seed: Annotated[int, typer.Option(help="Seed of the folds, sample orders and bootstrap.")] = 0,
    strategies: Annotated[str | None, typer.Option(help="Per-prompt allocation planner: comma-separated greedy, "
                                                        "majority, best-of-n, weighted-majority, best-of-majority."
                                                   )] = None,
    pilot: Annotated[int | None, typer.Option(help="Per-prompt allocation planner from K0 pilot samples per "
                                                   "prompt (their cost counts).")] = None,
    risk_averse: Annotated[bool, typer.Option("--risk-averse", help="Per-prompt allocation planner: choose by "
                                                                     "the lower credible bound.")] = False,
    pilot_file: Annotated[Path | None, typer.Option(help="Unlabeled pilot SampleTable of NEW prompts (K0 samples "
                                                         "each, correct null or absent): per-prompt N for them, "
                                                         "fitted on the labeled FILE.")] = None,
    prompts: Annotated[Path | None, typer.Option(help="With --pilot-file: the prompts JSONL the pilot was sampled "
                                                      "from; the plan records each prompt's text hash.")] = None,
    extrapolate: Annotated[bool, typer.Option("--extrapolate", help="Per-prompt allocation planner: allow N above "
                                                                    "the samples recorded (model-predicted, noted)."
                                              )] = False,
    per_prompt: Annotated[bool, typer.Option("--per-prompt", help="The per-prompt allocation planner (plan schema "
                                                                  "1; in-sample figures).")] = False,
    out: Annotated[Path | None, typer.Option(help="Write the plan JSON here (atomically).")] = None,
    format: TableOrJsonOpt = TableOrJson.table,
) -> None:
    unit = normalize_unit(unit)
    legacy = per_prompt or extrapolate or pilot_file is not None or pilot is not None or strategies is not None or risk_averse
    problems = []
    if legacy:  # policy plans: checked by policy_objective
        check_tolerance(tolerance, problems)
    if folds < 2:
        problems.append(f"--folds must be >= 2, got {folds}. Try 5.")
    if orders < 1:
        problems.append(f"--orders must be >= 1, got {orders}. Try 16.")
    if budget is not None and target is not None:
        problems.append("--budget and --target must not be combined, got both. Pass one objective.")
    if legacy and target is not None:
        problems.append("--target must not be combined with --per-prompt, --pilot, --strategies or --risk-averse, got "
                        "both. Drop one.")
    if out is not None and out.exists() and out.is_dir():
        problems.append(f"--out must be a file path, got the directory {out}. Name a file, e.g. {out / 'plan.json'}.")
    b = objective = None
    try:
        b = Budget.parse(budget, unit) if budget is not None else None
    except TtsplanError as exc:
        problems.append(str(exc))
    families: tuple[str, ...] = ()
    if not legacy:
        objective, families = policy_objective(target, tolerance, policies, problems, unit)
    if calibration is not None and calibration.lower() != "none" and not Path(calibration).is_file():
        problems.append(f"--calibration must be a calib.json written by `ttsplan calibrate --out` or 'none', got "
                        f"{calibration!r}, which does not exist.")
    if pilot_file is not None and not pilot_file.exists():
        problems.append(f"--pilot-file must be an existing SampleTable, got {pilot_file}, which does not exist.")
    if pilot_file is not None and pilot is not None:
        problems.append("--pilot-file and --pilot must not be combined, got both. --pilot-file's K0 is its samples "
                        "per prompt.")
    if prompts is not None and pilot_file is None:
        problems.append("--prompts must go with --pilot-file, got it alone.")
    elif prompts is not None and not prompts.is_file():
        problems.append(f"--prompts must be an existing JSONL file, got {prompts}.")
    if pilot is not None and pilot < 1:
        problems.append(f"--pilot must be >= 1 pilot samples per prompt, got {pilot}. Try 4, or leave it out.")
    try:
        get_gpu_spec(gpu)
    except TtsplanError as exc:
        problems.append(str(exc))
    if problems:
        raise TtsplanError(" ".join(problems))
    if not files:
        if not DEFAULT_DATA.is_file():
            raise TtsplanError(f"the embedded default dataset must exist at {DEFAULT_DATA}, got no such file. "
                               "Generate it with `python data/make_default.py`, or pass a FILE.")
        files = [DEFAULT_DATA]
        model = model or DEFAULT_MODEL
    src = ", ".join(Path(f).name for f in files)
    if pilot_file is not None or legacy:
        table, _ = read_table(files)
        model = model or _model_from_table(table)
        if pilot_file is not None:
            _pilot_file_plan(table, pilot_file, prompts, b, strategies, out, format)
        else:
            _legacy_plan(table, b, unit, strategies, model, gpu, pilot, risk_averse, out, format, src, calibration,
                         extrapolate)
        return
    table = read_blocks(files)  # a table larger than memory is planned a block of whole configurations at a time
    model = model or _catalog_model(table.models)
    if unit in PRICED_UNITS and model is None:
        raise TtsplanError(f"--unit {unit} must be priced for a model, got none (the table names no model). Pass "
                           "--model, e.g. --model gemma-3-270m, or use --unit samples / tokens.")
    if b is not None:
        objective = Objective.within_budget(b.per_prompt_amount(max(table.prompts_per_config.values())), unit)
    plan = make_policy_plan(table, objective, PlanOptions(folds=folds, orders=orders, seed=seed, families=families),
                            pricing=pricing_or_none(model, gpu, calibration), progress=throttled_progress("planning"))
    if _write_or_json(plan, out, format):
        return
    emit(plan.rows(), "table", title=f"one policy per configuration for new prompts — {src}")
    typer.echo(plan.describe())


def _write_or_json(plan, out: Path | None, format) -> bool:
    """Write the plan to ``out`` (atomically) if given; print its JSON and return True for --format json."""
    if out is not None:
        write_atomic(out, plan.to_json(indent=1) + "\n")
        err_console.print(f"wrote {out}")
    if getattr(format, "value", format) == "json":
        typer.echo(to_json(plan.to_dict()))
        return True
    return False


def _pilot_file_plan(table, pilot_file, prompts, b, strategies, out, format) -> None:
    pilot_table, _ = read_table([pilot_file])
    plan = make_pilot_plan(table, pilot_table, b, strategies=strategies,
                           prompts=None if prompts is None else read_prompts(prompts))
    if _write_or_json(plan, out, format):
        return
    emit(plan.rows("per-prompt"), "table", title=f"per-prompt plan for the pilot's new prompts — {pilot_file.name}")
    typer.echo(plan.describe())


def _legacy_plan(table, b, unit, strategies, model, gpu, pilot, risk_averse, out, format, src,
                 calibration, extrapolate) -> None:
    plan = make_plan(table, b, unit=unit, strategies=strategies, model=model, gpu=gpu, pilot=pilot,
                     risk_averse=risk_averse, calibration=calibration, extrapolate=extrapolate)
    if _write_or_json(plan, out, format):
        return
    emit(plan.rows("config"), "table", title=f"one strategy and N per configuration — {src}")
    emit(plan.rows("per-prompt"), "table", title="per-prompt plan (strategy and N chosen per prompt)")
    typer.echo(plan.describe())
    typer.echo("note: per-prompt allocation plan (schema 1): its accuracies are fitted and scored on the same "
               "labeled prompts; the default `ttsplan plan` (policies, cross-validated) estimates new prompts.")


def register(app: typer.Typer) -> None:
    app.command("plan", help=HELP,
                short_help="Choose the cheapest policy per configuration for new prompts (cross-validated)."
                )(plan_command)
