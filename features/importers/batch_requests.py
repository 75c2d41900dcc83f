"""Plan allocations → OpenAI-compatible batch request files, and a replay that answers them.

:func:`build_batch_requests` writes one request per prompt with the allocation's ``n`` and the
sampling parameters; ``custom_id = "<config>::<prompt_id>"`` maps every response back (the
``openai-batch`` importer splits it). Request layout: ``{"custom_id", "method": "POST", "url",
"body"}`` (https://platform.openai.com/docs/api-reference/batch/request-input; vllm-project/vllm
``examples/offline_inference/openai/openai_batch.md``).

Targets differ only where the servers do: ``openai-batch`` requires ``model`` and sends
``max_completion_tokens``; ``vllm-batch`` sends ``max_tokens`` and may leave ``model`` to
``vllm run-batch --model``. ``endpoint="completions"`` writes ``/v1/completions`` requests with the raw
prompt text (base models with few-shot prompts). A ``greedy`` allocation is sent as ``n=1`` at the
configuration's ``temperature`` — that is what the planner modelled (one sample of the recorded
configuration); ``greedy_temperature=0.0`` sends true greedy decoding instead, which the plan's
figures do not describe.

:func:`replay_responses` answers a request file from a recorded SampleTable with the replay engine
(:class:`ttsplan.features.sampler.replay.ReplayEngine`): request ``n`` → the prompt's first ``n`` recorded
samples, written in the batch *output* layout. That is the round trip's stand-in for a server.

>>> import polars as pl
>>> from ttsplan.features.tasks import Prompt
>>> alloc = pl.DataFrame({"config": ["c"], "prompt_id": ["p1"], "strategy": ["majority"], "n": [8]})
>>> req = build_batch_requests(alloc, [Prompt("p1", "2+2=", "4")], target="vllm-batch")[0]
>>> req["custom_id"], req["body"]["n"], req["url"]
('c::p1', 8, '/v1/chat/completions')
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import polars as pl

from ttsplan.features.atomic import write_atomic
from ttsplan.features.errors import TtsplanError, did_you_mean
from ttsplan.features.importers.openai_batch import SEP
from ttsplan.features.sampler.base import SamplerConfig
from ttsplan.features.sampler.replay import ReplayEngine
from ttsplan.features.schema import has_values
from ttsplan.features.tasks import Prompt

TARGETS = ("openai-batch", "vllm-batch")
ENDPOINTS = {"chat": "/v1/chat/completions", "completions": "/v1/completions"}


def _frame(allocations: pl.DataFrame | Sequence[Mapping]) -> pl.DataFrame:
    df = allocations if isinstance(allocations, pl.DataFrame) else pl.DataFrame(list(allocations))
    missing = [c for c in ("config", "prompt_id", "n") if c not in df.columns]
    if missing:
        raise TtsplanError(f"plan allocations must have columns config, prompt_id, n (strategy optional), got "
                           f"{', '.join(df.columns) or 'none'}. Pass a plan written by `ttsplan plan`.")
    if "strategy" not in df.columns:
        df = df.with_columns(pl.lit(None, pl.String).alias("strategy"))
    return df


def build_batch_requests(allocations: pl.DataFrame | Sequence[Mapping], prompts: Sequence[Prompt], *,
                         target: str = "openai-batch", config: str | None = None, model: str | None = None,
                         temperature: float = 0.7, top_p: float = 1.0, max_tokens: int = 512,
                         seed: int | None = None, logprobs: bool = True, endpoint: str = "chat",
                         stop: Sequence[str] | None = None, greedy_temperature: float | None = None) -> list[dict]:
    """One request per allocated prompt of one configuration (``config``; needed when there are several)."""
    problems = []
    if target not in TARGETS:
        problems.append(f"--to must be one of {', '.join(TARGETS)}, got {target!r}.{did_you_mean(target, TARGETS)}")
    if endpoint not in ENDPOINTS:
        problems.append(f"--endpoint must be chat or completions, got {endpoint!r}.{did_you_mean(endpoint, ENDPOINTS)}")
    if target == "openai-batch" and not model:
        problems.append("--model must be given for openai-batch (the Batch API requires body.model), got none. "
                        "Pass e.g. --model gpt-4o-mini.")
    if not (temperature >= 0):
        problems.append(f"--temperature must be >= 0, got {temperature}.")
    if not (0 < top_p <= 1):
        problems.append(f"--top-p must be in (0, 1], got {top_p}.")
    if int(max_tokens) < 1:
        problems.append(f"--max-tokens must be >= 1, got {max_tokens}.")
    df = _frame(allocations)
    configs = sorted(df.get_column("config").unique().to_list())
    if config is None and len(configs) > 1:
        problems.append(f"--config must pick one of the plan's {len(configs)} configurations, got none "
                        f"({', '.join(configs[:5])}{', …' if len(configs) > 5 else ''}).")
    elif config is not None and config not in configs:
        problems.append(f"--config must be one of the plan's configurations, got {config!r}.{did_you_mean(config, configs)}")
    if problems:
        raise TtsplanError("cannot export the plan:\n" + "\n".join(f"  - {p}" for p in problems))
    cfg = config or configs[0]
    if SEP in cfg:
        raise TtsplanError(f"config must not contain {SEP!r} (it separates custom_id parts), got {cfg!r}.")
    rows = df.filter(pl.col("config") == cfg).sort("prompt_id")
    by_id = {p.id: p for p in prompts}
    absent = [pid for pid in rows.get_column("prompt_id").to_list() if pid not in by_id]
    if absent:
        raise TtsplanError(f"every planned prompt must be in --prompts, got {len(absent)} missing "
                           f"({', '.join(map(repr, absent[:3]))}{', …' if len(absent) > 3 else ''}). "
                           "Pass the prompts file the plan was made for.")
    bad_ids = [pid for pid in rows.get_column("prompt_id").to_list() if SEP in pid]
    if bad_ids:
        raise TtsplanError(f"prompt ids must not contain {SEP!r}, got {bad_ids[:3]}. Rename those prompts.")
    out = []
    for r in rows.iter_rows(named=True):
        p = by_id[r["prompt_id"]]
        greedy = r["strategy"] == "greedy"
        n = 1 if greedy else int(r["n"])
        body: dict = {}
        if model:
            body["model"] = model
        if endpoint == "chat":
            body["messages"] = [{"role": "user", "content": p.prompt}]
        else:
            body["prompt"] = p.prompt
        body["n"] = n
        body["temperature"] = float(greedy_temperature) if greedy and greedy_temperature is not None \
            else float(temperature)
        body["top_p"] = float(top_p)
        body["max_completion_tokens" if (target == "openai-batch" and endpoint == "chat") else "max_tokens"] = int(max_tokens)
        if logprobs:
            body["logprobs"] = True if endpoint == "chat" else 1
        if seed is not None:
            body["seed"] = int(seed)
        if stop:
            body["stop"] = list(stop)
        out.append({"custom_id": f"{cfg}{SEP}{p.id}", "method": "POST", "url": ENDPOINTS[endpoint], "body": body})
    return out


def write_jsonl(rows: Sequence[dict], path: str | Path) -> Path:
    """Write JSON lines atomically."""
    return write_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def read_requests(path: str | Path) -> list[dict]:
    """Read a batch request file, one problem message for bad lines."""
    p = Path(path)
    if not p.is_file():
        raise TtsplanError(f"request file {p} must exist, got no such file.")
    rows, bad = [], []
    for no, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            bad.append(no)
            continue
        if not isinstance(obj, dict) or "custom_id" not in obj or not isinstance(obj.get("body"), dict):
            bad.append(no)
            continue
        rows.append(obj)
    if bad:
        raise TtsplanError(f"request file {p}: every line must be {{custom_id, method, url, body}}, got "
                           f"{len(bad)} bad line(s) (line {', '.join(map(str, bad[:3]))}).")
    return rows


def _replay_logprobs(c, chat: bool) -> dict | None:
    """Token-level logprobs in the server's layout, rebuilt from a recorded sample's count and sum.

    The recorded table keeps the number of generated tokens and the sum of their log-probabilities,
    not the tokens: the replay writes ``output_tokens`` entries with blank token strings and the sum
    spread evenly over them (null when no logprob was recorded), so the importer recovers the
    count exactly and the sum up to float rounding.
    """
    n = int(c.output_tokens)
    each = None if c.logprob is None or n == 0 else float(c.logprob) / n
    if chat:
        return {"content": [{"token": "", "logprob": each, "bytes": [], "top_logprobs": []} for _ in range(n)]}
    return {"tokens": [""] * n, "token_logprobs": [each] * n, "top_logprobs": None, "text_offset": [0] * n}


def replay_responses(requests: Sequence[dict], samples: pl.DataFrame) -> list[dict]:
    """Answer each request with its prompt's first ``n`` recorded samples (batch output layout).

    Requests that ask for logprobs get them rebuilt from the recorded token count and logprob sum
    (:func:`_replay_logprobs`); ``usage`` is per request, as a server reports it.
    """
    engines: dict[str, ReplayEngine] = {}
    out = []
    for i, req in enumerate(requests):
        cfg, _, pid = str(req["custom_id"]).partition(SEP)
        if cfg not in engines:
            engines[cfg] = ReplayEngine(samples, config=cfg)
        eng = engines[cfg]
        body = req["body"]
        n = int(body.get("n", 1))
        comps = eng.generate([Prompt(pid.split(SEP)[0], "…")], SamplerConfig(k=n))[0]
        chat = str(req.get("url", "")).endswith("chat/completions")
        with_lp = bool(body.get("logprobs")) and has_values(eng.table, "output_tokens")
        choices = []
        for j, c in enumerate(comps):
            choice = {"index": j, "logprobs": _replay_logprobs(c, chat) if with_lp else None,
                      "finish_reason": c.finish_reason or "stop"}
            if chat:
                choice["message"] = {"role": "assistant", "content": c.text}
            else:
                choice["text"] = c.text
            choices.append(choice)
        ptok = comps[0].prompt_tokens if comps else None
        ctok = sum(int(c.output_tokens or 0) for c in comps)
        out.append({"id": f"batch_req_{i}", "custom_id": req["custom_id"],
                    "response": {"status_code": 200, "request_id": f"replay-{i}",
                                 "body": {"id": f"replay-{i}", "object": "chat.completion" if chat else "text_completion",
                                          "created": 0, "model": body.get("model") or eng.model_name,
                                          "choices": choices,
                                          "usage": {"prompt_tokens": ptok, "completion_tokens": ctok,
                                                    "total_tokens": (ptok or 0) + ctok}}},
                    "error": None})
    return out


__all__ = ["ENDPOINTS", "TARGETS", "build_batch_requests", "read_requests", "replay_responses", "write_jsonl"]
