"""The runnable examples in the library's docstrings stay runnable."""
from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

PACKAGES = ("ttsplan.features", "ttsplan.fitting", "ttsplan.planner", "ttsplan.report", "ttsplan.cli",
            "ttsplan.integrations")


def _modules() -> list[str]:
    names = []
    for pkg in PACKAGES:
        mod = importlib.import_module(pkg)
        names += [m.name for m in pkgutil.walk_packages(mod.__path__, prefix=f"{pkg}.")]
    return sorted(["ttsplan", "ttsplan.data", "ttsplan.report", *names])


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} of {result.attempted} doctest example(s) failed in {name}"
