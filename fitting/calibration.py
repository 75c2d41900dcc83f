"""Calibrate the roofline cost model on measured serving benchmarks (TTFT / TPOT per row).

Input rows follow ``../shared/data/serving/h100_silicon.csv`` (aiconfigurator silicon samples):
``backend, model_path, system, mode, isl, osl, batch_size, tp_size, silicon_ttft_ms,
silicon_tpot_ms`` (+ optional ``precision``, ``gemm_quant_mode``, ``pp_size``). Dense catalog models
in aggregated mode (``mode == "agg"``, ``pp_size`` 1) are used; disaggregated / unknown-model rows are
skipped and counted in ``skipped_``. MoE catalog models (Qwen3-235B-A22B, Qwen3-30B-A3B) are a
stretch goal: with ``include_moe=True`` they are fitted per model and reported apart (``overall(moe=True)``).

Each benchmark row runs ``batch_size`` concurrent requests of ``isl`` prompt and ``osl`` output tokens
on a ``tp_size``-GPU replica. The prediction is the step model of :mod:`ttsplan.fitting.cost`:

* decode step (context isl + osl/2, B = batch_size sequences):
  ``t_dec = max(F/(tp·peak·e_c), bytes/(tp·bw·e_m)) + t_fixed + 2·layers·(t_ar + msg/NVLink)``
* prefill of one request: the same formula over isl tokens (``t_pre``)
* ``TPOT = t_dec + γ·(B/osl)·t_pre``: in steady state B new requests are prefilled during one
  request's osl decode steps and stall the decode batch (chunked prefill mixes them in);
* ``TTFT = t_request + t_pre·(1 + β·(B−1)) + w·t_pre·ρ/(1−ρ) + α·osl·TPOT/B + queue``: a new request
  waits behind other requests' prefills. In the closed loop of B clients each request is prefilled once per
  lifetime, so prefill occupies the engine a fraction ``ρ = B·t_pre / (osl·t_dec + B·t_pre)`` of the time
  and an arriving request waits ``ρ/(1−ρ)·t_pre`` (M/D/1-like, ρ capped at 0.98); when the B sequences' KV
  exceeds ``κ·memory − weights`` the excess waits one request lifetime (Little's law:
  ``(B − cap)/cap · osl · TPOT``).

Eleven parameters per (GPU, engine): ``e_c, e_m, t_fixed_s, t_allreduce_s`` (the roofline, reused by
:class:`ttsplan.fitting.cost.CostModel`) and ``prefill_interference`` γ, ``prefill_queue`` β,
``kv_memory_fraction`` κ, ``t_request_s``, ``queue_scale`` q, ``admission_wait`` α, ``prefill_wait`` w
(benchmark shape). They are fitted jointly on log(pred/measured) of TTFT and TPOT
(``scipy.optimize.least_squares``, soft-L1 loss), with 95% intervals from the Jacobian.
"Uncalibrated" is the naive roofline: e_c = e_m = 1, no overheads.

Two empirical stages follow, each reported apart (``physics_*``, ``linear_*`` and the final MAPE): a ridge
log-linear correction of TTFT and TPOT, then extremely randomized trees on the remaining TTFT log error
(features: workload and physics predictions). Leave-one-out refits all three stages without each row.

>>> import itertools, polars as pl
>>> grid = list(itertools.product([1, 2], [8, 32, 128], [(1024, 128), (4096, 512)]))
>>> rows = pl.DataFrame([{"backend": "vllm", "model_path": "Qwen/Qwen3-8B", "system": "h100_sxm", "mode": "agg",
...     "isl": i, "osl": o, "batch_size": b, "tp_size": t, "silicon_ttft_ms": 30 + 0.05 * b * i / t,
...     "silicon_tpot_ms": 6 + 0.02 * b * (i + o) / 1000 / t} for t, b, (i, o) in grid])
>>> cal = Calibrator(loo=False).fit(rows)
>>> cal.summary().columns[:4]
['gpu', 'engine', 'model', 'parameter']
"""
from __future__ import annotations

import json
import math
import warnings
from dataclasses import asdict, astuple
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from joblib import Parallel, delayed
from sklearn.exceptions import NotFittedError

