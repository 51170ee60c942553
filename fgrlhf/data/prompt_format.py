"""How a QA-Feedback example is shown to the policy.

``t5`` is the prompt file's own ``text`` (the paper's T5 input: ``question: … context:
wikipage: … text: …``). ``causal`` is a layout a decoder-only LM continues naturally: the
question first, then the passages, then ``Answer:``. ``causal_qpq`` repeats the question
after the passages, just before ``Answer:``: a decoder-only LM reads the question again
where it starts writing, rather than several hundred tokens back. With a token budget, the passages keep
the sentences that share most words with the question (in their original order, titles
always kept) until the budget is spent, so a long context is cut where it matters least
rather than at its end.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

PROMPT_FORMATS = ("t5", "causal", "causal_qpq")
CAUSAL_FORMATS = ("causal", "causal_qpq")  # laid out by causal_qa_prompt; capped in the policy's tokens
_WORDS = re.compile(r"\w+")
# Words too common to tell which sentence answers the question.
_STOP = frozenset("a an the of in on at to for and or is was were are be by with from as that this what "
                  "which who whom when where why how did does do it its".split())


def _content_words(text: str) -> set[str]:
    return {w.lower() for w in _WORDS.findall(text)} - _STOP


def causal_qa_prompt(question: str, passages: Sequence[Sequence[str]], count_tokens: Callable[[str], int] | None = None,
                     max_tokens: int | None = None, repeat_question: bool = False) -> str:
    """``Question: …`` / the passages (``[title, sentence, …]`` each) / ``Answer:``; with
    ``repeat_question`` the ``Question: …`` line comes again before ``Answer:``.

    With ``max_tokens`` (measured by ``count_tokens``), sentences are kept by decreasing word
    overlap with the question (ties: earlier first) while the prompt fits."""
    recap = f"\nQuestion: {question.strip()}" if repeat_question else ""

    def render(keep: set[tuple[int, int]] | None) -> str:
        blocks = []
        for p, (title, *sentences) in enumerate(passages):
            kept = [s.strip() for i, s in enumerate(sentences) if keep is None or (p, i) in keep]
            blocks.append(f"{title.strip()}: {' '.join(kept)}".rstrip() if kept else f"{title.strip()}:")
        body = "\n".join(blocks)
        return f"Question: {question.strip()}\nPassages:\n{body}{recap}\nAnswer:"

    full = render(None)
    if max_tokens is None or count_tokens is None or count_tokens(full) <= max_tokens:
        return full
    q = _content_words(question)
    ranked = sorted(((p, i) for p, (_, *sentences) in enumerate(passages) for i in range(len(sentences))),
                    key=lambda pi: (-len(q & _content_words(passages[pi[0]][pi[1] + 1])), pi))
    keep: set[tuple[int, int]] = set()
    for pi in ranked:
        if count_tokens(render(keep | {pi})) <= max_tokens:
            keep.add(pi)
    return render(keep)
