"""Shared plumbing for the importers: path expansion, field checks, answer extraction and grading
on whole columns, and the final validation + provenance.

Every importer collects **all** problems of a file (missing fields, wrong types, ragged lists) and
raises one :class:`~ttsplan.features.errors.SchemaError` whose lines say how to map a field
(``--map FIELD=<your field>``). Nothing is written until the table has validated.

>>> import polars as pl
>>> grade_answers(pl.Series(["4", "4.0", "x", None]), pl.Series(["4", "4", "y", "4"])).to_list()
[True, True, False, False]
"""
from __future__ import annotations

import datetime as _dt
import io
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from ttsplan.features.errors import SchemaError, TtsplanError, did_you_mean
from ttsplan.features.grading import extract_answer, grade
from ttsplan.features.jsonl import iter_json_objects
from ttsplan.features.schema import SAMPLE_SCHEMA, validate_sample_table

PathLike = str | os.PathLike
_SHOW = 3


@dataclass(frozen=True)
class ImportResult:
    """A validated SampleTable and the provenance stored in the parquet metadata."""

    table: pl.DataFrame
    provenance: dict = field(default_factory=dict)

    def summary(self) -> pl.DataFrame:
        """One row per configuration: prompts, samples, samples per prompt, accuracy, filled columns."""
        t = self.table
        filled = [c for c in SAMPLE_SCHEMA if c not in ("config", "prompt_id", "sample_idx")
                  and t.get_column(c).null_count() < t.height]
        per = t.group_by("config", "prompt_id").len()
        out = (t.group_by("config")
               .agg(pl.col("prompt_id").n_unique().alias("prompts"), pl.len().alias("samples"),
                    pl.col("correct").cast(pl.Float64).mean().alias("accuracy"))
               .join(per.group_by("config").agg(pl.col("len").min().alias("k_min"),
                                                 pl.col("len").max().alias("k_max")), on="config")
               .with_columns(pl.lit(", ".join(filled)).alias("columns"))
               .sort("config"))
        return out.select("config", "prompts", "samples", "k_min", "k_max", "accuracy", "columns")


def map_hint(name: str) -> str:
    return f"Map it with --map {name}=<your field>."


def apply_mapping(df: pl.DataFrame, mapping: Mapping[str, str] | None, fmt: str, where: str,
                  problems: list[str]) -> pl.DataFrame:
    """Rename ``source`` columns to the ``target`` names the importer expects (``--map target=source``)."""
    if not mapping:
        return df
    renames = {}
    for target, source in mapping.items():
        if source in df.columns:
            if target != source:
                renames[source] = target
        else:
            problems.append(f'--map {target}={source}: field "{source}" must exist in {where}, got none.'
                            f"{did_you_mean(source, df.columns)} Fields: {', '.join(df.columns[:20])}.")
    clash = [t for s, t in renames.items() if t in df.columns and t not in renames]
    df = df.drop(clash) if clash else df
    return df.rename(renames)


