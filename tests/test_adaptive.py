"""AdaptiveSession and stopping rules against hand-computed cases and a brute-force reference."""
from __future__ import annotations

from collections import Counter

import numpy as np
import polars as pl
import pytest
from scipy import integrate

from ttsplan.features.errors import TtsplanError
from ttsplan.planner.adaptive import AdaptiveSession
from ttsplan.planner.stopping import (RULE_NAMES, beta_confidence, beta_table, fit_beta_prior, horizon_table,
                              majority_accuracy, make_rule, race_accuracy)


def run_one(rule, answers, **kw) -> AdaptiveSession:
    """Feed ``answers`` to a one-prompt session until it stops; returns the session."""
    s = AdaptiveSession(rule, ["p"], **kw)
    for a in answers:
        if not s.ask():
            break
        s.tell("p", a)
    return s


# -- Beta criterion -----------------------------------------------------------------------------------
def test_beta_confidence_matches_quadrature_and_binomial():
    for a, b in [(0, 0), (1, 0), (2, 1), (4, 0), (5, 3), (10, 7)]:
        num = integrate.quad(lambda x: x ** a * (1 - x) ** b, 0.5, 1)[0]
        den = integrate.quad(lambda x: x ** a * (1 - x) ** b, 0, 1)[0]
        assert beta_confidence(a, b) == pytest.approx(num / den, abs=1e-10)
        assert beta_table(12)[a, b] == pytest.approx(num / den, abs=1e-10)
    assert float(beta_confidence(2, 1)) == pytest.approx(11 / 16)
    assert float(beta_confidence(4, 0)) == pytest.approx(31 / 32)


def test_majority_accuracy_hand():
    # q = 0.75: n=1 .75; n=2 .5625 + .5 * .375; n=3 .84375
    assert majority_accuracy(np.array([0.75]), np.array([1, 2, 3])).tolist() == pytest.approx([0.75, 0.75, 0.84375])


# -- every rule: stops on unanimous early samples, never before min, respects max ----------------------
# horizon / budget / pilot (horizon 40): 3 unanimous votes give 0.9486 < 0.95, 4 give 0.9774;
# regret (threshold 0.99): 3 give 0.9873, 4 give 0.9950
UNANIMOUS_STOP = {"beta": 4, "horizon": 4, "esc": 5, "weighted": 4, "pilot": 4, "budget": 4, "regret": 4}


@pytest.mark.parametrize("rule", RULE_NAMES)
def test_rule_stops_on_unanimous_samples(rule):
    s = run_one(rule, ["7"] * 40, max_n=40)
    assert s.n[0] == UNANIMOUS_STOP[rule]
    res = s.result().row(0, named=True)
    assert res["answer"] == "7" and res["stopped"] == "rule" and res["samples"] == UNANIMOUS_STOP[rule]


@pytest.mark.parametrize("rule", RULE_NAMES)
def test_rule_never_stops_before_min(rule):
    s = run_one(rule, ["7"] * 40, max_n=40, min_n=9, **({"threshold": 12} if rule == "budget" else {}))
    assert s.n[0] == 9 if rule != "esc" else s.n[0] == 10  # esc: next window boundary (w = 5) after 9


@pytest.mark.parametrize("rule", RULE_NAMES)
def test_rule_respects_max(rule):
    answers = [str(i % 2) for i in range(40)]  # a 50/50 split never settles
    s = run_one(rule, answers, max_n=7, **({"threshold": 7} if rule == "budget" else {}))
    # pilot: a 2-2 pilot gives agreement q = 0.5, where more votes gain nothing → capped at the pilot
    assert s.n[0] == (4 if rule == "pilot" else 7)
    assert s.should_stop("p") and s.ask() == []
    for _ in range(7 - int(s.n[0])):  # in-flight samples past a cap are still counted, up to max_n
        s.tell("p", "0")
    with pytest.raises(TtsplanError, match="max_n"):
        s.tell("p", "0")


