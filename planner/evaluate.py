"""Held-out validation of the planner on real samples (what ``ttsplan evaluate`` prints).

For each configuration:

1. split its prompts (seeded) into validation and test;
2. fit the pilot success model (:class:`ttsplan.fitting.success.PilotSuccessModel`) on the validation
   prompts' labeled samples, and (``calibrate=True``) shift its per-strategy curves onto the exact
   curves of the validation prompts' non-pilot samples (:func:`ttsplan.planner.plan.calibration_offsets`);
3. plan the test prompts from a pilot of their first ``k0`` samples, labels hidden (per-prompt mode:
   every planned N ≥ k0 includes the pilot, so the pilot's cost is counted);
4. score with the exact estimators (:func:`ttsplan.features.estimators.prompt_curves`) on the test prompts'
   samples **not used by the pilot** (the pool: ``sample_idx ≥ k0``), so the samples that decided a
   prompt's N never score it. Uniform baselines and the oracle are scored on the same pool.

Reported (costs in samples per prompt): realized ``accuracy`` and ``cost``; the cost uniform
majority / best-of-N need to reach the same accuracy (linear interpolation of their exact curves in
N; ``*_capped`` when even N = pool size falls short, then the saving is a lower bound) and
``savings = that cost / plan cost`` (null where the strategy does not apply: best-of-N without
rewards); ``uniform_accuracy`` (the best uniform strategy at the plan's cost); the per-prompt oracle
(best strategy and N per prompt in hindsight, allocated at the plan's cost, Kinetics-style) and
``oracle_fraction = accuracy / oracle_accuracy``; ``bins_accuracy`` (Snell-style difficulty bins);
``accuracy_gain_vs_uniform`` ± ``accuracy_gain_se`` (paired over test prompts, plan minus the best
uniform strategy at the plan's cost): read every saving against it — on a flat uniform curve a gain
within noise turns into a large (or capped) saving.

>>> # rows = evaluate(read_samples("../shared/data/samples/sc40_addsub.parquet"), budgets=[8])
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import polars as pl

from ttsplan.features.errors import TtsplanError
from ttsplan.features.estimators import prompt_curves, weighted_maj_at_k
from ttsplan.features.schema import has_values, table_kind
from ttsplan.fitting.success import DegenerateDataWarning
from ttsplan.planner.allocate import allocate, difficulty_bins
from ttsplan.planner.budget import Budget
from ttsplan.planner.plan import pilot_posteriors, plan_config, prepare
from ttsplan.planner.strategies import get_strategy


def parse_budgets(text: str | None) -> list[float] | None:
    """``"4,8,16"`` → [4.0, 8.0, 16.0] (samples per prompt); None or "auto" → None."""
    if text is None or str(text).strip().lower() in ("", "auto"):
        return None
    out = []
    for part in str(text).split(","):
        part = part.strip().removesuffix("/prompt")
        try:
            v = float(part)
        except ValueError:
            raise TtsplanError(f"--budgets must be comma-separated numbers of samples per prompt, got {text!r}. "
                               "Pass e.g. --budgets 4,8,16.") from None
        if not v > 0:
            raise TtsplanError(f"--budgets must be > 0, got {v}.")
        out.append(v)
    if not out:
        raise TtsplanError(f"--budgets must list at least one budget, got {text!r}.")
    return out


def split_prompts(prompt_ids: Sequence[str], test_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Seeded (validation, test) split of sorted prompt ids; both sides non-empty."""
    if not 0 < test_fraction < 1:
        raise TtsplanError(f"test_fraction must be in (0, 1), got {test_fraction}. Use e.g. 0.5.")
    ids = sorted(prompt_ids)
    if len(ids) < 4:
        raise TtsplanError(f"evaluate needs at least 4 prompts per configuration to split, got {len(ids)}.")
    perm = np.random.default_rng(seed).permutation(len(ids))
    n_test = int(min(max(round(test_fraction * len(ids)), 2), len(ids) - 2))
    test = sorted(ids[i] for i in perm[:n_test])
    val = sorted(ids[i] for i in perm[n_test:])
    return val, test


def _exact(pool: pl.DataFrame, metric: str, ks: list[int]) -> np.ndarray:
    """prompts × ks exact values (rows in sorted prompt order)."""
    pc = prompt_curves(pool, metric, ks).sort(["prompt_id", "k"])
    return pc["value"].to_numpy(allow_copy=True).astype(float).reshape(-1, len(ks))


