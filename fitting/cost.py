"""Cost of test-time-scaling workloads: Kinetics eFLOPs and a calibrated roofline step model.

Two views of one workload (a model, a GPU, a strategy, N samples per prompt, prompt and output
lengths), both vectorized over numpy arrays:

* :func:`kinetics_eflops` — the memory-aware cost of Kinetics (DESIGN §7)::

      C = 2·N·P·L_out + r·N·D·(2·L_in·L_out + L_out²) + I·D·(2·L_in·L_out + N·L_out²)

  with P the parameters multiplied per token (:attr:`ModelSpec.matmul_params`), D = 2·H_kv·d_head·layers,
  r = H_q/H_kv and I = peak FLOP/s ÷ bandwidth of the GPU (or given).
* :class:`CostModel` — seconds and dollars from a roofline *step* model: prefill once per shared prompt
  (prefix caching) or N times; each decode step costs
  ``max(FLOPs/(peak·e_c), bytes/(bandwidth·e_m)) + t_fixed (+ tensor-parallel all-reduce)`` with bytes =
  weights read once per step for the whole batch + the KV of every live sequence; the sum over steps
  is taken in closed form (:func:`sum_max_linear`); samples stop early following a length
  distribution; reward strategies add a verifier/PRM scoring pass (a prefill over the cached
  context); beam search adds a KV fork (copy-on-write) per step. ``e_c, e_m, t_fixed`` come from a
  calibration (:mod:`ttsplan.fitting.calibration`); without one they are the naive roofline (1, 1, 0).
  :meth:`CostModel.serving` predicts closed-loop serving benchmarks (TTFT, TPOT) with every stage of the
  calibration, exactly as ``ttsplan calibrate`` validates it.

Planner API::

    cm = CostModel("Qwen3-8B", "H100", calibration=None, usd_per_hour=None, engine="vllm")
    out = cm.price(n=np.array([1, 8, 64]), prompt_tokens=300, output_tokens=2000, strategy="majority")
    out["latency_s"], out["cost_usd"], out["eflops"]     # numpy arrays, broadcast over the inputs

``price`` keys (all per prompt unless said): ``tokens`` (prompt tokens processed + generated tokens),
``generated_tokens``, ``verifier_tokens``, ``flops``, ``bytes``, ``eflops`` (Kinetics with the GPU's I,
plus verifier FLOPs), ``kv_cache_bytes`` (peak KV of one prompt's samples), ``prefill_s``, ``decode_s``,
``verify_s``, ``latency_s`` (wall time of the whole batch of ``batch_prompts`` prompts; = per-prompt
latency when ``batch_prompts=1``), ``cost_usd`` (GPU time × $/hour ÷ batch_prompts), ``waves``
(sequential rounds needed when the batch's KV does not fit), ``max_concurrency``.

>>> import numpy as np
>>> cm = CostModel("Qwen3-0.6B", "B200")
>>> round(float(kinetics_eflops(cm.model, 150, 4096, 1, intensity=562.5)["eflops"]) / 4.5e15, 3)
0.131
>>> out = cm.price(n=np.array([1, 16]), prompt_tokens=150, output_tokens=1000)
>>> bool(out["latency_s"][1] < 16 * out["latency_s"][0])
True
"""
from __future__ import annotations

import base64
import json
import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ttsplan.features.defaults import DEFAULT_GPU, DEFAULT_SERVING_ENGINE
from ttsplan.features.errors import TtsplanError, did_you_mean
from ttsplan.fitting.specs import GpuSpec, ModelSpec, get_gpu_spec, get_model_spec
from ttsplan.fitting.strategy_registry import STRATEGIES, resolve_strategy_name

#: relative output-length multipliers (mean 1) of K equal-mass groups, per named distribution.
LENGTH_DISTRIBUTIONS: dict[str, np.ndarray] = {
    "fixed": np.array([1.0]),
    # uniform on [0.5 L, 1.5 L]
    "uniform": 0.5 + (np.arange(8) + 0.5) / 8,
    # exponential with mean L (reasoning traces are right-skewed), mid-quantile of 8 groups, renormalized
    "exponential": (lambda q: q / q.mean())(-np.log1p(-(np.arange(8) + 0.5) / 8)),
}

KV_BLOCK_TOKENS = 16
MEMORY_UTILIZATION = 0.9
#: format of the calib.json written by `ttsplan calibrate` (physics per engine, residual stages per GPU)
CALIBRATION_SCHEMA = "ttsplan.calibration/2"


