"""DPO and IPO losses against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from fgrlhf.core.dpo import dpo_loss, implicit_rewards


def t(*xs):
    return torch.tensor(xs, dtype=torch.float64)


def test_sigmoid_dpo_by_hand():
    # h = (−5 − −6) − (−7 − −6.5) = 1 + 0.5 = 1.5; β h = 0.15
    loss = dpo_loss(t(-5.0), t(-7.0), t(-6.0), t(-6.5), beta=0.1)
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-0.15)))
    smooth = dpo_loss(t(-5.0), t(-7.0), t(-6.0), t(-6.5), beta=0.1, label_smoothing=0.2)
    assert smooth.item() == pytest.approx(0.8 * math.log(1 + math.exp(-0.15)) + 0.2 * math.log(1 + math.exp(0.15)))


def test_ipo_by_hand():
    loss = dpo_loss(t(-5.0), t(-7.0), t(-6.0), t(-6.5), beta=0.1, loss_type="ipo")
    assert loss.item() == pytest.approx((1.5 - 5.0) ** 2)


def test_equal_answers_cost_log_2_and_rewards_are_scaled_log_ratios():
    assert dpo_loss(t(-3.0), t(-3.0), t(-3.0), t(-3.0)).item() == pytest.approx(math.log(2))
    assert implicit_rewards(t(-5.0, -2.0), t(-6.0, -2.5), 0.5).tolist() == pytest.approx([0.5, 0.25])
    with pytest.raises(ValueError, match="loss_type"):
        dpo_loss(t(0.0), t(0.0), t(0.0), t(0.0), loss_type="hinge2")
