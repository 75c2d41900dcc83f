"""The ``openai`` engine against in-process stub servers (httpx.MockTransport): request mapping, the
n / one-seed-per-sample paths, retries, fail-fast errors, bounded concurrency, resumable runs.

Live-server tests (llama.cpp) are in tests/test_llama_server.py.
"""
from __future__ import annotations

import asyncio
import json
import math
import socket

import numpy as np
import polars as pl
import pytest

httpx = pytest.importorskip("httpx", reason="the openai engine needs httpx (pip install 'ttsplan[openai]')")

from ttsplan.features.errors import TtsplanError
from ttsplan.features.sampler import SamplerConfig, ValidationSampler, make_engine
from ttsplan.features.sampler.base import prompt_seed, sample_seed
from ttsplan.features.sampler.openai import (
    OpenAIEngine,
    ServerError,
    completion_from_choice,
    seed31,
    step_entropy,
)
from ttsplan.features.schema import validate_sample_table
from ttsplan.features.tasks import Prompt

MODEL = "stub-model"


class Stub:
    """A fake OpenAI server. ``honours_n``: vLLM-like (n choices) or llama.cpp-like (always one).

    The answer is a deterministic function of the request seed, so tests can check seeds.
    ``script`` is a list of faults served before normal answers: an int status, "bad-json",
    "no-choices", "timeout", "refused".
    """

    def __init__(self, honours_n: bool = True, script: list | None = None, models: tuple[str, ...] = (MODEL,),
                 delay_s: float = 0.0):
        self.honours_n = honours_n
        self.script = list(script or [])
        self.models = models
        self.delay_s = delay_s
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        self.inflight = 0
        self.max_inflight = 0

    @staticmethod
    def answer(seed: int, i: int) -> str:
        return str((seed + 7 * i) % 3)

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"object": "list", "data": [{"id": m} for m in self.models]})
        if request.url.path not in ("/v1/completions", "/v1/chat/completions"):
            return httpx.Response(404, json={"detail": "Not Found"})
        body = json.loads(request.content)
        self.bodies.append(body)
        self.headers.append(dict(request.headers))
        if self.script:
            fault = self.script.pop(0)
            if fault == "timeout":
                raise httpx.ReadTimeout("read timed out", request=request)
            if fault == "refused":
                raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
            if fault == "bad-json":
                return httpx.Response(200, content=b'{"choices": [ {"text": "4"', headers={"content-type": "application/json"})
            if fault == "no-choices":
                return httpx.Response(200, json={"error": "oops"})
            if isinstance(fault, int):
                return httpx.Response(fault, json={"error": {"message": f"fault {fault}"}})
        self.inflight += 1
        self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
        finally:
            self.inflight -= 1
        n = body.get("n", 1) if self.honours_n else 1
        chat = request.url.path.endswith("chat/completions")
        choices = []
        for i in range(n):
            a = self.answer(body["seed"], i)
            lp = [-0.25, -0.5]
            if chat:
                content = [{"token": f" {a}", "logprob": lp[0], "top_logprobs": [{"token": f" {a}", "logprob": lp[0]},
                                                                                  {"token": " x", "logprob": -2.0}]},
                           {"token": "\n", "logprob": lp[1], "top_logprobs": [{"token": "\n", "logprob": lp[1]}]}]
                choices.append({"index": i, "message": {"role": "assistant", "content": f" {a}\n"},
                                "logprobs": {"content": content}, "finish_reason": "stop"})
            else:
                choices.append({"index": i, "text": f" {a}\n", "finish_reason": "stop",
                                "logprobs": {"tokens": [f" {a}", "\n"], "token_logprobs": lp,
                                             "top_logprobs": [{f" {a}": lp[0], " x": -2.0}, {"\n": lp[1]}]}})
        return httpx.Response(200, json={"id": "cmpl", "object": "text_completion", "model": body["model"],
                                         "choices": choices,
                                         "usage": {"prompt_tokens": 11, "completion_tokens": 2 * n,
                                                   "total_tokens": 11 + 2 * n}})


def engine(stub: Stub, **kw) -> OpenAIEngine:
    kw.setdefault("backoff_s", 0.001)
    kw.setdefault("max_backoff_s", 0.002)
    return OpenAIEngine("http://stub:8000", kw.pop("model", MODEL), transport=httpx.MockTransport(stub), **kw)


