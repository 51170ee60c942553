"""The shared fit loop on a one-parameter model: batch order, evaluation points, skipped
batches, early stopping with the best state restored, the time limit, a non-finite loss."""

from __future__ import annotations

import math
import random

import pytest
import torch
from torch import nn

from fgrlhf.toolkit.fit import FitConfig, eval_points, fit, minibatches


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[int, dict]] = []

    def log(self, metrics: dict, step: int) -> None:
        self.calls.append((step, metrics))


def test_minibatches_cover_every_index_once_in_seeded_order():
    batches = minibatches(10, 4, random.Random(3))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(i for b in batches for i in b) == list(range(10))
    assert minibatches(10, 4, random.Random(3)) == batches != minibatches(10, 4, random.Random(4))
    assert minibatches(0, 4, random.Random(0)) == []


def test_eval_points_by_hand():
    assert eval_points(4, 2) == {1, 3}
    assert eval_points(5, 2) == {1, 4}  # round(2.5) = 2
    assert eval_points(6, 3) == {1, 3, 5}
    assert eval_points(1, 2) == {0}  # at most one per step
    assert eval_points(7, 1) == {6}


def _model() -> nn.Module:
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    return model


def _sgd(model):
    """``optimizer(total_steps)`` for ``fit``: SGD at 0.1 / (step + 1)."""

    def make(total_steps: int):
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (s + 1))

    return make


def test_steps_skips_logging_and_evaluation_points():
    model = _model()
    seen, evals = [], []

    def loss(indices):
        seen.append(list(indices))
        if 0 in indices:  # nothing to learn from this batch
            return None
        return ((model.weight - 1.0) ** 2).sum() * len(indices)

    rec = Recorder()
    result = fit(model, loss, lambda rng: minibatches(6, 2, rng), FitConfig(epochs=2, seed=5), _sgd(model),
                 evaluate=lambda epoch, step: evals.append((epoch, step)) or {"accuracy": 0.0},
                 evals_per_epoch=3, logger=rec)
    rng = random.Random(5)
    assert seen == minibatches(6, 2, rng) + minibatches(6, 2, rng)
    assert result.steps == 6 and evals == [(0, 0), (0, 1), (0, 2), (1, 3), (1, 4), (1, 5)]
    skipped = [s for s, b in enumerate(seen) if 0 in b]
    assert [s for s, _ in rec.calls] == [s for s in range(6) if s not in skipped]
    # the logged rate is the one the step used: 0.1 / (step + 1), skipped steps advance it too
    assert [m["train/lr"] for _, m in rec.calls] == pytest.approx([0.1 / (s + 1) for s, _ in rec.calls])
    assert result.history == [{"accuracy": 0.0}] * 6 and result.best_step == -1


def test_next_lr_is_logged_when_asked():
    model = _model()
    rec = Recorder()
    fit(model, lambda idx: (model.weight ** 2).sum() + 1.0, lambda rng: minibatches(3, 1, rng), FitConfig(),
        _sgd(model), logger=rec, prefix="sft", log_next_lr=True)
    assert [(s, m["sft/lr"]) for s, m in rec.calls] == [(0, 0.05), (1, 0.1 / 3), (2, 0.025)]


def test_early_stopping_restores_the_best_state():
    model = _model()
    values = iter([0.1, 0.5, 0.3, 0.2, 0.9])
    weights = []

    def evaluate(epoch, step):
        weights.append(model.weight.item())
        return {"accuracy": next(values)}

    result = fit(model, lambda idx: ((model.weight - 1.0) ** 2).sum(), lambda rng: minibatches(4, 1, rng),
                 FitConfig(epochs=3), _sgd(model), evaluate=evaluate, evals_per_epoch=4, patience=1)
    # 0.3 and 0.2 fail to beat 0.5: the second miss exceeds patience 1, before 0.9 is seen
    assert len(result.history) == 4 and result.steps == 4
    assert (result.best_step, result.best_value) == (1, 0.5)
    assert model.weight.item() == weights[1] != weights[3]


def test_time_limit_stops_after_one_step_and_still_evaluates():
    model = _model()
    result = fit(model, lambda idx: (model.weight ** 2).sum() + 1.0, lambda rng: minibatches(8, 2, rng),
                 FitConfig(epochs=2), _sgd(model), evaluate=lambda epoch, step: (epoch, step), max_minutes=0.0)
    assert result.out_of_time and result.steps == 1 and result.history == [(0, 0)]
    assert result.last_epoch_loss == pytest.approx(1.0 / 4)  # one loss of 1 over the epoch's 4 batches


def test_step_limit_replays_the_first_steps_of_the_full_schedule():
    """``max_steps``: the same steps, rates and weights as the first steps of the unlimited
    run (the schedule still spans every epoch), then one evaluation where it stopped."""

    def run(max_steps):
        model, rec = _model(), Recorder()

        def linear_decay(total_steps: int):
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 - s / total_steps)

        result = fit(model, lambda idx: ((model.weight - 1.0) ** 2).sum(), lambda rng: minibatches(8, 2, rng),
                     FitConfig(epochs=2), linear_decay, evaluate=lambda epoch, step: (epoch, step), logger=rec,
                     max_steps=max_steps)
        return result, [m["train/lr"] for _, m in rec.calls], model.weight.item()

    full, full_lrs, _ = run(None)
    cut, cut_lrs, weight = run(3)
    assert not full.out_of_time and full.steps == 8 and full_lrs[-1] == pytest.approx(0.1 / 8)
    assert cut.out_of_time and cut.steps == 3 and cut.history == [(0, 2)]
    assert cut_lrs == full_lrs[:3] == pytest.approx([0.1, 0.1 * 7 / 8, 0.1 * 6 / 8])
    # each gradient 2(w - 1) has norm > 1 and is clipped to 1: the weight moves by the rate
    assert weight == pytest.approx(0.1 + 0.1 * 7 / 8 + 0.1 * 6 / 8)


def test_last_epoch_loss_is_the_mean_over_its_batches():
    model = _model()
    result = fit(model, lambda idx: torch.tensor(float(sum(idx)), requires_grad=True),
                 lambda rng: minibatches(4, 2, rng), FitConfig(epochs=2), _sgd(model))
    assert result.last_epoch_loss == pytest.approx((0 + 1 + 2 + 3) / 2)


def test_non_finite_loss_stops_training():
    model = _model()
    with pytest.raises(FloatingPointError, match="train loss is nan at step 0"):
        fit(model, lambda idx: (model.weight * math.nan).sum(), lambda rng: minibatches(2, 1, rng), FitConfig(),
            _sgd(model))
