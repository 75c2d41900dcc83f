"""Reading tables from disk and writing files atomically.

>>> import tempfile, pathlib, polars as pl
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> pl.DataFrame({"config": ["c"], "prompt_id": ["p"], "sample_idx": [0], "correct": [True]}).write_csv(d / "s.csv")
>>> read_samples(d / "s.csv").height
1
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

# the atomic writers live in ttsplan.features.atomic (importers use them too) and are re-exported here
from ttsplan.features.atomic import _umask_mode, read_metadata, write_atomic, write_parquet_atomic  # noqa: F401
from ttsplan.features.errors import SchemaError, TtsplanError
from ttsplan.features.importers import import_samples
from ttsplan.features.schema import (
    TableKind,
    is_count_table,
    table_kind,
    validate_count_table,
    validate_sample_table,
)

SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl",
            ".json": "jsonl", ".csv": "csv"}
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


#: parquet inputs of more rows than this are read lazily, a block of configurations at a time
LAZY_MIN_ROWS = 5_000_000
#: rows per block of the lazy reader (whole configurations; one configuration larger than this is one block)
BLOCK_ROWS = 5_000_000


@dataclass
class TableBlocks:
    """A table read one block of whole configurations at a time (:func:`read_blocks`).

    Iterating yields validated tables in configuration order; concatenated they equal
    :func:`read_table`'s table. ``configs`` (sorted), ``rows``, ``max_samples`` (most samples recorded for
    one prompt) and ``prompts_per_config`` are known before any block is read.
    """

    kind: TableKind
    configs: list[str]
    rows: int
    max_samples: int
    prompts_per_config: dict[str, int]
    models: list[str]
    lazy: bool
    _load: Callable[[list[str]], pl.DataFrame] = field(repr=False)
    _groups: list[list[str]] = field(repr=False)

    def __iter__(self) -> Iterator[pl.DataFrame]:
        for group in self._groups:
            yield self._load(group)

    def __len__(self) -> int:
        return len(self._groups)

    def hash(self) -> str:
        """sha256 of the whole table's CSV text, block by block (equal to hashing the eager table)."""
        h = hashlib.sha256()
        for i, block in enumerate(self):
            update_csv_hash(h, block, header=i == 0)
        return h.hexdigest()[:16]


def update_csv_hash(h: Any, table: pl.DataFrame, header: bool = True, slice_rows: int = 500_000) -> None:
    """Feed ``table``'s CSV text to ``h`` in slices (the same bytes as ``table.write_csv()``, bounded memory)."""
    for i, part in enumerate(table.iter_slices(slice_rows) if table.height else [table]):
        h.update(part.write_csv(include_header=header and i == 0).encode())


def _groups(sizes: pl.DataFrame, max_rows: int) -> list[list[str]]:
    out: list[list[str]] = []
    rows = 0
    for config, n in sizes.select("config", "len").iter_rows():
        if not out or rows + n > max_rows:
            out.append([])
            rows = 0
        out[-1].append(config)
        rows += n
    return [g for g in out if g]


def _config_stats(lf: pl.LazyFrame, kind: TableKind, names: Sequence[str]) -> tuple[pl.DataFrame, list[str]]:
    """Per configuration (sorted): rows ``len``, ``prompts`` and the most samples of one prompt ``k``; and the
    table's distinct model names."""
    cfg = pl.col("config").cast(pl.String)
    if kind == "counts":
        per = lf.group_by(cfg).agg(pl.len().alias("prompts"), pl.len().alias("len"), pl.col("samples").max().alias("k"))
    else:
        per = (lf.group_by(cfg, pl.col("prompt_id").cast(pl.String)).len().group_by("config")
               .agg(pl.len().alias("prompts"), pl.col("len").sum(), pl.col("len").max().alias("k")))
    per = per.collect(engine="streaming").sort("config")
    models = (sorted(lf.select(pl.col("model").cast(pl.String)).unique().collect(engine="streaming")["model"]
                     .drop_nulls().to_list()) if "model" in names else [])
    return per, models


