"""Execute the notebooks in place so they are committed with their outputs (figures as PNG).

    python notebooks/execute.py            # all four
    python notebooks/execute.py 01_quick_start.ipynb

tests/test_notebooks.py re-executes each notebook and fails when a committed number no longer
matches a fresh run (text outputs compared number by number, to a relative 1e-6; figures must exist
where they did; pixels are not compared). Run this after changing code a notebook shows.
"""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def execute(path: Path) -> None:
    import nbclient
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}}).execute()
    for cell in nb.cells:  # volatile metadata out, so reruns diff only where results change
        cell.metadata.pop("execution", None)
    tmp = path.with_suffix(".ipynb.tmp")
    nbformat.write(nb, tmp)
    tmp.replace(path)
    print(f"executed {path.name}", file=sys.stderr)


def main(names: list[str]) -> int:
    paths = [HERE / n for n in names] if names else sorted(HERE.glob("*.ipynb"))
    for p in paths:
        execute(p)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
