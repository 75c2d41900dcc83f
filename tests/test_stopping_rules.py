"""The regret stopping rule against hand-computed cases, a Pólya-urn brute force, and a brute-force replay."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from test_adaptive import run_one  # tests/ is on sys.path under pytest

from ttsplan.features.errors import TtsplanError
from ttsplan.planner.adaptive import AdaptiveSession
from ttsplan.planner.option_grid import ADAPTIVE_THRESHOLDS, RULES, _candidates, replay_prompts
from ttsplan.planner.policies import AdaptivePolicy, policy_from_dict
from ttsplan.planner.replay import ConfigSamples
from ttsplan.planner.stopping import (REGRET_FLIP_COST, RegretRule, horizon_table, make_rule, regret_table,
                                      rule_from_dict)


def polya_regret(a: int, b: int, o: int, m: int, flip_cost: float) -> float:
    """Brute force in exact fractions: every sequence of the m remaining draws from the Pólya urn of
    Dirichlet(a+1, b+1, o+1); at the end E[p_B − p_A | draws] is the posterior mean difference.
    Returns 1 − (E[(p_B − p_A) 1{B wins}] + flip_cost · P(B wins)), a tie counting ½."""
    gain, flip = Fraction(0), Fraction(0)
    stack = [(a, b, o, m, Fraction(1))]
    while stack:
        x, y, z, left, p = stack.pop()
        if left == 0:
            share = Fraction(y - x, x + y + z + 3)  # E[p_B − p_A] after all draws
            if y > x:
                gain += p * share
                flip += p
            elif y == x:
                flip += p / 2
            continue
        w = x + y + z + 3
        stack += [(x + 1, y, z, left - 1, p * Fraction(x + 1, w)), (x, y + 1, z, left - 1, p * Fraction(y + 1, w)),
                  (x, y, z + 1, left - 1, p * Fraction(z + 1, w))]
    return float(1 - gain - Fraction(flip_cost).limit_denominator(10**6) * flip)


# -- the table ----------------------------------------------------------------------------------------
def test_regret_table_hand_cases():
    # horizon 2, one vote in: the last draw is the runner-up's w.p. 1/4 → a 1-1 tie: half a flip, and
    # equal posterior shares (gain 0): 1 − 0.1 · 1/8
    assert regret_table(2, 0.1)[1, 0, 1] == pytest.approx(1 - 0.1 / 8, abs=1e-14)
    # horizon 3, one vote in, two draws left from Dirichlet(2, 1, 1): B B w.p. 1·2/(4·5) = 1/10 → B wins
    # 2-1, posterior shares (2, 4, 1)/... : E[p_B − p_A] = (3 − 2)/6; B + rest w.p. 2·1·1/20 = 1/10 → tie.
    # gain = 1/10 · 1/6, flips = 1/10 + ½ · 1/10
    assert regret_table(3, 0.1)[1, 0, 1] == pytest.approx(1 - 1 / 60 - 0.1 * 0.15, abs=1e-14)
    # 1-1 after 2 samples, one draw left of 3, Dirichlet(2, 2, 1): B w.p. 2/5 → B wins, gain (3 − 2)/6;
    # rest w.p. 1/5 → tie
    assert regret_table(3, 0.1)[1, 1, 2] == pytest.approx(1 - (2 / 5) / 6 - 0.1 * (2 / 5 + 1 / 10), abs=1e-14)
    T = regret_table(5)
    assert T[5, 0, 5] == 1.0 and T[2, 1, 5] == 1.0  # at the horizon nothing can change
    assert T[1, 2, 3] == 0.0 and T[3, 3, 5] == 0.0  # impossible states (a < b, a + b > n)


@pytest.mark.parametrize("flip_cost", [0.0, 0.1, 0.35])
def test_regret_table_matches_polya_urn(flip_cost):
    H = 7
    T = regret_table(H, flip_cost)
    for a, b, n in [(0, 0, 0), (1, 0, 1), (1, 1, 2), (2, 0, 3), (2, 1, 3), (1, 0, 3), (3, 0, 3), (2, 2, 5),
                    (4, 1, 6), (3, 3, 6), (0, 0, 4)]:
        assert T[a, b, n] == pytest.approx(polya_regret(a, b, n - a - b, H - n, flip_cost), abs=1e-12), (a, b, n)


def test_regret_is_expected_gain_plus_flip_cost_times_horizon_flip():
    H = 12
    a, b, n = np.meshgrid(np.arange(H + 1), np.arange(H + 1), np.arange(H + 1), indexing="ij")
    valid = (b <= a) & (a + b <= n)
    gain = 1 - regret_table(H, 0.0)
    flip = 1 - horizon_table(H)
    assert np.allclose(regret_table(H, 0.25)[valid], (1 - gain - 0.25 * flip)[valid], atol=1e-13)
    assert np.all(gain[valid] >= -1e-15) and np.all(gain[valid] <= flip[valid] + 1e-15)


# -- stop decisions in a session ----------------------------------------------------------------------
def test_regret_hand_stop_decisions():
    # cap 3: after one vote, confidence 1 − 1/60 − 0.015 = 0.96833 — enough at 0.96, not at 0.97
    assert run_one("regret", "xxx", max_n=3, threshold=0.96).n[0] == 1
    assert run_one("regret", "xxx", max_n=3, threshold=0.97).n[0] == 2  # 2-0 with 1 left: nothing can flip
    # x, y: a 1-1 tie with one draw left has confidence 1 − (2/5)/6 − 0.1 · 1/2 = 0.8833: at 0.9 it runs
    # to the cap, at 0.88 it stops on the tie (min_n 2 skips the one-vote stop)
    s = run_one("regret", "xyx", max_n=3, threshold=0.9, min_n=2)
    assert s.n[0] == 3 and s.result()["answer"][0] == "x"  # (at the cap the confidence is 1: a rule stop)
    assert run_one("regret", "xyx", max_n=3, threshold=0.88, min_n=2).n[0] == 2
    # cap 40, default threshold 0.99: 3 unanimous votes give 0.98726, 4 give 0.99495
    assert regret_table(40)[3, 0, 3] < 0.99 <= regret_table(40)[4, 0, 4]
    s = run_one("regret", ["7"] * 40, max_n=40)
    assert s.n[0] == 4 and s.result()["stopped"][0] == "rule"


def test_regret_stops_a_close_race_that_horizon_keeps_running():
    # after 19 samples, 10 vs 9: the leader may well lose (horizon 0.62) but only by a hair
    # (regret confidence 0.925): at 0.9 the regret rule stops, the horizon rule does not
    answers = ["a", "b"] * 9 + ["a"]
    assert run_one("regret", answers + ["a"] * 21, max_n=40, threshold=0.9, min_n=19).n[0] == 19
    assert run_one("horizon", answers + ["a"] * 21, max_n=40, threshold=0.9, min_n=19).n[0] > 19


def brute_force_replay(codes: np.ndarray, caps: np.ndarray, correct: np.ndarray, threshold: float,
                       min_n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per prompt, one sample at a time in pure Python: counts, the leader (changes only when passed),
    the runner-up count, the Pólya-urn confidence with the prompt's cap as horizon; stop at confidence
    ≥ threshold (from min_n on) or at the cap. Returns (samples, correct 0/1)."""
    n_used, acc = [], []
    for p in range(codes.shape[0]):
        counts: dict[int, int] = {}
        leader = -1
        cap = int(caps[p])
        for n in range(1, cap + 1):
            c = int(codes[p, n - 1])
            if c >= 0:
                counts[c] = counts.get(c, 0) + 1
                if leader < 0 or counts[c] > counts[leader]:
                    leader = c
            top = counts.get(leader, 0)
            second = max([v for k, v in counts.items() if k != leader], default=0)
            conf = polya_regret(top, second, n - top - second, cap - n, REGRET_FLIP_COST)
            if (n >= min_n and conf >= threshold) or n == cap:
                break
        n_used.append(n)
        acc.append(float(leader >= 0 and correct[p, leader]))
    return np.array(n_used, float), np.array(acc)