def test_esc_windows_are_aligned():
    # window 3: [a a b] [a a a] → the run of 3 a's at samples 4-6 stops at 6, not at 5
    s = run_one("esc", list("aabaaaaaa"), threshold=3, max_n=20)
    assert s.n[0] == 6


def test_esc_window_hand_cases():
    # [a b a] [b b b] → stops at 6; [a b a] [a b b] [b c c] → runs to max 9
    assert run_one("esc", list("ababbbccc"), threshold=3, max_n=9).n[0] == 6
    assert run_one("esc", list("abaabbbcc"), threshold=3, max_n=9).n[0] == 9


def test_weighted_rule_hand():
    # reward 0.5 each: P(Beta(W+1, 1) > 1/2) = 1 - 2^-(W+1) ≥ 0.95 needs W ≥ log2(20) - 1 = 3.32 → 7 samples
    s = AdaptiveSession("weighted", ["p"], max_n=40)
    k = 0
    while s.ask():
        s.tell("p", "x", reward=0.5)
        k += 1
    assert k == 7
    # three light votes for a (0.1) lose to two heavy votes for b (0.9)
    s = AdaptiveSession("weighted", ["p"], max_n=5)
    for a, r in [("a", 0.1), ("b", 0.9), ("a", 0.1), ("b", 0.9), ("a", 0.1)]:
        s.tell("p", a, reward=r)
    assert s.result()["answer"][0] == "b"
    assert AdaptiveSession("beta", ["p"], max_n=5).rule.name == "beta"


def test_pilot_caps_hand():
    # rho = 1: two answers, q vs 1 - q. q = 0.75: acc(1..3) = .75, .75, .84375 → gain to n=3 <= 0.05
    # only at n=3; q = 1 and q = 0.5 gain nothing → cap = min_n
    rule = make_rule("pilot", 0.95, min_n=1, max_n=3)
    assert rule.caps(np.array([0.75, 1.0, 0.5]), rho=1.0).tolist() == [3, 1, 1]
    q = np.array([0.3, 0.75, 0.9])
    for n in (1, 2, 3, 6):
        assert race_accuracy(q, 1 - q, n) == pytest.approx(majority_accuracy(q, n))


def polya_leader_stays(a: int, b: int, o: int, m: int) -> float:
    """Brute force: draw m more samples from a Pólya urn (Dirichlet(a+1, b+1, o+1) predictive)."""
    total = 0.0
    stack = [(a, b, o, m, 1.0)]
    while stack:
        x, y, z, left, p = stack.pop()
        if left == 0:
            total += p * (1.0 if x > y else 0.5 if x == y else 0.0)
            continue
        w = x + y + z + 3
        stack += [(x + 1, y, z, left - 1, p * (x + 1) / w), (x, y + 1, z, left - 1, p * (y + 1) / w),
                  (x, y, z + 1, left - 1, p * (z + 1) / w)]
    return total


def test_horizon_table_matches_polya_urn():
    T = horizon_table(8)
    for a, b, n in [(0, 0, 0), (1, 0, 1), (1, 0, 3), (2, 1, 3), (3, 0, 3), (2, 2, 5), (4, 1, 6), (3, 3, 6)]:
        assert T[a, b, n] == pytest.approx(polya_leader_stays(a, b, n - a - b, 8 - n), abs=1e-12)


def test_pilot_uses_success_estimate_and_prior():
    # a success model saying p = 0.75 caps every prompt at 3 (threshold 0.9, max 5), pilot of 1
    s = AdaptiveSession("pilot", ["a", "b"], max_n=5, min_n=1, threshold=0.9,
                        success=lambda idx, agree, k: np.full(idx.shape, 0.75))
    while batch := s.ask():
        for pid in batch:
            s.tell(pid, str(s.n[s._idx(pid)]))  # all answers distinct
    assert s.n.tolist() == [3, 3]
    assert s.result()["stopped"].to_list() == ["cap", "cap"]
    a, b = fit_beta_prior(np.array([4, 4, 2, 3, 1, 4]), np.full(6, 4))
    assert a / (a + b) == pytest.approx(0.75)


