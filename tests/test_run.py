"""``ttsplan.planner.run`` / ``ttsplan run``: plans executed with the replay engine and a stub OpenAI server.

Checks: fixed-N runs give every prompt exactly its planned N; adaptive runs stop unanimous prompts
early (hand-computed stop points); accuracy and cost in the summary match the table; crashes at any
point (engine failure, between part and session writes) resume to the uninterrupted run's table.
"""
from __future__ import annotations

import json

import polars as pl
import pytest
from typer.testing import CliRunner

from ttsplan.features.errors import TtsplanError
from ttsplan.features.sampler import ReplayEngine, SamplerConfig
from ttsplan.features.sampler.checkpoint import CheckpointPolicy
from ttsplan.features.schema import validate_sample_table
from ttsplan.features.tasks import Prompt, write_prompts
from ttsplan.planner import run as run_mod
from ttsplan.planner.budget import Budget
from ttsplan.planner.plan import make_plan
from ttsplan.planner.run import plan_caps, read_run, run_plan

K = 8
# prompt i: gold answer "4"; recorded answers: p0 unanimous right, p1 unanimous wrong, p2 mixed (5 of 8 right),
# p3 alternating
ANSWERS = {"p0": ["4"] * K, "p1": ["7"] * K, "p2": ["4", "3", "4", "3", "4", "4", "3", "4"],
           "p3": ["1", "2"] * (K // 2)}
PROMPTS = [Prompt(pid, f"Q{pid}: 2 + 2?\nA:", "4", kind="short") for pid in ANSWERS]


def recorded() -> pl.DataFrame:
    rows = [{"config": "c", "model": "m", "dataset": "d", "prompt_id": pid, "sample_idx": j, "text": f" {a}",
             "answer": a, "correct": a == "4", "output_tokens": 2 + j % 3, "prompt_tokens": 9, "reward": 0.5}
            for pid, answers in ANSWERS.items() for j, a in enumerate(answers)]
    return validate_sample_table(pl.DataFrame(rows))


SAMPLING = SamplerConfig(k=1, config="c", stop=("\n",))


def test_fixed_n_runs_every_prompt_to_its_cap(tmp_path):
    caps = {"p0": 3, "p1": 8, "p2": 5, "p3": 1}
    res = run_plan(caps, PROMPTS, ReplayEngine(recorded()), tmp_path, sampling=SAMPLING)
    counts = dict(res.table.group_by("prompt_id").len().sort("prompt_id").iter_rows())
    assert counts == caps and set(res.result["stopped"]) == {"cap"}
    # majority of the first n recorded answers; p2's first 5 = 4,3,4,3,4 → "4"; p3 first 1 → "1"
    assert dict(res.result.select("prompt_id", "answer").iter_rows()) == {"p0": "4", "p1": "7", "p2": "4", "p3": "1"}
    s = res.summary
    assert s["accuracy"] == 0.5 and s["samples"] == 17 and s["planned_samples"] == 17 and s["samples_saved"] == 0
    assert s["output_tokens"] == int(res.table["output_tokens"].sum()) and s["prompt_tokens"] == 17 * 9
    assert read_run(tmp_path).table.equals(res.table)


def test_adaptive_beta_stops_unanimous_prompts_early(tmp_path):
    res = run_plan({pid: K for pid in ANSWERS}, PROMPTS, ReplayEngine(recorded()), tmp_path, rule="beta",
                   sampling=SAMPLING)
    got = {r["prompt_id"]: (r["samples"], r["stopped"]) for r in res.result.iter_rows(named=True)}
    # Beta(a+1, b+1): 4 unanimous votes give 31/32 >= 0.95 (stop); p2's votes never reach it within 8
    assert got["p0"] == (4, "rule") and got["p1"] == (4, "rule")
    assert got["p2"][1] == "cap" and got["p3"] == (8, "cap")
    assert res.summary["samples"] < res.summary["planned_samples"] and res.summary["stopped_rule"] == 2


def test_plan_object_caps_and_config(tmp_path):
    table = recorded()
    plan = make_plan(table, Budget(3, "samples", per_prompt=True))
    cfg, caps, _strategies = plan_caps(plan)
    assert cfg == "c" and set(caps) == set(ANSWERS) and sum(caps.values()) <= 3 * len(ANSWERS) + 1e-9
    res = run_plan(plan, PROMPTS, ReplayEngine(table), tmp_path, sampling=SamplerConfig(k=1))
    assert res.table["config"].unique().to_list() == ["c"]  # the plan's config label
    assert dict(res.table.group_by("prompt_id").len().iter_rows()) == {k: v for k, v in caps.items()}
    with pytest.raises(TtsplanError, match="--config must be a configuration of the plan"):
        plan_caps(plan, "cc")


def test_missing_prompts_are_reported(tmp_path):
    with pytest.raises(TtsplanError, match="prompts must include every prompt of the plan, got 1 missing \\(p3\\)"):
        run_plan({pid: 2 for pid in ANSWERS}, PROMPTS[:3], ReplayEngine(recorded()), tmp_path, sampling=SAMPLING)


def test_crash_between_part_and_session_resumes_exactly(tmp_path, monkeypatch):
    full = run_plan({pid: K for pid in ANSWERS}, PROMPTS, ReplayEngine(recorded()), tmp_path / "full",
                    rule="esc", threshold=3, sampling=SAMPLING, checkpoint=CheckpointPolicy(every_rows=1))
    calls = {"n": 0}
    real = run_mod._Run.save_session

    def flaky(self, session):
        calls["n"] += 1
        if calls["n"] == 3:  # the third part is on disk, its session state is not
            raise KeyboardInterrupt
        real(self, session)

    monkeypatch.setattr(run_mod._Run, "save_session", flaky)
    with pytest.raises(KeyboardInterrupt):
        run_plan({pid: K for pid in ANSWERS}, PROMPTS, ReplayEngine(recorded()), tmp_path / "crash", rule="esc",
                 threshold=3, sampling=SAMPLING, checkpoint=CheckpointPolicy(every_rows=1))
    monkeypatch.setattr(run_mod._Run, "save_session", real)
    assert len(list((tmp_path / "crash" / "parts").glob("*.parquet"))) == 3
    res = run_plan({pid: K for pid in ANSWERS}, PROMPTS, ReplayEngine(recorded()), tmp_path / "crash", rule="esc",
                   threshold=3, sampling=SAMPLING, checkpoint=CheckpointPolicy(every_rows=1))
    key = ["prompt_id", "sample_idx"]
    assert res.table.sort(key).drop("text").equals(full.table.sort(key).drop("text"))
    assert res.result.equals(full.result)
    assert res.summary["resumed_samples"] > 0


def test_checkpoint_policy_validates_and_sets_the_parts(tmp_path):
    with pytest.raises(TtsplanError, match=r"every_rows must be a whole number >= 1, got 0\..*every_s must be a "
                                           r"number of seconds > 0, got nan"):
        CheckpointPolicy(every_rows=0, every_s=float("nan"))
    with pytest.raises(TtsplanError, match="every_rows must be a whole number >= 1, got 2.5"):
        CheckpointPolicy(every_rows=2.5)
    caps = {pid: K for pid in ANSWERS}
    one = run_plan(caps, PROMPTS, ReplayEngine(recorded()), tmp_path / "one", sampling=SAMPLING,
                   checkpoint=CheckpointPolicy(every_rows=10**9, every_s=float("inf")))
    each = run_plan(caps, PROMPTS, ReplayEngine(recorded()), tmp_path / "each", sampling=SAMPLING,
                    checkpoint=CheckpointPolicy(every_rows=1))
    assert len(list((tmp_path / "one" / "parts").glob("*.parquet"))) == 1  # only the final checkpoint
    assert len(list((tmp_path / "each" / "parts").glob("*.parquet"))) > 1
    assert one.table.drop("text").equals(each.table.drop("text"))


def test_changed_parameters_refuse_to_resume(tmp_path):
    run_plan({"p0": 2}, PROMPTS, ReplayEngine(recorded()), tmp_path, sampling=SAMPLING)
    with pytest.raises(TtsplanError, match="different rule"):
        run_plan({"p0": 2}, PROMPTS, ReplayEngine(recorded()), tmp_path, rule="beta", sampling=SAMPLING)


def test_cli_run_with_replay(tmp_path):
    from ttsplan.cli.main import app

    table = recorded()
    plan = make_plan(table, Budget(4, "samples", per_prompt=True))
    (tmp_path / "plan.json").write_text(plan.to_json())
    write_prompts(PROMPTS, tmp_path / "prompts.jsonl")
    rec = tmp_path / "rec.parquet"
    table.write_parquet(rec)
    args = ["run", str(tmp_path / "plan.json"), "--prompts", str(tmp_path / "prompts.jsonl"), "--engine", "replay",
            "--model", str(rec), "--adaptive", "beta", "--out", str(tmp_path / "out"), "--format", "json"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout[r.stdout.index("{"):])
    assert summary["prompts"] == 4 and summary["rule"] == "beta" and 0 <= summary["accuracy"] <= 1
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["samples"] == summary["samples"]
    r2 = CliRunner().invoke(app, ["run", str(tmp_path / "nope.json"), "--prompts", "x", "--out", str(tmp_path)])
    assert r2.exit_code == 2 and "PLAN must be a plan JSON file" in r2.output


def test_cli_run_openai_needs_base_url(tmp_path):
    from ttsplan.cli.main import app

    plan = make_plan(recorded(), Budget(2, "samples", per_prompt=True))
    (tmp_path / "plan.json").write_text(plan.to_json())
    write_prompts(PROMPTS, tmp_path / "prompts.jsonl")
    r = CliRunner().invoke(app, ["run", str(tmp_path / "plan.json"), "--prompts", str(tmp_path / "prompts.jsonl"),
                                 "--engine", "openai", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "--base-url must give the server" in r.output
    # refused before any work: one message, no traceback, nothing written to --out
    assert "Traceback" not in r.output and r.output.count("--base-url must give the server") == 1
    assert not (tmp_path / "o").exists()


# -- the hf engine (tiny random Gemma 3 from tests/test_sampler.py) ------------------------------------
def test_hf_run_is_independent_of_batching_and_resumes(tmp_path):
    pytest.importorskip("torch", reason="the hf engine needs torch (extra 'hf')")
    pytest.importorskip("transformers", reason="the hf engine needs transformers (extra 'hf')")
    from test_sampler import _tiny_model_dir

    from ttsplan.features.sampler.hf import HFEngine

    eng = HFEngine(str(_tiny_model_dir(tmp_path / "tiny")))
    prompts = [Prompt(f"h{i}", f"Q: {i} or {i + 3}?\nA:", str(i + 3), kind="short") for i in range(5)]
    caps = {p.id: 4 for p in prompts}
    sampling = SamplerConfig(k=1, temperature=1.0, max_new_tokens=3, stop=("\n",), config="tiny")
    a = run_plan(caps, prompts, eng, tmp_path / "a", rule="beta", threshold=0.9, sampling=sampling, batch=2)
    b = run_plan(caps, prompts, eng, tmp_path / "b", rule="beta", threshold=0.9, sampling=sampling, batch=5)
    key = ["prompt_id", "sample_idx"]
    assert a.table.sort(key)["text"].to_list() == b.table.sort(key)["text"].to_list()
    assert a.result.select("prompt_id", "samples", "answer").equals(b.result.select("prompt_id", "samples", "answer"))
    again = run_plan(caps, prompts, eng, tmp_path / "a", rule="beta", threshold=0.9, sampling=sampling, batch=2)
    assert again.summary["resumed_samples"] == a.summary["samples"] and again.table.equals(a.table)


# -- against a stub OpenAI server -------------------------------------------------------------------
# (last in the file: the module-level importorskip below skips only what follows it)
httpx = pytest.importorskip("httpx", reason="the openai engine needs httpx")
from test_openai_engine import MODEL, Stub

from ttsplan.features.sampler.openai import OpenAIEngine

STUB_PROMPTS = [Prompt(f"q{i}", f"Q{i}?\nA:", "0", kind="short") for i in range(12)]


def stub_engine(handler, **kw) -> OpenAIEngine:
    return OpenAIEngine("http://stub:8000", MODEL, transport=httpx.MockTransport(handler), backoff_s=0.001,
                        max_backoff_s=0.001, **kw)


def test_openai_run_keeps_many_prompts_in_flight(tmp_path):
    stub = Stub(honours_n=False, delay_s=0.02)
    res = run_plan({p.id: 6 for p in STUB_PROMPTS}, STUB_PROMPTS, stub_engine(stub, concurrency=6), tmp_path,
                   rule="beta", sampling=SAMPLING)
    assert stub.max_inflight == 6
    validate_sample_table(res.table)
    assert res.summary["samples"] == res.table.height == len(stub.bodies)
    # each sample's seed is its own (prompt, index) seed: answers match the stub's seed function
    from ttsplan.features.sampler.base import sample_seed
    from ttsplan.features.sampler.openai import seed31

    for r in res.table.iter_rows(named=True):
        assert r["answer"] == Stub.answer(seed31(sample_seed(0, r["prompt_id"], r["sample_idx"])), 0)


def test_openai_run_survives_a_dead_server_and_resumes(tmp_path):
    caps = {p.id: 6 for p in STUB_PROMPTS}
    ref = run_plan(caps, STUB_PROMPTS, stub_engine(Stub(honours_n=False), concurrency=4), tmp_path / "ref",
                   rule="beta", sampling=SAMPLING)
    stub = Stub(honours_n=False)
    seen = {"n": 0}

    async def dies(request):
        if request.url.path.endswith("/completions"):
            seen["n"] += 1
            if seen["n"] > 20:
                raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        return await stub(request)

    with pytest.raises(TtsplanError, match=r"run stopped: .*Connection refused.*rerun the same command to resume"):
        run_plan(caps, STUB_PROMPTS, stub_engine(dies, concurrency=4, max_retries=1), tmp_path / "run",
                 rule="beta", sampling=SAMPLING, checkpoint=CheckpointPolicy(every_rows=5))
    saved = pl.concat([pl.read_parquet(p) for p in (tmp_path / "run" / "parts").glob("*.parquet")])
    assert 0 < saved.height <= 20
    stub2 = Stub(honours_n=False)
    res = run_plan(caps, STUB_PROMPTS, stub_engine(stub2, concurrency=4), tmp_path / "run", rule="beta",
                   sampling=SAMPLING)
    key = ["prompt_id", "sample_idx"]
    assert res.table.sort(key).equals(ref.table.sort(key))  # nothing lost, nothing twice
    assert len(stub2.bodies) == ref.table.height - saved.height
    assert res.summary["resumed_samples"] == saved.height


# -- CLI ----------------------------------------------------------------------------------------------
