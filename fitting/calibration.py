"""Calibrate the roofline cost model on measured serving benchmarks (TTFT / TPOT per row), and validate it.

Input rows follow ``../shared/data/serving/h100_silicon.csv`` (aiconfigurator silicon samples):
``backend, model_path, system, mode, isl, osl, batch_size, tp_size, silicon_ttft_ms,
silicon_tpot_ms`` (+ optional ``precision``, ``gemm_quant_mode``, ``pp_size``). Dense catalog models
in aggregated mode (``mode == "agg"``, ``pp_size`` 1) on catalog GPUs are used; other rows are skipped and
counted in ``skipped_``. MoE catalog models (Qwen3-235B-A22B, Qwen3-30B-A3B) are a stretch goal: with
``include_moe=True`` they are fitted per model and reported apart (``overall(moe=True)``).

Each benchmark row runs ``batch_size`` concurrent requests of ``isl`` prompt and ``osl`` output tokens on a
``tp_size``-GPU replica; the prediction is :func:`ttsplan.fitting.cost.predict_serving` (the step model of
:class:`ttsplan.fitting.cost.CostModel`, plus the benchmark's prefill interference and queueing).

**Physics first, shared across GPUs.** Every per-GPU constant (peak FLOP/s of the row's precision, HBM
bandwidth, NVLink bandwidth, memory) comes from the :class:`~ttsplan.fitting.specs.GpuSpec`; what is learned
are fractions and overheads — ``e_c, e_m, t_fixed_s, t_allreduce_s, prefill_interference`` γ, ``prefill_queue``
β, ``kv_memory_fraction`` κ, ``t_request_s``, ``prefill_wait`` w — fitted **per engine over the rows of every
GPU** (``physics_``), so a calibration fitted on H100 rows prices a B200 without any B200 row. A pooled fit
over all engines (key ``("*",)``) prices engines never calibrated. Two terms are held fixed (``FIXED``):
the KV-overflow queue follows Little's law (q = 1), and the admission wait α (TTFT ∝ osl·TPOT/B, seen on one
H100 model) is 0 — with it, an exploratory leave-one-engine-out run (vllm held out) gave 935% TTFT MAPE, 129%
without. Within one (GPU, engine) group, the residual stage refits the physics with q free (``LOCAL_FIXED``).
Parameters are fitted by ``scipy.optimize.least_squares`` on the relative errors of TTFT and TPOT (soft-L1
loss, f_scale 0.05 — close to the MAPE that is reported), always from the same two starting points.

**Residual stages, per (GPU, engine).** The group's own physics, a ridge log-linear correction of TTFT and TPOT,
then extremely randomized trees on the remaining TTFT log error; they refine the rows of the GPU and the models
they were fitted on, and are never applied to another GPU or a new model (leave-one-model-out showed them
hurting there).

**Validation** (``loo=True``), each fold refitted from the cold start (never from the full-data solution):
leave-one-out (``loo_*``), leave-one-model-out (``lomo_*``: the model's rows on every engine held out; an engine
left without rows uses the pooled physics), leave-one-engine-out (``loeo_*``: the pooled physics of the other
engines) and, with rows of two or more GPUs, leave-one-GPU-out (``logo_*``: physics only, as on a new GPU).
``physics_*`` and ``linear_*`` give the same folds for the physics alone and physics + ridge.
"Naive" is the uncalibrated roofline: e_c = e_m = 1, no overheads.

>>> import itertools, polars as pl
>>> grid = list(itertools.product([1, 2], [8, 32, 128], [(1024, 128), (4096, 512)]))
>>> rows = pl.DataFrame([{"backend": "vllm", "model_path": "Qwen/Qwen3-8B", "system": "h100_sxm", "mode": "agg",
...     "isl": i, "osl": o, "batch_size": b, "tp_size": t, "silicon_ttft_ms": 30 + 0.05 * b * i / t,
...     "silicon_tpot_ms": 6 + 0.02 * b * (i + o) / 1000 / t} for t, b, (i, o) in grid])
>>> cal = Calibrator(loo=False).fit(rows)
>>> cal.summary().columns[:4]
['engine', 'model', 'gpus', 'parameter']
"""
from __future__ import annotations

import base64
import json
import math
import warnings
import zlib
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ttsplan.features.errors import SchemaError, TtsplanError
from ttsplan.features.io import write_atomic
from ttsplan.fitting.cost import (
    CALIBRATION_SCHEMA,
    RHO_MAX,
    Efficiency,
    ServingCalibration,
    apply_ridge,
    load_serving_calibration,
    predict_serving,
    predict_serving_full,
    ridge_design,
    serving_dtype,
    serving_inputs,
    tree_features,
)
from ttsplan.fitting.specs import get_gpu_spec, get_model_spec

__all__ = ["FIXED", "LOCAL_FIXED", "PARAMS", "RHO_MAX", "CalibrationWarning", "Calibrator", "check_overlap",
           "pack_trees", "predict_serving", "read_serving", "serving_arrays", "validate_serving"]

REQUIRED = ("backend", "model_path", "system", "mode", "isl", "osl", "batch_size", "tp_size",
            "silicon_ttft_ms", "silicon_tpot_ms")
PARAMS = ("e_c", "e_m", "t_fixed_s", "t_allreduce_s", "prefill_interference", "prefill_queue", "kv_memory_fraction",
          "t_request_s", "queue_scale", "admission_wait", "prefill_wait")
