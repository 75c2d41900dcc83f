"""``ttsplan export``: a plan → a batch-inference request file (OpenAI Batch API / vllm run-batch)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ttsplan.cli.common import TableOrJson, emit, err_console, user_errors
from ttsplan.cli.options import SummaryFormatOpt
from ttsplan.features.errors import TtsplanError
from ttsplan.features.importers.batch_requests import build_batch_requests, replay_responses, write_jsonl
from ttsplan.features.io import read_samples
from ttsplan.features.tasks import read_prompts
from ttsplan.planner.plan import Plan, check_prompts_match
from ttsplan.planner.policy_plan import PolicyPlan

HELP = """Turn a plan (JSON from `ttsplan plan --out`) into a batch request file: one request per planned
prompt of one configuration, with the plan's n, the sampling parameters and
custom_id = "<config>::<prompt_id>", so the responses can be imported again with
`ttsplan import openai-batch RESPONSES --prompts PROMPTS` and evaluated.

--to openai-batch writes /v1/chat/completions requests for the OpenAI Batch API (needs --model);
--to vllm-batch writes the same layout for `vllm run-batch -i requests.jsonl -o responses.jsonl
--model M` (max_tokens instead of max_completion_tokens). --endpoint completions sends the raw
prompt text to /v1/completions (base models). A greedy allocation is sent as n=1 at --temperature
(what the planner modelled; --greedy-temperature 0 for true greedy decoding). A policy plan (the
default `ttsplan plan`) exports its fixed policy for every prompt of --prompts; an adaptive policy is
executed with `ttsplan run` instead.
--replay SAMPLES answers the requests from a recorded SampleTable (first n samples per prompt) and
writes the responses to --replay-out: a dry run of the whole round trip without a server.

Example:

    ttsplan plan samples.parquet --per-prompt --budget 8/prompt --out plan.json
    ttsplan export plan.json --to vllm-batch --prompts prompts.jsonl --out requests.jsonl
    vllm run-batch -i requests.jsonl -o responses.jsonl --model Qwen/Qwen2.5-1.5B-Instruct
    ttsplan import openai-batch responses.jsonl --prompts prompts.jsonl --out new_samples.parquet