PROMPTS = [Prompt(f"p{i}", f"Q: {i}?\nA:", str(i % 3), kind="short") for i in range(5)]
CFG = SamplerConfig(k=4, temperature=0.7, max_new_tokens=4, stop=("\n",), batch_prompts=2, config="c",
                    reward="mean_logprob")


# -- pure mapping ------------------------------------------------------------------------------
def test_step_entropy_brackets_exact_entropy():
    rng = np.random.default_rng(0)
    for _ in range(200):
        v = int(rng.integers(3, 60))
        p = rng.dirichlet(np.full(v, float(rng.choice([0.05, 0.3, 1.0]))))
        exact = float(-(p[p > 0] * np.log(p[p > 0])).sum())
        k = int(rng.integers(1, v))
        top = np.sort(p)[::-1][:k]
        lo, hi = step_entropy([math.log(x) for x in top if x > 0], vocab_size=v)
        assert lo <= exact + 1e-9 and exact <= hi + 1e-9
    lo, hi = step_entropy([math.log(x) for x in (0.5, 0.3, 0.2)], vocab_size=3)  # full support: exact
    assert lo == pytest.approx(hi) == pytest.approx(-(0.5 * math.log(.5) + .3 * math.log(.3) + .2 * math.log(.2)))


def test_completion_from_choice_uses_usage_when_no_logprobs():
    c = completion_from_choice({"text": "7", "finish_reason": "length"}, {"prompt_tokens": 5, "completion_tokens": 12},
                               n_choices=3)
    assert (c.output_tokens, c.prompt_tokens, c.logprob, c.entropy, c.finish_reason) == (4, 5, None, None, "length")


def test_seed31_fits_32_bit_servers():
    s = sample_seed(0, "p", 3)
    assert 0 <= seed31(s) < 2 ** 31 and seed31(s) == s & 0x7FFFFFFF


# -- sampling paths ---------------------------------------------------------------------------
def test_server_honouring_n_gets_one_request_per_prompt(tmp_path):
    stub = Stub(honours_n=True)
    eng = engine(stub, top_logprobs=2)
    table = ValidationSampler(eng, CFG).run(PROMPTS, tmp_path)
    validate_sample_table(table)
    assert table.height == 5 * 4 and eng.supports_n is True
    assert len(stub.bodies) == 5 and all(b["n"] == 4 for b in stub.bodies)
    assert {b["seed"] for b in stub.bodies} == {seed31(prompt_seed(0, p.id)) for p in PROMPTS}
    b = stub.bodies[0]
    assert (b["model"], b["temperature"], b["max_tokens"], b["stop"], b["logprobs"]) == (MODEL, 0.7, 4, ["\n"], 2)
    row = table.row(0, named=True)
    assert row["output_tokens"] == 2 and row["prompt_tokens"] == 11 and row["finish_reason"] == "stop"
    assert row["logprob"] == pytest.approx(-0.75) and row["reward"] == pytest.approx(-0.375)
    p1 = math.exp(-0.25)
    step0 = step_entropy({"a": -0.25, "b": -2.0})[0]
    step1 = step_entropy({"c": -0.5})[0]
    assert row["entropy"] == pytest.approx((step0 + step1) / 2) and 0 < p1 < 1
    assert row["text"] in (" 0", " 1", " 2") and row["answer"] == row["text"].strip()


def test_server_ignoring_n_gets_k_requests_with_distinct_seeds(tmp_path):
    stub = Stub(honours_n=False)
    eng = engine(stub)
    table = ValidationSampler(eng, CFG).run(PROMPTS, tmp_path)
    assert table.height == 20 and eng.supports_n is False
    # the probe (n=4, one choice back) + k single requests per prompt
    singles = [b for b in stub.bodies if b["n"] == 1]
    assert len(singles) == 20 and len(stub.bodies) == 21
    assert {b["seed"] for b in singles} == {seed31(sample_seed(0, p.id, j)) for p in PROMPTS for j in range(4)}
    for r in table.iter_rows(named=True):  # sample j of prompt p came from its own seed
        assert r["answer"] == Stub.answer(seed31(sample_seed(0, r["prompt_id"], r["sample_idx"])), 0)


