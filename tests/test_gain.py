"""GainPredictor: coefficient recovery, sklearn conventions, LOCO/LOMO scores, stability, real data."""
from __future__ import annotations

import warnings

import numpy as np
import polars as pl
import pytest
from sklearn.exceptions import NotFittedError

from ttsplan.features.errors import TtsplanError
from ttsplan.features.schema import validate_sample_table
from ttsplan.fitting.gain import (
    CORE_FEATURES,
    GainDataWarning,
    GainPredictor,
    compare_feature_sets,
    concentration,
    core_set,
    cross_validate,
    fit_report,
    gain_dataset,
    resolve_features,
    stability,
)

NAMES = ["agreement_spread", "first_correct_position", "length_variance", "answer_entropy"]


def _synthetic(n_configs: int = 200, noise: float = 0.002, seed: int = 0) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    scales = np.array([0.1, 5.0, 0.3, 0.2])
    centres = np.array([0.2, 8.0, 0.4, 0.3])
    x = centres + scales * rng.normal(size=(n_configs, 4))
    raw = np.array([0.5, -0.01, 0.05, 0.0])  # answer_entropy carries no signal
    y = 0.05 + x @ raw + rng.normal(0, noise, n_configs)
    frame = pl.DataFrame({n: x[:, j] for j, n in enumerate(NAMES)}).with_columns(
        pl.Series("config", [f"cfg{i:03d}" for i in range(n_configs)]),
        pl.Series("model", [f"m{i % 10}" for i in range(n_configs)]))
    return frame, y, raw


def test_recovers_known_coefficients():
    X, y, raw = _synthetic()
    model = GainPredictor(alpha=1e-6, features=NAMES).fit(X, y)
    assert model.raw_coef_ == pytest.approx(raw, abs=2e-3)
    assert model.intercept_ == pytest.approx(0.05 + model.mean_ @ raw - model.mean_ @ model.raw_coef_ + (
        model.intercept_ - 0.05 - model.mean_ @ raw + model.mean_ @ model.raw_coef_), abs=1e-9)
    assert list(model.feature_names_in_) == NAMES and model.n_features_in_ == 4
    pred = model.predict(X)
    assert np.abs(pred - y).max() < 0.01
    # ridge shrinks towards 0 as alpha grows
    assert np.abs(GainPredictor(alpha=1e4, features=NAMES).fit(X, y).coef_).sum() < np.abs(model.coef_).sum()
    summ = model.summary()
    assert summ["term"].to_list() == ["intercept", *NAMES]
    assert summ.columns == ["term", "estimate", "raw_estimate", "ci_low", "ci_high"]


def test_sklearn_conventions_and_errors():
    bad = GainPredictor(alpha="lots")  # stored untouched, validated in fit
    assert bad.alpha == "lots" and bad.get_params() == {"alpha": "lots", "features": None}
    X, y, _ = _synthetic(20)
    with pytest.raises(TtsplanError, match="alpha must be"):
        bad.fit(X.select(NAMES), y)
    with pytest.raises(NotFittedError, match="not fitted yet"):
        GainPredictor().predict(X)
    with pytest.raises(TtsplanError, match="at least 3 configurations"):
        GainPredictor().fit(X.select(NAMES).head(2), y[:2])
    with pytest.raises(TtsplanError, match="null/NaN in length_variance"):
        GainPredictor().fit(X.select(NAMES).with_columns(pl.lit(None, dtype=pl.Float64).alias("length_variance")), y)
    with pytest.raises(TtsplanError, match="Did you mean"):
        resolve_features("agreement_sprad")
    with pytest.warns(GainDataWarning, match="constant"):
        m = GainPredictor(features=NAMES).fit(X.with_columns(pl.lit(1.0).alias("answer_entropy")), y)
    assert m.coef_[3] == 0.0
    assert GainPredictor().fit(X.select(NAMES).to_numpy(), y).n_features_in_ == 4


def test_loco_and_lomo_scores_with_intervals():
    X, y, _ = _synthetic(60, noise=0.005)
    res = cross_validate(X, y, X["config"].to_list(), features=NAMES, alpha=1e-3, n_boot=300)
    assert res.spearman > 0.9 and res.kendall > 0.75 and res.mae < 0.01
    lo, hi = res.intervals["spearman"]
    assert lo <= res.spearman <= hi
    summ = res.summary()
    assert summ["metric"].to_list() == ["spearman", "kendall", "mae"] and summ["n_configs"][0] == 60
    lomo = cross_validate(X, y, X["config"].to_list(), groups=X["model"].to_list(), features=NAMES, n_boot=0)
    assert lomo.scheme == "leave_one_group_out" and lomo.spearman > 0.9
    with pytest.raises(TtsplanError, match="at least 3 configurations"):
        cross_validate(X.head(2), y[:2], ["a", "b"])


def test_stability_selects_informative_features():
    X, y, _ = _synthetic(80, noise=0.01)
    stab = stability(X, y, features=NAMES, n_boot=100, seed=1)
    freq = dict(zip(stab["feature"], stab["selection_frequency"]))
    assert freq["agreement_spread"] == 1.0 and freq["first_correct_position"] == 1.0
    assert freq["answer_entropy"] < 0.8
    sets = compare_feature_sets(X, y, X["config"].to_list(), sets={"informative": NAMES[:3], "noise": NAMES[3:]},
                                n_boot=50)
    by = dict(zip(sets["feature_set"], sets["loco_spearman"]))
    assert by["informative"] > 0.9 > by["noise"]


