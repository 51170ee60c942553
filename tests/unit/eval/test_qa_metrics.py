"""QA-Feedback evaluation: ratios pooled by hand, ROUGE-Lsum by hand, the loop end to end."""

from __future__ import annotations

import json
import math

import pytest
import torch

from fgrlhf.eval.qa import (
    best_rouge_lsum,
    error_free_ratio,
    evaluate_qa,
    segment_verdicts,
    sentence_lines,
    sequence_scores,
    summarize,
    write_jsonl,
)
from fgrlhf.reward import KeywordReward, LengthReward, RewardInputs
from fgrlhf.segment import Granularity, MultiGranularitySegmenter, SpacySentenceSegmenter


@pytest.fixture(scope="module")
def segmenter():
    return MultiGranularitySegmenter()


# --- ratios ----------------------------------------------------------------------------

def test_error_free_ratio_pools_segments_over_answers():
    # 2 + 0 + 1 error-free of 3 + 0 + 2 segments; the empty answer adds nothing.
    errors = [[False, True, False], [], [True, False]]
    assert error_free_ratio(errors) == pytest.approx(3 / 5)
    # Not the mean of per-answer ratios, (2/3 + 1/2) / 2:
    assert error_free_ratio(errors) != pytest.approx((2 / 3 + 1 / 2) / 2)
    assert error_free_ratio([[], []]) is None
    assert error_free_ratio([]) is None


def test_rule_reward_verdicts_and_pooled_ratio(segmenter):
    texts = ["The tower is tall. It was built in 1889. Paris loves it.", "", "It was built long ago."]
    inputs = RewardInputs(["q"] * 3, texts)
    spans = segmenter(texts, [Granularity.SENTENCE])[Granularity.SENTENCE]
    reward = KeywordReward(["built"], granularity="sentence", hit=-1.0, miss=0.0)
    verdicts = segment_verdicts(reward, inputs, spans)
    assert [[v["text"] for v in row] for row in verdicts] == [
        ["The tower is tall.", "It was built in 1889.", "Paris loves it."], [], ["It was built long ago."]]
    assert [[v["error"] for v in row] for row in verdicts] == [[False, True, False], [], [True]]
    assert [[v["score"] for v in row] for row in verdicts] == [[0.0, -1.0, 0.0], [], [-1.0]]
    assert all("error_prob" not in v for row in verdicts for v in row)
    # 2 error-free sentences of 4; the per-answer mean would be (2/3 + 0) / 2 = 1/3.
    assert error_free_ratio([[v["error"] for v in row] for row in verdicts]) == pytest.approx(2 / 4)


def test_summarize_by_hand():
    def seg(error):
        return {"start": 0, "end": 1, "text": "x", "error": error}

    records = [
        {"relevance": [seg(False), seg(True)], "completeness": 1.0, "rougeLsum": 50.0,
         "length_words": 4, "length_tokens": 6},
        {"relevance": [], "completeness": -2.0, "rougeLsum": None, "length_words": 0, "length_tokens": 1},
        {"relevance": [seg(False)], "completeness": 0.5, "rougeLsum": 20.0, "length_words": 2,
         "length_tokens": 3},
    ]
    s = summarize(records)
    assert s["n_answers"] == 3
    assert s["relevance_ratio"] == pytest.approx(2 / 3)
    assert s["relevance_segments"] == 3
    assert "factuality_ratio" not in s
    assert s["completeness"] == pytest.approx(-0.5 / 3)
    assert s["rougeLsum"] == pytest.approx(35.0)  # the answer without references is left out
    assert s["length_words"] == pytest.approx(2.0)
    assert s["length_tokens"] == pytest.approx(10 / 3)
    assert s["empty_answers"] == pytest.approx(1 / 3)


# --- ROUGE-Lsum ------------------------------------------------------------------------

