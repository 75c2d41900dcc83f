"""Importers: each format from fixtures that follow the real layouts, malformed files, grading helpers.

Where each fixture's layout comes from:

- lm-evaluation-harness ``--log_samples`` (``tests/fixtures/importers/lm_eval/``): the logged example
  dict built in ``lm_eval/evaluator.py`` of EleutherAI/lm-evaluation-harness (keys ``doc_id``, ``doc``,
  ``target``, ``arguments``, ``resps`` = ``[req.resps for req in requests]``, ``filtered_resps``,
  ``filter``, ``metrics``, ``doc_hash``, ``prompt_hash``, ``target_hash`` + the metric values), with
  ``repeats: 64`` and the ``score-first`` / ``maj@64`` filter lists of
  ``lm_eval/tasks/gsm8k/gsm8k-cot-self-consistency.yaml`` (4 repeats here); file names
  ``samples_<task>_<date>.jsonl`` beside ``results_<date>.json`` (``model_name``, ``config.model_args``).
- huggingface/search-and-learn (``tests/fixtures/importers/sal/``): columns written by
  ``src/sal/search/best_of_n.py`` (``completions``, ``scores`` = PRM step scores per completion,
  ``pred``, ``completion_tokens``) and ``src/sal/utils/score.py`` (``agg_scores``,
  ``pred_weighted@n`` / ``pred_maj@n`` / ``pred_naive@n``) on HuggingFaceH4/MATH-500 rows
  (``problem``, ``solution``, ``answer``, ``subject``, ``level``, ``unique_id``); ``agg_strategy`` in
  ``src/sal/config.py`` is last | min | prod.
- OpenAI-compatible batch output (``tests/fixtures/importers/batch/``): ``BatchRequestOutput`` /
  ``BatchResponseData`` in vllm-project/vllm ``vllm/entrypoints/openai/run_batch.py`` (``id``,
  ``custom_id``, ``response.{status_code, request_id, body}``, ``error``) with a ``ChatCompletionResponse``
  body (``choices[*].message.content``, ``choices[*].logprobs.content[*].{token, logprob, bytes,
  top_logprobs}``, ``finish_reason``, ``usage``), and the legacy completions layout
  (``choices[*].text``, ``logprobs.{tokens, token_logprobs, top_logprobs, text_offset}``) as in
  https://platform.openai.com/docs/api-reference/batch and
  ``examples/offline_inference/openai/openai_batch.md`` of vllm.
"""
from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from ttsplan.features.errors import SchemaError, TtsplanError
from ttsplan.features.grading import extract_answer, grade
from ttsplan.features.importers import (
    import_samples,
    import_to_parquet,
    normalize_format,
    parse_mapping,
)
from ttsplan.features.importers.base import extract_answers, grade_answers
from ttsplan.features.importers.openai_batch import FailedRequestsWarning
from ttsplan.features.io import read_metadata, read_samples
from ttsplan.features.schema import SAMPLE_SCHEMA

FIX = Path(__file__).parent / "fixtures" / "importers"
LM = FIX / "lm_eval" / "org__model-1b"
SC = LM / "samples_gsm8k_cot_self_consistency_2024-06-01T10-00-00.000000.jsonl"
SAL = FIX / "sal" / "best_of_n_completions.jsonl"
BATCH = FIX / "batch"


def _by(df: pl.DataFrame, **eq) -> pl.DataFrame:
    for k, v in eq.items():
        df = df.filter(pl.col(k) == v)
    return df.sort("sample_idx")


