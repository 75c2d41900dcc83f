"""Command-line options that several commands share, as ``Annotated`` aliases: one name, flags and help.

A command writes ``fmt: FormatOpt = Format.table``; the default stays in the signature (from
:mod:`ttsplan.features.defaults` where the library has one), the flags and help live here.

>>> from typing import get_args
>>> get_args(GpuOpt)[1].help.split(":")[0]
'GPU for pricing'
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from ttsplan.cli.common import Format, TableOrJson

# -- output -----------------------------------------------------------------------------------------
#: ``--format table|json|csv``
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
#: ``--format table|json``
TableOrJsonOpt = Annotated[TableOrJson, typer.Option("--format", "-f", help="Output format: table or json.")]
#: ``--format`` of commands whose output is a file and whose stdout is a summary of it
SummaryFormatOpt = Annotated[TableOrJson, typer.Option("--format", "-f", help="Output format of the summary.")]
#: ``--out`` of commands that print their result: the same text goes to a file instead
OutFileOpt = Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file (atomically) instead of "
                                                                     "stdout.")]

# -- pricing ----------------------------------------------------------------------------------------
#: ``--gpu`` (default :data:`ttsplan.features.defaults.DEFAULT_GPU`)
GpuOpt = Annotated[str, typer.Option("--gpu", help="GPU for pricing: H100, H200, A100, L40S, B200, RTX4090, or a "
                                                   "JSON/TOML spec.")]

# -- intervals --------------------------------------------------------------------------------------
#: ``--confidence`` (default: :data:`~ttsplan.features.defaults.DEFAULT_CI_CONFIDENCE` for bootstrap
#: intervals, :data:`~ttsplan.features.defaults.DEFAULT_CONFIDENCE` for model-based ones)
ConfidenceOpt = Annotated[float, typer.Option("--confidence", help="Confidence level of the intervals, in (0, 1).")]

# -- sampling (ttsplan sample and ttsplan run) ------------------------------------------------------
TemperatureOpt = Annotated[float, typer.Option("--temperature", help="sampling temperature")]
TopPOpt = Annotated[float, typer.Option("--top-p", help="nucleus sampling top_p")]
MaxNewTokensOpt = Annotated[int, typer.Option("--max-new-tokens", help="most generated tokens per sample")]
SamplingSeedOpt = Annotated[int, typer.Option("--seed", help="random seed of the sampling (one per prompt and "
                                                            "sample index) and of tasks: / few-shot draws")]
StopOpt = Annotated[str | None, typer.Option("--stop", help=r"stop string, escapes allowed (default '\n' for "
                                                            "tasks:, none for files)")]
RewardOpt = Annotated[str, typer.Option("--reward", help="self_certainty | mean_logprob (openai: mean_logprob only)")]
DeviceOpt = Annotated[str, typer.Option("--device", help="hf engine device (cpu, cuda)")]
NoTextOpt = Annotated[bool, typer.Option("--no-text", help="do not store completion text")]

# -- the openai engine (ttsplan sample and ttsplan run) ----------------------------------------------
BaseUrlOpt = Annotated[str | None, typer.Option("--base-url", help="openai: server URL, e.g. "
                                                                   "http://127.0.0.1:8080")]
ApiKeyEnvOpt = Annotated[str | None, typer.Option("--api-key-env", help="openai: env variable with the API key")]
ChatOpt = Annotated[bool, typer.Option("--chat", help="openai: use /v1/chat/completions")]
ExtraBodyOpt = Annotated[str | None, typer.Option("--extra-body", help="openai: JSON merged into every request, "
                                                  'e.g. \'{"top_k": 0, "min_p": 0, "repeat_penalty": 1}\' for '
                                                  "llama.cpp")]

# -- planning ---------------------------------------------------------------------------------------
#: ``--policies`` of plan and evaluate: the candidate families (ttsplan.planner.option_grid.FAMILIES)
PoliciesOpt = Annotated[str, typer.Option(
    "--policies", help="Candidate policy families, comma-separated: fixed (majority N), adaptive (stopping rule), "
                       "two-stage (pilot of K0 samples, then a per-prompt cap). Two-stage is off by default: on "
                       "held-out prompts it gains less than the noise (docs/planner.md).")]

__all__ = ["ApiKeyEnvOpt", "BaseUrlOpt", "ChatOpt", "ConfidenceOpt", "DeviceOpt", "ExtraBodyOpt", "FormatOpt",
           "GpuOpt", "MaxNewTokensOpt", "NoTextOpt", "OutFileOpt", "PoliciesOpt", "RewardOpt", "SamplingSeedOpt", "StopOpt",
           "SummaryFormatOpt", "TableOrJsonOpt", "TemperatureOpt", "TopPOpt"]
