"""The planner end to end: fit → price → allocate → a versioned, JSON round-trippable :class:`Plan`.

:func:`make_plan` takes a labeled SampleTable or CountTable (one or more configurations), a
:class:`~ttsplan.planner.budget.Budget` and optionally a model + GPU for pricing, and for every
configuration

* fits the per-prompt success model (:class:`ttsplan.fitting.success.PromptSuccessModel`; with ``pilot=k0``
  a :class:`~ttsplan.fitting.success.PilotSuccessModel` reads only ``k0`` unlabeled samples per prompt, whose
  cost is counted: every planned N is ≥ k0 and includes the pilot samples),
* prices every (strategy, N) on the grid (:func:`ttsplan.planner.strategies.cost_matrix`),
* allocates per prompt (:func:`ttsplan.planner.allocate.allocate`, risk-averse with ``risk_averse=True``:
  choices by the lower credible bound), and
* records the config-level recommendation (one strategy and N for the whole task) and the
  baselines: uniform N per strategy and Snell-style difficulty bins.

The budget applies to each configuration separately (each is one way to run the task);
``Plan.recommended_config`` is the configuration with the highest planned accuracy;
``Plan.recommended_by_dataset()`` gives the best one per task (configurations of different tasks are
not alternatives), and those are the ones marked ``*`` in the tables.

>>> import polars as pl
>>> from ttsplan.features.schema import validate_sample_table
>>> rows = [{"config": "c", "prompt_id": f"p{i}", "sample_idx": j, "answer": str((i + j) % 3 if i % 2 else 1),
...          "correct": ((i + j) % 3 == 1) if i % 2 else True} for i in range(8) for j in range(6)]
>>> plan = make_plan(validate_sample_table(pl.DataFrame(rows)), Budget(4, "samples", per_prompt=True))
>>> plan.configs[0].per_prompt_cost <= 32
True
>>> Plan.from_json(plan.to_json()) == plan
True
"""
from __future__ import annotations

import hashlib
import json
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import polars as pl
from ttsplan.features.defaults import DEFAULT_CONFIDENCE, DEFAULT_GPU
from ttsplan.features.errors import TtsplanError
from ttsplan.features.estimators import prompt_curves
from ttsplan.features.schema import has_values, table_kind
from ttsplan.fitting.success import (
    DegenerateDataWarning,
    PilotSuccessModel,
    PromptPosteriors,
    PromptSuccessModel,
)
from ttsplan.planner.allocate import (
    allocate,
    config_level,
    difficulty_bins,
    min_cost_total,
    uniform_baselines,
)
from ttsplan.planner.budget import Budget, normalize_unit
from ttsplan.planner.pricing import Pricing
from ttsplan.planner.strategies import (
    Strategy,
    available_strategies,
    cost_matrix,
    parse_strategies,
    posterior_bounds,
    posterior_expected,
)

SCHEMA_VERSION = 1
DEFAULT_GRID: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 40, 48, 64, 96, 128, 192, 256)
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
    """sha256 of the table's CSV text (validated tables are sorted, so equal data hashes equal)."""
    return hashlib.sha256(table.write_csv().encode()).hexdigest()[:16]


def _model_hash(parts: Sequence[Any]) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(np.asarray(p).tobytes() if isinstance(p, np.ndarray) else json.dumps(p, sort_keys=True,
                                                                                       default=str).encode())
    return h.hexdigest()[:16]


def prompt_lengths(table: pl.DataFrame) -> pl.DataFrame:
    """Mean prompt and output tokens per (config, prompt_id); nulls where the table has none."""
    if table_kind(table) == "counts" or not has_values(table, "output_tokens"):
        keys = table.select("config", "prompt_id").unique()
        return keys.with_columns(pl.lit(None, pl.Float64).alias("prompt_tokens"),
                                 pl.lit(None, pl.Float64).alias("output_tokens"))
    out = table.group_by(["config", "prompt_id"]).agg(
        pl.col("prompt_tokens").cast(pl.Float64).mean().alias("prompt_tokens"),
        pl.col("output_tokens").cast(pl.Float64).mean().alias("output_tokens"))
    return out.with_columns(
        pl.col("prompt_tokens").fill_null(pl.col("prompt_tokens").mean().over("config")).fill_null(0.0),
        pl.col("output_tokens").fill_null(pl.col("output_tokens").mean().over("config")).fill_null(1.0))


