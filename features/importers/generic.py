"""Any JSONL / CSV / parquet table → SampleTable, with a column mapping.

``mapping`` is ``{sample_table_column: source_column}`` (``--map prompt_id=doc_id --map answer=pred``).
Besides the SampleTable columns (``ttsplan.features.schema.SAMPLE_SCHEMA``) two helper targets exist:
``gold`` (the reference answer: ``correct`` is graded from ``answer`` when the file has no
correctness column) and nothing else. Defaults: ``config`` from ``--config`` (else the file stem),
``sample_idx`` = order within (config, prompt_id), ``answer`` extracted from ``text`` when only text
is given. Source columns that are neither mapped nor SampleTable columns are dropped and listed in
the provenance.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

from ttsplan.features.errors import did_you_mean
from ttsplan.features.importers.base import (
    ImportResult,
    PathLike,
    apply_mapping,
    expand_paths,
    extract_answers,
    finish,
    grade_answers,
    number_samples,
    raise_problems,
    read_frame,
)
from ttsplan.features.schema import SAMPLE_SCHEMA

FMT = "generic"
TARGETS = (*SAMPLE_SCHEMA, "gold")


def read_generic(paths: PathLike | Sequence[PathLike], *, mapping: Mapping[str, str] | None = None,
                 config: str | None = None, model: str | None = None, dataset: str | None = None,
                 kind: str = "math") -> ImportResult:
    """Read tables with arbitrary column names; ``mapping`` renames source columns to SampleTable ones."""
    mapping = dict(mapping or {})
    problems: list[str] = []
    for target in mapping:
        if target not in TARGETS:
            problems.append(f"--map {target}=…: target must be a SampleTable column or gold, got {target!r}."
                            f"{did_you_mean(target, TARGETS)} Targets: {', '.join(TARGETS)}.")
    raise_problems(FMT, problems)
    files = expand_paths(paths, (".jsonl", ".ndjson", ".json", ".csv", ".parquet", ".pq"), FMT)
    frames, dropped = [], set()
    for f in files:
        df = read_frame(f, problems)
        if df is None:
            continue
        df = apply_mapping(df, mapping, FMT, str(f), problems)
        local = []
        if "prompt_id" not in df.columns:
            local.append(f'{f}: column "prompt_id" must be present, got none.'
                         f"{_guess('prompt_id', df.columns, ('doc_id', 'id', 'idx', 'question_id', 'unique_id'))} "
                         f"Map it with --map prompt_id=<column> (columns: {', '.join(df.columns[:20])}).")
        has_label = any(c in df.columns for c in ("correct", "gold"))
        if not has_label and not any(c in df.columns for c in ("answer", "text")):
            local.append(f'{f}: must have a "correct" column, or "answer"/"text" plus "gold" to grade, got none of them.'
                         f"{_guess('correct', df.columns, ('is_correct', 'exact_match', 'acc', 'score', 'label'))} "
                         "Map with --map correct=<column>, or --map answer=<column> --map gold=<column>.")
        if local:
            problems.extend(local)
            continue
        dropped.update(c for c in df.columns if c not in TARGETS)
        df = df.select([c for c in df.columns if c in TARGETS])
        if "config" not in df.columns or config:
            df = df.with_columns(pl.lit(config or f.stem).alias("config"))
        for name, value in (("model", model), ("dataset", dataset)):
            if value:
                df = df.with_columns(pl.lit(value).alias(name))
        frames.append(df.with_columns(pl.col("prompt_id").cast(pl.String), pl.col("config").cast(pl.String)))
    raise_problems(FMT, problems)
    df = pl.concat(frames, how="diagonal_relaxed")
    notes = []
    if "sample_idx" not in df.columns:
        df = number_samples(df)
        notes.append("sample_idx = row order within (config, prompt_id)")
    if "answer" not in df.columns and "text" in df.columns:
        df = df.with_columns(extract_answers(df.get_column("text"), kind).alias("answer"))
        notes.append(f"answer = ttsplan.features.grading.extract_answer(text, {kind!r})")
    if "gold" in df.columns and "correct" not in df.columns:
        df = df.with_columns(grade_answers(df.get_column("answer").cast(pl.String), df.get_column("gold"))
                             .alias("correct"))
        notes.append("correct = ttsplan.features.grading.grade(answer, gold)")
    if "correct" in df.columns and df.schema["correct"].is_float():
        df = df.with_columns(pl.col("correct") > 0.5)
        notes.append("a float correctness column (e.g. exact_match 0.0/1.0) is read as correct = value > 0.5")
    for c in ("answer", "text"):
        if c in df.columns and df.schema[c] != pl.String:
            df = df.with_columns(pl.col(c).cast(pl.String))
    return finish(df, FMT, files, {"config": config, "model": model, "dataset": dataset, "kind": kind,
                                    "map": mapping}, notes, {"dropped_columns": sorted(dropped)})


def _guess(target: str, columns: Sequence[str], synonyms: Sequence[str]) -> str:
    hit = next((c for c in columns if c in synonyms), None)
    if hit:
        return f' Did you mean "{hit}"?'
    return did_you_mean(target, columns)


__all__ = ["TARGETS", "read_generic"]
