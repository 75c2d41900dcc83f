"""Kinetics eFLOPs and the roofline step model, checked against hand counts and explicit loops."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ttsplan.features.errors import TtsplanError
from ttsplan.fitting.cost import (LENGTH_DISTRIBUTIONS, STRATEGIES, CostModel, Efficiency, kinetics_eflops, load_calibration,
                          sum_max_linear)
from ttsplan.fitting.specs import ModelSpec, get_model_spec


def test_kinetics_reproduces_paper_qwen3_06b() -> None:
    """Kinetics: Qwen3-0.6B, L_in=150, L_out=4096, N=1, I=562.5 ≈ 0.131 s of a 4.5 PFLOP/s device."""
    c = kinetics_eflops("Qwen3-0.6B", 150, 4096, 1, intensity=562.5)
    assert float(c["eflops"]) / 4.5e15 == pytest.approx(0.131, rel=0.02)
    # the B200 fp8 spec gives the same I
    assert float(kinetics_eflops("Qwen3-0.6B", 150, 4096, 1, gpu="B200")["eflops"]) == pytest.approx(float(c["eflops"]))


def test_kinetics_hand_computed() -> None:
    m = ModelSpec("t", layers=2, hidden=8, q_heads=4, kv_heads=2, head_dim=2, ffn=16, vocab=10, tied_embeddings=True)
    P, D, r, I = m.matmul_params, 2 * 2 * 2 * 2, 2.0, 100.0
    Lin, Lout, N = 5.0, 7.0, 3.0
    expect = 2 * N * P * Lout + r * N * D * (2 * Lin * Lout + Lout ** 2) + I * D * (2 * Lin * Lout + N * Lout ** 2)
    assert float(kinetics_eflops(m, Lin, Lout, N, intensity=I)["eflops"]) == pytest.approx(expect)


def test_attention_to_parameter_ratio_grows_with_output_length() -> None:
    ratio = kinetics_eflops("Qwen3-0.6B", 150, np.array([256, 1024, 4096, 16384, 32768]), 1, intensity=562.5)[
        "attention_to_param"]
    assert np.all(np.diff(ratio) > 0)
    assert ratio[-1] > 100  # memory-bound attention dominates long generations (the paper's point)
    # and more samples share the prompt: the per-sample ratio falls with N only through the shared 2·L_in·L_out term
    many = kinetics_eflops("Qwen3-0.6B", 150, 4096, np.array([1, 32]), intensity=562.5)["attention_to_param"]
    assert many[1] < many[0]


@settings(max_examples=200, deadline=None)
@given(st.floats(-5, 5), st.floats(-1, 1), st.floats(-5, 5), st.floats(-1, 1), st.integers(0, 40), st.integers(0, 40))
def test_sum_max_linear_equals_loop(a, b, c, d, t0, n) -> None:
    t1 = t0 + n
    expect = sum(max(a + b * t, c + d * t) for t in range(t0, t1))
    assert float(sum_max_linear(a, b, c, d, t0, t1)) == pytest.approx(expect, abs=1e-9, rel=1e-9)


def _loop_decode(cm: CostModel, groups, B, N, Lp, L, prefix_caching=True, fork=False) -> float:
    """Explicit step-by-step decode time: every step costs max(compute, memory) + t_fixed + all-reduce."""
    m, e = cm.model, cm.efficiency
    ends = [max(round(g * L), 1) for g in groups]
    K = len(groups)
    total = 0.0
    for t in range(max(ends)):
        live = B * N * sum(1 for x in ends if x > t) / K
        if live == 0:
            break
        flops = live * (2 * m.matmul_params + m.attn_flops_per_token_per_context * (Lp + t))
        prompt_kv = (B if prefix_caching else live) * Lp * m.kv_bytes_per_token
        byts = m.streamed_weight_bytes + prompt_kv + live * t * m.kv_bytes_per_token
        if fork:
            byts += live * 2 * 16 * m.kv_bytes_per_token
        total += max(flops / (cm.peak_flops * e.e_c), byts / (cm.bandwidth * e.e_m)) + e.t_fixed_s
        total += float(cm.allreduce_s(live))
    return total


@pytest.mark.parametrize("dist", ["fixed", "uniform", "exponential"])
@pytest.mark.parametrize("B,N,Lp,L", [(1, 1, 150, 300), (1, 64, 2000, 500), (32, 8, 100, 257), (4, 256, 10, 40)])
def test_closed_form_decode_equals_step_loop(dist, B, N, Lp, L) -> None:
    eff = {"calibration": {"entries": [{"gpu": "H100", "engine": "vllm", "params": {
        "e_c": 0.6, "e_m": 0.8, "t_fixed_s": 1e-3, "t_allreduce_s": 2e-5}}]}}
    for tp, pc, fork in [(1, True, False), (2, False, False), (1, True, True)]:
        cm = CostModel("Qwen3-1.7B", "H100", tp=tp, **eff)
        groups = LENGTH_DISTRIBUTIONS[dist]
        got = cm.decode(groups, B, N, Lp, L, prefix_caching=pc, fork=fork)["seconds"]
        assert float(got) == pytest.approx(_loop_decode(cm, groups, B, N, Lp, L, pc, fork), rel=1e-9)


def test_compute_and_memory_regimes_both_reached() -> None:
    cm = CostModel("Qwen3-8B", "H100")
    # one sequence: memory bound, step ≈ weights / bandwidth
    one = cm.decode(np.array([1.0]), 1, 1, 1, 100)["seconds"] / 100
    assert float(one) == pytest.approx(cm.model.streamed_weight_bytes / cm.bandwidth, rel=0.01)
    # 4096 short sequences: compute bound, step ≈ 2P·B / peak
    big = cm.decode(np.array([1.0]), 1, 4096, 1, 2)["seconds"] / 2
    assert float(big) == pytest.approx(4096 * 2 * cm.model.matmul_params / cm.peak_flops, rel=0.01)


def test_prefix_caching_prefills_the_shared_prompt_once() -> None:
    cm = CostModel("Qwen3-8B", "H100")
    n = np.array([1, 16])
    on = cm.price(n, 4000, 500, prefix_caching=True)
    off = cm.price(n, 4000, 500, prefix_caching=False)
    assert on["prefill_s"][0] == pytest.approx(off["prefill_s"][0])
    assert off["prefill_s"][1] > 10 * on["prefill_s"][1]
    assert on["tokens"].tolist() == [4500, 4000 + 16 * 500]
    assert off["tokens"][1] == 16 * 4500
    assert on["kv_cache_bytes"][1] == pytest.approx(cm.model.kv_bytes_per_token * (4000 + 16 * 500))


def test_throughput_mode_amortizes_weights() -> None:
    cm = CostModel("Llama-3.1-8B", "H100")
    b = np.array([1, 8, 64])
    out = cm.price(4, 500, 1000, batch_prompts=b)
    assert np.all(np.diff(out["cost_usd"]) < 0)        # cheaper per prompt
    assert np.all(np.diff(out["latency_s"]) > 0)       # but each batch takes longer
    assert out["cost_usd"][0] == pytest.approx(out["latency_s"][0] * 2.50 / 3600)
    assert out["cost_usd"][2] == pytest.approx(out["latency_s"][2] * 2.50 / 3600 / 64)


def test_strategies_and_verifier() -> None:
    cm = CostModel("Qwen3-4B", "H100")
    base = cm.price(8, 300, 1000, strategy="majority")
    for s in ("best-of-n", "weighted-majority", "best-of-majority"):
        out = cm.price(8, 300, 1000, strategy=s)
        assert out["verify_s"] > 0 and out["latency_s"] > base["latency_s"] and out["flops"] > base["flops"]
        assert out["verifier_tokens"] == 8 * 1000
    assert cm.price(8, 300, 1000, strategy="pass@n")["latency_s"] == pytest.approx(base["latency_s"])
    assert cm.price(8, 300, 1000, strategy="greedy")["tokens"] == 1300
    # a separate, larger verifier must prefill the prompt itself and costs more
    sep = CostModel("Qwen3-4B", "H100", verifier="Qwen3-8B").price(8, 300, 1000, strategy="best-of-n")
    assert sep["verify_s"] > cm.price(8, 300, 1000, strategy="best-of-n")["verify_s"]
    assert sep["verifier_tokens"] == 8 * 1300
    beam = cm.price(8, 300, 1000, strategy="beam-search")
    assert beam["bytes"] > base["bytes"]
    assert float(cm.beam_fork_bytes(8, 1000)) == 8 * 1000 * 32 * cm.model.kv_bytes_per_token
    assert set(STRATEGIES) >= {"greedy", "majority", "best-of-n", "weighted-majority", "best-of-majority", "pass@n"}


def test_price_broadcasts_and_has_planner_keys() -> None:
    cm = CostModel("Qwen3-0.6B")
    out = cm.price(np.array([[1], [4], [16]]), np.array([100, 1000]), 256)
    for k in ("tokens", "flops", "bytes", "eflops", "kv_cache_bytes", "latency_s", "cost_usd"):
        assert out[k].shape == (3, 2)
        assert np.all(out[k] > 0)
    assert np.all(np.diff(out["latency_s"], axis=0) > 0)


def test_ragged_stopping_keeps_tokens_and_stretches_latency() -> None:
    cm = CostModel("Qwen3-8B", "H100")
    fixed = cm.price(32, 200, 1000, length_distribution="fixed")
    expo = cm.price(32, 200, 1000, length_distribution="exponential")
    assert expo["generated_tokens"] == pytest.approx(fixed["generated_tokens"])
    assert expo["latency_s"] > fixed["latency_s"]  # the longest sample decides the latency


def test_kv_footprint_concurrency_and_waves() -> None:
    cm = CostModel("Llama-3.1-8B", "H100")
    kvb = 2 * 8 * 128 * 32 * 2
    assert cm.model.kv_bytes_per_token == kvb == 131072
    cap = 0.9 * 80e9 - cm.model.weight_bytes
    assert float(cm.max_concurrency(4096)) == np.floor(cap / (4096 * kvb))
    small = cm.price(8, 1000, 1000, batch_prompts=1)
    huge = cm.price(8, 1000, 1000, batch_prompts=1000)
    assert small["waves"] == 1 and huge["waves"] > 1
    with pytest.raises(TtsplanError, match="must fit"):
        CostModel("Llama-3.1-70B", "RTX4090").price(1, 10, 10)


def test_calibration_is_applied_and_transfers_to_other_gpus(tmp_path) -> None:
    cal = {"entries": [{"gpu": "H100", "engine": "vllm", "params": {"e_c": 0.5, "e_m": 0.5, "t_fixed_s": 0.0}}]}
    naive = CostModel("Qwen3-8B", "H100").price(1, 100, 100)["decode_s"]
    half = CostModel("Qwen3-8B", "H100", calibration=cal).price(1, 100, 100)["decode_s"]
    assert half == pytest.approx(2 * naive)
    assert CostModel("Qwen3-8B", "H200", calibration=cal).efficiency.e_m == 0.5
    p = tmp_path / "c.json"
    p.write_text("[1, 2]")
    with pytest.raises(TtsplanError, match="entries"):
        load_calibration(p)
    with pytest.raises(TtsplanError, match="efficiencies"):
        Efficiency(e_c=0.0)


@pytest.mark.parametrize("kwargs,match", [
    ({"n": 0}, "n must be an integer >= 1"),
    ({"n": 2.5}, "n must be an integer"),
    ({"prompt_tokens": -1}, "prompt_tokens must be"),
    ({"output_tokens": float("nan")}, "output_tokens must be"),
    ({"strategy": "best-of-m"}, 'Did you mean "best-of-n"'),
    ({"batch_prompts": 0}, "batch_prompts must be"),
    ({"length_distribution": "gaussian"}, "length_distribution must be"),
])
def test_bad_workloads_raise(kwargs, match) -> None:
    args = {"n": 4, "prompt_tokens": 100, "output_tokens": 100} | kwargs
    with pytest.raises(TtsplanError, match=match):
        CostModel("Qwen3-0.6B").price(**args)


def test_planner_constructor_contract() -> None:
    cm = CostModel(get_model_spec("Qwen3-0.6B"), "h100", calibration=None, usd_per_hour=10.0, engine="vllm")
    assert cm.usd_per_hour == 10.0 and cm.gpu.name == "H100"
    with pytest.raises(TtsplanError):
        CostModel("Qwen3-0.6B", usd_per_hour=-1)


def test_serving_prediction_hand_computed() -> None:
    """CostModel.serving of an uncalibrated Llama-3.1-8B on H100 (B = 1, isl 1024, osl 128): TPOT is one decode
    step at context isl + osl/2 and TTFT one prefill, each max(FLOPs / peak, bytes / bandwidth) from the specs;
    at tp 2 each gains 2 all-reduces per layer of tokens·hidden·2 bytes over NVLink (ring factor 1)."""
    m = get_model_spec("Llama-3.1-8B")
    peak, bw, nvl = 989.4e12, 3.35e12, 450e9
    P2, A, W, kv = 2 * m.matmul_params, 4 * 32 * 128 * 32, 2 * m.matmul_params, 2 * 8 * 128 * 32 * 2
    ctx = 1024 + 64
    t_dec = max((P2 + A * ctx) / peak, (W + ctx * kv) / bw)
    t_pre = max((1024 * P2 + A * 1024 * 1025 / 2) / peak, (W + 1024 * kv) / bw)
    out = CostModel("Llama-3.1-8B", "H100").serving(1, 1024, 128)
    assert float(out["tpot_s"]) == pytest.approx(t_dec, rel=1e-12)
    assert float(out["ttft_s"]) == pytest.approx(t_pre, rel=1e-12)
    two = CostModel("Llama-3.1-8B", "H100", tp=2).serving(1, 1024, 128)
    assert float(two["tpot_s"]) == pytest.approx(t_dec / 2 + 2 * 32 * 4096 * 2 / nvl, rel=1e-12)
    assert float(two["ttft_s"]) == pytest.approx(t_pre / 2 + 2 * 32 * 1024 * 4096 * 2 / nvl, rel=1e-12)
    # arrays broadcast; more concurrent clients only slow a step down
    grid = CostModel("Llama-3.1-8B", "H100").serving(np.array([[1], [64]]), np.array([1024, 4096]), 128)
    assert grid["tpot_s"].shape == (2, 2) and (grid["tpot_s"][1] > grid["tpot_s"][0]).all()
    with pytest.raises(TtsplanError, match="batch_size"):
        CostModel("Llama-3.1-8B", "H100").serving(0, 1024, 128)