def resolve_cost_model(model: str | None, gpu: str | None, calibration: Any = None) -> Any:
    """The :class:`~ttsplan.fitting.cost.CostModel` of :class:`~ttsplan.planner.pricing.Pricing` (shipped H100
    calibration by default on H100; ``calibration="none"`` for the plain roofline)."""
    if model is None:
        return None
    return Pricing(model, gpu or DEFAULT_GPU, calibration).cost_model


def pilot_posteriors(table: pl.DataFrame, k0: int, confidence: float = DEFAULT_CONFIDENCE, seed: int = 0,
                     labeled: pl.DataFrame | None = None) -> Any:
    """Posteriors for every prompt of ``table`` from its first ``k0`` samples, labels hidden.

    The :class:`~ttsplan.fitting.success.PilotSuccessModel` is fitted per configuration on ``labeled``
    (default: ``table`` itself, i.e. a plan for a rerun of known prompts).
    """
    if table_kind(table) == "counts":
        raise TtsplanError("--pilot needs a sample table (answers per sample), got a count table. "
                           "Drop --pilot or pass a sample table.")
    k0 = int(k0)
    labeled = table if labeled is None else labeled
    pilot = table.filter(pl.col("sample_idx") < k0).with_columns(pl.lit(None, pl.Boolean).alias("correct"))
    parts, rewards = [], []
    for cfg in sorted(table["config"].unique().to_list()):
        lab = labeled.filter(pl.col("config") == cfg)
        m = PilotSuccessModel(k0=k0, confidence=confidence, seed=seed).fit(lab)
        post = m.posteriors(pilot.filter(pl.col("config") == cfg))
        parts.append(post)
        reward = None
        if has_values(lab, "reward") and has_values(table, "reward"):
            # reward classes from the labeled fit: the config's mean class rewards and pooled spread
            v = fit_success(lab, None, confidence)
            if v.mu1 is not None:
                size = len(post.a)
                reward = (np.full(size, float(np.mean(v.mu1))), np.full(size, float(np.mean(v.mu0))),
                          np.full(size, float(np.mean(v.sigma))))
        rewards.append(reward)
    keys = pl.concat([p.keys for p in parts])
    rho = None if any(p.rho is None for p in parts) else np.concatenate([p.rho for p in parts])
    mu1 = mu0 = sigma = None
    if all(r is not None for r in rewards):
        mu1, mu0, sigma = (np.concatenate([r[i] for r in rewards]) for i in range(3))
    return PromptPosteriors(keys, np.concatenate([p.a for p in parts]), np.concatenate([p.b for p in parts]), rho,
                            mu1, mu0, sigma, confidence=confidence, source="pilot")


