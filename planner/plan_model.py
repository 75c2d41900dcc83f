"""The per-prompt plan (schema 1) as a value: :class:`Plan` with its :class:`ConfigPlan` per configuration
and :class:`Allocation` per prompt, its JSON (``Plan.to_json`` / ``from_json``; exact round trip) and the
hashes that tie a plan to its input table and to the prompts it was made for.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import polars as pl
from ttsplan.features.errors import TtsplanError
from ttsplan.features.io import update_csv_hash
from ttsplan.planner.budget import Budget

SCHEMA_VERSION = 1
#: default budget when none is given: the cost of majority vote with this N on every prompt.
DEFAULT_BUDGET_N = 8


@dataclass(frozen=True)
class Allocation:
    """One prompt's planned strategy and N, with expected accuracy (+ credible interval) and cost."""

    config: str
    prompt_id: str
    strategy: str
    n: int
    expected_accuracy: float
    accuracy_low: float
    accuracy_high: float
    expected_cost: float


@dataclass(frozen=True)
class Baseline:
    """A reference policy at the same budget: ``uniform`` (one N per strategy) or ``difficulty-bins``."""

    name: str
    strategy: str | None
    n: int | None
    expected_accuracy: float | None
    expected_cost: float | None


@dataclass(frozen=True)
class ConfigPlan:
    """Per configuration: the config-level recommendation, the per-prompt plan's totals, baselines."""

    config: str
    n_prompts: int
    budget_total: float
    strategy: str | None
    n: int | None
    expected_accuracy: float | None
    accuracy_low: float | None
    accuracy_high: float | None
    expected_cost: float | None
    tokens_per_prompt: float | None
    seconds_per_prompt: float | None
    usd_total: float | None
    per_prompt_accuracy: float
    per_prompt_low: float
    per_prompt_high: float
    per_prompt_cost: float
    per_prompt_tokens: float | None
    per_prompt_seconds: float | None
    per_prompt_usd: float | None
    pilot_cost: float
    min_cost: float
    lam: float
    strategy_mix: tuple[tuple[str, int], ...]
    mean_n: float
    baselines: tuple[Baseline, ...]
    dataset: str | None = None


