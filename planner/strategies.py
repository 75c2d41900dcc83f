"""Test-time-scaling strategies: what each buys (expected accuracy at N) and what it costs.

The strategies the planner can plan (:data:`STRATEGIES`, :func:`get_strategy` with "Did you mean"): the
names of the one registry :mod:`ttsplan.fitting.strategy_registry` (which also holds every alias) but
``beam-search``, each with its accuracy model:

==================  ==========================================================================
``greedy``          one sample (N = 1 only); accuracy = the prompt's success probability p
                    (a sampled single answer; temperature-0 decoding is not modelled separately)
``majority``        plurality vote over N samples: the success model's maj@N (needs answers)
``best-of-n``       highest reward among N: the success model's BoN@N (needs rewards)
``weighted-majority`` reward-weighted vote. **Approximation:** for each configuration and N, the
                    better on average of maj@N and BoN@N (weighted voting usually matches or beats
                    both, Snell et al. 2024; taking the per-prompt maximum would cherry-pick).
                    Ties go to the plain strategy listed first. Realized accuracy in
                    :mod:`ttsplan.planner.evaluate` uses the Monte Carlo weighted-vote estimator.
``best-of-majority`` keep answers with at least half the modal answer's votes, return the highest
                    reward among them. **Approximation:** ½ (maj@N + BoN@N) per prompt (a hybrid;
                    a heuristic that ``ttsplan evaluate`` checks against real samples).
``pass@n``          coverage / oracle (any of N correct): reporting only, never planned by default
==================  ==========================================================================

Reward strategies are unavailable when the data has no ``reward`` column; vote strategies are
unavailable without an ``answer`` column (count tables): :func:`available_strategies` says why.

Cost: :func:`cost_matrix` — ``samples`` = N; ``tokens`` = prompt tokens (prefix caching: processed
once) + N × mean output tokens; everything else from :meth:`ttsplan.fitting.cost.CostModel.price` with the
prompt's expected lengths (reward strategies add the verifier's scoring pass). ``seconds`` are
GPU-seconds per prompt when ``batch_prompts`` prompts share the GPU.

>>> get_strategy("majorty")
Traceback (most recent call last):
...
ttsplan.features.errors.TtsplanError: strategy must be one of greedy, majority, best-of-n, weighted-majority, best-of-majority, pass@n, got 'majorty'. Did you mean "majority"?
>>> import numpy as np
>>> cost_matrix("majority", [1, 4], np.array([10.0]), np.array([5.0]), "tokens").tolist()
[[15.0, 30.0]]
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ttsplan.features.errors import TtsplanError
from ttsplan.fitting.strategy_registry import resolve_strategy_name


@dataclass(frozen=True)
class Strategy:
    """One strategy: its success-model ingredients, what data it needs and how it is priced."""

    name: str
    description: str
    needs_answers: bool = False
    needs_reward: bool = False
    single_sample: bool = False
    oracle: bool = False

    def accuracy(self, success: Any, grid: Sequence[int], bound: str = "mean",
                 cache: dict | None = None) -> np.ndarray:
        """Expected accuracy per prompt × grid (``bound``: "mean", "lower" or "upper").

        "mean" integrates over the posterior of p (:func:`posterior_expected`); the bounds are the values
        at the posterior's equal-tailed quantiles (widened to contain the mean). Pass the same ``cache``
        dict to several calls to compute each metric once.

        ``success`` has ``expected_accuracy(metric, grid)`` and ``accuracy_bounds(metric, grid)`` for
        metric in pass|maj|bon (a fitted :class:`ttsplan.fitting.success.PromptSuccessModel` or
        :class:`~ttsplan.fitting.success.PromptPosteriors`). Grid points a strategy cannot use (N > 1 for
        greedy) are NaN.
        """
        grid = [int(g) for g in grid]

        memo = {} if cache is None else cache

        def get(metric: str, g: Sequence[int], which: str | None = None) -> np.ndarray:
            key = (metric, tuple(g))
            if key not in memo:
                mid = posterior_expected(success, metric, g)
                lo, hi = posterior_bounds(success, metric, g)
                memo[key] = (mid, np.minimum(lo, mid), np.maximum(hi, mid))
            mid, lo, hi = memo[key]
            return {"mean": mid, "lower": lo, "upper": hi}[which or bound]

        if bound not in ("mean", "lower", "upper"):
            raise TtsplanError(f"bound must be mean, lower or upper, got {bound!r}.")
        if self.single_sample:
            one = get("pass", [1])[:, 0]
            out = np.full((one.shape[0], len(grid)), np.nan)
            out[:, [i for i, g in enumerate(grid) if g == 1]] = one[:, None]
            return out
        if self.name == "pass@n":
            return get("pass", grid)
        if self.name == "majority":
            return get("maj", grid)
        if self.name == "best-of-n":
            return get("bon", grid)
        maj, bon = get("maj", grid), get("bon", grid)
        if self.name == "weighted-majority":
            # per configuration and N, whichever of maj@N / BoN@N is better on average (no per-prompt max)
            post = getattr(success, "posteriors_", success)
            keys = getattr(post, "keys", None)
            cfg = keys["config"].to_numpy() if keys is not None else np.zeros(maj.shape[0])
            m_mean, b_mean = get("maj", grid, "mean"), get("bon", grid, "mean")
            out = maj.copy()
            for c in np.unique(cfg):
                r = np.flatnonzero(cfg == c)
                use_bon = np.flatnonzero(b_mean[r].mean(axis=0) > m_mean[r].mean(axis=0))
                out[np.ix_(r, use_bon)] = bon[np.ix_(r, use_bon)]
            return out
        return 0.5 * (maj + bon)  # best-of-majority


def posterior_expected(success: Any, metric: str, grid: Sequence[int]) -> np.ndarray:
    """E over each prompt's posterior of p of the metric's value at N (prompts × grid).

    Delegates to ``success.expected_accuracy``: ``pass`` is exact, ``maj`` and ``bon`` are averaged over
    equal-probability bins of the Beta posterior (:meth:`ttsplan.fitting.success.PromptPosteriors.p_nodes`) rather
    than evaluated at the posterior mean: with a few pilot samples the posterior is wide and the value
    at the mean p badly misstates what voting buys.
    """
    return np.asarray(success.expected_accuracy(metric, [int(g) for g in grid]), dtype=float)


def posterior_bounds(success: Any, metric: str, grid: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Values at the equal-tailed posterior quantiles of p (every metric is increasing in p)."""
    post = getattr(success, "posteriors_", success)
    bounds = getattr(post, "quantile_bounds", None) or success.accuracy_bounds
    lo, hi = bounds(metric, [int(g) for g in grid])
    return np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)


