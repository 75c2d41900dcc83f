"""Prompts: JSONL prompt files, the shared problem sets, and a seeded generator of graded tasks.

A prompt file is JSONL with one object per line: ``{"id": ..., "prompt": ..., "answer": ...}``
(``answer`` optional; ``problem`` or ``question`` accepted in place of ``prompt``). Problem sets
(``../shared/data/problems/*.jsonl``: MATH-500, GSM8K, AIME, AMC) are read by the same function and
wrapped in a few-shot template.

The project's own task suite (:func:`make_tasks`) has families that a 270M model partly solves,
each with a difficulty knob, so per-prompt success probabilities spread over (0, 1).

>>> tasks = make_tasks("larger", 3, seed=0)
>>> [t.id for t in tasks]
['larger-0000', 'larger-0001', 'larger-0002']
>>> p = format_prompt(tasks[0], shots=2, seed=0)
>>> p.prompt.count("Q:"), p.prompt.endswith("A:")
(3, True)
"""
from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ttsplan.features.atomic import write_atomic
from ttsplan.features.errors import TtsplanError, did_you_mean
from ttsplan.features.jsonl import iter_json_objects

_MAX_SHOWN = 20


@dataclass(frozen=True)
class Prompt:
    """One prompt to sample: ``prompt`` is the exact text fed to the model.

    ``question`` is the bare task (without few-shot context); ``kind`` selects answer extraction
    (``"short"``: first word/number of the first line; ``"math"``: boxed / "answer is" / last number).
    """

    id: str
    prompt: str
    answer: str | None = None
    dataset: str = "prompts"
    question: str | None = None
    kind: str = "math"
    difficulty: float | None = None

    def __post_init__(self) -> None:
        if not self.id:
            raise TtsplanError("Prompt.id must be a non-empty string, got ''. Give every prompt an id.")
        if self.kind not in ("short", "math"):
            raise TtsplanError(f"Prompt.kind must be 'short' or 'math', got {self.kind!r}.")


# ---------------------------------------------------------------------------------------------
# reading prompt files
# ---------------------------------------------------------------------------------------------

_TEXT_KEYS = ("prompt", "problem", "question")


