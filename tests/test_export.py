"""Plan → batch requests → replayed responses → import: the round trip is lossless.

Request layout: https://platform.openai.com/docs/api-reference/batch/request-input and
vllm-project/vllm ``examples/offline_inference/openai/openai_batch.md`` (``custom_id``, ``method``,
``url``, ``body``); the response layout is cited in ``tests/test_importers.py``.

The round trip's truth is independent of the importer: a SampleTable built directly (answers drawn
per prompt, graded by construction). The plan is exported, each request is answered with the
replay engine (its prompt's first ``n`` recorded samples), the responses are imported, and
``ttsplan.planner.evaluate.evaluate`` as well as ``ttsplan.features.estimators.curves`` and
``ttsplan.features.stats.config_features`` must give the same numbers on the imported table as on the
original samples those requests were answered with.
"""
from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from ttsplan.features.errors import TtsplanError
from ttsplan.features.estimators import curves
from ttsplan.features.importers import import_samples
from ttsplan.features.importers.batch_requests import (
    build_batch_requests,
    read_requests,
    replay_responses,
    write_jsonl,
)
from ttsplan.features.schema import validate_sample_table
from ttsplan.features.stats import config_features
from ttsplan.features.tasks import Prompt, read_prompts

CFG = "toy-1b/T0.7"


def toy_samples(n_prompts: int = 16, k: int = 24, seed: int = 0) -> tuple[pl.DataFrame, list[dict]]:
    """Prompts with success probabilities spread over (0, 1); texts end in 'The answer is X.'"""
    rng = np.random.default_rng(seed)
    rows, prompts = [], []
    for i in range(n_prompts):
        gold = 10 + i
        p = (i + 0.5) / n_prompts
        prompts.append({"id": f"q{i:02d}", "prompt": f"What is {i} + 10?", "answer": str(gold)})
        for j in range(k):
            ok = bool(rng.random() < p)
            a = gold if ok else gold + 1 + int(rng.integers(0, 3))
            ntok = int(5 + rng.integers(0, 30))
            rows.append({"config": CFG, "model": "toy-1b", "dataset": "toy", "prompt_id": f"q{i:02d}",
                         "sample_idx": j, "answer": str(a), "correct": ok, "output_tokens": ntok,
                         "prompt_tokens": 9, "logprob": float(-0.25 * ntok * (1.5 - ok)), "finish_reason": "stop",
                         "text": f"{i} + 10 = {a}. The answer is {a}."})
    return validate_sample_table(pl.DataFrame(rows)), prompts


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    d = tmp_path_factory.mktemp("toy")
    table, prompts = toy_samples()
    (d / "prompts.jsonl").write_text("".join(json.dumps({**p, "dataset": "toy"}) + "\n" for p in prompts))
    return table, d / "prompts.jsonl"


def _plan(table: pl.DataFrame):
    from ttsplan.planner.budget import Budget
    from ttsplan.planner.plan import make_plan

    return make_plan(table, Budget(8, "samples", per_prompt=True), strategies="majority", pilot=4)


def _served(table: pl.DataFrame, requests: list[dict]) -> pl.DataFrame:
    """The original samples the replay served: each prompt's first n."""
    n = pl.DataFrame({"prompt_id": [r["custom_id"].split("::")[1] for r in requests],
                      "n": [r["body"]["n"] for r in requests]})
    return table.join(n, on="prompt_id").filter(pl.col("sample_idx") < pl.col("n")).drop("n").sort(
        ["config", "prompt_id", "sample_idx"])


def test_requests_follow_the_plan(toy):
    table, prompts_path = toy
    plan = _plan(table)
    alloc = plan.allocations_frame()
    reqs = build_batch_requests(alloc, read_prompts(prompts_path), target="openai-batch", model="gpt-x",
                                temperature=0.8, top_p=0.95, max_tokens=64, seed=3)
    assert len(reqs) == alloc.height == 16
    by_id = {r["custom_id"]: r for r in reqs}
    for a in alloc.iter_rows(named=True):
        r = by_id[f"{CFG}::{a['prompt_id']}"]
        assert r["body"]["n"] == a["n"] >= 4  # pilot mode: every N includes the 4 pilot samples
        assert r["method"] == "POST" and r["url"] == "/v1/chat/completions"
        assert r["body"]["messages"] == [{"role": "user", "content": f"What is {int(a['prompt_id'][1:])} + 10?"}]
        assert r["body"]["max_completion_tokens"] == 64 and r["body"]["seed"] == 3 and r["body"]["logprobs"] is True
        assert r["body"]["temperature"] == 0.8 and r["body"]["model"] == "gpt-x"
    v = build_batch_requests(alloc, read_prompts(prompts_path), target="vllm-batch", endpoint="completions")
    assert v[0]["url"] == "/v1/completions" and v[0]["body"]["prompt"] == "What is 0 + 10?"
    assert "max_tokens" in v[0]["body"] and "model" not in v[0]["body"] and v[0]["body"]["logprobs"] == 1


