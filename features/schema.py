"""Table contracts (DESIGN §3) and validation at the boundary.

``validate_sample_table`` / ``validate_count_table`` cast, sort and check once, and report
**every** problem in one :class:`~ttsplan.features.errors.SchemaError`. Inner code trusts their output.

>>> import polars as pl
>>> df = pl.DataFrame({"config": ["c"] * 2, "prompt_id": ["p"] * 2, "sample_idx": [0, 1],
...                    "answer": ["4", "5"], "correct": [True, False]})
>>> validate_sample_table(df).columns[:5]
['config', 'model', 'dataset', 'prompt_id', 'sample_idx']
"""
from __future__ import annotations

import warnings
from typing import Literal

import polars as pl

from ttsplan.features.errors import SchemaError, did_you_mean

#: SampleTable: one row per completion, in this column order.
SAMPLE_SCHEMA: dict[str, pl.DataType] = {
    "config": pl.String(),
    "model": pl.String(),
    "dataset": pl.String(),
    "prompt_id": pl.String(),
    "sample_idx": pl.Int32(),
    "answer": pl.String(),
    "correct": pl.Boolean(),
    "output_tokens": pl.Int32(),
    "prompt_tokens": pl.Int32(),
    "logprob": pl.Float64(),
    "entropy": pl.Float64(),
    "reward": pl.Float64(),
    "finish_reason": pl.String(),
    "text": pl.String(),
}
SAMPLE_REQUIRED = ("config", "prompt_id", "sample_idx")
SAMPLE_KEY = ("config", "prompt_id", "sample_idx")

#: CountTable: one row per (config, prompt).
COUNT_SCHEMA: dict[str, pl.DataType] = {
    "config": pl.String(),
    "model": pl.String(),
    "dataset": pl.String(),
    "prompt_id": pl.String(),
    "samples": pl.Int64(),
    "correct_samples": pl.Int64(),
    "difficulty": pl.Float64(),
    "level": pl.Int32(),
    "inference_flops": pl.Float64(),
    "difficulty_label": pl.String(),
}
COUNT_REQUIRED = ("config", "prompt_id", "samples", "correct_samples")
COUNT_KEY = ("config", "prompt_id")

_FLOAT_COLUMNS = ("logprob", "entropy", "reward", "difficulty", "inference_flops")
_NONNEGATIVE = ("output_tokens", "prompt_tokens")
_MAX_EXAMPLES = 3


#: the two table contracts: a SampleTable (one row per completion) or a CountTable (one row per prompt)
TableKind = Literal["samples", "counts"]


def is_count_table(columns: list[str]) -> bool:
    """A table with ``samples`` and ``correct_samples`` and no ``sample_idx`` is a CountTable (how a raw
    table's kind is detected before validation; :func:`table_kind` asks a validated one)."""
    return "correct_samples" in columns and "sample_idx" not in columns


def table_kind(table: pl.DataFrame) -> TableKind:
    """The contract a validated table follows: ``"counts"`` for a CountTable, else ``"samples"``.

    >>> table_kind(validate_count_table(pl.DataFrame({"config": ["c"], "prompt_id": ["p"],
    ...     "samples": [10], "correct_samples": [3]})))
    'counts'
    >>> table_kind(validate_sample_table(pl.DataFrame({"config": ["c"], "prompt_id": ["p"], "sample_idx": [0]})))
    'samples'
    """
    return "counts" if "correct_samples" in table.columns else "samples"


def _examples(values: list) -> str:
    shown = ", ".join(repr(v) for v in values[:_MAX_EXAMPLES])
    return shown + (", …" if len(values) > _MAX_EXAMPLES else "")


def _cast_columns(df: pl.DataFrame, schema: dict[str, pl.DataType], problems: list[str]) -> pl.DataFrame:
    """Cast every present column to its contract dtype; record columns that cannot be cast losslessly."""
    out = {}
    for name in df.columns:
        want = schema[name]
        col = df.get_column(name)
        if col.dtype == want:
            out[name] = col
            continue
        if col.dtype == pl.Null:
            out[name] = pl.Series(name, [None] * len(col), dtype=want)
            continue
        bad: list = []
        try:
            cast = col.cast(want, strict=True)
            if want.is_integer() and col.dtype.is_float():
                nonint = col.filter(col.is_not_null() & (col != col.round(0)))
                bad = nonint.head(_MAX_EXAMPLES).to_list()
            if want == pl.Boolean() and col.dtype.is_numeric():
                bad = col.filter(col.is_not_null() & ~col.is_in([0, 1])).head(_MAX_EXAMPLES).to_list()
        except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError, OverflowError):
            cast = None
            if col.dtype == pl.String() and want == pl.Boolean():
                low = col.str.to_lowercase()
                mapped = low.replace_strict({"true": True, "false": False, "1": True, "0": False},
                                            default=None, return_dtype=pl.Boolean)
                bad = col.filter(col.is_not_null() & mapped.is_null()).head(_MAX_EXAMPLES).to_list()
                cast = mapped
            else:
                strict = col.cast(want, strict=False)
                bad = col.filter(col.is_not_null() & strict.is_null()).head(_MAX_EXAMPLES).to_list()
        if bad or cast is None:
            problems.append(
                f'column "{name}" must be {want}, got {col.dtype} with values that do not convert '
                f"({_examples(bad)}). Fix the values or map the column to another name."
            )
            continue
        out[name] = cast
    return pl.DataFrame(out)  # columns that did not cast are left out (their problem is recorded)