from ttsplan.features.errors import SchemaError, TtsplanError
from ttsplan.features.io import write_atomic
from ttsplan.fitting.cost import Efficiency
from ttsplan.fitting.specs import BYTES_PER_DTYPE, get_gpu_spec, get_model_spec

REQUIRED = ("backend", "model_path", "system", "mode", "isl", "osl", "batch_size", "tp_size",
            "silicon_ttft_ms", "silicon_tpot_ms")
PARAMS = ("e_c", "e_m", "t_fixed_s", "t_allreduce_s", "prefill_interference", "prefill_queue", "kv_memory_fraction",
          "t_request_s", "queue_scale", "admission_wait", "prefill_wait")
#: (initial value, lower bound, upper bound, scale) per parameter
_BOUNDS = {"e_c": (0.5, 0.02, 1.0), "e_m": (0.7, 0.02, 1.0), "t_fixed_s": (2e-3, 0.0, 0.2),
           "t_allreduce_s": (1e-5, 0.0, 1e-3), "prefill_interference": (0.5, 0.0, 10.0),
           "prefill_queue": (0.1, 0.0, 10.0), "kv_memory_fraction": (0.9, 0.3, 1.0),
           "t_request_s": (0.02, 0.0, 2.0), "queue_scale": (0.3, 0.0, 3.0), "admission_wait": (0.2, 0.0, 3.0),
           "prefill_wait": (0.5, 0.0, 20.0)}
NAIVE = Efficiency()
SCHEMA = "ttsplan.calibration/1"
IRLS_STEPS = 10
#: leave-one-out folds per parallel task
LOO_CHUNK = 16
#: rho cap of the prefill queue (keeps rho / (1 - rho) finite)
RHO_MAX = 0.98


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
    q = str(row.get("gemm_quant_mode") or row.get("precision") or "bf16").lower()
    return "fp8" if "fp8" in q else ("fp4" if "fp4" in q else "bf16")


def serving_arrays(df: pl.DataFrame, include_moe: bool = False
                   ) -> tuple[dict[str, np.ndarray], pl.DataFrame, dict[str, int]]:
    """Per-row physics inputs for the aggregated rows of catalog models (MoE only with ``include_moe``);
    returns (arrays, kept rows with ``gpu``, ``engine``, ``model``, ``moe`` columns, skip counts)."""
    skipped: dict[str, int] = {}
    keep, cols = [], {k: [] for k in ("P2", "A", "W", "Ws_dec", "Ws_pre", "kvb", "layers", "hidden", "tp", "B", "isl", "osl",
                                      "peak", "bw", "ic", "mem", "ttft", "tpot")}
    gpus, names, moe = [], [], []
    for i, row in enumerate(df.iter_rows(named=True)):
        reason = None
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
        dt = _row_dtype(row)
        keep.append(i)
        gpus.append(gpu.name)
        cols["P2"].append(2.0 * spec.matmul_params)
        cols["A"].append(float(spec.attn_flops_per_token_per_context))
        cols["W"].append(spec.params * BYTES_PER_DTYPE[dt])                     # resident
        per = BYTES_PER_DTYPE[dt] / spec.bytes_per_weight
        cols["Ws_dec"].append(float(spec.weight_bytes_read(float(row["batch_size"]))) * per)  # read per step
        cols["Ws_pre"].append(float(spec.weight_bytes_read(float(row["isl"]))) * per)
        names.append(spec.name)
        moe.append(bool(spec.experts))
        # TensorRT-LLM deployments of fp8 checkpoints quantize the KV cache to fp8 too; vLLM/SGLang keep bf16.
        kv_scale = 0.5 if (dt == "fp8" and str(row["backend"]).lower() == "trtllm") else 1.0
        cols["kvb"].append(spec.kv_bytes_per_token * kv_scale)
        cols["layers"].append(spec.layers)
        cols["hidden"].append(spec.hidden)
        cols["tp"].append(float(row["tp_size"]))
        cols["B"].append(float(row["batch_size"]))
        cols["isl"].append(float(row["isl"]))
        cols["osl"].append(float(row["osl"]))
        cols["peak"].append(gpu.flops(dt))
        cols["bw"].append(gpu.mem_bandwidth)
        cols["ic"].append(gpu.interconnect_bandwidth or gpu.mem_bandwidth)
        cols["mem"].append(gpu.memory_bytes)
        cols["ttft"].append(float(row["silicon_ttft_ms"]) / 1e3)
        cols["tpot"].append(float(row["silicon_tpot_ms"]) / 1e3)
    arrays = {k: np.asarray(v, dtype=float) for k, v in cols.items()}
    kept = df[keep].with_columns(pl.Series("gpu", gpus, dtype=pl.String), pl.Series("model", names, dtype=pl.String),
                                 pl.Series("moe", moe, dtype=pl.Boolean),
                                 pl.col("backend").cast(pl.String).str.to_lowercase().alias("engine"))
    return arrays, kept, skipped