def _sample_table(seed: int = 0) -> pl.DataFrame:
    """Six configs whose maj gain differs: correct-answer share p per prompt, a strong wrong answer."""
    rng = np.random.default_rng(seed)
    rows = []
    for ci, (a, b, wrong) in enumerate([(2, 2, 0.2), (3, 1, 0.5), (1, 3, 0.3), (2, 5, 0.8), (5, 2, 0.1), (1, 1, 0.6)]):
        for pi in range(30):
            p = rng.beta(a, b)
            for j in range(8):
                u = rng.random()
                ans = "A" if u < p else ("W" if rng.random() < wrong else f"x{j}")
                rows.append((f"cfg{ci}", f"m{ci % 3}", "toy", f"q{pi}", j, ans, ans == "A",
                             int(rng.integers(20, 200))))
    return validate_sample_table(pl.DataFrame(rows, orient="row", schema=[
        "config", "model", "dataset", "prompt_id", "sample_idx", "answer", "correct", "output_tokens"]))


def test_gain_dataset_and_report_on_samples():
    table = _sample_table()
    data = gain_dataset(table, "maj", 8)
    assert data.height == 6 and data["gain"].is_finite().all()
    assert set(CORE_FEATURES) <= set(data.columns)
    assert core_set(data)[-1] == "answer_entropy"  # no token entropies in this table
    with pytest.warns(GainDataWarning, match="left out: token_entropy"):
        rep = fit_report(table, "maj", 8, n_boot=50, n_boot_stability=20)
    for key in ("n_configs", "loco_spearman", "loco_spearman_ci", "loco_mae", "coefficients", "stability"):
        assert key in rep
    assert rep["n_configs"] == 6 and np.isfinite(rep["loco_spearman"])
    short = table.filter(~((pl.col("config") == "cfg5") & (pl.col("sample_idx") >= 4)))
    with pytest.warns(GainDataWarning, match="cfg5 \\(min 4 samples\\)"):
        assert gain_dataset(short, "maj", 8).height == 5


def test_degenerate_inputs():
    table = _sample_table()
    with pytest.raises(TtsplanError, match="at least 3 configurations"):
        fit_report(table.filter(pl.col("config") == "cfg0"), "maj", 8, n_boot=10)
    same = table.with_columns(pl.lit("7").alias("answer"), pl.lit(False).alias("correct"))
    with pytest.raises(TtsplanError, match="must vary"):
        fit_report(same, "maj", 8, n_boot=10)
    with pytest.raises(TtsplanError, match="n must be >= 2"):
        gain_dataset(table, "maj", 1)
    with pytest.raises(TtsplanError, match="needs column 'reward'"):
        gain_dataset(table, "bon", 4)
    with pytest.raises(TtsplanError, match="target must be one of"):
        gain_dataset(table, "mja", 4)


def test_concentration_runs_on_subsamples():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = concentration(_sample_table(), "maj", 8, features=["agreement_spread", "accuracy"],
                            prompt_counts=(10, None), ks=(4, "all"), reps=2)
    assert out.height == 4 and out["loco_spearman_mean"].is_finite().all()


def test_real_sample_configs(shared_data):
    from ttsplan.features.io import read_table

    files = [shared_data / "samples" / f for f in ("sc40_addsub.parquet", "sc40_aqua.parquet", "game24_gpt4.parquet")]
    table, _ = read_table(files)
    data = gain_dataset(table, "maj", 16)
    # the self-consistency tables reuse config names across datasets: six (config, dataset) units + 2
    assert data.height == 8 and data["config"].n_unique() == 8
    with pytest.warns(GainDataWarning, match="left out"):
        rep = fit_report(table, "maj", 16, n_boot=200, n_boot_stability=50)
    assert -1 <= rep["loco_spearman"] <= 1 and rep["loco_spearman_ci"][0] <= rep["loco_spearman_ci"][1]


def test_model_gain_recovers_the_beta_truth() -> None:
    """The success model's gain from k = 8 validation samples matches the closed form under the true
    Beta(2, 5): pass@16 − pass@1 = (1 − B(2, 21)/B(2, 5)) − 2/7; a count table cannot give maj (null)."""
    from scipy import special

    from ttsplan.features.schema import validate_count_table
    from ttsplan.fitting.gain import model_gain

    rng = np.random.default_rng(11)
    rows = []
    for cfg, (a, b) in {"easy": (5.0, 2.0), "hard": (2.0, 5.0)}.items():
        p = rng.beta(a, b, 3000)
        c = rng.binomial(8, p)
        rows.append(pl.DataFrame({"config": cfg, "prompt_id": [f"q{i}" for i in range(p.size)], "samples": 8,
                                  "correct_samples": c}))
    table = validate_count_table(pl.concat(rows))
    got = dict(model_gain(table, "pass", 16).iter_rows())
    for cfg, (a, b) in {"easy": (5.0, 2.0), "hard": (2.0, 5.0)}.items():
        truth = 1 - np.exp(special.betaln(a, b + 16) - special.betaln(a, b)) - a / (a + b)
        assert got[cfg] == pytest.approx(truth, abs=0.01), cfg
    assert model_gain(table, "maj", 16)["model_gain"].null_count() == 2
