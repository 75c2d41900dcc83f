"""The import graph of the installed package, read statically with ``ast``.

Every module under ``ttsplan`` (the root façade and the folders installed as ``ttsplan.data``,
``ttsplan.features``, ``ttsplan.fitting``, ``ttsplan.planner``, ``ttsplan.report`` and ``ttsplan.cli``) is parsed; every
``import ttsplan.x.y``, ``from ttsplan.x import y`` and relative import is resolved, at module level, inside
functions and under ``if TYPE_CHECKING:``. Importing ``a.b.c`` also runs the packages ``a.b`` and ``a``
first, so those are edges too (except the importer's own parent packages, already running). The package
must have:

1. no import cycle (imports inside functions count: a cycle they hide is still a cycle);
2. one-way layers: features ← fitting ← planner ← report ← cli (``ALLOWED``);
3. no function-level import of its own modules (except the short, commented ``FUNCTION_LEVEL_ALLOWED``);
4. heavy optional dependencies (torch, vllm, httpx, matplotlib, …) imported only inside functions, and
   none of them, nor sklearn / joblib, loaded by ``import ttsplan.cli.main`` (``NOT_AT_STARTUP``).

The first tests run the same checks on small packages written to ``tmp_path``, so the walker is seen to
catch what it is meant to catch.
"""
from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from conftest import REPO

#: the installed packages that hold every module: a wheel puts them all under ttsplan/, an editable
#: install maps each one to its own folder (features/, fitting/, …); both are walked, names deduplicated
ROOTS = ("ttsplan", "ttsplan.data", "ttsplan.features", "ttsplan.fitting", "ttsplan.planner", "ttsplan.report",
         "ttsplan.cli", "ttsplan.integrations")

#: layer (``ttsplan.<layer>``; "" is the root façade) -> the layers its modules may import
ALLOWED: dict[str, set[str]] = {
    "": set(),  # ttsplan/__init__.py loads its names lazily by string, never by import statement
    "features": {"features"},
    "fitting": {"features", "fitting", "data"},
    "planner": {"features", "fitting", "planner", "data"},
    "report": {"features", "fitting", "planner", "report", "data"},  # the planner through its public names only
    "cli": {"features", "fitting", "planner", "report", "cli", "data"},
    "data": {"data", "features"},  # data/make_default.py rebuilds the shipped table with the sampler
    "integrations": {"features", "fitting", "integrations"},  # pieces that run inside other tools (inspect-ai)
}

#: optional dependencies (extras hf, vllm, openai, plot, grading): only ever imported inside the functions
#: that need them, so that an install without the extras works and ``ttsplan --help`` stays fast
HEAVY = ("torch", "transformers", "vllm", "httpx", "matplotlib", "PIL", "ray", "math_verify", "gguf",
         "accelerate", "safetensors", "huggingface_hub", "inspect_ai", "lm_eval")
#: ... and what ``import ttsplan.cli.main`` must not load either: sklearn (only its NotFittedError is
#: used) and joblib (calibration's leave-one-out) pull in psutil, narwhals and threadpoolctl, ~0.3 s;
#: scipy.stats (~0.3 s) and pyarrow (~0.05 s) are imported inside the functions that use them (stopping,
#: success model, gain; the parquet writer and metadata reader of features/atomic.py)
NOT_AT_STARTUP = (*HEAVY, "sklearn", "joblib", "psutil", "scipy.stats", "pyarrow")

#: (importer, imported) imports of our own modules that stay inside a function, each with its reason.
#: Keep it short: a module-level import is the rule (a cycle it would make is a layout to fix).
FUNCTION_LEVEL_ALLOWED: dict[tuple[str, str], str] = {
}

#: modules that other work (issue 17) is changing right now, whose function-level imports are not
#: checked yet. Whoever finishes one moves its imports to module level (or into
#: FUNCTION_LEVEL_ALLOWED with a reason) and deletes its entry: the test fails on entries with none left.
PENDING_FUNCTION_LEVEL: dict[str, str] = {
}

#: import cycles that other work is removing, {modules: why}; the test fails once one is gone, so that
#: its entry is deleted (none today: run_cmd <-> sample_cmd went with cli/prompts.py and cli/engines.py)
KNOWN_CYCLES: dict[frozenset[str], str] = {
}


