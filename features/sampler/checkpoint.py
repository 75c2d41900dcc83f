"""Checkpoints shared by ``ttsplan sample`` and ``ttsplan run``: part files, the resume record, the
run-parameter check and the per-shard lock.

* :func:`write_part` writes SampleTable rows as one parquet part, atomically (temp file + rename),
  with provenance in the parquet metadata; :func:`read_parts` reads parts back as one validated table.
* :class:`ResumeRecord`: a run's state file (``session.json``) naming the parts it includes. A checkpoint
  writes the part first, then the state, so after a crash the parts the state does not name
  (:meth:`ResumeRecord.unrecorded`) are exactly the samples to replay into the restored state.
* :func:`check_run_params`: the parameter file (``.run.json`` / ``run.json``), created atomically on the
  first run and compared on every rerun, so a resume with other parameters is refused.
* :func:`shard_lock`: an exclusive ``flock`` held for the whole run of one shard.
* :class:`CheckpointPolicy`: how often ``ttsplan run`` checkpoints (every so many rows or seconds).

>>> import tempfile
>>> rec = ResumeRecord(tempfile.mkdtemp())
>>> rec.load() is None, rec.unrecorded()
(True, [])
>>> rec.write_part([{"config": "c", "prompt_id": "p", "sample_idx": 0, "answer": "4"}], {"run": 1})
'part-000000.parquet'
>>> rec.save({"n": [1]})
>>> again = ResumeRecord(rec.out)
>>> again.load(), again.parts, again.table().height
({'n': [1]}, ['part-000000.parquet'], 1)
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import importlib.metadata
import json
import math
import os
import socket
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from ttsplan.features.errors import TtsplanError
from ttsplan.features.io import _umask_mode, write_atomic, write_parquet_atomic
from ttsplan.features.schema import SAMPLE_SCHEMA, validate_sample_table

LOCK_PREFIX = ".lock-"
#: the resume record's state file and part folder inside a run directory (``ttsplan run``).
STATE_FILE = "session.json"
PARTS_DIR = "parts"


# -- when to checkpoint ------------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckpointPolicy:
    """Checkpoint after ``every_rows`` new rows or ``every_s`` seconds since the last one, whichever comes
    first; together they bound what a crash can lose (it is re-sampled, identically, on the rerun).

    >>> CheckpointPolicy(every_rows=1).due(rows=1, elapsed_s=0.0)
    True
    >>> CheckpointPolicy().due(rows=5, elapsed_s=2.0)
    False
    >>> CheckpointPolicy(every_rows=0)
    Traceback (most recent call last):
    ...
    ttsplan.features.errors.TtsplanError: every_rows must be a whole number >= 1, got 0. Checkpoint every 32 rows, say.
    """

    every_rows: int = 32
    every_s: float = 10.0

    def __post_init__(self) -> None:
        problems = []
        if isinstance(self.every_rows, bool) or not isinstance(self.every_rows, int) or self.every_rows < 1:
            problems.append(f"every_rows must be a whole number >= 1, got {self.every_rows!r}. Checkpoint every 32 "
                            "rows, say.")
        if (isinstance(self.every_s, bool) or not isinstance(self.every_s, (int, float)) or math.isnan(self.every_s)
                or self.every_s <= 0):
            problems.append(f"every_s must be a number of seconds > 0, got {self.every_s!r}. Checkpoint every 10 s, "
                            "say (math.inf: by rows only).")
        if problems:
            raise TtsplanError(" ".join(problems))

    def due(self, rows: int, elapsed_s: float) -> bool:
        """Whether ``rows`` rows told and ``elapsed_s`` seconds since the last checkpoint call for the next one."""
        return rows >= self.every_rows or elapsed_s >= self.every_s


# -- part files ------------------------------------------------------------------------------------
def utc_now() -> str:
    """The current UTC time, ISO 8601 to the second (the ``created_utc`` of a part)."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def package_versions() -> dict:
    """Installed versions of the packages a table's numbers depend on (provenance)."""
    out = {}
    for pkg in ("ttsplan", "polars", "numpy", "torch", "transformers", "vllm"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def write_part(path: str | Path, rows: Sequence[dict], metadata: dict) -> Path:
    """Write SampleTable ``rows`` to ``path`` atomically, with ``metadata`` + ``created_utc`` as provenance."""
    df = pl.DataFrame(list(rows), schema=SAMPLE_SCHEMA)
    return write_parquet_atomic(df, path, metadata={**metadata, "created_utc": utc_now()})


def read_parts(paths: Sequence[str | Path]) -> pl.DataFrame:
    """The parts at ``paths``, concatenated in order, as one validated SampleTable (empty for none)."""
    if not paths:
        return validate_sample_table(pl.DataFrame(schema=SAMPLE_SCHEMA))
    return validate_sample_table(pl.concat([pl.read_parquet(p) for p in paths], how="vertical_relaxed"))


# -- the resume record -----------------------------------------------------------------------------
class ResumeRecord:
    """The parts of a run (``OUT/parts/part-NNNNNN.parquet``) and the state file naming those it includes.

    :meth:`write_part` appends a part, :meth:`save` writes ``{"session": state, "parts": [...]}``
    atomically. On a rerun, :meth:`load` returns the saved state and :meth:`unrecorded` the parts
    written after it, which the caller replays into the state and then :meth:`adopt` s.
    """

    def __init__(self, out_dir: str | Path, state_file: str = STATE_FILE, parts_dir: str = PARTS_DIR):
        self.out = Path(out_dir)
        self.state_path = self.out / state_file
        self.parts_path = self.out / parts_dir
        self.parts: list[str] = []

    def load(self) -> dict | None:
        """The saved state (``None`` before the first save); sets :attr:`parts` to the parts it includes."""
        if not self.state_path.exists():
            return None
        saved = json.loads(self.state_path.read_text())
        self.parts = list(saved["parts"])
        return saved["session"]

    def unrecorded(self) -> list[str]:
        """Part files on disk that the record does not name (written after the last save), in order."""
        if not self.parts_path.exists():
            return []
        known = set(self.parts)
        return sorted(p.name for p in self.parts_path.glob("part-*.parquet") if p.name not in known)

    def read_part(self, name: str) -> pl.DataFrame:
        return pl.read_parquet(self.parts_path / name)

    def adopt(self, name: str) -> None:
        """Count an unrecorded part as included (after its rows were replayed into the state)."""
        self.parts.append(name)

    def write_part(self, rows: Sequence[dict], metadata: dict) -> str:
        """Write ``rows`` as the next part (atomically) and return its name; :meth:`save` records it."""
        name = f"part-{len(self.parts):06d}.parquet"
        write_part(self.parts_path / name, rows, metadata)
        self.parts.append(name)
        return name

    def save(self, state: dict) -> None:
        """Write ``state`` and the parts it includes, atomically."""
        write_atomic(self.state_path, json.dumps({"session": state, "parts": self.parts}, separators=(",", ":")))

    def paths(self) -> list[Path]:
        return [self.parts_path / n for n in self.parts]

    def table(self) -> pl.DataFrame:
        """Every recorded part as one validated SampleTable."""
        return read_parts(self.paths())


# -- run parameters ----------------------------------------------------------------------------------
def _leaf_changes(old: object, new: object, prefix: str = "") -> list[str]:
    """``key: recorded → now`` for every differing leaf of two parameter dicts."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in sorted(set(old) | set(new)):
            out += _leaf_changes(old.get(k), new.get(k), f"{prefix}.{k}" if prefix else str(k))
        return out
    if old == new:
        return []
    def short(v: object) -> str:
        text = json.dumps(v, default=str)
        return text if len(text) <= 24 else text[:21] + "..."
    return [f"{prefix} {short(old)} recorded, {short(new)} now"]


def check_run_params(run_file: Path, params: dict, out_dir: Path) -> bool:
    """Record ``params`` in ``run_file`` on the first run; on a rerun, refuse to resume with other ones.

    The file is created atomically and never overwritten (a hard link of a complete temp file), so of
    two runs that start at the same moment with different parameters, exactly one records its own and
    the other is refused. Returns whether this call created the file.
    """
    run_file = Path(run_file)
    created = False
    if not run_file.exists():
        run_file.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(params, indent=2, sort_keys=True) + "\n"
        fd, tmp = tempfile.mkstemp(prefix=f".{run_file.name}.", suffix=".tmp", dir=run_file.parent)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, _umask_mode())  # mkstemp creates 0600
            try:
                os.link(tmp, run_file)  # fails if another run recorded its parameters first
                created = True
            except FileExistsError:
                pass
            except OSError:  # no hard links on this file system: exclusive create instead
                try:
                    with open(run_file, "x") as fh:
                        fh.write(text)
                    created = True
                except FileExistsError:
                    pass
        finally:
            Path(tmp).unlink(missing_ok=True)
    try:
        old = json.loads(run_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise TtsplanError(f"{run_file} must hold the run parameters as JSON, got a damaged file. Use another "
                           "--out directory (or delete the directory if its chunks are not needed).") from None
    diff = sorted(k for k in set(old) | set(params) if old.get(k) != params.get(k))
    if diff:
        changes = _leaf_changes({k: old.get(k) for k in diff}, {k: params.get(k) for k in diff})
        detail = "; ".join(changes[:4]) + ("; …" if len(changes) > 4 else "")
        raise TtsplanError(f"{out_dir} must hold a run with the same parameters to resume, got a "
                           f"different {', '.join(diff)} ({detail}). Use another --out directory, or rerun "
                           "with the recorded parameters.")
    return created


# -- the per-shard lock ------------------------------------------------------------------------------
@contextlib.contextmanager
def shard_lock(config_dir: Path, shard: tuple[int, int], info: dict | None = None) -> Iterator[Path]:
    """Hold an exclusive ``flock`` on ``config_dir/.lock-s<i>of<n>`` for the duration of the block.

    A second process that tries to take the same lock is refused at once with a
    :class:`TtsplanError` naming the holder (pid, host, start time, command). The lock goes away with
    the process (also on kill -9). The lock file itself stays (a hidden dot-file that table readers skip).
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX: no locking
        yield config_dir
        return
    config_dir = Path(config_dir)
    config_dir.mkdir(parents=True, exist_ok=True)
    path = config_dir / f"{LOCK_PREFIX}s{shard[0]}of{shard[1]}"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # BlockingIOError: held by another process (or another open file in this one)
            raise TtsplanError(f"{config_dir} must be written by one run at a time, got another run in progress "
                               f"({_describe_holder(path)}) holding {path}. Wait for it to finish, or use "
                               "another --out directory.") from None
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "started_utc": utc_now(),
                  "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:300] if sys.argv else "",
                  **(info or {})}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(holder, sort_keys=True) + "\n").encode(), 0)
        try:
            yield path
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _describe_holder(path: Path) -> str:
    try:
        h = json.loads(path.read_text() or "{}")
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        h = {}
    if not h:
        return "a process that is starting"
    bits = [f"pid {h.get('pid')} on {h.get('host')}", f"started {h.get('started_utc')}"]
    if "k" in h:
        bits.append(f"k={h['k']}")
    if h.get("command"):
        bits.append(f"command: {h['command']}")
    return ", ".join(bits)


