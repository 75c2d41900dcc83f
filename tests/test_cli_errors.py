"""Bad input and environment faults give one message on stderr, exit code 2, no traceback, and leave no
file behind (issue 19): list sizes, optional dependencies, option ranges, concurrent runs, closed pipes.

Each test drives ``ttsplan.cli.main.app`` through typer's CliRunner (or a subprocess where the fault
is a real file descriptor) and checks the exit code, that the message names the problem and the fix,
and what is (not) on disk afterwards.
"""
from __future__ import annotations

import errno
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import threading
import tracemalloc
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from ttsplan.cli.common import MAX_LIST_VALUES, parse_int_list
from ttsplan.cli.main import app
from ttsplan.features.errors import TtsplanError

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()
K_RECORDED = 8
N_PROMPTS = 6


def one_error(res, *needles: str, one_line: bool = True) -> str:
    """Assert exit 2 with one ``error:`` message on stderr (one line unless it lists a table's problems)
    that contains every needle; return it."""
    assert res.exit_code == 2, (res.exit_code, res.output)
    assert "Traceback" not in res.output, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert lines and lines[0].startswith("error: ") and res.stderr.count("error:") == 1, res.stderr
    assert len(lines) == 1 or not one_line, res.stderr
    message = "\n".join(lines)
    for needle in needles:
        assert needle in message, (needle, message)
    return message


def files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@pytest.fixture()
def recorded(tmp_path: Path) -> tuple[Path, Path]:
    """A recorded SampleTable (one config, K_RECORDED samples per prompt) and the prompts JSONL it answers."""
    rows = [{"config": "c", "model": "m", "prompt_id": f"p{i}", "sample_idx": j,
             "text": str(i + (j % 3 == 0)), "answer": str(i + (j % 3 == 0)), "correct": j % 3 != 0,
             "output_tokens": 3}
            for i in range(N_PROMPTS) for j in range(K_RECORDED)]
    table = tmp_path / "data" / "recorded.parquet"
    table.parent.mkdir()
    pl.DataFrame(rows).write_parquet(table)
    prompts = tmp_path / "data" / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"p{i}", "prompt": f"Q: {i}?\nA:", "answer": str(i)}) + "\n"
                               for i in range(N_PROMPTS)))
    return table, prompts


def sample_args(recorded: tuple[Path, Path], out: Path, k: int) -> list[str]:
    table, prompts = recorded
    return ["sample", str(prompts), "--engine", "replay", "--model", str(table), "--config", "c",
            "--batch-prompts", "1", "--k", str(k), "--out", str(out), "--format", "json"]