def as_blocks(table: pl.DataFrame) -> TableBlocks:
    """A validated table in memory as one block (what :func:`read_blocks` gives for a small input)."""
    kind = table_kind(table)
    per, models = _config_stats(table.lazy(), kind, table.columns)
    configs = per["config"].to_list()
    return TableBlocks(kind, configs, table.height, int(per["k"].max() or 0),
                       dict(zip(configs, per["prompts"].to_list())), models, False, lambda _group: table, [configs])


def read_blocks(paths: PathLike | Sequence[PathLike], max_rows: int | None = None,
                lazy_min_rows: int | None = None) -> TableBlocks:
    """Like :func:`read_table`, for tables larger than memory: parquet inputs of more than ``lazy_min_rows``
    rows (read from the parquet footers) are scanned lazily and read back a block of whole configurations (about ``max_rows`` rows) at a
    time; smaller inputs, and other formats, are read whole as one block (the same table as read_table).
    Defaults: :data:`BLOCK_ROWS` and :data:`LAZY_MIN_ROWS`.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> rows = [{"config": c, "prompt_id": "p", "sample_idx": j, "correct": True} for c in "abc" for j in range(2)]
    >>> pl.DataFrame(rows).write_parquet(d / "t.parquet")
    >>> blocks = read_blocks(d, max_rows=4, lazy_min_rows=0)
    >>> blocks.lazy, [b["config"].unique().sort().to_list() for b in blocks], blocks.max_samples
    (True, [['a', 'b'], ['c']], 2)
    >>> blocks.hash() == read_blocks(d).hash()
    True
    """
    problems: list[str] = []
    files = _expand(paths, problems)
    if problems:
        raise TtsplanError("could not read the input:\n" + "\n".join(f"  - {p}" for p in problems))
    max_rows = BLOCK_ROWS if max_rows is None else max_rows
    lazy_min_rows = LAZY_MIN_ROWS if lazy_min_rows is None else lazy_min_rows
    if not all(SUFFIXES[f.suffix.lower()] == "parquet" for f in files):
        return as_blocks(read_table(files)[0])
    try:
        rows = sum(pl.scan_parquet(f).select(pl.len()).collect().item() for f in files)  # footers only
    except Exception:  # unreadable: the eager reader names every bad file
        rows = 0
    if rows < lazy_min_rows:
        return as_blocks(read_table(files)[0])
    try:
        lf = pl.concat([pl.scan_parquet(f) for f in files], how="diagonal_relaxed")
        names = lf.collect_schema().names()
    except Exception as exc:  # polars raises many types for malformed input
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TtsplanError(f"could not read the input:\n  - parquet shards must be readable with one schema, got "
                           f"a read error ({first[:200]}).") from None
    if "config" not in names:  # let the eager reader name every problem
        return as_blocks(read_table(files)[0])
    kind: TableKind = "counts" if is_count_table(names) else "samples"
    per, models = _config_stats(lf, kind, names)
    cfg = pl.col("config").cast(pl.String)
    validate = validate_count_table if kind == "counts" else validate_sample_table

    def load(group: list[str]) -> pl.DataFrame:
        return validate(lf.filter(cfg.is_in(group)).collect(engine="streaming"))

    return TableBlocks(kind, per["config"].to_list(), int(per["len"].sum()), int(per["k"].max() or 0),
                       dict(zip(per["config"].to_list(), per["prompts"].to_list())), models, True, load,
                       _groups(per, max_rows))


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


__all__ = ["BLOCK_ROWS", "LAZY_MIN_ROWS", "TableBlocks", "as_blocks", "read_blocks", "read_table", "update_csv_hash", "read_samples", "read_counts",
           "to_counts", "write_atomic",
           "write_parquet_atomic", "read_metadata", "split_by"]