def read_prompts(path: str | Path, dataset: str | None = None, shots: int = 0,
                 template: str = "Question: {question}\nAnswer:") -> list[Prompt]:
    """Read a JSONL prompt or problem file; report every bad line in one :class:`TtsplanError`.

    Rows with ``prompt`` are used verbatim; an optional ``kind`` (``short`` / ``math``, default
    ``math``) selects answer extraction, as :func:`write_prompts` writes it. Rows with ``problem``/``question`` are formatted with
    ``template``; with ``shots > 0`` the first ``shots`` rows become worked examples prepended to
    every other prompt (and are not themselves sampled).
    """
    path = Path(path)
    if not path.exists():
        raise TtsplanError(f"prompt file {path} must exist, got no such file. Check the path.")
    if path.is_dir():
        raise TtsplanError(f"prompt file {path} must be a .jsonl file, got a directory.")
    problems: list[str] = []
    rows: list[dict] = []
    seen: dict[str, int] = {}
    try:
        parsed = list(iter_json_objects(path))
    except UnicodeDecodeError as exc:
        raise TtsplanError(f"prompt file {path} must be UTF-8 JSONL text, got undecodable bytes "
                           f"({exc.reason}).") from None
    for no, obj, reason in parsed:
        if obj is None:
            problems.append(f"line {no}: must be one JSON object, got {reason}.")
            continue
        text_key = next((k for k in _TEXT_KEYS if k in obj), None)
        if text_key is None:
            hint = next((did_you_mean(k, _TEXT_KEYS) for k in obj if did_you_mean(k, _TEXT_KEYS)), "")
            problems.append(f'line {no}: must have a "prompt" (or "problem"/"question") field, got keys '
                            f"{sorted(obj)}.{hint}")
            continue
        if not isinstance(obj[text_key], str) or not obj[text_key].strip():
            problems.append(f'line {no}: "{text_key}" must be a non-empty string, got {obj[text_key]!r:.40}.')
            continue
        pid = obj.get("id", obj.get("prompt_id"))
        if pid is None or (isinstance(pid, str) and not pid.strip()):
            problems.append(f'line {no}: must have a non-empty "id", got {pid!r}.'
                            f"{did_you_mean('id', [k for k in obj if k != text_key])}")
            continue
        pid = str(pid)
        if pid in seen:
            problems.append(f'line {no}: "id" must be unique, got {pid!r} again (first on line {seen[pid]}).')
            continue
        seen[pid] = no
        answer = obj.get("answer")
        if isinstance(answer, (dict, list)):
            problems.append(f'line {no}: "answer" must be a string or number, got {type(answer).__name__}.')
            continue
        kind = obj.get("kind", "math")
        if kind not in ("short", "math"):
            problems.append(f'line {no}: "kind" must be "short" or "math" (answer extraction), got {kind!r:.40}.')
            continue
        rows.append({"id": pid, "key": text_key, "text": obj[text_key], "kind": kind,
                     "answer": None if answer is None else str(answer), "level": obj.get("level")})
    if not rows and not problems:
        problems.append("must contain at least one prompt, got none.")
    if problems:
        shown = problems[:_MAX_SHOWN] + ([f"… and {len(problems) - _MAX_SHOWN} more"]
                                         if len(problems) > _MAX_SHOWN else [])
        raise TtsplanError(f"prompt file {path}: {len(problems)} problem(s) found\n"
                           + "\n".join(f"  - {p}" for p in shown))
    name = dataset or path.stem
    examples = [r for r in rows if r["key"] != "prompt"][:shots]
    context = "".join(template.format(question=r["text"]) + f" {r['answer']}\n\n" for r in examples)
    skip = {r["id"] for r in examples}
    out = []
    for r in rows:
        if r["id"] in skip:
            continue
        level = _level(r["level"])
        if r["key"] == "prompt":
            out.append(Prompt(r["id"], r["text"], r["answer"], name, r["text"], r["kind"], level))
        else:
            out.append(Prompt(r["id"], context + template.format(question=r["text"]), r["answer"], name,
                              r["text"], r["kind"], level))
    return out


def _level(raw: object) -> float | None:
    if isinstance(raw, (int, float)):
        return float(raw)
    if isinstance(raw, str):
        digits = "".join(ch for ch in raw if ch.isdigit())
        return float(digits) if digits else None
    return None


def write_prompts(prompts: Sequence[Prompt], path: str | Path) -> Path:
    """Write prompts as JSONL (``id, prompt, answer, dataset, kind, difficulty``), atomically."""
    lines = [json.dumps({"id": p.id, "prompt": p.prompt, "answer": p.answer, "dataset": p.dataset,
                         "kind": p.kind, "difficulty": p.difficulty}) for p in prompts]
    return write_atomic(path, "\n".join(lines) + "\n")


# ---------------------------------------------------------------------------------------------
# the project's task suite
# ---------------------------------------------------------------------------------------------

_WORDS = ("apple", "river", "tiger", "cloud", "house", "lemon", "chair", "ocean", "piano", "zebra",
          "grape", "mouse", "candle", "forest", "window", "garden", "rabbit", "yellow", "butter",
          "kitten", "dragon", "planet", "silver", "monkey", "orange", "pencil", "rocket", "summer",
          "violet", "wizard", "jacket", "nickel", "quartz", "basket", "engine", "island")


@dataclass(frozen=True)
class _Item:
    question: str
    answer: str
    difficulty: float


def _compare(rng: random.Random, word: str, pick: Callable[[list[int]], int]) -> _Item:
    """Two two-digit numbers ``gap`` apart (difficulty 1/gap); the answer is ``pick`` of the pair."""
    gap = rng.choice((1, 2, 3, 5, 10, 20, 40, 60))
    a = rng.randint(10, 99 - gap)
    pair = [a, a + gap]
    rng.shuffle(pair)
    return _Item(f"Which is {word}, {pair[0]} or {pair[1]}?", str(pick(pair)), 1.0 / gap)


