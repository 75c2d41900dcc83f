"""Drive an engine's per-request calls from asyncio: one adapter per engine *kind*.

``ttsplan run`` keeps many ``(prompt, sample_idx)`` requests in flight and tells each result back as it
arrives. How that maps onto an engine depends only on the kind it declares (``Engine.kind``):

* ``batch`` (hf, vllm, replay): :class:`BatchExecutor` groups requests in batches of ``batch`` and runs
  ``engine.sample_many`` on one batch at a time in a worker thread;
* ``async`` (openai): :class:`AsyncExecutor` opens ``engine.session()`` once and awaits one
  ``request`` per item; the engine bounds its own concurrency.

Both give every request its own (prompt, sample_idx) seed, so results do not depend on batching or timing.

>>> import asyncio, polars as pl
>>> from ttsplan.features.sampler.replay import ReplayEngine
>>> from ttsplan.features.tasks import Prompt
>>> eng = ReplayEngine(pl.DataFrame({"config": ["c"] * 2, "prompt_id": ["p"] * 2, "sample_idx": [0, 1],
...                                  "text": ["4", "5"]}))
>>> async def go():
...     async with executor_for(eng, SamplerConfig(k=1), batch=8) as ex:
...         return [c.text for c in await ex.run([(Prompt("p", "?"), 1), (Prompt("p", "?"), 0)])]
>>> asyncio.run(go())
['5', '4']
"""
from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from ttsplan.features.errors import TtsplanError
from ttsplan.features.sampler.base import ENGINE_KINDS, Completion, Engine, SamplerConfig
from ttsplan.features.tasks import Prompt

Request = tuple[Prompt, int]


class BatchExecutor:
    """``batch`` engines: ``sample_many`` on batches of requests in a worker thread, one batch at a time."""

    def __init__(self, engine: Engine, cfg: SamplerConfig, batch: int):
        self.engine, self.cfg, self.batch = engine, dataclasses.replace(cfg, k=1), batch
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> BatchExecutor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def chunks(self, items: list) -> list[list]:
        """``items`` in the groups to submit together (batches of ``batch``)."""
        return [items[i:i + self.batch] for i in range(0, len(items), self.batch)]

    async def run(self, requests: list[Request]) -> list[Completion]:
        async with self._lock:
            return await asyncio.to_thread(self.engine.sample_many, requests, self.cfg)


class AsyncExecutor:
    """``async`` engines: one request per item on the engine's session, all in flight at once."""

    def __init__(self, engine: Engine, cfg: SamplerConfig, batch: int = 1):
        self.engine, self.cfg = engine, dataclasses.replace(cfg, k=1)
        self._session: Any = None
        self._context: Any = None

    async def __aenter__(self) -> AsyncExecutor:
        self._context = self.engine.session()  # type: ignore[attr-defined]
        self._session = await self._context.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._context.__aexit__(*exc)

    def chunks(self, items: list) -> list[list]:
        """One group per item: each request is told back as soon as it arrives."""
        return [[x] for x in items]

    async def run(self, requests: list[Request]) -> list[Completion]:
        return [await self._session.request(p, j, self.cfg) for p, j in requests]


#: the adapter of each engine kind
EXECUTORS: dict[str, type[BatchExecutor] | type[AsyncExecutor]] = {"batch": BatchExecutor, "async": AsyncExecutor}


def executor_for(engine: Engine, cfg: SamplerConfig, batch: int) -> BatchExecutor | AsyncExecutor:
    """The adapter for ``engine``'s declared ``kind`` (``batch`` requests per batch for batch engines)."""
    kind = getattr(engine, "kind", None)
    if kind not in EXECUTORS:
        raise TtsplanError(f"engine {getattr(engine, 'name', type(engine).__name__)!r} must declare kind as one of "
                           f"{', '.join(ENGINE_KINDS)}, got {kind!r}. Subclass "
                           "ttsplan.features.sampler.base.BatchEngine, or set kind = 'async' and give it session().")
    return EXECUTORS[kind](engine, cfg, batch)


__all__ = ["AsyncExecutor", "BatchExecutor", "EXECUTORS", "executor_for"]