def test_greedy_is_one_sample_at_the_modelled_temperature():
    # the planner models greedy as one sample of the configuration, so that is what is sent by default
    alloc = pl.DataFrame({"config": ["c", "c"], "prompt_id": ["a", "b"], "strategy": ["greedy", "majority"], "n": [5, 3]})
    reqs = build_batch_requests(alloc, [Prompt("a", "A"), Prompt("b", "B")], target="vllm-batch", temperature=0.6)
    assert [(r["body"]["n"], r["body"]["temperature"]) for r in reqs] == [(1, 0.6), (3, 0.6)]
    reqs = build_batch_requests(alloc, [Prompt("a", "A"), Prompt("b", "B")], target="vllm-batch", temperature=0.6,
                                greedy_temperature=0.0)
    assert [(r["body"]["n"], r["body"]["temperature"]) for r in reqs] == [(1, 0.0), (3, 0.6)]


def test_export_errors_are_collected():
    alloc = pl.DataFrame({"config": ["c1", "c2"], "prompt_id": ["a", "a"], "strategy": ["majority"] * 2, "n": [2, 2]})
    with pytest.raises(TtsplanError) as e:
        build_batch_requests(alloc, [Prompt("a", "A")], target="openai", top_p=2.0)
    msg = str(e.value)
    assert "--to must be one of openai-batch, vllm-batch" in msg and "--top-p must be in (0, 1]" in msg
    assert "--config must pick one of the plan's 2 configurations" in msg
    with pytest.raises(TtsplanError, match="--model must be given for openai-batch"):
        build_batch_requests(alloc, [Prompt("a", "A")], config="c1")
    with pytest.raises(TtsplanError, match=r"every planned prompt must be in --prompts, got 1 missing \('a'\)"):
        build_batch_requests(alloc, [Prompt("z", "Z")], target="vllm-batch", config="c1")
    with pytest.raises(TtsplanError, match='Did you mean "c1"'):
        build_batch_requests(alloc, [Prompt("a", "A")], target="vllm-batch", config="c11")


@pytest.mark.parametrize("endpoint", ["chat", "completions"])
def test_round_trip_gives_the_same_numbers(toy, tmp_path, endpoint):
    from ttsplan.planner.evaluate import evaluate

    table, prompts_path = toy
    reqs = build_batch_requests(_plan(table).allocations_frame(), read_prompts(prompts_path), target="vllm-batch",
                                endpoint=endpoint)
    write_jsonl(reqs, tmp_path / "requests.jsonl")
    responses = replay_responses(read_requests(tmp_path / "requests.jsonl"), table)
    write_jsonl(responses, tmp_path / "responses.jsonl")
    imported = import_samples("vllm-batch", tmp_path / "responses.jsonl", prompts=prompts_path).table
    served = _served(table, reqs)
    # row for row: answers, labels, token counts and prompt tokens survive; logprob sums up to rounding
    cols = ["config", "model", "dataset", "prompt_id", "sample_idx", "answer", "correct", "output_tokens",
            "prompt_tokens", "finish_reason", "text"]
    assert imported.select(cols).equals(served.select(cols))
    assert np.allclose(imported["logprob"].to_numpy(), served["logprob"].to_numpy(), rtol=1e-12, atol=1e-12)
    # the evaluation gives the same numbers
    # the plan gives some prompts only its 4-sample pilot: budgets must fit n - pilot = 2
    ev_i = evaluate(imported, pilot=2, budgets=[2])
    ev_s = evaluate(served, pilot=2, budgets=[2])
    assert ev_i == ev_s
    assert ev_i[0]["test_prompts"] == 8 and ev_i[0]["accuracy"] > 0
    ks = [1, 2, 4]
    c_i = curves(imported, metrics=["pass", "maj"], ks=ks, n_boot=50)
    c_s = curves(served, metrics=["pass", "maj"], ks=ks, n_boot=50)
    assert c_i.equals(c_s) and c_i.height == 6
    f_i, f_s = config_features(imported), config_features(served)
    num = [c for c, t in f_i.schema.items() if t.is_float()]
    assert f_i.drop(num).equals(f_s.drop(num))
    assert np.allclose(f_i.select(num).to_numpy().astype(float), f_s.select(num).to_numpy().astype(float),
                       rtol=1e-9, atol=1e-12, equal_nan=True)


def test_replay_without_logprobs_keeps_answers_only(toy):
    table, prompts_path = toy
    alloc = pl.DataFrame({"config": [CFG], "prompt_id": ["q03"], "strategy": ["majority"], "n": [5]})
    reqs = build_batch_requests(alloc, read_prompts(prompts_path), target="vllm-batch", logprobs=False)
    resp = replay_responses(reqs, table)
    body = resp[0]["response"]["body"]
    assert [c["logprobs"] for c in body["choices"]] == [None] * 5
    served = table.filter((pl.col("prompt_id") == "q03") & (pl.col("sample_idx") < 5))
    assert [c["message"]["content"] for c in body["choices"]] == served["text"].to_list()
    assert body["usage"]["completion_tokens"] == served["output_tokens"].sum()
