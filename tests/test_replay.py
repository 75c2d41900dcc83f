"""replay / sweep and the ``ttsplan replay`` command."""
from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from ttsplan.cli.main import app
from ttsplan.features.errors import TtsplanError
from ttsplan.features.schema import validate_sample_table
from ttsplan.planner.replay import best_threshold, prepare, replay, sc_accuracy, sweep

runner = CliRunner()
KEYS = {"config", "rule", "mean_samples", "sc_samples", "samples_ratio", "accuracy", "sc_accuracy", "accuracy_drop"}


def table(rows: dict[str, list[tuple[str | None, bool]]], config: str = "c") -> pl.DataFrame:
    recs = [{"config": config, "prompt_id": pid, "sample_idx": j, "answer": a, "correct": ok, "output_tokens": 10}
            for pid, samples in rows.items() for j, (a, ok) in enumerate(samples)]
    return validate_sample_table(pl.DataFrame(recs))


def small_table() -> pl.DataFrame:
    return table({
        "easy": [("1", True)] * 8,
        "split": [("2", True), ("3", False)] * 4,           # 4-4 tie: sc accuracy 1/2
        "hard": [("5", False)] * 5 + [("6", True)] * 3,     # 5-3: sc wrong
        "nulls": [(None, False)] * 2 + [("7", True)] * 6,   # nulls never vote
    })


def cli(*args: str):
    argv = list(args) if len(app.registered_commands) == 1 else ["replay", *args]
    return runner.invoke(app, argv)


def test_sc_accuracy_hand():
    (cs,) = prepare(small_table())
    assert sc_accuracy(cs) == pytest.approx((1 + 0.5 + 0 + 1) / 4)
    assert cs.codes[cs.prompt_ids.index("nulls")].tolist() == [-1, -1, 0, 0, 0, 0, 0, 0]
    assert cs.codes[cs.prompt_ids.index("split")].tolist() == [0, 1] * 4


def test_replay_hand_case_and_keys():
    rows = replay(small_table(), "beta", orders=5, seed=3)
    (r,) = rows
    assert KEYS <= set(r)
    assert r["sc_samples"] == 8 and r["sc_accuracy"] == pytest.approx(0.625)
    # easy stops at 4; the others depend on the order but never go past the 8 recorded samples
    assert 4 <= r["mean_samples"] <= 8
    assert r["samples_ratio"] == pytest.approx(8 / r["mean_samples"])
    for k in ("accuracy", "sc_accuracy", "accuracy_lo", "accuracy_hi"):
        assert 0 <= r[k] <= 1
    assert r["accuracy_drop"] == pytest.approx(r["sc_accuracy"] - r["accuracy"])


def test_full_budget_equals_self_consistency():
    # esc with window = all samples never stops early → every prompt uses all 8 samples, and with no
    # ties the vote equals sc exactly in every order
    t = table({"a": [("1", True)] * 5 + [("2", False)] * 3, "b": [("3", False)] * 6 + [("4", True)] * 2})
    (r,) = replay(t, "esc", 8, orders=6, seed=0)
    assert r["mean_samples"] == 8 and r["accuracy"] == r["sc_accuracy"] == 0.5 and r["accuracy_std"] == 0


def test_replay_deterministic_given_seed():
    rng = np.random.default_rng(0)
    recs = {f"p{i}": [(str(x), bool(x == 0)) for x in rng.choice(4, 12, p=[0.5, 0.3, 0.1, 0.1])] for i in range(40)}
    t = table(recs)
    a = replay(t, "beta", 0.8, orders=7, seed=11)
    b = replay(t, "beta", 0.8, orders=7, seed=11)
    c = replay(t, "beta", 0.8, orders=7, seed=12)
    assert a == b
    assert a != c


def test_sweep_and_best_threshold():
    rows = sweep(small_table(), "beta", [0.7, 0.95], orders=3, seed=0)
    assert [r["threshold"] for r in rows] == [0.7, 0.95]
    assert rows[0]["mean_samples"] <= rows[1]["mean_samples"]
    best = best_threshold(rows, max_drop=1.0)
    assert best["threshold"] == 0.7
    assert best_threshold(rows, max_drop=-1.0) is None


def test_replay_errors():
    with pytest.raises(TtsplanError, match="max_n must be <= the recorded samples"):
        replay(small_table(), "beta", max_n=9)
    with pytest.raises(TtsplanError, match='column "correct" must be graded'):
        replay(small_table().with_columns(pl.when(pl.col("sample_idx") == 0).then(None)
                                          .otherwise(pl.col("correct")).alias("correct")), "beta")


