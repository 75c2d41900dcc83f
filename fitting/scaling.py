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
from threadpoolctl import threadpool_limits
from ttsplan.features.defaults import DEFAULT_CONFIDENCE
from ttsplan.features.errors import TtsplanError, did_you_mean
from ttsplan.features.estimators import pass_at_k, prompt_curves
from ttsplan.features.schema import has_values
from ttsplan.fitting.beta_binomial import fit_beta_binomial, fit_pooled_beta_binomial
from ttsplan.fitting.success import (
    pass_at_n_beta,
    split_configs_by_dataset,
)

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
    confidence: float = DEFAULT_CONFIDENCE

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
    confidence: float = DEFAULT_CONFIDENCE

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
    confidence: float = DEFAULT_CONFIDENCE

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
    confidence: float = DEFAULT_CONFIDENCE

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
    confidence: float = DEFAULT_CONFIDENCE

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
    confidence: float = DEFAULT_CONFIDENCE

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
    datasets is split into ``"config [dataset]"``). This is :attr:`PassExtrapolation.per_law` of
    :func:`extrapolate_pass` without the law selection; intervals (``n_boot`` > 0) are those of
    :func:`bootstrap_pass_interval`. Configs whose prompts have fewer than ``predict_k`` samples are
    rejected (no ground truth). ``laws`` may name the pooled laws (``POOLED_LAWS``): those are fitted
    once per dataset, jointly over its configs' subsamples.
    """
    return extrapolate_pass(counts, fit_k, predict_k, laws=laws, seed=seed, n_boot=n_boot, select=False).per_law


# ------------------------------------------------------------------ law selection and honest intervals
BASELINE_LAW = "aggregate_power_law"
#: below this homogeneity p-value the counts identify the spread of success rates (see homogeneity_pvalue)
HOMOGENEITY_ALPHA = 0.1
RESAMPLING = ("prompts", "both", "samples")
_FIT_ERRORS = (TtsplanError, ValueError, RuntimeError, FloatingPointError, np.linalg.LinAlgError)


def _predict_groups(law: str, groups: Sequence[tuple[np.ndarray, np.ndarray]], grid: Sequence[int]
                    ) -> list[np.ndarray | str]:
    """Fit ``law`` to each ``(n, c)`` group (jointly for a pooled law) and predict at ``grid``.

    Returns, per group, the predictions or the reason it could not be fitted.
    """
    out: list[np.ndarray | str] = ["not fitted"] * len(groups)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ExtrapolationWarning, polyfit RankWarning, optimizer noise
        if law in POOLED_LAWS:
            ok = []
            for j, (n, c) in enumerate(groups):
                try:
                    _check_counts(n, c)
                    ok.append(j)
                except TtsplanError as exc:
                    out[j] = str(exc)
            if ok:
                try:
                    fits = LAW_CLASSES[law](n_boot=0).fit_groups([groups[j] for j in ok])
                    for j, f in zip(ok, fits):
                        out[j] = f.predict(grid)
                except _FIT_ERRORS as exc:
                    for j in ok:
                        out[j] = str(exc)
            return out
        for j, (n, c) in enumerate(groups):
            try:
                out[j] = LAW_CLASSES[law](n_boot=0).fit(n, c).predict(grid)
            except _FIT_ERRORS as exc:
                out[j] = str(exc)
    return out


@dataclass(frozen=True)
class LawSelection:
    """Which pass@N law :func:`select_law` picked, and the validation that picked it.

    ``scores``: mean absolute error of each candidate's pass@``fit_k`` predicted from ``val_k`` samples
    per prompt (NaN: never scored). ``margin`` and ``margin_se``: the baseline's score minus the best
    score, and the standard error of that paired difference.
    """

    law: str
    candidates: tuple[str, ...]
    fit_k: int
    val_k: int
    draws: int
    scores: dict[str, float]
    margin: float
    margin_se: float
    n_scored: int
    reason: str
    #: law -> (draws × configs) pass@``fit_k`` predicted from ``val_k`` samples (NaN: not fitted, or not
    #: every candidate fitted on that draw); the in-range validation :func:`model_error_halfwidth` reads
    val_predictions: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)
    #: per config, the exact pass@``fit_k`` of its fit-k samples (what ``val_predictions`` are scored against)
    val_truth: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.law not in self.candidates:
            raise TtsplanError(f"law must be one of the candidates {self.candidates}, got {self.law!r}.")

    def summary(self) -> pl.DataFrame:
        """One row per candidate: validation MAE (scored at fit_k from val_k) and whether it was selected."""
        return pl.DataFrame({"law": list(self.candidates),
                             "validation_mae": [float(self.scores.get(x, float("nan"))) for x in self.candidates],
                             "selected": [x == self.law for x in self.candidates]},
                            schema={"law": pl.String, "validation_mae": pl.Float64, "selected": pl.Boolean})


def select_law(groups: Sequence[tuple[np.ndarray, np.ndarray]], laws: Sequence[str] = LAWS,
               val_k: int | None = None, draws: int = 10, seed: int = 0,
               baseline: str | None = BASELINE_LAW) -> LawSelection:
    """Choose a pass@N law for a table by validation inside the observed range.

    ``groups`` holds the ``(n, c)`` counts of each configuration of one table (K = the fewest samples a
    prompt has). Each candidate law is fitted on ``val_k`` samples per prompt (default K // 10, a
    hypergeometric subsample of the K, redrawn ``draws`` times) and scored by the absolute error of
    its pass@K against the exact pass@K of the K samples; the target never enters. A (config, draw)
    is scored only when every candidate could be fitted on it. The law with the lowest mean error wins,
    except that the ``baseline`` (the aggregate power law) is kept unless the winner beats it by more
    than one standard error of the paired per-config difference (per draw with fewer than 3 configs):
    validation at 10× is noisy, and on the Pythia MATH counts (docs/fitting.md) the ranking it gives
    between the Beta-type laws and the baseline does not carry over to 100×.

    >>> rng = np.random.default_rng(0); k = np.full(300, 200)
    >>> groups = [(k, rng.binomial(k, rng.beta(0.4, 4.0, 300))) for _ in range(3)]
    >>> select_law(groups, draws=3).law in LAWS
    True
    """
    with threadpool_limits(1):  # many tiny optimizations: BLAS threads only contend (50x slower on 2 busy cores)
        return _select_law(groups, laws, val_k, draws, seed, baseline)


def _select_law(groups: Sequence[tuple[np.ndarray, np.ndarray]], laws: Sequence[str], val_k: int | None,
                draws: int, seed: int, baseline: str | None) -> LawSelection:
    candidates = tuple(dict.fromkeys(laws))
    unknown = [x for x in candidates if x not in ALL_LAWS]
    if unknown or not candidates:
        raise TtsplanError(f"laws must be names from {', '.join(ALL_LAWS)}, got {list(laws)!r}."
                           f"{did_you_mean(unknown[0], ALL_LAWS) if unknown else ''}")
    if not groups:
        raise TtsplanError("select_law needs at least one configuration, got none.")
    if draws < 1:
        raise TtsplanError(f"draws must be >= 1, got {draws}.")
    groups = [(np.asarray(n, dtype=np.int64), np.asarray(c, dtype=np.int64)) for n, c in groups]
    big_k = int(min(int(n.min()) for n, _ in groups))
    vk = big_k // 10 if val_k is None else int(val_k)
    base = baseline if baseline in candidates else None
    fallback = base or candidates[0]
    if len(candidates) == 1:
        return LawSelection(candidates[0], candidates, big_k, vk, 0, {}, float("nan"), float("nan"), 0,
                            "only one candidate law")
    if vk < 2 or vk >= big_k:
        return LawSelection(fallback, candidates, big_k, vk, 0, {}, float("nan"), float("nan"), 0,
                            f"no validation possible (validation k = {vk} must be in [2, {big_k - 1}]); kept "
                            f"{fallback}")
    truth = np.array([float(np.mean(pass_at_k(n, c, big_k))) for n, c in groups])
    rng = np.random.default_rng([seed, 7919])
    pred = np.full((len(candidates), draws, len(groups)), np.nan)
    for d in range(draws):
        subs = [subsample_counts(n, c, vk, seed=int(rng.integers(2**31))) for n, c in groups]
        for li, law in enumerate(candidates):
            for j, p in enumerate(_predict_groups(law, subs, [big_k])):
                if not isinstance(p, str):
                    pred[li, d, j] = float(p[0])
    err = np.abs(pred - truth[None, None, :])
    usable = np.isfinite(err).all(axis=0)  # (draws, groups): every candidate scored
    scored = usable.any(axis=0)
    if not scored.any():
        return LawSelection(fallback, candidates, big_k, vk, draws, {}, float("nan"), float("nan"), 0,
                            f"no configuration could be scored at validation k = {vk} (too few successes); "
                            f"kept {fallback}")
    masked = np.where(usable[None], err, np.nan)
    val = {"val_predictions": {law: np.where(usable, pred[i], np.nan) for i, law in enumerate(candidates)},
           "val_truth": truth}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        per_cfg = np.nanmean(masked, axis=1)[:, scored]  # (laws, scored configs)
    scores = {law: float(per_cfg[i].mean()) for i, law in enumerate(candidates)}
    best = min(candidates, key=lambda x: scores[x])
    if base is None or best == base:
        return LawSelection(best, candidates, big_k, vk, draws, scores, 0.0 if best == base else float("nan"),
                            float("nan"), int(scored.sum()), "lowest validation error", **val)
    bi, ci = candidates.index(base), candidates.index(best)
    diffs = (per_cfg[bi] - per_cfg[ci]) if per_cfg.shape[1] >= 3 else (masked[bi] - masked[ci])[usable]
    margin = scores[base] - scores[best]
    se = float(diffs.std(ddof=1) / np.sqrt(diffs.size)) if diffs.size >= 2 else float("inf")
    if margin > se:
        return LawSelection(best, candidates, big_k, vk, draws, scores, margin, se, int(scored.sum()),
                            f"lowest validation error, {margin:.3f} below {base} (> 1 SE = {se:.3f})", **val)
    return LawSelection(base, candidates, big_k, vk, draws, scores, margin, se, int(scored.sum()),
                        f"{best} scored {margin:.3f} lower, within one standard error ({se:.3f}): kept {base}", **val)


def resample_counts(n: np.ndarray, c: np.ndarray, rng: np.random.Generator, resample: str = "both"
                    ) -> tuple[np.ndarray, np.ndarray]:
    """One bootstrap replicate of per-prompt counts: prompts drawn with replacement (``"prompts"``),
    each prompt's samples drawn with replacement, c* ~ Binomial(n, c/n) (``"samples"``), or both.

    >>> n, c = np.full(4, 10), np.array([0, 10, 0, 10])
    >>> nb, cb = resample_counts(n, c, np.random.default_rng(0), "samples"); cb.tolist()
    [0, 10, 0, 10]
    """
    if resample not in RESAMPLING:
        raise TtsplanError(f"resample must be one of {', '.join(RESAMPLING)}, got {resample!r}."
                           f"{did_you_mean(resample, RESAMPLING)}")
    n = np.asarray(n, dtype=np.int64)
    c = np.asarray(c, dtype=np.int64)
    idx = rng.integers(0, n.size, n.size) if resample in ("both", "prompts") else np.arange(n.size)
    nb, cb = n[idx], c[idx]
    if resample in ("both", "samples"):
        cb = rng.binomial(nb, cb / nb)
    return nb, cb


def _centred_interval(boots: np.ndarray, point: float, confidence: float) -> tuple[float, float]:
    """Percentile interval of ``boots`` shifted so that their median is ``point``, clipped to [0, 1].

    Resampling a prompt's samples with replacement repeats some of them, which lowers every pass@k
    estimate (fewer distinct samples); the shift removes that bias from the interval's location.
    """
    shifted = boots - np.median(boots) + point
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(shifted, [alpha, 1 - alpha])
    return float(np.clip(min(lo, point), 0, 1)), float(np.clip(max(hi, point), 0, 1))


def bootstrap_pass_interval(law: str, groups: Sequence[tuple[np.ndarray, np.ndarray]], predict_k: int,
                            points: Sequence[float], n_boot: int = 200, seed: int = 0,
                            confidence: float = DEFAULT_CONFIDENCE,
                            resample: str = "prompts") -> list[tuple[float, float, int]]:
    """Bootstrap interval for pass@``predict_k`` of ``law`` on each ``(n, c)`` group.

    Each replicate resamples every group with :func:`resample_counts` and refits the law (a pooled law
    jointly over all groups). ``resample="prompts"`` (default) draws prompts with replacement: each
    prompt's count already carries the chance in its own attempts, so this bootstrap holds both the
    prompt sample and the attempt sample. ``"both"`` also redraws every prompt's attempts, which
    counts the attempt noise twice: wider intervals (Pythia MATH, 100 → 10,000: 97% coverage against
    94% for ``"prompts"``, docs/fitting.md). Returns ``(low, high, replicates used)`` per group, centred
    on ``points`` (:func:`_centred_interval`); ``(nan, nan, used)`` when fewer than half of the
    replicates could be fitted.

    >>> rng = np.random.default_rng(1); n = np.full(200, 100); c = rng.binomial(n, rng.beta(0.5, 5, 200))
    >>> p = float(AggregatePowerLaw(n_boot=0).fit(n, c).predict([1000])[0])
    >>> lo, hi, used = bootstrap_pass_interval("aggregate_power_law", [(n, c)], 1000, [p], n_boot=50)[0]
    >>> lo <= p <= hi and used == 50
    True
    """
    if not 0 < confidence < 1:
        raise TtsplanError(f"confidence must be strictly between 0 and 1, got {confidence}.")
    rng = np.random.default_rng([seed, 104729])
    boots: list[list[float]] = [[] for _ in groups]
    with threadpool_limits(1):
        for _ in range(n_boot):
            reps = [resample_counts(n, c, rng, resample) for n, c in groups]
            for j, pred in enumerate(_predict_groups(law, reps, [predict_k])):
                if not isinstance(pred, str) and np.isfinite(pred[0]):
                    boots[j].append(float(pred[0]))
    out = []
    for j, b in enumerate(boots):
        if n_boot <= 0 or len(b) < max(2, n_boot / 2) or not np.isfinite(points[j]):
            out.append((float("nan"), float("nan"), len(b)))
        else:
            out.append((*_centred_interval(np.asarray(b), float(points[j]), confidence), len(b)))
    return out


def _cloglog(p: np.ndarray | float) -> np.ndarray:
    """log(−log(1 − p)), p clipped to [1e-12, 1 − 1e-12]: for one success rate shared by every prompt,
    cloglog(pass@k) = log k + cloglog(p) is linear in log k, so errors on this scale are comparable across k."""
    q = np.clip(np.asarray(p, dtype=float), 1e-12, 1 - 1e-12)
    return np.log(-np.log1p(-q))


def _inv_cloglog(x: np.ndarray | float) -> np.ndarray:
    return -np.expm1(-np.exp(np.asarray(x, dtype=float)))


def model_error_halfwidth(selection: LawSelection, law: str, predict_k: int,
                          confidence: float = DEFAULT_CONFIDENCE) -> float:
    """Half-width, on the cloglog scale, that the law's own extrapolation error adds at ``predict_k``.

    Measured inside the observed range only, from the validation :func:`select_law` already ran: ``law``
    fitted on ``val_k`` samples per prompt predicted pass@K of the K = ``fit_k`` samples it could not see.
    Per config, the signed error on the cloglog scale is averaged over the validation draws (the law's
    own error; the fit noise of one draw mostly averages out); the split-conformal quantile (level
    ``confidence``) of its absolute value over the table's scored configs is the error one
    extrapolation of log(K / val_k) makes, and it is scaled linearly to the distance
    log(``predict_k`` / K) of the real extrapolation. NaN where nothing was scored (no validation
    possible). The target value never enters.

    >>> rng = np.random.default_rng(0); k = np.full(300, 200)
    >>> groups = [(k, rng.binomial(k, rng.beta(0.4, 4.0, 300))) for _ in range(3)]
    >>> sel = select_law(groups, draws=3)
    >>> h = model_error_halfwidth(sel, sel.law, 20_000); bool(0 < h < 5)
    True
    """
    pred = selection.val_predictions.get(law)
    if pred is None or selection.val_truth.size == 0 or selection.val_k < 2 or predict_k <= selection.fit_k:
        return float("nan")
    signed = _cloglog(pred) - _cloglog(selection.val_truth)[None, :]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        bias = np.nanmean(signed, axis=0)  # per config: the law's error, one draw's fit noise averaged out
    err = np.abs(bias[np.isfinite(bias)])
    if err.size == 0:
        return float("nan")
    level = min(1.0, np.ceil((err.size + 1) * confidence) / err.size)
    q = float(np.quantile(err, level, method="higher"))
    return q * float(np.log(predict_k / selection.fit_k) / np.log(selection.fit_k / selection.val_k))


def _widen(point: float, lo: float, hi: float, half: float) -> tuple[float, float]:
    """The bootstrap interval [lo, hi] and the model-error half-width ``half`` (cloglog scale) around
    ``point`` added in quadrature on the cloglog scale (independent errors: sampling and law)."""
    if not np.isfinite(half) or half <= 0:
        return lo, hi
    g, gl, gh = _cloglog(point), _cloglog(lo), _cloglog(hi)
    new_lo = float(_inv_cloglog(g - np.hypot(g - gl, half))) if lo > 0 else 0.0
    new_hi = float(_inv_cloglog(g + np.hypot(gh - g, half)))
    return min(lo, new_lo), max(hi, new_hi)


def homogeneity_pvalue(c: np.ndarray, sims: int = 2000, seed: int = 0) -> float:
    """P-value of "every prompt has the same success rate" for per-prompt correct counts ``c`` (equal n).

    Statistic: Σ c_i² (the index of dispersion for fixed total); null distribution by simulation,
    spreading the observed total over the prompts uniformly (multinomial). Large values (sparse data,
    e.g. one success in 128 prompts) mean the counts cannot tell a few easy prompts from many prompts
    with one small shared rate, and pass@N at large N differs by an order of magnitude between the two.

    >>> round(homogeneity_pvalue(np.array([1] + [0] * 127)), 2), homogeneity_pvalue(np.array([50, 0, 0, 0] * 32)) < 0.01
    (1.0, True)
    """
    c = np.asarray(c, dtype=np.int64)
    total = int(c.sum())
    if total <= 1 or c.size < 2:
        return 1.0
    stat = float((c.astype(float) ** 2).sum())
    rng = np.random.default_rng([seed, 65537])
    null = (rng.multinomial(total, np.full(c.size, 1.0 / c.size), size=sims).astype(float) ** 2).sum(axis=1)
    return float((1 + (null >= stat - 1e-9).sum()) / (sims + 1))


def _homogeneous_interval(groups: Sequence[tuple[np.ndarray, np.ndarray]], predict_k: int, n_boot: int, seed: int,
                          confidence: float, resample: str) -> list[tuple[float, float]]:
    """Interval of pass@N = 1 − (1 − p̂)^N, p̂ the pooled rate Σc/Σn, over the same bootstrap replicates."""
    rng = np.random.default_rng([seed, 104729])
    boots = np.empty((max(n_boot, 1), len(groups)))
    for b in range(max(n_boot, 1)):
        for j, (n, c) in enumerate(groups):
            nb, cb = resample_counts(n, c, rng, resample) if n_boot > 0 else (n, c)
            boots[b, j] = -np.expm1(predict_k * np.log1p(-min(cb.sum() / nb.sum(), 1 - 1e-12)))
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(boots, [alpha, 1 - alpha], axis=0)
    return list(zip(lo.tolist(), hi.tolist()))


_PER_LAW_SCHEMA = {"config": pl.String, "law": pl.String, "predicted": pl.Float64, "ci_low": pl.Float64,
                   "ci_high": pl.Float64, "actual": pl.Float64, "abs_error": pl.Float64}
_SELECTED_SCHEMA = {"config": pl.String, "dataset": pl.String, "law": pl.String, "predicted": pl.Float64,
                    "ci_low": pl.Float64, "ci_high": pl.Float64, "actual": pl.Float64, "abs_error": pl.Float64,
                    "covered": pl.Boolean, "solved_prompts": pl.Int64, "prompts": pl.Int64, "identified": pl.Boolean,
                    "model_halfwidth": pl.Float64}


@dataclass(frozen=True)
class PassExtrapolation:
    """Result of :func:`extrapolate_pass`.

    ``per_law``: every law on every config (``config, law, predicted, ci_low, ci_high, actual,
    abs_error``). ``selected``: the law chosen for the config's dataset (``law`` says which; another
    candidate, in validation order, where it could not be fitted), with its interval, whether the
    interval holds the actual value (``covered``) and how many prompts have a success among the fit-k
    samples (``solved_prompts`` of ``prompts``: below about 20 the data barely constrain pass@N).
    ``selections``: dataset → :class:`LawSelection`.
    """

    fit_k: int
    predict_k: int
    per_law: pl.DataFrame
    selected: pl.DataFrame
    selections: dict[str, LawSelection]
    confidence: float = DEFAULT_CONFIDENCE

    def summary(self) -> pl.DataFrame:
        """MAE per law and of the selected law, with the selected intervals' coverage and mean width."""
        rows = [{"law": law, "configs": int(g.height), "mae": float(g["abs_error"].mean()), "coverage": None,
                 "mean_width": None}
                for (law,), g in sorted(self.per_law.group_by("law"), key=lambda t: str(t[0][0]))]
        sel = self.selected
        if sel.height:
            cov = sel.filter(pl.col("covered").is_not_null())
            rows.append({"law": "selected", "configs": int(sel.height), "mae": float(sel["abs_error"].mean()),
                         "coverage": float(cov["covered"].cast(pl.Float64).mean()) if cov.height else None,
                         "mean_width": float((cov["ci_high"] - cov["ci_low"]).mean()) if cov.height else None})
        return pl.DataFrame(rows, schema={"law": pl.String, "configs": pl.Int64, "mae": pl.Float64,
                                          "coverage": pl.Float64, "mean_width": pl.Float64})


