"""Per-prompt success model: Beta-binomial recovery, calibration, maj/BoN forms, degenerate input."""
from __future__ import annotations

import warnings

import numpy as np
import polars as pl
import pytest
from sklearn.exceptions import NotFittedError

from ttsplan.features.errors import TtsplanError
from ttsplan.features.estimators import maj_at_k_prompt
from ttsplan.features.schema import validate_count_table, validate_sample_table
from ttsplan.fitting.success import (
    DegenerateDataWarning,
    PilotSuccessModel,
    PromptPosteriors,
    PromptSuccessModel,
    bon_at_n_point,
    fit_beta_binomial,
    maj_at_n_point,
    pass_at_n_beta,
)


def _counts(n: np.ndarray, c: np.ndarray, config: str = "c") -> pl.DataFrame:
    return validate_count_table(pl.DataFrame({"config": [config] * len(n), "prompt_id": [f"p{i:05d}" for i in range(len(n))],
                                              "samples": n, "correct_samples": c}))


def _samples(p: np.ndarray, k: int, rng: np.random.Generator, wrong_share: float = 0.6,
             config: str = "c") -> pl.DataFrame:
    """Each sample: correct answer "A" w.p. p; else "W" w.p. wrong_share, else a fresh singleton."""
    rows = []
    for i, pi in enumerate(p):
        u = rng.random(k)
        v = rng.random(k)
        for j in range(k):
            if u[j] < pi:
                ans, ok = "A", True
            elif v[j] < wrong_share:
                ans, ok = "W", False
            else:
                ans, ok = f"x{i}_{j}", False
            rows.append((config, f"q{i:04d}", j, ans, ok, int(50 + 200 * (1 - pi) + rng.integers(0, 20))))
    return validate_sample_table(pl.DataFrame(rows, schema=["config", "prompt_id", "sample_idx", "answer", "correct",
                                                           "output_tokens"], orient="row"))


def test_beta_binomial_recovers_known_parameters():
    rng = np.random.default_rng(0)
    p = rng.beta(0.7, 2.5, 20_000)
    n = rng.integers(8, 33, p.size)
    a, b = fit_beta_binomial(n, rng.binomial(n, p), hyperprior=0.0)
    assert a == pytest.approx(0.7, rel=0.08)
    assert b == pytest.approx(2.5, rel=0.08)
    a2, b2 = fit_beta_binomial(n, rng.binomial(n, p))  # weak hyperprior barely moves a large fit
    assert a2 / (a2 + b2) == pytest.approx(0.7 / 3.2, abs=0.01)


def test_pass_at_n_beta_closed_form():
    # Beta(1, 1): E[1 - (1-p)^N] = N / (N + 1)
    got = pass_at_n_beta(np.array([1.0]), np.array([1.0]), [1, 4, 99])[0]
    assert got == pytest.approx([1 / 2, 4 / 5, 99 / 100])
    # Monte Carlo check for a skewed Beta
    rng = np.random.default_rng(1)
    p = rng.beta(0.3, 4.0, 400_000)
    mc = [np.mean(1 - (1 - p) ** n) for n in (1, 10, 1000)]
    assert pass_at_n_beta(np.array([0.3]), np.array([4.0]), [1, 10, 1000])[0] == pytest.approx(mc, abs=3e-3)


def test_prompt_model_calibrated_and_covers_truth():
    rng = np.random.default_rng(2)
    p = rng.beta(0.8, 1.6, 3000)
    n = np.full(p.size, 8)
    model = PromptSuccessModel(confidence=0.9).fit(_counts(n, rng.binomial(n, p)))
    grid = [1, 4, 16, 64]
    exp = model.expected_accuracy("pass", grid)
    lo, hi = model.accuracy_bounds("pass", grid)
    truth = 1 - (1 - p[:, None]) ** np.asarray(grid)[None, :]
    assert exp.shape == (3000, 4) and np.isfinite(exp).all()
    assert np.all(lo <= exp + 1e-12) and np.all(exp <= hi + 1e-12)
    assert np.all(np.diff(exp, axis=1) >= -1e-12)  # monotone in N
    assert exp.mean(axis=0) == pytest.approx(truth.mean(axis=0), abs=0.02)
    coverage = ((lo <= truth) & (truth <= hi)).mean(axis=0)
    assert np.all(coverage > 0.83) and np.all(coverage < 0.97)
    assert model.prompt_ids_.tolist() == model.keys_["prompt_id"].to_list()
    frame = model.predict("pass", [1, 4])
    assert frame.columns == ["config", "prompt_id", "strategy", "n", "expected", "lower", "upper"]
    assert frame.height == 6000
    assert model.summary().filter(pl.col("parameter") == "prior_mean_p")["estimate"][0] == pytest.approx(0.8 / 2.4, abs=0.03)