def test_single_mode_is_deterministic_and_resumes(tmp_path):
    stub = Stub(honours_n=False)
    t1 = ValidationSampler(engine(stub, n_mode="single"), CFG).run(PROMPTS, tmp_path / "a")
    assert len(stub.bodies) == 20
    stub2 = Stub(honours_n=False)
    t2 = ValidationSampler(engine(stub2, n_mode="single"), CFG).run(PROMPTS, tmp_path / "a")  # rerun: all done
    assert len(stub2.bodies) == 0 and t1.equals(t2)
    t3 = ValidationSampler(engine(Stub(honours_n=False), n_mode="single"), CFG).run(PROMPTS, tmp_path / "b")
    assert t1.drop("text").equals(t3.drop("text"))


def test_interrupted_run_resumes_without_duplicates(tmp_path):
    # the server dies after 9 requests (mid second chunk); a rerun finishes with the identical table
    stub = Stub(honours_n=False, script=[None] * 0)
    calls = {"n": 0}

    async def dying(request):
        if request.url.path.endswith("/completions"):
            calls["n"] += 1
            if calls["n"] > 9:
                raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        return await stub(request)

    eng = OpenAIEngine("http://stub:8000", MODEL, transport=httpx.MockTransport(dying), n_mode="single",
                       max_retries=2, backoff_s=0.001, max_backoff_s=0.001)
    with pytest.raises(ServerError, match="Connection refused"):
        ValidationSampler(eng, CFG).run(PROMPTS, tmp_path)
    files = sorted(p.name for p in tmp_path.rglob("*.parquet"))
    assert len(files) == 1  # chunk 0 (2 prompts × 4) written; chunk 1 lost mid-flight
    resumed = ValidationSampler(engine(Stub(honours_n=False), n_mode="single"), CFG).run(PROMPTS, tmp_path)
    fresh = ValidationSampler(engine(Stub(honours_n=False), n_mode="single"), CFG).run(PROMPTS, tmp_path / "fresh")
    assert resumed.height == 20 and resumed.drop("text").equals(fresh.drop("text"))


def test_chat_completions_mapping():
    stub = Stub(honours_n=True)
    eng = engine(stub, chat=True, top_logprobs=2)
    [[c1, _c2]] = eng.generate(PROMPTS[:1], SamplerConfig(k=2, stop=("\n",), reward="mean_logprob"))
    b = stub.bodies[0]
    assert b["messages"] == [{"role": "user", "content": PROMPTS[0].prompt}]
    assert b["logprobs"] is True and b["top_logprobs"] == 2
    assert c1.output_tokens == 2 and c1.logprob == pytest.approx(-0.75) and c1.entropy is not None
    assert c1.text.strip() in ("0", "1", "2")


def test_concurrency_is_bounded():
    stub = Stub(honours_n=False, delay_s=0.01)
    eng = engine(stub, n_mode="single", concurrency=3)
    eng.generate(PROMPTS, SamplerConfig(k=4, stop=("\n",)))
    assert stub.max_inflight == 3


def test_api_key_from_env(monkeypatch):
    monkeypatch.setenv("STUB_KEY", "sekret")
    stub = Stub()
    engine(stub, api_key_env="STUB_KEY").generate(PROMPTS[:1], SamplerConfig(k=1))
    assert stub.headers[0]["authorization"] == "Bearer sekret"
    monkeypatch.delenv("STUB_KEY")
    with pytest.raises(TtsplanError, match="STUB_KEY"):
        engine(stub, api_key_env="STUB_KEY")


# -- faults ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("fault", [500, 502, 503, 429, "bad-json", "no-choices", "timeout", "refused"])
def test_transient_faults_are_retried(fault):
    stub = Stub(script=[fault, fault])
    eng = engine(stub)
    [[c]] = eng.generate(PROMPTS[:1], SamplerConfig(k=1))
    assert c.text.strip() in ("0", "1", "2") and eng.stats.retries == 2


@pytest.mark.parametrize("fault,match", [(500, "HTTP 500"), ("bad-json", "malformed JSON"), ("timeout", "ReadTimeout")])
def test_persistent_faults_are_reported_after_retries(fault, match):
    stub = Stub(script=[fault] * 10)
    eng = engine(stub, max_retries=3)
    with pytest.raises(ServerError, match=match) as info:
        eng.generate(PROMPTS[:1], SamplerConfig(k=1))
    assert "on all 4 attempts" in str(info.value) and len(stub.bodies) == 4