def _cost_to_match(curve: np.ndarray, ns: np.ndarray, target: float) -> tuple[float, bool]:
    """Smallest (interpolated) N whose uniform accuracy reaches ``target``; (N at the cap, True) if never."""
    ok = np.flatnonzero(curve >= target - 1e-12)
    if ok.size == 0:
        return float(ns[-1]), True
    j = int(ok[0])
    if j == 0:
        return float(ns[0]) * (target / curve[0] if curve[0] > 0 else 1.0), False
    a0, a1 = curve[j - 1], curve[j]
    t = (target - a0) / (a1 - a0) if a1 > a0 else 1.0
    return float(ns[j - 1] + t * (ns[j] - ns[j - 1])), False


MC_DRAWS = 2000


def _mc_realized(prompt: tuple[list, np.ndarray, np.ndarray], strategy: str, n: int, seed: int) -> float:
    """Monte Carlo accuracy (``MC_DRAWS`` subsets of size n, standard error ≤ 0.5/√draws per prompt) of
    ``weighted-majority`` (ttsplan.features.estimators.weighted_maj_at_k) or ``best-of-majority`` (answers with at
    least half the modal answer's votes; the highest reward among them)."""
    answers, reward, correct = prompt
    if strategy == "weighted-majority":
        return float(weighted_maj_at_k(answers, reward, correct, [n], draws=MC_DRAWS, seed=seed)[0][0])
    rng = np.random.default_rng(seed)
    codes = {a: i for i, a in enumerate(sorted({a for a in answers if a is not None}))}
    code = np.array([codes.get(a, -1) if a is not None else -1 for a in answers])
    k = len(answers)
    picks = np.argsort(rng.random((MC_DRAWS, k)), axis=1)[:, :n]
    c = code[picks]
    votes = np.zeros((MC_DRAWS, max(len(codes), 1)))
    rows = np.repeat(np.arange(MC_DRAWS), n)
    keep = c.ravel() >= 0
    np.add.at(votes, (rows[keep], c.ravel()[keep]), 1.0)
    top = votes.max(axis=1, keepdims=True)
    frequent = votes >= np.maximum(np.ceil(top / 2), 1)              # (draws, clusters)
    ok = np.where(c >= 0, np.take_along_axis(frequent, np.maximum(c, 0), axis=1), False)
    r = np.where(ok, np.nan_to_num(reward[picks], nan=-np.inf), -np.inf)
    best = r.argmax(axis=1)
    won = np.take_along_axis(correct[picks], best[:, None], axis=1)[:, 0]
    won = np.where(ok.any(axis=1), won, 0.0)
    return float(won.mean())


def _pool_values(pool: pl.DataFrame, pool_n: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict]:
    """Realized values on the held-out pool: per prompt and N for greedy (N = 1 repeated), majority and
    best-of-n (when the table has answers / rewards); their uniform curves (mean over prompts); and each
    prompt's (answers, rewards, correct) for the Monte Carlo strategies."""
    ks = np.arange(1, pool_n + 1).tolist()
    uniform: dict[str, np.ndarray] = {}
    per_prompt: dict[str, np.ndarray] = {"greedy": np.repeat(_exact(pool, "pass", [1]), pool_n, axis=1)}
    if has_values(pool, "answer"):
        per_prompt["majority"] = _exact(pool, "maj", ks)
    if has_values(pool, "reward"):
        per_prompt["best-of-n"] = _exact(pool, "bon", ks)
    for s in ("majority", "best-of-n"):
        if s in per_prompt:
            uniform[s] = np.nan_to_num(per_prompt[s]).mean(axis=0)
    samples_by_prompt = {pid: (g["answer"].to_list(), g["reward"].to_numpy().astype(float),
                               g["correct"].to_numpy().astype(float))
                         for (pid,), g in pool.sort(["prompt_id", "sample_idx"]).group_by(["prompt_id"])}
    return per_prompt, uniform, samples_by_prompt


def _realized_at(per_prompt: dict[str, np.ndarray], samples: tuple, i: int, strategy: str, n: int,
                 seed: int) -> float:
    """Realized accuracy of test prompt ``i`` under ``strategy`` with ``n`` pool samples (greedy: its first
    sample; weighted-majority / best-of-majority: Monte Carlo over its ``samples`` with seed ``seed + i``)."""
    if strategy in ("weighted-majority", "best-of-majority"):
        return _mc_realized(samples, strategy, n, seed + i)
    key = strategy if strategy in per_prompt else "greedy"
    return per_prompt[key][i, n - 1 if key != "greedy" else 0]


