"""Per-prompt plans for *new* prompts from an unlabeled pilot (``ttsplan plan LABELED --pilot-file PILOT``).

Two stages: every new prompt first gets K0 samples (the pilot; ``correct`` null or absent), then a
per-prompt (strategy, N) from its pilot answers. The pilot success model
(:class:`~ttsplan.fitting.success.PilotSuccessModel`) and the calibration offsets are fitted on the
*labeled* table only; the new prompts contribute nothing but their K0 unlabeled answers. N never
exceeds the samples per prompt of the labeled table (the evidence the model was fitted on), and
every N counts the pilot's K0 samples. The plan (schema 1, mode ``pilot``) records a hash of each
prompt's text when the prompts file is given, so ``ttsplan run`` / ``export`` can refuse other prompts.

>>> import polars as pl
>>> from ttsplan.features.schema import validate_sample_table
>>> lab = validate_sample_table(pl.DataFrame([{"config": "c", "prompt_id": f"p{i}", "sample_idx": j,
...     "answer": str((i + j) % 3 if i % 2 else 1), "correct": ((i + j) % 3 == 1) if i % 2 else True}
...     for i in range(16) for j in range(12)]))
>>> new = validate_sample_table(pl.DataFrame([{"config": "c", "prompt_id": f"n{i}", "sample_idx": j,
...     "answer": str(j % (i + 1))} for i in range(4) for j in range(3)]))
>>> plan = make_pilot_plan(lab, new)
>>> plan.mode, plan.pilot_k0, sorted({a.prompt_id for a in plan.allocations}), all(a.n >= 3 for a in plan.allocations)
('pilot', 3, ['n0', 'n1', 'n2', 'n3'], True)
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import polars as pl

from ttsplan.features.defaults import DEFAULT_CONFIDENCE
from ttsplan.features.errors import TtsplanError
from ttsplan.features.schema import table_kind
from ttsplan.fitting.success import DegenerateDataWarning
from ttsplan.planner.budget import Budget
from ttsplan.planner.plan import (
    DEFAULT_BUDGET_N,
    DEFAULT_GRID,
    Plan,
    _model_hash,
    pilot_posteriors,
    plan_config,
    prepare,
    prompt_text_hash,
    table_hash,
)


def _min_k(table: pl.DataFrame) -> int:
    return int(table.group_by("prompt_id").len()["len"].min())


def make_pilot_plan(labeled: pl.DataFrame, pilot: pl.DataFrame, budget: Budget | None = None, *,
                    strategies: str | Sequence[str] | None = None, prompts: Sequence[Any] | None = None,
                    confidence: float = DEFAULT_CONFIDENCE, seed: int = 0) -> Plan:
    """Plan the pilot table's prompts (see the module doc); ``budget`` in samples (default max(8, K0 + 1)/prompt)."""
    if "counts" in (table_kind(labeled), table_kind(pilot)):
        raise TtsplanError("--pilot-file needs sample tables (answers per sample), got a count table. Pass the "
                           "SampleTables of the labeled pass and of the pilot.")
    if budget is not None and budget.unit != "samples":
        raise TtsplanError(f"a pilot plan's budget must be in samples, got {budget.unit}. Use --unit samples.")
    lab_cfgs = set(labeled["config"].unique().to_list())
    cfgs = sorted(pilot["config"].unique().to_list())
    problems = [f"pilot configuration {c!r} must also be in the labeled table, got none of its samples there."
                for c in cfgs if c not in lab_cfgs]
    if problems:
        raise TtsplanError(" ".join(problems) + f" Labeled configurations: {', '.join(sorted(lab_cfgs))}.")
    pilot = pilot.with_columns(pl.lit(None, pl.Boolean).alias("correct"))
    configs, allocs, notes, k0s = [], [], [], set()
    for cfg in cfgs:
        lab = labeled.filter(pl.col("config") == cfg)
        pil = pilot.filter(pl.col("config") == cfg)
        k0, k_lab = _min_k(pil), _min_k(lab)
        if k0 < 2 or k_lab <= k0:
            raise TtsplanError(f"configuration {cfg!r}: the pilot must have >= 2 samples per prompt and fewer than "
                               f"the labeled table ({k_lab}), got {k0}. Sample a shorter pilot or a longer labeled "
                               "pass.")
        k0s.add(k0)
        pil = pil.filter(pl.col("sample_idx") < k0)
        grid = [g for g in DEFAULT_GRID if k0 <= g <= k_lab] or [k_lab]
        b = budget or Budget(float(max(DEFAULT_BUDGET_N, k0 + 1)), "samples", per_prompt=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DegenerateDataWarning)
            post = pilot_posteriors(pil, k0, confidence, seed, labeled=lab)
            val_post = pilot_posteriors(lab, k0, confidence, seed, labeled=lab)
            prep = prepare(pil, "samples", strategies, grid, None, k0, confidence, posteriors=post,
                           calibrate=(lab, val_post, k0))
        cp, al, _ = plan_config(prep, cfg, b, pilot=k0)
        configs.append(replace(cp, dataset=pil["dataset"][0] if "dataset" in pil.columns else None))
        allocs += al
        notes += [n for n in prep.notes if not n.startswith("calibrated to the exact curves")]
    if len(k0s) > 1:
        raise TtsplanError(f"the pilot must have the same samples per prompt in every configuration, got "
                           f"{sorted(k0s)}. Trim the pilot to the smallest.")
    k0 = k0s.pop()
    hashes: tuple[tuple[str, str], ...] = ()
    if prompts is not None:
        planned = {a.prompt_id for a in allocs}
        by_id = {p.id: p for p in prompts}
        missing = sorted(planned - set(by_id))
        if missing:
            raise TtsplanError(f"--prompts must hold every pilot prompt, got {len(missing)} missing (e.g. "
                               f"{', '.join(missing[:3])}). Pass the prompts file the pilot was sampled from.")
        hashes = tuple((pid, prompt_text_hash(by_id[pid].question or by_id[pid].prompt)) for pid in sorted(planned))
    else:
        notes.append("no --prompts given: run/export match the per-prompt caps by prompt id only")
    best = max(configs, key=lambda c: (c.per_prompt_accuracy, -c.per_prompt_cost)).config
    strat_names = sorted({a.strategy for a in allocs})
    return Plan(budget=budget or Budget(float(max(DEFAULT_BUDGET_N, k0 + 1)), "samples", per_prompt=True),
                mode="pilot", strategies=tuple(strat_names), grid=tuple(sorted({a.n for a in allocs})),
                configs=tuple(configs), allocations=tuple(allocs), recommended_config=best,
                input_hash=table_hash(pilot), model_hash=_model_hash([table_hash(labeled), k0, confidence, seed]),
                pilot_k0=k0, budget_is_default=budget is None,
                notes=tuple(dict.fromkeys(notes)) + ("calibrated per configuration to the exact curves of the "
                                                     "labeled table's samples after the first K0",
                                                     "per-prompt N for the pilot's unlabeled prompts; the success model and "
                                      "calibration were fitted on the labeled table only; expected accuracies are "
                                      "model predictions for these prompts",),
                prompt_hashes=hashes)


__all__ = ["make_pilot_plan"]
