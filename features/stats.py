"""Per-prompt and per-config statistics of one validation pass (DESIGN §5).

Both levels share the feature names in :data:`FEATURES`. A feature that needs a column the data
lacks (rewards, entropies, token counts, answers) is null, never zero. Count tables support
``accuracy``, ``never_correct_fraction`` and ``first_correct_position`` (there the expected
position under a random order, (n+1)/(c+1), because the order is not recorded).

Per prompt (k samples): agreement = share of the k samples in the modal answer cluster; answer
entropy = Shannon entropy of the answer clusters / log k; first-correct position = 1-based index of
the first correct sample in ``sample_idx`` order, censored at k+1; length variance is over
log(1 + output_tokens). Per config: means over prompts, except ``agreement_spread`` (standard
deviation of agreement over prompts), ``never_correct_fraction`` (share of prompts with no correct
sample), ``length_variance`` (mean within-prompt variance) and ``reward_spread`` (mean within-prompt
standard deviation of the reward).

>>> import polars as pl
>>> from ttsplan.features.schema import validate_sample_table
>>> t = validate_sample_table(pl.DataFrame({"config": ["c"] * 4, "prompt_id": ["p"] * 4,
...     "sample_idx": [0, 1, 2, 3], "answer": ["1", "2", "2", "2"], "correct": [False, True, True, True]}))
>>> prompt_features(t).select("agreement_mean", "first_correct_position").row(0)
(0.75, 2.0)
"""
from __future__ import annotations

import polars as pl

from ttsplan.features.schema import has_values, table_kind

FEATURES: tuple[str, ...] = (
    "accuracy", "agreement_mean", "agreement_spread", "answer_entropy", "first_correct_position",
    "never_correct_fraction", "length_mean", "length_variance", "token_entropy", "logprob_mean",
    "reward_mean", "reward_spread",
)
#: The core three of DESIGN §5 plus the entropy add-on.
CORE_FEATURES: tuple[str, ...] = ("agreement_spread", "first_correct_position", "length_variance")
CORE_PLUS_ENTROPY: tuple[str, ...] = CORE_FEATURES + ("token_entropy",)
KEYS = ("config", "model", "dataset")
_NULL = pl.lit(None, dtype=pl.Float64)


def _or_null(present: bool, expr: pl.Expr) -> pl.Expr:
    return expr if present else _NULL


def _prompt_from_samples(table: pl.DataFrame) -> pl.DataFrame:
    has_answer = has_values(table, "answer")
    has_correct = has_values(table, "correct")
    clusters = (table.filter(pl.col("answer").is_not_null())
                .group_by(["config", "prompt_id", "answer"]).len("size"))
    k = table.group_by(["config", "prompt_id"]).len("k")
    shape = (clusters.join(k, on=["config", "prompt_id"])
             .with_columns((pl.col("size") / pl.col("k")).alias("share"))
             .group_by(["config", "prompt_id"])
             .agg(pl.col("share").max().alias("agreement_mean"),
                  (-(pl.col("share") * pl.col("share").log()).sum() / pl.col("k").first().cast(pl.Float64).log())
                  .abs().alias("answer_entropy")))
    log_len = (pl.col("output_tokens").cast(pl.Float64) + 1).log()
    first = pl.col("sample_idx").filter(pl.col("correct")).min() + 1
    per = (table.group_by(["config", "model", "dataset", "prompt_id"])
           .agg(pl.len().alias("k"),
                _or_null(has_correct, pl.col("correct").cast(pl.Float64).mean()).alias("accuracy"),
                _or_null(has_correct, first.cast(pl.Float64).fill_null(pl.len().cast(pl.Float64) + 1))
                .alias("first_correct_position"),
                _or_null(has_correct, (pl.col("correct").sum() == 0).cast(pl.Float64)).alias("never_correct_fraction"),
                _or_null(has_values(table, "output_tokens"), pl.col("output_tokens").cast(pl.Float64).mean())
                .alias("length_mean"),
                _or_null(has_values(table, "output_tokens"), log_len.var(ddof=0)).alias("length_variance"),
                _or_null(has_values(table, "entropy"), pl.col("entropy").mean()).alias("token_entropy"),
                _or_null(has_values(table, "logprob"), pl.col("logprob").mean()).alias("logprob_mean"),
                _or_null(has_values(table, "reward"), pl.col("reward").mean()).alias("reward_mean"),
                _or_null(has_values(table, "reward"), pl.col("reward").std(ddof=0)).alias("reward_spread")))
    per = per.join(shape, on=["config", "prompt_id"], how="left")
    if has_answer:
        # a prompt whose samples all lack an answer has agreement 0 and no answer entropy
        per = per.with_columns(pl.col("agreement_mean").fill_null(0.0))
    else:
        per = per.with_columns(_NULL.alias("agreement_mean"), _NULL.alias("answer_entropy"))
    per = per.with_columns(pl.when(pl.col("k") > 1).then(pl.col("answer_entropy")).alias("answer_entropy"),
                           _NULL.alias("agreement_spread"))
    return per


def _prompt_from_counts(table: pl.DataFrame) -> pl.DataFrame:
    n = pl.col("samples").cast(pl.Float64)
    c = pl.col("correct_samples").cast(pl.Float64)
    out = table.select(
        "config", "model", "dataset", "prompt_id", pl.col("samples").alias("k"),
        (c / n).alias("accuracy"),
        ((n + 1) / (c + 1)).alias("first_correct_position"),
        (c == 0).cast(pl.Float64).alias("never_correct_fraction"),
    )
    return out.with_columns([_NULL.alias(f) for f in FEATURES if f not in out.columns])


def prompt_features(table: pl.DataFrame, kind: str | None = None) -> pl.DataFrame:
    """One row per (config, prompt): ``config, model, dataset, prompt_id, k`` + :data:`FEATURES`.

    ``agreement_mean`` is the prompt's agreement; ``agreement_spread`` is null (it is defined across
    prompts); ``never_correct_fraction`` is 1.0 or 0.0.
    """
    kind = kind or table_kind(table)
    per = _prompt_from_counts(table) if kind == "counts" else _prompt_from_samples(table)
    return (per.select(*KEYS, "prompt_id", pl.col("k").cast(pl.Int64), *[pl.col(f).cast(pl.Float64) for f in FEATURES])
            .sort(["config", "prompt_id"]))


def aggregate_features(per_prompt: pl.DataFrame) -> pl.DataFrame:
    """Config-level features from :func:`prompt_features` output."""
    mean_of = [f for f in FEATURES if f != "agreement_spread"]
    return (per_prompt.group_by(list(KEYS))
            .agg(pl.len().alias("n_prompts"), pl.col("k").median().alias("k"),
                 *[pl.col(f).mean() for f in mean_of],
                 pl.col("agreement_mean").std(ddof=0).alias("agreement_spread"))
            .select(*KEYS, "n_prompts", "k", *FEATURES)
            .sort("config"))


def config_features(table: pl.DataFrame, kind: str | None = None) -> pl.DataFrame:
    """One row per config: ``config, model, dataset, n_prompts, k`` (median samples per prompt) + :data:`FEATURES`."""
    return aggregate_features(prompt_features(table, kind))
