"""ttsplan: plan test-time compute for LLM inference.

The public façade: what a notebook user reaches for, importable from ``ttsplan`` directly. Names load
lazily (``import ttsplan`` stays cheap); the layers live in ``ttsplan.features`` (data in),
``ttsplan.fitting`` (models out of data), ``ttsplan.planner`` (decisions), ``ttsplan.report`` (figures)
and ``ttsplan.cli``.

>>> import ttsplan
>>> ttsplan.Budget(8, "samples", per_prompt=True).per_prompt
True
>>> round(float(ttsplan.pass_at_k(10, 3, 2)), 4)  # 1 - C(7, 2) / C(10, 2)
0.5333
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> module that defines it
_FACADE: dict[str, str] = {
    # data in
    "read_samples": "ttsplan.features.io",
    "read_counts": "ttsplan.features.io",
    "read_table": "ttsplan.features.io",
    "to_counts": "ttsplan.features.io",
    "validate_sample_table": "ttsplan.features.schema",
    "validate_count_table": "ttsplan.features.schema",
    "curves": "ttsplan.features.estimators",
    "prompt_curves": "ttsplan.features.estimators",
    "pass_at_k": "ttsplan.features.estimators",
    "maj_at_k": "ttsplan.features.estimators",
    "bon_at_k": "ttsplan.features.estimators",
    "prompt_features": "ttsplan.features.stats",
    "config_features": "ttsplan.features.stats",
    "import_samples": "ttsplan.features.importers",
    "SamplerConfig": "ttsplan.features.sampler",
    "ValidationSampler": "ttsplan.features.sampler",
    "make_engine": "ttsplan.features.sampler",
    # models out of data
    "GainPredictor": "ttsplan.fitting.gain",
    "PromptSuccessModel": "ttsplan.fitting.success",
    "PilotSuccessModel": "ttsplan.fitting.success",
    "fit_pass_laws": "ttsplan.fitting.scaling",
    "extrapolation_table": "ttsplan.fitting.scaling",
    "extrapolate_pass": "ttsplan.fitting.scaling",
    "extrapolate_maj": "ttsplan.fitting.scaling",
    "select_law": "ttsplan.fitting.scaling",
    "CostModel": "ttsplan.fitting.cost",
    "kinetics_eflops": "ttsplan.fitting.cost",
    "Calibrator": "ttsplan.fitting.calibration",
    "get_model_spec": "ttsplan.fitting.specs",
    "get_gpu_spec": "ttsplan.fitting.specs",
    # decisions
    "Budget": "ttsplan.planner.budget",
    "Plan": "ttsplan.planner.plan",
    "make_plan": "ttsplan.planner.plan",
    "make_policy_plan": "ttsplan.planner.policy_plan",
    "PolicyPlan": "ttsplan.planner.policy_plan",
    "read_plan": "ttsplan.planner.policy_plan",
    "Objective": "ttsplan.planner.crossfit",
    "PlanOptions": "ttsplan.planner.crossfit",
    "FixedPolicy": "ttsplan.planner.policies",
    "AdaptivePolicy": "ttsplan.planner.policies",
    "score_policies": "ttsplan.planner.option_grid",
    "holdout": "ttsplan.planner.holdout",
    "Pricing": "ttsplan.planner.pricing",
    "make_pilot_plan": "ttsplan.planner.pilot_plan",
    "evaluate": "ttsplan.planner.evaluate",
    "AdaptiveSession": "ttsplan.planner.adaptive",
    "replay": "ttsplan.planner.replay",
    "run_plan": "ttsplan.planner.run",
}

__all__ = ["__version__", *sorted(_FACADE)]


def __getattr__(name: str) -> Any:
    module = _FACADE.get(name)
    if module is None:
        raise AttributeError(f"module 'ttsplan' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_FACADE))