"""


def load_plan_file(path: Path):
    """The plan in a file: a :class:`PolicyPlan` (schema 2), a :class:`Plan` (schema 1), or the allocations
    frame of a hand-written ``{"allocations": [{"config", "prompt_id", "n"[, "strategy"]}, ...]}``
    with its ``recommended_config``."""
    import json

    import polars as pl

    if not path.is_file():
        raise TtsplanError(f"plan {path} must be an existing JSON file, got no such file. Write one with "
                           "`ttsplan plan --out plan.json`.")
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TtsplanError(f"plan {path} must be JSON, got a parse error ({exc}).") from None
    if isinstance(data, dict) and data.get("schema_version") == 2:
        return PolicyPlan.from_dict(data)
    if isinstance(data, dict) and "schema_version" in data:
        return Plan.from_dict(data)
    allocs = data.get("allocations") if isinstance(data, dict) else None
    if not (isinstance(allocs, list) and allocs and all(isinstance(a, dict) for a in allocs)):
        raise TtsplanError(f"plan {path} must be written by `ttsplan plan` or hold \"allocations\": "
                           "[{config, prompt_id, n}, ...], got neither. Re-create the plan.")
    return pl.DataFrame(allocs), data.get("recommended_config")


def plan_allocations(loaded, config: str | None, prompts: list):
    """``(allocations frame, configuration)`` to export: a policy plan's fixed policy for every prompt of the
    file (an adaptive policy cannot be one batch); a per-prompt plan's allocations, for the prompts it was
    made for when it recorded their text hashes."""
    import polars as pl

    if isinstance(loaded, PolicyPlan):
        chosen = loaded.config(config)
        policy = chosen.policy
        if policy.kind != "fixed":
            raise TtsplanError(f"export must send the policy the plan chose, got {policy.describe()!r} for "
                               f"{chosen.config!r}, which samples each prompt one at a time and stops it adaptively; "
                               "a batch file fixes n per request. Execute it with `ttsplan run PLAN --prompts ...`, "
                               "or plan a fixed policy (e.g. --target majority@8 on a table of 8 samples per "
                               "prompt).")
        ids = [p.id for p in prompts]
        n = len(ids)
        return pl.DataFrame({"config": [chosen.config] * n, "prompt_id": ids, "strategy": [policy.strategy] * n,
                             "n": [policy.n] * n}), chosen.config
    if isinstance(loaded, Plan):
        cfg = config or loaded.recommended_config
        if loaded.prompt_hashes:
            check_prompts_match(loaded, prompts, cfg)
        frame = loaded.allocations_frame()
        if loaded.mode == "pilot" and loaded.pilot_k0:  # N counts the K0 pilot samples already drawn
            frame = (frame.with_columns(pl.col("n") - loaded.pilot_k0)
                     .filter(pl.col("n") > 0))
        return frame, cfg
    allocations, recommended = loaded
    return allocations, config or recommended


@user_errors
def export_command(
    plan: Annotated[Path, typer.Argument(help="Plan JSON written by `ttsplan plan --out`.")],
    to: Annotated[str, typer.Option("--to", help="openai-batch or vllm-batch.")],
    prompts: Annotated[Path, typer.Option(help="Prompts JSONL (id, prompt, answer) the plan was made for.")],
    out: Annotated[Path, typer.Option(help="Request file (.jsonl), written atomically.")],
    config: Annotated[str | None, typer.Option(help="Which configuration of the plan (default: its "
                                                    "recommended one).")] = None,
    model: Annotated[str | None, typer.Option(help="body.model (required for openai-batch).")] = None,
    temperature: Annotated[float, typer.Option(help="Sampling temperature of the configuration the plan modelled "
                                                   "(greedy allocations too: one sample at it).")] = 0.7,
    greedy_temperature: Annotated[float | None, typer.Option(help="Send greedy allocations at this temperature "
                                                                  "instead (0 = true greedy decoding, which the "
                                                                  "plan did not model).")] = None,
    top_p: Annotated[float, typer.Option(help="Nucleus sampling top_p.")] = 1.0,
    max_tokens: Annotated[int, typer.Option(help="Maximum generated tokens per sample.")] = 512,
    seed: Annotated[int | None, typer.Option(help="Sampling seed sent with every request.")] = None,
    endpoint: Annotated[str, typer.Option(help="chat (/v1/chat/completions) or completions (/v1/completions).")] = "chat",
    logprobs: Annotated[bool, typer.Option("--logprobs/--no-logprobs", help="Ask for token log-probabilities "
                                                                          "(gives logprob and output_tokens "
                                                                          "per sample on import).")] = True,
    stop: Annotated[list[str] | None, typer.Option(help="Stop sequence (repeatable).")] = None,
    replay: Annotated[Path | None, typer.Option(help="Recorded SampleTable to answer the requests from "
                                                     "(dry run).")] = None,
    replay_out: Annotated[Path | None, typer.Option(help="Where --replay writes the responses (.jsonl).")] = None,
    format: SummaryFormatOpt = TableOrJson.table,
) -> None:
    from collections import Counter

    if (replay is None) != (replay_out is None):
        raise TtsplanError("--replay and --replay-out must be given together, got only one. Pass both or neither.")
    loaded = load_plan_file(plan)
    prompt_list = read_prompts(prompts)
    allocations, cfg = plan_allocations(loaded, config, prompt_list)
    if isinstance(loaded, Plan) and loaded.mode == "pilot" and loaded.pilot_k0:
        err_console.print(f"note: a pilot plan's N counts the {loaded.pilot_k0} pilot samples each prompt already has; "
                          f"the requests ask for N − {loaded.pilot_k0} more (prompts whose N is the pilot get none). "
                          "Offset the imported sample_idx by the pilot's before joining the two tables.",
                          highlight=False)
    requests = build_batch_requests(allocations, prompt_list, target=to, config=cfg, model=model,
                                    temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed,
                                    logprobs=logprobs, endpoint=endpoint, stop=stop,
                                    greedy_temperature=greedy_temperature)
    if greedy_temperature is not None and any(r["body"].get("n") == 1 for r in requests):
        err_console.print(f"note: greedy allocations sent at temperature {greedy_temperature:g}; the plan modelled "
                          f"one sample at the configuration's temperature ({temperature:g}), so its figures do not "
                          "describe them")
    # the replay is answered before anything is written, so a failing replay leaves no request file behind
    responses = replay_responses(requests, read_samples(replay)) if replay is not None else None
    existed = out.exists()
    write_jsonl(requests, out)
    if responses is not None:
        try:
            write_jsonl(responses, replay_out)
        except BaseException:
            if not existed:
                out.unlink(missing_ok=True)
            raise
    err_console.print(f"wrote {out} ({len(requests)} requests)")
    if responses is not None:
        err_console.print(f"wrote {replay_out} ({len(responses)} replayed responses)")
    ns = [r["body"]["n"] for r in requests]
    strat = allocations.filter(allocations["config"] == requests[0]["custom_id"].split("::")[0])["strategy"].to_list()
    row = {"config": requests[0]["custom_id"].split("::")[0], "target": to, "endpoint": requests[0]["url"],
           "requests": len(requests), "samples": int(sum(ns)), "n_min": min(ns), "n_max": max(ns),
           "strategies": ", ".join(f"{s}×{k}" for s, k in sorted(Counter(strat).items())), "out": str(out)}
    emit([row] if getattr(format, "value", format) == "table" else row, getattr(format, "value", format),
         title="batch requests")


def register(app: typer.Typer) -> None:
    app.command("export", help=HELP,
                short_help="Turn a plan into an OpenAI / vLLM batch request file.")(export_command)
