"""`ttsplan fit` and `ttsplan extrapolate` through CliRunner: JSON contract, warnings, exit code 2."""
from __future__ import annotations

import json

import numpy as np
import polars as pl
from typer.testing import CliRunner

from ttsplan.cli.main import app

runner = CliRunner()


def _counts_file(tmp_path, configs: int = 3, prompts: int = 60, samples: int = 400, seed: int = 0, prefix: str = "cfg"):
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(configs):
        p = rng.beta(0.3 + 0.2 * c, 3.0, prompts)
        for i in range(prompts):
            rows.append((f"{prefix}{c}", f"m{c}", "toy", f"q{i}", samples, int(rng.binomial(samples, p[i]))))
    path = tmp_path / "counts.parquet"
    pl.DataFrame(rows, orient="row", schema=["config", "model", "dataset", "prompt_id", "samples",
                                            "correct_samples"]).write_parquet(path)
    return path


def _samples_file(tmp_path, k: int = 8, seed: int = 0, short_config: bool = False):
    rng = np.random.default_rng(seed)
    rows = []
    for ci, (a, b, wrong) in enumerate([(2, 2, 0.2), (3, 1, 0.5), (1, 3, 0.3), (2, 5, 0.8), (5, 2, 0.1)]):
        kk = 4 if short_config and ci == 4 else k
        for pi in range(25):
            p = rng.beta(a, b)
            for j in range(kk):
                ans = "A" if rng.random() < p else ("W" if rng.random() < wrong else f"x{j}")
                rows.append((f"cfg{ci}", f"m{ci}", "toy", f"q{pi}", j, ans, ans == "A", int(rng.integers(20, 200))))
    path = tmp_path / "samples.parquet"
    pl.DataFrame(rows, orient="row", schema=["config", "model", "dataset", "prompt_id", "sample_idx", "answer",
                                            "correct", "output_tokens"]).write_parquet(path)
    return path


