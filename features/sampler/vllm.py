"""The ``vllm`` engine: ``vllm.LLM.generate`` with ``SamplingParams(n=k, …)`` and prefix caching.

vLLM is an optional extra (``pip install 'ttsplan[vllm]'``) and is imported lazily. It cannot be
installed on the project's CPU machines, so the mapping from vLLM's documented output classes to
SampleTable rows (:func:`completions_from_request_output`) is a pure function tested with stand-in
objects carrying the same fields as ``vllm.outputs.RequestOutput`` (``prompt_token_ids``,
``outputs``), ``vllm.outputs.CompletionOutput`` (``index, text, token_ids, cumulative_logprob,
logprobs, finish_reason, stop_reason``) and ``vllm.logprobs.Logprob`` (``logprob, rank,
decoded_token``).

Per-token entropy is exact only when vLLM returns the full distribution (``full_logprobs=True`` →
``SamplingParams(logprobs=-1)``, which needs ``LLM(max_logprobs=-1)``); with top-``n`` logprobs it
is the entropy of the top-``n`` tokens plus one bucket for the remaining mass (a lower bound).
vLLM's logprobs are from the raw model distribution by default (V1 ``logprobs_mode="raw_logprobs"``),
the same convention as the ``hf`` engine.

Example (on a GPU machine with vLLM installed)::

    eng = VLLMEngine("Qwen/Qwen2.5-0.5B-Instruct", full_logprobs=False, top_logprobs=20)
    ValidationSampler(eng, SamplerConfig(k=64, temperature=0.7)).run(prompts, "out/")
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ttsplan.features.errors import TtsplanError
from ttsplan.features.sampler.base import BatchEngine, Completion, SamplerConfig, prompt_seed
from ttsplan.features.tasks import Prompt


def _lp_value(v: Any) -> float:
    """A ``Logprob`` object (``.logprob``) or a bare float."""
    return float(getattr(v, "logprob", v))


def step_stats(step: dict | None, token_id: int, vocab_size: int | None = None) -> tuple[float | None, float | None, float | None]:
    """``(logprob of token, entropy, self-certainty)`` of one step's ``{token_id: Logprob}`` dict.

    Exact when the dict covers the vocabulary; otherwise entropy lumps the missing mass into one
    bucket and self-certainty is None.
    """
    if not step:
        return None, None, None
    lps = {int(t): _lp_value(v) for t, v in step.items()}
    lp = lps.get(int(token_id))
    probs = [math.exp(x) for x in lps.values()]
    ent = -sum(p * x for p, x in zip(probs, lps.values()) if p > 0)
    rest = max(0.0, 1.0 - sum(probs))
    if rest > 1e-12:
        ent -= rest * math.log(rest)
    sc = None
    if vocab_size and len(lps) >= vocab_size:
        sc = -sum(lps.values()) / len(lps) - math.log(len(lps))
    return lp, ent, sc


def completions_from_request_output(out: Any, k: int, stop: Sequence[str] = (), reward: str = "self_certainty",
                                    vocab_size: int | None = None) -> list[Completion]:
    """Map one vLLM ``RequestOutput`` (``n = k`` completions) to ``k`` :class:`Completion` in index order."""
    outputs = sorted(out.outputs, key=lambda o: o.index)
    if len(outputs) != k:
        raise RuntimeError(f"vLLM returned {len(outputs)} completions for request "
                           f"{getattr(out, 'request_id', '?')}, expected n={k}")
    prompt_tokens = len(out.prompt_token_ids) if getattr(out, "prompt_token_ids", None) is not None else None
    result = []
    for o in outputs:
        ids = list(o.token_ids)
        lps, ents, scs = [], [], []
        for t, step in zip(ids, o.logprobs or []):
            lp, ent, sc = step_stats(step, t, vocab_size)
            lps.append(lp)
            ents.append(ent)
            scs.append(sc)
        n = len(ids)
        logprob = (float(o.cumulative_logprob) if o.cumulative_logprob is not None
                   else (sum(lps) if lps and None not in lps else None))
        entropy = sum(ents) / len(ents) if ents and None not in ents and len(ents) == n else None
        if reward == "self_certainty":
            rew = sum(scs) / n if n and scs and None not in scs and len(scs) == n else None
        else:
            rew = logprob / n if logprob is not None and n else None
        text = o.text
        for s in stop:  # vLLM already strips stop strings; this keeps other engines' convention
            text = text.split(s, 1)[0]
        finish = o.finish_reason if o.finish_reason is not None else None
        result.append(Completion(text=text, output_tokens=n, prompt_tokens=prompt_tokens, logprob=logprob,
                                 entropy=entropy, reward=rew, finish_reason=finish, token_ids=ids,
                                 token_logprobs=[x for x in lps if x is not None],
                                 token_entropies=[x for x in ents if x is not None]))
    return result


class VLLMEngine(BatchEngine):
    """Sample with ``vllm.LLM`` (one request per prompt, ``n = k``, one seed per prompt).

    Per-request calls (:meth:`sample_many`) draw sample ``j`` of prompt ``p`` with the seed of the id
    ``"p#j"`` (:class:`~ttsplan.features.sampler.base.BatchEngine`).
    """

    name = "vllm"

    def __init__(self, model: str, full_logprobs: bool = False, top_logprobs: int = 20,
                 llm: Any = None, sampling_params_cls: Any = None, **llm_kwargs: Any):
        self.model_name = model
        self.full_logprobs = full_logprobs
        self.top_logprobs = top_logprobs
        self.llm_kwargs = {"enable_prefix_caching": True, **llm_kwargs}
        if full_logprobs:
            self.llm_kwargs.setdefault("max_logprobs", -1)
        self._llm = llm
        self._sp = sampling_params_cls

    def _load(self) -> None:
        if self._llm is None or self._sp is None:
            try:
                from vllm import LLM, SamplingParams
            except ImportError:
                raise TtsplanError("the vllm engine must have vLLM installed, got none. Install it with "
                                   "`pip install 'ttsplan[vllm]'` on a GPU machine, or use --engine hf.") from None
            self._llm = self._llm or LLM(model=self.model_name, **self.llm_kwargs)
            self._sp = self._sp or SamplingParams

    def provenance(self) -> dict:
        try:
            import vllm

            version = vllm.__version__
        except ImportError:
            version = None
        return {"engine": self.name, "model": self.model_name, "vllm": version,
                "full_logprobs": self.full_logprobs, "top_logprobs": self.top_logprobs}

    def sampling_params(self, prompt: Prompt, cfg: SamplerConfig) -> Any:
        self._load()
        return self._sp(n=cfg.k, temperature=cfg.temperature, top_p=cfg.top_p, max_tokens=cfg.max_new_tokens,
                        seed=prompt_seed(cfg.seed, prompt.id), stop=list(cfg.stop) or None,
                        logprobs=-1 if self.full_logprobs else self.top_logprobs)

    def generate(self, prompts: Sequence[Prompt], cfg: SamplerConfig) -> list[list[Completion]]:
        self._load()
        params = [self.sampling_params(p, cfg) for p in prompts]
        outs = self._llm.generate([p.prompt for p in prompts], params, use_tqdm=False)
        vocab = None
        if self.full_logprobs:
            try:
                vocab = self._llm.get_tokenizer().vocab_size
            except Exception:
                vocab = None
        return [completions_from_request_output(o, cfg.k, cfg.stop, cfg.reward, vocab) for o in outs]


__all__ = ["VLLMEngine", "completions_from_request_output", "step_stats"]
