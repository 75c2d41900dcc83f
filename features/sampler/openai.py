"""The ``openai`` engine: any OpenAI-compatible server (``vllm serve``, SGLang, TGI, llama.cpp) over HTTP.

Requests go to ``{base_url}/v1/completions`` (or ``/v1/chat/completions`` with ``chat=True``) with
``n``, ``temperature``, ``top_p``, ``max_tokens``, ``seed``, ``stop`` and ``logprobs`` /
``top_logprobs``; every returned choice becomes one :class:`~ttsplan.features.sampler.base.Completion`:

* ``output_tokens`` / ``prompt_tokens`` from the response's ``usage`` (``completion_tokens``, which
  counts a token that completed a stop string, as ``hf`` does; when ``n > 1`` choices share one
  ``usage``: the number of the choice's token logprobs), ``finish_reason`` as returned;
* ``logprob``: the sum of the sampled tokens' log-probabilities as the server reports them
  (vLLM, SGLang and llama.cpp report the raw, temperature-1 distribution, the ``hf`` convention);
* ``entropy``: **a truncated estimate** from the top-``k`` logprobs of every step (``top_logprobs``,
  default 20). With top-k probabilities ``p_1..p_k`` and tail mass ``r = 1 − Σ p_i`` the step's
  estimate is ``Ĥ = −Σ p_i log p_i − r log r``: the entropy of the distribution with the tail lumped
  into one bucket. Lumping never raises entropy, so ``Ĥ ≤ H`` (the exact entropy the ``hf`` engine
  computes from the full softmax), and ``H ≤ Ĥ + r log(V − k)`` for a vocabulary of ``V`` tokens.
  :func:`step_entropy` returns both bounds; the SampleTable stores the lower bound (the same
  convention as the ``vllm`` engine with top-n logprobs). With ``r`` small (a confident model) the two
  engines agree closely; compare entropies across engines only with that gap in mind.
* ``reward``: ``mean_logprob`` when asked; ``self_certainty`` needs the full distribution and is
  ``None`` here.

Sampling ``k`` completions of a prompt: one request with ``n = k`` and seed
:func:`~ttsplan.features.sampler.base.prompt_seed` when the server honours ``n``; servers that ignore ``n``
(llama.cpp returns one choice) get ``k`` requests with the distinct seeds
``sample_seed(seed, prompt_id, j)``. The first request probes this (``n_mode="auto"``: the number of
choices returned decides) and the probe's answer is cached on the engine; pass ``n_mode="n"`` or
``"single"`` to skip it. The engine is of kind ``async``: :meth:`OpenAIEngine.session` opens one
client on which ``await s.request(prompt, sample_idx, cfg)`` samples one ``(prompt, sample_idx)`` with
the per-sample seed (``ttsplan run`` keeps many in flight); :meth:`OpenAIEngine.sample_one` /
:meth:`OpenAIEngine.sample_many` are the blocking forms.

Requests run concurrently on one ``httpx.AsyncClient`` (at most ``concurrency`` at a time). 429,
5xx, timeouts, dropped connections and malformed JSON are retried with exponential backoff and
jitter (``Retry-After`` honoured), up to ``max_retries`` times, then :class:`ServerError` is raised
with what happened; any other 4xx raises :class:`~ttsplan.features.errors.TtsplanError` at once with the
server's message. :meth:`OpenAIEngine.check` (run before the first request) fails fast when the base
URL is wrong or the model is not served, naming the fix.

httpx is an optional dependency (``pip install 'ttsplan[openai]'``) imported when the engine is built.

Example (a llama.cpp server on port 8080)::

    eng = OpenAIEngine("http://127.0.0.1:8080", top_logprobs=5)
    ValidationSampler(eng, SamplerConfig(k=8, temperature=0.7, max_new_tokens=6)).run(prompts, "out/")
"""
from __future__ import annotations

import asyncio
import json
import math
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ttsplan.features.errors import TtsplanError, did_you_mean
from ttsplan.features.sampler.base import Completion, SamplerConfig, prompt_seed, sample_seed
from ttsplan.features.tasks import Prompt

