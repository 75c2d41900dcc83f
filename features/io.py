"""Reading tables from disk and writing files atomically.

>>> import tempfile, pathlib, polars as pl
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> pl.DataFrame({"config": ["c"], "prompt_id": ["p"], "sample_idx": [0], "correct": [True]}).write_csv(d / "s.csv")
>>> read_samples(d / "s.csv").height
1
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

import polars as pl

# the atomic writers live in ttsplan.features.atomic (importers use them too) and are re-exported here
from ttsplan.features.atomic import _umask_mode, read_metadata, write_atomic, write_parquet_atomic  # noqa: F401
from ttsplan.features.errors import SchemaError, TtsplanError
from ttsplan.features.importers import import_samples
from ttsplan.features.schema import is_count_table, validate_count_table, validate_sample_table

SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl",
            ".json": "jsonl", ".csv": "csv"}
TableKind = Literal["samples", "counts"]
PathLike = str | os.PathLike


def _expand(paths: PathLike | Sequence[PathLike], problems: list[str]) -> list[Path]:
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            shards = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in SUFFIXES
                            and not f.name.startswith("."))
            if not shards:
                problems.append(f"{p}: directory must contain .parquet, .jsonl or .csv shards, got none.")
            files.extend(shards)
        elif not p.exists():
            problems.append(f"{p}: file must exist, got no such file. Check the path.")
        elif p.suffix.lower() not in SUFFIXES:
            problems.append(f"{p}: file must end in .parquet, .jsonl or .csv, got '{p.suffix or '(none)'}'. "
                            "Rename it or convert it.")
        else:
            files.append(p)
    if not files and not problems:
        problems.append("no input file given. Pass at least one .parquet, .jsonl or .csv file.")
    return files


def _read_one(path: Path, problems: list[str]) -> pl.DataFrame | None:
    fmt = SUFFIXES[path.suffix.lower()]
    if path.stat().st_size == 0:
        problems.append(f"{path}: file must not be empty, got 0 bytes.")
        return None
    try:
        if fmt == "parquet":
            return pl.read_parquet(path)
        if fmt == "csv":
            return pl.read_csv(path, infer_schema_length=10_000)
        return pl.read_ndjson(path, infer_schema_length=10_000)
    except Exception as exc:  # polars raises many types for malformed input
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        problems.append(f"{path}: must be a readable {fmt} file, got a read error ({first[:200]}).")
        return None


def read_table(paths: PathLike | Sequence[PathLike], input_format: str | None = None,
               import_options: dict | None = None) -> tuple[pl.DataFrame, TableKind]:
    """Read one or more files (or shard directories) and validate them as one table.

    The kind is detected from the columns: ``samples``/``correct_samples`` without ``sample_idx``
    is a CountTable, anything else is checked as a SampleTable. Returns ``(table, kind)``.
    ``input_format`` (``lm-eval``, ``search-and-learn``, ``openai-batch``, ``generic``) reads the files
    with :func:`ttsplan.features.importers.import_samples` instead (``import_options``: its keyword arguments).
    """
    if input_format is not None:
        return import_samples(input_format, paths, **(import_options or {})).table, "samples"
    problems: list[str] = []
    frames = [f for f in (_read_one(p, problems) for p in _expand(paths, problems)) if f is not None]
    if problems:
        raise TtsplanError("could not read the input:\n" + "\n".join(f"  - {p}" for p in problems))
    kinds = {is_count_table(f.columns) for f in frames}
    if len(kinds) > 1:
        raise TtsplanError("inputs must all be sample tables or all count tables, got a mix. "
                           "Convert sample tables with `to_counts` or pass them separately.")
    df = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
    if kinds == {True}:
        return validate_count_table(df), "counts"
    return validate_sample_table(df), "samples"


def read_samples(paths: PathLike | Sequence[PathLike], input_format: str | None = None,
                 import_options: dict | None = None) -> pl.DataFrame:
    """Read and validate a SampleTable from parquet / JSONL / CSV files or shard directories
    (or, with ``input_format``, from an evaluation output via :mod:`ttsplan.features.importers`)."""
    df, kind = read_table(paths, input_format, import_options)
    if kind != "samples":
        raise TtsplanError("expected a sample table (one row per completion), got a count table. "
                           "Use read_counts for count tables.")
    return df


def read_counts(paths: PathLike | Sequence[PathLike]) -> pl.DataFrame:
    """Read a CountTable; sample tables are converted with :func:`to_counts`."""
    df, kind = read_table(paths)
    return df if kind == "counts" else to_counts(df)


def to_counts(samples: pl.DataFrame) -> pl.DataFrame:
    """Collapse a SampleTable to a CountTable using the labeled rows (``correct`` not null).

    >>> s = pl.DataFrame({"config": ["c"] * 3, "prompt_id": ["p"] * 3, "sample_idx": [0, 1, 2],
    ...                   "correct": [True, False, True]})
    >>> to_counts(validate_sample_table(s)).select("samples", "correct_samples").row(0)
    (3, 2)
    """
    labeled = samples.filter(pl.col("correct").is_not_null())
    if labeled.height == 0:
        raise SchemaError("SampleTable", ["column \"correct\" must have labeled rows to count, got only nulls. "
                                          "Grade the samples first."])
    counts = (labeled.group_by(["config", "model", "dataset", "prompt_id"])
              .agg(pl.len().cast(pl.Int64).alias("samples"),
                   pl.col("correct").cast(pl.Int64).sum().alias("correct_samples")))
    return validate_count_table(counts)


def split_by(df: pl.DataFrame, column: str) -> Iterable[tuple[str, pl.DataFrame]]:
    """Yield ``(value, sub-frame)`` for each value of ``column`` in sorted order."""
    for value in df.get_column(column).unique().sort().to_list():
        yield value, df.filter(pl.col(column) == value)


__all__ = ["read_table", "read_samples", "read_counts", "to_counts", "write_atomic",
           "write_parquet_atomic", "read_metadata", "split_by"]