def test_extrapolate_json_contract(tmp_path):
    path = _counts_file(tmp_path)
    res = runner.invoke(app, ["extrapolate", str(path), "--fit-k", "40", "--predict-k", "400", "--format", "json",
                              "--n-boot", "10"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert set(out["mean_abs_error"]) == {"beta", "per_problem_power_law", "aggregate_power_law"}
    assert len(out["per_config"]) == 9
    row = out["per_config"][0]
    assert {"config", "law", "predicted", "actual", "abs_error"} <= set(row)
    assert all(np.isfinite(r["abs_error"]) for r in out["per_config"])
    again = json.loads(runner.invoke(app, ["extrapolate", str(path), "--fit-k", "40", "--predict-k", "400",
                                           "--format", "json", "--n-boot", "10"]).stdout)
    assert again == out  # seeded


def test_extrapolate_table_and_errors(tmp_path):
    path = _counts_file(tmp_path)
    res = runner.invoke(app, ["extrapolate", str(path), "--fit-k", "40", "--predict-k", "400", "--n-boot", "0"])
    assert res.exit_code == 0 and "aggregate_power_law" in res.stdout and "(mean over configs)" in res.stdout
    res = runner.invoke(app, ["extrapolate", str(path), "--fit-k", "40", "--predict-k", "40"])
    assert res.exit_code == 2 and "predict-k must be larger" in res.output
    res = runner.invoke(app, ["extrapolate", str(path), "--fit-k", "1", "--predict-k", "40"])
    assert res.exit_code == 2 and "fit-k must be >= 2" in res.output
    res = runner.invoke(app, ["extrapolate", str(path), "--fit-k", "10", "--predict-k", "4000"])
    assert res.exit_code == 2 and "at least predict-k=4000" in res.output
    res = runner.invoke(app, ["extrapolate", str(path), "--fit-k", "10", "--predict-k", "40", "--laws", "betta"])
    assert res.exit_code == 2 and 'Did you mean "beta"' in res.output
    zero = tmp_path / "zero.parquet"
    pl.read_parquet(path).with_columns(pl.lit(0).alias("correct_samples")).write_parquet(zero)
    res = runner.invoke(app, ["extrapolate", str(zero), "--fit-k", "10", "--predict-k", "40"])
    assert res.exit_code == 2 and "no correct sample anywhere" in res.output


def test_fit_json_contract_and_skip_warning(tmp_path):
    path = _samples_file(tmp_path, short_config=True)
    out_file = tmp_path / "model.json"
    res = runner.invoke(app, ["fit", str(path), "--target", "maj", "--n", "4", "--format", "json", "--n-boot", "50",
                              "--out", str(out_file)])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    for key in ("n_configs", "loco_spearman", "loco_spearman_ci", "loco_mae", "coefficients", "stability"):
        assert key in out
    assert out["n_configs"] == 4 and "cfg4 (min 4 samples)" in res.stderr
    assert json.loads(out_file.read_text())["predictions"] == out["predictions"]
    table = runner.invoke(app, ["fit", str(path), "--target", "pass", "--n", "4", "--n-boot", "20"])
    assert table.exit_code == 0 and "LOCO Spearman" in table.stdout


def test_fit_errors_exit_2(tmp_path):
    path = _samples_file(tmp_path)
    res = runner.invoke(app, ["fit", str(path), "--target", "maj", "--n", "1"])
    assert res.exit_code == 2 and "n must be >= 2" in res.output
    res = runner.invoke(app, ["fit", str(path), "--target", "bon", "--n", "4"])
    assert res.exit_code == 2 and "reward" in res.output
    res = runner.invoke(app, ["fit", str(path), "--target", "maj", "--n", "4", "--method", "ridge", "--features",
                              "agreemnt_spread"])
    assert res.exit_code == 2 and "Did you mean" in res.output
    one = tmp_path / "one.parquet"
    pl.read_parquet(path).filter(pl.col("config") == "cfg0").write_parquet(one)
    res = runner.invoke(app, ["fit", str(one), "--target", "maj", "--n", "4"])
    assert res.exit_code == 2 and "at least 3 configurations" in res.output
    counts = _counts_file(tmp_path, prefix="cnt")
    res = runner.invoke(app, ["fit", str(counts), "--target", "maj", "--n", "4"])
    assert res.exit_code == 2 and "count table" in res.output
    res = runner.invoke(app, ["fit", str(counts), "--target", "pass", "--n", "4", "--method", "ridge"])  # core on counts
    assert res.exit_code == 2 and "--features counts" in res.output
    res = runner.invoke(app, ["fit", str(counts), str(path), "--target", "pass", "--n", "4", "--method", "ridge",
                              "--features", "counts", "--format", "json", "--n-boot", "20"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["n_configs"] == 8  # mixed sample + count tables collapse to counts


def test_fit_method_curve_json_and_table(tmp_path):
    path = _samples_file(tmp_path)
    res = runner.invoke(app, ["fit", str(path), "--target", "maj", "--n", "4", "--method", "curve", "--format", "json",
                              "--n-boot", "20"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["method"] == "curve" and out["curve_law"] in out["features"]
    assert sum(out["curve_law_loco"].values()) == out["n_configs"] == 5
    assert [b["name"] for b in out["baselines"]] == ["observed_gain", "observed_gain_loco", "agreement"]
    assert "lodo_note" in out  # one dataset: no leave-one-dataset-out
    table = runner.invoke(app, ["fit", str(path), "--target", "maj", "--n", "4", "--method", "curve", "--n-boot", "20"])
    assert table.exit_code == 0 and "agreement alone" in table.stdout and "curve law" in table.stdout
    res = runner.invoke(app, ["fit", str(path), "--target", "maj", "--n", "4", "--method", "curv"])
    assert res.exit_code == 2


def test_fit_defaults_to_curve_and_ridge_stays_available(tmp_path):
    """No --method: the curve predictor (the one that beats the observed-gain baseline on the shared data);
    --method ridge still fits the ridge; --features only with ridge (one message, exit 2)."""
    path = _samples_file(tmp_path)
    common = ["fit", str(path), "--target", "maj", "--n", "4", "--format", "json", "--n-boot", "20"]
    res = runner.invoke(app, common)
    assert res.exit_code == 0, res.output
    default = json.loads(res.stdout)
    assert default["method"] == "curve" and default["coefficients"] == {} and "curve_law" in default
    explicit = json.loads(runner.invoke(app, [*common, "--method", "curve"]).stdout)
    assert explicit == default
    res = runner.invoke(app, [*common, "--method", "ridge"])
    assert res.exit_code == 0, res.output
    ridge = json.loads(res.stdout)
    assert ridge["method"] == "ridge" and set(ridge["coefficients"]) == set(ridge["features"]) != set()
    assert "curve_law" not in ridge and ridge["predictions"] != default["predictions"]
    res = runner.invoke(app, [*common, "--method", "ridge", "--features", "core"])
    assert res.exit_code == 0 and json.loads(res.stdout)["predictions"] == ridge["predictions"]
    res = runner.invoke(app, [*common, "--features", "core"])  # curve, the default, takes no features
    assert res.exit_code == 2 and "--method ridge" in res.output and res.stdout == ""
    assert len(res.output.strip().splitlines()) == 1
    res = runner.invoke(app, [*common, "--alpha", "5"])  # alpha: the mapped baseline's ridge, under curve too
    assert res.exit_code == 0 and json.loads(res.stdout)["alpha"] == 5.0