def test_separate_priors_per_config():
    rng = np.random.default_rng(3)
    n = np.full(500, 10)
    easy = _counts(n, rng.binomial(n, rng.beta(8, 2, 500)), "easy")
    hard = _counts(n, rng.binomial(n, rng.beta(1, 9, 500)), "hard")
    model = PromptSuccessModel().fit(pl.concat([easy, hard]))
    prior = model.prior_.sort("config")
    assert prior["mean"].to_list() == pytest.approx([0.8, 0.1], abs=0.03)


def test_maj_point_matches_exact_estimator_for_diffuse_rest():
    rng = np.random.default_rng(4)
    labels = ["c", "w"] + [f"x{i}" for i in range(60)]
    ans = rng.choice(labels, size=1000, p=[0.35, 0.3] + [0.35 / 60] * 60).tolist()
    p, q = np.mean([a == "c" for a in ans]), np.mean([a == "w" for a in ans])
    exact = maj_at_k_prompt(ans, [a == "c" for a in ans], [1, 2, 3, 9, 31])
    model = maj_at_n_point(np.array([p]), np.array([q]), [1, 2, 3, 9, 31])[0]
    assert model == pytest.approx(exact, abs=0.01)
    # large N: the plurality answer wins; normal approximation branch
    assert maj_at_n_point(np.array([0.4, 0.2]), np.array([0.3, 0.3]), [5000])[:, 0] == pytest.approx([1.0, 0.0], abs=1e-6)


def test_bon_point_limits():
    p = np.array([0.3, 0.3])
    same = bon_at_n_point(p, np.array([0.0, 0.0]), np.array([0.0, 0.0]), np.array([1.0, 1.0]), [1, 8])
    assert same == pytest.approx(np.array([[0.3, 0.3], [0.3, 0.3]]), abs=1e-3)  # uninformative reward
    sep = bon_at_n_point(p[:1], np.array([10.0]), np.array([0.0]), np.array([0.5]), [1, 4])[0]
    assert sep == pytest.approx([0.3, 1 - 0.7 ** 4], abs=1e-3)  # perfect verifier = pass@N


def test_maj_and_bon_from_sample_table():
    rng = np.random.default_rng(5)
    p = rng.beta(2, 2, 150)
    t = _samples(p, 16, rng)
    t = t.with_columns(pl.when(pl.col("correct")).then(1.0).otherwise(0.0).alias("reward")
                       + pl.Series(rng.normal(0, 0.5, t.height)))
    model = PromptSuccessModel().fit(t)
    maj = model.expected_accuracy("maj", [1, 5, 25])
    bon = model.expected_accuracy("bon", [1, 5, 25])
    pas = model.expected_accuracy("pass", [1, 5, 25])
    assert np.isfinite(maj).all() and np.isfinite(bon).all()
    assert maj[:, 0] == pytest.approx(pas[:, 0], abs=1e-9)
    assert np.all(bon <= pas + 1e-6)  # a verifier cannot beat pass@N
    assert bon.mean(axis=0)[2] > bon.mean(axis=0)[0]
    lo, hi = model.accuracy_bounds("maj", [5])
    assert np.all(lo <= hi)