def fit_success(table: pl.DataFrame, pilot: int | None = None, confidence: float = DEFAULT_CONFIDENCE) -> Any:
    """The planner's per-prompt success model: :class:`ttsplan.fitting.success.PromptPosteriors` from the labeled
    ``table`` (``pilot`` = k0: from k0 unlabeled pilot samples per prompt, :func:`pilot_posteriors`);
    degenerate configurations are handled quietly (their notes stay on the posteriors)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateDataWarning)
        if pilot:
            return pilot_posteriors(table, pilot, confidence)
        return PromptSuccessModel(confidence=confidence).fit(table).posteriors_


@dataclass
class _Prepared:
    """Shared inputs for planning and evaluation: option arrays per configuration."""

    strategies: list[Strategy]
    grid: list[int]
    configs: list[str]
    rows: dict[str, np.ndarray]
    keys: pl.DataFrame
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    costs: dict[str, np.ndarray]
    p_mean: np.ndarray
    notes: list[str] = field(default_factory=list)


def prepare(table: pl.DataFrame, unit: str, strategies: Sequence[str] | str | None = None,
            grid: Sequence[int] = DEFAULT_GRID, cost_model: Any = None, pilot: int | None = None,
            confidence: float = DEFAULT_CONFIDENCE, batch_prompts: int = 64, posteriors: Any = None,
            calibrate: tuple[pl.DataFrame, Any, int] | None = None) -> _Prepared:
    """Fit the success model and build accuracy (mean/low/high) and cost arrays, prompts × strategies × grid.

    ``calibrate=(labeled_table, its_posteriors, skip)``: shift each configuration's predicted pass / maj /
    BoN curves by (exact empirical mean − model mean) measured on the labeled prompts' samples with
    ``sample_idx >= skip`` (:func:`calibration_offsets`).
    """
    if table.height == 0:
        raise TtsplanError("data must have at least one prompt, got an empty table. Pass a non-empty table.")
    kind = table_kind(table)
    has_answers = kind == "samples" and has_values(table, "answer")
    post = posteriors if posteriors is not None else fit_success(table, pilot, confidence)
    has_reward = kind == "samples" and has_values(table, "reward") and getattr(post, "mu1", None) is not None
    chosen = parse_strategies(strategies)
    strats, notes = available_strategies(chosen, has_answers, has_reward, explicit=strategies is not None)
    if pilot:
        if int(pilot) < 2:
            raise TtsplanError(f"pilot must be >= 2 samples per prompt, got {pilot}. Pass --pilot 4.")
        strats = [s for s in strats if not s.single_sample] or strats
        grid = [g for g in grid if g >= int(pilot)]
        if not grid:
            raise TtsplanError(f"the grid must have N >= pilot ({pilot}), got none. Lower --pilot.")
    grid = sorted({int(g) for g in grid})
    keys = post.keys
    memo: dict = {}
    if calibrate is not None and kind == "samples":
        cal_table, cal_post, skip = calibrate
        metrics = ["pass"] + (["maj"] if has_answers else []) + (["bon"] if has_reward else [])
        fill_calibrated(memo, post, keys, metrics, grid, calibration_offsets(cal_table, cal_post, metrics, grid, skip),
                        notes)
    mean = np.stack([s.accuracy(post, grid, "mean", memo) for s in strats], axis=1)
    lo_hi = [(s.accuracy(post, grid, "lower", memo), s.accuracy(post, grid, "upper", memo)) for s in strats]
    low = np.stack([x[0] for x in lo_hi], axis=1)
    high = np.stack([x[1] for x in lo_hi], axis=1)
    lengths = keys.join(prompt_lengths(table), on=["config", "prompt_id"], how="left", maintain_order="left")
    lp = lengths["prompt_tokens"].to_numpy().astype(float)
    lo_ = lengths["output_tokens"].to_numpy().astype(float)
    has_len = not np.isnan(lo_).all()
    costs: dict[str, np.ndarray] = {}
    units = ["samples"] + (["tokens"] if has_len else []) + (["seconds", "usd"] if has_len and cost_model else [])
    if unit not in units:
        if not has_len and unit != "samples":
            raise TtsplanError(f"budget unit {unit!r} must be priced from token counts, got a table without "
                               "output_tokens. Use --unit samples or add output_tokens / prompt_tokens columns.")
        units.append(unit)
    lp, lo_ = np.nan_to_num(lp, nan=0.0), np.nan_to_num(lo_, nan=1.0)
    for u in units:
        costs[u] = np.stack([cost_matrix(s, grid, lp, lo_, u, cost_model, batch_prompts) for s in strats], axis=1)
    if pilot:  # planned N includes the pilot samples, so every option costs at least the pilot
        for u, arr in costs.items():
            pc = cost_matrix("majority", [int(pilot)], lp, lo_, u, cost_model, batch_prompts)[:, :1, None]
            costs[u] = np.maximum(arr, pc)
    configs = keys["config"].to_numpy()
    names = sorted(set(configs.tolist()))
    rows = {c: np.flatnonzero(configs == c) for c in names}
    notes += [f"success model: {n}" for n in getattr(post, "notes", ())]
    return _Prepared(strats, grid, names, rows, keys, mean, low, high, costs, post.p_mean, notes)


def calibration_offsets(table: pl.DataFrame, post: Any, metrics: Sequence[str], grid: Sequence[int],
                        skip: int = 0) -> dict[tuple[str, str], np.ndarray]:
    """Per (config, metric): exact empirical mean curve − the model's mean curve, on ``grid``.

    Empirical values are the exact estimators (:func:`ttsplan.features.estimators.prompt_curves`) on the labeled
    samples with ``sample_idx >= skip`` (the pilot's samples excluded, so they match how a plan is
    scored); the model's are :func:`ttsplan.planner.strategies.posterior_expected` for the same prompts. Beyond
    the largest N the data supports, the offset at that N is carried forward. N = 1 of ``pass`` is the
    greedy calibration.
    """
    t = table.filter(pl.col("correct").is_not_null() & (pl.col("sample_idx") >= skip))
    t = t.with_columns(pl.col("sample_idx") - skip)
    grid = [int(g) for g in grid]
    out: dict[tuple[str, str], np.ndarray] = {}
    keys = post.keys
    kmax = max(1, int(t.group_by(["config", "prompt_id"]).len()["len"].max() or 1))
    all_ks = [g for g in grid if g <= kmax] or [grid[0]]
    model_all = {m: posterior_expected(post, m, all_ks) for m in metrics}
    for cfg in sorted(keys["config"].unique().to_list()):
        sub = t.filter(pl.col("config") == cfg)
        if sub.height == 0:
            continue
        sizes = sub.group_by("prompt_id").len()["len"]
        kmin = int(sizes.min())
        rows = np.flatnonzero((keys["config"] == cfg).to_numpy())
        sub = sub.filter(pl.col("sample_idx") < kmin)
        ks = [g for g in grid if g <= kmin]
        if not ks:  # the data has fewer samples per prompt than the smallest N: nothing to calibrate
            continue
        for metric in metrics:
            if metric == "bon" and not has_values(sub, "reward"):
                continue
            emp = prompt_curves(sub, metric, ks).group_by("k").agg(pl.col("value").mean()).sort("k")["value"]
            emp = emp.to_numpy(allow_copy=True).astype(float)
            model = model_all[metric][rows][:, [all_ks.index(k) for k in ks]].mean(axis=0)
            off = np.interp(grid, ks, emp - model)  # constant beyond the last supported N
            out[(cfg, metric)] = off
            if metric == "pass":
                out[(cfg, "pass1")] = np.array([float(emp[0] - model[0])]) if ks[0] == 1 else np.zeros(1)
    return out


def fill_calibrated(memo: dict, post: Any, keys: pl.DataFrame, metrics: Sequence[str], grid: Sequence[int],
                    offsets: dict[tuple[str, str], np.ndarray], notes: list[str]) -> None:
    """Pre-fill the strategies' metric cache with offset-corrected (mean, lower, upper), clipped to [0, 1]."""
    configs = keys["config"].to_numpy()
    for metric, g in [(m, tuple(grid)) for m in metrics] + [("pass", (1,))]:
        mid = posterior_expected(post, metric, list(g))
        lo, hi = posterior_bounds(post, metric, list(g))
        lo, hi = np.minimum(lo, mid), np.maximum(hi, mid)
        for cfg in set(configs.tolist()):
            key = (cfg, "pass1" if g == (1,) and metric == "pass" else metric)
            if key not in offsets:
                continue
            r = configs == cfg
            off = offsets[key][None, :]
            mid[r], lo[r], hi[r] = mid[r] + off, lo[r] + off, hi[r] + off
        memo[(metric, g)] = tuple(np.clip(x, 0.0, 1.0) for x in (mid, lo, hi))
    if offsets:
        worst = max(offsets.items(), key=lambda kv: float(np.abs(kv[1]).max()))
        notes.append(f"calibrated to the exact curves of the labeled samples (largest correction "
                     f"{float(worst[1][np.abs(worst[1]).argmax()]):+.3f} on {worst[0][1]} of {worst[0][0]!r})")