@dataclass(frozen=True)
class Efficiency:
    """Calibrated roofline parameters of one engine (fractions of the GPU spec, so shared across GPUs).

    ``e_c`` fraction of peak FLOP/s reached, ``e_m`` fraction of peak bandwidth, ``t_fixed_s``
    per-step overhead (kernel launches, scheduling), ``t_request_s`` per-request overhead before the first
    token (HTTP, tokenization, scheduling; added once to latency), ``t_allreduce_s`` latency of one all-reduce
    (two per layer under tensor parallelism). The rest (``prefill_interference``, ``prefill_queue``,
    ``kv_memory_fraction``, ``queue_scale``, ``admission_wait``, ``prefill_wait``) shape the serving-benchmark
    predictions (:func:`predict_serving`, :meth:`CostModel.serving`); of those, :meth:`CostModel.price` uses only
    ``kv_memory_fraction`` (KV capacity).
    """

    e_c: float = 1.0
    e_m: float = 1.0
    t_fixed_s: float = 0.0
    t_allreduce_s: float = 0.0
    prefill_interference: float = 0.0
    prefill_queue: float = 0.0
    kv_memory_fraction: float = MEMORY_UTILIZATION
    t_request_s: float = 0.0
    queue_scale: float = 1.0
    admission_wait: float = 0.0
    prefill_wait: float = 0.0

    def __post_init__(self) -> None:
        if not (0 < self.e_c <= 5 and 0 < self.e_m <= 5):
            raise TtsplanError(f"efficiencies e_c, e_m must be in (0, 5], got {self.e_c}, {self.e_m}. "
                               "Re-run `ttsplan calibrate`.")
        if min(self.t_fixed_s, self.t_allreduce_s) < 0:
            raise TtsplanError(f"t_fixed_s and t_allreduce_s must be >= 0, got {self.t_fixed_s}, "
                               f"{self.t_allreduce_s}.")


def resolve_strategy(strategy: str) -> str:
    """The priced strategy a name or alias stands for (:mod:`ttsplan.fitting.strategy_registry`)."""
    return resolve_strategy_name(strategy, STRATEGIES)


def _arr(x: Any, name: str, minimum: float, integer: bool = False) -> np.ndarray:
    try:
        a = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise TtsplanError(f"{name} must be numeric, got {x!r}.") from None
    bad = ~np.isfinite(a) | (a < minimum)
    if integer:
        bad |= a != np.round(a)
    if bad.any():
        raise TtsplanError(f"{name} must be {'an integer ' if integer else ''}>= {minimum:g}, got "
                           f"{a[bad].ravel()[0]:g}.")
    return a


def _sum_linear(a: np.ndarray, b: np.ndarray, t0: np.ndarray, t1: np.ndarray) -> np.ndarray:
    """Σ_{t=t0}^{t1-1} (a + b·t) for integer t0 <= t1 (0 when empty)."""
    n = np.maximum(t1 - t0, 0.0)
    return n * a + b * n * (t0 + t0 + n - 1) / 2.0


def sum_max_linear(a: Any, b: Any, c: Any, d: Any, t0: Any, t1: Any) -> np.ndarray:
    """Closed form of Σ_{t=t0}^{t1-1} max(a + b·t, c + d·t) over integers (vectorized).

    max(g, h) = h + relu(g − h); g − h = e + f·t is positive on a half-line, so the relu sum is a
    linear sum over a sub-range.

    >>> float(sum_max_linear(0, 1, 5, 0, 0, 10))   # Σ max(t, 5), t = 0..9
    60.0
    """
    a, b, c, d, t0, t1 = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (a, b, c, d, t0, t1)))
    e, f = a - c, b - d
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        cross = np.ceil(-e / f)
    lo = np.where(f > 0, np.clip(cross, t0, t1), np.where(f < 0, t0, np.where(e > 0, t0, t1)))
    hi = np.where(f > 0, t1, np.where(f < 0, np.clip(cross, t0, t1), t1))
    lo = np.nan_to_num(lo, nan=0.0)
    hi = np.nan_to_num(hi, nan=0.0)
    return _sum_linear(c, d, t0, t1) + _sum_linear(e, f, lo, np.maximum(hi, lo))