#: parameters held fixed in the shared physics (see the module docstring): Little's-law KV queue, no admission wait
FIXED = {"queue_scale": 1.0, "admission_wait": 0.0}
#: ... and in the per-(GPU, engine) refit under the residual stages (the KV-queue scale is free there)
LOCAL_FIXED = {"admission_wait": 0.0}
FITTED = tuple(p for p in PARAMS if p not in FIXED)
#: (first start, lower bound, upper bound) per parameter
_BOUNDS = {"e_c": (0.5, 0.02, 1.0), "e_m": (0.7, 0.02, 1.0), "t_fixed_s": (2e-3, 0.0, 0.2),
           "t_allreduce_s": (1e-5, 0.0, 1e-3), "prefill_interference": (0.5, 0.0, 10.0),
           "prefill_queue": (0.1, 0.0, 10.0), "kv_memory_fraction": (0.9, 0.3, 1.0),
           "t_request_s": (0.02, 0.0, 2.0), "queue_scale": (1.0, 0.0, 3.0), "admission_wait": (0.0, 0.0, 3.0),
           "prefill_wait": (0.5, 0.0, 20.0)}
#: second start of every physics fit; the full fit and every fold start from the same two points
_START2 = {"e_c": 0.3, "e_m": 0.5, "t_fixed_s": 5e-3, "t_allreduce_s": 2e-5, "prefill_interference": 1.0,
           "prefill_queue": 0.05, "kv_memory_fraction": 0.8, "t_request_s": 0.1, "queue_scale": 0.1,
           "admission_wait": 0.5, "prefill_wait": 2.0}
NAIVE = Efficiency()
SCHEMA = CALIBRATION_SCHEMA
POOLED = "*"
IRLS_STEPS = 10
#: leave-one-out folds per parallel task
FOLD_CHUNK = 16
#: validation schemes: JSON prefix -> what is held out
SCHEMES = {"loo": "one row", "lomo": "one model (its rows on every engine and GPU)",
           "loeo": "one engine (pooled physics of the others)", "logo": "one GPU (physics only)"}


class CalibrationWarning(UserWarning):
    """Rows were skipped or a fit is weak."""


def read_serving(path: str | Path) -> pl.DataFrame:
    """Read a serving CSV and check its columns (collects every problem, raises once)."""
    p = Path(path)
    if not p.is_file():
        raise TtsplanError(f"serving CSV must exist, got {str(p)!r}. Check the path.")
    try:
        df = pl.read_csv(p, infer_schema_length=10_000)
    except Exception as exc:  # polars raises many types on malformed CSV
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise TtsplanError(f"{p}: serving CSV must be readable CSV, got a read error ({first[:160]}).") from None
    return validate_serving(df, str(p))


def validate_serving(df: pl.DataFrame, name: str = "serving table") -> pl.DataFrame:
    problems = [f"column {c!r} must be present, got columns {df.columns[:8]}{'…' if df.width > 8 else ''}"
                for c in REQUIRED if c not in df.columns]
    if not problems:
        agg = (df["mode"].cast(pl.String).str.to_lowercase() == "agg").fill_null(False)
        for c in ("isl", "osl", "batch_size", "tp_size", "silicon_ttft_ms", "silicon_tpot_ms"):
            col = df[c].cast(pl.Float64, strict=False)
            bad = col.is_null() | ~col.is_finite().fill_null(False) | (col <= 0)
            if c in ("batch_size", "tp_size"):  # disaggregated rows use prefill_/decode_ columns instead
                bad = bad & agg
            if bad.any():
                problems.append(f"column {c!r} must hold positive numbers, got {int(bad.sum())} bad rows "
                                f"(first: row {int(bad.arg_true()[0])})")
    if problems:
        raise SchemaError(name, problems)
    if df.height == 0:
        raise SchemaError(name, ["table must have at least one row, got 0"])
    return df


def _row_dtype(row: dict[str, Any]) -> str:
    return serving_dtype(row.get("gemm_quant_mode") or row.get("precision"))


def serving_arrays(df: pl.DataFrame, include_moe: bool = False
                   ) -> tuple[dict[str, np.ndarray], pl.DataFrame, dict[str, int]]:
    """Per-row physics inputs (:func:`ttsplan.fitting.cost.serving_inputs`) and measured ``ttft`` / ``tpot`` (s)
    for the aggregated rows of catalog models on catalog GPUs (MoE only with ``include_moe``); returns (arrays,
    kept rows with ``gpu``, ``engine``, ``model``, ``dtype``, ``moe`` columns, skip counts)."""
    skipped: dict[str, int] = {}
    keep: list[int] = []
    meta: list[tuple[str, str, str, str, bool]] = []
    for i, row in enumerate(df.iter_rows(named=True)):
        reason = None
        spec = gpu = None
        if str(row["mode"]).lower() != "agg":
            reason = "disaggregated serving"
        elif int(row.get("pp_size") or 1) != 1:
            reason = "pipeline parallel"
        else:
            try:
                spec = get_model_spec(str(row["model_path"]))
            except TtsplanError:
                reason = f"model not in catalog ({row['model_path']})"
            else:
                if spec.experts and not include_moe:
                    reason = "MoE model"
        if reason is None:
            try:
                gpu = get_gpu_spec(str(row["system"]))
            except TtsplanError:
                reason = f"GPU not in catalog ({row['system']})"
        if reason:
            skipped[reason] = skipped.get(reason, 0) + 1
            continue
        keep.append(i)
        meta.append((spec.name, gpu.name, _row_dtype(row), str(row["backend"]).lower(), bool(spec.experts)))
    kept = df[keep]
    n = len(keep)
    arrays: dict[str, np.ndarray] = {}
    if n:
        tp, B, isl, osl = (kept[c].cast(pl.Float64).to_numpy() for c in ("tp_size", "batch_size", "isl", "osl"))
        by: dict[tuple[str, str, str, str], list[int]] = {}
        for j, m in enumerate(meta):
            by.setdefault(m[:4], []).append(j)
        for (model, gpu, dt, engine), rows in by.items():
            idx = np.asarray(rows)
            part = serving_inputs(model, gpu, dt, engine, tp[idx], B[idx], isl[idx], osl[idx])
            for k, v in part.items():
                arrays.setdefault(k, np.empty(n))[idx] = v
        arrays["ttft"] = kept["silicon_ttft_ms"].cast(pl.Float64).to_numpy() / 1e3
        arrays["tpot"] = kept["silicon_tpot_ms"].cast(pl.Float64).to_numpy() / 1e3
    kept = kept.with_columns(pl.Series("gpu", [m[1] for m in meta], dtype=pl.String),
                             pl.Series("model", [m[0] for m in meta], dtype=pl.String),
                             pl.Series("dtype", [m[2] for m in meta], dtype=pl.String),
                             pl.Series("moe", [m[4] for m in meta], dtype=pl.Boolean),
                             pl.Series("engine", [m[3] for m in meta], dtype=pl.String))
    return arrays, kept, skipped


