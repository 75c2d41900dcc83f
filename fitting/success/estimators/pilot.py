"""The success model of unlabeled prompts: p from pilot statistics of k0 samples (:class:`PilotSuccessModel`)."""
from __future__ import annotations

import numpy as np
import polars as pl
from scipy import optimize, special

from ttsplan.features.defaults import DEFAULT_CONFIDENCE
from ttsplan.features.errors import TtsplanError
from ttsplan.features.schema import has_values, table_kind
from ttsplan.fitting.beta_binomial import fit_concentration
from ttsplan.fitting.success.counts import prompt_counts
from ttsplan.fitting.success.posteriors import PromptPosteriors

PILOT_FEATURES = ("agreement", "answer_entropy", "log_length_mean", "log_length_std", "reward_mean")


def pilot_features(table: pl.DataFrame, k0: int, seed: int = 0) -> pl.DataFrame:
    """Unlabeled statistics of ``k0`` samples per prompt (random subset, seeded): ``config, prompt_id`` +
    :data:`PILOT_FEATURES` (null where the column is absent). Prompts with fewer than k0 samples use all."""
    rng = np.random.default_rng(seed)
    t = table.with_columns(pl.Series("_u", rng.random(table.height)))
    t = t.with_columns(pl.col("_u").rank("ordinal").over(["config", "prompt_id"]).alias("_r")).filter(pl.col("_r") <= k0)
    has_ans = has_values(t, "answer")
    aggs = [pl.len().alias("k")]
    if has_values(t, "output_tokens"):
        lt = (pl.col("output_tokens").cast(pl.Float64) + 1).log()
        aggs += [lt.mean().alias("log_length_mean"), lt.std(ddof=0).alias("log_length_std")]
    if has_values(t, "reward"):
        aggs.append(pl.col("reward").mean().alias("reward_mean"))
    out = t.group_by(["config", "prompt_id"]).agg(aggs)
    if has_ans:
        cl = (t.group_by(["config", "prompt_id", "answer"]).agg(pl.len().alias("size"))
              .join(out.select("config", "prompt_id", "k"), on=["config", "prompt_id"])
              .with_columns((pl.col("size") / pl.col("k")).alias("share")))
        # null answers: each counts as its own singleton cluster for agreement/entropy
        cl = cl.with_columns(pl.when(pl.col("answer").is_null()).then(0.0).otherwise(pl.col("share")).alias("share_nn"),
                             pl.when(pl.col("answer").is_null()).then(pl.col("size")).otherwise(0).alias("n_null"))
        agg = cl.group_by(["config", "prompt_id"]).agg(
            pl.col("share_nn").max().alias("_amax"),
            (-(pl.col("share_nn") * pl.col("share_nn").log()).fill_nan(0.0)).sum().alias("_h"),
            pl.col("n_null").sum().alias("_nnull"), pl.col("k").first().alias("_k"))
        agg = agg.with_columns(
            pl.max_horizontal(pl.col("_amax"), pl.when(pl.col("_nnull") > 0).then(1.0 / pl.col("_k")).otherwise(0.0))
            .alias("agreement"),
            ((pl.col("_h") + pl.col("_nnull") / pl.col("_k") * pl.col("_k").cast(pl.Float64).log())
             / pl.max_horizontal(pl.col("_k").cast(pl.Float64).log(), pl.lit(1e-12))).alias("answer_entropy"))
        out = out.join(agg.select("config", "prompt_id", "agreement", "answer_entropy"), on=["config", "prompt_id"])
    for f in PILOT_FEATURES:
        if f not in out.columns:
            out = out.with_columns(pl.lit(None, dtype=pl.Float64).alias(f))
    return out.select("config", "prompt_id", "k", *PILOT_FEATURES).sort(["config", "prompt_id"])


