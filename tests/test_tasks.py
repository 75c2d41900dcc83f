"""Task generator, few-shot formatting and prompt-file reading (one clear error for bad files)."""
from __future__ import annotations

import json

import pytest

from ttsplan.features.errors import TtsplanError
from ttsplan.features.grading import grade
from ttsplan.features.tasks import FAMILIES, Prompt, format_prompt, make_tasks, read_prompts, write_prompts


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_is_seeded_distinct_and_self_consistent(family):
    a, b = make_tasks(family, 30, seed=3), make_tasks(family, 30, seed=3)
    assert a == b and a != make_tasks(family, 30, seed=4)
    assert len({p.id for p in a}) == 30 and all(p.dataset == family and p.kind == "short" for p in a)
    assert all(p.prompt == f"Q: {p.question}\nA:" and p.answer for p in a)


def test_gold_answers_are_right():
    for p in make_tasks("larger", 20) + make_tasks("smaller", 20) + make_tasks("add", 20) + make_tasks("next", 20):
        nums = [int(x) for x in p.question.replace("?", " ").replace(",", " ").split() if x.lstrip("-").isdigit()]
        want = {"larger": max, "smaller": min, "add": sum, "next": lambda n: n[0] + 1}[p.dataset](nums)
        assert int(p.answer) == want
    for p in make_tasks("first_letter", 10) + make_tasks("last_letter", 10):
        word = p.question.split('"')[1]
        assert p.answer == (word[0] if p.dataset == "first_letter" else word[-1])
    for p in make_tasks("count", 10):
        assert int(p.answer) == len(p.question.split(":")[1].strip(" ?").split())


def test_difficulty_varies_within_a_family():
    diffs = {p.difficulty for p in make_tasks("larger", 64)}
    assert len(diffs) >= 5


def test_few_shot_format_uses_other_examples_and_is_seeded():
    task = make_tasks("larger", 1, seed=0)[0]
    p = format_prompt(task, 3, seed=1)
    assert p.prompt.count("Q: ") == 4 and p.prompt.endswith(f"Q: {task.question}\nA:")
    assert p.prompt.count(task.question) == 1 and p == format_prompt(task, 3, seed=1)
    assert format_prompt(task, 0) is task
    with pytest.raises(TtsplanError, match="task family"):
        format_prompt(Prompt("x", "y", dataset="gsm8k"), 2)


def test_unknown_family_suggests_the_closest():
    with pytest.raises(TtsplanError, match='Did you mean "larger"'):
        make_tasks("lager", 3)


def test_prompt_files_round_trip(tmp_path):
    prompts = make_tasks("add", 5)
    write_prompts(prompts, tmp_path / "p.jsonl")
    back = read_prompts(tmp_path / "p.jsonl", dataset="add")
    assert [(p.id, p.prompt, p.answer) for p in back] == [(p.id, p.prompt, p.answer) for p in prompts]


def test_bad_prompt_file_gives_one_error_listing_every_problem(tmp_path):
    f = tmp_path / "bad.jsonl"
    f.write_text("\n".join([
        json.dumps({"id": "a", "prompt": "ok", "answer": 1}),
        "{not json",
        json.dumps({"id": "b", "promt": "typo"}),
        json.dumps({"id": "a", "prompt": "again"}),
        json.dumps({"prompt": "no id"}),
        json.dumps([1, 2]),
        json.dumps({"id": "c", "prompt": ""}),
    ]) + "\n")
    with pytest.raises(TtsplanError) as err:
        read_prompts(f)
    msg = str(err.value)
    assert "6 problem(s)" in msg
    for needle in ("line 2", "invalid JSON", "line 3", 'Did you mean "prompt"', "line 4", "unique",
                   "line 5", '"id"', "line 6", "line 7"):
        assert needle in msg
    with pytest.raises(TtsplanError, match="must exist"):
        read_prompts(tmp_path / "missing.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(TtsplanError, match="at least one prompt"):
        read_prompts(tmp_path / "empty.jsonl")
    (tmp_path / "bin.jsonl").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(TtsplanError, match="UTF-8"):
        read_prompts(tmp_path / "bin.jsonl")


def test_shared_problem_files_are_read_with_few_shot_templates(shared_data):
    gsm = read_prompts(shared_data / "problems" / "gsm8k_test.jsonl", shots=2)
    assert len(gsm) == 1319 - 2 and gsm[0].dataset == "gsm8k_test"
    assert gsm[0].prompt.count("Question:") == 3 and gsm[0].prompt.endswith("Answer:")
    math500 = read_prompts(shared_data / "problems" / "math500.jsonl")
    assert len(math500) == 500 and {p.difficulty for p in math500} == {1.0, 2.0, 3.0, 4.0, 5.0}
    for name in ("aime2024", "aime2025", "amc2023"):
        ps = read_prompts(shared_data / "problems" / f"{name}.jsonl")
        assert ps and all(p.answer is not None for p in ps)
    # the gold answers of GSM8K grade against themselves written with a thousands comma
    big = next(p for p in gsm if len(p.answer) >= 4)
    assert grade(f"{int(big.answer):,}", big.answer)
