"""ModelSpec / GpuSpec: exact parameter counts against published totals, loaders, name lookup."""
from __future__ import annotations

import json

import pytest

from ttsplan.features.errors import TtsplanError
from ttsplan.fitting.specs import GPUS, MODELS, GpuSpec, ModelSpec, get_gpu_spec, get_model_spec, load_gpu_spec, load_model_spec

# Published totals (model cards / safetensors metadata), as listed in issue 6.
PUBLISHED = {
    "Qwen2.5-0.5B": 494_032_768,
    "Qwen2.5-72B": 72_706_203_648,
    "Qwen3-0.6B": 596_049_920,
    "Qwen3-14B": 14_768_307_200,
    "Llama-3.1-8B": 8_030_261_248,
    "Llama-3.1-70B": 70_553_706_496,
    "Llama-3.2-1B": 1_235_814_400,
    "Llama-3.2-3B": 3_212_749_824,
}


@pytest.mark.parametrize("name,total", sorted(PUBLISHED.items()))
def test_param_count_matches_published_total(name: str, total: int) -> None:
    assert get_model_spec(name).params == total


def test_gemma3_270m_architecture_and_count() -> None:
    g = get_model_spec("google/gemma-3-270m")
    assert (g.layers, g.hidden, g.q_heads, g.kv_heads, g.head_dim, g.vocab) == (18, 640, 4, 1, 256, 262_144)
    # hand count: embedding 262144·640 + 18 · (attn 1,638,400 + MLP 3·640·2048 + 4 norms + q/k norm) + final norm
    per_layer = 640 * 1024 + 2 * 640 * 256 + 1024 * 640 + 3 * 640 * 2048 + 4 * 640 + 2 * 256
    assert g.params == 262_144 * 640 + 18 * per_layer + 640 == 268_098_176


def test_hand_counted_tiny_model() -> None:
    tiny = ModelSpec("tiny", layers=2, hidden=8, q_heads=2, kv_heads=1, head_dim=4, ffn=16, vocab=10,
                     qkv_bias=True)
    attn = 8 * 8 + 2 * 8 * 4 + 8 * 8 + (8 + 2 * 4)
    mlp = 3 * 8 * 16
    assert tiny.params == 2 * (attn + mlp + 2 * 8) + 10 * 8 * 2 + 8
    assert tiny.kv_elements_per_token == 2 * 1 * 4 * 2


def test_catalog_covers_the_issue() -> None:
    for name in ["Qwen2.5-1.5B", "Qwen2.5-3B", "Qwen2.5-7B", "Qwen2.5-14B", "Qwen2.5-32B", "Qwen3-1.7B", "Qwen3-4B",
                 "Qwen3-8B", "Qwen3-32B", "DeepSeek-R1-Distill-Qwen-1.5B", "DeepSeek-R1-Distill-Qwen-7B"]:
        assert name in MODELS
    assert set(GPUS) == {"H100", "H200", "A100", "L40S", "B200", "RTX4090"}
    # values widely quoted on model cards (rounded)
    assert round(get_model_spec("Qwen2.5-7B").params / 1e9, 2) == 7.62
    assert round(get_model_spec("Qwen3-32B").params / 1e9, 1) == 32.8


@pytest.mark.parametrize("name", ["qwen3-0.6b", "Qwen/Qwen3-0.6B", "QWEN3-0.6B", "qwen3_0.6b"])
def test_case_insensitive_and_hf_ids(name: str) -> None:
    assert get_model_spec(name).name == "Qwen3-0.6B"


def test_instruct_ids_and_gpu_aliases() -> None:
    assert get_model_spec("meta-llama/Llama-3.1-8B-Instruct").name == "Llama-3.1-8B"
    assert get_gpu_spec("h100_sxm").name == "H100"
    assert get_gpu_spec("rtx 4090").name == "RTX4090"


def test_unknown_names_suggest() -> None:
    with pytest.raises(TtsplanError, match='Did you mean "Llama-3.1-8B"'):
        get_model_spec("lama-3.1-8b")
    with pytest.raises(TtsplanError, match='Did you mean "H200"'):
        get_gpu_spec("H20O")


