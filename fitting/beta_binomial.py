"""Beta-binomial: prompts with n samples, c correct, whose success probability p ~ Beta(α, β).

The one home of the Beta-binomial fits used across the package: the per-config prior of the success model
(:func:`fit_beta_binomial`, :mod:`ttsplan.fitting.success`), ...
"""
from __future__ import annotations

import numpy as np
from scipy import optimize, special

from ttsplan.features.errors import TtsplanError

#: bounds of the concentration α + β (1e6 ≈ no overdispersion)
MIN_CONC, MAX_CONC = 1e-3, 1e6


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
        ll = wu * (special.betaln(cu + a, nu - cu + b) - special.betaln(a, b))
        da = wu * (special.digamma(cu + a) - special.digamma(nu + a + b) - special.digamma(a) + special.digamma(a + b))
        db = wu * (special.digamma(nu - cu + b) - special.digamma(nu + a + b) - special.digamma(b)
                   + special.digamma(a + b))
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


__all__ = ["MAX_CONC", "MIN_CONC", "fit_beta_binomial"]
