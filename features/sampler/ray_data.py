"""``ttsplan sample --engine vllm --ray ADDRESS --ray-data``: sampling through Ray Data's LLM API.

:class:`RayDataSampler` turns the pending chunks of a run into one Ray Dataset with a row per
(prompt, sample index), runs it through a ``ray.data.llm`` vLLM engine processor
(``vLLMEngineProcessorConfig``, ``concurrency`` = one vLLM engine per GPU worker) and writes each chunk
as soon as all its rows are back: the same chunk files, run-parameter file, shard lock and provenance
as :class:`~ttsplan.features.sampler.runner.ValidationSampler`, so a killed run resumes by rerunning
the same command.

Seeding: Ray Data's vLLM stage returns one completion per row, so sample ``j`` of prompt ``p`` is its
own request (``n = 1``) seeded with ``prompt_seed(seed, "p#j")`` — exactly the request
:meth:`VLLMEngine.sample_one <ttsplan.features.sampler.vllm.VLLMEngine.sample_one>` sends (what
``ttsplan run`` draws). ``--engine vllm`` without ``--ray-data`` draws a prompt's ``k`` samples as one
``n = k`` request instead, so the two tables hold different (equally distributed) samples; their run
directories are kept apart (the engine is recorded as ``vllm_ray_data``).

The output columns of Ray's vLLM stage (``generated_text``, ``generated_tokens``, ``num_input_tokens``,
``logprobs`` as ``{token_id: {"logprob", "rank", "decoded_token"}}`` per step) are mapped by the vllm
engine's own :func:`~ttsplan.features.sampler.vllm.completions_from_request_output`. vLLM cannot be
installed on the project's CPU machines, so this path is tested with a stand-in for ``ray.data.llm``
(real Ray Data, a fake vLLM stage) in ``tests/test_ray_sample.py``.

>>> from ttsplan.features.sampler.base import Completion
>>> [c] = [completion_from_row({"generated_text": " 4", "generated_tokens": [7], "num_input_tokens": 3,
...        "logprobs": [{"7": {"logprob": -0.5, "rank": 1}}]}, SamplerConfig(k=1, max_new_tokens=4))]
>>> c.text, c.output_tokens, c.prompt_tokens, c.logprob, c.finish_reason
(' 4', 1, 3, -0.5, 'stop')
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ttsplan.features.errors import TtsplanError
from ttsplan.features.grading import grade
from ttsplan.features.sampler.base import Completion, SamplerConfig, prompt_seed
from ttsplan.features.sampler.checkpoint import package_versions, write_part
from ttsplan.features.sampler.rows import Grader
from ttsplan.features.sampler.runner import ValidationSampler, chunk_metadata
from ttsplan.features.sampler.vllm import completions_from_request_output
from ttsplan.features.tasks import Prompt

ENGINE_NAME = "vllm_ray_data"
#: the columns each row keeps through the processor (Ray Data carries input columns to postprocess)
KEYS = ("chunk", "prompt_id", "sample_idx")


class RayDataEngine:
    """The driver's stand-in engine of a Ray Data run: its name, model and provenance (it samples nothing)."""

    name = ENGINE_NAME
    kind = "batch"

    def __init__(self, model: str, workers: int, top_logprobs: int, accelerator_type: str | None = None):
        self.model_name, self.workers, self.top_logprobs = model, workers, top_logprobs
        self.accelerator_type = accelerator_type

    def provenance(self) -> dict:
        try:
            import ray

            ray_version = ray.__version__
        except ImportError:
            ray_version = None
        return {"engine": self.name, "model": self.model_name, "ray": ray_version, "workers": self.workers,
                "top_logprobs": self.top_logprobs, "accelerator_type": self.accelerator_type,
                "seeding": "n=1 per (prompt, sample_idx), seed prompt_seed(seed, 'p#j')"}