def test_client_errors_fail_at_once():
    stub = Stub(script=[400])
    eng = engine(stub)
    with pytest.raises(TtsplanError, match="HTTP 400") as info:
        eng.generate(PROMPTS[:1], SamplerConfig(k=1))
    assert not isinstance(info.value, ServerError) and len(stub.bodies) == 1


def test_wrong_model_name_fails_fast_with_the_served_name():
    stub = Stub()
    with pytest.raises(TtsplanError, match=r"--model must be a model the server serves, got 'stub-modle'.*"
                                           r"Did you mean \"stub-model\"") :
        engine(stub, model="stub-modle").generate(PROMPTS[:1], SamplerConfig(k=1))
    assert stub.bodies == []


def test_model_defaults_to_the_only_served_model():
    stub = Stub()
    eng = engine(stub, model=None)
    eng.check()
    assert eng.model_name == MODEL
    with pytest.raises(TtsplanError, match="serves 2"):
        engine(Stub(models=("a", "b")), model=None).check()


def test_wrong_base_url_path_fails_fast():
    def handler(request):  # a server whose OpenAI routes live elsewhere
        return httpx.Response(404, json={"detail": "Not Found"})

    eng = OpenAIEngine("http://stub:8000/api", MODEL, transport=httpx.MockTransport(handler))
    with pytest.raises(TtsplanError, match="--base-url must be the server root"):
        eng.check()


def test_nothing_listening_fails_fast_with_a_hint():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    eng = OpenAIEngine(f"http://127.0.0.1:{port}", MODEL, max_retries=0)
    with pytest.raises(ServerError, match="must point at a running OpenAI-compatible server.*llama_cpp.server"):
        eng.generate(PROMPTS[:1], SamplerConfig(k=1))


def test_bad_arguments_are_reported_together():
    with pytest.raises(TtsplanError) as info:
        OpenAIEngine("localhost:8000", n_mode="many", concurrency=0)
    msg = str(info.value)
    assert "--base-url" in msg and "n_mode" in msg and "concurrency" in msg
    with pytest.raises(TtsplanError, match="--base-url must give the server"):
        make_engine("openai", MODEL)


def test_base_url_accepts_v1_suffix():
    assert OpenAIEngine("http://h:1/v1/").base_url == OpenAIEngine("http://h:1").base_url == "http://h:1/v1"


def test_table_columns_and_types(tmp_path):
    table = ValidationSampler(engine(Stub()), CFG).run(PROMPTS[:2], tmp_path)
    assert table.schema["output_tokens"] == pl.Int32 and table["entropy"].null_count() == 0


# -- per-request calls (the Engine protocol's sample_one / sample_many / session().request) ----------------
def test_per_request_calls_use_the_per_sample_seed_and_agree():
    from ttsplan.features.sampler.base import Engine
    from ttsplan.features.sampler.executors import AsyncExecutor, executor_for

    stub = Stub(honours_n=True)
    eng = engine(stub, concurrency=3)
    assert eng.kind == "async" and isinstance(eng, Engine)
    cfg = SamplerConfig(k=5, stop=("\n",), seed=3)  # k is ignored: one completion per request
    requests = [(p, j) for p in PROMPTS[:3] for j in (0, 2)]
    many = eng.sample_many(requests, cfg)
    assert [b["n"] for b in stub.bodies] == [1] * 6
    assert [b["seed"] for b in stub.bodies] == [seed31(sample_seed(3, p.id, j)) for p, j in requests]
    assert [c.text.strip() for c in many] == [Stub.answer(seed31(sample_seed(3, p.id, j)), 0) for p, j in requests]
    assert eng.sample_one(PROMPTS[1], 2, cfg).text == many[3].text

    async def streamed():
        async with executor_for(eng, cfg, batch=99) as ex:
            assert isinstance(ex, AsyncExecutor) and ex.chunks(requests) == [[r] for r in requests]
            return [c for r in requests for c in await ex.run([r])]

    assert [c.text for c in asyncio.run(streamed())] == [c.text for c in many]