def _larger(rng: random.Random) -> _Item:
    return _compare(rng, "larger", max)


def _smaller(rng: random.Random) -> _Item:
    return _compare(rng, "smaller", min)


def _next(rng: random.Random) -> _Item:
    digits = rng.choice((1, 2, 2, 3))
    n = rng.randint(10 ** (digits - 1), 10 ** digits - 2)
    if rng.random() < 0.3:  # carries are harder: 19, 29, 199 …
        n = rng.randint(1, 9) * 10 ** (digits - 1) + (10 ** (digits - 1) - 1) if digits > 1 else 9
    return _Item(f"What number comes after {n}?", str(n + 1), digits + (n % 10 == 9))


def _add(rng: random.Random) -> _Item:
    hi = rng.choice((3, 5, 9))
    a, b = rng.randint(0, hi), rng.randint(1, hi)
    return _Item(f"What is {a} + {b}?", str(a + b), float(a + b))


def _first_letter(rng: random.Random) -> _Item:
    w = rng.choice(_WORDS)
    return _Item(f'What is the first letter of "{w}"?', w[0], 0.0)


def _last_letter(rng: random.Random) -> _Item:
    w = rng.choice(_WORDS)
    return _Item(f'What is the last letter of "{w}"?', w[-1], float(len(w)))


def _count(rng: random.Random) -> _Item:
    n = rng.randint(1, 7)
    sym = rng.choice(("*", "o", "#"))
    return _Item(f"How many symbols: {' '.join([sym] * n)}?", str(n), float(n))


#: task family name -> generator of one (question, answer, difficulty) item.
FAMILIES: dict[str, Callable[[random.Random], _Item]] = {
    "larger": _larger, "smaller": _smaller, "next": _next, "add": _add,
    "first_letter": _first_letter, "last_letter": _last_letter, "count": _count,
}


def _rng(*parts: object) -> random.Random:
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "little"))


def make_tasks(family: str, n: int, seed: int = 0) -> list[Prompt]:
    """``n`` zero-shot prompts of one family (``Q: …\\nA:``), deterministic given ``seed``.

    Prompts are distinct where the family has enough distinct items.
    """
    if family not in FAMILIES:
        raise TtsplanError(f"task family must be one of {', '.join(FAMILIES)}, got {family!r}."
                           f"{did_you_mean(family, FAMILIES)}")
    if n < 1:
        raise TtsplanError(f"number of tasks must be >= 1, got {n}.")
    rng = _rng("tasks", family, seed)
    out: list[Prompt] = []
    seen: set[str] = set()
    tries = 0
    while len(out) < n:
        item = FAMILIES[family](rng)
        tries += 1
        if item.question in seen and tries < 50 * n:
            continue
        seen.add(item.question)
        out.append(Prompt(f"{family}-{len(out):04d}", f"Q: {item.question}\nA:", item.answer, family,
                          item.question, "short", item.difficulty))
    return out


def format_prompt(task: Prompt, shots: int, seed: int = 0) -> Prompt:
    """Prepend ``shots`` worked examples of the same family (drawn per prompt, seeded)."""
    if shots <= 0:
        return task
    if task.dataset not in FAMILIES:
        raise TtsplanError(f"few-shot formatting needs a task family ({', '.join(FAMILIES)}), got "
                           f"dataset {task.dataset!r}.")
    rng = _rng("shots", task.id, seed)
    examples: list[_Item] = []
    while len(examples) < shots:
        item = FAMILIES[task.dataset](rng)
        if item.question != task.question and all(item.question != e.question for e in examples):
            examples.append(item)
    context = "".join(f"Q: {e.question}\nA: {e.answer}\n\n" for e in examples)
    return replace(task, prompt=context + f"Q: {task.question}\nA:")


__all__ = ["Prompt", "FAMILIES", "read_prompts", "write_prompts", "make_tasks", "format_prompt"]
