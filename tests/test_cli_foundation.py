"""`ttsplan curves` / `ttsplan features` through typer's CliRunner; import hygiene of ttsplan.cli.main."""
from __future__ import annotations

import json
import subprocess
import sys

import polars as pl
import pytest
from typer.testing import CliRunner

from ttsplan.cli.main import app

runner = CliRunner()


@pytest.fixture()
def sample_file(tmp_path):
    rows = [{"config": f"c{c}", "prompt_id": f"p{p}", "sample_idx": i, "answer": str((p + i) % (2 + c)),
             "correct": (p + i) % (2 + c) == 0, "output_tokens": 3 + i, "reward": float(i % 3)}
            for c in range(2) for p in range(5) for i in range(8)]
    path = tmp_path / "s.parquet"
    pl.DataFrame(rows).write_parquet(path)
    return path


def test_curves_json_shape(sample_file):
    res = runner.invoke(app, ["curves", str(sample_file), "--k", "1,2,8", "--format", "json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert {tuple(sorted(r)) for r in rows} == {("ci_high", "ci_low", "config", "k", "metric", "value")}
    assert {r["metric"] for r in rows} == {"pass", "maj", "bon"} and {r["k"] for r in rows} == {1, 2, 8}
    assert all(0 <= r["ci_low"] <= r["value"] <= r["ci_high"] <= 1 for r in rows)


def test_curves_csv_to_file_and_metric_filter(sample_file, tmp_path):
    out = tmp_path / "curves.csv"
    res = runner.invoke(app, ["curves", str(sample_file), "--metric", "pass", "--k", "1,4", "--format", "csv", "--out", str(out)])
    assert res.exit_code == 0, res.output
    df = pl.read_csv(out)
    assert df["metric"].unique().to_list() == ["pass"] and df.height == 4


def test_features_levels(sample_file):
    res = runner.invoke(app, ["features", str(sample_file), "--level", "prompt", "--format", "json"])
    rows = json.loads(res.stdout)
    assert len(rows) == 10 and "prompt_id" in rows[0] and "agreement_spread" in rows[0]
    res = runner.invoke(app, ["features", str(sample_file), "--format", "json"])
    rows = json.loads(res.stdout)
    assert [r["config"] for r in rows] == ["c0", "c1"] and rows[0]["token_entropy"] is None


def test_bad_input_exit_2_one_message(tmp_path):
    bad = tmp_path / "bad.parquet"
    bad.write_text("nope")
    empty = tmp_path / "e.csv"
    empty.write_text("")
    res = runner.invoke(app, ["curves", str(bad), str(empty)])
    assert res.exit_code == 2
    assert "bad.parquet" in res.output and "e.csv" in res.output and "Traceback" not in res.output
    wrong = tmp_path / "w.csv"
    pl.DataFrame({"config": ["a", "a"], "prompt": ["x", "x"], "sample_idx": [0, 0]}).write_csv(wrong)
    res = runner.invoke(app, ["features", str(wrong)])
    assert res.exit_code == 2 and 'Did you mean "prompt_id"' in res.output
    res = runner.invoke(app, ["curves", str(wrong), "--k", "0,x"])
    assert res.exit_code == 2


def test_help_has_examples():
    for cmd in ("curves", "features"):
        res = runner.invoke(app, [cmd, "--help"])
        assert res.exit_code == 0 and "Example" in res.output


def test_cli_import_is_light():
    code = ("import sys, ttsplan.cli.main; heavy = [m for m in ('torch', 'transformers', 'vllm', 'matplotlib') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