def _strategy_mix(names: list[str], s_idx: np.ndarray) -> tuple[tuple[str, int], ...]:
    cnt = Counter(names[i] for i in s_idx.tolist())
    return tuple(sorted(cnt.items(), key=lambda kv: (-kv[1], kv[0])))


def plan_config(prep: _Prepared, cfg: str, budget: Budget, risk_averse: bool = False,
                pilot: int | None = None) -> tuple[ConfigPlan, list[Allocation], Any]:
    """Allocate one configuration; returns its ConfigPlan, per-prompt allocations and the raw result."""
    r = prep.rows[cfg]
    P = r.size
    unit = budget.unit
    mean, low, high = prep.mean[r], prep.low[r], prep.high[r]
    cost = prep.costs[unit][r]
    total = budget.total(P)
    res = allocate(mean, cost, total, decision=low if risk_averse else None)
    rows = np.arange(P)
    s_idx, g_idx = res.strategy_index, res.grid_index
    names = [s.name for s in prep.strategies]

    def at(a: np.ndarray, s: np.ndarray, g: np.ndarray) -> np.ndarray:
        return a[rows, s, g]

    def other(u: str, s: np.ndarray, g: np.ndarray) -> np.ndarray | None:
        return at(prep.costs[u][r], s, g) if u in prep.costs else None

    pilot_cost = float(cost.min(axis=(1, 2)).sum()) if pilot else 0.0
    lvl = config_level(low if risk_averse else mean, cost, total)
    baselines = []
    for b in uniform_baselines(mean, cost, total):
        s = b["strategy_index"]
        baselines.append(Baseline("uniform", names[s], None if b["grid_index"] is None else prep.grid[b["grid_index"]],
                                  b["accuracy"], b["cost"]))
    bins = difficulty_bins(mean, cost, total, difficulty=-prep.p_mean[r])
    baselines.append(Baseline("difficulty-bins", None, None, bins["accuracy"], bins["cost"]))

    def mean_or_none(x: np.ndarray | None) -> float | None:
        return None if x is None else float(x.mean())

    if lvl is not None:
        s, g = lvl["strategy_index"], lvl["grid_index"]
        sv, gv = np.full(P, s), np.full(P, g)
        usd = other("usd", sv, gv)
        lvl_fields = {"strategy": names[s], "n": prep.grid[g], "expected_accuracy": float(mean[:, s, g].mean()),
                      "accuracy_low": float(low[:, s, g].mean()), "accuracy_high": float(high[:, s, g].mean()),
                      "expected_cost": float(cost[:, s, g].sum()),
                      "tokens_per_prompt": mean_or_none(other("tokens", sv, gv)),
                      "seconds_per_prompt": mean_or_none(other("seconds", sv, gv)),
                      "usd_total": None if usd is None else float(usd.sum())}
    else:
        lvl_fields = dict.fromkeys(("strategy", "n", "expected_accuracy", "accuracy_low", "accuracy_high",
                                    "expected_cost", "tokens_per_prompt", "seconds_per_prompt", "usd_total"))
    usd_p = other("usd", s_idx, g_idx)
    n_chosen = np.asarray(prep.grid)[g_idx]
    n_chosen = np.where([prep.strategies[i].single_sample for i in s_idx], 1, n_chosen)
    cp = ConfigPlan(
        config=cfg, n_prompts=int(P), budget_total=float(total), **lvl_fields,
        per_prompt_accuracy=float(res.accuracy.mean()), per_prompt_low=float(at(low, s_idx, g_idx).mean()),
        per_prompt_high=float(at(high, s_idx, g_idx).mean()), per_prompt_cost=float(res.total_cost),
        per_prompt_tokens=mean_or_none(other("tokens", s_idx, g_idx)),
        per_prompt_seconds=mean_or_none(other("seconds", s_idx, g_idx)),
        per_prompt_usd=None if usd_p is None else float(usd_p.sum()),
        pilot_cost=pilot_cost, min_cost=float(min_cost_total(cost, mean)), lam=float(res.lam),
        strategy_mix=_strategy_mix(names, s_idx), mean_n=float(n_chosen.mean()), baselines=tuple(baselines))
    pids = prep.keys["prompt_id"].to_numpy()[r]
    lo_c, hi_c = at(low, s_idx, g_idx), at(high, s_idx, g_idx)
    allocs = [Allocation(cfg, str(pids[i]), names[s_idx[i]], int(n_chosen[i]), float(res.accuracy[i]),
                         float(lo_c[i]), float(hi_c[i]), float(res.cost[i])) for i in range(P)]
    return cp, allocs, res


