"""``ValidationSampler``: run an engine over prompts and write a resumable, sharded SampleTable.

Layout of an output directory::

    OUT/<config-slug>/.run.json                      parameters of the run (checked on resume)
    OUT/<config-slug>/.lock-s<i>of<n>                locked (flock) by the process running shard i/n
    OUT/<config-slug>/s<i>of<n>-c<chunk>-<hash>.parquet   one file per chunk of prompts

Each chunk (``SamplerConfig.batch_prompts`` prompts × ``k`` samples) is written atomically
(temp + rename) with provenance in the parquet metadata, so an interrupted run loses at most the
chunk in flight, and a rerun of the same command skips finished chunks and ends with the identical
table. ``shard=(i, n)`` takes prompts ``i, i+n, i+2n, …`` so ``n`` processes (or GPUs) split a run.
A process holds an exclusive lock on its shard for the whole run, so a second process started on the
same shard is refused at once (naming the first); the parameter file is created atomically, so runs
with other parameters are refused too, even when started at the same moment.

>>> from ttsplan.features.sampler.replay import ReplayEngine
>>> import polars as pl, tempfile
>>> table = pl.DataFrame({"config": ["c"] * 2, "prompt_id": ["p"] * 2, "sample_idx": [0, 1],
...                       "text": [" 4", " 5"], "output_tokens": [2, 2]})
>>> s = ValidationSampler(ReplayEngine(table), SamplerConfig(k=2, config="c"))
>>> out = s.run([Prompt("p", "Q: 2 + 2?\\nA:", "4", kind="short")], tempfile.mkdtemp())
>>> out.select("answer", "correct").rows()
[('4', True), ('5', False)]
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import re
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from ttsplan.features.errors import TtsplanError
from ttsplan.features.grading import extract_answer, grade
from ttsplan.features.io import _umask_mode, read_metadata, write_parquet_atomic
from ttsplan.features.sampler.base import Completion, Engine, SamplerConfig
from ttsplan.features.schema import SAMPLE_SCHEMA, validate_sample_table
from ttsplan.features.tasks import Prompt

RUN_FILE = ".run.json"  # hidden: table readers skip dot-files


@dataclass(frozen=True)
class Progress:
    """Reported after each chunk: prompts done / total in this shard and generated tokens/s."""

    prompts_done: int
    prompts_total: int
    tokens: int
    elapsed_s: float
    skipped: int = 0

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.elapsed_s if self.elapsed_s > 0 else 0.0


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


LOCK_PREFIX = ".lock-"


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
        holder = {"pid": os.getpid(), "host": socket.gethostname(),
                  "started_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
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


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"i/n"`` → ``(i, n)`` with ``0 <= i < n``.

    >>> parse_shard("1/4")
    (1, 4)
    """
    if text is None:
        return (0, 1)
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not m or int(m.group(2)) < 1 or int(m.group(1)) >= int(m.group(2)):
        raise TtsplanError(f"--shard must be i/n with 0 <= i < n (e.g. 0/4), got {text!r}.")
    return int(m.group(1)), int(m.group(2))


def slug(name: str) -> str:
    """File-system-safe form of a config label."""
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", name).strip("_") or "config"


