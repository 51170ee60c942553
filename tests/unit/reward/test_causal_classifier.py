"""Segment classifiers (R1/R2) over a decoder trunk: each segment is read at the separator
that closes it, since a left-to-right model's state at the opening separator has not read it."""

from __future__ import annotations

import pytest
import torch

from fgrlhf.reward.encoding import SeparatorEncoder, adds_bos
from fgrlhf.reward.learned import (
    CausalTokenClassifier,
    closing_separators,
    is_causal_trunk,
    load_token_classifier,
    window_logits,
)

SEGMENTS = ["The river is long.", "It flows north.", "Fish live there."]


def _answer_and_spans(segments):
    answer, spans = "", []
    for seg in segments:
        start = len(answer) + (1 if answer else 0)
        answer = f"{answer} {seg}" if answer else seg
        spans.append((start, len(answer)))
    return answer, spans


def test_encoders_and_decoders_are_told_apart():
    from transformers import BertConfig, Gemma3TextConfig, GPT2Config, LongformerConfig, RobertaConfig

    assert [is_causal_trunk(c()) for c in (BertConfig, RobertaConfig, LongformerConfig)] == [False] * 3
    assert [is_causal_trunk(c()) for c in (Gemma3TextConfig, GPT2Config)] == [True] * 2


def test_closing_separators_point_at_the_next_separator_among_real_tokens():
    sep = 1
    ids = torch.tensor([[5, 9, 1, 7, 7, 1, 8, 1, 0, 0],
                        [5, 1, 7, 1, 0, 0, 0, 0, 0, 0]])  # [2, 10]
    mask = (torch.arange(10) < torch.tensor([[8], [4]])).long()
    at = closing_separators(ids, mask, sep)
    # Row 0: separators at 2, 5, 7 (7 ends the window); row 1: at 1 and 3, then padding.
    assert at[0].tolist() == [2, 2, 5, 5, 5, 7, 7, 7, 8, 9]
    assert at[1].tolist() == [1, 3, 3, 3, 4, 5, 6, 7, 8, 9]


def test_a_decoder_reads_each_segment_at_the_separator_that_closes_it(tiny_gemma_dir):
    from transformers import AutoTokenizer

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(tiny_gemma_dir)
    model = load_token_classifier(tiny_gemma_dir, SeparatorEncoder(tok).sep_id).eval()
    assert isinstance(model, CausalTokenClassifier)
    enc = SeparatorEncoder(tok, max_length=128)

    def logits(segments):
        answer, spans = _answer_and_spans(segments)
        (w,) = enc.encode("where is the river?", answer, spans)
        with torch.no_grad():
            return window_logits(model, [w], tok.pad_token_id, torch.device("cpu"), 4)[0]  # [3, 2]

    base = logits(SEGMENTS)
    changed_first = logits(["The river is very short.", *SEGMENTS[1:]])
    changed_last = logits([*SEGMENTS[:2], "Birds nest on it."])
    # Each segment's logits depend on its own words (read after them) ...
    assert not torch.allclose(changed_first[0], base[0])
    assert not torch.allclose(changed_last[2], base[2])
    # ... and, left to right, never on the segments after it.
    torch.testing.assert_close(changed_last[:2], base[:2])

    # Padding in a batch changes nothing: a short window beside a long one scores the same.
    answer, spans = _answer_and_spans(SEGMENTS)
    (long,) = enc.encode("where is the river?", answer, spans)
    (short,) = enc.encode("where?", SEGMENTS[0], [(0, len(SEGMENTS[0]))])
    with torch.no_grad():
        both = window_logits(model, [long, short], tok.pad_token_id, torch.device("cpu"), 4)
        alone = window_logits(model, [short], tok.pad_token_id, torch.device("cpu"), 4)
    torch.testing.assert_close(both[1], alone[0], atol=1e-5, rtol=1e-4)


def test_a_causal_classifier_saves_and_reloads_with_its_head(tiny_gemma_dir, tmp_path):
    torch.manual_seed(0)
    model = load_token_classifier(tiny_gemma_dir, sep_token_id=1).eval()
    torch.nn.init.normal_(model.score.weight)
    model.save_pretrained(tmp_path / "ckpt")
    again = load_token_classifier(tmp_path / "ckpt").eval()  # the head file holds the separator id
    assert again.sep_token_id == 1 and again.score.out_features == 2
    ids = torch.tensor([[2, 40, 41, 1, 42, 43, 1]])
    with torch.no_grad():
        torch.testing.assert_close(again(ids, torch.ones_like(ids)).logits, model(ids, torch.ones_like(ids)).logits)
    with pytest.raises(ValueError, match="needs sep_token_id"):
        CausalTokenClassifier.from_pretrained(tiny_gemma_dir)


def test_an_encoder_backbone_keeps_hugging_faces_token_classifier(tiny_bert_dir):
    from transformers import BertForTokenClassification

    model = load_token_classifier(tiny_bert_dir)
    assert isinstance(model, BertForTokenClassification) and model.config.id2label == {0: "no-error", 1: "error"}


def test_the_window_starts_with_the_tokenizers_own_start_token(tiny_gemma_dir, minilm_tokenizer):
    from tokenizers.processors import TemplateProcessing
    from transformers import AutoTokenizer

    assert SeparatorEncoder(minilm_tokenizer).bos == [minilm_tokenizer.cls_token_id]
    tok = AutoTokenizer.from_pretrained(tiny_gemma_dir)
    assert adds_bos(tok) == []  # this BPE adds no start token, so the window has none
    # A decoder whose tokenizer starts every input with <bos> (Gemma, Llama) gets it too.
    tok._tokenizer.post_processor = TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", tok.bos_token_id)])
    enc = SeparatorEncoder(tok)
    assert enc.bos == [tok.bos_token_id]
    (w,) = enc.encode("q", SEGMENTS[0], [(0, len(SEGMENTS[0]))])
    assert w.input_ids[0] == tok.bos_token_id and w.input_ids[w.sep_positions[0]] == enc.sep_id
