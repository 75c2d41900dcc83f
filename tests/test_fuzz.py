"""Fuzzing the boundaries (issue 19): whatever a user feeds the plan reader or the table validators,
they either succeed or raise :class:`TtsplanError` (one message for the CLI), never another exception.

Plans: random JSON, and valid plans of both schemas with random parts deleted or replaced (the edited
plan files of the issue, generalized). Tables: random small DataFrames over contract and other column
names, with random dtypes and values.
"""
from __future__ import annotations

import copy
import functools
import json

import numpy as np
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ttsplan.features.errors import TtsplanError
from ttsplan.features.schema import COUNT_SCHEMA, SAMPLE_SCHEMA, validate_count_table, validate_sample_table
from ttsplan.planner.budget import Budget
from ttsplan.planner.plan import Plan, make_plan
from ttsplan.planner.crossfit import PlanOptions
from ttsplan.planner.policy_plan import make_policy_plan, read_plan
from ttsplan.planner.run import plan_caps

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=8)


@functools.cache
def valid_plans() -> tuple[dict, dict]:
    """A per-prompt plan (schema 1) and a policy plan (schema 2) of a small synthetic table, as dicts."""
    rng = np.random.default_rng(0)
    rows = [{"config": f"m/T0.{c + 5}", "model": "m", "prompt_id": f"p{i}", "sample_idx": j,
             "answer": str(int(rng.integers(0, 3))), "correct": None, "output_tokens": 5}
            for c in range(2) for i in range(6) for j in range(6)]
    table = validate_sample_table(pl.DataFrame(rows).with_columns((pl.col("answer") == "0").alias("correct")))
    per_prompt = json.loads(make_plan(table, Budget(3, "samples", per_prompt=True)).to_json())
    policy = json.loads(make_policy_plan(table, options=PlanOptions(folds=2, orders=1)).to_json())
    return per_prompt, policy


@st.composite
def edited(draw) -> object:
    """A valid plan with 1-4 random deletions / replacements anywhere in its tree."""
    d = copy.deepcopy(valid_plans()[draw(st.integers(0, 1))])
    for _ in range(draw(st.integers(1, 4))):
        node = d
        while True:
            keys = list(node) if isinstance(node, dict) else list(range(len(node)))
            if not keys:
                break
            key = draw(st.sampled_from(keys))
            child = node[key]
            if isinstance(child, (dict, list)) and child and draw(st.booleans()):
                node = child
                continue
            if draw(st.booleans()):
                del node[key]
            else:
                node[key] = draw(json_values)
            break
    return d


def _read(obj: object) -> None:
    try:
        plan = read_plan(json.dumps(obj))
    except TtsplanError:
        return
    if isinstance(plan, Plan):
        try:
            plan_caps(plan, None)  # what run and export do next with a plan that was read
        except TtsplanError:
            pass


def test_the_valid_plans_read():
    for d in valid_plans():
        read_plan(json.dumps(d))


@FUZZ
@given(json_values)
def test_read_plan_on_random_json_raises_only_ttsplan_errors(obj):
    _read(obj)


@FUZZ
@given(edited())
def test_read_plan_on_edited_plans_raises_only_ttsplan_errors(obj):
    _read(obj)


def _column(draw, name: str, n: int) -> pl.Series:
    kind = draw(st.sampled_from(["int", "float", "str", "bool", "null", "numstr"]))
    if kind == "int":
        return pl.Series(name, draw(st.lists(st.integers(-3, 10) | st.none(), min_size=n, max_size=n)), dtype=pl.Int64)
    if kind == "float":
        return pl.Series(name, draw(st.lists(st.floats(-5, 5) | st.just(float("nan")) | st.none(), min_size=n,
                                             max_size=n)), dtype=pl.Float64)
    if kind == "bool":
        return pl.Series(name, draw(st.lists(st.booleans() | st.none(), min_size=n, max_size=n)), dtype=pl.Boolean)
    if kind == "null":
        return pl.Series(name, [None] * n, dtype=pl.Null)
    if kind == "numstr":
        return pl.Series(name, draw(st.lists(st.sampled_from(["0", "1", "2.5", "-1", "true", "x", ""]) | st.none(),
                                             min_size=n, max_size=n)), dtype=pl.String)
    return pl.Series(name, draw(st.lists(st.text(max_size=4) | st.none(), min_size=n, max_size=n)), dtype=pl.String)


@st.composite
def frames(draw, schema: dict) -> pl.DataFrame:
    names = draw(st.lists(st.sampled_from([*schema, "run_id", "platform", "promt_id", "score"]), unique=True,
                          max_size=8))
    n = draw(st.integers(0, 5))
    return pl.DataFrame([_column(draw, name, n) for name in names]) if names else pl.DataFrame()


@FUZZ
@given(frames(SAMPLE_SCHEMA))
def test_validate_sample_table_raises_only_ttsplan_errors(df):
    try:
        out = validate_sample_table(df)
    except TtsplanError:
        return
    assert out.columns == list(SAMPLE_SCHEMA)


@FUZZ
@given(frames(COUNT_SCHEMA))
def test_validate_count_table_raises_only_ttsplan_errors(df):
    try:
        out = validate_count_table(df)
    except TtsplanError:
        return
    assert out.columns == list(COUNT_SCHEMA)
