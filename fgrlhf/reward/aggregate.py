"""Several reward models' segment scores → one dense reward per generated token.

    r[b, t] = Σ_k w_k · Σ_{s : closes(b, s, k) = t} norm_k(score_k[b, s])

Each category k keeps its own ``[B, T]`` slice until the very end (``per_category``
``[B, T, K]``), so it can be normalised, weighted, logged and plotted on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from fgrlhf.core.scatter import scatter_segment_scores
from fgrlhf.reward.base import RewardInputs, RewardModel, SegmentScores, check_segment_scores
from fgrlhf.reward.normalize import IdentityNormalizer, Normalizer, RunningNormalizer
from fgrlhf.segment import DecodedResponses, MultiGranularitySegmenter, Span, align_spans


@dataclass
class DenseReward:
    """The aggregator's output for one batch.

    ``total`` ``[B, T]`` equals ``per_category.sum(-1)``; ``per_category`` ``[B, T, K]`` holds
    each category's weighted, normalised contribution in ``categories`` order. ``raw`` keeps
    each category's unnormalised, unweighted segment scores and ``spans`` its segments, for
    logging and reports.
    """

    total: Tensor
    per_category: Tensor
    categories: list[str]
    raw: dict[str, SegmentScores]
    spans: dict[str, list[list[Span]]]


class RewardAggregator:
    """Runs every reward model on a batch and builds the dense reward.

    ``rewards`` maps a category name (``relevance``, ``factuality``, ...) to its reward model;
    ``weights`` gives each category's weight (default 1); ``normalizers`` each category's
    normaliser (default none). Texts are segmented once per granularity, and spans are
    aligned to policy tokens once per granularity, whatever the number of reward models.
    A reward model with a ``segmenter`` attribute of its own (a custom granularity) is
    segmented by it instead.
    """

    def __init__(
        self,
        rewards: Mapping[str, RewardModel],
        weights: Mapping[str, float] | None = None,
        normalizers: Mapping[str, Normalizer] | None = None,
        segmenter: MultiGranularitySegmenter | None = None,
    ) -> None:
        if not rewards:
            raise ValueError("RewardAggregator needs at least one reward model")
        weights = dict(weights or {})
        unknown = set(weights) - set(rewards)
        if unknown:
            raise KeyError(f"weights given for unknown reward categories: {sorted(unknown)}; "
                           f"categories: {sorted(rewards)}")
        normalizers = dict(normalizers or {})
        unknown = set(normalizers) - set(rewards)
        if unknown:
            raise KeyError(f"normalisation given for unknown reward categories: {sorted(unknown)}")
        self.categories = list(rewards)
        self.rewards = dict(rewards)
        self.weights = {k: float(weights.get(k, 1.0)) for k in self.categories}
        self.normalizers = {k: normalizers.get(k, IdentityNormalizer()) for k in self.categories}
        self.segmenter = segmenter if segmenter is not None else MultiGranularitySegmenter()

    def distribute(self, gather: Callable[[Tensor], Tensor] | None) -> None:
        """Data parallelism: every running normaliser merges the scores of all processes,
        collected by ``gather`` (1-D tensor → the concatenation over processes), so every
        process keeps the statistics one process would. Other normalisers keep no statistics."""
        for norm in self.normalizers.values():
            if isinstance(norm, RunningNormalizer):
                norm.set_gather(gather)

    def segment(self, texts: Sequence[str]) -> dict[str, list[list[Span]]]:
        """Segments of every text for every category."""
        shared = [k for k in self.categories if getattr(self.rewards[k], "segmenter", None) is None]
        by_granularity = self.segmenter(texts, {self.rewards[k].granularity for k in shared})
        out = {k: by_granularity[self.rewards[k].granularity] for k in shared}
        for k in self.categories:
            if k not in out:
                out[k] = self.rewards[k].segmenter.batch(texts)
        return out

    @torch.no_grad()
    def __call__(self, inputs: RewardInputs, decoded: DecodedResponses,
                 device: torch.device | str = "cpu") -> DenseReward:
        """Score ``decoded`` (the policy's responses, whose texts are ``inputs.texts``)."""
        if list(inputs.texts) != list(decoded.texts):
            raise ValueError("RewardAggregator: inputs.texts must be the decoded responses' texts")
        spans = self.segment(inputs.texts)
        aligned: dict[int, tuple[Tensor, Tensor]] = {}  # id(span list) → (token_index, mask)
        B, T = len(inputs.texts), decoded.num_tokens
        per_category = torch.zeros(B, T, len(self.categories), device=device)  # [B, T, K]
        raw: dict[str, SegmentScores] = {}
        for k_i, k in enumerate(self.categories):
            # Categories of one granularity share one span list object: align it once.
            if id(spans[k]) not in aligned:
                aligned[id(spans[k])] = align_spans(decoded, spans[k], device=device)
            token_index, seg_mask = aligned[id(spans[k])]  # [B, S_k]
            out = self.rewards[k].score(inputs, spans[k])
            check_segment_scores(k, out, spans[k])
            scores = out.scores.to(device=device, dtype=torch.float32)  # [B, S_k]
            mask = out.mask.to(device).bool()  # [B, S_k]
            raw[k] = SegmentScores(scores, mask)
            normed = self.normalizers[k](scores, mask)  # [B, S_k]
            width = scores.shape[1]
            # A reward may pad to a different S than the aligner; real segments are a prefix.
            index = _fit_width(token_index, width)
            per_category[:, :, k_i] = self.weights[k] * scatter_segment_scores(normed, mask, index, T)
        return DenseReward(per_category.sum(dim=-1), per_category, list(self.categories), raw, spans)

    def state_dict(self) -> dict:
        return {"weights": dict(self.weights),
                "normalizers": {k: n.state_dict() for k, n in self.normalizers.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.weights = {k: float(v) for k, v in state["weights"].items()}
        for k, s in state["normalizers"].items():
            self.normalizers[k].load_state_dict(s)


def _fit_width(x: Tensor, width: int) -> Tensor:
    """Pad with zeros or cut ``[B, S]`` to ``[B, width]`` (the cut part is always padding)."""
    if x.shape[1] >= width:
        return x[:, :width]
    return torch.nn.functional.pad(x, (0, width - x.shape[1]))
