"""Calibration: parameter recovery on synthetic rows, leave-one-out MAPE on the real H100 rows."""
from __future__ import annotations

import json
import warnings

import numpy as np
import polars as pl
import pytest
from sklearn.exceptions import NotFittedError

from ttsplan.features.errors import SchemaError, TtsplanError
from ttsplan.fitting.calibration import PARAMS, Calibrator, CalibrationWarning, predict_serving, serving_arrays
from ttsplan.fitting.cost import CostModel, Efficiency


def _grid(model: str = "Qwen/Qwen3-32B", engine: str = "vllm") -> pl.DataFrame:
    rows = []
    for tp in (1, 2, 4, 8):
        for b in (4, 16, 64, 128):
            for isl, osl in ((1024, 128), (1024, 1024), (4096, 512), (8192, 256)):
                rows.append({"backend": engine, "model_path": model, "system": "h100_sxm", "mode": "agg",
                             "isl": isl, "osl": osl, "batch_size": b, "tp_size": tp, "pp_size": 1})
    return pl.DataFrame(rows)


TRUE = Efficiency(e_c=0.55, e_m=0.8, t_fixed_s=3e-3, t_allreduce_s=2e-5, prefill_interference=0.6,
                  prefill_queue=0.05, kv_memory_fraction=0.85, t_request_s=0.03, queue_scale=0.3, admission_wait=0.2)


def _synthetic(noise: float = 0.0, seed: int = 0) -> pl.DataFrame:
    df = _grid()
    x, kept, _ = serving_arrays(df.with_columns(silicon_ttft_ms=pl.lit(1.0), silicon_tpot_ms=pl.lit(1.0)))
    ttft, tpot = predict_serving(TRUE, x)
    rng = np.random.default_rng(seed)
    return df.with_columns(silicon_ttft_ms=pl.Series(ttft * 1e3 * np.exp(noise * rng.standard_normal(len(ttft)))),
                           silicon_tpot_ms=pl.Series(tpot * 1e3 * np.exp(noise * rng.standard_normal(len(tpot)))))


def test_recovers_known_parameters() -> None:
    cal = Calibrator(loo=False, correction=False).fit(_synthetic())
    eff = cal.params_[("H100", "vllm")]
    for p in ("e_c", "e_m", "t_fixed_s", "prefill_interference", "t_request_s"):
        assert getattr(eff, p) == pytest.approx(getattr(TRUE, p), rel=0.05), p
    m = cal.metrics_[0]
    assert m["fit_mape_ttft"] < 1 and m["fit_mape_tpot"] < 1


def test_noisy_recovery_intervals_cover_truth_and_loo_is_honest() -> None:
    cal = Calibrator(loo=True, correction=True).fit(_synthetic(noise=0.05))
    lo, hi = cal.intervals_[("H100", "vllm")]["e_m"]
    assert lo <= TRUE.e_m <= hi
    m = cal.metrics_[0]
    # 5% log-noise → MAPE ≈ 4%; LOO can only be worse than in-sample
    assert 2 < m["loo_mape_tpot"] < 8 and m["loo_mape_tpot"] >= m["fit_mape_tpot"]
    s = cal.summary()
    assert set(s["parameter"]) == set(PARAMS)
    assert {"estimate", "ci_low", "ci_high", "loo_mape_ttft", "naive_mape_ttft"} <= set(s.columns)


def test_round_trip_into_cost_model(tmp_path) -> None:
    cal = Calibrator(loo=False).fit(_synthetic())
    path = tmp_path / "calib.json"
    cal.save(path)
    data = json.loads(path.read_text())
    assert data["schema"] == "ttsplan.calibration/1" and data["entries"][0]["engine"] == "vllm"
    cm = CostModel("Qwen3-32B", "H100", calibration=path, engine="vllm")
    assert cm.efficiency.e_c == pytest.approx(cal.params_[("H100", "vllm")].e_c)
    # adapted to another GPU through its spec
    assert CostModel("Qwen3-32B", "H200", calibration=path).efficiency.e_m == pytest.approx(
        cal.params_[("H100", "vllm")].e_m)


def test_bad_inputs(tmp_path) -> None:
    with pytest.raises(NotFittedError, match="not fitted"):
        Calibrator().summary()
    bad = tmp_path / "bad.csv"
    bad.write_text("backend,isl\nvllm,10\n")
    with pytest.raises(SchemaError, match="model_path"):
        Calibrator().fit(bad)
    neg = _synthetic().with_columns(silicon_tpot_ms=pl.lit(-1.0))
    with pytest.raises(SchemaError, match="silicon_tpot_ms"):
        Calibrator().fit(neg)
    moe = _grid("Qwen/Qwen3-235B-A22B-FP8").with_columns(silicon_ttft_ms=pl.lit(1.0), silicon_tpot_ms=pl.lit(1.0))
    with pytest.raises(TtsplanError, match="got none usable"):
        Calibrator().fit(moe)
    with pytest.raises(TtsplanError, match="group_by"):
        Calibrator(group_by="gpu").fit(_synthetic())
    with pytest.raises(TtsplanError, match="does-not-exist"):
        Calibrator().fit(tmp_path / "does-not-exist.csv")