def _recorded_problems(per_config_min: pl.DataFrame, fit_k: int, predict_k: int) -> list[str]:
    """``fit-k`` and ``predict-k`` against the fewest samples a prompt records (columns config, m)."""
    fewest = per_config_min.sort(["m", "config"]).row(0, named=True)
    if fit_k > fewest["m"]:
        return [(f"fit-k must be <= the samples recorded per prompt, got fit-k={fit_k} but config "
                 f"{fewest['config']!r} records only {fewest['m']} on some prompt (the fewest). Pass --fit-k "
                 f"{fewest['m']} or less")]
    short = per_config_min.filter(pl.col("m") < predict_k).sort(["m", "config"])
    if short.height and predict_k > fit_k:
        ex = ", ".join(f"{r['config']} (min {r['m']})" for r in short.head(5).iter_rows(named=True))
        return [(f"every prompt must have at least predict-k={predict_k} samples to measure the actual value, got "
                 f"{short.height} config(s) with fewer: {ex}. Lower --predict-k")]
    return []


def _option_problems(fit_k: int, min_fit_k: int, predict_k: int, n_boot: int, confidence: float) -> list[str]:
    """The range checks extrapolate_pass and extrapolate_maj share (each message without the final period)."""
    problems = []
    if fit_k < min_fit_k:
        problems.append(f"fit-k must be >= {min_fit_k}, got {fit_k}")
    if predict_k <= fit_k:
        problems.append(f"predict-k must be larger than fit-k, got {predict_k} <= {fit_k}")
    if n_boot < 0:
        problems.append(f"n_boot must be >= 0, got {n_boot}")
    if not 0 < confidence < 1:
        problems.append(f"confidence must be strictly between 0 and 1, got {confidence}")
    return problems