def test_budget_rule_moves_samples_to_uncertain_prompts():
    # 3 prompts, 8 samples each on average → 24. easy settles after 4 unanimous votes (horizon
    # confidence 0.9774 ≥ 0.95), the two 50/50 prompts share the 24 − 12 = 12 left: 4 + 6 each.
    s = AdaptiveSession("budget", ["easy", "u1", "u2"], threshold=8, max_n=40)
    assert s.budget == 24
    while batch := s.ask():
        for pid in batch:
            i = s._idx(pid)
            s.tell(pid, "x" if pid == "easy" else str(s.n[i] % 2))
    assert s.n.tolist() == [4, 10, 10]
    assert s.used == 24 and s.should_stop("u1")
    assert s.result()["stopped"].to_list() == ["rule", "budget", "budget"]


def test_budget_priority_serves_least_certain_first():
    s = AdaptiveSession("budget", ["easy", "hard"], threshold=3.5, max_n=10, min_n=1)  # budget 7
    for _ in range(3):
        s.tell_many(np.array([0, 1]), np.array([0, _ % 2]))
    # used 6, room 1: the split prompt (2-1) is less settled than the unanimous one (3-0)
    assert s.ask() == ["hard"]


# -- session mechanics -----------------------------------------------------------------------------------
def reference_top2(seq: list[int]) -> tuple[int, int, int]:
    c = Counter(x for x in seq if x >= 0)
    if not c:
        return -1, 0, 0
    first_to = {}
    run = Counter()
    for x in seq:  # earliest to reach the max count wins ties
        if x >= 0:
            run[x] += 1
            first_to.setdefault((x, run[x]), len(first_to))
    top = max(c.values())
    code = min((a for a in c if c[a] == top), key=lambda a: first_to[(a, top)])
    second = max([v for a, v in c.items() if a != code], default=0)
    return code, top, second


def test_tell_many_matches_brute_force_and_duplicates():
    rng = np.random.default_rng(1)
    n_p, steps = 50, 30
    s = AdaptiveSession("beta", n_p, max_n=64, threshold=0.999)
    seqs: list[list[int]] = [[] for _ in range(n_p)]
    for _ in range(steps):
        idx = rng.integers(0, n_p, size=40)  # with repeats
        codes = rng.integers(-1, 4, size=40)
        keep = np.array([len(seqs[i]) + list(idx[:j]).count(i) < 64 for j, i in enumerate(idx)])
        idx, codes = idx[keep], codes[keep]
        s.tell_many(idx, codes)
        for i, c in zip(idx.tolist(), codes.tolist()):
            seqs[i].append(c)
    for i in range(n_p):
        code, top, second = reference_top2(seqs[i])
        assert (s.top_code[i], s.top[i], s.second[i], s.n[i]) == (code, top, second, len(seqs[i]))


def test_session_resumes_exactly():
    rng = np.random.default_rng(7)
    for rule in RULE_NAMES:
        ids = [f"q{i}" for i in range(30)]
        a = AdaptiveSession(rule, ids, max_n=20, budget=400, token_budget=10**6)
        feed = {pid: [str(x) for x in rng.choice(3, 20, p=[0.6, 0.3, 0.1])] for pid in ids}
        rewards = {pid: rng.random(20).round(3).tolist() for pid in ids}

        def step(s: AdaptiveSession) -> bool:
            batch = s.ask()
            for pid in batch:
                j = int(s.n[s._idx(pid)])
                s.tell(pid, feed[pid][j], reward=rewards[pid][j], tokens=10 + j)
            return bool(batch)

        for _ in range(5):
            step(a)
        b = AdaptiveSession.from_json(a.to_json())
        assert b.to_dict() == a.to_dict()
        while step(a):
            pass
        while step(b):
            pass
        assert a.to_dict() == b.to_dict()
        assert a.result().equals(b.result())


