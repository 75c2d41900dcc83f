"""Accuracy at N for one prompt's success probability: pass@N (also exact under a Beta posterior), maj@N
(three-way answer model) and BoN@N (Gaussian rewards per class); every function is vectorized over prompts."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import special

_CHUNK_ELEMENTS = 2_000_000  # work-array size per chunk of prompts (maj/bon)


def pass_at_n_beta(a: np.ndarray, b: np.ndarray, n_grid: Sequence[int]) -> np.ndarray:
    """E[1 − (1 − p)^N] for p ~ Beta(a, b), shape (len(a) × len(n_grid)).

    >>> pass_at_n_beta(np.array([1.0]), np.array([1.0]), [1, 3]).round(4).tolist()  # N/(N+1)
    [[0.5, 0.75]]
    """
    a = np.asarray(a, dtype=float)[:, None]
    b = np.asarray(b, dtype=float)[:, None]
    nn = np.asarray(n_grid, dtype=float)[None, :]
    return -np.expm1(special.betaln(a, b + nn) - special.betaln(a, b))


def pass_at_n_point(p: np.ndarray, n_grid: Sequence[int]) -> np.ndarray:
    """1 − (1 − p)^N for fixed p, shape (len(p) × len(n_grid))."""
    p = np.clip(np.asarray(p, dtype=float)[:, None], 0.0, 1.0)
    nn = np.asarray(n_grid, dtype=float)[None, :]
    with np.errstate(divide="ignore"):
        return -np.expm1(nn * np.log1p(-p))


def maj_at_n_point(p: np.ndarray, q: np.ndarray, n_grid: Sequence[int]) -> np.ndarray:
    """Plurality vote among N draws: correct answer (prob p) vs the strongest wrong answer (prob q).

    P(X_c > X_w) + ½ P(X_c = X_w ≥ 2) + P(all N answers distinct-ish)/N: the remaining mass 1 − p − q
    is spread over singleton answers (they never lead alone, but tie when every count is 1). Exact for N ≤ 2,000
    (conditioning on m = X_c + X_w), normal approximation beyond. Shape (len(p) × len(n_grid)).

    >>> maj_at_n_point(np.array([0.6]), np.array([0.4]), [1]).round(3).tolist()
    [[0.6]]
    """
    from scipy import stats  # ~0.3 s to import: only the commands that use it pay for it (DESIGN §1)
    p = np.clip(np.asarray(p, dtype=float).ravel(), 0.0, 1.0)
    q = np.clip(np.asarray(q, dtype=float).ravel(), 0.0, 1.0)
    biggest = max(int(x) for x in n_grid) if len(n_grid) else 1
    step = max(1, _CHUNK_ELEMENTS // min(biggest, 2000))
    if p.size > step:  # bound memory: (prompts × N) work arrays per chunk
        return np.vstack([maj_at_n_point(p[i:i + step], q[i:i + step], n_grid) for i in range(0, p.size, step)])
    q = np.minimum(q, 1.0 - p)
    s = p + q
    theta = np.where(s > 0, p / np.where(s > 0, s, 1.0), 0.0)
    out = np.zeros((p.size, len(n_grid)))
    for j, n_ in enumerate(n_grid):
        n_ = int(n_)
        if n_ <= 2000:
            m = np.arange(1, n_ + 1, dtype=float)[None, :]
            pm = stats.binom.pmf(m, n_, s[:, None])
            half = np.floor(m / 2)
            win = stats.binom.sf(half, m, theta[:, None])  # X_c > m/2 (X_c >= floor(m/2)+1)
            even = (m % 2 == 0)
            tie = np.where(even, stats.binom.pmf(m / 2, m, theta[:, None]), 0.0)
            val = (pm * (win + 0.5 * tie)).sum(axis=1)
            if n_ >= 2:  # leader count 1: the rest are singletons, so all N answers tie and correct wins 1/N
                r = np.clip(1.0 - s, 0.0, 1.0)
                one_zero = n_ * p * r ** (n_ - 1)
                one_one = n_ * (n_ - 1) * p * q * r ** (n_ - 2)
                val = val - one_zero * (1.0 - 1.0 / n_) - one_one * (0.5 - 1.0 / n_)
            out[:, j] = val
        else:
            mu = n_ * (p - q)
            var = n_ * (p + q - (p - q) ** 2)
            sd = np.sqrt(np.maximum(var, 1e-12))
            out[:, j] = np.where(var > 1e-12, stats.norm.cdf(mu / sd), np.where(mu > 0, 1.0, 0.0))
    return np.clip(out, 0.0, 1.0)


def bon_at_n_point(p: np.ndarray, mu1: np.ndarray, mu0: np.ndarray, sigma: np.ndarray,
                   n_grid: Sequence[int], grid_points: int = 241) -> np.ndarray:
    """Best-of-N under Gaussian rewards: ∫ N p φ₁(r) F(r)^{N−1} dr, F = pΦ₁ + (1 − p)Φ₀.

    >>> bon_at_n_point(np.array([0.3]), np.array([0.0]), np.array([0.0]), np.array([1.0]), [4]).round(3).tolist()
    [[0.3]]
    """
    step = max(1, _CHUNK_ELEMENTS // grid_points)
    if np.size(p) > step:
        return np.vstack([bon_at_n_point(np.asarray(p)[i:i + step], np.asarray(mu1)[i:i + step],
                                         np.asarray(mu0)[i:i + step], np.asarray(sigma)[i:i + step], n_grid,
                                         grid_points) for i in range(0, np.size(p), step)])
    p = np.clip(np.asarray(p, dtype=float), 0.0, 1.0)[:, None]
    mu1 = np.asarray(mu1, dtype=float)[:, None]
    mu0 = np.asarray(mu0, dtype=float)[:, None]
    sigma = np.maximum(np.asarray(sigma, dtype=float), 1e-9)[:, None]
    lo = np.minimum(mu1, mu0) - 8 * sigma
    hi = np.maximum(mu1, mu0) + 8 * sigma
    t = np.linspace(0.0, 1.0, grid_points)[None, :]
    r = lo + (hi - lo) * t
    dr = (hi - lo) / (grid_points - 1)
    z1 = (r - mu1) / sigma
    dens1 = np.exp(-0.5 * z1 * z1) / (np.sqrt(2 * np.pi) * sigma)
    big_f = p * special.ndtr(z1) + (1 - p) * special.ndtr((r - mu0) / sigma)
    log_f = np.log(np.clip(big_f, 1e-300, 1.0))
    out = np.empty((p.shape[0], len(n_grid)))
    wts = np.full(grid_points, 1.0)
    wts[0] = wts[-1] = 0.5
    for j, n_ in enumerate(n_grid):
        integrand = n_ * p * dens1 * np.exp((n_ - 1) * log_f)
        out[:, j] = (integrand * wts[None, :]).sum(axis=1) * dr[:, 0]
    return np.clip(out, 0.0, 1.0)


__all__ = ["bon_at_n_point", "maj_at_n_point", "pass_at_n_beta", "pass_at_n_point"]