def test_rouge_lsum_identical_disjoint_and_best_reference():
    assert best_rouge_lsum("the cat sat\nit was red", ["the cat sat\nit was red"]) == pytest.approx(100.0)
    assert best_rouge_lsum("the cat sat", ["dogs bark loudly"]) == pytest.approx(0.0)
    # LCS("the cat sat", "the cat ran") = 2 of 3 tokens each way: F = 2/3; the other reference shares nothing.
    assert best_rouge_lsum("the cat sat", ["a dog", "the cat ran"]) == pytest.approx(200 / 3)
    assert best_rouge_lsum("anything", []) is None
    assert best_rouge_lsum("", ["the cat ran"]) == pytest.approx(0.0)


def test_rouge_lsum_unions_lcs_per_reference_sentence():
    # Reference sentence "the cat ran" hits {the, cat} in prediction sentence 1, "it was red"
    # hits all 3 tokens of sentence 2: 5 hits of 6 tokens on both sides, F = 5/6.
    assert best_rouge_lsum("the cat sat\nit was red", ["the cat ran\nit was red"]) == pytest.approx(500 / 6)
    # Stemming: "runs" and "running" both stem to "run".
    assert best_rouge_lsum("he runs", ["he running"]) == pytest.approx(100.0)


def test_sentence_lines_uses_the_sentence_segmenter():
    seg = SpacySentenceSegmenter()
    assert sentence_lines("The cat sat.  It was red. ", seg) == "The cat sat.\nIt was red."
    assert sentence_lines("", seg) == ""


# --- learned reward models (tiny random BERTs saved as fgrlhf-rm checkpoints) ------------

@pytest.fixture(scope="module")
def tiny_rms(tmp_path_factory, tiny_bert_dir, minilm_tokenizer):
    """R1 (sub-sentence), R2 (sentence, reads passages) and R3 (sequence, with training-set
    score statistics mean 0.5, std 2) as checkpoints, loaded as the trainer loads them."""
    from transformers import AutoModelForTokenClassification

    from fgrlhf.reward.learned import MeanPoolScorer, RMMetadata, SegmentClassifierReward, SequenceReward

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("tiny_rms")
    labels = {"0": "no error", "1": "error"}
    for category, granularity, passages in (("relevance", "subsentence", False), ("factuality", "sentence", True)):
        path = root / category
        AutoModelForTokenClassification.from_pretrained(tiny_bert_dir, num_labels=2).save_pretrained(path)
        minilm_tokenizer.save_pretrained(path)
        RMMetadata(category, "segment", granularity, str(tiny_bert_dir), labels, passages, 256).save(path)
    path = root / "completeness"
    MeanPoolScorer.from_pretrained(tiny_bert_dir).save_pretrained(path)
    minilm_tokenizer.save_pretrained(path)
    RMMetadata("completeness", "sequence", "sequence", str(tiny_bert_dir), {}, True, 256,
               score_mean=0.5, score_std=2.0).save(path)
    return {
        "relevance": SegmentClassifierReward(root / "relevance", 0.3, -0.3, device="cpu"),
        "factuality": SegmentClassifierReward(root / "factuality", 0.5, -0.5, device="cpu"),
        "completeness": SequenceReward(root / "completeness", scale=0.3, device="cpu"),
    }


def test_learned_verdicts_follow_error_probs_and_the_training_reward(tiny_rms, segmenter, qa_feedback):
    ex = qa_feedback[0]
    texts = [ex.predictions[0], "", ex.predictions[1]]
    meta = [{"question": ex.question, "passages": [["t", "Some passage sentence."]]}] * 3
    inputs = RewardInputs(["p"] * 3, texts, meta)
    spans = segmenter(texts, [Granularity.SUBSENTENCE])[Granularity.SUBSENTENCE]
    r1 = tiny_rms["relevance"]
    verdicts = segment_verdicts(r1, inputs, spans)
    probs = r1.error_probs([ex.question] * 3, texts, spans, meta)
    trained = r1.score(inputs, spans).rows()  # label mode: −0.3 exactly when P(error) > 0.5
    assert [len(row) for row in verdicts] == [len(row) for row in spans]
    assert verdicts[1] == []
    for row, prow, trow, srow, text in zip(verdicts, probs, trained, spans, texts):
        for v, p, t, (s, e) in zip(row, prow, trow, srow):
            assert v["error_prob"] == pytest.approx(p)
            assert v["error"] == (p > 0.5) == (t < 0)
            assert (v["start"], v["end"], v["text"]) == (s, e, text[s:e])


