"""Exact estimators against brute-force enumeration, hand-computed cases and published numbers."""
from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ttsplan.features.estimators import (bon_at_k, curves, maj_at_k, maj_at_k_prompt, pass_at_k, prompt_curves,
                                         weighted_maj_at_k)
from ttsplan.features.io import read_table
from ttsplan.features.schema import validate_sample_table


def brute_pass(correct, k):
    subsets = list(itertools.combinations(range(len(correct)), k))
    return sum(any(correct[i] for i in s) for s in subsets) / len(subsets)


def brute_bon(rewards, correct, k):
    total = 0.0
    subsets = list(itertools.combinations(range(len(rewards)), k))
    for s in subsets:
        best = max(rewards[i] for i in s)
        leaders = [i for i in s if rewards[i] == best]
        total += np.mean([correct[i] for i in leaders])  # uniform tie-break among drawn leaders
    return total / len(subsets)


def brute_maj(answers, correct, k):
    n = len(answers)
    quality = {a: np.mean([correct[j] for j in range(n) if answers[j] == a]) for a in set(answers) if a is not None}
    subsets = list(itertools.combinations(range(n), k))
    total = 0.0
    for s in subsets:
        votes: dict[str, int] = {}
        for i in s:
            if answers[i] is not None:
                votes[answers[i]] = votes.get(answers[i], 0) + 1
        if votes:  # null answers never win; all-null subsets score 0
            best = max(votes.values())
            leaders = [a for a, v in votes.items() if v == best]
            total += np.mean([quality[a] for a in leaders])
    return total / len(subsets)


@pytest.mark.parametrize("seed", range(40))
def test_estimators_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 13))
    answers = [None if rng.random() < 0.15 else str(rng.integers(0, 1 + int(rng.integers(1, 5)))) for _ in range(n)]
    gold = str(rng.integers(0, 3))
    correct = [a == gold for a in answers]
    rewards = rng.integers(0, 4, n).astype(float)  # few levels -> many ties
    ks = list(range(1, n + 1))
    got_maj = maj_at_k_prompt(answers, correct, ks)
    got_bon = bon_at_k(rewards, np.array(correct, dtype=float), ks)[0]
    got_pass = pass_at_k(n, sum(correct), ks)
    for i, k in enumerate(ks):
        assert got_maj[i] == pytest.approx(brute_maj(answers, correct, k), abs=1e-12)
        assert got_bon[i] == pytest.approx(brute_bon(rewards, correct, k), abs=1e-12)
        assert got_pass[i] == pytest.approx(brute_pass(correct, k), abs=1e-12)


def test_maj_inconsistent_grader_uses_cluster_mean():
    # the same answer graded correct once and wrong once: the cluster counts as half correct
    answers, correct = ["a", "a", "b"], [True, False, False]
    for k in (1, 2, 3):
        assert maj_at_k_prompt(answers, correct, [k])[0] == pytest.approx(brute_maj(answers, correct, k), abs=1e-12)


def test_hand_computed_cases():
    # 2 of 4 correct: pass@2 = 1 - C(2,2)/C(4,2) = 5/6
    assert pass_at_k(4, 2, 2) == pytest.approx(5 / 6, abs=1e-15)
    # answers a,a,b (a correct): maj@2 = P(pair has both a) + ties/2 = 1/3 + (2/3)/2 = 2/3
    assert maj_at_k_prompt(["a", "a", "b"], [1, 1, 0], [2])[0] == pytest.approx(2 / 3, abs=1e-15)
    # only null answers: nothing can win
    assert maj_at_k_prompt([None, None], [0, 0], [1, 2]).tolist() == [0.0, 0.0]
    # k > n is undefined
    assert np.isnan(pass_at_k(3, 1, 4))


def test_pass_at_k_stable_for_large_n():
    n, c = 10_000, 7
    for k in (1, 10, 100, 1000, 5000, 9993, 9994, 10_000):
        exact = 1 - Fraction(math.comb(n - c, k), math.comb(n, k))
        assert pass_at_k(n, c, k) == pytest.approx(float(exact), rel=1e-9, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 3000), st.data())
def test_pass_at_k_monotone_and_bounded(n, data):
    c = data.draw(st.integers(0, n))
    ks = np.arange(1, n + 1)
    v = pass_at_k(n, c, ks)
    assert np.all((v >= 0) & (v <= 1))
    assert np.all(np.diff(v) >= -1e-12)
    assert v[-1] == (1.0 if c > 0 else 0.0)