#: status codes retried with backoff (besides timeouts, dropped connections and malformed JSON).
RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
N_MODES = ("auto", "n", "single")
#: request fields that make llama.cpp sample from plain softmax(logits / T) with top-p, like hf / vllm.
LLAMA_CPP_PLAIN = {"top_k": 0, "min_p": 0.0, "repeat_penalty": 1.0}


class ServerError(TtsplanError):
    """The server kept failing (down, overloaded, or answering garbage) after every retry."""


def seed31(seed: int) -> int:
    """Fold a 63-bit seed into [0, 2^31) (llama.cpp takes a 32-bit seed, others an int64)."""
    return int(seed) & 0x7FFFFFFF


def step_entropy(top: dict[str, float] | Sequence[float], vocab_size: int | None = None) -> tuple[float, float | None]:
    """``(lower, upper)`` bounds (nats) on one step's entropy from its top-k logprobs.

    ``lower = −Σ p_i log p_i − r log r`` (tail mass ``r`` in one bucket) and, given the vocabulary
    size ``V``, ``upper = lower + r log(V − k)`` (tail spread evenly); ``upper`` is None without ``V``.

    >>> lo, hi = step_entropy([math.log(0.5), math.log(0.5)], vocab_size=10)
    >>> round(lo, 6) == round(math.log(2), 6), round(hi, 6) == round(math.log(2), 6)
    (True, True)
    >>> lo, hi = step_entropy([math.log(0.5)], vocab_size=3)   # true entropy of (.5, .25, .25): 1.0397
    >>> round(lo, 4), round(hi, 4)
    (0.6931, 1.0397)
    """
    lps = list(top.values()) if isinstance(top, dict) else list(top)
    probs = [math.exp(x) for x in lps if x is not None and math.isfinite(x)]
    h = -sum(p * math.log(p) for p in probs if p > 0)
    r = max(0.0, 1.0 - sum(probs))
    if r > 1e-12:
        h -= r * math.log(r)
    upper = None
    if vocab_size is not None:
        rest = max(vocab_size - len(probs), 1)
        upper = h + (r * math.log(rest) if r > 1e-12 and rest > 1 else 0.0)
    return h, upper


def _choice_tokens(choice: dict, chat: bool) -> tuple[list[float], list[dict[str, float]]] | None:
    """Per-token logprobs and top-k dicts of one choice (legacy completions or chat format)."""
    lp = choice.get("logprobs")
    if not lp:
        return None
    if chat:
        content = lp.get("content") or []
        toks = [float(t["logprob"]) for t in content]
        tops = [{str(x["token"]): float(x["logprob"]) for x in (t.get("top_logprobs") or [])} for t in content]
        return toks, tops
    toks = [float(x) if x is not None else float("nan") for x in (lp.get("token_logprobs") or [])]
    tops = [{str(k): float(v) for k, v in (d or {}).items()} for d in (lp.get("top_logprobs") or [])]
    return toks, tops