def extrapolate_pass(counts: pl.DataFrame, fit_k: int, predict_k: int, laws: Sequence[str] = LAWS,
                     seed: int = 0, n_boot: int = 200, select: bool = True, confidence: float = DEFAULT_CONFIDENCE,
                     validation_draws: int = 10, resample: str = "prompts", model_error: bool = False
                     ) -> PassExtrapolation:
    """Extrapolate pass@``predict_k`` from ``fit_k`` samples per prompt, choose the law, give intervals.

    Per config: a hypergeometric subsample of ``fit_k`` of each prompt's recorded samples (seeded);
    every law in ``laws`` is fitted on it and predicts pass@``predict_k``; ``actual`` is the unbiased
    estimate from all recorded samples. Per dataset, :func:`select_law` picks one law from the fit-k
    subsamples alone (validation k = fit_k // 10). Intervals (``n_boot`` > 0, ``confidence``):
    :func:`bootstrap_pass_interval`, refitting each law per replicate. Where a config's counts cannot
    reject one success rate shared by every prompt (:func:`homogeneity_pvalue` ≥ ``HOMOGENEITY_ALPHA``:
    a handful of successes), pass@N is not identified (one shared rate predicts far more than a few
    easy prompts do): the selected row's interval is widened to also cover the shared-rate
    prediction 1 − (1 − p̂)^N over the same bootstrap replicates, ``identified`` is false and a
    warning says so. ``model_halfwidth`` is the selected law's in-range extrapolation error scaled to
    ``predict_k`` (:func:`model_error_halfwidth`, cloglog scale); with ``model_error=True`` the
    selected row's interval adds it to the bootstrap interval in quadrature (opt-in: on the Pythia
    tables it turns 69–94% coverage into 100% with intervals 4× wider, docs/fitting.md).

    >>> rng = np.random.default_rng(0); p = rng.beta(0.4, 4.0, 200)
    >>> t = pl.DataFrame({"config": ["a"] * 200, "prompt_id": [str(i) for i in range(200)],
    ...                   "samples": [1000] * 200, "correct_samples": rng.binomial(1000, p)})
    >>> res = extrapolate_pass(t, 100, 1000, n_boot=20, validation_draws=2)
    >>> res.selected["law"][0] in LAWS
    True
    """
    problems = []
    unknown = [law for law in laws if law not in ALL_LAWS]
    if unknown:
        problems.append(f"laws must be names from {', '.join(ALL_LAWS)}, got {unknown[0]!r}."
                        f"{did_you_mean(unknown[0], ALL_LAWS)}")
    if not laws:
        problems.append("laws must name at least one law, got none")
    problems += _option_problems(fit_k, 2, predict_k, n_boot, confidence)
    if resample not in RESAMPLING:
        problems.append(f"resample must be one of {', '.join(RESAMPLING)}, got {resample!r}")
    counts = split_configs_by_dataset(counts)
    problems += _recorded_problems(counts.group_by("config").agg(pl.col("samples").min().alias("m")), fit_k, predict_k)
    if problems:
        raise TtsplanError("; ".join(problems) + ".")
    laws = list(dict.fromkeys(laws))
    with threadpool_limits(1):
        return _extrapolate_pass(counts, fit_k, predict_k, laws, seed, n_boot, select, confidence,
                                 validation_draws, resample, model_error)


