"""Reward-model training pieces: metrics by hand, layer freezing, the loops on a tiny model."""

from __future__ import annotations

import pytest
import torch

from fgrlhf.data.rm_examples import IGNORE, RankingExample
from fgrlhf.data.rm_pairs import length_matched
from fgrlhf.reward.encoding import SeparatorEncoder
from fgrlhf.train.rm import (
    LabelledWindow,
    OptimConfig,
    freeze_lower_layers,
    pairwise_metrics,
    segment_metrics,
    train_ranking_model,
    train_segment_model,
)


def test_segment_metrics_by_hand():
    preds = [1, 1, 0, 0, 1, 0, 1]
    golds = [1, 0, 0, 1, 1, IGNORE, 0]
    m = segment_metrics(preds, golds)
    # scored: (1,1) (1,0) (0,0) (0,1) (1,1) (1,0) → correct 3 of 6; tp 2, fp 2, fn 1
    assert m["n_segments"] == 6
    assert m["accuracy"] == pytest.approx(3 / 6)
    assert m["error_precision"] == pytest.approx(2 / 4)
    assert m["error_recall"] == pytest.approx(2 / 3)
    assert m["error_f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert m["majority_baseline"] == pytest.approx(3 / 6)
    assert segment_metrics([1], [IGNORE]) == {"n_segments": 0}


def test_pairwise_metrics_by_hand():
    ex = RankingExample(0, "q", [], ["a b c", "a", "a b", "x y"], pairs=[(0, 1), (1, 2), (2, 3), (3, 0)])
    scores = [[3.0, 1.0, 2.0, 2.0]]
    m = pairwise_metrics(scores, [ex])
    # model: 0>1 right, 1>2 wrong, 2=3 tie (half), 3>0 wrong → 1.5 / 4
    assert m["pairwise_accuracy"] == pytest.approx(1.5 / 4)
    # longer wins: 3>1 words right, 1<2 wrong, 2=2 half, 2<3 wrong → 1.5 / 4
    assert m["length_baseline"] == pytest.approx(1.5 / 4)
    assert m["n_pairs"] == 4
    # first listed wins: (0,1) yes, (1,2) yes, (2,3) yes, (3,0) no → 3 / 4
    assert m["first_listed_baseline"] == pytest.approx(3 / 4)
    # length-matched (longer ≤ 1.2 × shorter): only (2, 3), 2 words each → tie, tie, first wins
    assert m["n_matched_pairs"] == 1
    assert m["matched_pairwise_accuracy"] == pytest.approx(0.5)
    assert m["matched_length_baseline"] == pytest.approx(0.5)
    assert m["matched_first_listed_baseline"] == pytest.approx(1.0)


def test_length_matched_pairs_at_a_ratio():
    assert length_matched("a b c d e", "a b c d e f")  # 6 ≤ 1.2 × 5
    assert not length_matched("a b c d e", "a b c d e f g")  # 7 > 6
    assert length_matched("", "")
    assert not length_matched("", "a")
    assert length_matched("a b", "a b c", ratio=1.5)
    ex = RankingExample(0, "q", [], ["w " * 10, "w " * 11, "w " * 20], pairs=[(1, 0), (0, 1), (2, 0)])
    m = pairwise_metrics([[1.0, 2.0, 3.0]], [ex])
    # matched: (1, 0) and (0, 1) (10 vs 11 words); model right on (1, 0) only; longer wins (1, 0)
    assert m["n_matched_pairs"] == 2
    assert m["matched_pairwise_accuracy"] == pytest.approx(0.5)
    assert m["matched_length_baseline"] == pytest.approx(0.5)
    assert m["matched_first_listed_baseline"] == pytest.approx(0.5)
    assert m["pairwise_accuracy"] == pytest.approx(2 / 3)
    none = pairwise_metrics([[1.0, 2.0, 3.0]], [RankingExample(0, "q", [], ex.answers, pairs=[(2, 0)])])
    assert none["n_matched_pairs"] == 0 and "matched_pairwise_accuracy" not in none


def test_freeze_lower_layers(tiny_bert_dir):
    from transformers import AutoModelForTokenClassification

    model = AutoModelForTokenClassification.from_pretrained(tiny_bert_dir, num_labels=2)
    frozen = freeze_lower_layers(model, 1)
    layer0 = model.base_model.encoder.layer[0]
    layer1 = model.base_model.encoder.layer[1]
    assert all(not p.requires_grad for p in layer0.parameters())
    assert all(not p.requires_grad for p in model.base_model.embeddings.parameters())
    assert all(p.requires_grad for p in layer1.parameters())
    assert all(p.requires_grad for p in model.classifier.parameters())
    assert frozen == sum(p.numel() for p in model.parameters() if not p.requires_grad)
    with pytest.raises(ValueError, match="has 2 layers"):
        freeze_lower_layers(model, 3)


def test_freeze_lower_layers_of_a_decoder_backbone(tmp_path, qa_feedback):
    """A decoder (Gemma 3 layout) under the scalar head: embed_tokens and layers[:n] freeze."""
    from fgrlhf.policy.gemma import build_tiny_gemma3
    from fgrlhf.reward.learned import MeanPoolScorer

    path = build_tiny_gemma3(tmp_path / "gemma", [p for ex in qa_feedback[:10] for p in ex.predictions],
                             vocab_size=300)
    model = MeanPoolScorer.from_pretrained(path)
    frozen = freeze_lower_layers(model, 1)
    base = model.base_model
    assert all(not p.requires_grad for p in base.embed_tokens.parameters())
    assert all(not p.requires_grad for p in base.layers[0].parameters())
    assert all(p.requires_grad for p in base.layers[1].parameters())
    assert all(p.requires_grad for p in model.score.parameters())
    assert frozen == sum(p.numel() for p in model.parameters() if not p.requires_grad)


def test_segment_training_learns_a_separable_signal(tiny_bert_dir, minilm_tokenizer):
    """Segments saying 'wrong' are errors, 'right' are not: the loop must learn that."""
    from transformers import AutoModelForTokenClassification

    torch.manual_seed(0)
    enc = SeparatorEncoder(minilm_tokenizer, max_length=64)
    data = []
    for i in range(48):
        words = ["right" if (i >> k) & 1 else "wrong" for k in range(3)]
        answer = " ".join(f"{w} thing." for w in words)
        spans = [(j * 13, j * 13 + 12) for j in range(3)]  # "right thing." is 12 chars, then a space
        (w,) = enc.encode("question", answer, spans)
        data.append(LabelledWindow(w, [0 if x == "right" else 1 for x in words]))
    model = AutoModelForTokenClassification.from_pretrained(tiny_bert_dir, num_labels=2)
    cfg = OptimConfig(lr=3e-3, epochs=20, batch_size=8, patience=100, evals_per_epoch=1)
    result = train_segment_model(model, data[:40], data[40:], 0, cfg, torch.device("cpu"))
    assert result["best_dev_accuracy"] == 1.0
    assert result["history"][0]["step"] == 4 and len(result["history"]) == 20


def test_ranking_training_learns_longer_is_better(tiny_bert_dir, minilm_tokenizer):
    from fgrlhf.reward.learned import MeanPoolScorer

    torch.manual_seed(0)
    enc = SeparatorEncoder(minilm_tokenizer, max_length=64)
    exs, inputs = [], []
    for i in range(24):
        answers = [" ".join(["good"] * n) for n in (1 + i % 3, 5, 9)]
        exs.append(RankingExample(i, "q", [], answers, pairs=[(1, 0), (2, 0), (2, 1)]))
        inputs.append([enc.encode_sequence("q", a) for a in answers])
    model = MeanPoolScorer.from_pretrained(tiny_bert_dir)
    cfg = OptimConfig(lr=3e-3, epochs=6, batch_size=4, patience=100, evals_per_epoch=1)
    result = train_ranking_model(model, inputs[:20], exs[:20], inputs[20:], exs[20:], 0, cfg, torch.device("cpu"))
    assert result["best_dev_accuracy"] == 1.0


def test_ranking_training_refuses_a_dev_split_without_pairs(tiny_bert_dir, minilm_tokenizer):
    from fgrlhf.reward.learned import MeanPoolScorer

    enc = SeparatorEncoder(minilm_tokenizer, max_length=32)
    exs = [RankingExample(i, "q", [], ["a b", "a"], pairs=[(0, 1)] if i < 4 else []) for i in range(6)]
    inputs = [[enc.encode_sequence("q", a) for a in ex.answers] for ex in exs]
    model = MeanPoolScorer.from_pretrained(tiny_bert_dir)
    cfg = OptimConfig(lr=1e-3, epochs=1, batch_size=2)
    with pytest.raises(ValueError, match="dev split .*2 questions.* no comparison pairs"):
        train_ranking_model(model, inputs[:4], exs[:4], inputs[4:], exs[4:], 0, cfg, torch.device("cpu"))


def _adapters_train_merge_and_reload(model, reload, inputs, tmp_path):
    """Only the adapters and the head train; merging keeps the trained model's outputs; the
    merged checkpoint is a plain model that reloads to the same outputs."""
    from fgrlhf.policy.lora import LoRAConfig, add_trunk_adapters, merge_trunk_adapters

    head = {n for n, _ in model.named_parameters() if n.startswith(("classifier", "score"))}
    trainable = add_trunk_adapters(model, LoRAConfig(r=4, alpha=8))
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert names and all("lora_" in n or n in head for n in names) and head <= names
    assert trainable == sum(p.numel() for p in model.parameters() if p.requires_grad)
    before = model(**inputs).logits.detach()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    for _ in range(3):
        opt.zero_grad()
        model(**inputs).logits.float().pow(2).mean().neg().backward()
        opt.step()
    model.eval()
    trained = model(**inputs).logits.detach()
    assert not torch.allclose(trained, before)
    merge_trunk_adapters(model)
    assert not any("lora_" in n for n, _ in model.named_parameters())
    torch.testing.assert_close(model(**inputs).logits, trained, atol=1e-5, rtol=1e-4)
    model.save_pretrained(tmp_path / "merged")
    torch.testing.assert_close(reload(tmp_path / "merged").eval()(**inputs).logits, trained, atol=1e-5, rtol=1e-4)


def test_lora_on_a_token_classifier_backbone(tiny_bert_dir, tmp_path):
    from transformers import AutoModelForTokenClassification

    torch.manual_seed(0)
    model = AutoModelForTokenClassification.from_pretrained(tiny_bert_dir, num_labels=2)
    ids = torch.randint(5, 100, (2, 12))
    _adapters_train_merge_and_reload(model, AutoModelForTokenClassification.from_pretrained,
                                     {"input_ids": ids, "attention_mask": torch.ones_like(ids)}, tmp_path)


def test_lora_on_a_decoder_backbone_under_the_scalar_head(tmp_path, qa_feedback):
    """Gemma 3's layout (a decoder) as a completeness/preference backbone with adapters."""
    from fgrlhf.policy.gemma import build_tiny_gemma3
    from fgrlhf.reward.learned import MeanPoolScorer

    path = build_tiny_gemma3(tmp_path / "gemma", [p for ex in qa_feedback[:10] for p in ex.predictions],
                             vocab_size=300)
    torch.manual_seed(0)
    model = MeanPoolScorer.from_pretrained(path)
    ids = torch.randint(5, 300, (2, 12))
    _adapters_train_merge_and_reload(model, MeanPoolScorer.from_pretrained,
                                     {"input_ids": ids, "attention_mask": torch.ones_like(ids)}, tmp_path)


def test_lora_on_a_decoder_backbone_under_the_token_head(tiny_gemma_dir, tmp_path):
    """Gemma 3's layout as an R1/R2 backbone (read at closing separators) with adapters."""
    from fgrlhf.reward.learned import load_token_classifier

    torch.manual_seed(0)
    model = load_token_classifier(tiny_gemma_dir, sep_token_id=1)
    ids = torch.randint(5, 300, (2, 12))
    ids[:, [3, 7, 11]] = 1  # separators
    _adapters_train_merge_and_reload(model, load_token_classifier,
                                     {"input_ids": ids, "attention_mask": torch.ones_like(ids)}, tmp_path)


def test_segment_training_of_a_decoder_learns_a_separable_signal(tiny_gemma_dir):
    """As for an encoder: segments saying 'wrong' are errors; the decoder must read each one
    before its label is taken."""
    from transformers import AutoTokenizer

    from fgrlhf.reward.learned import load_token_classifier

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(tiny_gemma_dir)
    enc = SeparatorEncoder(tok, max_length=64)
    data = []
    for i in range(48):
        words = ["right" if (i >> k) & 1 else "wrong" for k in range(3)]
        answer = " ".join(f"{w} thing." for w in words)
        spans = [(j * 13, j * 13 + 12) for j in range(3)]
        (w,) = enc.encode("question", answer, spans)
        data.append(LabelledWindow(w, [0 if x == "right" else 1 for x in words]))
    model = load_token_classifier(tiny_gemma_dir, enc.sep_id)
    cfg = OptimConfig(lr=3e-3, epochs=20, batch_size=8, patience=100, evals_per_epoch=1)
    result = train_segment_model(model, data[:40], data[40:], tok.pad_token_id, cfg, torch.device("cpu"))
    assert result["best_dev_accuracy"] == 1.0