def _package_versions() -> dict:
    import importlib.metadata as md

    out = {}
    for pkg in ("ttsplan", "polars", "numpy", "torch", "transformers", "vllm"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


class ValidationSampler:
    """Sample ``k`` completions per prompt with ``engine`` and write a graded SampleTable."""

    def __init__(self, engine: Engine, config: SamplerConfig, grader: Callable[[str | None, str | None], bool | None] = grade):
        self.engine = engine
        self.config = config
        self.grader = grader

    @property
    def config_name(self) -> str:
        c = self.config
        return c.config or f"{self.engine.model_name}/T{c.temperature:g}"

    def rows(self, prompt: Prompt, completions: Sequence[Completion]) -> list[dict]:
        """SampleTable rows for one prompt (answer extraction + grading happen here)."""
        if len(completions) != self.config.k:
            raise RuntimeError(f"engine {self.engine.name} returned {len(completions)} completions for "
                               f"{prompt.id}, expected k={self.config.k}")
        out = []
        for j, c in enumerate(completions):
            answer = extract_answer(c.text, prompt.kind)
            out.append({"config": self.config_name, "model": self.engine.model_name, "dataset": prompt.dataset,
                        "prompt_id": prompt.id, "sample_idx": j, "answer": answer,
                        "correct": self.grader(answer, prompt.answer) if prompt.answer is not None else None,
                        "output_tokens": c.output_tokens, "prompt_tokens": c.prompt_tokens,
                        "logprob": c.logprob, "entropy": c.entropy, "reward": c.reward,
                        "finish_reason": c.finish_reason, "text": c.text if self.config.keep_text else None})
        return out

    def _check_run_file(self, out_dir: Path, prompts: Sequence[Prompt]) -> tuple[dict, bool]:
        params = {"config": self.config_name, "engine": self.engine.name, "model": self.engine.model_name,
                  "sampling": self.config.params(),
                  "prompts_sha256": hashlib.sha256("\n".join(f"{p.id}\t{p.prompt}\t{p.answer}"
                                                             for p in prompts).encode()).hexdigest()}
        created = check_run_params(out_dir / slug(self.config_name) / RUN_FILE, params, out_dir)
        return params, created

    def chunks(self, prompts: Sequence[Prompt], shard: tuple[int, int] = (0, 1)) -> list[tuple[str, list[Prompt]]]:
        """``(file name, prompts)`` of every chunk this shard owns, in order."""
        i, n = shard
        mine = list(prompts)[i::n]
        b = self.config.batch_prompts
        out = []
        for c, start in enumerate(range(0, len(mine), b)):
            part = mine[start:start + b]
            h = hashlib.sha256("\n".join(p.id for p in part).encode()).hexdigest()[:10]
            out.append((f"s{i}of{n}-c{c:05d}-{h}.parquet", part))
        return out

    def run(self, prompts: Sequence[Prompt], out_dir: str | Path, shard: tuple[int, int] = (0, 1),
            max_prompts: int | None = None, progress: Callable[[Progress], None] | None = None) -> pl.DataFrame:
        """Sample every unfinished chunk of this shard, then return the validated table of the shard."""
        prompts = list(prompts)[:max_prompts] if max_prompts else list(prompts)
        if not prompts:
            raise TtsplanError("prompts must hold at least one prompt, got none.")
        ids = [p.id for p in prompts]
        if len(set(ids)) != len(ids):
            dup = sorted({x for x in ids if ids.count(x) > 1})[:3]
            raise TtsplanError(f"prompt ids must be unique, got duplicates {dup}. Rename them.")
        preflight = getattr(self.engine, "preflight", None)
        if preflight is not None:  # e.g. replay: every prompt recorded with >= k samples, before any write
            preflight(prompts, self.config)
        out_dir = Path(out_dir)
        cdir = out_dir / slug(self.config_name)
        if cdir.exists() and not cdir.is_dir():
            raise TtsplanError(f"{cdir} must be a directory for the chunks of {self.config_name!r}, got a file. "
                               "Use another --out directory.")
        created = _first_missing(cdir)
        with shard_lock(cdir, shard, {"k": self.config.k, "config": self.config_name}) as lock_path:
            state: dict = {}
            try:
                return self._run_locked(prompts, out_dir, cdir, shard, progress, state)
            except BaseException:
                if not any(cdir.glob("*.parquet")):  # a run that wrote no chunk leaves nothing behind
                    _undo_empty_run(cdir, created, lock_path, state.get("run_file_created", False))
                raise

    def _run_locked(self, prompts: list[Prompt], out_dir: Path, cdir: Path, shard: tuple[int, int],
                    progress: Callable[[Progress], None] | None, state: dict) -> pl.DataFrame:
        params, state["run_file_created"] = self._check_run_file(out_dir, prompts)
        plan = self.chunks(prompts, shard)
        total = sum(len(p) for _, p in plan)
        done = skipped = tokens = 0
        start = time.perf_counter()
        if progress:  # the run is checked and locked: sampling starts now
            progress(Progress(0, total, 0, 0.0, 0))
        files = []
        for name, part in plan:
            path = cdir / name
            files.append(path)
            if path.exists():
                done += len(part)
                skipped += len(part)
                continue
            completions = self.engine.generate(part, self.config)
            rows = [r for p, cs in zip(part, completions) for r in self.rows(p, cs)]
            tokens += sum(r["output_tokens"] or 0 for r in rows)
            df = pl.DataFrame(rows, schema=SAMPLE_SCHEMA)
            meta = {**params, "shard": list(shard), "chunk": name, "prompt_ids": [p.id for p in part],
                    "engine_provenance": self.engine.provenance(), "versions": _package_versions(),
                    "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
            write_parquet_atomic(df, path, metadata=meta)
            done += len(part)
            if progress:
                progress(Progress(done, total, tokens, time.perf_counter() - start, skipped))
        if progress and skipped == total:
            progress(Progress(done, total, 0, time.perf_counter() - start, skipped))
        return collect(files)


def _undo_empty_run(cdir: Path, created: Path | None, lock_path: Path, run_file_created: bool) -> None:
    """Remove what a failed run that wrote no chunk created: its parameter file, its lock file and the
    directories it made (only when empty, so another shard's files are never touched)."""
    with contextlib.suppress(OSError):
        if run_file_created:
            (cdir / RUN_FILE).unlink(missing_ok=True)
        if created is not None:
            Path(lock_path).unlink(missing_ok=True)
            d = cdir
            while True:
                os.rmdir(d)  # raises (and stops) when not empty
                if d == created or d.parent == d:
                    break
                d = d.parent


def _first_missing(path: Path) -> Path | None:
    """The topmost directory of ``path`` (or ``path`` itself) that does not exist yet, or ``None``."""
    missing = None
    probe = Path(path)
    while not probe.exists():
        missing = probe
        if probe.parent == probe:
            break
        probe = probe.parent
    return missing


def collect(paths: Sequence[str | Path] | str | Path) -> pl.DataFrame:
    """Concatenate chunk files (or a run directory) into one validated SampleTable."""
    if isinstance(paths, (str, Path)):
        root = Path(paths)
        paths = sorted(p for p in root.rglob("*.parquet") if not p.name.startswith("."))
        if not paths:
            raise TtsplanError(f"{root} must contain sampler chunk files (*.parquet), got none.")
    frames = [pl.read_parquet(p) for p in paths]
    return validate_sample_table(pl.concat(frames, how="vertical_relaxed"))


def run_metadata(path: str | Path) -> dict:
    """Provenance of one chunk file (or a merged file)."""
    return read_metadata(path)


__all__ = ["ValidationSampler", "Progress", "parse_shard", "collect", "slug", "run_metadata", "RUN_FILE",
           "check_run_params", "shard_lock"]
