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
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from scipy import optimize, special, stats

from ttsplan.features.errors import TtsplanError, did_you_mean
from ttsplan.features.schema import has_values, split_configs_by_dataset

STRATEGIES = ("pass", "maj", "bon")
_MIN_CONC, _MAX_CONC = 1e-3, 1e6
_CHUNK_ELEMENTS = 2_000_000  # work-array size per chunk of prompts (maj/bon)


class DegenerateDataWarning(UserWarning):
    """The data cannot identify a model component; a stated fallback was used."""


# ------------------------------------------------------------------------------------- Beta-binomial
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
    bounds = [(-30.0, 30.0), (np.log(_MIN_CONC), np.log(_MAX_CONC))]
    res = optimize.minimize(nll, x0, jac=True, method="L-BFGS-B", bounds=bounds)
    m, s = special.expit(res.x[0]), float(np.exp(res.x[1]))
    return float(m * s), float((1 - m) * s)


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


def _check_strategy(strategy: str) -> None:
    if strategy not in STRATEGIES:
        raise TtsplanError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}."
                           f"{did_you_mean(str(strategy), STRATEGIES)}")


def _check_grid(n_grid: Sequence[int] | int) -> list[int]:
    grid = [n_grid] if isinstance(n_grid, (int, np.integer)) else list(n_grid)
    if not grid or any(int(x) != x or x < 1 for x in grid):
        raise TtsplanError(f"n_grid must be integers >= 1, got {n_grid!r}.")
    return [int(x) for x in grid]