def _extrapolate_pass(counts: pl.DataFrame, fit_k: int, predict_k: int, laws: list[str], seed: int, n_boot: int,
                      select: bool, confidence: float, validation_draws: int, resample: str,
                      model_error: bool = False) -> PassExtrapolation:
    has_dataset = "dataset" in counts.columns
    data: dict[str, list[tuple[str, float, np.ndarray, np.ndarray]]] = {}
    for i, cfg in enumerate(sorted(counts["config"].unique().to_list())):
        sub = counts.filter(pl.col("config") == cfg)
        n_full = sub["samples"].to_numpy()
        c_full = sub["correct_samples"].to_numpy()
        actual = float(np.mean(pass_at_k(n_full, c_full, predict_k)))
        ds = sub["dataset"].drop_nulls() if has_dataset else pl.Series([], dtype=pl.String)
        data.setdefault(str(ds[0]) if ds.len() else "", []).append(
            (cfg, actual, *subsample_counts(n_full, c_full, fit_k, seed + i)))
    failures: list[str] = []
    rows: list[dict] = []
    selected_rows: list[dict] = []
    selections: dict[str, LawSelection] = {}
    for dataset, items in sorted(data.items()):
        groups = [(n, c) for _, _, n, c in items]
        preds: dict[str, list[np.ndarray | str]] = {law: _predict_groups(law, groups, [predict_k]) for law in laws}
        points = {law: [float(p[0]) if not isinstance(p, str) else float("nan") for p in preds[law]] for law in laws}
        intervals = {law: (bootstrap_pass_interval(law, groups, predict_k, points[law], n_boot, seed, confidence,
                                                   resample) if n_boot > 0 else
                           [(float("nan"), float("nan"), 0)] * len(groups)) for law in laws}
        for law in laws:
            for (cfg, actual, _, _), pred, (lo, hi, _) in zip(items, preds[law], intervals[law]):
                if isinstance(pred, str):
                    failures.append(f"config {cfg!r}, law {law}: not fitted ({pred})")
                    warnings.warn(failures[-1], UserWarning, stacklevel=2)
                    continue
                p = float(pred[0])
                rows.append({"config": cfg, "law": law, "predicted": p, "ci_low": None if np.isnan(lo) else lo,
                             "ci_high": None if np.isnan(hi) else hi, "actual": actual, "abs_error": abs(p - actual)})
        if not select:
            continue
        selection = select_law(groups, laws, seed=seed, draws=validation_draws)
        selections[dataset] = selection
        order = [selection.law] + sorted((x for x in laws if x != selection.law),
                                         key=lambda x: selection.scores.get(x, float("inf")))
        homog = [homogeneity_pvalue(c, seed=seed) for _, c in groups]
        equal_rate = (_homogeneous_interval(groups, predict_k, n_boot, seed, confidence, resample)
                      if n_boot > 0 and max(homog) >= HOMOGENEITY_ALPHA else None)
        for j, (cfg, actual, n, c) in enumerate(items):
            law = next((x for x in order if not isinstance(preds[x][j], str)), None)
            if law is None:
                continue
            p = points[law][j]
            lo, hi, _ = intervals[law][j]
            ok = not np.isnan(lo)
            half = model_error_halfwidth(selection, law, predict_k, confidence)
            if ok and model_error:
                lo, hi = _widen(p, lo, hi, half)
            identified = homog[j] < HOMOGENEITY_ALPHA
            if ok and not identified and equal_rate is not None:
                lo, hi = min(lo, equal_rate[j][0]), max(hi, equal_rate[j][1])
            if not identified:
                warnings.warn(f"config {cfg!r}: pass@{predict_k} is not identified by {fit_k} samples per prompt "
                              f"(the counts, {int(c.sum())} correct on {int((c > 0).sum())} of {c.size} prompts, "
                              f"cannot reject one success rate shared by every prompt; p = {homog[j]:.2f}). The "
                              f"interval spans both readings; sample more per prompt to narrow it.",
                              UserWarning, stacklevel=2)
            selected_rows.append({"config": cfg, "dataset": dataset or None, "law": law, "predicted": p,
                                  "ci_low": lo if ok else None, "ci_high": hi if ok else None, "actual": actual,
                                  "abs_error": abs(p - actual), "covered": bool(lo <= actual <= hi) if ok else None,
                                  "solved_prompts": int((c > 0).sum()), "prompts": int(c.size),
                                  "identified": identified, "model_halfwidth": half if np.isfinite(half) else None})
    if not rows:
        shown = "; ".join(failures[:4]) + (f"; … ({len(failures) - 4} more)" if len(failures) > 4 else "")
        raise TtsplanError(f"no law could be fitted to any configuration: {shown}")
    rows.sort(key=lambda r: (r["config"], laws.index(r["law"])))  # config-major, laws in the order asked
    return PassExtrapolation(fit_k, predict_k, pl.DataFrame(rows, schema=_PER_LAW_SCHEMA),
                             pl.DataFrame(selected_rows, schema=_SELECTED_SCHEMA), selections, confidence)


