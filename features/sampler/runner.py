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

import hashlib
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from ttsplan.features.errors import TtsplanError
from ttsplan.features.grading import grade
from ttsplan.features.io import read_metadata
from ttsplan.features.sampler.base import Completion, Engine, SamplerConfig
from ttsplan.features.sampler.checkpoint import (
    check_run_params,
    first_missing,
    package_versions,
    read_parts,
    shard_lock,
    undo_empty_run,
    write_part,
)
from ttsplan.features.sampler.rows import Grader, sample_row
from ttsplan.features.tasks import Prompt

RUN_FILE = ".run.json"  # hidden: table readers skip dot-files


@dataclass(frozen=True)
class Progress:
    """Reported after each chunk: prompts done / total in this shard, generated tokens/s, prompts resumed
    from earlier runs and the parallel workers (0: this process alone)."""

    prompts_done: int
    prompts_total: int
    tokens: int
    elapsed_s: float
    skipped: int = 0
    workers: int = 0

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.elapsed_s if self.elapsed_s > 0 else 0.0


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
    """File-system-safe form of a config label (ASCII; a label too long for a file name is shortened and
    suffixed with its hash, so it stays unique).

    >>> slug("gpt/T0.7 [addsub]"), len(slug("x" * 300))
    ('gpt_T0.7_addsub', 193)
    """
    s = re.sub(r"[^A-Za-z0-9._=-]+", "_", name).strip("_") or "config"
    if len(s) > 200:  # file names are limited to 255 bytes
        s = s[:180] + "-" + hashlib.sha256(name.encode()).hexdigest()[:12]
    return s


class ValidationSampler:
    """Sample ``k`` completions per prompt with ``engine`` and write a graded SampleTable."""

    def __init__(self, engine: Engine, config: SamplerConfig, grader: Grader = grade):
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
        return [sample_row(prompt, j, c, config=self.config_name, model=self.engine.model_name,
                           keep_text=self.config.keep_text, grader=self.grader) for j, c in enumerate(completions)]

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
        created = first_missing(cdir)
        with shard_lock(cdir, shard, {"k": self.config.k, "config": self.config_name}) as lock_path:
            state: dict = {}
            try:
                return self._run_locked(prompts, out_dir, cdir, shard, progress, state)
            except BaseException:
                if not any(cdir.glob("*.parquet")):  # a run that wrote no chunk leaves nothing behind
                    undo_empty_run(cdir, created, lock_path,
                                   cdir / RUN_FILE if state.get("run_file_created", False) else None)
                raise

    def _run_locked(self, prompts: list[Prompt], out_dir: Path, cdir: Path, shard: tuple[int, int],
                    progress: Callable[[Progress], None] | None, state: dict) -> pl.DataFrame:
        params, state["run_file_created"] = self._check_run_file(out_dir, prompts)
        plan = self.chunks(prompts, shard)
        total = sum(len(p) for _, p in plan)
        files = [cdir / name for name, _ in plan]
        pending = [(cdir / name, part) for name, part in plan if not (cdir / name).exists()]
        skipped = total - sum(len(p) for _, p in pending)
        start = time.perf_counter()
        counts = {"done": skipped, "tokens": 0}
        if progress:  # the run is checked and locked: sampling starts now
            progress(Progress(0, total, 0, 0.0, 0, self.workers_label()))

        def wrote(part: Sequence[Prompt], rows: Sequence[dict]) -> None:
            counts["done"] += len(part)
            counts["tokens"] += sum(r["output_tokens"] or 0 for r in rows)
            if progress:
                progress(Progress(counts["done"], total, counts["tokens"], time.perf_counter() - start, skipped,
                                  self.workers_label()))

        self.sample_pending(pending, {**params, "shard": list(shard)}, wrote)
        if progress and skipped == total:
            progress(Progress(total, total, 0, time.perf_counter() - start, skipped, self.workers_label()))
        return collect(files)

    def workers_label(self) -> int:
        """How many workers sample in parallel (0: this process alone); shown with the progress."""
        return 0

    def sample_pending(self, pending: Sequence[tuple[Path, list[Prompt]]], meta: dict,
                       wrote: Callable[[Sequence[Prompt], Sequence[dict]], None]) -> None:
        """Sample and write every pending ``(chunk path, prompts)``, calling ``wrote(prompts, rows)`` after each.

        This process samples them one after the other; :class:`~ttsplan.features.sampler.ray_sampler.RaySampler`
        spreads them over a Ray cluster.
        """
        for path, part in pending:
            completions = self.engine.generate(part, self.config)
            rows = [r for p, cs in zip(part, completions) for r in self.rows(p, cs)]
            write_part(path, rows, chunk_metadata(meta, path, part, self.engine.provenance(), package_versions()))
            wrote(part, rows)


def chunk_metadata(meta: dict, path: Path, part: Sequence[Prompt], engine_provenance: dict, versions: dict,
                   **extra: object) -> dict:
    """The provenance written with one chunk: run parameters and shard (``meta``), the chunk's name and
    prompt ids, the engine's provenance and the package versions of the process that sampled it."""
    return {**meta, "chunk": Path(path).name, "prompt_ids": [p.id for p in part],
            "engine_provenance": engine_provenance, "versions": versions, **extra}


def collect(paths: Sequence[str | Path] | str | Path) -> pl.DataFrame:
    """Concatenate chunk files (or a run directory) into one validated SampleTable."""
    if isinstance(paths, (str, Path)):
        root = Path(paths)
        paths = sorted(p for p in root.rglob("*.parquet") if not p.name.startswith("."))
        if not paths:
            raise TtsplanError(f"{root} must contain sampler chunk files (*.parquet), got none.")
    return read_parts(paths)


def run_metadata(path: str | Path) -> dict:
    """Provenance of one chunk file (or a merged file)."""
    return read_metadata(path)


__all__ = ["ValidationSampler", "Progress", "parse_shard", "collect", "chunk_metadata", "slug", "run_metadata", "RUN_FILE",
           "check_run_params", "shard_lock"]
