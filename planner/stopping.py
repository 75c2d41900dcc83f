"""Stopping rules for adaptive self-consistency (DESIGN §8), evaluated vectorized over prompts.

Every rule has **one** knob (``threshold``), a minimum ``min_n`` (never stops before it) and a
maximum ``max_n`` (always stops there). A rule reads the per-prompt state arrays of an
:class:`ttsplan.planner.adaptive.AdaptiveSession` (``top`` / ``second`` vote counts, ``run_len``, weighted
votes, ``n``) and answers, for a batch of prompt indices, "stop now?".

=========  ==========================================================  ================  ======
rule       stops a prompt when …                                       knob (default)    min_n
=========  ==========================================================  ================  ======
beta       P(p_top > 1/2 | votes) ≥ threshold under the Beta(v1+1,      confidence 0.95   1
           v2+1) posterior of the top two answers (Adaptive-
           Consistency, Aggarwal et al. 2023, its Beta criterion)
horizon    P(the current leader still leads after the prompt's         confidence 0.95   1
           remaining samples, up to its cap) ≥ threshold, under the
           Dirichlet(v1+1, v2+1, rest+1) posterior predictive (a
           horizon-aware Dirichlet stop; ours)
esc        the last window of ``w`` answers (windows aligned at         window w = 5      w
           multiples of w) is unanimous (Early-Stopping SC, Li et
           al. 2024)
weighted   the Beta criterion on *reward-weighted* votes (weights in    confidence 0.95   1
           [0, 1]: a PRM probability or a sample confidence; no
           reward = weight 1)
pilot      after a pilot of ``min_n`` samples, a per-prompt cap from    confidence 0.95   4
           the estimated leader share q (Beta-binomial shrinkage, or
           any success model): the smallest n whose vote accuracy is
           within 1 − threshold of max_n's; inside the cap, horizon
budget     a global budget of ``threshold`` samples per prompt on       samples/prompt 12 2
           average; a prompt settles at horizon confidence ≥ 0.95;
           what settled prompts leave goes to the open ones, least
           settled first when the budget runs short
regret     1 − E[regret of stopping now vs. the vote at the cap] ≥     1 − regret 0.99   1
           threshold, same posterior as horizon; regret = the share
           the cap's winner would gain over the current leader +
           0.1 per changed answer (ours; the planner's default)
=========  ==========================================================  ================  ======

Beta criterion, exactly: with top count a and runner-up count b,
``P(X > 1/2)`` for ``X ~ Beta(a+1, b+1)``, which for integer counts equals ``P(Bin(a+b+1, 1/2) ≤ a)``.
Four unanimous votes give 31/32 = 0.969 ≥ 0.95, three give 15/16 = 0.9375.

>>> rule = make_rule("beta")
>>> float(beta_confidence(4, 0)), float(beta_confidence(3, 0))
(0.96875, 0.9375)
>>> rule.name, rule.threshold, rule.min_n, rule.max_n
('beta', 0.95, 1, 40)
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, ClassVar

import numpy as np
from scipy import special

from ttsplan.features.errors import TtsplanError, did_you_mean
from ttsplan.fitting.beta_binomial import fit_beta_prior  # method-of-moments prior (re-exported here)

#: per-prompt success estimate: ``(prompt_idx, pilot_agree, pilot_k) -> p`` in [0, 1].
SuccessEstimate = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]

#: largest max_n of the horizon-based rules (their exact table costs ~7 s to build at 100).
HORIZON_MAX_N = 100

#: horizon confidence at which the budget rule treats a prompt as settled.
BUDGET_SETTLED = 0.95

#: regret rule: the cost of a changed answer, in accuracy, on top of the expected share gain (fixed,
#: not fitted; 0.05 … 0.3 measure alike on held-out prompts, 0 is clearly worse — docs/adaptive.md).
REGRET_FLIP_COST = 0.1


def beta_confidence(a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
    """P(X > 1/2) for X ~ Beta(a + 1, b + 1); ``a`` top votes, ``b`` runner-up votes (real-valued ok).

    >>> round(float(beta_confidence(2, 1)), 4)  # P(Bin(4, 1/2) <= 2) = 11/16
    0.6875
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    return special.betainc(b + 1.0, a + 1.0, 0.5)