def _add_uniform_comparison(out: dict, uniform: dict[str, np.ndarray], per_prompt: dict[str, np.ndarray],
                            ns: np.ndarray, realized: np.ndarray, acc: float, cost: float) -> None:
    """The plan against uniform majority / best-of-n: the samples each needs to match ``acc`` (and the
    savings), the paired accuracy gain over the better one at the plan's cost, and their accuracies."""
    pool_n = int(ns[-1])
    uni_at = {}
    for s, curve in uniform.items():
        need, capped = _cost_to_match(curve, ns, acc)
        key = "bon" if s == "best-of-n" else "majority"
        out[f"{key}_cost_to_match"] = need
        out[f"{key}_capped"] = capped
        out[f"savings_vs_uniform_{key}"] = need / cost
        uni_at[s] = float(np.interp(cost, ns, curve))
    best_u = max(uni_at, key=uni_at.get) if uni_at else None
    if best_u is not None:  # paired over test prompts: plan − best uniform strategy at the plan's cost
        lo_n = int(np.clip(np.floor(cost), 1, pool_n))
        hi_n = int(np.clip(np.ceil(cost), 1, pool_n))
        w = cost - np.floor(cost) if hi_n > lo_n else 0.0
        u_i = (1 - w) * np.nan_to_num(per_prompt[best_u][:, lo_n - 1]) + w * np.nan_to_num(
            per_prompt[best_u][:, hi_n - 1])
        d = np.nan_to_num(realized) - u_i
        out["accuracy_gain_vs_uniform"] = float(d.mean())
        out["accuracy_gain_se"] = float(d.std(ddof=1) / np.sqrt(d.size)) if d.size > 1 else None
    out.setdefault("savings_vs_uniform_bon", None)
    out.setdefault("savings_vs_uniform_majority", None)
    out["uniform_accuracy"] = max(uni_at.values()) if uni_at else None
    out["uniform_majority_accuracy"] = uni_at.get("majority")
    out["uniform_bon_accuracy"] = uni_at.get("best-of-n")


