"""Line-by-line JSONL parsing shared by the prompt reader and the importers.

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "x.jsonl"
>>> _ = p.write_text('{"a": 1}\\n\\n[2]\\n{bad\\n')
>>> [(no, obj, err) for no, obj, err in iter_json_objects(p)]  # doctest: +NORMALIZE_WHITESPACE
[(1, {'a': 1}, None), (3, None, 'a list, not an object'),
 (4, None, 'invalid JSON (Expecting property name enclosed in double quotes)')]
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path


def iter_json_objects(path: str | Path) -> Iterator[tuple[int, dict | None, str | None]]:
    """Yield ``(line number, object, None)`` for each non-blank line holding a JSON object and
    ``(line number, None, reason)`` for every other non-blank line. Raises ``UnicodeDecodeError`` on
    bytes that are not UTF-8."""
    with open(path, encoding="utf-8") as fh:
        for no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                yield no, None, f"invalid JSON ({exc.msg})"
                continue
            if not isinstance(obj, dict):
                yield no, None, f"a {type(obj).__name__}, not an object"
                continue
            yield no, obj, None