def test_cli_json(tmp_path):
    path = tmp_path / "s.parquet"
    small_table().write_parquet(path)
    res = cli(str(path), "--rule", "beta", "--threshold", "0.9", "--orders", "4", "--seed", "1", "--format", "json")
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert isinstance(rows, list) and len(rows) == 1 and KEYS <= set(rows[0])
    assert rows == json.loads(json.dumps(replay(small_table(), "beta", 0.9, orders=4, seed=1)))
    res = cli(str(path), "--rule", "esc", "--sweep", "--thresholds", "2,4", "--orders", "2", "--format", "json")
    assert res.exit_code == 0, res.output
    assert [r["threshold"] for r in json.loads(res.stdout)] == [2, 4]
    res = cli(str(path), "--rule", "beta", "--orders", "2")
    assert res.exit_code == 0 and "replay beta" in res.stdout and "samples_ratio" in res.stdout


@pytest.mark.parametrize("args, message", [
    (["--rule", "betta"], 'Did you mean "beta"'),
    (["--rule", "beta", "--max-n", "99"], "max_n must be <="),
    (["--rule", "esc", "--threshold", "2.5"], "whole number"),
    (["--rule", "beta", "--orders", "0"], "orders must be"),
    (["--rule", "beta", "--thresholds", "0.9"], "--thresholds must come with --sweep"),
])
def test_cli_bad_input_exit_2(tmp_path, args, message):
    path = tmp_path / "s.parquet"
    small_table().write_parquet(path)
    res = cli(str(path), *args)
    assert res.exit_code == 2
    assert message in res.output and "Traceback" not in res.output


def test_cli_missing_file(tmp_path):
    res = cli(str(tmp_path / "nope.parquet"), "--rule", "beta")
    assert res.exit_code == 2 and "must exist" in res.output


def test_real_data_beta_saves_samples(shared_data):
    from ttsplan.features.io import read_samples

    t = read_samples(shared_data / "samples" / "sc40_addsub.parquet")
    rows = replay(t, "beta", 0.95, orders=2, seed=0)
    # published sc@40 accuracies (README of the data): LaMDA 0.635, code-davinci-002 0.916
    by = {r["config"].split("/")[0]: r for r in rows}
    assert by["LaMDA-137B"]["sc_accuracy"] == pytest.approx(0.635, abs=0.002)
    assert by["code-davinci-002"]["sc_accuracy"] == pytest.approx(0.916, abs=0.002)
    for r in rows:
        assert r["samples_ratio"] > 1.5 and r["accuracy_drop"] < 0.01


def test_weighted_rule_uses_rewards_in_replay():
    # three low-reward votes for a wrong "1" against two high-reward votes for the right "2":
    # plurality (sc, beta) is wrong, the reward-weighted vote is right in every order
    recs = [{"config": "c", "prompt_id": "p", "sample_idx": j, "answer": a, "correct": a == "2", "reward": r}
            for j, (a, r) in enumerate([("1", 0.1), ("1", 0.1), ("1", 0.1), ("2", 0.9), ("2", 0.9)])]
    t = validate_sample_table(pl.DataFrame(recs))
    (w,) = replay(t, "weighted", 0.99, orders=5, seed=0)
    (b,) = replay(t, "beta", 0.99, orders=5, seed=0)
    assert w["accuracy"] == 1.0 and b["accuracy"] == 0.0 and w["sc_accuracy"] == 0.0
    with pytest.raises(TtsplanError, match="reward"):
        replay(t.with_columns(pl.col("reward") * 10), "weighted")


def test_rules_without_weights_accept_any_reward_scale():
    # self-certainty rewards (the embedded data) are not in [0, 1]: only the weighted rule needs them there
    recs = [{"config": "c", "prompt_id": "p", "sample_idx": j, "answer": a, "correct": a == "2", "reward": 10.0 + j}
            for j, a in enumerate(["2", "2", "2", "1", "2"])]
    t = validate_sample_table(pl.DataFrame(recs))
    for rule in ("beta", "horizon", "esc"):
        (row,) = replay(t, rule, orders=3, seed=0)
        assert row["sc_accuracy"] == 1.0
    assert sweep(t, "beta", [0.9], orders=2)
    with pytest.raises(TtsplanError, match=r"must lie in \[0, 1\] for the weighted rule"):
        replay(t, "weighted")