@dataclass(frozen=True)
class Plan:
    """A versioned plan; ``Plan.from_json(p.to_json()) == p``."""

    budget: Budget
    mode: str
    strategies: tuple[str, ...]
    grid: tuple[int, ...]
    configs: tuple[ConfigPlan, ...]
    allocations: tuple[Allocation, ...]
    recommended_config: str
    input_hash: str
    model_hash: str
    model: str | None = None
    gpu: str | None = None
    pilot_k0: int | None = None
    risk_averse: bool = False
    budget_is_default: bool = False
    notes: tuple[str, ...] = ()
    schema_version: int = SCHEMA_VERSION
    #: (prompt_id, sha256 of the prompt's bare text) of the prompts the per-prompt caps were made for
    prompt_hashes: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.schema_version != SCHEMA_VERSION:
            raise TtsplanError(f"plan schema_version must be {SCHEMA_VERSION}, got {self.schema_version}. "
                               "Re-run `ttsplan plan` with this version.")
        if self.mode not in ("per-prompt", "pilot"):
            raise TtsplanError(f"plan mode must be per-prompt or pilot, got {self.mode!r}.")

    # -- serialization ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["budget"] = self.budget.to_dict()
        cols = [f for f in Allocation.__dataclass_fields__]
        d["allocations"] = {c: [getattr(a, c) for a in self.allocations] for c in cols}
        return d

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Plan:
        try:
            if d.get("schema_version") != SCHEMA_VERSION:
                raise TtsplanError(f"plan schema_version must be {SCHEMA_VERSION}, got {d.get('schema_version')!r}. "
                                   "Re-run `ttsplan plan` with this version.")
            cols = d["allocations"]
            _check_allocation_columns(cols)
            allocs = tuple(Allocation(*vals) for vals in zip(*(cols[c] for c in Allocation.__dataclass_fields__)))
            configs = tuple(ConfigPlan(**{**c, "strategy_mix": tuple(tuple(x) for x in c["strategy_mix"]),
                                          "baselines": tuple(Baseline(**b) for b in c["baselines"])})
                            for c in d["configs"])
            return cls(budget=Budget.from_dict(d["budget"]), mode=d["mode"], strategies=tuple(d["strategies"]),
                       grid=tuple(d["grid"]), configs=configs, allocations=allocs,
                       recommended_config=d["recommended_config"], input_hash=d["input_hash"],
                       model_hash=d["model_hash"], model=d["model"], gpu=d["gpu"], pilot_k0=d["pilot_k0"],
                       risk_averse=d["risk_averse"], budget_is_default=d["budget_is_default"],
                       notes=tuple(d["notes"]), schema_version=d["schema_version"],
                       prompt_hashes=tuple(tuple(x) for x in d.get("prompt_hashes", ())))
        except (KeyError, TypeError) as exc:
            raise TtsplanError(f"plan JSON must have the fields written by `ttsplan plan`, got a problem with "
                               f"{exc}. Re-create the plan.") from None

    @classmethod
    def from_json(cls, text: str) -> Plan:
        return cls.from_dict(parse_plan_json(text))

    # -- views -------------------------------------------------------------------------------
    def allocations_frame(self) -> pl.DataFrame:
        cols = list(Allocation.__dataclass_fields__)
        schema = {"config": pl.String, "prompt_id": pl.String, "strategy": pl.String, "n": pl.Int64,
                  "expected_accuracy": pl.Float64, "accuracy_low": pl.Float64, "accuracy_high": pl.Float64,
                  "expected_cost": pl.Float64}
        return pl.DataFrame({c: [getattr(a, c) for a in self.allocations] for c in cols}, schema=schema)

    def rows(self, view: str = "config") -> list[dict[str, Any]]:
        """Formatted rows for printing, one per configuration: ``view="config"`` (the config-level
        recommendation, its cost and the uniform baselines) or ``"per-prompt"`` (the allocation)."""
        def acc(v: float | None, lo: float | None, hi: float | None) -> str:
            return "–" if v is None else f"{v:.3f} [{lo:.3f}, {hi:.3f}]"

        def num(v: float | None, fmt: str) -> str:
            return "–" if v is None else format(v, fmt)

        gpu = self.gpu or "GPU"
        out = []
        for c in self.configs:
            name = c.config + (" *" if c.config in self.recommended_by_dataset().values() else "")
            if view == "per-prompt":
                bins = next((b for b in c.baselines if b.name == "difficulty-bins"), None)
                out.append({"config": name, "plan accuracy [90%]": acc(c.per_prompt_accuracy, c.per_prompt_low,
                                                                        c.per_prompt_high),
                            "mean N": f"{c.mean_n:.1f}", "strategy mix": ", ".join(f"{s}×{k}" for s, k in c.strategy_mix),
                            "tokens/prompt": num(c.per_prompt_tokens, ",.0f"),
                            f"{gpu}-s/prompt": num(c.per_prompt_seconds, ".3g"), "usd total": num(c.per_prompt_usd, ".3g"),
                            "difficulty bins": num(bins.expected_accuracy if bins else None, ".3f")})
                continue
            uni = {b.strategy: b for b in c.baselines if b.name == "uniform"}
            row = {"config": name, "recommended": f"{c.strategy} N={c.n}" if c.strategy else "–",
                   "accuracy [90%]": acc(c.expected_accuracy, c.accuracy_low, c.accuracy_high),
                   "tokens/prompt": num(c.tokens_per_prompt, ",.0f"),
                   f"{gpu}-s/prompt": num(c.seconds_per_prompt, ".3g"), "usd total": num(c.usd_total, ".3g")}
            shown = [x for x in ("majority", "best-of-n", "pass@n") if x in self.strategies] or \
                [x for x in self.strategies if x != "greedy"][:2]
            for s in shown:
                b = uni.get(s)
                row[f"uniform {s}"] = (f"N={b.n}: {b.expected_accuracy:.3f}" if b and b.n is not None else "–")
            out.append(row)
        return out

    def summary(self) -> pl.DataFrame:
        """Per configuration: estimates with intervals (config-level and per-prompt plans)."""
        rows = []
        for c in self.configs:
            rows.append({"config": c.config, "plan": "config-level", "strategy": c.strategy, "n": c.n,
                         "estimate": c.expected_accuracy, "ci_low": c.accuracy_low, "ci_high": c.accuracy_high,
                         "cost": c.expected_cost})
            rows.append({"config": c.config, "plan": "per-prompt", "strategy": "mixed", "n": None,
                         "estimate": c.per_prompt_accuracy, "ci_low": c.per_prompt_low, "ci_high": c.per_prompt_high,
                         "cost": c.per_prompt_cost})
        schema = {"config": pl.String, "plan": pl.String, "strategy": pl.String, "n": pl.Int64,
                  "estimate": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64, "cost": pl.Float64}
        return pl.DataFrame(rows, schema=schema)

    def recommended_by_dataset(self) -> dict[str, str]:
        """The best configuration of each task (``dataset``): configurations of different tasks are
        not alternatives to each other. One entry per dataset, sorted by name."""
        best: dict[str, ConfigPlan] = {}
        for c in self.configs:
            key = c.dataset or ""
            if key not in best or (c.per_prompt_accuracy, -c.per_prompt_cost) > (
                    best[key].per_prompt_accuracy, -best[key].per_prompt_cost):
                best[key] = c
        return {k: best[k].config for k in sorted(best)}

    def describe(self) -> str:
        """A few human sentences: budget, recommendation, gain over the uniform baseline."""
        best = next(c for c in self.configs if c.config == self.recommended_config)
        lines = [f"budget: {self.budget.describe()}" + (" (default: the cost of majority vote with N="
                                                         f"{DEFAULT_BUDGET_N} on every prompt; set --budget)"
                                                         if self.budget_is_default else "")
                 + f"; strategies: {', '.join(self.strategies)}; mode: {self.mode}"
                 + (f" (pilot k0={self.pilot_k0}, pilot cost counted)" if self.pilot_k0 else "")
                 + (f"; priced for {self.model} on {self.gpu}" if self.model else "")]
        by_dataset = self.recommended_by_dataset()
        for dataset, config in (by_dataset.items() if len(by_dataset) > 1 else [(None, best.config)]):
            c = next(c for c in self.configs if c.config == config)
            head = f"recommended for {dataset}: " if dataset else "recommended: "
            lines.append(f"{head}config {c.config!r} with {c.strategy} N={c.n} "
                         f"(predicted accuracy {c.expected_accuracy:.3f}, interval {c.accuracy_low:.3f}–"
                         f"{c.accuracy_high:.3f}); per-prompt plan {c.per_prompt_accuracy:.3f} "
                         f"({c.per_prompt_low:.3f}–{c.per_prompt_high:.3f})"
                         if c.strategy else f"{head}config {c.config!r}")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------ helpers
