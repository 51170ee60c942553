"""The PPO run recipe's own pieces: the data order a run (and its resumption) follows, and
the summary written to metrics.json."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from fgrlhf.train.ppo_run import PPORunConfig, PromptOrder, summarise


def test_prompt_order_passes_over_a_seeded_shuffle_and_reshuffles_at_the_end():
    shuffled = list(range(7))
    random.Random(3).shuffle(shuffled)
    order = PromptOrder(7, seed=3)
    assert order.next(3) == shuffled[0:3]
    assert order.next(3) == shuffled[3:6]
    # 6 + 3 > 7: a new pass, from the start of the same stream's next shuffle.
    rng = random.Random(3)
    again = list(range(7))
    rng.shuffle(again)
    rng.shuffle(again)
    assert order.next(3) == again[0:3]
    assert order.position == 3


def test_a_restored_prompt_order_continues_exactly_where_it_stopped():
    run = PromptOrder(10, seed=0)
    for _ in range(4):
        run.next(3)
    saved = run.state_dict()
    expected = [run.next(3), run.sample(2), run.next(3)]
    resumed = PromptOrder(10, seed=123)  # another seed: everything must come from the state
    resumed.load_state_dict(saved)
    assert [resumed.next(3), resumed.sample(2), resumed.next(3)] == expected


def test_ptx_samples_are_distinct_training_indices():
    order = PromptOrder(5, seed=1)
    picks = order.sample(5)
    assert sorted(picks) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError):
        order.sample(6)


def test_summary_averages_the_last_five_iterations_and_strips_eval_prefixes():
    cfg = PPORunConfig(iterations=6)
    cfg.reward.name, cfg.reward.weights = "rules", {"length": 0.3}
    history = [{"reward/total": float(i)} for i in range(6)]
    history[3]["eval/relevance_ratio"] = 0.25
    history[5]["eval/relevance_ratio"] = 0.75
    summary = summarise(cfg, history, {"eval/relevance_ratio": 0.5}, processes=2, out=Path("/runs/x"))
    assert summary["final"] == {"reward/total": 3.0}  # iterations 1-5; the keys all of them have
    assert summary["first"] == {"reward/total": 0.0}
    assert summary["eval"] == {"relevance_ratio": 0.75}  # the last evaluation
    assert summary["eval_initial"] == {"relevance_ratio": 0.5}
    assert (summary["reward"], summary["weights"], summary["processes"], summary["output"]) == \
        ("rules", {"length": 0.3}, 2, "/runs/x")


def test_an_evaluation_at_the_start_of_the_last_five_is_not_averaged():
    """Evaluated every 4 of 12 iterations, the last five (7-11) start with an evaluation that
    the others lack: the mean is of what all five have, the evaluation reported as such."""
    history = [{"reward/total": float(i)} for i in range(12)]
    for it in (3, 7, 11):
        history[it]["eval/avg_max_toxicity"] = it / 100
    summary = summarise(PPORunConfig(iterations=12), history, None, processes=1, out=Path("."))
    assert summary["final"] == {"reward/total": 9.0}
    assert summary["eval"] == {"avg_max_toxicity": 0.11}


def test_summary_of_a_run_without_iterations_or_evaluations():
    summary = summarise(PPORunConfig(iterations=0), [], None, processes=1, out=Path("."))
    assert summary["final"] == {} and summary["first"] == {}
    assert "eval" not in summary and "eval_initial" not in summary
