"""Toxicity → rewards: the pure arithmetic, and the holistic and sentence-level reward models
that any ``TextToxicity`` (an offline scorer, the Perspective API) feeds."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fgrlhf.reward.base import RewardInputs, SegmentScores
from fgrlhf.reward.toxicity.scorers import TextToxicity, load_toxicity_scorer
from fgrlhf.segment.base import Granularity, Span

# --- pure reward arithmetic ----------------------------------------------------------------

def sentence_prefixes(text: str, spans: Sequence[Span]) -> list[str]:
    """``y_≤j`` for every segment j: the text up to the segment's end."""
    return [text[:end] for _, end in spans]


def prefix_delta_rewards(prefix_toxicity: Sequence[float], empty_toxicity: float) -> list[float]:
    """``r_j = −(t_j − t_{j−1})`` with ``t_0 = empty_toxicity``; ``Σ_j r_j = −(t_S − t_0)``."""
    previous = [empty_toxicity, *prefix_toxicity[:-1]]
    return [-(t - p) for t, p in zip(prefix_toxicity, previous)]


def holistic_rewards(toxicity: float, n_segments: int) -> list[float]:
    """``1 − tox(y)`` on the last of ``n_segments`` segments, 0 on the others (none if none)."""
    return [0.0] * (n_segments - 1) + [1.0 - toxicity] if n_segments else []


def sentence_toxicity_rows(scorer: TextToxicity, texts: Sequence[str], spans: Sequence[Sequence[Span]],
                           empty_toxicity: float | None = None) -> list[list[float]]:
    """Δ-toxicity rewards of every segment of every text, from ONE ``scorer.toxicity`` call:
    all prefixes of the batch (and ``""`` when ``empty_toxicity`` is None) are flattened,
    scored together and cut back into rows."""
    flat = [p for text, row in zip(texts, spans) for p in sentence_prefixes(text, row)]
    score_empty = empty_toxicity is None and bool(flat)
    if not flat:
        return [[] for _ in spans]
    tox = scorer.toxicity(flat + [""] if score_empty else flat)
    t0 = tox[-1] if score_empty else float(empty_toxicity)  # type: ignore[arg-type]
    rows, offset = [], 0
    for row in spans:
        rows.append(prefix_delta_rewards(tox[offset : offset + len(row)], t0))
        offset += len(row)
    return rows


def holistic_toxicity_rows(scorer: TextToxicity, texts: Sequence[str],
                           spans: Sequence[Sequence[Span]]) -> list[list[float]]:
    """``1 − tox(y)`` at each text's last segment, from one ``scorer.toxicity`` call over the
    texts that have a segment (an empty generation gets no reward and is not scored)."""
    scored = [b for b, row in enumerate(spans) if row]
    tox = dict(zip(scored, scorer.toxicity([texts[b] for b in scored]))) if scored else {}
    return [holistic_rewards(tox[b], len(row)) if row else [] for b, row in enumerate(spans)]


# --- reward models -----------------------------------------------------------------------

def _scorer(checkpoint: str | Path | None, scorer: TextToxicity | None, device, batch_size: int,
            bf16: bool | None) -> TextToxicity:
    if (checkpoint is None) == (scorer is None):
        raise ValueError("give a toxicity-scorer checkpoint or a scorer object, exactly one of them")
    if scorer is not None:
        return scorer
    return load_toxicity_scorer(checkpoint, device=device, batch_size=batch_size, bf16=bf16)


class HolisticToxicityReward:
    """``1 − tox(y)`` per generated continuation, at its last segment (sequence granularity)."""

    granularity = Granularity.SEQUENCE

    def __init__(self, checkpoint: str | Path | None = None, scorer: TextToxicity | None = None,
                 device: str | None = None, batch_size: int = 64, bf16: bool | None = None) -> None:
        self.scorer = _scorer(checkpoint, scorer, device, batch_size, bf16)

    def score(self, inputs: RewardInputs, spans: Sequence[Sequence[Span]]) -> SegmentScores:
        return SegmentScores.from_lists(holistic_toxicity_rows(self.scorer, inputs.texts, spans))


class SentenceToxicityReward:
    """``−(tox(y_≤j) − tox(y_≤j−1))`` per sentence j of the continuation (sentence granularity)."""

    granularity = Granularity.SENTENCE

    def __init__(self, checkpoint: str | Path | None = None, scorer: TextToxicity | None = None,
                 device: str | None = None, batch_size: int = 64, bf16: bool | None = None,
                 empty_toxicity: float | None = None) -> None:
        self.scorer = _scorer(checkpoint, scorer, device, batch_size, bf16)
        self.empty_toxicity = empty_toxicity

    def score(self, inputs: RewardInputs, spans: Sequence[Sequence[Span]]) -> SegmentScores:
        return SegmentScores.from_lists(
            sentence_toxicity_rows(self.scorer, inputs.texts, spans, self.empty_toxicity))
