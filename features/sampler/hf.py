"""The ``hf`` engine: transformers on CPU or CUDA, batched, seeded, with exact per-token statistics.

Each batch prefills its prompts once (left-padded, last-position logits only), repeats the KV cache
``k`` times, then decodes all ``prompts × k`` rows together, dropping finished rows from the batch.
At every step the full next-token distribution gives the exact entropy, the sampled token's
log-probability and the self-certainty term (raw, temperature-1 distribution); the token is drawn
from the temperature / top-p distribution by inverse-CDF sampling with one uniform per
(prompt, sample, step) from a counter-based generator seeded by ``(seed, prompt_id, sample_idx)``,
so a sample does not depend on which other prompts share its batch.

torch and transformers are imported lazily.

Example (loads the default model, ≈3 s after the first conversion)::

    eng = HFEngine("gemma3-270m")
    [[c]] = eng.generate([Prompt("p", "Q: What is 2 + 2?\\nA:", "4")], SamplerConfig(k=1))
"""
from __future__ import annotations

import math
import platform
from collections.abc import Sequence
from typing import Any

import numpy as np

from ttsplan.features.sampler.base import BatchEngine, Completion, SamplerConfig, sample_seed
from ttsplan.features.sampler.models import DEFAULT_MODEL, load_hf, model_revision
from ttsplan.features.tasks import Prompt


