"""``ttsplan replay``: run a stopping rule over recorded samples in many random orders."""
from __future__ import annotations

from pathlib import Path

import typer

from ttsplan.cli.common import TableOrJson, check_ranges, emit, user_errors
from ttsplan.cli.options import OutFileOpt, TableOrJsonOpt
from ttsplan.features.errors import TtsplanError
from ttsplan.features.io import read_samples
from ttsplan.planner.replay import COLUMNS, replay, sweep
from ttsplan.planner.stopping import RULE_NAMES, make_rule


@user_errors
def replay_cmd(
    file: Path = typer.Argument(..., help="SampleTable (.parquet/.jsonl/.csv or shard dir) with answer + correct."),
    rule: str = typer.Option(..., "--rule", "-r", help=f"Stopping rule: {', '.join(RULE_NAMES)}."),
    threshold: float = typer.Option(None, "--threshold", "-t",
                                    help="The rule's knob (beta/horizon/weighted/pilot: confidence in (0.5, 1); "
                                         "esc: window size; budget: mean samples per prompt). Default: the rule's."),
    max_n: int = typer.Option(None, "--max-n", help="Most samples per prompt (default: all recorded)."),
    min_n: int = typer.Option(None, "--min-n", help="Fewest samples per prompt (default: the rule's)."),
    orders: int = typer.Option(20, "--orders", help="Random sample orders per config."),
    seed: int = typer.Option(0, "--seed", help="Seed of the sample orders."),
    do_sweep: bool = typer.Option(False, "--sweep", help="Trace accuracy vs mean samples over the rule's threshold grid."),
    thresholds: str = typer.Option(None, "--thresholds", help="Comma-separated grid for --sweep (default: the rule's)."),
    fmt: TableOrJsonOpt = TableOrJson.table,
    out: OutFileOpt = None,
) -> None:
    """Replay a stopping rule over recorded samples vs fixed self-consistency on all of them.

    JSON: a list with one object per config (and threshold, with --sweep): config, rule, threshold,
    mean_samples, sc_samples, samples_ratio (= sc_samples / mean_samples), accuracy, sc_accuracy,
    accuracy_drop (fractions), and the spread over orders (*_std, *_lo/*_hi = 5-95 %).

    Example:

        ttsplan replay samples/sc40_addsub.parquet --rule beta --threshold 0.9 --orders 20 --seed 0

        ttsplan replay samples/sc40_aqua.parquet --rule esc --sweep --format json
    """
    check_ranges(("--orders", orders, orders >= 1, "be >= 1"),
                 ("--max-n", max_n, max_n is None or max_n >= 1, "be >= 1"),
                 ("--min-n", min_n, min_n is None or min_n >= 1, "be >= 1"),
                 ("--min-n", min_n, min_n is None or max_n is None or min_n <= max_n, f"be <= --max-n ({max_n})"))
    if thresholds is not None and not do_sweep:
        raise TtsplanError("--thresholds must come with --sweep, got it alone. Add --sweep or use --threshold.")
    grid = None
    if thresholds is not None:
        try:
            grid = [float(x) for x in thresholds.split(",") if x.strip()]
        except ValueError:
            raise TtsplanError(f"--thresholds must be comma-separated numbers like 0.8,0.9,0.95, got {thresholds!r}.") from None
    make_rule(rule)  # name checked before reading the file
    table = read_samples(file)
    if do_sweep:
        rows = sweep(table, rule, grid or (None if threshold is None else [threshold]),
                     max_n=max_n, min_n=min_n, orders=orders, seed=seed)
    else:
        rows = replay(table, rule, threshold, max_n=max_n, min_n=min_n, orders=orders, seed=seed)
    title = f"replay {rule}: {orders} orders, seed {seed}"
    emit(rows, fmt, out, title, columns=COLUMNS if getattr(fmt, "value", fmt) == "table" else None)


def register(app: typer.Typer) -> None:
    app.command("replay")(replay_cmd)
