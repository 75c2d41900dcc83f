"""Gain predictor: from one validation pass, predict how much a configuration gains from N samples.

gain = metric@N − pass@1 for metric ∈ {bon, maj, pass} (DESIGN §5–6). :class:`GainPredictor` is a
scikit-learn-style ridge regression on standardized config-level features
(:func:`ttsplan.features.stats.config_features`). Features and target never share a sample: the
features come from the first ``k_features`` samples of each prompt and the gain is estimated on the
others (:func:`split_samples`). The baseline every prediction is shown beside is the gain observed on
those same feature samples, target@k_features − pass@1 (``observed_gain``). Evaluation helpers:

- :func:`cross_validate` — leave-one-config-out (``groups=None``) or leave-one-group-out (e.g. model):
  Spearman ρ, Kendall τ, MAE with bootstrap-over-configs intervals → :class:`ValidationResult`.
- :func:`stability` — bootstrap-Lasso selection frequency of every candidate feature.
- :func:`compare_feature_sets` — core three + entropy vs all vs accuracy alone (LOCO each).
- :func:`concentration` — LOCO ρ as the validation pass shrinks (fewer prompts, smaller k).
- :func:`gain_dataset` — config features + targets (disjoint samples) from a SampleTable / CountTable.
- :func:`paired_difference` — predictor minus baseline ρ and MAE, one paired bootstrap over configs.
- :func:`curve_gains` / :func:`curve_cross_validate` — the curve predictor: each configuration's own
  target@j curve (j ≤ k_features) extrapolated to n by a small law, or the success model's prediction,
  the candidate chosen inside the training folds (:func:`select_curve_law`).
- :func:`directional_cross_validate` — the agreement-alone baseline (direction learned in the folds).

:func:`fit_report` scores the predictor (default ``method="curve"``; ``"ridge"`` for the
:class:`GainPredictor`, which ranks below the observed-gain baseline on the shared data) and every
baseline leave-one-config-out and, with ≥ 3 datasets, leave-one-dataset-out.

Feature sources: sample tables support every feature their columns carry (answer-based ones need
``answer``; length ones ``output_tokens``; reward ones ``reward``; logprob/token entropy need those
columns); count tables support only ``accuracy`` and ``never_correct_fraction``.

>>> import numpy as np, polars as pl
>>> rng = np.random.default_rng(0); X = pl.DataFrame({"a": rng.normal(size=40), "b": rng.normal(size=40)})
>>> y = 0.3 * X["a"].to_numpy() - 0.1 * X["b"].to_numpy()
>>> m = GainPredictor(alpha=1e-6).fit(X, y); np.round(m.raw_coef_, 3).tolist()
[0.3, -0.1]
"""
from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from ttsplan.features.defaults import DEFAULT_CI_CONFIDENCE
from ttsplan.features.errors import TtsplanError, did_you_mean
from ttsplan.features.estimators import prompt_curves
from ttsplan.features.schema import has_values, table_kind
from ttsplan.features.stats import FEATURES, config_features
from ttsplan.fitting.success import DegenerateDataWarning, PromptSuccessModel

#: DESIGN §5: the core three plus the entropy add-on. The add-on is the mean token entropy where the
#: data has it, else the answer entropy (no shared source records token entropies); see core_set().
CORE_FEATURES = ("agreement_spread", "first_correct_position", "length_variance")
CORE_PLUS_ENTROPY = CORE_FEATURES + ("answer_entropy",)
#: what a count table supports (first-correct position there is the expected (n+1)/(c+1)).
COUNT_FEATURES = ("accuracy", "first_correct_position", "never_correct_fraction")
TARGETS = ("bon", "maj", "pass")
#: the per-prompt success model's own prediction of the gain from the validation samples (DESIGN §6):
#: mean over prompts of E[target@n] − E[pass@1] under each prompt's Beta posterior (ttsplan.fitting.success).
MODEL_FEATURE = "model_gain"
#: the baseline a prediction must beat: target@k − pass@1 observed on the k feature samples themselves
#: (a column of :func:`gain_dataset`, not a candidate feature).
OBSERVED_FEATURE = "observed_gain"


#: the curve predictor's candidate laws (:func:`curve_gains`): each extrapolates the configuration's own
#: observed target@j curve over j = 1..k_features (mean over prompts, unbiased from the feature samples) to
#: j = n. Nothing in a law is fitted across configurations; which law is used is chosen inside the training
#: folds (:func:`select_curve_law`). :data:`MODEL_FEATURE` (the per-prompt success model) is a candidate too.
CURVE_LAWS = ("log_linear", "power", "neglog_fail", "saturating")
CURVE_CANDIDATES = tuple(f"curve_{law}" for law in CURVE_LAWS) + (MODEL_FEATURE,)
#: the agreement baseline: mean top-answer share of the feature samples (needs answers).
AGREEMENT_FEATURE = "agreement_mean"
METHODS = ("ridge", "curve")


class GainDataWarning(UserWarning):
    """Configurations or features were dropped from a gain fit; the message names them."""


def all_features() -> tuple[str, ...]:
    """The candidate feature set (``ttsplan.features.stats.FEATURES`` plus :data:`MODEL_FEATURE`)."""
    return (*FEATURES, MODEL_FEATURE)


def model_gain(table: pl.DataFrame, target: str, n: int) -> pl.DataFrame:
    """``config, model_gain``: the success model's predicted target@n − pass@1 per configuration, fitted
    on ``table`` alone (the validation samples). Null where the model cannot be fitted (e.g. maj without
    answers); configurations with no correct sample get the pooled-rate prior quietly.

    >>> import polars as pl
    >>> from ttsplan.features.schema import validate_count_table
    >>> t = validate_count_table(pl.DataFrame({"config": ["c"] * 6, "prompt_id": list("abcdef"),
    ...     "samples": [4] * 6, "correct_samples": [0, 1, 2, 2, 3, 4]}))
    >>> round(model_gain(t, "pass", 8)["model_gain"][0], 2)
    0.31
    """
    configs = sorted(table["config"].unique().to_list())
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DegenerateDataWarning)
            fitted = PromptSuccessModel(min_prompts=1).fit(table)
        values = fitted.expected_accuracy(target, [1, int(n)])
    except TtsplanError:
        return pl.DataFrame({"config": configs, MODEL_FEATURE: [None] * len(configs)},
                            schema={"config": pl.String, MODEL_FEATURE: pl.Float64})
    per = fitted.keys_.with_columns(pl.Series("_g", values[:, 1] - values[:, 0]))
    return per.group_by("config").agg(pl.col("_g").mean().alias(MODEL_FEATURE)).sort("config")


def _law_value(law: str, js: np.ndarray, v: np.ndarray, n: int) -> float:
    """target@n by one law fitted (least squares) to one configuration's curve v at js = 1..k."""
    if law == "log_linear":  # v_j = a + b log j
        b, a = np.polyfit(np.log(js), v, 1)
        return float(a + b * np.log(n))
    if law == "saturating":  # v_j = m − d j^−½
        m, d = np.linalg.lstsq(np.c_[np.ones(js.size), -js ** -0.5], v, rcond=None)[0]
        return float(m - d * n ** -0.5)
    if law in ("power", "neglog_fail"):
        ok = (v > 0) & (v < 1)
        if ok.sum() < 2:  # a flat curve at 0 or 1, or one usable point: keep the last value
            return float(v[-1])
        if law == "power":  # −log v_j = a j^−b (the aggregate power law of fitting.scaling)
            sl, ic = np.polyfit(np.log(js[ok]), np.log(-np.log(v[ok])), 1)
            return float(np.exp(-np.exp(ic + sl * np.log(n))))
        sl, ic = np.polyfit(np.log(js[ok]), np.log(-np.log1p(-v[ok])), 1)  # −log(1 − v_j) = a j^b
        return float(-np.expm1(-np.exp(ic + sl * np.log(n))))
    raise TtsplanError(f"curve law must be one of {', '.join(CURVE_LAWS)}, got {law!r}.{did_you_mean(law, CURVE_LAWS)}")


