"""inspect-ai epoch reducers: exact maj@k / pass@k per sample, with bootstrap intervals over epochs.

Use them where inspect-ai takes a reducer (``pip install 'ttsplan[inspect]'``)::

    from inspect_ai import Epochs, Task
    from ttsplan.integrations.inspect import epochs_interval, maj_at, pass_at

    Task(dataset=..., solver=generate(), scorer=match(), epochs=Epochs(8, [maj_at(k=1), maj_at(k=4), pass_at(k=4)]),
         metrics=[accuracy(), stderr(), epochs_interval()])

With ``epochs = n`` each sample has n scored epochs. ``maj_at(k)`` reduces them to the exact
expected plurality-vote accuracy of k epochs drawn without replacement from the n
(:func:`ttsplan.features.estimators.maj_at_k`: ties among s+1 leaders count 1/(s+1), empty answers
never win, a cluster is as correct as the mean of its epochs), ``pass_at(k)`` to the exact
1 − C(n−c, k)/C(n, k) (:func:`ttsplan.features.estimators.pass_at_k`; correct = ``value_to_float(value)
≥ 1``, as inspect-ai's own ``pass_at``). Votes are the scorer's ``Score.answer``: use a scorer that
extracts one (``match``, ``includes``, ``pattern``, ``choice``, …).

The reduced score's ``metadata`` holds ``k``, ``epochs``, ``correct``, a percentile ``ci_low`` /
``ci_high`` from ``n_boot`` resamples of the epochs (with replacement; the same estimator on each) and
the resampled values (``bootstrap``); :func:`epochs_interval` turns those into an interval for the
task's mean — how much the reported number moves with other epochs of the same samples, not with
other samples (inspect-ai's ``stderr`` covers that). Epochs whose value is NaN (unscored) are left
out; a sample with fewer than k scored epochs reduces to NaN, as inspect-ai's ``pass_at`` does.
inspect-ai is imported when a reducer is first made, not with this module.

>>> from ttsplan.integrations.inspect import epoch_estimate
>>> epoch_estimate("maj", [("4", True), ("4", True), ("5", False)], k=3, n_boot=0)["value"]
1.0
"""
from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

import numpy as np

from ttsplan.features.defaults import DEFAULT_CI_CONFIDENCE
from ttsplan.features.errors import TtsplanError
from ttsplan.features.estimators import maj_at_k, pass_at_k

Vote = tuple[str | None, bool]


def _check(k: int, n_boot: int, confidence: float) -> None:
    problems = []
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        problems.append(f"k must be an integer >= 1, got {k!r}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 0:
        problems.append(f"n_boot must be an integer >= 0, got {n_boot!r}")
    if not 0 < confidence < 1:
        problems.append(f"confidence must be in (0, 1), got {confidence!r}")
    if problems:
        raise TtsplanError("; ".join(problems) + ". Fix the reducer's arguments, e.g. maj_at(k=4).")


def _signature(votes: Sequence[Vote]) -> tuple[tuple[int, ...], tuple[float, ...], int]:
    groups: dict[str, list[float]] = {}
    n_null = 0
    for answer, correct in votes:
        if answer is None:
            n_null += 1
        else:
            groups.setdefault(answer, []).append(float(correct))
    items = sorted(((len(v), float(np.mean(v))) for v in groups.values()), reverse=True)
    return tuple(s for s, _ in items), tuple(q for _, q in items), n_null


def _estimates(metric: str, samples: list[list[Vote]], k: int) -> np.ndarray:
    if metric == "pass":
        n = np.array([len(s) for s in samples])
        c = np.array([sum(ok for _, ok in s) for s in samples])
        return np.asarray(pass_at_k(n, c, k), dtype=float).reshape(-1)
    return maj_at_k([_signature(s) for s in samples], [k], workers=1)[:, 0]


def epoch_estimate(metric: str, votes: Sequence[Vote], k: int, n_boot: int = 200,
                   confidence: float = DEFAULT_CI_CONFIDENCE,
                   seed: int = 0) -> dict[str, Any]:
    """maj@k or pass@k of one sample's epochs (``votes`` = (answer or None, correct) per epoch), with a
    percentile bootstrap interval over the epochs.

    Returns ``value`` (NaN when fewer than k epochs), ``k``, ``epochs``, ``correct``, ``ci_low``,
    ``ci_high``, ``confidence`` and ``bootstrap`` (the ``n_boot`` resampled values). The resamples
    are seeded by ``seed`` and the votes, so a rerun gives the same interval.

    >>> r = epoch_estimate("pass", [(None, True), (None, False), (None, False), (None, False)], k=2, n_boot=0)
    >>> r["value"]  # 1 - C(3,2)/C(4,2)
    0.5
    """
    if metric not in ("maj", "pass"):
        raise TtsplanError(f"metric must be maj or pass, got {metric!r}.")
    _check(k, n_boot, confidence)
    votes = [(a, bool(c)) for a, c in votes]
    n = len(votes)
    out: dict[str, Any] = {"metric": metric, "k": int(k), "epochs": n, "correct": sum(c for _, c in votes),
                           "confidence": confidence}
    if n < k:
        return {**out, "value": math.nan, "ci_low": math.nan, "ci_high": math.nan, "bootstrap": []}
    value = float(_estimates(metric, [votes], k)[0])
    boot = np.empty(0)
    if n_boot:
        digest = hashlib.sha256(repr((metric, k, votes)).encode()).digest()
        rng = np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])
        idx = rng.integers(0, n, size=(n_boot, n))
        boot = _estimates(metric, [[votes[i] for i in row] for row in idx], k)
    alpha = (1 - confidence) / 2
    lo, hi = (np.quantile(boot, [alpha, 1 - alpha]) if boot.size else (value, value))
    return {**out, "value": value, "ci_low": float(min(lo, value)), "ci_high": float(max(hi, value)),
            "bootstrap": [round(float(b), 6) for b in boot]}


