"""Policy plans (schema version 2): one policy per configuration for the task's *future* prompts.

:func:`make_policy_plan` scores every candidate policy on the labeled prompts
(:func:`~ttsplan.planner.option_grid.score_policies`), picks one per configuration for the
:class:`~ttsplan.planner.crossfit.Objective` and estimates it out of sample
(:func:`~ttsplan.planner.crossfit.crossfit`):

* ``accuracy`` — nested cross-fitting: for each of ``folds`` folds of prompts the policy is chosen on
  the other folds and scored on that fold; a bootstrap over prompts gives the interval;
* ``samples`` / ``output_tokens`` per prompt — the chosen policy's expected cost on the labeled
  prompts (the candidates have no fitted parameters; only the choice is fitted, and the choice is
  driven by accuracy), with a bootstrap interval; the cross-fitted cost, which mixes the folds'
  choices, is kept as ``cv_samples``;
* ``savings`` — majority@N_max's samples over the plan's, and the smallest uniform majority N whose
  exact accuracy on the labeled prompts reaches the plan's cross-fitted accuracy, over the plan's.

A plan stores policies, not caps of labeled prompts, so it applies to any prompts of the task.

>>> import polars as pl
>>> from ttsplan.features.schema import validate_sample_table
>>> rows = [{"config": "c", "prompt_id": f"p{i}", "sample_idx": j, "answer": "a" if (i * j) % 5 else "b",
...          "correct": bool((i * j) % 5)} for i in range(12) for j in range(8)]
>>> plan = make_policy_plan(validate_sample_table(pl.DataFrame(rows)), options=PlanOptions(orders=2))
>>> plan.configs[0].n_max, PolicyPlan.from_json(plan.to_json()) == plan
(8, True)
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import polars as pl
from ttsplan.features.errors import TtsplanError, did_you_mean
from ttsplan.features.io import TableBlocks, as_blocks, update_csv_hash
from ttsplan.planner.budget import PRICED_UNITS
from ttsplan.planner.crossfit import (
    Estimate,
    Objective,
    PlanOptions,
    bootstrap_estimate,
    crossfit,
    objective_cost,
)
from ttsplan.planner.option_grid import OptionGrid, price_grid, score_policies
from ttsplan.planner.plan import Plan, parse_plan_json, prompt_lengths
from ttsplan.planner.policies import FixedPolicy, Policy, policy_from_dict
from ttsplan.planner.strategies import cost_matrix

POLICY_SCHEMA_VERSION = 2


@dataclass(frozen=True)
class ConfigPolicy:
    """One configuration's chosen policy and its out-of-sample figures (see the module doc)."""

    config: str
    dataset: str | None
    n_prompts: int
    n_max: int
    policy: Policy
    objective_met: bool
    accuracy: Estimate          # nested cross-fitted
    samples: Estimate           # the chosen policy on the labeled prompts
    output_tokens: Estimate     # the chosen policy on the labeled prompts
    cv_samples: Estimate        # cross-fitted (mixes the folds' choices)
    reference_n: int
    reference_accuracy: Estimate  # exact majority@reference_n on the labeled prompts
    shortfall: Estimate         # reference − plan accuracy, paired per prompt, cross-fitted
    uniform_n: int | None       # smallest uniform majority N reaching the plan's accuracy
    fold_choices: tuple[str, ...]
    seconds_per_prompt: float | None = None
    usd_per_prompt: float | None = None
    cost: Estimate | None = None  # the chosen policy's expected cost in a priced objective unit, per prompt

    @property
    def savings_vs_max(self) -> float:
        return self.n_max / max(self.samples.mean, 1e-12)

    @property
    def savings_vs_uniform(self) -> float | None:
        return None if self.uniform_n is None else self.uniform_n / max(self.samples.mean, 1e-12)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["policy"] = self.policy.to_dict()
        d["fold_choices"] = list(self.fold_choices)
        d["savings_vs_max"] = self.savings_vs_max
        d["savings_vs_uniform"] = self.savings_vs_uniform
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ConfigPolicy:
        est = {k: Estimate(**d[k]) for k in ("accuracy", "samples", "output_tokens", "cv_samples",
                                             "reference_accuracy", "shortfall")}
        if d.get("cost") is not None:
            est["cost"] = Estimate(**d["cost"])
        rest = {k: v for k, v in d.items() if k not in est and k not in ("policy", "savings_vs_max",
                                                                         "savings_vs_uniform", "fold_choices")}
        return cls(**rest, **est, policy=policy_from_dict(d["policy"]), fold_choices=tuple(d["fold_choices"]))