def test_global_budget_and_tokens():
    s = AdaptiveSession("beta", 10, max_n=40, budget=25)
    total = 0
    while (idx := s.ask_idx()).size:
        total += idx.size
        s.tell_many(idx, np.arange(idx.size) % 3)
    assert total == 25 == s.used
    s = AdaptiveSession("beta", 4, max_n=40, token_budget=100)
    while (idx := s.ask_idx()).size:
        s.tell_many(idx, idx % 2 + (s.n[idx] % 2), tokens=np.full(idx.size, 30))
    assert s.tokens_used == 120  # the round that crossed 100 completes, then no more asks
    assert all(s.should_stop(p) for p in s.prompt_ids)


def test_ask_does_not_reissue_pending_prompts():
    s = AdaptiveSession("beta", ["a", "b"], max_n=5)
    assert s.ask() == ["a", "b"]
    assert s.ask() == []
    s.tell("a", "1")
    assert s.ask() == ["a"]


def test_bad_input_messages():
    with pytest.raises(TtsplanError, match='Did you mean "beta"'):
        AdaptiveSession("betta", 3)
    with pytest.raises(TtsplanError, match="min_n must be <= max_n"):
        AdaptiveSession("beta", 3, max_n=4, min_n=5)
    with pytest.raises(TtsplanError, match="threshold"):
        AdaptiveSession("beta", 3, threshold=1.2)
    s = AdaptiveSession("beta", ["a"], max_n=4)
    with pytest.raises(TtsplanError, match="prompt_id must be one of"):
        s.tell("zz", "1")
    with pytest.raises(TtsplanError, match="codes must be answer codes"):
        s.tell_many(np.array([0]), np.array([9]))
    with pytest.raises(TtsplanError, match="reward must be"):
        s.tell("a", "1", reward=3.0)
    with pytest.raises(TtsplanError, match="schema_version"):
        AdaptiveSession.from_json('{"x": 1}')
    with pytest.raises(TtsplanError, match="unique"):
        AdaptiveSession("beta", ["a", "a"])


def test_horizon_rules_limit_max_n_and_rule_objects_take_overrides():
    with pytest.raises(TtsplanError, match="max_n must be <= 100"):
        make_rule("horizon", max_n=101)
    assert make_rule("beta", max_n=500).max_n == 500
    s = AdaptiveSession(make_rule("beta"), 3, max_n=10, threshold=0.9, min_n=2)
    assert (s.rule.max_n, s.rule.threshold, s.rule.min_n) == (10, 0.9, 2)


def test_cancel_pending_reissues_lost_requests():
    s = AdaptiveSession("beta", ["a", "b"], max_n=5)
    assert s.ask() == ["a", "b"]
    saved = s.to_json()  # checkpoint taken with two requests in flight, then the process dies
    r = AdaptiveSession.from_json(saved)
    assert r.ask() == []
    r.cancel_pending(["a"])
    assert r.ask() == ["a"]
    r.cancel_pending()
    assert r.ask() == ["a", "b"]


# -- restore: rebuild a session from recorded rows (ttsplan run's resume) ----------------------------------
def _assert_same_state(a: AdaptiveSession, b: AdaptiveSession) -> None:
    """Every numpy state array (whatever the session holds), the counters and the answer book agree."""
    arrays_a = {k: v for k, v in vars(a).items() if isinstance(v, np.ndarray)}
    arrays_b = {k: v for k, v in vars(b).items() if isinstance(v, np.ndarray)}
    assert arrays_a.keys() == arrays_b.keys() and {"n", "pending", "counts", "top", "second", "reason"} <= set(arrays_a)
    for k, v in arrays_a.items():
        assert v.dtype == arrays_b[k].dtype and v.shape == arrays_b[k].shape, k
        np.testing.assert_array_equal(v, arrays_b[k], err_msg=k)
    for k in ("used", "tokens_used", "prior", "_answers", "_codes"):
        assert getattr(a, k) == getattr(b, k), k


