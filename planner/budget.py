"""A compute budget for the planner: an amount in one unit, for the whole task or per prompt.

Units: ``samples`` (completions), ``tokens`` (prompt tokens processed + generated tokens, prefix
caching), ``flops``, ``eflops`` (Kinetics memory-aware FLOPs), ``seconds`` (GPU-seconds) and
``usd``; the last four are priced by :class:`ttsplan.fitting.cost.CostModel` for a model and GPU.

>>> b = Budget(8, "samples", per_prompt=True)
>>> b.total(100)
800.0
>>> Budget.parse("2e6", "tokens").describe()
'2,000,000 tokens in total'
>>> Budget.parse("8/prompt").per_prompt
True
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ttsplan.features.errors import TtsplanError, did_you_mean

UNITS: tuple[str, ...] = ("samples", "tokens", "flops", "eflops", "seconds", "usd")
#: units that need a cost model (a model + GPU) to price.
PRICED_UNITS: tuple[str, ...] = ("flops", "eflops", "seconds", "usd")
_ALIASES = {"sample": "samples", "n": "samples", "token": "tokens", "flop": "flops", "eflop": "eflops",
            "s": "seconds", "sec": "seconds", "second": "seconds", "gpu-seconds": "seconds",
            "latency_s": "seconds", "dollars": "usd", "$": "usd", "cost_usd": "usd"}
_PER_PROMPT_SUFFIXES = ("/prompt", "/p", "per-prompt", "x")


def normalize_unit(unit: str) -> str:
    """Canonical unit name; raises :class:`TtsplanError` with a "Did you mean" hint."""
    key = str(getattr(unit, "value", unit)).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in UNITS:
        raise TtsplanError(f"unit must be one of {', '.join(UNITS)}, got {unit!r}."
                           f"{did_you_mean(str(unit), UNITS)}")
    return key


@dataclass(frozen=True)
class Budget:
    """``amount`` of ``unit`` for the whole task (``per_prompt=False``) or for each prompt on average."""

    amount: float
    unit: str = "samples"
    per_prompt: bool = False

    def __post_init__(self) -> None:
        problems = []
        try:
            amount = float(self.amount)
        except (TypeError, ValueError):
            amount = float("nan")
        if not (math.isfinite(amount) and amount > 0):
            problems.append(f"budget must be a finite number > 0, got {self.amount!r}. Pass e.g. --budget 8/prompt")
        try:
            unit = normalize_unit(self.unit)
        except TtsplanError as exc:
            problems.append(str(exc))
            unit = self.unit
        if not isinstance(self.per_prompt, bool):
            problems.append(f"per_prompt must be True or False, got {self.per_prompt!r}.")
        if problems:
            raise TtsplanError(" ".join(problems))
        object.__setattr__(self, "amount", amount)
        object.__setattr__(self, "unit", unit)

    @property
    def priced(self) -> bool:
        """True when the unit needs a cost model (flops, eflops, seconds, usd)."""
        return self.unit in PRICED_UNITS

    def total(self, n_prompts: int) -> float:
        """The budget for ``n_prompts`` prompts together."""
        if int(n_prompts) < 1:
            raise TtsplanError(f"n_prompts must be >= 1, got {n_prompts}. The data has no prompts to plan for.")
        return self.amount * n_prompts if self.per_prompt else self.amount

    def per_prompt_amount(self, n_prompts: int) -> float:
        """The average budget per prompt."""
        return self.total(n_prompts) / int(n_prompts)

    def describe(self) -> str:
        amt = f"{self.amount:,.0f}" if self.amount >= 100 and self.amount == round(self.amount) else f"{self.amount:.4g}"
        return f"{amt} {self.unit} {'per prompt' if self.per_prompt else 'in total'}"

    def to_dict(self) -> dict[str, Any]:
        return {"amount": self.amount, "unit": self.unit, "per_prompt": self.per_prompt}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Budget:
        return cls(float(d["amount"]), str(d["unit"]), bool(d["per_prompt"]))

    @classmethod
    def parse(cls, text: str | float, unit: str = "samples", per_prompt: bool | None = None) -> Budget:
        """``"8/prompt"`` (or ``"8x"``) → 8 per prompt; ``"5000"`` → 5,000 in total."""
        s = str(text).strip().lower().replace(" ", "")
        pp = False
        for suf in _PER_PROMPT_SUFFIXES:
            if s.endswith(suf) and len(s) > len(suf):
                s, pp = s[: -len(suf)], True
                break
        try:
            amount = float(s.replace(",", "").replace("_", ""))
        except ValueError:
            raise TtsplanError(f"budget must be a number, optionally followed by /prompt, got {text!r}. "
                               "Pass e.g. --budget 8/prompt or --budget 5000.") from None
        return cls(amount, unit, pp if per_prompt is None else per_prompt)


__all__ = ["PRICED_UNITS", "UNITS", "Budget", "normalize_unit"]