@pytest.mark.parametrize("threshold,min_n", [(0.97, 1), (0.99, 1), (0.995, 2)])
def test_session_replay_matches_brute_force(threshold, min_n):
    rng = np.random.default_rng(5)
    n_p, width = 40, 9
    k = rng.integers(4, width + 1, size=n_p).astype(np.int32)  # per-prompt caps 4 … 9 (k recorded)
    share = rng.dirichlet([0.6, 0.6, 0.6], size=n_p)
    raw = np.array([rng.choice(3, size=width, p=s) for s in share])
    raw[rng.random((n_p, width)) < 0.1] = -1  # no answer
    codes = np.full((n_p, width), -1, np.int32)
    for p in range(n_p):  # code by first appearance, padding past k
        order: dict[int, int] = {}
        for j in range(k[p]):
            if raw[p, j] >= 0:
                codes[p, j] = order.setdefault(int(raw[p, j]), len(order))
    correct = np.zeros((n_p, width), bool)
    correct[np.arange(n_p), 0] = rng.random(n_p) < 0.6  # the first answer seen is right for some
    cs = ConfigSamples("c", [f"q{i}" for i in range(n_p)], codes, correct, np.ones((n_p, width), np.int64), None, k)
    policy = AdaptivePolicy("regret", threshold, min_n, width)
    acc, smp, tok = replay_prompts(cs, policy, [np.tile(np.arange(width), (n_p, 1))])
    want_n, want_acc = brute_force_replay(codes, np.minimum(k, width), correct, threshold, min_n)
    assert smp.tolist() == want_n.tolist()
    assert acc.tolist() == want_acc.tolist()
    assert tok.tolist() == want_n.tolist()
    assert 0 < (want_n < k).sum() < n_p  # the case stops some prompts early and runs others to the cap