@dataclass(frozen=True)
class PolicyPlan:
    """A versioned policy plan; ``PolicyPlan.from_json(p.to_json()) == p``."""

    objective: Objective
    configs: tuple[ConfigPolicy, ...]
    input_hash: str
    folds: int
    orders: int
    confidence: float
    model: str | None = None
    gpu: str | None = None
    notes: tuple[str, ...] = ()
    schema_version: int = POLICY_SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.schema_version != POLICY_SCHEMA_VERSION:
            raise TtsplanError(f"policy plan schema_version must be {POLICY_SCHEMA_VERSION}, got "
                               f"{self.schema_version!r}. Re-run `ttsplan plan`.")
        if not self.configs:
            raise TtsplanError("policy plan must hold at least one configuration, got none. Re-run `ttsplan plan`.")

    # -- serialization -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": self.schema_version, "kind": "policy-plan", "objective": asdict(self.objective),
                "configs": [c.to_dict() for c in self.configs], "input_hash": self.input_hash,
                "folds": self.folds, "orders": self.orders, "confidence": self.confidence, "model": self.model,
                "gpu": self.gpu, "notes": list(self.notes),
                "recommended_by_dataset": self.recommended_by_dataset()}

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, d: Any) -> PolicyPlan:
        if not isinstance(d, dict):
            raise TtsplanError(f"plan must be a JSON object written by `ttsplan plan`, got {type(d).__name__}. "
                               "Re-create the plan.")
        try:
            configs = d["configs"]
            if not isinstance(configs, list):
                raise TypeError("configs must be a list")
            return cls(objective=Objective(**d["objective"]), configs=tuple(ConfigPolicy.from_dict(c) for c in configs),
                       input_hash=d["input_hash"], folds=d["folds"], orders=d["orders"], confidence=d["confidence"],
                       model=d.get("model"), gpu=d.get("gpu"), notes=tuple(d.get("notes", ())),
                       schema_version=d["schema_version"])
        except (KeyError, TypeError, AttributeError) as exc:
            raise TtsplanError(f"plan JSON must have the fields written by `ttsplan plan`, got a problem with "
                               f"{exc}. Re-create the plan.") from None

    @classmethod
    def from_json(cls, text: str) -> PolicyPlan:
        return cls.from_dict(parse_plan_json(text))

    # -- views ---------------------------------------------------------------------------------
    def config(self, name: str | None = None) -> ConfigPolicy:
        """One configuration's policy (default: the recommended one when the plan has one task)."""
        names = [c.config for c in self.configs]
        if name is None:
            rec = self.recommended_by_dataset()
            if len(rec) != 1:
                raise TtsplanError(f"--config must name one configuration of this plan (it covers {len(rec)} tasks), "
                                   f"got none. Choose from: {', '.join(names)}.")
            name = next(iter(rec.values()))
        if name not in names:
            raise TtsplanError(f"--config must be a configuration of the plan, got {name!r}. Plan configurations: "
                               f"{', '.join(names)}.{did_you_mean(str(name), names)}")
        return self.configs[names.index(name)]

    def recommended_by_dataset(self) -> dict[str, str]:
        """Per task: the cheapest configuration (samples per prompt) whose cross-fitted accuracy is within the
        objective's tolerance of the task's most accurate one (budget objective: the most accurate)."""
        groups: dict[str, list[ConfigPolicy]] = {}
        for c in self.configs:
            groups.setdefault(c.dataset or "", []).append(c)
        tol = self.objective.tolerance if self.objective.kind == "target" else 0.0
        out = {}
        for key in sorted(groups):
            best = max(c.accuracy.mean for c in groups[key])
            near = [c for c in groups[key] if c.accuracy.mean >= best - tol - 1e-12]
            out[key] = min(near, key=lambda c: (c.samples.mean, -c.accuracy.mean, c.config)).config
        return out

    def rows(self) -> list[dict[str, Any]]:
        """Formatted rows for printing, one per configuration."""
        rec = set(self.recommended_by_dataset().values())
        gpu = self.gpu or "GPU"
        out = []
        for c in self.configs:
            a = c.accuracy
            row = {"config": c.config + (" *" if c.config in rec else ""), "policy": c.policy.describe(),
                   "accuracy (cv) [90%]": f"{a.mean:.3f} [{a.low:.3f}, {a.high:.3f}]",
                   f"majority@{c.reference_n}": f"{c.reference_accuracy.mean:.3f}",
                   "samples/prompt": f"{c.samples.mean:.2f} [{c.samples.low:.2f}, {c.samples.high:.2f}]",
                   "tokens/prompt": f"{c.output_tokens.mean:,.0f}" if c.output_tokens.mean > 0 else "n/a",
                   f"saves vs maj@{c.n_max}": f"{c.savings_vs_max:.2f}x",
                   "uniform N, same acc": "–" if c.uniform_n is None else
                   f"N={c.uniform_n} ({c.savings_vs_uniform:.2f}x)"}
            if c.cost is not None and self.objective.unit not in ("seconds", "usd"):
                row[f"{self.objective.unit}/prompt"] = f"{c.cost.mean:.4g}"
            if c.usd_per_prompt is not None and self.objective.unit == "usd":
                row["usd/prompt"] = f"{c.usd_per_prompt:.3g}"
            if self.model:
                row[f"{gpu}-s/prompt"] = "–" if c.seconds_per_prompt is None else f"{c.seconds_per_prompt:.3g}"
            out.append(row)
        return out

    def summary(self) -> pl.DataFrame:
        """Per configuration and quantity: estimate and interval (lifelines-style)."""
        rows = []
        for c in self.configs:
            for name, e in (("accuracy (cross-fitted)", c.accuracy), ("samples/prompt", c.samples),
                            ("output tokens/prompt", c.output_tokens),
                            (f"shortfall vs majority@{c.reference_n}", c.shortfall)):
                rows.append({"config": c.config, "policy": c.policy.describe(), "quantity": name, "estimate": e.mean,
                             "ci_low": e.low, "ci_high": e.high})
        return pl.DataFrame(rows, schema={"config": pl.String, "policy": pl.String, "quantity": pl.String,
                                          "estimate": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64})

    def _unconfirmed(self, c: ConfigPolicy) -> str:
        """A warning when the cross-validated shortfall exceeds the tolerance the savings claim rests on."""
        o = self.objective
        if o.kind != "target" or o.target is not None or c.policy == FixedPolicy("majority", c.reference_n):
            return ""
        if c.shortfall.mean <= o.tolerance + 1e-12:
            return ""
        return (f"; WARNING: the cross-validated shortfall exceeds the {o.tolerance * 100:g} pt tolerance, so the "
                f"match is not confirmed on these {c.n_prompts} prompts (label more prompts, or use "
                f"majority@{c.reference_n})")

    def describe(self) -> str:
        """The lines users read first: per task, what the plan saves at matched accuracy."""
        n_max = {c.n_max for c in self.configs}
        lines = [f"objective: {self.objective.describe(n_max.pop() if len(n_max) == 1 else None)}; accuracy cross-validated over {self.folds} folds of "
                 f"prompts (the choice of policy re-made inside each fold); adaptive policies replayed over "
                 f"{self.orders} sample orders"]
        by = {c.config: c for c in self.configs}
        for dataset, name in self.recommended_by_dataset().items():
            c = by[name]
            head = f"{dataset}: " if dataset else ""
            uni = ("; no uniform majority N reaches the same accuracy" if c.uniform_n is None else
                   f"; the smallest uniform majority reaching the same accuracy is N={c.uniform_n} "
                   f"({c.savings_vs_uniform:.2f}x the plan's samples)")
            if self.objective.kind == "budget":
                lines.append(f"{head}{c.config} with {c.policy.describe()}: accuracy {c.accuracy.mean:.3f} "
                             f"[{c.accuracy.low:.3f}, {c.accuracy.high:.3f}] (cross-validated) at {c.samples.mean:.2f} "
                             f"samples/prompt"
                             + ("" if c.cost is None else f" ({c.cost.mean:.4g} {self.objective.unit}/prompt)")
                             + f"; majority@{c.n_max} reaches {c.reference_accuracy.mean:.3f} with "
                             f"{c.savings_vs_max:.2f}x the samples")
                continue
            lines.append(f"{head}{c.config} with {c.policy.describe()}: saves {c.savings_vs_max:.2f}x vs "
                         f"majority@{c.n_max} at matched accuracy (cross-validated: {c.accuracy.mean:.3f} "
                         f"[{c.accuracy.low:.3f}, {c.accuracy.high:.3f}] vs "
                         + ("" if c.reference_n == c.n_max else f"majority@{c.reference_n} ")
                         + f"{c.reference_accuracy.mean:.3f}, "
                         f"shortfall {c.shortfall.mean * 100:+.2f} pt){uni}"
                         + ("" if c.objective_met else "; objective NOT met, closest policy shown")
                         + self._unconfirmed(c))
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _per_n(table: pl.DataFrame, config: str, prompt_ids: tuple[str, ...], n_max: int, unit: str,
           cost_model: Any) -> np.ndarray:
    """(n_max, prompts) cost in ``unit`` of majority N = 1..n_max on each prompt of ``prompt_ids`` (its mean
    prompt and output tokens priced by ``cost_model``)."""
    lengths = prompt_lengths(table.filter(pl.col("config") == config))
    lengths = pl.DataFrame({"prompt_id": list(prompt_ids)}).join(lengths, on="prompt_id", how="left",
                                                                 maintain_order="left")
    lp = lengths["prompt_tokens"].fill_null(0.0).to_numpy().astype(float)
    lo = lengths["output_tokens"].fill_null(1.0).to_numpy().astype(float)
    return cost_matrix("majority", range(1, n_max + 1), lp, lo, unit, cost_model).T


