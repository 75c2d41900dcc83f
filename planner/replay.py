"""Replay a stopping rule over recorded samples in many random orders (DESIGN §8).

For each config of a SampleTable (prompts × k recorded samples with ``answer`` and ``correct``), each
of ``orders`` random per-prompt sample orders is fed to an :class:`~ttsplan.planner.adaptive.AdaptiveSession`
exactly as an engine would (ask → tell, one sample per open prompt per round). The rule's accuracy and
mean samples are compared with fixed self-consistency on all recorded samples (``sc``: plurality vote,
null answers never win, ties broken uniformly at random — computed exactly).

``samples_ratio`` is the reduction factor ``sc_samples / mean_samples`` (2.0 = half the samples);
``accuracy``, ``sc_accuracy`` and ``accuracy_drop = sc_accuracy − accuracy`` are fractions. The spread
over orders is reported as ``*_std`` and 5–95 % ``*_lo`` / ``*_hi`` quantiles.

>>> import polars as pl
>>> from ttsplan.features.schema import validate_sample_table
>>> t = validate_sample_table(pl.DataFrame({"config": "c", "prompt_id": ["a"] * 6 + ["b"] * 6,
...     "sample_idx": list(range(6)) * 2, "answer": ["1"] * 6 + ["2", "3"] * 3,
...     "correct": [True] * 6 + [True, False] * 3}))
>>> row = replay(t, "beta", max_n=6, orders=4, seed=0)[0]
>>> row["mean_samples"], row["sc_accuracy"]  # a stops after 4 votes for "1"; b's tie runs to 6
(5.0, 0.75)
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
from ttsplan.features.errors import TtsplanError
from ttsplan.features.schema import has_values
from ttsplan.planner.adaptive import AdaptiveSession
from ttsplan.planner.stopping import SWEEP_GRIDS, make_rule


@dataclass(frozen=True)
class ConfigSamples:
    """One config's samples as prompt × sample matrices (padding: code -1, k per prompt)."""

    config: str
    prompt_ids: list[str]
    codes: np.ndarray      # int32 (P, K): per-prompt answer code by first appearance, -1 = no answer
    correct: np.ndarray    # bool (P, K): correctness of answer code j of prompt p (by code, not sample)
    tokens: np.ndarray     # int64 (P, K): output tokens per sample (0 when unknown)
    rewards: np.ndarray | None  # float (P, K) in [0, 1], NaN unknown; None when the table has none
    k: np.ndarray          # int32 (P,): recorded samples per prompt


def prepare(table: pl.DataFrame, with_rewards: bool = True) -> list[ConfigSamples]:
    """Split a validated SampleTable into per-config matrices.

    ``with_rewards``: carry the reward column (needed only by reward-weighted rules, which require
    rewards in [0, 1]); rules that ignore rewards replay tables with any reward scale.
    """
    problems = []
    if not has_values(table, "answer"):
        problems.append('column "answer" must carry the extracted answers, got none. Extract answers first.')
    if not has_values(table, "correct"):
        problems.append('column "correct" must carry graded samples, got none. Grade the samples first.')
    elif table.get_column("correct").null_count():
        problems.append(f'column "correct" must be graded for every sample, got '
                        f'{table.get_column("correct").null_count()} null(s). Grade or drop those rows.')
    rewards_present = with_rewards and has_values(table, "reward")
    if rewards_present:
        r = table.get_column("reward").drop_nulls()
        if (r < 0).any() or (r > 1).any():
            problems.append("column \"reward\" must lie in [0, 1] for the weighted rule, got values outside "
                            f"[{r.min():.3g}, {r.max():.3g}]. Rescale rewards (e.g. a sigmoid).")
    if problems:
        raise TtsplanError("replay input: " + " ".join(problems))
    keys = ["config", "prompt_id"]
    df = (table.select("config", "prompt_id", "sample_idx", "answer", "correct", "output_tokens", "reward")
          .sort(["config", "prompt_id", "sample_idx"])
          .with_columns(pl.when(pl.col("answer").is_not_null())
                        .then(pl.col("sample_idx").min().over(["config", "prompt_id", "answer"]))
                        .alias("_first"))
          .with_columns((pl.col("_first").rank("dense").over(keys) - 1).fill_null(-1).cast(pl.Int32).alias("code"),
                        pl.col("prompt_id").rank("dense").over("config").cast(pl.Int64).alias("_p") - 1))
    out = []
    for (config,), g in df.group_by("config", maintain_order=True):
        p = g.get_column("_p").to_numpy()
        s = g.get_column("sample_idx").to_numpy().astype(np.int64)
        n_p = int(p.max()) + 1
        k_max = int(s.max()) + 1
        codes = np.full((n_p, k_max), -1, np.int32)
        codes[p, s] = g.get_column("code").to_numpy()
        correct = np.zeros((n_p, k_max), bool)
        c = g.get_column("code").to_numpy()
        ok = c >= 0
        np.logical_or.at(correct, (p[ok], c[ok]), g.get_column("correct").to_numpy()[ok])
        tokens = np.zeros((n_p, k_max), np.int64)
        tokens[p, s] = g.get_column("output_tokens").fill_null(0).to_numpy()
        rewards = None
        if rewards_present:
            rewards = np.full((n_p, k_max), np.nan)
            rewards[p, s] = g.get_column("reward").fill_null(np.nan).to_numpy()
        k = np.bincount(p, minlength=n_p).astype(np.int32)
        ids = g.unique("prompt_id", maintain_order=True).get_column("prompt_id").to_list()
        out.append(ConfigSamples(str(config), ids, codes, correct, tokens, rewards, k))
    return out


