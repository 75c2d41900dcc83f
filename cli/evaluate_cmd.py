"""``ttsplan evaluate``: score the planner on held-out prompts against uniform Best-of-N and majority."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ttsplan.cli.common import TableOrJson, emit, policy_objective, throttled_progress, user_errors
from ttsplan.cli.options import OutFileOpt, PoliciesOpt, TableOrJsonOpt
from ttsplan.features.errors import TtsplanError
from ttsplan.features.io import read_blocks, read_table
from ttsplan.planner.crossfit import PlanOptions
from ttsplan.planner.evaluate import evaluate, parse_budgets
from ttsplan.planner.holdout import holdout, summarize

HELP = """Score the whole planning pipeline on held-out prompts: per configuration and per split
(--repeats), split the prompts (seeded), choose the policy from the planning prompts only (as
`ttsplan plan` does, same --target / --tolerance / --budget), then run it on the held-out prompts.

Reports the predicted accuracy (cross-validated) with its 90% prediction interval for that many new
prompts, the realized accuracy, the drop vs majority@N_max on the held-out prompts, realized samples
per prompt, savings vs majority@N_max and vs the smallest uniform majority N reaching the same
accuracy, and with --repeats R the share of splits whose intervals held the realized figures.

--budgets or --pilot evaluate the per-prompt allocation planner instead (schema-1 plans: fitted on
the validation prompts, then the test prompts planned from K0 unlabeled pilot samples each).

Example:

    ttsplan evaluate ../shared/data/samples/sc40_addsub.parquet --repeats 10
    ttsplan evaluate ../shared/data/samples/sc40_addsub.parquet --budgets 8 --format json
"""


@user_errors
def evaluate_command(
    files: Annotated[list[Path], typer.Argument(help="Labeled sample tables (.parquet/.jsonl/.csv).")],
    test_fraction: Annotated[float, typer.Option(help="Share of prompts held out for the test.")] = 0.5,
    seed: Annotated[int, typer.Option(help="Seed of the prompt split.")] = 0,
    repeats: Annotated[int, typer.Option(help="Random prompt splits per configuration (>= 1).")] = 1,
    target: Annotated[str | None, typer.Option(help="As in `ttsplan plan`: an accuracy or majority@N "
                                                    "(default majority@N_max).")] = None,
    tolerance: Annotated[float, typer.Option(help="Accuracy points below majority@N counted as matching.")] = 0.5,
    folds: Annotated[int, typer.Option(help="Cross-validation folds inside the planning prompts.")] = 5,
    orders: Annotated[int, typer.Option(help="Sample orders replayed per adaptive policy.")] = 16,
    policies: PoliciesOpt = "fixed,adaptive",
    budgets: Annotated[str | None, typer.Option(help="Per-prompt allocation planner: comma-separated budgets in "
                                                     "samples per prompt.")] = None,
    pilot: Annotated[int | None, typer.Option(help="Per-prompt allocation planner: pilot samples per test prompt "
                                                   "(K0, default 4).")] = None,
    strategies: Annotated[str | None, typer.Option(help="Per-prompt allocation planner: strategies to plan with."
                                                   )] = None,
    format: TableOrJsonOpt = TableOrJson.table,
    out: OutFileOpt = None,
) -> None:
    fmt = getattr(format, "value", format)
    legacy = budgets is not None or pilot is not None or strategies is not None
    if not legacy:
        problems = []
        if not 0 < test_fraction < 1:
            problems.append(f"test_fraction must be in (0, 1), got {test_fraction}. Try 0.5.")
        if repeats < 1:
            problems.append(f"--repeats must be >= 1, got {repeats}.")
        if folds < 2 or orders < 1:
            problems.append(f"--folds must be >= 2 and --orders >= 1, got {folds} and {orders}.")
        objective, families = policy_objective(target, tolerance, policies, problems)
        if problems:
            raise TtsplanError(" ".join(problems))
        _policy_evaluate(files, objective, repeats, test_fraction, seed, folds, orders, fmt, out, families)
        return
    table, _ = read_table(files)
    rows = evaluate(table, budgets=parse_budgets(budgets), test_fraction=test_fraction, seed=seed,
                    pilot=4 if pilot is None else pilot, strategies=strategies)
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


def _policy_evaluate(files, objective, repeats, test_fraction, seed, folds, orders, fmt, out, families) -> None:
    table = read_blocks(files)  # a table larger than memory is evaluated a block of whole configurations at a time
    res = holdout(table, objective, PlanOptions(folds=folds, orders=orders, seed=seed, families=families),
                  repeats=repeats, test_fraction=test_fraction, progress=throttled_progress("evaluate"))
    if fmt == "json":
        emit({"splits": res.to_dicts(), "summary": summarize(res).to_dicts()}, "json", out)
        return
    if repeats == 1:
        rows = [{"config": r["config"], "policy": r["policy"],
                 "predicted acc [90% PI]": f"{r['predicted_accuracy']:.3f} [{r['accuracy_low']:.3f}, "
                                           f"{r['accuracy_high']:.3f}]",
                 "realized acc": f"{r['accuracy']:.3f}", "maj@N_max": f"{r['majority_nmax']:.3f}",
                 "drop pt": f"{r['drop'] * 100:+.2f}",
                 "samples pred/real": f"{r['predicted_samples']:.2f} / {r['samples']:.2f}",
                 "saves vs N_max": f"{r['savings_vs_nmax']:.2f}x",
                 "uniform N same acc": "–" if r["uniform_n"] is None else
                 f"N={r['uniform_n']} ({r['savings_vs_uniform']:.2f}x)"} for r in res.iter_rows(named=True)]
        emit(rows, "table", out, title="ttsplan evaluate — policy chosen on the planning prompts, run on the "
                                       f"held-out {test_fraction:.0%}")
        return
    s = summarize(res)
    rows = [{"config": r["config"], "splits": r["splits"], "realized acc": f"{r['accuracy']:.3f}",
             "drop pt (worst)": f"{r['drop_pt']:+.2f} ({r['worst_drop_pt']:+.2f})", "samples": f"{r['samples']:.2f}",
             "saves vs N_max": f"{r['savings_vs_nmax']:.2f}x",
             "saves vs uniform": "–" if r["savings_vs_uniform"] is None else f"{r['savings_vs_uniform']:.2f}x",
             "PI coverage acc/samples": f"{r['accuracy_coverage']:.2f} / {r['samples_coverage']:.2f}",
             "|err| acc pt (baseline)": f"{r['accuracy_error_pt']:.2f} ({r['baseline_error_pt']:.2f})",
             "most chosen": r["most_chosen"]} for r in s.iter_rows(named=True)]
    emit(rows, "table", out, title=f"ttsplan evaluate — {repeats} random splits per configuration, means "
                                   "(baseline: majority@N_max on the planning prompts as the forecast)")


def register(app: typer.Typer) -> None:
    app.command("evaluate", help=HELP,
                short_help="Score the planning pipeline on held-out prompts (accuracy, savings, interval coverage).")(evaluate_command)