def evaluate_config(table: pl.DataFrame, budgets: Sequence[float] | None, test_fraction: float = 0.5,
                    seed: int = 0, pilot: int = 4, strategies: str | Sequence[str] | None = None,
                    calibrate: bool = True) -> dict:
    """Evaluate one configuration (``table`` holds a single config); see the module docstring."""
    cfg = table["config"][0]
    k = int(table.group_by("prompt_id").len()["len"].min())
    table = table.filter(pl.col("sample_idx") < k)
    val_ids, test_ids = split_prompts(table["prompt_id"].unique().to_list(), test_fraction, seed)
    val = table.filter(pl.col("prompt_id").is_in(val_ids))
    test = table.filter(pl.col("prompt_id").is_in(test_ids))
    pool_n = k - pilot
    if pool_n < pilot:
        raise TtsplanError(f"config {cfg!r}: evaluate needs at least 2 × pilot samples per prompt (pilot {pilot} + "
                           f"a held-out pool), got {k}. Lower --pilot (e.g. --pilot {max(2, k // 3)}).")
    if budgets is None:
        budgets = [float(min(8, max(pilot + 1, pool_n // 2)))]
    post = pilot_posteriors(test, pilot, labeled=val, seed=seed)
    grid = list(range(pilot, pool_n + 1))
    val_post = pilot_posteriors(val, pilot, labeled=val, seed=seed)
    prep = prepare(test, "samples", strategies, grid, None, pilot, posteriors=post,
                   calibrate=(val, val_post, pilot) if calibrate else None)
    pool = test.filter(pl.col("sample_idx") >= pilot).with_columns((pl.col("sample_idx") - pilot).alias("sample_idx"))
    ns = np.arange(1, pool_n + 1)
    per_prompt, uniform, samples_by_prompt = _pool_values(pool, pool_n)
    pids = prep.keys["prompt_id"].to_numpy()
    assert list(pids) == sorted(test_ids), "posterior keys must follow sorted prompt order"
    # oracle: per-prompt realized values for every (strategy, N) on the pool; greedy only at N = 1
    o_names = list(per_prompt)
    o_acc = np.stack([per_prompt[s] for s in o_names], axis=1)
    o_cost = np.broadcast_to(ns[None, None, :].astype(float), o_acc.shape).copy()
    gi = o_names.index("greedy")
    o_acc[:, gi, 1:] = np.nan
    rows = []
    for b in budgets:
        if b > pool_n or b < pilot:
            why = (f"budget above the held-out pool of {pool_n} samples" if b > pool_n
                   else f"budget below the pilot of {pilot} samples per prompt")
            rows.append({"budget": b, "skipped": why})
            continue
        cp, allocs, _ = plan_config(prep, cfg, Budget(b, "samples", per_prompt=True), pilot=pilot)
        names = [s.name for s in prep.strategies]
        realized = np.array([_realized_at(per_prompt, samples_by_prompt.get(a.prompt_id), i, a.strategy, a.n, seed)
                             for i, a in enumerate(allocs)], dtype=float)
        acc = float(np.nanmean(realized))
        cost = float(np.mean([a.n for a in allocs]))
        out = {"budget": b, "accuracy": acc, "predicted_accuracy": cp.per_prompt_accuracy,
               "predicted_interval": [cp.per_prompt_low, cp.per_prompt_high], "cost": cost,
               "strategy_mix": dict(cp.strategy_mix), "mean_n": cp.mean_n}
        _add_uniform_comparison(out, uniform, per_prompt, ns, realized, acc, cost)
        orc = allocate(o_acc, o_cost, cost * len(allocs))
        out["oracle_accuracy"] = orc.mean_accuracy
        out["oracle_fraction"] = acc / orc.mean_accuracy if orc.mean_accuracy > 0 else None
        bins = difficulty_bins(prep.mean[prep.rows[cfg]], prep.costs["samples"][prep.rows[cfg]], b * len(allocs),
                               difficulty=-prep.p_mean[prep.rows[cfg]])
        bacc = [_realized_at(per_prompt, samples_by_prompt.get(pids[i]), i, names[si], prep.grid[g], seed)
                for i, (si, g) in enumerate(zip(bins["strategy_index"], bins["grid_index"]))]
        out["bins_accuracy"] = float(np.mean(bacc))
        rows.append(out)
    head = next((r for r in rows if "accuracy" in r), None)
    if head is None:
        raise TtsplanError(f"config {cfg!r}: every budget must fit in the held-out pool of {pool_n} samples per prompt, "
                           f"and cover the pilot ({pilot}), got {list(budgets)}. Pass --budgets between {pilot} and {pool_n}.")
    base = {"config": cfg, "validation_prompts": len(val_ids), "test_prompts": len(test_ids), "k": k,
            "pilot": pilot, "pool": pool_n}
    return {**base, **head, "budgets": rows}


def evaluate(table: pl.DataFrame, budgets: Sequence[float] | None = None, test_fraction: float = 0.5, seed: int = 0,
             pilot: int = 4, strategies: str | Sequence[str] | None = None, calibrate: bool = True) -> list[dict]:
    """One dict per configuration (keys in the module docstring), sorted by config.

    A configuration that cannot be evaluated (e.g. no correct sample among its validation prompts) gets
    a row with ``skipped`` (the reason) and null metrics, unless it is the only one (then it raises).
    """
    if table.height == 0:
        raise TtsplanError("data must have at least one sample, got an empty table. Pass a non-empty sample table.")
    if table_kind(table) == "counts":
        raise TtsplanError("evaluate needs a sample table (answers per sample), got a count table. "
                           "Pass a sample table.")
    if not has_values(table, "correct"):
        raise TtsplanError("evaluate needs graded samples: column \"correct\" must have values, got only nulls. "
                           "Grade the samples first.")
    if strategies is not None:
        for s in ([strategies] if isinstance(strategies, str) else strategies):
            for part in str(s).split(","):
                if part.strip():
                    get_strategy(part)
    table = table.filter(pl.col("correct").is_not_null())
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateDataWarning)
        configs = sorted(table["config"].unique().to_list())
        for cfg in configs:
            try:
                out.append(evaluate_config(table.filter(pl.col("config") == cfg), budgets, test_fraction, seed,
                                           pilot, strategies, calibrate))
            except TtsplanError as exc:
                if len(configs) == 1:
                    raise
                out.append({"config": cfg, "skipped": str(exc), **dict.fromkeys(NULL_KEYS)})
    if all("skipped" in r for r in out):
        raise TtsplanError("evaluate must score at least one configuration, got none: "
                           + "; ".join(f"{r['config']}: {r['skipped']}" for r in out))
    return out


#: keys every result row has (null on a skipped configuration).
NULL_KEYS = ("savings_vs_uniform_bon", "savings_vs_uniform_majority", "oracle_fraction", "accuracy",
             "uniform_accuracy", "cost", "budget", "test_prompts")


__all__ = ["evaluate", "evaluate_config", "parse_budgets", "split_prompts"]