def sc_accuracy(cs: ConfigSamples) -> float:
    """Exact accuracy of plurality vote over all recorded samples, ties broken uniformly."""
    n_p, width = cs.codes.shape
    counts = np.zeros((n_p, width), np.int64)
    p, j = np.nonzero(cs.codes >= 0)
    np.add.at(counts, (p, cs.codes[p, j]), 1)
    top = counts.max(axis=1, keepdims=True)
    tied = (counts == top) & (top > 0)
    acc = (tied & cs.correct).sum(axis=1) / np.maximum(tied.sum(axis=1), 1)
    return float(acc.mean())


def sample_orders(cs: ConfigSamples, orders: int, seed: int, salt: int) -> list[np.ndarray]:
    """``orders`` random per-prompt permutations of the recorded samples (padding last), seeded by (seed, salt)."""
    rng = np.random.default_rng([seed, salt])
    n_p, width = cs.codes.shape
    pad = np.arange(width)[None, :] >= cs.k[:, None]
    perms = []
    for _ in range(orders):
        key = rng.random((n_p, width))
        key[pad] = 2.0  # padding sorts last
        perms.append(np.argsort(key, axis=1, kind="stable"))
    return perms


def run_order(cs: ConfigSamples, rule, perm: np.ndarray, max_n: int) -> tuple[float, float, float]:
    """Feed one sample order to a session; returns (accuracy, mean samples, mean output tokens)."""
    right, n, tokens = order_outcomes(cs, rule, perm, max_n)
    return float(right.mean()), float(n.mean()), float(tokens.mean())


