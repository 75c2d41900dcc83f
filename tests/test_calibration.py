"""Calibration: parameter recovery on synthetic rows, cold-start validation folds, transfer across GPUs, and the
CostModel built from calib.json reproducing what `calibrate` reports (synthetic and the real H100 / B200 rows)."""
from __future__ import annotations

import json
import warnings

import numpy as np
import polars as pl
import pytest
from sklearn.exceptions import NotFittedError
from typer.testing import CliRunner

from ttsplan.cli.main import app
from ttsplan.features.errors import SchemaError, TtsplanError
from ttsplan.fitting.calibration import (
    FIXED,
    PARAMS,
    CalibrationWarning,
    Calibrator,
    check_overlap,
    pack_trees,
    predict_serving,
    serving_arrays,
)
from ttsplan.fitting.cost import CostModel, Efficiency, predict_trees

runner = CliRunner()


def _grid(model: str = "Qwen/Qwen3-32B", engine: str = "vllm", system: str = "h100_sxm") -> pl.DataFrame:
    rows = []
    for tp in (1, 2, 4, 8):
        for b in (4, 16, 64, 128):
            for isl, osl in ((1024, 128), (1024, 1024), (4096, 512), (8192, 256)):
                rows.append({"backend": engine, "model_path": model, "system": system, "mode": "agg",
                             "isl": isl, "osl": osl, "batch_size": b, "tp_size": tp, "pp_size": 1})
    return pl.DataFrame(rows)


TRUE = Efficiency(e_c=0.55, e_m=0.8, t_fixed_s=3e-3, t_allreduce_s=2e-5, prefill_interference=0.6,
                  prefill_queue=0.05, kv_memory_fraction=0.85, t_request_s=0.03, queue_scale=1.0, admission_wait=0.0,
                  prefill_wait=0.4)


def _synthetic(noise: float = 0.0, seed: int = 0, eff: Efficiency = TRUE, **grid: str) -> pl.DataFrame:
    df = _grid(**grid)
    x, _, _ = serving_arrays(df.with_columns(silicon_ttft_ms=pl.lit(1.0), silicon_tpot_ms=pl.lit(1.0)))
    ttft, tpot = predict_serving(eff, x)
    rng = np.random.default_rng(seed)
    return df.with_columns(silicon_ttft_ms=pl.Series(ttft * 1e3 * np.exp(noise * rng.standard_normal(len(ttft)))),
                           silicon_tpot_ms=pl.Series(tpot * 1e3 * np.exp(noise * rng.standard_normal(len(tpot)))))


def _costmodel_mape(rows: pl.DataFrame, calibration, gpu: str | None = None) -> tuple[float, float]:
    """MAPE (%) of CostModel(model, gpu, calibration=..., engine=..., tp=..., dtype=...).serving on measured rows,
    one CostModel per deployment, as the planner builds it."""
    x, kept, _ = serving_arrays(rows)
    kept = kept.with_row_index("i")
    t, p = np.empty(kept.height), np.empty(kept.height)
    for (model, g, engine, dtype, tp), d in kept.group_by("model", "gpu", "engine", "dtype", "tp_size"):
        cm = CostModel(model, gpu or g, calibration=calibration, engine=engine, tp=int(tp), dtype=dtype)
        out = cm.serving(d["batch_size"].to_numpy(), d["isl"].to_numpy(), d["osl"].to_numpy())
        t[d["i"].to_numpy()], p[d["i"].to_numpy()] = out["ttft_s"], out["tpot_s"]
    return (float(np.mean(np.abs(t / x["ttft"] - 1)) * 100), float(np.mean(np.abs(p / x["tpot"] - 1)) * 100))


def test_recovers_known_parameters() -> None:
    cal = Calibrator(loo=False, correction=False).fit(_synthetic())
    eff = cal.physics_[("vllm",)]
    for p in ("e_c", "e_m", "t_fixed_s", "prefill_interference", "t_request_s", "prefill_wait"):
        assert getattr(eff, p) == pytest.approx(getattr(TRUE, p), rel=0.05), p
    assert {p: getattr(eff, p) for p in FIXED} == FIXED      # held fixed, not fitted
    m = cal.metrics_[0]
    assert m["fit_mape_ttft"] < 1 and m["fit_mape_tpot"] < 1 and m["residual"] is False
    assert cal.params_[("H100", "vllm")] == eff              # no residual stage: the shared physics


