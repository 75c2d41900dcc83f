"""Shared CLI plumbing: error handling (one message, exit 2), output rendering, option parsing."""
from __future__ import annotations

import errno
import functools
import io
import json
import math
import os
import re
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ttsplan.features.errors import TtsplanError
from ttsplan.features.io import write_atomic
from ttsplan.planner.crossfit import Objective
from ttsplan.planner.option_grid import check_families

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
    """Print ``error: message`` on stderr and return the exit-2 exception to raise.

    The message is printed as plain text (``[hf]`` or ``runs[/final].parquet`` are not rich markup).
    """
    err_console.print(f"[bold red]error:[/] {escape(message)}", markup=True, highlight=False)
    return typer.Exit(code=2)


#: exit status of a command whose stdout was closed by the reader (``ttsplan ... | head -1``), as a shell
#: reports a process ended by SIGPIPE (128 + 13).
BROKEN_PIPE_EXIT = 141


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush of unwritten output cannot fail again."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, io.UnsupportedOperation, OSError):
        return  # not a real file (e.g. typer's CliRunner)
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)
    except OSError:
        pass


def _os_error_message(exc: OSError) -> str:
    why = exc.strerror or str(exc) or type(exc).__name__
    if isinstance(exc, (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)):
        return f"{exc.filename if exc.filename is not None else 'a file'}: {why}. Check the path."
    where = exc.filename if exc.filename is not None else "the output"
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG):
        return (f"{where} must have room for the output, got {why!r}. Free disk space or write "
                "elsewhere (--out on another disk).")
    if exc.errno == errno.ENAMETOOLONG:
        return f"{where} must be a path the file system accepts, got {why!r}. Use a shorter name."
    return f"{where} must be readable or writable, got {why!r} (errno {exc.errno}). Check the path and the disk."


def _one_line_warnings(fallback: Callable[..., None]) -> Callable[..., None]:
    """A ``warnings.showwarning`` for the duration of a command: user-facing warnings (UserWarning
    subclasses) as one ``warning:`` line on stderr; any other goes to ``fallback``."""

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: Any = None, line: str | None = None) -> None:
        if issubclass(category, UserWarning):
            err_console.print(f"[yellow]warning:[/] {escape(str(message))}", markup=True, highlight=False)
        else:
            fallback(message, category, filename, lineno, file, line)

    return show


def user_errors(func: F) -> F:
    """Decorator: turn :class:`TtsplanError` and environment faults into one message and exit code 2.

    A reader that closed our stdout (``ttsplan curves ... | head -1``) ends the command quietly, as Unix
    tools do (exit status 141, nothing on stderr); any other ``OSError`` (missing file, full disk, ...) is
    one line on stderr and exit code 2, never a traceback.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        shown = warnings.showwarning
        warnings.showwarning = _one_line_warnings(shown)  # a note to the user is one line, not a source excerpt
        try:
            return func(*args, **kwargs)
        except TtsplanError as exc:
            raise fail(str(exc)) from None
        except BrokenPipeError:
            _silence_stdout()
            raise typer.Exit(code=BROKEN_PIPE_EXIT) from None
        except OSError as exc:
            raise fail(_os_error_message(exc)) from None
        finally:
            warnings.showwarning = shown

    return wrapper  # type: ignore[return-value]


def print_warnings(caught: list) -> None:
    """User-facing warnings (UserWarning subclasses) as one yellow line each on stderr, deduplicated."""
    seen: set[str] = set()
    for w in caught:
        msg = str(w.message)
        if issubclass(w.category, UserWarning) and msg not in seen:
            seen.add(msg)
            err_console.print(f"[yellow]warning:[/] {escape(msg)}", markup=True, highlight=False)


#: most values a ``--k`` / ``--n`` list may expand to, and the largest value it may hold.
MAX_LIST_VALUES = 10_000
MAX_LIST_VALUE = 10_000_000

_INT = r"\s*([+-]?\d+)\s*"
_SINGLE = re.compile(_INT)
_RANGE = re.compile(_INT + "-" + _INT)


def parse_int_list(text: str, name: str, max_values: int = MAX_LIST_VALUES,
                   max_value: int = MAX_LIST_VALUE) -> list[int]:
    """Parse ``"1,2,4"`` (or ``"1-8"`` ranges) into sorted unique positive ints.

    Every part is checked before anything is expanded: values must lie in ``[1, max_value]`` and the
    list may hold at most ``max_values`` distinct values, so ``--k 1-100000000`` is one message, not a
    list of 10^8 integers.

    >>> parse_int_list("1-4,8,2", "--k")
    [1, 2, 3, 4, 8]
    """
    parts = [p.strip() for p in str(text).split(",")]
    problems: list[str] = []
    intervals: list[tuple[int, int]] = []
    for part in parts:
        if not part:
            continue
        m = _SINGLE.fullmatch(part)
        r = None if m else _RANGE.fullmatch(part)
        if m:
            lo = hi = _to_int(m.group(1))
        elif r:
            lo, hi = _to_int(r.group(1)), _to_int(r.group(2))
        else:
            problems.append(f"{_short(part)} is not an integer or a range like 1-8")
            continue
        if lo > hi:
            problems.append(f"range {_short(part)} must run from low to high (like {hi}-{lo})")
            continue
        if lo < 1:
            problems.append(f"{_short(part)} holds values below 1")
        if hi > max_value:
            problems.append(f"{_short(part)} holds values above {max_value:,}")
        if max(lo, 1) <= hi:
            intervals.append((max(lo, 1), hi))  # counted, never expanded unless every check passed
    if not problems and not intervals:
        problems.append("no value given")
    count = 0
    for lo, hi in _merge(intervals):
        count += hi - lo + 1
    if count > max_values:
        problems.append(f"it expands to {count:,} values, more than {max_values:,}")
    if problems:
        raise TtsplanError(f"{name} must list integers >= 1 and <= {max_value:,} (at most {max_values:,} values), "
                           f"got {_short(text)}: {'; '.join(problems)}. Pass a short list or range such as 1,2,4,8 "
                           "or 1-64.")
    out: set[int] = set()
    for lo, hi in intervals:
        out.update(range(lo, hi + 1))
    return sorted(out)


def _to_int(digits: str) -> int:
    """int() of a signed digit string, saturating absurdly long ones (int() refuses > 4300 digits)."""
    if len(digits.lstrip("+-")) > 18:
        return -(10 ** 18) if digits.startswith("-") else 10 ** 18
    return int(digits)


def _short(text: str, limit: int = 60) -> str:
    """``repr`` of user text, cut to ``limit`` characters."""
    text = str(text)
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _merge(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Union of closed integer intervals, sorted and disjoint."""
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(intervals):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def check_ranges(*checks: tuple[str, Any, bool, str]) -> None:
    """Raise one :class:`TtsplanError` listing every failed option check.

    Each check is ``(option, value, ok, invariant)``, e.g. ``("--bootstrap", -5, -5 >= 0, "be >= 0")``.

    >>> check_ranges(("--orders", 20, True, "be >= 1"))
    """
    bad = [f"{opt} must {inv}, got {value!r}" for opt, value, ok, inv in checks if not ok]
    if bad:
        raise TtsplanError("; ".join(bad) + ". Fix the option" + ("s" if len(bad) > 1 else "")
                           + " and rerun (see --help).")


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
        try:
            write_atomic(out, text)
        except OSError as exc:  # name the user's path, not the hidden temp file
            raise OSError(exc.errno, exc.strerror, str(out)) from None
        err_console.print(f"wrote {escape(str(out))}", markup=True, highlight=False)
    else:
        write_stdout(text)