def expand_paths(paths: PathLike | Sequence[PathLike], suffixes: tuple[str, ...], fmt: str,
                 pattern: str = "*") -> list[Path]:
    """Files given directly or found (recursively, matching ``pattern``) in directories."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files: list[Path] = []
    problems: list[str] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(f for f in p.rglob(pattern) if f.is_file() and _suffix(f) in suffixes)
            if not found:
                problems.append(f"{p}: directory must contain {fmt} files ({pattern}, {'/'.join(suffixes)}), got none.")
            files.extend(found)
        elif not p.exists():
            problems.append(f"{p}: file must exist, got no such file. Check the path.")
        elif _suffix(p) not in suffixes:
            problems.append(f"{p}: a {fmt} file must end in {' or '.join(suffixes)}, got "
                            f"'{_suffix(p) or '(none)'}'. Rename it or pick another format.")
        elif p.stat().st_size == 0:
            problems.append(f"{p}: file must not be empty, got 0 bytes.")
        else:
            files.append(p)
    if not files and not problems:
        problems.append(f"no input file given. Pass at least one {fmt} file.")
    if problems:
        raise TtsplanError(f"could not read the {fmt} input:\n" + "\n".join(f"  - {p}" for p in problems))
    return files


def _suffix(p: Path) -> str:
    return p.suffix.lower()


def read_json_lines(path: Path, problems: list[str]) -> list[dict]:
    """Parse a JSONL file line by line (used where lines are few and nested: lm-eval samples)."""
    out: list[dict] = []
    bad: list[str] = []
    for no, obj, reason in iter_json_objects(path):
        if obj is None:
            bad.append(f"line {no} ({reason})")
        else:
            out.append(obj)
    if bad:
        problems.append(f"{path}: every line must be one JSON object, got {len(bad)} bad line(s) "
                        f"({', '.join(bad[:_SHOW])}{', …' if len(bad) > _SHOW else ''}). Fix or drop them.")
    return out


def decode_jsonl(path: Path, schema: dict | None = None, head_lines: int = 1000) -> pl.DataFrame:
    """Fast JSONL reader: the lines as one string column (valid JSON never holds a raw ``\\x01``),
    decoded in parallel with ``schema`` (default: inferred from the first ``head_lines`` lines).
    Raises on any line the strict decoder rejects; callers fall back to ``pl.read_ndjson``."""
    lines = pl.read_csv(path, has_header=False, separator="\x01", quote_char=None, new_columns=["_l"],
                        schema={"_l": pl.String}).filter(pl.col("_l").str.strip_chars() != "")
    if schema is None:
        head = "\n".join(lines.get_column("_l").head(head_lines).to_list()).encode()
        schema = dict(pl.read_ndjson(io.BytesIO(head), infer_schema_length=None).schema)
    return lines.select(pl.col("_l").str.json_decode(pl.Struct(schema)).alias("_d")).unnest("_d")


def read_frame(path: Path, problems: list[str], schema: dict | None = None) -> pl.DataFrame | None:
    """Read JSONL / CSV / parquet into polars; a read error becomes one problem line."""
    suf = _suffix(path)
    if suf in (".jsonl", ".ndjson", ".json") and schema is None:
        try:
            return decode_jsonl(path)
        except Exception:  # noqa: BLE001, S110 - strict decoding failed: the lenient reader below decides
            pass
    try:
        if suf in (".parquet", ".pq"):
            df = pl.read_parquet(path)
            return df.select([c for c in schema if c in df.columns]) if schema else df
        if suf == ".csv":
            return pl.read_csv(path, infer_schema_length=10_000)
        if schema is not None:
            return pl.read_ndjson(path, schema=schema)
        return pl.read_ndjson(path, infer_schema_length=10_000)
    except Exception as exc:  # noqa: BLE001 - polars raises many types for malformed input
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        problems.append(f"{path}: must be a readable {suf.lstrip('.')} file, got a read error ({first[:200]}). "
                        "Check that every line is one JSON object.")
        return None


def rows_where(mask: pl.Series, offset: int = 1) -> str:
    """'rows 1, 4, 7, …' for the true positions of ``mask`` (1-based)."""
    idx = mask.arg_true().head(_SHOW).to_list()
    more = ", …" if mask.sum() > _SHOW else ""
    return ", ".join(str(i + offset) for i in idx) + more


# ------------------------------------------------------------------------------ answers and grading
_PLAIN_NUM = r"^[-+]?\d+(?:\.\d+)?$"
_FLAT_BOX = r"\\boxed\{([^{}]*)\}"


def extract_answers(texts: pl.Series, kind: str | pl.Series = "math") -> pl.Series:
    """:func:`ttsplan.features.grading.extract_answer` on a whole column.

    Two plain cases are handled in polars, giving what ``extract_answer`` returns: texts whose every
    ``\\boxed{…}`` is flat (no nested braces, no ``\\fbox``: the last box, stripped) and texts ending
    in "answer is <digits>." with one "answer is" and no box. The rest go through
    ``extract_answer`` once per distinct (text, kind).
    """
    df = pl.DataFrame({"text": texts.cast(pl.String)}).with_row_index("_i")
    df = df.with_columns(kind.cast(pl.String).alias("kind") if isinstance(kind, pl.Series)
                         else pl.lit(kind, pl.String).alias("kind"))
    t = pl.col("text")
    fast = (df.filter((pl.col("kind") == "math") & t.str.contains("\\boxed{", literal=True)
                      & ~t.str.contains("\\fbox{", literal=True))
            .select("_i", t.str.extract_all(_FLAT_BOX).alias("_flat"), t.str.count_matches(r"\\boxed\{").alias("_nb"))
            .filter(pl.col("_nb") == pl.col("_flat").list.len())
            .select("_i", pl.col("_flat").list.last().str.strip_prefix("\\boxed{").str.strip_suffix("}")
                    .str.strip_chars().alias("_fast")))
    # "…the answer is 42." at the very end, "answer is" once and no box: what extract_answer's first
    # pattern returns; anything less plain (decimals, signs, a trailing newline, …) takes the slow path
    plain = (df.filter((pl.col("kind") == "math") & ~t.str.contains("\\boxed{", literal=True)
                       & ~t.str.contains("\\fbox{", literal=True) & (t.str.count_matches(r"(?i)answer is") == 1))
             .select("_i", t.str.extract(r"(?i)answer is ([0-9]+)\.$", 1).alias("_plain"))
             .filter(pl.col("_plain").is_not_null()))
    fast = pl.concat([fast, plain.rename({"_plain": "_fast"})])
    df = df.join(fast, on="_i", how="left", maintain_order="left")
    slow = df.filter(pl.col("_fast").is_null() & t.is_not_null()).select("text", "kind").unique()
    if slow.height:
        vals = [extract_answer(x, k) for x, k in zip(slow.get_column("text").to_list(),
                                                      slow.get_column("kind").to_list())]
        slow = slow.with_columns(pl.Series("_slow", vals, pl.String))
        df = df.join(slow, on=["text", "kind"], how="left", maintain_order="left")
    else:
        df = df.with_columns(pl.lit(None, pl.String).alias("_slow"))
    return df.select(pl.coalesce("_fast", "_slow").alias("answer")).to_series()


def grade_answers(pred: pl.Series, gold: pl.Series) -> pl.Series:
    """:func:`ttsplan.features.grading.grade` on whole columns: null where gold is null, False where pred is null.

    Pairs of plain decimal numbers are compared in polars (relative tolerance 1e-6, as ``grade``);
    every other distinct pair goes through ``grade`` once.
    """
    df = pl.DataFrame({"pred": pred.cast(pl.String), "gold": gold.cast(pl.String)})
    p, g = pl.col("pred").str.strip_chars(), pl.col("gold").str.strip_chars()
    plain = p.str.contains(_PLAIN_NUM) & g.str.contains(_PLAIN_NUM)
    pf, gf = p.cast(pl.Float64, strict=False), g.cast(pl.Float64, strict=False)
    close = (pf == gf) | ((pf - gf).abs() <= 1e-6 * pl.max_horizontal(pf.abs(), gf.abs()))
    df = df.with_columns(plain.fill_null(False).alias("plain"), close.alias("close"))
    slow = df.filter(~pl.col("plain") & pl.col("pred").is_not_null() & pl.col("gold").is_not_null()) \
             .select("pred", "gold").unique()
    if slow.height:
        vals = [grade(a, b) for a, b in zip(slow.get_column("pred").to_list(), slow.get_column("gold").to_list())]
        slow = slow.with_columns(pl.Series("graded", vals, pl.Boolean))
        df = df.join(slow, on=["pred", "gold"], how="left", maintain_order="left", nulls_equal=False)
    else:
        df = df.with_columns(pl.lit(None, pl.Boolean).alias("graded"))
    out = (pl.when(pl.col("gold").is_null()).then(pl.lit(None, pl.Boolean))
           .when(pl.col("pred").is_null()).then(pl.lit(False))
           .when(pl.col("plain")).then(pl.col("close"))
           .otherwise(pl.col("graded")))
    return df.select(out.alias("correct")).to_series()


# ----------------------------------------------------------------------------------- finishing
def number_samples(df: pl.DataFrame) -> pl.DataFrame:
    """``sample_idx`` = order of appearance within (config, prompt_id)."""
    return df.with_columns(pl.int_range(pl.len(), dtype=pl.Int32).over("config", "prompt_id").alias("sample_idx"))


def source_info(files: Sequence[Path]) -> list[dict]:
    return [{"path": str(f), "bytes": f.stat().st_size,
             "modified_utc": _dt.datetime.fromtimestamp(f.stat().st_mtime, _dt.timezone.utc).isoformat()}
            for f in files]


def finish(df: pl.DataFrame, fmt: str, files: Sequence[Path], options: dict, notes: list[str],
           extra: dict | None = None) -> ImportResult:
    """Validate as a SampleTable (every problem in one error) and attach provenance."""
    keep = [c for c in SAMPLE_SCHEMA if c in df.columns]
    table = validate_sample_table(df.select(keep), name=f"{fmt} import")
    from importlib.metadata import PackageNotFoundError, version

    try:
        ver = version("ttsplan")
    except PackageNotFoundError:  # pragma: no cover - editable installs normally have metadata
        ver = "unknown"
    prov = {"source_format": fmt, "sources": source_info(files), "importer": f"ttsplan.features.importers ({fmt})",
            "options": {k: v for k, v in options.items() if v is not None}, "notes": notes,
            "rows": table.height, "prompts": table.select("config", "prompt_id").unique().height,
            "grader": "ttsplan.features.grading.grade (plain numbers compared in polars, rel. tol. 1e-6)",
            "ttsplan_version": ver, "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    prov.update(extra or {})
    return ImportResult(table, prov)


def require_repeats(table: pl.DataFrame, fmt: str, fix: str) -> str | None:
    """Refuse a table with one sample per prompt in every configuration; name the ones that have one.

    One sample per prompt gives pass@1 only: no scaling curve, nothing for ``ttsplan plan`` to compare.
    Raises :class:`TtsplanError` (``fix`` says how to rerun the tool) when no configuration has a prompt
    with more than one sample; returns a note naming such configurations in a mixed import, else None.
    """
    most = table.group_by("config", "prompt_id").len().group_by("config").agg(pl.col("len").max()).sort("config")
    single = most.filter(pl.col("len") == 1).get_column("config").to_list()
    if not single:
        return None
    shown = ", ".join(repr(c) for c in single[:_SHOW]) + (", …" if len(single) > _SHOW else "")
    if len(single) == most.height:
        prompts = table.select("config", "prompt_id").unique().height
        raise TtsplanError(f"{fmt} import must have more than one sample per prompt, got one sample for each of "
                           f"the {prompts} prompts (configuration{'s' if len(single) > 1 else ''} {shown}): one "
                           f"sample per prompt cannot give scaling curves (pass@k, maj@k for k > 1) or a plan. {fix}")
    return (f"configuration{'s' if len(single) > 1 else ''} {shown}: one sample per prompt, so pass@1 only "
            f"(no scaling curve). {fix}")


def raise_problems(fmt: str, problems: list[str]) -> None:
    if problems:
        raise SchemaError(f"{fmt} import", problems)


def safe_name(text: str) -> str:
    return re.sub(r"\s+", "_", text.strip())


__all__ = [
    "ImportResult",
    "apply_mapping",
    "expand_paths",
    "extract_answers",
    "finish",
    "grade_answers",
    "map_hint",
    "number_samples",
    "raise_problems",
    "read_frame",
    "read_json_lines",
    "require_repeats",
]


def choose_logged(path: Path, option: str, logged: Sequence[str], chosen: str | None, problems: list[str],
                  notes: list[str], why: str) -> str | None:
    """The one of ``logged`` (scorers, filters, …) to import: ``chosen`` or the first. An unknown name is a
    problem (with the logged names); several logged adds a note (``why``). None when it is a problem."""
    pick = chosen or logged[0]
    if pick not in logged:
        problems.append(f"{path}: --{option} must be one of the logged {option}s ({', '.join(logged)}), got "
                        f"{pick!r}.{did_you_mean(pick, logged)}")
        return None
    if len(logged) > 1:
        notes.append(f"{path.name}: {option}s {list(logged)}; kept {pick!r} ({why})")
    return pick

