"""pyproject declares every package that the source tree holds (a wheel would drop the others)."""
from __future__ import annotations

import tomllib

from conftest import REPO


def test_every_package_is_declared():
    declared = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(REPO).parts) for p in REPO.glob("*/**/__init__.py")
             if p.parts[len(REPO.parts)] in {"features", "fitting", "planner", "cli"}}
    assert found == declared
