"""inspect-ai: ``ttsplan import inspect`` and the epoch reducers of ``ttsplan.integrations.inspect``.

The logs are written by real inspect-ai evals on its ``mockllm/model`` provider, whose outputs a
callable fixes per prompt (each prompt's epochs get the answers in ``ANSWERS``, in whatever order
inspect-ai schedules them): the reduced values are checked against brute-force enumeration of every
k-subset of the epochs, and pass@k against inspect-ai's own ``pass_at`` reducer. The live-server runs
(llama.cpp through the openai-api-completions provider) are in tests/test_clients_live.py.
"""
from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from ttsplan.cli.main import app
from ttsplan.features.errors import SchemaError, TtsplanError
from ttsplan.features.importers import import_samples
from ttsplan.features.io import read_metadata, read_samples
from ttsplan.integrations.inspect import epoch_estimate, epochs_interval, maj_at, pass_at

inspect_ai = pytest.importorskip("inspect_ai")

from inspect_ai import Epochs, Task
from inspect_ai import eval as inspect_eval
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import ModelOutput, ModelUsage, get_model
from inspect_ai.scorer import accuracy, includes, match, stderr
from inspect_ai.scorer import pass_at as inspect_pass_at
from inspect_ai.solver import generate

#: per prompt: the gold answer and the answers of its epochs ("" = the model said nothing)
GOLD = {"q1": "4", "q2": "7", "q3": "3", "q4": "2"}
ANSWERS = {"q1": ["4", "4", "5", "4"], "q2": ["7", "8", "8", "9"], "q3": ["1", "2", "3", "3"], "q4": ["", "2", "6", ""]}
runner = CliRunner()


def _model(answers: dict[str, list[str]]):
    queues = {q: list(a) for q, a in answers.items()}

    def out(messages, tools, tool_choice, config):
        q = messages[-1].text.split()[0]
        o = ModelOutput.from_content("mockllm/model", queues[q].pop())
        o.usage = ModelUsage(input_tokens=5, output_tokens=2, total_tokens=7)  # no tokenizer download
        return o

    return get_model("mockllm/model", custom_outputs=out)


def _run(tmp_path: Path, epochs, answers=ANSWERS, scorer=None, metrics=None):
    ds = MemoryDataset([Sample(id=q, input=f"{q} what is it?", target=GOLD[q]) for q in answers], name="toy")
    task = Task(dataset=ds, solver=generate(), scorer=scorer or match(), epochs=epochs, metrics=metrics, name="toy")
    (log,) = inspect_eval(task, model=_model(answers), log_dir=str(tmp_path / "logs"), display="none")
    assert log.status == "success", log.error
    return log


def brute(metric: str, answers: list[str], gold: str, k: int) -> float:
    """Mean over every k-subset of the epochs: pass = any correct; maj = the plurality answer is gold
    (ties among t leaders count 1/t, empty answers never vote)."""
    vals = []
    for sub in itertools.combinations(answers, k):
        if metric == "pass":
            vals.append(float(gold in sub))
            continue
        votes = Counter(a for a in sub if a)
        top = max(votes.values(), default=0)
        leaders = [a for a, v in votes.items() if v == top]
        vals.append(leaders.count(gold) / len(leaders) if leaders else 0.0)
    return float(np.mean(vals))


