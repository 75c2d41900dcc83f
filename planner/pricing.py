"""What prices a plan: model, GPU, serving calibration and engine, in one value object.

The package ships the calibration fitted on ``../shared/data/serving/h100_silicon.csv`` (vLLM, SGLang,
TRT-LLM rows of dense models; ``ttsplan.data.H100_CALIBRATION``) and uses it by default on H100. On
other GPUs, or with ``calibration="none"``, prices come from the uncalibrated roofline (peak
efficiency) and the note says so. The note also says when the priced model lies outside the
parameter range of the models the calibration was fitted on.

>>> p = Pricing("gemma-3-270m", "H100")
>>> p.calibrated, p.note().startswith("prices: calibration ttsplan.data/h100_calibration.json (vllm")
(True, True)
>>> Pricing("gemma-3-270m", "A100").note()
'prices: uncalibrated roofline for Gemma-3-270M on A100 (peak efficiency; no calibration for this GPU ships; pass --calibration calib.json from `ttsplan calibrate --out`)'
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ttsplan.data import H100_CALIBRATION
from ttsplan.features.defaults import DEFAULT_GPU, DEFAULT_SERVING_ENGINE
from ttsplan.features.errors import TtsplanError
from ttsplan.fitting.cost import CostModel
from ttsplan.fitting.specs import get_gpu_spec, get_model_spec

DEFAULT_ENGINE = DEFAULT_SERVING_ENGINE
#: GPU name -> calibration shipped with the package
SHIPPED: dict[str, Path] = {"H100": H100_CALIBRATION}


@dataclass(frozen=True)
class Pricing:
    """``calibration``: a calib.json path, ``None`` (the shipped one for the GPU, if any) or ``"none"``."""

    model: str
    gpu: str = DEFAULT_GPU
    calibration: str | Path | None = None
    engine: str = DEFAULT_ENGINE
    cost_model: CostModel = field(init=False, compare=False, repr=False)
    source: Path | None = field(init=False, compare=False)

    def __post_init__(self) -> None:
        gpu = get_gpu_spec(self.gpu).name
        src = calibration_source(gpu, self.calibration)
        object.__setattr__(self, "source", src)
        object.__setattr__(self, "cost_model", CostModel(self.model, gpu, calibration=src, engine=self.engine))

    @property
    def calibrated(self) -> bool:
        return self.source is not None

    def note(self) -> str:
        return pricing_note(self.cost_model, self.source, self.calibration, self.engine)


def _fitted_models(source: Path, engine: str) -> list[str]:
    data = json.loads(Path(source).read_text())
    names: set[str] = set()
    for e in data.get("entries", []):
        if str(e.get("engine", "")).lower() == engine or not names:
            names |= {m.strip() for m in str(e.get("metrics", {}).get("models", "")).split(",") if m.strip()}
    return sorted(names)


def pricing_note(cm: CostModel, source: Path | None, calibration: str | Path | None, engine: str) -> str:
    """What priced ``cm``'s figures: the calibration ``source`` (and whether the model lies outside the sizes it
    was fitted on), or the uncalibrated roofline and why (``calibration`` as the user gave it)."""
    if source is None:
        why = ("calibration disabled" if calibration is not None else
               "no calibration for this GPU ships; pass --calibration calib.json from `ttsplan calibrate --out`")
        return f"prices: uncalibrated roofline for {cm.model.name} on {cm.gpu.name} (peak efficiency; {why})"
    label = f"ttsplan.data/{source.name}" if source.parent == H100_CALIBRATION.parent else str(source)
    models = _fitted_models(source, engine)
    text = f"prices: calibration {label} ({engine} on {cm.gpu.name}"
    if models:
        params = []
        for m in models:
            try:
                params.append(get_model_spec(m).params)
            except TtsplanError:
                continue
        text += f", fitted on {', '.join(models)}"
        p = cm.model.params
        if params and not min(params) <= p <= max(params):
            text += (f"); {cm.model.name} ({p / 1e9:.2g}B parameters) lies outside the "
                     f"{min(params) / 1e9:.2g}B–{max(params) / 1e9:.2g}B it was fitted on, so its prices "
                     "are extrapolated")
            return text
    return text + ")"


def calibration_source(gpu: str, calibration: str | Path | None) -> Path | None:
    """The calib.json that prices ``gpu``: ``calibration`` itself, the one shipped for the GPU when it is
    ``None``, or no file (the uncalibrated roofline) for ``"none"``.

    >>> calibration_source("H100", None) == H100_CALIBRATION, calibration_source("H100", "none")
    (True, None)
    """
    if calibration is None:
        return SHIPPED.get(get_gpu_spec(gpu).name)
    if str(calibration).lower() == "none":
        return None
    src = Path(calibration)
    if not src.is_file():
        raise TtsplanError(f"--calibration must be a calib.json file written by `ttsplan calibrate --out`, "
                           f"got {str(src)!r}, which does not exist. Pass an existing file or 'none'.")
    return src


def pricing_or_none(model: str | None, gpu: str | None, calibration: Any = None) -> Pricing | None:
    return None if model is None else Pricing(model, gpu or DEFAULT_GPU, calibration)


__all__ = ["DEFAULT_ENGINE", "DEFAULT_GPU", "SHIPPED", "Pricing", "calibration_source", "pricing_note", "pricing_or_none"]
