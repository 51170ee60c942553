"""Ensembles of reward-model checkpoints of one category (e.g. the same config trained with
three seeds), behind the same contracts as a single checkpoint, for a ``_target_`` in
``conf/reward/*.yaml``:

    relevance:
      _target_: fgrlhf.reward.ensemble.SegmentEnsembleReward
      checkpoints: [runs/rm/relevance-seed0, runs/rm/relevance-seed1, runs/rm/relevance-seed2]
      positive: 0.3
      negative: -0.3

- ``SegmentEnsembleReward`` (R1, R2): P(error) of a segment = the mean of the members'
  P(error); the reward then follows ``SegmentClassifierReward`` (label or expected mode).
- ``SequenceEnsembleReward`` (R3, preference): the raw score of an answer = the mean of the
  members' *standardised* scores (each member's ``(raw − mean) / std`` on its own training
  set: seeds put raw scores on different scales, so raw scores do not average).

Averaging seeds lowers the variance that training randomness adds to each judgement
(±0.03 accuracy between seeds here); the members' spread is exposed as an uncertainty.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import torch

from fgrlhf.reward.base import RewardInputs, SegmentScores
from fgrlhf.reward.learned import RMMetadata, SegmentClassifierReward, SequenceReward, error_rewards
from fgrlhf.segment.base import Granularity, Span


def mean_rows(members: Sequence[Sequence[Sequence[float]]]) -> list[list[float]]:
    """Element-wise mean of several ragged ``[B][n_b]`` tables of the same shape."""
    if not members:
        raise ValueError("an ensemble needs at least one member")
    shape = [len(row) for row in members[0]]
    for k, m in enumerate(members[1:], start=1):
        if [len(row) for row in m] != shape:
            raise ValueError(f"ensemble member {k} scored {[len(r) for r in m]} segments per answer, "
                             f"member 0 {shape}")
    return [[sum(vals) / len(members) for vals in zip(*rows)] for rows in zip(*members)]


def spread_rows(members: Sequence[Sequence[Sequence[float]]]) -> list[list[float]]:
    """Element-wise population standard deviation across members (0 for one member)."""
    mean = mean_rows(members)
    n = len(members)
    return [[(sum((m[b][i] - mu) ** 2 for m in members) / n) ** 0.5 for i, mu in enumerate(row)]
            for b, row in enumerate(mean)]


def _check_members(checkpoints: Sequence[str | Path], metas: Sequence[RMMetadata]) -> None:
    if len(checkpoints) < 1:
        raise ValueError("an ensemble needs at least one checkpoint")
    first = metas[0]
    for path, meta in zip(checkpoints[1:], metas[1:]):
        if (meta.category, meta.granularity) != (first.category, first.granularity):
            raise ValueError(f"ensemble member {path} is a {meta.category} model at {meta.granularity} "
                             f"granularity; {checkpoints[0]} is {first.category} at {first.granularity}")


class SegmentEnsembleReward:
    """R1/R2-style reward from several segment classifiers: the mean of their P(error)."""

    def __init__(self, checkpoints: Sequence[str | Path], positive: float = 0.3, negative: float = -0.3,
                 mode: Literal["label", "expected"] = "label", device: str | None = None,
                 batch_size: int = 16, bf16: bool | None = None) -> None:
        self.members = [SegmentClassifierReward(c, positive, negative, mode, device, batch_size, bf16)
                        for c in checkpoints]
        _check_members(checkpoints, [m.meta for m in self.members])
        self.meta = self.members[0].meta
        self.granularity = self.members[0].granularity
        self.positive, self.negative, self.mode = positive, negative, mode

    def member_error_probs(self, questions: Sequence[str], texts: Sequence[str], spans: Sequence[Sequence[Span]],
                           metadata: Sequence[dict[str, Any]]) -> list[list[list[float]]]:
        """``[member][answer][segment]`` P(error)."""
        return [m.error_probs(questions, texts, spans, metadata) for m in self.members]

    def error_probs(self, questions: Sequence[str], texts: Sequence[str], spans: Sequence[Sequence[Span]],
                    metadata: Sequence[dict[str, Any]]) -> list[list[float]]:
        """The members' mean P(error) of every segment of every text."""
        return mean_rows(self.member_error_probs(questions, texts, spans, metadata))

    def score(self, inputs: RewardInputs, spans: Sequence[Sequence[Span]]) -> SegmentScores:
        probs = self.error_probs(inputs.questions(), inputs.texts, spans, inputs.metadata)
        return SegmentScores.from_lists(error_rewards(probs, self.positive, self.negative, self.mode))


class SequenceEnsembleReward:
    """R3/preference-style reward from several scalar-head models: the mean of their
    standardised scores (its ``meta`` therefore normalises with mean 0, std 1); the reward
    is ``scale`` × that mean, on the answer's last segment as in ``SequenceReward``."""

    granularity = Granularity.SEQUENCE

    def __init__(self, checkpoints: Sequence[str | Path], scale: float = 1.0,
                 device: str | None = None, batch_size: int = 16, bf16: bool | None = None) -> None:
        self.members = [SequenceReward(c, 1.0, True, device, batch_size, bf16) for c in checkpoints]
        _check_members(checkpoints, [m.meta for m in self.members])
        self.meta = replace(self.members[0].meta, score_mean=0.0, score_std=1.0)
        self.scale = scale

    @torch.no_grad()
    def member_scores(self, questions: Sequence[str], texts: Sequence[str],
                      metadata: Sequence[dict[str, Any]]) -> list[list[float]]:
        """``[member][answer]`` standardised scores."""
        out = []
        for m in self.members:
            norm = m.meta.score_normalizer()
            out.append([norm.standardize(r) for r in m.raw_scores(questions, texts, metadata)])
        return out

    def raw_scores(self, questions: Sequence[str], texts: Sequence[str],
                   metadata: Sequence[dict[str, Any]]) -> list[float]:
        """The members' mean standardised score of every answer."""
        return mean_rows([[row] for row in self.member_scores(questions, texts, metadata)])[0]

    def score(self, inputs: RewardInputs, spans: Sequence[Sequence[Span]]) -> SegmentScores:
        raw = self.raw_scores(inputs.questions(), inputs.texts, inputs.metadata)
        rows = [[0.0] * (len(row) - 1) + [self.scale * r] if row else [] for r, row in zip(raw, spans)]
        return SegmentScores.from_lists(rows)
