"""Per-category normalisation of segment scores before weighting.

Sequence-level reward models (completeness, preference) output unbounded logits whose scale
is arbitrary; normalising each category keeps a weight meaning the same thing across
reward models. ``fixed`` uses the mean/std of the reward model's raw scores on its training
set (saved with the checkpoint); ``running`` tracks the scores seen during training.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from torch import Tensor

Scores = TypeVar("Scores", float, Tensor)


class Normalizer(Protocol):
    def __call__(self, scores: Tensor, mask: Tensor) -> Tensor: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


@dataclass
class IdentityNormalizer:
    def __call__(self, scores: Tensor, mask: Tensor) -> Tensor:
        return scores

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


@dataclass
class FixedNormalizer:
    """``(x − mean) / std`` with constants, e.g. from the reward model's training set
    (``RMMetadata.score_normalizer``): as a category's normaliser, and inside
    ``SequenceReward`` and the QA evaluation."""

    mean: float = 0.0
    std: float = 1.0

    def __post_init__(self) -> None:
        if not self.std > 0:
            raise ValueError(f"FixedNormalizer: std must be positive, got {self.std}")

    def __call__(self, scores: Tensor, mask: Tensor) -> Tensor:
        return self.standardize(scores)

    def standardize(self, x: Scores, scale: float = 1.0) -> Scores:
        """``scale · (x − mean) / std`` of a float or a tensor (``scale`` 1 changes no bit)."""
        return scale * (x - self.mean) / self.std

    def state_dict(self) -> dict:
        return {"mean": self.mean, "std": self.std}

    def load_state_dict(self, state: dict) -> None:
        self.mean, self.std = float(state["mean"]), float(state["std"])


@dataclass
class RunningNormalizer:
    """``(x − μ) / σ`` with μ, σ over every real score seen so far, this batch included.

    Statistics are merged batch by batch with Chan et al.'s parallel update, in float64, so
    the result does not depend on how the stream was batched. ``gather`` (given here, or
    later by ``set_gather``, e.g. by a data-parallel trainer through
    ``RewardAggregator.distribute``) collects every process's scores, so all processes keep
    the same statistics as one process would.
    """

    eps: float = 1e-6
    count: float = 0.0
    mean: float = 0.0
    m2: float = 0.0
    gather: Callable[[Tensor], Tensor] | None = field(default=None, repr=False, compare=False)

    def set_gather(self, gather: Callable[[Tensor], Tensor] | None) -> None:
        """Collect the scores of every process with ``gather`` (1-D tensor → the
        concatenation over processes) before each update; ``None``: this process's only."""
        self.gather = gather

    def update(self, values: Tensor) -> None:
        x = values.detach().double().flatten()
        n = x.numel()
        if n == 0:
            return
        b_mean = float(x.mean())
        b_m2 = float(((x - b_mean) ** 2).sum())
        total = self.count + n
        delta = b_mean - self.mean
        self.mean += delta * n / total
        self.m2 += b_m2 + delta**2 * self.count * n / total
        self.count = total

    @property
    def std(self) -> float:
        return (self.m2 / self.count) ** 0.5 if self.count > 1 else 1.0

    def __call__(self, scores: Tensor, mask: Tensor) -> Tensor:
        seen = scores[mask.bool()]
        self.update(self.gather(seen) if self.gather is not None else seen)
        return (scores - self.mean) / (self.std + self.eps)

    def state_dict(self) -> dict:
        return {"count": self.count, "mean": self.mean, "m2": self.m2}

    def load_state_dict(self, state: dict) -> None:
        self.count, self.mean, self.m2 = float(state["count"]), float(state["mean"]), float(state["m2"])


def make_normalizer(kind: str | None = None, mean: float = 0.0, std: float = 1.0) -> Normalizer:
    """``none`` (default), ``fixed`` (with mean, std) or ``running``."""
    if kind in (None, "none"):
        return IdentityNormalizer()
    if kind == "fixed":
        return FixedNormalizer(mean, std)
    if kind == "running":
        return RunningNormalizer()
    raise ValueError(f"unknown normalisation {kind!r}; expected none, fixed or running")


__all__ = ["FixedNormalizer", "IdentityNormalizer", "Normalizer", "RunningNormalizer", "make_normalizer"]
