"""``ttsplan import``: evaluation outputs you already have → a SampleTable parquet with provenance."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated

import typer

from ttsplan.cli.common import TableOrJson, emit, err_console, print_warnings, user_errors
from ttsplan.cli.options import SummaryFormatOpt
from ttsplan.features.importers import import_to_parquet, normalize_format, parse_mapping

HELP = """Import repeated-sampling outputs that already exist into a validated SampleTable (parquet),
with the source files and import options stored as provenance in the parquet metadata.

FORMAT is one of:

  lm-eval            lm-evaluation-harness --log_samples files (samples_<task>_<time>.jsonl or their
                     directory); one row per repeat of resps, graded against target
  search-and-learn   huggingface/search-and-learn completions (JSONL or parquet): completions,
                     scores (PRM step scores -> reward, --reward-agg last|min|prod|mean), completion_tokens
  openai-batch       vllm run-batch / OpenAI Batch API output JSONL (alias vllm-batch); gold answers
                     from --prompts (JSONL id, prompt, answer)
  generic            any JSONL / CSV / parquet; --map TARGET=SOURCE renames columns (targets: the
                     SampleTable columns and gold)
  inspect            inspect-ai eval logs (.eval / .json, or their --log-dir), read with inspect-ai's
                     log API (extra inspect); one row per (sample, epoch), labeled by the scorer
                     (--scorer picks one)

lm-eval and inspect imports must hold more than one sample per prompt (repeats / epochs > 1): one
sample per prompt cannot give scaling curves, and is refused with how to rerun the tool.

A malformed file is rejected with one message naming every missing or wrong field and the --map
that fixes it (exit code 2); the output file is written only after the table has validated.

Example:

    ttsplan import lm-eval results/org__model-1b/ --out samples.parquet
    ttsplan import search-and-learn best_of_n_completions.jsonl --reward-agg min --out samples.parquet
    ttsplan import openai-batch responses.jsonl --prompts prompts.jsonl --out samples.parquet
    ttsplan import generic runs.csv --map prompt_id=doc_id --map answer=pred --map gold=target --out samples.parquet
    ttsplan import inspect logs/ --out samples.parquet
"""


@user_errors
def import_command(
    fmt: Annotated[str, typer.Argument(metavar="FORMAT", help="lm-eval, search-and-learn, openai-batch, generic or "
                                                                           "inspect.")],
    paths: Annotated[list[Path], typer.Argument(metavar="PATH...", help="Input files or directories.")],
    out: Annotated[Path, typer.Option(help="Output SampleTable (.parquet), written atomically.")],
    prompts: Annotated[Path | None, typer.Option(help="Prompts JSONL (id, prompt, answer) with the gold answers "
                                                     "(openai-batch).")] = None,
    map_: Annotated[list[str] | None, typer.Option("--map", help="TARGET=SOURCE field mapping (repeatable).")] = None,
    config: Annotated[str | None, typer.Option(help="Configuration label for every row (default: from the source).")] = None,
    model: Annotated[str | None, typer.Option(help="Model name for every row (default: from the source).")] = None,
    dataset: Annotated[str | None, typer.Option(help="Dataset name for every row (default: from the source).")] = None,
    kind: Annotated[str, typer.Option(help="Answer extraction from texts: math (boxed / 'answer is' / last number) "
                                           "or short (first word).")] = "math",
    reward_agg: Annotated[str, typer.Option(help="search-and-learn: PRM step-score aggregation "
                                                 "(last, min, prod, mean).")] = "last",
    filter_name: Annotated[str | None, typer.Option("--filter", help="lm-eval: which logged filter to keep "
                                                                    "(default: the first).")] = None,
    metric: Annotated[str, typer.Option(help="lm-eval: per-document metric used as the label for single-repeat "
                                             "tasks.")] = "exact_match",
    scorer: Annotated[str | None, typer.Option(help="inspect: which logged scorer labels the samples "
                                                    "(default: the first).")] = None,
    format: SummaryFormatOpt = TableOrJson.table,
) -> None:
    name = normalize_format(fmt)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        result = import_to_parquet(name, paths, out, prompts=prompts, mapping=parse_mapping(map_), config=config,
                                   model=model, dataset=dataset, kind=kind, reward_agg=reward_agg,
                                   filter_name=filter_name, metric=metric, scorer=scorer)
    print_warnings(caught)
    err_console.print(f"wrote {out} ({result.table.height:,} samples)")
    rows = result.summary().to_dicts()
    if getattr(format, "value", format) == "json":
        emit({"out": str(out), "format": name, "configs": rows, "provenance": result.provenance}, "json")
        return
    emit(rows, "table", title=f"imported {name} → {out}")
    for note in result.provenance.get("notes", []):
        typer.echo(f"note: {note}")


def register(app: typer.Typer) -> None:
    app.command("import", help=HELP,
                short_help="Import lm-eval, inspect-ai, search-and-learn, OpenAI batch or mapped files into a "
                           "SampleTable.")(import_command)
