"""Defaults shared across layers, named once: every signature and CLI option uses these constants.

They live in the lowest layer that needs one (the features layer's estimators use the bootstrap level;
the cost model in fitting the GPU and serving engine), so every layer above can import them.

>>> DEFAULT_GPU, DEFAULT_SERVING_ENGINE, DEFAULT_CONFIDENCE, DEFAULT_CI_CONFIDENCE
('H100', 'vllm', 0.9, 0.95)
"""
from __future__ import annotations

#: GPU that prices workloads when none is named (the shipped calibration is for it).
DEFAULT_GPU = "H100"
#: serving engine whose calibration prices workloads (vllm, sglang, trtllm).
DEFAULT_SERVING_ENGINE = "vllm"
#: level of model-based intervals: success-model posteriors, scaling-law and extrapolation intervals.
DEFAULT_CONFIDENCE = 0.9
#: level of bootstrap confidence intervals on measured figures: curves, gain-model coefficients.
DEFAULT_CI_CONFIDENCE = 0.95

__all__ = ["DEFAULT_CI_CONFIDENCE", "DEFAULT_CONFIDENCE", "DEFAULT_GPU", "DEFAULT_SERVING_ENGINE"]
