"""The CI guard in conftest.py: under CI=true a skipped test fails (except the tolerated llama.cpp one)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO, SHARED_DATA


def _run(tmp_path: Path, body: str, ci: bool, shared: Path) -> subprocess.CompletedProcess:
    shutil.copy(REPO / "tests" / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_x.py").write_text(body)
    env = {**os.environ, "CI": "true" if ci else "false", "TTSPLAN_SHARED_DATA": str(shared)}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                           str(tmp_path / "test_x.py")], capture_output=True, text=True, env=env, cwd=tmp_path)


BODY = ("import pytest\n\ndef test_a():\n    pytest.skip('torch is not installed')\n\n"
        "def test_b():\n    pytest.skip('llama.cpp server not installed: pip install ...')\n")


def test_a_skip_fails_in_ci_but_not_outside(tmp_path: Path) -> None:
    outside = _run(tmp_path, BODY, ci=False, shared=SHARED_DATA)
    assert outside.returncode == 0 and "2 skipped" in outside.stdout
    inside = _run(tmp_path, BODY, ci=True, shared=SHARED_DATA)      # every module .ci/run installs is here
    assert inside.returncode == 1 and "1 failed, 1 skipped" in inside.stdout
    assert "CI=true: tests must not skip, got: " in inside.stdout and "torch is not installed" in inside.stdout


def test_ci_session_stops_when_shared_data_is_missing(tmp_path: Path) -> None:
    inside = _run(tmp_path, BODY, ci=True, shared=tmp_path / "nowhere")
    assert inside.returncode == 3 and "../shared/data must lie beside the checkout in CI" in inside.stdout + inside.stderr
