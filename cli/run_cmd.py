"""``ttsplan run``: execute a plan with a sampler engine, stopping prompts adaptively.

torch / transformers / vllm / httpx are imported only when the command runs.
"""
from __future__ import annotations

from pathlib import Path

import typer
from ttsplan.cli.common import TableOrJson, check_ranges, emit, err_console, user_errors
from ttsplan.cli.engines import build_engine, openai_settings
from ttsplan.cli.options import (
    ApiKeyEnvOpt,
    BaseUrlOpt,
    ChatOpt,
    DeviceOpt,
    ExtraBodyOpt,
    MaxNewTokensOpt,
    NoTextOpt,
    RewardOpt,
    SamplingSeedOpt,
    StopOpt,
    TableOrJsonOpt,
    TemperatureOpt,
    TopPOpt,
)
from ttsplan.cli.prompts import load_prompts, stop_strings
from ttsplan.features.errors import TtsplanError
from ttsplan.features.sampler import SamplerConfig
from ttsplan.planner.plan import check_prompts_match
from ttsplan.planner.policy_plan import PolicyPlan, read_plan
from ttsplan.planner.run import run_plan

HELP = """Execute a plan: sample each planned prompt up to its allocated N with an engine, let an adaptive
stopping rule end prompts early, and write a SampleTable, per-prompt results and a summary of
accuracy (when the prompts carry gold answers) and cost (samples, tokens).

PROMPTS (--prompts) is the JSONL prompt file the plan's prompt ids come from, or tasks:FAMILY[:N].
--adaptive picks a stopping rule (regret, beta, horizon, esc, weighted, pilot, budget; --threshold is
its knob); without it every prompt gets exactly its planned N. A policy plan (the default `ttsplan
plan`) brings its own rule, threshold and cap and applies to any prompts of the task. The run checkpoints atomically: after a
crash or a dead server, rerun the same command and it resumes without repeating or losing samples.

Outputs in --out: samples.parquet, result.parquet, summary.json (+ parts/, session.json, run.json).

Example:

    ttsplan run plan.json --prompts prompts.jsonl --engine openai --base-url http://127.0.0.1:8080 --adaptive beta --out out/run

    ttsplan run plan.json --prompts tasks:larger:64 --shots 3 --engine hf --adaptive esc --threshold 4 --out out/run-hf
"""