# ------------------------------------------------------------------------------------ reducers
@pytest.fixture(scope="module")
def reduced_log(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reduce")
    reducers = [maj_at(k=1), maj_at(k=3), pass_at(k=2), inspect_pass_at(k=2), maj_at(k=4, n_boot=0)]
    return _run(tmp, Epochs(4, reducers), metrics=[accuracy(), stderr(), epochs_interval()])


def _reduction(log, name):
    (r,) = [r for r in log.reductions if r.reducer == name]
    return {s.sample_id: s for s in r.samples}


@pytest.mark.parametrize("name,metric,k", [("ttsplan/maj_at_1", "maj", 1), ("ttsplan/maj_at_3", "maj", 3),
                                           ("ttsplan/pass_at_2", "pass", 2), ("ttsplan/maj_at_4", "maj", 4)])
def test_reducers_are_exact_against_enumeration(reduced_log, name, metric, k):
    got = _reduction(reduced_log, name)
    assert set(got) == set(GOLD)
    for q, answers in ANSWERS.items():
        assert got[q].value == pytest.approx(brute(metric, answers, GOLD[q], k), abs=1e-12), (q, name)
        md = got[q].metadata
        assert md["k"] == k and md["epochs"] == 4 and md["correct"] == answers.count(GOLD[q])
        assert md["ci_low"] <= got[q].value <= md["ci_high"]


def test_pass_at_matches_inspect_own_reducer_and_the_task_metrics(reduced_log):
    ours, theirs = _reduction(reduced_log, "ttsplan/pass_at_2"), _reduction(reduced_log, "pass_at_2")
    assert {q: s.value for q, s in ours.items()} == pytest.approx({q: s.value for q, s in theirs.items()})
    by = {s.reducer: s.metrics for s in reduced_log.results.scores}
    for name in ("ttsplan/maj_at_1", "ttsplan/maj_at_3", "ttsplan/pass_at_2"):
        red = _reduction(reduced_log, name)
        mean = np.mean([s.value for s in red.values()])
        assert by[name]["accuracy"].value == pytest.approx(mean)
        # the task interval: resample b of every sample, averaged, 2.5 / 97.5 percentiles over b
        boot = np.mean([s.metadata["bootstrap"] for s in red.values()], axis=0)
        lo, hi = np.quantile(boot, [0.025, 0.975])
        assert by[name]["ci_low"].value == pytest.approx(lo) and by[name]["ci_high"].value == pytest.approx(hi)
        assert lo <= mean <= hi and lo < hi  # the epochs disagree on q2..q4: a real spread
    assert np.isnan(by["pass_at_2"]["ci_low"].value)  # inspect's own reducer records no resamples
    assert reduced_log.eval.config.epochs_reducer == ["ttsplan/maj_at_1", "ttsplan/maj_at_3", "ttsplan/pass_at_2",
                                                      "pass_at_2", "ttsplan/maj_at_4"]


def test_no_bootstrap_gives_a_point_interval_and_unanimous_epochs_a_zero_width_one(reduced_log):
    q1 = _reduction(reduced_log, "ttsplan/maj_at_4")["q1"]
    assert q1.metadata["bootstrap"] == [] and q1.metadata["ci_low"] == q1.metadata["ci_high"] == q1.value == 1.0
    r = epoch_estimate("maj", [("7", True)] * 5, k=3)
    assert r["value"] == 1.0 and r["ci_low"] == r["ci_high"] == 1.0 and len(r["bootstrap"]) == 200
    again = epoch_estimate("maj", [("7", True)] * 3 + [("8", False)] * 2, k=3)
    assert again == epoch_estimate("maj", [("7", True)] * 3 + [("8", False)] * 2, k=3)  # seeded: reproducible
    assert 0 <= again["ci_low"] < again["value"] < again["ci_high"] <= 1


def test_bootstrap_interval_covers_the_truth_at_about_its_level():
    """Parameter recovery: epochs drawn i.i.d. with P(correct) = p, pass@2's true value 1 − (1 − p)²;
    the 90% interval over 12 epochs covers it in most of 200 independent draws (percentile intervals of a
    discrete statistic run a little under nominal; a broken interval covers far less or always)."""
    rng = np.random.default_rng(7)
    p, k, truth = 0.3, 2, 1 - 0.7 ** 2
    covered = []
    for _ in range(200):
        votes = [(None, bool(c)) for c in rng.random(12) < p]
        r = epoch_estimate("pass", votes, k=k, confidence=0.9, n_boot=400, seed=int(rng.integers(1 << 30)))
        covered.append(r["ci_low"] <= truth <= r["ci_high"])
    assert 0.75 <= np.mean(covered) <= 0.99, np.mean(covered)


def test_fewer_epochs_than_k_reduce_to_nan_with_the_reason(tmp_path):
    log = _run(tmp_path, Epochs(2, [maj_at(k=3)]), answers={"q1": ["4", "4"]})
    (s,) = log.reductions[0].samples
    assert np.isnan(s.value) and "needs at least 3 scored epochs, got 2" in s.explanation


@pytest.mark.parametrize("call,msg", [
    (lambda: maj_at(k=0), "k must be an integer >= 1, got 0"),
    (lambda: pass_at(k=2.5), "k must be an integer >= 1, got 2.5"),
    (lambda: maj_at(k=2, n_boot=-1, confidence=1.5), "n_boot must be an integer >= 0, got -1; confidence must be in (0, 1)"),
    (lambda: epochs_interval(confidence=0), "confidence must be in (0, 1), got 0"),
])
def test_bad_reducer_arguments_are_named(call, msg):
    with pytest.raises(TtsplanError) as e:
        call()
    assert msg in str(e.value)


# ------------------------------------------------------------------------------------ importer
@pytest.fixture(scope="module")
def epoch_log(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("log"), 4, scorer=[match(), includes()])


def test_import_inspect_log_one_row_per_epoch_pinned_to_the_log(epoch_log):
    r = import_samples("inspect", epoch_log.location)
    t = r.table
    assert t.height == len(epoch_log.samples) == 16
    assert t["config"].unique().to_list() == ["mockllm/model/toy/match"]
    assert t["dataset"].unique().to_list() == ["toy"] and t["model"].unique().to_list() == ["mockllm/model"]
    logged = {(str(s.id), s.epoch - 1): s for s in epoch_log.samples}
    for row in t.iter_rows(named=True):
        s = logged[(row["prompt_id"], row["sample_idx"])]
        assert row["text"] == s.output.completion
        assert row["answer"] == (s.scores["match"].answer or None)
        assert row["correct"] == (s.scores["match"].value == "C")
        assert (row["output_tokens"], row["prompt_tokens"], row["finish_reason"]) == (2, 5, "stop")
    # each prompt's epochs hold exactly the answers the model gave it
    got = t.group_by("prompt_id").agg(pl.col("text").sort()).sort("prompt_id")
    assert dict(got.iter_rows()) == {q: sorted(a) for q, a in ANSWERS.items()}
    assert r.provenance["source_format"] == "inspect"
    assert any("kept 'match'" in n for n in r.provenance["notes"])


def test_import_inspect_scorer_choice_and_unknown_scorer(epoch_log):
    t = import_samples("inspect", epoch_log.location, scorer="includes").table
    assert t["config"].unique().to_list() == ["mockllm/model/toy/includes"]
    with pytest.raises(SchemaError, match=r"--scorer must be one of the logged scorers \(match, includes\), got 'matc'"
                                          r".*Did you mean \"match\""):
        import_samples("inspect", epoch_log.location, scorer="matc")


def test_cli_import_inspect_then_curves_and_plan(epoch_log, tmp_path):
    out = tmp_path / "s.parquet"
    r = runner.invoke(app, ["import", "inspect", str(Path(epoch_log.location).parent), "--out", str(out),
                            "--format", "json"])
    assert r.exit_code == 0, r.output
    payload = json.loads(r.stdout[r.stdout.index("{"):])
    assert payload["configs"][0]["samples"] == 16 and payload["configs"][0]["k_min"] == 4
    assert read_metadata(out)["options"] == {"kind": "math"} and read_samples(out).height == 16
    r = runner.invoke(app, ["curves", str(out), "--metric", "pass", "--metric", "maj", "--format", "json"])
    assert r.exit_code == 0, r.output
    curves = {(c["metric"], c["k"]): c["value"] for c in json.loads(r.stdout)}
    for k in (1, 2, 4):
        assert curves[("pass", k)] == pytest.approx(np.mean([brute("pass", a, GOLD[q], k) for q, a in ANSWERS.items()]))
        assert curves[("maj", k)] == pytest.approx(np.mean([brute("maj", a, GOLD[q], k) for q, a in ANSWERS.items()]))
    r = runner.invoke(app, ["plan", str(out), "--out", str(tmp_path / "plan.json"), "--format", "json"])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "plan.json").read_text())["schema_version"] == 2