@lru_cache(maxsize=64)
def beta_table(max_n: int) -> np.ndarray:
    """``T[a, b]`` = :func:`beta_confidence` for integer counts 0..max_n (exact binomial CDF)."""
    from scipy import stats  # ~0.3 s to import: only the commands that use it pay for it (DESIGN §1)
    a = np.arange(max_n + 1)[:, None]
    b = np.arange(max_n + 1)[None, :]
    table = stats.binom.cdf(a, a + b + 1, 0.5)
    table.setflags(write=False)
    return table


def _race(horizon: int) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Per n = 0..horizon: the Dirichlet-multinomial race of :func:`horizon_table` and :func:`regret_table`.

    Yields ``(n, a, b, prob, d, total)``: the valid states (``a`` leader votes ≥ ``b`` runner-up votes,
    a + b ≤ n) as int arrays, ``prob[s, x, y]`` = P(the m = horizon − n remaining samples bring x to the
    leader, y to the runner-up) under Dirichlet(a+1, b+1, n−a−b+1), the final lead ``d = (a+x) − (b+y)``
    and ``total = n + 3 + m`` (the posterior-predictive pseudo-count after the horizon).
    """
    H = int(horizon)
    for n in range(H + 1):
        m = H - n
        a, b = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
        keep = (b <= a) & (a + b <= n)
        a, b = a[keep].astype(float), b[keep].astype(float)
        o = n - a - b
        x = np.arange(m + 1, dtype=float)[:, None]
        y = np.arange(m + 1, dtype=float)[None, :]
        z = m - x - y
        ok = z >= 0
        z = np.where(ok, z, 0.0)
        A = a + b + o + 3.0
        shape = (-1, 1, 1)
        al, bl, ol = (a + 1).reshape(shape), (b + 1).reshape(shape), (o + 1).reshape(shape)
        lp = (special.gammaln(m + 1.0) - special.gammaln(x + 1) - special.gammaln(y + 1) - special.gammaln(z + 1)
              + (special.gammaln(A) - special.gammaln(A + m)).reshape(shape)
              + special.gammaln(al + x) - special.gammaln(al) + special.gammaln(bl + y) - special.gammaln(bl)
              + special.gammaln(ol + z) - special.gammaln(ol))
        prob = np.where(ok, np.exp(lp), 0.0)
        d = (a.reshape(shape) + x) - (b.reshape(shape) + y)
        yield n, a.astype(int), b.astype(int), prob, d, A.reshape(shape) + m


@lru_cache(maxsize=256)
def horizon_table(horizon: int, tie: float = 0.5) -> np.ndarray:
    """``T[a, b, n]``: probability that the current leader (a votes; runner-up b; n samples so far,
    the other n − a − b on other answers or none) still leads after the remaining ``horizon − n``
    samples, ties counting ``tie``. Posterior predictive of Dirichlet(a+1, b+1, n−a−b+1) over
    (leader, runner-up, rest) — a Dirichlet-multinomial race; entries with a < b or a + b > n are 0.

    >>> T = horizon_table(4)
    >>> float(T[4, 0, 4])  # nothing left to draw
    1.0
    >>> round(float(T[1, 0, 3]), 4)  # 1 vote, 2 null samples, 1 draw left: 2/6 + 3/6 + ½·1/6
    0.9167
    """
    H = int(horizon)
    T = np.zeros((H + 1, H + 1, H + 1))
    for n, a, b, prob, d, _ in _race(H):
        T[a, b, n] = (prob * (d > 0)).sum(axis=(1, 2)) + tie * (prob * (d == 0)).sum(axis=(1, 2))
    T.setflags(write=False)
    return T


@lru_cache(maxsize=256)
def regret_table(horizon: int, flip_cost: float = REGRET_FLIP_COST) -> np.ndarray:
    """``T[a, b, n]`` = 1 − regret of stopping now instead of voting over all ``horizon`` samples, in the
    Dirichlet-multinomial race of :func:`horizon_table` (leader a, runner-up b, n samples so far):

    regret = E[(p_B − p_A) · 1{B wins at the horizon}] + ``flip_cost`` · P(B wins at the horizon),

    p_A, p_B the two answers' true shares (posterior Dirichlet(a+1, b+1, n−a−b+1)), a tie at the horizon
    counting ½. The first term is the vote share the horizon's winner would gain over the answer kept
    now — the expected accuracy lost if an answer is right with probability its share; a flip by a
    hair costs little, a flip by a wide margin much. The second charges each changed answer, which is
    what makes a shortfall against the full vote noisy to estimate. For integer states the first term
    is exact: E[p_B − p_A | x, y] = ((b+1+y) − (a+1+x)) / (n + 3 + m). Invalid entries are 0.

    >>> T = regret_table(2, flip_cost=0.1)
    >>> round(float(T[1, 0, 1]), 6)  # 1 draw left: runner-up w.p. 1/4 → tie (½ flip, equal shares)
    0.9875
    >>> round(float(regret_table(3, 0.0)[1, 0, 1]), 6)  # 2 left: B twice w.p. 1/10 → gain (3−2)/6
    0.983333
    """
    H = int(horizon)
    T = np.zeros((H + 1, H + 1, H + 1))
    for n, a, b, prob, d, total in _race(H):
        lose = d < 0
        gain = (prob * lose * (-d / total)).sum(axis=(1, 2))
        flip = (prob * lose).sum(axis=(1, 2)) + 0.5 * (prob * (d == 0)).sum(axis=(1, 2))
        T[a, b, n] = 1.0 - gain - float(flip_cost) * flip
    T.setflags(write=False)
    return T


def majority_accuracy(q: np.ndarray, n: np.ndarray | int) -> np.ndarray:
    """Two-answer model: P(the answer drawn with probability q wins a vote of n), ties count ½.

    >>> float(majority_accuracy(np.array([0.75]), 3)[0])  # 0.75^3 + 3·0.75²·0.25
    0.84375
    """
    from scipy import stats  # ~0.3 s to import: only the commands that use it pay for it (DESIGN §1)
    q = np.asarray(q, dtype=float)
    n = np.asarray(n)
    win = stats.binom.sf(np.floor(n / 2), n, q)
    tie = np.where(n % 2 == 0, stats.binom.pmf(n // 2, n, q), 0.0)
    return win + 0.5 * tie


def race_accuracy(q: np.ndarray, r: np.ndarray, n: int) -> np.ndarray:
    """Three-way vote model: P(answer A, drawn with probability q, beats answer B, drawn with r, in a
    vote of n samples; the rest never win), ties ½ (none counts 0). Vectorized over q, r.

    >>> round(float(race_accuracy(np.array([0.5]), np.array([0.5]), 2)[0]), 4)  # AA, AB/BA tie
    0.5
    >>> round(float(race_accuracy(np.array([0.6]), np.array([0.2]), 1)[0]), 4)  # only "A drawn" wins
    0.6
    """
    from scipy import stats  # ~0.3 s to import: only the commands that use it pay for it (DESIGN §1)
    q = np.asarray(q, dtype=float)[:, None]
    r = np.asarray(r, dtype=float)[:, None]
    x = np.arange(n + 1)[None, :]
    px = stats.binom.pmf(x, n, q)
    t = np.clip(r / np.maximum(1.0 - q, 1e-12), 0.0, 1.0)
    below = np.where(x > 0, stats.binom.cdf(x - 1, n - x, t), 0.0)
    tie = np.where(x > 0, stats.binom.pmf(x, n - x, t), 0.0)
    return (px * (below + 0.5 * tie)).sum(axis=1)


@dataclass(frozen=True)
class StoppingRule:
    """Base class: one knob ``threshold``, never stops before ``min_n``, always stops at ``max_n``."""

    threshold: float
    min_n: int
    max_n: int = 40

    name: ClassVar[str] = "base"
    knob: ClassVar[str] = ""
    #: the rule needs reward-weighted vote matrices / consecutive-run tracking / pilot caps.
    uses_weights: ClassVar[bool] = False
    uses_runs: ClassVar[bool] = False
    uses_pilot: ClassVar[bool] = False
    uses_horizon: ClassVar[bool] = False
    #: the decision reads only (top, second, n, cap): :meth:`confidence_table` gives it
    reads_vote_state: ClassVar[bool] = False

    def __post_init__(self) -> None:
        problems = []
        if not (isinstance(self.min_n, (int, np.integer)) and self.min_n >= 1):
            problems.append(f"min_n must be an integer >= 1, got {self.min_n!r}.")
        if not (isinstance(self.max_n, (int, np.integer)) and self.max_n >= 1):
            problems.append(f"max_n must be an integer >= 1, got {self.max_n!r}.")
        elif isinstance(self.min_n, (int, np.integer)) and self.min_n > self.max_n:
            problems.append(f"min_n must be <= max_n, got min_n={self.min_n} > max_n={self.max_n}. "
                            "Lower min_n or raise max_n.")
        if self.uses_horizon and isinstance(self.max_n, (int, np.integer)) and self.max_n > HORIZON_MAX_N:
            problems.append(f"max_n must be <= {HORIZON_MAX_N} for the {self.name} rule, got {self.max_n}. "
                            "Use the beta or esc rule for longer runs.")
        problem = self._check_threshold()
        if problem:
            problems.append(problem)
        if problems:
            raise TtsplanError(f"{self.name} rule: " + " ".join(problems))

    def _check_threshold(self) -> str | None:
        t = self.threshold
        if not (isinstance(t, (int, float, np.floating)) and 0.5 < float(t) < 1.0):
            return f"threshold ({self.knob}) must be in (0.5, 1), got {t!r}. Try 0.95."
        return None

    # -- vectorized decisions ------------------------------------------------------------------
    def confidence(self, s: Any, idx: np.ndarray) -> np.ndarray:
        """Posterior confidence that the current top answer is the majority answer."""
        return beta_table(s.max_n)[s.top[idx], s.second[idx]]

    def stop_mask(self, s: Any, idx: np.ndarray) -> np.ndarray:
        """Rule-specific stop decision for prompts ``idx`` (``min_n`` / caps are applied by the session)."""
        return s.stop_table[s.top[idx], s.second[idx]]

    def priority(self, s: Any, idx: np.ndarray) -> np.ndarray | None:
        """Order in which prompts get samples when the budget cannot cover all (lower first)."""
        return None

    def stop_table(self) -> np.ndarray:
        return beta_table(self.max_n) >= self.threshold

    def confidence_table(self, cap: int) -> np.ndarray | None:
        """``T[top, second, n]`` for a prompt whose cap is ``cap``, the rule stopping exactly when
        ``T >= threshold`` (from ``min_n`` on): rules that read only the vote state (beta, horizon,
        regret), which the option grid replays from vote trajectories. None for rules with more state."""
        return None

    def to_dict(self) -> dict:
        return {"rule": self.name, "threshold": float(self.threshold), "min_n": int(self.min_n),
                "max_n": int(self.max_n)}


@dataclass(frozen=True)
class BetaRule(StoppingRule):
    """Adaptive-Consistency Beta stop: P(p_top > 1/2 | a, b) ≥ threshold (paper default 0.95)."""

    threshold: float = 0.95
    min_n: int = 1
    name: ClassVar[str] = "beta"
    knob: ClassVar[str] = "posterior confidence"
    reads_vote_state: ClassVar[bool] = True

    def confidence_table(self, cap: int) -> np.ndarray:
        return np.broadcast_to(beta_table(cap)[:, :, None], (cap + 1, cap + 1, cap + 1))


def _per_cap_lookup(s: Any, idx: np.ndarray, table: Callable[[int], np.ndarray]) -> np.ndarray:
    """``table(cap)[top, second, n]`` per prompt, the horizon being each prompt's cap."""
    h = s.cap[idx]
    top, second, n = s.top[idx], s.second[idx], np.minimum(s.n[idx], h)
    out = np.empty(idx.size)
    for H in np.unique(h).tolist():
        sel = h == H
        T = table(int(H))
        out[sel] = T[np.minimum(top[sel], H), np.minimum(second[sel], H), n[sel]]
    return out


