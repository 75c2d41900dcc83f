"""``ttsplan curves``: accuracy-vs-k curves (pass@k, maj@k, BoN@k) with bootstrap CIs."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import polars as pl
import typer

from ttsplan.cli.common import Format, check_ranges, emit, err_console, parse_int_list, user_errors
from ttsplan.cli.options import ConfidenceOpt, FormatOpt, OutFileOpt
from ttsplan.features.defaults import DEFAULT_CI_CONFIDENCE
from ttsplan.features.errors import TtsplanError
from ttsplan.features.estimators import curves
from ttsplan.features.io import read_blocks

DEFAULT_K = "1,2,4,8,16,32,64,128,256"


def check_k_recorded(ks: list[int], k_max: int, option: str) -> None:
    """Refuse k values above the most samples recorded per prompt, naming that maximum.

    >>> check_k_recorded([1, 4], 8, "--k")
    """
    above = [x for x in ks if x > k_max]
    if above:
        raise TtsplanError(f"{option} must be at most {k_max}, the most samples recorded per prompt, got "
                           f"{', '.join(map(str, above[:5]))}. Pass {option} values up to {k_max}, or record "
                           "more samples.")

HELP = """Exact accuracy-vs-k curves per configuration, with bootstrap-over-prompts intervals.

pass = at least one of k correct (coverage), maj = plurality vote of k, bon = highest-reward of k
(needs a reward column). Count tables give pass only. Values are expectations over all k-subsets.

Example:

    ttsplan curves data/default_samples.parquet --metric maj --metric pass --k 1,4,16
"""


@user_errors
def curves_command(
    files: Annotated[list[Path], typer.Argument(help="Sample or count tables (.parquet/.jsonl/.csv or shard dirs).")],
    metric: Annotated[list[str], typer.Option("--metric", "-m", help="pass, maj or bon (repeatable).")] = ["pass", "maj", "bon"],  # noqa: B006
    k: Annotated[str, typer.Option(help="Comma-separated k grid (at most the samples recorded per prompt; the "
                                        "default grid stops there).")] = DEFAULT_K,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples over prompts (0: no CI).")] = 200,
    confidence: ConfidenceOpt = DEFAULT_CI_CONFIDENCE,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
    format: FormatOpt = Format.table,
    out: OutFileOpt = None,
) -> None:
    ks = parse_int_list(k, "--k")  # checked (and bounded) before reading anything
    check_ranges(("--bootstrap", bootstrap, bootstrap >= 0, "be >= 0 (0: no interval)"),
                 ("--confidence", confidence, 0 < confidence < 1, "be strictly between 0 and 1 (e.g. 0.95)"))
    blocks = read_blocks(files)  # a table larger than memory is read a block of whole configurations at a time
    if k != DEFAULT_K:  # the default grid stops where the data does; values the user chose must be computable
        check_k_recorded(ks, blocks.max_samples, "--k")
    parts = []
    for i, table in enumerate(blocks):  # curves are per configuration: blocks of whole configurations give the same
        if blocks.lazy:
            err_console.print(f"curves: block {i + 1}/{len(blocks)} ({table.height:,} rows)", highlight=False)
        parts.append(curves(table, metrics=metric, ks=ks, n_boot=bootstrap, seed=seed, confidence=confidence,
                            kind=blocks.kind))
    result = pl.concat(parts).sort(["config", "metric", "k"]) if len(parts) > 1 else parts[0]
    emit(result.to_dicts(), format, out, title="accuracy vs k")


def register(app: typer.Typer) -> None:
    app.command("curves", help=HELP)(curves_command)
