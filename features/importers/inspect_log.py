"""inspect-ai eval logs (``.eval`` / ``.json``, any log format) → SampleTable.

Read through inspect-ai's own log API (:func:`inspect_ai.log.read_eval_log`, imported when a log is
read; ``pip install 'ttsplan[inspect]'``), so every log format and version inspect-ai reads is read.
A log holds one :class:`~inspect_ai.log.EvalSample` per (sample, epoch): with ``epochs=K`` a prompt
has K samples.

Mapping: one row per (sample id, epoch); ``prompt_id = str(id)``, ``sample_idx = epoch − 1``,
``text = output.completion``; ``correct`` is the scorer's own value (``C`` / ``I`` or 1 / 0 through
inspect-ai's ``value_to_float``); ``answer`` is the scorer's extracted ``Score.answer`` (empty → null)
or, when the scorer records no answer on any sample, :func:`ttsplan.features.grading.extract_answer`
of the text. ``output_tokens`` / ``prompt_tokens`` come from ``output.usage``, ``logprob`` is the sum
of the returned token log-probabilities (when requested), ``finish_reason`` is the stop reason
(``max_tokens`` → ``length``). ``config = <model>/<task>/<scorer>``, ``model = eval.model``,
``dataset = eval.task``. ``scorer`` picks one scorer when a log has several (default: the first).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from ttsplan.features.errors import TtsplanError
from ttsplan.features.importers.base import (
    ImportResult,
    PathLike,
    choose_logged,
    expand_paths,
    extract_answers,
    finish,
    raise_problems,
    require_repeats,
)

FMT = "inspect"
#: how to get more than one sample per prompt out of inspect-ai
EPOCHS_FIX = ("Rerun the task with epochs > 1: `inspect eval TASK --epochs 8`, or Task(..., epochs=8) / "
              "eval(..., epochs=8) in Python; each epoch is one more sample per prompt.")
_STOP = {"max_tokens": "length", "model_length": "length"}
_SHOW = 3


def _inspect_log_api() -> tuple[Any, Any]:
    try:
        from inspect_ai.log import read_eval_log
        from inspect_ai.scorer import value_to_float
    except ImportError as exc:
        raise TtsplanError("the inspect import must have inspect-ai installed, got it missing "
                           f"({exc}). Install it: pip install 'ttsplan[inspect]'.") from None
    return read_eval_log, value_to_float()


def _ids(items: list[str]) -> str:
    return ", ".join(items[:_SHOW]) + (", …" if len(items) > _SHOW else "")


def read_inspect(paths: PathLike | Sequence[PathLike], *, config: str | None = None, model: str | None = None,
                 dataset: str | None = None, scorer: str | None = None, kind: str = "math") -> ImportResult:
    """Read inspect-ai eval logs (files or directories of ``*.eval`` / ``*.json``) into a SampleTable.

    Raises one :class:`~ttsplan.features.errors.SchemaError` naming every problem (unreadable log,
    unknown scorer, errored or unscored samples, non-binary scores) and a
    :class:`~ttsplan.features.errors.TtsplanError` when no prompt has more than one sample (a task run
    without epochs).
    """
    files = expand_paths(paths, (".eval", ".json"), FMT)
    read_eval_log, to_float = _inspect_log_api()
    problems: list[str] = []
    frames: list[pl.DataFrame] = []
    notes: list[str] = []
    for f in files:
        try:
            log = read_eval_log(str(f))
        except Exception as exc:  # noqa: BLE001 - inspect-ai raises many types for a file that is not a log
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            problems.append(f"{f}: must be an inspect-ai eval log, got a read error ({first[:200]}). "
                            "Pass the .eval / .json files inspect eval wrote (its --log-dir).")
            continue
        frame = _log_frame(f, log, scorer, to_float, problems, notes)
        if frame is not None:
            task = str(log.eval.task)
            mname = model or str(log.eval.model)
            frames.append(frame.with_columns(
                pl.lit(mname).alias("model"), pl.lit(dataset or task).alias("dataset"),
                (pl.lit(config) if config else pl.lit(f"{mname}/{task}/") + pl.col("scorer")).alias("config")))
    raise_problems(FMT, problems)
    df = pl.concat(frames, how="diagonal_relaxed")
    if df.get_column("answer").null_count() == df.height:
        df = df.with_columns(extract_answers(df.get_column("text"), kind).alias("answer"))
        notes.append(f"the scorer records no answers: answers are ttsplan.features.grading.extract_answer(text, {kind!r})")
    else:
        notes.append("answers: the scorer's Score.answer; correct: the scorer's value")
    result = finish(df, FMT, files, {"config": config, "model": model, "dataset": dataset, "scorer": scorer,
                                     "kind": kind}, notes)
    note = require_repeats(result.table, FMT, EPOCHS_FIX)
    if note:
        notes.append(note)
    return result


def _log_frame(path: Path, log: Any, scorer: str | None, to_float: Any, problems: list[str],
               notes: list[str]) -> pl.DataFrame | None:
    samples = list(log.samples or [])
    if not samples:
        problems.append(f"{path}: must hold samples, got none (status {log.status!r}). Pass a log written "
                        "with samples (not --no-log-samples) of a finished eval.")
        return None
    if log.status != "success":
        notes.append(f"{path.name}: eval status {log.status!r}: imported the {len(samples)} samples it logged")
    names = list(dict.fromkeys(n for s in samples for n in (s.scores or {})))
    if not names:
        problems.append(f"{path}: samples must be scored, got no scores. Run the task with a scorer "
                        "(or `inspect score LOG`).")
        return None
    chosen = choose_logged(path, "scorer", names, scorer, problems, notes, "pick another with --scorer")
    if chosen is None:
        return None
    rows: dict[str, list] = {c: [] for c in ("prompt_id", "sample_idx", "text", "answer", "correct",
                                             "output_tokens", "prompt_tokens", "logprob", "finish_reason", "scorer")}
    errored, unscored, nonbinary = [], [], []
    for s in samples:
        where = f"{s.id}#{s.epoch}"
        if s.error is not None:
            errored.append(where)
            continue
        score = (s.scores or {}).get(chosen)
        if score is None:
            unscored.append(where)
            continue
        try:
            value = float(to_float(score.value))
        except (TypeError, ValueError):
            value = math.nan
        if math.isnan(value):
            unscored.append(where)
            continue
        if value not in (0.0, 1.0):
            nonbinary.append(f"{where}={score.value!r}")
            continue
        out = s.output
        choice = out.choices[0] if out is not None and out.choices else None
        usage = out.usage if out is not None else None
        lp = choice.logprobs if choice is not None else None
        answer = score.answer.strip() if isinstance(score.answer, str) else None
        rows["prompt_id"].append(str(s.id))
        rows["sample_idx"].append(int(s.epoch) - 1)
        rows["text"].append(out.completion if out is not None else None)
        rows["answer"].append(answer or None)
        rows["correct"].append(value == 1.0)
        rows["output_tokens"].append(usage.output_tokens if usage is not None else None)
        rows["prompt_tokens"].append(usage.input_tokens if usage is not None else None)
        rows["logprob"].append(float(sum(t.logprob for t in lp.content)) if lp is not None and lp.content else None)
        reason = str(choice.stop_reason) if choice is not None and choice.stop_reason else None
        rows["finish_reason"].append(_STOP.get(reason, reason) if reason else None)
        rows["scorer"].append(chosen)
    if errored:
        problems.append(f"{path}: samples must have finished without error, got {len(errored)} errored "
                        f"(id#epoch {_ids(errored)}). Rerun them with `inspect eval-retry {path}`.")
    if unscored:
        problems.append(f"{path}: every sample must have a {chosen!r} score, got {len(unscored)} without one "
                        f"(id#epoch {_ids(unscored)}). Score them with `inspect score {path}` or pick another --scorer.")
    if nonbinary:
        problems.append(f"{path}: scorer {chosen!r} must give correct / incorrect (C / I or 1 / 0), got "
                        f"{len(nonbinary)} other value(s) ({_ids(nonbinary)}). Pick a binary scorer with "
                        f"--scorer (logged: {', '.join(names)}).")
    if errored or unscored or nonbinary:
        return None
    return pl.DataFrame(rows, schema={"prompt_id": pl.String, "sample_idx": pl.Int32, "text": pl.String,
                                      "answer": pl.String, "correct": pl.Boolean, "output_tokens": pl.Int32,
                                      "prompt_tokens": pl.Int32, "logprob": pl.Float64, "finish_reason": pl.String,
                                      "scorer": pl.String})


__all__ = ["EPOCHS_FIX", "read_inspect"]