def order_outcomes(cs: ConfigSamples, rule, perm: np.ndarray, max_n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Feed one sample order to a session; per prompt: (correct, samples, output tokens)."""
    codes = np.take_along_axis(cs.codes, perm, axis=1)
    tokens = np.take_along_axis(cs.tokens, perm, axis=1)
    rewards = None if cs.rewards is None else np.take_along_axis(cs.rewards, perm, axis=1)
    caps = np.minimum(cs.k, max_n).astype(np.int64)
    s = AdaptiveSession(rule, cs.prompt_ids, caps=caps, n_codes=cs.codes.shape[1])
    while True:
        idx = s.ask_idx()
        if idx.size == 0:
            break
        j = s.n[idx]
        s.tell_many(idx, codes[idx, j], None if rewards is None else rewards[idx, j], tokens[idx, j])
    chosen = s.chosen_codes()
    right = np.where(chosen >= 0, cs.correct[np.arange(len(chosen)), np.maximum(chosen, 0)], False)
    return right, s.n, s.tokens


def _spread(x: np.ndarray) -> tuple[float, float, float]:
    return float(x.std(ddof=1)) if x.size > 1 else 0.0, float(np.quantile(x, 0.05)), float(np.quantile(x, 0.95))


def replay(table: pl.DataFrame, rule: str, threshold: float | None = None, *, max_n: int | None = None,
           min_n: int | None = None, orders: int = 20, seed: int = 0,
           configs: Sequence[ConfigSamples] | None = None) -> list[dict]:
    """Replay ``rule`` over every config of ``table``; one result dict per config (see module doc)."""
    problems = []
    if not isinstance(orders, int) or orders < 1:
        problems.append(f"orders must be an integer >= 1, got {orders!r}.")
    if max_n is not None and (not isinstance(max_n, int) or max_n < 1):
        problems.append(f"max_n must be an integer >= 1, got {max_n!r}.")
    if problems:
        raise TtsplanError("replay: " + " ".join(problems))
    configs = list(configs) if configs is not None else prepare(table, make_rule(rule).uses_weights)
    rows = []
    for salt, cs in enumerate(configs):
        k_max = int(cs.k.max())
        if max_n is not None and max_n > k_max:
            raise TtsplanError(f"max_n must be <= the recorded samples per prompt ({k_max} in config "
                               f"{cs.config!r}), got {max_n}. Lower --max-n.")
        n_max = k_max if max_n is None else max_n
        r = make_rule(rule, threshold, min_n=min_n, max_n=n_max)
        sc_acc = sc_accuracy(cs)
        sc_samples = float(cs.k.mean())
        sc_tokens = float(cs.tokens.sum(axis=1).mean())
        res = np.array([run_order(cs, r, perm, n_max) for perm in sample_orders(cs, orders, seed, salt)])
        acc, samples, tok = res[:, 0], res[:, 1], res[:, 2]
        ratio = sc_samples / samples
        drop = sc_acc - acc
        a_sd, a_lo, a_hi = _spread(acc)
        s_sd, s_lo, s_hi = _spread(samples)
        r_sd, r_lo, r_hi = _spread(ratio)
        rows.append({
            "config": cs.config, "rule": r.name, "threshold": float(r.threshold), "min_n": r.min_n,
            "max_n": r.max_n, "orders": orders, "prompts": len(cs.prompt_ids),
            "mean_samples": float(samples.mean()), "sc_samples": sc_samples,
            "samples_ratio": float(sc_samples / samples.mean()),
            "accuracy": float(acc.mean()), "sc_accuracy": sc_acc, "accuracy_drop": float(drop.mean()),
            "mean_samples_std": s_sd, "mean_samples_lo": s_lo, "mean_samples_hi": s_hi,
            "samples_ratio_std": r_sd, "samples_ratio_lo": r_lo, "samples_ratio_hi": r_hi,
            "accuracy_std": a_sd, "accuracy_lo": a_lo, "accuracy_hi": a_hi,
            "accuracy_drop_lo": float(np.quantile(drop, 0.05)), "accuracy_drop_hi": float(np.quantile(drop, 0.95)),
            "mean_tokens": float(tok.mean()), "sc_tokens": sc_tokens,
            "tokens_ratio": float(sc_tokens / tok.mean()) if tok.mean() > 0 else None,
        })
    return rows


def sweep(table: pl.DataFrame, rule: str, thresholds: Sequence[float] | None = None, *,
          max_n: int | None = None, min_n: int | None = None, orders: int = 20, seed: int = 0) -> list[dict]:
    """:func:`replay` at each threshold of the rule's grid (``SWEEP_GRIDS``): accuracy vs mean samples.

    The same sample orders are used at every threshold (common random numbers)."""
    uses_weights = make_rule(rule).uses_weights  # name check first
    grid = list(thresholds) if thresholds else list(SWEEP_GRIDS[rule])
    configs = prepare(table, uses_weights)
    rows = []
    for t in grid:
        rows.extend(replay(table, rule, t, max_n=max_n, min_n=min_n, orders=orders, seed=seed, configs=configs))
    return rows


def best_threshold(rows: list[dict], max_drop: float = 0.005) -> dict | None:
    """From sweep rows of one rule: the threshold with the largest mean ``samples_ratio`` whose
    ``accuracy_drop`` ≤ ``max_drop`` for **every** config; ``None`` when no threshold qualifies."""
    by_t: dict[float, list[dict]] = {}
    for r in rows:
        by_t.setdefault(r["threshold"], []).append(r)
    ok = [(float(np.mean([r["samples_ratio"] for r in rs])), t) for t, rs in by_t.items()
          if all(r["accuracy_drop"] <= max_drop for r in rs)]
    if not ok:
        return None
    ratio, t = max(ok)
    return {"threshold": t, "mean_samples_ratio": ratio, "rows": by_t[t]}


COLUMNS = ("config", "rule", "threshold", "mean_samples", "sc_samples", "samples_ratio", "samples_ratio_lo",
           "samples_ratio_hi", "accuracy", "sc_accuracy", "accuracy_drop", "accuracy_std")

__all__ = ["replay", "sweep", "prepare", "sc_accuracy", "run_order", "best_threshold", "ConfigSamples", "COLUMNS"]