def horizon_confidence(s: Any, idx: np.ndarray) -> np.ndarray:
    """:func:`horizon_table` looked up per prompt, the horizon being each prompt's cap."""
    return _per_cap_lookup(s, idx, horizon_table)


class _VoteTableRule(StoppingRule):
    """A horizon-aware rule that stops when :meth:`confidence_table` at the prompt's cap reaches the threshold."""

    uses_horizon: ClassVar[bool] = True
    reads_vote_state: ClassVar[bool] = True

    def confidence(self, s: Any, idx: np.ndarray) -> np.ndarray:
        return _per_cap_lookup(s, idx, self.confidence_table)

    def stop_mask(self, s: Any, idx: np.ndarray) -> np.ndarray:
        return self.confidence(s, idx) >= self.threshold


@dataclass(frozen=True)
class HorizonRule(_VoteTableRule):
    """Dirichlet-multinomial horizon stop: P(the leader still leads at the prompt's cap) ≥ threshold."""

    threshold: float = 0.95
    min_n: int = 1
    name: ClassVar[str] = "horizon"
    knob: ClassVar[str] = "posterior predictive confidence"

    def confidence_table(self, cap: int) -> np.ndarray:
        return horizon_table(cap)


def regret_confidence(s: Any, idx: np.ndarray, flip_cost: float = REGRET_FLIP_COST) -> np.ndarray:
    """:func:`regret_table` looked up per prompt, the horizon being each prompt's cap."""
    return _per_cap_lookup(s, idx, lambda cap: regret_table(cap, flip_cost))


