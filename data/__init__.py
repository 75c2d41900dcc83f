"""The project's own small committed datasets, installed as ``ttsplan.data``.

>>> from ttsplan.data import DEFAULT_SAMPLES
>>> DEFAULT_SAMPLES.name
'default_samples.parquet'
"""
from __future__ import annotations

from pathlib import Path

#: the embedded default SampleTable (Gemma 3 270M, 16 configurations; see data/README.md)
DEFAULT_SAMPLES: Path = Path(__file__).resolve().with_name("default_samples.parquet")
#: the serving calibration fitted on ../shared/data/serving/h100_silicon.csv (see data/README.md)
H100_CALIBRATION: Path = Path(__file__).resolve().with_name("h100_calibration.json")

__all__ = ["DEFAULT_SAMPLES", "H100_CALIBRATION"]