def _live_rows(rule: str, ids: list[str], seed: int, snapshot_after: int | None = None):
    """Drive a session with ask/tell (random answers, some unparsable, rewards, tokens) to the end.

    Returns the session, the rows it was told in order, and (with ``snapshot_after``) a ``to_dict``
    snapshot taken after that many tells with requests still in flight plus the rows told after it.
    """
    rng = np.random.default_rng(seed)
    feed = {pid: [None if x == 3 else str(x) for x in rng.choice(4, 20, p=[0.55, 0.25, 0.1, 0.1])] for pid in ids}
    rewards = {pid: rng.random(20).round(3).tolist() for pid in ids}
    s = AdaptiveSession(rule, ids, max_n=20, budget=350, token_budget=10**6)
    rows, snap, told = [], None, 0
    while batch := s.ask():
        for pid in batch:
            if snapshot_after is not None and told == snapshot_after:
                snap = (s.to_dict(), len(rows))
            j = int(s.n[ids.index(pid)])
            s.tell(pid, feed[pid][j], reward=rewards[pid][j], tokens=10 + j)
            rows.append({"prompt_id": pid, "sample_idx": j, "answer": feed[pid][j], "reward": rewards[pid][j],
                         "output_tokens": 10 + j})
            told += 1
    return s, rows, snap


@pytest.mark.parametrize("rule", RULE_NAMES)
def test_restore_equals_the_session_told_the_same_rows(rule):
    ids = [f"q{i}" for i in range(25)]
    live, rows, _ = _live_rows(rule, ids, seed=3)
    assert live.used == len(rows) > 25 and (live.reason != 0).any()
    restored = AdaptiveSession(rule, ids, max_n=20, budget=350, token_budget=10**6).restore(rows)
    _assert_same_state(restored, live)
    assert restored.to_dict() == live.to_dict() and restored.result().equals(live.result())
    # a SampleTable-shaped DataFrame works the same
    table = pl.DataFrame(rows, schema={"prompt_id": pl.String, "sample_idx": pl.Int32, "answer": pl.String,
                                       "reward": pl.Float64, "output_tokens": pl.Int32})
    _assert_same_state(AdaptiveSession(rule, ids, max_n=20, budget=350, token_budget=10**6).restore(table), live)


@pytest.mark.parametrize("rule", ["beta", "weighted", "pilot", "budget"])
def test_restore_continues_a_snapshot_taken_with_requests_in_flight(rule):
    ids = [f"q{i}" for i in range(25)]
    live, rows, (snap, told) = _live_rows(rule, ids, seed=5, snapshot_after=40)
    resumed = AdaptiveSession.from_dict(snap)
    assert resumed.pending.sum() > 0  # the snapshot had asked-but-untold samples
    resumed.restore(rows[told:])
    resumed.cancel_pending()
    _assert_same_state(resumed, live)
    assert resumed.result().equals(live.result())


def test_restore_takes_answer_codes():
    rows = [{"prompt_id": "a", "sample_idx": j, "answer_code": c, "tokens": 3} for j, c in enumerate([0, 1, 0, -1, 0])]
    s = AdaptiveSession("beta", ["a", "b"], max_n=8).restore(rows)
    ref = AdaptiveSession("beta", ["a", "b"], max_n=8)
    ref.tell_many(np.zeros(5, np.int64), np.array([0, 1, 0, -1, 0]), tokens=np.full(5, 3))
    _assert_same_state(s, ref)


def test_restore_refuses_rows_out_of_order_and_leaves_the_session_unchanged():
    s = AdaptiveSession("beta", ["a", "b"], max_n=3)
    s.tell("a", "1")
    before = s.to_dict()
    bad = [{"prompt_id": "a", "sample_idx": 0, "answer": "1"},       # a repeat: sample 1 comes next
           {"prompt_id": "b", "sample_idx": 1, "answer": "1"},       # a gap
           {"prompt_id": "zz", "sample_idx": 0, "answer": "1"}]      # not a prompt of the session
    with pytest.raises(TtsplanError) as info:
        s.restore(bad)
    msg = str(info.value)
    assert "sample 0 of 'a' where sample 1 was expected" in msg and "sample 1 of 'b' where sample 0" in msg
    assert "'zz'" in msg and s.to_dict() == before
    with pytest.raises(TtsplanError, match="beyond max_n=3"):
        s.restore([{"prompt_id": "a", "sample_idx": j, "answer": "1"} for j in (1, 2, 3)])
    assert s.to_dict() == before