@dataclass(frozen=True)
class RegretRule(_VoteTableRule):
    """Expected-regret stop: 1 − regret ≥ threshold, regret = the vote share the cap's winner would gain
    over the current leader plus ``REGRET_FLIP_COST`` per changed answer (:func:`regret_table`).

    Unlike ``horizon`` (which charges every possible change of answer alike) it lets a prompt whose
    top two answers are close stop early: a flip between near-equal answers costs little accuracy.
    Same posterior and state as ``horizon`` (top, second, n, the prompt's cap); no fitted parameters.

    >>> from types import SimpleNamespace  # the session's state arrays, two prompts with cap 40
    >>> s = SimpleNamespace(top=np.array([3, 10]), second=np.array([0, 9]), n=np.array([3, 19]),
    ...                     cap=np.array([40, 40]))  # 3 of 3 unanimous; a 10-9 race after 19
    >>> [round(float(c), 4) for c in RegretRule().confidence(s, np.arange(2))]
    [0.9873, 0.9249]
    >>> [round(float(c), 4) for c in HorizonRule().confidence(s, np.arange(2))]  # P(the leader holds)
    [0.9486, 0.6229]
    >>> RegretRule(0.98).stop_mask(s, np.arange(2)).tolist()
    [True, False]
    """

    threshold: float = 0.99
    min_n: int = 1
    name: ClassVar[str] = "regret"
    knob: ClassVar[str] = "1 - expected regret"

    def confidence_table(self, cap: int) -> np.ndarray:
        return regret_table(cap, REGRET_FLIP_COST)


