"""Bad inputs to every command (issue 19): one ``error:`` line naming the problem, exit 2, no traceback,
and nothing left behind in the working directory.

Table-driven: each case is a command line (``{d}`` = a directory of small valid inputs written once,
``{w}`` = the case's own empty working directory, which must still be empty afterwards) and a substring
the message must hold. Inputs are small synthetic tables; nothing here needs ../shared/data.

Decision on ``curves --k`` above the recorded samples: an explicit ``--k`` holding a value above the most
samples recorded per prompt is an error that names that maximum; the default grid (1, 2, 4, ..., 256)
is cut at it silently, since it is meant as "as far as the data goes".
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from ttsplan.cli.main import app
from ttsplan.features.schema import validate_sample_table
from ttsplan.planner.budget import Budget
from ttsplan.planner.plan import make_plan

runner = CliRunner()
N_PROMPTS, K = 8, 8
CONFIGS = [f"m/T0.{c + 3}" for c in range(4)]
LONG = "x" * 300  # a config label over the 255-byte file-name limit


def _rows(configs: list[str]) -> list[dict]:
    rng = np.random.default_rng(0)
    rows = []
    for cfg in configs:
        for i in range(N_PROMPTS):
            for j in range(K):
                ok = bool(rng.random() < (i + 0.5) / N_PROMPTS)
                a = str(i) if ok else str(i + 1 + int(rng.integers(0, 3)))
                rows.append({"config": cfg, "model": "m", "prompt_id": f"p{i}", "sample_idx": j,
                             "text": f"The answer is {a}.", "answer": a, "correct": ok,
                             "output_tokens": int(5 + rng.integers(0, 20))})
    return rows


@pytest.fixture(scope="module")
def d(tmp_path_factory) -> Path:
    """Valid inputs: samples.parquet (4 configs x 8 prompts x 8 samples), prompts.jsonl, plan.json (fixed
    allocations, schema 1) and edited copies of it, a table with a 300-byte config label, a bad CSV."""
    d = tmp_path_factory.mktemp("inputs")
    table = pl.DataFrame(_rows(CONFIGS))
    table.write_parquet(d / "samples.parquet")
    pl.DataFrame(_rows([LONG])).write_parquet(d / "long.parquet")
    table.filter(pl.col("config") == CONFIGS[-1]).write_parquet(d / "single.parquet")  # the recommended one
    (d / "prompts.jsonl").write_text("".join(json.dumps({"id": f"p{i}", "prompt": f"Q {i}?", "answer": str(i)}) + "\n"
                                             for i in range(N_PROMPTS)))
    plan = json.loads(make_plan(validate_sample_table(table), Budget(4, "samples", per_prompt=True)).to_json())
    (d / "plan.json").write_text(json.dumps(plan))

    def edited(name: str, edit) -> None:
        p = json.loads(json.dumps(plan))
        edit(p)
        (d / name).write_text(json.dumps(p))

    edited("short.json", lambda p: p["allocations"]["n"].pop())
    edited("negative.json", lambda p: p["allocations"]["n"].__setitem__(0, -3))
    edited("zero.json", lambda p: p["allocations"]["n"].__setitem__(1, 0))
    edited("eight.json", lambda p: p["allocations"]["n"].__setitem__(0, "eight"))
    edited("version.json", lambda p: p.__setitem__("schema_version", 99))
    (d / "list.json").write_text(json.dumps([plan]))
    (d / "garbage.json").write_text("{not json")
    (d / "bad.csv").write_text("a,b\n1,2\n")
    (d / "garbage.parquet").write_text("this is not parquet")
    pl.DataFrame({"config": ["c"], "sample_idx": [0]}).write_parquet(d / "noprompt.parquet")
    (d / "afile").write_text("x")
    (d / "adir").mkdir()
    return d


S = ["{d}/samples.parquet"]
RUN = ["run", "{d}/plan.json", "--prompts", "{d}/prompts.jsonl", "--engine", "replay",
       "--model", "{d}/single.parquet", "--out", "{w}/run"]
SAMPLE = ["sample", "{d}/prompts.jsonl", "--engine", "replay", "--model", "{d}/samples.parquet",
          "--config", CONFIGS[0], "--k", "4", "--batch-prompts", "1"]
EXPORT = ["export", "{d}/plan.json", "--to", "vllm-batch", "--prompts", "{d}/prompts.jsonl", "--out", "{w}/req.jsonl"]
PLAN_FAST = ["--folds", "2", "--orders", "1"]
EST = ["estimate", "--model", "Qwen3-0.6B", "--prompt-tokens", "100", "--output-tokens", "100"]

CASES = [
    # curves
    ("curves-k-huge", ["curves", *S, "--k", "1000000000"], "--k"),
    ("curves-k-above-recorded", ["curves", *S, "--k", "16", "--bootstrap", "0"], "8"),
    ("curves-k-some-above-recorded", ["curves", *S, "--k", "1,4,9", "--bootstrap", "0"], "at most 8"),
    ("curves-bootstrap-negative", ["curves", *S, "--bootstrap", "-5"], "--bootstrap must be >= 0"),
    ("curves-confidence", ["curves", *S, "--confidence", "1.5"], "--confidence"),
    ("curves-missing-file", ["curves", "{w}/absent.parquet"], "absent.parquet"),
    ("curves-garbage-file", ["curves", "{d}/garbage.parquet"], "garbage.parquet"),
    ("curves-no-prompt-column", ["curves", "{d}/noprompt.parquet"], "prompt_id"),
    ("curves-metric", ["curves", *S, "--metric", "mean"], "mean"),
    ("curves-out-directory", ["curves", *S, "--bootstrap", "0", "--out", "{d}/adir"], "adir"),
    # features
    ("features-missing", ["features", "{w}/absent.parquet"], "absent.parquet"),
    ("features-garbage", ["features", "{d}/garbage.parquet"], "garbage.parquet"),
    ("features-no-prompt-column", ["features", "{d}/noprompt.parquet"], "prompt_id"),
    ("features-out-directory", ["features", *S, "--out", "{d}/adir"], "adir"),
    # replay
    ("replay-rule", ["replay", *S, "--rule", "bogus"], "bogus"),
    ("replay-threshold", ["replay", *S, "--rule", "beta", "--threshold", "1.5"], "1.5"),
    ("replay-orders", ["replay", *S, "--rule", "beta", "--orders", "0"], "--orders must be >= 1"),
    ("replay-missing", ["replay", "{w}/absent.parquet", "--rule", "beta"], "absent.parquet"),
    # fit
    ("fit-n-boot-negative", ["fit", *S, "--target", "maj", "--n", "4", "--n-boot", "-5"], "--n-boot"),
    ("fit-n-boot-zero-out", ["fit", *S, "--target", "maj", "--n", "4", "--n-boot", "0", "--out", "{w}/fit.json"],
     "--n-boot must be >= 1"),
    ("fit-n-zero", ["fit", *S, "--target", "maj", "--n", "0"], "--n must be >= 2"),
    ("fit-n-above-recorded", ["fit", *S, "--target", "maj", "--n", "64", "--n-boot", "10"], "8"),
    ("fit-alpha-negative", ["fit", *S, "--target", "maj", "--n", "4", "--alpha", "-1"], "--alpha must be a finite number >= 0"),
    ("fit-features-bogus", ["fit", *S, "--target", "maj", "--n", "4", "--method", "ridge", "--features", "bogus"],
     "bogus"),
    ("fit-features-with-curve", ["fit", *S, "--target", "maj", "--n", "4", "--features", "core"],
     "--features must go with --method ridge, got --features core"),
    ("fit-missing", ["fit", "{w}/absent.parquet", "--target", "maj", "--n", "4"], "absent.parquet"),
    # extrapolate
    ("extrapolate-n-boot", ["extrapolate", *S, "--fit-k", "4", "--predict-k", "8", "--n-boot", "-1"], "--n-boot"),
    ("extrapolate-predict-k", ["extrapolate", *S, "--fit-k", "4", "--predict-k", "0"], "--predict-k"),
    ("extrapolate-fit-k-above", ["extrapolate", *S, "--fit-k", "64", "--predict-k", "128", "--n-boot", "0"], "8"),
    ("extrapolate-confidence", ["extrapolate", *S, "--fit-k", "4", "--predict-k", "8", "--confidence", "2"],
     "--confidence"),
    ("extrapolate-laws", ["extrapolate", *S, "--fit-k", "4", "--predict-k", "8", "--laws", "bogus"], "bogus"),
    # estimate
    ("estimate-model", ["estimate", "--model", "nope-7b", "--prompt-tokens", "1", "--output-tokens", "1"], "nope-7b"),
    ("estimate-gpu", [*EST, "--gpu", "TPU9000"], "TPU9000"),
    ("estimate-n-zero", [*EST, "--n", "0"], "--n"),
    ("estimate-n-huge", [*EST, "--n", "1-100000000"], "--n"),
    ("estimate-prompt-tokens", ["estimate", "--model", "Qwen3-0.6B", "--prompt-tokens", "-1",
                                "--output-tokens", "100"], "prompt_tokens must be >= 0"),
    ("estimate-batch-prompts", [*EST, "--batch-prompts", "0"], "batch_prompts must be an integer >= 1"),
    ("estimate-strategy", [*EST, "--strategy", "bogus"], "bogus"),
    ("estimate-tp", [*EST, "--tp", "0"], "tp must be an integer >= 1"),
    # calibrate
    ("calibrate-missing", ["calibrate", "{w}/absent.csv"], "absent.csv"),
    ("calibrate-bad-columns", ["calibrate", "{d}/bad.csv"], "bad.csv"),
    # sample
    ("sample-k-above-recorded", [*SAMPLE[:-4], "--k", "16", "--batch-prompts", "1", "--out", "{w}/o"], "8"),
    ("sample-out-file", [*SAMPLE, "--out", "{d}/afile"], "afile"),
    ("sample-shard", [*SAMPLE, "--shard", "3/2", "--out", "{w}/o"], "--shard"),
    ("sample-missing-prompts", ["sample", "{w}/absent.jsonl", "--engine", "replay", "--model",
                                "{d}/samples.parquet", "--config", CONFIGS[0], "--out", "{w}/o"], "absent.jsonl"),
    ("sample-engine", [*SAMPLE, "--engine", "bogus", "--out", "{w}/o"], "bogus"),
    ("sample-unknown-config", [*SAMPLE[:-6], "--config", "nope", "--k", "2", "--out", "{w}/o"], "nope"),
    # plan
    ("plan-pilot-zero", ["plan", *S, "--per-prompt", "--budget", "4/prompt", "--pilot", "0"], "--pilot"),
    ("plan-target-above-1", ["plan", *S, "--target", "1.5", *PLAN_FAST], "1.5"),
    ("plan-target-majority-x", ["plan", *S, "--target", "majority@x", *PLAN_FAST], "majority@x"),
    ("plan-tolerance-negative", ["plan", *S, "--tolerance", "-1", *PLAN_FAST], "--tolerance"),
    ("plan-budget-negative", ["plan", *S, "--budget", "-5", *PLAN_FAST], "-5"),
    ("plan-unit", ["plan", *S, "--budget", "5", "--unit", "bogus", *PLAN_FAST], "bogus"),
    ("plan-folds", ["plan", *S, "--folds", "1"], "--folds"),
    ("plan-orders", ["plan", *S, "--orders", "0"], "--orders"),
    ("plan-gpu", ["plan", *S, "--gpu", "TPU9000", *PLAN_FAST], "TPU9000"),
    ("plan-out-directory", ["plan", *S, *PLAN_FAST, "--out", "{d}/adir"], "adir"),
    # evaluate
    ("evaluate-test-fraction", ["evaluate", *S, "--test-fraction", "1.5"], "test_fraction must be in (0, 1)"),
    ("evaluate-repeats", ["evaluate", *S, "--repeats", "0"], "--repeats"),
    ("evaluate-target", ["evaluate", *S, "--target", "2"], "2"),
    # import
    ("import-format", ["import", "bogus", "{d}/samples.parquet", "--out", "{w}/t.parquet"], "bogus"),
    ("import-missing", ["import", "generic", "{w}/absent.jsonl", "--out", "{w}/t.parquet"], "absent.jsonl"),
    ("import-map", ["import", "generic", "{d}/prompts.jsonl", "--map", "nonsense", "--out", "{w}/t.parquet"],
     "--map"),
    ("import-out-directory", ["import", "generic", "{d}/samples.parquet", "--out", "{d}/adir"], "adir"),
    # export
    ("export-to", [*EXPORT[:2], "--to", "bogus", *EXPORT[4:]], "bogus"),
    ("export-short-column", ["export", "{d}/short.json", *EXPORT[2:]], "same length"),
    ("export-negative-n", ["export", "{d}/negative.json", *EXPORT[2:]], "-3"),
    ("export-zero-n", ["export", "{d}/zero.json", *EXPORT[2:]], ">= 1"),
    ("export-n-eight", ["export", "{d}/eight.json", *EXPORT[2:]], "eight"),
    ("export-plan-list", ["export", "{d}/list.json", *EXPORT[2:]], "list"),
    ("export-plan-garbage", ["export", "{d}/garbage.json", *EXPORT[2:]], "garbage.json"),
    ("export-plan-version", ["export", "{d}/version.json", *EXPORT[2:]], "99"),
    ("export-openai-needs-model", [*EXPORT[:2], "--to", "openai-batch", *EXPORT[4:]], "--model"),
    ("export-replay-fails", [*EXPORT, "--replay", "{d}/long.parquet", "--replay-out", "{w}/resp.jsonl"],
     "recorded configurations (xxx"),
    ("export-config", [*EXPORT, "--config", "nope"], "nope"),
    # report
    ("report-out-file", ["report", *S, "--out", "{d}/afile"], "afile"),
    ("report-gpu", ["report", *S, "--gpu", "TPU9000", "--out", "{w}/rep"], "TPU9000"),
    ("report-figures", ["report", *S, "--figures", "bogus", "--out", "{w}/rep"], "bogus"),
    ("report-bootstrap", ["report", *S, "--bootstrap", "-1", "--out", "{w}/rep"], "--bootstrap"),
    # run
    ("run-threshold", [*RUN, "--adaptive", "beta", "--threshold", "1.5"], "1.5"),
    ("run-adaptive", [*RUN, "--adaptive", "bogus"], "bogus"),
    ("run-max-samples-zero", [*RUN, "--max-samples", "0"], "--max-samples"),
    ("run-out-file", [*RUN[:-1], "{d}/afile"], "afile"),
    ("run-short-column", ["run", "{d}/short.json", *RUN[2:]], "same length"),
    ("run-negative-n", ["run", "{d}/negative.json", *RUN[2:]], "-3"),
    ("run-n-eight", ["run", "{d}/eight.json", *RUN[2:]], "eight"),
    ("run-plan-list", ["run", "{d}/list.json", *RUN[2:]], "list"),
    ("run-config", [*RUN, "--config", "nope"], "nope"),
    ("run-missing-prompts", ["run", "{d}/plan.json", "--prompts", "{w}/absent.jsonl", *RUN[4:]], "absent.jsonl"),
]


def _fill(args: list[str], d: Path, w: Path) -> list[str]:
    return [a.replace("{d}", str(d)).replace("{w}", str(w)) for a in args]


def one_error(res, needle: str) -> str:
    assert res.exit_code == 2, (res.exit_code, res.output, repr(res.exception))
    assert "Traceback" not in res.output, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and res.stderr.count("error:") == 1, res.stderr
    assert lines[0].startswith("error: "), res.stderr  # the message comes first (a table's problems follow it)
    assert needle in res.stderr, (needle, res.stderr)
    return res.stderr


def test_at_least_sixty_cases_over_every_command():
    assert len(CASES) >= 60 and len({c[0] for c in CASES}) == len(CASES)
    commands = {c[1][0] for c in CASES}
    assert commands == {"curves", "features", "replay", "fit", "extrapolate", "estimate", "calibrate", "sample",
                        "plan", "evaluate", "import", "export", "report", "run"}


@pytest.mark.parametrize("name,args,needle", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_message_and_leaves_nothing(d, tmp_path, monkeypatch, name, args, needle):
    w = tmp_path / "work"
    w.mkdir()
    monkeypatch.chdir(w)  # default outputs (report/) would land here
    before = sorted(p.name for p in d.rglob("*"))
    res = runner.invoke(app, _fill(args, d, w))
    one_error(res, needle)
    assert sorted(str(p.relative_to(w)) for p in w.rglob("*")) == []
    assert sorted(p.name for p in d.rglob("*")) == before


def test_rejected_run_options_do_not_block_the_corrected_rerun(d, tmp_path):
    """run.json is written only after validation: the same --out then runs with corrected options."""
    args = _fill(RUN, d, tmp_path)
    for bad in (["--adaptive", "beta", "--threshold", "1.5"], ["--adaptive", "bogus"], ["--max-samples", "0"]):
        one_error(runner.invoke(app, [*args, *bad]), bad[-1] if bad[-1] != "0" else "--max-samples")
    res = runner.invoke(app, [*args, "--adaptive", "beta", "--threshold", "0.9", "--format", "json"])
    assert res.exit_code == 0, res.output


def test_rejected_sample_k_does_not_block_the_corrected_rerun(d, tmp_path):
    out = tmp_path / "o"
    one_error(runner.invoke(app, _fill([*SAMPLE[:-4], "--k", "16", "--batch-prompts", "1", "--out", str(out)],
                                       d, tmp_path)), "8")
    res = runner.invoke(app, _fill([*SAMPLE, "--out", str(out), "--format", "json"], d, tmp_path))
    assert res.exit_code == 0, res.output


def test_a_config_label_over_255_bytes_gets_a_short_directory(d, tmp_path):
    """A label longer than a file name may be is kept in the table; its chunk directory is shortened."""
    out = tmp_path / "o"
    res = runner.invoke(app, ["sample", str(d / "prompts.jsonl"), "--engine", "replay", "--model",
                              str(d / "long.parquet"), "--config", LONG, "--k", "2", "--out", str(out),
                              "--format", "json"])
    assert res.exit_code == 0, res.output
    (cdir,) = out.iterdir()
    assert len(cdir.name.encode()) <= 255
    table = pl.read_parquet([p for p in cdir.glob("*.parquet")])
    assert table["config"].unique().to_list() == [LONG] and table.height == 2 * N_PROMPTS