STRATEGIES: dict[str, Strategy] = {s.name: s for s in (
    Strategy("greedy", "one sample per prompt", single_sample=True),
    Strategy("majority", "plurality vote over N samples (self-consistency)", needs_answers=True),
    Strategy("best-of-n", "highest-reward sample among N", needs_reward=True),
    Strategy("weighted-majority", "reward-weighted vote over N samples", needs_answers=True, needs_reward=True),
    Strategy("best-of-majority", "highest reward among the frequent answers of N samples", needs_answers=True,
             needs_reward=True),
    Strategy("pass@n", "coverage: any of N samples correct (oracle, reporting only)", oracle=True),
)}
#: strategies planned when none are named (pass@n is an oracle, for reporting only).
#: planned by default: the strategies with exact per-prompt estimates. weighted-majority and
#: best-of-majority are modelled as the max / mean of the majority and best-of-n curves, so they could
#: never win on their own merits; they stay selectable by name (``--strategies``).
DEFAULT_STRATEGIES: tuple[str, ...] = tuple(n for n, s in STRATEGIES.items() if not s.oracle
                                            and n not in ("weighted-majority", "best-of-majority"))


def get_strategy(name: str | Strategy) -> Strategy:
    """Look a strategy up by name or alias (case-insensitive; the aliases of
    :mod:`ttsplan.fitting.strategy_registry`)."""
    if isinstance(name, Strategy):
        return name
    return STRATEGIES[resolve_strategy_name(name, STRATEGIES)]


