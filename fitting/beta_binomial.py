"""Beta-binomial: prompts with n samples, c correct, whose success probability p ~ Beta(α, β).

The one home of the package's Beta-binomial fits, all on one likelihood (:func:`log_likelihood_terms`,
with its score :func:`score_terms`):

- :func:`fit_beta_binomial` — (α, β) by marginal likelihood, by default under a weak hyperprior: the
  per-configuration prior of the success model (:mod:`ttsplan.fitting.success`) and the ``beta`` law
  and urn of :mod:`ttsplan.fitting.scaling`;
- :func:`fit_pooled_beta_binomial` — one α shared by several configurations, one β each (the
  ``pooled_beta`` law);
- :func:`fit_concentration` — the concentration φ around given per-prompt means μ (the pilot success model);
- :func:`fit_beta_prior` — method of moments, for agreement rates (the pilot stopping rule of
  :mod:`ttsplan.planner.stopping`, refitted while a session runs).

>>> n, c = np.array([10.0, 10.0, 10.0]), np.array([2.0, 5.0, 9.0])
>>> # under Beta(1, 1) every c in 0..n has probability 1/(n + 1)
>>> np.exp(log_likelihood_terms(n, c, 1.0, 1.0) + np.log(special.comb(n, c))).round(4).tolist()
[0.0909, 0.0909, 0.0909]
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import optimize, special

from ttsplan.features.errors import TtsplanError

#: bounds of the concentration α + β (1e6 ≈ no overdispersion)
MIN_CONC, MAX_CONC = 1e-3, 1e6


def log_likelihood_terms(n: np.ndarray, c: np.ndarray, a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
    """Per prompt, log P(c | n) under the Beta-binomial without the binomial coefficient (constant in α, β):
    log B(c + α, n − c + β) − log B(α, β)."""
    return special.betaln(c + a, n - c + b) - special.betaln(a, b)


def score_terms(n: np.ndarray, c: np.ndarray, a: np.ndarray | float, b: np.ndarray | float,
                grouped: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Per prompt, the derivatives of :func:`log_likelihood_terms` in α and in β:
    ψ(c + α) − ψ(n + α + β) − ψ(α) + ψ(α + β) and
    ψ(n − c + β) − ψ(n + α + β) − ψ(β) + ψ(α + β).

    ``grouped``: the same sums in the order of the pooled fit, whose β differs between groups
    (ψ(α + β) − ψ(n + α + β) computed once and shared); kept so that each fit is bit for bit what it was.
    """
    if grouped:
        common = special.digamma(a + b) - special.digamma(n + a + b)
        return (special.digamma(c + a) - special.digamma(a) + common,
                special.digamma(n - c + b) - special.digamma(b) + common)
    return (special.digamma(c + a) - special.digamma(n + a + b) - special.digamma(a) + special.digamma(a + b),
            special.digamma(n - c + b) - special.digamma(n + a + b) - special.digamma(b) + special.digamma(a + b))


