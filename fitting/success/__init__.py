"""Per-prompt success model: Beta-binomial empirical Bayes → expected pass@N / maj@N / BoN@N per prompt.

API (used by the planner)
-------------------------
``PromptSuccessModel(confidence=0.9).fit(table)`` — ``table`` is a validated SampleTable or CountTable
(several configs allowed; each config gets its own prior; a config name used for several datasets is
split into ``"config [dataset]"`` — :func:`split_configs_by_dataset`). Learned state:

- ``keys_`` — polars frame ``[config, prompt_id]``, one row per prompt, in the row order of every array;
  ``prompt_ids_`` — the ``prompt_id`` column as a numpy array.
- ``prior_`` — per-config prior ``[config, alpha, beta, mean, concentration, n_prompts]``.
- ``posteriors_`` — a :class:`PromptPosteriors` (Beta(a_i, b_i) per prompt + answer shape + rewards).

``model.expected_accuracy(strategy, n_grid) -> np.ndarray (prompts × len(n_grid))`` for strategy in
``"pass" | "maj" | "bon"``; ``model.accuracy_bounds(strategy, n_grid) -> (lower, upper)`` (equal-tailed
credible interval at ``confidence``, from the posterior of the prompt's success probability p);
``model.predict(strategy, n_grid)`` gives the same as a long polars frame; ``model.summary()``.

``PilotSuccessModel(k0=4).fit(labeled_samples)`` learns p from *unlabeled* pilot statistics of ``k0``
samples per prompt (agreement, answer entropy, log length mean/spread, reward mean); then
``.posteriors(pilot_samples)`` returns a :class:`PromptPosteriors` for prompts without labels, with the
same ``expected_accuracy`` / ``accuracy_bounds`` / ``predict`` methods.

Models
------
- p_i ~ Beta(α, β) per config, (α, β) by maximum marginal Beta-binomial likelihood; the posterior of a
  prompt with n samples, c correct is Beta(α + c, β + n − c).
- pass@N = E[1 − (1 − p)^N] = 1 − B(a, b + N) / B(a, b) (exact under the posterior).
- maj@N: three-way answer model — correct answer with probability p, the strongest wrong answer with
  q = ρ(1 − p), the rest spread over singletons (they only tie when every count is 1). ρ (share of the wrong mass on the modal wrong answer)
  is shrunk towards the config's pooled value. maj@N = P(X_c > X_w) + ½ P(X_c = X_w ≥ 1), exact by
  conditioning on X_c + X_w ~ Bin(N, p + q) (normal approximation above N = 2,000), averaged over the
  posterior of p (``quadrature_points`` equal-probability bins, each at its conditional mean; maj@N is
  nearly a step in p at large N, so plugging in the posterior mean would round every uncertain prompt
  to 0 or 1).
- BoN@N: Gaussian rewards per class (correct / wrong) with prompt means shrunk to the config means and
  a pooled spread; BoN@N = ∫ N p φ₁(r) F(r)^{N−1} dr with F = pΦ₁ + (1 − p)Φ₀ (grid quadrature), averaged
  over the posterior of p like maj@N.
- Intervals: every value is increasing in p, so the bounds are the values at the posterior quantiles of p.

>>> import polars as pl
>>> from ttsplan.features.schema import validate_count_table
>>> t = validate_count_table(pl.DataFrame({"config": ["c"] * 4, "prompt_id": list("abcd"),
...     "samples": [8] * 4, "correct_samples": [0, 2, 6, 8]}))
>>> m = PromptSuccessModel(min_prompts=1).fit(t)
>>> m.expected_accuracy("pass", [1, 8]).shape
(4, 2)

Modules: :mod:`~ttsplan.fitting.success.at_n` (the accuracy-at-N formulas), :mod:`~ttsplan.fitting.success.posteriors`
(:class:`PromptPosteriors`), :mod:`~ttsplan.fitting.success.counts` (what the models read from a table),
:mod:`~ttsplan.fitting.success.estimators` (the two models); the Beta-binomial fit is
:func:`ttsplan.fitting.beta_binomial.fit_beta_binomial`. Every public name is importable from here.
"""
from __future__ import annotations

from ttsplan.features.schema import split_configs_by_dataset
from ttsplan.fitting.beta_binomial import fit_beta_binomial
from ttsplan.fitting.success.at_n import bon_at_n_point, maj_at_n_point, pass_at_n_beta, pass_at_n_point
from ttsplan.fitting.success.counts import prompt_counts
from ttsplan.fitting.success.estimators import (
    PILOT_FEATURES,
    DegenerateDataWarning,
    PilotSuccessModel,
    PromptSuccessModel,
    pilot_features,
)
from ttsplan.fitting.success.posteriors import STRATEGIES, PromptPosteriors

__all__ = [
    "PILOT_FEATURES",
    "STRATEGIES",
    "DegenerateDataWarning",
    "PilotSuccessModel",
    "PromptPosteriors",
    "PromptSuccessModel",
    "bon_at_n_point",
    "fit_beta_binomial",
    "maj_at_n_point",
    "pass_at_n_beta",
    "pass_at_n_point",
    "pilot_features",
    "prompt_counts",
    "split_configs_by_dataset",
]