def parse_strategies(names: str | Sequence[str] | None) -> list[Strategy]:
    """``"majority,best-of-n"`` or a list → strategies (all problems reported at once); None → defaults."""
    if names is None:
        return [STRATEGIES[n] for n in DEFAULT_STRATEGIES]
    if isinstance(names, str):
        names = [names]
    parts = [p.strip() for n in names for p in str(n).split(",") if p.strip()]
    if not parts:
        raise TtsplanError("strategies must name at least one strategy, got none. "
                           f"Choose from {', '.join(STRATEGIES)}.")
    out, problems = [], []
    for p in parts:
        try:
            s = get_strategy(p)
            if s not in out:
                out.append(s)
        except TtsplanError as exc:
            problems.append(str(exc))
    if problems:
        raise TtsplanError(" ".join(problems))
    return out


def available_strategies(strategies: Sequence[Strategy], has_answers: bool, has_reward: bool,
                         explicit: bool = False) -> tuple[list[Strategy], list[str]]:
    """Split ``strategies`` into usable ones and notes on why the rest are dropped.

    With ``explicit`` (the user named them) an unusable strategy is an error instead of a note.
    """
    keep, notes = [], []
    for s in strategies:
        why = None
        if s.needs_reward and not has_reward:
            why = f"{s.name} needs a reward column (verifier scores), got none"
        elif s.needs_answers and not has_answers:
            why = f"{s.name} needs an answer column (sample tables), got none"
        if why is None:
            keep.append(s)
        else:
            notes.append(why)
    if explicit and notes:
        raise TtsplanError("; ".join(notes) + ". Drop it from --strategies or add the column.")
    reward = [s.name for s in strategies if s.needs_reward and not has_reward]
    if reward and not explicit:
        notes = [n for n in notes if "reward" not in n] + [f"{', '.join(reward)} not planned: no reward column"]
    if not keep:
        raise TtsplanError("strategies must include at least one usable strategy, got none ("
                           + "; ".join(notes) + "). Add greedy or majority.")
    return keep, notes


def _unique_lengths(prompt_tokens: np.ndarray, output_tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (prompt, output) length pairs rounded to 3 significant digits, and the inverse index."""
    def r3(x: np.ndarray) -> np.ndarray:
        x = np.maximum(np.asarray(x, dtype=float), 0.0)
        mag = np.where(x > 0, 10.0 ** (np.floor(np.log10(np.where(x > 0, x, 1.0))) - 2), 1.0)
        return np.round(x / mag) * mag
    pairs, inv = np.unique(np.stack([r3(prompt_tokens), r3(output_tokens)], axis=1), axis=0, return_inverse=True)
    return pairs[:, 0], pairs[:, 1], inv.ravel()


def cost_matrix(strategy: str | Strategy, grid: Sequence[int], prompt_tokens: np.ndarray,
                output_tokens: np.ndarray, unit: str, cost_model: Any = None,
                batch_prompts: int = 64) -> np.ndarray:
    """Cost per prompt × grid point in ``unit`` (see the module docstring); greedy prices N = 1."""
    s = get_strategy(strategy)
    n = np.asarray([1 if s.single_sample else int(g) for g in grid], dtype=float)
    lp = np.asarray(prompt_tokens, dtype=float)
    lo = np.asarray(output_tokens, dtype=float)
    if unit == "samples":
        return np.broadcast_to(n[None, :], (lp.shape[0], n.size)).astype(float)
    if unit == "tokens" and cost_model is None:
        return lp[:, None] + n[None, :] * lo[:, None]
    if cost_model is None:
        raise TtsplanError(f"budget unit {unit!r} must be priced by a cost model, got no model. Pass --model "
                           "(e.g. --model gemma-3-270m) or use --unit samples / tokens.")
    up, uo, inv = _unique_lengths(lp, lo)
    key = {"tokens": "tokens", "flops": "flops", "eflops": "eflops", "seconds": "latency_s", "usd": "cost_usd"}[unit]
    price_strategy = "majority" if s.name == "pass@n" else s.name
    out = cost_model.price(n=n[None, :], prompt_tokens=up[:, None], output_tokens=uo[:, None],
                           strategy=price_strategy, batch_prompts=batch_prompts)
    val = np.asarray(out[key], dtype=float)
    if unit == "seconds":
        val = val / batch_prompts  # GPU-seconds per prompt in a batch of batch_prompts prompts
    return np.broadcast_to(val, (up.size, n.size))[inv]


__all__ = [
    "DEFAULT_STRATEGIES",
    "STRATEGIES",
    "Strategy",
    "available_strategies",
    "cost_matrix",
    "get_strategy",
    "parse_strategies",
]