# ------------------------------------------------------------------------------------ posteriors
@dataclass(frozen=True)
class PromptPosteriors:
    """Per-prompt Beta(a, b) posteriors of the success probability plus answer shape and rewards.

    ``rho``: share of the wrong mass on the modal wrong answer (None: maj unavailable);
    ``mu1``/``mu0``/``sigma``: Gaussian reward model per class (None: bon unavailable).
    """

    keys: pl.DataFrame
    a: np.ndarray
    b: np.ndarray
    rho: np.ndarray | None = None
    mu1: np.ndarray | None = None
    mu0: np.ndarray | None = None
    sigma: np.ndarray | None = None
    confidence: float = 0.9
    source: str = "labeled"
    notes: tuple[str, ...] = field(default=())
    quadrature_points: int = 12

    def __post_init__(self) -> None:
        problems = []
        if len(self.a) != self.keys.height or len(self.b) != self.keys.height:
            problems.append(f"a and b must have one value per prompt ({self.keys.height}), got {len(self.a)}/{len(self.b)}")
        if not (np.all(np.isfinite(self.a)) and np.all(self.a > 0) and np.all(np.isfinite(self.b)) and np.all(self.b > 0)):
            problems.append("a and b must be finite and > 0")
        if not 0 < self.confidence < 1:
            problems.append(f"confidence must be in (0, 1), got {self.confidence}")
        if not (isinstance(self.quadrature_points, int) and self.quadrature_points >= 1):
            problems.append(f"quadrature_points must be an integer >= 1, got {self.quadrature_points!r}")
        if problems:
            raise TtsplanError("PromptPosteriors: " + "; ".join(problems) + ".")

    @property
    def prompt_ids(self) -> np.ndarray:
        return self.keys["prompt_id"].to_numpy()

    @property
    def p_mean(self) -> np.ndarray:
        """Posterior mean success probability per prompt."""
        return self.a / (self.a + self.b)

    def p_quantile(self, q: float) -> np.ndarray:
        return stats.beta.ppf(q, self.a, self.b)

    def _value_at_p(self, strategy: str, p: np.ndarray, grid: list[int]) -> np.ndarray:
        p = np.clip(p, 1e-12, 1 - 1e-12)  # scipy's binomial pmf overflows for p within ~1e-300 of 0 or 1
        if strategy == "pass":
            return pass_at_n_point(p, grid)
        if strategy == "maj":
            if self.rho is None:
                raise TtsplanError("strategy 'maj' needs answers (a sample table with an \"answer\" column), got "
                                   "none. Use strategy 'pass' for count tables.")
            return maj_at_n_point(p, self.rho * (1 - p), grid)
        if self.mu1 is None:
            raise TtsplanError("strategy 'bon' needs rewards (column \"reward\"), got none. Score the samples "
                               "with a reward model or use 'maj' / 'pass'.")
        return bon_at_n_point(p, self.mu1, self.mu0, self.sigma, grid)

    def expected_accuracy(self, strategy: str, n_grid: Sequence[int] | int) -> np.ndarray:
        """Expected accuracy per prompt (prompts × len(n_grid)).

        pass: exact posterior expectation; maj/bon: the posterior of p is cut into ``quadrature_points``
        equal-probability bins, each represented by its conditional mean (so E[p], and maj@1 = pass@1,
        are exact), and the values there are averaged.
        """
        _check_strategy(strategy)
        grid = _check_grid(n_grid)
        if strategy == "pass":
            return pass_at_n_beta(self.a, self.b, grid)
        return np.mean([self._value_at_p(strategy, p, grid) for p in self.p_nodes()], axis=0)

    def p_nodes(self) -> np.ndarray:
        """Conditional means of p in ``quadrature_points`` equal-probability bins of each prompt's posterior
        (Q × prompts); their average is the posterior mean exactly."""
        q = self.quadrature_points
        edges = np.vstack([np.zeros_like(self.a)] + [self.p_quantile(j / q) for j in range(1, q)]
                          + [np.ones_like(self.a)])
        upper = special.betainc(self.a + 1, self.b, edges)  # P(p <= x) under Beta(a + 1, b)
        nodes = self.p_mean * q * np.diff(upper, axis=0)
        return np.clip(nodes, edges[:-1], edges[1:])

    def quantile_bounds(self, strategy: str, n_grid: Sequence[int] | int,
                        confidence: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Values at the equal-tailed posterior quantiles of p (lower, upper), each prompts × len(n_grid)."""
        _check_strategy(strategy)
        grid = _check_grid(n_grid)
        conf = self.confidence if confidence is None else confidence
        if not 0 < conf < 1:
            raise TtsplanError(f"confidence must be in (0, 1), got {conf}.")
        alpha = (1 - conf) / 2
        return (self._value_at_p(strategy, self.p_quantile(alpha), grid),
                self._value_at_p(strategy, self.p_quantile(1 - alpha), grid))

    def accuracy_bounds(self, strategy: str, n_grid: Sequence[int] | int,
                        confidence: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Equal-tailed credible bounds (lower, upper), each prompts × len(n_grid), widened to contain
        :meth:`expected_accuracy`."""
        lo, hi = self.quantile_bounds(strategy, n_grid, confidence)
        mid = self.expected_accuracy(strategy, n_grid)
        return np.minimum(lo, mid), np.maximum(hi, mid)

    def predict(self, strategy: str, n_grid: Sequence[int] | int) -> pl.DataFrame:
        """Long frame ``config, prompt_id, strategy, n, expected, lower, upper``."""
        grid = _check_grid(n_grid)
        mid = self.expected_accuracy(strategy, grid)
        lo, hi = self.accuracy_bounds(strategy, grid)
        rep = self.keys.select(pl.all().repeat_by(len(grid)).explode())
        return rep.with_columns(
            pl.lit(strategy).alias("strategy"),
            pl.Series("n", np.tile(np.asarray(grid, dtype=np.int64), self.keys.height)),
            pl.Series("expected", mid.ravel()), pl.Series("lower", lo.ravel()), pl.Series("upper", hi.ravel()))


# ------------------------------------------------------------------------------------ prompt stats
def prompt_counts(table: pl.DataFrame) -> tuple[pl.DataFrame, str]:
    """Per-prompt ``config, prompt_id, n, c`` (+ ``top_wrong``, ``n_wrong`` and reward stats for samples)."""
    kind = "counts" if "correct_samples" in table.columns else "samples"
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


def _shrunk_rho(top_wrong: np.ndarray, n_wrong: np.ndarray, kappa: float = 2.0) -> np.ndarray:
    """Share of wrong mass on the modal wrong answer, shrunk to the pooled share with ``kappa`` pseudo-samples."""
    pooled = top_wrong.sum() / n_wrong.sum() if n_wrong.sum() > 0 else 1.0
    return (top_wrong + kappa * pooled) / (n_wrong + kappa)


def _reward_model(stats_: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


# ------------------------------------------------------------------------------------ labeled model
class PromptSuccessModel:
    """Empirical-Bayes per-prompt success model (see the module docstring for the API).

    Parameters: ``confidence`` of the credible bounds; ``min_prompts`` per config for a fitted prior
    (smaller configs share the pooled prior of all prompts).
    """

    def __init__(self, confidence: float = 0.9, min_prompts: int = 5):
        self.confidence = confidence
        self.min_prompts = min_prompts

    def fit(self, table: pl.DataFrame) -> PromptSuccessModel:
        """Fit per-config Beta priors and per-prompt posteriors from a SampleTable or CountTable."""
        if not 0 < self.confidence < 1:
            raise TtsplanError(f"confidence must be in (0, 1), got {self.confidence}.")
        if int(self.min_prompts) < 1:
            raise TtsplanError(f"min_prompts must be >= 1, got {self.min_prompts}.")
        per, kind = prompt_counts(split_configs_by_dataset(table))
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
                rho[idx] = _shrunk_rho(tw[idx], (n - c)[idx])
        mu1 = mu0 = sigma = None
        if "r1_sum" in per.columns:
            mu1, mu0, sigma = np.empty_like(n), np.empty_like(n), np.empty_like(n)
            for cfg in set(configs.tolist()):
                idx = configs == cfg
                m1, m0, sd = _reward_model(per.filter(pl.Series(idx)))
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


# ------------------------------------------------------------------------------------ pilot model
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

    def __init__(self, k0: int = 4, alpha: float = 1.0, confidence: float = 0.9, seed: int = 0):
        self.k0 = k0
        self.alpha = alpha
        self.confidence = confidence
        self.seed = seed

    def fit(self, samples: pl.DataFrame) -> PilotSuccessModel:
        if "correct_samples" in samples.columns:
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

        def conc_nll(log_phi: float) -> float:
            phi = np.exp(log_phi)
            a, b = mu * phi, (1 - mu) * phi
            return -float((special.betaln(c + a, n - c + b) - special.betaln(a, b)).sum())

        r = optimize.minimize_scalar(conc_nll, bounds=(np.log(_MIN_CONC), np.log(_MAX_CONC)), method="bounded")
        self.concentration_ = float(np.exp(r.x))
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