@dataclass(frozen=True)
class Import:
    """One edge of the graph: ``src`` imports (or, ``direct=False``, first runs the package) ``dst``."""

    src: str
    dst: str
    line: int
    where: str  # "module", "function" (inside a def or lambda) or "type" (under `if TYPE_CHECKING:`)
    direct: bool = True

    def __str__(self) -> str:
        return f"{self.src} -> {self.dst} (line {self.line}{', ' + self.where + '-level' if self.where != 'module' else ''})"


@dataclass(frozen=True)
class Graph:
    modules: dict[str, Path]
    imports: tuple[Import, ...]
    external: tuple[Import, ...]  # dst: the top-level name of a third-party / stdlib module
    unresolved: tuple[Import, ...]  # dst: a ttsplan.* name that is no module of ours

    def runtime_edges(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {m: set() for m in self.modules}
        for imp in self.imports:
            if imp.where != "type" and imp.src != imp.dst:
                out[imp.src].add(imp.dst)
        return out


# -- the walker ---------------------------------------------------------------------------------------


def find_modules(packages: Mapping[str, Path]) -> dict[str, Path]:
    """``{dotted name: file}`` for every module under each package ``{name: directory}``."""
    found: dict[str, Path] = {}
    for pkg, directory in packages.items():
        if not (directory / "__init__.py").is_file():
            continue
        for path in sorted(directory.rglob("*.py")):
            rel = path.relative_to(directory).with_suffix("").parts
            if "__pycache__" in rel or not all((directory.joinpath(*rel[:i]) / "__init__.py").is_file()
                                               for i in range(len(rel))):
                continue
            parts = rel[:-1] if rel[-1] == "__init__" else rel
            found.setdefault(".".join((pkg, *parts)), path)
    return found


def installed_packages(roots: Iterable[str] = ROOTS) -> dict[str, Path]:
    """The directory of each root package as the installed package finds it (not the source tree)."""
    out = {}
    for name in roots:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.submodule_search_locations, f"{name} must be an installed package"
        out[name] = Path(next(iter(spec.submodule_search_locations)))
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _raw_imports(tree: ast.Module) -> list[tuple[ast.Import | ast.ImportFrom, str]]:
    """Every import statement with where it runs: module, function or type (``if TYPE_CHECKING:``)."""
    out: list[tuple[ast.Import | ast.ImportFrom, str]] = []

    def visit(node: ast.AST, where: str) -> None:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out.append((node, where))
            return
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            where = "function" if where == "module" else where
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, "type")
            for child in node.orelse:
                visit(child, where)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, where)

    visit(tree, "module")
    return out