def sampling_params(cfg: SamplerConfig, prompt_id: str, sample_idx: int, top_logprobs: int) -> dict:
    """The ``sampling_params`` of one row: vLLM's ``SamplingParams`` arguments for sample ``sample_idx``."""
    return {"n": 1, "temperature": cfg.temperature, "top_p": cfg.top_p, "max_tokens": cfg.max_new_tokens,
            "seed": prompt_seed(cfg.seed, f"{prompt_id}#{sample_idx}"), "stop": list(cfg.stop) or None,
            "logprobs": top_logprobs}


def _step(step: Any) -> dict[int, float]:
    """One step's logprobs ``{token_id: logprob}`` from Ray's ``{token_id: {"logprob": …}}`` (keys may come
    back as strings, values as dicts, objects or floats after Ray Data's Arrow round trip)."""
    if not step:
        return {}
    return {int(t): float(v["logprob"] if isinstance(v, dict) else getattr(v, "logprob", v))
            for t, v in dict(step).items() if v is not None}


def completion_from_row(row: dict, cfg: SamplerConfig) -> Completion:
    """The :class:`Completion` of one output row of Ray's vLLM stage (through the vllm engine's mapping).

    ``finish_reason`` is ``length`` when the completion used every one of ``max_new_tokens``, else
    ``stop`` (Ray's stage does not return vLLM's own).
    """
    ids = [int(t) for t in (row.get("generated_tokens") if row.get("generated_tokens") is not None else [])]
    steps = row.get("logprobs")
    out = SimpleNamespace(
        index=0, text=row.get("generated_text") or "", token_ids=ids, cumulative_logprob=None,
        logprobs=[_step(s) for s in steps] if steps is not None else None,
        finish_reason="length" if len(ids) >= cfg.max_new_tokens else "stop")
    n_in = row.get("num_input_tokens")
    request = SimpleNamespace(outputs=[out], request_id=f"{row.get('prompt_id')}#{row.get('sample_idx')}",
                              prompt_token_ids=[0] * int(n_in) if n_in is not None else None)
    [c] = completions_from_request_output(request, 1, cfg.stop, cfg.reward)
    return c


class _Preprocess:
    """Row → the processor's input (``prompt`` + ``sampling_params``), keeping the row's keys."""

    def __init__(self, cfg: SamplerConfig, top_logprobs: int):
        self.cfg, self.top_logprobs = cfg, top_logprobs

    def __call__(self, row: dict) -> dict:
        return {**{k: row[k] for k in KEYS}, "prompt": row["prompt"],
                "sampling_params": sampling_params(self.cfg, row["prompt_id"], int(row["sample_idx"]),
                                                   self.top_logprobs)}


def _postprocess(row: dict) -> dict:
    """The processor's output → the fields the mapping needs."""
    return {**{k: row[k] for k in KEYS}, **{k: row.get(k) for k in (
        "generated_text", "generated_tokens", "num_input_tokens", "logprobs", "__inference_error__")}}


def _stage_flags(config_cls: Any) -> dict:
    """Plain-text prompts: no chat template, no separate tokenize / detokenize stages (vLLM does both).
    Ray >= 2.50 names these ``*_stage``; Ray 2.44-2.49 ``apply_chat_template`` / ``tokenize`` / ``detokenize``."""
    fields = set(getattr(config_cls, "model_fields", {}) or {})
    if "chat_template_stage" in fields or not fields & {"apply_chat_template", "tokenize", "detokenize"}:
        return {"chat_template_stage": False, "tokenize_stage": False, "detokenize_stage": False}
    return {"apply_chat_template": False, "tokenize": False, "detokenize": False}


