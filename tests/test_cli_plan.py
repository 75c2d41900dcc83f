"""`ttsplan plan` and `ttsplan evaluate` through the real typer app."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_plan import synthetic  # tests/ is on sys.path under pytest
from typer.testing import CliRunner

import ttsplan.cli.plan_cmd
from ttsplan.cli.main import app
from ttsplan.planner.plan import Plan

runner = CliRunner()


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "s.parquet"
    synthetic(prompts=24, k=16, configs=("a", "b")).write_parquet(path)
    return path


def test_plan_table(samples: Path) -> None:
    r = runner.invoke(app, ["plan", str(samples), "--budget", "4/prompt", "--strategies", "greedy,majority"])
    assert r.exit_code == 0, r.output
    for text in ("one strategy and N per configuration", "fitted and scored on the same", "per-prompt plan", "uniform majority", "recommended:",
                 "budget: 4 samples per prompt", "Gemma-3-270M on H100", "usd total"):
        assert text in r.stdout


def test_plan_default_budget_is_stated(samples: Path) -> None:
    r = runner.invoke(app, ["plan", str(samples), "--strategies", "greedy,majority"])
    assert r.exit_code == 0, r.output
    assert "default: the cost of majority vote with N=8" in r.stdout


def test_policy_plan_default_prints_savings(samples: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    r = runner.invoke(app, ["plan", str(samples), "--orders", "2", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "vs majority@16 at matched accuracy (cross-validated" in r.stdout
    d = json.loads(out.read_text())
    assert d["schema_version"] == 2 and {c["config"] for c in d["configs"]} == {"a", "b"}
    for c in d["configs"]:  # the savings line is the ratio of the stored figures
        assert c["savings_vs_max"] == pytest.approx(16 / c["samples"]["mean"])
        assert c["policy"]["kind"] in ("fixed", "adaptive") and c["policy"].get("cap", c["policy"].get("n")) <= 16


def test_policy_plan_matches_a_majority_n_off_the_fixed_grid(samples: Path) -> None:
    # N = 7 is not among the default fixed candidates (1..6, 8, 10, 12, 16): the reference must become one
    r = runner.invoke(app, ["plan", str(samples), "--target", "majority@7", "--orders", "1", "--format", "json"])
    assert r.exit_code == 0, r.output
    for c in json.loads(r.stdout)["configs"]:
        assert c["reference_n"] == 7 and c["samples"]["mean"] <= 7 + 1e-9


def test_policy_plan_budget_most_accuracy_within_it(samples: Path) -> None:
    r = runner.invoke(app, ["plan", str(samples), "--budget", "3/prompt", "--orders", "2", "--format", "json"])
    assert r.exit_code == 0, r.output
    for c in json.loads(r.stdout)["configs"]:
        assert c["samples"]["mean"] <= 3 + 1e-9


@pytest.mark.parametrize("args, message", [
    (["--target", "1.5"], "target must be an accuracy in [0, 1]"),
    (["--tolerance", "-1"], "--tolerance must be in [0, 100)"),
    (["--target", "majority@x"], "--target majority@N must name a whole N"),
    (["--target", "majority@99"], "must be within the 16 samples recorded"),
    (["--target", "0.9", "--budget", "4/prompt"], "--budget and --target must not be combined"),
    (["--folds", "1"], "--folds must be >= 2"),
    (["--target", "0.9", "--pilot", "4"], "--target must not be combined with --per-prompt, --pilot"),
])
def test_policy_plan_bad_input(samples: Path, tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "never.json"
    r = runner.invoke(app, ["plan", str(samples), *args, "--orders", "1", "--out", str(out)])
    assert r.exit_code == 2, r.output
    assert message in r.output and "Traceback" not in r.output
    assert not list(tmp_path.iterdir())


def test_bad_tolerance_is_one_problem_in_points_beside_the_others(samples: Path) -> None:
    r = runner.invoke(app, ["plan", str(samples), "--tolerance", "-1", "--target", "2", "--orders", "1"])
    assert r.exit_code == 2, r.output
    text = " ".join(r.output.split())
    assert text.count("tolerance") == 1 and "got -1.0" in text and "got -0.01" not in text
    assert "target must be an accuracy in [0, 1]" in text


def test_plan_json_and_out(samples: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    r = runner.invoke(app, ["plan", str(samples), "--budget", "3000", "--unit", "tokens", "--format", "json",
                            "--strategies", "greedy,majority", "--out", str(out)])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["budget"] == {"amount": 3000.0, "unit": "tokens", "per_prompt": False}
    plan = Plan.from_json(out.read_text())
    assert json.loads(plan.to_json())["configs"] == d["configs"]
    assert all(c.per_prompt_cost <= 3000 + 1e-9 for c in plan.configs)


@pytest.mark.parametrize("args, message", [
    (["--budget", "1"], "budget must cover the cheapest"),
    (["--unit", "tokns"], 'Did you mean "tokens"'),
    (["--strategies", "majorty"], 'Did you mean "majority"'),
    (["--strategies", "best-of-n"], "needs a reward column"),
    (["--budget", "-3"], "budget must be a finite number > 0"),
    (["--budget", "1e-6/prompt", "--unit", "usd", "--model", "Qwen3-8Bx"], "Did you mean"),
])
def test_plan_bad_input(samples: Path, tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "never.json"
    r = runner.invoke(app, ["plan", str(samples), *args, "--out", str(out)])
    assert r.exit_code == 2, r.output
    assert message in r.output and "Traceback" not in r.output
    assert not out.exists() and not list(tmp_path.iterdir())  # nothing partially written


def test_plan_empty_data(tmp_path: Path) -> None:
    empty = tmp_path / "empty.parquet"
    synthetic().clear().write_parquet(empty)
    r = runner.invoke(app, ["plan", str(empty)])
    assert r.exit_code == 2 and "at least one row" in r.output


def test_plan_without_file_uses_default(monkeypatch: pytest.MonkeyPatch, samples: Path, tmp_path: Path) -> None:
    monkeypatch.setattr(ttsplan.cli.plan_cmd, "DEFAULT_DATA", tmp_path / "missing.parquet")
    r = runner.invoke(app, ["plan"])
    assert r.exit_code == 2 and "python data/make_default.py" in r.output
    monkeypatch.setattr(ttsplan.cli.plan_cmd, "DEFAULT_DATA", samples)
    r = runner.invoke(app, ["plan", "--format", "json", "--orders", "1"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["model"] == "Gemma-3-270M"


def test_evaluate_json(samples: Path) -> None:
    r = runner.invoke(app, ["evaluate", str(samples), "--budgets", "5,6", "--pilot", "3", "--format", "json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert [x["config"] for x in rows] == ["a", "b"]
    for x in rows:
        assert {"config", "savings_vs_uniform_bon", "savings_vs_uniform_majority", "oracle_fraction", "accuracy",
                "uniform_accuracy"} <= set(x)
        assert x["savings_vs_uniform_bon"] is None and len(x["budgets"]) == 2


def test_evaluate_table_and_errors(samples: Path) -> None:
    r = runner.invoke(app, ["evaluate", str(samples), "--pilot", "3"])
    assert r.exit_code == 0, r.output and "savings_vs_uniform_majority" in r.stdout
    r = runner.invoke(app, ["evaluate", str(samples), "--test-fraction", "1.5"])
    assert r.exit_code == 2 and "test_fraction must be in (0, 1)" in r.output


def test_help_has_examples() -> None:
    for cmd in ("plan", "evaluate"):
        r = runner.invoke(app, [cmd, "--help"])
        assert r.exit_code == 0 and "Example" in r.stdout
