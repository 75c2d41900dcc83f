"""Execute every notebook under ``notebooks/`` (nbclient + ipykernel), as CI does.

A notebook declares the data it needs in its metadata (``metadata.ttsplan.needs``): ``default`` (the
embedded ``data/default_samples.parquet``) and/or ``shared`` (``../shared/data``); it is skipped with
the reason when that data is absent. Outputs are not written back (the committed notebooks stay clean).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

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
    # committed without outputs, so diffs stay readable and the repository small
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), f"{path.name} has outputs"
    client = nbclient.NotebookClient(nb, timeout=150, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    images = sum(1 for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                 if "image/png" in o.get("data", {}))
    assert images >= 1, f"{path.name} drew no figure"
