"""Adaptive runtime: an ask/tell session that keeps sampling a prompt only while it is worth it (DESIGN §8).

State lives in numpy arrays indexed by prompt, so a batch of results costs a handful of vector
operations (:meth:`AdaptiveSession.tell_many`); :meth:`AdaptiveSession.tell` is the one-sample
convenience path taking the answer string. A global budget (samples, optionally tokens) is shared
by all prompts. ``to_json`` / ``from_json`` snapshot the whole state so a crashed run resumes exactly.

Engine loop::

    session = AdaptiveSession("beta", prompt_ids, max_n=40, budget=20_000)
    while (batch := session.ask()):                 # prompt ids that need one more sample
        for pid, out in zip(batch, engine.generate(batch)):
            session.tell(pid, out.answer, reward=out.reward, tokens=out.output_tokens)
        write_atomic("session.json", session.to_json())   # checkpoint
    table = session.result()                        # answer, samples, tokens per prompt

>>> s = AdaptiveSession("beta", ["q1", "q2"], max_n=8)
>>> while batch := s.ask():
...     for pid in batch:      # q1 always says 42; q2 alternates 0, 1, 0, 1, ...
...         _ = s.tell(pid, "42" if pid == "q1" else str(s.n[1] % 2))
>>> s.result().select("prompt_id", "answer", "samples", "stopped").rows()
[('q1', '42', 4, 'rule'), ('q2', '0', 8, 'cap')]
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from ttsplan.features.errors import TtsplanError
from ttsplan.planner.stopping import StoppingRule, fit_beta_prior, make_rule, rule_from_dict

SCHEMA_VERSION = 1
#: stop reasons in ``result()``.
REASONS = ("open", "rule", "cap", "budget")
_SPARSE = ("counts", "weights")


class AdaptiveSession:
    """Ask/tell adaptive sampling over a fixed set of prompts.

    Parameters
    ----------
    rule : a rule name (``beta``, ``esc``, ``weighted``, ``pilot``, ``budget``) or a
        :class:`~ttsplan.planner.stopping.StoppingRule`.
    prompts : prompt ids, or an int n for ids ``"0" … "n-1"``.
    max_n : the most samples any prompt gets (overrides the rule's ``max_n`` when given).
    threshold, min_n : the rule's knob and minimum (``None`` keeps the rule's default).
    budget : total samples shared by all prompts (``None``: unlimited; the ``budget`` rule defaults
        to ``threshold × prompts``).
    token_budget : stop asking once this many output tokens were told.
    caps : optional per-prompt maximum (e.g. the planner's allocated N), ≤ ``max_n``.
    n_codes : distinct answer codes per prompt (default ``max_n``; raise it when codes are numbered
        over more samples than ``max_n``, as ``replay`` does).

    Answer codes for :meth:`tell_many` are per-prompt small integers in ``[0, max_n)`` (e.g. the
    index of the answer's first appearance); ``-1`` means "no answer" (costs a sample, never votes).
    Samples told after a prompt stopped (in-flight when it stopped) are counted and vote.
    """

    def __init__(self, rule: str | StoppingRule = "beta", prompts: Sequence[str] | int = 0, *,
                 max_n: int | None = None, threshold: float | None = None, min_n: int | None = None,
                 budget: int | None = None, token_budget: int | None = None,
                 caps: Sequence[int] | np.ndarray | None = None, n_codes: int | None = None,
                 **rule_extra: Any) -> None:
        if isinstance(rule, StoppingRule):
            change: dict[str, Any] = {}
            if max_n is not None and max_n != rule.max_n:
                change.update(max_n=int(max_n), min_n=min(rule.min_n, int(max_n)))
            if threshold is not None:
                change["threshold"] = threshold
            if min_n is not None:
                change["min_n"] = int(min_n)
            if change:
                rule = dataclasses.replace(rule, **change)
        else:
            rule = make_rule(rule, threshold, min_n=min_n, max_n=40 if max_n is None else max_n, **rule_extra)
        self.rule: StoppingRule = rule
        self.max_n = int(rule.max_n)
        ids = [str(i) for i in range(prompts)] if isinstance(prompts, (int, np.integer)) else [str(p) for p in prompts]
        problems = []
        if not ids:
            problems.append("prompts must list at least one prompt id, got none.")
        if len(set(ids)) != len(ids):
            problems.append("prompts must be unique ids, got duplicates. De-duplicate the prompt list.")
        if rule.name == "budget" and budget is None:
            budget = int(round(float(rule.threshold) * len(ids)))
        for name, value in (("budget", budget), ("token_budget", token_budget)):
            if value is not None and (not isinstance(value, (int, np.integer)) or value < 0):
                problems.append(f"{name} must be a whole number >= 0 or None, got {value!r}.")
        cap = np.full(len(ids), self.max_n, dtype=np.int32)
        if caps is not None:
            c = np.asarray(caps)
            if c.shape != cap.shape or not np.issubdtype(c.dtype, np.integer) or c.min(initial=1) < 1:
                problems.append(f"caps must be {len(ids)} integers >= 1, got shape {c.shape}, dtype {c.dtype}.")
            else:
                cap = np.minimum(cap, c).astype(np.int32)
        if problems:
            raise TtsplanError("AdaptiveSession: " + " ".join(problems))
        self.prompt_ids: list[str] = ids
        self._index = {p: i for i, p in enumerate(ids)}
        self.budget = None if budget is None else int(budget)
        self.token_budget = None if token_budget is None else int(token_budget)
        self.n_codes = self.max_n if n_codes is None else int(n_codes)
        if self.n_codes < 1:
            raise TtsplanError(f"AdaptiveSession: n_codes must be >= 1, got {n_codes!r}.")
        self._init_arrays(len(ids), cap)

    # -- state -------------------------------------------------------------------------------------
    def _init_arrays(self, n_prompts: int, cap: np.ndarray) -> None:
        w = self.n_codes
        self.n = np.zeros(n_prompts, np.int32)
        self.pending = np.zeros(n_prompts, np.int32)
        self.counts = np.zeros((n_prompts, w), np.int32)
        self.top_code = np.full(n_prompts, -1, np.int32)
        self.top = np.zeros(n_prompts, np.int32)
        self.second = np.zeros(n_prompts, np.int32)
        self.tokens = np.zeros(n_prompts, np.int64)
        self.cap = cap
        self.reason = np.zeros(n_prompts, np.int8)  # index into REASONS
        self.last_code = np.full(n_prompts, -2, np.int32)
        self.run_len = np.zeros(n_prompts, np.int32)
        self.pilot_done = np.zeros(n_prompts, bool)
        self.prior: tuple[float, ...] | None = getattr(self.rule, "prior", None)
        if self.rule.uses_weights:
            self.weights = np.zeros((n_prompts, w), np.float64)
            self.wtop_code = np.full(n_prompts, -1, np.int32)
            self.wtop = np.zeros(n_prompts, np.float64)
            self.wsecond = np.zeros(n_prompts, np.float64)
        self.used = 0
        self.tokens_used = 0
        self._answers: dict[int, list[str]] = {}  # per prompt: code -> answer string (string API)
        self._codes: dict[int, dict[str, int]] = {}
        self.stop_table = self.rule.stop_table()

    @property
    def n_prompts(self) -> int:
        return len(self.prompt_ids)

    def _idx(self, prompt_id: str) -> int:
        try:
            return self._index[str(prompt_id)]
        except KeyError:
            raise TtsplanError(f"prompt_id must be one of the session's prompts, got {prompt_id!r}.") from None

    def remaining_budget(self) -> float:
        """Samples left in the global budget, counting samples asked but not yet told."""
        if self.budget is None:
            return float("inf")
        return float(self.budget - self.used - int(self.pending.sum()))

    def _budget_closed(self) -> bool:
        return (self.budget is not None and self.used >= self.budget) or \
               (self.token_budget is not None and self.tokens_used >= self.token_budget)

    # -- ask ---------------------------------------------------------------------------------------
    def open_mask(self) -> np.ndarray:
        """Prompts the rule has not stopped and that are below their cap."""
        return (self.reason == 0) & (self.n < self.cap)

    def ask_idx(self) -> np.ndarray:
        """Indices of prompts that need one more sample (each at most once, none with a pending sample).

        When the remaining budget cannot cover them all, the rule's priority decides (the budget
        rule serves the least certain prompts first; others keep index order). Asked prompts are
        marked pending until told.
        """
        if self._budget_closed():
            return np.zeros(0, np.int64)
        idx = np.flatnonzero(self.open_mask() & (self.pending == 0))
        room = self.remaining_budget()
        if idx.size > room:
            room = max(int(room), 0)
            pri = self.rule.priority(self, idx)
            idx = idx[np.argsort(pri, kind="stable")[:room]] if pri is not None else idx[:room]
            idx.sort()
        self.pending[idx] += 1
        return idx

    def cancel_pending(self, prompt_ids: Sequence[str] | None = None) -> None:
        """Forget asked-but-untold samples (e.g. requests lost in a crash), so ``ask`` re-issues them."""
        if prompt_ids is None:
            self.pending[:] = 0
        else:
            self.pending[[self._idx(p) for p in prompt_ids]] = 0

    def ask(self) -> list[str]:
        """Prompt ids that need one more sample (see :meth:`ask_idx`)."""
        return [self.prompt_ids[i] for i in self.ask_idx()]

    # -- tell --------------------------------------------------------------------------------------
    def tell(self, prompt_id: str, answer: str | None, reward: float | None = None,
             tokens: int | None = None) -> bool:
        """Record one sample of ``prompt_id``; returns :meth:`should_stop` after it."""
        i = self._idx(prompt_id)
        if answer is None:
            code = -1
        else:
            codes = self._codes.setdefault(i, {})
            code = codes.get(answer)
            if code is None:
                code = len(codes)
                if code >= self.n_codes:
                    raise TtsplanError(f"prompt {prompt_id!r} must have at most n_codes={self.n_codes} "
                                       "distinct answers, got more.")
                codes[answer] = code
                self._answers.setdefault(i, []).append(answer)
        if reward is not None and not (0.0 <= float(reward) <= 1.0 or np.isnan(float(reward))):
            raise TtsplanError(f"reward must be in [0, 1] (or NaN), got {reward!r}. Rescale rewards to [0, 1].")
        if tokens is not None and int(tokens) < 0:
            raise TtsplanError(f"tokens must be >= 0, got {tokens!r}.")
        self._tell_unique(np.array([i]), np.array([code]),
                          None if reward is None else np.array([reward], float),
                          None if tokens is None else np.array([tokens], np.int64))
        return self.should_stop(prompt_id)

    def tell_many(self, idx: np.ndarray, codes: np.ndarray, rewards: np.ndarray | None = None,
                  tokens: np.ndarray | None = None) -> None:
        """Record one sample for each ``idx[j]`` with answer code ``codes[j]`` (vectorized).

        ``idx`` may repeat a prompt (processed in order). ``rewards`` in [0, 1] weight the votes of the
        ``weighted`` rule (NaN = 1); ``tokens`` are output tokens charged to the token budget.
        """
        idx = np.asarray(idx, dtype=np.int64)
        codes = np.asarray(codes, dtype=np.int64)
        m = idx.size
        if m == 0:
            return
        if codes.shape != idx.shape or idx.ndim != 1:
            raise TtsplanError(f"codes must have the shape of idx {idx.shape}, got {codes.shape}.")
        if idx.min() < 0 or idx.max() >= self.n_prompts:
            raise TtsplanError(f"idx must be prompt indices in [0, {self.n_prompts}), got values outside.")
        if codes.min() < -1 or codes.max() >= self.n_codes:
            raise TtsplanError(f"codes must be answer codes in [-1, {self.n_codes}), got values outside. "
                               "Number each prompt's distinct answers 0, 1, 2, … (-1 = no answer).")
        if rewards is not None:
            rewards = np.asarray(rewards, dtype=np.float64)
            if rewards.shape != idx.shape or np.any((rewards < 0) | (rewards > 1)):
                raise TtsplanError("rewards must be one value in [0, 1] (or NaN) per sample, got values "
                                   "outside or a wrong length. Rescale rewards to [0, 1].")
        if tokens is not None:
            tokens = np.asarray(tokens, dtype=np.int64)
            if tokens.shape != idx.shape or tokens.min() < 0:
                raise TtsplanError("tokens must be one count >= 0 per sample, got a wrong length or negatives.")
        if m > 1:
            seen = np.bincount(idx, minlength=self.n_prompts) if m * 8 > self.n_prompts else None
            dup = seen.max() > 1 if seen is not None else np.unique(idx).size < m
            if dup:  # process repeats of a prompt in order, one pass per occurrence rank
                order = np.argsort(idx, kind="stable")
                s = idx[order]
                start = np.r_[0, np.flatnonzero(np.diff(s)) + 1]
                rank = np.arange(m) - np.repeat(start, np.diff(np.r_[start, m]))
                ranks = np.empty(m, np.int64)
                ranks[order] = rank
                for r in range(int(rank.max()) + 1):
                    sel = ranks == r
                    self._tell_unique(idx[sel], codes[sel], None if rewards is None else rewards[sel],
                                      None if tokens is None else tokens[sel])
                return
        self._tell_unique(idx, codes, rewards, tokens)

    def _tell_unique(self, idx: np.ndarray, codes: np.ndarray, rewards: np.ndarray | None,
                     tokens: np.ndarray | None) -> None:
        if np.any(self.n[idx] >= self.max_n):
            bad = [self.prompt_ids[i] for i in idx[self.n[idx] >= self.max_n][:3]]
            raise TtsplanError(f"prompts must get at most max_n={self.max_n} samples, got more for {bad}.")
        self.n[idx] += 1
        self.used += idx.size
        p = self.pending[idx]
        self.pending[idx] = np.where(p > 0, p - 1, 0)
        if tokens is not None:
            self.tokens[idx] += tokens
            self.tokens_used += int(tokens.sum())
        valid = codes >= 0
        if valid.all():
            iv, cv = idx, codes
        else:
            iv, cv = idx[valid], codes[valid]
        v = self.counts[iv, cv] + 1
        self.counts[iv, cv] = v
        tc = self.top_code[iv]
        t = self.top[iv]
        is_top = tc == cv
        new_top = ~is_top & (v > t)
        self.second[iv] = np.where(new_top, t, np.where(is_top, self.second[iv], np.maximum(self.second[iv], v)))
        self.top[iv] = np.where(is_top | new_top, v, t)
        self.top_code[iv] = np.where(new_top, cv, tc)
        rule = self.rule
        if rule.uses_runs:
            same = (codes == self.last_code[idx]) & valid
            self.run_len[idx] = np.where(same, self.run_len[idx] + 1, valid.astype(np.int32))
            self.last_code[idx] = np.where(valid, codes, -2)
        if rule.uses_weights:
            wv = np.ones(iv.size) if rewards is None else np.nan_to_num(rewards[valid], nan=1.0)
            wn = self.weights[iv, cv] + wv
            self.weights[iv, cv] = wn
            wtc = self.wtop_code[iv]
            wt = self.wtop[iv]
            wis = wtc == cv
            wnew = ~wis & (wn > wt)
            self.wsecond[iv] = np.where(wnew, wt, np.where(wis, self.wsecond[iv], np.maximum(self.wsecond[iv], wn)))
            self.wtop[iv] = np.where(wis | wnew, wn, wt)
            self.wtop_code[iv] = np.where(wnew, cv, wtc)
        if rule.uses_pilot:
            self._pilot_caps(idx)
        open_ = self.reason[idx] == 0
        n = self.n[idx]
        stop = open_ & (n >= rule.min_n) & rule.stop_mask(self, idx)
        capped = open_ & ~stop & (n >= self.cap[idx])
        if stop.any() or capped.any():
            self.reason[idx] = np.where(stop, 1, np.where(capped, 2, self.reason[idx]))

    def _pilot_caps(self, idx: np.ndarray) -> None:
        due = idx[(self.n[idx] >= self.rule.min_n) & ~self.pilot_done[idx]]
        if due.size == 0:
            return
        k = self.n[due].astype(float)
        agree = self.top[due].astype(float)
        if self.prior is None:  # (alpha, beta, rho), fitted once on the first batch of finished pilots
            a, b = fit_beta_prior(agree, k) if due.size >= 10 else (1.0, 1.0)
            rest = float((k - agree).sum())
            rho = float(np.clip(self.second[due].sum() / rest, 0.05, 1.0)) if rest > 0 else 0.5
            self.prior = (a, b, rho)
        q = self.rule.estimate(due, agree, k, self.prior)
        rho = self.prior[2] if len(self.prior) > 2 else 0.5
        self.cap[due] = np.minimum(self.cap[due], self.rule.caps(q, rho))
        self.pilot_done[due] = True

    # -- queries -----------------------------------------------------------------------------------
    def should_stop(self, prompt_id: str) -> bool:
        """True when the prompt needs no more samples (rule, cap, max_n or exhausted budget)."""
        i = self._idx(prompt_id)
        return bool(self.reason[i] != 0 or self.n[i] >= self.cap[i] or self._budget_closed()
                    or (self.remaining_budget() <= 0 and self.pending[i] == 0))

    def stopped_idx(self) -> np.ndarray:
        """Boolean mask: prompts that need no more samples."""
        closed = self._budget_closed() or self.remaining_budget() <= 0
        return (self.reason != 0) | (self.n >= self.cap) | (closed & (self.pending == 0))

    def chosen_codes(self) -> np.ndarray:
        """Per-prompt chosen answer code (weighted vote for the weighted rule; -1 when none)."""
        return self.wtop_code.copy() if self.rule.uses_weights else self.top_code.copy()

    def confidence(self) -> np.ndarray:
        return self.rule.confidence(self, np.arange(self.n_prompts))

    def result(self) -> pl.DataFrame:
        """One row per prompt: ``prompt_id, answer, answer_code, samples, output_tokens, confidence, stopped``."""
        codes = self.chosen_codes()
        answers = [self._answers[i][c] if c >= 0 and i in self._answers and c < len(self._answers[i]) else None
                   for i, c in enumerate(codes.tolist())]
        reason = self.reason.copy()
        reason[(reason == 0) & (self.n >= self.cap)] = 2
        reason[(reason == 0) & self.stopped_idx()] = 3
        return pl.DataFrame({
            "prompt_id": self.prompt_ids,
            "answer": pl.Series(answers, dtype=pl.String),
            "answer_code": codes,
            "samples": self.n.astype(np.int64),
            "output_tokens": self.tokens,
            "confidence": self.confidence(),
            "stopped": [REASONS[r] for r in reason.tolist()],
        })

    def summary(self) -> pl.DataFrame:
        """Totals: prompts, samples used, mean samples, tokens, budget left, open prompts."""
        return pl.DataFrame({
            "rule": [self.rule.name], "threshold": [float(self.rule.threshold)], "prompts": [self.n_prompts],
            "samples": [int(self.used)], "mean_samples": [float(self.n.mean())],
            "output_tokens": [int(self.tokens_used)],
            "budget_left": [None if self.budget is None else int(self.budget - self.used)],
            "open_prompts": [int((~self.stopped_idx()).sum())],
        })

    # -- persistence -------------------------------------------------------------------------------
    _ARRAYS = ("n", "pending", "top_code", "top", "second", "tokens", "cap", "reason", "last_code",
               "run_len", "pilot_done")
    _WARRAYS = ("wtop_code", "wtop", "wsecond")

    def to_dict(self) -> dict:
        """Everything needed to resume exactly (JSON-safe; vote matrices stored sparse)."""
        arrays = {k: getattr(self, k).tolist() for k in self._ARRAYS}
        if self.rule.uses_weights:
            arrays.update({k: getattr(self, k).tolist() for k in self._WARRAYS})
        sparse = {}
        for k in _SPARSE:
            if hasattr(self, k):
                mat = getattr(self, k)
                r, c = np.nonzero(mat)
                sparse[k] = {"rows": r.tolist(), "cols": c.tolist(), "values": mat[r, c].tolist()}
        return {
            "schema_version": SCHEMA_VERSION, "rule": self.rule.to_dict(), "prompt_ids": self.prompt_ids,
            "budget": self.budget, "token_budget": self.token_budget, "n_codes": self.n_codes,
            "used": int(self.used),
            "tokens_used": int(self.tokens_used), "prior": None if self.prior is None else list(self.prior),
            "arrays": arrays, "sparse": sparse,
            "answers": {str(i): a for i, a in sorted(self._answers.items())},
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict) -> AdaptiveSession:
        """Rebuild a session saved by :meth:`to_dict` (a custom ``success`` callable is not saved)."""
        if not isinstance(d, dict) or d.get("schema_version") != SCHEMA_VERSION:
            got = d.get("schema_version") if isinstance(d, dict) else type(d).__name__
            raise TtsplanError(f"session state must have schema_version {SCHEMA_VERSION}, got {got!r}. "
                               "Was it written by AdaptiveSession.to_json?")
        s = cls(rule_from_dict(d["rule"]), d["prompt_ids"], budget=d["budget"], token_budget=d["token_budget"],
                n_codes=d["n_codes"])
        for k, v in d["arrays"].items():
            cur = getattr(s, k)
            setattr(s, k, np.asarray(v, dtype=cur.dtype).reshape(cur.shape))
        for k, sp in d["sparse"].items():
            mat = getattr(s, k)
            mat[np.asarray(sp["rows"], np.int64), np.asarray(sp["cols"], np.int64)] = np.asarray(sp["values"], mat.dtype)
        s.used, s.tokens_used = int(d["used"]), int(d["tokens_used"])
        s.prior = None if d["prior"] is None else tuple(d["prior"])
        s._answers = {int(i): list(a) for i, a in d["answers"].items()}
        s._codes = {i: {a: c for c, a in enumerate(lst)} for i, lst in s._answers.items()}
        return s

    @classmethod
    def from_json(cls, text: str) -> AdaptiveSession:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TtsplanError(f"session state must be JSON, got a parse error ({exc}).") from None
        return cls.from_dict(d)

    # -- resume from recorded samples ----------------------------------------------------------------
    def restore(self, rows: pl.DataFrame | Iterable[Mapping[str, Any]]) -> AdaptiveSession:
        """Tell already-recorded samples, in order: rebuild the state a run had reached (resume).

        ``rows`` (a SampleTable or mappings) carry ``prompt_id``, ``sample_idx``, ``answer`` (``None``: no
        answer) or, without an ``answer``, ``answer_code`` (``-1``: no answer), and optionally
        ``reward`` (in [0, 1]: the weighted rule's vote weight) and ``output_tokens`` (or ``tokens``).
        Each row's ``sample_idx`` must be its prompt's next sample (the samples told so far, then the
        rows before it), so a new session restored from every row equals the session that was told
        them, and a session from :meth:`from_dict` takes the rows recorded after its snapshot. A row
        resolves a pending sample of its prompt; :meth:`cancel_pending` forgets the rest. The order and
        the prompts are checked before any row is told (on an error the session is unchanged).

        >>> s = AdaptiveSession("beta", ["a", "b"], max_n=4).restore(
        ...     [{"prompt_id": "a", "sample_idx": 0, "answer": "4"}, {"prompt_id": "a", "sample_idx": 1, "answer": "4"}])
        >>> s.n.tolist(), s.result()["answer"].to_list()
        ([2, 0], ['4', None])
        """
        records = list(rows.iter_rows(named=True)) if isinstance(rows, pl.DataFrame) else [dict(r) for r in rows]
        problems: list[str] = []
        after: dict[int, int] = {}  # prompt index -> samples once the rows so far are told
        for r in records:
            i = self._index.get(str(r.get("prompt_id")))
            if i is None:
                problems.append(f"prompt {r.get('prompt_id')!r}, which is not one of the session's prompts")
                continue
            j = after.get(i, int(self.n[i]))
            got = r.get("sample_idx")
            if got is not None and int(got) != j:
                problems.append(f"sample {got} of {r['prompt_id']!r} where sample {j} was expected")
            elif j >= self.max_n:
                problems.append(f"sample {j} of {r['prompt_id']!r}, beyond max_n={self.max_n}")
            after[i] = j + 1
        if problems:
            more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
            raise TtsplanError(f"rows must continue each prompt's samples in order, got {'; '.join(problems[:3])}"
                               f"{more}. Restore the rows of one run, in the order they were recorded.")
        for r in records:
            tokens = r.get("output_tokens", r.get("tokens"))
            if "answer" in r or "answer_code" not in r:
                self.tell(r["prompt_id"], r.get("answer"), reward=r.get("reward"), tokens=tokens)
            else:
                reward = r.get("reward")
                self.tell_many(np.array([self._idx(r["prompt_id"])]), np.array([int(r["answer_code"])]),
                               None if reward is None else np.array([reward], float),
                               None if tokens is None else np.array([tokens], np.int64))
        return self


__all__ = ["AdaptiveSession", "REASONS", "SCHEMA_VERSION"]
