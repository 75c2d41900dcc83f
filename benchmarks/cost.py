"""Benchmark: price 1,000,000 (strategy, N, prompt length, output length) workloads with CostModel.

Prints the vectorized wall time (target ≤ 1 s) and the speed-up over a per-row Python loop of
``CostModel.price`` measured in the same run (on a subset of rows, extrapolated per row).

    /work/venv/bin/python benchmarks/cost.py [--rows 1000000] [--loop-rows 2000]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

# benchmarks/fitting.py (another benchmark) would shadow the ``fitting`` package when this file runs as a script.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from ttsplan.fitting.cost import STRATEGIES, CostModel  # noqa: E402


def workloads(rows: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"strategy": rng.integers(0, len(STRATEGIES), rows),
            "n": 2 ** rng.integers(0, 11, rows),
            "prompt_tokens": rng.integers(50, 8000, rows).astype(float),
            "output_tokens": rng.integers(16, 16000, rows).astype(float)}


def price_vectorized(cm: CostModel, w: dict[str, np.ndarray]) -> np.ndarray:
    out = np.empty(len(w["n"]))
    names = list(STRATEGIES)
    for k, name in enumerate(names):  # one vectorized call per strategy
        idx = np.flatnonzero(w["strategy"] == k)
        out[idx] = cm.price(w["n"][idx], w["prompt_tokens"][idx], w["output_tokens"][idx], strategy=name)["cost_usd"]
    return out


def price_loop(cm: CostModel, w: dict[str, np.ndarray], rows: int) -> np.ndarray:
    names = list(STRATEGIES)
    return np.array([float(cm.price(int(w["n"][i]), w["prompt_tokens"][i], w["output_tokens"][i],
                                    strategy=names[w["strategy"][i]])["cost_usd"]) for i in range(rows)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--loop-rows", type=int, default=2_000)
    ap.add_argument("--model", default="Qwen3-8B")
    ap.add_argument("--gpu", default="H100")
    args = ap.parse_args()
    cm = CostModel(args.model, args.gpu)
    w = workloads(args.rows)
    price_vectorized(cm, {k: v[:1000] for k, v in w.items()})  # warm-up
    t0 = time.perf_counter()
    vec = price_vectorized(cm, w)
    t_vec = time.perf_counter() - t0
    m = min(args.loop_rows, args.rows)
    t0 = time.perf_counter()
    loop = price_loop(cm, w, m)
    t_loop = time.perf_counter() - t0
    assert np.allclose(vec[:m], loop, rtol=1e-9), "vectorized and per-row prices differ"
    per_row_loop = t_loop / m
    print(f"model {cm.model.name} on {cm.gpu.name}, {args.rows:,} workloads over {len(STRATEGIES)} strategies")
    print(f"vectorized: {t_vec:.3f} s for {args.rows:,} rows ({t_vec / args.rows * 1e9:.0f} ns/row)")
    print(f"per-row Python loop: {per_row_loop * 1e6:.1f} µs/row (measured on {m:,} rows) "
          f"→ {per_row_loop * args.rows:.1f} s for {args.rows:,} rows")
    print(f"speed-up: {per_row_loop * args.rows / t_vec:.0f}x; identical results on the {m:,} looped rows")


if __name__ == "__main__":
    main()
