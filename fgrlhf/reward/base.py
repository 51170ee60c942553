"""The reward-model contract.

A reward model judges one error category at one granularity. It receives the prompts and
their metadata, the generated texts, and the segments of each text at its granularity; it
returns one score per segment. It never sees the policy's token ids: it tokenises the text
itself, with whatever tokenizer it likes (or calls an API), so any model plugs in unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from fgrlhf.segment.base import Granularity, Span

if TYPE_CHECKING:
    from fgrlhf.reward.learned import RMMetadata


@dataclass
class RewardInputs:
    """What every reward model is given about a batch of B responses."""

    prompts: list[str]  # the policy inputs
    texts: list[str]  # the decoded responses
    metadata: list[dict[str, Any]] = field(default_factory=list)  # per example: question, passages, ...

    def __post_init__(self) -> None:
        if not self.metadata:
            self.metadata = [{} for _ in self.texts]
        if not (len(self.prompts) == len(self.texts) == len(self.metadata)):
            raise ValueError(
                f"RewardInputs: {len(self.prompts)} prompts, {len(self.texts)} texts and "
                f"{len(self.metadata)} metadata records must be as many"
            )

    def questions(self) -> list[str]:
        """The question of each example, what learned reward models read: its metadata's
        ``question``, or the prompt itself when the metadata has none."""
        return [m.get("question", p) for m, p in zip(self.metadata, self.prompts)]


@dataclass
class SegmentScores:
    """One score per segment: ``scores`` ``[B, S]`` float, ``mask`` ``[B, S]`` bool."""

    scores: Tensor
    mask: Tensor

    @classmethod
    def from_lists(cls, rows: Sequence[Sequence[float]], device: torch.device | str | None = None) -> SegmentScores:
        """Pad ragged per-response score lists to ``[B, max(1, S)]``."""
        width = max(1, max((len(r) for r in rows), default=0))
        scores = torch.tensor([[float(x) for x in r] + [0.0] * (width - len(r)) for r in rows],
                              dtype=torch.float32).reshape(len(rows), width)
        mask = torch.tensor([[True] * len(r) + [False] * (width - len(r)) for r in rows],
                            dtype=torch.bool).reshape(len(rows), width)
        if device is not None:
            scores, mask = scores.to(device), mask.to(device)
        return cls(scores, mask)

    def rows(self) -> list[list[float]]:
        """The real scores of each response, as Python lists."""
        return [s[m].tolist() for s, m in zip(self.scores.cpu(), self.mask.cpu())]


@runtime_checkable
class RewardModel(Protocol):
    """Anything with a granularity and a ``score`` method of this shape is a reward model.

    ``score(inputs, spans)`` gets ``spans[b]``, the segments of ``inputs.texts[b]`` at
    ``self.granularity``, and returns ``SegmentScores`` whose row b has exactly
    ``len(spans[b])`` real entries, in the same order. Higher is better.
    """

    granularity: Granularity

    def score(self, inputs: RewardInputs, spans: Sequence[Sequence[Span]]) -> SegmentScores: ...


@runtime_checkable
class SegmentErrorModel(Protocol):
    """A reward model that judges segments by a probability of error (``SegmentClassifierReward``):
    evaluation reads ``P(error)`` itself, independent of the reward values it maps it to."""

    def error_probs(self, questions: Sequence[str], texts: Sequence[str], spans: Sequence[Sequence[Span]],
                    metadata: Sequence[dict[str, Any]]) -> list[list[float]]: ...


@runtime_checkable
class SequenceScoreModel(Protocol):
    """A reward model with one raw score per answer and the statistics of its raw scores on
    its training set (``meta.score_mean``/``score_std``, ``SequenceReward``): evaluation
    normalises the raw score itself, without the reward's training-time scale."""

    meta: RMMetadata

    def raw_scores(self, questions: Sequence[str], texts: Sequence[str],
                   metadata: Sequence[dict[str, Any]]) -> list[float]: ...


def check_segment_scores(name: str, out: SegmentScores, spans: Sequence[Sequence[Span]]) -> None:
    """Raise with the reward's name if ``out`` does not match ``spans`` one to one."""
    if not isinstance(out, SegmentScores):
        raise TypeError(f"reward {name!r} returned {type(out).__name__}, expected SegmentScores")
    if out.scores.shape != out.mask.shape or out.scores.dim() != 2 or out.scores.shape[0] != len(spans):
        raise ValueError(
            f"reward {name!r} returned scores {tuple(out.scores.shape)} and mask "
            f"{tuple(out.mask.shape)} for {len(spans)} responses; expected [B, S] twice"
        )
    counts = out.mask.sum(dim=1).tolist()
    for b, (got, row) in enumerate(zip(counts, spans)):
        if got != len(row):
            raise ValueError(
                f"reward {name!r} scored {got} segments of response {b}, which has {len(row)}"
            )
    real = out.scores[out.mask.bool()]
    if real.numel() and not bool(torch.isfinite(real).all()):
        bad = (~torch.isfinite(out.scores) & out.mask.bool()).nonzero()[0].tolist()
        raise FloatingPointError(
            f"reward {name!r} returned a non-finite score at response {bad[0]}, segment {bad[1]}"
        )
