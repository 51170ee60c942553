"""One fit loop for every supervised training: the reward models (segment classifiers and
pairwise rankers), SFT and the toxicity scorer.

Each epoch draws its minibatches of training indices from one seeded ``random.Random``;
each step runs the loss under bfloat16 autocast where asked, then backward, grad-norm
clipping, the optimizer and the learning-rate schedule. Dev evaluations run at fixed steps
of every epoch; with ``patience`` the best evaluated state is kept and restored, and training
stops once ``patience`` evaluations in a row fail to improve on it.
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn
from tqdm import tqdm

from fgrlhf.device import resolve_bf16

Batches = Callable[[random.Random], list[list[int]]]


@dataclass
class FitConfig:
    """The settings every training has; each training's config subclasses it, restating the
    defaults that differ and adding its own fields."""

    RULES: ClassVar[dict[str, str]] = {"lr": "> 0", "weight_decay": ">= 0", "epochs": "> 0", "batch_size": "> 0",
                                       "grad_clip": "> 0"}

    lr: float = 5e-5
    weight_decay: float = 0.0
    epochs: int = 1
    batch_size: int = 8
    grad_clip: float = 1.0
    seed: int = 0  # batch order and dropout
    bf16: bool | None = None  # bfloat16 autocast for forward passes; null: where it is fast
    # (CUDA, or a CPU with AVX-512 BF16/AMX; elsewhere it is ~5× slower). Weights stay float32.


@dataclass
class FitResult:
    steps: int  # optimizer-schedule steps taken
    seconds: float
    last_epoch_loss: float  # Σ loss / batches over the last epoch run (nan before any)
    best_step: int = -1  # with patience: the step of the best ``monitor`` value (-1: none evaluated)
    best_value: float = -math.inf
    out_of_time: bool = False  # stopped by ``max_minutes`` or ``max_steps``
    history: list[Any] = field(default_factory=list)  # what ``evaluate`` returned, in order


def minibatches(n: int, batch_size: int, rng: random.Random) -> list[list[int]]:
    """The indices ``0..n-1`` shuffled by ``rng`` and cut into batches of ``batch_size``
    (the last one shorter)."""
    order = list(range(n))
    rng.shuffle(order)
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


def eval_points(steps_per_epoch: int, evals_per_epoch: int) -> set[int]:
    """The in-epoch step indices after which dev is evaluated: ``evals_per_epoch`` evenly
    spaced ones (at most one per step), the last at the epoch's end."""
    k = max(1, min(evals_per_epoch, steps_per_epoch))
    return {round((i + 1) * steps_per_epoch / k) - 1 for i in range(k)}


def autocast(model: nn.Module, bf16: bool | None):
    """bfloat16 autocast on ``model``'s device, on where ``resolve_bf16(bf16)`` says so."""
    device = next(model.parameters()).device
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=resolve_bf16(bf16, device))


class EarlyStopping:
    """The best dev value (higher is better), its step and a CPU copy of the model's state."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best = -math.inf
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_step = -1
        self.bad = 0

    def update(self, value: float, model: nn.Module, step: int) -> bool:
        """Record a dev value; True when training should stop."""
        if value > self.best:
            self.best, self.best_step, self.bad = value, step, 0
            self.best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
        else:
            self.bad += 1
        return self.bad > self.patience


def fit(model: nn.Module, loss: Callable[[Sequence[int]], torch.Tensor | None], batches: Batches,
        cfg: FitConfig, optimizer: Callable[[int], tuple[torch.optim.Optimizer, Any]], *,
        evaluate: Callable[[int, int], Any] | None = None, evals_per_epoch: int = 1,
        patience: int | None = None, monitor: str = "accuracy", logger=None, prefix: str = "train",
        log_next_lr: bool = False, bf16: bool | None = None, max_minutes: float | None = None,
        max_steps: int | None = None, desc: str = "epoch", progress: bool = True) -> FitResult:
    """Train ``model`` for ``cfg.epochs`` epochs; returns what happened.

    ``loss(indices)``: the loss of one minibatch of training indices, or None when it has
    nothing to learn from (the step is skipped, the schedule still advances).
    ``batches(rng)``: one epoch's minibatches (e.g. ``minibatches``); called once more with
    ``Random(0)`` to count the steps of an epoch, which must not depend on ``rng``.
    ``optimizer(total_steps)``: the optimizer and its per-step scheduler.
    ``evaluate(epoch, step)`` (0-based) runs after in-epoch steps ``eval_points(...,
    evals_per_epoch)``, and once more when ``max_minutes`` or ``max_steps`` ends an epoch
    early; what it returns is kept in ``history``. ``max_steps`` stops after that many steps
    with the schedule of all ``cfg.epochs`` unchanged: a run that ``max_minutes`` cut short,
    made independent of the machine's speed. With ``patience`` it returns metrics whose ``monitor``
    value is maximised: the best state is restored at the end.
    ``logger.log`` gets ``{prefix}/loss`` and ``{prefix}/lr`` every step: the rate the step
    used, or with ``log_next_lr`` the one the next step will use.
    ``bf16``: autocast setting for ``loss`` (default ``cfg.bf16``); pass False when the model
    autocasts its own forward passes. A non-finite loss stops training (``FloatingPointError``).
    """
    rng = random.Random(cfg.seed)
    torch.manual_seed(cfg.seed)
    steps_per_epoch = len(batches(random.Random(0)))
    opt, sched = optimizer(steps_per_epoch * cfg.epochs)
    points = eval_points(steps_per_epoch, evals_per_epoch) if evaluate is not None else set()
    stopper = EarlyStopping(patience) if patience is not None else None
    result = FitResult(steps=0, seconds=0.0, last_epoch_loss=float("nan"))
    step, t0, stop = 0, time.time(), False
    for epoch in range(cfg.epochs):
        epoch_batches = batches(rng)
        total = 0.0
        bar = tqdm(epoch_batches, desc=f"{desc} {epoch + 1}/{cfg.epochs}", unit="step", disable=not progress)
        for i, indices in enumerate(bar):
            model.train()
            with autocast(model, cfg.bf16 if bf16 is None else bf16):
                value = loss(indices)
            if value is not None:
                if not torch.isfinite(value):
                    raise FloatingPointError(f"{prefix} loss is {value.item()} at step {step}")
                opt.zero_grad(set_to_none=True)
                value.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                opt.step()
            lr = sched.get_last_lr()[0]
            sched.step()
            if value is not None:
                total += value.item()
                bar.set_postfix(loss=f"{value.item():.3f}")
                if logger is not None:
                    logger.log({f"{prefix}/loss": value.item(),
                                f"{prefix}/lr": sched.get_last_lr()[0] if log_next_lr else lr}, step)
            result.out_of_time = ((max_minutes is not None and time.time() - t0 > 60 * max_minutes)
                                  or (max_steps is not None and step + 1 >= max_steps))
            if evaluate is not None and (i in points or result.out_of_time):
                result.history.append(evaluate(epoch, step))
                if stopper is not None and stopper.update(result.history[-1][monitor], model, step):
                    stop = True
            step += 1
            if stop or result.out_of_time:
                break
        result.last_epoch_loss = total / len(epoch_batches) if epoch_batches else float("nan")
        if stop or result.out_of_time:
            break
    if stopper is not None:
        if stopper.best_state is not None:
            model.load_state_dict(stopper.best_state)
        result.best_step, result.best_value = stopper.best_step, stopper.best
    result.steps, result.seconds = step, round(time.time() - t0, 1)
    return result
