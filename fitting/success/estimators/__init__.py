"""The two success models: :class:`PromptSuccessModel` (labeled prompts) and :class:`PilotSuccessModel` (p from
unlabeled pilot samples). Both produce :class:`~ttsplan.fitting.success.posteriors.PromptPosteriors`."""
from __future__ import annotations

from ttsplan.fitting.success.estimators.labeled import DegenerateDataWarning, PromptSuccessModel
from ttsplan.fitting.success.estimators.pilot import PILOT_FEATURES, PilotSuccessModel, pilot_features

__all__ = ["PILOT_FEATURES", "DegenerateDataWarning", "PilotSuccessModel", "PromptSuccessModel", "pilot_features"]
