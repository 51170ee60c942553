"""The learning-rate factors and parameter groups of each training, against hand-written
values: the RM / toxicity-scorer shape (warmup, then decay over the remaining steps) and the
SFT shape (warmup times a decay from step 0), and the AdamW groups each builds."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fgrlhf.toolkit.optim import warmup_decay
from fgrlhf.train.rm import OptimConfig, encoder_optimizer
from fgrlhf.train.sft import SFTConfig, sft_optimizer
from fgrlhf.train.toxicity import ScorerOptimConfig


def _factors(optimizer_and_scheduler, steps: int) -> list[float]:
    """The scheduler's factor (lr / base lr) at steps 0..steps-1."""
    opt, sched = optimizer_and_scheduler
    base = opt.param_groups[0]["initial_lr"]
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"] / base)
        opt.step()
        sched.step()
    return out


class _Encoder(nn.Module):
    """A pretrained-encoder stand-in: a matrix, a bias and a norm; ``base_model`` as in HF."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))
        self.score = nn.Linear(4, 1)

    @property
    def base_model(self):
        return self.encoder


@pytest.mark.parametrize(("warmup_ratio", "total", "expected"), [
    # warmup = max(1, int(0.25·8)) = 2: (s+1)/2, then (8 − s)/(8 − 2)
    (0.25, 8, [0.5, 1.0, 1.0, 5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6]),
    # warmup = max(1, int(0.06·3)) = 1 (never 0): 1, then (3 − s)/2
    (0.06, 3, [1.0, 1.0, 0.5]),
    # the RM default, 0.1 of 10 steps: one warmup step, then (10 − s)/9
    (0.1, 10, [1.0, 1.0, 8 / 9, 7 / 9, 6 / 9, 5 / 9, 4 / 9, 3 / 9, 2 / 9, 1 / 9]),
])
def test_encoder_schedule_warms_up_then_decays_over_the_rest(warmup_ratio, total, expected):
    for cfg in (OptimConfig(warmup_ratio=warmup_ratio), ScorerOptimConfig(warmup_ratio=warmup_ratio)):
        got = _factors(encoder_optimizer(_Encoder(), _Encoder().encoder, cfg, total), total)
        assert got == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(("warmup_steps", "total", "expected"), [
    # min(1, (s+1)/3) · (1 − s/6)
    (3, 6, [1 / 3, 2 / 3 * 5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6]),
    # no warmup: the decay alone
    (0, 4, [1.0, 0.75, 0.5, 0.25]),
    # warmup longer than the run: it never reaches the full rate
    (10, 4, [0.1, 0.2 * 0.75, 0.3 * 0.5, 0.4 * 0.25]),
    # one step
    (20, 1, [0.05]),
])
def test_sft_schedule_is_warmup_times_decay_from_step_0(warmup_steps, total, expected):
    model = nn.Linear(2, 2)
    got = _factors(sft_optimizer(model, SFTConfig(warmup_steps=warmup_steps), total), total)
    assert got == pytest.approx(expected, abs=1e-12)
    # the toolkit's factor with these arguments, W = 0 and T = 0 included
    assert [warmup_decay(s, warmup_steps, total) for s in range(total)] == pytest.approx(expected, abs=1e-12)


def test_sft_schedule_without_steps_starts_at_the_full_warmup_factor():
    # T = 0 is taken as 1: the first factor is the warmup's alone, as before any step.
    assert _factors(sft_optimizer(nn.Linear(2, 2), SFTConfig(warmup_steps=0), 0), 1) == [1.0]


def test_encoder_optimizer_groups():
    model = _Encoder()
    cfg = OptimConfig(lr=1e-4, head_lr=1e-2, weight_decay=0.05)
    opt, _ = encoder_optimizer(model, model.encoder, cfg, 10)
    groups = {(g["lr"], g["weight_decay"]): sorted(id(p) for p in g["params"]) for g in opt.param_groups}
    ids = lambda *ps: sorted(id(p) for p in ps)  # noqa: E731
    lin, norm = model.encoder
    assert groups == {
        (1e-4, 0.05): ids(lin.weight),  # the encoder's matrix decays
        (1e-4, 0.0): ids(lin.bias, norm.weight, norm.bias),  # biases and norms do not
        (1e-2, 0.05): ids(model.score.weight),  # the head at its own rate
        (1e-2, 0.0): ids(model.score.bias),
    }
    # head_lr unset: the head learns at the encoder's rate; frozen parameters are left out
    lin.weight.requires_grad_(False)
    opt, _ = encoder_optimizer(model, model.encoder, OptimConfig(lr=1e-4, weight_decay=0.05), 10)
    assert {g["lr"] for g in opt.param_groups} == {1e-4}
    assert sum(len(g["params"]) for g in opt.param_groups) == 5


def test_sft_optimizer_is_one_group_of_every_parameter():
    model = nn.Sequential(nn.Linear(3, 3), nn.LayerNorm(3))
    opt, _ = sft_optimizer(model, SFTConfig(lr=2e-4, weight_decay=0.1), 10)
    assert len(opt.param_groups) == 1
    (group,) = opt.param_groups
    assert (group["lr"], group["weight_decay"]) == (2e-4 * (1 / 20), 0.1)  # warmup 20: factor 1/20 at step 0
    assert [id(p) for p in group["params"]] == [id(p) for p in model.parameters()]
    assert isinstance(opt, torch.optim.AdamW)