def default_budget(unit: str = "samples") -> Budget:
    """The default: majority vote with N = :data:`DEFAULT_BUDGET_N` on every prompt, in ``unit``."""
    return Budget(DEFAULT_BUDGET_N, "samples", per_prompt=True) if unit == "samples" else Budget(1.0, unit, True)


def make_plan(table: pl.DataFrame, budget: Budget | None = None, *, unit: str | None = None,
              strategies: Sequence[str] | str | None = None, model: str | None = None, gpu: str | None = DEFAULT_GPU,
              pilot: int | None = None, risk_averse: bool = False, grid: Sequence[int] = DEFAULT_GRID,
              confidence: float = DEFAULT_CONFIDENCE, batch_prompts: int = 64, calibrate: bool = True,
              calibration: Any = None, extrapolate: bool = False) -> Plan:
    """Plan every configuration of ``table`` (a validated SampleTable or CountTable) under ``budget`` (see the
    module docstring).

    ``calibrate`` (default): shift the success model's per-config pass / maj / BoN curves onto the exact
    empirical curves of the labeled samples (:func:`calibration_offsets`), so the config-level choice
    between strategies follows the data where it has samples; the model shapes the per-prompt
    differences and extrapolates beyond the sampled k.

    ``budget=None``: the cost of majority vote with N = 8 on every prompt, in ``unit`` (default samples).
    ``extrapolate``: allow N above the samples recorded per prompt (the success model predicts them; the
    plan notes it); by default the grid stops at the fewest samples recorded for a prompt.
    """
    unit = normalize_unit(unit or (budget.unit if budget else "samples"))
    if budget is not None and budget.unit != unit:
        budget = Budget(budget.amount, unit, budget.per_prompt)
    cost_model = resolve_cost_model(model, gpu, calibration)
    if table.height == 0:
        raise TtsplanError("data must have at least one prompt, got an empty table. Pass a non-empty table.")
    recorded = (int(table["samples"].min()) if table_kind(table) == "counts"
                else int(table.group_by(["config", "prompt_id"]).len()["len"].min()))
    extrapolated = [int(g) for g in grid if int(g) > recorded]
    if not extrapolate:  # N stays where there is evidence
        grid = [int(g) for g in grid if int(g) <= recorded] or [recorded]
    cal = None
    if calibrate and table_kind(table) == "samples":
        cal_post = fit_success(table, pilot, confidence)
        cal = (table, cal_post, int(pilot or 0))
        prep = prepare(table, unit, strategies, grid, cost_model, pilot, confidence, batch_prompts,
                       posteriors=cal_post, calibrate=cal)
    else:
        prep = prepare(table, unit, strategies, grid, cost_model, pilot, confidence, batch_prompts)
    is_default = budget is None
    datasets = dict(table.select("config", "dataset").unique().sort("config").iter_rows())
    cfg_plans, allocs = [], []
    for cfg in prep.configs:
        b = budget
        if b is None:  # cost of majority@8 per prompt in this unit (samples: 8/prompt)
            if unit == "samples":
                b = Budget(DEFAULT_BUDGET_N, "samples", per_prompt=True)
            else:
                r = prep.rows[cfg]
                names = [s.name for s in prep.strategies]
                ref = names.index("majority") if "majority" in names else next(
                    (i for i, s in enumerate(prep.strategies) if not s.single_sample), 0)
                gi = min(int(np.searchsorted(prep.grid, DEFAULT_BUDGET_N)), len(prep.grid) - 1)
                b = Budget(float(prep.costs[unit][r][:, ref, gi].mean()), unit, per_prompt=True)
        cp, al, _ = plan_config(prep, cfg, b, risk_averse, pilot)
        cfg_plans.append(replace(cp, dataset=datasets.get(cfg)))
        allocs += al
    if is_default:
        budget = Budget(DEFAULT_BUDGET_N, "samples", per_prompt=True) if unit == "samples" else \
            Budget(float(np.mean([c.budget_total / c.n_prompts for c in cfg_plans])), unit, per_prompt=True)
    best = max(cfg_plans, key=lambda c: (c.per_prompt_accuracy, -c.per_prompt_cost)).config
    mhash = _model_hash([prep.mean, prep.low, prep.high, {u: float(v.sum()) for u, v in prep.costs.items()},
                         model, gpu, pilot, confidence])
    notes = list(prep.notes)
    if extrapolate and extrapolated:
        big = sorted({a.n for a in allocs if a.n > recorded})
        notes.append(f"extrapolated: N above the {recorded} samples recorded per prompt ({', '.join(map(str, big))}) "
                     "priced and predicted by the success model, not measured" if big else
                     f"--extrapolate allowed N above {recorded}, none was chosen")
    if cost_model is None:
        notes.append("no --model given: seconds and dollars are not priced (pass --model, e.g. gemma-3-270m)")
    else:
        notes.append(Pricing(model, gpu or DEFAULT_GPU, calibration).note())
    return Plan(budget=budget, mode="pilot" if pilot else "per-prompt",
                strategies=tuple(s.name for s in prep.strategies), grid=tuple(prep.grid),
                configs=tuple(cfg_plans), allocations=tuple(allocs), recommended_config=best,
                input_hash=table_hash(table), model_hash=mhash,
                model=None if cost_model is None else cost_model.model.name,
                gpu=None if cost_model is None else cost_model.gpu.name, pilot_k0=int(pilot) if pilot else None,
                risk_averse=bool(risk_averse), budget_is_default=is_default, notes=tuple(notes))


__all__ = [
    "DEFAULT_BUDGET_N",
    "DEFAULT_GRID",
    "SCHEMA_VERSION",
    "Allocation",
    "Baseline",
    "ConfigPlan",
    "Plan",
    "fit_success",
    "make_plan",
    "pilot_posteriors",
    "plan_config",
    "prepare",
    "prompt_lengths",
    "table_hash",
]
