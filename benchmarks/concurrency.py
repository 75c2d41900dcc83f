"""Two concurrent ``ttsplan sample`` runs with different ``--k`` into one ``--out`` (issue 19, finding 1):
the table must never be mixed, and one of the two runs should be refused.

    python benchmarks/concurrency.py [--trials 20] [--prompts 6]

Each trial starts ``sample --k 40`` and ``sample --k 20`` (replay engine on the recorded
../shared/data/samples/sc40_addsub.parquet, config code-davinci-002/T0.7/cot-sc40, --batch-prompts 1)
at the same moment into a fresh directory, waits for both, and reads every chunk written. A table is
mixed when its prompts do not all hold the same number of samples (chunks of both runs), or when both
runs exit 0 with different k. Prints the number of mixed tables (must be 0) and the exit-code pairs.
"""
from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "samples"
CONFIG = "code-davinci-002/T0.7/cot-sc40"


def write_prompts(path: Path, n: int) -> None:
    p = pl.read_parquet(DATA / "sc40_addsub_prompts.parquet").head(n)
    path.write_text("".join(json.dumps({"id": r["id"], "prompt": r["question"], "answer": r["answer"]}) + "\n"
                            for r in p.iter_rows(named=True)))


def trial(work: Path, prompts: Path) -> tuple[tuple[int, int], bool, str]:
    """One race; returns the exit codes (k=40, k=20), whether the table is mixed, and what it holds."""
    out = work / "conc"
    cmd = [sys.executable, "-m", "ttsplan.cli.main", "sample", str(prompts), "--engine", "replay",
           "--model", str(DATA / "sc40_addsub.parquet"), "--config", CONFIG, "--batch-prompts", "1",
           "--out", str(out), "--format", "json"]
    procs = [subprocess.Popen([*cmd, "--k", str(k)], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True) for k in (40, 20)]
    codes = tuple(p.wait(timeout=600) for p in procs)
    for p in procs:
        p.stderr.close()
    chunks = sorted(p for p in out.rglob("*.parquet") if not p.name.startswith("."))
    if not chunks:
        return codes, False, "no chunks"
    table = pl.concat([pl.read_parquet(c, columns=["prompt_id", "sample_idx"]) for c in chunks])
    sizes = sorted(set(table.group_by("prompt_id").len()["len"].to_list()))
    mixed = len(sizes) > 1 or codes == (0, 0)
    return codes, mixed, f"samples per prompt {sizes}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--prompts", type=int, default=6)
    args = ap.parse_args()
    if not (DATA / "sc40_addsub.parquet").is_file():
        sys.exit(f"needs the shared data at {DATA}")
    pairs: collections.Counter = collections.Counter()
    held: collections.Counter = collections.Counter()
    mixed = 0
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        prompts = Path(tmp) / "prompts.jsonl"
        write_prompts(prompts, args.prompts)
        for i in range(args.trials):
            work = Path(tmp) / f"t{i:02d}"
            work.mkdir()
            codes, is_mixed, what = trial(work, prompts)
            pairs[codes] += 1
            held[what] += 1
            mixed += is_mixed
    print(f"trials: {args.trials} ({args.prompts} prompts, --batch-prompts 1), {time.perf_counter() - start:.1f} s")
    print(f"mixed tables: {mixed} (must be 0)")
    print("exit codes (k=40, k=20): " + ", ".join(f"{c}: {n}" for c, n in sorted(pairs.items())))
    print("tables: " + ", ".join(f"{w}: {n}" for w, n in sorted(held.items())))


if __name__ == "__main__":
    main()
