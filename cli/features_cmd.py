"""``ttsplan features``: per-prompt or per-config statistics of a validation pass."""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from ttsplan.cli.common import Format, emit, user_errors
from ttsplan.features.io import read_table
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
    format: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
    out: Annotated[Path | None, typer.Option(help="Write to this file (atomically) instead of stdout.")] = None,
) -> None:
    table, kind = read_table(files)
    if level == Level.prompt:
        frame = prompt_features(table, kind).select("config", "prompt_id", *FEATURES)
    else:
        frame = config_features(table, kind).select("config", *FEATURES)
    emit(frame.to_dicts(), format, out, title=f"{level.value}-level features")


def register(app: typer.Typer) -> None:
    app.command("features", help=HELP)(features_command)
