"""Per-prompt and per-config features against hand-computed values."""
from __future__ import annotations

import math

import polars as pl
import pytest

from ttsplan.features.schema import validate_count_table, validate_sample_table
from ttsplan.features.stats import FEATURES, config_features, prompt_features


def table(with_extras=True):
    rows = []
    data = {"p0": (["4", "4", "5", None], [False, True, False, False], [3, 7, 15, 1]),
            "p1": (["9", "9", "9", "9"], [False, False, False, False], [2, 2, 2, 2])}
    for pid, (answers, correct, tokens) in data.items():
        for i in range(4):
            row = {"config": "c", "prompt_id": pid, "sample_idx": i, "answer": answers[i], "correct": correct[i]}
            if with_extras:
                row.update(output_tokens=tokens[i], entropy=0.1 * (i + 1), logprob=-1.0 * i, reward=float(i))
            rows.append(row)
    return validate_sample_table(pl.DataFrame(rows))


def test_prompt_features_hand_computed():
    per = prompt_features(table()).to_dicts()
    p0, p1 = per
    assert p0["accuracy"] == 0.25 and p1["accuracy"] == 0.0
    assert p0["agreement_mean"] == 0.5 and p1["agreement_mean"] == 1.0
    # clusters {4: 2/4, 5: 1/4} (null forms no cluster) -> entropy / log 4
    h = -(0.5 * math.log(0.5) + 0.25 * math.log(0.25)) / math.log(4)
    assert p0["answer_entropy"] == pytest.approx(h) and p1["answer_entropy"] == 0.0
    assert p0["first_correct_position"] == 2.0 and p1["first_correct_position"] == 5.0  # censored at k+1
    assert p0["never_correct_fraction"] == 0.0 and p1["never_correct_fraction"] == 1.0
    logs = [math.log(1 + t) for t in (3, 7, 15, 1)]
    mu = sum(logs) / 4
    assert p0["length_variance"] == pytest.approx(sum((x - mu) ** 2 for x in logs) / 4)
    assert p0["length_mean"] == 6.5
    assert p0["token_entropy"] == pytest.approx(0.25) and p0["logprob_mean"] == pytest.approx(-1.5)
    assert p0["reward_spread"] == pytest.approx(math.sqrt(1.25))
    assert p0["agreement_spread"] is None


def test_config_features_aggregate():
    cfg = config_features(table()).row(0, named=True)
    assert cfg["n_prompts"] == 2 and cfg["accuracy"] == 0.125
    assert cfg["agreement_mean"] == 0.75 and cfg["agreement_spread"] == pytest.approx(0.25)
    assert cfg["first_correct_position"] == 3.5 and cfg["never_correct_fraction"] == 0.5


def test_missing_columns_give_null_not_zero():
    cfg = config_features(table(with_extras=False)).row(0, named=True)
    for f in ("length_mean", "length_variance", "token_entropy", "logprob_mean", "reward_mean", "reward_spread"):
        assert cfg[f] is None, f
    assert cfg["accuracy"] == 0.125


def test_count_tables_support_count_features_only():
    counts = validate_count_table(pl.DataFrame({"config": ["c", "c"], "prompt_id": ["a", "b"],
                                                "samples": [9, 4], "correct_samples": [0, 4]}))
    cfg = config_features(counts).row(0, named=True)
    assert cfg["accuracy"] == 0.5 and cfg["never_correct_fraction"] == 0.5
    # expected first-correct position under a random order: (n+1)/(c+1) -> 10 (censored) and 1
    assert cfg["first_correct_position"] == pytest.approx((10 + 1) / 2)
    assert all(cfg[f] is None for f in FEATURES if f not in ("accuracy", "never_correct_fraction", "first_correct_position"))