def test_weighted_majority_monte_carlo_error_is_stated():
    answers, rewards, correct = ["a", "a", "b", "b", "b"], [0.9, 0.8, 0.1, 0.1, 0.2], [1, 1, 0, 0, 0]
    est, se = weighted_maj_at_k(answers, rewards, correct, [5], draws=4000, seed=1)
    # all five drawn: a has weight 1.7 vs b 0.4 -> a always wins
    assert est[0] == 1.0 and se[0] == 0.0
    est, se = weighted_maj_at_k(answers, rewards, correct, [2], draws=4000, seed=1)
    exact = brute_weighted(answers, rewards, correct, 2)
    assert abs(est[0] - exact) < 5 * se[0] + 1e-9 and se[0] < 0.01


def brute_weighted(answers, rewards, correct, k):
    total, subsets = 0.0, list(itertools.combinations(range(len(answers)), k))
    for s in subsets:
        w: dict[str, float] = {}
        for i in s:
            w[answers[i]] = w.get(answers[i], 0) + rewards[i]
        best = max(w.values())
        leaders = [a for a, v in w.items() if v == best]
        total += np.mean([correct[answers.index(a)] for a in leaders])
    return total / len(subsets)


def _toy_table():
    rows = []
    for p, (answers, correct, rewards) in enumerate([
        (["1", "1", "2", None], [1, 1, 0, 0], [0.1, 0.9, 0.5, 0.2]),
        (["3", "4", "4", "4"], [1, 0, 0, 0], [0.8, 0.1, 0.3, 0.3]),
    ]):
        for i in range(4):
            rows.append({"config": "c", "prompt_id": f"p{p}", "sample_idx": i, "answer": answers[i],
                         "correct": bool(correct[i]), "reward": rewards[i]})
    return validate_sample_table(pl.DataFrame(rows))


def test_curves_are_means_of_prompt_values_with_ci():
    table = _toy_table()
    per = prompt_curves(table, "maj", [1, 2, 4])
    cur = curves(table, metrics=["maj", "pass", "bon"], ks=[1, 2, 4], n_boot=50, seed=3)
    for metric in ("maj", "pass", "bon"):
        per = prompt_curves(table, metric, [1, 2, 4])
        for k in (1, 2, 4):
            want = per.filter(pl.col("k") == k)["value"].mean()
            row = cur.filter((pl.col("metric") == metric) & (pl.col("k") == k)).row(0, named=True)
            assert row["value"] == pytest.approx(want, abs=1e-12)
            assert row["ci_low"] <= row["value"] <= row["ci_high"]
    # seeded: identical twice
    assert cur.equals(curves(table, metrics=["maj", "pass", "bon"], ks=[1, 2, 4], n_boot=50, seed=3))
    # k above the sample count is left out
    assert curves(table, metrics=["pass"], ks=[8], n_boot=10).height == 0


def test_bon_skipped_without_rewards():
    table = _toy_table().with_columns(pl.lit(None, dtype=pl.Float64).alias("reward"))
    assert set(curves(table, ks=[1, 2], n_boot=0)["metric"].unique()) == {"pass", "maj"}


# ------------------------------------------------------------------ real data (../shared/data)
def test_sc40_addsub_maj40_matches_direct_vote(shared_data):
    table, _ = read_table(shared_data / "samples" / "sc40_addsub.parquet")
    cfg = "code-davinci-002/T0.7/cot-sc40"
    sub = table.filter(pl.col("config") == cfg)
    # direct: with all 40 answers the plurality answer wins (ties split evenly)
    direct = []
    for _, g in sub.group_by("prompt_id"):
        votes = g.filter(pl.col("answer").is_not_null()).group_by("answer").agg(pl.len(), pl.col("correct").first())
        if votes.height == 0:
            direct.append(0.0)
            continue
        top = votes.filter(pl.col("len") == votes["len"].max())
        direct.append(top["correct"].cast(pl.Float64).mean())
    cur = curves(sub, metrics=["maj"], ks=[40], n_boot=0)
    assert cur["value"][0] == pytest.approx(np.mean(direct), abs=1e-12)
    assert cur["value"][0] == pytest.approx(0.916, abs=0.001)  # README of shared/data: 0.916


def test_cruxeval_matches_benchmark_scorer(shared_data):
    table, _ = read_table(shared_data / "samples" / "cruxeval_codellama7b.parquet")
    cur = curves(table, metrics=["pass"], ks=[1, 5], n_boot=0)
    got = {(r["config"].rsplit("-", 1)[1], r["k"]): 100 * r["value"] for r in cur.to_dicts()}
    assert got[("o", 1)] == pytest.approx(34.2125, abs=0.01)
    assert got[("o", 5)] == pytest.approx(40.2867, abs=0.01)
    assert got[("i", 1)] == pytest.approx(35.95, abs=0.01)
    assert got[("i", 5)] == pytest.approx(44.9911, abs=0.01)


