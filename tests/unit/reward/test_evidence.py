"""Evidence retrieval for segment reward models, and the one input path that training and
scoring share."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from fgrlhf.reward.encoding import SeparatorEncoder
from fgrlhf.reward.evidence import Retriever, bm25_scores, fuse_rankings, ranking, segment_inputs

DOCS = [Counter(a=1, b=1), Counter(a=1, c=1), Counter(c=2)]  # every document 2 words long


def test_bm25_by_hand():
    # "b" is in 1 of 3 documents: idf = log(1 + 2.5 / 1.5) = log(8/3); tf 1 at average
    # length gives tf·(k1 + 1) / (tf + k1) = 1.
    assert bm25_scores(Counter(b=1), DOCS) == pytest.approx([math.log(8 / 3), 0.0, 0.0])
    # "a" and "c" are each in 2 documents: idf = log(1 + 1.5 / 2.5) = log(1.6); "c" twice in
    # the last document: 2 · 2.2 / (2 + 1.2) = 1.375.
    idf = math.log(1.6)
    assert bm25_scores(Counter(a=1, c=1), DOCS) == pytest.approx([idf, 2 * idf, 1.375 * idf])
    assert bm25_scores(Counter(a=1), []) == []


def test_ranking_and_fusion():
    assert ranking([0.1, 0.5, 0.5, 0.2]) == [1, 2, 3, 0]  # ties keep their order
    # 0 and 2: 1/61 + 1/63 = 0.032266 each; 1: 2/62 = 0.032258.
    assert fuse_rankings([[0, 1, 2], [2, 1, 0]]) == [0, 2, 1]
    assert fuse_rankings([[0, 1], [1, 0], [1, 0]]) == [1, 0]
    assert fuse_rankings([]) == []


def test_bm25_retriever_ranks_the_sentence_that_shares_rare_words():
    sentences = ["The tower was built in 1889.", "The tower is in Paris.", "Cheese is made from milk."]
    r = Retriever("bm25")
    assert r.rank(["It was built in 1889", "made from milk"], sentences) == [[0, 1, 2], [2, 0, 1]]
    assert r.top_k(["It was built in 1889"], sentences, 1) == [[0]]
    assert r.rank(["x"], []) == [[]]
    with pytest.raises(ValueError, match="'tfidf'"):
        Retriever("tfidf")


def test_segment_inputs_reads_each_segment_with_its_own_evidence(minilm_tokenizer):
    enc = SeparatorEncoder(minilm_tokenizer, max_length=128)
    passages = [["Tower", "The tower was built in 1889.", "Cheese is made from milk."],
                ["Other", "Bananas are yellow."]]
    answer = "The tower was built in 1889. Cheese is made from milk."
    spans = [(0, 28), (29, 54)]
    windows = segment_inputs(enc, "What?", answer, spans, passages, "bm25", 1, Retriever("bm25"))
    assert [w.segment_ids for w in windows] == [[0], [1]]
    first, second = (minilm_tokenizer.decode(w.input_ids) for w in windows)
    assert "context : the tower was built in 1889. answer : [SEP] the tower" in first
    assert "cheese" not in first and "bananas" not in first
    assert "context : cheese is made from milk. answer : [SEP] cheese" in second
    # Evidence named by the annotation comes first, the retriever's fills up to k.
    windows = segment_inputs(enc, "What?", answer, spans, passages, "bm25", 1, Retriever("bm25"),
                             extra=[[2], []])
    assert "bananas are yellow" in minilm_tokenizer.decode(windows[0].input_ids)
    assert "1889. answer" not in minilm_tokenizer.decode(windows[0].input_ids)
    # The packed layout and no passages at all are unchanged.
    (w,) = segment_inputs(enc, "What?", answer, spans, passages)
    assert w.segment_ids == [0, 1] and "bananas" in minilm_tokenizer.decode(w.input_ids)
    (w,) = segment_inputs(enc, "What?", answer, spans, None)
    assert "context" not in minilm_tokenizer.decode(w.input_ids)
    with pytest.raises(ValueError, match="needs a Retriever"):
        segment_inputs(enc, "What?", answer, spans, passages, "bm25", 1, None)


def test_scoring_reads_what_training_read(tiny_bert_dir, minilm_tokenizer, tmp_path):
    """A checkpoint trained with retrieved evidence is scored on the same windows: the
    reward's P(error) equals the training code's prediction for the same example."""
    import torch
    from transformers import AutoModelForTokenClassification

    from fgrlhf.data.rm_examples import SegmentLabelExample
    from fgrlhf.reward.learned import RMMetadata, SegmentClassifierReward
    from fgrlhf.train import rm as T

    torch.manual_seed(0)
    model = AutoModelForTokenClassification.from_pretrained(tiny_bert_dir, num_labels=2)
    model.save_pretrained(tmp_path)
    minilm_tokenizer.save_pretrained(tmp_path)
    RMMetadata("factuality", "segment", "sentence", "tiny", {}, True, 96, evidence="bm25", evidence_k=1).save(tmp_path)
    passages = [["Tower", "The tower was built in 1889.", "Cheese is made from milk."]]
    answer = "The tower was built in 1889. Cheese is made from milk."
    spans = [(0, 28), (29, 54)]
    reward = SegmentClassifierReward(tmp_path, device="cpu", bf16=False)
    (probs,) = reward.error_probs(["What?"], [answer], [spans], [{"passages": passages}])
    ex = SegmentLabelExample(0, "What?", passages, answer, spans, [0, 1])
    windows = T.segment_windows(SeparatorEncoder(minilm_tokenizer, 96), [ex], T.evidence_reader(True, "bm25", 1))
    _, _, expected = T.predict_segments(model.eval(), windows, 0, torch.device("cpu"))
    assert len(windows) == 2 and probs == pytest.approx(expected, abs=1e-6)
