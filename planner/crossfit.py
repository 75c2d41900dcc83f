"""Choosing a policy, and estimating what it will do on prompts it was not chosen on.

:func:`select` picks one policy of an :class:`~ttsplan.planner.option_grid.OptionGrid` for an
:class:`Objective`:

* ``target`` — the least expected cost (samples or output tokens per prompt) whose accuracy is at
  least a target: an absolute accuracy, or ``majority@N`` (uniform majority with N samples on this
  configuration) minus ``tolerance``. A candidate qualifies when its mean paired shortfall against
  the reference plus ``margin`` standard errors is within the tolerance;
* ``budget`` — the most accuracy whose expected cost per prompt is within the budget.

:func:`crossfit` estimates the whole procedure out of sample: the prompts are split into ``folds``;
for each fold the policy is selected on the other folds only and scored on that fold's prompts
(nested: the figures carry no winner's curse). Intervals are a bootstrap over prompts of those
cross-fitted per-prompt scores. The policy the plan deploys is the one selected on all prompts.

>>> import numpy as np
>>> from ttsplan.planner.option_grid import DEFAULT_FAMILIES, DEFAULT_ORDERS, OptionGrid, check_families
>>> from ttsplan.planner.policies import FixedPolicy
>>> maj = np.array([[0.6] * 4, [0.6] * 4, [0.9] * 4])          # maj@1..3 on 4 prompts
>>> grid = OptionGrid("c", ("a", "b", "c", "d"), tuple(FixedPolicy("majority", n) for n in (1, 2, 3)),
...                   maj, np.array([[1.0] * 4, [2.0] * 4, [3.0] * 4]), np.ones((3, 4)), maj, 3, 1)
>>> grid.policies[select(grid, np.arange(4), Objective.majority(3, tolerance=0.005))].describe()
'majority N=3'
>>> grid.policies[select(grid, np.arange(4), Objective.absolute(0.5))].describe()
'majority N=1'
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ttsplan.features.errors import TtsplanError
from ttsplan.planner.budget import UNITS
from ttsplan.planner.option_grid import DEFAULT_FAMILIES, DEFAULT_ORDERS, OptionGrid, check_families
from ttsplan.planner.policies import FixedPolicy, Policy

DEFAULT_TOLERANCE = 0.005
DEFAULT_CONFIDENCE = 0.9
DEFAULT_FOLDS = 5
#: standard errors of the paired shortfall a candidate must clear (guards the choice against noise)
DEFAULT_MARGIN = 1.0
#: cost units of an objective: samples and output tokens, or a priced unit (needs a cost model)
COST_UNITS = UNITS


@dataclass(frozen=True)
class Objective:
    """What the plan optimizes; validated on construction.

    ``kind="target"``: least cost with accuracy ≥ ``target`` (absolute) or ≥ majority@``reference_n``
    − ``tolerance`` (``reference_n=None`` with ``target=None``: majority@n_max, the most recorded).
    ``kind="budget"``: most accuracy with expected ``unit`` per prompt ≤ ``budget``.
    """

    kind: str = "target"
    target: float | None = None
    reference_n: int | None = None
    tolerance: float = DEFAULT_TOLERANCE
    budget: float | None = None
    unit: str = "samples"
    margin: float = DEFAULT_MARGIN

    def __post_init__(self) -> None:
        problems = []
        if self.kind not in ("target", "budget"):
            problems.append(f"objective kind must be target or budget, got {self.kind!r}.")
        if self.unit not in COST_UNITS:
            problems.append(f"unit must be one of {', '.join(COST_UNITS)} for a policy plan, got {self.unit!r}.")
        if self.target is not None and not (isinstance(self.target, (int, float)) and 0.0 <= self.target <= 1.0):
            problems.append(f"target must be an accuracy in [0, 1] or majority@N, got {self.target!r}. "
                            "Pass e.g. --target 0.9 or --target majority@16.")
        if self.reference_n is not None and not (isinstance(self.reference_n, int) and self.reference_n >= 1):
            problems.append(f"majority@N must have a whole N >= 1, got {self.reference_n!r}.")
        if self.target is not None and self.reference_n is not None:
            problems.append("target must be an accuracy or majority@N, not both.")
        if not (isinstance(self.tolerance, (int, float)) and 0.0 <= self.tolerance < 1.0):
            problems.append(f"tolerance must be in [0, 1) (accuracy, 0.005 = 0.5 points), got {self.tolerance!r}.")
        if not (isinstance(self.margin, (int, float)) and self.margin >= 0):
            problems.append(f"margin must be >= 0 standard errors, got {self.margin!r}.")
        if self.kind == "budget" and not (isinstance(self.budget, (int, float)) and self.budget > 0):
            problems.append(f"budget must be > 0 {self.unit} per prompt, got {self.budget!r}.")
        if problems:
            raise TtsplanError("objective: " + " ".join(problems))

    @classmethod
    def majority(cls, n: int | None = None, tolerance: float = DEFAULT_TOLERANCE, unit: str = "samples",
                 margin: float = DEFAULT_MARGIN) -> Objective:
        return cls("target", None, n, tolerance, None, unit, margin)

    @classmethod
    def absolute(cls, target: float, unit: str = "samples", margin: float = DEFAULT_MARGIN) -> Objective:
        return cls("target", float(target), None, 0.0, None, unit, margin)

    @classmethod
    def within_budget(cls, budget: float, unit: str = "samples") -> Objective:
        return cls("budget", None, None, 0.0, float(budget), unit, 0.0)

    @classmethod
    def parse(cls, target: str | None, tolerance: float = DEFAULT_TOLERANCE, budget: float | None = None,
              unit: str = "samples", margin: float = DEFAULT_MARGIN) -> Objective:
        """From the CLI: ``target`` is ``None`` (majority@n_max), ``"majority@N"`` or an accuracy in [0, 1]."""
        if budget is not None:
            if target is not None:
                raise TtsplanError("--budget and --target must not be combined, got both. Pass one objective.")
            return cls.within_budget(budget, unit)
        if target is None:
            return cls.majority(None, tolerance, unit, margin)
        m = re.fullmatch(r"\s*majority@(\d+)\s*", str(target))
        if m:
            return cls.majority(int(m.group(1)), tolerance, unit, margin)
        if str(target).strip().startswith("majority@"):
            raise TtsplanError(f"--target majority@N must name a whole N >= 1, got {target!r}. Try majority@16.")
        try:
            value = float(target)
        except ValueError:
            raise TtsplanError(f"--target must be an accuracy in [0, 1] or majority@N, got {target!r}. "
                               "Try --target 0.9 or --target majority@16.") from None
        return cls("target", value, None, tolerance, None, unit, margin)

    def describe(self, n_max: int | None = None) -> str:
        if self.kind == "budget":
            return f"most accuracy within {self.budget:g} {self.unit}/prompt"
        if self.target is not None:
            return f"least {self.unit} with accuracy ≥ {self.target:g}"
        n = self.reference_n or n_max
        return f"least {self.unit} matching majority@{n if n else 'N_max'} within {self.tolerance * 100:g} pt"


@dataclass(frozen=True)
class PlanOptions:
    """How a policy plan is chosen and estimated (what travels together); validated on construction.

    ``folds`` of prompts for the nested cross-fitting, sample ``orders`` replayed per adaptive policy,
    ``confidence`` of the intervals, ``seed`` of folds, orders and bootstrap, candidate ``families``
    (:data:`~ttsplan.planner.option_grid.FAMILIES`).

    >>> PlanOptions(orders=4).families
    ('fixed', 'adaptive')
    >>> PlanOptions(folds=1)
    Traceback (most recent call last):
    ...
    ttsplan.features.errors.TtsplanError: plan options: folds must be a whole number >= 2, got 1.
    """

    folds: int = DEFAULT_FOLDS
    orders: int = DEFAULT_ORDERS
    confidence: float = DEFAULT_CONFIDENCE
    seed: int = 0
    families: tuple[str, ...] = DEFAULT_FAMILIES

    def __post_init__(self) -> None:
        problems = []
        whole = (lambda x: isinstance(x, int) and not isinstance(x, bool))
        if not (whole(self.folds) and self.folds >= 2):
            problems.append(f"folds must be a whole number >= 2, got {self.folds!r}.")
        if not (whole(self.orders) and self.orders >= 1):
            problems.append(f"orders must be a whole number >= 1, got {self.orders!r}.")
        if not (isinstance(self.confidence, float) and 0 < self.confidence < 1):
            problems.append(f"confidence must be in (0, 1), got {self.confidence!r}.")
        if not whole(self.seed):
            problems.append(f"seed must be a whole number, got {self.seed!r}.")
        try:
            object.__setattr__(self, "families", check_families(self.families))
        except TtsplanError as exc:
            problems.append(str(exc))
        if problems:
            raise TtsplanError("plan options: " + " ".join(problems))


def objective_cost(grid: OptionGrid, unit: str) -> np.ndarray:
    """(policies, prompts) expected cost in ``unit``; priced units come from :func:`~ttsplan.planner.option_grid.price_grid`."""
    if unit == "samples":
        return grid.samples
    if unit == "tokens":
        return grid.tokens
    if unit not in grid.costs:
        raise TtsplanError(f"unit {unit!r} must be priced by a cost model, got a grid without prices. Pass a model "
                           "to price it (--model, e.g. --model gemma-3-270m), or use --unit samples / tokens.")
    return np.asarray(grid.costs[unit])


def reference_n(grid: OptionGrid, objective: Objective) -> int:
    n = objective.reference_n or grid.n_max
    if n > grid.n_max:
        raise TtsplanError(f"majority@{n} must be within the {grid.n_max} samples recorded per prompt of "
                           f"{grid.config!r}, got {n}. Pass --target majority@{grid.n_max} or sample more.")
    return n


def select(grid: OptionGrid, rows: np.ndarray, objective: Objective) -> int:
    """Index of the policy the objective picks, judged on prompts ``rows`` only."""
    acc = grid.accuracy[:, rows]
    cost = objective_cost(grid, objective.unit)[:, rows].mean(axis=1)
    m = max(rows.size, 1)
    if objective.kind == "budget":
        ok = cost <= objective.budget + 1e-9
        if not ok.any():
            return int(np.argmin(cost))
        score = np.where(ok, acc.mean(axis=1), -np.inf)
        best = np.flatnonzero(score >= score.max() - 1e-12)
        return int(best[np.argmin(cost[best])])
    if objective.target is not None:
        se = acc.std(axis=1, ddof=1) / np.sqrt(m) if m > 1 else np.zeros(acc.shape[0])
        ok = acc.mean(axis=1) - objective.margin * se >= objective.target - 1e-12
        fallback = int(np.argmax(acc.mean(axis=1)))
    else:
        n_ref = reference_n(grid, objective)
        ref = grid.majority[n_ref - 1, rows]
        diff = ref[None, :] - acc
        se = diff.std(axis=1, ddof=1) / np.sqrt(m) if m > 1 else np.zeros(acc.shape[0])
        ok = diff.mean(axis=1) + objective.margin * se <= objective.tolerance + 1e-12
        fallback = grid.index(FixedPolicy("majority", n_ref))
    if not ok.any():
        return fallback
    feasible = np.flatnonzero(ok)
    c = cost[feasible]
    best = feasible[c <= c.min() + 1e-9]
    return int(best[np.argmax(acc[best].mean(axis=1))])


@dataclass(frozen=True)
class Estimate:
    """A cross-fitted mean over prompts with a bootstrap interval and the per-prompt spread."""

    mean: float
    low: float
    high: float
    se: float       # bootstrap standard error of the mean
    sd: float       # per-prompt standard deviation (for prediction intervals on new prompt sets)
    n_prompts: int

    def prediction_interval(self, n_new: int, confidence: float = DEFAULT_CONFIDENCE,
                            unit_interval: bool = False) -> tuple[float, float]:
        """Interval for the mean over ``n_new`` *new* prompts: estimation error plus their own spread.

        ``unit_interval=True`` (per-prompt values in [0, 1], e.g. accuracy) adds two pseudo-prompts
        scoring 0 and 1 to the spread, so that a mean near 0 or 1 seen on few prompts (often with no
        spread at all) does not give a zero-width interval; on mid-range means it changes little.

        >>> e = Estimate(0.0, 0.0, 0.0, 0.0, 0.0, 32)       # no prompt of 32 right
        >>> e.prediction_interval(32)
        (0.0, 0.0)
        >>> [round(x, 3) for x in e.prediction_interval(32, unit_interval=True)]
        [-0.071, 0.071]
        """
        from scipy.stats import norm

        z = float(norm.ppf(0.5 + confidence / 2))
        se2, var = self.se ** 2, self.sd ** 2
        if unit_interval:
            n, mu = self.n_prompts, self.mean
            mu_aug = (n * mu + 1.0) / (n + 2)
            var = ((n - 1) * var + n * (mu - mu_aug) ** 2 + mu_aug ** 2 + (1 - mu_aug) ** 2) / (n + 1)
            se2 = max(se2, var / max(n, 1))
        half = z * float(np.sqrt(se2 + var / max(n_new, 1)))
        return self.mean - half, self.mean + half

    def to_dict(self) -> dict[str, float | int]:
        return {"mean": self.mean, "low": self.low, "high": self.high, "se": self.se, "sd": self.sd,
                "n_prompts": self.n_prompts}


def bootstrap_estimate(values: np.ndarray, confidence: float = DEFAULT_CONFIDENCE, n_boot: int = 2000,
                       seed: int = 0) -> Estimate:
    """Mean of per-prompt ``values`` with a percentile bootstrap interval over prompts."""
    v = np.asarray(values, dtype=float)
    rng = np.random.default_rng([seed, 11])
    means = v[rng.integers(0, v.size, size=(n_boot, v.size))].mean(axis=1)
    a = (1 - confidence) / 2
    return Estimate(float(v.mean()), float(np.quantile(means, a)), float(np.quantile(means, 1 - a)),
                    float(means.std(ddof=1)), float(v.std(ddof=1)) if v.size > 1 else 0.0, int(v.size))


@dataclass(frozen=True)
class CrossFit:
    """The chosen policy and the out-of-sample figures of the procedure that chose it."""

    policy: Policy
    accuracy: Estimate
    samples: Estimate
    tokens: Estimate
    shortfall: Estimate       # reference − accuracy, paired per prompt (target majority@N); else vs majority@n_max
    reference: Estimate       # exact majority@N accuracy of the same prompts
    reference_n: int
    fold_choices: tuple[str, ...]
    met: bool                 # the objective was feasible on all prompts


def crossfit(grid: OptionGrid, objective: Objective, *, rows: np.ndarray | None = None, folds: int = DEFAULT_FOLDS,
             confidence: float = DEFAULT_CONFIDENCE, seed: int = 0, n_boot: int = 2000) -> CrossFit:
    """Select on all ``rows`` (default every prompt) and estimate the selection out of sample (see module doc)."""
    rows = np.arange(len(grid.prompt_ids)) if rows is None else np.asarray(rows)
    if rows.size < 2:
        raise TtsplanError(f"configuration {grid.config!r} must have at least 2 prompts to cross-fit, got "
                           f"{rows.size}.")
    k = int(min(folds, rows.size))
    rng = np.random.default_rng([seed, 3])
    fold = rng.permutation(np.arange(rows.size) % k)
    cf_acc, cf_smp, cf_tok = np.empty(rows.size), np.empty(rows.size), np.empty(rows.size)
    choices = []
    for f in range(k):
        train, test = rows[fold != f], rows[fold == f]
        i = select(grid, train, objective)
        choices.append(grid.policies[i].describe())
        cf_acc[fold == f] = grid.accuracy[i, test]
        cf_smp[fold == f] = grid.samples[i, test]
        cf_tok[fold == f] = grid.tokens[i, test]
    final = select(grid, rows, objective)
    n_ref = reference_n(grid, objective) if objective.kind == "target" and objective.target is None else grid.n_max
    ref = grid.majority[n_ref - 1, rows]
    est = [bootstrap_estimate(v, confidence, n_boot, seed) for v in (cf_acc, cf_smp, cf_tok, ref - cf_acc, ref)]
    if objective.kind == "budget":
        met = bool(objective_cost(grid, objective.unit)[final, rows].mean() <= objective.budget + 1e-9)
    elif objective.target is not None:
        met = bool(grid.accuracy[final, rows].mean() >= objective.target)
    else:
        met = True
    return CrossFit(grid.policies[final], *est, n_ref, tuple(choices), met)


__all__ = ["COST_UNITS", "DEFAULT_CONFIDENCE", "DEFAULT_FOLDS", "DEFAULT_MARGIN", "DEFAULT_TOLERANCE", "CrossFit",
           "Estimate", "Objective", "PlanOptions", "bootstrap_estimate", "crossfit", "objective_cost", "reference_n", "select"]