def fit_beta_binomial(n: np.ndarray, c: np.ndarray, weights: np.ndarray | None = None,
                      hyperprior: float = 2.5) -> tuple[float, float]:
    """Marginal-likelihood (α, β) of a Beta-binomial over prompts with n samples, c correct.

    With ``hyperprior`` (default) the estimate is the posterior mode under Gelman's weak hyperprior
    p(α, β) ∝ (α + β)^(−5/2), which keeps the concentration finite when a few prompts carry all the
    successes (the plain MLE then runs to "no overdispersion" and wildly overstates pass@N at large N).

    Raises :class:`TtsplanError` when every prompt has c = 0 or every prompt has c = n (the MLE sits
    on the boundary). The concentration α + β is clipped to [1e-3, 1e6] (1e6 ≈ no overdispersion).

    >>> rng = np.random.default_rng(0); p = rng.beta(2, 5, 4000); n = np.full(4000, 20)
    >>> a, b = fit_beta_binomial(n, rng.binomial(n, p)); round(a / (a + b), 2)
    0.29
    """
    n = np.asarray(n, dtype=float)
    c = np.asarray(c, dtype=float)
    w = np.ones_like(n) if weights is None else np.asarray(weights, dtype=float)
    if n.size == 0:
        raise TtsplanError("fit_beta_binomial needs at least one prompt, got none.")
    if not (c > 0).any():
        raise TtsplanError("success probabilities must be identifiable, got no correct sample anywhere "
                           f"({n.size} prompt(s), {int(n.sum())} samples, all wrong).")
    if not (c < n).any():
        raise TtsplanError("success probabilities must be identifiable, got every sample correct "
                           f"({n.size} prompt(s), {int(n.sum())} samples).")
    pairs, inverse = np.unique(np.stack([n, c], axis=1), axis=0, return_inverse=True)
    wu = np.bincount(inverse.ravel(), weights=w, minlength=len(pairs))
    nu, cu = pairs[:, 0], pairs[:, 1]
    mean = np.clip((w * c / n).sum() / w.sum(), 1e-4, 1 - 1e-4)
    var = max(float((w * (c / n - mean) ** 2).sum() / w.sum()), 1e-6)
    conc0 = np.clip(mean * (1 - mean) / var - 1, 0.1, 1e4) if var > 0 else 10.0

    def nll(theta: np.ndarray) -> tuple[float, np.ndarray]:
        m = special.expit(theta[0])
        s = np.exp(theta[1])
        a, b = m * s, (1 - m) * s
        ll = wu * log_likelihood_terms(nu, cu, a, b)
        sa, sb = score_terms(nu, cu, a, b)
        da, db = wu * sa, wu * sb
        ga, gb = da.sum(), db.sum()
        # chain rule: a = m s, b = (1 - m) s, dm/dθ0 = m(1 - m), ds/dθ1 = s
        g0 = (ga - gb) * s * m * (1 - m)
        g1 = (ga * m + gb * (1 - m)) * s
        pen = float(hyperprior) * theta[1]
        return -float(ll.sum()) + pen, -np.array([g0, g1]) + np.array([0.0, float(hyperprior)])

    x0 = np.array([special.logit(mean), np.log(conc0)])
    bounds = [(-30.0, 30.0), (np.log(MIN_CONC), np.log(MAX_CONC))]
    res = optimize.minimize(nll, x0, jac=True, method="L-BFGS-B", bounds=bounds)
    m, s = special.expit(res.x[0]), float(np.exp(res.x[1]))
    return float(m * s), float((1 - m) * s)



def fit_pooled_beta_binomial(groups: Sequence[tuple[np.ndarray, np.ndarray]],
                             start: tuple[float, np.ndarray] | None = None) -> tuple[float, np.ndarray]:
    """Joint Beta-binomial maximum likelihood over groups (configurations): one α, one β per group.

    Returns ``(alpha, betas)``; ``start`` (a previous ``(alpha, betas)``) warm-starts the optimizer.
    α (the left-tail exponent of every group's p) is bounded to [1e-3, 1e3] and each β to [1e-3, 1e8]
    (1e8: a group with almost no success).

    >>> rng = np.random.default_rng(0); gs = []
    >>> for b in (2.0, 8.0):
    ...     p = rng.beta(0.5, b, 3000); n = np.full(3000, 50); gs.append((n, rng.binomial(n, p)))
    >>> a, bs = fit_pooled_beta_binomial(gs); round(a, 1), bs.round(0).tolist()
    (0.5, [2.0, 8.0])
    """
    if not groups:
        raise TtsplanError("the pooled Beta law needs at least one configuration, got none.")
    uniq = []
    for n, c in groups:
        pairs, counts = np.unique(np.stack([np.asarray(n, float), np.asarray(c, float)], axis=1), axis=0,
                                  return_counts=True)
        uniq.append((pairs[:, 0], pairs[:, 1], counts.astype(float)))
    tot_c = sum(float((w * c).sum()) for _, c, w in uniq)
    tot_f = sum(float((w * (n - c)).sum()) for n, c, w in uniq)
    if tot_c == 0 or tot_f == 0:
        raise TtsplanError("the pooled Beta law needs at least one correct and one wrong sample over all "
                           f"configurations, got {int(tot_c)} correct and {int(tot_f)} wrong.")
    m = len(uniq)
    gi = np.concatenate([np.full(len(u[0]), j) for j, u in enumerate(uniq)])
    nu, cu, wu = (np.concatenate([u[k] for u in uniq]) for k in range(3))

    def nll(theta: np.ndarray) -> tuple[float, np.ndarray]:
        a = float(np.exp(theta[0]))
        bg = np.exp(theta[1:])
        b = bg[gi]
        ll = float((wu * log_likelihood_terms(nu, cu, a, b)).sum())
        da, db = score_terms(nu, cu, a, b, grouped=True)
        ga = float((wu * da).sum())
        gb = np.bincount(gi, weights=wu * db, minlength=m)
        return -ll, -np.concatenate([[ga * a], gb * bg])

    means = [np.clip((w * c / n).sum() / w.sum(), 1e-4, 0.5) for n, c, w in uniq]
    a0 = 0.3
    x0 = np.concatenate([[np.log(a0)], [np.log(a0 * (1 - mu) / mu) for mu in means]])
    if start is not None and len(start[1]) == m:
        x0 = np.log(np.concatenate([[start[0]], np.asarray(start[1], dtype=float)]))
    lo, hi = np.log([1e-3] + [1e-3] * m), np.log([1e3] + [1e8] * m)
    if start is not None:  # warm start (bootstrap refits): unconstrained BFGS is much cheaper here, then clip
        res = optimize.minimize(nll, x0, jac=True, method="BFGS", options={"maxiter": 200})
    if start is None or not np.isfinite(res.x).all():
        res = optimize.minimize(nll, x0, jac=True, method="L-BFGS-B", bounds=list(zip(lo, hi)))
    x = np.clip(res.x, lo, hi)
    return float(np.exp(x[0])), np.exp(x[1:])


