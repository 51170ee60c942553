"""Training pairs for the ranking reward models (R3 completeness, preference) beyond the
plain comparisons of ``fgrlhf.data.rm_examples``, so that length alone stops paying.

On QA-Feedback "the longer answer wins" already ranks 77 % of R3's coverage pairs (coverage
grows with what an answer says), so a model can score well by counting words. Three levers,
each an option of ``conf/rm/<category>.yaml``'s ``pairs`` (``PairsConfig``) and applied to the
training questions only (dev and test keep the plain pairs among the 4 predictions):

- ``reference_answers``: the human-corrected answer and the gold answer join the ranking.
  R3: both are scored by the same coverage as the predictions, and every pair of answers
  with different coverage is a pair. Preference: the corrected answer beats prediction 1
  (it is prediction 1 with its errors fixed by a person), the one comparison certain
  without a judge.
- ``balance_length``: pair weights such that the pairs the longer answer wins and those the
  shorter answer wins weigh the same in the loss, so a length-only score gains nothing.
- ``matched_weight``: a further weight on the length-matched pairs
  (``length_matched``), where only content can decide.
- ``coverage_margin`` (R3): each pair's loss is ``−log σ(r_w − r_l − m·(c_w − c_l))``,
  a larger required score gap for a larger coverage gap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import ClassVar

from fgrlhf.data.qa_feedback import FeedbackExample
from fgrlhf.data.rm_examples import RankingExample, coverage, required_information
from fgrlhf.segment import MultiGranularitySegmenter

LENGTH_MATCH_RATIO = 1.2  # two answers are length-matched when the longer has at most 1.2× the words


def length_matched(a: str, b: str, ratio: float = LENGTH_MATCH_RATIO) -> bool:
    """Whether two answers have about the same length: the longer one's word count is at
    most ``ratio`` times the shorter one's (two empty answers match)."""
    la, lb = len(a.split()), len(b.split())
    return max(la, lb) <= ratio * min(la, lb) if min(la, lb) else la == lb


@dataclass
class PairsConfig:
    """How the ranking models' training pairs are built and weighed (see the module)."""

    RULES: ClassVar[dict[str, str]] = {"matched_weight": "> 0", "coverage_margin": ">= 0"}

    reference_answers: bool = False
    balance_length: bool = False
    matched_weight: float = 1.0
    coverage_margin: float = 0.0


def is_plain(cfg) -> bool:
    """Whether ``cfg`` (a ``PairsConfig`` or its OmegaConf node) leaves the pairs as
    ``rm_examples`` builds them."""
    plain = PairsConfig()
    return all(getattr(cfg, f.name) == getattr(plain, f.name) for f in fields(PairsConfig))


def coverage_pairs(scores: Sequence[float]) -> list[tuple[int, int]]:
    """``(better, worse)`` for every two answers of different coverage (ties give none)."""
    return [(i, j) if scores[i] > scores[j] else (j, i)
            for i in range(len(scores)) for j in range(i + 1, len(scores)) if scores[i] != scores[j]]


def with_reference_coverage(ex: RankingExample, record: FeedbackExample, segmenter: MultiGranularitySegmenter,
                            threshold: float) -> RankingExample:
    """R3: ``ex`` with the corrected and gold answers appended (as answers 5 and 6), scored by
    coverage of the same required information, and all pairs recomputed."""
    if record.index != ex.qid:
        raise ValueError(f"completeness example of question {ex.qid} paired with feedback record {record.index}")
    required = required_information(record, segmenter, threshold)
    extra = [record.feedback.corrected, record.gold]
    scores = list(ex.scores) + [coverage(a, required, record.passages, segmenter, threshold) for a in extra]
    return replace(ex, answers=list(ex.answers) + extra, pairs=coverage_pairs(scores), scores=scores,
                   weights=[], margins=[])


def with_corrected_answer(ex: RankingExample, record: FeedbackExample) -> RankingExample:
    """Preference: ``ex`` with the corrected answer appended, beating prediction 1 (index 0)."""
    if record.index != ex.qid:
        raise ValueError(f"preference example of question {ex.qid} paired with feedback record {record.index}")
    k = len(ex.answers)
    return replace(ex, answers=list(ex.answers) + [record.feedback.corrected], pairs=list(ex.pairs) + [(k, 0)],
                   weights=[], margins=[])


def length_balanced_weights(examples: Sequence[RankingExample]) -> list[list[float]]:
    """Per example, a weight per pair: pairs won by the longer answer (more words) weigh
    ``n_total / (2 · n_longer)``, those won by the shorter ``n_total / (2 · n_shorter)``,
    equal-length pairs 1, so both sides weigh the same and the mean weight stays 1. When one
    side has no pair, all weights are 1 (nothing to balance against)."""
    def longer_won(ex: RankingExample, w: int, lo: int) -> int:  # 1, −1, or 0 for equal length
        lw, ll = len(ex.answers[w].split()), len(ex.answers[lo].split())
        return (lw > ll) - (lw < ll)

    sides = [[longer_won(ex, w, lo) for w, lo in ex.pairs] for ex in examples]
    n_long = sum(s == 1 for row in sides for s in row)
    n_short = sum(s == -1 for row in sides for s in row)
    if not n_long or not n_short:
        return [[1.0] * len(row) for row in sides]
    decided = n_long + n_short
    weight = {1: decided / (2 * n_long), -1: decided / (2 * n_short), 0: 1.0}
    return [[weight[s] for s in row] for row in sides]


def training_pairs(examples: Sequence[RankingExample], records: Sequence[FeedbackExample], category: str,
                   cfg: PairsConfig, segmenter: MultiGranularitySegmenter | None = None,
                   coverage_threshold: float = 0.8) -> list[RankingExample]:
    """The training examples of a ranking model under ``cfg``: reference answers added,
    then per-pair ``weights`` (length balance × matched weight) and ``margins``."""
    if is_plain(cfg):
        return list(examples)
    by_qid = {r.index: r for r in records}
    out = list(examples)
    if cfg.reference_answers:
        if category == "completeness":
            if segmenter is None:
                raise ValueError("pairs.reference_answers for completeness needs the segmenter of its coverage")
            out = [with_reference_coverage(ex, by_qid[ex.qid], segmenter, coverage_threshold) for ex in out]
        elif category == "preference":
            out = [with_corrected_answer(ex, by_qid[ex.qid]) for ex in out]
        else:
            raise ValueError(f"pairs.reference_answers: only for completeness and preference, not {category}")
    if cfg.coverage_margin and category != "completeness":
        raise ValueError(f"pairs.coverage_margin={cfg.coverage_margin}: only completeness has coverage scores")
    balanced = length_balanced_weights(out) if cfg.balance_length else [[1.0] * len(ex.pairs) for ex in out]
    result = []
    for ex, weights in zip(out, balanced):
        matched = [cfg.matched_weight if length_matched(ex.answers[w], ex.answers[lo]) else 1.0 for w, lo in ex.pairs]
        margins = ([cfg.coverage_margin * (ex.scores[w] - ex.scores[lo]) for w, lo in ex.pairs]
                   if cfg.coverage_margin else [])
        result.append(replace(ex, weights=[a * b for a, b in zip(weights, matched)], margins=margins))
    return result