# -- cleaning up after a run that wrote nothing --------------------------------------------------------
def first_missing(path: Path) -> Path | None:
    """The topmost directory of ``path`` (or ``path`` itself) that does not exist yet, or ``None``."""
    missing = None
    probe = Path(path)
    while not probe.exists():
        missing = probe
        if probe.parent == probe:
            break
        probe = probe.parent
    return missing


def undo_empty_run(cdir: Path, created: Path | None, lock_path: Path, run_file: Path | None) -> None:
    """Remove what a failed run that wrote no part created: its parameter file (``run_file``, when this
    run created it), its lock file and the directories it made (only when empty, so another shard's
    files are never touched)."""
    with contextlib.suppress(OSError):
        if run_file is not None:
            Path(run_file).unlink(missing_ok=True)
        if created is not None:
            Path(lock_path).unlink(missing_ok=True)
            d = Path(cdir)
            while True:
                os.rmdir(d)  # raises (and stops) when not empty
                if d == created or d.parent == d:
                    break
                d = d.parent


__all__ = ["LOCK_PREFIX", "PARTS_DIR", "STATE_FILE", "CheckpointPolicy", "ResumeRecord", "check_run_params",
           "first_missing", "package_versions", "read_parts", "shard_lock", "undo_empty_run", "utc_now", "write_part"]
