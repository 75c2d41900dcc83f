"""``ttsplan estimate``: price a (model, GPU, strategy, N, lengths) workload in FLOPs, bytes, eFLOPs,
KV-cache memory, seconds and dollars."""
from __future__ import annotations

from enum import Enum

import typer

from ttsplan.cli.common import TableOrJson, emit, err_console, parse_int_list, user_errors
from ttsplan.cli.options import GpuOpt, TableOrJsonOpt
from ttsplan.features.defaults import DEFAULT_GPU, DEFAULT_SERVING_ENGINE
from ttsplan.features.errors import TtsplanError
from ttsplan.fitting.cost import CostModel
from ttsplan.planner.pricing import calibration_source, pricing_note


class LengthDist(str, Enum):
    fixed = "fixed"
    uniform = "uniform"
    exponential = "exponential"


KEYS = ("n", "params", "tokens", "generated_tokens", "verifier_tokens", "flops", "bytes", "eflops",
        "kv_cache_bytes", "max_concurrency", "waves", "prefill_s", "decode_s", "verify_s", "latency_s", "cost_usd")


@user_errors
def estimate(
    model: str = typer.Option(..., "--model", help="Catalog name or HF id (Qwen/Qwen3-8B), or a config.json / "
                                                   ".toml spec file."),
    gpu: GpuOpt = DEFAULT_GPU,
    strategy: str = typer.Option("majority", "--strategy",
                                 help="greedy, majority, pass@n, best-of-n, weighted-majority, best-of-majority, "
                                      "beam-search."),
    n: str = typer.Option("1", "--n", help="Samples per prompt; a list like 1,4,16,64 prints one row each."),
    prompt_tokens: float = typer.Option(..., "--prompt-tokens", help="Prompt length in tokens."),
    output_tokens: float = typer.Option(..., "--output-tokens", help="Mean generated tokens per sample."),
    intensity: float = typer.Option(None, "--intensity",
                                    help="Kinetics I (FLOPs per byte) for eflops; default: GPU peak ÷ bandwidth."),
    batch_prompts: int = typer.Option(1, "--batch-prompts",
                                      help="Prompts decoded together (1 = latency mode, more = throughput mode)."),
    calibration: str = typer.Option(None, "--calibration",
                                    help="calib.json written by `ttsplan calibrate --out`, or 'none' for the plain "
                                         "roofline (default: the calibration shipped for the GPU, H100, if any)."),
    engine: str = typer.Option(DEFAULT_SERVING_ENGINE, "--engine", help="Engine whose calibration to use (vllm, sglang, trtllm)."),
    tp: int = typer.Option(1, "--tp", help="GPUs per model replica (tensor parallel)."),
    dtype: str = typer.Option("bf16", "--dtype", help="Compute dtype for the peak FLOP/s (bf16, fp8, ...)."),
    usd_per_hour: float = typer.Option(None, "--usd-per-hour", help="Override the GPU's default $/hour."),
    verifier: str = typer.Option(None, "--verifier", help="Separate reward/PRM model (default: the same model)."),
    no_prefix_caching: bool = typer.Option(False, "--no-prefix-caching", help="Prefill the prompt N times."),
    length_distribution: LengthDist = typer.Option(LengthDist.fixed, "--length-distribution",
                                                   help="Spread of sample lengths (early finishers leave the batch)."),
    fmt: TableOrJsonOpt = TableOrJson.table,
) -> None:
    """Estimate FLOPs, bytes moved, Kinetics eFLOPs, KV cache, latency and dollars of a workload.

    All figures are per prompt, except latency_s (wall time of the batch of --batch-prompts prompts).

    Example:

        ttsplan estimate --model Qwen/Qwen3-0.6B --gpu B200 --strategy majority --n 1,8,64 \\
            --prompt-tokens 150 --output-tokens 4096 --intensity 562.5 --format json
    """
    import numpy as np

    ns = parse_int_list(n, "--n")
    if usd_per_hour is not None and usd_per_hour < 0:
        raise TtsplanError(f"--usd-per-hour must be >= 0, got {usd_per_hour}.")
    source = calibration_source(gpu, calibration)
    cm = CostModel(model, gpu, calibration=source, usd_per_hour=usd_per_hour, engine=engine, tp=tp,
                   dtype=dtype, verifier=verifier)
    out = cm.price(np.array(ns), prompt_tokens, output_tokens, strategy=strategy, batch_prompts=batch_prompts,
                   prefix_caching=not no_prefix_caching, length_distribution=length_distribution.value,
                   intensity=intensity)
    rows = []
    for i, k in enumerate(ns):
        row = {key: float(np.asarray(v).ravel()[i] if np.asarray(v).size > 1 else np.asarray(v).ravel()[0])
               for key, v in out.items()}
        row.update(n=k, params=cm.model.params)
        rows.append({key: row[key] for key in KEYS} | {
            "model": cm.model.name, "gpu": cm.gpu.name, "tp": tp, "strategy": strategy,
            "prompt_tokens": prompt_tokens, "output_tokens": output_tokens, "batch_prompts": batch_prompts,
            "usd_per_hour": cm.usd_per_hour, "calibrated": source is not None})
    err_console.print("note: " + pricing_note(cm, source, calibration, engine), highlight=False)
    if fmt.value == "json":
        emit(rows[0] if len(rows) == 1 else rows, "json")
        return
    cols = ["n", "tokens", "flops", "bytes", "eflops", "kv_cache_bytes", "latency_s", "cost_usd"]
    emit([{c: r[c] for c in cols} for r in rows], "table",
         title=f"{cm.model.name} ({cm.model.params:,} params) on {tp}× {cm.gpu.name}, {strategy}, "
               f"{prompt_tokens:g}+{output_tokens:g} tokens, {batch_prompts} prompt(s)/batch")


def register(app: typer.Typer) -> None:
    app.command("estimate")(estimate)
