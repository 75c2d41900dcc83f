"""``ttsplan evaluate``: score the planner on held-out prompts against uniform Best-of-N and majority."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ttsplan.cli.common import TableOrJson, emit, user_errors
from ttsplan.features.io import read_table

HELP = """Validate the planner on real samples: split prompts into validation and test (seeded), fit on
validation, plan the test prompts from a pilot of K0 unlabeled samples each (pilot cost counted),
and score the plan with the exact estimators on the test prompts' held-out samples.

Reports per configuration the realized accuracy and cost, the cost uniform best-of-N and uniform
majority need to reach the same accuracy (savings = that / the plan's cost; null where a strategy
does not apply, e.g. best-of-N without a reward column) and the fraction of the per-prompt oracle
(best strategy and N per prompt in hindsight) reached at equal cost.

Example:

    ttsplan evaluate ../shared/data/samples/sc40_addsub.parquet --budgets 8 --format json
"""


@user_errors
def evaluate_command(
    files: Annotated[list[Path], typer.Argument(help="Labeled sample tables (.parquet/.jsonl/.csv).")],
    test_fraction: Annotated[float, typer.Option(help="Share of prompts held out for the test.")] = 0.5,
    seed: Annotated[int, typer.Option(help="Seed of the prompt split.")] = 0,
    budgets: Annotated[str | None, typer.Option(help="Comma-separated budgets in samples per prompt (the first "
                                                     "is the headline; default min(8, pool/2)).")] = None,
    pilot: Annotated[int, typer.Option(help="Pilot samples per test prompt (K0).")] = 4,
    strategies: Annotated[str | None, typer.Option(help="Comma-separated strategies to plan with.")] = None,
    format: Annotated[TableOrJson, typer.Option("--format", "-f", help="Output format.")] = TableOrJson.table,
    out: Annotated[Path | None, typer.Option(help="Write to this file (atomically) instead of stdout.")] = None,
) -> None:
    from ttsplan.planner.evaluate import evaluate, parse_budgets

    table, _ = read_table(files)
    rows = evaluate(table, budgets=parse_budgets(budgets), test_fraction=test_fraction, seed=seed, pilot=pilot,
                    strategies=strategies)
    fmt = getattr(format, "value", format)
    if fmt == "json":
        emit(rows, "json", out)
        return
    cols = ["config", "budget", "cost", "accuracy", "uniform_accuracy", "gain ± se", "savings_vs_uniform_majority",
            "savings_vs_uniform_bon", "oracle_fraction", "bins_accuracy", "test_prompts"]
    flat = []
    for r in rows:
        if "skipped" in r:
            flat.append({"config": r["config"], "budget": "skipped: " + r["skipped"][:80]})
            continue
        for b in r["budgets"]:
            if "skipped" in b:
                continue
            row = {**{c: r.get(c) for c in ("config", "test_prompts")}, **b}
            g, se = b.get("accuracy_gain_vs_uniform"), b.get("accuracy_gain_se")
            row["gain ± se"] = None if g is None else f"{g:+.4f} ± {se or 0:.4f}"
            for key, flag in (("savings_vs_uniform_majority", "majority_capped"), ("savings_vs_uniform_bon", "bon_capped")):
                if b.get(key) is not None:
                    row[key] = f"{b[key]:.2f}" + ("+ (cap)" if b.get(flag) else "")
            flat.append({c: row.get(c) for c in cols})
    emit(flat, "table", out, title="ttsplan evaluate — held-out prompts (cost in samples per prompt; "
                                   "N+ (cap): uniform never reaches the plan's accuracy within the pool)", columns=cols)


def register(app: typer.Typer) -> None:
    app.command("evaluate", help=HELP,
                short_help="Score the planner on held-out prompts against uniform baselines.")(evaluate_command)