@pytest.fixture(scope="module")
def h100_calibration(shared_data) -> Calibrator:
    """One full leave-one-out calibration on the real H100 rows, shared by the tests below."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        return Calibrator(loo=True).fit(shared_data / "serving" / "h100_silicon.csv")


def test_h100_silicon_leave_one_out(h100_calibration) -> None:
    """The issue's target: calibrated LOO MAPE per (GPU, engine) on the 579 dense aggregated rows."""
    cal = h100_calibration
    by = {m["engine"]: m for m in cal.metrics_}
    assert sum(m["rows"] for m in cal.metrics_) == 579
    assert {k: by[k]["rows"] for k in by} == {"sglang": 84, "trtllm": 357, "vllm": 138}
    for eng, m in by.items():
        assert m["loo_mape_tpot"] <= 10.0, (eng, m)
        assert m["loo_mape_ttft"] < 0.5 * m["naive_mape_ttft"], (eng, m)
        assert m["loo_mape_tpot"] < 0.5 * m["naive_mape_tpot"], (eng, m)
        # each stage helps out of sample: physics < naive, ridge <= physics (+ noise), trees < ridge for TTFT
        assert m["physics_loo_mape_ttft"] < 0.5 * m["naive_mape_ttft"], (eng, m)
        assert m["linear_loo_mape_ttft"] <= m["physics_loo_mape_ttft"] + 0.5, (eng, m)
        assert m["loo_mape_ttft"] < m["linear_loo_mape_ttft"], (eng, m)
    assert by["sglang"]["loo_mape_ttft"] <= 10.0
    assert by["vllm"]["loo_mape_ttft"] <= 10.0
    # over the 579 rows (each row predicted by its own engine's leave-one-out calibration)
    overall = cal.overall()
    assert overall["loo_mape_ttft"] <= 10.0 and overall["loo_mape_tpot"] <= 10.0, overall
    assert overall["naive_mape_ttft"] > 50 and overall["naive_mape_tpot"] > 50, overall
    # fitted efficiencies are physical
    for eff in cal.params_.values():
        assert 0 < eff.e_c <= 1 and 0 < eff.e_m <= 1


@pytest.mark.xfail(strict=True, reason="TTFT LOO MAPE is 10.6% on trtllm (8.0% sglang, 9.1% vllm; physics "
                                       "alone 26.5%): the Llama-3.1-8B trtllm rows are noisy at batch 64-128 "
                                       "(e.g. 692 ms vs 275 ms for neighbouring isl)")
def test_h100_silicon_ttft_target_all_engines(h100_calibration) -> None:
    assert all(m["loo_mape_ttft"] <= 10.0 for m in h100_calibration.metrics_)


def test_tree_stage_is_refitted_inside_each_fold() -> None:
    """Leaf-size-1 trees interpolate the training rows; an honest LOO cannot beat the 5% noise."""
    cal = Calibrator(loo=True).fit(_synthetic(noise=0.05, seed=3))
    m = cal.metrics_[0]
    assert m["fit_mape_ttft"] < 1.0
    assert m["loo_mape_ttft"] > 2.5
    assert {"linear_loo_mape_ttft", "physics_loo_mape_ttft"} <= set(m)
    # physics-only: no correction, no trees
    phys = Calibrator(loo=False, correction=False).fit(_synthetic())
    assert phys.trees_[("H100", "vllm")] == [] and phys.corrections_[("H100", "vllm")] == []


def test_prefill_wait_term_hand_computed() -> None:
    """TTFT gains prefill_wait · t_pre · rho / (1 − rho), rho = B·t_pre / (osl·t_dec + B·t_pre)."""
    df = _grid().with_columns(silicon_ttft_ms=pl.lit(1.0), silicon_tpot_ms=pl.lit(1.0))
    x, _, _ = serving_arrays(df)
    base = Efficiency(e_c=0.5, e_m=0.8, t_fixed_s=2e-3, queue_scale=0.0)
    t0, p0 = predict_serving(base, x)
    t1, p1 = predict_serving(Efficiency(e_c=0.5, e_m=0.8, t_fixed_s=2e-3, queue_scale=0.0, prefill_wait=1.0), x)
    np.testing.assert_allclose(p0, p1)
    # with no other shape terms: TTFT = t_pre, TPOT = t_dec
    t_pre, t_dec = t0, p0
    rho = np.minimum(x["B"] * t_pre / (x["osl"] * t_dec + x["B"] * t_pre), 0.98)
    np.testing.assert_allclose(t1 - t0, t_pre * rho / (1 - rho), rtol=1e-12)


def test_progress_callback_and_bad_hyperparameters() -> None:
    seen = []
    Calibrator(loo=True, trees=5, n_jobs=1).fit(_synthetic(noise=0.02), progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (64, 64) and all(t == 64 for _, t in seen)
    with pytest.raises(TtsplanError, match="trees"):
        Calibrator(trees=-1).fit(_synthetic())
    with pytest.raises(TtsplanError, match="n_jobs"):
        Calibrator(n_jobs=0).fit(_synthetic())


def test_moe_rows_are_reported_apart() -> None:
    dense = _synthetic()
    moe = _grid("Qwen/Qwen3-235B-A22B-FP8", "trtllm").filter(pl.col("tp_size") >= 4)
    x, _, _ = serving_arrays(moe.with_columns(silicon_ttft_ms=pl.lit(1.0), silicon_tpot_ms=pl.lit(1.0)),
                             include_moe=True)
    t, p = predict_serving(TRUE, x)
    both = pl.concat([dense, moe.with_columns(silicon_ttft_ms=pl.Series(t * 1e3), silicon_tpot_ms=pl.Series(p * 1e3))])
    with pytest.warns(CalibrationWarning, match="MoE model"):
        Calibrator(loo=False).fit(both)
    cal = Calibrator(loo=False, include_moe=True).fit(both)
    assert set(cal.params_) == {("H100", "vllm"), ("H100", "trtllm", "Qwen3-235B-A22B")}
    assert cal.overall(moe=True)["fit_mape_tpot"] < 2 and cal.overall()["fit_mape_tpot"] < 2