def _priced(table: pl.DataFrame, grid: OptionGrid, units: tuple[str, ...], cost_model: Any) -> OptionGrid:
    for unit in units:
        if unit not in grid.costs:
            grid = price_grid(grid, unit, _per_n(table, grid.config, grid.prompt_ids, grid.n_max, unit, cost_model))
    return grid


def make_policy_plan(table: pl.DataFrame | TableBlocks, objective: Objective | None = None,
                     options: PlanOptions | None = None, *, pricing: Any = None,
                     progress: Callable[[str], None] | None = None) -> PolicyPlan:
    """Choose and estimate one policy per configuration of a labeled SampleTable (see the module doc).

    ``options`` (:class:`~ttsplan.planner.crossfit.PlanOptions`): folds, sample orders, confidence, seed and
    the candidate families (default fixed and adaptive; ``families=("fixed", "adaptive", "two-stage")``).
    ``table`` may be :class:`~ttsplan.features.io.TableBlocks` (:func:`~ttsplan.features.io.read_blocks`):
    a table larger than memory, planned a block of whole configurations at a time (the same plan).
    ``pricing`` (a :class:`~ttsplan.planner.pricing.Pricing`) adds GPU-seconds and dollars per prompt, and
    is needed for an objective in a priced unit (flops, eflops, seconds, usd): each policy is priced per
    prompt at its expected samples (:func:`~ttsplan.planner.option_grid.price_grid`).
    """
    cost_model = None if pricing is None else pricing.cost_model
    objective = objective or Objective.majority()
    opts = options or PlanOptions()
    priced = (objective.unit,) if objective.unit in PRICED_UNITS else ()
    blocks = table if isinstance(table, TableBlocks) else as_blocks(table)
    problems = []
    if not isinstance(opts, PlanOptions):
        problems.append(f"options must be a PlanOptions, got {type(opts).__name__}. Pass PlanOptions(orders=8).")
    if priced and cost_model is None:
        problems.append(f"unit {objective.unit!r} must be priced by a cost model, got no pricing. Pass pricing="
                        "Pricing(model) (CLI: --model, e.g. --model gemma-3-270m), or use samples / tokens.")
    if blocks.kind == "counts":
        problems.append("a policy plan needs a sample table (answers per sample), got a count table. Adaptive "
                        "stopping and majority vote need answers; pass a SampleTable.")
    if problems:
        raise TtsplanError("plan: " + " ".join(problems))
    if blocks.rows == 0:
        raise TtsplanError("data must have at least one prompt, got an empty table. Pass a non-empty table.")
    h = hashlib.sha256()
    out: list[ConfigPolicy] = []
    for b, part in enumerate(blocks):
        update_csv_hash(h, part, header=b == 0)
        out += _plan_configs(part, objective, priced, cost_model, opts, progress=progress, done=len(out),
                             total=len(blocks.configs))
    notes = [] if pricing is None else [pricing.note()]
    return PolicyPlan(objective, tuple(out), h.hexdigest()[:16], opts.folds, opts.orders, opts.confidence,
                      None if cost_model is None else cost_model.model.name,
                      None if cost_model is None else cost_model.gpu.name, tuple(notes))