def predict_serving(eff: Efficiency | np.ndarray, x: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Predicted (TTFT s, TPOT s) of benchmark rows (see the module docstring for the formulas)."""
    e = Efficiency(*eff) if not isinstance(eff, Efficiency) else eff
    tp, B, isl, osl = x["tp"], x["B"], x["isl"], x["osl"]
    ring = 2.0 * (tp - 1) / tp
    pc = 1.0 / (tp * x["peak"] * e.e_c)
    bw = 1.0 / (tp * x["bw"] * e.e_m)

    def allreduce(tokens: np.ndarray) -> np.ndarray:
        return np.where(tp > 1, 2 * x["layers"] * (e.t_allreduce_s + tokens * x["hidden"] * 2 * ring / x["ic"]), 0.0)

    ctx = isl + osl / 2.0
    t_dec = (np.maximum(B * (x["P2"] + x["A"] * ctx) * pc, (x["Ws_dec"] + B * ctx * x["kvb"]) * bw)
             + e.t_fixed_s + allreduce(B))
    t_pre = (np.maximum((isl * x["P2"] + x["A"] * isl * (isl + 1) / 2) * pc, (x["Ws_pre"] + isl * x["kvb"]) * bw)
             + e.t_fixed_s + allreduce(isl))
    tpot = t_dec + e.prefill_interference * (B / osl) * t_pre
    cap = np.maximum((e.kv_memory_fraction * x["mem"] * tp - x["W"]) / (x["kvb"] * ctx), 1.0)
    life = osl * tpot
    queue = e.queue_scale * np.maximum(B - cap, 0.0) / cap * life
    # The engine alternates between decode steps and prefills: in a closed loop of B clients each request is
    # prefilled once per lifetime, so the prefill "server" is busy a fraction rho of the time and an arriving
    # request waits behind the prefills already queued (M/D/1-like wait rho / (1 - rho) · t_pre).
    rho = np.minimum(B * t_pre / (osl * t_dec + B * t_pre), RHO_MAX)
    ttft = (e.t_request_s + t_pre * (1.0 + e.prefill_queue * (B - 1)) + e.prefill_wait * t_pre * rho / (1.0 - rho)
            + e.admission_wait * life / B + queue)
    return ttft, tpot


def _mape(pred: np.ndarray, obs: np.ndarray) -> float:
    return float(np.mean(np.abs(pred - obs) / obs) * 100.0) if len(obs) else float("nan")


def _fit_group(x: dict[str, np.ndarray], starts: list[np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    from scipy.optimize import least_squares

    x0 = np.array([_BOUNDS[p][0] for p in PARAMS])
    lo = np.array([_BOUNDS[p][1] for p in PARAMS])
    hi = np.array([_BOUNDS[p][2] for p in PARAMS])
    scale = np.maximum(np.abs(x0), 1e-6)

    def resid(z: np.ndarray) -> np.ndarray:
        ttft, tpot = predict_serving(z * scale, x)
        return np.concatenate([np.log(ttft / x["ttft"]), np.log(tpot / x["tpot"])])

    best = None
    for start in starts or (x0, np.array([0.3, 0.5, 5e-3, 2e-5, 1.0, 0.05, 0.8, 0.1, 0.1, 0.5, 2.0])):
        r = least_squares(resid, np.clip(start, lo, hi) / scale, bounds=(lo / scale, hi / scale), loss="soft_l1", f_scale=0.1,
                          x_scale=1.0, max_nfev=400)
        if best is None or r.cost < best.cost:
            best = r
    theta = best.x * scale
    J = best.jac / scale  # d resid / d theta
    m, p = J.shape
    s2 = float(np.sum(best.fun ** 2) / max(m - p, 1))
    cov = np.linalg.pinv(J.T @ J) * s2
    se = np.sqrt(np.clip(np.diag(cov), 0, None))
    return theta, se


def _design(x: dict[str, np.ndarray]) -> np.ndarray:
    """Features of the log-linear residual correction (shape of the benchmark the physics misses)."""
    lb, li, lo, lt = (np.log(x[k]) for k in ("B", "isl", "osl", "tp"))
    lp = np.log(x["P2"])
    return np.column_stack([np.ones_like(lb), lb, li, lo, lt, lb * lb, lb * lt, li * lb, lo * lb, lp, lp * lb, lp * lo,
                            lp * li, lp * lt, lo * lo, lo * li])


def _fit_correction(x: dict[str, np.ndarray], theta: np.ndarray, ridge: float) -> np.ndarray:
    """Ridge coefficients (2 × features) of log(measured / physics) for TTFT and TPOT."""
    Z = _design(x)
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


def _apply_correction(x: dict[str, np.ndarray], theta: np.ndarray, corr: np.ndarray | None
                      ) -> tuple[np.ndarray, np.ndarray]:
    t, p = predict_serving(theta, x)
    if corr is None or len(corr) == 0:
        return t, p
    Z = _design(x)
    k = Z.shape[1]
    W = corr[: 2 * k].reshape(k, 2)
    mu, sd = corr[2 * k: 3 * k - 1], corr[3 * k - 1:]
    Zs = np.column_stack([Z[:, 0], (Z[:, 1:] - mu) / sd])
    adj = Zs @ W
    return t * np.exp(adj[:, 0]), p * np.exp(adj[:, 1])


def _tree_features(x: dict[str, np.ndarray], theta: np.ndarray) -> np.ndarray:
    """Features of the tree residual stage: the workload (log batch, isl, osl, tp, model size), the fitted
    physics (log TTFT, log TPOT, log request lifetime / batch) and the KV occupancy and prefill tokens per GPU."""
    e = Efficiency(*theta)
    t, p = predict_serving(e, x)
    lb, li, lo, lt = (np.log(x[k]) for k in ("B", "isl", "osl", "tp"))
    free = np.maximum(e.kv_memory_fraction * x["mem"] * x["tp"] - x["W"], 1e9)
    occupancy = x["B"] * (x["isl"] + x["osl"] / 2.0) * x["kvb"] / free
    return np.column_stack([lb, li, lo, lt, np.log(x["P2"]), np.log(t), np.log(p), lo + np.log(p) - lb,
                            np.log(occupancy), lb + li - lt])


def _fit_trees(x: dict[str, np.ndarray], theta: np.ndarray, corr: np.ndarray, n_trees: int) -> list[Any]:
    """Extremely randomized trees on log(measured / physics·ridge) of TTFT ([] when ``n_trees`` is 0).

    TPOT is left to physics + ridge (it meets the 10% target without trees, and the trees cost time)."""
    if n_trees <= 0:
        return []
    from sklearn.ensemble import ExtraTreesRegressor

    t, _ = _apply_correction(x, theta, corr)
    return [ExtraTreesRegressor(n_estimators=n_trees, min_samples_leaf=1, random_state=0).fit(
        _tree_features(x, theta), np.log(x["ttft"] / t))]


def _predict_full(x: dict[str, np.ndarray], theta: np.ndarray, corr: np.ndarray | None, trees: list[Any] | None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Physics × ridge correction × tree residual (each stage skipped when absent)."""
    t, p = _apply_correction(x, theta, corr)
    if trees:
        Z = _tree_features(x, theta)
        t = t * np.exp(trees[0].predict(Z))
    return t, p


def _subset(x: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[idx] for k, v in x.items()}


def _loo_folds(xs: dict[str, np.ndarray], rows: list[int], theta: np.ndarray, correction: bool, ridge: float,
               n_trees: int) -> np.ndarray:
    """Leave-one-out predictions for ``rows``: everything (physics, ridge, trees) refitted without the row.
    Returns one line per row: full TTFT, TPOT, physics·ridge TTFT, TPOT, physics TTFT, TPOT."""
    n = len(xs["B"])
    out = np.empty((len(rows), 6))
    for j, i in enumerate(rows):
        mask = np.ones(n, bool)
        mask[i] = False
        xm, xi = _subset(xs, mask), _subset(xs, np.array([i]))
        th, _ = _fit_group(xm, [theta])
        ci = _fit_correction(xm, th, ridge) if correction else np.array([])
        tr = _fit_trees(xm, th, ci, n_trees)
        out[j] = np.concatenate([*_predict_full(xi, th, ci, tr), *_apply_correction(xi, th, ci),
                                 *predict_serving(th, xi)])
    return out


class Calibrator:
    """Fit the roofline parameters per (GPU, engine) from serving benchmark rows (scikit-learn style).

    ``loo``: also compute leave-one-out MAPE (the whole fit — physics, ridge, trees — is redone without
    each row). ``correction``: after the physical parameters, fit a ridge log-linear correction of TTFT
    and TPOT on (log batch, log isl, log osl, log tp, log model size and their products) — the benchmark
    effects the step model does not describe; ``ridge`` is its penalty. ``trees``: then fit
    ``trees`` extremely randomized trees on the remaining TTFT log error (features: workload and
    physics predictions, see :func:`_tree_features`); 0 turns this stage off (it needs ``correction``).
    ``n_jobs``: processes for the leave-one-out refits.
    ``group_by``: ``"engine"`` (one fit per (GPU, engine), the default) or ``"model"`` (per (GPU, engine,
    model)). Learned: ``params_`` ({key: :class:`Efficiency`}), ``intervals_``, ``corrections_``,
    ``trees_`` (in memory only: ``save`` writes parameters and the ridge correction), ``metrics_`` (list
    of dicts with fit / LOO MAPE of the full model, of physics + ridge (``linear_*``) and of the physics
    alone (``physics_*``)), ``skipped_``.
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

    def fit(self, data: pl.DataFrame | str | Path, progress: Any = None) -> Calibrator:
        """Fit every group; ``progress(done, total)`` is called after each leave-one-out refit."""
        problems = []
        if not isinstance(self.min_rows, int) or self.min_rows < len(PARAMS) + 1:
            problems.append(f"min_rows must be an integer >= {len(PARAMS) + 1}, got {self.min_rows!r}")
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
        df = read_serving(data) if isinstance(data, (str, Path)) else validate_serving(data)
        x, kept, skipped = serving_arrays(df, include_moe=self.include_moe)
        self.skipped_ = skipped
        if kept.height == 0:
            raise TtsplanError("serving table must have dense-model aggregated rows for catalog models and GPUs, "
                               f"got none usable (skipped: {skipped}).")
        self.params_: dict[tuple[str, ...], Efficiency] = {}
        self.intervals_: dict[tuple[str, ...], dict[str, tuple[float, float]]] = {}
        self.corrections_: dict[tuple[str, ...], list[float]] = {}
        self.trees_: dict[tuple[str, ...], list[Any]] = {}
        self.metrics_: list[dict[str, Any]] = []
        n_trees = self.trees if self.correction else 0
        gpu = kept["gpu"].to_numpy()
        eng = kept["engine"].to_numpy()
        models = kept["model"].to_numpy()
        # MoE models (stretch goal) are always fitted and reported per model, apart from the dense fits.
        keys = [(g, e, m) if (self.group_by == "model" or is_moe) else (g, e)
                for g, e, m, is_moe in zip(gpu, eng, models, kept["moe"].to_numpy())]
        groups = [(key, np.flatnonzero([k == key for k in keys])) for key in sorted(set(keys))]
        total = sum(len(idx) for _, idx in groups if len(idx) >= self.min_rows) if self.loo else 0
        done = 0
        for key, idx in groups:
            if len(idx) < self.min_rows:
                skipped[f"fewer than {self.min_rows} rows for {key}"] = len(idx)
                continue
            xs = _subset(x, idx)
            theta, se = _fit_group(xs)
            corr = _fit_correction(xs, theta, self.ridge) if self.correction else np.array([])
            trees = _fit_trees(xs, theta, corr, n_trees)
            self.params_[key] = Efficiency(*theta)
            self.intervals_[key] = {p: (float(t - 1.96 * s), float(t + 1.96 * s)) for p, t, s in zip(PARAMS, theta, se)}
            self.corrections_[key] = [float(v) for v in corr]
            self.trees_[key] = trees
            ttft, tpot = _predict_full(xs, theta, corr, trees)
            lin_t, lin_p = _apply_correction(xs, theta, corr)
            pt, pp = predict_serving(theta, xs)
            nt, np_ = predict_serving(NAIVE, xs)
            row = {"gpu": key[0], "engine": key[1], **({"model": key[2]} if len(key) > 2 else {}),
                   "moe": bool(kept["moe"][int(idx[0])]),
                   "rows": int(len(idx)), "models": ", ".join(sorted(set(models[idx]))),
                   "fit_mape_ttft": _mape(ttft, xs["ttft"]), "fit_mape_tpot": _mape(tpot, xs["tpot"]),
                   "linear_fit_mape_ttft": _mape(lin_t, xs["ttft"]), "linear_fit_mape_tpot": _mape(lin_p, xs["tpot"]),
                   "physics_fit_mape_ttft": _mape(pt, xs["ttft"]), "physics_fit_mape_tpot": _mape(pp, xs["tpot"]),
                   "naive_mape_ttft": _mape(nt, xs["ttft"]), "naive_mape_tpot": _mape(np_, xs["tpot"])}
            if self.loo:
                n = len(idx)
                chunks = [list(range(a, min(a + LOO_CHUNK, n))) for a in range(0, n, LOO_CHUNK)]
                res = np.empty((n, 6))
                jobs = (delayed(_loo_folds)(xs, rows, theta, self.correction, self.ridge, n_trees) for rows in chunks)
                for rows, part in zip(chunks, Parallel(n_jobs=self.n_jobs, return_as="generator")(jobs)):
                    res[rows] = part
                    done += len(rows)
                    if progress is not None:
                        progress(done, total)
                lt, lp, rt, rp, qt, qp = res.T
                row["loo_mape_ttft"] = _mape(lt, xs["ttft"])
                row["loo_mape_tpot"] = _mape(lp, xs["tpot"])
                row["linear_loo_mape_ttft"] = _mape(rt, xs["ttft"])
                row["linear_loo_mape_tpot"] = _mape(rp, xs["tpot"])
                row["physics_loo_mape_ttft"] = _mape(qt, xs["ttft"])
                row["physics_loo_mape_tpot"] = _mape(qp, xs["tpot"])
            self.metrics_.append(row)
        if not self.params_:
            raise TtsplanError(f"serving table must have at least {self.min_rows} usable rows per group, "
                               f"got too few (skipped: {skipped}).")
        if skipped:
            warnings.warn(f"calibration skipped rows: {skipped}", CalibrationWarning, stacklevel=2)
        return self

    def _check(self) -> None:
        if not hasattr(self, "params_"):
            raise NotFittedError("This Calibrator is not fitted yet: call fit(serving_rows) first.")

    def efficiencies(self) -> dict[tuple[str, str], Efficiency]:
        """{(gpu, engine): Efficiency} for :class:`ttsplan.fitting.cost.CostModel` (first model per engine)."""
        self._check()
        out: dict[tuple[str, str], Efficiency] = {}
        for key, eff in self.params_.items():
            out.setdefault((key[0], key[1]), eff)
        return out

    def overall(self, moe: bool = False) -> dict[str, float]:
        """Row-weighted MAPE over the dense groups (``moe=True``: over the MoE groups)."""
        self._check()
        groups = [m for m in self.metrics_ if m["moe"] == moe]
        if not groups:
            return {}
        n = np.array([m["rows"] for m in groups], float)
        keys = [k for k in groups[0] if "mape" in k]
        return {k: float(np.sum(n * np.array([m[k] for m in groups])) / n.sum()) for k in keys}

    def _lookup(self, g: str, e: str, model: str) -> tuple[str, ...] | None:
        for key in ((g, e, model), (g, e)):
            if key in self.params_:
                return key
        for key in self.params_:  # another GPU, same engine: efficiencies transfer through the GpuSpec
            if key[1] == e and (len(key) == 2 or key[2] == model):
                return key
        for key in self.params_:
            if key[1] == e:
                return key
        return None

    def predict(self, data: pl.DataFrame | str | Path) -> pl.DataFrame:
        """Predicted TTFT/TPOT (ms) for the usable rows, beside the measured values."""
        self._check()
        df = read_serving(data) if isinstance(data, (str, Path)) else validate_serving(data)
        x, kept, skipped = serving_arrays(df, include_moe=self.include_moe)
        if kept.height == 0:
            raise TtsplanError(f"serving table must have usable dense aggregated rows, got none (skipped: {skipped}).")
        pt, pp = np.empty(kept.height), np.empty(kept.height)
        missing = set()
        rows_of: dict[tuple[str, ...], list[int]] = {}
        for i, (g, e, m) in enumerate(zip(kept["gpu"], kept["engine"], kept["model"])):
            key = self._lookup(g, e, m)
            if key is None:
                missing.add(e)
                key = next(iter(self.params_))
            rows_of.setdefault(key, []).append(i)
        for key, rows in rows_of.items():
            idx = np.array(rows)
            pt[idx], pp[idx] = _predict_full(_subset(x, idx), np.array(astuple(self.params_[key])),
                                             np.array(self.corrections_[key]), getattr(self, "trees_", {}).get(key))
        if missing:
            warnings.warn(f"no calibration for engines {sorted(missing)}: used another engine's parameters",
                          CalibrationWarning, stacklevel=2)
        nt, np_ = predict_serving(NAIVE, x)
        return kept.select("gpu", "engine", "model_path", "tp_size", "batch_size", "isl", "osl",
                           "silicon_ttft_ms", "silicon_tpot_ms").with_columns(
            pl.Series("pred_ttft_ms", pt * 1e3), pl.Series("pred_tpot_ms", pp * 1e3),
            pl.Series("naive_ttft_ms", nt * 1e3), pl.Series("naive_tpot_ms", np_ * 1e3))

    def evaluate(self, data: pl.DataFrame | str | Path) -> dict[str, Any]:
        """MAPE on other rows using this calibration; a GPU without its own entry borrows the engine's
        parameters (efficiencies are fractions of the spec peak, so they transfer through the GpuSpec)."""
        p = self.predict(data)

        def mape(a: str, b: str) -> float:
            return _mape(p[a].to_numpy(), p[b].to_numpy())

        return {"rows": p.height, "test_mape_ttft": mape("pred_ttft_ms", "silicon_ttft_ms"),
                "test_mape_tpot": mape("pred_tpot_ms", "silicon_tpot_ms"),
                "test_naive_mape_ttft": mape("naive_ttft_ms", "silicon_ttft_ms"),
                "test_naive_mape_tpot": mape("naive_tpot_ms", "silicon_tpot_ms")}

    def summary(self) -> pl.DataFrame:
        """One row per (group, parameter): estimate and 95% interval, with the group's MAPEs (%)."""
        self._check()
        rows = []
        for m in self.metrics_:
            key = (m["gpu"], m["engine"]) + ((m["model"],) if "model" in m else ())
            eff = asdict(self.params_[key])
            for p in PARAMS:
                lo, hi = self.intervals_[key][p]
                rows.append({"gpu": m["gpu"], "engine": m["engine"], "model": m.get("model", m["models"]),
                             "parameter": p, "estimate": eff[p], "ci_low": lo, "ci_high": hi, "rows": m["rows"],
                             "loo_mape_ttft": m.get("loo_mape_ttft"), "loo_mape_tpot": m.get("loo_mape_tpot"),
                             "naive_mape_ttft": m["naive_mape_ttft"], "naive_mape_tpot": m["naive_mape_tpot"]})
        return pl.DataFrame(rows).sort("gpu", "engine", "model", "parameter")

    def print_summary(self) -> None:
        print(self.summary())

    def to_dict(self) -> dict[str, Any]:
        self._check()
        entries = []
        for m in self.metrics_:
            key = (m["gpu"], m["engine"]) + ((m["model"],) if "model" in m else ())
            entries.append({"gpu": key[0], "engine": key[1], **({"model": key[2]} if len(key) > 2 else {}),
                            "params": asdict(self.params_[key]),
                            "intervals": {p: list(v) for p, v in self.intervals_[key].items()},
                            "correction": self.corrections_[key], "metrics": m})
        return {"schema": SCHEMA, "group_by": self.group_by, "entries": entries, "overall": self.overall(),
                "overall_moe": self.overall(moe=True),
                "skipped": self.skipped_}

    def save(self, path: str | Path) -> None:
        """Write the calibration JSON (read back by ``CostModel(calibration=path)``)."""
        write_atomic(Path(path), json.dumps(self.to_dict(), indent=2, default=_nan_none) + "\n")


def _nan_none(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else str(v)
