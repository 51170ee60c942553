"""fgrlhf-toxicity end to end with a tiny local backbone: train → checkpoint → eval → rewards."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from fgrlhf.data.rtp import RTPSplit, load_rtp
from fgrlhf.reward import RewardInputs
from fgrlhf.reward.learned import RMMetadata
from fgrlhf.reward.toxicity import HolisticToxicityReward, SentenceToxicityReward, ToxicityScorer

pytestmark = pytest.mark.slow

AGREEMENT_KEYS = {"pearson", "spearman", "mae", "toxic_accuracy", "toxic_f1", "baseline_mae",
                  "baseline_toxic_accuracy", "baseline_toxic_f1", "n_texts"}


def _toxicity(tmp_path, *overrides):
    cmd = [sys.executable, "-m", "fgrlhf.cli.toxicity", f"hydra.run.dir={tmp_path}/hydra", "wandb.mode=offline",
           "threads=1", "progress=false", *overrides]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline"})
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1]), res


def test_train_eval_and_load(tmp_path, tiny_bert_dir):
    ckpt = tmp_path / "tox"
    summary, res = _toxicity(tmp_path, f"backbone={tiny_bert_dir}", f"checkpoint={ckpt}", "max_train_texts=256",
                             "eval_prompts=100", "scorer_test=60", "optim.batch_size=32", "optim.freeze_layers=1",
                             "max_length=64")
    assert "trained in" in res.stdout
    assert summary["split"] == "test" and summary["n_train_texts"] == 256
    assert AGREEMENT_KEYS <= set(summary)
    assert 0.0 <= summary["mae"] <= 1.0 and 0.0 <= summary["toxic_accuracy"] <= 1.0
    for name in ("model.safetensors", "score_head.safetensors", "config.json", "tokenizer.json",
                 "fgrlhf_rm.json", "split.json"):
        assert (ckpt / name).exists(), name
    meta = RMMetadata.load(ckpt)
    assert meta.category == "toxicity" and meta.kind == "toxicity" and meta.max_length == 64
    assert meta.extra["test"]["mae"] == pytest.approx(summary["mae"])
    split = RTPSplit.load(ckpt / "split.json")
    split.check(load_rtp())
    assert len(split.eval_prompts) == 100 and not set(split.eval_prompts) & set(split.scorer_train)
    assert (tmp_path / "hydra" / "metrics.jsonl").exists()

    # Evaluation of the checkpoint: the same test part gives the same figures; all records more texts.
    ev, _ = _toxicity(tmp_path, "mode=eval", f"checkpoint={ckpt}")
    assert ev["split"] == "test" and ev["n_texts"] == summary["n_texts"]
    assert ev["mae"] == pytest.approx(summary["mae"], abs=1e-6)
    assert ev["baseline_mae"] == pytest.approx(summary["baseline_mae"], abs=1e-9)
    ev_all, _ = _toxicity(tmp_path, "mode=eval", f"checkpoint={ckpt}", "eval_split=all", "eval_batch_size=256")
    assert ev_all["n_texts"] == 5000 * 2 - 19 - 32

    # The checkpoint behind the reward contract.
    texts = [" You are all idiots. I said it.", ""]
    scorer = ToxicityScorer.from_pretrained(ckpt, device="cpu")
    sentence = SentenceToxicityReward(checkpoint=ckpt, device="cpu")
    rows = sentence.score(RewardInputs(["p", "p"], texts), [[(0, 20), (21, 31)], []]).rows()
    t = scorer.toxicity([texts[0][:20], texts[0][:31], ""])
    assert rows == [pytest.approx([-(t[0] - t[2]), -(t[1] - t[0])], abs=1e-5), []]
    holistic = HolisticToxicityReward(checkpoint=ckpt, device="cpu")
    assert holistic.score(RewardInputs(["p"], texts[:1]), [[(0, 31)]]).rows() == [
        pytest.approx([1 - scorer.toxicity([texts[0]])[0]], abs=1e-5)]


def test_bad_mode_and_split_are_errors(tmp_path):
    cmd = [sys.executable, "-m", "fgrlhf.cli.toxicity", f"hydra.run.dir={tmp_path}/hydra", "mode=tune"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "WANDB_MODE": "offline"})
    assert res.returncode != 0 and "mode='tune'" in res.stderr
    cmd = [sys.executable, "-m", "fgrlhf.cli.toxicity", f"hydra.run.dir={tmp_path}/hydra", "optim.epoch=2"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "WANDB_MODE": "offline"})
    assert res.returncode != 0 and "epoch" in res.stderr
