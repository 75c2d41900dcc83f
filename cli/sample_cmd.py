"""``ttsplan sample``: one labeled validation pass (k samples per prompt) written as a SampleTable.

torch / transformers / vllm are imported only when the command runs.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Optional

import typer
from ttsplan.cli.common import TableOrJson, check_ranges, emit, err_console, user_errors
from ttsplan.cli.engines import build_engine
from ttsplan.cli.prompts import load_prompts, stop_strings
from ttsplan.features.errors import TtsplanError, did_you_mean
from ttsplan.features.sampler import (
    ENGINES,
    SamplerConfig,
    ValidationSampler,
    dependency_problem,
    parse_shard,
)
from ttsplan.features.sampler.base import REWARDS

HELP = """Sample k completions per prompt and write a graded SampleTable (parquet shards).

PROMPTS is a JSONL file ({id, prompt, answer} per line; problem files with "problem" are wrapped in a
few-shot template) or tasks:FAMILY[:N] for the built-in task generator (families: larger, smaller,
next, add, first_letter, last_letter, count).

Runs are resumable: rerun the same command after an interruption and finished chunks are skipped.
--shard i/n splits the prompts across n processes or GPUs writing to the same --out.

Example:

    ttsplan sample tasks:larger:64 --shots 3 --k 16 --temperature 0.7 --max-new-tokens 6 --out out/larger

    ttsplan sample ../shared/data/problems/gsm8k_test.jsonl --engine vllm --model Qwen/Qwen2.5-0.5B-Instruct --k 64 --out out/gsm8k --shard 0/4
