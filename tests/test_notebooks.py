"""Execute every notebook under ``notebooks/`` (nbclient + ipykernel), as CI does.

A notebook declares the data it needs in its metadata (``metadata.ttsplan.needs``): ``default`` (the
embedded ``data/default_samples.parquet``) and/or ``shared`` (``../shared/data``); it is skipped with
the reason when that data is absent. Notebooks are committed executed (``python notebooks/execute.py``)
so readers see the figures; the test re-executes a copy and fails when a committed number no longer
matches the fresh run (text outputs compared number by number to a relative 1e-6 — polars' parallel
sums move the last digit —, figures where there were figures; pixels are not compared).
"""
from __future__ import annotations

import os
import copy
import math
import re
from pathlib import Path

import pytest

_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
DEFAULT_DATA = Path(os.environ.get("TTSPLAN_DEFAULT_DATA", ROOT / "data" / "default_samples.parquet"))
SHARED = Path(os.environ.get("TTSPLAN_SHARED_DATA", ROOT.parent / "shared" / "data"))


def _missing(needs: list[str]) -> str | None:
    if "default" in needs and not DEFAULT_DATA.is_file():
        return f"needs the embedded default dataset {DEFAULT_DATA} (python data/make_default.py)"
    if "shared" in needs and not (SHARED / "samples").is_dir():
        return f"needs the shared real data at {SHARED}"
    return None


def test_there_are_four_notebooks() -> None:
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path: Path) -> None:
    nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed (extra `test`)")
    nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed (extra `test`)")
    pytest.importorskip("ipykernel", reason="ipykernel is not installed (extra `test`)")
    pytest.importorskip("matplotlib", reason="matplotlib is not installed (extra `plot`)")
    nb = nbformat.read(path, as_version=4)
    reason = _missing(nb.metadata.get("ttsplan", {}).get("needs", []))
    if reason:
        pytest.skip(reason)
    committed = copy.deepcopy(nb)
    assert any(c.get("outputs") for c in committed.cells if c.cell_type == "code"), (
        f"{path.name} is committed without outputs: run `python notebooks/execute.py {path.name}`")
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    images = sum(1 for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                 if "image/png" in o.get("data", {}))
    assert images >= 1, f"{path.name} drew no figure"
    stale = _compare(committed, nb)
    assert not stale, (f"{path.name}: committed outputs differ from a fresh run (re-run `python notebooks/execute.py "
                       f"{path.name}` and commit):\n" + "\n".join(stale[:10]))


def _texts(cell) -> tuple[list[str], int]:
    """A code cell's text outputs (stream text, text/plain results) and its number of images."""
    texts, images = [], 0
    for o in cell.get("outputs", []):
        if o.get("output_type") == "stream" and o.get("name") == "stdout":
            texts.append("".join(o.get("text", "")))
        data = o.get("data", {})
        if "image/png" in data:
            images += 1
        elif "text/plain" in data:
            texts.append("".join(data["text/plain"]))
    return texts, images


def _same_text(a: str, b: str) -> bool:
    if _NUMBER.sub("#", a) != _NUMBER.sub("#", b):
        return False
    return all(math.isclose(float(x), float(y), rel_tol=1e-6, abs_tol=1e-9)
               for x, y in zip(_NUMBER.findall(a), _NUMBER.findall(b)))


def _compare(committed, fresh) -> list[str]:
    """Cells whose committed text outputs or figure count differ from the fresh run."""
    out = []
    code = [(i, c) for i, c in enumerate(committed.cells) if c.cell_type == "code"]
    for (i, old), new in zip(code, [c for c in fresh.cells if c.cell_type == "code"]):
        (t_old, im_old), (t_new, im_new) = _texts(old), _texts(new)
        if im_old != im_new:
            out.append(f"cell {i}: {im_old} committed figure(s), {im_new} now")
        if len(t_old) != len(t_new) or not all(_same_text(a, b) for a, b in zip(t_old, t_new)):
            first = next((k for k, (a, b) in enumerate(zip(t_old, t_new)) if not _same_text(a, b)), 0)
            out.append(f"cell {i}: committed {t_old[first][:160]!r}... now "
                       f"{(t_new[first] if first < len(t_new) else '')[:160]!r}...")
    return out


def test_compare_catches_a_changed_number() -> None:
    nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed (extra `test`)")
    a = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x")])
    a.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text="accuracy 0.955 at 4.08 samples\n")]
    b = copy.deepcopy(a)
    assert _compare(a, b) == []
    b.cells[0].outputs[0].text = "accuracy 0.955 at 4.0800001 samples\n"      # within 1e-6: round-off
    assert _compare(a, b) == []
    b.cells[0].outputs[0].text = "accuracy 0.951 at 4.08 samples\n"
    assert _compare(a, b) and "cell 0" in _compare(a, b)[0]
