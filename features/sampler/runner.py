"""``ValidationSampler``: run an engine over prompts and write a resumable, sharded SampleTable.

Layout of an output directory::

    OUT/<config-slug>/.run.json                      parameters of the run (checked on resume)
    OUT/<config-slug>/s<i>of<n>-c<chunk>-<hash>.parquet   one file per chunk of prompts

Each chunk (``SamplerConfig.batch_prompts`` prompts × ``k`` samples) is written atomically
(temp + rename) with provenance in the parquet metadata, so an interrupted run loses at most the
chunk in flight, and a rerun of the same command skips finished chunks and ends with the identical
table. ``shard=(i, n)`` takes prompts ``i, i+n, i+2n, …`` so ``n`` processes (or GPUs) split a run.

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

import datetime as _dt
import hashlib
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from ttsplan.features.errors import TtsplanError
from ttsplan.features.grading import extract_answer, grade
from ttsplan.features.io import read_metadata, write_atomic, write_parquet_atomic
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


def check_run_params(run_file: Path, params: dict, out_dir: Path) -> None:
    """Record ``params`` in ``run_file`` on the first run; on a rerun, refuse to resume with other ones."""
    if run_file.exists():
        old = json.loads(run_file.read_text())
        diff = sorted(k for k in set(old) | set(params) if old.get(k) != params.get(k))
        if diff:
            raise TtsplanError(f"{out_dir} must hold a run with the same parameters to resume, got a "
                               f"different {', '.join(diff)}. Use another --out directory.")
    else:
        write_atomic(run_file, json.dumps(params, indent=2, sort_keys=True) + "\n")


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

    def _check_run_file(self, out_dir: Path, prompts: Sequence[Prompt]) -> dict:
        params = {"config": self.config_name, "engine": self.engine.name, "model": self.engine.model_name,
                  "sampling": self.config.params(),
                  "prompts_sha256": hashlib.sha256("\n".join(f"{p.id}\t{p.prompt}\t{p.answer}"
                                                             for p in prompts).encode()).hexdigest()}
        check_run_params(out_dir / slug(self.config_name) / RUN_FILE, params, out_dir)
        return params

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
        out_dir = Path(out_dir)
        params = self._check_run_file(out_dir, prompts)
        cdir = out_dir / slug(self.config_name)
        plan = self.chunks(prompts, shard)
        total = sum(len(p) for _, p in plan)
        done = skipped = tokens = 0
        start = time.perf_counter()
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
           "check_run_params"]