def kinetics_eflops(model: ModelSpec | str, prompt_tokens: Any, output_tokens: Any, n: Any = 1,
                    intensity: float | None = None, gpu: GpuSpec | str = "B200",
                    dtype: str = "fp8") -> dict[str, np.ndarray]:
    """Kinetics memory-aware cost (eFLOPs) of N samples of L_out tokens after an L_in-token prompt.

    Returns the three terms (``param_flops``, ``attention_flops``, ``attention_memory_eflops``), their
    sum ``eflops`` and ``attention_to_param`` (the ratio the paper plots against L_out).
    ``intensity`` defaults to the GPU's peak FLOP/s ÷ bandwidth for ``dtype``.
    """
    spec = get_model_spec(model)
    L_in = _arr(prompt_tokens, "prompt_tokens", 0)
    L_out = _arr(output_tokens, "output_tokens", 0)
    N = _arr(n, "n", 1)
    I = get_gpu_spec(gpu).intensity(dtype) if intensity is None else float(intensity)
    if not (I > 0 and math.isfinite(I)):
        raise TtsplanError(f"intensity must be > 0, got {intensity!r}.")
    P = float(spec.matmul_params)
    D = float(spec.kv_elements_per_token)
    r = spec.q_heads / spec.kv_heads
    param = 2.0 * N * P * L_out
    attn = r * N * D * (2.0 * L_in * L_out + L_out ** 2)
    mem = I * D * (2.0 * L_in * L_out + N * L_out ** 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(param > 0, (attn + mem) / np.where(param > 0, param, 1.0), np.nan)
    return {"param_flops": param, "attention_flops": attn, "attention_memory_eflops": mem,
            "eflops": param + attn + mem, "attention_to_param": ratio, "intensity": np.asarray(I)}


def load_calibration(source: Any) -> dict[tuple[str, ...], Efficiency]:
    """Physical parameters keyed by (gpu, engine) and (gpu, engine, model) from a Calibrator, dict or calib.json
    path (the ``entries``; :func:`load_serving_calibration` also reads the per-engine physics and residuals)."""
    if source is None:
        return {}
    if hasattr(source, "efficiencies"):
        return dict(source.efficiencies())
    data = _read_calibration(source)
    out: dict[tuple[str, ...], Efficiency] = {}
    for e in data["entries"]:
        try:
            key = (get_gpu_spec(e["gpu"]).name, str(e["engine"]).lower())
            eff = _efficiency(e["params"])
            if e.get("model"):
                out[key + (get_model_spec(e["model"]).name,)] = eff
            out.setdefault(key, eff)
        except (KeyError, TypeError, AttributeError, ValueError):
            raise TtsplanError(f"calibration entries must have gpu, engine and params, got {e!r}.") from None
    return out


# -- serving-benchmark predictor (shared by ttsplan.fitting.calibration and CostModel.serving) ---------
#: rho cap of the prefill queue (keeps rho / (1 - rho) finite)
RHO_MAX = 0.98
#: bytes per weight / KV element of the serving precisions
_SERVING_BYTES = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0, "fp4": 0.5, "int4": 0.5}


def serving_dtype(precision: Any) -> str:
    """``"fp8"``, ``"fp4"`` or ``"bf16"`` from a precision / quantization label (``fp8_block``, ``nvfp4``, None)."""
    q = str(precision or "bf16").lower()
    return "fp8" if "fp8" in q else ("fp4" if "fp4" in q else "bf16")


def serving_kv_scale(dtype: str, engine: str) -> float:
    """KV-cache bytes relative to bf16: TensorRT-LLM deployments of fp8 / fp4 (ModelOpt) checkpoints carry an
    fp8 KV cache; vLLM and SGLang keep the model's bf16 KV cache unless told otherwise."""
    return 0.5 if (str(engine).lower() == "trtllm" and dtype in ("fp8", "fp4")) else 1.0


def serving_inputs(model: ModelSpec | str, gpu: GpuSpec | str, dtype: str, engine: str, tp: Any, batch_size: Any,
                   isl: Any, osl: Any) -> dict[str, np.ndarray]:
    """Physics inputs of closed-loop serving benchmarks (arrays broadcast over ``tp, batch_size, isl, osl``):
    per-GPU constants come from the :class:`GpuSpec` (peak FLOP/s of ``dtype``, bandwidth, interconnect, memory),
    per-model ones from the :class:`ModelSpec`."""
    spec, g = get_model_spec(model), get_gpu_spec(gpu)
    dt = serving_dtype(dtype)
    tp_, B, i, o = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (tp, batch_size, isl, osl)))
    per = _SERVING_BYTES[dt] / spec.bytes_per_weight
    one = np.ones_like(B)
    return {"P2": one * 2.0 * spec.matmul_params, "A": one * float(spec.attn_flops_per_token_per_context),
            "W": one * spec.params * _SERVING_BYTES[dt],                                   # resident weights
            "Ws_dec": np.asarray(spec.weight_bytes_read(B), float) * per * one,            # read per decode step
            "Ws_pre": np.asarray(spec.weight_bytes_read(i), float) * per * one,            # read per prefill
            "kvb": one * spec.kv_bytes_per_token * serving_kv_scale(dt, engine),
            "layers": one * spec.layers, "hidden": one * spec.hidden, "tp": tp_.copy(), "B": B.copy(),
            "isl": i.copy(), "osl": o.copy(), "peak": one * g.flops(dt), "bw": one * g.mem_bandwidth,
            "ic": one * (g.interconnect_bandwidth or g.mem_bandwidth), "mem": one * g.memory_bytes}


