"""Scaling laws: fit accuracy-vs-N from k small and extrapolate to large N (DESIGN §6).

Laws (each ``.fit(...)`` returns a :class:`ScalingFit` with ``predict``, ``predict_interval``, ``summary``):

- :class:`BetaLaw` — per-prompt p ~ Beta(α, β) fitted by Beta-binomial maximum likelihood on the
  observed (k, c) per prompt; pass@N = mean over prompts of the posterior E[1 − (1 − p)^N]
  (``use="posterior"``, default) or the prior expectation 1 − B(α, β + N)/B(α, β) (``use="prior"``).
  A weak hyperprior (α + β)^(−0.5) keeps the fit finite when a handful of prompts hold every success.
  This is the distributional estimator of Schaeffer et al. (2025, *How Do Large Language Monkeys Get
  Their Power (Laws)?*): the aggregate power law comes from the heavy left tail of p.
- :class:`PerProblemPowerLaw` — for each problem a power law −log pass_i@k = a_i k^{−b_i} fitted by
  least squares in log-log space on that problem's unbiased pass_i@k curve (k ≤ K, points with
  pass_i@k ≤ 0.99); pass@N = mean of exp(−a_i N^{−b_i}). ``form="neglog_fail"`` fits instead
  −log(1 − pass_i@k) = a_i k^{b_i}, Schaeffer et al.'s per-problem exponential scaling with a free exponent. A problem with no success in its K samples has no curve to fit: it gets the
  Beta-binomial posterior Beta(α, β + K) of the pooled fit; problems with one usable point use the
  geometric curve 1 − (1 − c/K)^N; problems that always succeed predict 1.
- :class:`PooledBetaLaw` — the Beta law fitted jointly to several configurations (the models of one
  benchmark): one left-tail exponent α shared by all, β per configuration, plain Beta-binomial maximum
  likelihood. Pooling pins α, which one configuration's K-sample counts barely identify, so its
  predictions vary far less across subsamples than ``BetaLaw``'s; pass@N as for ``BetaLaw`` (posterior).
  Opt-in (``POOLED_LAWS``, not in ``LAWS``): see docs/fitting.md for where it helps and where it does not.
- :class:`AggregatePowerLaw` — the usual baseline: −log pass@k = a k^{−b} fitted to the aggregate curve.
- :class:`MajoritySaturatingLaw` — maj@N = m∞ − d·N^{−γ} (d may be negative: majority voting can
  lose accuracy with N) fitted to the mean maj@k curve.

Prediction intervals come from bootstrapping prompts (refit per replicate). Predictions beyond
``max_ratio`` × the largest fitted k (default 100×) raise :class:`ExtrapolationWarning`.

>>> rng = np.random.default_rng(0); p = rng.beta(0.3, 3.0, 500); k = np.full(500, 100)
>>> fit = BetaLaw().fit(k, rng.binomial(k, p))
>>> round(float(fit.predict([100])[0]), 2) > 0.5
True
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from scipy import optimize, special

from ttsplan.features.errors import TtsplanError
from ttsplan.features.estimators import pass_at_k
from ttsplan.fitting.success import fit_beta_binomial, pass_at_n_beta, split_configs_by_dataset

LAWS = ("beta", "per_problem_power_law", "aggregate_power_law")
POOLED_LAWS = ("pooled_beta",)  # fitted jointly over the configurations of a table; not in LAWS (opt-in)
ALL_LAWS = LAWS + POOLED_LAWS


class ExtrapolationWarning(UserWarning):
    """A prediction was requested beyond the range the fit supports."""


@dataclass(frozen=True)
class ScalingFit:
    """A fitted law: ``predict(n_grid)``, ``predict_interval(n_grid)``, ``summary()``.

    ``refit`` maps a bootstrap index array over prompts to a predictor; used for intervals.
    """

    law: str
    params: dict[str, float]
    k_max: int
    n_prompts: int
    metric: str
    _predict: Callable[[np.ndarray], np.ndarray] = field(repr=False)
    _refit: Callable[[np.ndarray], Callable[[np.ndarray], np.ndarray]] | None = field(default=None, repr=False)
    max_ratio: float = 100.0
    n_boot: int = 100
    seed: int = 0
    confidence: float = 0.9

    def __post_init__(self) -> None:
        if self.k_max < 1 or self.n_prompts < 1:
            raise TtsplanError(f"ScalingFit needs k_max >= 1 and n_prompts >= 1, got {self.k_max}, {self.n_prompts}.")

    @property
    def supported_max_n(self) -> float:
        return self.max_ratio * self.k_max

    def _grid(self, n_grid: Sequence[int] | int) -> np.ndarray:
        grid = np.atleast_1d(np.asarray(n_grid, dtype=float))
        if grid.size == 0 or (grid < 1).any() or not np.isfinite(grid).all():
            raise TtsplanError(f"n_grid must hold numbers >= 1, got {n_grid!r}.")
        beyond = grid[grid > self.supported_max_n]
        if beyond.size:
            warnings.warn(f"{self.law}: N = {int(beyond.max()):,} is beyond the supported range (fitted on "
                          f"k <= {self.k_max}; extrapolating at most {self.max_ratio:g}x, N <= "
                          f"{int(self.supported_max_n):,}). Treat the prediction as a rough guess.",
                          ExtrapolationWarning, stacklevel=3)
        return grid

    def predict(self, n_grid: Sequence[int] | int) -> np.ndarray:
        """Predicted mean accuracy at each N."""
        return np.clip(self._predict(self._grid(n_grid)), 0.0, 1.0)

    def predict_interval(self, n_grid: Sequence[int] | int, confidence: float | None = None
                         ) -> tuple[np.ndarray, np.ndarray]:
        """Bootstrap-over-prompts prediction interval (lower, upper) at each N."""
        grid = self._grid(n_grid)
        conf = self.confidence if confidence is None else confidence
        mid = np.clip(self._predict(grid), 0, 1)
        if self._refit is None or self.n_boot <= 0 or self.n_prompts < 2:
            return mid, mid
        rng = np.random.default_rng(self.seed)
        boots = []
        for _ in range(self.n_boot):
            idx = rng.integers(0, self.n_prompts, self.n_prompts)
            try:
                boots.append(np.clip(self._refit(idx)(grid), 0, 1))
            except (TtsplanError, ValueError, RuntimeError):
                continue
        if not boots:
            return mid, mid
        alpha = (1 - conf) / 2
        lo, hi = np.quantile(np.asarray(boots), [alpha, 1 - alpha], axis=0)
        return np.minimum(lo, mid), np.maximum(hi, mid)

    def summary(self, n_grid: Sequence[int] | None = None) -> pl.DataFrame:
        """Parameters, then predictions with intervals at ``n_grid`` (default: k_max and 100 k_max)."""
        rows = [{"law": self.law, "quantity": name, "estimate": float(v), "ci_low": None, "ci_high": None}
                for name, v in self.params.items()]
        grid = list(n_grid) if n_grid is not None else [self.k_max, int(self.supported_max_n)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExtrapolationWarning)
            mid = self.predict(grid)
            lo, hi = self.predict_interval(grid)
        rows += [{"law": self.law, "quantity": f"{self.metric}@{int(n)}", "estimate": float(m), "ci_low": float(a),
                  "ci_high": float(b)} for n, m, a, b in zip(grid, mid, lo, hi)]
        return pl.DataFrame(rows, schema={"law": pl.String, "quantity": pl.String, "estimate": pl.Float64,
                                          "ci_low": pl.Float64, "ci_high": pl.Float64})

    def print_summary(self) -> None:
        print(self.summary())


def _check_counts(n: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = np.asarray(n, dtype=float).ravel()
    c = np.asarray(c, dtype=float).ravel()
    problems = []
    if n.size == 0 or n.shape != c.shape:
        problems.append(f"n and c must be non-empty and the same length, got {n.size} and {c.size}")
    elif (n < 1).any() or (c < 0).any() or (c > n).any():
        problems.append("counts must satisfy 0 <= c <= n and n >= 1")
    elif n.max() < 2:
        problems.append("scaling laws need at least k = 2 samples per prompt, got k = 1 everywhere. "
                        "Sample more per prompt")
    if problems:
        raise TtsplanError("; ".join(problems) + ".")
    if c.sum() == 0:
        raise TtsplanError(f"scaling laws need at least one correct sample, got no correct sample anywhere "
                           f"({n.size} prompts × k={int(n.max())}). Every law would predict 0.")
    return n, c


def _log_grid(k_max: int, points: int = 16) -> np.ndarray:
    return np.unique(np.round(np.logspace(0, np.log10(k_max), points)).astype(int))


# ---------------------------------------------------------------------------------------- laws
@dataclass(frozen=True)
class BetaLaw:
    """Beta-distributed per-prompt p fitted by Beta-binomial ML (Schaeffer et al.'s distributional fit)."""

    use: str = "posterior"
    hyperprior: float = 0.5
    max_ratio: float = 100.0
    n_boot: int = 100
    seed: int = 0
    confidence: float = 0.9

    def fit(self, n: np.ndarray, c: np.ndarray) -> ScalingFit:
        if self.use not in ("posterior", "prior"):
            raise TtsplanError(f"use must be 'posterior' or 'prior', got {self.use!r}.")
        n, c = _check_counts(n, c)
        if (c == n).all():
            raise TtsplanError("the Beta law needs at least one failure, got every sample correct.")

        def make(idx: np.ndarray) -> tuple[Callable[[np.ndarray], np.ndarray], float, float]:
            ni, ci = n[idx], c[idx]
            a, b = fit_beta_binomial(ni, ci, hyperprior=self.hyperprior)
            if self.use == "prior":
                return (lambda g: pass_at_n_beta(np.array([a]), np.array([b]), g)[0]), a, b
            ap, bp = a + ci, b + ni - ci
            return (lambda g: pass_at_n_beta(ap, bp, g).mean(axis=0)), a, b

        pred, a, b = make(np.arange(n.size))
        return ScalingFit("beta", {"alpha": a, "beta": b, "mean_p": a / (a + b)}, int(n.max()), int(n.size), "pass",
                          pred, lambda idx: make(idx)[0], self.max_ratio, self.n_boot, self.seed, self.confidence)


def per_problem_power_params(n: np.ndarray, c: np.ndarray, points: int = 16, form: str = "neglog_pass"
                             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-problem (log a_i, b_i, kind_i); kind 0 = power law, 1 = geometric fallback (log a holds log p),
    2 = always solved, 3 = never solved (Beta posterior).

    ``form="neglog_pass"``: −log pass_i@k = a_i k^{−b_i}, fitted where 0 < pass_i@k ≤ 0.99 (near 1 the
    per-problem curve is exponential, not a power law, and those points would dominate the fit);
    ``form="neglog_fail"``: −log(1 − pass_i@k) = a_i k^{b_i} (Schaeffer et al.'s per-problem exponential
    scaling is b_i = 1), fitted where 0 < pass_i@k < 1; ``b`` is stored negated so one predictor serves.
    """
    k_max = int(n.max())
    ks = _log_grid(k_max, points).astype(float)
    curve = pass_at_k(n[:, None], c[:, None], ks[None, :])
    if form == "neglog_pass":
        ok = (curve > 0) & (curve <= 0.99) & np.isfinite(curve)
        y = np.log(-np.log(np.where(ok, curve, 0.5)))
    else:
        ok = (curve > 0) & (curve < 1) & np.isfinite(curve)
        y = np.log(-np.log1p(-np.where(ok, curve, 0.5)))
    x = np.log(ks)[None, :]
    w = ok.astype(float)
    m = w.sum(axis=1)
    sx, sy = (w * x).sum(axis=1), (w * y).sum(axis=1)
    sxx, sxy = (w * x * x).sum(axis=1), (w * x * y).sum(axis=1)
    den = m * sxx - sx * sx
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = np.where(den > 1e-12, (m * sxy - sx * sy) / den, 0.0)
        inter = np.where(m > 0, (sy - slope * sx) / np.maximum(m, 1), 0.0)
    b = np.clip(-slope, 0.0, None) if form == "neglog_pass" else -np.clip(slope, 0.0, None)
    kind = np.where(c >= n, 2, np.where(c == 0, 3, np.where((m >= 2) & (den > 1e-12), 0, 1)))
    log_a = np.where(kind == 0, inter, np.log(np.maximum(c, 0.5) / n))
    return log_a, b, kind


def _per_problem_predict(log_a: np.ndarray, b: np.ndarray, kind: np.ndarray, grid: np.ndarray,
                         zero_post: tuple[float, float], n: np.ndarray, form: str = "neglog_pass") -> np.ndarray:
    g = np.asarray(grid, dtype=float)[None, :]
    if form == "neglog_pass":
        power = np.exp(-np.exp(log_a[:, None]) * g ** (-b[:, None]))
    else:
        power = -np.expm1(-np.exp(log_a[:, None]) * g ** (-b[:, None]))
    geo = -np.expm1(g * np.log1p(-np.exp(np.minimum(log_a[:, None], 0.0)).clip(0, 1 - 1e-15)))
    vals = np.where(kind[:, None] == 0, power, np.where(kind[:, None] == 2, 1.0, geo))
    zero = kind == 3
    if zero.any():
        a, b0 = zero_post
        vals[zero] = pass_at_n_beta(np.full(zero.sum(), a), b0 + n[zero], grid)
    return vals.mean(axis=0)


@dataclass(frozen=True)
class PerProblemPowerLaw:
    """Per-problem power law in −log pass_i@k, averaged over problems."""

    points: int = 16
    hyperprior: float = 0.5
    form: str = "neglog_pass"
    max_ratio: float = 100.0
    n_boot: int = 100
    seed: int = 0
    confidence: float = 0.9

    def fit(self, n: np.ndarray, c: np.ndarray) -> ScalingFit:
        if self.form not in ("neglog_pass", "neglog_fail"):
            raise TtsplanError(f"form must be 'neglog_pass' or 'neglog_fail', got {self.form!r}.")
        n, c = _check_counts(n, c)
        log_a, b, kind = per_problem_power_params(n, c, self.points, self.form)
        prior = fit_beta_binomial(n, c, hyperprior=self.hyperprior) if (kind == 3).any() and (c < n).any() else (0.5, 0.5)

        def make(idx: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
            return lambda g: _per_problem_predict(log_a[idx], b[idx], kind[idx], g, prior, n[idx], self.form)

        params = {"median_a": float(np.median(np.exp(log_a[kind == 0]))) if (kind == 0).any() else float("nan"),
                  "median_b": float(np.median(b[kind == 0])) if (kind == 0).any() else float("nan"),
                  "power_law_problems": float((kind == 0).sum()), "geometric_problems": float((kind == 1).sum()),
                  "always_solved_problems": float((kind == 2).sum()),
                  "never_solved_problems": float((kind == 3).sum())}
        params = {k: v for k, v in params.items() if np.isfinite(v)}
        return ScalingFit("per_problem_power_law", params, int(n.max()), int(n.size), "pass",
                          make(np.arange(n.size)), make, self.max_ratio, self.n_boot, self.seed, self.confidence)


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
        ll = float((wu * (special.betaln(cu + a, nu - cu + b) - special.betaln(a, b))).sum())
        common = special.digamma(a + b) - special.digamma(nu + a + b)
        ga = float((wu * (special.digamma(cu + a) - special.digamma(a) + common)).sum())
        gb = np.bincount(gi, weights=wu * (special.digamma(nu - cu + b) - special.digamma(b) + common), minlength=m)
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


@dataclass(frozen=True)
class PooledBetaLaw:
    """Beta law with one left-tail exponent α shared by several configurations (``fit_groups``).

    ``fit(n, c)`` on one configuration is the plain Beta-binomial MLE (no hyperprior). Bootstrap
    intervals resample the prompts of one configuration and refit the pool (the others held fixed).

    >>> rng = np.random.default_rng(0); k = np.full(400, 100)
    >>> gs = [(k, rng.binomial(k, rng.beta(0.3, b, 400))) for b in (3.0, 10.0)]
    >>> fits = PooledBetaLaw(n_boot=0).fit_groups(gs); [round(float(f.predict([100])[0]), 1) for f in fits]
    [0.7, 0.5]
    """

    max_ratio: float = 100.0
    n_boot: int = 100
    seed: int = 0
    confidence: float = 0.9

    def fit(self, n: np.ndarray, c: np.ndarray) -> ScalingFit:
        return self.fit_groups([(n, c)])[0]

    def fit_groups(self, groups: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[ScalingFit]:
        checked = [_check_counts(n, c) for n, c in groups]
        alpha, betas = fit_pooled_beta_binomial(checked)

        def predictor(a: float, b: float, n: np.ndarray, c: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
            ap, bp = a + c, b + n - c
            return lambda g: pass_at_n_beta(ap, bp, g).mean(axis=0)

        def refit(j: int) -> Callable[[np.ndarray], Callable[[np.ndarray], np.ndarray]]:
            def run(idx: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
                nj, cj = checked[j][0][idx], checked[j][1][idx]
                a, bs = fit_pooled_beta_binomial(checked[:j] + [(nj, cj)] + checked[j + 1:], (alpha, betas))
                return predictor(a, float(bs[j]), nj, cj)
            return run

        fits = []
        for j, (n, c) in enumerate(checked):
            b = float(betas[j])
            params = {"alpha": alpha, "beta": b, "mean_p": alpha / (alpha + b), "pooled_configs": float(len(checked))}
            fits.append(ScalingFit("pooled_beta", params, int(n.max()), int(n.size), "pass", predictor(alpha, b, n, c),
                                   refit(j), self.max_ratio, self.n_boot, self.seed, self.confidence))
        return fits


def _fit_aggregate(ks: np.ndarray, values: np.ndarray) -> tuple[float, float]:
    ok = (values > 0) & (values < 1)
    if ok.sum() < 2:
        raise TtsplanError("the aggregate power law needs at least two k with 0 < pass@k < 1, got "
                           f"{int(ok.sum())}. The curve is flat at 0 or 1.")
    x, y = np.log(ks[ok]), np.log(-np.log(values[ok]))
    slope, inter = np.polyfit(x, y, 1)
    return float(np.exp(inter)), float(-slope)


@dataclass(frozen=True)
class AggregatePowerLaw:
    """Baseline: −log pass@k = a k^{−b} fitted to the aggregate (mean over prompts) curve."""

    points: int = 16
    max_ratio: float = 100.0
    n_boot: int = 100
    seed: int = 0
    confidence: float = 0.9

    def fit(self, n: np.ndarray, c: np.ndarray) -> ScalingFit:
        n, c = _check_counts(n, c)
        ks = _log_grid(int(n.min()), self.points).astype(float)
        curve = pass_at_k(n[:, None], c[:, None], ks[None, :])

        def make(idx: np.ndarray) -> tuple[Callable[[np.ndarray], np.ndarray], float, float]:
            a, b = _fit_aggregate(ks, curve[idx].mean(axis=0))
            return (lambda g: np.exp(-a * np.asarray(g, dtype=float) ** (-b))), a, b

        pred, a, b = make(np.arange(n.size))
        return ScalingFit("aggregate_power_law", {"a": a, "b": b}, int(n.min()), int(n.size), "pass", pred,
                          lambda idx: make(idx)[0], self.max_ratio, self.n_boot, self.seed, self.confidence)


@dataclass(frozen=True)
class MajoritySaturatingLaw:
    """maj@N = m∞ − d·N^{−γ} fitted to the mean of per-prompt maj@k values (prompts × len(ks))."""

    max_ratio: float = 100.0
    n_boot: int = 100
    seed: int = 0
    confidence: float = 0.9

    def fit(self, ks: Sequence[int], values: np.ndarray) -> ScalingFit:
        ks_arr = np.asarray(ks, dtype=float)
        vals = np.asarray(values, dtype=float)
        if vals.ndim == 1:
            vals = vals[None, :]
        if vals.shape[1] != ks_arr.size or ks_arr.size < 3 or np.isnan(vals).any():
            raise TtsplanError(f"the majority law needs a complete prompts × ks matrix with >= 3 values of k, got "
                               f"shape {vals.shape} for {ks_arr.size} k value(s) (NaN present: {bool(np.isnan(vals).any())}).")

        def fit_curve(curve: np.ndarray) -> tuple[float, float, float]:
            if np.ptp(curve) < 1e-12:
                return float(curve[0]), 0.0, 1.0

            def f(k: np.ndarray, m_inf: float, d: float, g: float) -> np.ndarray:
                return m_inf - d * k ** (-g)

            try:
                popt, _ = optimize.curve_fit(f, ks_arr, curve, p0=[curve[-1], curve[-1] - curve[0], 0.5],
                                             bounds=([0.0, -1.0, 1e-3], [1.0, 1.0, 5.0]), maxfev=5000)
            except RuntimeError as exc:
                raise TtsplanError(f"the majority law did not converge on this curve ({exc}).") from None
            return tuple(float(v) for v in popt)  # type: ignore[return-value]

        def make(idx: np.ndarray) -> tuple[Callable[[np.ndarray], np.ndarray], tuple[float, float, float]]:
            m_inf, d, g = fit_curve(vals[idx].mean(axis=0))
            return (lambda n_: m_inf - d * np.asarray(n_, dtype=float) ** (-g)), (m_inf, d, g)

        pred, (m_inf, d, g) = make(np.arange(vals.shape[0]))
        return ScalingFit("maj_saturating", {"m_inf": m_inf, "d": d, "gamma": g}, int(ks_arr.max()), vals.shape[0],
                          "maj", pred, lambda idx: make(idx)[0], self.max_ratio, self.n_boot, self.seed,
                          self.confidence)


LAW_CLASSES = {"beta": BetaLaw, "per_problem_power_law": PerProblemPowerLaw, "aggregate_power_law": AggregatePowerLaw,
               "pooled_beta": PooledBetaLaw}


def fit_pass_laws(n: np.ndarray, c: np.ndarray, laws: Sequence[str] = LAWS, n_boot: int = 100,
                  seed: int = 0) -> dict[str, ScalingFit]:
    """Fit every pass@N law in ``laws`` to per-prompt counts; returns ``{law: ScalingFit}``."""
    out = {}
    for law in laws:
        if law not in LAW_CLASSES:
            from ttsplan.features.errors import did_you_mean

            raise TtsplanError(f"law must be one of {', '.join(LAW_CLASSES)}, got {law!r}.{did_you_mean(law, LAW_CLASSES)}")
        out[law] = LAW_CLASSES[law](n_boot=n_boot, seed=seed).fit(n, c)
    return out


# ------------------------------------------------------------------------------- subsampling
def subsample_counts(n: np.ndarray, c: np.ndarray, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Correct counts among ``k`` samples drawn without replacement from each prompt's n (hypergeometric).

    >>> subsample_counts(np.array([10, 10]), np.array([0, 10]), 4)[1].tolist()
    [0, 4]
    """
    n = np.asarray(n, dtype=np.int64)
    c = np.asarray(c, dtype=np.int64)
    if (n < k).any():
        raise TtsplanError(f"fit-k must be <= every prompt's sample count, got k={k} but "
                           f"{int((n < k).sum())} prompt(s) have fewer (min {int(n.min())}).")
    rng = np.random.default_rng(seed)
    return np.full(n.shape, k, dtype=np.int64), rng.hypergeometric(c, n - c, k)


def subsample_samples(table: pl.DataFrame, k: int, seed: int = 0) -> pl.DataFrame:
    """Keep ``k`` random samples per (config, prompt) of a SampleTable (seeded), renumbered 0..k−1."""
    rng = np.random.default_rng(seed)
    t = table.with_columns(pl.Series("_u", rng.random(table.height)))
    t = t.with_columns((pl.col("_u").rank("ordinal").over(["config", "prompt_id"]) - 1).alias("_r"))
    t = t.filter(pl.col("_r") < k).with_columns(pl.col("_r").cast(pl.Int32).alias("sample_idx"))
    return t.drop("_u", "_r").sort(["config", "prompt_id", "sample_idx"])


def extrapolation_table(counts: pl.DataFrame, fit_k: int, predict_k: int, laws: Sequence[str] = LAWS,
                        seed: int = 0, n_boot: int = 0) -> pl.DataFrame:
    """Per config: fit each law on a hypergeometric subsample of ``fit_k`` samples per prompt, predict
    pass@``predict_k`` and compare with the full-data unbiased estimate.

    Columns ``config, law, predicted, ci_low, ci_high, actual, abs_error`` (a config spanning several
    datasets is split into ``"config [dataset]"``). Configs whose prompts have
    fewer than ``predict_k`` samples are rejected (no ground truth). ``laws`` may name the pooled laws
    (``POOLED_LAWS``): those are fitted once per dataset, jointly over its configs' subsamples.
    """
    problems = []
    unknown = [law for law in laws if law not in ALL_LAWS]
    if unknown:
        from ttsplan.features.errors import did_you_mean

        problems.append(f"laws must be names from {', '.join(ALL_LAWS)}, got {unknown[0]!r}."
                        f"{did_you_mean(unknown[0], ALL_LAWS)}")
    if fit_k < 2:
        problems.append(f"fit-k must be >= 2, got {fit_k}")
    if predict_k <= fit_k:
        problems.append(f"predict-k must be larger than fit-k, got {predict_k} <= {fit_k}")
    if problems:
        raise TtsplanError("; ".join(problems) + ".")
    rows = []
    counts = split_configs_by_dataset(counts)
    short = (counts.group_by("config").agg(pl.col("samples").min().alias("m"))
             .filter(pl.col("m") < predict_k).sort("config"))
    if short.height:
        ex = ", ".join(f"{r['config']} (min {r['m']})" for r in short.head(5).iter_rows(named=True))
        raise TtsplanError(f"every prompt must have at least predict-k={predict_k} samples to measure the actual "
                           f"value, got {short.height} config(s) with fewer: {ex}. Lower --predict-k.")
    failures: list[str] = []
    data = []
    for i, cfg in enumerate(sorted(counts["config"].unique().to_list())):
        sub = counts.filter(pl.col("config") == cfg)
        n_full = sub["samples"].to_numpy()
        c_full = sub["correct_samples"].to_numpy()
        actual = float(np.mean(pass_at_k(n_full, c_full, predict_k)))
        dataset = sub["dataset"].drop_nulls() if "dataset" in sub.columns else pl.Series([], dtype=pl.String)
        data.append((cfg, actual, *subsample_counts(n_full, c_full, fit_k, seed + i),
                     str(dataset[0]) if dataset.len() else ""))
    # pooled laws: one joint fit per dataset over the configs that can be fitted at all
    pooled: dict[tuple[str, str], ScalingFit | str] = {}
    for law in (x for x in laws if x in POOLED_LAWS):
        usable: dict[str, list[tuple[str, np.ndarray, np.ndarray]]] = {}
        for cfg, _, n, c, dataset in data:
            try:
                _check_counts(n, c)
                usable.setdefault(dataset, []).append((cfg, n, c))
            except TtsplanError as exc:
                pooled[(law, cfg)] = str(exc)
        for group in usable.values():
            try:
                fits = LAW_CLASSES[law](n_boot=n_boot, seed=seed).fit_groups([(n, c) for _, n, c in group])
                pooled.update({(law, cfg): f for (cfg, _, _), f in zip(group, fits)})
            except TtsplanError as exc:
                pooled.update({(law, cfg): str(exc) for cfg, _, _ in group})
    for cfg, actual, n, c, _ in data:
        for law in laws:
            try:
                if law in POOLED_LAWS:
                    fit = pooled[(law, cfg)]
                    if isinstance(fit, str):
                        raise TtsplanError(fit)
                else:
                    fit = LAW_CLASSES[law](n_boot=n_boot, seed=seed).fit(n, c)
            except TtsplanError as exc:
                failures.append(f"config {cfg!r}, law {law}: not fitted ({exc})")
                warnings.warn(failures[-1], UserWarning, stacklevel=2)
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExtrapolationWarning)
                pred = float(fit.predict([predict_k])[0])
                lo, hi = fit.predict_interval([predict_k])
            rows.append({"config": cfg, "law": law, "predicted": pred, "ci_low": float(lo[0]), "ci_high": float(hi[0]),
                         "actual": actual, "abs_error": abs(pred - actual)})
    if not rows:
        shown = "; ".join(failures[:4]) + (f"; … ({len(failures) - 4} more)" if len(failures) > 4 else "")
        raise TtsplanError(f"no law could be fitted to any configuration: {shown}")
    return pl.DataFrame(rows, schema={"config": pl.String, "law": pl.String, "predicted": pl.Float64,
                                      "ci_low": pl.Float64, "ci_high": pl.Float64, "actual": pl.Float64,
                                      "abs_error": pl.Float64})


__all__ = [
    "ALL_LAWS",
    "LAWS",
    "POOLED_LAWS",
    "AggregatePowerLaw",
    "BetaLaw",
    "ExtrapolationWarning",
    "MajoritySaturatingLaw",
    "PerProblemPowerLaw",
    "PooledBetaLaw",
    "ScalingFit",
    "extrapolation_table",
    "fit_pass_laws",
    "fit_pooled_beta_binomial",
    "per_problem_power_params",
    "subsample_counts",
    "subsample_samples",
]
