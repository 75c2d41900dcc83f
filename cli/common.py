"""Shared CLI plumbing: error handling (one message, exit 2), output rendering, option parsing."""
from __future__ import annotations

import functools
import io
import json
import math
import sys
from collections.abc import Callable, Sequence
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from ttsplan.features.errors import TtsplanError
from ttsplan.features.io import write_atomic

F = TypeVar("F", bound=Callable[..., Any])
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


class TableOrJson(str, Enum):
    table = "table"
    json = "json"


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` on stderr and return the exit-2 exception to raise."""
    err_console.print(f"[bold red]error:[/] {message}", markup=True, highlight=False)
    return typer.Exit(code=2)


def user_errors(func: F) -> F:
    """Decorator: turn :class:`TtsplanError` (and missing files) into one message and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except TtsplanError as exc:
            raise fail(str(exc)) from None
        except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
            raise fail(f"{exc.filename}: {exc.strerror}. Check the path.") from None

    return wrapper  # type: ignore[return-value]


def print_warnings(caught: list) -> None:
    """User-facing warnings (UserWarning subclasses) as one yellow line each on stderr, deduplicated."""
    seen: set[str] = set()
    for w in caught:
        msg = str(w.message)
        if issubclass(w.category, UserWarning) and msg not in seen:
            seen.add(msg)
            err_console.print(f"[yellow]warning:[/] {msg}", markup=True, highlight=False)


def parse_int_list(text: str, name: str) -> list[int]:
    """Parse ``"1,2,4"`` (or ``"1-8"`` ranges) into sorted unique positive ints."""
    out: set[int] = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            if "-" in part:
                lo, hi = (int(x) for x in part.split("-", 1))
                out.update(range(lo, hi + 1))
            else:
                out.add(int(part))
        except ValueError:
            raise TtsplanError(f"{name} must be comma-separated integers like 1,2,4,8, got {text!r}.") from None
    if not out or min(out) < 1:
        raise TtsplanError(f"{name} must list integers >= 1, got {text!r}.")
    return sorted(out)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def to_json(obj: Any) -> str:
    """JSON with NaN/inf written as null (strict JSON)."""
    return json.dumps(_clean(obj), indent=2, default=str, allow_nan=False)


def _fmt_cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
            return f"{value:.3g}"
        return f"{value:.4f}".rstrip("0").rstrip(".") if abs(value) < 1000 else f"{value:,.1f}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_fmt_cell(v) for v in value) + "]"
    return str(value)


def rich_table(rows: Sequence[dict], title: str | None = None, columns: Sequence[str] | None = None) -> Table:
    columns = list(columns or (rows[0].keys() if rows else []))
    table = Table(title=title, show_lines=False, header_style="bold")
    for c in columns:
        table.add_column(c, overflow="fold")
    for r in rows:
        table.add_row(*(_fmt_cell(r.get(c)) for c in columns))
    return table


def emit(rows: list[dict] | dict, fmt: str, out: Path | None = None, title: str | None = None,
         columns: Sequence[str] | None = None) -> None:
    """Render ``rows`` as a table, JSON or CSV to stdout, or atomically to ``out``."""
    fmt = getattr(fmt, "value", fmt)
    if fmt == "json":
        text = to_json(rows) + "\n"
    elif fmt == "csv":
        import polars as pl

        flat = [{k: (json.dumps(v) if isinstance(v, (list, dict)) else v) for k, v in r.items()}
                for r in (rows if isinstance(rows, list) else [rows])]
        text = pl.DataFrame(flat, infer_schema_length=None).write_csv()
    else:
        if isinstance(rows, dict):
            rows = [{"key": k, "value": v} for k, v in rows.items()]
        buffer = io.StringIO()
        width = None if out is None and sys.stdout.isatty() else 240
        Console(file=buffer, width=width, soft_wrap=False, color_system=None).print(rich_table(rows, title, columns))
        text = buffer.getvalue()
    if out is not None:
        write_atomic(out, text)
        err_console.print(f"wrote {out}")
    else:
        sys.stdout.write(text)