# ------------------------------------------------------------------------ majority vote: answer urn
def _ewens_ll(counts: np.ndarray, theta: float) -> float:
    """Σ over prompts of the Ewens log-probability of the cluster sizes in ``counts`` (prompts × slots),
    without the Σ log Γ(size) term that does not depend on θ."""
    m = counts.sum(axis=1)
    j = (counts > 0).sum(axis=1)
    return float((j * np.log(theta) + special.gammaln(theta) - special.gammaln(theta + m)).sum())


def _fit_theta(counts: np.ndarray) -> float:
    if not (counts.sum(axis=1) >= 2).any():
        return 1.0
    res = optimize.minimize_scalar(lambda x: -_ewens_ll(counts, float(np.exp(x))), bounds=(np.log(1e-3), np.log(1e4)),
                                   method="bounded")
    return float(np.exp(res.x))


def _fit_wrong(null: np.ndarray, wrong: np.ndarray) -> tuple[float, float]:
    """(θ_w, γ_0) of the wrong-answer urn: a Chinese restaurant process whose base measure puts mass γ_0
    on "no answer" (a class that never wins a vote) and the rest on new wrong answers."""
    if null.sum() == 0:
        return _fit_theta(wrong), 0.0
    if wrong.sum() == 0:
        return 1.0, 1.0 - 1e-6
    m = wrong.sum(axis=1) + null
    j = (wrong > 0).sum(axis=1)

    def nll(x: np.ndarray) -> float:
        th, g0 = float(np.exp(x[0])), float(special.expit(x[1]))
        return -float((j * np.log(th * (1 - g0)) + special.gammaln(null + th * g0) - special.gammaln(th * g0)
                       + special.gammaln(th) - special.gammaln(th + m)).sum())

    x0 = np.array([0.0, special.logit(np.clip(null.sum() / m.sum(), 1e-3, 1 - 1e-3))])
    res = optimize.minimize(nll, x0, method="L-BFGS-B", bounds=[(np.log(1e-3), np.log(1e4)), (-12.0, 12.0)])
    return float(np.exp(res.x[0])), float(special.expit(res.x[1]))


