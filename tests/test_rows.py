"""The shared SampleTable row builder (``ttsplan.features.sampler.rows``): hand-computed rows, and
``ttsplan sample`` and ``ttsplan run`` writing identical rows for the same completions."""
from __future__ import annotations

import polars as pl
import pytest

from ttsplan.features.sampler import ReplayEngine, SamplerConfig, ValidationSampler
from ttsplan.features.sampler.base import Completion
from ttsplan.features.sampler.rows import sample_row
from ttsplan.features.schema import SAMPLE_SCHEMA, validate_sample_table
from ttsplan.features.tasks import Prompt
from ttsplan.planner.run import run_plan

PROMPT = Prompt("p7", "Q: 2 + 2?\nA:", "4", "toy", kind="short")
DONE = Completion(text=" 4 apples", output_tokens=3, prompt_tokens=9, logprob=-0.5, entropy=0.25, reward=1.5,
                  finish_reason="stop", token_ids=[1, 2, 3])


def test_row_by_hand():
    row = sample_row(PROMPT, 5, DONE, config="c", model="m")
    assert row == {"config": "c", "model": "m", "dataset": "toy", "prompt_id": "p7", "sample_idx": 5, "answer": "4",
                   "correct": True, "output_tokens": 3, "prompt_tokens": 9, "logprob": -0.5, "entropy": 0.25,
                   "reward": 1.5, "finish_reason": "stop", "text": " 4 apples"}
    assert list(row) == list(SAMPLE_SCHEMA)  # every contract column, in contract order


def test_row_grading_text_and_missing_gold():
    wrong = sample_row(PROMPT, 0, Completion(text=" 5", output_tokens=1), config="c", model="m", keep_text=False)
    assert (wrong["answer"], wrong["correct"], wrong["text"]) == ("5", False, None)
    no_gold = sample_row(Prompt("q", "?", None, kind="short"), 0, DONE, config="c", model="m")
    assert no_gold["correct"] is None and no_gold["answer"] == "4"
    nothing = sample_row(PROMPT, 0, Completion(text="", output_tokens=0), config="c", model="m")
    assert nothing["answer"] is None and nothing["correct"] is False
    seen = []

    def grader(pred, gold):
        seen.append((pred, gold))
        return None

    assert sample_row(PROMPT, 0, DONE, config="c", model="m", grader=grader)["correct"] is None
    assert seen == [("4", "4")]
    math_prompt = Prompt("m", "?", "1/2", kind="math")
    assert sample_row(math_prompt, 0, Completion(text="so the answer is \\boxed{0.5}", output_tokens=9),
                      config="c", model="m")["correct"] is True


def test_sample_and_run_write_the_same_rows_for_the_same_completions(tmp_path):
    k = 4
    texts = {"a": [" 4", " 4", " 3", "x"], "b": [" 7", "\n", " 4", " 4"]}
    rec = validate_sample_table(pl.DataFrame([
        {"config": "c", "model": "m", "prompt_id": pid, "sample_idx": j, "text": t, "output_tokens": 2 + j,
         "prompt_tokens": 5, "logprob": -0.1 * j, "entropy": 0.2, "reward": 0.3 * j, "finish_reason": "stop"}
        for pid, ts in texts.items() for j, t in enumerate(ts)]))
    prompts = [Prompt(pid, f"{pid}?", "4", "d", kind="short") for pid in texts]
    sampled = ValidationSampler(ReplayEngine(rec), SamplerConfig(k=k, config="c", batch_prompts=1)).run(
        prompts, tmp_path / "sample")
    ran = run_plan({pid: k for pid in texts}, prompts, ReplayEngine(rec), tmp_path / "run",
                   sampling=SamplerConfig(k=1, config="c"), batch=3).table
    key = ["prompt_id", "sample_idx"]
    assert sampled.height == ran.height == 2 * k
    assert sampled.sort(key).equals(ran.sort(key))
    assert sampled.filter(pl.col("prompt_id") == "b")["answer"].to_list() == ["7", None, "4", "4"]


@pytest.mark.parametrize("keep_text", [True, False])
def test_run_respects_keep_text(tmp_path, keep_text):
    rec = validate_sample_table(pl.DataFrame({"config": ["c"] * 2, "prompt_id": ["a"] * 2, "sample_idx": [0, 1],
                                              "text": [" 4", " 4"]}))
    res = run_plan({"a": 2}, [Prompt("a", "?", "4", kind="short")], ReplayEngine(rec), tmp_path,
                   sampling=SamplerConfig(k=1, config="c", keep_text=keep_text))
    assert (res.table["text"].null_count() == 0) is keep_text