@user_errors
def run_cmd(
    plan: Path = typer.Argument(..., help="Plan JSON written by `ttsplan plan --out`."),
    prompts: str = typer.Option(..., "--prompts", help="JSONL prompt file (id, prompt, answer) or tasks:FAMILY[:N]."),
    engine: str = typer.Option("hf", "--engine", help="hf | vllm | openai | replay"),
    out: Path = typer.Option(..., "--out", help="output directory (resumable)"),
    adaptive: str | None = typer.Option(None, "--adaptive", help="stopping rule: regret, beta, horizon, esc, "
                                           "weighted, pilot, budget (default: the plan's policy, or its fixed N)"),
    threshold: float | None = typer.Option(None, "--threshold", help="the rule's knob (default: the rule's)"),
    min_n: int | None = typer.Option(None, "--min-n", min=1, help="fewest samples per prompt (default: the rule's)"),
    max_samples: int | None = typer.Option(None, "--max-samples", min=0, help="global budget: total samples"),
    config: str | None = typer.Option(None, "--config", help="plan configuration to run (default: recommended)"),
    base_url: BaseUrlOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    model: str | None = typer.Option(None, "--model", help="hf: model (default gemma3-270m); vllm: model; openai: "
                                        "served model name (default: the only one); replay: a recorded SampleTable"),
    chat: ChatOpt = False,
    concurrency: int = typer.Option(8, "--concurrency", min=1, help="openai: requests in flight"),
    top_logprobs: int = typer.Option(5, "--top-logprobs", min=-1, max=20, help="openai: top-k logprobs per token (-1: none; llama.cpp is much faster without; "
                                     "they feed the entropy estimate)"),
    extra_body: ExtraBodyOpt = None,
    temperature: TemperatureOpt = 0.7,
    top_p: TopPOpt = 1.0,
    max_new_tokens: MaxNewTokensOpt = 32,
    seed: SamplingSeedOpt = 0,
    shots: int = typer.Option(0, "--shots", min=0, help="few-shot examples (task families or problem files)"),
    stop: StopOpt = None,
    reward: RewardOpt = "self_certainty",
    batch: int = typer.Option(8, "--batch", min=1, help="hf/vllm: samples per model batch"),
    device: DeviceOpt = "cpu",
    no_text: NoTextOpt = False,
    fmt: TableOrJsonOpt = TableOrJson.table,
) -> None:

    check_ranges(("--max-samples", max_samples, max_samples is None or max_samples >= 1,
                  "be >= 1 (a total sample budget; leave it out for none)"))
    if out.exists() and not out.is_dir():
        raise TtsplanError(f"--out must be a directory (new, or a run to resume), got {out}, which is a file. "
                           "Pass another --out.")
    if not plan.is_file():
        raise TtsplanError(f"PLAN must be a plan JSON file, got {plan} which does not exist. Write one with "
                           "`ttsplan plan ... --out plan.json`.")
    the_plan = read_plan(plan.read_text())
    plist, is_tasks = load_prompts(prompts, shots, seed)
    if isinstance(the_plan, PolicyPlan):  # a policy applies to any prompts of the task
        chosen = the_plan.config(config)
        policy, config = chosen.policy, chosen.config
        if policy.kind == "adaptive" and adaptive is None:
            adaptive, threshold, min_n = policy.rule, threshold or policy.threshold, min_n or policy.min_n
        the_plan = {p.id: policy.max_samples for p in plist}
    elif the_plan.prompt_hashes:  # a per-prompt plan applies only to the prompts it was made for
        check_prompts_match(the_plan, plist, config or the_plan.recommended_config)
    stops = stop_strings(stop, is_tasks)
    if base_url is not None and engine != "openai":
        raise TtsplanError(f"--base-url must go with --engine openai, got --engine {engine}.")
    settings = openai_settings(engine, base_url, api_key_env=api_key_env, chat=chat, concurrency=concurrency,
                               top_logprobs=top_logprobs, extra_body=extra_body)
    eng = build_engine(engine, model, config=config, device=device, openai=settings)
    cfg = SamplerConfig(k=1, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, seed=seed,
                        stop=stops, reward=reward, keep_text=not no_text)

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    # the bar starts with the first progress report, so a run refused while validating prints only its error
    bar = Progress(TextColumn("run"), BarColumn(), MofNCompleteColumn(), TextColumn("samples"),
                   TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=err_console)
    task = bar.add_task("run", total=None, info="")
    try:
        def on_progress(p) -> None:
            if not bar.live.is_started:
                bar.start()
            info = (f"{p.open_prompts}/{p.prompts} prompts open, {p.output_tokens} tok, "
                    f"{p.samples_per_s:.2f} samples/s" + (f" [{p.engine}]" if p.engine else "")
                    + (f", {p.resumed} resumed" if p.resumed else ""))
            # planned samples are an upper bound: the bar ends early when prompts stop early
            bar.update(task, completed=p.samples, total=p.planned if p.open_prompts else p.samples, info=info)

        res = run_plan(the_plan, plist, eng, out, config=config, rule=adaptive, threshold=threshold, min_n=min_n,
                       budget=max_samples, sampling=cfg, batch=batch, progress=on_progress)
    finally:
        bar.stop()
    s = res.summary
    keys = ("config", "engine", "rule", "prompts", "accuracy", "samples", "planned_samples", "samples_saved",
            "mean_samples", "stopped_rule", "stopped_cap", "output_tokens", "prompt_tokens", "resumed_samples",
            "elapsed_s", "out")
    emit([{k: s[k] for k in keys}] if fmt.value == "table" else s, fmt, title="ttsplan run")


def register(app: typer.Typer) -> None:
    app.command("run", help=HELP,
                short_help="Execute a plan with an engine, stopping prompts adaptively.")(run_cmd)
