"""What the success models read from a table: per-prompt sample and correct counts, the modal wrong answer's
share and per-class reward statistics."""
from __future__ import annotations

import numpy as np
import polars as pl

from ttsplan.features.errors import TtsplanError
from ttsplan.features.schema import has_values, table_kind


def prompt_counts(table: pl.DataFrame) -> tuple[pl.DataFrame, str]:
    """Per-prompt ``config, prompt_id, n, c`` (+ ``top_wrong``, ``n_wrong`` and reward stats for samples)."""
    kind = table_kind(table)
    if kind == "counts":
        out = table.select("config", "prompt_id", pl.col("samples").alias("n"), pl.col("correct_samples").alias("c"))
        return out.sort(["config", "prompt_id"]), kind
    if not has_values(table, "correct"):
        raise TtsplanError("the success model needs graded samples: column \"correct\" must have values, got only "
                           "nulls. Grade the samples first (or use PilotSuccessModel for unlabeled prompts).")
    lab = table.filter(pl.col("correct").is_not_null())
    base = lab.group_by(["config", "prompt_id"]).agg(
        pl.len().cast(pl.Int64).alias("n"), pl.col("correct").cast(pl.Int64).sum().alias("c"))
    if has_values(lab, "answer"):
        clusters = (lab.filter(pl.col("answer").is_not_null())
                    .group_by(["config", "prompt_id", "answer"])
                    .agg(pl.len().alias("size"), pl.col("correct").cast(pl.Float64).mean().alias("q")))
        wrong = (clusters.filter(pl.col("q") < 0.5).group_by(["config", "prompt_id"])
                 .agg(pl.col("size").max().cast(pl.Int64).alias("top_wrong")))
        base = base.join(wrong, on=["config", "prompt_id"], how="left").with_columns(pl.col("top_wrong").fill_null(0))
    if has_values(lab, "reward"):
        rw = (lab.filter(pl.col("reward").is_not_null()).group_by(["config", "prompt_id"])
              .agg(pl.col("reward").filter(pl.col("correct")).sum().alias("r1_sum"),
                   pl.col("correct").cast(pl.Int64).sum().alias("r1_n"),
                   pl.col("reward").filter(~pl.col("correct")).sum().alias("r0_sum"),
                   (~pl.col("correct")).cast(pl.Int64).sum().alias("r0_n"),
                   pl.col("reward").var(ddof=0).alias("r_var"), pl.len().alias("r_len")))
        base = base.join(rw, on=["config", "prompt_id"], how="left")
    return base.sort(["config", "prompt_id"]), kind


def shrunk_rho(top_wrong: np.ndarray, n_wrong: np.ndarray, kappa: float = 2.0) -> np.ndarray:
    """Share of wrong mass on the modal wrong answer, shrunk to the pooled share with ``kappa`` pseudo-samples."""
    pooled = top_wrong.sum() / n_wrong.sum() if n_wrong.sum() > 0 else 1.0
    return (top_wrong + kappa * pooled) / (n_wrong + kappa)


def reward_model(stats_: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-prompt class means shrunk to the config class means; pooled within-class spread."""
    r1s = stats_["r1_sum"].fill_null(0).to_numpy().astype(float)
    r1n = stats_["r1_n"].fill_null(0).to_numpy().astype(float)
    r0s = stats_["r0_sum"].fill_null(0).to_numpy().astype(float)
    r0n = stats_["r0_n"].fill_null(0).to_numpy().astype(float)
    g1 = r1s.sum() / r1n.sum() if r1n.sum() else np.nan
    g0 = r0s.sum() / r0n.sum() if r0n.sum() else np.nan
    if np.isnan(g1) or np.isnan(g0):
        g1 = g0 = np.nanmean([g1, g0])
    rv = stats_["r_var"].fill_null(0.0).to_numpy().astype(float)
    sigma = float(np.sqrt(max(np.mean(rv), 1e-6)))
    kappa = 2.0
    mu1 = (r1s + kappa * g1) / (r1n + kappa)
    mu0 = (r0s + kappa * g0) / (r0n + kappa)
    return mu1, mu0, np.full(mu1.shape, sigma)


__all__ = ["prompt_counts", "reward_model", "shrunk_rho"]
