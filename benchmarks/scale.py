"""Scale checks (issue "Scale past one machine"): big tables through the CLI, with time and peak memory.

Two synthetic SampleTables, generated here in parquet shards (bounded memory while generating):

* ``wide``: ``--prompts`` prompts × ``--samples`` samples over ``--configs`` configurations
  (default 500,000 × 100 = 50 M rows, 5 configurations); ``ttsplan curves --metric pass,maj``,
  ``ttsplan features`` and ``ttsplan plan`` run on the shard directory;
* ``many``: ``--many-configs`` configurations × 8 prompts × 8 samples (default 20,000 configurations);
  ``ttsplan plan`` runs on it (progress on stderr).

Each command runs in a fresh subprocess; the script prints its wall time and peak RSS (``wait4``'s
``ru_maxrss``) and whether it succeeded. Targets: peak RSS <= 8 GB for the wide table; the plan on
20,000 configurations finishes with progress.

    python benchmarks/scale.py                                   # full size (slow: tens of minutes)
    python benchmarks/scale.py --prompts 50000 --many-configs 2000   # a tenth, for a quick look
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

ROWS_PER_SHARD = 2_000_000


def write_wide(out: Path, prompts: int, samples: int, configs: int, seed: int = 0) -> int:
    """Shards of a synthetic SampleTable: per prompt a latent accuracy p ~ Beta(2, 2); the right answer
    "0" with probability p, else one of four wrong answers; output tokens uniform in [20, 400)."""
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    per_shard = max(1, ROWS_PER_SHARD // samples)
    rows = 0
    for c in range(configs):
        n_c = prompts // configs
        for start in range(0, n_c, per_shard):
            n = min(per_shard, n_c - start)
            p = np.repeat(rng.beta(2, 2, size=n), samples)
            wrong = rng.integers(1, 5, size=n * samples)
            ans = np.where(rng.random(n * samples) < p, 0, wrong)
            pid = np.repeat(np.arange(start, start + n), samples)
            df = pl.DataFrame({
                "config": pl.Series([f"synthetic/c{c}"] * (n * samples), dtype=pl.Categorical),
                "prompt_id": pl.Series(pid).cast(pl.String).str.pad_start(7, "0"),
                "sample_idx": np.tile(np.arange(samples), n),
                "answer": pl.Series(ans).cast(pl.String),
                "correct": ans == 0,
                "output_tokens": rng.integers(20, 400, size=n * samples),
            })
            df.write_parquet(out / f"c{c}-{start:08d}.parquet")
            rows += df.height
    return rows


def write_many(out: Path, configs: int, prompts: int = 8, samples: int = 8, seed: int = 1) -> int:
    rng = np.random.default_rng(seed)
    n = configs * prompts * samples
    p = np.repeat(rng.beta(2, 2, size=configs * prompts), samples)
    ans = np.where(rng.random(n) < p, 0, rng.integers(1, 4, size=n))
    df = pl.DataFrame({
        "config": pl.Series(np.repeat(np.arange(configs), prompts * samples)).cast(pl.String).str.pad_start(6, "0"),
        "prompt_id": pl.Series(np.tile(np.repeat(np.arange(prompts), samples), configs)).cast(pl.String),
        "sample_idx": np.tile(np.arange(samples), configs * prompts),
        "answer": pl.Series(ans).cast(pl.String), "correct": ans == 0,
        "output_tokens": rng.integers(10, 100, size=n)})
    out.parent.mkdir(parents=True, exist_ok=True)
    df.write_parquet(out)
    return df.height


def measure(label: str, args: list[str], log: Path) -> dict:
    """Run ``ttsplan ARGS`` in a fresh process; wall time, peak RSS and exit code."""
    t0 = time.perf_counter()
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "ttsplan.cli.main", *args], stdout=subprocess.DEVNULL,
                                stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    rc = os.waitstatus_to_exitcode(status)
    peak_gb = usage.ru_maxrss * 1024 / 1e9  # Linux: kilobytes
    tail = log.read_text().strip().splitlines()[-1:] if log.exists() else []
    print(f"{label:42s} {wall:8.1f} s   peak RSS {peak_gb:6.2f} GB   exit {rc}"
          + (f"   last stderr: {tail[0][:100]}" if tail else ""), flush=True)
    return {"label": label, "wall_s": wall, "peak_rss_gb": peak_gb, "rc": rc}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=500_000)
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--configs", type=int, default=5)
    ap.add_argument("--many-configs", type=int, default=20_000)
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: wide, many")
    ap.add_argument("--keep", type=Path, default=None, help="keep the generated data in this directory")
    args = ap.parse_args()
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    print(f"load average {os.getloadavg()[0]:.2f}; {os.cpu_count()} cores", flush=True)
    work = args.keep or Path(tempfile.mkdtemp(prefix="ttsplan-scale-"))
    results = []
    try:
        if "many" not in skip:
            t0 = time.perf_counter()
            rows = write_many(work / "many.parquet", args.many_configs)
            print(f"generated many: {args.many_configs:,} configurations, {rows:,} rows in "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)
            results.append(measure(f"plan, {args.many_configs:,} configs", ["plan", str(work / "many.parquet"),
                                   "--out", str(work / "many-plan.json")], work / "many-plan.log"))
        if "wide" not in skip:
            t0 = time.perf_counter()
            rows = write_wide(work / "wide", args.prompts, args.samples, args.configs)
            print(f"generated wide: {rows:,} rows ({args.prompts:,} prompts x {args.samples} samples, "
                  f"{args.configs} configs) in {time.perf_counter() - t0:.0f} s", flush=True)
            wide = str(work / "wide")
            for label, cmd in (("curves --metric pass --metric maj", ["curves", wide, "--metric", "pass", "--metric", "maj", "--format", "json"]),
                               ("features", ["features", wide, "--format", "json"]),
                               ("plan", ["plan", wide, "--out", str(work / "wide-plan.json")])):
                results.append(measure(f"{label} ({rows / 1e6:.0f} M rows)", cmd, work / f"{label.split()[0]}.log"))
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    failed = [r["label"] for r in results if r["rc"] != 0]
    over = [r["label"] for r in results if r["peak_rss_gb"] > 8.0]
    print(f"failed: {', '.join(failed) or 'none'}; peak RSS over 8 GB: {', '.join(over) or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