# ------------------------------------------------------------------------------------- lm-eval
def test_lm_eval_repeats_become_samples_graded_against_target():
    r = import_samples("lm-eval", SC)
    t = r.table
    assert list(t.columns) == list(SAMPLE_SCHEMA)
    assert t.height == 12  # 3 docs × 4 repeats; the other two filters log the same resps and are not duplicated
    assert t["config"].unique().to_list() == ["org/model-1b/gsm8k_cot_self_consistency/strict-match"]
    assert t["model"].unique().to_list() == ["org/model-1b"]  # from results_*.json
    d0 = _by(t, prompt_id="0")
    # strict-match keeps one regex answer per repeat; "[invalid]" (no match) → null answer, wrong
    assert d0["answer"].to_list() == ["5", "5", "6", None]
    assert d0["correct"].to_list() == [True, True, False, False]
    assert d0["text"][0] == "3 + 2 = 5. The answer is 5."
    d2 = _by(t, prompt_id="2")
    assert d2["correct"].to_list() == [True, False, False, True]  # "1,000" and "200" against 250
    assert t["output_tokens"].null_count() == t.height  # the harness logs no token counts


def test_lm_eval_take_first_filter_falls_back_to_extraction():
    t = import_samples("lm-eval", SC, filter_name="score-first", config="cfg").table
    assert t["config"].unique().to_list() == ["cfg"]
    d0 = _by(t, prompt_id="0")
    assert d0["answer"].to_list() == [extract_answer(x, "math") for x in d0["text"].to_list()]
    assert d0["answer"].to_list()[:3] == ["5", "5", "6"]


def test_lm_eval_single_repeat_uses_the_harness_metric_and_directories_work():
    t = import_samples("lm-eval", LM).table
    greedy = t.filter(pl.col("dataset") == "gsm8k")
    # target is "... #### 5" (the full gsm8k solution): grading text would fail, exact_match is the label
    assert greedy.height == 3 and greedy["correct"].to_list() == [True, True, True]
    assert set(t["dataset"].unique().to_list()) == {"gsm8k", "gsm8k_cot_self_consistency"}


def test_lm_eval_without_repeats_is_refused_with_the_fix_and_named_in_a_mixed_import():
    greedy = LM / "samples_gsm8k_2024-06-01T10-00-00.000000.jsonl"  # one repeat per document
    with pytest.raises(TtsplanError) as e:
        import_samples("lm-eval", greedy)
    msg = str(e.value)
    assert msg.startswith("lm-eval import must have more than one sample per prompt, got one sample for each of "
                          "the 3 prompts (configuration 'org/model-1b/gsm8k/strict-match')")
    assert "one sample per prompt cannot give scaling curves" in msg and "`repeats: 8`" in msg
    notes = import_samples("lm-eval", LM).provenance["notes"]  # the directory also holds a 4-repeat task
    assert any(n.startswith("configuration 'org/model-1b/gsm8k/strict-match': one sample per prompt") for n in notes)


def test_lm_eval_identical_repeats_are_noted(tmp_path):
    f = tmp_path / "samples_t_2024-01-01T00-00-00.jsonl"
    f.write_text("".join(json.dumps({"doc_id": i, "target": "1", "resps": [[" 1", " 1", " 1"]],
                                     "filtered_resps": [" 1"], "filter": "none"}) + "\n" for i in range(2)))
    notes = import_samples("lm-eval", f, kind="short").provenance["notes"]
    assert any("every prompt's repeats are identical texts" in n and "`seed: null`" in n for n in notes)
    f.write_text("".join(json.dumps({"doc_id": i, "target": "1", "resps": [[" 1", " 1", " 2" if i else " 1"]],
                                     "filtered_resps": [" 1"], "filter": "none"}) + "\n" for i in range(2)))
    assert not any("identical" in n for n in import_samples("lm-eval", f, kind="short").provenance["notes"])


def test_lm_eval_unknown_filter_is_named():
    with pytest.raises(SchemaError, match=r"--filter must be one of the logged filters \(strict-match, score-first, maj@4\).*maj@4"):
        import_samples("lm-eval", SC, filter_name="maj4")


