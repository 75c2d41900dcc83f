"""The option grid: every candidate policy scored on every labeled prompt of a configuration.

For one configuration of a labeled SampleTable, :func:`score_policies` gives, per candidate policy
and per prompt, the expected accuracy, samples and output tokens:

* fixed ``majority N`` — the exact maj@N of the prompt's recorded samples (expectation over all
  N-subsets, ties broken uniformly; :func:`ttsplan.features.estimators.prompt_curves`), N samples,
  N × the prompt's mean output tokens;
* adaptive policies — replayed through :class:`~ttsplan.planner.adaptive.AdaptiveSession` (the object
  ``ttsplan run`` executes) over ``orders`` random sample orders, averaged per prompt; by default the
  ``regret`` rule (:class:`~ttsplan.planner.stopping.RegretRule`) at each threshold of
  ``ADAPTIVE_THRESHOLDS["regret"]``. Rules that read only the vote state (:func:`reads_vote_state`) are read
  off the session's vote :func:`trajectories`, one order at a time, which gives the session's results
  exactly (tests compare them) at a fraction of the cost; two-stage policies (``families``) go through
  the session itself.

No candidate has fitted parameters (the regret rule's flip cost is a fixed constant), so a prompt's
scores do not depend on the other prompts; what is fitted is the *choice* among candidates, which
:mod:`ttsplan.planner.crossfit` validates on held-out prompts. ``n_max`` is the most samples recorded
for every prompt; nothing is planned beyond it.

>>> import polars as pl
>>> from ttsplan.features.schema import validate_sample_table
>>> rows = [{"config": "c", "prompt_id": f"p{i}", "sample_idx": j, "answer": "a" if (i + j) % 4 else "b",
...          "correct": bool((i + j) % 4)} for i in range(6) for j in range(8)]
>>> grid = score_policies(validate_sample_table(pl.DataFrame(rows)), "c", orders=4)
>>> grid.n_max, [p.describe() for p in grid.policies][:2]
(8, ['majority N=1', 'majority N=2'])
>>> round(float(grid.accuracy[0].mean()), 4)  # pass@1 = 36 correct of 48
0.75
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import polars as pl
from ttsplan.features.errors import TtsplanError, did_you_mean
from ttsplan.features.estimators import prompt_curves
from ttsplan.planner.policies import AdaptivePolicy, FixedPolicy, Policy
from ttsplan.planner.replay import ConfigSamples, order_outcomes, prepare, sample_orders
from ttsplan.planner.stopping import HORIZON_MAX_N, make_rule
from ttsplan.planner.stopping import RULES as RULE_CLASSES

#: thresholds of the adaptive candidates (per rule)
ADAPTIVE_THRESHOLDS: dict[str, tuple[float, ...]] = {
    "horizon": (0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 0.995),
    "beta": (0.8, 0.85, 0.9, 0.95, 0.97, 0.99),
    "regret": (0.8, 0.9, 0.94, 0.96, 0.97, 0.98, 0.986, 0.99, 0.994, 0.996, 0.998),
    "pilot": (0.9, 0.95, 0.98, 0.99),
}
#: candidate families: fixed N, adaptive stopping (the :data:`RULES`), two-stage (a pilot of K0 samples,
#: then a per-prompt cap from the pilot's agreement: the ``pilot`` rule at each K0 of :data:`PILOT_K0`)
FAMILIES: tuple[str, ...] = ("fixed", "adaptive", "two-stage")
#: the default candidates. Two-stage policies are opt-in: on the sc40 tables and the default data they
#: change the held-out figures by less than their noise and make planning ~7x slower (docs/planner.md).
DEFAULT_FAMILIES: tuple[str, ...] = ("fixed", "adaptive")
PILOT_K0: tuple[int, ...] = (2, 4)
DEFAULT_ORDERS = 16
#: adaptive rule families among the default candidates. ``regret`` replaced ``horizon``: on held-out
#: prompts (benchmarks/plan_holdout.py) it saves more samples at an equal or smaller accuracy drop
#: (docs/adaptive.md, "Regret rule"); pass ``rules=("horizon",)`` to :func:`_candidates` for the old set.
RULES: tuple[str, ...] = ("regret",)


@dataclass(frozen=True)
class OptionGrid:
    """Per-prompt scores of every candidate policy on one configuration (rows: policies, columns: prompts)."""

    config: str
    prompt_ids: tuple[str, ...]
    policies: tuple[Policy, ...]
    accuracy: np.ndarray   # (policies, prompts) expected accuracy
    samples: np.ndarray    # (policies, prompts) expected samples
    tokens: np.ndarray     # (policies, prompts) expected output tokens
    majority: np.ndarray   # (n_max, prompts) exact maj@N for N = 1..n_max
    n_max: int
    orders: int
    #: priced unit (flops, eflops, seconds, usd) -> (policies, prompts) expected cost; see :func:`price_grid`
    costs: Mapping[str, np.ndarray] = field(default_factory=dict, compare=False)

    @property
    def reference(self) -> np.ndarray:
        """maj@n_max per prompt: the accuracy of spending every recorded sample."""
        return self.majority[self.n_max - 1]

    def index(self, policy: Policy) -> int:
        return self.policies.index(policy)

    def uniform_n(self, accuracy: float, rows: np.ndarray | None = None) -> int | None:
        """The smallest uniform majority N whose exact accuracy on ``rows`` (default all) reaches ``accuracy``."""
        maj = self.majority if rows is None else self.majority[:, rows]
        reach = np.flatnonzero(maj.mean(axis=1) >= accuracy - 1e-12)
        return int(reach[0]) + 1 if reach.size else None


def _config_table(table: pl.DataFrame, config: str) -> tuple[pl.DataFrame, int]:
    sub = table.filter(pl.col("config") == config)
    if sub.height == 0:
        raise TtsplanError(f"config must be in the table, got {config!r}.")
    problems = []
    if sub.get_column("answer").null_count() == sub.height:
        problems.append(f"configuration {config!r} must carry extracted answers (column answer), got none. "
                        "Extract answers first (ttsplan import does it).")
    nulls = sub.get_column("correct").null_count()
    if nulls:
        problems.append(f"configuration {config!r} must be graded for every sample to be planned on, got "
                        f"{nulls} null(s) in column correct. Grade them, or pass new prompts as --pilot-file.")
    if problems:
        raise TtsplanError(" ".join(problems))
    k = sub.group_by("prompt_id").len().get_column("len")
    n_max = int(k.min())
    if n_max < 2:
        raise TtsplanError(f"configuration {config!r} must have at least 2 samples per prompt to compare "
                           f"policies, got a prompt with {n_max}. Sample more (ttsplan sample --k 8).")
    return sub.filter(pl.col("sample_idx") < n_max), n_max


#: fixed N candidates (plus n_max itself); fewer candidates, less winner's curse in the choice
FIXED_GRID: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 40, 48, 64, 96, 128)


def check_families(families: Sequence[str]) -> tuple[str, ...]:
    """The candidate families, validated (names from :data:`FAMILIES`, at least one)."""
    fam = tuple(dict.fromkeys(str(f).strip() for f in families if str(f).strip()))
    bad = [f for f in fam if f not in FAMILIES]
    if bad or not fam:
        hint = did_you_mean(bad[0], FAMILIES) if bad else ""
        raise TtsplanError(f"policies must be among {', '.join(FAMILIES)}, got {', '.join(bad) or 'none'}.{hint} "
                           "Try --policies fixed,adaptive.")
    return fam


def _candidates(n_max: int, rules: Sequence[str] = RULES, extra_n: Sequence[int] = (),
                families: Sequence[str] = DEFAULT_FAMILIES) -> list[Policy]:
    """Candidates of ``families``; the majority N of ``extra_n`` (an objective's reference) always included."""
    fixed = {*(n for n in extra_n if 1 <= n <= n_max)}
    if "fixed" in families:
        fixed |= {*(g for g in FIXED_GRID if g < n_max), n_max}
    out: list[Policy] = [FixedPolicy("majority", n) for n in sorted(fixed)]
    if "adaptive" in families:
        for rule in rules:
            if not RULE_CLASSES[rule].uses_horizon or n_max <= HORIZON_MAX_N:
                out += [AdaptivePolicy(rule, t, 1, n_max) for t in ADAPTIVE_THRESHOLDS[rule]]
    if "two-stage" in families and n_max <= HORIZON_MAX_N:
        out += [AdaptivePolicy("pilot", t, k0, n_max) for k0 in PILOT_K0 if k0 < n_max
                for t in ADAPTIVE_THRESHOLDS["pilot"]]
    return out


@dataclass(frozen=True)
class Trajectories:
    """The session's vote state after each sample, per sample order: arrays (orders, prompts, cap + 1),
    index n = samples drawn so far (n = 0: nothing drawn)."""

    top: np.ndarray      # leader's votes
    second: np.ndarray   # runner-up's votes
    right: np.ndarray    # the leader (the answer the session would return) is correct
    tokens: np.ndarray   # output tokens of the first n samples
    leader: np.ndarray   # the leader's answer code (-1: no answer yet)
    caps: np.ndarray     # (prompts,) samples available, at most the cap


def trajectories(cs: ConfigSamples, perms: Sequence[np.ndarray], cap: int) -> Trajectories:
    """Feed each order's first ``cap`` samples to the session's vote update (:meth:`AdaptiveSession.tell_many`:
    a new leader needs strictly more votes, so ties keep the earlier leader; code -1 costs a sample
    and never votes) and record the state after every sample."""
    n_p, width = cs.codes.shape
    caps = np.minimum(cs.k, cap).astype(np.int64)
    shape = (len(perms), n_p, cap + 1)
    top, second = np.zeros(shape, np.int32), np.zeros(shape, np.int32)
    right, tokens = np.zeros(shape, bool), np.zeros(shape, np.int64)
    leader = np.full(shape, -1, np.int32)
    rows = np.arange(n_p)
    for o, perm in enumerate(perms):
        codes = np.take_along_axis(cs.codes, perm, axis=1)
        toks = np.take_along_axis(cs.tokens, perm, axis=1)
        counts = np.zeros((n_p, width), np.int32)
        t = np.zeros(n_p, np.int32)
        sec = np.zeros(n_p, np.int32)
        tc = np.full(n_p, -1, np.int32)
        for n in range(1, cap + 1):
            live = n <= caps
            cv = np.where(live, codes[:, min(n - 1, width - 1)], -1)
            valid = cv >= 0
            c = np.maximum(cv, 0)
            v = counts[rows, c] + valid
            counts[rows, c] = v
            is_top = valid & (tc == cv)
            new_top = valid & ~is_top & (v > t)
            sec = np.where(new_top, t, np.where(is_top | ~valid, sec, np.maximum(sec, v)))
            t = np.where(is_top | new_top, v, t)
            tc = np.where(new_top, cv, tc)
            top[o, :, n], second[o, :, n], leader[o, :, n] = t, sec, tc
            right[o, :, n] = np.where(tc >= 0, cs.correct[rows, np.maximum(tc, 0)], False)
            tokens[o, :, n] = tokens[o, :, n - 1] + np.where(live, toks[:, min(n - 1, width - 1)], 0)
    return Trajectories(top, second, right, tokens, leader, caps)


def reads_vote_state(policy: Policy) -> bool:
    """An adaptive policy whose rule decides from the vote state alone (see
    :meth:`~ttsplan.planner.stopping.StoppingRule.confidence_table`): replayable from trajectories."""
    return policy.kind == "adaptive" and RULE_CLASSES[policy.rule].reads_vote_state


def replay_table_rule(tr: Trajectories, policy: AdaptivePolicy) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What :func:`replay_prompts` gives for a policy that :func:`reads_vote_state`, read off the
    trajectories (identical results; one pass over the orders serves every threshold)."""
    rule = make_rule(policy.rule, policy.threshold, min_n=policy.min_n, max_n=policy.cap)
    return replay_confidence_table(tr, rule.confidence_table, rule.threshold, rule.min_n)


def replay_confidence_table(tr: Trajectories, table_for_cap: Callable[[int], np.ndarray], threshold: float,
                            min_n: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per prompt, averaged over the trajectories' orders: (accuracy, samples, output tokens) of stopping at
    the first n >= ``min_n`` with ``table_for_cap(cap)[top, second, n] >= threshold`` (or at the prompt's cap)."""
    n_o, n_p, width = tr.top.shape
    n = np.arange(width)
    stop = np.zeros(tr.top.shape, bool)
    for cap in np.unique(tr.caps).tolist():
        sel = tr.caps == cap
        table = table_for_cap(int(cap))
        h = min(int(cap), width - 1)
        t, b = np.minimum(tr.top[:, sel], h), np.minimum(tr.second[:, sel], h)
        stop[:, sel] = table[t, b, np.minimum(n, h)[None, None, :]] >= threshold
    stop[:, :, : max(min_n, 1)] = False
    stop |= n[None, None, :] >= tr.caps[None, :, None]
    first = stop.argmax(axis=2)[:, :, None]
    pick = (lambda a: np.take_along_axis(a, first, axis=2)[:, :, 0].mean(axis=0, dtype=float))
    return pick(tr.right), first[:, :, 0].mean(axis=0, dtype=float), pick(tr.tokens)


def _replay_table_policies(cs: ConfigSamples, perms: Sequence[np.ndarray], policies: Sequence[AdaptivePolicy]
                           ) -> dict[AdaptivePolicy, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """:func:`replay_table_rule` for every policy, one sample order at a time (memory: one order's
    trajectories), averaged over the orders exactly as :func:`replay_prompts` averages."""
    sums: dict[AdaptivePolicy, list[np.ndarray]] = {p: [np.zeros(len(cs.prompt_ids)) for _ in range(3)]
                                                    for p in policies}
    for perm in perms:
        for cap in sorted({p.cap for p in policies}):
            tr = trajectories(cs, [perm], cap)
            for p in policies:
                if p.cap == cap:
                    for total, value in zip(sums[p], replay_table_rule(tr, p)):
                        total += value
    return {p: tuple(total / len(perms) for total in sums[p]) for p in policies}


def replay_prompts(cs: ConfigSamples, policy: AdaptivePolicy, perms: Sequence[np.ndarray]
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per prompt, averaged over the sample orders ``perms``: (accuracy, samples, output tokens)."""
    rule = make_rule(policy.rule, policy.threshold, min_n=policy.min_n, max_n=policy.cap)
    runs = [order_outcomes(cs, rule, perm, policy.cap) for perm in perms]
    return tuple(np.mean([r[i] for r in runs], axis=0, dtype=float) for i in range(3))


def score_policies(table: pl.DataFrame, config: str, *, orders: int = DEFAULT_ORDERS, seed: int = 0,
                   policies: Sequence[Policy] | None = None, reference_n: int | None = None,
                   families: Sequence[str] = DEFAULT_FAMILIES) -> OptionGrid:
    """Score every candidate policy on every prompt (default: the candidates of ``families`` — majority N
    on :data:`FIXED_GRID` up to n_max, the adaptive grid, two-stage policies if asked — plus
    ``reference_n``, the objective's majority@N, which must be a candidate)."""
    if not (isinstance(orders, int) and orders >= 1):
        raise TtsplanError(f"orders must be a whole number >= 1, got {orders!r}.")
    families = check_families(families)
    sub, n_max = _config_table(table, config)
    (cs,) = prepare(sub, with_rewards=False)
    cands = (list(policies) if policies is not None
             else _candidates(n_max, extra_n=(reference_n or n_max,), families=families))
    maj = (prompt_curves(sub, "maj", range(1, n_max + 1)).sort(["prompt_id", "k"])
           .get_column("value").to_numpy().reshape(len(cs.prompt_ids), n_max).T.astype(float))
    mean_tokens = cs.tokens[:, :n_max].astype(float).mean(axis=1)
    perms = sample_orders(cs, orders, seed, salt=7)
    table_scores = _replay_table_policies(cs, perms, [p for p in cands if reads_vote_state(p)])
    acc, smp, tok = [], [], []
    for p in cands:
        if isinstance(p, FixedPolicy):
            if p.n > n_max:
                raise TtsplanError(f"policy {p.describe()} must use at most the {n_max} samples recorded per "
                                   f"prompt of {config!r}.")
            acc.append(maj[p.n - 1])
            smp.append(np.full(len(cs.prompt_ids), float(p.n)))
            tok.append(p.n * mean_tokens)
        elif p in table_scores:
            a, n, t = table_scores[p]
        else:
            a, n, t = replay_prompts(cs, p, perms)
        if p.kind == "adaptive":
            acc.append(a)
            smp.append(n)
            tok.append(t)
    return OptionGrid(config, tuple(cs.prompt_ids), tuple(cands), np.array(acc), np.array(smp), np.array(tok),
                      maj, n_max, orders)


def cost_at_samples(per_n: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """Cost of ``samples`` expected samples per prompt: ``per_n[N - 1, j]`` is prompt j's cost of N samples
    (N = 1..len(per_n)); linear between whole N, ``samples`` (..., prompts) clipped to [1, len(per_n)].

    >>> cost_at_samples(np.array([[1.0], [3.0], [4.0]]), np.array([[1.0], [2.5]])).ravel().tolist()
    [1.0, 3.5]
    """
    n_max = per_n.shape[0]
    s = np.clip(np.asarray(samples, dtype=float), 1.0, float(n_max))
    lo = np.floor(s).astype(int)
    hi = np.minimum(lo + 1, n_max)
    w = s - lo
    cols = np.broadcast_to(np.arange(per_n.shape[1]), s.shape)
    return per_n[lo - 1, cols] * (1.0 - w) + per_n[hi - 1, cols] * w


def price_grid(grid: OptionGrid, unit: str, per_n: np.ndarray) -> OptionGrid:
    """``grid`` with every policy priced in ``unit``: ``per_n[N - 1, j]`` is the cost of majority N on prompt j
    (N = 1..n_max); a policy costs :func:`cost_at_samples` at its expected samples on the prompt (exact for
    fixed N, and for adaptive policies whenever the price is affine in N).

    >>> g = OptionGrid("c", ("a",), (), np.zeros((2, 1)), np.array([[1.0], [2.5]]), np.zeros((2, 1)),
    ...                np.zeros((3, 1)), 3, 1)
    >>> price_grid(g, "usd", np.array([[1.0], [3.0], [4.0]])).costs["usd"].ravel().tolist()
    [1.0, 3.5]
    """
    per_n = np.asarray(per_n, dtype=float)
    if per_n.shape != (grid.n_max, len(grid.prompt_ids)):
        raise TtsplanError(f"per_n must have shape (n_max, prompts) = ({grid.n_max}, {len(grid.prompt_ids)}), got "
                           f"{per_n.shape}.")
    return replace(grid, costs={**grid.costs, unit: cost_at_samples(per_n, grid.samples)})


__all__ = ["ADAPTIVE_THRESHOLDS", "DEFAULT_FAMILIES", "DEFAULT_ORDERS", "FAMILIES", "PILOT_K0",
           "check_families", "cost_at_samples", "OptionGrid", "Trajectories", "price_grid",
           "reads_vote_state", "replay_confidence_table", "replay_prompts", "replay_table_rule", "score_policies", "trajectories"]
