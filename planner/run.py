"""Execute a :class:`~ttsplan.planner.plan.Plan` with a sampler engine, stopping prompts adaptively (``ttsplan run``).

:func:`run_plan` takes a plan, the prompts it was made for and an engine (``hf``, ``vllm``, ``openai``,
``replay``). Every planned prompt gets at most its allocated N samples (the session's ``caps``); an
:class:`~ttsplan.planner.adaptive.AdaptiveSession` with the chosen stopping rule decides, sample by sample,
when a prompt has had enough (without a rule each prompt gets exactly its N). Many prompts are in
flight at once, driven by the kind the engine declares: an ``async`` engine (``openai``) streams one
request per asked prompt (bounded by its ``concurrency``) and each answer is told as it arrives;
``batch`` engines (``hf``, ``vllm``, ``replay``) sample the asked prompts in batches of ``batch`` in a
worker thread.

Sample ``j`` of prompt ``p`` is always drawn with the seed of ``(seed, p, j)`` (``openai``: the per-sample
seed :func:`~ttsplan.features.sampler.base.sample_seed`; ``hf`` / ``vllm``: the engine's own seed for the id
``"p#j"``; ``replay``: recorded sample ``j``), so the table does not depend on timing or batching.

Output directory (checkpoints: :mod:`ttsplan.features.sampler.checkpoint`)::

    OUT/run.json              parameters (checked on resume)
    OUT/parts/part-NNNNNN.parquet   samples, appended atomically in checkpoints
    OUT/session.json          AdaptiveSession.to_dict() + the part files it includes (atomic)
    OUT/samples.parquet       the validated SampleTable (written at the end)
    OUT/result.parquet        one row per prompt: final answer, correct, samples, tokens, stop reason
    OUT/summary.json          accuracy (when gold answers are known) and cost

This module is the policy loop only: ask the session → sample through the executor of the engine's
kind (:func:`~ttsplan.features.sampler.executors.executor_for`) → build rows
(:func:`~ttsplan.features.sampler.rows.sample_row`) and tell the session → checkpoint.

Crash safety: a checkpoint first writes a new part file, then the session state naming it. On a
rerun the session is restored from ``session.json``, the rows of any part written after it are
replayed with :meth:`~ttsplan.planner.adaptive.AdaptiveSession.restore` (their ``sample_idx`` must be
the next index of their prompt), and samples that were in flight are re-asked with the same index and
seed. Nothing is sampled twice and nothing is lost.

>>> import polars as pl, tempfile
>>> from ttsplan.features.sampler import ReplayEngine, SamplerConfig
>>> from ttsplan.features.tasks import Prompt
>>> rec = pl.DataFrame({"config": ["c"] * 8, "prompt_id": ["a"] * 4 + ["b"] * 4, "sample_idx": [0, 1, 2, 3] * 2,
...                     "text": ["4", "4", "4", "4", "1", "2", "3", "4"]})
>>> prompts = [Prompt("a", "2+2?", "4", kind="short"), Prompt("b", "?", "4", kind="short")]
>>> res = run_plan({"a": 4, "b": 4}, prompts, ReplayEngine(rec), tempfile.mkdtemp(), rule="beta",
...                threshold=0.9, sampling=SamplerConfig(k=1, config="c"))
>>> res.result.select("prompt_id", "samples", "answer", "stopped").rows()
[('a', 3, '4', 'rule'), ('b', 4, '1', 'cap')]
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ttsplan.features.errors import SchemaError, TtsplanError, did_you_mean
from ttsplan.features.grading import grade
from ttsplan.features.io import write_atomic, write_parquet_atomic
from ttsplan.features.sampler.base import Engine, SamplerConfig
from ttsplan.features.sampler.checkpoint import (
    LOCK_PREFIX,
    CheckpointPolicy,
    ResumeRecord,
    check_run_params,
    shard_lock,
)
from ttsplan.features.sampler.executors import executor_for
from ttsplan.features.sampler.rows import sample_row
from ttsplan.features.tasks import Prompt
from ttsplan.planner.adaptive import AdaptiveSession
from ttsplan.planner.stopping import make_rule

RUN_FILE = "run.json"
#: strategies whose final answer is the highest-reward sample rather than the vote.
REWARD_PICK = ("best-of-n", "best-of-majority")


@dataclass(frozen=True)
class RunProgress:
    """Reported after every batch of told samples."""

    samples: int
    planned: int
    open_prompts: int
    prompts: int
    output_tokens: int
    elapsed_s: float
    resumed: int = 0
    engine: str = ""

    @property
    def samples_per_s(self) -> float:
        return (self.samples - self.resumed) / self.elapsed_s if self.elapsed_s > 0 else 0.0


@dataclass
class RunResult:
    """``table`` (SampleTable), ``result`` (per prompt), ``summary`` (dict), the output directory."""

    table: pl.DataFrame
    result: pl.DataFrame
    summary: dict
    out_dir: Path


def plan_caps(plan: Any, config: str | None = None) -> tuple[str | None, dict[str, int], dict[str, str]]:
    """``(config, {prompt_id: n}, {prompt_id: strategy})`` of one configuration of a plan.

    ``plan`` is a :class:`~ttsplan.planner.plan.Plan` or a plain ``{prompt_id: n}`` mapping (strategy majority).
    """
    if isinstance(plan, Mapping):
        caps = {str(k): int(v) for k, v in plan.items()}
        return config, caps, {k: "majority" for k in caps}
    configs = sorted({a.config for a in plan.allocations})
    cfg = config or plan.recommended_config
    if cfg not in configs:
        raise TtsplanError(f"--config must be a configuration of the plan, got {cfg!r}. Plan configurations: "
                           f"{', '.join(configs)}.{did_you_mean(str(cfg), configs)}")
    allocs = [a for a in plan.allocations if a.config == cfg]
    return cfg, {a.prompt_id: int(a.n) for a in allocs}, {a.prompt_id: a.strategy for a in allocs}


def _unit_reward(reward: float | None, kind: str) -> float | None:
    """Map an engine reward to [0, 1] for reward-weighted votes (``mean_logprob`` → exp, else r/(1+r))."""
    if reward is None or not math.isfinite(reward):
        return None
    if kind == "mean_logprob":
        return float(min(1.0, math.exp(reward)))
    return float(max(reward, 0.0) / (1.0 + max(reward, 0.0)))


# -- the run ---------------------------------------------------------------------------------------
class _Run:
    def __init__(self, caps: dict[str, int], strategies: dict[str, str], prompts: Sequence[Prompt], engine: Engine,
                 out_dir: Path, config: str, rule: str | None, threshold: float | None, min_n: int | None,
                 budget: int | None, sampling: SamplerConfig, batch: int, checkpoint: CheckpointPolicy,
                 progress: Callable[[RunProgress], None] | None):
        self.engine, self.out, self.sampling = engine, out_dir, sampling
        self.config = config
        by_id = {p.id: p for p in prompts}
        missing = [pid for pid in caps if pid not in by_id]
        if missing:
            raise TtsplanError(f"prompts must include every prompt of the plan, got {len(missing)} missing "
                               f"({', '.join(missing[:5])}{', …' if len(missing) > 5 else ''}). Pass the prompt "
                               "file the plan was made for with --prompts.")
        self.ids = [pid for pid in caps]
        self.prompts = [by_id[pid] for pid in self.ids]
        self.caps = np.array([caps[pid] for pid in self.ids], dtype=np.int64)
        if self.caps.min(initial=1) < 1:
            raise TtsplanError("plan allocations must have n >= 1, got a smaller n.")
        self.strategies = [strategies.get(pid, "majority") for pid in self.ids]
        max_n = int(self.caps.max())
        self.rule_name, self.threshold, self.min_n, self.budget = rule, threshold, min_n, budget
        self.max_n = max_n
        self.batch, self.checkpoint_policy = batch, checkpoint
        self.progress = progress
        self.rows: list[dict] = []      # told, not yet written
        self.record = ResumeRecord(out_dir)
        self.resumed = 0

    # params / session ---------------------------------------------------------------------------
    def params(self) -> dict:
        h = hashlib.sha256("\n".join(f"{p.id}\t{p.prompt}\t{p.answer}\t{c}" for p, c in
                                     zip(self.prompts, self.caps.tolist())).encode()).hexdigest()
        return {"config": self.config, "engine": self.engine.name, "model": self.engine.model_name,
                "rule": self.rule_name, "threshold": self.threshold, "min_n": self.min_n, "budget": self.budget,
                "sampling": {k: v for k, v in self.sampling.params().items() if k not in ("k", "batch_prompts")},
                "plan_sha256": h}

    def new_session(self) -> AdaptiveSession:
        if self.rule_name is None:  # fixed N: a rule that never stops before the cap
            rule = make_rule("beta", min_n=self.max_n, max_n=self.max_n)
            return AdaptiveSession(rule, self.ids, caps=self.caps, budget=self.budget)
        return AdaptiveSession(self.rule_name, self.ids, max_n=self.max_n, threshold=self.threshold,
                               min_n=None if self.min_n is None else min(self.min_n, self.max_n),
                               caps=self.caps, budget=self.budget)

    def open_or_resume(self) -> AdaptiveSession:
        fresh = self.new_session()  # validates rule, threshold, min_n and budget before run.json is recorded
        check_run_params(self.out / RUN_FILE, self.params(), self.out)
        state = self.record.load()
        session = AdaptiveSession.from_dict(state) if state is not None else fresh
        late = self.record.unrecorded()
        for name in late:  # written after the last session checkpoint: replay their rows, in order
            rows = [{**r, "reward": self._reward_of(r["reward"])}
                    for r in self.record.read_part(name).iter_rows(named=True)]
            try:
                session.restore(rows)
            except TtsplanError as exc:
                raise TtsplanError(f"{self.out} must hold consistent checkpoints, got {name} that does not "
                                   f"continue the session: {exc} Use another --out directory.") from None
            self.record.adopt(name)
        session.cancel_pending()  # requests lost in a crash are asked again, with the same index and seed
        self.resumed = int(session.used)
        if late:
            self.save_session(session)
        return session

    def _reward_of(self, reward: float | None) -> float | None:
        return _unit_reward(reward, self.sampling.reward) if self._uses_weights else None

    @property
    def _uses_weights(self) -> bool:
        return self.rule_name in ("weighted",)

    def save_session(self, session: AdaptiveSession) -> None:
        self.record.save(session.to_dict())

    def checkpoint(self, session: AdaptiveSession) -> None:
        """Write told samples as a new part, then the session state that includes it."""
        if not self.rows:
            return
        self.record.write_part(self.rows, {**self.params(), "engine_provenance": self.engine.provenance()})
        self.rows = []
        self.save_session(session)

    # sampling -----------------------------------------------------------------------------------
    async def drive(self, session: AdaptiveSession) -> None:
        ex = executor_for(self.engine, self.sampling, self.batch)
        start = last_flush = time.perf_counter()
        tokens = int(session.tokens_used)
        inflight: dict[asyncio.Task, list[tuple[Prompt, int]]] = {}
        error: BaseException | None = None
        since_flush = 0
        async with ex:
            while True:
                if error is None:
                    idx = session.ask_idx()
                    requests = [(self.prompts[i], int(session.n[i])) for i in idx.tolist()]  # (prompt, sample_idx)
                    for chunk in ex.chunks(requests):
                        inflight[asyncio.ensure_future(ex.run(chunk))] = chunk
                if not inflight:
                    break
                done, _ = await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
                for t in done:
                    chunk = inflight.pop(t)
                    if t.cancelled() or t.exception() is not None:
                        error = error or (t.exception() if not t.cancelled() else asyncio.CancelledError())
                        continue
                    for (p, j), c in zip(chunk, t.result()):
                        row = sample_row(p, j, c, config=self.config, model=self.engine.model_name,
                                         keep_text=self.sampling.keep_text)
                        self.rows.append(row)
                        session.tell(p.id, row["answer"], reward=self._reward_of(c.reward), tokens=c.output_tokens)
                        tokens += c.output_tokens
                        since_flush += 1
                if error is not None and inflight:
                    for t in inflight:
                        t.cancel()
                    await asyncio.gather(*inflight, return_exceptions=True)
                    inflight.clear()
                now = time.perf_counter()
                if error is not None or self.checkpoint_policy.due(since_flush, now - last_flush):
                    self.checkpoint(session)
                    since_flush, last_flush = 0, now
                if self.progress:
                    self.progress(RunProgress(int(session.used), int(self.caps.sum()),
                                              int((~session.stopped_idx()).sum()), len(self.ids), tokens,
                                              now - start, self.resumed, self._engine_text()))
        self.checkpoint(session)
        if error is not None:
            raise error

    def _engine_text(self) -> str:
        stats = getattr(self.engine, "stats", None)
        return stats.text() if stats is not None and hasattr(stats, "text") else ""

    # outputs ------------------------------------------------------------------------------------
    def finish(self, session: AdaptiveSession, elapsed_s: float) -> RunResult:
        table = self.record.table()
        write_parquet_atomic(table, self.out / "samples.parquet",
                             metadata={**self.params(), "parts": self.record.parts})
        res = session.result()
        if self.rule_name is None:  # fixed N: every stop is the plan's cap
            res = res.with_columns(pl.when(pl.col("stopped") == "rule").then(pl.lit("cap"))
                                   .otherwise(pl.col("stopped")).alias("stopped"))
        # best-of-n style strategies pick the highest-reward sample's answer
        picks = {}
        if table.height and any(s in REWARD_PICK for s in self.strategies) and table["reward"].null_count() < table.height:
            best = (table.filter(pl.col("reward").is_not_null()).sort(["prompt_id", "reward", "sample_idx"],
                                                                      descending=[False, True, False])
                    .group_by("prompt_id", maintain_order=True).first())
            picks = dict(zip(best["prompt_id"].to_list(), best["answer"].to_list()))
        gold = {p.id: p.answer for p in self.prompts}
        answers = [picks.get(pid, a) if s in REWARD_PICK else a
                   for pid, a, s in zip(res["prompt_id"].to_list(), res["answer"].to_list(), self.strategies)]
        correct = [None if gold[pid] is None else (bool(grade(a, gold[pid])) if a is not None else False)
                   for pid, a in zip(res["prompt_id"].to_list(), answers)]
        ptok = (table.group_by("prompt_id").agg(pl.col("prompt_tokens").sum().alias("prompt_tokens"))
                if table.height else pl.DataFrame(schema={"prompt_id": pl.String, "prompt_tokens": pl.Int64}))
        result = (res.with_columns(pl.Series("strategy", self.strategies), pl.Series("cap", self.caps),
                                   pl.Series("answer", answers, dtype=pl.String),
                                   pl.Series("correct", correct, dtype=pl.Boolean))
                  .join(ptok, on="prompt_id", how="left")
                  .select("prompt_id", "strategy", "cap", "samples", "answer", "correct", "confidence", "stopped",
                          "output_tokens", "prompt_tokens"))
        write_parquet_atomic(result, self.out / "result.parquet")
        graded = [c for c in correct if c is not None]
        stops = dict(zip(*np.unique(result["stopped"].to_numpy(), return_counts=True)))
        planned = int(self.caps.sum())
        used = int(session.used)
        summary = {
            "config": self.config, "engine": self.engine.name, "model": self.engine.model_name,
            "rule": self.rule_name or "fixed", "threshold": float(session.rule.threshold) if self.rule_name else None,
            "prompts": len(self.ids), "graded_prompts": len(graded),
            "accuracy": (sum(graded) / len(graded)) if graded else None,
            "sample_accuracy": (float(table["correct"].mean()) if table.height and table["correct"].null_count() < table.height
                                else None),
            "samples": used, "planned_samples": planned, "samples_saved": 1 - used / planned if planned else 0.0,
            "mean_samples": used / len(self.ids),
            "stopped_rule": int(stops.get("rule", 0)), "stopped_cap": int(stops.get("cap", 0)),
            "stopped_budget": int(stops.get("budget", 0)), "open": int(stops.get("open", 0)),
            "output_tokens": int(table["output_tokens"].sum() or 0) if table.height else 0,
            "prompt_tokens": int(table["prompt_tokens"].sum() or 0) if table.height else 0,
            "resumed_samples": self.resumed, "elapsed_s": round(elapsed_s, 2),
            "samples_per_s": round((used - self.resumed) / elapsed_s, 3) if elapsed_s > 0 else None,
            "out": str(self.out),
        }
        write_atomic(self.out / "summary.json", json.dumps(summary, indent=2) + "\n")
        return RunResult(table, result, summary, self.out)


def run_plan(plan: Any, prompts: Sequence[Prompt], engine: Engine, out_dir: str | Path, *, config: str | None = None,
             rule: str | None = None, threshold: float | None = None, min_n: int | None = None,
             budget: int | None = None, sampling: SamplerConfig | None = None, batch: int = 8,
             checkpoint: CheckpointPolicy = CheckpointPolicy(),
             progress: Callable[[RunProgress], None] | None = None) -> RunResult:
    """Run ``plan`` (a :class:`~ttsplan.planner.plan.Plan` or ``{prompt_id: n}``) and write ``out_dir`` (see module doc).

    ``rule`` (``beta``, ``horizon``, ``esc``, ``weighted``, ``pilot``, ``budget``; ``None`` = the plan's
    fixed N) with ``threshold`` / ``min_n`` stops prompts early; ``budget`` caps total samples.
    ``checkpoint`` (:class:`~ttsplan.features.sampler.checkpoint.CheckpointPolicy`; default every 32
    samples or 10 seconds, whichever first) bounds what a crash can lose (it is re-sampled, identically,
    on the rerun). A failing engine stops the run with the engine's error after saving every finished
    sample; rerun the same call to resume.
    """
    sampling = sampling or SamplerConfig(k=1)
    plan_config, caps, strategies = plan_caps(plan, config)
    if not caps:
        raise TtsplanError("plan must allocate samples to at least one prompt, got none.")
    label = sampling.config or plan_config or f"{engine.model_name}/T{sampling.temperature:g}"
    out = Path(out_dir)
    r = _Run(caps, strategies, prompts, engine, out, label, rule, threshold, min_n, budget, sampling, batch,
             checkpoint, progress)
    created = not out.exists()
    try:
        with shard_lock(out, (0, 1), {"kind": "ttsplan run"}):  # one run per --out at a time
            session = r.open_or_resume()
            start = time.perf_counter()
            try:
                asyncio.run(r.drive(session))
            except TtsplanError as exc:
                if isinstance(exc, SchemaError):
                    raise
                saved = int(session.used)
                raise exc.__class__(f"run stopped: {exc} {saved} samples are saved in {out}; fix the cause (e.g. "
                                    "restart the server) and rerun the same command to resume.") from None
            return r.finish(session, time.perf_counter() - start)
    except BaseException:
        if created and out.is_dir() and not any(not p.name.startswith(LOCK_PREFIX) for p in out.iterdir()):
            for p in out.iterdir():  # a run that failed before writing anything leaves nothing behind
                p.unlink(missing_ok=True)
            out.rmdir()
        raise


def read_run(out_dir: str | Path) -> RunResult:
    """Read a finished run directory."""
    out = Path(out_dir)
    if not (out / "summary.json").exists():
        raise TtsplanError(f"{out} must hold a finished `ttsplan run` (summary.json), got none.")
    return RunResult(pl.read_parquet(out / "samples.parquet"), pl.read_parquet(out / "result.parquet"),
                     json.loads((out / "summary.json").read_text()), out)


__all__ = ["RunProgress", "RunResult", "plan_caps", "read_run", "run_plan"]
