"""Reward-model inputs: question, optional evidence, and the answer with a separator token
before every segment.

Layout (token ids; ``[CLS]``/``[SEP]`` stand for the tokenizer's own specials: a decoder's
``<bos>`` where it has no ``[CLS]``, its ``<eos>`` where it has no ``[SEP]``)::

    [CLS] question: <question> context: <evidence sentences> answer: [SEP] seg_1 [SEP] seg_2 ... [SEP]

A token-classification reward model reads the hidden state at the separator in front of each
segment (over a decoder, which reads left to right, at the separator after it:
``fgrlhf.reward.learned.CausalTokenClassifier``); a sequence reward model reads the whole input.

Truncation never silently drops the answer:
1. the question is cut to ``max_question_tokens``;
2. evidence (passage sentences) only fills the room the answer leaves: sentences are ranked
   by how much of some answer segment's wording they contain (each segment's best evidence
   first, round-robin), taken while they fit, and put back in passage order;
3. if the answer itself does not fit, its segments are spread over several windows, each
   with the question (and its own evidence), so every segment is read and scored;
4. a single segment longer than a whole window is cut at its end; its separator, the token
   that carries its score, is always kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fgrlhf.segment.base import Span
from fgrlhf.segment.words import containment, word_bag


@dataclass
class Window:
    """One encoder input: ``input_ids``, and for each of its segments the separator position
    and the segment's index in the answer."""

    input_ids: list[int]
    sep_positions: list[int]
    segment_ids: list[int]


def rank_evidence(segments: Sequence[str], sentences: Sequence[str]) -> list[int]:
    """Indices of ``sentences``, best evidence first: for each segment, sentences ordered by
    the share of the segment's words they contain; segments take turns (round-robin)."""
    if not sentences:
        return []
    bags = [word_bag(s) for s in sentences]
    per_segment = []
    for seg in segments:
        sb = word_bag(seg)
        scores = [containment(sb, b) for b in bags]
        per_segment.append(sorted(range(len(sentences)), key=lambda i: -scores[i]))
    order, seen = [], set()
    for rank in range(len(sentences)):
        for ranking in per_segment:
            i = ranking[rank]
            if i not in seen:
                seen.add(i)
                order.append(i)
    # Sentences no segment ranked (possible only with no segments) keep passage order.
    order += [i for i in range(len(sentences)) if i not in seen]
    return order


class SeparatorEncoder:
    """Builds ``Window``s for one tokenizer (the reward model's own, not the policy's)."""

    def __init__(self, tokenizer, max_length: int = 512, max_question_tokens: int = 64,
                 sep_token: str | None = None) -> None:
        self.tokenizer = tokenizer
        self.max_length = min(max_length, getattr(tokenizer, "model_max_length", max_length) or max_length)
        self.max_question_tokens = max_question_tokens
        sep = sep_token or tokenizer.sep_token or tokenizer.eos_token
        if sep is None:
            raise ValueError("the reward tokenizer has no separator token; set sep_token")
        self.sep_id = tokenizer.convert_tokens_to_ids(sep)
        self.bos = [tokenizer.cls_token_id] if tokenizer.cls_token_id is not None else adds_bos(tokenizer)
        self.eos = [self.sep_id]
        self._q_prefix = self._ids("question:")
        self._c_prefix = self._ids("context:")
        self._a_prefix = self._ids("answer:")

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _ids_batch(self, texts: Sequence[str]) -> list[list[int]]:
        if not texts:
            return []
        return self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]

    def encode(self, question: str, answer: str, spans: Sequence[Span],
               evidence: Sequence[str] = ()) -> list[Window]:
        """Windows covering every segment of ``answer`` (given as char spans)."""
        q_ids = self._q_prefix + self._ids(question)[: self.max_question_tokens]
        segments = [answer[s:e] for s, e in spans]
        seg_ids = self._ids_batch(segments)
        fixed = len(self.bos) + len(q_ids) + len(self._a_prefix) + len(self.eos)
        room = self.max_length - fixed  # for separators + segments (+ evidence)
        if room < 2:
            raise ValueError(f"max_length {self.max_length} leaves no room for the answer")
        # Cut any single segment that cannot fit a window alone (keeping its separator).
        seg_ids = [ids[: room - 1] for ids in seg_ids]
        windows: list[list[int]] = [[]]  # segment indices per window
        used = 0
        for i, ids in enumerate(seg_ids):
            need = 1 + len(ids)
            if windows[-1] and used + need > room:
                windows.append([])
                used = 0
            windows[-1].append(i)
            used += need
        ev_ids = self._ids_batch(list(evidence)) if evidence else []
        out = []
        for members in windows:
            answer_part: list[int] = []
            seps = []
            prefix_len = len(self.bos) + len(q_ids)
            ctx = self._fit_evidence([segments[i] for i in members], list(evidence), ev_ids,
                                     room - sum(1 + len(seg_ids[i]) for i in members))
            prefix_len += len(ctx) + len(self._a_prefix)
            for i in members:
                seps.append(prefix_len + len(answer_part))
                answer_part += [self.sep_id] + seg_ids[i]
            ids = self.bos + q_ids + ctx + self._a_prefix + answer_part + self.eos
            out.append(Window(ids, seps, list(members)))
        return out

    def encode_each(self, question: str, answer: str, spans: Sequence[Span],
                    evidence: Sequence[Sequence[str]]) -> list[Window]:
        """One window per segment of ``answer``: the question, that segment's own
        ``evidence[i]`` and the segment alone, so each segment is judged against its evidence."""
        if len(evidence) != len(spans):
            raise ValueError(f"{len(spans)} segments but evidence for {len(evidence)}")
        out = []
        for i, (span, ev) in enumerate(zip(spans, evidence)):
            for w in self.encode(question, answer, [span], ev):
                out.append(Window(w.input_ids, w.sep_positions, [i]))
        return out

    def _fit_evidence(self, segments: list[str], evidence: list[str], ev_ids: list[list[int]],
                      room: int) -> list[int]:
        if not evidence or room <= len(self._c_prefix):
            return []
        room -= len(self._c_prefix)
        chosen = []
        for i in rank_evidence(segments, evidence):
            if len(ev_ids[i]) <= room:
                chosen.append(i)
                room -= len(ev_ids[i])
        return self._c_prefix + [t for i in sorted(chosen) for t in ev_ids[i]]

    def encode_sequence(self, question: str, answer: str, evidence: Sequence[str] = ()) -> Window:
        """One input for a sequence-level model: the answer as a single segment (its separator
        marks where the answer starts), never cut unless it alone exceeds the window."""
        return self.encode(question, answer, [(0, len(answer))] if answer.strip() else [], evidence)[0]


def adds_bos(tokenizer) -> list[int]:
    """``[bos]`` if the tokenizer starts its inputs with one (Gemma, Llama: their decoders
    were trained with it and drift without it), else ``[]`` (GPT-2)."""
    bos = tokenizer.bos_token_id
    ids = tokenizer("a")["input_ids"]
    return [bos] if bos is not None and ids and ids[0] == bos else []


def passage_evidence(passages: Sequence[Sequence[str]]) -> list[str]:
    """All passage sentences (titles dropped) of a QA-Feedback question, in order."""
    return [s for psg in passages for s in psg[1:]]
