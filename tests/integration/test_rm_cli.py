"""fgrlhf-rm end to end with a tiny local backbone: train → checkpoint → eval → RewardModel."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from fgrlhf.reward import RewardAggregator, RewardInputs
from fgrlhf.reward.learned import RMMetadata, SegmentClassifierReward, SequenceReward
from fgrlhf.segment import decode_with_offsets

pytestmark = pytest.mark.slow


def _rm(tmp_path, *overrides):
    cmd = [sys.executable, "-m", "fgrlhf.cli.rm", f"hydra.run.dir={tmp_path}/hydra", "wandb.mode=offline",
           "split.dev_questions=6", "split.test_questions=8", "rm.optim.epochs=1", "rm.optim.batch_size=8",
           "rm.optim.freeze_layers=1", *overrides]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline"})
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1]), res


@pytest.mark.parametrize("category, kind", [("relevance", "segment"), ("factuality", "segment"),
                                            ("completeness", "sequence"), ("preference", "sequence")])
def test_train_eval_and_load(tmp_path, tiny_bert_dir, small_feedback_file, category, kind):
    ckpt = tmp_path / f"ckpt_{category}"
    summary, res = _rm(tmp_path, f"rm={category}", f"backbone={tiny_bert_dir}", f"checkpoint={ckpt}",
                       f"feedback_file={small_feedback_file}", "rm.max_length=256")
    assert f"{category} trained in" in res.stdout
    assert summary["rm"] == category and summary["split"] == "test"
    # Checkpoint: HF weights (safetensors), tokenizer, metadata, the recorded split.
    for name in ("model.safetensors", "config.json", "tokenizer.json", "fgrlhf_rm.json", "split.json"):
        assert (ckpt / name).exists(), name
    meta = RMMetadata.load(ckpt)
    assert meta.kind == kind and meta.category == category and meta.score_std > 0
    split = json.loads((ckpt / "split.json").read_text())
    assert len(split["test"]) == 8 and not set(split["test"]) & set(split["train"])
    assert (tmp_path / "hydra" / "metrics.jsonl").exists()
    if kind == "segment":
        assert {"accuracy", "error_precision", "error_recall", "error_f1", "majority_baseline"} <= set(summary)
    else:
        assert {"pairwise_accuracy", "length_baseline", "n_pairs"} <= set(summary)

    # Evaluation of the checkpoint on the whole file, as one JSON line.
    ev, _ = _rm(tmp_path, "mode=eval", f"rm={category}", f"checkpoint={ckpt}",
                f"feedback_file={small_feedback_file}", "eval_split=all")
    assert ev["split"] == "all" and ev["checkpoint"] == str(ckpt)
    if kind == "segment":
        assert ev["n_segments"] > summary["n_segments"]
    else:
        assert ev["n_pairs"] > summary["n_pairs"]


def test_learned_rewards_plug_into_the_aggregator(tmp_path, tiny_bert_dir, small_feedback_file, minilm_tokenizer,
                                                  qa_feedback):
    r1 = tmp_path / "r1"
    r3 = tmp_path / "r3"
    _rm(tmp_path, "rm=relevance", f"backbone={tiny_bert_dir}", f"checkpoint={r1}", f"feedback_file={small_feedback_file}")
    _rm(tmp_path, "rm=completeness", f"backbone={tiny_bert_dir}", f"checkpoint={r3}",
        f"feedback_file={small_feedback_file}", "rm.max_length=256")
    rel = SegmentClassifierReward(r1, positive=0.3, negative=-0.3)
    comp = SequenceReward(r3, scale=0.3)
    agg = RewardAggregator({"relevance": rel, "completeness": comp})
    exs = qa_feedback[:6]
    texts = [ex.predictions[1] for ex in exs] + [""]
    enc = minilm_tokenizer(texts, add_special_tokens=False, padding=True, return_tensors="pt")
    dec = decode_with_offsets(minilm_tokenizer, enc["input_ids"], enc["attention_mask"])
    meta = [{"question": ex.question, "passages": ex.passages} for ex in exs] + [{"question": "q", "passages": []}]
    out = agg(RewardInputs([m["question"] for m in meta], dec.texts, meta), dec)
    assert out.total.shape == enc["input_ids"].shape
    rel_scores = out.raw["relevance"].scores[out.raw["relevance"].mask]
    assert all(abs(abs(x) - 0.3) < 1e-6 for x in rel_scores.tolist())
    # one completeness score per non-empty answer, at its last token; none for the empty one
    assert out.raw["completeness"].mask.sum(1).tolist() == [1] * 6 + [0]
    assert out.total[-1].abs().sum() == 0
    with pytest.raises(ValueError, match="not a segment classifier"):
        SegmentClassifierReward(r3)
    with pytest.raises(FileNotFoundError, match="not an fgrlhf reward-model checkpoint"):
        SequenceReward(tmp_path)


def test_ranking_pairs_calibration_and_ensemble_eval(tmp_path, tiny_bert_dir, small_feedback_file):
    common = [f"backbone={tiny_bert_dir}", f"feedback_file={small_feedback_file}"]
    # R3 trained on extra, weighted pairs reports the length-matched figures and records its pairs.
    r3 = tmp_path / "r3"
    summary, _ = _rm(tmp_path, "rm=completeness", f"checkpoint={r3}", "rm.max_length=256", *common,
                     "rm.pairs.reference_answers=true", "rm.pairs.balance_length=true", "rm.pairs.matched_weight=2",
                     "rm.pairs.coverage_margin=1")
    assert {"n_matched_pairs", "matched_pairwise_accuracy", "matched_length_baseline",
            "matched_first_listed_baseline"} <= set(summary)
    assert RMMetadata.load(r3).extra["pairs"] == {"reference_answers": True, "balance_length": True,
                                                 "matched_weight": 2.0, "coverage_margin": 1.0}
    # A segment model's summary carries its calibration and draws its reliability diagram.
    r1a, r1b = tmp_path / "r1a", tmp_path / "r1b"
    s, _ = _rm(tmp_path, "rm=relevance", f"checkpoint={r1a}", *common)
    _rm(tmp_path, "rm=relevance", f"checkpoint={r1b}", "rm.optim.seed=1", *common)
    assert 0.0 <= s["ece"] <= 1.0 and sum(s["reliability"]["count"]) == s["n_segments"]
    assert (tmp_path / "hydra" / "reliability.png").read_bytes()[:4] == b"\x89PNG"
    # Two seeds evaluated as one ensemble on the same test questions.
    ev, _ = _rm(tmp_path, "mode=eval", "rm=relevance", f"checkpoint={r1a}", f"ensemble=[{r1b}]",
                f"feedback_file={small_feedback_file}")
    assert ev["ensemble"] == [str(r1a), str(r1b)] and ev["n_segments"] == s["n_segments"]
    assert "ece" in ev


def test_lora_reward_models_save_merged_checkpoints(tmp_path, tiny_bert_dir, small_feedback_file, qa_feedback,
                                                    minilm_tokenizer):
    """rm.lora trains adapters on a frozen backbone; the checkpoint is a plain merged model
    that scores through the same reward classes; LoRA with freeze_layers is refused."""
    common = [f"backbone={tiny_bert_dir}", f"feedback_file={small_feedback_file}", "rm.optim.freeze_layers=0",
              "rm.lora.r=4", "rm.optim.lr=1e-3"]
    r1, r3 = tmp_path / "r1", tmp_path / "r3"
    s1, res = _rm(tmp_path, "rm=relevance", f"checkpoint={r1}", *common)
    _rm(tmp_path, "rm=completeness", f"checkpoint={r3}", "rm.max_length=256", *common)
    assert "LoRA r=4 on the backbone" in res.stdout and "accuracy" in s1
    for ckpt in (r1, r3):
        lora = RMMetadata.load(ckpt).extra["lora"]
        assert lora["r"] == 4 and 0 < lora["trainable_parameters"]
        assert not (ckpt / "adapter_config.json").exists()
    rel, comp = SegmentClassifierReward(r1), SequenceReward(r3)
    ex = qa_feedback[0]
    enc = minilm_tokenizer([ex.predictions[0]], add_special_tokens=False, return_tensors="pt")
    dec = decode_with_offsets(minilm_tokenizer, enc["input_ids"], enc["attention_mask"])
    out = RewardAggregator({"relevance": rel, "completeness": comp})(
        RewardInputs([ex.question], dec.texts, [{"question": ex.question, "passages": ex.passages}]), dec)
    assert out.raw["relevance"].mask.sum() > 0 and out.raw["completeness"].mask.sum() == 1

    cmd = [sys.executable, "-m", "fgrlhf.cli.rm", f"hydra.run.dir={tmp_path}/bad", "rm=relevance",
           f"feedback_file={small_feedback_file}", "rm.lora.r=4", "rm.optim.freeze_layers=2"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline"})
    assert res.returncode != 0 and "rm.optim.freeze_layers=2 with rm.lora" in res.stderr


def test_a_decoder_backbone_trains_r1_with_adapters_and_scores_as_it_was_evaluated(
        tmp_path, tiny_gemma_dir, small_feedback_file, qa_feedback):
    """R1 over a causal LM (Gemma 3's layout), calibrated on dev: the checkpoint holds the
    merged trunk, its token head and the temperature; evaluating it again reproduces
    training's test figures, calibrating it again its temperature; the reward loads it."""
    from transformers import AutoTokenizer

    ckpt = tmp_path / "r1"
    summary, res = _rm(tmp_path, "rm=relevance", f"backbone={tiny_gemma_dir}", f"checkpoint={ckpt}",
                       f"feedback_file={small_feedback_file}", "rm.optim.freeze_layers=0", "rm.lora.r=4",
                       "rm.optim.lr=1e-3", "rm.calibrate=true")
    assert "LoRA r=4 on the backbone" in res.stdout and "fitted on dev" in res.stdout
    # The temperature fitted on dev is the checkpoint's, and its test figures use it.
    assert summary["temperature"] != 1.0 and RMMetadata.load(ckpt).temperature == summary["temperature"]
    assert (ckpt / "token_head.safetensors").exists() and not (ckpt / "adapter_config.json").exists()
    ev, _ = _rm(tmp_path, "mode=eval", "rm=relevance", f"checkpoint={ckpt}", f"feedback_file={small_feedback_file}",
                "eval_split=test")
    for key in ("accuracy", "error_f1", "ece", "n_segments"):
        assert ev[key] == pytest.approx(summary[key], abs=1e-6), key
    # Calibrating the saved model again (mode=calibrate) refits the same temperature.
    cal, _ = _rm(tmp_path, "mode=calibrate", "rm=relevance", f"checkpoint={ckpt}",
                 f"feedback_file={small_feedback_file}")
    assert cal["previous_temperature"] == summary["temperature"]
    assert cal["temperature"] == pytest.approx(summary["temperature"], rel=1e-3)
    tok = AutoTokenizer.from_pretrained(tiny_gemma_dir)
    ex = qa_feedback[0]
    enc = tok([ex.predictions[0]], add_special_tokens=False, return_tensors="pt")
    dec = decode_with_offsets(tok, enc["input_ids"], enc["attention_mask"])
    out = RewardAggregator({"relevance": SegmentClassifierReward(ckpt)})(
        RewardInputs([ex.question], dec.texts, [{"question": ex.question, "passages": ex.passages}]), dec)
    assert out.raw["relevance"].mask.sum() > 0


def test_calibrate_mode_fits_a_temperature_into_an_uncalibrated_checkpoint(tmp_path, tiny_bert_dir,
                                                                          small_feedback_file):
    ckpt = tmp_path / "r1"
    common = [f"feedback_file={small_feedback_file}", f"checkpoint={ckpt}"]
    summary, _ = _rm(tmp_path, "rm=relevance", f"backbone={tiny_bert_dir}", *common)
    assert summary["temperature"] == 1.0 and RMMetadata.load(ckpt).temperature == 1.0
    cal, res = _rm(tmp_path, "mode=calibrate", "rm=relevance", *common)
    assert "fitted on dev" in res.stdout and cal["previous_temperature"] == 1.0
    assert RMMetadata.load(ckpt).temperature == cal["temperature"] != 1.0
    ev, _ = _rm(tmp_path, "mode=eval", "rm=relevance", *common)
    assert ev["accuracy"] == summary["accuracy"]  # a temperature never changes a label

    for asked in (["mode=calibrate"], ["rm.calibrate=true", f"backbone={tiny_bert_dir}"]):
        cmd = [sys.executable, "-m", "fgrlhf.cli.rm", f"hydra.run.dir={tmp_path}/bad", *asked, "rm=completeness",
               *common]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                             env={**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline"})
        assert res.returncode != 0 and f"{asked[0]} fits the temperature" in res.stderr
        assert "R1/R2 only, not rm=completeness" in res.stderr
