"""``ttsplan import`` / ``ttsplan export`` through the CLI (typer's CliRunner on ttsplan.cli.main.app).

Fixture layouts and their sources are cited in tests/test_importers.py; the round trip's truth in
tests/test_export.py.
"""
from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from test_export import toy_samples  # tests/ is on sys.path under pytest
from typer.testing import CliRunner

from ttsplan.cli.main import COMMANDS, app
from ttsplan.features.io import read_metadata, read_samples, write_parquet_atomic

FIX = Path(__file__).parent / "fixtures" / "importers"
runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def test_commands_registered_and_help_has_examples():
    assert "import" in COMMANDS and "export" in COMMANDS
    for cmd in ("import", "export"):
        r = run(cmd, "--help")
        assert r.exit_code == 0 and "Example:" in r.output


@pytest.mark.parametrize("fmt,args,rows", [
    ("lm-eval", [FIX / "lm_eval"], 15),
    ("search-and-learn", [FIX / "sal" / "best_of_n_completions.jsonl", "--reward-agg", "prod"], 8),
    ("openai-batch", [FIX / "batch" / "output.jsonl", "--prompts", FIX / "batch" / "prompts.jsonl"], 3),
    ("generic", [FIX / "generic" / "runs.csv", "--map", "prompt_id=doc_id", "--map", "answer=pred",
                 "--map", "gold=gold", "--config", "mine"], 6),
])
def test_import_each_format_writes_a_validated_table(tmp_path, fmt, args, rows):
    out = tmp_path / "s.parquet"
    r = run("import", fmt, *args, "--out", out, "--format", "json")
    assert r.exit_code == 0, r.output
    t = read_samples(out)
    assert t.height == rows
    meta = read_metadata(out)
    assert meta["source_format"] == fmt and meta["rows"] == rows
    payload = json.loads(r.stdout[r.stdout.index("{"):])
    assert payload["format"] == fmt and sum(c["samples"] for c in payload["configs"]) == rows


def test_import_table_output_and_notes(tmp_path):
    r = run("import", "sal", FIX / "sal" / "best_of_n_completions.jsonl", "--out", tmp_path / "s.parquet")
    assert r.exit_code == 0
    assert "imported search-and-learn" in r.output and "note: reward = PRM step scores aggregated by 'last'" in r.output


def test_malformed_input_exit_2_one_message_no_output(tmp_path):
    bad = tmp_path / "samples_t_2024-01-01T00-00-00.jsonl"
    bad.write_text(json.dumps({"doc": {}, "response": [["x"]]}) + "\n")
    out = tmp_path / "s.parquet"
    r = run("import", "lm-eval", bad, "--out", out)
    assert r.exit_code == 2
    assert "Traceback" not in r.output and r.output.count("error:") == 1
    for field in ("doc_id", "resps", "target"):
        assert f"--map {field}=<your field>" in r.output
    assert not out.exists() and list(tmp_path.iterdir()) == [bad]


@pytest.mark.parametrize("args,needle", [
    (["lm-eval", FIX / "lm_eval" / "org__model-1b" / "samples_gsm8k_2024-06-01T10-00-00.000000.jsonl"],
     "one sample per prompt cannot give scaling curves"),
    (["lm-evl", "x.jsonl"], 'Did you mean "lm-eval"'),
    (["generic", FIX / "generic" / "runs.csv"], 'column "prompt_id" must be present'),
    (["generic", FIX / "generic" / "runs.csv", "--map", "prompt_id"], "--map must be TARGET=SOURCE"),
    (["lm-eval", FIX / "lm_eval", "--prompts", FIX / "batch" / "prompts.jsonl"], "must not be given --prompts"),
    (["openai-batch", FIX / "batch" / "nope.jsonl"], "file must exist"),
])
def test_import_bad_arguments_exit_2(tmp_path, args, needle):
    out = tmp_path / "s.parquet"
    r = run("import", *args, "--out", out)
    assert r.exit_code == 2 and needle in r.output and "Traceback" not in r.output
    assert not out.exists()


def test_import_out_must_be_parquet(tmp_path):
    r = run("import", "sal", FIX / "sal" / "best_of_n_completions.jsonl", "--out", tmp_path / "s.csv")
    assert r.exit_code == 2 and "--out must end in .parquet" in r.output