@dataclass(frozen=True)
class EscRule(StoppingRule):
    """Early-Stopping Self-Consistency: stop at a window boundary when the window is unanimous."""

    threshold: float = 5
    min_n: int = 0  # 0 → the window size
    name: ClassVar[str] = "esc"
    knob: ClassVar[str] = "window size"
    uses_runs: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if self.min_n == 0:  # default: one window (1 when the window itself is invalid)
            ok = self._check_threshold() is None
            object.__setattr__(self, "min_n", min(int(self.threshold), self.max_n) if ok else 1)
        super().__post_init__()

    def _check_threshold(self) -> str | None:
        t = self.threshold
        if not (isinstance(t, (int, float, np.integer, np.floating)) and float(t) == int(t) and int(t) >= 1):
            return f"threshold ({self.knob}) must be a whole number >= 1, got {t!r}. Try 5."
        object.__setattr__(self, "threshold", int(t))
        return None

    def stop_mask(self, s: Any, idx: np.ndarray) -> np.ndarray:
        w = int(self.threshold)
        return (s.n[idx] % w == 0) & (s.run_len[idx] >= w)

    def stop_table(self) -> np.ndarray:
        return beta_table(self.max_n) >= 0.95  # unused by the rule; kept for the confidence column


@dataclass(frozen=True)
class WeightedRule(StoppingRule):
    """Beta criterion on reward-weighted votes: P(X > 1/2), X ~ Beta(W_top + 1, W_second + 1)."""

    threshold: float = 0.95
    min_n: int = 1
    name: ClassVar[str] = "weighted"
    knob: ClassVar[str] = "posterior confidence"
    uses_weights: ClassVar[bool] = True

    def confidence(self, s: Any, idx: np.ndarray) -> np.ndarray:
        return beta_confidence(s.wtop[idx], s.wsecond[idx])

    def stop_mask(self, s: Any, idx: np.ndarray) -> np.ndarray:
        return self.confidence(s, idx) >= self.threshold