def test_gpu_intensity() -> None:
    assert get_gpu_spec("B200").intensity("fp8") == pytest.approx(562.5)
    assert get_gpu_spec("H100").intensity("bf16") == pytest.approx(295.3, abs=0.1)
    assert get_gpu_spec("A100").flops("fp8") == get_gpu_spec("A100").flops("bf16")  # no fp8 units


def test_load_hf_config_json(tmp_path) -> None:
    cfg = {"model_type": "qwen3", "num_hidden_layers": 28, "hidden_size": 1024, "num_attention_heads": 16,
           "num_key_value_heads": 8, "head_dim": 128, "intermediate_size": 3072, "vocab_size": 151936,
           "tie_word_embeddings": True, "attention_bias": False, "torch_dtype": "bfloat16"}
    p = tmp_path / "config.json"
    p.write_text(json.dumps(cfg))
    assert load_model_spec(p).params == 596_049_920
    assert get_model_spec(str(p)).params == 596_049_920
    llama = {"model_type": "llama", "num_hidden_layers": 32, "hidden_size": 4096, "num_attention_heads": 32,
             "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 128256,
             "tie_word_embeddings": False}
    assert load_model_spec(llama).params == 8_030_261_248  # head_dim derived = 128


def test_load_toml_spec_and_gpu(tmp_path) -> None:
    p = tmp_path / "m.toml"
    p.write_text('name = "mine"\nlayers = 2\nhidden = 64\nq_heads = 4\nkv_heads = 2\nhead_dim = 16\nffn = 128\n'
                 'vocab = 100\nbytes_per_weight = "fp8"\n')
    s = load_model_spec(p)
    assert s.name == "mine" and s.bytes_per_weight == 1.0
    g = tmp_path / "g.json"
    g.write_text(json.dumps({"name": "X1", "peak_flops": {"bf16": 1e15}, "mem_bandwidth": 2e12,
                             "memory_bytes": 1e11, "usd_per_hour": 1.0}))
    assert isinstance(load_gpu_spec(g), GpuSpec) and get_gpu_spec(str(g)).intensity() == 500


@pytest.mark.parametrize("text,match", [
    ("{not json", "must be valid JSON"),
    ('{"layers": 2}', "must set"),
    ('{"layerz": 2}', 'Did you mean "layers"'),
    ('{"model_type": "llama", "num_hidden_layers": 2}', "config.json must have numeric"),
    ('{"name": "x", "layers": 0, "hidden": 8, "q_heads": 3, "kv_heads": 2, "head_dim": 4, "ffn": 8, "vocab": 8}',
     "layers must be an integer >= 1"),
])
def test_malformed_specs_raise_one_clear_error(tmp_path, text: str, match: str) -> None:
    p = tmp_path / "bad.json"
    p.write_text(text)
    with pytest.raises(TtsplanError, match=match):
        load_model_spec(p)


def test_invalid_values_collected() -> None:
    with pytest.raises(TtsplanError) as exc:
        ModelSpec("bad", layers=0, hidden=-1, q_heads=4, kv_heads=2, head_dim=16, ffn=8, vocab=8, bytes_per_kv=0)
    msg = str(exc.value)
    assert "layers" in msg and "hidden" in msg and "bytes_per_kv" in msg


def test_moe_counts_and_expert_reads() -> None:
    m = get_model_spec("Qwen/Qwen3-235B-A22B-FP8")
    assert m.name == "Qwen3-235B-A22B" and round(m.params / 1e9) == 235
    assert round(get_model_spec("Qwen3-30B-A3B").params / 1e9, 1) == 30.5
    # one token reads only its 8 experts per layer; a large batch reads (almost) all 128
    one, many = m.weight_bytes_read([1, 4096])
    assert one == pytest.approx(m.streamed_weight_bytes)
    all_experts = (m.matmul_params + m.layers * (m.experts - m.experts_per_token) * m.expert_params) * m.bytes_per_weight
    assert many == pytest.approx(all_experts, rel=1e-6)
    dense = get_model_spec("Qwen3-8B")
    assert float(dense.weight_bytes_read(64)) == dense.streamed_weight_bytes


def test_malformed_toml(tmp_path) -> None:
    p = tmp_path / "bad.toml"
    p.write_text("layers = = 2\n")
    with pytest.raises(TtsplanError, match="must be valid TOML"):
        load_model_spec(p)
