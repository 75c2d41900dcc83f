"""Drawing the report's figures with matplotlib (imported inside the functions: ``import ttsplan.report``
does not load it): :func:`make_figure` for a notebook, :func:`render_figure` for PNG / SVG files
(Agg canvas, no display, no pyplot state), optionally palette-quantized (:func:`compact_png`)."""
from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ttsplan.features.atomic import write_atomic
from ttsplan.features.errors import TtsplanError
from ttsplan.report.figure_data import FIGURES
from ttsplan.report.plots import PLOTTERS

#: matplotlib rc settings of every figure
STYLE = {"font.size": 12, "axes.titlesize": 13, "axes.labelsize": 12, "xtick.labelsize": 11, "ytick.labelsize": 11,
         "legend.fontsize": 11, "figure.titlesize": 15, "axes.grid": True, "grid.alpha": 0.3,
         "axes.spines.top": False, "axes.spines.right": False, "svg.hashsalt": "ttsplan", "svg.fonttype": "none"}


def compact_png(data: bytes, colors: int = 96) -> bytes:
    """Palette-quantized PNG (about a third of the size; for figures committed to docs)."""
    from PIL import Image  # a matplotlib dependency

    out = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").quantize(colors=colors, method=Image.Quantize.MEDIANCUT).save(
        out, format="png", optimize=True)
    return out.getvalue()


def save_figure(fig: Any, path: Path, fmt: str, compact: bool = False) -> Path:
    """Write ``fig`` to ``path`` as ``fmt`` atomically, without timestamps (same data, same bytes)."""
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=100 if fmt == "png" else None, metadata={"Software": "ttsplan"} if fmt == "png"
                else {"Creator": "ttsplan", "Date": None})
    data = compact_png(buf.getvalue()) if compact and fmt == "png" else buf.getvalue()
    write_atomic(path, data)
    return path


def subplots(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float], layout: str | None = None,
             **kw: Any) -> tuple[Any, Any]:
    """``plt.subplots`` without pyplot: a bare :class:`matplotlib.figure.Figure` (no GUI, no global
    state; saving uses the Agg canvas)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout=layout)
    return fig, fig.subplots(nrows, ncols, **kw)


def make_figure(name: str, data: dict) -> Any:
    """The matplotlib Figure of one figure's data (e.g. ``report["figures"]["curves"]``); in a notebook
    the last expression of a cell displays it."""
    import matplotlib

    if name not in PLOTTERS:
        raise TtsplanError(f"figure must be one of {', '.join(FIGURES)}, got {name!r}.")
    with matplotlib.rc_context(STYLE):
        return PLOTTERS[name](data, subplots)


def render_figure(name: str, data: dict, out_dir: str | Path, formats: Sequence[str] = ("png", "svg"),
                  compact: bool = False) -> list[Path]:
    """Draw one figure from its data and write ``<out_dir>/<name>.<fmt>`` for each format (atomically);
    ``compact``: palette-quantized PNG (smaller, for committed docs)."""
    import matplotlib

    with matplotlib.rc_context(STYLE):
        fig = PLOTTERS[name](data, subplots)
        return [save_figure(fig, Path(out_dir) / f"{name}.{fmt}", fmt, compact) for fmt in formats]


__all__ = ["STYLE", "compact_png", "make_figure", "render_figure", "save_figure", "subplots"]