def test_lm_eval_malformed_lists_every_missing_field(tmp_path):
    bad = tmp_path / "samples_t_2024-01-01T00-00-00.jsonl"
    bad.write_text(json.dumps({"doc": {}, "response": [["x"]], "gold": "1"}) + "\n")
    out = tmp_path / "out.parquet"
    with pytest.raises(SchemaError) as e:
        import_to_parquet("lm-eval", bad, out)
    msg = str(e.value)
    for field in ("doc_id", "resps", "target"):
        assert f'field "{field}"' in msg and f"--map {field}=<your field>" in msg
    assert "3 problems" in msg
    assert not out.exists() and not list(tmp_path.glob(".out.parquet*"))
    # the hint works: map the fields and the same file imports
    fixed = tmp_path / "fixed.jsonl"
    fixed.write_text(json.dumps({"doc_id": 0, "response": [["The answer is 1.", "The answer is 2."]], "gold": "1"}) + "\n")
    t = import_samples("lm-eval", fixed, mapping={"resps": "response", "target": "gold"}).table
    assert t["correct"].to_list() == [True, False]


def test_lm_eval_multiple_choice_is_rejected(tmp_path):
    f = tmp_path / "samples_mmlu_2024-01-01T00-00-00.jsonl"
    f.write_text(json.dumps({"doc_id": 0, "target": 1, "resps": [[[-1.0, False]], [[-2.0, False]]],
                             "filtered_resps": [[-1.0, False], [-2.0, False]], "acc": 1.0}) + "\n")
    with pytest.raises(SchemaError, match="loglikelihood / multiple-choice"):
        import_samples("lm-eval", f)


# ---------------------------------------------------------------------------- search-and-learn
@pytest.mark.parametrize("agg,expected", [("last", [0.95, 0.2, 0.7, 0.3]), ("min", [0.9, 0.2, 0.7, 0.3]),
                                          ("prod", [0.9 * 0.95, 0.8 * 0.2, 0.7, 0.5 * 0.4 * 0.3]),
                                          ("mean", [0.925, 0.5, 0.7, 0.4])])
def test_sal_prm_step_scores_aggregate_to_reward(agg, expected):
    t = import_samples("search-and-learn", SAL, reward_agg=agg).table
    p = _by(t, prompt_id="test/algebra/1.json")
    assert p["reward"].to_list() == pytest.approx(expected)


def test_sal_fields_map_to_samples():
    r = import_samples("sal", SAL, model="Llama-3.2-1B-Instruct")
    t = r.table
    assert t.height == 8 and t["config"].unique().to_list() == ["Llama-3.2-1B-Instruct/best_of_n_completions"]
    p = _by(t, prompt_id="test/precalculus/7.json")
    assert p["answer"].to_list() == ["\\frac{1}{2}", "0.5", "\\frac{2}{4}", "2"]
    assert p["correct"].to_list() == [True, True, True, False]  # graded against "\frac{1}{2}" numerically
    assert p["output_tokens"].to_list() == [15, 8, 9, 8]
    assert r.provenance["reward_aggregation"] == "last"
    assert "pred_maj@4" in r.provenance["per_problem_columns_not_imported"]


def test_sal_parquet_and_ragged_lists(tmp_path):
    df = pl.read_ndjson(SAL)
    df.write_parquet(tmp_path / "ds.parquet")
    assert import_samples("search-and-learn", tmp_path / "ds.parquet").table.height == 8
    bad = df.with_columns(pl.col("completion_tokens").list.head(3))
    bad.write_parquet(tmp_path / "bad.parquet")
    with pytest.raises(SchemaError, match=r'"completion_tokens" must have one entry per completion.*2 row'):
        import_samples("search-and-learn", tmp_path / "bad.parquet")


def test_sal_malformed_names_fields_and_bad_option(tmp_path):
    f = tmp_path / "x.jsonl"
    f.write_text(json.dumps({"problem": "p", "completion": ["a"], "gold": "1", "scores": 3}) + "\n")
    with pytest.raises(SchemaError) as e:
        import_samples("search-and-learn", f)
    msg = str(e.value)
    assert 'field "completions"' in msg and 'Did you mean "completion"?' in msg and "--map completions=" in msg
    assert 'field "answer"' in msg and "--map answer=" in msg
    assert 'field "scores" must be a list' in msg
    with pytest.raises(TtsplanError, match="--reward-agg must be one of last, min, prod, mean"):
        import_samples("search-and-learn", SAL, reward_agg="max")


