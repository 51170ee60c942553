"""Fixed-seed tiny trainings of the three loops that share ``fgrlhf.toolkit.fit``: every
logged loss, learning rate and dev figure is pinned (``fit_pins.json``, recorded from the
loops each training had before they shared one), so a change of the loop (batch order,
schedule, evaluation points, skipped batches, early stopping, best state, time limit) shows
here."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

PINS = json.loads((Path(__file__).parent / "fit_pins.json").read_text())


class Recorder:
    """A logger that keeps every ``log(metrics, step)`` call."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, dict]] = []

    def log(self, metrics: dict, step: int) -> None:
        self.calls.append((step, dict(metrics)))


def _check(name: str, got) -> None:
    got = json.loads(json.dumps(got))  # tuples → lists, as stored
    assert _same(got, PINS[name]), f"{name}: {got} != {PINS[name]}"


def _same(a, b) -> bool:
    """Equal structure, floats to 1e-6 relative (the same arithmetic gives the same floats;
    the tolerance only admits another CPU's summation order)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and sorted(a) == sorted(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)
    return a == b


def _calls(rec: Recorder) -> list:
    return [[step, {k: v for k, v in m.items() if not k.endswith("seconds")}] for step, m in rec.calls]


def _history(result: dict) -> list:
    return [{k: v for k, v in m.items() if k != "seconds"} for m in result["history"]]


def test_segment_fit_pinned(tiny_bert_dir, minilm_tokenizer):
    from transformers import AutoModelForTokenClassification

    from fgrlhf.data.rm_examples import IGNORE
    from fgrlhf.reward.encoding import SeparatorEncoder
    from fgrlhf.train.rm import LabelledWindow, OptimConfig, train_segment_model

    enc = SeparatorEncoder(minilm_tokenizer, max_length=64)
    data = []
    for i in range(40):
        words = ["right" if (i >> k) & 1 else "wrong" for k in range(3)]
        answer = " ".join(f"{w} thing." for w in words)
        (w,) = enc.encode("question", answer, [(j * 13, j * 13 + 12) for j in range(3)])
        labels = [0 if x == "right" else 1 for x in words]
        # Half the training windows carry no label: batches of them are skipped, the schedule moves on.
        data.append(LabelledWindow(w, [IGNORE] * 3 if i < 32 and i % 2 else labels))
    torch.manual_seed(0)
    model = AutoModelForTokenClassification.from_pretrained(tiny_bert_dir, num_labels=2)
    cfg = OptimConfig(lr=2e-3, head_lr=1e-2, epochs=4, batch_size=3, patience=1, evals_per_epoch=2,
                      freeze_layers=1, error_class_weight=2.0, warmup_ratio=0.2, bf16=False)
    rec = Recorder()
    result = train_segment_model(model, data[:32], data[32:], 0, cfg, torch.device("cpu"), rec)
    got = {"calls": _calls(rec), "history": _history(result), "best_step": result["best_step"],
           "best": result["best_dev_accuracy"],
           "weight": float(model.classifier.weight.detach().double().sum())}
    _check("segment", got)


def test_ranking_fit_pinned(tiny_bert_dir, minilm_tokenizer):
    from fgrlhf.data.rm_examples import RankingExample
    from fgrlhf.reward.encoding import SeparatorEncoder
    from fgrlhf.reward.learned import MeanPoolScorer
    from fgrlhf.train.rm import OptimConfig, train_ranking_model

    enc = SeparatorEncoder(minilm_tokenizer, max_length=48)
    exs, inputs = [], []
    for i in range(18):
        answers = [" ".join(["good"] * n) for n in (1 + i % 3, 5, 9)]
        exs.append(RankingExample(i, "q", [], answers, pairs=[(1, 0), (2, 0), (2, 1)]))
        inputs.append([enc.encode_sequence("q", a) for a in answers])
    torch.manual_seed(0)
    model = MeanPoolScorer.from_pretrained(tiny_bert_dir)
    cfg = OptimConfig(lr=1e-3, epochs=3, batch_size=4, patience=5, evals_per_epoch=3, bf16=False)
    rec = Recorder()
    result = train_ranking_model(model, inputs[:14], exs[:14], inputs[14:], exs[14:], 0, cfg,
                                 torch.device("cpu"), rec)
    got = {"calls": _calls(rec), "history": _history(result), "best_step": result["best_step"],
           "best": result["best_dev_accuracy"], "weight": float(model.score.weight.detach().double().sum())}
    _check("ranking", got)


@pytest.mark.parametrize("max_minutes", [None, 0.0])
def test_sft_fit_pinned(max_minutes, tiny_gpt2_dir, qa_feedback):
    """``max_minutes=0``: the time limit stops the first epoch after one step; dev is still evaluated."""
    from fgrlhf.policy import Policy
    from fgrlhf.train.sft import SFTConfig, train_sft

    pairs = [(ex.question, ex.predictions[0]) for ex in qa_feedback[:22]]
    policy = Policy.from_pretrained(str(tiny_gpt2_dir), "auto", 48, "cpu")
    cfg = SFTConfig(lr=1e-3, epochs=2, batch_size=5, warmup_steps=2, max_answer_tokens=16, bf16=False,
                    max_minutes=max_minutes)
    rec = Recorder()
    history = train_sft(policy, pairs[:18], pairs[18:], cfg, rec)
    got = {"calls": _calls(rec), "dev_loss_before": history["dev_loss_before"], "dev_loss": history["dev_loss"],
           "steps": history["steps"], "stopped_early": history["stopped_early"]}
    _check(f"sft_{max_minutes}", got)


@pytest.mark.parametrize("backbone", ["tiny_bert", "fasttext"])
def test_toxicity_fit_pinned(backbone, tiny_bert_dir):
    from fgrlhf.data.rtp import load_rtp, scored_texts
    from fgrlhf.reward.toxicity import new_toxicity_scorer
    from fgrlhf.train.toxicity import ScorerOptimConfig, train_scorer

    records = load_rtp()
    items = scored_texts(records, [r.index for r in records[:40]])
    torch.manual_seed(0)
    scorer = new_toxicity_scorer(str(tiny_bert_dir) if backbone == "tiny_bert" else "fasttext", 32, 64, "cpu")
    cfg = ScorerOptimConfig(epochs=2, batch_size=16, freeze_layers=1 if backbone == "tiny_bert" else 0,
                            lr=1e-3 if backbone == "tiny_bert" else 0.1, bf16=False)
    rec = Recorder()
    result = train_scorer(scorer, [t.text for t in items], [float(t.toxicity) for t in items], cfg, rec,
                          progress=False)
    got = {"calls": _calls(rec), "steps": result["steps"], "final_epoch_loss": result["final_epoch_loss"],
           "toxicity": scorer.toxicity([t.text for t in items[:5]])}
    _check(f"toxicity_{backbone}", got)
