"""OpenAI-compatible batch output JSONL (``vllm run-batch``, the OpenAI Batch API) → SampleTable.

Layout (``BatchRequestOutput`` / ``BatchResponseData`` in vllm-project/vllm
``vllm/entrypoints/openai/run_batch.py``; https://platform.openai.com/docs/guides/batch): one line per
request ``{"id", "custom_id", "response": {"status_code", "request_id", "body"}, "error"}`` where
``body`` is a chat completion (``choices[*].message.content``, ``choices[*].logprobs.content[*].logprob``)
or a text completion (``choices[*].text``, ``choices[*].logprobs.token_logprobs``), with
``choices[*].finish_reason`` and ``usage.{prompt_tokens, completion_tokens}``.

Mapping: one row per choice. ``custom_id`` ``<config>::<prompt_id>`` (what ``ttsplan export`` writes)
or ``<config>::<prompt_id>::<j>`` (one request per sample) gives config and prompt id; any other id is
the prompt id and the config is ``--config`` (default: the response's ``model``). ``sample_idx``
follows file order, then choice ``index``. ``logprob`` = sum of the token log-probabilities and
``output_tokens`` = their count when logprobs were requested; otherwise ``output_tokens`` comes from
``usage.completion_tokens`` only for single-choice responses (usage is per request).
``prompt_tokens = usage.prompt_tokens``. Gold answers come from a prompts file (JSONL ``{id, prompt,
answer}``, as ``ttsplan sample`` reads); answers are extracted with
:func:`ttsplan.features.grading.extract_answer` (per-prompt ``kind`` from the prompts file when it has one)
and graded with :func:`ttsplan.features.grading.grade`. Failed requests (``error`` set or status ≠ 200) are
skipped and counted in the provenance.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import polars as pl

from ttsplan.features.errors import SchemaError, TtsplanError, did_you_mean
from ttsplan.features.importers.base import (
    ImportResult,
    PathLike,
    expand_paths,
    extract_answers,
    finish,
    grade_answers,
    map_hint,
    raise_problems,
    read_frame,
    rows_where,
)

FMT = "openai-batch"
SEP = "::"


class FailedRequestsWarning(UserWarning):
    """Some batch requests failed and were skipped."""


_S = pl.Struct
_CHOICE = _S({"index": pl.Int64, "message": _S({"content": pl.String}), "text": pl.String,
              "finish_reason": pl.String,
              "logprobs": _S({"content": pl.List(_S({"logprob": pl.Float64})),
                              "token_logprobs": pl.List(pl.Float64)})})
SCHEMA = {"custom_id": pl.String,
          "response": _S({"status_code": pl.Int64,
                          "body": _S({"model": pl.String, "choices": pl.List(_CHOICE),
                                      "usage": _S({"prompt_tokens": pl.Int64, "completion_tokens": pl.Int64})})}),
          "error": pl.String}


_ERROR_SET = r'"error"\s*:\s*[^n\s]'


def _read_batch_file(path: Path, schema: dict, problems: list[str]) -> pl.DataFrame | None:
    """Fast path: the lines as one string column, decoded with the schema in parallel (``error`` is
    only tested for being set, since servers write a string or an object there). Files the strict
    decoder rejects (a number where a string belongs, …) are read again with the lenient reader."""
    try:
        lines = pl.read_csv(path, has_header=False, separator="\x01", quote_char=None, new_columns=["_l"],
                            schema={"_l": pl.String}).filter(pl.col("_l").str.strip_chars() != "")
        dec = {k: v for k, v in schema.items() if k != "error"}
        return lines.select(pl.col("_l").str.json_decode(pl.Struct(dec)).alias("_d"),
                            pl.when(pl.col("_l").str.contains(_ERROR_SET)).then(pl.lit("error"))
                            .otherwise(pl.lit(None, pl.String)).alias("error")).unnest("_d")
    except Exception:  # noqa: BLE001 - any decoder failure: fall back to the lenient reader
        return read_frame(path, problems, schema=schema)


def read_prompt_answers(path: PathLike) -> pl.DataFrame:
    """``prompt_id, gold, kind, dataset`` from a prompts JSONL ``{id, prompt, answer[, kind, dataset]}``."""
    p = Path(path)
    if not p.is_file():
        raise TtsplanError(f"--prompts {p} must be an existing JSONL file, got no such file. Check the path.")
    problems: list[str] = []
    df = read_frame(p, problems) if p.suffix.lower() in (".jsonl", ".json", ".parquet", ".csv") else None
    if df is None:
        raise TtsplanError(problems[0] if problems else f"--prompts {p} must end in .jsonl, got '{p.suffix}'.")
    idcol = "id" if "id" in df.columns else "prompt_id" if "prompt_id" in df.columns else None
    if idcol is None:
        problems.append(f'--prompts {p}: field "id" must be present, got none.{did_you_mean("id", df.columns)}')
    if "answer" not in df.columns:
        problems.append(f'--prompts {p}: field "answer" (the gold answer) must be present, got none.'
                        f"{did_you_mean('answer', df.columns)} Fields: {', '.join(df.columns)}.")
    if problems:
        raise TtsplanError("could not read the prompts file:\n" + "\n".join(f"  - {x}" for x in problems))
    cols = [pl.col(idcol).cast(pl.String).alias("prompt_id"), pl.col("answer").cast(pl.String).alias("gold")]
    cols.append(pl.col("kind").cast(pl.String) if "kind" in df.columns else pl.lit(None, pl.String).alias("kind"))
    cols.append(pl.col("dataset").cast(pl.String).alias("prompts_dataset") if "dataset" in df.columns
                else pl.lit(p.stem).alias("prompts_dataset"))
    out = df.select(cols)
    dup = out.get_column("prompt_id").is_duplicated()
    if dup.any():
        raise TtsplanError(f"--prompts {p}: \"id\" must be unique, got {int(dup.sum())} duplicated row(s) "
                           f"(row {rows_where(dup)}).")
    return out


def _successful_lines(f: Path, df: pl.DataFrame, index: int, problems: list[str]) -> tuple[pl.DataFrame | None, int]:
    """The successful lines of batch file ``f`` (``custom_id``, ``body``, ``_line``, ``_file`` = ``index``)
    and the number of failed requests; ``None`` (and its problems appended) when a line lacks ``custom_id``
    or holds neither choices nor an error."""
    local = []
    miss_id = df.get_column("custom_id").is_null()
    if miss_id.all():
        local.append(f'{f}: field "custom_id" must be on every line, got none. {map_hint("custom_id")}')
    elif miss_id.any():
        local.append(f'{f}: field "custom_id" must be on every line, got it missing on {int(miss_id.sum())} '
                     f"line(s) (line {rows_where(miss_id)}). {map_hint('custom_id')}")
    resp = df.get_column("response")
    err = df.get_column("error")
    no_resp = resp.is_null() & err.is_null()
    ok = resp.is_not_null() & (resp.struct.field("status_code").fill_null(200) == 200) & err.is_null()
    body = resp.struct.field("body")
    no_choices = ok & (body.is_null() | body.struct.field("choices").is_null())
    if (no_resp | no_choices).all():
        local.append(f'{f}: field "response.body.choices" must be on every successful line, got none on any '
                     "line: is this a batch *output* file (not the request file)? Each line needs "
                     '{"custom_id", "response": {"status_code", "body": {"choices": [...]}}, "error"}.')
    elif (no_resp | no_choices).any():
        bad = no_resp | no_choices
        local.append(f'{f}: field "response.body.choices" (or "error" for a failed request) must be on every '
                     f"line, got neither on {int(bad.sum())} line(s) (line {rows_where(bad)}).")
    if local:
        problems.extend(local)
        return None, 0
    frame = df.filter(ok).select(
        pl.col("custom_id"), pl.col("response").struct.field("body").alias("body"),
        pl.int_range(pl.len()).alias("_line")).with_columns(pl.lit(index).alias("_file"))
    return frame, int((~ok).sum())


def _choice_rows(df: pl.DataFrame) -> pl.DataFrame:
    """One row per returned choice: text, finish reason, summed token logprobs (null when any is missing),
    prompt tokens and output tokens (the choice's token count, else the usage of a single-choice response)."""
    b = pl.col("body")
    df = df.select(
        "custom_id", "_file", "_line", b.struct.field("model").alias("resp_model"),
        b.struct.field("usage").struct.field("prompt_tokens").alias("prompt_tokens"),
        b.struct.field("usage").struct.field("completion_tokens").alias("usage_tokens"),
        b.struct.field("choices").list.len().alias("_nchoices"),
        b.struct.field("choices").alias("choice"))
    df = df.explode("choice").filter(pl.col("choice").is_not_null())
    c = pl.col("choice")
    lp = c.struct.field("logprobs")
    chat_lp = lp.struct.field("content").list.eval(pl.element().struct.field("logprob"))
    text_lp = lp.struct.field("token_logprobs")
    token_lps = pl.when(chat_lp.is_not_null()).then(chat_lp).otherwise(text_lp)
    return df.with_columns(
        c.struct.field("index").fill_null(0).alias("_index"),
        pl.coalesce(c.struct.field("message").struct.field("content"), c.struct.field("text")).alias("text"),
        c.struct.field("finish_reason").alias("finish_reason"),
        pl.when(token_lps.list.eval(pl.element().null_count()).list.first() == 0)
        .then(token_lps.list.sum()).otherwise(None).alias("logprob"),
        token_lps.list.len().alias("_ntok"),
    ).with_columns(
        pl.when(pl.col("_ntok").is_not_null()).then(pl.col("_ntok"))
        .when(pl.col("_nchoices") == 1).then(pl.col("usage_tokens")).otherwise(None)
        .cast(pl.Int32).alias("output_tokens"),
        pl.when(pl.col("_ntok").is_null()).then(None).otherwise(pl.col("logprob")).alias("logprob"))


def _sample_keys(df: pl.DataFrame, config: str | None, model: str | None) -> pl.DataFrame:
    """``config``, ``prompt_id`` and ``sample_idx`` from ``custom_id`` (``config<SEP>prompt<SEP>j``), in the
    explicit sample order, then file, line and choice order; ``model`` from the option or the response."""
    parts = pl.col("custom_id").str.split(SEP)
    nparts = parts.list.len()
    j = parts.list.get(2, null_on_oob=True).cast(pl.Int64, strict=False)
    default_cfg = pl.lit(config) if config else pl.coalesce(pl.lit(model), pl.col("resp_model"), pl.lit("openai-batch"))
    df = df.with_columns(
        pl.when(nparts >= 2).then(parts.list.get(0)).otherwise(default_cfg).alias("config"),
        pl.when(nparts >= 2).then(parts.list.get(1)).otherwise(pl.col("custom_id")).alias("prompt_id"),
        pl.when(nparts >= 3).then(j).otherwise(None).alias("_j"))
    if config:
        df = df.with_columns(pl.lit(config).alias("config"))
    df = df.sort(["config", "prompt_id", "_j", "_file", "_line", "_index"], nulls_last=True, maintain_order=True)
    return df.with_columns(pl.int_range(pl.len(), dtype=pl.Int32).over("config", "prompt_id").alias("sample_idx"),
                           pl.coalesce(pl.lit(model), pl.col("resp_model")).alias("model"))


def _answers(df: pl.DataFrame, prompts: PathLike | None, kind: str, dataset: str | None) -> tuple[pl.DataFrame, str]:
    """Extracted answers, graded against the gold answers of ``prompts`` when given (every prompt id must be
    there), and the note saying how."""
    if prompts is None:
        df = df.with_columns(extract_answers(df.get_column("text"), kind).alias("answer"),
                             pl.lit(dataset).alias("dataset"))
        return df, "no --prompts file: `correct` is null (unlabeled); pass --prompts to grade"
    gold = read_prompt_answers(prompts)
    df = df.join(gold, on="prompt_id", how="left", maintain_order="left")
    unknown_ids = df.filter(pl.col("prompts_dataset").is_null()).get_column("prompt_id").unique().sort()
    if unknown_ids.len():
        shown = ", ".join(repr(x) for x in unknown_ids.head(3).to_list())
        msg = (f"prompt ids from custom_id must all be in --prompts {prompts}, got {unknown_ids.len()} unknown "
               f"({shown}{', …' if unknown_ids.len() > 3 else ''}). Pass the prompts file the requests were made from.")
        raise SchemaError(f"{FMT} import", [msg])
    kinds = pl.coalesce(pl.col("kind"), pl.lit(kind))
    df = df.with_columns(kinds.alias("kind"),
                         (pl.lit(dataset) if dataset else pl.col("prompts_dataset")).alias("dataset"))
    df = df.with_columns(extract_answers(df.get_column("text"), df.get_column("kind")).alias("answer"))
    df = df.with_columns(grade_answers(df.get_column("answer"), df.get_column("gold")).alias("correct"))
    return df, ("answers: ttsplan.features.grading.extract_answer(text, kind); graded against the prompts file's "
                "`answer` with ttsplan.features.grading.grade")


def read_openai_batch(paths: PathLike | Sequence[PathLike], *, prompts: PathLike | None = None,
                      config: str | None = None, model: str | None = None, dataset: str | None = None,
                      kind: str = "math", mapping: Mapping[str, str] | None = None) -> ImportResult:
    """Read batch output files (``vllm run-batch -o``, OpenAI Batch API output) into a SampleTable.

    ``mapping`` may rename ``custom_id`` (``--map custom_id=<field>``) for files written by other tools.
    """
    files = expand_paths(paths, (".jsonl", ".json"), FMT)
    problems: list[str] = []
    frames = []
    failed = 0
    schema = dict(SCHEMA)
    src_id = (mapping or {}).get("custom_id", "custom_id")
    if src_id != "custom_id":
        schema = {src_id: pl.String, **{k: v for k, v in SCHEMA.items() if k != "custom_id"}}
    unknown = [k for k in (mapping or {}) if k != "custom_id"]
    if unknown:
        problems.append(f"--map for {FMT} can rename only custom_id, got {', '.join(unknown)}. "
                        "Use the generic format for other layouts.")
    for f in files:
        df = _read_batch_file(f, schema, problems)
        if df is None:
            continue
        if src_id != "custom_id":
            df = df.rename({src_id: "custom_id"})
        frame, n_failed = _successful_lines(f, df, len(frames), problems)
        if frame is not None:
            failed += n_failed
            frames.append(frame)
    raise_problems(FMT, problems)
    if not frames or sum(f.height for f in frames) == 0:
        raise TtsplanError(f"{FMT} import: the files must hold at least one successful response, got "
                           f"{failed} failed request(s) and none successful.")
    df = _sample_keys(_choice_rows(pl.concat(frames)), config, model)
    df, note = _answers(df, prompts, kind, dataset)
    notes = [note]
    if failed:
        warnings.warn(f"{failed} failed batch request(s) skipped (error set or status != 200)",
                      FailedRequestsWarning, stacklevel=2)
        notes.append(f"{failed} failed request(s) skipped")
    if df.get_column("logprob").null_count() == df.height:
        notes.append("no logprobs in the responses: logprob null; output_tokens only for single-choice responses")
    return finish(df, FMT, files, {"prompts": None if prompts is None else str(prompts), "config": config,
                                    "model": model, "dataset": dataset, "kind": kind, "map": dict(mapping or {})},
                  notes, {"failed_requests": failed})


__all__ = ["SEP", "FailedRequestsWarning", "read_openai_batch", "read_prompt_answers"]
