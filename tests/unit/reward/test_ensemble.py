"""Seed ensembles of reward models: the averaging by hand, and real tiny checkpoints whose
ensemble equals the mean of its members."""

from __future__ import annotations

import pytest
import torch

from fgrlhf.reward.base import RewardInputs
from fgrlhf.reward.ensemble import SegmentEnsembleReward, SequenceEnsembleReward, mean_rows, spread_rows
from fgrlhf.reward.learned import RMMetadata, SegmentClassifierReward, SequenceReward, error_rewards


def test_mean_and_spread_by_hand():
    members = [[[0.2, 0.4], [1.0]], [[0.6, 0.4], [0.0]]]
    got = mean_rows(members)
    assert got[0] == pytest.approx([0.4, 0.4]) and got[1] == pytest.approx([0.5])
    spread = spread_rows(members)
    assert spread[0] == pytest.approx([0.2, 0.0]) and spread[1] == pytest.approx([0.5])
    assert mean_rows([[[0.3]]]) == [[0.3]]
    with pytest.raises(ValueError, match=r"member 1 scored \[1\] segments per answer, member 0 \[2\]"):
        mean_rows([[[0.1, 0.2]], [[0.1]]])
    with pytest.raises(ValueError, match="at least one member"):
        mean_rows([])


def test_error_rewards_label_and_expected():
    probs = [[0.2, 0.8], []]
    assert error_rewards(probs, 0.3, -0.3, "label") == [[0.3, -0.3], []]
    got = error_rewards(probs, 0.5, -0.5, "expected")
    assert got[0] == pytest.approx([0.3, -0.3]) and got[1] == []


def _segment_checkpoint(tmp_path, tiny_bert_dir, minilm_tokenizer, seed, category="relevance"):
    from transformers import AutoModelForTokenClassification

    torch.manual_seed(seed)
    model = AutoModelForTokenClassification.from_pretrained(tiny_bert_dir, num_labels=2)
    path = tmp_path / f"{category}-seed{seed}"
    model.save_pretrained(path)
    minilm_tokenizer.save_pretrained(path)
    RMMetadata(category, "segment", "subsentence", str(tiny_bert_dir), {"0": "no-error", "1": "error"}, False,
               128).save(path)
    return path


def _sequence_checkpoint(tmp_path, tiny_bert_dir, minilm_tokenizer, seed, mean, std):
    from fgrlhf.reward.learned import MeanPoolScorer

    torch.manual_seed(seed)
    model = MeanPoolScorer.from_pretrained(tiny_bert_dir)
    path = tmp_path / f"completeness-seed{seed}"
    model.save_pretrained(path)
    minilm_tokenizer.save_pretrained(path)
    RMMetadata("completeness", "sequence", "sequence", str(tiny_bert_dir), {"score": "higher is better"}, False,
               128, score_mean=mean, score_std=std).save(path)
    return path


QUESTIONS = ["Who wrote it?", "Where is it?"]
TEXTS = ["Ann wrote it. Then she left.", "It is in Rome."]
SPANS = [[(0, 13), (14, 28)], [(0, 14)]]
META = [{}, {}]


def test_segment_ensemble_is_the_mean_of_its_members(tmp_path, tiny_bert_dir, minilm_tokenizer):
    paths = [_segment_checkpoint(tmp_path, tiny_bert_dir, minilm_tokenizer, s) for s in (0, 1, 2)]
    singles = [SegmentClassifierReward(p, device="cpu", bf16=False).error_probs(QUESTIONS, TEXTS, SPANS, META)
               for p in paths]
    ens = SegmentEnsembleReward(paths, positive=0.3, negative=-0.3, mode="expected", device="cpu", bf16=False)
    probs = ens.error_probs(QUESTIONS, TEXTS, SPANS, META)
    for b in range(2):
        for i in range(len(SPANS[b])):
            assert probs[b][i] == pytest.approx(sum(s[b][i] for s in singles) / 3, abs=1e-6)
    rows = ens.score(RewardInputs(QUESTIONS, TEXTS, META), SPANS).rows()
    assert rows[0][0] == pytest.approx(0.3 - 0.6 * probs[0][0], abs=1e-6)
    assert ens.granularity.value == "subsentence"


def test_sequence_ensemble_averages_standardised_scores(tmp_path, tiny_bert_dir, minilm_tokenizer):
    paths = [_sequence_checkpoint(tmp_path, tiny_bert_dir, minilm_tokenizer, 0, 0.5, 2.0),
             _sequence_checkpoint(tmp_path, tiny_bert_dir, minilm_tokenizer, 1, -1.0, 0.5)]
    raw = [SequenceReward(p, device="cpu", bf16=False).raw_scores(QUESTIONS, TEXTS, META) for p in paths]
    ens = SequenceEnsembleReward(paths, scale=0.3, device="cpu", bf16=False)
    got = ens.raw_scores(QUESTIONS, TEXTS, META)
    for b in range(2):
        expected = ((raw[0][b] - 0.5) / 2.0 + (raw[1][b] + 1.0) / 0.5) / 2
        assert got[b] == pytest.approx(expected, abs=1e-5)
    rows = ens.score(RewardInputs(QUESTIONS, TEXTS, META), SPANS).rows()
    assert rows[0][0] == 0.0 and rows[0][1] == pytest.approx(0.3 * got[0], abs=1e-5)
    assert ens.meta.score_mean == 0.0 and ens.meta.score_std == 1.0


def test_members_must_judge_the_same_thing(tmp_path, tiny_bert_dir, minilm_tokenizer):
    a = _segment_checkpoint(tmp_path, tiny_bert_dir, minilm_tokenizer, 0)
    b = _segment_checkpoint(tmp_path, tiny_bert_dir, minilm_tokenizer, 1, category="factuality")
    with pytest.raises(ValueError, match="factuality-seed1 is a factuality model"):
        SegmentEnsembleReward([a, b], device="cpu")
    with pytest.raises(ValueError, match="at least one checkpoint"):
        SegmentEnsembleReward([], device="cpu")