def predict_serving(eff: Efficiency | Any, x: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Physics (TTFT s, TPOT s) of closed-loop serving benchmark rows (B clients, isl + osl tokens, tp GPUs).

    ``t_dec``/``t_pre`` = max(FLOPs / (tp·peak·e_c), bytes / (tp·bw·e_m)) + t_fixed + all-reduce (decode at
    context isl + osl/2; prefill of isl tokens); ``TPOT = t_dec + γ·(B/osl)·t_pre``;
    ``TTFT = t_request + t_pre·(1 + β·(B−1)) + w·t_pre·ρ/(1−ρ) + α·osl·TPOT/B + queue`` with
    ``ρ = B·t_pre / (osl·t_dec + B·t_pre)`` and ``queue = q·(B − cap)⁺/cap·osl·TPOT`` (Little's law) when the KV of
    B sequences exceeds ``κ·memory·tp − weights``. The calibration fixes α = 0 and q = 1.
    """
    e = eff if isinstance(eff, Efficiency) else Efficiency(*(float(v) for v in eff))
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
    # Closed loop of B clients: each request is prefilled once per lifetime, so the prefill "server" is busy a
    # fraction rho of the time and an arriving request waits behind the prefills already queued (M/D/1-like).
    rho = np.minimum(B * t_pre / (osl * t_dec + B * t_pre), RHO_MAX)
    ttft = (e.t_request_s + t_pre * (1.0 + e.prefill_queue * (B - 1)) + e.prefill_wait * t_pre * rho / (1.0 - rho)
            + e.admission_wait * life / B + queue)
    return ttft, tpot


def ridge_design(x: Mapping[str, np.ndarray]) -> np.ndarray:
    """Features of the ridge log-linear correction: log B, isl, osl, tp, model size and products."""
    lb, li, lo, lt = (np.log(x[k]) for k in ("B", "isl", "osl", "tp"))
    lp = np.log(x["P2"])
    return np.column_stack([np.ones_like(lb), lb, li, lo, lt, lb * lb, lb * lt, li * lb, lo * lb, lp, lp * lb, lp * lo,
                            lp * li, lp * lt, lo * lo, lo * li])


def apply_ridge(x: Mapping[str, np.ndarray], ttft: np.ndarray, tpot: np.ndarray, corr: Any
                ) -> tuple[np.ndarray, np.ndarray]:
    """(TTFT, TPOT) × exp(ridge correction); ``corr`` = coefficients (2 × features), feature means, sds."""
    if corr is None or len(corr) == 0:
        return ttft, tpot
    c = np.asarray(corr, dtype=float)
    Z = ridge_design(x)
    k = Z.shape[1]
    W = c[: 2 * k].reshape(k, 2)
    mu, sd = c[2 * k: 3 * k - 1], c[3 * k - 1:]
    adj = np.column_stack([Z[:, 0], (Z[:, 1:] - mu) / sd]) @ W
    return ttft * np.exp(adj[:, 0]), tpot * np.exp(adj[:, 1])


def tree_features(x: Mapping[str, np.ndarray], eff: Efficiency) -> np.ndarray:
    """Features of the tree residual stage: log B, isl, osl, tp, model size, the physics log TTFT, log TPOT,
    log(osl·TPOT/B), log KV occupancy and log prefill tokens per GPU."""
    t, p = predict_serving(eff, x)
    lb, li, lo, lt = (np.log(x[k]) for k in ("B", "isl", "osl", "tp"))
    free = np.maximum(eff.kv_memory_fraction * x["mem"] * x["tp"] - x["W"], 1e9)
    occupancy = x["B"] * (x["isl"] + x["osl"] / 2.0) * x["kvb"] / free
    return np.column_stack([lb, li, lo, lt, np.log(x["P2"]), np.log(t), np.log(p), lo + np.log(p) - lb,
                            np.log(occupancy), lb + li - lt])


def _unpack(blob: str, dtype: str) -> np.ndarray:
    return np.frombuffer(zlib.decompress(base64.b64decode(blob)), dtype=dtype)


def predict_trees(packed: Mapping[str, Any], Z: np.ndarray) -> np.ndarray:
    """Mean prediction of the regression trees stored by ``ttsplan calibrate`` (``trees`` of a calib.json entry:
    the node arrays of scikit-learn trees concatenated tree after tree — ``feature`` per node, −1 at leaves;
    ``threshold`` (the largest float32 not above scikit-learn's), ``left``, ``right`` per split node, children
    numbered within their tree; ``value`` per leaf). Features are compared in float32, as scikit-learn does, so
    the predictions are scikit-learn's."""
    counts = np.asarray(packed["counts"], dtype=np.int64)
    idx = str(packed.get("index", "<i4"))
    feature = _unpack(packed["feature"], "<i1").astype(np.int64)
    inner = feature >= 0
    split = np.cumsum(inner) - 1                      # node -> its row in the split-node arrays
    leaf = np.cumsum(~inner) - 1                      # node -> its row in the leaf values
    threshold = _unpack(packed["threshold"], "<f4").astype(np.float64)
    left = _unpack(packed["left"], idx).astype(np.int64)
    right = _unpack(packed["right"], idx).astype(np.int64)
    value = _unpack(packed["value"], "<f8")
    X = np.asarray(Z, dtype=np.float32).astype(np.float64)
    rows = np.arange(X.shape[0])
    total = np.zeros(X.shape[0])
    start = 0
    for n in counts:
        node = np.full(X.shape[0], start, dtype=np.int64)
        while True:
            go = inner[node]
            if not go.any():
                break
            s = split[node[go]]
            child = np.where(X[rows[go], feature[node[go]]] <= threshold[s], left[s], right[s])
            node[go] = start + child
        total += value[leaf[node]]
        start += int(n)
    return total / max(len(counts), 1)


def predict_serving_full(x: Mapping[str, np.ndarray], eff: Efficiency, residual: Mapping[str, Any] | None = None
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Physics × ridge correction (TTFT, TPOT) × tree residual (TTFT); each stage skipped when absent."""
    t, p = predict_serving(eff, x)
    if not residual:
        return t, p
    t, p = apply_ridge(x, t, p, residual.get("correction"))
    if residual.get("trees"):
        t = t * np.exp(predict_trees(residual["trees"], tree_features(x, eff)))
    return t, p


@dataclass(frozen=True)
class ServingCalibration:
    """A calibration as :class:`CostModel` uses it: physical parameters per engine (``physics``, keyed
    ``(engine,)`` or ``(engine, model)``; ``("*",)`` = pooled over engines, for an engine never calibrated) —
    fractions of the GPU spec, shared by every GPU — and residual stages per ``(gpu, engine[, model])``
    (``residuals``: that group's own physical parameters ``params``, ridge ``correction``, ``trees``, and the
    ``models`` they were fitted on), applied only on that GPU and to those models."""

    physics: Mapping[tuple[str, ...], Efficiency] = field(default_factory=dict)
    residuals: Mapping[tuple[str, ...], Mapping[str, Any]] = field(default_factory=dict)

    def resolve(self, gpu: str, engine: str, model: str) -> tuple[Efficiency | None, Mapping[str, Any] | None,
                                                                  tuple[str, ...] | None]:
        """(physical parameters, residual stage or None, physics key used) for one deployment."""
        engine = str(engine).lower()
        for key in ((engine, model), (engine,)):
            if key in self.physics:
                res = self.residuals.get((gpu, *key))
                if res is not None and model in res.get("models", ()):
                    return res["params"], res, key
                return self.physics[key], None, key
        if ("*",) in self.physics:
            return self.physics[("*",)], None, ("*",)
        same = [k for k in self.physics if k[0] == engine] or list(self.physics)
        return (self.physics[same[0]], None, same[0]) if same else (None, None, None)


def _read_calibration(source: Any) -> Mapping[str, Any]:
    data = source
    if hasattr(source, "to_dict"):
        data = source.to_dict()
    elif isinstance(source, (str, Path)):
        p = Path(source)
        if not p.is_file():
            raise TtsplanError(f"calibration file must exist, got {str(p)!r}. Create it with `ttsplan calibrate`.")
        try:
            data = json.loads(p.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise TtsplanError(f"{p}: calibration file must be JSON written by `ttsplan calibrate`, got a parse "
                               f"error ({str(exc)[:120]}).") from None
    entries = data.get("entries") if isinstance(data, Mapping) else None
    if not isinstance(entries, list) or not entries:
        raise TtsplanError("calibration must have a non-empty 'entries' list (the output of `ttsplan calibrate "
                           "--out calib.json`), got " + (f"keys {sorted(data)}" if isinstance(data, Mapping)
                                                         else type(data).__name__) + ".")
    return data


def _efficiency(params: Any) -> Efficiency:
    names = set(Efficiency.__dataclass_fields__)
    return Efficiency(**{k: float(v) for k, v in params.items() if k in names})


def load_serving_calibration(source: Any) -> ServingCalibration:
    """:class:`ServingCalibration` from a calib.json path, its dict or a fitted ``Calibrator`` (None: empty).

    Files of schema 2 (``ttsplan calibrate`` since the transferable form) carry ``physics`` per engine and
    residual stages per (GPU, engine); older files and hand-written dicts (``entries`` of gpu, engine, params)
    give physical parameters only, keyed by engine (first entry wins)."""
    if source is None:
        return ServingCalibration()
    if hasattr(source, "efficiencies") and not hasattr(source, "to_dict"):
        table = dict(source.efficiencies())
        return ServingCalibration({k[1:]: v for k, v in table.items()})
    data = _read_calibration(source)
    physics: dict[tuple[str, ...], Efficiency] = {}
    residuals: dict[tuple[str, ...], Mapping[str, Any]] = {}
    current = data.get("schema") == CALIBRATION_SCHEMA
    e: Any = None
    try:
        for e in data.get("physics", []) if current else []:
            key = (str(e["engine"]).lower(),) + ((get_model_spec(e["model"]).name,) if e.get("model") else ())
            physics[key] = _efficiency(e["params"])
        for e in data["entries"]:
            key = (str(e["engine"]).lower(),) + ((get_model_spec(e["model"]).name,) if e.get("model") else ())
            physics.setdefault(key, _efficiency(e["params"]))
            if current and e.get("residual_models"):
                residuals[(get_gpu_spec(e["gpu"]).name, *key)] = {
                    "params": _efficiency(e["params"]), "correction": e.get("correction") or [],
                    "trees": e.get("trees") or None,
                    "models": tuple(get_model_spec(m).name for m in e["residual_models"])}
    except (KeyError, TypeError, AttributeError, ValueError):
        raise TtsplanError(f"calibration entries must have gpu, engine and params, got {e!r}.") from None
    return ServingCalibration(physics, residuals)


@dataclass
class CostModel:
    """Price test-time-scaling workloads of one model on one GPU type (see the module docstring).

    ``tp`` GPUs serve one model replica (tensor parallel); ``dtype`` picks the peak FLOP/s column.
    ``verifier`` (a model spec or name) scores reward strategies; default: the same model.
    """

    model: ModelSpec | str
    gpu: GpuSpec | str = DEFAULT_GPU
    calibration: Any = None
    usd_per_hour: float | None = None
    engine: str = DEFAULT_SERVING_ENGINE
    tp: int = 1
    dtype: str = "bf16"
    verifier: ModelSpec | str | None = None
    efficiency: Efficiency = field(init=False)
    residual: Mapping[str, Any] | None = field(init=False, default=None, repr=False)
    calibration_key: tuple[str, ...] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.model = get_model_spec(self.model)
        self.gpu = get_gpu_spec(self.gpu)
        self.verifier = self.model if self.verifier is None else get_model_spec(self.verifier)
        if self.usd_per_hour is None:
            self.usd_per_hour = self.gpu.usd_per_hour
        if not (isinstance(self.usd_per_hour, (int, float)) and self.usd_per_hour >= 0):
            raise TtsplanError(f"usd_per_hour must be >= 0, got {self.usd_per_hour!r}.")
        if not (isinstance(self.tp, int) and self.tp >= 1):
            raise TtsplanError(f"tp must be an integer >= 1, got {self.tp!r}.")
        self.engine = str(self.engine).lower()
        # Physical parameters are fractions of the GPU spec, fitted per engine and shared by every GPU (an engine
        # never calibrated gets the pooled ones); the residual stages apply only on the GPU they were fitted on.
        eff, residual, key = load_serving_calibration(self.calibration).resolve(self.gpu.name, self.engine,
                                                                                self.model.name)
        self.efficiency = eff or Efficiency()
        self.residual = residual
        self.calibration_key = key
        self.gpu.flops(self.dtype)  # validates dtype

    # -- hardware helpers -------------------------------------------------------------------
    @property
    def peak_flops(self) -> float:
        return self.gpu.flops(self.dtype) * self.tp

    @property
    def bandwidth(self) -> float:
        return self.gpu.mem_bandwidth * self.tp

    def kv_capacity_bytes(self) -> float:
        """Bytes left for KV cache on the replica after weights (of the verifier too, if separate)."""
        w = self.model.weight_bytes + (0 if self.verifier is self.model else self.verifier.weight_bytes)
        return self.efficiency.kv_memory_fraction * self.gpu.memory_bytes * self.tp - w

    def max_concurrency(self, context_tokens: Any) -> np.ndarray:
        """Sequences of ``context_tokens`` tokens whose KV fits at once (0 when weights do not fit)."""
        ctx = _arr(context_tokens, "context_tokens", 1)
        return np.floor(np.maximum(self.kv_capacity_bytes(), 0.0) / (ctx * self.model.kv_bytes_per_token))

    def allreduce_s(self, tokens: Any, model: ModelSpec | None = None) -> np.ndarray:
        """Time of the 2 all-reduces per layer of one forward over ``tokens`` tokens (0 at tp = 1)."""
        m = model or self.model
        if self.tp == 1:
            return np.zeros_like(np.asarray(tokens, dtype=float))
        ring = 2.0 * (self.tp - 1) / self.tp
        bw = self.gpu.interconnect_bandwidth or self.gpu.mem_bandwidth
        per = self.efficiency.t_allreduce_s + np.asarray(tokens, float) * m.hidden * 2.0 * ring / bw
        return 2.0 * m.layers * per

    def step_time(self, flops: Any, bytes_: Any, tokens: Any = 1.0) -> np.ndarray:
        """One forward pass: max(compute, memory) + t_fixed + all-reduce."""
        e = self.efficiency
        return (np.maximum(np.asarray(flops) / (self.peak_flops * e.e_c), np.asarray(bytes_) / (self.bandwidth * e.e_m))
                + e.t_fixed_s + self.allreduce_s(tokens))

    def serving(self, batch_size: Any, isl: Any, osl: Any) -> dict[str, np.ndarray]:
        """Predicted TTFT / TPOT (s) of closed-loop serving benchmarks on this replica: ``batch_size`` concurrent
        clients each sending ``isl``-token prompts for ``osl`` output tokens (arrays broadcast) — the quantity
        ``ttsplan calibrate`` fits and validates, computed with exactly the calibration's stages (physics, and on
        the GPU the calibration was fitted on, its ridge and tree residuals).

        >>> cm = CostModel("Qwen3-32B", "H100", tp=2)      # uncalibrated: the naive roofline
        >>> out = cm.serving(batch_size=[8, 64], isl=1024, osl=512)
        >>> bool(out["tpot_s"][1] > out["tpot_s"][0])
        True
        """
        B = _arr(batch_size, "batch_size", 1)
        i = _arr(isl, "isl", 1)
        o = _arr(osl, "osl", 1)
        x = serving_inputs(self.model, self.gpu, self.dtype, self.engine, self.tp, B, i, o)
        x = {k: v.ravel() for k, v in x.items()}
        shape = np.broadcast_shapes(B.shape, i.shape, o.shape)
        pt, pp = predict_serving(self.efficiency, x)
        t, p = predict_serving_full(x, self.efficiency, self.residual)
        return {"ttft_s": t.reshape(shape), "tpot_s": p.reshape(shape), "physics_ttft_s": pt.reshape(shape),
                "physics_tpot_s": pp.reshape(shape)}

    # -- building blocks --------------------------------------------------------------------
    def prefill(self, sequences: Any, new_tokens: Any, cached_tokens: Any = 0.0,
                model: ModelSpec | None = None) -> dict[str, np.ndarray]:
        """One batched prefill of ``sequences`` × ``new_tokens`` tokens after ``cached_tokens`` of context."""
        m = model or self.model
        s, L, c = (np.asarray(v, dtype=float) for v in (sequences, new_tokens, cached_tokens))
        toks = s * L
        flops = toks * 2.0 * m.matmul_params + s * m.attn_flops_per_token_per_context * (L * c + L * (L + 1) / 2.0)
        bytes_ = m.weight_bytes_read(toks) + s * (c + L) * m.kv_bytes_per_token
        t = np.where(toks > 0, self.step_time(flops, bytes_, toks), 0.0)
        return {"flops": flops, "bytes": np.where(toks > 0, bytes_, 0.0), "seconds": t}

    def decode(self, groups: np.ndarray, prompts: Any, n: Any, prompt_tokens: Any, output_tokens: Any,
               prefix_caching: bool = True, fork: bool = False) -> dict[str, np.ndarray]:
        """Closed-form sum over decode steps of ``prompts`` prompts × ``n`` samples.

        ``groups`` holds K ascending length multipliers (mean 1) of equal-mass sample groups: group j
        generates round(m_j · output_tokens) tokens and leaves the batch when done.
        """
        m, e = self.model, self.efficiency
        B, N, Lp, L = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (prompts, n, prompt_tokens, output_tokens)))
        K = len(groups)
        ends = [np.maximum(np.round(g * L), np.where(L > 0, 1.0, 0.0)) for g in groups]
        kvb, A, P2 = m.kv_bytes_per_token, m.attn_flops_per_token_per_context, 2.0 * m.matmul_params
        pc_time = 1.0 / (self.peak_flops * e.e_c)
        bw_time = 1.0 / (self.bandwidth * e.e_m)
        seconds = np.zeros_like(L)
        flops = np.zeros_like(L)
        bytes_ = np.zeros_like(L)
        steps = np.zeros_like(L)
        start = np.zeros_like(L)
        for j in range(K):
            end = np.maximum(ends[j], start)
            live = B * N * (K - j) / K                      # sequences still generating in [start, end)
            # FLOPs(t) = live·(2P + A·(Lp + t));  bytes(t) = W + prompt KV + live·kv·t (+ fork copy)
            f_a = live * (P2 + A * Lp)
            f_b = live * A
            prompt_kv = (B if prefix_caching else live) * Lp * kvb
            m_a = m.weight_bytes_read(live) + prompt_kv + (live * 2 * KV_BLOCK_TOKENS * kvb if fork else 0.0)
            m_b = live * kvb
            seconds += sum_max_linear(f_a * pc_time, f_b * pc_time, m_a * bw_time, m_b * bw_time, start, end)
            flops += _sum_linear(f_a, f_b, start, end)
            bytes_ += _sum_linear(m_a, m_b, start, end)
            nsteps = end - start
            seconds += nsteps * (e.t_fixed_s + self.allreduce_s(live))
            steps += nsteps
            start = end
        return {"seconds": seconds, "flops": flops, "bytes": bytes_, "steps": steps}

    # -- the planner's entry point ----------------------------------------------------------
    def price(self, n: Any, prompt_tokens: Any, output_tokens: Any, strategy: str = "majority",
              batch_prompts: Any = 1, prefix_caching: bool = True,
              length_distribution: str | np.ndarray = "fixed", intensity: float | None = None
              ) -> dict[str, np.ndarray]:
        """Price ``batch_prompts`` prompts × ``n`` samples (arrays broadcast); see the module docstring.

        ``output_tokens`` is the mean generated length per sample; ``length_distribution`` ("fixed",
        "uniform", "exponential" or an array of mean-1 multipliers) spreads lengths so that early
        finishers leave the batch. ``intensity`` overrides the GPU's I in ``eflops``.
        """
        strat = resolve_strategy(strategy)
        needs_verifier, single, beam = STRATEGIES[strat]
        N = _arr(n, "n", 1, integer=True)
        Lp = _arr(prompt_tokens, "prompt_tokens", 0)
        L = _arr(output_tokens, "output_tokens", 0)
        B = _arr(batch_prompts, "batch_prompts", 1, integer=True)
        if single:
            N = np.ones_like(N)
        if isinstance(length_distribution, str):
            key = length_distribution.lower()
            if key not in LENGTH_DISTRIBUTIONS:
                raise TtsplanError(f"length_distribution must be one of {list(LENGTH_DISTRIBUTIONS)} or an array, "
                                   f"got {length_distribution!r}." + did_you_mean(key, LENGTH_DISTRIBUTIONS))
            groups = LENGTH_DISTRIBUTIONS[key]
        else:
            groups = np.sort(_arr(length_distribution, "length_distribution", 0).ravel())
            if groups.size == 0 or not np.isclose(groups.mean(), 1.0):
                raise TtsplanError("length_distribution multipliers must have mean 1, got "
                                   f"{groups.tolist()[:8]}.")
        N, Lp, L, B = np.broadcast_arrays(N, Lp, L, B)
        m, v = self.model, self.verifier
        kvb = m.kv_bytes_per_token
        gmax = float(groups.max())
        prompt_kv = Lp * (1.0 if prefix_caching else N)
        kv_per_prompt = kvb * (prompt_kv + N * L * (1.0 if gmax <= 1 else float(np.mean(groups))))
        peak_kv = kvb * (prompt_kv + N * np.round(L * gmax))
        cap = max(self.kv_capacity_bytes(), 0.0)
        if cap <= 0:
            raise TtsplanError(f"model {m.name} ({m.weight_bytes / 1e9:.1f} GB of weights) must fit on "
                               f"{self.tp}× {self.gpu.name}, got no memory left for the KV cache. Raise tp.")
        waves = np.maximum(np.ceil(B * peak_kv / cap), 1.0)
        Bw = B / waves                                       # prompts per wave (fractional: split samples)
        copies = 1.0 if prefix_caching else N
        pre = self.prefill(Bw * copies, Lp)
        dec = self.decode(groups, Bw, N, Lp, L, prefix_caching=prefix_caching, fork=beam)
        gen_mean = L * float(np.mean(groups))
        zero = np.zeros_like(L)
        ver = {"flops": zero, "bytes": zero, "seconds": zero}
        verifier_tokens = zero
        if needs_verifier:
            same = v is m
            # Scoring = one prefill of every sample's tokens over the cached prompt (separate verifier:
            # prefill the prompt on it first).
            ver = self.prefill(Bw * N, gen_mean, Lp, model=v)
            if not same:
                vp = self.prefill(Bw, Lp, model=v)
                ver = {k: ver[k] + vp[k] for k in ver}
            verifier_tokens = N * (gen_mean + (0.0 if same else Lp))
        latency = waves * (pre["seconds"] + dec["seconds"] + ver["seconds"]) + self.efficiency.t_request_s
        per_prompt = waves / B
        flops = per_prompt * (pre["flops"] + dec["flops"] + ver["flops"])
        bytes_ = per_prompt * (pre["bytes"] + dec["bytes"] + ver["bytes"])
        kin = kinetics_eflops(m, Lp, gen_mean, N,
                              intensity=self.gpu.intensity(self.dtype) if intensity is None else intensity)
        eflops = kin["eflops"] + per_prompt * ver["flops"]
        cost = latency * self.usd_per_hour * self.tp / 3600.0 / B
        return {
            "tokens": Lp * copies + N * gen_mean,
            "generated_tokens": N * gen_mean,
            "verifier_tokens": verifier_tokens,
            "flops": flops,
            "bytes": bytes_,
            "eflops": eflops,
            "kv_cache_bytes": kv_per_prompt,
            "prefill_s": waves * pre["seconds"],
            "decode_s": waves * dec["seconds"],
            "verify_s": waves * ver["seconds"],
            "latency_s": latency,
            "cost_usd": cost,
            "waves": waves,
            "max_concurrency": self.max_concurrency(np.maximum(Lp + L * gmax, 1.0)),
        }

    def beam_fork_bytes(self, beams: Any, steps: Any) -> np.ndarray:
        """Bytes copied by copy-on-write KV forks: each beam copies (reads + writes) its last partial
        block once per step."""
        return _arr(beams, "beams", 1) * _arr(steps, "steps", 0) * 2 * KV_BLOCK_TOKENS * self.model.kv_bytes_per_token