# ------------------------------------------------------------------------------- openai-batch
def test_batch_chat_output_with_logprobs_usage_and_failed_request():
    with pytest.warns(FailedRequestsWarning, match="1 failed"):
        r = import_samples("openai-batch", BATCH / "output.jsonl", prompts=BATCH / "prompts.jsonl")
    t = r.table
    assert r.provenance["failed_requests"] == 1
    q1 = _by(t, prompt_id="q1")
    assert q1["config"].unique().to_list() == ["llama-8b/T0.7"]
    assert q1["model"][0] == "meta-llama/Llama-3.1-8B-Instruct"
    assert q1["answer"].to_list() == ["4", "5"] and q1["correct"].to_list() == [True, False]
    assert q1["logprob"].to_list() == pytest.approx([-1.0, -3.0])  # sums of token logprobs
    assert q1["output_tokens"].to_list() == [3, 2]  # token counts from logprobs
    assert q1["prompt_tokens"].to_list() == [12, 12]
    q2 = _by(t, prompt_id="q2")
    # no logprobs, single choice: output_tokens from usage; \frac{5}{2} graded equal to 2.5
    assert q2["output_tokens"].to_list() == [17] and q2["logprob"].to_list() == [None]
    assert q2["correct"].to_list() == [True]
    assert q2["dataset"][0] == "prompts"


def test_batch_completions_endpoint_one_request_per_sample():
    r = import_samples("openai-batch", BATCH / "output_completions.jsonl", prompts=BATCH / "prompts.jsonl",
                       kind="short")
    t = r.table
    assert t["config"].unique().to_list() == ["base-1b"]
    assert t["text"].to_list() == [" Paris", " Lyon"] and t["correct"].to_list() == [True, False]
    assert t["logprob"].to_list() == pytest.approx([-0.1, -2.5]) and t["output_tokens"].to_list() == [1, 1]


def test_batch_without_prompts_is_unlabeled_and_unknown_ids_are_named(tmp_path):
    with pytest.warns(FailedRequestsWarning):
        t = import_samples("openai-batch", BATCH / "output.jsonl", config="x").table
    assert t["correct"].null_count() == t.height and t["config"].unique().to_list() == ["x"]
    (tmp_path / "p.jsonl").write_text(json.dumps({"id": "zz", "prompt": "?", "answer": "1"}) + "\n")
    with pytest.raises(SchemaError, match=r"prompt ids from custom_id must all be in --prompts.*2 unknown \('q1', 'q2'\)"):
        import_samples("openai-batch", BATCH / "output.jsonl", prompts=tmp_path / "p.jsonl")


def test_batch_request_file_or_missing_ids_are_rejected_with_one_message(tmp_path):
    req = tmp_path / "requests.jsonl"
    req.write_text(json.dumps({"custom_id": "c::q1", "method": "POST", "url": "/v1/chat/completions",
                               "body": {"messages": [], "n": 2}}) + "\n")
    with pytest.raises(SchemaError, match=r"batch \*output\* file"):
        import_samples("openai-batch", req)
    bad = tmp_path / "out.jsonl"
    lines = [json.loads(x) for x in (BATCH / "output.jsonl").read_text().splitlines()][:2]
    lines[1].pop("custom_id")
    bad.write_text("".join(json.dumps(x) + "\n" for x in lines))
    with pytest.raises(SchemaError, match=r'"custom_id" must be on every line, got it missing on 1 line\(s\) \(line 2\)'):
        import_samples("openai-batch", bad)
    # --map renames the id field of files written by other tools
    renamed = tmp_path / "renamed.jsonl"
    renamed.write_text("".join(json.dumps({("request_id_x" if k == "custom_id" else k): v for k, v in x.items()}) + "\n"
                               for x in [json.loads(y) for y in (BATCH / "output.jsonl").read_text().splitlines()][:2]))
    t = import_samples("openai-batch", renamed, mapping={"custom_id": "request_id_x"}).table
    assert t.height == 3