class RayDataSampler(ValidationSampler):
    """Sample a run's pending chunks through ``ray.data.llm`` (Ray must be connected first).

    ``workers``: vLLM engines (one per GPU worker; ``concurrency`` of the processor); ``engine_kwargs``
    go to vLLM (``enable_prefix_caching`` on by default); ``llm_api`` replaces the ``ray.data.llm``
    module (tests pass a stand-in with ``vLLMEngineProcessorConfig`` and ``build_processor``).
    """

    def __init__(self, model: str, config: SamplerConfig, *, workers: int = 1, top_logprobs: int = 20,
                 batch_size: int = 64, accelerator_type: str | None = None, engine_kwargs: dict | None = None,
                 llm_api: Any = None, grader: Grader = grade):
        if not model:
            raise TtsplanError("--model must name a model for the vllm engine, got none.")
        super().__init__(RayDataEngine(model, workers, top_logprobs, accelerator_type), config, grader)
        self.workers, self.top_logprobs, self.batch_size = workers, top_logprobs, batch_size
        self.engine_kwargs = {"enable_prefix_caching": True, **(engine_kwargs or {})}
        self.accelerator_type, self.llm_api = accelerator_type, llm_api

    def workers_label(self) -> int:
        return self.workers

    def _api(self) -> Any:
        if self.llm_api is not None:
            return self.llm_api
        try:
            from ray.data import llm
        except ImportError as exc:
            raise TtsplanError(f"--ray-data must have Ray Data's LLM API (Ray >= 2.44 with vLLM), got "
                               f"{type(exc).__name__}: {exc}. Install it with `pip install 'ray[data,llm]>=2.44'` "
                               "on a GPU cluster, or drop --ray-data.") from None
        return llm

    def processor(self) -> Any:
        """The ``ray.data.llm`` processor: preprocess → vLLM engine (``workers`` of them) → postprocess."""
        api = self._api()
        config_cls = api.vLLMEngineProcessorConfig
        kwargs: dict = {"model_source": self.engine.model_name, "engine_kwargs": self.engine_kwargs,
                        "concurrency": self.workers, "batch_size": self.batch_size, **_stage_flags(config_cls)}
        if self.accelerator_type:
            kwargs["accelerator_type"] = self.accelerator_type
        build = getattr(api, "build_processor", None) or api.build_llm_processor  # renamed in Ray 2.50
        return build(config_cls(**kwargs), preprocess=_Preprocess(self.config, self.top_logprobs),
                     postprocess=_postprocess)

    def sample_pending(self, pending: Sequence[tuple[Path, list[Prompt]]], meta: dict,
                       wrote: Callable[[Sequence[Prompt], Sequence[dict]], None]) -> None:
        if not pending:
            return
        import ray
        import ray.data

        k = self.config.k
        chunks = {path.name: (path, part) for path, part in pending}
        items = [{"chunk": path.name, "prompt_id": p.id, "sample_idx": j, "prompt": p.prompt}
                 for path, part in pending for p in part for j in range(k)]
        got: dict[str, dict[tuple[str, int], Completion]] = {name: {} for name in chunks}
        provenance, versions = self.engine.provenance(), package_versions()
        ds = self.processor()(ray.data.from_items(items))
        for row in ds.iter_rows():
            if row.get("__inference_error__"):
                raise TtsplanError(f"the vLLM workers must sample every request, got an error on "
                                   f"{row['prompt_id']}#{row['sample_idx']}: {row['__inference_error__']}")
            name = row["chunk"]
            got[name][(row["prompt_id"], int(row["sample_idx"]))] = completion_from_row(row, self.config)
            path, part = chunks[name]
            if len(got[name]) == len(part) * k:  # the chunk is complete: write it now
                done = got.pop(name)
                rows = [r for p in part for r in self.rows(p, [done[(p.id, j)] for j in range(k)])]
                write_part(path, rows, chunk_metadata(meta, path, part, provenance, versions))
                wrote(part, rows)
        if got:
            raise TtsplanError(f"the Ray Data run must return every request, got {len(got)} chunk(s) incomplete "
                               f"({', '.join(sorted(got)[:3])}). Rerun the same command to resume.")


__all__ = ["ENGINE_NAME", "RayDataEngine", "RayDataSampler", "completion_from_row", "sampling_params"]