def fit_concentration(n: np.ndarray, c: np.ndarray, mu: np.ndarray) -> float:
    """Maximum-likelihood concentration φ of p ~ Beta(μφ, (1 − μ)φ) around known per-prompt means ``mu``,
    within [:data:`MIN_CONC`, :data:`MAX_CONC`].

    >>> rng = np.random.default_rng(0); mu = rng.uniform(0.2, 0.8, 3000); n = np.full(3000, 20)
    >>> p = rng.beta(mu * 5, (1 - mu) * 5); round(fit_concentration(n, rng.binomial(n, p), mu))
    5
    """
    n = np.asarray(n, dtype=float)
    c = np.asarray(c, dtype=float)

    def conc_nll(log_phi: float) -> float:
        phi = np.exp(log_phi)
        a, b = mu * phi, (1 - mu) * phi
        return -float(log_likelihood_terms(n, c, a, b).sum())

    r = optimize.minimize_scalar(conc_nll, bounds=(np.log(MIN_CONC), np.log(MAX_CONC)), method="bounded")
    return float(np.exp(r.x))


def fit_beta_prior(agree: np.ndarray, k: np.ndarray) -> tuple[float, float]:
    """Method-of-moments Beta(α, β) prior for agreement rates ``agree / k`` across prompts.

    Falls back to Beta(1, 1) when there are fewer than 3 prompts or no spread beyond the binomial
    noise. Concentration is clipped to [0.5, 200].

    >>> a, b = fit_beta_prior(np.array([4, 4, 2, 3, 1, 4]), np.full(6, 4))
    >>> round(a / (a + b), 3)  # prior mean = pooled agreement 18/24
    0.75
    """
    agree = np.asarray(agree, dtype=float)
    k = np.asarray(k, dtype=float)
    ok = k > 0
    if ok.sum() < 3:
        return 1.0, 1.0
    agree, k = agree[ok], k[ok]
    mean = float(np.clip(agree.sum() / k.sum(), 1e-3, 1 - 1e-3))
    rate = agree / k
    var = float(np.var(rate))
    noise = float(mean * (1 - mean) * np.mean(1.0 / k))
    excess = var - noise
    if excess <= 1e-9:
        conc = 200.0
    else:
        # var(rate) = m(1-m)[1/k + (1 - 1/k)/(1 + c)]  →  solve for the concentration c
        frac = excess / (mean * (1 - mean) * np.mean(1 - 1.0 / k))
        conc = 1.0 / max(frac, 1e-9) - 1.0
    conc = float(np.clip(conc, 0.5, 200.0))
    return mean * conc, (1 - mean) * conc


__all__ = ["MAX_CONC", "MIN_CONC", "fit_beta_binomial", "fit_beta_prior", "fit_concentration",
           "fit_pooled_beta_binomial", "log_likelihood_terms", "score_terms"]