def test_a_log_without_epochs_is_refused_with_the_fix(tmp_path):
    log = _run(tmp_path, None, answers={q: a[:1] for q, a in ANSWERS.items()})
    out = tmp_path / "s.parquet"
    r = runner.invoke(app, ["import", "inspect", log.location, "--out", str(out)])
    assert r.exit_code == 2 and "Traceback" not in r.output
    msg = " ".join(r.output.split())
    assert "inspect import must have more than one sample per prompt, got one sample for each of the 4 prompts" in msg
    assert "one sample per prompt cannot give scaling curves" in msg and "--epochs 8" in msg
    assert not out.exists()


def test_unreadable_logs_and_wrong_options_are_named(tmp_path):
    bad = tmp_path / "x.eval"
    bad.write_bytes(b"not a zip")
    with pytest.raises(SchemaError, match=r"x.eval: must be an inspect-ai eval log, got a read error"):
        import_samples("inspect", bad)
    with pytest.raises(TtsplanError, match=r"inspect import must not be given --filter"):
        import_samples("inspect", bad, filter_name="x")
    with pytest.raises(TtsplanError, match=r"lm-eval import must not be given --scorer"):
        import_samples("lm-eval", bad, scorer="match")


def test_without_inspect_ai_the_extra_is_named(tmp_path, monkeypatch):
    import sys

    from ttsplan.integrations import inspect as integration

    log = tmp_path / "x.eval"
    log.write_bytes(b"zip")
    monkeypatch.setitem(sys.modules, "inspect_ai.log", None)  # import inspect_ai.log now raises ImportError
    monkeypatch.setitem(sys.modules, "inspect_ai.scorer", None)
    r = runner.invoke(app, ["import", "inspect", str(log), "--out", str(tmp_path / "s.parquet")])
    assert r.exit_code == 2 and "pip install 'ttsplan[inspect]'" in r.output and "Traceback" not in r.output
    integration._inspect.cache_clear()
    try:
        with pytest.raises(TtsplanError, match=r"must have inspect-ai installed.*pip install 'ttsplan\[inspect\]'"):
            maj_at(k=2)
    finally:
        integration._inspect.cache_clear()
