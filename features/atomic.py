"""Atomic file writes: a reader sees the old file or the new one, never a half-written file.

Every file the package writes goes through these (re-exported by :mod:`ttsplan.features.io`).

>>> import tempfile, pathlib, polars as pl
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> write_atomic(d / "note.txt", "hello").read_text()
'hello'
>>> p = write_parquet_atomic(pl.DataFrame({"x": [1]}), d / "t.parquet", metadata={"source": "demo"})
>>> read_metadata(p)
{'source': 'demo'}
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import polars as pl

PathLike = str | os.PathLike


def _umask_mode() -> int:
    """0o666 minus the process umask: the mode a plain ``open(path, "w")`` would give."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def write_atomic(path: PathLike, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same directory and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _umask_mode())  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_parquet_atomic(df: pl.DataFrame, path: PathLike, metadata: dict | None = None) -> Path:
    """Write a parquet file atomically; ``metadata`` is stored as JSON under the key ``ttsplan``."""
    import pyarrow.parquet as pq  # ~0.05 s to import: only what writes or reads parquet metadata pays for it
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = df.to_arrow()
    if metadata is not None:
        meta = dict(table.schema.metadata or {})
        meta[b"ttsplan"] = json.dumps(metadata, sort_keys=True, default=str).encode()
        table = table.replace_schema_metadata(meta)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.chmod(tmp, _umask_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_metadata(path: PathLike) -> dict:
    """Provenance JSON stored by :func:`write_parquet_atomic` ({} when absent)."""
    import pyarrow.parquet as pq  # ~0.05 s to import: only what writes or reads parquet metadata pays for it
    meta = pq.read_schema(path).metadata or {}
    raw = meta.get(b"ttsplan")
    return json.loads(raw) if raw else {}


__all__ = ["write_atomic", "write_parquet_atomic", "read_metadata"]
