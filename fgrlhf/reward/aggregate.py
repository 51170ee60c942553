"""Several reward models' segment scores → one dense reward per generated token.

    r[b, t] = Σ_k w_k · Σ_{s : closes(b, s, k) = t} norm_k(score_k[b, s])

Each category k keeps its own ``[B, T]`` slice until the very end (``per_category``
``[B, T, K]``), so it can be normalised, weighted, logged and plotted on its own. Per
category, ``Shaping`` (``fgrlhf.core.shaping``) can change how its segment scores combine
(sum or mean, a minimum segment length for bonuses) and where they land (the closing token,
the first token, or spread over the segment); the default is the paper's rule above.
Monitor-only reward models are scored on the same texts and kept apart (``monitors``): they
are logged beside the optimised rewards and never enter the reward.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import Tensor

from fgrlhf.core.shaping import combine_segment_scores, place_segment_scores
from fgrlhf.errors import UserError
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
    monitors: dict[str, SegmentScores] = field(default_factory=dict)  # monitor-only scores, by name


@dataclass
class Shaping:
    """How one category's segment scores become its dense reward (``fgrlhf.core.shaping``)."""

    RULES: ClassVar[dict[str, str]] = {"per_segment": "in sum mean words", "min_segment_words": ">= 0",
                                       "unit_words": "> 0", "placement": "in end first spread"}

    # sum (the paper's) | mean: splitting an answer earns nothing by itself | words: each
    # segment weighted by its words / unit_words, so neither splitting nor shrinking pays
    per_segment: str = "sum"
    min_segment_words: int = 0  # segments shorter than this earn no bonus (penalties stay)
    unit_words: float = 8.0  # with per_segment=words: the length that earns one full score
    placement: str = "end"  # end (the paper's) | first | spread


class RewardModelError(UserError):
    """A reward model raised while scoring: names the category and the model."""


class RewardAggregator:
    """Runs every reward model on a batch and builds the dense reward.

    ``rewards`` maps a category name (``relevance``, ``factuality``, ...) to its reward model;
    ``weights`` gives each category's weight (default 1); ``normalizers`` each category's
    normaliser (default none), ``shaping`` each category's ``Shaping`` (default the
    paper's), ``monitors`` reward models that are scored and reported but never optimised.
    Texts are segmented once per granularity, and spans are aligned to policy tokens once
    per granularity, whatever the number of reward models. A reward model with a
    ``segmenter`` attribute of its own (a custom granularity) is segmented by it instead.
    """

    def __init__(
        self,
        rewards: Mapping[str, RewardModel],
        weights: Mapping[str, float] | None = None,
        normalizers: Mapping[str, Normalizer] | None = None,
        segmenter: MultiGranularitySegmenter | None = None,
        shaping: Mapping[str, Shaping] | None = None,
        monitors: Mapping[str, RewardModel] | None = None,
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
        shaping = dict(shaping or {})
        unknown = set(shaping) - set(rewards)
        if unknown:
            raise KeyError(f"shaping given for unknown reward categories: {sorted(unknown)}")
        self.shaping = {k: shaping.get(k, Shaping()) for k in self.categories}
        self.monitors = dict(monitors or {})
        clash = set(self.monitors) & set(rewards)
        if clash:
            raise KeyError(f"monitor-only rewards must not share a name with an optimised category: {sorted(clash)}")

    def distribute(self, gather: Callable[[Tensor], Tensor] | None) -> None:
        """Data parallelism: every running normaliser merges the scores of all processes,
        collected by ``gather`` (1-D tensor → the concatenation over processes), so every
        process keeps the statistics one process would. Other normalisers keep no statistics."""
        for norm in self.normalizers.values():
            if isinstance(norm, RunningNormalizer):
                norm.set_gather(gather)

    def granularities(self) -> dict[str, str]:
        """Each category's granularity name; a reward with its own segmenter is its own
        granularity, named after its category. What the segment monitors are counted by."""
        return {k: k if getattr(r, "segmenter", None) is not None else str(getattr(r.granularity, "value", r.granularity))
                for k, r in self.rewards.items()}

    def segment(self, texts: Sequence[str], models: Mapping[str, RewardModel] | None = None
                ) -> dict[str, list[list[Span]]]:
        """Segments of every text for every category (of ``models``, default the rewards)."""
        models = self.rewards if models is None else models
        shared = [k for k in models if getattr(models[k], "segmenter", None) is None]
        by_granularity = self.segmenter(texts, {models[k].granularity for k in shared})
        out = {k: by_granularity[models[k].granularity] for k in shared}
        for k in models:
            if k not in out:
                out[k] = models[k].segmenter.batch(texts)
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
            scores, mask = _score(k, self.rewards[k], inputs, spans[k], device)  # [B, S_k]
            raw[k] = SegmentScores(scores, mask)
            normed = self.normalizers[k](scores, mask)  # [B, S_k]
            shape = self.shaping[k]
            words = None
            if shape.min_segment_words > 0 or shape.per_segment == "words":
                words = SegmentScores.from_lists([[len(text[a:b].split()) for a, b in row]
                                                  for text, row in zip(inputs.texts, spans[k])], device).scores
                words = _fit_width(words, scores.shape[1])
            shaped = combine_segment_scores(normed, mask, words, shape.per_segment, shape.min_segment_words,
                                            shape.unit_words)
            # A reward may pad to a different S than the aligner; real segments are a prefix.
            index = _fit_width(token_index, scores.shape[1])
            per_category[:, :, k_i] = self.weights[k] * place_segment_scores(shaped, mask, index, T, shape.placement)
        monitors = self.score_monitors(inputs, device)
        return DenseReward(per_category.sum(dim=-1), per_category, list(self.categories), raw, spans, monitors)

    @torch.no_grad()
    def score_monitors(self, inputs: RewardInputs, device: torch.device | str = "cpu") -> dict[str, SegmentScores]:
        """Each monitor-only reward model's segment scores of ``inputs.texts``."""
        if not self.monitors:
            return {}
        spans = self.segment(inputs.texts, self.monitors)
        return {name: SegmentScores(*_score(name, model, inputs, spans[name], device))
                for name, model in self.monitors.items()}

    def state_dict(self) -> dict:
        return {"weights": dict(self.weights),
                "normalizers": {k: n.state_dict() for k, n in self.normalizers.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.weights = {k: float(v) for k, v in state["weights"].items()}
        for k, s in state["normalizers"].items():
            self.normalizers[k].load_state_dict(s)


def _score(name: str, model: RewardModel, inputs: RewardInputs, spans: list[list[Span]],
           device: torch.device | str) -> tuple[Tensor, Tensor]:
    """One reward model's checked scores and mask ``[B, S]``; a model that raises is named."""
    try:
        out = model.score(inputs, spans)
    except Exception as err:
        raise RewardModelError(f"reward model {name!r} ({type(model).__module__}.{type(model).__name__}) "
                               f"raised {type(err).__name__}: {err}") from err
    check_segment_scores(name, out, spans)
    return out.scores.to(device=device, dtype=torch.float32), out.mask.to(device).bool()


def _fit_width(x: Tensor, width: int) -> Tensor:
    """Pad with zeros or cut ``[B, S]`` to ``[B, width]`` (the cut part is always padding)."""
    if x.shape[1] >= width:
        return x[:, :width]
    return torch.nn.functional.pad(x, (0, width - x.shape[1]))
