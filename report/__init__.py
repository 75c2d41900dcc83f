"""Figures of a test-time-scaling study: the data behind each plot, and its rendering (``ttsplan report``).

The report layer sits between the planner and the command line (features ← fitting ← planner ← report ←
cli) and reaches the planner only through its public functions. Two stages, so every picture can be
checked against numbers:

* :mod:`~ttsplan.report.figure_data`: ``*_data`` functions compute the exact data of one figure as a
  JSON-ready dict (each holds a ``command``: the ``ttsplan`` call whose ``--format json`` output carries
  the same numbers); :func:`~ttsplan.report.build.build_report` runs them all and returns
  ``{"figures": {name: data}, "skipped": {name: why}}``.
* :mod:`~ttsplan.report.plots` and :mod:`~ttsplan.report.drawing` draw a figure with matplotlib
  (imported lazily, Agg backend, no display); :func:`~ttsplan.report.html.render_report` writes
  ``<name>.png`` + ``<name>.svg``, ``figures.json`` (the data) and ``index.html``, all atomically.

Figures (:data:`FIGURES`):

==================  ===========================================================================
``curves``          accuracy vs N per strategy (pass@N, maj@N, BoN@N) with bootstrap bands,
                    log-N axis, one panel per configuration (= ``ttsplan curves``)
``frontier``        accuracy vs cost per prompt (tokens, eFLOPs, GPU-seconds, dollars) of every
                    (configuration, strategy, N), the Pareto frontier, and the plan's points
``allocation``      per-prompt allocation histogram of the plan's recommended configuration
                    (= the ``allocations`` of ``ttsplan plan --format json``)
``gain``            LOCO predicted vs actual gain (metric@N − pass@1) per configuration with
                    Spearman ρ, by the default (curve) predictor (= ``predictions`` of
                    ``ttsplan fit --format json``)
``stability``       bootstrap-Lasso selection frequency per candidate config feature (= ``stability``
                    of the same; the curve predictor is not fitted on them)
``cost_breakdown``  where one prompt's GPU time goes — prefill, weight reads, KV-cache reads,
                    compute beyond the memory time — as N and L_out grow (= ``ttsplan estimate``)
==================  ===========================================================================

>>> from ttsplan.report import FIGURES
>>> FIGURES[:3]
('curves', 'frontier', 'allocation')
"""
from __future__ import annotations

from ttsplan.report.build import build_report
from ttsplan.report.drawing import make_figure, render_figure
from ttsplan.report.figure_data import (
    FIGURES,
    allocation_data,
    cost_breakdown_data,
    curves_data,
    default_gain_n,
    default_gain_target,
    frontier_data,
    gain_data,
)
from ttsplan.report.html import render_report

__all__ = ["FIGURES", "allocation_data", "build_report", "cost_breakdown_data", "curves_data", "default_gain_n",
           "default_gain_target", "frontier_data", "gain_data", "make_figure", "render_figure", "render_report"]