class HFEngine(BatchEngine):
    """Batched sampling with a transformers causal LM (default: Gemma 3 270M on CPU).

    Per-request calls (:meth:`sample_many`, used by ``ttsplan run``) draw sample ``j`` of prompt ``p`` as
    the single sample of the id ``"p#j"`` (:class:`~ttsplan.features.sampler.base.BatchEngine`).
    """

    name = "hf"

    def __init__(self, model: str = DEFAULT_MODEL, device: str = "cpu", dtype: str = "float32",
                 model_obj: Any = None, tokenizer: Any = None, threads: int | None = None):
        self.model_name = model
        self.device = device
        self.dtype = dtype
        self.threads = threads
        self._model = model_obj
        self._tok = tokenizer
        self._stop_cache: dict[tuple[str, ...], Any] = {}
        self.tokens_generated = 0

    # -- loading -----------------------------------------------------------------------------
    def _load(self) -> None:
        if self._model is None or self._tok is None:
            self._model, self._tok = load_hf(self.model_name, self.device, self.dtype)
        if self._tok.pad_token is None:  # e.g. GPT-2 / Llama tokenizers: pad with EOS (masked anyway)
            self._tok.pad_token = self._tok.eos_token
        if self.threads:
            import torch

            torch.set_num_threads(self.threads)

    @property
    def tokenizer(self) -> Any:
        self._load()
        return self._tok

    @property
    def model(self) -> Any:
        self._load()
        return self._model

    def provenance(self) -> dict:
        import torch
        import transformers

        return {"engine": self.name, "model": self.model_name, "revision": model_revision(self.model_name),
                "device": self.device, "dtype": self.dtype, "torch": torch.__version__,
                "transformers": transformers.__version__, "python": platform.python_version()}

    def _stop_mask(self, stop: tuple[str, ...]) -> Any:
        """Bool tensor over the vocabulary: tokens that end a completion (EOS or containing a stop string)."""
        import torch

        if stop not in self._stop_cache:
            tok = self.tokenizer
            vocab = self.model.get_output_embeddings().weight.shape[0]
            mask = torch.zeros(vocab, dtype=torch.bool)
            if stop:
                pieces = tok.batch_decode([[i] for i in range(min(vocab, len(tok)))])
                for i, piece in enumerate(pieces):
                    if any(s in piece for s in stop):
                        mask[i] = True
            eos = self.model.generation_config.eos_token_id if self.model.generation_config else None
            for e in ([eos] if isinstance(eos, int) else list(eos or [])) + [tok.eos_token_id]:
                if e is not None and e < vocab:
                    mask[e] = True
            self._stop_cache[stop] = mask.to(self.device)
        return self._stop_cache[stop]

    # -- generation ----------------------------------------------------------------------------
    def generate(self, prompts: Sequence[Prompt], cfg: SamplerConfig) -> list[list[Completion]]:
        import torch

        model, tok = self.model, self.tokenizer
        stop_mask = self._stop_mask(tuple(cfg.stop))
        k, n_new = cfg.k, cfg.max_new_tokens
        enc = tok([p.prompt for p in prompts], return_tensors="pt", padding=True, padding_side="left")
        ids = enc["input_ids"].to(self.device)
        mask = enc["attention_mask"].to(self.device)
        prompt_tokens = mask.sum(-1).tolist()
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        rows = len(prompts) * k
        # one uniform per (row, step) from a per-(prompt, sample) counter-based stream
        uniforms = np.stack([
            np.random.Generator(np.random.Philox(sample_seed(cfg.seed, p.id, j))).random(n_new)
            for p in prompts for j in range(k)])
        uniforms_t = torch.from_numpy(uniforms).to(self.device)  # (rows, steps) float64
        out_ids: list[list[int]] = [[] for _ in range(rows)]
        out_lp: list[list[float]] = [[] for _ in range(rows)]
        out_ent: list[list[float]] = [[] for _ in range(rows)]
        out_sc: list[list[float]] = [[] for _ in range(rows)]
        finish: list[str] = ["length"] * rows
        with torch.inference_mode():
            out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, logits_to_keep=1)
            cache = out.past_key_values
            # step 0: the k rows of a prompt share one distribution; compute it once per prompt
            logits = out.logits[:, -1, :]
            u = uniforms_t[:, 0].view(len(prompts), k)
            cache.batch_repeat_interleave(k)
            mask = mask.repeat_interleave(k, dim=0)
            last_pos = pos[:, -1].repeat_interleave(k)
            alive = torch.arange(rows, device=self.device)
            for step in range(n_new):
                token, lp, ent, self_cert = self._step(logits, cfg, u)
                token, lp = token.reshape(-1), lp.reshape(-1)
                if step == 0:
                    ent, self_cert = ent.repeat_interleave(k), self_cert.repeat_interleave(k)
                done = stop_mask[token]
                for r, t, a, b, c, d in zip(alive.tolist(), token.tolist(), lp.tolist(), ent.tolist(),
                                            self_cert.tolist(), done.tolist()):
                    out_ids[r].append(t)
                    out_lp[r].append(a)
                    out_ent[r].append(b)
                    out_sc[r].append(c)
                    if d:
                        finish[r] = "stop"
                self.tokens_generated += int(token.numel())
                keep = (~done).nonzero()[:, 0]
                if step == n_new - 1 or keep.numel() == 0:
                    break
                if keep.numel() < alive.numel():
                    cache.batch_select_indices(keep)
                    alive, mask, last_pos, token = alive[keep], mask[keep], last_pos[keep], token[keep]
                mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=-1)
                last_pos = last_pos + 1
                out = model(input_ids=token[:, None], attention_mask=mask, position_ids=last_pos[:, None],
                            past_key_values=cache, use_cache=True)
                cache = out.past_key_values
                logits = out.logits[:, -1, :]
                u = uniforms_t[alive, step + 1][:, None]
        results: list[list[Completion]] = []
        for i in range(len(prompts)):
            group = []
            for j in range(k):
                r = i * k + j
                text = tok.decode(out_ids[r], skip_special_tokens=True)
                for s in cfg.stop:
                    text = text.split(s, 1)[0]
                n = len(out_ids[r])
                mean_lp = sum(out_lp[r]) / n
                reward = sum(out_sc[r]) / n if cfg.reward == "self_certainty" else mean_lp
                group.append(Completion(text=text, output_tokens=n, prompt_tokens=int(prompt_tokens[i]),
                                        logprob=float(sum(out_lp[r])), entropy=float(sum(out_ent[r]) / n),
                                        reward=float(reward), finish_reason=finish[r], token_ids=out_ids[r],
                                        token_logprobs=out_lp[r], token_entropies=out_ent[r]))
            results.append(group)
        return results

    @staticmethod
    def _step(logits: Any, cfg: SamplerConfig, u: Any) -> tuple[Any, Any, Any, Any]:
        """One decoding step for ``n`` distributions and ``m`` draws each (``u``: (n, m) uniforms).

        Returns tokens (n, m), their raw log-probabilities (n, m), and per distribution the exact
        entropy and self-certainty (n,), all from the raw (temperature-1) softmax of ``logits``.
        Tokens are drawn from softmax(logits / T) restricted to the top-p nucleus by inverse CDF
        (cumulative sums in float64); T = 0 is greedy.
        """
        import torch

        x = logits.float()
        z = x - x.max(dim=-1, keepdim=True).values
        e = z.exp()
        big_z = e.sum(-1, dtype=torch.float64)
        log_z = big_z.log()
        ent = log_z - (e * z).sum(-1, dtype=torch.float64) / big_z
        self_cert = log_z - z.sum(-1, dtype=torch.float64) / z.shape[-1] - math.log(z.shape[-1])  # KL(uniform || p)
        if cfg.temperature == 0:
            token = z.argmax(-1, keepdim=True).expand(-1, u.shape[1])
        else:
            q = e if cfg.temperature == 1 else (z / cfg.temperature).exp()
            if cfg.top_p < 1.0:
                sq, order = q.sort(dim=-1, descending=True)
                ps = sq.double() / sq.sum(-1, keepdim=True, dtype=torch.float64)
                before = ps.cumsum(-1) - ps  # mass of strictly more likely tokens
                cdf = torch.where(before < cfg.top_p, ps, torch.zeros_like(ps)).cumsum(-1)
                idx = torch.searchsorted(cdf, u * cdf[:, -1:], right=True).clamp(max=q.shape[-1] - 1)
                token = order.gather(-1, idx)
            else:
                cdf = q.cumsum(-1, dtype=torch.float64)
                token = torch.searchsorted(cdf, u * cdf[:, -1:], right=True).clamp(max=q.shape[-1] - 1)
        lp = z.gather(-1, token).double() - log_z[:, None]
        return token, lp, ent, self_cert


__all__ = ["HFEngine"]