class ExtraColumnsWarning(UserWarning):
    """Columns outside a table's contract (``run_id``, ``platform``, ...) were dropped."""


def _check_columns(df: pl.DataFrame, schema: dict, required: tuple[str, ...], name: str,
                   problems: list[str]) -> list[str]:
    """Record missing required columns and misspelled ones; return the other extra columns (to drop).

    An extra column that looks like a contract column the table lacks (``promt_id``, ``corect``) is a
    problem, since dropping it would lose data silently; any other extra column is dropped with a note.
    """
    missing = [c for c in required if c not in df.columns]
    for c in missing:
        problems.append(f'{name} must have column "{c}", got none.{did_you_mean(c, df.columns)}')
    absent = [c for c in schema if c not in df.columns]
    extra = []
    for c in df.columns:
        if c in schema:
            continue
        hint = did_you_mean(c, absent)
        if hint:
            problems.append(
                f'{name} must not have column "{c}" (unexpected).{hint} '
                f"Rename it or drop it; allowed columns: {', '.join(schema)}."
            )
        else:
            extra.append(c)
    return extra


def _note_dropped(extra: list[str], name: str) -> None:
    if extra:
        shown = ", ".join(extra[:8]) + (", …" if len(extra) > 8 else "")
        warnings.warn(ExtraColumnsWarning(
            f"{name}: dropped {len(extra)} column(s) outside the contract ({shown}); rename one to a contract "
            "column to use it."), stacklevel=3)


def _difficulty_labels(df: pl.DataFrame) -> pl.DataFrame:
    """A text ``difficulty`` (easy / medium / hard, as in LiveCodeBench exports) becomes ``difficulty_label``."""
    if "difficulty" not in df.columns or df.schema["difficulty"] not in (pl.String(), pl.Categorical()) \
            and not isinstance(df.schema["difficulty"], pl.Enum):
        return df
    text = df.get_column("difficulty").cast(pl.String)
    if not (text.is_not_null() & text.cast(pl.Float64, strict=False).is_null()).any():
        return df  # numbers written as text: cast as usual
    return df.with_columns(text.alias("difficulty_label"), pl.lit(None, dtype=pl.Float64).alias("difficulty"))


def _check_values(df: pl.DataFrame, key: tuple[str, ...], required: tuple[str, ...],
                  problems: list[str]) -> None:
    for c in required:
        nulls = df.get_column(c).null_count()
        if nulls:
            problems.append(f'column "{c}" must not be null, got {nulls} null value(s). Fill or drop those rows.')
    for c in _NONNEGATIVE + ("samples", "correct_samples", "sample_idx"):
        if c in df.columns:
            neg = df.filter(pl.col(c) < 0).get_column(c).to_list()
            if neg:
                problems.append(f'column "{c}" must be >= 0, got {len(neg)} negative value(s) ({_examples(neg)}).')
    for c in _FLOAT_COLUMNS:
        if c in df.columns:
            bad = df.filter(pl.col(c).is_nan() | pl.col(c).is_infinite()).get_column(c).to_list()
            if bad:
                problems.append(f'column "{c}" must be finite or null, got {len(bad)} non-finite value(s) '
                                f"({_examples(bad)}). Replace NaN/inf with null.")
    if all(c in df.columns for c in key):
        dup = df.group_by(list(key)).len().filter(pl.col("len") > 1).sort(list(key))
        if dup.height:
            ex = [tuple(r[:-1]) for r in dup.head(_MAX_EXAMPLES).iter_rows()]
            problems.append(f"key ({', '.join(key)}) must be unique, got {dup.height} duplicated key(s) "
                            f"({_examples(ex)}). Drop the duplicates or renumber.")


def split_configs_by_dataset(table: pl.DataFrame) -> pl.DataFrame:
    """Rename ``config`` to ``"config [dataset]"`` for config names that span several datasets.

    A configuration is a (config, dataset) pair: the shared self-consistency tables use one config
    name for AddSub and AQuA, and curves, features and fits must not pool them. Validation applies
    this, so every table that entered through a validator is already split.
    """
    if "dataset" not in table.columns or table["dataset"].null_count() == table.height:
        return table
    multi = (table.select("config", "dataset").unique().group_by("config").len()
             .filter(pl.col("len") > 1)["config"].to_list())
    if not multi:
        return table
    return table.with_columns(
        pl.when(pl.col("config").is_in(multi) & pl.col("dataset").is_not_null())
        .then(pl.concat_str([pl.col("config"), pl.lit(" ["), pl.col("dataset"), pl.lit("]")]))
        .otherwise(pl.col("config")).alias("config"))


