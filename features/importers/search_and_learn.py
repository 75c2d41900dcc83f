"""huggingface/search-and-learn output datasets → SampleTable.

Layout (``src/sal/search/best_of_n.py`` and ``src/sal/utils/score.py`` in huggingface/search-and-learn;
datasets such as ``HuggingFaceH4/MATH-500`` supply ``problem``, ``solution``, ``answer``, ``subject``,
``level``, ``unique_id``): one row per problem with ``completions`` (list of N texts), ``scores`` (per
completion, the PRM's list of step scores), ``completion_tokens`` (list of N ints), ``pred`` and, after
scoring, ``agg_scores``, ``preds``, ``pred_weighted@n`` / ``pred_maj@n`` / ``pred_naive@n``. Saved as
JSONL (``save_dataset`` writes ``<output_dir>/<approach>_completions.jsonl``) or pushed as parquet.

Mapping: one row per completion; ``prompt_id = unique_id`` (else the row number), ``text`` = the
completion, ``answer`` = :func:`ttsplan.features.grading.extract_answer` (``\\boxed{}``, as sal's
``extract_completion_answers``), ``correct`` = graded against ``answer`` (the gold column),
``output_tokens = completion_tokens[i]``, ``reward`` = the completion's step scores aggregated by
``reward_agg``: ``last`` (sal's default ``agg_strategy``), ``min``, ``prod`` or ``mean``. A completion
scored by an outcome reward model (one float instead of a list) keeps that float. The ``pred_*``
columns are per problem (a vote over completions), so they are listed in the provenance, not imported.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

from ttsplan.features.errors import TtsplanError, did_you_mean
from ttsplan.features.importers.base import (
    ImportResult,
    PathLike,
    apply_mapping,
    expand_paths,
    extract_answers,
    finish,
    grade_answers,
    map_hint,
    raise_problems,
    read_frame,
    rows_where,
)

FMT = "search-and-learn"
REWARD_AGGS = ("last", "min", "prod", "mean")
_LIST_FIELDS = ("completions", "scores", "completion_tokens")


def aggregate_step_scores(scores: pl.Expr, how: str) -> pl.Expr:
    """Per-completion reward from a list of step scores (sal ``aggregate_scores``; plus ``mean``)."""
    if how == "last":
        return scores.list.last()
    if how == "min":
        return scores.list.min()
    if how == "prod":
        return scores.list.eval(pl.element().product()).list.first()
    if how == "mean":
        return scores.list.mean()
    raise TtsplanError(f"--reward-agg must be one of {', '.join(REWARD_AGGS)}, got {how!r}.{did_you_mean(how, REWARD_AGGS)}")


def read_search_and_learn(paths: PathLike | Sequence[PathLike], *, config: str | None = None,
                          model: str | None = None, dataset: str | None = None, reward_agg: str = "last",
                          kind: str = "math", mapping: Mapping[str, str] | None = None) -> ImportResult:
    """Read search-and-learn completions (JSONL or parquet, files or directories) into a SampleTable."""
    aggregate_step_scores(pl.col("x"), reward_agg)  # validates the option before any reading
    files = expand_paths(paths, (".jsonl", ".json", ".parquet", ".pq"), FMT)
    problems: list[str] = []
    frames = []
    pred_cols: set[str] = set()
    for f in files:
        df = read_frame(f, problems)
        if df is None:
            continue
        df = apply_mapping(df, mapping, FMT, str(f), problems)
        local = []
        for name, what in (("completions", "list of completion texts"), ("answer", "gold answer")):
            if name not in df.columns:
                local.append(f'{f}: field "{name}" ({what}) must be present, got none.'
                             f"{did_you_mean(name, df.columns)} {map_hint(name)}")
        if "completions" in df.columns and not isinstance(df.schema["completions"], pl.List):
            local.append(f'{f}: field "completions" must be a list of strings per problem, got {df.schema["completions"]}. '
                         f"{map_hint('completions')}")
        if "scores" in df.columns and not (isinstance(df.schema["scores"], pl.List)):
            local.append(f'{f}: field "scores" must be a list (per completion: step scores or one score), got '
                         f'{df.schema["scores"]}. {map_hint("scores")}')
        if "completion_tokens" in df.columns and not isinstance(df.schema["completion_tokens"], pl.List):
            local.append(f'{f}: field "completion_tokens" must be a list of ints per problem, got '
                         f'{df.schema["completion_tokens"]}. {map_hint("completion_tokens")}')
        if local:
            problems.extend(local)
            continue
        present = [c for c in _LIST_FIELDS if c in df.columns]
        n = df.get_column("completions").list.len()
        for c in present[1:]:
            other = df.get_column(c).list.len()
            ragged = (other != n) & df.get_column(c).is_not_null()
            if ragged.any():
                problems.append(f'{f}: field "{c}" must have one entry per completion, got a different length on '
                                f"{int(ragged.sum())} row(s) (row {rows_where(ragged)}).")
        if "prompt_id" not in df.columns:
            pid = pl.col("unique_id").cast(pl.String) if "unique_id" in df.columns else \
                pl.int_range(pl.len()).cast(pl.String)
            df = df.with_columns(pid.alias("prompt_id"))
        pred_cols.update(c for c in df.columns if c.startswith("pred"))
        cols = ["prompt_id", "answer", *present]
        frames.append(df.select(cols).with_columns(pl.lit(f.stem).alias("_stem")))
    raise_problems(FMT, problems)
    df = pl.concat(frames, how="diagonal_relaxed")
    present = [c for c in _LIST_FIELDS if c in df.columns]
    df = df.with_columns(pl.int_ranges(pl.col("completions").list.len(), dtype=pl.Int32).alias("sample_idx"))
    df = df.explode(["sample_idx", *present]).filter(pl.col("sample_idx").is_not_null())
    df = df.rename({"completions": "text"}).with_columns(pl.col("answer").cast(pl.String).alias("gold"))
    notes = []
    if "scores" in df.columns:
        s = df.schema["scores"]
        reward = aggregate_step_scores(pl.col("scores"), reward_agg) if isinstance(s, pl.List) else pl.col("scores")
        df = df.with_columns(reward.cast(pl.Float64).alias("reward"))
        notes.append(f"reward = PRM step scores aggregated by {reward_agg!r}" if isinstance(s, pl.List)
                     else "reward = the completion's single score")
    if "completion_tokens" in df.columns:
        df = df.with_columns(pl.col("completion_tokens").cast(pl.Int32).alias("output_tokens"))
    df = df.with_columns(extract_answers(df.get_column("text"), kind).alias("answer"))
    df = df.with_columns(grade_answers(df.get_column("answer"), df.get_column("gold")).alias("correct"))
    mname = model or "search-and-learn"
    df = df.with_columns(pl.lit(mname).alias("model"),
                         (pl.lit(dataset) if dataset else pl.col("_stem")).alias("dataset"),
                         (pl.lit(config) if config else pl.lit(f"{mname}/") + pl.col("_stem")).alias("config"))
    notes.append(f"answers: ttsplan.features.grading.extract_answer(text, {kind!r}); graded against `answer`")
    return finish(df, FMT, files, {"config": config, "model": model, "dataset": dataset, "reward_agg": reward_agg,
                                    "kind": kind, "map": dict(mapping or {})}, notes,
                  {"reward_aggregation": reward_agg, "per_problem_columns_not_imported": sorted(pred_cols)})


__all__ = ["REWARD_AGGS", "aggregate_step_scores", "read_search_and_learn"]