def test_cli_round_trip_plan_export_replay_import_evaluate(tmp_path):
    table, prompts = toy_samples(n_prompts=16, k=24, seed=1)
    samples = tmp_path / "samples.parquet"
    write_parquet_atomic(table, samples)
    (tmp_path / "prompts.jsonl").write_text("".join(json.dumps({**p, "dataset": "toy"}) + "\n" for p in prompts))
    r = run("plan", samples, "--budget", "8/prompt", "--pilot", "4", "--strategies", "majority",
            "--out", tmp_path / "plan.json", "--format", "json")
    assert r.exit_code == 0, r.output
    r = run("export", tmp_path / "plan.json", "--to", "vllm-batch", "--prompts", tmp_path / "prompts.jsonl",
            "--out", tmp_path / "requests.jsonl", "--replay", samples, "--replay-out", tmp_path / "responses.jsonl")
    assert r.exit_code == 0, r.output
    from ttsplan.planner.policy_plan import read_plan

    planned = read_plan((tmp_path / "plan.json").read_text()).allocations_frame()
    more = {pid: n - 4 for pid, n in planned.select("prompt_id", "n").iter_rows() if n > 4}  # N counts the pilot
    assert "vllm-batch" in r.output and f"majority×{len(more)}" in r.output
    reqs = [json.loads(x) for x in (tmp_path / "requests.jsonl").read_text().splitlines()]
    assert {q["custom_id"].split("::")[1]: q["body"]["n"] for q in reqs} == more
    assert all(q["custom_id"].startswith("toy-1b/T0.7::") for q in reqs)
    r = run("import", "openai-batch", tmp_path / "responses.jsonl", "--prompts", tmp_path / "prompts.jsonl",
            "--out", tmp_path / "imported.parquet")
    assert r.exit_code == 0, r.output
    n = pl.DataFrame({"prompt_id": [q["custom_id"].split("::")[1] for q in reqs], "n": [q["body"]["n"] for q in reqs]})
    served = table.join(n, on="prompt_id").filter(pl.col("sample_idx") < pl.col("n")).drop("n")
    write_parquet_atomic(served, tmp_path / "served.parquet")
    a = run("evaluate", tmp_path / "imported.parquet", "--pilot", "2", "--budgets", "2", "--format", "json")
    b = run("evaluate", tmp_path / "served.parquet", "--pilot", "2", "--budgets", "2", "--format", "json")
    assert a.exit_code == 0 and b.exit_code == 0, a.output + b.output
    assert json.loads(a.stdout) == json.loads(b.stdout)


def test_export_errors_exit_2(tmp_path):
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"allocations": [{"config": "c", "prompt_id": "q1", "strategy": "majority", "n": 4}]}))
    prompts = FIX / "batch" / "prompts.jsonl"
    r = run("export", plan, "--to", "openai-batch", "--prompts", prompts, "--out", tmp_path / "r.jsonl")
    assert r.exit_code == 2 and "--model must be given for openai-batch" in r.output
    assert not (tmp_path / "r.jsonl").exists()
    r = run("export", plan, "--to", "openai-batch", "--model", "gpt-x", "--prompts", prompts, "--out", tmp_path / "r.jsonl",
            "--format", "json")
    assert r.exit_code == 0, r.output
    line = json.loads((tmp_path / "r.jsonl").read_text())
    assert line["custom_id"] == "c::q1" and line["body"]["n"] == 4 and line["body"]["model"] == "gpt-x"
    (tmp_path / "bad.json").write_text("{}")
    r = run("export", tmp_path / "bad.json", "--to", "vllm-batch", "--prompts", prompts, "--out", tmp_path / "x.jsonl")
    assert r.exit_code == 2 and "must be written by `ttsplan plan`" in r.output
    r = run("export", plan, "--to", "vllm-batch", "--prompts", prompts, "--out", tmp_path / "x.jsonl",
            "--replay", tmp_path / "s.parquet")
    assert r.exit_code == 2 and "--replay and --replay-out must be given together" in r.output


def test_roundtrip_fixture_is_the_documented_toy_table():
    # docs/importers.md runs its round trip on this fixture; keep it what toy_samples(seed=1) builds
    table, prompts = toy_samples(n_prompts=16, k=24, seed=1)
    assert read_samples(FIX / "roundtrip" / "samples.parquet").equals(table)
    lines = [json.loads(x) for x in (FIX / "roundtrip" / "prompts.jsonl").read_text().splitlines()]
    assert lines == [{**p, "dataset": "toy"} for p in prompts]
