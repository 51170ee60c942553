"""Training examples for the paper's reward models, built from QA-Feedback annotations.

- R1 relevance, sub-sentence level: a piece is an error if it overlaps an ``Irrelevant``,
  ``Redundant`` or ``Incoherent`` span of at least ``min_error_words`` words (shorter
  relevance spans are dropped, as in the paper's Appendix D). Input: question + answer.
- R2 factuality, sentence level: a sentence is an error if it overlaps a
  ``Wrong-Grounding`` or ``Unverifiable`` span. A sentence whose only errors are of the
  relevance family is left out (annotators did not judge facts in irrelevant text).
  Input: question + passages + answer.
- R3 completeness, sequence level, pairwise: the 4 predictions of a question ranked by
  information coverage (``coverage`` below); ties give no pair.
- Holistic preference, sequence level, pairwise: the 6 human judgements, ties skipped.

Only ``prediction 1`` carries fine-grained feedback. R1/R2 can also learn from two answers
whose labels are known without annotation (``no_error_examples``; training only, never
evaluated): the human-corrected answer (its segments carry no error by construction; those
already in prediction 1 verbatim are read but not labelled again) and the gold answer (no
relevance error; for factuality only its sentences grounded in the passages, since ASQA's
gold answers also draw on Wikipedia text outside them).
Segments are computed on the original prediction text, where the annotation offsets live.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from fgrlhf.data.qa_feedback import FeedbackExample, judged_pairs
from fgrlhf.segment import Granularity, MultiGranularitySegmenter, Span
from fgrlhf.segment.words import containment, word_bag

IGNORE = -100  # label of a segment left out of training and evaluation
ERROR, NO_ERROR = 1, 0
PREDICTION, CORRECTED, GOLD = "prediction 1", "corrected", "gold"  # where an answer comes from
EXTRA_ANSWERS = (CORRECTED, GOLD)


@dataclass
class SegmentLabelExample:
    """One answer with a label per segment (R1, R2)."""

    qid: int
    question: str
    passages: list[list[str]]
    answer: str
    spans: list[Span]
    labels: list[int]  # ERROR, NO_ERROR or IGNORE, one per span
    source: str = PREDICTION  # PREDICTION, CORRECTED or GOLD
    # Per span, indices into ``passage_evidence(passages)`` of the sentences its annotation
    # names as evidence (Wrong-Grounding explanations); empty when none are named.
    evidence_ids: list[list[int]] = field(default_factory=list)


@dataclass
class RankingExample:
    """Several answers to one question and which of them beat which (R3, preference)."""

    qid: int
    question: str
    passages: list[list[str]]
    answers: list[str]
    pairs: list[tuple[int, int]]  # (better, worse), indices into answers
    scores: list[float] = field(default_factory=list)  # R3: the coverage of each answer
    weights: list[float] = field(default_factory=list)  # per pair, in the loss (empty: all 1)
    margins: list[float] = field(default_factory=list)  # per pair, required score gap (empty: all 0)


def _overlaps(span: Span, others: Sequence[tuple[int, int]]) -> bool:
    s, e = span
    return any(a < e and s < b for a, b in others)


def _segment_label_examples(data: Sequence[FeedbackExample], segmenter: MultiGranularitySegmenter,
                            granularity: Granularity,
                            labels_of: Callable[[FeedbackExample, str, list[Span]], list[int]]
                            ) -> list[SegmentLabelExample]:
    """Prediction 1 of every example, segmented at ``granularity`` and labelled segment by
    segment by ``labels_of(example, text, spans)``. An answer without segments, or whose
    segments are all ``IGNORE``, gives no example."""
    texts = [ex.predictions[0] for ex in data]
    segmented = segmenter(texts, [granularity])[granularity]
    out = []
    for ex, text, spans in zip(data, texts, segmented):
        if not spans:
            continue
        labels = labels_of(ex, text, spans)
        if any(lab != IGNORE for lab in labels):
            out.append(SegmentLabelExample(ex.index, ex.question, ex.passages, text, spans, labels))
    return out


def relevance_examples(data: Sequence[FeedbackExample], segmenter: MultiGranularitySegmenter,
                       min_error_words: int = 5) -> list[SegmentLabelExample]:
    def labels(ex: FeedbackExample, text: str, spans: list[Span]) -> list[int]:
        errors = _relevance_spans(ex, text, min_error_words)
        return [ERROR if _overlaps(sp, errors) else NO_ERROR for sp in spans]

    return _segment_label_examples(data, segmenter, Granularity.SUBSENTENCE, labels)


def factuality_examples(data: Sequence[FeedbackExample], segmenter: MultiGranularitySegmenter,
                        min_error_words: int = 5) -> list[SegmentLabelExample]:
    """R2 labels, and for each sentence the passage sentences that the explanations of the
    ``Wrong-Grounding`` spans it overlaps name as evidence."""
    def labels(ex: FeedbackExample, text: str, spans: list[Span]) -> list[int]:
        fact = [(e.start, e.end) for e in ex.feedback.errors if e.family == "factuality"]
        rel = _relevance_spans(ex, text, min_error_words)
        return [ERROR if _overlaps(sp, fact) else IGNORE if _overlaps(sp, rel) else NO_ERROR for sp in spans]

    out = _segment_label_examples(data, segmenter, Granularity.SENTENCE, labels)
    by_index = {ex.index: ex for ex in data}
    for r in out:
        ex = by_index[r.qid]
        flat = {sid: i for i, sid in enumerate(passage_sentences(ex.passages))}
        r.evidence_ids = [sorted({flat[g] for e in ex.feedback.errors if e.error_type == "Wrong-Grounding"
                                  and _overlaps(sp, [(e.start, e.end)])
                                  for g in grounding_evidence(e.explanation) if g in flat}) for sp in r.spans]
    return out


def no_error_examples(data: Sequence[FeedbackExample], segmenter: MultiGranularitySegmenter, category: str,
                      answers: Sequence[str], gold_grounding: float = 0.8) -> list[SegmentLabelExample]:
    """Training examples whose labels need no annotation, for R1 (``category="relevance"``,
    sub-sentences) or R2 (``"factuality"``, sentences); ``answers`` names which of
    ``EXTRA_ANSWERS`` to use.

    - ``corrected``: the human-corrected answer; every segment ``NO_ERROR``, except segments
      that occur verbatim among prediction 1's segments (already labelled there): ``IGNORE``.
    - ``gold``: the human-written gold answer. Relevance: every segment ``NO_ERROR``.
      Factuality: a sentence is ``NO_ERROR`` if at least ``gold_grounding`` of its words
      (lower-cased multiset) occur in the question's passages, else ``IGNORE`` (it may rest
      on text the passages do not hold, which R2 would have to call unverifiable).
    """
    unknown = [a for a in answers if a not in EXTRA_ANSWERS]
    if unknown:
        raise ValueError(f"extra answer {unknown[0]!r}: one of {', '.join(EXTRA_ANSWERS)}")
    granularity = {"relevance": Granularity.SUBSENTENCE, "factuality": Granularity.SENTENCE}[category]
    out = []
    for source in answers:
        texts = [ex.feedback.corrected if source == CORRECTED else ex.gold for ex in data]
        segmented = segmenter(texts, [granularity])[granularity]
        if source == CORRECTED:
            p1 = segmenter([ex.predictions[0] for ex in data], [granularity])[granularity]
        for n, (ex, text, spans) in enumerate(zip(data, texts, segmented)):
            if source == CORRECTED:
                seen = {ex.predictions[0][s:e] for s, e in p1[n]}
                labels = [IGNORE if text[s:e] in seen else NO_ERROR for s, e in spans]
            elif category == "factuality":
                union = sum((word_bag(x) for x in passage_sentences(ex.passages).values()), Counter())
                labels = [NO_ERROR if containment(word_bag(text[s:e]), union) >= gold_grounding else IGNORE
                          for s, e in spans]
            else:
                labels = [NO_ERROR] * len(spans)
            if any(lab != IGNORE for lab in labels):
                out.append(SegmentLabelExample(ex.index, ex.question, ex.passages, text, spans, labels, source,
                                               [[] for _ in spans]))
    return out


def _relevance_spans(ex: FeedbackExample, text: str, min_error_words: int) -> list[tuple[int, int]]:
    return [(e.start, e.end) for e in ex.feedback.errors
            if e.family == "relevance" and len(text[e.start:e.end].split()) >= min_error_words]


def grounding_evidence(explanation: str) -> list[tuple[int, int]]:
    """The (passage id, sentence id) pairs a ``Wrong-Grounding`` explanation names, both
    1-based: QA-Feedback writes them as ``{"passage_id": 2, "sentence_id": [4]}``. Free-text
    explanations, and sentence id 0 (the passage title), give none."""
    import json

    try:
        data = json.loads(explanation)
    except (json.JSONDecodeError, TypeError):
        return []
    if not isinstance(data, dict):
        return []
    pid, sids = data.get("passage_id"), data.get("sentence_id")
    if isinstance(sids, int):
        sids = [sids]
    if not isinstance(pid, int) or not isinstance(sids, list):
        return []
    return [(pid, s) for s in sids if isinstance(s, int) and s > 0]


def preference_examples(data: Sequence[FeedbackExample]) -> list[RankingExample]:
    out = []
    for ex in data:
        pairs = judged_pairs(ex.preference)
        if pairs:
            out.append(RankingExample(ex.index, ex.question, ex.passages, list(ex.predictions), pairs))
    return out


# ---------------------------------------------------------------------------------------
# Completeness: information coverage
# ---------------------------------------------------------------------------------------
def passage_sentences(passages: Sequence[Sequence[str]]) -> dict[tuple[int, int], str]:
    """(passage id, sentence id) → sentence, both 1-based, titles excluded."""
    return {(p + 1, s + 1): sent for p, psg in enumerate(passages) for s, sent in enumerate(psg[1:])}


def matched_sentences(pieces: Sequence[str], sentences: dict[tuple[int, int], str],
                      threshold: float) -> set[tuple[int, int]]:
    """Passage sentences that some piece draws from: for each piece, its best-matching passage
    sentence by ``containment``, kept if the match reaches ``threshold``."""
    bags = {k: word_bag(v) for k, v in sentences.items()}
    out = set()
    for piece in pieces:
        pb = word_bag(piece)
        if not pb or not bags:
            continue
        best, score = max(((k, containment(pb, b)) for k, b in bags.items()), key=lambda kv: kv[1])
        if score >= threshold:
            out.add(best)
    return out


def required_information(ex: FeedbackExample, segmenter: MultiGranularitySegmenter,
                         threshold: float) -> set[tuple[int, int]]:
    """The passage sentences a complete answer must cover (see ``completeness_examples``)."""
    sentences = passage_sentences(ex.passages)
    corrected = ex.feedback.corrected
    pieces = _pieces(corrected, segmenter)
    required = matched_sentences(pieces, sentences, threshold)
    minor: set[tuple[int, int]] = set()
    for m in ex.feedback.missing_info:
        ids = {(m.passage_id, s) for s in m.sentence_ids if (m.passage_id, s) in sentences}
        if m.error_type == "Missing-Minor-Auxiliary":
            minor |= ids
        else:
            required |= ids
    in_pred1 = matched_sentences(_pieces(ex.predictions[0], segmenter), sentences, threshold)
    return required - (minor - in_pred1)


def _pieces(text: str, segmenter: MultiGranularitySegmenter) -> list[str]:
    spans = segmenter([text], [Granularity.SUBSENTENCE])[Granularity.SUBSENTENCE][0]
    return [text[s:e] for s, e in spans]


def coverage(answer: str, required: set[tuple[int, int]], passages: Sequence[Sequence[str]],
             segmenter: MultiGranularitySegmenter, threshold: float) -> float:
    """Share of the required passage sentences that the answer's pieces draw from."""
    if not required:
        return 0.0
    got = matched_sentences(_pieces(answer, segmenter), passage_sentences(passages), threshold)
    return len(got & required) / len(required)