def completion_from_choice(choice: dict, usage: dict | None, n_choices: int, stop: Sequence[str] = (),
                           reward: str = "self_certainty", chat: bool = False,
                           vocab_size: int | None = None) -> Completion:
    """Map one OpenAI ``choice`` (+ the response ``usage``) to a :class:`Completion`.

    >>> c = completion_from_choice({"text": " 42\\nQ:", "finish_reason": "stop", "logprobs": {
    ...     "tokens": [" 42"], "token_logprobs": [-0.1], "top_logprobs": [{" 42": -0.1, " 41": -2.5}]}},
    ...     {"prompt_tokens": 9, "completion_tokens": 1}, 1, stop=("\\n",), reward="mean_logprob")
    >>> c.text, c.output_tokens, c.prompt_tokens, c.logprob, c.finish_reason
    (' 42', 1, 9, -0.1, 'stop')
    >>> 0 < c.entropy < 1
    True
    """
    text = (choice.get("message") or {}).get("content") if chat else choice.get("text")
    if not isinstance(text, str):
        raise ValueError(f"choice has no {'message.content' if chat else 'text'} string")
    for s in stop:  # servers strip stop strings; this keeps the other engines' convention
        text = text.split(s, 1)[0]
    toks = _choice_tokens(choice, chat)
    lps: list[float] = []
    ents: list[float] = []
    if toks is not None:
        lps, tops = toks
        ents = [step_entropy(t, vocab_size)[0] for t in tops if t]
    usage = usage or {}
    if n_choices == 1 and usage.get("completion_tokens") is not None:
        n_out = int(usage["completion_tokens"])  # the server's count (includes a stop token, like hf)
    elif lps:
        n_out = len(lps)
    elif usage.get("completion_tokens") is not None:
        n_out = int(usage["completion_tokens"]) // max(n_choices, 1)
    else:
        n_out = 0
    logprob = float(sum(lps)) if lps and all(math.isfinite(x) for x in lps) else None
    entropy = float(sum(ents) / len(ents)) if ents and len(ents) == len(lps) else None
    rew = logprob / n_out if reward == "mean_logprob" and logprob is not None and n_out else None
    pt = usage.get("prompt_tokens")
    return Completion(text=text, output_tokens=int(n_out), prompt_tokens=None if pt is None else int(pt),
                      logprob=logprob, entropy=entropy, reward=rew, finish_reason=choice.get("finish_reason"),
                      token_logprobs=lps, token_entropies=ents)


@dataclass(frozen=True)
class OpenAISettings:
    """How to reach and drive an OpenAI-compatible server: one frozen value, validated on construction.

    ``base_url`` : server root, with or without the ``/v1`` suffix (``http://127.0.0.1:8080``).
    ``api_key_env`` : name of the environment variable holding the API key (sent as a Bearer token); it must
    be set. ``chat`` : ``/v1/chat/completions`` with the prompt as one user message. ``top_logprobs`` : top-k
    logprobs per step for the entropy estimate (0: token logprobs only; ``None``: ask for none).
    ``concurrency`` : requests in flight at most. ``n_mode`` : ``auto`` | ``n`` | ``single`` (module doc).
    ``max_retries``, ``backoff_s``, ``max_backoff_s``, ``timeout_s``, ``connect_timeout_s`` : retry policy
    and per-request timeouts. ``extra_body`` : server-specific sampling fields merged into every request.

    >>> s = OpenAISettings("http://127.0.0.1:8080/", concurrency=4)
    >>> s.v1_url, s.concurrency, s.api_key() is None
    ('http://127.0.0.1:8080/v1', 4, True)
    >>> OpenAISettings("localhost:8080")
    Traceback (most recent call last):
    ...
    ttsplan.features.errors.TtsplanError: openai engine: --base-url must be an http(s) URL such as http://127.0.0.1:8080, got 'localhost:8080'.
    """

    base_url: str
    api_key_env: str | None = None
    chat: bool = False
    top_logprobs: int | None = 5
    concurrency: int = 8
    n_mode: str = "auto"
    max_retries: int = 5
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0
    timeout_s: float = 120.0
    connect_timeout_s: float = 5.0
    extra_body: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.base_url, str) or not self.base_url.startswith(("http://", "https://")):
            problems.append(f"--base-url must be an http(s) URL such as http://127.0.0.1:8080, got {self.base_url!r}.")
        if self.n_mode not in N_MODES:
            problems.append(f"n_mode must be one of {', '.join(N_MODES)}, got {self.n_mode!r}.")
        if not isinstance(self.concurrency, int) or self.concurrency < 1:
            problems.append(f"concurrency must be an integer >= 1, got {self.concurrency!r}.")
        top = self.top_logprobs
        if top is not None and not (isinstance(top, int) and 0 <= top <= 20):
            problems.append(f"top_logprobs must be an integer in [0, 20] or None, got {self.top_logprobs!r}.")
        if not isinstance(self.max_retries, int) or self.max_retries < 0:
            problems.append(f"max_retries must be an integer >= 0, got {self.max_retries!r}.")
        if self.api_key_env and not os.environ.get(self.api_key_env):
            problems.append(f"--api-key-env must name a set environment variable, got {self.api_key_env!r} which "
                            f"is unset or empty. Export it (export {self.api_key_env}=...) or drop the option.")
        if problems:
            raise TtsplanError("openai engine: " + " ".join(problems))
        object.__setattr__(self, "extra_body", dict(self.extra_body or {}))

    @property
    def v1_url(self) -> str:
        """``base_url`` ending in ``/v1``."""
        root = self.base_url.rstrip("/")
        return root if root.endswith("/v1") else root + "/v1"

    def api_key(self) -> str | None:
        """The API key from ``api_key_env`` (``None`` without one)."""
        return os.environ.get(self.api_key_env) if self.api_key_env else None

    def with_url(self, base_url: str) -> OpenAISettings:
        """The same settings for another server."""
        return replace(self, base_url=base_url)