def test_completeness_is_normalised_and_unscaled(tiny_rms, segmenter):
    texts = ["The album came out in 2018.", ""]
    inputs = RewardInputs(["p", "p"], texts, [{"question": "When?", "passages": [["t", "In 2018."]]}] * 2)
    spans = segmenter(texts, [Granularity.SEQUENCE])[Granularity.SEQUENCE]
    r3 = tiny_rms["completeness"]
    out = sequence_scores(r3, inputs, spans)
    raw = r3.raw_scores(["When?"] * 2, texts, inputs.metadata)
    assert [o["raw"] for o in out] == pytest.approx(raw)
    assert [o["score"] for o in out] == pytest.approx([(r - 0.5) / 2.0 for r in raw])
    # The training reward is the same value times its scale (0.3), on the last segment.
    assert r3.score(inputs, spans).rows()[0] == pytest.approx([0.3 * out[0]["score"]])
    # A rule reward: the sum of its segment scores, 0 for an answer without segments.
    length = sequence_scores(LengthReward(target_words=10), inputs, spans)
    assert [o["score"] for o in length] == pytest.approx([-(10 - 6) / 10, 0.0])


# --- end to end on the tiny GPT-2 --------------------------------------------------------

@pytest.fixture(scope="module")
def three_prompts(tmp_path_factory):
    from fgrlhf.data.tasks import qa_feedback_task
    from fgrlhf.paths import DATA_DIR

    with open(DATA_DIR / "qa_feedback" / "prompts.json") as f:
        data = json.load(f)[:3]
    path = tmp_path_factory.mktemp("prompts") / "prompts.json"
    path.write_text(json.dumps(data))
    return qa_feedback_task(path)


@pytest.mark.slow
def test_evaluate_qa_end_to_end(tiny_gpt2_dir, tiny_rms, three_prompts, tmp_path):
    from fgrlhf.policy import Policy, SamplingConfig

    policy = Policy.from_pretrained(str(tiny_gpt2_dir))
    sampling = SamplingConfig(max_new_tokens=24, do_sample=False)
    summary, records = evaluate_qa(policy, three_prompts, tiny_rms, sampling=sampling, batch_size=2,
                                   progress=False)
    assert [r["prompt_index"] for r in records] == [0, 1, 2]
    assert [r["sample"] for r in records] == [0, 0, 0]
    seg = MultiGranularitySegmenter()
    for r, ex in zip(records, three_prompts):
        assert r["question"] == ex.metadata["question"]
        assert r["references"] == ex.metadata["references"]
        # R1 judged the sub-sentences and R2 the sentences of the answer, in order.
        for k, g in (("relevance", Granularity.SUBSENTENCE), ("factuality", Granularity.SENTENCE)):
            assert [(v["start"], v["end"]) for v in r[k]] == seg([r["answer"]], [g])[g][0]
            assert all(v["error"] == (v["error_prob"] > 0.5) for v in r[k])
        assert r["completeness"] == pytest.approx((r["completeness_raw"] - 0.5) / 2.0)
        assert 0.0 <= r["rougeLsum"] <= 100.0
        assert r["length_words"] == len(r["answer"].split())
        assert 1 <= r["length_tokens"] <= 24
    # Greedy: the same answers again.
    again = policy.decode(policy.generate([ex.prompt for ex in three_prompts], sampling)).texts
    assert [r["answer"] for r in records] == again

    # The summary is the aggregation of the records.
    for k in ("relevance", "factuality"):
        flags = [v["error"] for r in records for v in r[k]]
        assert summary[f"{k}_segments"] == len(flags)
        if flags:
            assert summary[f"{k}_ratio"] == pytest.approx(flags.count(False) / len(flags))
    for k in ("completeness", "rougeLsum", "length_words", "length_tokens"):
        assert summary[k] == pytest.approx(sum(r[k] for r in records) / 3)
    assert summary["n_answers"] == 3

    path = write_jsonl(records, tmp_path / "out" / "eval.jsonl")
    lines = path.read_text().splitlines()
    assert [json.loads(line) for line in lines] == records