def _answer(score: Any) -> str | None:
    a = score.answer
    if a is None:
        return None
    a = str(a).strip()
    return a or None


def _votes(scores: Sequence[Any], to_float: Callable[[Any], float], value: float, name: str) -> list[Vote]:
    votes: list[Vote] = []
    for score in scores:
        if isinstance(score.value, (dict, list)):
            raise TtsplanError(f"{name} must reduce scores with one value per epoch, got a {type(score.value).__name__} "
                               f"value ({score.value!r}). Use a scorer with a single value (e.g. match()).")
        v = float(to_float(score.value))
        if not math.isnan(v):
            votes.append((_answer(score), v >= value))
    return votes


@cache
def _inspect() -> dict[str, Any]:
    """Register the reducers and the metric with inspect-ai (once; inspect-ai is imported here)."""
    try:
        from inspect_ai.scorer import Score, metric, score_reducer, value_to_float
    except ImportError as exc:
        raise TtsplanError(f"ttsplan.integrations.inspect must have inspect-ai installed, got it missing ({exc}). "
                           "Install it: pip install 'ttsplan[inspect]'.") from None
    to_float = value_to_float()

    def reducer(metric_name: str, k: int, n_boot: int, confidence: float, seed: int, value: float) -> Callable:
        def reduce(scores: list[Score]) -> Score:
            r = epoch_estimate(metric_name, _votes(scores, to_float, value, f"{metric_name}_at"), k, n_boot,
                               confidence, seed)
            if math.isnan(r["value"]):
                text = f"{metric_name}@{k} needs at least {k} scored epochs, got {r['epochs']}"
            else:
                text = (f"{metric_name}@{k} over {r['epochs']} epochs: {r['value']:.3f} "
                        f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}] ({confidence:.0%} bootstrap over epochs)")
            answers = {_answer(s) for s in scores}
            return Score(value=r["value"], answer=answers.pop() if len(answers) == 1 else None, explanation=text,
                         metadata={key: v for key, v in r.items() if key != "value"})

        return reduce

    @score_reducer(name="ttsplan/maj_at")
    def maj_at_reducer(k: int, n_boot: int = 200, confidence: float = DEFAULT_CI_CONFIDENCE, seed: int = 0,
                       value: float = 1.0) -> Callable:
        return reducer("maj", k, n_boot, confidence, seed, value)

    @score_reducer(name="ttsplan/pass_at")
    def pass_at_reducer(k: int, n_boot: int = 200, confidence: float = DEFAULT_CI_CONFIDENCE, seed: int = 0,
                        value: float = 1.0) -> Callable:
        return reducer("pass", k, n_boot, confidence, seed, value)

    @metric(name="ttsplan/epochs_interval")
    def epochs_interval_metric(confidence: float = DEFAULT_CI_CONFIDENCE) -> Callable:
        def calc(scores: list[Any]) -> dict[str, float]:
            reps = [s.score.metadata["bootstrap"] for s in scores
                    if (s.score.metadata or {}).get("bootstrap") and not math.isnan(float(to_float(s.score.value)))]
            if not reps or len({len(r) for r in reps}) != 1:
                return {"ci_low": math.nan, "ci_high": math.nan}
            means = np.asarray(reps, dtype=float).mean(axis=0)
            alpha = (1 - confidence) / 2
            lo, hi = np.quantile(means, [alpha, 1 - alpha])
            return {"ci_low": float(lo), "ci_high": float(hi)}

        return calc

    return {"maj": maj_at_reducer, "pass": pass_at_reducer, "interval": epochs_interval_metric}


def maj_at(k: int, n_boot: int = 200, confidence: float = DEFAULT_CI_CONFIDENCE, seed: int = 0,
           value: float = 1.0) -> Any:
    """inspect-ai reducer: exact majority-vote accuracy of k of the sample's epochs, with a bootstrap
    interval over epochs in the score's metadata. ``value``: the ``value_to_float`` at or above which an
    epoch is correct. Use as ``Epochs(8, maj_at(k=4))``."""
    _check(k, n_boot, confidence)
    return _inspect()["maj"](k=k, n_boot=n_boot, confidence=confidence, seed=seed, value=value)


def pass_at(k: int, n_boot: int = 200, confidence: float = DEFAULT_CI_CONFIDENCE, seed: int = 0,
            value: float = 1.0) -> Any:
    """inspect-ai reducer: exact pass@k (at least one correct among k of the sample's epochs), with a
    bootstrap interval over epochs in the score's metadata. Use as ``Epochs(8, pass_at(k=4))``."""
    _check(k, n_boot, confidence)
    return _inspect()["pass"](k=k, n_boot=n_boot, confidence=confidence, seed=seed, value=value)


def epochs_interval(confidence: float = DEFAULT_CI_CONFIDENCE) -> Any:
    """inspect-ai metric: percentile interval of the task's mean from the reducers' epoch resamples
    (resample b of every sample, averaged, for each b), as ``{"ci_low", "ci_high"}``."""
    if not 0 < confidence < 1:
        raise TtsplanError(f"confidence must be in (0, 1), got {confidence!r}.")
    return _inspect()["interval"](confidence=confidence)


__all__ = ["epoch_estimate", "epochs_interval", "maj_at", "pass_at"]
