"""`ttsplan estimate` and `ttsplan calibrate` through the real typer app."""
from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from ttsplan.cli.main import app
from ttsplan.fitting.calibration import predict_serving, serving_arrays
from ttsplan.fitting.cost import Efficiency

runner = CliRunner()
EST = ["estimate", "--model", "Qwen/Qwen3-0.6B", "--gpu", "B200", "--strategy", "majority", "--n", "1",
       "--prompt-tokens", "150", "--output-tokens", "4096"]


def _json(result) -> dict | list:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_estimate_json_keys_and_kinetics() -> None:
    out = _json(runner.invoke(app, EST + ["--intensity", "562.5", "--format", "json"]))
    for k in ("params", "flops", "bytes", "eflops", "kv_cache_bytes", "latency_s", "cost_usd"):
        assert k in out
    assert out["params"] == 596_049_920
    assert out["eflops"] / 4.5e15 == pytest.approx(0.131, rel=0.02)


def test_estimate_several_n_and_table() -> None:
    rows = _json(runner.invoke(app, EST[:-6] + ["--n", "1,4,16", "--prompt-tokens", "100", "--output-tokens", "200",
                                                "--format", "json"]))
    assert [r["n"] for r in rows] == [1, 4, 16]
    assert rows[2]["cost_usd"] > rows[0]["cost_usd"]
    res = runner.invoke(app, EST + ["--batch-prompts", "8"])
    assert res.exit_code == 0 and "Qwen3-0.6B" in res.stdout and "latency_s" in res.stdout


@pytest.mark.parametrize("args,match", [
    (["--model", "qwen9-0.6b"], "model must be one of"),
    (["--gpu", "H1000"], 'Did you mean "H100"'),
    (["--n", "0"], "--n must list integers >= 1"),
    (["--prompt-tokens", "-5"], "prompt_tokens must be"),
    (["--strategy", "majorty"], 'Did you mean "majority"'),
    (["--usd-per-hour", "-1"], "usd-per-hour"),
])
def test_estimate_bad_input_exit_2(args, match) -> None:
    base = dict(zip(EST[1::2], EST[2::2]))
    base.update(dict(zip(args[0::2], args[1::2])))
    res = runner.invoke(app, ["estimate", *[t for kv in base.items() for t in kv]])
    assert res.exit_code == 2
    assert match in res.output and "Traceback" not in res.output


def test_estimate_bad_calibration_file(tmp_path) -> None:
    p = tmp_path / "c.json"
    p.write_text("{oops")
    res = runner.invoke(app, EST + ["--calibration", str(p)])
    assert res.exit_code == 2 and "calibration file must be JSON" in res.output


def _serving_csv(path, engine="vllm", system="h100_sxm", seed=0):
    rows = [{"backend": engine, "model_path": "Qwen/Qwen3-32B", "system": system, "mode": "agg", "isl": isl,
             "osl": osl, "batch_size": b, "tp_size": tp, "pp_size": 1}
            for tp in (1, 2, 4) for b in (8, 32, 128) for isl, osl in ((1024, 256), (4096, 512))]
    df = pl.DataFrame(rows)
    x, _, _ = serving_arrays(df.with_columns(silicon_ttft_ms=pl.lit(1.0), silicon_tpot_ms=pl.lit(1.0)))
    t, p = predict_serving(Efficiency(e_c=0.5, e_m=0.8, t_fixed_s=2e-3, t_request_s=0.02), x)
    noise = np.exp(0.03 * np.random.default_rng(seed).standard_normal(len(t)))
    df.with_columns(silicon_ttft_ms=pl.Series(t * 1e3 * noise), silicon_tpot_ms=pl.Series(p * 1e3 * noise)
                    ).write_csv(path)
    return path


def test_calibrate_json_evaluate_and_feed_estimate(tmp_path) -> None:
    train = _serving_csv(tmp_path / "train.csv")
    test = _serving_csv(tmp_path / "test.csv", system="h200", seed=1)
    calib = tmp_path / "calib.json"
    out = _json(runner.invoke(app, ["calibrate", str(train), "--evaluate", str(test), "--out", str(calib),
                                    "--format", "json"]))
    for k in ("loo_mape_ttft", "loo_mape_tpot", "naive_mape_ttft", "naive_mape_tpot", "test_mape_ttft",
              "test_mape_tpot"):
        assert isinstance(out[k], float)
    assert out["loo_mape_tpot"] < out["naive_mape_tpot"]
    assert calib.exists()
    est = _json(runner.invoke(app, ["estimate", "--model", "Qwen3-32B", "--gpu", "H100", "--n", "8",
                                    "--prompt-tokens", "1024", "--output-tokens", "512", "--calibration", str(calib),
                                    "--format", "json"]))
    assert est["calibrated"] is True and est["latency_s"] > 0
    table = runner.invoke(app, ["calibrate", str(train), "--no-loo"])
    assert table.exit_code == 0 and "vllm" in table.stdout


def test_calibrate_bad_csv_exit_2(tmp_path) -> None:
    p = tmp_path / "bad.csv"
    p.write_text("a,b\n1,2\n")
    res = runner.invoke(app, ["calibrate", str(p)])
    assert res.exit_code == 2 and "must be present" in res.output
    res = runner.invoke(app, ["calibrate", str(tmp_path / "missing.csv")])
    assert res.exit_code == 2 and "must exist" in res.output


@pytest.mark.parametrize("cmd", ["estimate", "calibrate"])
def test_help_has_example(cmd) -> None:
    res = runner.invoke(app, [cmd, "--help"])
    assert res.exit_code == 0 and "Example" in res.output


def test_estimate_prices_with_the_shipped_h100_calibration_by_default() -> None:
    from typer.testing import CliRunner

    from ttsplan.cli.main import app

    args = ["estimate", "--model", "Qwen3-8B", "--n", "1,8", "--prompt-tokens", "500", "--output-tokens", "2000",
            "--format", "json"]
    cal, raw = (CliRunner().invoke(app, args + extra) for extra in ([], ["--calibration", "none"]))
    assert cal.exit_code == 0 and raw.exit_code == 0, (cal.output, raw.output)
    c, r = json.loads(cal.stdout), json.loads(raw.stdout)
    assert all(x["calibrated"] for x in c) and not any(x["calibrated"] for x in r)
    assert all(x["latency_s"] > 1.1 * y["latency_s"] for x, y in zip(c, r))   # measured efficiencies are below peak
    assert "calibration ttsplan.data/h100_calibration.json" in cal.stderr
    assert "uncalibrated roofline" in raw.stderr and "calibration disabled" in raw.stderr