@lru_cache(maxsize=64)
def _cap_table(min_n: int, max_n: int, threshold: float, rho: float) -> np.ndarray:
    """Cap per leader share q on a 0.005 grid: min{n ≥ min_n : acc(max_n) − acc(n) ≤ 1 − threshold}."""
    q = np.linspace(0.0, 1.0, 201)
    r = rho * (1.0 - q)
    grid = np.arange(min_n, max_n + 1)
    acc = np.stack([race_accuracy(q, r, int(n)) for n in grid], axis=1)
    ok = (acc[:, -1:] - acc) <= (1.0 - threshold) + 1e-12
    return grid[np.argmax(ok, axis=1)].astype(np.int32)


@dataclass(frozen=True)
class PilotRule(StoppingRule):
    """Pilot cap: after ``min_n`` samples, cap = smallest n with vote gain to ``max_n`` ≤ 1 − threshold.

    The pilot leader's share q = top / n, shrunk towards a Beta prior fitted (method of moments) across
    the prompts finishing their pilot together — or a per-prompt success estimate from ``success`` —
    feeds a three-way vote model (leader q, runner-up ρ(1 − q) with ρ pooled over the pilots, the rest
    never wins; as in ``ttsplan.fitting.success``): cap = min{n ≥ min_n : acc(max_n) − acc(n) ≤ 1 − threshold}.
    Inside the cap the horizon criterion stops at ``threshold`` (its horizon being the cap).
    """

    threshold: float = 0.95
    min_n: int = 4
    success: SuccessEstimate | None = field(default=None, compare=False, repr=False)
    prior: tuple[float, ...] | None = None  # (alpha, beta[, rho]); None: fitted on the first pilots
    uses_horizon: ClassVar[bool] = True
    name: ClassVar[str] = "pilot"
    knob: ClassVar[str] = "confidence (cap: tolerated vote-accuracy loss 1 - threshold)"
    uses_pilot: ClassVar[bool] = True

    def caps(self, q: np.ndarray, rho: float = 0.5) -> np.ndarray:
        """Per-prompt cap for leader shares ``q``; the runner-up gets ``rho · (1 − q)``."""
        table = _cap_table(self.min_n, self.max_n, float(self.threshold), round(float(rho), 3))
        pos = np.clip(np.rint(np.asarray(q, dtype=float) * 200).astype(int), 0, 200)
        return table[pos]

    def estimate(self, idx: np.ndarray, agree: np.ndarray, k: np.ndarray,
                 prior: tuple[float, ...]) -> np.ndarray:
        """Leader share: ``success(idx, agree, k)`` or Beta-binomial shrinkage of ``agree / k``."""
        if self.success is not None:
            p = np.asarray(self.success(idx, agree, k), dtype=float)
            if p.shape != idx.shape or not np.all((p >= 0) & (p <= 1)):
                raise TtsplanError(f"pilot rule: success estimate must return {idx.shape[0]} values in "
                                   f"[0, 1], got shape {p.shape}. Check the success callable.")
            return p
        a, b = prior[0], prior[1]
        return (agree + a) / (k + a + b)

    def confidence(self, s: Any, idx: np.ndarray) -> np.ndarray:
        return horizon_confidence(s, idx)

    def stop_mask(self, s: Any, idx: np.ndarray) -> np.ndarray:
        return horizon_confidence(s, idx) >= self.threshold

    def to_dict(self) -> dict:
        out = super().to_dict()
        if self.prior is not None:
            out["prior"] = [float(x) for x in self.prior]
        return out