def test_batch_not_json_is_one_message(tmp_path):
    f = tmp_path / "broken.jsonl"
    f.write_text('{"custom_id": "a::b", "response": \n')
    with pytest.raises(SchemaError, match="must be a readable jsonl file"):
        import_samples("openai-batch", f)


# ------------------------------------------------------------------------------------ generic
def test_generic_mapping_grades_and_numbers():
    m = parse_mapping(["prompt_id=doc_id", "sample_idx=attempt", "answer=pred", "output_tokens=n_tokens",
                       "reward=score", "gold=gold"])
    r = import_samples("generic", FIX / "generic" / "runs.csv", mapping=m, config="mine")
    t = r.table
    assert t["config"].unique().to_list() == ["mine"]
    a = _by(t, prompt_id="a")
    assert a["correct"].to_list() == [True, True, False] and a["output_tokens"].to_list() == [10, 11, 12]
    assert a["reward"].to_list() == pytest.approx([0.5, 0.6, 0.7])
    b = _by(t, prompt_id="b")
    assert b["correct"].to_list() == [grade(x, "x+1") for x in ["x+1", "1+x", "X + 1"]]


def test_generic_missing_fields_one_message_with_guesses(tmp_path):
    f = tmp_path / "t.jsonl"
    f.write_text(json.dumps({"doc_id": 1, "exact_match": 1.0}) + "\n")
    with pytest.raises(SchemaError) as e:
        import_samples("generic", f, mapping={"answr": "x"})
    assert "target must be a SampleTable column or gold" in str(e.value) and 'Did you mean "answer"' in str(e.value)
    with pytest.raises(SchemaError) as e:
        import_samples("generic", f)
    msg = str(e.value)
    assert 'column "prompt_id" must be present' in msg and 'Did you mean "doc_id"?' in msg
    assert 'must have a "correct" column' in msg and 'Did you mean "exact_match"?' in msg
    t = import_samples("generic", f, mapping={"prompt_id": "doc_id", "correct": "exact_match"}).table
    assert t["correct"].to_list() == [True]
    with pytest.raises(SchemaError, match=r'--map prompt_id=doc: field "doc" must exist.*Did you mean "doc_id"'):
        import_samples("generic", f, mapping={"prompt_id": "doc", "correct": "exact_match"})


def test_generic_text_only_extracts_and_validation_problems_are_collected(tmp_path):
    f = tmp_path / "t.jsonl"
    rows = [{"q": "p", "completion": "so \\boxed{3}", "ref": "3"}, {"q": "p", "completion": "The answer is 4", "ref": "3"}]
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    t = import_samples("generic", f, mapping={"prompt_id": "q", "text": "completion", "gold": "ref"}).table
    assert t["answer"].to_list() == ["3", "4"] and t["correct"].to_list() == [True, False]
    g = tmp_path / "g.csv"
    g.write_text("prompt_id,sample_idx,correct,output_tokens\np,0,1,-3\np,0,1,2\n")
    with pytest.raises(SchemaError) as e:
        import_to_parquet("generic", g, tmp_path / "o.parquet")
    assert "negative" in str(e.value) and "unique" in str(e.value)
    assert not (tmp_path / "o.parquet").exists()


# ------------------------------------------------------------------------ shared behaviour
def test_parquet_output_has_provenance_and_reads_back(tmp_path):
    out = tmp_path / "s.parquet"
    with pytest.warns(FailedRequestsWarning):
        r = import_to_parquet("vllm-batch", BATCH / "output.jsonl", out, prompts=BATCH / "prompts.jsonl")
    meta = read_metadata(out)
    assert meta["source_format"] == "openai-batch" and meta["sources"][0]["path"].endswith("output.jsonl")
    assert meta["options"]["prompts"].endswith("prompts.jsonl") and meta["failed_requests"] == 1
    assert read_samples(out).equals(r.table)


