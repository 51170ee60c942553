"""One AdamW builder and one warmup/decay schedule for every training loop."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


def build_adamw(model: nn.Module, lr: float, weight_decay: float = 0.0, head_lr: float | None = None,
                trunk: nn.Module | None = None, decay_norms: bool = True,
                extra: Iterable[nn.Parameter] = ()) -> torch.optim.AdamW:
    """AdamW over ``model``'s trainable parameters (and ``extra`` ones not in ``model``).

    ``trunk``: the pretrained part of ``model``; every other trainable parameter is the new
    head and learns at ``head_lr`` (default ``lr``): a randomly initialised head moves too
    slowly at an encoder's fine-tuning rate. ``decay_norms=False`` exempts biases and
    normalisation weights from weight decay (the usual BERT recipe)."""
    trunk_ids = {id(p) for p in trunk.parameters()} if trunk is not None else None
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    seen: set[int] = set()
    named = list(model.named_parameters()) + [("", p) for p in extra]
    for name, p in named:
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        is_head = trunk_ids is not None and id(p) not in trunk_ids
        decays = decay_norms or not (p.ndim < 2 or "norm" in name.lower())
        groups.setdefault((is_head, decays), []).append(p)
    head = head_lr if head_lr is not None else lr
    return torch.optim.AdamW([{"params": ps, "lr": head if is_head else lr,
                               "weight_decay": weight_decay if decays else 0.0}
                              for (is_head, decays), ps in groups.items()], lr=lr)


def warmup_decay(step: int, warmup_steps: int, total_steps: int | None, decay_after_warmup: bool = False) -> float:
    """The learning-rate factor at ``step`` (0-based): linear warmup over ``warmup_steps``
    (none if 0), times a linear decay to 0 at ``total_steps`` (none if ``None``).

    ``decay_after_warmup=False``: the decay runs from step 0, ``1 − step/total``, and
    multiplies the warmup. ``True``: the factor climbs to 1 during warmup, then falls from 1
    to 0 over the remaining ``total − warmup`` steps."""
    if decay_after_warmup:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if total_steps is None:
            return 1.0
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))
    warm = min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0
    decay = max(0.0, 1 - step / total_steps) if total_steps else 1.0
    return warm * decay


def make_scheduler(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int | None,
                   decay_after_warmup: bool = False) -> torch.optim.lr_scheduler.LambdaLR:
    """``warmup_decay`` as a scheduler, stepped once per optimizer step."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_decay(step, warmup_steps, total_steps, decay_after_warmup))
