"""The per-prompt planner's option arrays: for every prompt, strategy and N on the grid, the success model's
accuracy (mean and credible bounds, optionally calibrated onto the exact curves) and the cost in each
unit (:func:`prepare`). The report reads the planner through these (:func:`prepare`, :func:`fit_success`,
:func:`prompt_lengths`).
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from ttsplan.features.defaults import DEFAULT_CONFIDENCE, DEFAULT_GPU
from ttsplan.features.errors import TtsplanError
from ttsplan.features.schema import has_values, table_kind
from ttsplan.fitting.success import (
    DegenerateDataWarning,
    PilotSuccessModel,
    PromptPosteriors,
    PromptSuccessModel,
)
from ttsplan.planner.curve_calibration import calibration_offsets, fill_calibrated
from ttsplan.planner.pricing import Pricing
from ttsplan.planner.strategies import Strategy, available_strategies, cost_matrix, parse_strategies

DEFAULT_GRID: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 40, 48, 64, 96, 128, 192, 256)


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
class Prepared:
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
            calibrate: tuple[pl.DataFrame, Any, int] | None = None) -> Prepared:
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
    return Prepared(strats, grid, names, rows, keys, mean, low, high, costs, post.p_mean, notes)


#: the former private name
_Prepared = Prepared

__all__ = ["DEFAULT_GRID", "Prepared", "fit_success", "pilot_posteriors", "prepare", "prompt_lengths",
           "resolve_cost_model"]