def curve_gains(table: pl.DataFrame, target: str, n: int, k: int) -> pl.DataFrame:
    """``config, curve_<law>…``: each configuration's own target@j curve over j = 1..k (mean over prompts of
    the unbiased per-prompt values on ``table``, the feature samples) extrapolated to j = n by every law of
    :data:`CURVE_LAWS`, as a gain target@n − target@1 (target@n clipped to [0, 1]). Null for k < 2.

    >>> import polars as pl
    >>> from ttsplan.features.schema import validate_count_table
    >>> t = validate_count_table(pl.DataFrame({"config": ["c"] * 4, "prompt_id": list("abcd"),
    ...     "samples": [4] * 4, "correct_samples": [0, 1, 2, 4]}))
    >>> g = curve_gains(t, "pass", 16, 4).drop("config").row(0, named=True)  # pass@1 = 7/16
    >>> {law: round(v, 3) for law, v in g.items()}
    {'curve_log_linear': 0.562, 'curve_power': 0.463, 'curve_neglog_fail': 0.528, 'curve_saturating': 0.452}
    """
    cols = [f"curve_{law}" for law in CURVE_LAWS]
    configs = sorted(table["config"].unique().to_list())
    if int(k) < 2:
        return pl.DataFrame({"config": configs, **{c: [None] * len(configs) for c in cols}},
                            schema={"config": pl.String, **{c: pl.Float64 for c in cols}})
    js = np.arange(1, int(k) + 1)
    curve = (prompt_curves(table, target, js.tolist()).group_by("config", "k").agg(pl.col("value").mean())
             .sort("config", "k"))
    rows = []
    for (cfg,), g in curve.group_by("config", maintain_order=True):
        v = g["value"].to_numpy().astype(float)
        rows.append({"config": cfg, **{f"curve_{law}": float(np.clip(_law_value(law, js, v, int(n)), 0, 1) - v[0])
                                       for law in CURVE_LAWS}})
    return pl.DataFrame(rows, schema={"config": pl.String, **{c: pl.Float64 for c in cols}}).sort("config")


def core_set(data: pl.DataFrame) -> tuple[str, ...]:
    """Core three + entropy add-on: ``token_entropy`` when every config has it, else ``answer_entropy``."""
    has_token = "token_entropy" in data.columns and data["token_entropy"].null_count() == 0
    return CORE_FEATURES + ("token_entropy" if has_token else "answer_entropy",)


def resolve_features(spec: str | Sequence[str]) -> tuple[str, ...]:
    """``"core"`` → core three + entropy, ``"all"`` → every candidate, ``"accuracy"``, ``"counts"``,
    ``"model"`` (the success model's own gain prediction), or a comma-separated list / sequence of names."""
    if isinstance(spec, str):
        if spec == "model":
            return (MODEL_FEATURE,)
        if spec == "core":
            return CORE_PLUS_ENTROPY
        if spec == "core3":
            return CORE_FEATURES
        if spec == "all":
            return all_features()
        if spec == "counts":
            return COUNT_FEATURES
        names = [s.strip() for s in spec.split(",") if s.strip()]
    else:
        names = list(spec)
    known = all_features()
    bad = [n for n in names if n not in known]
    if bad or not names:
        hint = did_you_mean(bad[0], known) if bad else ""
        raise TtsplanError(f"features must be core, all, counts, model or names from {', '.join(known)}, got "
                           f"{', '.join(bad) or repr(spec)}.{hint}")
    return tuple(dict.fromkeys(names))


def _feature_list(spec: str | Sequence[str]) -> list[str]:
    """A string spec is resolved (and checked) by :func:`resolve_features`; an explicit sequence is
    taken as column names (any names: checked against X when used)."""
    return list(resolve_features(spec)) if isinstance(spec, str) else list(dict.fromkeys(spec))


# -------------------------------------------------------------------------------------- estimator
def _as_matrix(X: object, names: Sequence[str] | None = None) -> tuple[np.ndarray, list[str]]:
    if isinstance(X, pl.DataFrame):
        cols = list(names) if names is not None else X.columns
        missing = [c for c in cols if c not in X.columns]
        if missing:
            raise TtsplanError(f"X must have the columns the model was fitted on, got none named "
                               f"{', '.join(missing)}.{did_you_mean(missing[0], X.columns)}")
        return X.select(cols).cast(pl.Float64).to_numpy(), cols
    if hasattr(X, "columns") and hasattr(X, "to_numpy"):  # pandas
        cols = [str(c) for c in X.columns]  # type: ignore[attr-defined]
        arr = X.to_numpy(dtype=float)  # type: ignore[attr-defined]
        if names is not None:
            arr = arr[:, [cols.index(n) for n in names]]
            cols = list(names)
        return arr, cols
    arr = np.asarray(X, dtype=float)
    if arr.ndim == 1:
        arr = arr[:, None]
    return arr, list(names) if names is not None else [f"x{i}" for i in range(arr.shape[1])]


class GainPredictor:
    """Ridge regression on standardized config features → gain (sklearn-style).

    Parameters
    ----------
    alpha : ridge penalty on the standardized coefficients (≥ 0).
    features : ``None`` (use every column of X), ``"core"``, ``"all"``, ``"counts"`` or a list; when a
        polars frame is passed, only these columns are used.

    Learned: ``coef_`` (per standardized feature), ``raw_coef_`` (per original unit), ``intercept_``,
    ``mean_``, ``scale_``, ``feature_names_in_``, ``n_features_in_``.
    """

    def __init__(self, alpha: float = 1.0, features: str | Sequence[str] | None = None):
        self.alpha = alpha
        self.features = features

    def get_params(self, deep: bool = True) -> dict:
        return {"alpha": self.alpha, "features": self.features}

    def set_params(self, **params: object) -> GainPredictor:
        for k, v in params.items():
            setattr(self, k, v)
        return self

    def _names(self, X: object) -> list[str] | None:
        if self.features is None:
            return None
        return _feature_list(self.features)

    def fit(self, X: object, y: Sequence[float]) -> GainPredictor:
        problems = []
        try:
            alpha = float(self.alpha)
            if not np.isfinite(alpha) or alpha < 0:
                problems.append(f"alpha must be a finite number >= 0, got {self.alpha!r}")
        except (TypeError, ValueError):
            problems.append(f"alpha must be a number >= 0, got {self.alpha!r}")
            alpha = 0.0
        x, names = _as_matrix(X, self._names(X))
        yy = np.asarray(y, dtype=float).ravel()
        if x.shape[0] != yy.size:
            problems.append(f"X and y must have the same number of rows, got {x.shape[0]} and {yy.size}")
        if x.shape[0] < 3:
            problems.append(f"X must have at least 3 configurations to fit a gain model, got {x.shape[0]}")
        bad_cols = [n for j, n in enumerate(names) if not np.isfinite(x[:, j]).all()] if x.size else []
        if bad_cols:
            problems.append(f"features must be finite for every configuration, got null/NaN in {', '.join(bad_cols)} "
                            "(count tables support only accuracy and never_correct_fraction)")
        if yy.size and not np.isfinite(yy).all():
            problems.append("y (the gain) must be finite, got NaN/inf")
        if problems:
            raise TtsplanError("GainPredictor.fit: " + "; ".join(problems) + ".")
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        const = [n for n, s in zip(names, scale) if s < 1e-12]
        if const:
            warnings.warn(f"features {', '.join(const)} are constant across the configurations; their coefficient "
                          "is 0.", GainDataWarning, stacklevel=2)
        scale = np.where(scale < 1e-12, 1.0, scale)
        z = (x - mean) / scale
        zc = z - z.mean(axis=0)
        yc = yy - yy.mean()
        coef = np.linalg.solve(zc.T @ zc + alpha * np.eye(z.shape[1]), zc.T @ yc)
        coef[[n in const for n in names]] = 0.0
        self.coef_ = coef
        self.intercept_ = float(yy.mean() - z.mean(axis=0) @ coef)
        self.mean_, self.scale_ = mean, scale
        self.raw_coef_ = coef / scale
        self.feature_names_in_ = np.asarray(names, dtype=object)
        self.n_features_in_ = len(names)
        self.train_residual_sd_ = float(np.std(yy - (z @ coef + self.intercept_)))
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            from sklearn.exceptions import NotFittedError  # sklearn loads psutil: ~0.3 s at startup

            raise NotFittedError("This GainPredictor is not fitted yet. Call .fit(X, y) with config features and "
                                 "gains first (see ttsplan.fitting.gain.gain_dataset).")

    def predict(self, X: object) -> np.ndarray:
        self._check_fitted()
        x, _ = _as_matrix(X, list(self.feature_names_in_) if isinstance(X, pl.DataFrame) else None)
        if x.shape[1] != self.n_features_in_:
            raise TtsplanError(f"X must have {self.n_features_in_} features, got {x.shape[1]}.")
        if not np.isfinite(x).all():
            raise TtsplanError("X must be finite, got null/NaN feature values.")
        return ((x - self.mean_) / self.scale_) @ self.coef_ + self.intercept_

    def summary(self) -> pl.DataFrame:
        """Coefficients (standardized and raw) with bootstrap-free placeholders for intervals."""
        self._check_fitted()
        rows = [{"term": "intercept", "estimate": self.intercept_, "raw_estimate": self.intercept_,
                 "ci_low": None, "ci_high": None}]
        rows += [{"term": n, "estimate": float(c), "raw_estimate": float(r), "ci_low": None, "ci_high": None}
                 for n, c, r in zip(self.feature_names_in_, self.coef_, self.raw_coef_)]
        return pl.DataFrame(rows, schema={"term": pl.String, "estimate": pl.Float64, "raw_estimate": pl.Float64,
                                          "ci_low": pl.Float64, "ci_high": pl.Float64})

    def print_summary(self) -> None:
        print(self.summary())