@dataclass
class EngineStats:
    """Running totals of an engine (shown on progress bars)."""

    requests: int = 0
    completions: int = 0
    output_tokens: int = 0
    prompt_tokens: int = 0
    retries: int = 0
    started: float | None = None

    @property
    def elapsed_s(self) -> float:
        return time.perf_counter() - self.started if self.started is not None else 0.0

    def text(self) -> str:
        t = self.elapsed_s
        rate = f"{self.completions / t:.1f} compl/s, {self.output_tokens / t:.1f} tok/s" if t > 0 else "…"
        return f"{rate}, {self.output_tokens} tok" + (f", {self.retries} retries" if self.retries else "")


class OpenAIEngine:
    """Sample through an OpenAI-compatible HTTP server.

    Parameters
    ----------
    base_url : an :class:`OpenAISettings`, or the server root, with or without the ``/v1`` suffix
        (``http://127.0.0.1:8080``), the other settings then given as keywords (``options``).
    model : the served model's name; ``None`` takes the only model ``/v1/models`` lists.
    vocab_size : the model's vocabulary size, for the entropy upper bound in provenance only.
    transport : an ``httpx`` transport (tests use ``httpx.MockTransport``).
    options : fields of :class:`OpenAISettings` (``api_key_env``, ``chat``, ``top_logprobs``,
        ``concurrency``, ``n_mode``, the retry policy and timeouts, ``extra_body``), replacing those of
        ``base_url`` when it is a settings object. ``extra_body`` e.g. llama.cpp's
        ``{"top_k": 0, "min_p": 0.0, "repeat_penalty": 1.0}`` (:data:`LLAMA_CPP_PLAIN`) turns off its
        default top-k 40 / min-p 0.05 / repeat penalty 1.1 so it samples like ``hf`` and ``vllm``.
    """

    name = "openai"
    kind = "async"

    def __init__(self, base_url: str | OpenAISettings, model: str | None = None, *, vocab_size: int | None = None,
                 transport: Any = None, **options: Any):
        if isinstance(base_url, OpenAISettings):
            settings = replace(base_url, **options) if options else base_url
        else:
            settings = OpenAISettings(base_url, **options)
        self.settings = settings
        self.api_key = settings.api_key()
        try:
            import httpx  # noqa: F401
        except ImportError:
            raise TtsplanError("the openai engine must have httpx installed, got none. Install it with "
                               "`pip install 'ttsplan[openai]'` (or `pip install httpx`).") from None
        self.base_url = settings.v1_url
        self._requested_model = model
        self.model_name = model or "openai"
        self.chat = settings.chat
        self.top_logprobs = settings.top_logprobs
        self.concurrency = settings.concurrency
        self.n_mode = settings.n_mode
        self.supports_n: bool | None = {"auto": None, "n": True, "single": False}[settings.n_mode]
        self.max_retries = settings.max_retries
        self.backoff_s = settings.backoff_s
        self.max_backoff_s = settings.max_backoff_s
        self.timeout_s = settings.timeout_s
        self.connect_timeout_s = settings.connect_timeout_s
        self.vocab_size = vocab_size
        self.transport = transport
        self.extra_body = dict(settings.extra_body)
        self.stats = EngineStats()
        self.on_result: Callable[[EngineStats], None] | None = None
        self._checked = False
        self._served: list[str] = []

    # -- plumbing ------------------------------------------------------------------------------
    def _client(self) -> Any:
        import httpx

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        timeout = httpx.Timeout(self.timeout_s, connect=self.connect_timeout_s)
        return httpx.AsyncClient(headers=headers, limits=limits, timeout=timeout, transport=self.transport)

    def provenance(self) -> dict:
        return {"engine": self.name, "model": self.model_name, "base_url": self.base_url, "chat": self.chat,
                "top_logprobs": self.top_logprobs, "supports_n": self.supports_n, "extra_body": self.extra_body,
                "served_models": self._served,
                "entropy": "lower bound from top-k logprobs (tail mass in one bucket)"}

    def _hint(self) -> str:
        return (f"Check that the server is running and that --base-url points at it (it should answer "
                f"GET {self.base_url}/models), e.g. `python -m llama_cpp.server --model MODEL.gguf --port 8080` "
                f"then --base-url http://127.0.0.1:8080.")

    async def _post(self, client: Any, path: str, body: dict) -> dict:
        """POST with retries; returns the parsed JSON body (a dict with a ``choices`` list)."""
        import httpx

        url = f"{self.base_url}{path}"
        last = ""
        for attempt in range(self.max_retries + 1):
            delay = None
            try:
                r = await client.post(url, json=body)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                last = f"{type(exc).__name__}: {exc or 'no detail'}"
            else:
                if r.status_code in RETRY_STATUS:
                    last = f"HTTP {r.status_code}: {r.text[:200]!r}"
                    ra = r.headers.get("retry-after")
                    try:
                        delay = float(ra) if ra is not None else None
                    except ValueError:
                        delay = None
                elif 400 <= r.status_code < 500:
                    msg = r.text[:500]
                    hint = ""
                    if r.status_code == 404:
                        hint = f" The server has no {path}; check --base-url (got {self.base_url})."
                    elif r.status_code in (401, 403):
                        hint = " Pass the API key with --api-key-env VAR."
                    elif "model" in msg.lower():
                        hint = f" Check --model (the server lists {', '.join(self._served) or 'no models'})."
                    raise TtsplanError(f"the server must accept the request, got HTTP {r.status_code} from "
                                       f"{url}: {msg}.{hint}")
                elif r.status_code >= 300:
                    last = f"HTTP {r.status_code}: {r.text[:200]!r}"
                else:
                    try:
                        data = r.json()
                        if not isinstance(data, dict) or not isinstance(data.get("choices"), list) or not data["choices"]:
                            raise ValueError("no 'choices' list")
                        return data
                    except ValueError as exc:
                        last = f"malformed JSON ({str(exc)[:120]}): {r.text[:120]!r}"
            if attempt < self.max_retries:
                self.stats.retries += 1
                wait = delay if delay is not None else min(self.max_backoff_s, self.backoff_s * 2 ** attempt)
                await asyncio.sleep(wait * (0.5 + random.random() / 2) if delay is None else wait)
        raise ServerError(f"the server at {self.base_url} must answer {path}, got {last} on all "
                          f"{self.max_retries + 1} attempts. {self._hint()}")

    async def _acheck(self, client: Any) -> None:
        import httpx

        url = f"{self.base_url}/models"
        try:
            r = await client.get(url, timeout=min(self.timeout_s, 30.0))
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            raise ServerError(f"--base-url must point at a running OpenAI-compatible server, got "
                              f"{type(exc).__name__} ({exc or 'no detail'}) from {url}. {self._hint()}") from None
        if r.status_code in (401, 403):
            raise TtsplanError(f"the server at {self.base_url} must accept our credentials, got HTTP "
                               f"{r.status_code}. Pass the API key with --api-key-env VAR.")
        if r.status_code == 404:
            raise TtsplanError(f"--base-url must be the server root (it should serve {url}), got HTTP 404. "
                               f"Drop any path after the port, e.g. --base-url http://HOST:PORT.")
        if r.status_code >= 400:
            raise ServerError(f"the server at {self.base_url} must answer GET /models, got HTTP "
                              f"{r.status_code}: {r.text[:200]!r}. {self._hint()}")
        try:
            served = [str(m["id"]) for m in r.json().get("data", [])]
        except (ValueError, KeyError, TypeError, AttributeError):
            raise TtsplanError(f"--base-url must point at an OpenAI-compatible server, got a non-OpenAI "
                               f"answer from {url}: {r.text[:120]!r}.") from None
        self._served = served
        want = self._requested_model
        if want is None:
            if len(served) != 1:
                raise TtsplanError(f"--model must name one of the served models when the server serves "
                                   f"{len(served)}, got none. Served: {', '.join(served) or 'none'}.")
            self.model_name = served[0]
        elif served and want not in served:
            raise TtsplanError(f"--model must be a model the server serves, got {want!r}. Served: "
                               f"{', '.join(served)}.{did_you_mean(want, served)} Pass --model "
                               f"{served[0] if len(served) == 1 else 'NAME'} (or omit --model when one is served).")
        self._checked = True

    def check(self) -> None:
        """Fail fast (one GET /v1/models) on a wrong base URL or model name; fills ``model_name``."""
        async def go() -> None:
            async with self._client() as client:
                await self._acheck(client)

        asyncio.run(go())

    # -- requests -----------------------------------------------------------------------------
    def _body(self, prompt: Prompt, cfg: SamplerConfig, n: int, seed: int) -> dict:
        body: dict[str, Any] = {"model": self.model_name, "n": n, "temperature": cfg.temperature,
                                "top_p": cfg.top_p, "max_tokens": cfg.max_new_tokens, "seed": seed31(seed)}
        if cfg.stop:
            body["stop"] = list(cfg.stop)
        body.update(self.extra_body)
        if self.chat:
            body["messages"] = [{"role": "user", "content": prompt.prompt}]
            if self.top_logprobs is not None:
                body["logprobs"] = True
                body["top_logprobs"] = self.top_logprobs
        else:
            body["prompt"] = prompt.prompt
            if self.top_logprobs is not None:
                body["logprobs"] = self.top_logprobs
        return body

    async def _request(self, client: Any, sem: asyncio.Semaphore, prompt: Prompt, cfg: SamplerConfig,
                       n: int, seed: int) -> list[Completion]:
        path = "/chat/completions" if self.chat else "/completions"
        async with sem:
            if self.stats.started is None:
                self.stats.started = time.perf_counter()
            data = await self._post(client, path, self._body(prompt, cfg, n, seed))
        choices = sorted(data["choices"], key=lambda c: c.get("index", 0))
        try:
            out = [completion_from_choice(c, data.get("usage"), len(choices), cfg.stop, cfg.reward, self.chat,
                                          self.vocab_size) for c in choices]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ServerError(f"the server at {self.base_url} must return OpenAI-shaped choices, got "
                              f"{exc} in {json.dumps(data)[:200]}.") from None
        self.stats.requests += 1
        self.stats.completions += len(out)
        self.stats.output_tokens += sum(c.output_tokens for c in out)
        self.stats.prompt_tokens += sum(c.prompt_tokens or 0 for c in out[:1])
        if self.on_result:
            self.on_result(self.stats)
        return out

    async def _aprobe(self, client: Any, sem: asyncio.Semaphore, prompt: Prompt, cfg: SamplerConfig) -> list[Completion] | None:
        """With ``n_mode=auto`` and k > 1: one ``n = k`` request; its choice count tells whether ``n`` works."""
        out = await self._request(client, sem, prompt, cfg, cfg.k, prompt_seed(cfg.seed, prompt.id))
        self.supports_n = len(out) == cfg.k
        return out if self.supports_n else None

    async def _agenerate(self, prompts: Sequence[Prompt], cfg: SamplerConfig) -> list[list[Completion]]:
        sem = asyncio.Semaphore(self.concurrency)
        async with self._client() as client:
            if not self._checked:
                await self._acheck(client)
            first: list[Completion] | None = None
            if cfg.k > 1 and self.supports_n is None and prompts:
                first = await self._aprobe(client, sem, prompts[0], cfg)
            if cfg.k == 1 or self.supports_n:
                jobs = [self._request(client, sem, p, cfg, cfg.k, prompt_seed(cfg.seed, p.id))
                        for p in (prompts[1:] if first is not None else prompts)]
                res = await self._gather(jobs)
                groups = ([first] if first is not None else []) + res
            else:
                jobs = [self._request(client, sem, p, cfg, 1, sample_seed(cfg.seed, p.id, j))
                        for p in prompts for j in range(cfg.k)]
                flat = [c[0] for c in await self._gather(jobs)]
                groups = [flat[i * cfg.k:(i + 1) * cfg.k] for i in range(len(prompts))]
        for p, g in zip(prompts, groups):
            if len(g) != cfg.k:
                raise ServerError(f"the server at {self.base_url} must return n={cfg.k} choices for prompt "
                                  f"{p.id!r}, got {len(g)}. Use n_mode='single'.")
        return groups

    async def _gather(self, jobs: list) -> list:
        """Run jobs concurrently; on the first failure cancel the rest and re-raise it."""
        tasks = [asyncio.ensure_future(j) for j in jobs]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    def generate(self, prompts: Sequence[Prompt], cfg: SamplerConfig) -> list[list[Completion]]:
        """``cfg.k`` completions per prompt, in sample order (the Engine protocol)."""
        if not prompts:
            return []
        return asyncio.run(self._agenerate(list(prompts), cfg))

    # -- one sample at a time (ttsplan run) ----------------------------------------------------------
    def sample_many(self, requests: Sequence[tuple[Prompt, int]], cfg: SamplerConfig) -> list[Completion]:
        """One completion per ``(prompt, sample_idx)``, seeded by ``sample_seed(cfg.seed, id, idx)``."""
        async def go() -> list[Completion]:
            async with self.session() as s:
                return list(await self._gather([s.request(p, j, cfg) for p, j in requests]))

        return asyncio.run(go()) if requests else []

    def sample_one(self, prompt: Prompt, sample_idx: int, cfg: SamplerConfig) -> Completion:
        """One completion of ``prompt`` for ``sample_idx`` (see :meth:`sample_many`)."""
        return self.sample_many([(prompt, sample_idx)], cfg)[0]

    def session(self) -> OpenAISession:
        """An async context for streaming single samples (``async with eng.session() as s: await s.request(...)``)."""
        return OpenAISession(self)


class OpenAISession:
    """One shared async client + semaphore; :meth:`request` returns one seeded completion."""

    def __init__(self, engine: OpenAIEngine):
        self.engine = engine
        self._client: Any = None
        self._sem: asyncio.Semaphore | None = None

    async def __aenter__(self) -> OpenAISession:
        self._client = self.engine._client()
        await self._client.__aenter__()
        self._sem = asyncio.Semaphore(self.engine.concurrency)
        if not self.engine._checked:
            try:
                await self.engine._acheck(self._client)
            except BaseException:
                await self._client.__aexit__(None, None, None)
                raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.__aexit__(*exc)

    async def request(self, prompt: Prompt, sample_idx: int, cfg: SamplerConfig) -> Completion:
        out = await self.engine._request(self._client, self._sem, prompt, cfg, 1,
                                         sample_seed(cfg.seed, prompt.id, sample_idx))
        return out[0]


__all__ = [
    "LLAMA_CPP_PLAIN",
    "RETRY_STATUS",
    "EngineStats",
    "OpenAIEngine",
    "OpenAISession",
    "OpenAISettings",
    "ServerError",
    "completion_from_choice",
    "seed31",
    "step_entropy",
]