# -- registration: rule, policy, option grid ----------------------------------------------------------
def test_regret_is_registered_everywhere():
    rule = make_rule("regret", max_n=16)
    assert isinstance(rule, RegretRule) and (rule.threshold, rule.min_n, rule.max_n) == (0.99, 1, 16)
    assert rule_from_dict(make_rule("regret", 0.97, min_n=2).to_dict()) == make_rule("regret", 0.97, min_n=2)
    p = AdaptivePolicy("regret", 0.98, 1, 40)
    assert policy_from_dict(p.to_dict()) == p and p.describe() == "adaptive majority (regret ≥ 0.98, N 1–40)"
    assert RULES == ("regret",)
    cands = _candidates(40)
    assert [c.threshold for c in cands if c.kind == "adaptive"] == list(ADAPTIVE_THRESHOLDS["regret"])
    assert {c.rule for c in _candidates(40, ("horizon", "regret")) if c.kind == "adaptive"} == {"horizon", "regret"}
    assert not [c for c in _candidates(128) if c.kind == "adaptive"]  # its table stops at HORIZON_MAX_N
    with pytest.raises(TtsplanError, match="max_n must be <= 100"):
        make_rule("regret", max_n=101)
    with pytest.raises(TtsplanError, match=r"threshold \(1 - expected regret\) must be in \(0.5, 1\)"):
        make_rule("regret", 1.2)


def test_regret_session_resumes_exactly():
    rng = np.random.default_rng(3)
    ids = [f"q{i}" for i in range(20)]
    feed = {pid: [str(x) for x in rng.choice(3, 30, p=[0.6, 0.3, 0.1])] for pid in ids}
    a = AdaptiveSession("regret", ids, max_n=30, caps=rng.integers(5, 31, size=20))

    def step(s: AdaptiveSession) -> bool:
        batch = s.ask()
        for pid in batch:
            s.tell(pid, feed[pid][int(s.n[s._idx(pid)])])
        return bool(batch)

    for _ in range(3):
        step(a)
    b = AdaptiveSession.from_json(a.to_json())
    while step(a):
        pass
    while step(b):
        pass
    assert a.to_dict() == b.to_dict() and a.result().equals(b.result())
