"""Per-prompt Beta posteriors of the success probability, and the expected accuracy (with credible bounds)
of pass@N, maj@N and BoN@N they imply: :class:`PromptPosteriors`, what both success models produce."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from scipy import special

from ttsplan.features.defaults import DEFAULT_CONFIDENCE
from ttsplan.features.errors import TtsplanError, did_you_mean
from ttsplan.fitting.success.at_n import bon_at_n_point, maj_at_n_point, pass_at_n_beta, pass_at_n_point

STRATEGIES = ("pass", "maj", "bon")


def check_strategy(strategy: str) -> None:
    """Raise unless ``strategy`` is one of :data:`STRATEGIES`."""
    if strategy not in STRATEGIES:
        raise TtsplanError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}."
                           f"{did_you_mean(str(strategy), STRATEGIES)}")


def check_grid(n_grid: Sequence[int] | int) -> list[int]:
    """``n_grid`` (one N or several) as a list of ints >= 1, or raise."""
    grid = [n_grid] if isinstance(n_grid, (int, np.integer)) else list(n_grid)
    if not grid or any(int(x) != x or x < 1 for x in grid):
        raise TtsplanError(f"n_grid must be integers >= 1, got {n_grid!r}.")
    return [int(x) for x in grid]


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
    confidence: float = DEFAULT_CONFIDENCE
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
        from scipy import stats  # ~0.3 s to import: only the commands that use it pay for it (DESIGN §1)
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
        check_strategy(strategy)
        grid = check_grid(n_grid)
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
        check_strategy(strategy)
        grid = check_grid(n_grid)
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
        grid = check_grid(n_grid)
        mid = self.expected_accuracy(strategy, grid)
        lo, hi = self.accuracy_bounds(strategy, grid)
        rep = self.keys.select(pl.all().repeat_by(len(grid)).explode())
        return rep.with_columns(
            pl.lit(strategy).alias("strategy"),
            pl.Series("n", np.tile(np.asarray(grid, dtype=np.int64), self.keys.height)),
            pl.Series("expected", mid.ravel()), pl.Series("lower", lo.ravel()), pl.Series("upper", hi.ravel()))


__all__ = ["STRATEGIES", "PromptPosteriors", "check_grid", "check_strategy"]