def parse_plan_json(text: str) -> Any:
    """``json.loads`` of a plan file, with a parse error as one :class:`TtsplanError`."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise TtsplanError(f"plan must be JSON written by `ttsplan plan`, got a parse error ({exc}).") from None


def _check_allocation_columns(cols: Any) -> None:
    """An edited plan must keep its allocation columns whole: equal lengths, N a whole number >= 1."""
    if not isinstance(cols, dict):
        raise TtsplanError(f"plan allocations must be an object of columns, got {type(cols).__name__}. "
                           "Re-create the plan.")
    names = list(Allocation.__dataclass_fields__)
    missing = [c for c in names if c not in cols]
    problems = [f"allocations must have the columns {', '.join(names)}, got none for {', '.join(missing)}."] \
        if missing else []
    not_lists = [c for c in names if c in cols and not isinstance(cols[c], list)]
    if not_lists:
        problems.append(f"allocations columns must be lists, got {', '.join(not_lists)} that are not.")
    lengths = {c: len(cols[c]) for c in names if c in cols and isinstance(cols[c], list)}
    for c in ("config", "prompt_id", "strategy"):
        bad = [v for v in cols.get(c, []) if not isinstance(v, str)] if isinstance(cols.get(c), list) else []
        if bad:
            problems.append(f"allocations {c} must be strings, got {bad[:3]!r}.")
    if len(set(lengths.values())) > 1:
        problems.append("allocations columns must all have the same length, got "
                        + ", ".join(f"{c}: {n}" for c, n in lengths.items()) + ".")
    bad_n = [v for v in (cols["n"] if isinstance(cols.get("n"), list) else []) if not (isinstance(v, int) and not isinstance(v, bool) and v >= 1)]
    if bad_n:
        problems.append(f"allocations n must be whole numbers >= 1, got {bad_n[:3]!r}"
                        + (f" and {len(bad_n) - 3} more" if len(bad_n) > 3 else "") + ".")
    if problems:
        raise TtsplanError("plan JSON: " + " ".join(problems) + " Re-create the plan with `ttsplan plan`.")


def prompt_text_hash(text: str) -> str:
    """sha256 (first 16 hex digits) of a prompt's bare text, whitespace-trimmed."""
    return hashlib.sha256(text.strip().encode()).hexdigest()[:16]


def check_prompts_match(plan: Plan, prompts: Sequence[Any], config: str) -> None:
    """Per-prompt caps apply only to the prompts the plan was made for: ids present, texts unchanged."""
    planned = {a.prompt_id for a in plan.allocations}
    given = {p.id: p for p in prompts}
    problems = []
    unknown = sorted(set(given) - planned)
    if unknown:
        problems.append(f"{len(unknown)} prompt(s) have no cap in the plan (e.g. {', '.join(unknown[:3])})")
    hashes = dict(plan.prompt_hashes)
    changed = sorted(pid for pid, p in given.items() if pid in hashes
                     and hashes[pid] != prompt_text_hash(getattr(p, "question", None) or p.prompt))
    if changed:
        problems.append(f"{len(changed)} prompt(s) have a different text than the plan was made for (e.g. "
                        f"{', '.join(changed[:3])})")
    if problems:
        raise TtsplanError("prompts must be the ones this per-prompt plan was made for, got: " + "; ".join(problems)
                           + ". Make a plan for these prompts (`ttsplan plan LABELED --pilot-file PILOT --prompts "
                           "FILE`) or use a policy plan (the default `ttsplan plan`), which applies to any prompt.")


def table_hash(table: pl.DataFrame) -> str:
    """sha256 of the table's CSV text (validated tables are sorted, so equal data hashes equal), fed in slices."""
    h = hashlib.sha256()
    update_csv_hash(h, table)
    return h.hexdigest()[:16]


def _model_hash(parts: Sequence[Any]) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(np.asarray(p).tobytes() if isinstance(p, np.ndarray) else json.dumps(p, sort_keys=True,
                                                                                       default=str).encode())
    return h.hexdigest()[:16]


__all__ = ["DEFAULT_BUDGET_N", "SCHEMA_VERSION", "Allocation", "Baseline", "ConfigPlan", "Plan", "check_prompts_match",
           "parse_plan_json", "prompt_text_hash", "table_hash"]
