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
from ttsplan.cli.engines import EngineFactory, build_engine, openai_settings, split_base_urls
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
from ttsplan.features.errors import TtsplanError, did_you_mean
from ttsplan.features.sampler import (
    ENGINES,
    SamplerConfig,
    ValidationSampler,
    dependency_problem,
    parse_shard,
)
from ttsplan.features.sampler.base import REWARDS
from ttsplan.features.sampler.ray_data import RayDataSampler
from ttsplan.features.sampler.ray_sampler import (
    RaySampler,
    check_ray_address,
    cluster_slots,
    connect,
    disconnect,
    ray_problem,
)

HELP = """Sample k completions per prompt and write a graded SampleTable (parquet shards).

PROMPTS is a JSONL file ({id, prompt, answer} per line; problem files with "problem" are wrapped in a
few-shot template) or tasks:FAMILY[:N] for the built-in task generator (families: larger, smaller,
next, add, first_letter, last_letter, count).

Runs are resumable: rerun the same command after an interruption and finished chunks are skipped.
--shard i/n splits the prompts across n processes or GPUs writing to the same --out.

--ray ADDRESS spreads the chunks over a Ray cluster (extra 'ray'), one engine per actor, with the same
resumable chunks, provenance and table as a single-process run with the same seed: local (start Ray
on this machine), auto (the cluster running here) or HOST:PORT / ray://HOST:PORT. A failed actor's
chunks are retried; a killed driver resumes when the same command is rerun. --engine vllm --ray-data
goes through Ray Data's LLM API instead (one vLLM engine per GPU worker; see docs/sampler.md).

Example:

    ttsplan sample tasks:larger:64 --shots 3 --k 16 --temperature 0.7 --max-new-tokens 6 --out out/larger

    ttsplan sample ../shared/data/problems/gsm8k_test.jsonl --engine vllm --model Qwen/Qwen2.5-0.5B-Instruct --k 64 --out out/gsm8k --shard 0/4

    ttsplan sample tasks:larger:64 --shots 3 --k 16 --max-new-tokens 6 --ray 10.0.0.5:6379 --ray-workers 8 --out out/larger
"""


@user_errors
def sample(
    prompts: str = typer.Argument(..., help="JSONL prompt/problem file, or tasks:FAMILY[:N]."),
    engine: str = typer.Option("hf", "--engine", help="hf | vllm | replay | openai"),
    model: Optional[str] = typer.Option(None, "--model", help="hf: 'gemma3-270m' (default) or a local model "
                                        "directory; vllm: a model name/path; replay: a recorded SampleTable."),
    k: int = typer.Option(16, "--k", help="samples per prompt"),
    temperature: TemperatureOpt = 0.7,
    top_p: TopPOpt = 1.0,
    max_new_tokens: MaxNewTokensOpt = 32,
    seed: SamplingSeedOpt = 0,
    out: Path = typer.Option(..., "--out", help="output directory (chunks + run.json)"),
    max_prompts: Optional[int] = typer.Option(None, "--max-prompts", help="use only the first N prompts"),
    shard: str = typer.Option("0/1", "--shard", help="i/n: this process takes prompts i, i+n, …"),
    shots: int = typer.Option(0, "--shots", help="few-shot examples (task families or problem files)"),
    stop: StopOpt = None,
    batch_prompts: int = typer.Option(2, "--batch-prompts", help="prompts per batch (each with all k samples)"),
    config: Optional[str] = typer.Option(None, "--config", help="config label (replay: which recorded config)"),
    reward: RewardOpt = "self_certainty",
    device: DeviceOpt = "cpu",
    base_url: BaseUrlOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    chat: ChatOpt = False,
    concurrency: int = typer.Option(8, "--concurrency", help="openai: requests in flight"),
    top_logprobs: int = typer.Option(5, "--top-logprobs", help="openai: top-k logprobs per token (-1: none; llama.cpp is much faster without)"),
    extra_body: ExtraBodyOpt = None,
    no_text: NoTextOpt = False,
    ray: Optional[str] = typer.Option(None, "--ray", metavar="ADDRESS",
                                      help="sample on a Ray cluster (extra 'ray'): local (start one here), auto "
                                      "(the one running here), or HOST:PORT / ray://HOST:PORT of its head"),
    ray_workers: Optional[int] = typer.Option(None, "--ray-workers", help="--ray: actors, one engine each (default: "
                                              "one per CPU of the cluster; one per GPU for vllm or --device cuda)"),
    ray_data: bool = typer.Option(False, "--ray-data", help="--engine vllm --ray: go through Ray Data's LLM API "
                                  "(vLLMEngineProcessorConfig, one vLLM engine per GPU worker)"),
    fmt: TableOrJsonOpt = TableOrJson.table,
) -> None:

    check_sample_options(engine=engine, model=model, k=k, temperature=temperature, top_p=top_p,
                         max_new_tokens=max_new_tokens, max_prompts=max_prompts, shots=shots,
                         batch_prompts=batch_prompts, reward=reward, concurrency=concurrency,
                         top_logprobs=top_logprobs, out=out, ray=ray, ray_workers=ray_workers, ray_data=ray_data,
                         base_url=base_url)
    shard_t = parse_shard(shard)
    plist, is_tasks = load_prompts(prompts, shots, seed)
    stops = stop_strings(stop, is_tasks)
    urls = split_base_urls(base_url)
    options: dict = {"config": config, "device": device, "openai": None}
    eng = None
    if not ray_data:
        settings = openai_settings(engine, urls[0] if urls else base_url, api_key_env=api_key_env, chat=chat,
                                   concurrency=concurrency, top_logprobs=top_logprobs, extra_body=extra_body)
        options["openai"] = settings
        eng = build_engine(engine, model, **options)
        for url in urls[1:]:  # --ray: every server answers before any work
            build_engine(engine, model, **{**options, "openai": settings.with_url(url) if settings else None})
    model_name = eng.model_name if eng is not None else str(model)
    label = config or (f"{model_name}/{Path(prompts).stem if not is_tasks else prompts.split(':')[1]}"
                       f"/{shots}shot/T{temperature:g}")
    cfg = SamplerConfig(k=k, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, seed=seed,
                        stop=stops, batch_prompts=batch_prompts, config=label, reward=reward,
                        keep_text=not no_text)
    started_ray = connect(ray) if ray is not None else False  # one message, before any file is written
    try:
        _sample(plist, eng, cfg, out, shard_t, max_prompts, fmt, shard=shard, engine=engine, model=model, urls=urls,
                options=options, ray=ray, ray_workers=ray_workers, ray_data=ray_data)
    finally:
        if started_ray:
            disconnect()