def test_noisy_recovery_intervals_cover_truth_and_loo_is_honest() -> None:
    cal = Calibrator(loo=True, correction=True, trees=20).fit(_synthetic(noise=0.05))
    lo, hi = cal.physics_intervals_[("vllm",)]["e_m"]
    assert lo <= TRUE.e_m <= hi
    m = cal.metrics_[0]
    # 5% log-noise → MAPE ≈ 4%; out of sample can only be worse than in sample
    assert 2 < m["loo_mape_tpot"] < 8 and m["loo_mape_tpot"] >= m["fit_mape_tpot"]
    # one model, engine and GPU: nothing to hold out for the other schemes
    assert m["lomo_mape_ttft"] is None and m["loeo_mape_ttft"] is None and m["logo_mape_ttft"] is None
    assert set(cal.validation_) == {"loo"}
    s = cal.summary()
    assert set(s["parameter"]) == set(PARAMS)
    assert s.filter(pl.col("fixed"))["parameter"].sort().to_list() == sorted(FIXED)
    assert {"estimate", "ci_low", "ci_high", "loo_mape_ttft", "fit_mape_ttft"} <= set(s.columns)


def test_folds_refit_from_the_cold_start() -> None:
    """A leave-one-out / leave-one-model-out prediction is exactly what a fresh calibration fitted without the
    held-out rows predicts for them (a fold warm-started from the full-data solution would differ)."""
    a = _synthetic(noise=0.08, seed=1)
    b = _synthetic(noise=0.08, seed=2, model="Qwen/Qwen3-8B").filter(pl.col("tp_size") <= 2)
    both = pl.concat([a, b])
    cal = Calibrator(loo=True, trees=5, n_jobs=1).fit(both)
    assert set(cal.validation_) == {"loo", "lomo"}
    for i in (0, 37, both.height - 1):
        fresh = Calibrator(loo=False, trees=5).fit(both.with_row_index("r").filter(pl.col("r") != i).drop("r"))
        want = fresh.predict(both[i:i + 1])
        got = cal.validation_predictions_["loo"][i]
        np.testing.assert_allclose(got[:2] * 1e3, [want["pred_ttft_ms"][0], want["pred_tpot_ms"][0]], rtol=1e-12)
    # leave Qwen3-8B out: the Qwen3-32B rows alone fit the engine; the new model gets the physics only
    fresh = Calibrator(loo=False, trees=5).fit(a)
    want = fresh.predict(b)
    assert not want["residual"].any()
    got = cal.validation_predictions_["lomo"][a.height:]
    np.testing.assert_allclose(got[:, 0] * 1e3, want["pred_ttft_ms"].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(got[:, 4] * 1e3, want["physics_ttft_ms"].to_numpy(), rtol=1e-12)


def test_round_trip_into_cost_model_and_residual_stays_on_its_gpu(tmp_path) -> None:
    cal = Calibrator(loo=False, trees=10).fit(_synthetic(noise=0.05))
    path = tmp_path / "calib.json"
    cal.save(path)
    data = json.loads(path.read_text())
    assert data["schema"] == "ttsplan.calibration/2" and data["entries"][0]["engine"] == "vllm"
    assert [p["engine"] for p in data["physics"]] == ["vllm"]
    here = CostModel("Qwen3-32B", "H100", calibration=path, engine="vllm")
    assert here.residual is not None and here.efficiency == cal.params_[("H100", "vllm")]
    # another GPU, or a model the residual never saw: the shared physics, no residual
    for cm in (CostModel("Qwen3-32B", "H200", calibration=path), CostModel("Qwen3-8B", "H100", calibration=path)):
        assert cm.residual is None and cm.efficiency == cal.physics_[("vllm",)]
        out = cm.serving([8, 64], 1024, 512)
        np.testing.assert_array_equal(out["ttft_s"], out["physics_ttft_s"])
    # an engine never calibrated: (only one engine here) the same physics
    assert CostModel("Qwen3-32B", "H100", calibration=path, engine="sglang").efficiency == cal.physics_[("vllm",)]


def test_cost_model_reproduces_calibrate_figures_synthetic(tmp_path) -> None:
    """CostModel(model, gpu, calibration=calib.json, engine=...) — what `plan` prices with — gives on the measured
    rows exactly the MAPE `calibrate` reports: in sample on the fitted GPU, transfer on another GPU."""
    train = _synthetic(noise=0.05)
    test = _synthetic(noise=0.05, seed=4, eff=Efficiency(e_c=0.4, e_m=0.7, t_fixed_s=4e-3, t_request_s=0.05),
                      system="h200_sxm")
    train.write_csv(tr := tmp_path / "train.csv")
    test.write_csv(te := tmp_path / "test.csv")
    calib = tmp_path / "calib.json"
    res = runner.invoke(app, ["calibrate", str(tr), "--no-loo", "--trees", "10", "--evaluate", str(te), "--out",
                              str(calib), "--format", "json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    fit = _costmodel_mape(train, calib)
    assert fit == pytest.approx((rep["fit_mape_ttft"], rep["fit_mape_tpot"]), rel=1e-9, abs=1e-9)
    moved = _costmodel_mape(test, calib)
    assert moved == pytest.approx((rep["test_mape_ttft"], rep["test_mape_tpot"]), rel=1e-9)
    assert rep["test_mape_ttft"] == pytest.approx(rep["test_physics_mape_ttft"])   # no residual on the H200
    assert rep["test_groups"][0]["gpu"] == "H200" and rep["test_groups"][0]["residual"] is False


def test_tree_packing_reproduces_scikit_learn() -> None:
    from sklearn.ensemble import ExtraTreesRegressor

    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 4))
    y = X[:, 0] - 2 * X[:, 1] ** 2 + 0.1 * rng.standard_normal(200)
    forest = ExtraTreesRegressor(n_estimators=7, random_state=0).fit(X, y)
    packed = pack_trees(forest)
    thresholds = np.concatenate([e.tree_.threshold[e.tree_.children_left >= 0] for e in forest.estimators_])
    Z = np.vstack([rng.standard_normal((300, 4)) * 2, np.tile(thresholds[:40, None], (1, 4))])  # boundary values
    np.testing.assert_array_equal(predict_trees(packed, Z), forest.predict(Z))
    assert json.loads(json.dumps(packed)) == packed


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


def test_evaluate_without_overlap_is_one_message_exit_2(tmp_path) -> None:
    _synthetic().write_csv(tr := tmp_path / "train.csv")
    other = _synthetic(engine="sglang", model="Qwen/Qwen3-8B", system="h200_sxm")
    other.write_csv(te := tmp_path / "other.csv")
    with pytest.raises(TtsplanError, match="must share an engine"):
        check_overlap(tr, te)
    with pytest.raises(TtsplanError, match="must share an engine"):
        Calibrator(loo=False, trees=0).fit(tr).evaluate(te)
    res = runner.invoke(app, ["calibrate", str(tr), "--evaluate", str(te), "--out", str(tmp_path / "c.json")])
    assert res.exit_code == 2 and "Traceback" not in res.output and not (tmp_path / "c.json").exists()
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) <= 3 and "must share an engine" in res.output and "calibration: engines ['vllm']" in res.output
    # a known engine but a new model on a new GPU does not overlap either; the same model on a new GPU does
    with pytest.raises(TtsplanError, match="must share an engine"):
        check_overlap(tr, _synthetic(model="Qwen/Qwen3-8B", system="h200_sxm"))
    check_overlap(tr, _synthetic(system="h200_sxm"))


