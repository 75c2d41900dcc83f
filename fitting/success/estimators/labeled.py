"""The empirical-Bayes success model of labeled prompts: a Beta-binomial prior per configuration, a Beta
posterior per prompt (:class:`PromptSuccessModel`)."""
from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import polars as pl

from ttsplan.features.defaults import DEFAULT_CONFIDENCE
from ttsplan.features.errors import TtsplanError
from ttsplan.fitting.beta_binomial import fit_beta_binomial
from ttsplan.fitting.success.counts import prompt_counts, reward_model, shrunk_rho
from ttsplan.fitting.success.posteriors import PromptPosteriors


class DegenerateDataWarning(UserWarning):
    """The data cannot identify a model component; a stated fallback was used."""


class PromptSuccessModel:
    """Empirical-Bayes per-prompt success model (the API: :mod:`ttsplan.fitting.success`).

    Parameters: ``confidence`` of the credible bounds; ``min_prompts`` per config for a fitted prior
    (smaller configs share the pooled prior of all prompts).
    """

    def __init__(self, confidence: float = DEFAULT_CONFIDENCE, min_prompts: int = 5):
        self.confidence = confidence
        self.min_prompts = min_prompts

    def fit(self, table: pl.DataFrame) -> PromptSuccessModel:
        """Fit per-config Beta priors and per-prompt posteriors from a SampleTable or CountTable."""
        if not 0 < self.confidence < 1:
            raise TtsplanError(f"confidence must be in (0, 1), got {self.confidence}.")
        if int(self.min_prompts) < 1:
            raise TtsplanError(f"min_prompts must be >= 1, got {self.min_prompts}.")
        per, kind = prompt_counts(table)
        n = per["n"].to_numpy().astype(float)
        c = per["c"].to_numpy().astype(float)
        configs = per["config"].to_numpy()
        a_post, b_post = np.empty_like(n), np.empty_like(n)
        priors, notes = [], []
        pooled: tuple[float, float] | None = None
        for cfg in sorted(set(configs.tolist())):
            idx = np.flatnonzero(configs == cfg)
            ni, ci = n[idx], c[idx]
            why = None
            if idx.size < self.min_prompts:
                if pooled is None:  # fitted once, only when some config needs it
                    try:
                        pooled = fit_beta_binomial(n, c)
                    except TtsplanError:
                        pooled = (0.5, 0.5)
                alpha, beta = pooled
                why = "has fewer than min_prompts prompts; used the pooled prior"
            else:
                try:
                    alpha, beta = fit_beta_binomial(ni, ci)
                except TtsplanError as exc:  # all failures (or all successes): Jeffreys posterior of the pooled rate
                    trials = float(ni.sum())
                    alpha, beta = (0.5, 0.5 + trials) if ci.sum() == 0 else (0.5 + trials, 0.5)
                    why = (f"{str(exc).split(', got ')[-1].rstrip('.')}; every prompt's prior is the Jeffreys "
                           f"posterior of the pooled rate, Beta({alpha:g}, {beta:g})")
            if why is not None:
                msg = f"config {cfg!r}: {why}."
                notes.append(msg)
                warnings.warn(msg, DegenerateDataWarning, stacklevel=2)
            a_post[idx] = alpha + ci
            b_post[idx] = beta + ni - ci
            priors.append({"config": cfg, "alpha": alpha, "beta": beta, "mean": alpha / (alpha + beta),
                           "concentration": alpha + beta, "n_prompts": int(idx.size)})
        rho = None
        if "top_wrong" in per.columns:
            tw = per["top_wrong"].to_numpy().astype(float)
            rho = np.empty_like(n)
            for cfg in set(configs.tolist()):
                idx = configs == cfg
                rho[idx] = shrunk_rho(tw[idx], (n - c)[idx])
        mu1 = mu0 = sigma = None
        if "r1_sum" in per.columns:
            mu1, mu0, sigma = np.empty_like(n), np.empty_like(n), np.empty_like(n)
            for cfg in set(configs.tolist()):
                idx = configs == cfg
                m1, m0, sd = reward_model(per.filter(pl.Series(idx)))
                mu1[idx], mu0[idx], sigma[idx] = m1, m0, sd
        self.kind_ = kind
        self.keys_ = per.select("config", "prompt_id")
        self.prompt_ids_ = self.keys_["prompt_id"].to_numpy()
        self.prior_ = pl.DataFrame(priors)
        self.n_ = n
        self.c_ = c
        self.posteriors_ = PromptPosteriors(self.keys_, a_post, b_post, rho, mu1, mu0, sigma,
                                            confidence=self.confidence, source="labeled", notes=tuple(notes))
        return self

    def _post(self) -> PromptPosteriors:
        if not hasattr(self, "posteriors_"):
            from sklearn.exceptions import NotFittedError  # sklearn loads psutil: ~0.3 s at startup

            raise NotFittedError("This PromptSuccessModel is not fitted yet. Call .fit(table) with a SampleTable "
                                 "or CountTable first.")
        return self.posteriors_

    def expected_accuracy(self, strategy: str, n_grid: Sequence[int] | int) -> np.ndarray:
        """Expected accuracy per prompt, prompts × len(n_grid), rows in ``keys_`` order."""
        return self._post().expected_accuracy(strategy, n_grid)

    def accuracy_bounds(self, strategy: str, n_grid: Sequence[int] | int,
                        confidence: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) credible bounds, each prompts × len(n_grid)."""
        return self._post().accuracy_bounds(strategy, n_grid, confidence)

    def predict(self, strategy: str, n_grid: Sequence[int] | int) -> pl.DataFrame:
        return self._post().predict(strategy, n_grid)

    @property
    def p_mean_(self) -> np.ndarray:
        return self._post().p_mean

    def summary(self) -> pl.DataFrame:
        """Per-config prior with intervals of the prior mean (profile over the posterior means)."""
        from scipy import stats  # ~0.3 s to import: only the commands that use it pay for it (DESIGN §1)
        post = self._post()
        rows = []
        alpha = (1 - self.confidence) / 2
        for r in self.prior_.iter_rows(named=True):
            idx = (self.keys_["config"] == r["config"]).to_numpy()
            pm = post.p_mean[idx]
            lo, hi = stats.beta.ppf([alpha, 1 - alpha], r["alpha"], r["beta"])
            rows += [
                {"config": r["config"], "parameter": "alpha", "estimate": r["alpha"], "ci_low": None, "ci_high": None},
                {"config": r["config"], "parameter": "beta", "estimate": r["beta"], "ci_low": None, "ci_high": None},
                {"config": r["config"], "parameter": "prior_mean_p", "estimate": r["mean"],
                 "ci_low": float(lo), "ci_high": float(hi)},
                {"config": r["config"], "parameter": "mean_posterior_p", "estimate": float(pm.mean()),
                 "ci_low": float(np.quantile(pm, alpha)), "ci_high": float(np.quantile(pm, 1 - alpha))},
            ]
        schema = {"config": pl.String, "parameter": pl.String, "estimate": pl.Float64,
                  "ci_low": pl.Float64, "ci_high": pl.Float64}
        return pl.DataFrame(rows, schema=schema)

    def print_summary(self) -> None:
        print(self.summary())


__all__ = ["DegenerateDataWarning", "PromptSuccessModel"]