def hide_modules(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Make ``importlib.util.find_spec`` report ``names`` as not installed (nothing is uninstalled)."""
    real = importlib.util.find_spec

    def fake(name, package=None):
        return None if name.split(".")[0] in names else real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", fake)


# -- 1. list options are bounded before they are expanded ---------------------------------------------------

@pytest.mark.parametrize("text,needle", [
    ("200000000", "above 10,000,000"),
    ("1-20000", "expands to 20,000 values"),
    ("0", "'0' holds values below 1"),
    ("-5", "'-5' holds values below 1"),
    ("8-2", "must run from low to high"),
    ("1,x", "'x' is not an integer"),
])
def test_curves_k_list_is_checked_before_reading_the_data(tmp_path, text, needle):
    # the data file does not exist: the --k message (and not a file error) proves the order of checks
    res = runner.invoke(app, ["curves", str(tmp_path / "absent.parquet"), "--k", text])
    one_error(res, "--k must list integers >= 1", needle, "Pass a short list or range")


def _limited_memory() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (1536 << 20, 1536 << 20))  # 1.5 GiB: 10^8 ints would not fit


@pytest.mark.parametrize("args,name", [
    (["curves", "{missing}", "--k", "1-100000000"], "--k"),
    (["estimate", "--model", "Qwen3-0.6B", "--n", "1-100000000", "--prompt-tokens", "100", "--output-tokens", "100"],
     "--n"),
])
def test_the_reported_huge_ranges_are_one_message_in_bounded_memory(tmp_path, args, name):
    """The commands of the issue, run with a 1.5 GiB address-space cap (expanding first would die)."""
    args = [a.format(missing=tmp_path / "absent.parquet") for a in args]
    r = subprocess.run([sys.executable, "-m", "ttsplan.cli.main", *args], capture_output=True, text=True, cwd=REPO,
                       timeout=300, preexec_fn=_limited_memory, check=False)
    assert r.returncode == 2, r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr
    assert f"{name} must list integers >= 1 and <= 10,000,000 (at most 10,000 values)" in lines[0]
    assert "expands to 100,000,000 values" in lines[0] and "Pass a short list or range" in lines[0]


def test_parse_int_list_does_not_expand_a_rejected_range():
    tracemalloc.start()
    try:
        with pytest.raises(TtsplanError, match="expands to 200,000 values"):
            parse_int_list("1-200000", "--k")  # expanding it first would hold 200,000 ints (> 5 MB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


def test_parse_int_list_valid_input_is_unchanged():
    assert parse_int_list("1-4,8,2", "--k") == [1, 2, 3, 4, 8]
    assert parse_int_list(" 16 , 1 - 2 ", "--n") == [1, 2, 16]
    assert len(parse_int_list(f"1-{MAX_LIST_VALUES}", "--k")) == MAX_LIST_VALUES
    assert parse_int_list("10000000", "--k") == [10_000_000]


# -- 2. report checks matplotlib, --out, --gpu and --model before reading anything ------------------------

def test_report_lists_every_up_front_problem_without_reading_data(tmp_path, monkeypatch):
    from ttsplan.cli import report_cmd

    hide_modules(monkeypatch, "matplotlib")

    def must_not_read(*a, **k):
        raise AssertionError("report read the data before checking its options")

    monkeypatch.setattr(report_cmd, "read_table", must_not_read)
    existing = tmp_path / "report.txt"
    existing.write_text("keep me")
    before = files_under(tmp_path)
    res = runner.invoke(app, ["report", "--out", str(existing), "--gpu", "TPU9000", "--model", "nope-7b"])
    msg = one_error(res, "matplotlib", "pip install 'ttsplan[plot]'", "--out must be a directory",
                    "TPU9000", "--model", "nope-7b")
    assert 'Did you mean' in msg or "must be one of" in msg
    assert files_under(tmp_path) == before and existing.read_text() == "keep me"


def test_report_without_matplotlib_creates_no_directory(tmp_path, monkeypatch):
    hide_modules(monkeypatch, "matplotlib")
    res = runner.invoke(app, ["report", "--out", str(tmp_path / "new" / "report")])
    one_error(res, "must have matplotlib installed", "pip install 'ttsplan[plot]'")
    assert files_under(tmp_path) == []


def test_report_failure_while_drawing_leaves_no_partial_directory(tmp_path):
    from ttsplan.cli.report_cmd import _render_into

    def half_then_fail(stage: Path) -> list[Path]:
        (stage / "curves.png").write_bytes(b"png")
        raise OSError(errno.ENOSPC, "No space left on device", str(stage / "frontier.png"))

    with pytest.raises(OSError):
        _render_into(tmp_path / "a" / "report", half_then_fail)
    assert files_under(tmp_path) == []
    ok = _render_into(tmp_path / "b", lambda stage: [(stage / "index.html").write_text("x") and stage / "index.html"])
    assert ok == [tmp_path / "b" / "index.html"] and files_under(tmp_path) == ["b", "b/index.html"]


# -- 3. a missing engine extra is reported before any file is created -------------------------------------

@pytest.mark.parametrize("engine,hidden,extra", [
    ("hf", ("torch", "transformers"), "hf"),
    ("openai", ("httpx",), "openai"),
    ("vllm", ("vllm",), "vllm"),
])
def test_sample_names_the_extra_to_install(tmp_path, monkeypatch, engine, hidden, extra):
    hide_modules(monkeypatch, *hidden)
    args = ["sample", "tasks:first_letter:8", "--engine", engine, "--k", "2", "--out", str(tmp_path / "demo")]
    if engine == "openai":
        args += ["--base-url", "http://127.0.0.1:9"]
    if engine == "vllm":
        args += ["--model", "Qwen/Qwen2.5-0.5B-Instruct"]
    res = runner.invoke(app, args)
    one_error(res, f"--engine {engine} must have its optional dependencies installed", hidden[0],
              f"pip install 'ttsplan[{extra}]'")
    assert files_under(tmp_path) == []


def test_sample_without_torch_in_a_real_process(tmp_path):
    """End to end, with torch and transformers made unimportable for the whole interpreter."""
    code = textwrap.dedent(f"""
        import sys
        class Hide:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("torch", "transformers"):
                    raise ModuleNotFoundError(f"No module named {{name!r}}")
                return None
        sys.meta_path.insert(0, Hide())
        sys.argv = ["ttsplan", "sample", "tasks:first_letter:8", "--k", "2", "--out", {str(tmp_path / 'demo')!r}]
        from ttsplan.cli.main import main
        main()
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300,
                       check=False)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and "pip install 'ttsplan[hf]'" in r.stderr and "torch" in r.stderr
    assert files_under(tmp_path) == []