@dataclass(frozen=True)
class BudgetRule(StoppingRule):
    """Global budget of ``threshold`` samples per prompt on average. A prompt is settled (stops) when
    its horizon confidence reaches ``BUDGET_SETTLED``; the samples settled prompts do not use go to
    the open ones, and when the budget cannot cover every open prompt the least settled get them first."""

    threshold: float = 12.0
    min_n: int = 2
    uses_horizon: ClassVar[bool] = True
    name: ClassVar[str] = "budget"
    knob: ClassVar[str] = "mean samples per prompt"

    def _check_threshold(self) -> str | None:
        t = self.threshold
        if not (isinstance(t, (int, float, np.integer, np.floating)) and np.isfinite(float(t)) and float(t) >= 1):
            return f"threshold ({self.knob}) must be a number >= 1, got {t!r}. Try 12."
        return None

    def confidence(self, s: Any, idx: np.ndarray) -> np.ndarray:
        return horizon_confidence(s, idx)

    def stop_mask(self, s: Any, idx: np.ndarray) -> np.ndarray:
        return horizon_confidence(s, idx) >= BUDGET_SETTLED

    def priority(self, s: Any, idx: np.ndarray) -> np.ndarray:
        return horizon_confidence(s, idx)


RULES: dict[str, type[StoppingRule]] = {r.name: r for r in (BetaRule, HorizonRule, EscRule, WeightedRule,
                                                             PilotRule, BudgetRule, RegretRule)}
RULE_NAMES: tuple[str, ...] = tuple(RULES)


def make_rule(name: str | StoppingRule, threshold: float | None = None, *, min_n: int | None = None,
              max_n: int = 40, **extra: Any) -> StoppingRule:
    """Build a rule by name with its defaults; ``None`` keeps a default.

    >>> make_rule("esc", 4).min_n
    4
    >>> make_rule("betta")
    Traceback (most recent call last):
    ...
    ttsplan.features.errors.TtsplanError: rule must be one of beta, horizon, esc, weighted, pilot, budget, regret, got 'betta'. Did you mean "beta"?
    """
    if isinstance(name, StoppingRule):
        return name
    if name not in RULES:
        raise TtsplanError(f"rule must be one of {', '.join(RULE_NAMES)}, got {name!r}.{did_you_mean(str(name), RULE_NAMES)}")
    cls = RULES[name]
    kwargs: dict[str, Any] = {"max_n": int(max_n), **extra}
    if threshold is not None:
        kwargs["threshold"] = threshold
    if min_n is not None:
        kwargs["min_n"] = int(min_n)
    elif name == "pilot":
        kwargs["min_n"] = min(4, int(max_n))
    elif name == "budget":
        kwargs["min_n"] = min(2, int(max_n))
    return cls(**kwargs)


def rule_from_dict(d: dict) -> StoppingRule:
    """Inverse of :meth:`StoppingRule.to_dict`."""
    extra = {"prior": tuple(d["prior"])} if d.get("prior") is not None else {}
    return make_rule(d["rule"], d["threshold"], min_n=d["min_n"], max_n=d["max_n"], **extra)


#: default threshold grids for ``replay --sweep``.
SWEEP_GRIDS: dict[str, tuple[float, ...]] = {
    "beta": (0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.97, 0.99, 0.995),
    "horizon": (0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 0.995),
    "esc": (2, 3, 4, 5, 6, 8, 10),
    "weighted": (0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.97, 0.99, 0.995),
    "pilot": (0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.97, 0.99, 0.995),
    "budget": (4, 6, 8, 10, 12, 14, 16, 20),
    "regret": (0.8, 0.9, 0.94, 0.96, 0.97, 0.98, 0.986, 0.99, 0.994, 0.996, 0.998),
}

__all__ = ["StoppingRule", "BetaRule", "EscRule", "WeightedRule", "PilotRule", "BudgetRule", "RULES",
           "RULE_NAMES", "SWEEP_GRIDS", "make_rule", "rule_from_dict", "beta_confidence", "beta_table",
           "HorizonRule", "horizon_table", "horizon_confidence", "RegretRule", "regret_table",
           "regret_confidence", "REGRET_FLIP_COST",
           "majority_accuracy", "race_accuracy", "fit_beta_prior", "SuccessEstimate", "BUDGET_SETTLED", "HORIZON_MAX_N"]