def completeness_examples(data: Sequence[FeedbackExample], segmenter: MultiGranularitySegmenter,
                          threshold: float = 0.8) -> list[RankingExample]:
    """R3 pairs from information coverage.

    1. Each sub-sentence of a text is matched to the passage sentence that contains the
       largest share of its words (lower-cased word multisets; the share is
       ``containment``); the match counts if that share is ≥ ``threshold``.
    2. Required information = the passage sentences matched by the human-corrected answer,
       plus those that ``missing-info`` marks ``Missing-Answer`` or
       ``Missing-Major-Auxiliary``, minus those marked only ``Missing-Minor-Auxiliary``
       (unless prediction 1 already covers them).
    3. Coverage of a prediction = |its matched sentences ∩ required| / |required|.
    4. Every pair of predictions with different coverage is a pair (higher wins); a
       question with no required information gives no pairs.
    """
    out = []
    for ex in data:
        required = required_information(ex, segmenter, threshold)
        if not required:
            continue
        scores = [coverage(p, required, ex.passages, segmenter, threshold) for p in ex.predictions]
        pairs = [(i, j) if scores[i] > scores[j] else (j, i)
                 for i in range(len(scores)) for j in range(i + 1, len(scores)) if scores[i] != scores[j]]
        if pairs:
            out.append(RankingExample(ex.index, ex.question, ex.passages, list(ex.predictions), pairs, scores))
    return out