def test_tree_stage_is_refitted_inside_each_fold() -> None:
    """Leaf-size-1 trees interpolate the training rows; an honest LOO cannot beat the 5% noise."""
    cal = Calibrator(loo=True, trees=20).fit(_synthetic(noise=0.05, seed=3))
    m = cal.metrics_[0]
    assert m["fit_mape_ttft"] < 1.0
    assert m["loo_mape_ttft"] > 2.5
    assert {"linear_loo_mape_ttft", "physics_loo_mape_ttft"} <= set(m)
    # physics-only: no correction, no trees
    phys = Calibrator(loo=False, correction=False).fit(_synthetic())
    assert phys.trees_[("H100", "vllm")] is None and phys.corrections_[("H100", "vllm")] == []


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
    assert set(cal.physics_) == {("vllm",), ("trtllm", "Qwen3-235B-A22B")}
    assert cal.overall(moe=True)["physics_fit_mape_tpot"] < 2 and cal.overall()["physics_fit_mape_tpot"] < 2


def test_physics_is_shared_across_gpus_and_left_out_per_gpu() -> None:
    """Rows of two GPUs fit one physics per engine (GPU constants from the specs recover one set of efficiencies);
    leave-one-GPU-out predicts each GPU from the other one's rows alone, with the physics only."""
    both = pl.concat([_synthetic(noise=0.02, seed=5), _synthetic(noise=0.02, seed=6, system="b200_sxm")])
    cal = Calibrator(loo=True, trees=5).fit(both)
    assert set(cal.physics_) == {("vllm",)} and set(cal.params_) == {("H100", "vllm"), ("B200", "vllm")}
    assert cal.physics_[("vllm",)].e_m == pytest.approx(TRUE.e_m, rel=0.05)
    for m in cal.metrics_:
        assert m["logo_mape_tpot"] < 5 and m["logo_mape_tpot"] == pytest.approx(m["physics_logo_mape_tpot"])


