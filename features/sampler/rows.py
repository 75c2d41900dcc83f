"""One SampleTable row from one completion: answer extraction, grading and the row's columns.

Both ``ttsplan sample`` (:class:`~ttsplan.features.sampler.runner.ValidationSampler`) and ``ttsplan run``
(:mod:`ttsplan.planner.run`) build their rows here, so the two write the same table for the same
completion.

>>> from ttsplan.features.sampler.base import Completion
>>> row = sample_row(Prompt("p", "Q: 2 + 2?\\nA:", "4", "toy", kind="short"), 3,
...                  Completion(text=" 4", output_tokens=2), config="c", model="m")
>>> row["prompt_id"], row["sample_idx"], row["answer"], row["correct"], row["text"]
('p', 3, '4', True, ' 4')
"""
from __future__ import annotations

from collections.abc import Callable

from ttsplan.features.grading import extract_answer, grade
from ttsplan.features.sampler.base import Completion
from ttsplan.features.tasks import Prompt

#: ``grader(predicted, gold) -> correct`` (``None``: cannot tell).
Grader = Callable[[str | None, str | None], bool | None]


def sample_row(prompt: Prompt, sample_idx: int, completion: Completion, *, config: str, model: str,
               keep_text: bool = True, grader: Grader = grade) -> dict:
    """The SampleTable row of ``completion``, sample ``sample_idx`` of ``prompt``.

    The answer is extracted by the prompt's ``kind`` and graded against its gold answer (``correct``
    is ``None`` when the prompt has none); ``text`` is dropped unless ``keep_text``.
    """
    c = completion
    answer = extract_answer(c.text, prompt.kind)
    return {"config": config, "model": model, "dataset": prompt.dataset, "prompt_id": prompt.id,
            "sample_idx": sample_idx, "answer": answer,
            "correct": grader(answer, prompt.answer) if prompt.answer is not None else None,
            "output_tokens": c.output_tokens, "prompt_tokens": c.prompt_tokens, "logprob": c.logprob,
            "entropy": c.entropy, "reward": c.reward, "finish_reason": c.finish_reason,
            "text": c.text if keep_text else None}


__all__ = ["Grader", "sample_row"]