"""


@user_errors
def sample(
    prompts: str = typer.Argument(..., help="JSONL prompt/problem file, or tasks:FAMILY[:N]."),
    engine: str = typer.Option("hf", "--engine", help="hf | vllm | replay | openai"),
    model: Optional[str] = typer.Option(None, "--model", help="hf: 'gemma3-270m' (default) or a local model "
                                        "directory; vllm: a model name/path; replay: a recorded SampleTable."),
    k: int = typer.Option(16, "--k", help="samples per prompt"),
    temperature: float = typer.Option(0.7, "--temperature"),
    top_p: float = typer.Option(1.0, "--top-p"),
    max_new_tokens: int = typer.Option(32, "--max-new-tokens"),
    seed: int = typer.Option(0, "--seed"),
    out: Path = typer.Option(..., "--out", help="output directory (chunks + run.json)"),
    max_prompts: Optional[int] = typer.Option(None, "--max-prompts", help="use only the first N prompts"),
    shard: str = typer.Option("0/1", "--shard", help="i/n: this process takes prompts i, i+n, …"),
    shots: int = typer.Option(0, "--shots", help="few-shot examples (task families or problem files)"),
    stop: Optional[str] = typer.Option(None, "--stop", help=r"stop string, escapes allowed (default '\n' for "
                                       "tasks:, none for files)"),
    batch_prompts: int = typer.Option(2, "--batch-prompts", help="prompts per batch (each with all k samples)"),
    config: Optional[str] = typer.Option(None, "--config", help="config label (replay: which recorded config)"),
    reward: str = typer.Option("self_certainty", "--reward", help="self_certainty | mean_logprob"),
    device: str = typer.Option("cpu", "--device", help="hf engine device (cpu, cuda)"),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="openai: server URL, e.g. http://127.0.0.1:8080"),
    api_key_env: Optional[str] = typer.Option(None, "--api-key-env", help="openai: env variable with the API key"),
    chat: bool = typer.Option(False, "--chat", help="openai: use /v1/chat/completions"),
    concurrency: int = typer.Option(8, "--concurrency", help="openai: requests in flight"),
    top_logprobs: int = typer.Option(5, "--top-logprobs", help="openai: top-k logprobs per token (-1: none; llama.cpp is much faster without)"),
    extra_body: Optional[str] = typer.Option(None, "--extra-body", help="openai: JSON merged into every request, "
                                             'e.g. \'{"top_k": 0, "min_p": 0, "repeat_penalty": 1}\' for llama.cpp'),
    no_text: bool = typer.Option(False, "--no-text", help="do not store completion text"),
    fmt: TableOrJson = typer.Option(TableOrJson.table, "--format"),
) -> None:

    check_sample_options(engine=engine, model=model, k=k, temperature=temperature, top_p=top_p,
                         max_new_tokens=max_new_tokens, max_prompts=max_prompts, shots=shots,
                         batch_prompts=batch_prompts, reward=reward, concurrency=concurrency,
                         top_logprobs=top_logprobs, out=out)
    shard_t = parse_shard(shard)
    plist, is_tasks = load_prompts(prompts, shots, seed)
    stops = stop_strings(stop, is_tasks)
    eng = build_engine(engine, model, config=config, device=device, base_url=base_url, api_key_env=api_key_env,
                       chat=chat, concurrency=concurrency, top_logprobs=top_logprobs, extra_body=extra_body)
    label = config or (f"{eng.model_name}/{Path(prompts).stem if not is_tasks else prompts.split(':')[1]}"
                       f"/{shots}shot/T{temperature:g}")
    cfg = SamplerConfig(k=k, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, seed=seed,
                        stop=stops, batch_prompts=batch_prompts, config=label, reward=reward,
                        keep_text=not no_text)
    sampler = ValidationSampler(eng, cfg)

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    start = time.perf_counter()
    # the bar starts with the first progress report, i.e. once the run is checked and locked: a refused
    # run prints its one error line and no bar
    bar = Progress(TextColumn("sampling"), BarColumn(), MofNCompleteColumn(), TextColumn("prompts"),
                   TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), console=err_console, transient=False)
    task = bar.add_task("sample", total=None, rate="")

    def on_progress(p) -> None:
        if not bar.live.is_started:
            bar.start()
        stats = getattr(eng, "stats", None)  # openai: completions/s, tok/s, tokens, retries
        bar.update(task, completed=p.prompts_done, total=p.prompts_total,
                   rate=(stats.text() if stats is not None else f"{p.tokens_per_s:.1f} tok/s")
                   + (f", {p.skipped} resumed" if p.skipped else ""))

    try:
        table = sampler.run(plist, out, shard=shard_t, max_prompts=max_prompts, progress=on_progress)
    finally:
        if bar.live.is_started:
            bar.stop()
    elapsed = time.perf_counter() - start
    import polars as pl

    summary = (table.group_by("config")
               .agg(pl.col("prompt_id").n_unique().alias("prompts"), pl.len().alias("samples"),
                    pl.col("correct").mean().alias("accuracy"),
                    pl.col("output_tokens").mean().alias("mean_output_tokens"),
                    pl.col("entropy").mean().alias("mean_entropy"))
               .sort("config"))
    rows = [{**r, "shard": shard, "out": str(out), "elapsed_s": round(elapsed, 1)} for r in summary.to_dicts()]
    emit(rows, fmt, title="ttsplan sample")


def check_sample_options(*, engine: str, model: str | None, k: int, temperature: float, top_p: float,
                         max_new_tokens: int, max_prompts: int | None, shots: int, batch_prompts: int, reward: str,
                         concurrency: int, top_logprobs: int, out: Path) -> None:
    """Every check that needs neither the prompts nor the engine: ranges, the engine's optional
    dependencies (with the extra to install) and --out; one message, before any file is created."""
    problems: list[str] = []
    if engine not in ENGINES:
        problems.append(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}.{did_you_mean(engine, ENGINES)}")
    else:
        dep = dependency_problem(engine, model)
        if dep:
            problems.append(dep)
    try:
        check_ranges(("--k", k, k >= 1, "be >= 1"),
                     ("--temperature", temperature, math.isfinite(temperature) and temperature >= 0, "be >= 0"),
                     ("--top-p", top_p, 0 < top_p <= 1, "be in (0, 1]"),
                     ("--max-new-tokens", max_new_tokens, max_new_tokens >= 1, "be >= 1"),
                     ("--max-prompts", max_prompts, max_prompts is None or max_prompts >= 1, "be >= 1"),
                     ("--shots", shots, shots >= 0, "be >= 0"),
                     ("--batch-prompts", batch_prompts, batch_prompts >= 1, "be >= 1"),
                     ("--concurrency", concurrency, concurrency >= 1, "be >= 1"),
                     ("--top-logprobs", top_logprobs, -1 <= top_logprobs <= 20, "be in [-1, 20]"))
    except TtsplanError as exc:
        problems.append(str(exc))
    if reward not in REWARDS:
        problems.append(f"--reward must be one of {', '.join(REWARDS)}, got {reward!r}.{did_you_mean(reward, REWARDS)}")
    if out.exists() and not out.is_dir():
        problems.append(f"--out must be a directory (or a path to create), got {str(out)!r} which is a file. "
                        "Pick another --out.")
    if problems:
        raise TtsplanError(" ".join(problems))


def register(app: typer.Typer) -> None:
    app.command("sample", help=HELP)(sample)
