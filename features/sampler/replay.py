"""The ``replay`` engine: serve completions from a recorded SampleTable.

Used by tests and by runtime replays: a prompt's samples come back in recorded ``sample_idx``
order, so the sampler re-grades and re-writes a recorded run without a model.

>>> import polars as pl
>>> t = pl.DataFrame({"config": ["c"] * 2, "prompt_id": ["p"] * 2, "sample_idx": [0, 1], "text": ["4", "5"]})
>>> eng = ReplayEngine(t)
>>> [c.text for c in eng.generate([Prompt("p", "…")], SamplerConfig(k=2))[0]]
['4', '5']
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl

from ttsplan.features.errors import TtsplanError, did_you_mean
from ttsplan.features.io import read_samples
from ttsplan.features.sampler.base import BatchEngine, Completion, SamplerConfig
from ttsplan.features.schema import validate_sample_table
from ttsplan.features.tasks import Prompt


class ReplayEngine(BatchEngine):
    """Serve recorded samples. ``config`` picks one configuration when the table holds several.

    Completions carry the recorded ``text`` (or, when text was not kept, the recorded ``answer``).
    Per-request calls serve recorded sample ``j`` (the ``j``-th in ``sample_idx`` order) for request
    ``(prompt, j)``.
    """

    name = "replay"

    def __init__(self, table: pl.DataFrame | str | Path | None = None, config: str | None = None):
        if table is None:
            raise TtsplanError("the replay engine must be given a recorded sample table (--model PATH), got none.")
        if not isinstance(table, pl.DataFrame):
            table = read_samples(table)
        else:
            table = validate_sample_table(table)
        configs = table["config"].unique().sort().to_list()
        if config is None and len(configs) > 1:
            raise TtsplanError(f"the replay table must hold one configuration or --config must pick one, got "
                               f"{len(configs)} ({', '.join(configs[:4])}{', …' if len(configs) > 4 else ''}).")
        if config is not None:
            if config not in configs:
                shown = ", ".join(c if len(c) <= 60 else c[:57] + "…" for c in configs[:4])
                raise TtsplanError(f"--config must be one of the recorded configurations ({shown}"
                                   f"{', …' if len(configs) > 4 else ''}), got {config!r}."
                                   f"{did_you_mean(config, configs)}")
            table = table.filter(pl.col("config") == config)
        self.table = table
        models = table["model"].drop_nulls().unique().to_list()
        self.model_name = models[0] if len(models) == 1 else "replay"
        self._by_prompt = {pid: df.sort("sample_idx") for (pid,), df in table.group_by(["prompt_id"])}

    def provenance(self) -> dict:
        return {"engine": self.name, "model": self.model_name, "rows": self.table.height}

    def preflight(self, prompts: Sequence[Prompt], cfg: SamplerConfig) -> None:
        """Check before any file is written that every prompt was recorded with at least ``cfg.k`` samples."""
        missing = [p.id for p in prompts if p.id not in self._by_prompt]
        short = {p.id: self._by_prompt[p.id].height for p in prompts
                 if p.id in self._by_prompt and self._by_prompt[p.id].height < cfg.k}
        problems = []
        if missing:
            problems.append(f"every prompt must be in the recorded table to replay it, got {len(missing)} missing "
                            f"({', '.join(map(repr, missing[:3]))}{', …' if len(missing) > 3 else ''}). Use the "
                            "prompts the table was recorded with.")
        if short:
            most = max(df.height for df in self._by_prompt.values()) if self._by_prompt else 0
            least = min(short.values())
            problems.append(f"k must be at most the recorded samples per prompt, got k={cfg.k} with {len(short)} "
                            f"prompt(s) recorded with fewer (as few as {least}; the table holds at most {most}). "
                            f"Pass --k {least} or less.")
        if problems:
            raise TtsplanError(" ".join(problems))

    def _recorded(self, prompt: Prompt, k: int) -> pl.DataFrame:
        """The prompt's recorded rows in ``sample_idx`` order; at least ``k`` of them."""
        df = self._by_prompt.get(prompt.id)
        if df is None:
            raise TtsplanError(f"prompt {prompt.id!r} must be in the recorded table to replay it, got no rows.")
        if df.height < k:
            raise TtsplanError(f"prompt {prompt.id!r} must have at least k={k} recorded samples, got {df.height}.")
        return df

    @staticmethod
    def _completion(r: dict) -> Completion:
        text = r["text"] if r["text"] is not None else r["answer"]
        return Completion(text=text or "", output_tokens=r["output_tokens"] or 0, prompt_tokens=r["prompt_tokens"],
                          logprob=r["logprob"], entropy=r["entropy"], reward=r["reward"],
                          finish_reason=r["finish_reason"])

    def generate(self, prompts: Sequence[Prompt], cfg: SamplerConfig) -> list[list[Completion]]:
        return [[self._completion(r) for r in self._recorded(p, cfg.k).head(cfg.k).iter_rows(named=True)]
                for p in prompts]

    def sample_many(self, requests: Sequence[tuple[Prompt, int]], cfg: SamplerConfig) -> list[Completion]:
        """Recorded sample ``j`` of each ``(prompt, j)``."""
        return [self._completion(self._recorded(p, j + 1).row(j, named=True)) for p, j in requests]


__all__ = ["ReplayEngine"]