def _fit_urn(counts: np.ndarray, k: int) -> np.ndarray:
    """[α, β, θ_c, θ_w, γ_0] from prompts × (1 + 2k) class counts: column 0 = no answer, 1..k = correct
    answer strings, k+1..2k = wrong answer strings.

    α, β: Beta-binomial (correct or not); θ_c: a Chinese restaurant process over the correct strings;
    θ_w, γ_0: one over the wrong strings with a "no answer" atom (:func:`_fit_wrong`). (A mixture over θ_w
    per prompt was tried: worse on the sc40 tables, MAE 0.014 → 0.022, docs/fitting.md.)"""
    null, corr, wrong = counts[:, 0], counts[:, 1:k + 1], counts[:, k + 1:]
    c = corr.sum(axis=1)
    n = counts.sum(axis=1)
    total = int(n.sum())
    if c.sum() == 0:
        a, b = 0.5, 0.5 + total
    elif (c == n).all():
        a, b = 0.5 + total, 0.5
    else:
        a, b = fit_beta_binomial(n, c, hyperprior=_URN_HYPERPRIOR)
    th_w, g0 = _fit_wrong(null, wrong)
    return np.array([a, b, _fit_theta(corr), th_w, g0])


def _row_params(fit: np.ndarray, counts: np.ndarray, k: int, repeats: int, rng: np.random.Generator) -> np.ndarray:
    """(prompts · repeats) × 5 urn parameters, one row per simulated continuation (prompt-major)."""
    return np.tile(fit[:5], (counts.shape[0] * repeats, 1))


def _simulate_urn(counts: np.ndarray, k: int, params: np.ndarray, n_target: int, rng: np.random.Generator
                  ) -> np.ndarray:
    """Realised maj@``n_target`` of each row: its k observed samples plus ``n_target − k`` draws from the
    answer urn with that row's parameters (rows × 5: α, β, θ_c, θ_w, γ_0). Uniform tie-breaking (a tie
    scores the share of correct leaders), "no answer" never wins — as :func:`maj_at_k_prompt`."""
    rows = counts.shape[0]
    r = n_target - k
    a, b, th_c, th_w, g0 = (params[:, i] for i in range(5))
    null = counts[:, 0].astype(float)
    corr = np.zeros((rows, k + r))
    wrong = np.zeros((rows, k + r))
    corr[:, :k] = counts[:, 1:k + 1]
    wrong[:, :k] = counts[:, k + 1:]
    new_c = np.full(rows, k)
    new_w = np.full(rows, k)
    idx = np.arange(rows)
    width = 1 + 2 * (k + r)
    for step in range(r):
        t = k + step
        c_t = corr.sum(axis=1)
        w_t = t - c_t
        p_c = (a + c_t) / (a + b + t)
        wts = np.empty((rows, width))
        wts[:, 0] = (1 - p_c) * (null + th_w * g0) / (w_t + th_w)
        wts[:, 1:1 + k + r] = corr * (p_c / (c_t + th_c))[:, None]
        wts[:, 1 + k + r:] = wrong * ((1 - p_c) / (w_t + th_w))[:, None]
        wts[idx, 1 + new_c] += p_c * th_c / (c_t + th_c)
        wts[idx, 1 + k + r + new_w] += (1 - p_c) * th_w * (1 - g0) / (w_t + th_w)
        cum = np.cumsum(wts, axis=1)
        pick = (cum < (rng.random(rows) * cum[:, -1])[:, None]).sum(axis=1)
        pick = np.minimum(pick, width - 1)
        is_null = pick == 0
        is_c = (pick >= 1) & (pick < 1 + k + r)
        is_w = pick >= 1 + k + r
        null += is_null
        corr[idx[is_c], pick[is_c] - 1] += 1
        wrong[idx[is_w], pick[is_w] - 1 - k - r] += 1
        new_c += is_c & (pick - 1 == new_c)
        new_w += is_w & (pick - 1 - k - r == new_w)
    top = np.maximum(corr.max(axis=1), wrong.max(axis=1))
    lead_c = (corr == top[:, None]).sum(axis=1)
    lead_w = (wrong == top[:, None]).sum(axis=1)
    return np.where(top > 0, lead_c / np.maximum(lead_c + lead_w, 1), 0.0)


def _simulate_mean(counts: np.ndarray, k: int, params: np.ndarray, n_target: int, rng: np.random.Generator,
                   chunk_rows: int = 20_000) -> np.ndarray:
    out = np.empty(counts.shape[0])
    for s in range(0, counts.shape[0], chunk_rows):
        out[s:s + chunk_rows] = _simulate_urn(counts[s:s + chunk_rows], k, params[s:s + chunk_rows], n_target, rng)
    return out


def _class_counts(codes: np.ndarray, k: int) -> np.ndarray:
    """prompts × k sample codes (0 = no answer, 1..k correct strings, k+1..2k wrong) → class counts."""
    out = np.zeros((codes.shape[0], 1 + 2 * k))
    np.add.at(out, (np.repeat(np.arange(codes.shape[0]), codes.shape[1]), codes.ravel()), 1)
    return out


def _sample_codes(block: pl.DataFrame, k: int) -> tuple[list[str], np.ndarray]:
    """Per prompt (sorted), the code of each of its k samples: 0 no answer, 1.. correct answer strings
    (by first appearance), k+1.. wrong answer strings."""
    t = block.sort(["prompt_id", "sample_idx"]).with_columns(
        (pl.col("correct").fill_null(False) & pl.col("answer").is_not_null()).alias("_ok"))
    t = t.with_columns(pl.col("answer").rank("dense").over(["prompt_id", "_ok"]).alias("_cls"))
    t = t.with_columns(pl.when(pl.col("answer").is_null()).then(0)
                       .when(pl.col("_ok")).then(pl.col("_cls"))
                       .otherwise(pl.col("_cls") + k).cast(pl.Int64).alias("_code"))
    prompts = t["prompt_id"].unique(maintain_order=True).to_list()
    return prompts, t["_code"].to_numpy().reshape(len(prompts), k)


#: weak hyperprior (α + β)^−2.5 of the urn's Beta-binomial, as in the per-prompt success model
_URN_HYPERPRIOR = 2.5
_URN_PARAMS = ("alpha", "beta", "theta_correct", "theta_wrong", "gamma_null")


def _compress_counts(counts: np.ndarray, k: int, k_new: int) -> np.ndarray:
    """prompts × (1 + 2k) class counts of at most ``k_new`` samples per prompt → prompts × (1 + 2·k_new):
    the urn is exchangeable over answer strings, so only each class's size matters (sizes sorted down)."""
    corr = -np.sort(-counts[:, 1:k + 1], axis=1)[:, :k_new]
    wrong = -np.sort(-counts[:, k + 1:], axis=1)[:, :k_new]
    return np.concatenate([counts[:, :1], corr, wrong], axis=1)