def test_evaluate_qa_without_reward_models(tiny_gpt2_dir, three_prompts):
    from fgrlhf.policy import Policy, SamplingConfig

    policy = Policy.from_pretrained(str(tiny_gpt2_dir))
    sampling = SamplingConfig(max_new_tokens=8, do_sample=False, num_samples=2)
    # Categories that are not QA-Feedback metrics (a shaping reward) are ignored.
    summary, records = evaluate_qa(policy, three_prompts[:2], {"length": LengthReward()}, sampling=sampling,
                                   batch_size=1, progress=False)
    assert [(r["prompt_index"], r["sample"]) for r in records] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    for key in ("relevance_ratio", "factuality_ratio", "completeness", "length"):
        assert key not in summary
    assert {"rougeLsum", "length_words", "length_tokens"} <= set(summary)
    assert all(not math.isnan(summary[k]) for k in ("rougeLsum", "length_words", "length_tokens"))


def test_write_jsonl_rejects_nan(tmp_path):
    with pytest.raises(ValueError, match="record 1"):
        write_jsonl([{"a": 1.0}, {"a": float("nan")}], tmp_path / "x.jsonl")


def test_lead_baseline_copies_the_first_words_of_the_passages():
    from fgrlhf.data.tasks import TaskExample
    from fgrlhf.eval.qa import lead_baseline, lead_text
    from fgrlhf.segment import MultiGranularitySegmenter

    passages = [["Title A", "One two three.", "Four five."], ["Title B", "Six seven."]]
    assert lead_text(passages, 4) == "One two three. Four"
    assert lead_text(passages) == "One two three. Four five. Six seven."
    sentences = MultiGranularitySegmenter().sentences
    same = TaskExample("q", {"passages": passages, "references": ["One two three. Four five. Six seven."]})
    other = TaskExample("q", {"passages": passages, "references": ["Nothing alike here."]})
    assert lead_baseline([same], sentences) == pytest.approx(100.0)
    assert lead_baseline([same, other], sentences) == pytest.approx(50.0)
    assert lead_baseline([TaskExample("q", {"passages": passages})], sentences) is None


def test_summaries_count_distinct_answers():
    from fgrlhf.eval.qa import summarize

    records = [{"answer": a, "length_words": len(a.split())} for a in ("yes", "yes ", "no", "")]
    assert summarize(records)["distinct_answers"] == 3


def test_a_checkpoints_temperature_rescales_the_error_probabilities_it_scores(tiny_rms, segmenter, qa_feedback,
                                                                                tmp_path):
    import shutil

    from fgrlhf.eval.calibration import with_temperature
    from fgrlhf.reward.learned import RMMetadata, SegmentClassifierReward

    r1 = tiny_rms["relevance"]
    hot = tmp_path / "relevance_t2"
    shutil.copytree(r1.checkpoint, hot)
    meta = RMMetadata.load(hot)
    meta.temperature = 2.0
    meta.save(hot)
    texts = [qa_feedback[0].predictions[0]]
    spans = segmenter(texts, [Granularity.SUBSENTENCE])[Granularity.SUBSENTENCE]
    args = ([qa_feedback[0].question], texts, spans, [{}])
    plain = r1.error_probs(*args)[0]
    scaled = SegmentClassifierReward(hot, device="cpu").error_probs(*args)[0]
    assert scaled == pytest.approx(with_temperature(plain, 2.0), abs=1e-5)
    assert scaled != pytest.approx(plain, abs=1e-5)
