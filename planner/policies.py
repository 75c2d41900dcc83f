"""Deployment policies: what a plan tells the runtime to do on the task's *future* prompts.

A policy is a small frozen value object that validates itself on construction:

* :class:`FixedPolicy` — the same strategy and N for every prompt (``majority`` with N = 1 is one
  sample at the configuration's temperature);
* :class:`AdaptivePolicy` — majority vote that draws samples one at a time and stops a prompt once
  the stopping rule (:mod:`ttsplan.planner.stopping`, executed by
  :class:`~ttsplan.planner.adaptive.AdaptiveSession`) is confident enough, never before ``min_n`` and
  never past ``cap``.

>>> FixedPolicy("majority", 8).describe()
'majority N=8'
>>> p = AdaptivePolicy("horizon", 0.9, min_n=1, cap=40)
>>> p.describe(), policy_from_dict(p.to_dict()) == p
('adaptive majority (horizon ≥ 0.9, N 1–40)', True)
>>> AdaptivePolicy("horizon", 1.5, cap=40)
Traceback (most recent call last):
...
ttsplan.features.errors.TtsplanError: adaptive policy: threshold must be in (0.5, 1) for the horizon rule, got 1.5. Try 0.95.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ttsplan.features.errors import TtsplanError, did_you_mean

#: strategies a fixed policy can run and the planner can score exactly on a labeled table
FIXED_STRATEGIES: tuple[str, ...] = ("majority",)
#: stopping rules an adaptive policy can use (all need only answers, no rewards)
ADAPTIVE_RULES: tuple[str, ...] = ("horizon", "beta", "regret", "pilot")


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


@dataclass(frozen=True)
class FixedPolicy:
    """The same ``strategy`` and ``n`` samples for every prompt."""

    strategy: str
    n: int
    kind: ClassVar[str] = "fixed"

    def __post_init__(self) -> None:
        problems = []
        if self.strategy not in FIXED_STRATEGIES:
            problems.append(f"strategy must be one of {', '.join(FIXED_STRATEGIES)}, got {self.strategy!r}."
                            f"{did_you_mean(str(self.strategy), FIXED_STRATEGIES)}")
        if not (_is_int(self.n) and self.n >= 1):
            problems.append(f"n must be a whole number >= 1, got {self.n!r}. Edit the plan or re-run `ttsplan plan`.")
        if problems:
            raise TtsplanError("fixed policy: " + " ".join(problems))

    @property
    def max_samples(self) -> int:
        return self.n

    def describe(self) -> str:
        return f"{self.strategy} N={self.n}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "strategy": self.strategy, "n": self.n}


@dataclass(frozen=True)
class AdaptivePolicy:
    """Majority vote with per-prompt adaptive stopping (``rule`` at ``threshold``, N in [min_n, cap])."""

    rule: str
    threshold: float
    min_n: int = 1
    cap: int = 40
    strategy: str = "majority"
    kind: ClassVar[str] = "adaptive"

    def __post_init__(self) -> None:
        problems = []
        if self.rule not in ADAPTIVE_RULES:
            problems.append(f"rule must be one of {', '.join(ADAPTIVE_RULES)}, got {self.rule!r}."
                            f"{did_you_mean(str(self.rule), ADAPTIVE_RULES)}")
        t = self.threshold
        if not (isinstance(t, (int, float)) and not isinstance(t, bool) and 0.5 < float(t) < 1.0):
            problems.append(f"threshold must be in (0.5, 1) for the {self.rule} rule, got {t!r}. Try 0.95.")
        if not (_is_int(self.cap) and self.cap >= 1):
            problems.append(f"cap must be a whole number >= 1, got {self.cap!r}.")
        if not (_is_int(self.min_n) and self.min_n >= 1):
            problems.append(f"min_n must be a whole number >= 1, got {self.min_n!r}.")
        elif _is_int(self.cap) and self.min_n > self.cap:
            problems.append(f"min_n must be <= cap, got min_n={self.min_n} > cap={self.cap}.")
        if self.strategy != "majority":
            problems.append(f"strategy must be majority for an adaptive policy, got {self.strategy!r}.")
        if problems:
            raise TtsplanError("adaptive policy: " + " ".join(problems))

    @property
    def n(self) -> int:
        """The most samples a prompt can get (the cap)."""
        return self.cap

    @property
    def max_samples(self) -> int:
        return self.cap

    @property
    def two_stage(self) -> bool:
        """A pilot of ``min_n`` samples, then a per-prompt cap from the pilot's agreement (the ``pilot`` rule)."""
        return self.rule == "pilot"

    def describe(self) -> str:
        if self.two_stage:
            return f"two-stage {self.strategy} (pilot {self.min_n}, then per-prompt cap at {self.threshold:g}, N ≤ {self.cap})"
        return f"adaptive {self.strategy} ({self.rule} ≥ {self.threshold:g}, N {self.min_n}–{self.cap})"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "strategy": self.strategy, "rule": self.rule, "threshold": float(self.threshold),
                "min_n": self.min_n, "cap": self.cap}


Policy = FixedPolicy | AdaptivePolicy


def policy_from_dict(d: Any) -> Policy:
    """Rebuild a policy from :meth:`to_dict`; every problem is one :class:`TtsplanError`."""
    if not isinstance(d, dict):
        raise TtsplanError(f"policy must be a JSON object, got {type(d).__name__}. Re-create the plan.")
    kind = d.get("kind")
    fields = {k: v for k, v in d.items() if k != "kind"}
    try:
        if kind == "fixed":
            return FixedPolicy(**fields)
        if kind == "adaptive":
            return AdaptivePolicy(**fields)
    except TypeError as exc:
        raise TtsplanError(f"policy {d!r} must have the fields written by `ttsplan plan`, got {exc}. "
                           "Re-create the plan.") from None
    raise TtsplanError(f"policy kind must be fixed or adaptive, got {kind!r}. Re-create the plan.")


__all__ = ["ADAPTIVE_RULES", "FIXED_STRATEGIES", "AdaptivePolicy", "FixedPolicy", "Policy", "policy_from_dict"]