def test_monkeys_pass_curves_monotone_and_reach_coverage(shared_data):
    table, kind = read_table(shared_data / "counts" / "monkeys_pythia_math.parquet")
    assert kind == "counts"
    ks = [1, 10, 100, 1000, 10_000]
    cur = curves(table, metrics=["pass"], ks=ks, n_boot=20)
    coverage = table.group_by("config").agg((pl.col("correct_samples") > 0).mean().alias("cov"))
    for cfg, sub in cur.group_by("config"):
        vals = sub.sort("k")["value"].to_numpy()
        assert np.all(np.diff(vals) >= 0)
        cov = coverage.filter(pl.col("config") == cfg[0])["cov"][0]
        assert vals[-1] == pytest.approx(cov, abs=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_table_maj_paths_match_brute_force(seed):
    """prompt_curves goes through the incremental subset-product DP (few clusters) and, while more clusters
    than it tracks can still reach the winner's count, the from-scratch count (prompt 0); both must equal
    enumeration."""
    rng = np.random.default_rng(100 + seed)
    rows, truth = [], {}
    for p in range(12):
        n = int(rng.integers(2, 11))
        n_answers = 9 if p == 0 else int(rng.integers(1, 5))  # prompt 0: many clusters -> slow path
        answers = [None if rng.random() < 0.1 else str(rng.integers(0, n_answers)) for _ in range(n)]
        gold = str(rng.integers(0, 2))
        correct = [a == gold for a in answers]
        truth[f"p{p:02d}"] = (answers, correct)
        rows += [{"config": "c", "prompt_id": f"p{p:02d}", "sample_idx": i, "answer": answers[i],
                  "correct": correct[i]} for i in range(n)]
    table = validate_sample_table(pl.DataFrame(rows))
    per = prompt_curves(table, "maj", list(range(1, 11)))
    for r in per.to_dicts():
        answers, correct = truth[r["prompt_id"]]
        if r["k"] > len(answers):
            assert r["value"] is None
        else:
            assert r["value"] == pytest.approx(brute_maj(answers, correct, r["k"]), abs=1e-12)


# ------------------------------------------------------------------ maj@k: the fast DP against enumeration
def vote_count_maj(sizes, quality, n_null, k):
    """maj@k in exact rationals by enumerating vote-count vectors (multivariate hypergeometric): a count
    vector x has Π C(m_i, x_i)·C(m_null, k − Σx) subsets; the leaders share the win."""
    n = sum(sizes) + n_null
    total = Fraction(0)
    for votes in itertools.product(*(range(min(m, k) + 1) for m in sizes)):
        rest = k - sum(votes)
        if not 0 <= rest <= n_null or max(votes, default=0) == 0:
            continue
        ways = math.comb(n_null, rest) * math.prod(math.comb(m, x) for m, x in zip(sizes, votes))
        leaders = [q for q, v in zip(quality, votes) if v == max(votes)]
        total += ways * sum(Fraction(q) for q in leaders) / len(leaders)
    return total / math.comb(n, k)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_maj_matches_subset_enumeration_on_random_prompts(data):
    """Random small prompts: ties (few distinct answers), null answers, consistent or inconsistent grading."""
    n = data.draw(st.integers(1, 11), label="n")
    distinct = data.draw(st.integers(1, 7), label="distinct answers")
    answers = data.draw(st.lists(st.none() | st.integers(0, distinct - 1).map(str), min_size=n, max_size=n))
    if data.draw(st.booleans(), label="consistent grader"):
        gold = data.draw(st.integers(0, distinct - 1).map(str))
        correct = [a == gold for a in answers]
    else:
        correct = data.draw(st.lists(st.booleans(), min_size=n, max_size=n))
    ks = list(range(1, n + 2))
    got = maj_at_k_prompt(answers, correct, ks)
    for value, k in zip(got, ks):
        if k > n:
            assert np.isnan(value)
        else:
            assert value == pytest.approx(brute_maj(answers, correct, k), abs=1e-12)


@pytest.mark.parametrize("sizes, quality, n_null", [
    ((20, 12, 5, 1), (1.0, 0.0, 0.0, 0.0), 2),             # long DP, clusters completing one by one
    ((9, 9, 9), (1.0, 0.0, 0.5), 0),                       # three-way ties at every t
    ((6, 5, 4, 4, 2, 2, 2), (0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0), 1),  # > 4 other clusters: from scratch, then DP
    ((3, 3, 3, 3, 3, 3, 3, 3), (1.0,) * 4 + (0.0,) * 4, 3),  # many tied clusters
    ((14, 14, 1), (0.0, 1.0, 1.0), 6),
])
def test_maj_matches_vote_count_enumeration(sizes, quality, n_null):
    n = sum(sizes) + n_null
    ks = sorted({1, 2, 3, 4, 7, n // 2, n - 1, n, n + 1})
    got = maj_at_k([(sizes, quality, n_null)], ks, workers=1)[0]
    for value, k in zip(got, ks):
        if k > n:
            assert np.isnan(value)
        else:
            assert value == pytest.approx(float(vote_count_maj(sizes, quality, n_null, k)), abs=1e-12)


def _random_signatures(seed, prompts):
    rng = np.random.default_rng(seed)
    sigs = []
    for _ in range(prompts):
        n = int(rng.choice([24, 40, 64]))
        n_null = int(rng.integers(0, 4))
        sizes = [int(v) for v in rng.multinomial(n - n_null, rng.dirichlet(np.full(int(rng.integers(1, 9)), 0.7)))]
        sizes = tuple(sorted((s for s in sizes if s), reverse=True))
        quality = tuple(float(rng.choice([0.0, 1.0, 0.5])) for _ in sizes)
        sigs.append((sizes, quality, n_null))
    return sigs + sigs[::3]  # repeated signatures are computed once


def test_maj_grouped_and_parallel_equal_single_prompt_and_single_process():
    sigs = _random_signatures(11, 150)
    ks = [1, 2, 3, 5, 8, 16, 23, 24, 32, 40, 63, 64, 65]
    serial = maj_at_k(sigs, ks, workers=1)
    parallel = maj_at_k(sigs, ks, workers=2)
    assert np.array_equal(serial, parallel, equal_nan=True)
    alone = np.array([maj_at_k([sig], ks, workers=1)[0] for sig in sigs])
    np.testing.assert_allclose(serial, alone, rtol=0, atol=1e-14)
    for sig, row in list(zip(sigs, serial))[:12]:
        n = sum(sig[0]) + sig[2]
        for value, k in zip(row, ks):
            if k <= n and k in (1, 2, 3, 5):
                assert value == pytest.approx(float(vote_count_maj(*sig, k)), abs=1e-12)


def _answer_table(seed, prompts, n):
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(prompts):
        weights = rng.dirichlet(np.full(5, 0.6))
        for i in range(n):
            code = int(rng.choice(5, p=weights))
            rows.append({"config": f"c{p % 3}", "prompt_id": f"p{p:03d}", "sample_idx": i,
                         "answer": None if code == 4 else str(code), "correct": code == 0,
                         "reward": float(rng.integers(0, 5))})
    return validate_sample_table(pl.DataFrame(rows))


def test_prompt_curves_parallel_and_row_order_do_not_change_values():
    table = _answer_table(5, 90, 40)
    ks = [1, 2, 4, 8, 16, 32, 40]
    single = prompt_curves(table, "maj", ks, workers=1)
    assert single.equals(prompt_curves(table, "maj", ks, workers=2))
    shuffled = table.sample(fraction=1.0, shuffle=True, seed=1)  # prompts no longer in runs
    for metric in ("pass", "bon", "maj"):
        want = prompt_curves(table, metric, ks, workers=1).sort("config", "prompt_id", "k")
        got = prompt_curves(shuffled, metric, ks, workers=1).sort("config", "prompt_id", "k")
        assert got.select("config", "prompt_id", "k").equals(want.select("config", "prompt_id", "k"))
        assert (got["value"] - want["value"]).abs().max() < 1e-12


@pytest.mark.parametrize("sizes, n_null", [
    ((10, 9, 8, 8, 7, 7, 3, 2), 1),        # 6 large other clusters: the DP follows them all
    ((5,) * 40, 0),                        # 40 tied clusters: counted from scratch
    ((200, 150, 90, 40, 12, 3, 1), 20),
    ((300, 299, 298, 1), 23),
])
def test_maj_win_shares_sum_to_one(sizes, n_null):
    """Every answered subset has a winner and tied leaders split it: with every cluster correct,
    maj@k = 1 − C(nulls, k)/C(n, k) exactly, however many clusters and samples."""
    n = sum(sizes) + n_null
    ks = sorted({1, 2, 3, 5, 8, 21, 55, n // 3, n // 2, n - 2, n})
    got = maj_at_k([(sizes, (1.0,) * len(sizes), n_null)], ks, workers=1)[0]
    want = [1 - math.comb(n_null, k) / math.comb(n, k) for k in ks]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