def _sample(plist, eng, cfg: SamplerConfig, out: Path, shard_t: tuple[int, int], max_prompts: int | None,
            fmt: TableOrJson, *, shard: str, engine: str, model: str | None, urls: list[str], options: dict,
            ray: str | None, ray_workers: int | None, ray_data: bool) -> None:
    """Run the sampler chosen by the options with a progress bar on stderr, then print the summary."""
    if ray_data:
        workers = ray_workers or cluster_slots(num_gpus=1)
        if workers < 1:
            raise TtsplanError(f"--ray-data must reach a cluster with GPUs (one vLLM engine per GPU worker), got "
                               f"none at {ray}. Add GPU nodes, or pass --ray-workers N.")
        sampler: ValidationSampler = RayDataSampler(str(model), cfg, workers=workers)
        eng = sampler.engine
    elif ray is not None:
        gpu = engine == "vllm" or (engine == "hf" and str(options["device"]).startswith("cuda"))
        factory = EngineFactory(engine, model, base_urls=tuple(urls),
                                table=eng.table if engine == "replay" else None, **options)
        sampler = RaySampler(eng, cfg, factory, workers=ray_workers, num_gpus=1 if gpu else 0)
    else:
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
        stats = None if ray is not None else getattr(eng, "stats", None)  # openai: completions/s, tok/s, …
        bar.update(task, completed=p.prompts_done, total=p.prompts_total,
                   rate=(stats.text() if stats is not None else f"{p.tokens_per_s:.1f} tok/s")
                   + (f" on {p.workers} Ray workers" if p.workers else "")
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
    extra = {"ray": ray, "ray_workers": sampler.workers_label()} if ray is not None else {}
    rows = [{**r, "shard": shard, **extra, "out": str(out), "elapsed_s": round(elapsed, 1)} for r in summary.to_dicts()]
    emit(rows, fmt, title="ttsplan sample")


def check_sample_options(*, engine: str, model: str | None, k: int, temperature: float, top_p: float,
                         max_new_tokens: int, max_prompts: int | None, shots: int, batch_prompts: int, reward: str,
                         concurrency: int, top_logprobs: int, out: Path, ray: str | None = None,
                         ray_workers: int | None = None, ray_data: bool = False, base_url: str | None = None) -> None:
    """Every check that needs neither the prompts nor the engine: ranges, the engine's optional
    dependencies (with the extra to install), --ray (Ray installed, the address answering within 2 s)
    and --out; one message, before any file is created."""
    problems: list[str] = []
    if engine not in ENGINES:
        problems.append(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}.{did_you_mean(engine, ENGINES)}")
    elif not ray_data:  # --ray-data: vLLM runs on the Ray workers, not here
        dep = dependency_problem(engine, model)
        if dep:
            problems.append(dep)
    if ray is not None:
        problems.append(ray_problem() or check_ray_address(ray) or "")
    if ray_data and (engine != "vllm" or ray is None):
        problems.append(f"--ray-data must come with --engine vllm and --ray ADDRESS, got --engine {engine}"
                        f"{'' if ray is not None else ' without --ray'}. Add them, or drop --ray-data.")
    if ray_workers is not None and ray is None:
        problems.append("--ray-workers must come with --ray ADDRESS, got no --ray. Add --ray local (or the "
                        "cluster's address), or drop --ray-workers.")
    if ray is None and len(split_base_urls(base_url)) > 1:
        problems.append(f"--base-url must be one URL without --ray, got {len(split_base_urls(base_url))}. Pass one, "
                        "or add --ray ADDRESS to give each Ray worker one of them.")
    problems = [p for p in problems if p]
    try:
        check_ranges(("--k", k, k >= 1, "be >= 1"),
                     ("--temperature", temperature, math.isfinite(temperature) and temperature >= 0, "be >= 0"),
                     ("--top-p", top_p, 0 < top_p <= 1, "be in (0, 1]"),
                     ("--max-new-tokens", max_new_tokens, max_new_tokens >= 1, "be >= 1"),
                     ("--max-prompts", max_prompts, max_prompts is None or max_prompts >= 1, "be >= 1"),
                     ("--shots", shots, shots >= 0, "be >= 0"),
                     ("--batch-prompts", batch_prompts, batch_prompts >= 1, "be >= 1"),
                     ("--concurrency", concurrency, concurrency >= 1, "be >= 1"),
                     ("--top-logprobs", top_logprobs, -1 <= top_logprobs <= 20, "be in [-1, 20]"),
                     ("--ray-workers", ray_workers, ray_workers is None or ray_workers >= 1, "be >= 1"))
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
