"""lm-evaluation-harness ``--log_samples`` output → SampleTable.

Layout (``lm_eval/evaluator.py``, EleutherAI/lm-evaluation-harness): one JSON line per
(document, filter) in ``samples_<task>_<timestamp>.jsonl`` with ``doc_id``, ``doc``, ``target``,
``arguments``, ``resps``, ``filtered_resps``, ``filter``, ``metrics`` and the per-document metric
values (``exact_match``, …). For a ``generate_until`` task with ``repeats: K`` (e.g.
``gsm8k-cot-self-consistency.yaml``) there is one request per document, so ``resps == [[r_1, …, r_K]]``
and ``filtered_resps == [x]`` where ``x`` is the list of K filtered answers (filters without
``take_first``) or one string (``take_first`` / ``majority_vote``).

Mapping: one row per repeat; ``prompt_id = doc_id``, ``text = r_j``; ``answer`` = the j-th filtered
answer when the filter kept one per repeat (``"[invalid]"`` → null), else
:func:`ttsplan.features.grading.extract_answer` of the text; ``correct`` = that answer graded against
``target``. With a single repeat the harness's own per-document metric (``exact_match`` by default)
is the label. ``config = <model>/<task>/<filter>``; ``model`` is read from the sibling
``results_*.json`` (``model_name`` or ``pretrained=`` in ``model_args``) when present.
The harness logs no token counts, log-probabilities or rewards: those columns stay null.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import polars as pl

from ttsplan.features.errors import did_you_mean
from ttsplan.features.importers.base import (
    ImportResult,
    PathLike,
    choose_logged,
    expand_paths,
    extract_answers,
    finish,
    grade_answers,
    map_hint,
    raise_problems,
    read_json_lines,
    require_repeats,
)

FMT = "lm-eval"
_NAME = re.compile(r"^samples_(?P<task>.+?)_(?P<stamp>\d{4}-\d{2}-\d{2}T[\d\-\.:]+)$")
INVALID = "[invalid]"
#: how to get more than one sample per prompt out of lm-eval
REPEATS_FIX = ("Rerun lm-eval with `repeats: 8` (or more) in the task's YAML, sampling on (generation_kwargs "
               "do_sample: true, temperature > 0) and --log_samples; each repeat is one more sample per prompt.")


def task_from_filename(path: Path) -> str:
    """``samples_gsm8k_cot_self_consistency_2024-05-01T12-00-00.123.jsonl`` → ``gsm8k_cot_self_consistency``."""
    m = _NAME.match(path.stem)
    if m:
        return m.group("task")
    return path.stem.removeprefix("samples_")


def model_from_results(path: Path) -> str | None:
    """The model name from a ``results_*.json`` next to the samples file, if there is one."""
    for res in sorted(path.parent.glob("results_*.json"), reverse=True):
        try:
            data = json.loads(res.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        name = data.get("model_name")
        if isinstance(name, str) and name:
            return name
        args = (data.get("config") or {}).get("model_args")
        if isinstance(args, str):
            m = re.search(r"(?:pretrained|model)=([^,]+)", args)
            if m:
                return m.group(1)
    return None


def _as_text(v: object) -> str | None:
    if v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, list) and len(v) == 1:
        return _as_text(v[0])
    return json.dumps(v) if isinstance(v, (list, dict)) else str(v)


def read_lm_eval(paths: PathLike | Sequence[PathLike], *, config: str | None = None, model: str | None = None,
                 dataset: str | None = None, filter_name: str | None = None, metric: str = "exact_match",
                 kind: str = "math", mapping: Mapping[str, str] | None = None) -> ImportResult:
    """Read ``samples_*.jsonl`` files (or directories holding them) into a SampleTable.

    ``filter_name`` picks one filter when a document is logged once per filter (default: the first
    filter in the file). ``metric``: the per-document metric used as the label when a task has a
    single repeat. ``kind``: answer extraction for unfiltered texts (``math`` or ``short``).
    """
    files = expand_paths(paths, (".jsonl", ".json"), FMT, "samples_*.jsonl")
    problems: list[str] = []
    frames: list[pl.DataFrame] = []
    notes: list[str] = []
    for f in files:
        lines = read_json_lines(f, problems)
        if not lines:
            if not any(str(f) in p for p in problems):
                problems.append(f"{f}: must hold at least one logged sample, got none.")
            continue
        if mapping:
            keys = list(dict.fromkeys(k for ln in lines[:100] for k in ln))
            for target, source in mapping.items():
                if source not in keys:
                    problems.append(f'{f}: --map {target}={source}: field "{source}" must exist, got none.'
                                    f"{did_you_mean(source, keys)} Fields: {', '.join(keys)}.")
            inverse = {v: k for k, v in mapping.items()}
            lines = [{inverse.get(k, k): v for k, v in ln.items()} for ln in lines]
        frame = _lines_to_frame(f, lines, filter_name, metric, problems, notes)
        if frame is None:
            continue
        task = task_from_filename(f)
        mname = model or model_from_results(f) or "lm-eval"
        frame = frame.with_columns(
            pl.lit(mname).alias("model"), pl.lit(dataset or task).alias("dataset"),
            (pl.lit(config) if config else pl.lit(f"{mname}/{task}/") + pl.col("filter")).alias("config"))
        frames.append(frame)
    raise_problems(FMT, problems)
    df = pl.concat(frames, how="diagonal_relaxed")
    per_sample = df.get_column("per_sample")
    answers = extract_answers(df.get_column("text"), kind)
    df = df.with_columns(pl.when(per_sample).then(pl.col("filtered")).otherwise(answers).alias("answer"))
    graded = grade_answers(df.get_column("answer"), df.get_column("target"))
    df = df.with_columns(pl.when(pl.col("label").is_not_null()).then(pl.col("label")).otherwise(graded)
                         .alias("correct"))
    if df.get_column("label").is_not_null().any():
        notes.append(f"single-repeat documents are labeled by the harness metric {metric!r}")
    notes.append("answers: the filter's per-repeat output where it keeps one per repeat, else "
                 f"ttsplan.features.grading.extract_answer(text, {kind!r}); graded against `target` with ttsplan.features.grading.grade")
    result = finish(df, FMT, files, {"config": config, "model": model, "dataset": dataset, "filter": filter_name,
                                      "metric": metric, "kind": kind, "map": dict(mapping or {})}, notes)
    for note in (require_repeats(result.table, FMT, REPEATS_FIX), identical_repeats(result.table)):
        if note:
            notes.append(note)
    return result


def identical_repeats(table: pl.DataFrame) -> str | None:
    """A note naming configurations whose every prompt got K > 1 textually identical repeats."""
    per = (table.group_by("config", "prompt_id")
           .agg(pl.len().alias("k"), pl.col("text").n_unique().alias("distinct"))
           .group_by("config").agg(pl.col("k").min(), pl.col("distinct").max()).sort("config"))
    same = per.filter((pl.col("k") > 1) & (pl.col("distinct") == 1)).get_column("config").to_list()
    if not same:
        return None
    return (f"{', '.join(map(repr, same))}: every prompt's repeats are identical texts, so every curve is flat. "
            "Greedy decoding, or a fixed per-request seed: lm-eval's API models (local-completions, "
            "local-chat-completions) send seed=1234 with every request and servers that honour it (vLLM, "
            "llama.cpp) then repeat one sample; sample with temperature > 0 and set `seed: null` under the "
            "task's generation_kwargs.")


def _lines_to_frame(path: Path, lines: list[dict], filter_name: str | None, metric: str, problems: list[str],
                    notes: list[str]) -> pl.DataFrame | None:
    required = {"doc_id": "the document index", "resps": "the raw model outputs, [[r_1, …, r_K]]",
                "target": "the gold answer"}
    local: list[str] = []
    for key, what in required.items():
        missing = [i + 1 for i, ln in enumerate(lines) if key not in ln]
        if missing:
            have = sorted(lines[missing[0] - 1])
            guess = next((did_you_mean(key, [h]) for h in have if did_you_mean(key, [h])), "")
            local.append(f'{path}: field "{key}" ({what}) must be on every line, got it missing on '
                         f"{len(missing)} line(s) (line {', '.join(map(str, missing[:3]))}{', …' if len(missing) > 3 else ''})."
                         f"{guess} {map_hint(key)}")
    if local:
        problems.extend(local)
        return None
    filters = list(dict.fromkeys(str(ln.get("filter", "none")) for ln in lines))
    chosen = choose_logged(path, "filter", filters, filter_name, problems, notes,
                           "each filter logs the same raw resps")
    if chosen is None:
        return None
    doc_ids, idx, texts, filt, has_per, targets, labels, flt = [], [], [], [], [], [], [], []
    bad_resps, bad_ids, multi = [], [], []
    for no, ln in enumerate(lines, 1):
        if str(ln.get("filter", "none")) != chosen:
            continue
        resps = ln["resps"]
        if not (isinstance(resps, list) and resps and all(isinstance(r, list) for r in resps)):
            bad_resps.append(no)
            continue
        if len(resps) > 1:
            multi.append(no)
            continue
        reps = resps[0]
        if not all(isinstance(r, str) or r is None for r in reps):
            bad_resps.append(no)
            continue
        did = ln["doc_id"]
        if not isinstance(did, (int, str)) or isinstance(did, bool):
            bad_ids.append(no)
            continue
        fr = ln.get("filtered_resps")
        fr0 = fr[0] if isinstance(fr, list) and len(fr) == 1 else None
        per = (fr0 if isinstance(fr0, list) and len(fr0) == len(reps) and all(isinstance(x, str) or x is None for x in fr0)
               else None)
        target = _as_text(ln["target"])
        m = ln.get(metric)
        label = bool(m) if len(reps) == 1 and isinstance(m, (int, float, bool)) else None
        for j, r in enumerate(reps):
            doc_ids.append(str(did))
            idx.append(j)
            texts.append(r)
            filt.append(None if per is None or per[j] in (None, INVALID) else str(per[j]).strip())
            has_per.append(per is not None)
            targets.append(target)
            labels.append(label)
            flt.append(chosen)
    if bad_resps:
        problems.append(f'{path}: field "resps" must be a list holding one list of strings (one generate_until '
                        f"request with its repeats), got another shape on {len(bad_resps)} line(s) "
                        f"(line {', '.join(map(str, bad_resps[:3]))}). {map_hint('resps')}")
    if multi:
        problems.append(f'{path}: field "resps" must hold one request per document (a generate_until task), got '
                        f"several on {len(multi)} line(s) (line {', '.join(map(str, multi[:3]))}): a loglikelihood / "
                        "multiple-choice task, which has no repeated samples to import.")
    if bad_ids:
        problems.append(f'{path}: field "doc_id" must be an integer or string, got another type on '
                        f"{len(bad_ids)} line(s) (line {', '.join(map(str, bad_ids[:3]))}). {map_hint('doc_id')}")
    if bad_resps or multi or bad_ids:
        return None
    # a per-repeat filter output of "[invalid]" means the filter found no answer: answer null (wrong)
    return pl.DataFrame({"prompt_id": pl.Series(doc_ids, dtype=pl.String), "sample_idx": pl.Series(idx, dtype=pl.Int32),
                         "text": pl.Series(texts, dtype=pl.String), "filtered": pl.Series(filt, dtype=pl.String),
                         "per_sample": pl.Series(has_per, dtype=pl.Boolean),
                         "target": pl.Series(targets, dtype=pl.String), "label": pl.Series(labels, dtype=pl.Boolean),
                         "filter": pl.Series(flt, dtype=pl.String)})


__all__ = ["REPEATS_FIX", "identical_repeats", "model_from_results", "read_lm_eval", "task_from_filename"]
