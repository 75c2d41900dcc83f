"""Importers: evaluation outputs that already exist → SampleTable (+ provenance), and batch requests out.

Formats (:data:`FORMATS`; aliases in :data:`ALIASES`):

- ``lm-eval`` — lm-evaluation-harness ``--log_samples`` files (:mod:`ttsplan.features.importers.lm_eval`);
- ``search-and-learn`` — huggingface/search-and-learn completions (:mod:`ttsplan.features.importers.search_and_learn`);
- ``openai-batch`` — ``vllm run-batch`` / OpenAI Batch API output (:mod:`ttsplan.features.importers.openai_batch`);
- ``generic`` — any JSONL / CSV / parquet with a column mapping (:mod:`ttsplan.features.importers.generic`);
- ``inspect`` — inspect-ai eval logs, read with inspect-ai's log API (:mod:`ttsplan.features.importers.inspect_log`).

:func:`import_samples` returns an :class:`ImportResult` (validated table + provenance);
:func:`import_to_parquet` also writes it atomically with the provenance in the parquet metadata
(key ``ttsplan``). Every reader raises one :class:`~ttsplan.features.errors.SchemaError` listing every
missing or wrong field with the ``--map`` that fixes it, before anything is written.

>>> import json, tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "runs.csv").write_text("doc_id,pred,gold\\nq1,4,4\\nq1,5,4\\n")
>>> r = import_samples("generic", d / "runs.csv", mapping={"prompt_id": "doc_id", "answer": "pred"})
>>> r.table.select("prompt_id", "sample_idx", "answer", "correct").rows()
[('q1', 0, '4', True), ('q1', 1, '5', False)]
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ttsplan.features.atomic import write_parquet_atomic
from ttsplan.features.errors import TtsplanError, did_you_mean
from ttsplan.features.importers.base import (
    ImportResult,
    PathLike,
    extract_answers,
    grade_answers,
)
from ttsplan.features.importers.generic import read_generic
from ttsplan.features.importers.inspect_log import read_inspect
from ttsplan.features.importers.lm_eval import read_lm_eval
from ttsplan.features.importers.openai_batch import read_openai_batch
from ttsplan.features.importers.search_and_learn import read_search_and_learn

FORMATS = ("lm-eval", "search-and-learn", "openai-batch", "generic", "inspect")
ALIASES = {"lm-evaluation-harness": "lm-eval", "lm_eval": "lm-eval", "lmeval": "lm-eval", "harness": "lm-eval",
           "sal": "search-and-learn", "search_and_learn": "search-and-learn",
           "vllm-batch": "openai-batch", "vllm": "openai-batch", "batch": "openai-batch", "openai": "openai-batch",
           "jsonl": "generic", "csv": "generic", "parquet": "generic", "table": "generic",
           "inspect-ai": "inspect", "inspect_ai": "inspect", "inspect-log": "inspect"}


def normalize_format(name: str) -> str:
    """Canonical format name; a :class:`TtsplanError` with "did you mean" otherwise."""
    key = str(name).strip().lower()
    if key in FORMATS:
        return key
    if key in ALIASES:
        return ALIASES[key]
    choices = [*FORMATS, *ALIASES]
    raise TtsplanError(f"import format must be one of {', '.join(FORMATS)}, got {name!r}.{did_you_mean(key, choices)}")


def import_samples(fmt: str, paths: PathLike | Sequence[PathLike], *, prompts: PathLike | None = None,
                   mapping: Mapping[str, str] | None = None, config: str | None = None, model: str | None = None,
                   dataset: str | None = None, kind: str = "math", reward_agg: str = "last",
                   filter_name: str | None = None, metric: str = "exact_match",
                   scorer: str | None = None) -> ImportResult:
    """Read ``paths`` in format ``fmt`` into a validated SampleTable with provenance.

    Options a format does not use are rejected (e.g. ``prompts`` for lm-eval, which carries its
    own targets), so a mistyped invocation never silently ignores an argument.
    """
    fmt = normalize_format(fmt)
    if kind not in ("math", "short"):
        raise TtsplanError(f"--kind must be math or short, got {kind!r}.{did_you_mean(kind, ('math', 'short'))}")
    unused = {"lm-eval": {"prompts": prompts, "reward_agg": reward_agg != "last" or None, "scorer": scorer},
              "search-and-learn": {"prompts": prompts, "filter": filter_name, "scorer": scorer},
              "openai-batch": {"reward_agg": reward_agg != "last" or None, "filter": filter_name, "scorer": scorer},
              "generic": {"prompts": prompts, "reward_agg": reward_agg != "last" or None, "filter": filter_name,
                          "scorer": scorer},
              "inspect": {"prompts": prompts, "reward_agg": reward_agg != "last" or None, "filter": filter_name,
                          "map": mapping or None}}[fmt]
    bad = [k for k, v in unused.items() if v]
    if bad:
        raise TtsplanError(f"{fmt} import must not be given {', '.join('--' + b.replace('_', '-') for b in bad)}, "
                           f"got {'it' if len(bad) == 1 else 'them'}: the format does not use "
                           f"{'it' if len(bad) == 1 else 'them'}. Drop the option.")
    if fmt == "lm-eval":
        return read_lm_eval(paths, config=config, model=model, dataset=dataset, filter_name=filter_name,
                            metric=metric, kind=kind, mapping=mapping)
    if fmt == "search-and-learn":
        return read_search_and_learn(paths, config=config, model=model, dataset=dataset, reward_agg=reward_agg,
                                     kind=kind, mapping=mapping)
    if fmt == "openai-batch":
        return read_openai_batch(paths, prompts=prompts, config=config, model=model, dataset=dataset, kind=kind,
                                 mapping=mapping)
    if fmt == "inspect":
        return read_inspect(paths, config=config, model=model, dataset=dataset, scorer=scorer, kind=kind)
    return read_generic(paths, mapping=mapping, config=config, model=model, dataset=dataset, kind=kind)


def import_to_parquet(fmt: str, paths: PathLike | Sequence[PathLike], out: PathLike, **options: Any) -> ImportResult:
    """:func:`import_samples`, then write ``out`` atomically with the provenance as parquet metadata.

    Nothing is written when the input is malformed (the error is raised before the write).
    """
    out = Path(out)
    if out.suffix.lower() not in (".parquet", ".pq"):
        raise TtsplanError(f"--out must end in .parquet, got {out.name!r}. Use e.g. --out samples.parquet.")
    result = import_samples(fmt, paths, **options)
    write_parquet_atomic(result.table, out, metadata=result.provenance)
    return result


def parse_mapping(items: Sequence[str] | None) -> dict[str, str]:
    """``["prompt_id=doc_id", "answer=pred"]`` → ``{"prompt_id": "doc_id", "answer": "pred"}``."""
    out: dict[str, str] = {}
    bad = []
    for item in items or ():
        target, sep, source = str(item).partition("=")
        if not sep or not target.strip() or not source.strip():
            bad.append(repr(item))
            continue
        out[target.strip()] = source.strip()
    if bad:
        raise TtsplanError(f"--map must be TARGET=SOURCE (e.g. --map prompt_id=doc_id), got {', '.join(bad)}.")
    return out


__all__ = [
    "ALIASES",
    "FORMATS",
    "ImportResult",
    "extract_answers",
    "grade_answers",
    "import_samples",
    "import_to_parquet",
    "normalize_format",
    "parse_mapping",
]