class PilotSuccessModel:
    """Success probability from unlabeled pilot statistics (agreement, entropy, length, reward).

    Fit on labeled validation samples: pilot features from ``k0`` random samples per prompt, target the
    prompt's (n, c) over all its labeled samples; a binomial GLM (logit link, ridge ``alpha``) gives the
    mean μ(x) and one Beta-binomial concentration φ is fitted around it, so an unlabeled prompt gets
    p ~ Beta(μφ, (1 − μ)φ). ``posteriors(pilot_table)`` returns :class:`PromptPosteriors`.

    >>> # PilotSuccessModel(k0=4).fit(labeled).posteriors(pilot).expected_accuracy("maj", [1, 8])
    """

    def __init__(self, k0: int = 4, alpha: float = 1.0, confidence: float = DEFAULT_CONFIDENCE, seed: int = 0):
        self.k0 = k0
        self.alpha = alpha
        self.confidence = confidence
        self.seed = seed

    def fit(self, samples: pl.DataFrame) -> PilotSuccessModel:
        if table_kind(samples) == "counts":
            raise TtsplanError("PilotSuccessModel needs a sample table (answers / lengths per sample), got a count "
                               "table. Use PromptSuccessModel for count tables.")
        if int(self.k0) < 2:
            raise TtsplanError(f"k0 must be >= 2 (agreement needs two samples), got {self.k0}.")
        per, _ = prompt_counts(samples)
        feats = pilot_features(samples.filter(pl.col("correct").is_not_null()), int(self.k0), self.seed)
        joined = per.join(feats, on=["config", "prompt_id"], how="inner").sort(["config", "prompt_id"])
        usable = [f for f in PILOT_FEATURES if joined[f].null_count() < joined.height
                  and float(np.nanstd(joined[f].to_numpy().astype(float))) > 1e-12]
        if not usable:
            raise TtsplanError("pilot features must vary across prompts, got none usable (all answers identical "
                               "and no lengths/rewards?). Add an answer, output_tokens or reward column.")
        x = joined.select(usable).to_numpy().astype(float)
        self.fill_ = np.nanmean(x, axis=0)
        x = np.where(np.isnan(x), self.fill_, x)
        self.mean_ = x.mean(axis=0)
        self.scale_ = np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
        z = (x - self.mean_) / self.scale_
        n = joined["n"].to_numpy().astype(float)
        c = joined["c"].to_numpy().astype(float)
        if c.sum() == 0 or c.sum() == n.sum():
            raise TtsplanError("labeled prompts must include both correct and wrong samples, got "
                               f"{'no correct sample anywhere' if c.sum() == 0 else 'every sample correct'}.")
        zz = np.column_stack([np.ones(len(z)), z])
        lam = np.r_[0.0, np.full(z.shape[1], float(self.alpha))]

        def nll(w: np.ndarray) -> tuple[float, np.ndarray]:
            eta = zz @ w
            ll = c * eta - n * np.logaddexp(0, eta)
            mu = special.expit(eta)
            g = zz.T @ (c - n * mu)
            return -(ll.sum() - 0.5 * (lam * w * w).sum()), -(g - lam * w)

        res = optimize.minimize(nll, np.zeros(zz.shape[1]), jac=True, method="L-BFGS-B")
        self.coef_ = res.x[1:]
        self.intercept_ = float(res.x[0])
        self.feature_names_in_ = np.asarray(usable, dtype=object)
        mu = np.clip(special.expit(zz @ res.x), 1e-6, 1 - 1e-6)
        self.concentration_ = fit_concentration(n, c, mu)
        tw = per["top_wrong"].to_numpy().astype(float) if "top_wrong" in per.columns else None
        self.rho_ = float(tw.sum() / max((n - c).sum(), 1)) if tw is not None else None
        self.n_prompts_ = joined.height
        return self

    def predict_p(self, pilot: pl.DataFrame) -> tuple[pl.DataFrame, np.ndarray]:
        """(keys, mean success probability) for every prompt of an (unlabeled) pilot sample table."""
        if not hasattr(self, "coef_"):
            from sklearn.exceptions import NotFittedError  # sklearn loads psutil: ~0.3 s at startup

            raise NotFittedError("This PilotSuccessModel is not fitted yet. Call .fit(labeled_samples) first.")
        feats = pilot_features(pilot, int(self.k0), self.seed)
        names = list(self.feature_names_in_)
        missing = [f for f in names if feats[f].null_count() == feats.height]
        if missing:
            raise TtsplanError(f"pilot samples must carry the features the model was fitted on, got none for "
                               f"{', '.join(missing)}. Include the answer / output_tokens / reward columns.")
        x = feats.select(names).to_numpy().astype(float)
        x = np.where(np.isnan(x), self.fill_, x)
        z = (x - self.mean_) / self.scale_
        return feats.select("config", "prompt_id"), special.expit(self.intercept_ + z @ self.coef_)

    def posteriors(self, pilot: pl.DataFrame) -> PromptPosteriors:
        """Beta(μφ, (1 − μ)φ) per pilot prompt, with the labeled fit's answer-shape ρ (rewards unused)."""
        keys, mu = self.predict_p(pilot)
        mu = np.clip(mu, 1e-6, 1 - 1e-6)
        phi = self.concentration_
        rho = None if self.rho_ is None else np.full(mu.shape, self.rho_)
        return PromptPosteriors(keys, mu * phi, (1 - mu) * phi, rho, confidence=self.confidence, source="pilot")

    def summary(self) -> pl.DataFrame:
        if not hasattr(self, "coef_"):
            from sklearn.exceptions import NotFittedError  # sklearn loads psutil: ~0.3 s at startup

            raise NotFittedError("This PilotSuccessModel is not fitted yet. Call .fit(labeled_samples) first.")
        rows = [{"parameter": "intercept", "estimate": self.intercept_, "ci_low": None, "ci_high": None}]
        rows += [{"parameter": f, "estimate": float(w), "ci_low": None, "ci_high": None}
                 for f, w in zip(self.feature_names_in_, self.coef_)]
        rows.append({"parameter": "concentration", "estimate": self.concentration_, "ci_low": None, "ci_high": None})
        return pl.DataFrame(rows, schema={"parameter": pl.String, "estimate": pl.Float64, "ci_low": pl.Float64,
                                          "ci_high": pl.Float64})


__all__ = ["PILOT_FEATURES", "PilotSuccessModel", "pilot_features"]
