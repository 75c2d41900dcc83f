"""Packaging: everything installs under the one ``ttsplan`` namespace, and nothing else at top level."""
from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile

from conftest import REPO

#: top-level source folders and the ttsplan subpackage each one installs as
MAPPED = {"ttsplan": "ttsplan", "features": "ttsplan.features", "fitting": "ttsplan.fitting",
          "planner": "ttsplan.planner", "report": "ttsplan.report", "cli": "ttsplan.cli", "data": "ttsplan.data",
          "integrations": "ttsplan.integrations"}


def _setuptools() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_package_is_declared_and_mapped():
    cfg = _setuptools()
    found = set()
    for init in REPO.glob("*/**/__init__.py"):
        rel = init.parent.relative_to(REPO).parts
        if rel[0] in MAPPED:
            found.add(".".join([MAPPED[rel[0]], *rel[1:]]))
    assert found == set(cfg["packages"])
    assert cfg["package-dir"] == {v: k for k, v in MAPPED.items()}
    assert all(p == "ttsplan" or p.startswith("ttsplan.") for p in cfg["packages"])


def test_generic_top_level_names_are_not_importable(tmp_path):
    # from a neutral directory (the repo root would put its folders on sys.path)
    code = ("import importlib.util as u, ttsplan.features, ttsplan.cli.main; "
            "print([n for n in ('features', 'fitting', 'planner', 'report', 'cli') if u.find_spec(n)])")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_wheel_has_only_the_ttsplan_top_level_package(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path), str(REPO)],
                   check=True, capture_output=True)
    (wheel,) = tmp_path.glob("ttsplan-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"ttsplan"}
    assert "ttsplan/data/default_samples.parquet" in names
    assert "ttsplan/cli/main.py" in names and "ttsplan/features/sampler/hf.py" in names
    assert "ttsplan/integrations/inspect.py" in names
    dist = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "ttsplan = ttsplan.cli.main:main" in zipfile.ZipFile(wheel).read(dist).decode()


def test_facade_names_resolve():
    import ttsplan

    missing = [n for n in ttsplan.__all__ if not hasattr(ttsplan, n)]
    assert missing == []
    assert ttsplan.AdaptiveSession.__module__ == "ttsplan.planner.adaptive"