def write_stdout(text: str) -> None:
    """Write ``text`` to stdout and flush, so a closed pipe or a full disk surfaces here, inside
    :func:`user_errors`, and not in the interpreter's final flush (where it would be a traceback)."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except OSError as exc:
        _silence_stdout()
        if isinstance(exc, BrokenPipeError):
            raise
        raise OSError(exc.errno, exc.strerror, "stdout") from None


def throttled_progress(verb: str, min_interval_s: float = 0.5) -> Callable[[str], None]:
    """A ``progress(msg)`` callback printing ``verb msg`` on stderr at most every ``min_interval_s`` seconds
    (and always for the first and last of ``[i/n]`` messages), with the elapsed time."""
    start = time.monotonic()
    last = [-float("inf")]

    def show(msg: str) -> None:
        now = time.monotonic()
        m = re.match(r"\[(\d+)/(\d+)\]", msg)
        edge = m is not None and (m.group(1) in ("1", m.group(2)))
        if edge or now - last[0] >= min_interval_s:
            last[0] = now
            err_console.print(f"{verb} {escape(msg)} ({now - start:.0f} s)", highlight=False)

    return show


def check_tolerance(tolerance_pt: float, problems: list[str]) -> bool:
    """``--tolerance`` (accuracy points) is in [0, 100); otherwise the problem is appended and False returned."""
    if 0 <= tolerance_pt < 100:
        return True
    problems.append(f"--tolerance must be in [0, 100) accuracy points, got {tolerance_pt}. Try 0.5.")
    return False


def policy_objective(target: str | None, tolerance_pt: float, policies: str, problems: list[str],
                     unit: str = "samples") -> tuple[Any, tuple[str, ...]]:
    """``--target`` / ``--tolerance`` (points) / ``--policies`` of ``plan`` and ``evaluate``: the
    :class:`~ttsplan.planner.crossfit.Objective` and the validated candidate families; each problem is
    appended to ``problems`` (the command reports them all at once) and its part returned as None / ()."""
    objective, families = None, ()
    if not check_tolerance(tolerance_pt, problems):  # in points here, so the objective does not repeat it
        tolerance_pt = 0.0
    try:
        objective = Objective.parse(target, tolerance_pt / 100.0, None, unit)
    except TtsplanError as exc:
        problems.append(str(exc))
    try:
        families = check_families(tuple(p.strip() for p in policies.split(",") if p.strip()))
    except TtsplanError as exc:
        problems.append("--" + str(exc))
    return objective, families
