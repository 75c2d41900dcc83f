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

from ttsplan.features.estimators import (bon_at_k, curves, maj_at_k_prompt, pass_at_k, prompt_curves,
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
    """prompt_curves goes through the vectorized subset-product DP (≤ 6 clusters) and the per-prompt
    DP (more clusters); both must equal enumeration."""
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