# -- 4. one run at a time per output directory; other parameters are refused ------------------------------

def test_a_second_run_is_refused_while_the_first_holds_the_lock(tmp_path, recorded):
    from ttsplan.features.sampler.runner import shard_lock

    out = tmp_path / "out"
    cdir = out / "c"
    with shard_lock(cdir, (0, 1), {"k": 4}):  # stands in for a first run in progress (its own open file)
        res = runner.invoke(app, sample_args(recorded, out, k=2))
    one_error(res, "must be written by one run at a time", f"pid {os.getpid()}", "k=4",
              "Wait for it to finish, or use another --out directory")
    assert not list(cdir.glob("*.parquet")) and not (cdir / ".run.json").exists()
    # once the lock is released the run goes through (valid input behaves as before)
    res = runner.invoke(app, sample_args(recorded, out, k=4))
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)[0]["samples"] == 4 * N_PROMPTS


def test_a_rerun_with_another_k_is_refused_and_the_table_stays_whole(tmp_path, recorded):
    out = tmp_path / "out"
    assert runner.invoke(app, sample_args(recorded, out, k=4)).exit_code == 0
    res = runner.invoke(app, sample_args(recorded, out, k=2))
    one_error(res, "must hold a run with the same parameters", "sampling.k 4 recorded, 2 now",
              "Use another --out directory")
    table = pl.read_parquet(sorted((out / "c").glob("*.parquet")))
    assert table.group_by("prompt_id").len()["len"].to_list() == [4] * N_PROMPTS