def test_read_table_input_format_dispatches(tmp_path):
    direct = import_samples("search-and-learn", SAL, reward_agg="min").table
    via = read_samples(SAL, input_format="sal", import_options={"reward_agg": "min"})
    assert via.equals(direct)


def test_format_names_and_unused_options():
    assert normalize_format("lm-evaluation-harness") == "lm-eval" and normalize_format("vllm-batch") == "openai-batch"
    with pytest.raises(TtsplanError, match='Did you mean "lm-eval"'):
        normalize_format("lm-evl")
    with pytest.raises(TtsplanError, match="lm-eval import must not be given --prompts"):
        import_samples("lm-eval", SC, prompts=BATCH / "prompts.jsonl")
    with pytest.raises(TtsplanError, match="--map must be TARGET=SOURCE"):
        parse_mapping(["prompt_id"])


def test_missing_and_wrong_suffix_files_are_all_named(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(TtsplanError) as e:
        import_samples("generic", [tmp_path / "nope.jsonl", tmp_path / "a.txt"])
    assert "nope.jsonl: file must exist" in str(e.value) and "a.txt: a generic file must end in" in str(e.value)


# ------------------------------------------------------------------- column grading helpers
def test_extract_answers_matches_extract_answer():
    texts = ["x \\boxed{1} then \\boxed{ 22 }", "nested \\boxed{\\frac{1}{2}}", "The answer is 7.", "#### 12",
             "no number", None, "\\fbox{5}", "a \\boxed{3} b \\boxed{\\sqrt{2}}", "", "Answer: yes",
             "The answer is 42.", "the ANSWER IS 7.", "answer is 42.\n", "The answer is 4. The answer is 5.",
             "answer is -3.", "answer is 4.5.", "The answer is 12. ", "so answer is: 9.", "answer is 3",
             "x \\boxed{2} answer is 5.", "\\boxed{1", "\\boxed{} is empty", "answer is ."]
    for kind in ("math", "short"):
        got = extract_answers(pl.Series(texts, dtype=pl.String), kind).to_list()
        assert got == [extract_answer(t, kind) for t in texts]


def test_grade_answers_matches_grade():
    pairs = [("4", "4"), ("4.0", "4"), ("4.0000001", "4"), ("4.01", "4"), ("-3", "-3.0"), ("1/2", "0.5"),
             ("\\frac{1}{3}", "0.333"), ("Paris", "paris"), (None, "1"), ("1", None), ("1e3", "1000"),
             ("1,000", "1000"), ("0", "0.0"), ("+5", "5")]
    got = grade_answers(pl.Series([p for p, _ in pairs], dtype=pl.String),
                        pl.Series([g for _, g in pairs], dtype=pl.String)).to_list()
    assert got == [grade(p, g) for p, g in pairs]


def _snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_fixtures_are_not_modified():
    """Every importer reads its inputs and writes nothing next to them: same files, same bytes, same
    modification times; and the import did read them (rows = docs × repeats counted from the raw JSON)."""
    before = _snapshot(FIX)
    t = import_samples("lm-eval", LM).table
    import_samples("sal", SAL, model="Llama-3.2-1B-Instruct")
    with pytest.warns(FailedRequestsWarning):
        import_samples("openai-batch", BATCH / "output.jsonl", prompts=BATCH / "prompts.jsonl")
    import_samples("generic", FIX / "generic" / "runs.csv", mapping=parse_mapping(
        ["prompt_id=doc_id", "sample_idx=attempt", "answer=pred", "gold=gold"]))
    assert _snapshot(FIX) == before
    # the self-consistency log repeats each doc once per filter; a doc's samples are its repeats, counted once
    expected = 0
    for f in LM.glob("samples_*.jsonl"):
        docs = {}
        for line in f.read_text().splitlines():
            d = json.loads(line)
            docs[d["doc_id"]] = sum(len(r) for r in d["resps"])
        expected += sum(docs.values())
    assert t.height == expected == 15