def test_degenerate_inputs_warn_or_raise_without_nan():
    n = np.full(20, 8)
    with pytest.warns(DegenerateDataWarning, match="no correct sample anywhere"):
        m = PromptSuccessModel().fit(_counts(n, np.zeros(20, dtype=int)))
    vals = m.expected_accuracy("pass", [1, 100])
    assert np.isfinite(vals).all() and vals[:, 0].max() < 0.1
    with pytest.warns(DegenerateDataWarning, match="every sample correct"):
        m = PromptSuccessModel().fit(_counts(n, n))
    assert np.isfinite(m.expected_accuracy("pass", [3])).all()
    with pytest.raises(TtsplanError, match="needs answers"):
        PromptSuccessModel().fit(_counts(n, n // 2)).expected_accuracy("maj", [3])
    with pytest.raises(TtsplanError, match="needs rewards"):
        PromptSuccessModel().fit(_counts(n, n // 2)).expected_accuracy("bon", [3])
    with pytest.raises(TtsplanError, match="strategy must be one of"):
        PromptSuccessModel().fit(_counts(n, n // 2)).expected_accuracy("mja", [3])
    with pytest.raises(TtsplanError, match="n_grid"):
        PromptSuccessModel().fit(_counts(n, n // 2)).expected_accuracy("pass", [0])
    with pytest.raises(NotFittedError, match="not fitted"):
        PromptSuccessModel().expected_accuracy("pass", [1])
    with pytest.raises(TtsplanError, match="no correct sample anywhere"):
        fit_beta_binomial(n, np.zeros(20))
    # all answers identical: maj@N = accuracy of that answer, no NaN
    rows = [("c", f"q{i}", j, "7", i % 2 == 0) for i in range(10) for j in range(4)]
    t = validate_sample_table(pl.DataFrame(rows, schema=["config", "prompt_id", "sample_idx", "answer", "correct"],
                                           orient="row"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateDataWarning)
        vals = PromptSuccessModel().fit(t).expected_accuracy("maj", [1, 9])
    assert np.isfinite(vals).all()


def test_pilot_model_predicts_unlabeled_prompts():
    rng = np.random.default_rng(6)
    train = _samples(rng.beta(1.5, 1.5, 300), 12, rng)
    p_new = rng.beta(1.5, 1.5, 200)
    pilot = _samples(p_new, 4, rng, config="c").drop("correct")
    model = PilotSuccessModel(k0=4).fit(train)
    post = model.posteriors(pilot)
    assert post.keys.height == 200
    rho = np.corrcoef(post.p_mean, p_new)[0, 1]
    assert rho > 0.7
    vals = post.expected_accuracy("pass", [1, 8])
    lo, hi = post.accuracy_bounds("maj", [1, 8])
    assert np.isfinite(vals).all() and np.all(lo <= hi)
    assert set(model.summary()["parameter"]) >= {"intercept", "agreement", "concentration"}
    with pytest.raises(TtsplanError, match="k0 must be >= 2"):
        PilotSuccessModel(k0=1).fit(train)
    with pytest.raises(TtsplanError, match="count table"):
        PilotSuccessModel().fit(_counts(np.full(5, 4), np.full(5, 2)))
    with pytest.raises(NotFittedError):
        PilotSuccessModel().posteriors(pilot)


def test_posterior_nodes_keep_the_mean_and_match_monte_carlo() -> None:
    """maj/bon average over p's posterior: the bin means reproduce E[p] exactly, and the averaged maj@N
    agrees with a Monte Carlo average over posterior draws of p (independent of the bin rule)."""
    keys = pl.DataFrame({"config": ["c"] * 3, "prompt_id": ["a", "b", "c"]})
    a, b = np.array([3.0, 0.4, 20.0]), np.array([5.0, 2.5, 2.0])
    post = PromptPosteriors(keys, a, b, rho=np.array([0.9, 0.6, 0.5]), quadrature_points=16)
    nodes = post.p_nodes()
    assert nodes.shape == (16, 3)
    assert nodes.mean(axis=0) == pytest.approx(a / (a + b), abs=1e-9)
    assert np.all(np.diff(nodes, axis=0) >= 0)
    grid = [1, 9, 41]
    got = post.expected_accuracy("maj", grid)
    assert got[:, 0] == pytest.approx(a / (a + b), abs=1e-9)  # maj@1 = pass@1 = E[p]
    rng = np.random.default_rng(0)
    draws = rng.beta(a, b, size=(20_000, 3))
    mc = np.mean([maj_at_n_point(d, post.rho * (1 - d), grid) for d in draws[:4000]], axis=0)
    assert got == pytest.approx(mc, abs=0.02)
    # plugging in the posterior mean understates uncertain prompts (prompt b, E[p] = 0.14: maj@41 0.0006 vs 0.12)
    plug = maj_at_n_point(post.p_mean, post.rho * (1 - post.p_mean), [41])[:, 0]
    assert plug[1] < 0.01 < 0.1 < got[1, 2] and plug[0] < got[0, 2] - 0.1
    with pytest.raises(TtsplanError, match="quadrature_points"):
        PromptPosteriors(keys, a, b, quadrature_points=0)