def test_two_concurrent_processes_with_different_k_never_mix(tmp_path, recorded):
    out = tmp_path / "out"
    procs = [subprocess.Popen([sys.executable, "-m", "ttsplan.cli.main", *sample_args(recorded, out, k)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
             for k in (K_RECORDED, 3)]
    results = []
    for p in procs:
        _, err = p.communicate(timeout=300)
        results.append((p.returncode, err))
    codes = sorted(rc for rc, _ in results)
    assert codes == [0, 2], results
    loser = next(err for rc, err in results if rc == 2)
    assert "Traceback" not in loser
    assert "one run at a time" in loser or "same parameters" in loser
    counts = pl.read_parquet(sorted((out / "c").glob("*.parquet"))).group_by("prompt_id").len()["len"]
    assert counts.n_unique() == 1 and counts.len() == N_PROMPTS  # every prompt has the same k


def test_run_parameters_are_recorded_by_exactly_one_of_two_racing_runs(tmp_path):
    from ttsplan.features.sampler.runner import check_run_params

    for trial in range(20):
        run_file = tmp_path / f"t{trial}" / ".run.json"
        barrier = threading.Barrier(2)
        outcome: dict[int, str] = {}

        def start(k: int, run_file: Path, barrier: threading.Barrier, outcome: dict[int, str]) -> None:
            barrier.wait()
            try:
                check_run_params(run_file, {"sampling": {"k": k}}, run_file.parent)
                outcome[k] = "ok"
            except TtsplanError:
                outcome[k] = "refused"

        threads = [threading.Thread(target=start, args=(k, run_file, barrier, outcome)) for k in (20, 40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcome.values()) == ["ok", "refused"], (trial, outcome)
        winner = next(k for k, v in outcome.items() if v == "ok")
        assert json.loads(run_file.read_text()) == {"sampling": {"k": winner}}


def test_a_rejected_first_run_leaves_nothing_and_does_not_block_the_fix(tmp_path, recorded):
    out = tmp_path / "out"
    res = runner.invoke(app, sample_args(recorded, out, k=K_RECORDED + 1))
    one_error(res, f"k must be at most the recorded samples per prompt, got k={K_RECORDED + 1}",
              f"Pass --k {K_RECORDED} or less")
    assert not out.exists()
    assert runner.invoke(app, sample_args(recorded, out, k=K_RECORDED)).exit_code == 0


# -- 5. numeric options are range-checked before any work --------------------------------------------------

@pytest.mark.parametrize("args,needles", [
    (["curves", "{missing}", "--bootstrap", "-5"], ["--bootstrap must be >= 0", "-5"]),
    (["curves", "{missing}", "--confidence", "1.5"], ["--confidence must be strictly between 0 and 1", "1.5"]),
    (["curves", "{missing}", "--confidence", "0"], ["--confidence must be strictly between 0 and 1"]),
    (["replay", "{missing}", "--rule", "beta", "--orders", "-3"], ["--orders must be >= 1, got -3"]),
    (["replay", "{missing}", "--rule", "beta", "--orders", "0", "--max-n", "0"],
     ["--orders must be >= 1, got 0", "--max-n must be >= 1, got 0"]),
    (["replay", "{missing}", "--rule", "beta", "--min-n", "9", "--max-n", "3"], ["--min-n must be <= --max-n"]),
    (["extrapolate", "{missing}", "--fit-k", "10", "--predict-k", "100", "--n-boot", "-1"],
     ["--n-boot must be >= 0", "got -1"]),
    (["extrapolate", "{missing}", "--fit-k", "0", "--predict-k", "100"], ["--fit-k must be >= 1, got 0"]),
    (["report", "{missing}", "--out", "{out}", "--bootstrap", "-1", "--gain-boot", "0"],
     ["--bootstrap must be >= 0, got -1", "--gain-boot must be >= 1, got 0"]),
    (["sample", "tasks:larger:4", "--engine", "replay", "--batch-prompts", "0", "--out", "{out}"],
     ["--batch-prompts must be >= 1, got 0"]),
    (["sample", "tasks:larger:4", "--engine", "replay", "--k", "-2", "--top-p", "1.5", "--out", "{out}"],
     ["--k must be >= 1, got -2", "--top-p must be in (0, 1], got 1.5"]),
    (["sample", "tasks:larger:4", "--engine", "replay", "--max-prompts", "0", "--shots", "-1", "--out", "{out}"],
     ["--max-prompts must be >= 1, got 0", "--shots must be >= 0, got -1"]),
])
def test_out_of_range_numbers_are_one_line_before_any_work(tmp_path, args, needles):
    # the input file does not exist: a range message proves the check runs before reading it
    args = [a.format(missing=tmp_path / "missing.parquet", out=tmp_path / "out") for a in args]
    res = runner.invoke(app, args)
    one_error(res, *needles)
    assert files_under(tmp_path) == []


# -- 6. closed pipes, full disks and user text in messages -------------------------------------------------

def _curves_cmd(table: Path) -> list[str]:
    return [sys.executable, "-m", "ttsplan.cli.main", "curves", str(table), "--format", "json", "--bootstrap", "0"]


def test_a_closed_stdout_ends_quietly(recorded):
    p = subprocess.Popen(_curves_cmd(recorded[0]), stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    p.stdout.close()  # the reader is gone before the command writes anything (like `| head -0`)
    err = p.stderr.read().decode()
    p.stderr.close()
    assert p.wait(timeout=300) == 141, err  # as a Unix tool killed by SIGPIPE
    assert err == ""


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full to simulate a full disk")
def test_a_full_disk_on_stdout_is_one_message(recorded):
    with open("/dev/full", "w") as full:
        r = subprocess.run(_curves_cmd(recorded[0]), stdout=full, stderr=subprocess.PIPE, text=True, cwd=REPO,
                           timeout=300, check=False)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "stdout must have room for the output" in lines[0] and "Free disk space" in lines[0]


def test_a_full_disk_on_out_names_the_users_path(tmp_path, recorded, monkeypatch):
    from ttsplan.cli import common

    def no_space(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(Path(path).parent / ".curves.json.x1.tmp"))

    monkeypatch.setattr(common, "write_atomic", no_space)
    out = tmp_path / "curves.json"
    res = runner.invoke(app, ["curves", str(recorded[0]), "--bootstrap", "0", "--format", "json", "--out", str(out)])
    msg = one_error(res, str(out), "must have room for the output", "Free disk space")
    assert ".tmp" not in msg and not out.exists()


def test_user_text_is_printed_as_text_not_markup(tmp_path):
    # read errors list every file on its own line (a SchemaError), hence one_line=False
    res = runner.invoke(app, ["curves", str(tmp_path / "runs[/final].parquet")])
    one_error(res, "runs[/final].parquet", "file must exist", one_line=False)
    res = runner.invoke(app, ["curves", str(tmp_path / "runs [draft].parquet")])
    one_error(res, "runs [draft].parquet", one_line=False)