def _plan_configs(table: pl.DataFrame, objective: Objective, priced: tuple[str, ...], cost_model: Any,
                  opts: PlanOptions, *, progress: Callable[[str], None] | None, done: int,
                  total: int) -> list[ConfigPolicy]:
    """One :class:`ConfigPolicy` per configuration of ``table`` (progress counts from ``done`` of ``total``)."""
    datasets = dict(table.select("config", "dataset").unique().sort("config").iter_rows())
    parts = {key[0]: part for key, part in table.partition_by("config", as_dict=True).items()}  # one pass
    total = max(total, done + len(datasets))
    out = []
    for i, config in enumerate(sorted(datasets)):
        if progress:
            progress(f"[{done + i + 1}/{total}] {config}")
        sub = parts[config]
        grid = score_policies(sub, config, orders=opts.orders, seed=opts.seed, reference_n=objective.reference_n,
                              families=opts.families)
        if cost_model is not None:
            grid = _priced(sub, grid, tuple(dict.fromkeys(("seconds", "usd", *priced))), cost_model)
        if objective.kind == "budget":
            cheapest = float(objective_cost(grid, objective.unit).mean(axis=1).min())
            if cheapest > objective.budget + 1e-9:
                raise TtsplanError(f"budget must cover the cheapest policy of {config!r} ({cheapest:.3g} "
                                   f"{objective.unit} per prompt), got {objective.budget:.3g} per prompt. Raise "
                                   "--budget.")
        cf = crossfit(grid, objective, folds=opts.folds, confidence=opts.confidence, seed=opts.seed)
        k = grid.index(cf.policy)
        smp = bootstrap_estimate(grid.samples[k], opts.confidence, seed=opts.seed)
        tok = bootstrap_estimate(grid.tokens[k], opts.confidence, seed=opts.seed)
        secs = usd = cost = None
        if cost_model is not None:
            secs, usd = (float(grid.costs[u][k].mean()) for u in ("seconds", "usd"))
        if priced:
            cost = bootstrap_estimate(grid.costs[objective.unit][k], opts.confidence, seed=opts.seed)
        out.append(ConfigPolicy(config, datasets[config], len(grid.prompt_ids), grid.n_max, cf.policy, cf.met,
                                cf.accuracy, smp, tok, cf.samples, cf.reference_n, cf.reference,
                                cf.shortfall, grid.uniform_n(cf.accuracy.mean), cf.fold_choices,
                                secs, usd, cost))
    return out


def read_plan(text: str) -> Any:
    """A plan file of either schema: version 2 (:class:`PolicyPlan`) or version 1 (per-prompt :class:`Plan`)."""
    try:
        d = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TtsplanError(f"plan must be JSON written by `ttsplan plan`, got a parse error ({exc}).") from None
    if not isinstance(d, dict):
        raise TtsplanError(f"plan must be a JSON object written by `ttsplan plan`, got a JSON {type(d).__name__}. "
                           "Re-create the plan.")
    version = d.get("schema_version")
    if version == POLICY_SCHEMA_VERSION:
        return PolicyPlan.from_dict(d)
    if version == 1:
        return Plan.from_dict(d)
    raise TtsplanError(f"plan schema_version must be 1 or {POLICY_SCHEMA_VERSION}, got {version!r}. "
                       "Re-run `ttsplan plan` with this version.")


def with_notes(plan: PolicyPlan, *notes: str) -> PolicyPlan:
    return replace(plan, notes=plan.notes + tuple(notes))


__all__ = ["POLICY_SCHEMA_VERSION", "ConfigPolicy", "PolicyPlan", "make_policy_plan", "read_plan", "with_notes"]
