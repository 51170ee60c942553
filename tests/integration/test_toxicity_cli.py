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
                             "split.eval_prompts=100", "split.scorer_test=60", "optim.batch_size=32", "optim.freeze_layers=1",
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


def test_fasttext_scorer_and_detox_ppo_judged_by_it(tmp_path, tiny_gpt2_dir):
    """A second scorer of another kind trains in seconds, agrees with Perspective better than
    the constant baseline, and judges a detox PPO run (a LoRA policy) through fgrlhf-train's
    evaluation."""
    ckpt = tmp_path / "fasttext"
    cmd = [sys.executable, "-m", "fgrlhf.cli.toxicity", "--config-name", "toxicity_fasttext",
           f"hydra.run.dir={tmp_path}/hydra", f"checkpoint={ckpt}", "threads=1", "progress=false",
           "optim.epochs=2"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "WANDB_MODE": "offline"})
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["pearson"] > 0.3 and summary["mae"] < summary["baseline_mae"]
    assert RMMetadata.load(ckpt).backbone == "fasttext" and (ckpt / "split.json").exists()
    from fgrlhf.reward.toxicity import FastTextToxicityScorer, load_toxicity_scorer

    scorer = load_toxicity_scorer(ckpt, device="cpu")
    assert isinstance(scorer, FastTextToxicityScorer)
    texts = ["You are a stupid idiot", "The weather is nice today", ""]
    assert scorer.toxicity(texts) == pytest.approx([scorer.toxicity([t])[0] for t in texts], abs=1e-6)

    train = [sys.executable, "-m", "fgrlhf.cli.train", "experiment=tiny", "task=rtp", "reward=detox_sentence",
             f"policy.init={tiny_gpt2_dir}", f"reward.models.toxicity.checkpoint={ckpt}", "iterations=2",
             "task.prompts_per_iteration=2", "sampling.max_new_tokens=12", "save_policy=false",
             "eval.every=2", "eval.split=eval", "eval.questions=3", "eval.samples=2", "eval.batch_size=2",
             f"+eval.toxicity_scorers.judge={ckpt}",
             # LoRA: perplexity is then scored under the reference as the adapters-off view
             "policy.lora.r=4", f"hydra.run.dir={tmp_path}/ppo"]
    res = subprocess.run(train, capture_output=True, text=True, timeout=900,
                         env={**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline"})
    assert res.returncode == 0, res.stderr[-3000:]
    lines = [json.loads(x) for x in (tmp_path / "ppo" / "metrics.jsonl").read_text().splitlines()]
    assert "reward/toxicity" in lines[0] and "eval/avg_max_toxicity" not in lines[0]
    last = lines[-1]
    assert last["eval/n_prompts"] == 3 and last["eval/samples_per_prompt"] == 2
    assert 0.0 <= last["eval/avg_max_toxicity"] <= 1.0 and last["eval/perplexity"] > 1.0
    # The judge is the reward's own scorer here, so its second opinion must agree exactly.
    assert last["eval/judge/avg_max_toxicity"] == pytest.approx(last["eval/avg_max_toxicity"], abs=1e-6)
    # The initial policy is judged the same way before the first update (the curves' first point).
    initial = json.loads((tmp_path / "ppo" / "metrics.json").read_text())["eval_initial"]
    assert initial["n_prompts"] == 3 and 0.0 <= initial["judge/avg_max_toxicity"] <= 1.0

    # PPO-ptx needs reference answers, which RTP has not: refused before any model loads.
    res = subprocess.run([*train[:-1], "ppo.ptx_coef=0.1", f"hydra.run.dir={tmp_path}/ptx"], capture_output=True,
                         text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline"})
    assert res.returncode != 0 and "has none" in res.stderr
