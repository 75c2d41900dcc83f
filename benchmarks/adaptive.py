"""Throughput of AdaptiveSession.tell (issue 9 target: >= 1,000,000 tell() calls/s, Beta rule,
100,000 prompts × up to 64 samples, vectorized), with the ratio to a naive per-prompt loop measured
side by side in the same run.

    /work/venv/bin/python benchmarks/adaptive.py [--prompts 100000] [--max-n 64] [--naive-prompts 2000]

Synthetic answers: prompt i's modal answer has probability p_i ~ Beta(2, 1); other answers are
spread over 7 alternatives (codes 1..7). ``tell_many`` rate counts tell calls in the vectorized
path only; the "engine loop" rate also includes ask_idx() and gathering the next answers.
The naive loop is the same session driven one sample at a time through the public ``tell(prompt_id,
answer)`` (and, as a floor, ``tell_many`` on one sample).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ttsplan.planner.adaptive import AdaptiveSession  # noqa: E402


def synthetic(n_prompts: int, max_n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    p = rng.beta(2.0, 1.0, size=n_prompts)[:, None]
    modal = rng.random((n_prompts, max_n)) < p
    other = rng.integers(1, 8, size=(n_prompts, max_n))
    return np.where(modal, 0, other).astype(np.int64)


def vectorized(codes: np.ndarray, max_n: int, rule: str = "beta") -> tuple[int, float, float, float]:
    s = AdaptiveSession(rule, codes.shape[0], max_n=max_n)
    tells, t_tell = 0, 0.0
    t0 = time.perf_counter()
    while (idx := s.ask_idx()).size:
        c = codes[idx, s.n[idx]]
        t1 = time.perf_counter()
        s.tell_many(idx, c)
        t_tell += time.perf_counter() - t1
        tells += idx.size
    total = time.perf_counter() - t0
    return tells, t_tell, total, float(s.n.mean())


def naive(codes: np.ndarray, max_n: int, strings: bool, rule: str = "beta") -> tuple[int, float]:
    n_p = codes.shape[0]
    s = AdaptiveSession(rule, n_p, max_n=max_n)
    answers = codes.astype(str)
    tells = 0
    t0 = time.perf_counter()
    for i in range(n_p):  # per prompt: sample until it stops
        pid = s.prompt_ids[i]
        j = 0
        if strings:
            while not s.should_stop(pid):
                s.tell(pid, answers[i, j])
                j += 1
        else:
            one = np.array([i])
            while not s.should_stop(pid):
                s.tell_many(one, codes[i, j:j + 1])
                j += 1
        tells += j
    return tells, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=100_000)
    ap.add_argument("--max-n", type=int, default=64)
    ap.add_argument("--naive-prompts", type=int, default=2_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rule", default="beta", help="any rule; the issue's target is for beta")
    args = ap.parse_args()
    codes = synthetic(args.prompts, args.max_n)
    best = None
    for _ in range(args.repeats):
        r = vectorized(codes, args.max_n, args.rule)
        best = r if best is None or r[1] < best[1] else best
    tells, t_tell, total, mean_n = best
    rate = tells / t_tell
    loop_rate = tells / total
    n_tells, n_t = naive(codes[: args.naive_prompts], args.max_n, True, args.rule)
    naive_rate = n_tells / n_t
    m_tells, m_t = naive(codes[: args.naive_prompts], args.max_n, False, args.rule)
    single_rate = m_tells / m_t
    print(f"{args.rule} rule, {args.prompts:,} prompts x up to {args.max_n} samples: {tells:,} tells, "
          f"mean {mean_n:.2f} samples/prompt (best of {args.repeats})")
    print(f"vectorized tell_many:            {rate:>14,.0f} tell()/s  (target >= 1,000,000: "
          f"{'PASS' if rate >= 1e6 else 'FAIL'})")
    print(f"vectorized engine loop (ask+tell): {loop_rate:>12,.0f} tell()/s")
    print(f"naive per-prompt loop, tell(str): {naive_rate:>13,.0f} tell()/s  ({args.naive_prompts:,} prompts)")
    print(f"naive per-prompt loop, 1-sample tell_many: {single_rate:>7,.0f} tell()/s")
    print(f"ratio vectorized / naive tell(str): {rate / naive_rate:,.0f}x; "
          f"engine loop / naive: {loop_rate / naive_rate:,.0f}x")


if __name__ == "__main__":
    main()
