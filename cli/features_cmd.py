"""``ttsplan features``: per-prompt or per-config statistics of a validation pass."""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from ttsplan.cli.common import Format, emit, err_console, user_errors
from ttsplan.cli.options import FormatOpt, OutFileOpt
import polars as pl

from ttsplan.features.io import read_blocks
from ttsplan.features.stats import FEATURES, config_features, prompt_features

HELP = """Statistics of one validation pass that predict what extra samples buy.

Features: accuracy, agreement_mean, agreement_spread, answer_entropy, first_correct_position,
never_correct_fraction, length_mean, length_variance (log tokens), token_entropy, logprob_mean,
reward_mean, reward_spread. A feature the data cannot support is null (count tables give accuracy,
never_correct_fraction and the expected first-correct position).

Example:

    ttsplan features ../shared/data/samples/sc40_addsub.parquet --level config --format json
"""


class Level(str, Enum):
    prompt = "prompt"
    config = "config"


@user_errors
def features_command(
    files: Annotated[list[Path], typer.Argument(help="Sample or count tables (.parquet/.jsonl/.csv or shard dirs).")],
    level: Annotated[Level, typer.Option(help="One row per prompt or per configuration.")] = Level.config,
    format: FormatOpt = Format.table,
    out: OutFileOpt = None,
) -> None:
    blocks = read_blocks(files)  # a table larger than memory is read a block of whole configurations at a time
    frames = []
    for i, table in enumerate(blocks):
        if blocks.lazy:
            err_console.print(f"features: block {i + 1}/{len(blocks)} ({table.height:,} rows)", highlight=False)
        if level == Level.prompt:
            frames.append(prompt_features(table, blocks.kind).select("config", "prompt_id", *FEATURES))
        else:
            frames.append(config_features(table, blocks.kind).select("config", *FEATURES))
    frame = pl.concat(frames) if len(frames) > 1 else frames[0]
    emit(frame.to_dicts(), format, out, title=f"{level.value}-level features")


def register(app: typer.Typer) -> None:
    app.command("features", help=HELP)(features_command)
