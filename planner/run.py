"""Execute a :class:`~ttsplan.planner.plan.Plan` with a sampler engine, stopping prompts adaptively (``ttsplan run``).

:func:`run_plan` takes a plan, the prompts it was made for and an engine (``hf``, ``vllm``, ``openai``,
``replay``). Every planned prompt gets at most its allocated N samples (the session's ``caps``); an
:class:`~ttsplan.planner.adaptive.AdaptiveSession` with the chosen stopping rule decides, sample by sample,
when a prompt has had enough (without a rule each prompt gets exactly its N). Many prompts are in
flight at once: the ``openai`` engine streams one request per asked prompt (bounded by its
``concurrency``) and feeds each answer back as it arrives; the in-process engines sample the asked
prompts in batches of ``batch`` in a worker thread.

Sample ``j`` of prompt ``p`` is always drawn with the seed of ``(seed, p, j)`` (``openai``: the per-sample
seed :func:`~ttsplan.features.sampler.base.sample_seed`; ``hf`` / ``vllm``: the engine's own seed for the id
``"p#j"``; ``replay``: recorded sample ``j``), so the table does not depend on timing or batching.

Output directory::

    OUT/run.json              parameters (checked on resume)
    OUT/parts/part-NNNNNN.parquet   samples, appended atomically in checkpoints
    OUT/session.json          AdaptiveSession.to_dict() + the part files it includes (atomic)
    OUT/samples.parquet       the validated SampleTable (written at the end)
    OUT/result.parquet        one row per prompt: final answer, correct, samples, tokens, stop reason
    OUT/summary.json          accuracy (when gold answers are known) and cost

Crash safety: a checkpoint first writes a new part file, then the session state naming it. On a
rerun the session is restored from ``session.json``, samples of any part written after it are told
again (their ``sample_idx`` must be the next index of their prompt), and samples that were in flight
are re-asked with the same index and seed. Nothing is sampled twice and nothing is lost.

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
import dataclasses
import datetime as _dt
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

from ttsplan.features.errors import SchemaError, TtsplanError
from ttsplan.features.grading import extract_answer, grade
from ttsplan.features.io import write_atomic, write_parquet_atomic
from ttsplan.features.sampler.base import Completion, SamplerConfig
from ttsplan.features.sampler.runner import check_run_params
from ttsplan.features.schema import SAMPLE_SCHEMA, validate_sample_table
from ttsplan.features.tasks import Prompt
from ttsplan.planner.adaptive import AdaptiveSession
from ttsplan.planner.stopping import make_rule

RUN_FILE = "run.json"
SESSION_FILE = "session.json"
PARTS = "parts"
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
        from ttsplan.features.errors import did_you_mean

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


# -- executors: how one engine samples (prompt, sample_idx) items ---------------------------------
class _SyncExecutor:
    """In-process engines (hf, vllm, replay): batches of items in a worker thread, one batch at a time."""

    def __init__(self, engine: Any, cfg: SamplerConfig, batch: int):
        self.engine, self.cfg, self.batch = engine, dataclasses.replace(cfg, k=1), batch
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> _SyncExecutor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def chunks(self, items: list) -> list[list]:
        return [items[i:i + self.batch] for i in range(0, len(items), self.batch)]

    def _sample(self, items: list[tuple[Prompt, int]]) -> list[Completion]:
        eng = self.engine
        if eng.name == "replay":
            return [eng.generate([p], dataclasses.replace(self.cfg, k=j + 1))[0][j] for p, j in items]
        aliased = [dataclasses.replace(p, id=f"{p.id}#{j}") for p, j in items]
        return [g[0] for g in eng.generate(aliased, self.cfg)]

    async def run(self, items: list[tuple[Prompt, int]]) -> list[Completion]:
        async with self._lock:
            return await asyncio.to_thread(self._sample, items)


class _OpenAIExecutor:
    """The openai engine: one request per item on a shared client; the engine bounds concurrency."""

    def __init__(self, engine: Any, cfg: SamplerConfig):
        self.engine, self.cfg = engine, dataclasses.replace(cfg, k=1)
        self._session: Any = None

    async def __aenter__(self) -> _OpenAIExecutor:
        self._session = await self.engine.session().__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._session.__aexit__(*exc)

    def chunks(self, items: list) -> list[list]:
        return [[x] for x in items]

    async def run(self, items: list[tuple[Prompt, int]]) -> list[Completion]:
        return [await self._session.sample(p, j, self.cfg) for p, j in items]


# -- the run ---------------------------------------------------------------------------------------
class _Run:
    def __init__(self, caps: dict[str, int], strategies: dict[str, str], prompts: Sequence[Prompt], engine: Any,
                 out_dir: Path, config: str, rule: str | None, threshold: float | None, min_n: int | None,
                 budget: int | None, sampling: SamplerConfig, batch: int, checkpoint_every: int,
                 checkpoint_s: float, progress: Callable[[RunProgress], None] | None):
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
        self.batch, self.checkpoint_every, self.checkpoint_s = batch, checkpoint_every, checkpoint_s
        self.progress = progress
        self.rows: list[dict] = []      # told, not yet written
        self.parts: list[str] = []
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
        params = self.params()
        check_run_params(self.out / RUN_FILE, params, self.out)
        sess_file = self.out / SESSION_FILE
        if sess_file.exists():
            state = json.loads(sess_file.read_text())
            session = AdaptiveSession.from_dict(state["session"])
            self.parts = list(state["parts"])
        else:
            session = self.new_session()
        on_disk = sorted(p.name for p in (self.out / PARTS).glob("part-*.parquet")) if (self.out / PARTS).exists() else []
        known = set(self.parts)
        late = [name for name in on_disk if name not in known]
        for name in late:  # written after the last session checkpoint: tell them again, in order
            df = pl.read_parquet(self.out / PARTS / name)
            for r in df.iter_rows(named=True):
                i = session._idx(r["prompt_id"])
                if int(session.n[i]) != r["sample_idx"]:
                    raise TtsplanError(f"{self.out} must hold consistent checkpoints, got sample "
                                       f"{r['sample_idx']} of {r['prompt_id']!r} in {name} where sample "
                                       f"{int(session.n[i])} was expected. Use another --out directory.")
                session.pending[i] = 0
                session.tell(r["prompt_id"], r["answer"], reward=self._reward_of(r["reward"]),
                             tokens=r["output_tokens"])
            self.parts.append(name)
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
        write_atomic(self.out / SESSION_FILE, json.dumps({"session": session.to_dict(), "parts": self.parts},
                                                         separators=(",", ":")))

    def checkpoint(self, session: AdaptiveSession) -> None:
        """Write told samples as a new part, then the session state that includes it."""
        if not self.rows:
            return
        name = f"part-{len(self.parts):06d}.parquet"
        df = pl.DataFrame(self.rows, schema=SAMPLE_SCHEMA)
        write_parquet_atomic(df, self.out / PARTS / name, metadata={
            **self.params(), "engine_provenance": self.engine.provenance(),
            "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")})
        self.parts.append(name)
        self.rows = []
        self.save_session(session)

    # sampling -----------------------------------------------------------------------------------
    def row(self, i: int, j: int, c: Completion) -> dict:
        p = self.prompts[i]
        answer = extract_answer(c.text, p.kind)
        return {"config": self.config, "model": self.engine.model_name, "dataset": p.dataset, "prompt_id": p.id,
                "sample_idx": j, "answer": answer,
                "correct": grade(answer, p.answer) if p.answer is not None else None,
                "output_tokens": c.output_tokens, "prompt_tokens": c.prompt_tokens, "logprob": c.logprob,
                "entropy": c.entropy, "reward": c.reward, "finish_reason": c.finish_reason,
                "text": c.text if self.sampling.keep_text else None}

    async def drive(self, session: AdaptiveSession) -> None:
        ex = (_OpenAIExecutor(self.engine, self.sampling) if self.engine.name == "openai"
              else _SyncExecutor(self.engine, self.sampling, self.batch))
        start = last_flush = time.perf_counter()
        tokens = int(session.tokens_used)
        inflight: dict[asyncio.Task, list[tuple[Prompt, int, int]]] = {}
        error: BaseException | None = None
        since_flush = 0
        async with ex:
            while True:
                if error is None:
                    idx = session.ask_idx()
                    items = [(self.prompts[i], int(session.n[i]), int(i)) for i in idx.tolist()]
                    for chunk in ex.chunks(items):
                        task = asyncio.ensure_future(ex.run([(p, j) for p, j, _ in chunk]))
                        inflight[task] = chunk
                if not inflight:
                    break
                done, _ = await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
                for t in done:
                    chunk = inflight.pop(t)
                    if t.cancelled() or t.exception() is not None:
                        error = error or (t.exception() if not t.cancelled() else asyncio.CancelledError())
                        continue
                    for (p, j, i), c in zip(chunk, t.result()):
                        self.rows.append(self.row(i, j, c))
                        r = self.rows[-1]
                        session.tell(p.id, r["answer"], reward=self._reward_of(c.reward), tokens=c.output_tokens)
                        tokens += c.output_tokens
                        since_flush += 1
                if error is not None and inflight:
                    for t in inflight:
                        t.cancel()
                    await asyncio.gather(*inflight, return_exceptions=True)
                    inflight.clear()
                now = time.perf_counter()
                if error is not None or since_flush >= self.checkpoint_every or now - last_flush >= self.checkpoint_s:
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
        files = [self.out / PARTS / n for n in self.parts]
        if files:
            table = validate_sample_table(pl.concat([pl.read_parquet(f) for f in files], how="vertical_relaxed"))
        else:
            table = validate_sample_table(pl.DataFrame(schema=SAMPLE_SCHEMA))
        write_parquet_atomic(table, self.out / "samples.parquet", metadata={**self.params(), "parts": self.parts})
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


def run_plan(plan: Any, prompts: Sequence[Prompt], engine: Any, out_dir: str | Path, *, config: str | None = None,
             rule: str | None = None, threshold: float | None = None, min_n: int | None = None,
             budget: int | None = None, sampling: SamplerConfig | None = None, batch: int = 8,
             checkpoint_every: int = 32, checkpoint_s: float = 10.0,
             progress: Callable[[RunProgress], None] | None = None) -> RunResult:
    """Run ``plan`` (a :class:`~ttsplan.planner.plan.Plan` or ``{prompt_id: n}``) and write ``out_dir`` (see module doc).

    ``rule`` (``beta``, ``horizon``, ``esc``, ``weighted``, ``pilot``, ``budget``; ``None`` = the plan's
    fixed N) with ``threshold`` / ``min_n`` stops prompts early; ``budget`` caps total samples.
    ``checkpoint_every`` samples or ``checkpoint_s`` seconds, whichever first, bound what a crash can
    lose (it is re-sampled, identically, on the rerun). A failing engine stops the run with the
    engine's error after saving every finished sample; rerun the same call to resume.
    """
    sampling = sampling or SamplerConfig(k=1)
    plan_config, caps, strategies = plan_caps(plan, config)
    if not caps:
        raise TtsplanError("plan must allocate samples to at least one prompt, got none.")
    label = sampling.config or plan_config or f"{engine.model_name}/T{sampling.temperature:g}"
    out = Path(out_dir)
    r = _Run(caps, strategies, prompts, engine, out, label, rule, threshold, min_n, budget, sampling, batch,
             checkpoint_every, checkpoint_s, progress)
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


def read_run(out_dir: str | Path) -> RunResult:
    """Read a finished run directory."""
    out = Path(out_dir)
    if not (out / "summary.json").exists():
        raise TtsplanError(f"{out} must hold a finished `ttsplan run` (summary.json), got none.")
    return RunResult(pl.read_parquet(out / "samples.parquet"), pl.read_parquet(out / "result.parquet"),
                     json.loads((out / "summary.json").read_text()), out)


__all__ = ["RunProgress", "RunResult", "plan_caps", "read_run", "run_plan"]