# -- the real rows: ../shared/data/serving ---------------------------------------------------------------------
def _quiet_fit(cal: Calibrator, path) -> Calibrator:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        return cal.fit(path)


@pytest.fixture(scope="module")
def h100_validated(shared_data) -> Calibrator:
    """The full validation (cold-start leave-one-out, -model-out, -engine-out) on the real H100 rows."""
    return _quiet_fit(Calibrator(loo=True), shared_data / "serving" / "h100_silicon.csv")


#: figures documented in docs/cost-model.md (MAPE %, `ttsplan calibrate ../shared/data/serving/h100_silicon.csv`)
DOC_H100 = {"loo_mape_ttft": 9.9, "loo_mape_tpot": 6.5, "physics_loo_mape_ttft": 23.7, "physics_loo_mape_tpot": 11.4,
            "lomo_mape_ttft": 39.9, "lomo_mape_tpot": 30.9, "loeo_mape_ttft": 45.9, "loeo_mape_tpot": 23.1,
            "naive_mape_ttft": 90.7, "naive_mape_tpot": 66.8}
DOC_H100_ENGINE_LOO_TTFT = {"sglang": 7.5, "trtllm": 10.4, "vllm": 9.9}
#: `ttsplan calibrate .../h100_silicon.csv --evaluate .../blackwell_silicon.csv`: the 264 dense aggregated B200 rows
DOC_B200 = {"test_mape_ttft": 39.6, "test_mape_tpot": 15.8, "test_naive_mape_ttft": 120.0,
            "test_naive_mape_tpot": 67.2}


@pytest.mark.slow
def test_h100_silicon_cold_start_validation(h100_validated) -> None:
    """Issue 18: cold-start leave-one-out MAPE <= 10% (TTFT and TPOT) on the 579 dense aggregated H100 rows, with
    leave-one-model-out and leave-one-engine-out beside it; the documented figures within 0.3 points."""
    cal = h100_validated
    by = {m["engine"]: m for m in cal.metrics_}
    assert {k: by[k]["rows"] for k in by} == {"sglang": 84, "trtllm": 357, "vllm": 138}
    overall = cal.overall()
    for k, v in DOC_H100.items():
        assert overall[k] == pytest.approx(v, abs=0.3), k
    for eng, v in DOC_H100_ENGINE_LOO_TTFT.items():
        assert by[eng]["loo_mape_ttft"] == pytest.approx(v, abs=0.3), eng
    assert overall["loo_mape_ttft"] <= 10.0 and overall["loo_mape_tpot"] <= 10.0, overall
    assert overall["logo_mape_ttft"] is None                                   # one GPU: nothing to hold out
    for m in cal.metrics_:
        assert m["loo_mape_tpot"] <= 10.0, m
        # each stage helps in sample's neighbourhood; holding out a model or an engine costs accuracy
        assert m["physics_loo_mape_ttft"] < 0.5 * m["naive_mape_ttft"], m
        assert m["loo_mape_ttft"] < m["linear_loo_mape_ttft"] <= m["physics_loo_mape_ttft"] + 0.5, m
        assert m["lomo_mape_ttft"] > m["loo_mape_ttft"] and m["loeo_mape_ttft"] > m["loo_mape_ttft"], m
    for eff in cal.physics_.values():
        assert 0 < eff.e_c <= 1 and 0 < eff.e_m <= 1


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="trtllm TTFT LOO MAPE is 10.4% (sglang 7.5%, vllm 9.9%; 9.9% over the 579 "
                                       "rows): the Llama-3.1-8B trtllm rows are noisy at batch 64-128")