def validate_sample_table(df: pl.DataFrame, name: str = "SampleTable") -> pl.DataFrame:
    """Check a SampleTable, add absent optional columns as nulls, cast and sort it.

    Raises :class:`SchemaError` listing every problem found.
    """
    problems: list[str] = []
    if df.height == 0:
        problems.append(f"{name} must have at least one row, got an empty table.")
    extra = _check_columns(df, SAMPLE_SCHEMA, SAMPLE_REQUIRED, name, problems)
    df = df.select([c for c in df.columns if c in SAMPLE_SCHEMA])
    df = _cast_columns(df, SAMPLE_SCHEMA, problems)
    _check_values(df, SAMPLE_KEY, tuple(c for c in SAMPLE_REQUIRED if c in df.columns), problems)
    if all(c in df.columns for c in SAMPLE_KEY) and df.height and not any("sample_idx" in p for p in problems):
        spans = (df.group_by(["config", "prompt_id"])
                 .agg(pl.len().alias("k"), pl.col("sample_idx").min().alias("lo"),
                      pl.col("sample_idx").max().alias("hi"))
                 .filter((pl.col("lo") != 0) | (pl.col("hi") != pl.col("k") - 1))
                 .sort(["config", "prompt_id"]))
        if spans.height:
            ex = [f"{r['config']}/{r['prompt_id']}: {r['k']} samples numbered {r['lo']}..{r['hi']}"
                  for r in spans.head(_MAX_EXAMPLES).iter_rows(named=True)]
            problems.append(f"sample_idx must run 0..k-1 without gaps per (config, prompt_id), got "
                            f"{spans.height} prompt(s) with gaps ({_examples(ex)}). Renumber sample_idx.")
    if problems:
        raise SchemaError(name, problems)
    _note_dropped(extra, name)
    for c, dtype in SAMPLE_SCHEMA.items():
        if c not in df.columns:
            df = df.with_columns(pl.lit(None, dtype=dtype).alias(c))
    return split_configs_by_dataset(df.select(list(SAMPLE_SCHEMA))).sort(list(SAMPLE_KEY))


def validate_count_table(df: pl.DataFrame, name: str = "CountTable") -> pl.DataFrame:
    """Check a CountTable, add absent optional columns as nulls, cast and sort it.

    >>> validate_count_table(pl.DataFrame({"config": ["c"], "prompt_id": ["p"],
    ...     "samples": [10], "correct_samples": [3]})).height
    1
    """
    problems: list[str] = []
    if df.height == 0:
        problems.append(f"{name} must have at least one row, got an empty table.")
    df = _difficulty_labels(df)
    extra = _check_columns(df, COUNT_SCHEMA, COUNT_REQUIRED, name, problems)
    df = df.select([c for c in df.columns if c in COUNT_SCHEMA])
    df = _cast_columns(df, COUNT_SCHEMA, problems)
    _check_values(df, COUNT_KEY, tuple(c for c in COUNT_REQUIRED if c in df.columns), problems)
    if "samples" in df.columns and "correct_samples" in df.columns:
        over = df.filter(pl.col("correct_samples") > pl.col("samples"))
        if over.height:
            ex = [f"{r.get('prompt_id')}: {r['correct_samples']} > {r['samples']}" for r in over.head(3).iter_rows(named=True)]
            problems.append(f"correct_samples must be <= samples, got {over.height} row(s) above ({_examples(ex)}).")
        zero = df.filter(pl.col("samples") == 0).height
        if zero:
            problems.append(f"samples must be >= 1, got {zero} row(s) with 0 samples. Drop those rows.")
    if problems:
        raise SchemaError(name, problems)
    _note_dropped(extra, name)
    for c, dtype in COUNT_SCHEMA.items():
        if c not in df.columns:
            df = df.with_columns(pl.lit(None, dtype=dtype).alias(c))
    return split_configs_by_dataset(df.select(list(COUNT_SCHEMA))).sort(list(COUNT_KEY))


def has_values(df: pl.DataFrame, column: str) -> bool:
    """True when ``column`` exists and holds at least one non-null value."""
    return column in df.columns and df.get_column(column).null_count() < df.height


__all__ = [
    "SAMPLE_SCHEMA", "COUNT_SCHEMA", "SAMPLE_REQUIRED", "COUNT_REQUIRED", "ExtraColumnsWarning",
    "validate_sample_table", "validate_count_table", "is_count_table", "has_values",
    "split_configs_by_dataset", "table_kind", "TableKind",
]
