"""Benchmark: gain fitting + LOCO on 1,000 configs × 20 features, Beta-binomial fits on 100,000 prompts.

Target: ≤ 10 s total on 2 cores. Side-by-side references measured in the same run:
- LOCO with our closed-form ridge vs the same LOCO with ``sklearn.linear_model.Ridge`` refits;
- Beta-binomial fit on unique (n, c) pairs (ours) vs the same likelihood summed over every prompt.

Run: ``python benchmarks/fitting.py``
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

# this file is named like the ``fitting`` package: drop its own folder from the path so the package wins
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np
import polars as pl
from scipy import optimize, special

from ttsplan.features.schema import validate_count_table
from ttsplan.fitting.gain import GainPredictor, cross_validate, stability
from ttsplan.fitting.success import PromptSuccessModel, fit_beta_binomial


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def gain_benchmark(n_configs: int = 1000, n_features: int = 20, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_configs, n_features))
    w = np.zeros(n_features)
    w[:4] = [0.05, -0.03, 0.02, 0.01]
    y = x @ w + rng.normal(0, 0.01, n_configs)
    names = [f"f{i:02d}" for i in range(n_features)]
    frame = pl.DataFrame({n: x[:, j] for j, n in enumerate(names)}).with_columns(
        pl.Series("config", [f"c{i}" for i in range(n_configs)]))
    _, t_fit = _timed(lambda: GainPredictor(alpha=1.0, features=None).fit(frame.select(names), y))
    res, t_loco = _timed(lambda: cross_validate(frame, y, frame["config"].to_list(), alpha=1.0, features=names,
                                                n_boot=1000, seed=seed))

    def sklearn_loco() -> np.ndarray:
        from sklearn.linear_model import Ridge

        pred = np.empty(n_configs)
        for i in range(n_configs):
            mask = np.arange(n_configs) != i
            mu, sd = x[mask].mean(axis=0), x[mask].std(axis=0)
            m = Ridge(alpha=1.0).fit((x[mask] - mu) / sd, y[mask])
            pred[i] = m.predict(((x[i] - mu) / sd)[None, :])[0]
        return pred

    ref_pred, t_ref = _timed(sklearn_loco)
    agree = float(np.max(np.abs(ref_pred - res.predictions["predicted"].to_numpy())))
    stab, t_stab = _timed(lambda: stability(frame, y, features=names, n_boot=50, seed=seed))
    return {"fit_s": t_fit, "loco_s": t_loco, "sklearn_loco_s": t_ref, "loco_max_abs_diff_vs_sklearn": agree,
            "loco_spearman": res.spearman, "stability_50_boot_s": t_stab,
            "top_features": stab.head(4)["feature"].to_list()}


def beta_benchmark(n_prompts: int = 100_000, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    p = rng.beta(0.6, 2.0, n_prompts)
    n = rng.integers(4, 65, n_prompts)
    c = rng.binomial(n, p)
    table = validate_count_table(pl.DataFrame({"config": ["bench"] * n_prompts,
                                               "prompt_id": [f"p{i:06d}" for i in range(n_prompts)],
                                               "samples": n, "correct_samples": c}))
    (a, b), t_unique = _timed(lambda: fit_beta_binomial(n, c, hyperprior=0.0))

    def naive() -> tuple[float, float]:
        def nll(th: np.ndarray) -> float:
            aa, bb = np.exp(th)
            return -float((special.betaln(c + aa, n - c + bb) - special.betaln(aa, bb)).sum())

        r = optimize.minimize(nll, np.log([1.0, 1.0]), method="L-BFGS-B")
        return tuple(np.exp(r.x))

    (a2, b2), t_naive = _timed(naive)
    model, t_model = _timed(lambda: PromptSuccessModel().fit(table))
    grid = [1, 2, 4, 8, 16, 32, 64, 128]
    _, t_pass = _timed(lambda: (model.expected_accuracy("pass", grid), model.accuracy_bounds("pass", grid)))
    return {"alpha": a, "beta": b, "alpha_naive": a2, "beta_naive": b2, "fit_unique_pairs_s": t_unique,
            "fit_naive_s": t_naive, "success_model_fit_s": t_model, "pass_grid_with_bounds_s": t_pass}


def main() -> None:
    t0 = time.perf_counter()
    g = gain_benchmark()
    bb = beta_benchmark()
    total = time.perf_counter() - t0
    print("gain predictor, 1,000 configs x 20 features")
    print(f"  ridge fit                      {g['fit_s']:8.3f} s")
    print(f"  LOCO (1,000 refits + 1,000 bootstrap of rho/tau/MAE) {g['loco_s']:8.3f} s   "
          f"(sklearn Ridge LOCO, no bootstrap: {g['sklearn_loco_s']:.3f} s; ratio {g['sklearn_loco_s'] / g['loco_s']:.2f}x; "
          f"max |diff| {g['loco_max_abs_diff_vs_sklearn']:.2e})")
    print(f"  LOCO Spearman rho              {g['loco_spearman']:8.3f}")
    print(f"  stability (50 bootstrap Lassos){g['stability_50_boot_s']:8.3f} s   top: {', '.join(g['top_features'])}")
    print("Beta-binomial, 100,000 prompts (true alpha 0.6, beta 2.0)")
    print(f"  fit on unique (n, c) pairs     {bb['fit_unique_pairs_s']:8.3f} s   alpha {bb['alpha']:.3f} beta {bb['beta']:.3f}")
    print(f"  naive fit over every prompt    {bb['fit_naive_s']:8.3f} s   alpha {bb['alpha_naive']:.3f} beta {bb['beta_naive']:.3f}"
          f"   (ratio {bb['fit_naive_s'] / bb['fit_unique_pairs_s']:.1f}x)")
    print(f"  PromptSuccessModel.fit         {bb['success_model_fit_s']:8.3f} s")
    print(f"  pass@N, 8 N, with 90% bounds   {bb['pass_grid_with_bounds_s']:8.3f} s")
    print(f"total {total:.2f} s (target <= 10 s)")


if __name__ == "__main__":
    main()