def _urn_predict_interval(counts: np.ndarray, codes: np.ndarray, k: int, n_target: int, n_boot: int, sims: int,
                          confidence: float, resample: str, rng: np.random.Generator
                          ) -> tuple[np.ndarray, float, float, float, np.ndarray]:
    """(fitted parameters, mean maj@``n_target`` over ``sims`` continuations, interval low, high, the
    prompts × sims continuations) of the urn fitted on ``counts`` (codes: the same samples, prompts × k);
    the interval as :func:`extrapolate_maj`'s (NaN when ``n_boot`` is 0)."""
    par = _fit_urn(counts, k)
    n_p = counts.shape[0]
    sim = _simulate_mean(np.repeat(counts, sims, axis=0), k, _row_params(par, counts, k, sims, rng), n_target, rng)
    point = float(sim.mean())
    lo = hi = float("nan")
    if n_boot > 0:
        boot_rows = []
        for _ in range(n_boot):
            bc = codes[rng.integers(0, n_p, n_p)]
            if resample == "both":
                bc = np.take_along_axis(bc, rng.integers(0, k, bc.shape), axis=1)
            boot_rows.append(_row_params(_fit_urn(_class_counts(bc, k), k), counts, k, 1, rng))
        vals = _simulate_mean(np.tile(counts, (n_boot, 1)), k, np.concatenate(boot_rows), n_target, rng)
        lo, hi = _centred_interval(vals.reshape(n_boot, n_p).mean(axis=1), point, confidence)
    return par, point, lo, hi, sim.reshape(n_p, sims)


def _interval_score(truth: float, point: float, lo: float, hi: float) -> float:
    """How far ``truth`` lies from ``point`` in units of the interval's half on that side (≤ 1: inside)."""
    gap, side = (truth - point, hi - point) if truth >= point else (point - truth, point - lo)
    if gap <= 0:
        return 0.0
    return gap / side if side > 0 else float("inf")


def maj_validation_scores(codes: np.ndarray, fit_k: int, seed: int = 0, draws: int = 4, n_boot: int = 100,
                          sims: int = 20, confidence: float = DEFAULT_CONFIDENCE, resample: str = "prompts"
                          ) -> tuple[np.ndarray, np.ndarray]:
    """The urn checked inside the observed samples: fitted on ``fit_k // 2`` of each prompt's ``fit_k`` samples
    (a random half per draw), it predicts maj@``fit_k`` of all ``fit_k`` — known exactly, and the samples
    beyond ``fit_k`` never enter. Returns per draw the interval score (:func:`_interval_score`: the error in
    units of that validation's own bootstrap half-width, > 1 = not covered) and the signed error
    (predicted − truth). Empty when ``fit_k`` < 2.

    >>> codes = np.array([[1, 1, 3, 4]] * 30 + [[1, 2, 1, 3]] * 30)   # fit_k = 4: 1..4 correct, 5..8 wrong
    >>> z, err = maj_validation_scores(codes, 4, draws=2, n_boot=20, sims=5)
    >>> z.shape, bool(np.all(np.abs(err) < 1))
    ((2,), True)
    """
    val_k = fit_k // 2
    if val_k < 1 or draws < 1:
        return np.empty(0), np.empty(0)
    rng = np.random.default_rng([seed, 7919])
    counts = _class_counts(codes, fit_k)
    truth = float(_simulate_urn(counts, fit_k, np.zeros((counts.shape[0], 5)), fit_k, rng).mean())
    scores, errors = [], []
    for _ in range(draws):
        order = np.argsort(rng.random(codes.shape), axis=1)[:, :val_k]
        half = np.take_along_axis(codes, order, axis=1)
        vc = _compress_counts(_class_counts(half, fit_k), fit_k, val_k)
        # codes of the half in the val_k coding: expand the compressed class sizes back to one code per sample
        vcodes = np.repeat(np.tile(np.arange(1 + 2 * val_k), (vc.shape[0], 1)).ravel(),
                           vc.ravel().astype(int)).reshape(vc.shape[0], val_k)
        _, point, lo, hi, _ = _urn_predict_interval(vc, vcodes, val_k, fit_k, n_boot, sims, confidence, resample, rng)
        errors.append(point - truth)
        scores.append(_interval_score(truth, point, lo, hi) if np.isfinite(lo) else float("nan"))
    return np.asarray(scores), np.asarray(errors)


def stretch_interval(point: float, lo: float, hi: float, scale: float) -> tuple[float, float]:
    """[lo, hi] with both halves around ``point`` multiplied by ``scale`` (NaN or ≤ 1: unchanged), clipped to [0, 1].

    >>> [round(x, 3) for x in stretch_interval(0.5, 0.4, 0.55, 2.0)], stretch_interval(0.9, 0.8, 0.95, 3.0)[1]
    ([0.3, 0.6], 1.0)
    """
    if not np.isfinite(scale) or scale <= 1:
        return lo, hi
    return max(0.0, point - scale * (point - lo)), min(1.0, point + scale * (hi - point))


def maj_interval_scale(scores: np.ndarray, confidence: float = DEFAULT_CONFIDENCE) -> float:
    """Factor (≥ 1) by which the bootstrap interval's halves are stretched so that the in-range validation
    of :func:`maj_validation_scores` would have covered: the split-conformal quantile of the table's n scores
    (pooled over its configs and draws), the ⌈(n + 1) · ``confidence``⌉-th smallest (the largest when that
    exceeds n). NaN when nothing was scored.

    >>> maj_interval_scale(np.array([0.2, 0.5, 0.9, 2.0])), maj_interval_scale(np.array([0.1, 0.3]))
    (2.0, 1.0)
    """
    s = np.asarray(scores, dtype=float)
    s = s[~np.isnan(s)]
    if s.size == 0:
        return float("nan")
    rank = min(s.size, int(np.ceil((s.size + 1) * confidence)))  # the conformal order statistic, capped at the max
    return max(1.0, float(np.sort(s)[rank - 1]))