def _mape(pred: np.ndarray, obs: np.ndarray) -> float:
    ok = np.isfinite(pred)
    return float(np.mean(np.abs(pred[ok] - obs[ok]) / obs[ok]) * 100.0) if ok.all() and len(obs) else float("nan")


def _subset(x: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[idx] for k, v in x.items()}


def _fit_physics(x: dict[str, np.ndarray], fixed: dict[str, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Physical parameters (all of ``PARAMS``, the ``fixed`` ones — default ``FIXED`` — included) and their standard
    errors, fitted from the two fixed starting points on the relative errors of TTFT and TPOT."""
    from scipy.optimize import least_squares

    fixed = FIXED if fixed is None else fixed
    free = [p for p in PARAMS if p not in fixed]
    x0 = np.array([_BOUNDS[p][0] for p in free])
    lo = np.array([_BOUNDS[p][1] for p in free])
    hi = np.array([_BOUNDS[p][2] for p in free])
    scale = np.maximum(np.abs(x0), 1e-6)
    pos = [PARAMS.index(p) for p in free]
    base = np.array([fixed.get(p, 0.0) for p in PARAMS])

    def full(z: np.ndarray) -> np.ndarray:
        theta = base.copy()
        theta[pos] = z * scale
        return theta

    def resid(z: np.ndarray) -> np.ndarray:
        ttft, tpot = predict_serving(full(z), x)
        return np.concatenate([ttft / x["ttft"] - 1.0, tpot / x["tpot"] - 1.0])

    best = None
    for start in (x0, np.array([_START2[p] for p in free])):
        r = least_squares(resid, np.clip(start, lo, hi) / scale, bounds=(lo / scale, hi / scale), loss="soft_l1",
                          f_scale=0.05, x_scale=1.0, max_nfev=400)
        if best is None or r.cost < best.cost:
            best = r
    J = best.jac / scale  # d resid / d theta
    m, k = J.shape
    s2 = float(np.sum(best.fun ** 2) / max(m - k, 1))
    se = np.zeros(len(PARAMS))
    se[pos] = np.sqrt(np.clip(np.diag(np.linalg.pinv(J.T @ J) * s2), 0, None))
    return full(best.x), se


def _fit_correction(x: dict[str, np.ndarray], theta: np.ndarray, ridge: float) -> np.ndarray:
    """Ridge coefficients (2 × features), feature means and sds of log(measured / physics) for TTFT and TPOT."""
    Z = ridge_design(x)
    t, p = predict_serving(theta, x)
    Y = np.column_stack([np.log(x["ttft"] / t), np.log(x["tpot"] / p)])
    mu, sd = Z[:, 1:].mean(0), Z[:, 1:].std(0) + 1e-12
    Zs = np.column_stack([Z[:, 0], (Z[:, 1:] - mu) / sd])
    pen = ridge * np.eye(Zs.shape[1])
    pen[0, 0] = 0.0
    W = np.linalg.solve(Zs.T @ Zs + pen, Zs.T @ Y)
    for _ in range(IRLS_STEPS):  # least absolute log-error (MAPE-like, robust to the odd queued row)
        R = np.abs(Y - Zs @ W)
        for j in range(2):
            w = 1.0 / np.maximum(R[:, j], 0.02)
            W[:, j] = np.linalg.solve((Zs * w[:, None]).T @ Zs + pen * w.mean(), (Zs * w[:, None]).T @ Y[:, j])
    return np.concatenate([W.ravel(), mu, sd])


def _fit_trees(x: dict[str, np.ndarray], theta: np.ndarray, corr: np.ndarray, n_trees: int) -> Any:
    """Extremely randomized trees on log(measured / physics·ridge) of TTFT (None when ``n_trees`` is 0).

    TPOT is left to physics + ridge (it meets the 10% target without trees, and the trees cost time)."""
    if n_trees <= 0:
        return None
    from sklearn.ensemble import ExtraTreesRegressor

    t, p = predict_serving(theta, x)
    t, _ = apply_ridge(x, t, p, corr)
    return ExtraTreesRegressor(n_estimators=n_trees, min_samples_leaf=1, random_state=0).fit(
        tree_features(x, Efficiency(*theta)), np.log(x["ttft"] / t))


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(zlib.compress(np.ascontiguousarray(a).tobytes(), 9)).decode("ascii")


def pack_trees(forest: Any) -> dict[str, Any] | None:
    """The node arrays of a fitted scikit-learn tree ensemble, as ``ttsplan.fitting.cost.predict_trees`` reads them
    (zlib-compressed, base64; every tree's nodes concatenated, children indexed within their tree): ``feature`` per
    node (−1 at leaves), ``threshold`` / ``left`` / ``right`` per split node, ``value`` per leaf."""
    if forest is None:
        return None
    trees = [est.tree_ for est in forest.estimators_]
    cat = lambda f: np.concatenate([f(t) for t in trees])
    inner = cat(lambda t: t.children_left >= 0)
    thr = cat(lambda t: t.threshold)[inner]
    # scikit-learn compares float32 features with float64 thresholds: the largest float32 <= threshold gives the
    # same split for every float32 input, in half the bytes
    thr32 = thr.astype(np.float32)
    thr32 = np.where(thr32.astype(np.float64) > thr, np.nextafter(thr32, np.float32(-np.inf)), thr32)
    idx = "<i2" if max(t.node_count for t in trees) < 2 ** 15 else "<i4"
    return {"format": "sklearn-tree-nodes/2", "n_features": int(forest.n_features_in_),
            "counts": [int(t.node_count) for t in trees], "index": idx,
            "feature": _b64(np.where(inner, cat(lambda t: t.feature), -1).astype("<i1")),
            "threshold": _b64(thr32.astype("<f4")),
            "left": _b64(cat(lambda t: t.children_left)[inner].astype(idx)),
            "right": _b64(cat(lambda t: t.children_right)[inner].astype(idx)),
            "value": _b64(cat(lambda t: t.value[:, 0, 0])[~inner].astype("<f8"))}


def _fit_local(x: dict[str, np.ndarray], opts: dict[str, Any]) -> dict[str, Any] | None:
    """The residual stage of one (GPU, engine) group: the physics refitted on its rows with the KV-queue scale free
    (``LOCAL_FIXED``), the ridge correction and the trees (None without ``correction``)."""
    if not opts["correction"]:
        return None
    theta, se = _fit_physics(x, LOCAL_FIXED)
    corr = _fit_correction(x, theta, opts["ridge"])
    return {"theta": theta, "se": se, "correction": corr, "forest": _fit_trees(x, theta, corr, opts["trees"])}


def _stages(x: dict[str, np.ndarray], shared: np.ndarray, local: dict[str, Any] | None) -> np.ndarray:
    """Columns: full TTFT, TPOT (local physics × ridge × trees); local physics·ridge TTFT, TPOT; shared physics
    TTFT, TPOT (scikit-learn trees in memory). Without ``local`` every stage is the shared physics."""
    pt, pp = predict_serving(shared, x)
    if local is None:
        return np.column_stack([pt, pp, pt, pp, pt, pp])
    theta, forest = local["theta"], local["forest"]
    lt, lp = apply_ridge(x, *predict_serving(theta, x), local["correction"])
    ft = lt * np.exp(forest.predict(tree_features(x, Efficiency(*theta)))) if forest is not None else lt
    return np.column_stack([ft, lp, lt, lp, pt, pp])


def _refit_predict(x: dict[str, np.ndarray], pkeys: np.ndarray, rkeys: np.ndarray, models: np.ndarray,
                   dense: np.ndarray, test: np.ndarray, opts: dict[str, Any]) -> np.ndarray:
    """Everything refitted from the cold start on the rows outside ``test``, then ``test`` predicted (see
    :func:`_stages`) as the deployed calibration would: the shared physics of each test row's engine (the pooled
    physics of the dense training rows when the engine has fewer than ``min_rows`` training rows), and the
    residual stage of its (GPU, engine) when that group has ``min_rows`` training rows, its engine its own
    physics, and the row's model is among the group's training rows (NaN when nothing can be fitted)."""
    train = np.ones(len(pkeys), bool)
    train[test] = False
    out = np.full((len(test), 6), np.nan)
    pooled: list[np.ndarray | None] = []
    for pk in sorted(set(pkeys[test])):
        tr = np.flatnonzero(train & (pkeys == pk))
        own = len(tr) >= opts["min_rows"]
        if own:
            shared, _ = _fit_physics(_subset(x, tr))
        else:
            if not pooled:
                trd = np.flatnonzero(train & dense)
                pooled.append(_fit_physics(_subset(x, trd))[0] if len(trd) >= opts["min_rows"] else None)
            shared = pooled[0]
            if shared is None:
                continue
        at = test[pkeys[test] == pk]
        for rk in sorted(set(rkeys[at])):
            rows = at[rkeys[at] == rk]
            rtr = np.flatnonzero(train & (rkeys == rk))
            local = _fit_local(_subset(x, rtr), opts) if own and len(rtr) >= opts["min_rows"] else None
            seen = np.isin(models[rows], models[rtr])
            for mask, loc in ((seen, local), (~seen, None)):
                if mask.any():
                    out[np.searchsorted(test, rows[mask])] = _stages(_subset(x, rows[mask]), shared, loc)
    return out


def _run_folds(x: dict[str, np.ndarray], pkeys: np.ndarray, rkeys: np.ndarray, models: np.ndarray,
               dense: np.ndarray, folds: list[np.ndarray], opts: dict[str, Any]) -> list[np.ndarray]:
    return [_refit_predict(x, pkeys, rkeys, models, dense, np.sort(f), opts) for f in folds]


def _key(t: tuple[str, ...]) -> str:
    return "|".join(t)


def _predict_deployed(deployed: ServingCalibration, x: dict[str, np.ndarray], gpu: str, engine: str,
                      models: np.ndarray) -> tuple[np.ndarray, list[tuple[tuple[str, ...] | None, bool]]]:
    """(TTFT, TPOT) columns of rows of one GPU and engine, predicted as ``CostModel.serving`` does, and per row the
    physics key used and whether the residual stage applied."""
    out = np.empty((len(models), 2))
    used: list[tuple[tuple[str, ...] | None, bool]] = [(None, False)] * len(models)
    for m in sorted(set(models)):
        rows = np.flatnonzero(models == m)
        eff, residual, key = deployed.resolve(gpu, engine, m)
        out[rows] = np.column_stack(predict_serving_full(_subset(x, rows), eff, residual))
        for i in rows:
            used[i] = (key, residual is not None)
    return out, used


class Calibrator:
    """Fit the physics per engine (shared across GPUs) and residual stages per (GPU, engine) on serving rows.

    ``loo``: also validate — leave-one-out, leave-one-model-out, leave-one-engine-out (and leave-one-GPU-out
    with rows of several GPUs), every fold refitted from the cold start (physics, ridge, trees).
    ``correction``: fit the ridge log-linear correction of TTFT and TPOT on (log batch, log isl, log osl, log tp,
    log model size and products) per (GPU, engine); ``ridge`` is its penalty. ``trees``: then ``trees``
    extremely randomized trees on the remaining TTFT log error (0 turns this stage off; it needs
    ``correction``). ``n_jobs``: processes for the validation refits. ``group_by``: ``"engine"`` (physics per
    engine, the default) or ``"model"`` (per engine and model). ``min_rows``: rows a group needs to be fitted.

    Learned: ``physics_`` ({(engine,) / (engine, model) / ("*",): :class:`Efficiency`}), ``physics_intervals_``,
    ``params_`` / ``intervals_`` (the same, keyed by the (GPU, engine[, model]) groups of the rows),
    ``corrections_`` and ``trees_`` (packed, as written to calib.json) per group, ``metrics_`` (one dict per
    group: fit / validation MAPEs of the full model, ``linear_*`` physics + ridge, ``physics_*``), ``skipped_``.
    """

    def __init__(self, loo: bool = True, min_rows: int = 12, correction: bool = True, ridge: float = 0.1,
                 group_by: str = "engine", include_moe: bool = False, trees: int = 60, n_jobs: int = 2):
        self.include_moe = include_moe
        self.loo = loo
        self.min_rows = min_rows
        self.correction = correction
        self.ridge = ridge
        self.group_by = group_by
        self.trees = trees
        self.n_jobs = n_jobs

    def _validate_hyperparameters(self) -> None:
        problems = []
        if not isinstance(self.min_rows, int) or self.min_rows < len(FITTED) + 1:
            problems.append(f"min_rows must be an integer >= {len(FITTED) + 1}, got {self.min_rows!r}")
        if not (isinstance(self.ridge, (int, float)) and self.ridge >= 0):
            problems.append(f"ridge must be >= 0, got {self.ridge!r}")
        if not (isinstance(self.trees, int) and not isinstance(self.trees, bool) and self.trees >= 0):
            problems.append(f"trees must be an integer >= 0, got {self.trees!r}")
        if not (isinstance(self.n_jobs, int) and (self.n_jobs >= 1 or self.n_jobs == -1)):
            problems.append(f"n_jobs must be a positive integer or -1, got {self.n_jobs!r}")
        if self.group_by not in ("engine", "model"):
            problems.append(f"group_by must be 'engine' or 'model', got {self.group_by!r}")
        if problems:
            raise TtsplanError("; ".join(problems) + ".")

    def fit(self, data: pl.DataFrame | str | Path, progress: Callable[[int, int], Any] | None = None) -> Calibrator:
        """Fit every group; ``progress(done, total)`` is called as validation folds complete."""
        self._validate_hyperparameters()
        df = read_serving(data) if isinstance(data, (str, Path)) else validate_serving(data)
        x, kept, skipped = serving_arrays(df, include_moe=self.include_moe)
        self.skipped_ = skipped
        if kept.height == 0:
            raise TtsplanError("serving table must have dense-model aggregated rows for catalog models and GPUs, "
                               f"got none usable (skipped: {skipped}).")
        moe = kept["moe"].to_numpy()
        pk = [(e, m) if (self.group_by == "model" or mo) else (e,)
              for e, m, mo in zip(kept["engine"], kept["model"], moe)]
        counts: dict[tuple[str, ...], int] = {}
        for k in pk:
            counts[k] = counts.get(k, 0) + 1
        ok = np.array([counts[k] >= self.min_rows for k in pk])
        for k, c in counts.items():
            if c < self.min_rows:
                skipped[f"fewer than {self.min_rows} rows for {k}"] = c
        if not ok.any():
            raise TtsplanError(f"serving table must have at least {self.min_rows} usable rows per engine, "
                               f"got too few (skipped: {skipped}).")
        idx = np.flatnonzero(ok)
        x, kept, moe = _subset(x, idx), kept[idx], moe[idx]
        pk = [pk[i] for i in idx]
        rk = [(g,) + k for g, k in zip(kept["gpu"], pk)]
        self.rows_ = kept
        self.x_ = x
        opts = {"min_rows": self.min_rows, "correction": self.correction, "ridge": self.ridge,
                "trees": self.trees if self.correction else 0}
        pkeys = np.array([_key(k) for k in pk])
        rkeys = np.array([_key(k) for k in rk])
        dense = ~moe

        self.physics_: dict[tuple[str, ...], Efficiency] = {}
        self.physics_intervals_: dict[tuple[str, ...], dict[str, tuple[float, float]]] = {}
        self.physics_rows_: dict[tuple[str, ...], np.ndarray] = {}
        groups = sorted(set(pk))
        if dense.sum() >= self.min_rows and len({k for k, d in zip(pk, dense) if d}) > 1:
            groups.append((POOLED,))
        for key in groups:
            rows = np.flatnonzero(dense) if key == (POOLED,) else np.flatnonzero(pkeys == _key(key))
            theta, se = _fit_physics(_subset(x, rows))
            self.physics_[key] = Efficiency(*theta)
            self.physics_intervals_[key] = {p: (float(t - 1.96 * s), float(t + 1.96 * s))
                                            for p, t, s in zip(PARAMS, theta, se)}
            self.physics_rows_[key] = rows

        self.params_: dict[tuple[str, ...], Efficiency] = {}
        self.intervals_: dict[tuple[str, ...], dict[str, tuple[float, float]]] = {}
        self.corrections_: dict[tuple[str, ...], list[float]] = {}
        self.trees_: dict[tuple[str, ...], dict[str, Any] | None] = {}
        self.metrics_: list[dict[str, Any]] = []
        models = kept["model"].to_numpy()
        group_rows: dict[tuple[str, ...], np.ndarray] = {}
        for key in sorted(set(rk)):
            rows = np.flatnonzero(rkeys == _key(key))
            group_rows[key] = rows
            phys = key[1:]
            local = _fit_local(_subset(x, rows), opts) if len(rows) >= self.min_rows else None
            if local is None:
                self.params_[key] = self.physics_[phys]
                self.intervals_[key] = self.physics_intervals_[phys]
            else:
                self.params_[key] = Efficiency(*local["theta"])
                self.intervals_[key] = {p: (float(t - 1.96 * e), float(t + 1.96 * e))
                                        for p, t, e in zip(PARAMS, local["theta"], local["se"])}
            self.corrections_[key] = [float(v) for v in local["correction"]] if local is not None else []
            self.trees_[key] = pack_trees(local["forest"]) if local is not None else None
            self.metrics_.append({"gpu": key[0], "engine": key[1], **({"model": key[2]} if len(key) > 2 else {}),
                                  "moe": bool(moe[rows[0]]), "rows": len(rows),
                                  "models": ", ".join(sorted(set(models[rows]))), "residual": local is not None})
        # in-sample figures of exactly what is written (the deployed predictor, packed trees included)
        deployed = self.serving_calibration()
        for m, (key, rows) in zip(self.metrics_, group_rows.items()):
            xs = _subset(x, rows)
            full, _ = _predict_deployed(deployed, xs, key[0], key[1], models[rows])
            eff = self.params_[key]
            lt, lp = apply_ridge(xs, *predict_serving(eff, xs), self.corrections_[key])
            pt, pp = predict_serving(self.physics_[key[1:]], xs)
            nt, np_ = predict_serving(NAIVE, xs)
            m.update({"fit_mape_ttft": _mape(full[:, 0], xs["ttft"]), "fit_mape_tpot": _mape(full[:, 1], xs["tpot"]),
                      "linear_fit_mape_ttft": _mape(lt, xs["ttft"]), "linear_fit_mape_tpot": _mape(lp, xs["tpot"]),
                      "physics_fit_mape_ttft": _mape(pt, xs["ttft"]), "physics_fit_mape_tpot": _mape(pp, xs["tpot"]),
                      "naive_mape_ttft": _mape(nt, xs["ttft"]), "naive_mape_tpot": _mape(np_, xs["tpot"])})
        self.validation_: dict[str, Any] = {}
        if self.loo:
            self._validate(x, kept, pkeys, rkeys, models, dense, group_rows, opts, progress)
        if skipped:
            warnings.warn(f"calibration skipped rows: {skipped}", CalibrationWarning, stacklevel=2)
        return self

    def _validate(self, x: dict[str, np.ndarray], kept: pl.DataFrame, pkeys: np.ndarray, rkeys: np.ndarray,
                  models: np.ndarray, dense: np.ndarray, group_rows: dict[tuple[str, ...], np.ndarray], opts: dict[str, Any],
                  progress: Callable[[int, int], Any] | None) -> None:
        from joblib import Parallel, delayed  # joblib loads psutil: ~0.2 s at startup

        n = len(pkeys)
        schemes: dict[str, list[np.ndarray]] = {"loo": [np.array([i]) for i in range(n)]}
        for name, col in (("lomo", "model"), ("loeo", "engine"), ("logo", "gpu")):
            values = kept[col].to_numpy()
            levels = sorted(set(values))
            if len(levels) > 1:
                schemes[name] = [np.flatnonzero(values == v) for v in levels]
        tasks: list[tuple[str, list[np.ndarray]]] = []
        for name, folds in schemes.items():
            step = FOLD_CHUNK if name == "loo" else 1
            tasks += [(name, folds[a:a + step]) for a in range(0, len(folds), step)]
        total = sum(len(f) for _, f in tasks)
        preds = {name: np.full((n, 6), np.nan) for name in schemes}
        done = 0
        jobs = (delayed(_run_folds)(x, pkeys, rkeys, models, dense, folds, opts) for _, folds in tasks)
        for (name, folds), parts in zip(tasks, Parallel(n_jobs=self.n_jobs, return_as="generator")(jobs)):
            for f, part in zip(folds, parts):
                preds[name][np.sort(f)] = part
            done += len(folds)
            if progress is not None:
                progress(done, total)
        self.validation_ = {name: f"held out: {SCHEMES[name]}; {len(f)} folds, each refitted from the cold start"
                            for name, f in schemes.items()}
        self.validation_predictions_ = preds
        stage_cols = {"": (0, 1), "linear_": (2, 3), "physics_": (4, 5)}
        for m in self.metrics_:
            key = (m["gpu"], m["engine"]) + ((m["model"],) if "model" in m else ())
            rows = group_rows[key]
            for name in SCHEMES:
                for stage, (a, b) in stage_cols.items():
                    if name not in preds:
                        m[f"{stage}{name}_mape_ttft"] = m[f"{stage}{name}_mape_tpot"] = None
                        continue
                    m[f"{stage}{name}_mape_ttft"] = _none(_mape(preds[name][rows, a], x["ttft"][rows]))
                    m[f"{stage}{name}_mape_tpot"] = _none(_mape(preds[name][rows, b], x["tpot"][rows]))

    def _check(self) -> None:
        if not hasattr(self, "physics_"):
            from sklearn.exceptions import (
                NotFittedError,  # sklearn loads psutil: ~0.3 s at startup
            )

            raise NotFittedError("This Calibrator is not fitted yet: call fit(serving_rows) first.")

    def serving_calibration(self) -> ServingCalibration:
        """What :class:`ttsplan.fitting.cost.CostModel` reads from the calib.json this calibration writes."""
        self._check()
        return load_serving_calibration(self.to_dict())

    def efficiencies(self) -> dict[tuple[str, ...], Efficiency]:
        """{(gpu, engine): Efficiency} of the fitted groups (the engine's physics, shared across GPUs)."""
        self._check()
        out: dict[tuple[str, ...], Efficiency] = {}
        for key, eff in self.params_.items():
            out.setdefault((key[0], key[1]), eff)
        return out

    def overall(self, moe: bool = False) -> dict[str, float | None]:
        """Row-weighted MAPE over the dense groups (``moe=True``: over the MoE groups); None where a group has
        no figure (e.g. leave-one-engine-out with a single engine)."""
        self._check()
        groups = [m for m in self.metrics_ if m["moe"] == moe]
        if not groups:
            return {}
        n = np.array([m["rows"] for m in groups], float)
        out: dict[str, float | None] = {}
        for k in (k for k in groups[0] if "mape" in k):
            v = np.array([np.nan if m.get(k) is None else m[k] for m in groups], float)
            out[k] = None if np.isnan(v).any() else float(np.sum(n * v) / n.sum())
        return out

    def predict(self, data: pl.DataFrame | str | Path) -> pl.DataFrame:
        """Predicted TTFT/TPOT (ms) of the usable rows with the deployed calibration (as ``CostModel.serving``):
        the engine's physics (pooled physics for an engine never calibrated), times the residual stages on the
        GPU they were fitted on; beside the physics alone, the naive roofline and the measured values."""
        self._check()
        df = read_serving(data) if isinstance(data, (str, Path)) else validate_serving(data)
        x, kept, skipped = serving_arrays(df, include_moe=self.include_moe)
        if kept.height == 0:
            raise TtsplanError(f"serving table must have usable dense aggregated rows of catalog models and GPUs, "
                               f"got none (skipped: {skipped}).")
        deployed = self.serving_calibration()
        n = kept.height
        pt, pp, qt, qp = (np.empty(n) for _ in range(4))
        used, res = [""] * n, np.zeros(n, bool)
        by: dict[tuple[str, str], list[int]] = {}
        for i, k in enumerate(zip(kept["gpu"], kept["engine"])):
            by.setdefault(k, []).append(i)
        models = kept["model"].to_numpy()
        for (g, e), rows in by.items():
            idx = np.array(rows)
            xs = _subset(x, idx)
            full, keys = _predict_deployed(deployed, xs, g, e, models[idx])
            pt[idx], pp[idx] = full[:, 0], full[:, 1]
            for j, i in enumerate(idx):
                key, applied = keys[j]
                used[i], res[i] = _key(key or ("none",)), applied
            for m in sorted(set(models[idx])):
                sub = idx[models[idx] == m]
                qt[sub], qp[sub] = predict_serving(deployed.resolve(g, e, m)[0], _subset(x, sub))
        nt, np_ = predict_serving(NAIVE, x)
        return kept.select("gpu", "engine", "model", "dtype", "tp_size", "batch_size", "isl", "osl",
                           "silicon_ttft_ms", "silicon_tpot_ms").with_columns(
            pl.Series("pred_ttft_ms", pt * 1e3), pl.Series("pred_tpot_ms", pp * 1e3),
            pl.Series("physics_ttft_ms", qt * 1e3), pl.Series("physics_tpot_ms", qp * 1e3),
            pl.Series("naive_ttft_ms", nt * 1e3), pl.Series("naive_tpot_ms", np_ * 1e3),
            pl.Series("physics_key", used, dtype=pl.String), pl.Series("residual", res))

    def evaluate(self, data: pl.DataFrame | str | Path) -> dict[str, Any]:
        """Transfer MAPE on other rows: the usable rows of a calibrated engine whose model or GPU the calibration
        was fitted on, each predicted as ``CostModel.serving`` would (per GPU, engine, model and precision in
        ``groups``). Raises :class:`TtsplanError` (one message) when no row overlaps."""
        self._check()
        p = self.predict(data)
        engines = sorted({k[0] for k in self.physics_ if k != (POOLED,)})
        is_eng, overlap = _overlap(p, engines, sorted(set(self.rows_["model"])), sorted(set(self.rows_["gpu"])))
        skipped = {"engine not calibrated": int((~is_eng).sum()),
                   "neither model nor GPU in the calibration rows": int((is_eng & ~overlap).sum())}
        q = p.filter(overlap)
        seen = {(e, m) for e, m in zip(self.rows_["engine"], self.rows_["model"])}

        def figures(d: pl.DataFrame) -> dict[str, Any]:
            out: dict[str, Any] = {"rows": d.height}
            for what in ("ttft", "tpot"):
                obs = d[f"silicon_{what}_ms"].to_numpy()
                out[f"test_mape_{what}"] = _mape(d[f"pred_{what}_ms"].to_numpy(), obs)
                out[f"test_physics_mape_{what}"] = _mape(d[f"physics_{what}_ms"].to_numpy(), obs)
                out[f"test_naive_mape_{what}"] = _mape(d[f"naive_{what}_ms"].to_numpy(), obs)
            return out

        groups = []
        for (g, e, m, dt), d in sorted(q.group_by("gpu", "engine", "model", "dtype"), key=lambda t: t[0]):
            groups.append({"gpu": g, "engine": e, "model": m, "dtype": dt, "model_seen_on_engine": (e, m) in seen,
                           "residual": bool(d["residual"].any()), **figures(d)})
        return {**figures(q), "groups": groups, "skipped": {k: v for k, v in skipped.items() if v}}

    def summary(self) -> pl.DataFrame:
        """One row per (physics group, parameter): estimate and 95% interval (fixed parameters: the interval is
        the value), with the group's rows and row-weighted fit / leave-one-out MAPEs (%)."""
        self._check()
        rows = []
        for key, eff in self.physics_.items():
            ms = [m for m in self.metrics_ if (m["engine"],) + ((m["model"],) if "model" in m else ()) == key]
            avg = lambda k, ms=ms: _weighted(ms, k)
            for p in PARAMS:
                lo, hi = self.physics_intervals_[key][p]
                rows.append({"engine": key[0], "model": key[1] if len(key) > 1 else "(all)",
                             "gpus": ", ".join(sorted({m["gpu"] for m in ms})) or "(all)", "parameter": p,
                             "estimate": getattr(eff, p), "ci_low": lo, "ci_high": hi, "fixed": p in FIXED,
                             "rows": len(self.physics_rows_[key]), "fit_mape_ttft": avg("fit_mape_ttft"),
                             "fit_mape_tpot": avg("fit_mape_tpot"), "loo_mape_ttft": avg("loo_mape_ttft"),
                             "loo_mape_tpot": avg("loo_mape_tpot")})
        return pl.DataFrame(rows, infer_schema_length=None).sort("engine", "model", "parameter")

    def print_summary(self) -> None:
        print(self.summary())

    def to_dict(self) -> dict[str, Any]:
        """The calib.json content: ``physics`` per engine (+ pooled ``*``), ``entries`` per (GPU, engine) with the
        engine's ``params`` and that GPU's residual stages (``correction``, ``trees``) and ``metrics``."""
        self._check()
        physics = []
        for key, eff in self.physics_.items():
            rows = self.physics_rows_[key]
            physics.append({"engine": key[0], **({"model": key[1]} if len(key) > 1 else {}), "params": asdict(eff),
                            "intervals": {p: list(v) for p, v in self.physics_intervals_[key].items()},
                            "fixed": sorted(FIXED), "rows": len(rows),
                            "gpus": sorted(set(self.rows_["gpu"].to_numpy()[rows])),
                            "models": sorted(set(self.rows_["model"].to_numpy()[rows]))})
        entries = []
        for m in self.metrics_:
            key = (m["gpu"], m["engine"]) + ((m["model"],) if "model" in m else ())
            entries.append({"gpu": key[0], "engine": key[1], **({"model": key[2]} if len(key) > 2 else {}),
                            "params": asdict(self.params_[key]),
                            "intervals": {p: list(v) for p, v in self.intervals_[key].items()},
                            "correction": self.corrections_[key], "trees": self.trees_[key],
                            "residual_models": [s.strip() for s in m["models"].split(",")] if m["residual"] else [],
                            "metrics": m})
        return {"schema": SCHEMA, "group_by": self.group_by, "physics": physics, "entries": entries,
                "overall": self.overall(), "overall_moe": self.overall(moe=True),
                "validation": getattr(self, "validation_", {}), "skipped": self.skipped_}

    def report(self, test: dict[str, Any] | None = None) -> dict[str, Any]:
        """What ``ttsplan calibrate --format json`` prints: the dense-model MAPEs (:meth:`overall`) and their
        ``rows``, the ``validation`` folds, the MoE figures, per-group ``groups``, the shared ``physics`` and
        per-group ``params`` with 95% intervals (``ci95``), the ``skipped`` rows, and, given ``test`` (the
        output of :meth:`evaluate` on other rows), its ``test_*`` figures."""
        self._check()
        data = self.to_dict()
        dense = [m for m in self.metrics_ if not m["moe"]]
        report: dict[str, Any] = {
            **self.overall(),
            "rows": int(sum(m["rows"] for m in dense)),
            "validation": self.validation_,
            "moe": self.overall(moe=True) | {"rows": int(sum(m["rows"] for m in self.metrics_ if m["moe"]))},
            "groups": self.metrics_,
            "physics": [{k: v for k, v in p.items() if k != "intervals"} | {"ci95": p["intervals"]}
                        for p in data["physics"]],
            "params": [{"gpu": e["gpu"], "engine": e["engine"], **({"model": e["model"]} if "model" in e else {}),
                        "estimates": e["params"], "ci95": e["intervals"]} for e in data["entries"]],
            "skipped": self.skipped_,
        }
        if test is not None:
            report.update({"test_rows": test["rows"], **{k: v for k, v in test.items() if k.startswith("test_")},
                           "test_groups": test["groups"], "test_skipped": test["skipped"]})
        return report

    def save(self, path: str | Path) -> None:
        """Write the calibration JSON (read back by ``CostModel(calibration=path)``)."""
        write_atomic(Path(path), json.dumps(self.to_dict(), indent=1, default=_nan_none) + "\n")


def _overlap(p: pl.DataFrame, engines: list[str], models: list[str], gpus: list[str]) -> tuple[pl.Series, pl.Series]:
    """(engine calibrated, overlapping) masks of usable evaluation rows; raises when none overlaps."""
    is_eng = p["engine"].is_in(engines)
    overlap = is_eng & (p["model"].is_in(models) | p["gpu"].is_in(gpus))
    if not overlap.any():
        raise TtsplanError(
            f"evaluation rows must share an engine, and a model or a GPU, with the calibration rows, got none of "
            f"{p.height} usable rows (engines {sorted(set(p['engine']))}, models {sorted(set(p['model']))}, "
            f"GPUs {sorted(set(p['gpu']))}; calibration: engines {engines}, models {models}, GPUs {gpus}). "
            "Evaluate on rows of a calibrated engine and of a model or GPU it was fitted on.")
    return is_eng, overlap


def check_overlap(train: pl.DataFrame | str | Path, test: pl.DataFrame | str | Path, include_moe: bool = False) -> None:
    """Raise (one message) before any fitting when no usable row of ``test`` shares an engine, and a model or a GPU,
    with the usable rows of ``train`` (what :meth:`Calibrator.evaluate` would score)."""
    frames = []
    for data in (train, test):
        df = read_serving(data) if isinstance(data, (str, Path)) else validate_serving(data)
        _, kept, skipped = serving_arrays(df, include_moe=include_moe)
        if kept.height == 0:
            raise TtsplanError(f"serving table must have usable dense aggregated rows of catalog models and GPUs, "
                               f"got none in {data if isinstance(data, (str, Path)) else 'the table'} "
                               f"(skipped: {skipped}).")
        frames.append(kept)
    a, b = frames
    _overlap(b, sorted(set(a["engine"])), sorted(set(a["model"])), sorted(set(a["gpu"])))


def _weighted(groups: list[dict[str, Any]], key: str) -> float | None:
    """Row-weighted mean of ``key`` over metric groups (None when a group lacks it)."""
    if not groups or any(m.get(key) is None for m in groups):
        return None
    return float(sum(m["rows"] * m[key] for m in groups) / sum(m["rows"] for m in groups))


def _none(v: float) -> float | None:
    return None if not math.isfinite(v) else v


def _nan_none(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else str(v)