def _own(name: str, modules: Mapping[str, Path]) -> str | None:
    """The longest prefix of ``name`` that is one of our modules."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        if ".".join(parts[:i]) in modules:
            return ".".join(parts[:i])
    return None


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def build_graph(modules: Mapping[str, Path], top: str = "ttsplan") -> Graph:
    """Parse every module and resolve its imports (absolute and relative) against ``modules``."""
    imports: list[Import] = []
    external: list[Import] = []
    unresolved: list[Import] = []
    for src, path in modules.items():
        is_pkg = path.name == "__init__.py"
        package = src if is_pkg else src.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node, where in _raw_imports(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:
                    base_parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*base_parts, *([node.module] if node.module else [])])
                else:
                    base = node.module or ""
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for target in dict.fromkeys(targets):
                if target.split(".")[0] != top:
                    external.append(Import(src, target.split(".")[0], node.lineno, where))
                    continue
                dst = _own(target, modules)
                if dst is None or (dst != target and isinstance(node, ast.Import)):
                    unresolved.append(Import(src, target, node.lineno, where))
                    continue
                imports.append(Import(src, dst, node.lineno, where))
                running = set(_ancestors(src)) | {src}
                imports += [Import(src, a, node.lineno, where, direct=False)
                            for a in _ancestors(dst) if a not in running and a in modules]
    return Graph(dict(modules), tuple(imports), tuple(external), tuple(unresolved))


def cycles(graph: Graph) -> list[list[str]]:
    """One cycle (``[a, b, …, a]``) through each strongly connected component of the runtime graph."""
    edges = graph.runtime_edges()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    comps: list[set[str]] = []

    def strongconnect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(comp)

    for v in sorted(edges):
        if v not in index:
            strongconnect(v)
    out = []
    for comp in comps:  # shortest way from the first module back to itself, inside the component
        start = min(comp)
        prev: dict[str, str] = {}
        frontier = [start]
        while frontier and start not in prev:
            nxt = []
            for v in frontier:
                for w in sorted(edges[v] & comp):
                    if w not in prev:
                        prev[w] = v
                        nxt.append(w)
            frontier = nxt
        path = [start]
        while len(path) == 1 or path[-1] != start:
            path.append(prev[path[-1]])
        out.append(path[::-1])
    return sorted(out)


def describe(cycle: list[str], graph: Graph) -> str:
    """``a -> b (line 3, function-level) -> a (line 9)``: each step with the import that makes it."""
    steps = [cycle[0]]
    for a, b in zip(cycle, cycle[1:]):
        imp = min((i for i in graph.imports if i.src == a and i.dst == b and i.where != "type"),
                  key=lambda i: (not i.direct, i.where != "module", i.line))
        how = f"line {imp.line}" + ("" if imp.where == "module" else f", {imp.where}-level") + (
            "" if imp.direct else ", its package __init__")
        steps.append(f"{b} ({how})")
    return " -> ".join(steps)


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def layering_violations(graph: Graph, allowed: Mapping[str, set[str]] = ALLOWED) -> list[str]:
    return [f"{imp}: the {layer(imp.src) or 'root'} layer must not import the {layer(imp.dst) or 'root façade'}"
            for imp in graph.imports if imp.direct and layer(imp.dst) not in allowed[layer(imp.src)]
            and layer(imp.src) != layer(imp.dst)]


def function_level(graph: Graph) -> dict[tuple[str, str], list[Import]]:
    out: dict[tuple[str, str], list[Import]] = {}
    for imp in graph.imports:
        if imp.direct and imp.where == "function":
            out.setdefault((imp.src, imp.dst), []).append(imp)
    return out


@lru_cache(maxsize=1)
def package_graph() -> Graph:
    return build_graph(find_modules(installed_packages()))


# -- the walker catches what it must (small packages in tmp_path) ---------------------------------------


def _toy(tmp_path: Path, files: dict[str, str]) -> Graph:
    for rel, text in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return build_graph(find_modules({"ttsplan": tmp_path / "ttsplan"}))


def test_walker_finds_cycles_hidden_in_functions_and_through_package_inits(tmp_path):
    g = _toy(tmp_path, {
        "ttsplan/__init__.py": "",
        "ttsplan/features/__init__.py": "",
        "ttsplan/features/io.py": "def f():\n    from ttsplan.features.importers import x\n",
        "ttsplan/features/importers/__init__.py": "from .base import y\n",
        "ttsplan/features/importers/base.py": "from .. import io\ny = 1\n",  # -> ttsplan.features.io
        "ttsplan/features/sampler/__init__.py": "from ttsplan.features.sampler.runner import r\n",
        "ttsplan/features/sampler/runner.py": "import ttsplan.features.io\nr = 1\n",
        "ttsplan/features/stats.py": "from ttsplan.features.sampler import base\n",  # base: a name, not a module
        "ttsplan/features/tasks.py": "import ttsplan.features.sampler.runner\n",
    })
    assert [c[0] for c in cycles(g)] == ["ttsplan.features.importers"]
    assert describe(cycles(g)[0], g) == ("ttsplan.features.importers -> ttsplan.features.importers.base (line 1) -> "
                                         "ttsplan.features.io (line 1) -> ttsplan.features.importers (line 2, "
                                         "function-level)")
    # importing a submodule runs its package first; the importer's own packages are already running
    assert Import("ttsplan.features.tasks", "ttsplan.features.sampler", 1, "module", direct=False) in g.imports
    assert Import("ttsplan.features.stats", "ttsplan.features.sampler", 1, "module") in g.imports
    assert not any(i.src == "ttsplan.features.sampler.runner" and i.dst == "ttsplan.features.sampler"
                   for i in g.imports)


def test_walker_finds_layer_breaks_function_level_and_type_only_imports(tmp_path):
    g = _toy(tmp_path, {
        "ttsplan/__init__.py": "",
        "ttsplan/features/__init__.py": "",
        "ttsplan/features/stats.py": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                      "    from ttsplan.planner.plan import Plan\n"),
        "ttsplan/planner/__init__.py": "",
        "ttsplan/planner/plan.py": ("import numpy as np\nfrom ttsplan.features import stats\n"
                                    "class P:\n    def m(self):\n        import torch\n"
                                    "        from ttsplan import make_plan\n"),
        "ttsplan/cli/__init__.py": "",
        "ttsplan/cli/main.py": "import ttsplan.planner.nope\n",
    })
    assert cycles(g) == []  # a TYPE_CHECKING import runs nothing
    assert layering_violations(g) == [
        "ttsplan.features.stats -> ttsplan.planner.plan (line 3, type-level): the features layer must not "
        "import the planner",
        "ttsplan.planner.plan -> ttsplan (line 6, function-level): the planner layer must not import the root façade",
    ]
    assert sorted(function_level(g)) == [("ttsplan.planner.plan", "ttsplan")]
    assert [(i.dst, i.where) for i in g.external] == [("typing", "module"), ("numpy", "module"),
                                                      ("torch", "function")]
    assert [i.dst for i in g.unresolved] == ["ttsplan.planner.nope"]


# -- the package ------------------------------------------------------------------------------------------


def test_the_walk_covers_every_installed_package():
    g = package_graph()
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    assert sorted(set(declared) - set(g.modules)) == [], "a declared package was not walked: add it to ROOTS"
    unknown = sorted({layer(m) for m in g.modules} - set(ALLOWED))
    assert unknown == [], f"new layer(s) {unknown}: say in ALLOWED which layers each may import"
    assert {"ttsplan.cli.main", "ttsplan.features.io", "ttsplan.planner.plan", "ttsplan.fitting.success",
            "ttsplan.features.sampler.runner"} <= set(g.modules)
    assert g.unresolved == (), f"imports of ttsplan modules that do not exist: {[str(i) for i in g.unresolved]}"


def test_no_import_cycles():
    g = package_graph()
    found = {frozenset(c): describe(c, g) for c in cycles(g)}
    new = [text for comp, text in found.items() if comp not in KNOWN_CYCLES]
    assert new == [], "import cycle(s):\n  " + "\n  ".join(new)
    gone = [why for comp, why in KNOWN_CYCLES.items() if comp not in found]
    assert gone == [], f"a known cycle is gone: delete its entry from KNOWN_CYCLES ({gone})"


def test_layers_import_one_way():
    broken = layering_violations(package_graph())
    assert broken == [], ("imports against the layers (features <- fitting <- planner <- report <- cli):\n  "
                          + "\n  ".join(broken))


def test_no_function_level_imports_of_our_own_modules():
    found = function_level(package_graph())
    hidden = [str(imp) for key, imps in sorted(found.items())
              if key not in FUNCTION_LEVEL_ALLOWED and key[0] not in PENDING_FUNCTION_LEVEL for imp in imps]
    assert hidden == [], ("import these at module level (a function-level import hides cycles and layer "
                          "breaks):\n  " + "\n  ".join(hidden))
    stale = sorted(k for k in FUNCTION_LEVEL_ALLOWED if k not in found)
    stale += sorted(m for m in PENDING_FUNCTION_LEVEL if not any(src == m for src, _ in found))
    assert stale == [], f"no longer imported inside a function: delete {stale} from the allow-list"


def cross_layer_private_imports(graph: Graph) -> list[str]:
    """``from ttsplan.<other layer>.m import _name``: a layer reaching past another's public names."""
    out = []
    for src, path in graph.modules.items():
        for node, _ in _raw_imports(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("ttsplan.")
                    and layer(node.module) != layer(src)):
                out += [f"{src} (line {node.lineno}): {node.module}.{a.name}" for a in node.names
                        if a.name.startswith("_")]
    return out


def test_layers_use_each_others_public_names_only():
    # e.g. the report reaches the planner through OptionGrid, prepare, make_plan..., never a private helper
    private = cross_layer_private_imports(package_graph())
    assert private == [], ("make these public in their module (or move them to a lower one):\n  "
                           + "\n  ".join(private))


def test_heavy_optional_dependencies_are_imported_inside_functions():
    eager = [str(i) for i in package_graph().external if i.dst in HEAVY and i.where == "module"]
    assert eager == [], "import these inside the functions that need them:\n  " + "\n  ".join(eager)


def test_cli_startup_loads_no_heavy_dependency(tmp_path):
    code = f"import sys, ttsplan.cli.main; print([m for m in {NOT_AT_STARTUP!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

