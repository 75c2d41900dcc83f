"""Throughput of the ``hf`` engine on this machine: batched vs one sequence at a time (issue 5 target:
batched >= 4x unbatched), and the cost of generating the embedded default dataset.

    /work/venv/bin/python benchmarks/sampler.py [--model gemma3-270m] [--prompts 2] [--k 16] [--tokens 8]

Both paths generate exactly ``--tokens`` new tokens per sequence (no stop strings) from the same
3-shot "larger" prompts and count prefill in the elapsed time:
- batched: ``--prompts`` prompts × ``--k`` samples in one ``generate`` call (prompt prefilled once,
  KV cache repeated k times, all rows decoded together);
- unbatched: ``--unbatched`` sequences, one ``generate`` call each (k = 1, one prompt).
The dataset cost is the default dataset's generated tokens divided by each measured rate, next to
the wall time recorded in its metadata when present.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="gemma3-270m")
    ap.add_argument("--prompts", type=int, default=2)
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--unbatched", type=int, default=6, help="sequences generated one at a time")
    ap.add_argument("--tokens", type=int, default=8)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--data", default=str(REPO / "data" / "default_samples.parquet"))
    args = ap.parse_args()

    import torch

    from ttsplan.features.sampler.base import SamplerConfig
    from ttsplan.features.sampler.hf import HFEngine
    from ttsplan.features.tasks import format_prompt, make_tasks

    eng = HFEngine(args.model, device=args.device)
    t = time.perf_counter()
    eng._load()
    load_s = time.perf_counter() - t
    prompts = [format_prompt(p, 3, seed=0) for p in make_tasks("larger", max(args.prompts, args.unbatched), seed=0)]
    eng.generate(prompts[:1], SamplerConfig(k=2, max_new_tokens=2, stop=()))  # warm-up

    cfg = SamplerConfig(k=args.k, temperature=0.7, max_new_tokens=args.tokens, stop=(), seed=0)
    t = time.perf_counter()
    res = eng.generate(prompts[:args.prompts], cfg)
    batched_s = time.perf_counter() - t
    batched_tokens = sum(c.output_tokens for g in res for c in g)

    one = SamplerConfig(k=1, temperature=0.7, max_new_tokens=args.tokens, stop=(), seed=0)
    t = time.perf_counter()
    unbatched_tokens = 0
    for p in prompts[:args.unbatched]:
        unbatched_tokens += eng.generate([p], one)[0][0].output_tokens
    unbatched_s = time.perf_counter() - t

    rate_b, rate_u = batched_tokens / batched_s, unbatched_tokens / unbatched_s
    print(f"device={args.device} torch={torch.__version__} threads={torch.get_num_threads()} model={args.model} "
          f"(load {load_s:.1f} s)")
    print(f"batched   : {args.prompts} prompts x k={args.k} = {args.prompts * args.k} sequences, "
          f"{batched_tokens} tokens in {batched_s:.1f} s -> {rate_b:.1f} tok/s")
    print(f"unbatched : {args.unbatched} sequences one at a time, {unbatched_tokens} tokens in {unbatched_s:.1f} s "
          f"-> {rate_u:.1f} tok/s")
    print(f"ratio batched/unbatched = {rate_b / rate_u:.1f}x (target >= 4x)")

    data = Path(args.data)
    if data.exists():
        import polars as pl

        from ttsplan.features.io import read_metadata

        df = pl.read_parquet(data, columns=["config", "output_tokens"])
        tokens = int(df["output_tokens"].sum())
        meta = read_metadata(data)
        print(f"default dataset: {df['config'].n_unique()} configs, {df.height} samples, {tokens} generated tokens")
        print(f"  cost at the batched rate  : {tokens / rate_b / 60:.1f} min of this machine (+ prefill per chunk)")
        print(f"  cost at the unbatched rate: {tokens / rate_u / 60:.1f} min")
        if meta.get("generation_wall_s"):
            print(f"  recorded wall time of the generating run: {meta['generation_wall_s'] / 60:.1f} min "
                  "(on 2 shared cores)")


if __name__ == "__main__":
    main()