# ------------------------------------------------------------------------------------ evaluation
def _rank_scores(y: np.ndarray, p: np.ndarray) -> tuple[float, float, float]:
    from scipy import stats as sstats  # ~0.3 s to import: only the commands that use it pay for it (DESIGN §1)
    if np.ptp(y) == 0 or np.ptp(p) == 0:
        rho = tau = 0.0
    else:
        rho = float(sstats.spearmanr(y, p).statistic)
        tau = float(sstats.kendalltau(y, p).statistic)
    return rho, tau, float(np.mean(np.abs(y - p)))


def _boot_rho(yb: np.ndarray, pb: np.ndarray) -> np.ndarray:
    """Spearman ρ per row of (replicates × configs) arrays (0 where a row is constant)."""
    from scipy import stats as sstats  # ~0.3 s to import: only the commands that use it pay for it (DESIGN §1)
    ry = sstats.rankdata(yb, axis=1)
    rp = sstats.rankdata(pb, axis=1)
    ry -= ry.mean(axis=1, keepdims=True)
    rp -= rp.mean(axis=1, keepdims=True)
    den = np.sqrt((ry * ry).sum(axis=1) * (rp * rp).sum(axis=1))
    return np.where(den > 0, (ry * rp).sum(axis=1) / np.where(den > 0, den, 1.0), 0.0)


def _bootstrap_scores(y: np.ndarray, p: np.ndarray, n_boot: int, seed: int,
                      confidence: float) -> dict[str, tuple[float, float]]:
    """Percentile intervals of ρ, τ and MAE over configurations resampled with replacement
    (ρ and MAE vectorized over replicates; τ per replicate)."""
    if n_boot <= 0:
        return {}
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, y.size, (n_boot, y.size))
    yb, pb = y[idx], p[idx]
    rho = _boot_rho(yb, pb)
    from scipy import stats as sstats  # ~0.3 s to import: only the commands that use it pay for it (DESIGN §1)
    tau = np.array([sstats.kendalltau(a, b).statistic if np.ptp(a) and np.ptp(b) else 0.0 for a, b in zip(yb, pb)])
    mae = np.abs(yb - pb).mean(axis=1)
    a = (1 - confidence) / 2
    return {name: tuple(float(v) for v in np.quantile(arr, [a, 1 - a]))  # type: ignore[misc]
            for name, arr in (("spearman", rho), ("kendall", np.nan_to_num(tau)), ("mae", mae))}


@dataclass(frozen=True)
class ValidationResult:
    """Out-of-group predictions and their scores; ``summary()`` gives estimates with intervals."""

    scheme: str
    predictions: pl.DataFrame  # config, group, actual, predicted
    spearman: float
    kendall: float
    mae: float
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    confidence: float = DEFAULT_CI_CONFIDENCE

    def summary(self) -> pl.DataFrame:
        rows = [{"scheme": self.scheme, "metric": m, "estimate": v, "ci_low": self.intervals.get(m, (None, None))[0],
                 "ci_high": self.intervals.get(m, (None, None))[1], "n_configs": self.predictions.height}
                for m, v in (("spearman", self.spearman), ("kendall", self.kendall), ("mae", self.mae))]
        return pl.DataFrame(rows, schema={"scheme": pl.String, "metric": pl.String, "estimate": pl.Float64,
                                          "ci_low": pl.Float64, "ci_high": pl.Float64, "n_configs": pl.Int64})

    def print_summary(self) -> None:
        print(self.summary())



def _cv_groups(y: Any, configs: Any, groups: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, list]:
    """Targets, configurations, their groups (the configurations themselves for LOCO) and the distinct
    groups of a leave-one-group-out run; at least 3 groups."""
    yy = np.asarray(y, dtype=float)
    cfg = np.asarray(list(configs), dtype=object)
    grp = cfg if groups is None else np.asarray(list(groups), dtype=object)
    uniq = sorted(set(grp.tolist()))
    if len(uniq) < 3:
        raise TtsplanError(f"cross-validation needs at least 3 {'configurations' if groups is None else 'groups'}, "
                           f"got {len(uniq)}. Add more configurations (one config cannot be ranked).")
    return yy, cfg, grp, uniq

def cross_validate(X: pl.DataFrame, y: Sequence[float], configs: Sequence[str], groups: Sequence[str] | None = None,
                   alpha: float = 1.0, features: str | Sequence[str] | None = None, n_boot: int = 1000,
                   seed: int = 0, confidence: float = DEFAULT_CI_CONFIDENCE) -> ValidationResult:
    """Leave-one-group-out predictions (LOCO when ``groups`` is None) scored by ρ, τ, MAE.

    Intervals: percentile bootstrap over configurations of the (actual, predicted) pairs.
    """
    yy, cfg, grp, uniq = _cv_groups(y, configs, groups)
    x, names = _as_matrix(X, _feature_list(features) if features is not None else None)
    pred = np.empty_like(yy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GainDataWarning)
        GainPredictor(alpha=alpha).fit(pl.DataFrame(x, schema=names, orient="row"), yy)  # validate, naming features
        for g in uniq:
            test = grp == g
            if (~test).sum() < 3:
                raise TtsplanError(f"holding out group {g!r} leaves {(~test).sum()} configuration(s) to train on; "
                                   "need at least 3.")
            m = GainPredictor(alpha=alpha).fit(x[~test], yy[~test])
            pred[test] = m.predict(x[test])
    rho, tau, mae = _rank_scores(yy, pred)
    intervals = _bootstrap_scores(yy, pred, n_boot, seed, confidence)
    frame = pl.DataFrame({"config": cfg.tolist(), "group": grp.tolist(), "actual": yy, "predicted": pred})
    return ValidationResult("loco" if groups is None else "leave_one_group_out", frame, rho, tau, mae, intervals,
                            confidence)


#: the success model (per-prompt posteriors) is kept unless a curve law ranks the training configurations
#: better by more than this much Spearman ρ (see :func:`select_curve_law`).
CURVE_MARGIN = 0.02