def test_h100_silicon_ttft_target_every_engine(h100_validated) -> None:
    assert all(m["loo_mape_ttft"] <= 10.0 for m in h100_validated.metrics_)


@pytest.fixture(scope="module")
def h100_to_b200(shared_data, tmp_path_factory) -> tuple[dict, object]:
    """`ttsplan calibrate h100_silicon.csv --no-loo --evaluate blackwell_silicon.csv --out calib.json` (json)."""
    calib = tmp_path_factory.mktemp("calib") / "calib.json"
    res = runner.invoke(app, ["calibrate", str(shared_data / "serving" / "h100_silicon.csv"), "--no-loo",
                              "--evaluate", str(shared_data / "serving" / "blackwell_silicon.csv"),
                              "--out", str(calib), "--format", "json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout), calib


def test_h100_calibration_transfers_to_b200(h100_to_b200) -> None:
    """Fitted on H100 rows only, scored on the B200 dense aggregated rows (Llama-3.1-70B fp8 / fp4, trtllm and
    vllm): the physics alone (no residual crosses GPUs); TPOT meets the <= 20% target."""
    rep, _ = h100_to_b200
    assert rep["test_rows"] == 264
    assert {(g["engine"], g["dtype"]): g["rows"] for g in rep["test_groups"]} == {
        ("trtllm", "fp4"): 72, ("trtllm", "fp8"): 72, ("vllm", "fp4"): 60, ("vllm", "fp8"): 60}
    assert not any(g["residual"] for g in rep["test_groups"])
    assert rep["test_mape_ttft"] == rep["test_physics_mape_ttft"]
    for k, v in DOC_B200.items():
        assert rep[k] == pytest.approx(v, abs=0.3), k
    assert rep["test_mape_tpot"] <= 20.0
    assert rep["test_mape_ttft"] < 0.5 * rep["test_naive_mape_ttft"]
    assert rep["test_skipped"] == {}   # every usable B200 row shares the engine and the model or GPU


@pytest.mark.xfail(strict=True, reason="B200 TTFT transfer MAPE is 39.6% (target 30%): B200 trtllm's request "
                                       "overhead is below H100's and its osl-1024 rows take 3-4x longer to the first "
                                       "token than its osl-8192 rows; B200 vLLM TTFT is 1.3-1.5x what H100 implies")
def test_h100_calibration_b200_ttft_target(h100_to_b200) -> None:
    assert h100_to_b200[0]["test_mape_ttft"] <= 30.0


def test_cost_model_reproduces_calibrate_figures_on_real_rows(h100_to_b200, shared_data) -> None:
    """The planner's CostModel, built from the written calib.json, gives on the 579 H100 rows the in-sample MAPE
    and on the 264 B200 rows the transfer MAPE that `calibrate` printed."""
    rep, calib = h100_to_b200
    h100 = pl.read_csv(shared_data / "serving" / "h100_silicon.csv", infer_schema_length=10_000)
    b200 = pl.read_csv(shared_data / "serving" / "blackwell_silicon.csv", infer_schema_length=10_000)
    assert _costmodel_mape(h100, calib) == pytest.approx((rep["fit_mape_ttft"], rep["fit_mape_tpot"]),
                                                         rel=1e-9, abs=1e-9)
    assert _costmodel_mape(b200, calib) == pytest.approx((rep["test_mape_ttft"], rep["test_mape_tpot"]), rel=1e-9)
    # and the figure is not trivially reproduced: the naive roofline is far off on the same rows
    assert _costmodel_mape(b200, None)[1] == pytest.approx(rep["test_naive_mape_tpot"], rel=1e-9)


def test_shipped_calibration_is_the_h100_fit(h100_to_b200) -> None:
    """data/h100_calibration.json is `ttsplan calibrate h100_silicon.csv --no-loo --out ...` of this code."""
    from ttsplan.data import H100_CALIBRATION

    _, calib = h100_to_b200
    shipped, fresh = json.loads(H100_CALIBRATION.read_text()), json.loads(calib.read_text())
    assert shipped["schema"] == fresh["schema"]
    assert shipped["physics"] == fresh["physics"]
    assert [e["params"] for e in shipped["entries"]] == [e["params"] for e in fresh["entries"]]