def extrapolate_maj(samples: pl.DataFrame, fit_k: int, predict_k: int, seed: int = 0, n_boot: int = 200,
                    confidence: float = DEFAULT_CONFIDENCE, resample: str = "prompts", sims: int = 100,
                    model_error: bool = True, validation_draws: int = 4) -> pl.DataFrame:
    """maj@``predict_k`` extrapolated from ``fit_k`` samples per prompt, with a prediction interval.

    Per config, each prompt's samples are put in a seeded random order; the first ``fit_k`` are the
    data, and ``actual`` is the exact maj@``predict_k`` (uniform tie-breaking) of the first
    ``predict_k`` — the fit samples and ``predict_k − fit_k`` more, as a user who sampled ``fit_k`` and
    then ``predict_k`` in all would see. The model is an answer urn per prompt: correct or not by a
    Beta-binomial Pólya urn (α, β per config), and which answer string by a Chinese restaurant process
    over the correct strings (θ_c) and over the wrong ones with a "no answer" atom (θ_w, γ_0); the
    parameters maximise the marginal likelihood of the fit samples. ``predicted`` is the mean over
    ``sims`` urn continuations per prompt. The interval (``n_boot`` > 0) refits the parameters on
    bootstrap replicates (prompts, and with ``resample="both"`` each prompt's fit samples, drawn with
    replacement) and draws one continuation of every prompt per replicate, so it carries both the
    parameter uncertainty and the chance in the samples not yet drawn; its median is moved to
    ``predicted``.

    In-range calibration (:func:`maj_validation_scores`, ``validation_draws`` per config, only when
    ``n_boot`` > 0): the urn fitted on half of each prompt's ``fit_k`` samples predicts maj@``fit_k`` of all
    of them, with its own bootstrap interval; :func:`maj_interval_scale` turns the errors, pooled over the
    table's configs, into the factor ``model_scale`` (≥ 1) that would have made those intervals cover.
    Samples beyond ``fit_k`` never enter. ``model_error=True`` (default) stretches both halves of every
    interval by that factor (:func:`stretch_interval`; sc40 maj@40 from 8: coverage 80% → 97%, default data
    maj@16 from 4: 82% → 98%, docs/fitting.md); the column is reported either way, and ``val_error`` is the
    config's mean signed in-range error (predicted − truth).

    Columns ``config, predicted, ci_low, ci_high, actual, abs_error, covered, prompts``, ``outcome_sd``
    (the standard deviation of the realised maj@``predict_k`` under the fitted urn from the unseen
    samples alone: even an exact model misses a single realisation by about 0.8 × that on average) and
    the fitted parameters.

    >>> rng = np.random.default_rng(0); rows = []
    >>> for i in range(60):
    ...     p = rng.beta(3, 2)
    ...     rows += [("c", f"q{i}", j, "A" if rng.random() < p else f"w{rng.integers(3)}") for j in range(12)]
    >>> t = pl.DataFrame(rows, orient="row", schema=["config", "prompt_id", "sample_idx", "answer"])
    >>> t = t.with_columns((pl.col("answer") == "A").alias("correct"))
    >>> r = extrapolate_maj(t, 4, 12, n_boot=20, sims=20)
    >>> bool(r["ci_low"][0] <= r["predicted"][0] <= r["ci_high"][0]), r["prompts"][0]
    (True, 60)
    """
    problems = _option_problems(fit_k, 1, predict_k, n_boot, confidence)
    if resample not in ("prompts", "both"):
        problems.append(f"resample must be 'prompts' or 'both' for maj, got {resample!r}")
    if sims < 1:
        problems.append(f"sims must be >= 1, got {sims}")
    if validation_draws < 0 or (model_error and validation_draws < 1):
        problems.append(f"validation_draws must be >= {1 if model_error else 0}"
                        f"{' with model_error' if model_error else ''}, got {validation_draws}")
    if model_error and fit_k < 2:
        problems.append(f"model_error (--model-error, the maj default) needs fit-k >= 2 (the in-range check fits "
                        f"on half of them), got fit-k={fit_k}; use model_error=False (--no-model-error)")
    if "answer" not in samples.columns or "sample_idx" not in samples.columns or not has_values(samples, "answer"):
        problems.append("maj needs a sample table with an answer column (one row per completion), got "
                        + ("a count table" if "correct_samples" in samples.columns else "no answers"))
    if problems:
        raise TtsplanError("; ".join(problems) + ".")
    table = split_configs_by_dataset(samples)
    per = table.group_by(["config", "prompt_id"]).len().group_by("config").agg(pl.col("len").min().alias("m"))
    problems = _recorded_problems(per, fit_k, predict_k)
    if problems:
        raise TtsplanError("; ".join(problems) + ".")
    rng = np.random.default_rng([seed, 31337])
    table = table.sort(["config", "prompt_id", "sample_idx"]).with_columns(
        pl.Series("_u", rng.random(table.height)))
    table = table.with_columns((pl.col("_u").rank("ordinal").over(["config", "prompt_id"]) - 1).alias("_r"))
    rows: list[dict] = []
    scores: list[np.ndarray] = []
    with threadpool_limits(1):
        for cfg in sorted(table["config"].unique().to_list()):
            sub = table.filter(pl.col("config") == cfg)
            truth_t = sub.filter(pl.col("_r") < predict_k)
            actual = float(prompt_curves(truth_t.drop("_u", "_r"), "maj", [predict_k])["value"].mean())
            fit_t = sub.filter(pl.col("_r") < fit_k).with_columns(pl.col("_r").alias("sample_idx"))
            _, codes = _sample_codes(fit_t, fit_k)
            counts = _class_counts(codes, fit_k)
            par, point, lo, hi, sim = _urn_predict_interval(counts, codes, fit_k, predict_k, n_boot, sims,
                                                            confidence, resample, rng)
            n_p = counts.shape[0]
            outcome_sd = float(np.sqrt(sim.var(axis=1, ddof=1 if sims > 1 else 0).sum()) / n_p)
            z, err = (maj_validation_scores(codes, fit_k, seed + len(rows), validation_draws, n_boot, min(sims, 20),
                                            confidence, resample) if n_boot > 0 else (np.empty(0), np.empty(0)))
            scores.append(z)
            rows.append({"config": cfg, "predicted": point, "ci_low": lo, "ci_high": hi, "actual": actual,
                         "abs_error": abs(point - actual), "prompts": n_p, "outcome_sd": outcome_sd,
                         "val_error": float(err.mean()) if err.size else None,
                         **dict(zip(_URN_PARAMS, par[:5].tolist()))})
    scale = maj_interval_scale(np.concatenate(scores), confidence) if scores else float("nan")
    for r in rows:
        lo, hi = r["ci_low"], r["ci_high"]
        ok = not np.isnan(lo)
        if ok and model_error:
            lo, hi = stretch_interval(r["predicted"], lo, hi, scale)
        r.update(ci_low=lo if ok else None, ci_high=hi if ok else None,
                 covered=bool(lo <= r["actual"] <= hi) if ok else None,
                 model_scale=scale if np.isfinite(scale) else None)
    schema = {"config": pl.String, "predicted": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64,
              "actual": pl.Float64, "abs_error": pl.Float64, "covered": pl.Boolean, "prompts": pl.Int64,
              "outcome_sd": pl.Float64, "model_scale": pl.Float64, "val_error": pl.Float64,
              **{p: pl.Float64 for p in _URN_PARAMS}}
    return pl.DataFrame(rows, schema=schema).select(list(schema))


__all__ = [
    "ALL_LAWS",
    "BASELINE_LAW",
    "LAWS",
    "POOLED_LAWS",
    "AggregatePowerLaw",
    "BetaLaw",
    "ExtrapolationWarning",
    "LawSelection",
    "MajoritySaturatingLaw",
    "PassExtrapolation",
    "PerProblemPowerLaw",
    "PooledBetaLaw",
    "ScalingFit",
    "bootstrap_pass_interval",
    "extrapolate_maj",
    "extrapolate_pass",
    "extrapolation_table",
    "maj_interval_scale",
    "maj_validation_scores",
    "fit_pass_laws",
    "fit_pooled_beta_binomial",
    "model_error_halfwidth",
    "per_problem_power_params",
    "resample_counts",
    "select_law",
    "stretch_interval",
    "subsample_counts",
    "subsample_samples",
]