def select_curve_law(X: pl.DataFrame, y: Sequence[float], candidates: Sequence[str] = CURVE_CANDIDATES,
                     margin: float = CURVE_MARGIN) -> str:
    """The candidate column (:data:`CURVE_CANDIDATES`) whose values rank ``y`` best on these configurations:
    highest Spearman ρ, ties broken by the lower mean absolute error; the success model
    (:data:`MODEL_FEATURE`) is kept unless the best curve law beats its ρ by more than ``margin`` (laws
    that flip from fold to fold mix scales and cost more ranking than the small ρ differences they chase).
    Candidates with a null or NaN value are skipped. Call it on training configurations only
    (:func:`curve_cross_validate` does).

    >>> X = pl.DataFrame({"curve_power": [0.1, 0.2, 0.3], "model_gain": [0.3, 0.2, 0.1]})
    >>> select_curve_law(X, [0.1, 0.2, 0.35])
    'curve_power'
    """
    yy = np.asarray(y, dtype=float)
    best, key = None, None
    model_rho = None
    for c in candidates:
        if c not in X.columns:
            continue
        x = X[c].cast(pl.Float64).fill_null(np.nan).to_numpy()
        if not np.isfinite(x).all():
            continue
        rho, _, mae = _rank_scores(yy, x)
        if c == MODEL_FEATURE:
            model_rho = rho
        if key is None or (rho, -mae) > key:
            best, key = c, (rho, -mae)
    if best is None:
        raise TtsplanError(f"the curve predictor needs one of {', '.join(candidates)} with values for every "
                           "configuration, got none (k_features must be >= 2).")
    if model_rho is not None and key is not None and key[0] - model_rho <= margin:
        return MODEL_FEATURE
    return best


def curve_cross_validate(X: pl.DataFrame, y: Sequence[float], configs: Sequence[str],
                         groups: Sequence[str] | None = None, candidates: Sequence[str] = CURVE_CANDIDATES,
                         n_boot: int = 1000, seed: int = 0,
                         confidence: float = DEFAULT_CI_CONFIDENCE) -> ValidationResult:
    """The curve predictor scored leave-one-group-out (LOCO when ``groups`` is None): for every held-out
    group the law is chosen by :func:`select_curve_law` on the other configurations only, and the held-out
    configurations get that law's extrapolated gain (their own curve; nothing is fitted across
    configurations, so the prediction is on the target's scale). ``predictions`` has a ``law`` column."""
    yy, cfg, grp, uniq = _cv_groups(y, configs, groups)
    pred = np.empty_like(yy)
    law = np.empty(yy.size, dtype=object)
    for g in uniq:
        test = grp == g
        if (~test).sum() < 3:
            raise TtsplanError(f"holding out group {g!r} leaves {(~test).sum()} configuration(s) to train on; "
                               "need at least 3.")
        chosen = select_curve_law(X.filter(pl.Series(~test)), yy[~test], candidates)
        pred[test] = X[chosen].cast(pl.Float64).to_numpy()[test]
        law[test] = chosen
    rho, tau, mae = _rank_scores(yy, pred)
    frame = pl.DataFrame({"config": cfg.tolist(), "group": grp.tolist(), "actual": yy, "predicted": pred,
                          "law": law.tolist()})
    return ValidationResult("loco" if groups is None else "leave_one_group_out", frame, rho, tau, mae,
                            _bootstrap_scores(yy, pred, n_boot, seed, confidence), confidence)


def directional_cross_validate(x: Sequence[float], y: Sequence[float], configs: Sequence[str],
                               groups: Sequence[str] | None = None) -> np.ndarray:
    """Out-of-group scores for ranking by one statistic alone: every held-out group gets ``±x``, the sign
    being that of the statistic's Spearman correlation with ``y`` on the other configurations (+ when 0).
    Only the direction is learned, so the scores rank but are not on the target's scale.

    >>> directional_cross_validate([3, 2, 1, 0], [0.0, 0.1, 0.2, 0.3], list("abcd")).tolist()
    [-3.0, -2.0, -1.0, -0.0]
    """
    xx, yy = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    grp = np.asarray(list(configs if groups is None else groups), dtype=object)
    out = np.empty_like(xx)
    for g in set(grp.tolist()):
        test = grp == g
        rho = _rank_scores(yy[~test], xx[~test])[0]
        out[test] = (-1.0 if rho < 0 else 1.0) * xx[test]
    return out


