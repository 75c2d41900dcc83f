"""In an install without extras (``pip install -e . pytest``), the commands that need an extra say which one,
exit 2 and write nothing, and the main job works.

``.ci/run`` runs this file in a second virtualenv with only the base install (``TTSPLAN_BASE_INSTALL=1``);
the main test run does not collect it (conftest.py), since there every extra is installed.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(os.environ.get("TTSPLAN_BASE_INSTALL") != "1",
                                reason="runs in .ci/run's base-install virtualenv only")
TTSPLAN = str(Path(sys.executable).with_name("ttsplan"))


def _ttsplan(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([TTSPLAN, *args], capture_output=True, text=True, cwd=cwd)


def test_the_base_install_has_no_extras() -> None:
    present = [m for m in ("matplotlib", "torch", "transformers", "httpx", "ray") if importlib.util.find_spec(m)]
    assert present == [], f"this must run in a base install, got {present} installed"


def test_plan_runs_and_the_extras_are_named(tmp_path: Path) -> None:
    r = _ttsplan("plan", "--orders", "1", "--out", "plan.json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "saves" in r.stdout and (tmp_path / "plan.json").is_file()
    cases = [
        (["report", "--out", "rep"], "pip install 'ttsplan[plot]'"),
        (["sample", "tasks:first_letter:2", "--engine", "hf", "--k", "2", "--out", "smp"], "ttsplan[hf]"),
        (["sample", "tasks:first_letter:2", "--engine", "hf", "--k", "2", "--ray", "local", "--out", "smp"],
         "ttsplan[ray]"),
        (["run", "plan.json", "--prompts", "tasks:first_letter:2", "--engine", "openai", "--base-url",
          "http://127.0.0.1:9", "--config", "gemma3-270m/first_letter/3shot/T0.5", "--out", "run"],
         "ttsplan[openai]"),
    ]
    for args, needle in cases:
        before = sorted(p.name for p in tmp_path.iterdir())
        r = _ttsplan(*args, cwd=tmp_path)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert needle in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
        assert sorted(p.name for p in tmp_path.iterdir()) == before, args