def stability(X: pl.DataFrame, y: Sequence[float], features: str | Sequence[str] | None = None,
              n_boot: int = 200, lasso_alpha: float | None = None, seed: int = 0) -> pl.DataFrame:
    """Bootstrap-Lasso: fraction of resamples in which each (standardized) feature gets a non-zero
    coefficient. ``lasso_alpha`` None → chosen once on the full data by LassoCV (≤ 10 folds) with the
    one-standard-error rule.

    Columns ``feature, selection_frequency, mean_coef, sign_consistency``, sorted by frequency.
    """
    from sklearn.linear_model import Lasso, LassoCV

    names = _feature_list(features) if features is not None else X.columns
    x, names = _as_matrix(X, names)
    yy = np.asarray(y, dtype=float)
    if x.shape[0] < 4:
        raise TtsplanError(f"stability needs at least 4 configurations, got {x.shape[0]}.")
    keep = np.isfinite(x).all(axis=0) & (x.std(axis=0) > 1e-12)
    dropped = [n for n, k in zip(names, keep) if not k]
    x, names = x[:, keep], [n for n, k in zip(names, keep) if k]
    if not names:
        raise TtsplanError(f"stability needs at least one finite, varying feature, got none (dropped {', '.join(dropped)}).")
    z = (x - x.mean(axis=0)) / x.std(axis=0)
    if lasso_alpha is None:  # one-standard-error rule on the LassoCV path (sparser than the CV minimum)
        cv = min(x.shape[0], 10)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            path = LassoCV(cv=cv, alphas=30, max_iter=5000).fit(z, yy)
        mse = path.mse_path_.mean(axis=1)
        se = path.mse_path_.std(axis=1) / np.sqrt(path.mse_path_.shape[1])
        best = int(np.argmin(mse))
        lasso_alpha = float(path.alphas_[mse <= mse[best] + se[best]].max())
    rng = np.random.default_rng(seed)
    sel = np.zeros(len(names))
    coefs = np.zeros((n_boot, len(names)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for b in range(n_boot):
            idx = rng.integers(0, len(yy), len(yy))
            zb = z[idx]
            sd = zb.std(axis=0)
            zb = (zb - zb.mean(axis=0)) / np.where(sd > 1e-12, sd, 1.0)
            c = Lasso(alpha=lasso_alpha, max_iter=5000).fit(zb, yy[idx]).coef_
            coefs[b] = c
            sel += np.abs(c) > 1e-10
    mean_sign = np.sign(coefs).mean(axis=0)
    rows = [{"feature": n, "selection_frequency": float(s / n_boot), "mean_coef": float(coefs[:, j].mean()),
             "sign_consistency": float(abs(mean_sign[j]))} for j, (n, s) in enumerate(zip(names, sel))]
    rows += [{"feature": n, "selection_frequency": 0.0, "mean_coef": 0.0, "sign_consistency": 0.0} for n in dropped]
    out = pl.DataFrame(rows, schema={"feature": pl.String, "selection_frequency": pl.Float64,
                                     "mean_coef": pl.Float64, "sign_consistency": pl.Float64})
    return out.sort(["selection_frequency", "feature"], descending=[True, False])


def compare_feature_sets(X: pl.DataFrame, y: Sequence[float], configs: Sequence[str],
                         sets: dict[str, Sequence[str]] | None = None, alpha: float = 1.0, n_boot: int = 1000,
                         seed: int = 0) -> pl.DataFrame:
    """LOCO scores per feature subset (default: core3+entropy, all available, accuracy alone, the success
    model's gain prediction alone and added to the core set).

    Features with nulls (unsupported by a source) are left out of a set with a warning.
    """
    if sets is None:
        avail = [c for c in all_features() if c in X.columns]
        sets = {"core+entropy": core_set(X), "all": avail, "accuracy": ("accuracy",), "model": (MODEL_FEATURE,),
                "core+entropy+model": (*core_set(X), MODEL_FEATURE)}
    rows = []
    for name, cols in sets.items():
        usable = [c for c in cols if c in X.columns and X[c].null_count() == 0 and X[c].is_nan().sum() == 0]
        if len(usable) < len(list(cols)):
            miss = [c for c in cols if c not in usable]
            warnings.warn(f"feature set {name!r}: left out {', '.join(miss)} (null for some configurations).",
                          GainDataWarning, stacklevel=2)
        if not usable:
            continue
        res = cross_validate(X, y, configs, alpha=alpha, features=usable, n_boot=n_boot, seed=seed)
        lo, hi = res.intervals.get("spearman", (None, None))
        rows.append({"feature_set": name, "features": ",".join(usable), "n_features": len(usable),
                     "loco_spearman": res.spearman, "ci_low": lo, "ci_high": hi, "loco_kendall": res.kendall,
                     "loco_mae": res.mae})
    return pl.DataFrame(rows, schema={"feature_set": pl.String, "features": pl.String, "n_features": pl.Int64,
                                      "loco_spearman": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64,
                                      "loco_kendall": pl.Float64, "loco_mae": pl.Float64})


# ------------------------------------------------------------------------------------ data


def _recorded(table: pl.DataFrame) -> pl.DataFrame:
    """``config, kmin``: the fewest samples any prompt of each configuration has."""
    if table_kind(table) == "counts":
        sizes = table.select("config", pl.col("samples").alias("k"))
    else:
        sizes = table.group_by(["config", "prompt_id"]).len().rename({"len": "k"})
    return sizes.group_by("config").agg(pl.col("k").min().cast(pl.Int64).alias("kmin")).sort("config")


def default_k_features(table: pl.DataFrame, n: int) -> int:
    """The default feature budget for a gain at ``n``: half of what is recorded, so that features and target
    use disjoint samples. With R the fewest samples per prompt among the configurations that record more
    than ``n``, it is ``min(R // 2, R − n)``.

    >>> import polars as pl
    >>> t = pl.DataFrame({"config": ["a"] * 3 + ["b"] * 3, "prompt_id": list("xyzxyz"),
    ...                   "samples": [40, 40, 41, 100, 100, 100], "correct_samples": [1, 2, 3, 4, 5, 6]})
    >>> default_k_features(t, 10), default_k_features(t, 30)
    (20, 10)
    """
    rec = _recorded(table)
    ok = rec.filter(pl.col("kmin") > int(n))
    if ok.height == 0:
        most = int(rec["kmin"].max()) if rec.height else 0
        raise TtsplanError(f"n must be below the samples recorded per prompt, so that the gain is measured on samples "
                           f"the features did not use, got n={n} with at most {most} recorded. Lower --n to at most "
                           f"{max(most - 1, 1)} (e.g. --n {max(most // 2, 2)}).")
    r = int(ok["kmin"].min())
    return max(1, min(r // 2, r - int(n)))


def split_samples(table: pl.DataFrame, k: int, seed: int = 0, random_subset: bool = False
                  ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Disjoint (feature, target) samples per prompt: the first ``k`` samples (by ``sample_idx``; a seeded
    random k-subset when ``random_subset``) and all the others, renumbered from 0. Count tables are split
    hypergeometrically: ``k`` of each prompt's samples are drawn without replacement for the features,
    the remaining ``samples − k`` (and their correct ones) form the target. Every prompt needs more than
    ``k`` samples (the caller filters).

    >>> import polars as pl
    >>> t = pl.DataFrame({"config": "c", "prompt_id": "q", "sample_idx": [0, 1, 2, 3, 4],
    ...                   "correct": [True, False, False, True, True]})
    >>> f, g = split_samples(t, 2)
    >>> f["correct"].to_list(), g["correct"].to_list(), g["sample_idx"].to_list()
    ([True, False], [False, True, True], [0, 1, 2])
    """
    if table_kind(table) == "counts":
        n = table["samples"].to_numpy().astype(np.int64)
        c = table["correct_samples"].to_numpy().astype(np.int64)
        cf = np.random.default_rng(seed).hypergeometric(c, n - c, k)
        feat = table.with_columns(pl.lit(k, dtype=pl.Int64).alias("samples"), pl.Series("correct_samples", cf))
        tgt = table.with_columns(pl.Series("samples", n - k), pl.Series("correct_samples", c - cf))
        return feat, tgt
    if random_subset:
        key = pl.Series("_u", np.random.default_rng(seed).random(table.height))
    else:
        key = table["sample_idx"].alias("_u")
    t = table.with_columns(key).with_columns(
        (pl.col("_u").rank("ordinal").over(["config", "prompt_id"]) - 1).cast(pl.Int64).alias("_r"))
    feat = (t.filter(pl.col("_r") < k).with_columns(pl.col("_r").cast(table["sample_idx"].dtype).alias("sample_idx"))
            .drop("_u", "_r").sort(["config", "prompt_id", "sample_idx"]))
    tgt = (t.filter(pl.col("_r") >= k).with_columns((pl.col("_r") - k).cast(table["sample_idx"].dtype).alias("sample_idx"))
           .drop("_u", "_r").sort(["config", "prompt_id", "sample_idx"]))
    return feat, tgt


def _gain_at(table: pl.DataFrame, target: str, n: int, name: str) -> pl.DataFrame:
    """``config, <name>_value, <name>_pass1, <name>`` (= target@n − pass@1): unbiased per-prompt estimates
    on ``table``'s samples, averaged over prompts."""
    curves = prompt_curves(table, target, sorted({1, int(n)}))
    p1 = prompt_curves(table, "pass", [1]) if target != "pass" else curves.filter(pl.col("k") == 1)
    return (curves.filter(pl.col("k") == int(n)).group_by("config").agg(pl.col("value").mean().alias(f"{name}_value"))
            .join(p1.group_by("config").agg(pl.col("value").mean().alias(f"{name}_pass1")), on="config")
            .with_columns((pl.col(f"{name}_value") - pl.col(f"{name}_pass1")).alias(name)).sort("config"))


def gain_dataset(table: pl.DataFrame, target: str, n: int, k_features: int | str | None = None,
                 n_prompts: int | None = None, seed: int = 0, random_subset: bool = False) -> pl.DataFrame:
    """Config features from some samples, gain targets from the others: ``config, model, dataset, n_prompts,
    k, <FEATURES>, model_gain, curve_<law>…, observed_gain, pass1, value_at_n, gain, k_features, target_samples``.

    Every prompt's samples are split in two disjoint parts (:func:`split_samples`): the first
    ``k_features`` samples (a seeded random subset with ``random_subset``; counts are split
    hypergeometrically) give the features, and ``gain = target@n − pass@1`` is the unbiased estimate on
    the remaining samples only. So a configuration needs ``k_features + n`` samples per prompt; those with
    fewer are skipped with a warning naming them, and if none is left it is an error. ``k_features``
    None → :func:`default_k_features` (half of what is recorded). Features may further be restricted to
    ``n_prompts`` random prompts per config. ``observed_gain`` is the baseline the predictor must beat:
    target@k_features − pass@1 observed on the same feature samples (0 for k_features = 1).
    ``table`` is a validated SampleTable or CountTable, so a configuration is a (config, dataset) pair
    (validation splits shared names into ``"config [dataset]"``).
    """
    if target not in TARGETS:
        raise TtsplanError(f"target must be one of {', '.join(TARGETS)}, got {target!r}.{did_you_mean(target, TARGETS)}")
    if int(n) < 2:
        raise TtsplanError(f"n must be >= 2 (the gain at n = 1 is 0 by definition), got {n}.")
    n = int(n)
    kind = table_kind(table)
    if kind == "counts" and target != "pass":
        raise TtsplanError(f"target {target!r} needs per-sample answers/rewards, got a count table. Use --target pass.")
    if kind == "samples":
        need = {"maj": "answer", "bon": "reward"}.get(target)
        if need and not has_values(table, need):
            raise TtsplanError(f"target {target!r} needs column {need!r} with values, got none. "
                               f"Use --target pass{' or maj' if target == 'bon' else ''}.")
        table = table.filter(pl.col("correct").is_not_null())
    if k_features is None:
        k_features = default_k_features(table, n)
    try:
        k_features = int(k_features)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TtsplanError(f"k_features must be a positive integer (the feature samples per prompt; the gain is "
                           f"measured on the others), got {k_features!r}. Omit it for half of what is recorded.") from None
    if k_features < 1:
        raise TtsplanError(f"k_features must be >= 1, got {k_features}.")
    need_k = k_features + n
    per_cfg = _recorded(table)
    short = per_cfg.filter(pl.col("kmin") < need_k)
    if short.height == per_cfg.height:
        most = int(per_cfg["kmin"].max()) if per_cfg.height else 0
        raise TtsplanError(f"k_features + n must be <= the samples recorded per prompt (features and target use "
                           f"disjoint samples), got {k_features} + {n} = {need_k} with at most {most} recorded. "
                           f"Lower --n or --k-features so that they sum to at most {most}.")
    if short.height:
        names = ", ".join(f"{r['config']} (min {r['kmin']} samples)" for r in short.iter_rows(named=True))
        warnings.warn(f"skipped {short.height} configuration(s) with fewer than k_features + n = {k_features} + {n} = "
                      f"{need_k} samples per prompt: {names}.", GainDataWarning, stacklevel=2)
        table = table.filter(~pl.col("config").is_in(short["config"].to_list()))
    feat_table, tgt_table = split_samples(table, k_features, seed, random_subset)
    tgt = _gain_at(tgt_table, target, n, "gain").rename({"gain_value": "value_at_n", "gain_pass1": "pass1"})
    if n_prompts is not None:
        rng = np.random.default_rng(seed)
        keys = feat_table.select("config", "prompt_id").unique().sort(["config", "prompt_id"])
        keys = keys.with_columns(pl.Series("_u", rng.random(keys.height)))
        keys = keys.filter(pl.col("_u").rank("ordinal").over("config") <= n_prompts).drop("_u")
        feat_table = feat_table.join(keys, on=["config", "prompt_id"], how="semi")
    observed = _gain_at(feat_table, target, k_features, OBSERVED_FEATURE).select("config", OBSERVED_FEATURE)
    feats = (config_features(feat_table).join(model_gain(feat_table, target, n), on="config", how="left")
             .join(curve_gains(feat_table, target, n, k_features), on="config", how="left")
             .join(observed, on="config", how="left"))
    out = (feats.join(tgt, on="config", how="inner").sort("config")
           .with_columns(pl.lit(k_features, dtype=pl.Int64).alias("k_features"),
                         pl.lit(int(per_cfg.filter(pl.col("kmin") >= need_k)["kmin"].min()) - k_features,
                                dtype=pl.Int64).alias("target_samples")))
    if out["gain"].null_count():
        raise TtsplanError(f"the {target}@{n} gain is unavailable for "
                           f"{', '.join(out.filter(pl.col('gain').is_null())['config'].to_list())}.")
    return out


def concentration(table: pl.DataFrame, target: str, n: int, features: str | Sequence[str] = "core",
                  prompt_counts: Sequence[int | None] = (25, 50, 100, None), ks: Sequence[int | str] = (2, 4, 8, "all"),
                  reps: int = 3, alpha: float = 1.0, seed: int = 0, pool: int | None = None) -> pl.DataFrame:
    """LOCO ρ as the validation pass shrinks: features from ``n_prompts`` prompts × ``k`` samples
    (subsampled ``reps`` times; None = every prompt), drawn at random from the first ``pool`` samples of
    each prompt (None → the largest number in ``ks``; "all" = the whole pool); the target is always the
    gain on the samples after the pool, disjoint from every feature subset.

    Columns ``n_prompts, k, loco_spearman_mean, loco_spearman_sd, reps``.
    """
    if pool is None:
        pool = max([int(k) for k in ks if k != "all"], default=0)
    if pool < 1 or any(k != "all" and int(k) > pool for k in ks):
        raise TtsplanError(f"pool must be >= 1 and >= every k, got pool {pool} and ks {list(ks)}.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GainDataWarning)
        full = gain_dataset(table, target, n, k_features=pool)
    keep = full["config"].to_list()
    base = table.filter(pl.col("correct").is_not_null()) if "correct" in table.columns else table
    feat_pool, _ = split_samples(base.filter(pl.col("config").is_in(keep)), pool, seed)
    rows = []
    for npr in prompt_counts:
        for k in ks:
            kk = pool if k == "all" else int(k)
            vals = []
            for r in range(reps if (npr is not None or kk < pool) else 1):
                sub, _ = split_samples(feat_pool, kk, seed + r, random_subset=kk < pool)
                if npr is not None:
                    rng = np.random.default_rng(seed + r)
                    keys = sub.select("config", "prompt_id").unique().sort(["config", "prompt_id"])
                    keys = keys.with_columns(pl.Series("_u", rng.random(keys.height)))
                    keys = keys.filter(pl.col("_u").rank("ordinal").over("config") <= npr).drop("_u")
                    sub = sub.join(keys, on=["config", "prompt_id"], how="semi")
                data = (config_features(sub).join(model_gain(sub, target, n), on="config", how="left")
                        .join(full.select("config", "gain"), on="config", how="inner").sort("config"))
                wanted = core_set(data) if features == "core" else resolve_features(features)
                cols = [c for c in wanted if data[c].null_count() == 0]
                if not cols or data.height < 4:
                    continue
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", GainDataWarning)
                    res = cross_validate(data, data["gain"].to_numpy(), data["config"].to_list(), alpha=alpha,
                                         features=cols, n_boot=0)
                vals.append(res.spearman)
            if vals:
                rows.append({"n_prompts": npr, "k": kk, "loco_spearman_mean": float(np.mean(vals)),
                             "loco_spearman_sd": float(np.std(vals)), "reps": len(vals)})
    return pl.DataFrame(rows, schema={"n_prompts": pl.Int64, "k": pl.Int64, "loco_spearman_mean": pl.Float64,
                                      "loco_spearman_sd": pl.Float64, "reps": pl.Int64})

# ------------------------------------------------------------------------------------ report
def _usable(data: pl.DataFrame, spec: str | Sequence[str]) -> list[str]:
    """Resolve a feature spec against the data: ``all`` drops unsupported (null) features with a
    warning; an explicit or core set with nulls is an error naming them."""
    names = list(core_set(data)) if spec == "core" else list(resolve_features(spec))
    nulls = [c for c in names if c not in data.columns or data[c].null_count() > 0 or data[c].is_nan().any()]
    if spec == "all":
        if nulls:
            warnings.warn(f"features unsupported by this data (null for some configurations) left out: "
                          f"{', '.join(nulls)}.", GainDataWarning, stacklevel=3)
        names = [c for c in names if c not in nulls]
        if not names:
            raise TtsplanError("no feature has values for every configuration. Check the input tables.")
        return names
    if nulls:
        raise TtsplanError(f"features must have values for every configuration, got nulls for {', '.join(nulls)} "
                           f"(count tables support only {', '.join(COUNT_FEATURES)}; answer-based features need an "
                           "answer column). Use --features all or --features counts.")
    return names


def paired_difference(y: Sequence[float], pred_a: Sequence[float], pred_b: Sequence[float], n_boot: int = 1000,
                      seed: int = 0, confidence: float = DEFAULT_CI_CONFIDENCE) -> dict[str, object]:
    """Spearman ρ and MAE of predictions ``a`` minus those of ``b`` against the same ``y``, with percentile
    intervals from one bootstrap over configurations shared by both (paired).

    >>> d = paired_difference([1, 2, 3, 4], [1, 2, 3, 4], [4, 3, 2, 1], n_boot=0)
    >>> d["spearman_difference"], d["mae_difference"]
    (2.0, -2.0)
    """
    yy, pa, pb = (np.asarray(v, dtype=float) for v in (y, pred_a, pred_b))
    ra, _, ma = _rank_scores(yy, pa)
    rb, _, mb = _rank_scores(yy, pb)
    out: dict[str, object] = {"spearman_difference": ra - rb, "spearman_difference_ci": [None, None],
                              "mae_difference": ma - mb, "mae_difference_ci": [None, None]}
    if n_boot > 0:
        idx = np.random.default_rng(seed).integers(0, yy.size, (n_boot, yy.size))
        d_rho = _boot_rho(yy[idx], pa[idx]) - _boot_rho(yy[idx], pb[idx])
        d_mae = np.abs(yy[idx] - pa[idx]).mean(axis=1) - np.abs(yy[idx] - pb[idx]).mean(axis=1)
        a = (1 - confidence) / 2
        out["spearman_difference_ci"] = [float(v) for v in np.quantile(d_rho, [a, 1 - a])]
        out["mae_difference_ci"] = [float(v) for v in np.quantile(d_mae, [a, 1 - a])]
    return out


def _scored(y: np.ndarray, pred: np.ndarray, n_boot: int, seed: int, confidence: float,
            scale: bool = True) -> dict:
    """ρ, τ, MAE (None when ``scale`` is False: scores that only rank) with bootstrap intervals."""
    rho, tau, mae = _rank_scores(y, pred)
    ci = _bootstrap_scores(y, pred, n_boot, seed, confidence)
    return {"spearman": rho, "spearman_ci": list(ci.get("spearman", (None, None))), "kendall": tau,
            "kendall_ci": list(ci.get("kendall", (None, None))), "mae": mae if scale else None,
            "mae_ci": list(ci.get("mae", (None, None))) if scale else [None, None]}


def _baseline_row(name: str, scoring: str, description: str, y: np.ndarray, loco_pred: np.ndarray,
                  lodo_pred: np.ndarray | None, pred: np.ndarray, lodo_predictor: np.ndarray | None, scale: bool,
                  n_boot: int, seed: int, confidence: float) -> dict:
    """One baseline, scored LOCO and (where there are datasets) LODO, with the paired bootstrap difference
    predictor − this baseline under each scheme (the MAE difference only where the baseline is on scale)."""
    lo = _scored(y, loco_pred, n_boot, seed, confidence, scale)
    row = {"name": name, "scoring": scoring, "description": description,
           **{f"loco_{m}": v for m, v in lo.items()},
           "vs_predictor": paired_difference(y, pred, loco_pred, n_boot=n_boot, seed=seed, confidence=confidence)}
    if lodo_pred is not None and lodo_predictor is not None:
        ld = _scored(y, lodo_pred, n_boot, seed, confidence, scale)
        row.update({f"lodo_{m}": v for m, v in ld.items()})
        row["vs_predictor_lodo"] = paired_difference(y, lodo_predictor, lodo_pred, n_boot=n_boot, seed=seed,
                                                     confidence=confidence)
    for key in ("vs_predictor", "vs_predictor_lodo"):
        if not scale and key in row:  # not on the scale of the target at n
            row[key]["mae_difference"] = None
            row[key]["mae_difference_ci"] = [None, None]
    return row


def _baselines(data: pl.DataFrame, y: np.ndarray, configs: list[str], loco: ValidationResult,
               lodo: ValidationResult | None, datasets: list[str] | None, target: str, k: int, alpha: float,
               n_boot: int, seed: int, confidence: float) -> dict:
    """The baselines, from the same k feature samples and scored against the same held-out target:

    - the observed gain ranked as is (no parameter, so nothing to leave out: LOCO = LODO; ρ and τ only, its
      values are on the scale of k, not n);
    - the observed gain mapped to the target by the predictor's own leave-one-out ridge on that one feature
      (ρ, τ, MAE);
    - the agreement alone (mean top-answer share of the k samples; sample tables with answers), ranked with
      the direction (more or less agreement, more gain) learned on the training configurations.

    Each carries the paired bootstrap difference predictor − baseline; the verdict is against the baseline
    with the higher LOCO ρ (and, separately, the higher LODO ρ)."""
    observed = data[OBSERVED_FEATURE].to_numpy()
    pred = loco.predictions["predicted"].to_numpy()
    lodo_pred = lodo.predictions["predicted"].to_numpy() if lodo is not None else None
    common = {"y": y, "pred": pred, "lodo_predictor": lodo_pred, "n_boot": n_boot, "seed": seed,
              "confidence": confidence}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GainDataWarning)
        mapped = cross_validate(data, y, configs, alpha=alpha, features=[OBSERVED_FEATURE], n_boot=0)
        mapped_lodo = (cross_validate(data, y, configs, groups=datasets, alpha=alpha, features=[OBSERVED_FEATURE],
                                      n_boot=0) if lodo is not None else None)
    what = f"observed {target}@{k} − pass@1 of the same {k} feature samples"
    rows = [
        _baseline_row("observed_gain", "ranked as is (nothing fitted)", what, loco_pred=observed,
                      lodo_pred=observed if lodo is not None else None, scale=False, **common),
        _baseline_row("observed_gain_loco", "held-out ridge on that one feature", what,
                      loco_pred=mapped.predictions["predicted"].to_numpy(),
                      lodo_pred=mapped_lodo.predictions["predicted"].to_numpy() if mapped_lodo is not None else None,
                      scale=True, **common),
    ]
    rows[1]["predictions"] = mapped.predictions.select("config", "actual", "predicted").to_dicts()
    note = None
    agree = data[AGREEMENT_FEATURE].cast(pl.Float64).fill_null(np.nan).to_numpy() \
        if AGREEMENT_FEATURE in data.columns else np.full(len(configs), np.nan)
    if np.isfinite(agree).all():
        rows.append(_baseline_row(
            "agreement", "ranked, direction learned on the training configurations",
            f"agreement alone: mean top-answer share of the same {k} feature samples",
            loco_pred=directional_cross_validate(agree, y, configs),
            lodo_pred=directional_cross_validate(agree, y, configs, datasets) if lodo is not None else None,
            scale=False, **common))
    else:
        note = "agreement needs an answer per sample (count tables have none); no agreement baseline."
    best = max(rows, key=lambda r: r["loco_spearman"])
    d = float(best["vs_predictor"]["spearman_difference"])
    verdict = "predictor" if d > 1e-12 else ("baseline" if d < -1e-12 else "tie")
    out = {"baselines": rows, "best_baseline": best["name"], "predictor_minus_best_baseline_spearman": d,
           "predictor_minus_best_baseline_spearman_ci": best["vs_predictor"]["spearman_difference_ci"],
           "better_by_loco_spearman": verdict}
    if note:
        out["agreement_note"] = note
    if lodo is not None:
        best_lodo = max(rows, key=lambda r: r["lodo_spearman"])
        d = float(best_lodo["vs_predictor_lodo"]["spearman_difference"])
        out.update({"best_baseline_lodo": best_lodo["name"], "predictor_minus_best_baseline_lodo_spearman": d,
                    "predictor_minus_best_baseline_lodo_spearman_ci":
                        best_lodo["vs_predictor_lodo"]["spearman_difference_ci"],
                    "better_by_lodo_spearman": "predictor" if d > 1e-12 else ("baseline" if d < -1e-12 else "tie")})
    return out


def _predictor_cv(method: str, data: pl.DataFrame, y: np.ndarray, configs: list[str], groups: list[str] | None,
                  cols: list[str], alpha: float, n_boot: int, seed: int, confidence: float) -> ValidationResult:
    if method == "curve":
        return curve_cross_validate(data, y, configs, groups=groups, n_boot=n_boot, seed=seed, confidence=confidence)
    return cross_validate(data, y, configs, groups=groups, alpha=alpha, features=cols, n_boot=n_boot, seed=seed,
                          confidence=confidence)


def fit_report(table: pl.DataFrame, target: str, n: int, features: str | Sequence[str] | None = None,
               k_features: int | str | None = None, alpha: float = 1.0, n_boot: int = 1000, n_boot_stability: int = 200,
               seed: int = 0, confidence: float = DEFAULT_CI_CONFIDENCE, method: str = "curve") -> dict:
    """Everything ``ttsplan fit`` reports: dataset (features and target on disjoint samples) → the predictor
    (``method="curve"``, the default: each configuration's own target@j curve over j ≤ k extrapolated to n,
    the law chosen inside the training folds, :func:`curve_cross_validate`; ``"ridge"``: ridge on
    ``features``, default ``"core"``, which ranks below the observed-gain baseline on the shared data) scored
    leave-one-config-out, leave-one-dataset-out (≥ 3 datasets) and leave-one-model-out (≥ 3 models) → the
    baselines scored the same ways, with the paired differences → stability (bootstrap-Lasso over the
    candidate config features) → feature-set comparison (ridge LOCO per feature set). ``alpha`` is the ridge
    penalty of the ridge predictor, of the LOCO-mapped baseline and of the feature-set comparison; the
    curve predictor takes no ``features`` (passing any is an error). Returns a JSON-ready dict."""
    if method not in METHODS:
        raise TtsplanError(f"method must be one of {', '.join(METHODS)}, got {method!r}.{did_you_mean(method, METHODS)}")
    if method == "curve" and features is not None:
        raise TtsplanError("features select the ridge's inputs; the curve predictor (method 'curve', the default) "
                           "uses none. Use method 'ridge' (--method ridge) with features, or drop them.")
    if features is None:
        features = "core"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", GainDataWarning)
        data = gain_dataset(table, target, n, k_features=k_features, seed=seed)
    skipped = [str(w.message) for w in caught if issubclass(w.category, GainDataWarning)]
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    kf = int(data["k_features"][0]) if data.height else int(k_features or 0)
    if data.height < 3:
        raise TtsplanError(f"a gain model needs at least 3 configurations with >= k_features + n = {kf} + {n} samples "
                           f"per prompt, got {data.height} ({', '.join(data['config'].to_list()) or 'none'}). Add "
                           "configurations or lower --n / --k-features.")
    y = data["gain"].to_numpy()
    if np.ptp(y) < 1e-12:
        raise TtsplanError(f"the {target}@{n} gain must vary across configurations to be ranked, got the same value "
                           f"{y[0]:.4g} for all {data.height} (all answers identical or nothing ever correct?).")
    if method == "curve":
        cols = [c for c in CURVE_CANDIDATES if data[c].null_count() == 0 and not data[c].is_nan().any()]
        if not cols:
            raise TtsplanError(f"the curve predictor needs k_features >= 2 (a curve over j = 1..k), got {kf}.")
    else:
        cols = _usable(data, features)
    configs = data["config"].to_list()
    loco = _predictor_cv(method, data, y, configs, None, cols, alpha, n_boot, seed, confidence)
    datasets = data["dataset"].to_list()
    lodo = None
    lodo_note = None
    if None in datasets or len(set(datasets)) < 3:
        lodo_note = "leave-one-dataset-out needs a dataset for every configuration and at least 3 datasets; skipped."
    else:
        try:
            lodo = _predictor_cv(method, data, y, configs, datasets, cols, alpha, n_boot, seed, confidence)
        except TtsplanError as exc:
            lodo_note = str(exc)
    target_samples = int(data["target_samples"].min())
    which = (f"a hypergeometric draw (seed {seed}) of" if table_kind(table) == "counts" else "the first")
    report: dict = {
        "target": target, "n": int(n), "method": method,
        "k_features": kf, "target_samples": target_samples,
        "split": (f"features from {which} {kf} samples per prompt; the target {target}@{n} − pass@1 estimated "
                  f"(unbiased) on the other samples (at least {target_samples} per prompt), disjoint from the features"),
        "n_configs": data.height,
        "features": cols, "alpha": alpha,
        "loco_spearman": loco.spearman, "loco_spearman_ci": list(loco.intervals.get("spearman", (None, None))),
        "loco_kendall": loco.kendall, "loco_kendall_ci": list(loco.intervals.get("kendall", (None, None))),
        "loco_mae": loco.mae, "loco_mae_ci": list(loco.intervals.get("mae", (None, None))),
        "confidence": confidence,
    }
    if lodo is not None:
        report.update({"lodo_spearman": lodo.spearman, "lodo_spearman_ci": list(lodo.intervals.get("spearman", (None, None))),
                       "lodo_kendall": lodo.kendall, "lodo_kendall_ci": list(lodo.intervals.get("kendall", (None, None))),
                       "lodo_mae": lodo.mae, "lodo_mae_ci": list(lodo.intervals.get("mae", (None, None))),
                       "n_datasets": len(set(datasets))})
    else:
        report["lodo_note"] = lodo_note
    if method == "curve":
        chosen = select_curve_law(data, y)
        report.update({"curve_law": chosen, "coefficients": {}, "raw_coefficients": {}, "intercept": None,
                       "standardization": None,
                       "curve_law_loco": dict(sorted(Counter(loco.predictions["law"].to_list()).items())),
                       "curve_law_lodo": (dict(sorted(Counter(lodo.predictions["law"].to_list()).items()))
                                          if lodo is not None else {})})
    else:
        model = GainPredictor(alpha=alpha, features=cols).fit(data, y)
        report.update({
            "coefficients": {c: float(v) for c, v in zip(cols, model.coef_)},
            "raw_coefficients": {c: float(v) for c, v in zip(cols, model.raw_coef_)},
            "intercept": model.intercept_,
            "standardization": {"mean": {c: float(v) for c, v in zip(cols, model.mean_)},
                                "scale": {c: float(v) for c, v in zip(cols, model.scale_)}}})
    report.update(_baselines(data, y, configs, loco, lodo, datasets if lodo is not None else None, target, kf, alpha,
                             n_boot, seed, confidence))
    models = data["model"].to_list()
    if len({m for m in models if m is not None}) >= 3 and None not in models:
        try:
            lomo = _predictor_cv(method, data, y, configs, models, cols, alpha, n_boot, seed, confidence)
            report.update({"lomo_spearman": lomo.spearman,
                           "lomo_spearman_ci": list(lomo.intervals.get("spearman", (None, None))),
                           "lomo_mae": lomo.mae, "n_models": len(set(models))})
        except TtsplanError as exc:
            report["lomo_note"] = str(exc)
    else:
        report["lomo_note"] = "leave-one-model-out needs at least 3 models; skipped."
    if data.height >= 4:
        if method == "curve":  # the candidate features the data supports, quietly (the predictor uses none)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", GainDataWarning)
                stab_cols = _usable(data, "all")
        else:
            stab_cols = _usable(data, "all") if features != "counts" else list(COUNT_FEATURES)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", GainDataWarning)
            stab = stability(data, y, features=stab_cols, n_boot=n_boot_stability, seed=seed)
            sets = compare_feature_sets(data, y, configs, alpha=alpha, n_boot=n_boot, seed=seed)
        report["stability"] = stab.to_dicts()
        report["feature_sets"] = sets.to_dicts()
    else:
        report["stability"] = []
        report["feature_sets"] = []
    report["skipped"] = skipped
    report["predictions"] = loco.predictions.select("config", "actual", "predicted").to_dicts()
    return report


__all__ = [
    "AGREEMENT_FEATURE",
    "CORE_FEATURES",
    "CORE_PLUS_ENTROPY",
    "COUNT_FEATURES",
    "CURVE_CANDIDATES",
    "CURVE_LAWS",
    "CURVE_MARGIN",
    "METHODS",
    "MODEL_FEATURE",
    "OBSERVED_FEATURE",
    "TARGETS",
    "GainDataWarning",
    "GainPredictor",
    "ValidationResult",
    "compare_feature_sets",
    "concentration",
    "core_set",
    "cross_validate",
    "curve_cross_validate",
    "curve_gains",
    "default_k_features",
    "directional_cross_validate",
    "fit_report",
    "gain_dataset",
    "model_gain",
    "paired_difference",
    "resolve_features",
    "select_curve_law",
    "split_samples",
    "stability",
]
