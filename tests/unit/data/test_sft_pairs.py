from fgrlhf.config import SplitConfig
from fgrlhf.data.rtp import default_rtp_file, load_rtp, split_rtp
from fgrlhf.paths import DATA_DIR
from fgrlhf.train.sft_run import sft_pairs


def test_rtp_sft_pairs_never_hold_an_evaluation_prompt():
    pairs = sft_pairs("rtp", default_rtp_file(), SplitConfig(eval_prompts=500, scorer_test=500))
    records = load_rtp()
    split = split_rtp(records, 500, 500, 0)
    eval_prompts = {records[i].prompt.text for i in split.eval_prompts}
    seen = {p for part in pairs.values() for p, _ in part}
    assert not seen & eval_prompts
    assert len(pairs["dev"]) == round(0.05 * (len(pairs["train"]) + len(pairs["dev"])))
    assert all(answer.strip() for part in pairs.values() for _, answer in part)
    # Every record outside the evaluation prompts' groups is used (blank continuations aside).
    kept = set(split.scorer_train) | set(split.scorer_test)
    assert len(pairs["train"]) + len(pairs["dev"]) == sum(1 for i in kept if records[i].continuation.text.strip())


def test_qa_feedback_sft_pairs_are_the_train_and_dev_questions():
    pairs = sft_pairs("qa_feedback", DATA_DIR / "qa_feedback" / "prompts.json", SplitConfig())
    assert len(pairs["train"]) == 300 and len(pairs["dev"]) == 40


def test_corrected_answers_join_the_train_pairs_only(tmp_path):
    import json

    import pytest

    from fgrlhf.data import load_feedback
    from fgrlhf.errors import ConfigError

    prompts, feedback = DATA_DIR / "qa_feedback" / "prompts.json", DATA_DIR / "qa_feedback" / "feedback.json"
    plain = sft_pairs("qa_feedback", prompts, SplitConfig())
    both = sft_pairs("qa_feedback", prompts, SplitConfig(), corrected_from=feedback)
    corrected = {ex.question: ex.feedback.corrected for ex in load_feedback(feedback)}
    references = dict(plain["train"])
    extra = [pair for pair in both["train"] if pair not in plain["train"]]
    assert both["dev"] == plain["dev"] and set(plain["train"]) <= set(both["train"])
    # One further pair per train question with a corrected answer (a few records leave it
    # empty), under the same prompt as the question's reference.
    # (a corrected answer that is the reference word for word is that pair once more).
    assert 280 <= len(both["train"]) - 300 < 300 and len(extra) <= len(both["train"]) - 300
    assert all(prompt in references and answer in corrected.values() and answer.strip() for prompt, answer in extra)
    # A feedback file that lacks a train question is refused, naming the file and the question.
    records = json.loads(feedback.read_text())
    short = tmp_path / "feedback.json"
    short.write_text(json.dumps(records[:100]))
    with pytest.raises(ConfigError, match=f"{short} has no record for train question"):
        sft_pairs("qa_feedback", prompts, SplitConfig(), corrected_from=short)


def test_the_preferred_prediction_wins_most_judgements():
    from types import SimpleNamespace

    from fgrlhf.train.sft_run import preferred_prediction

    def record(preference):
        return SimpleNamespace(predictions=["p1", "p2", "p3", "p4"], preference=preference)

    # Judgements in the order 1v2, 1v3, 1v4, 2v3, 2v4, 3v4 (1: the first wins, 2: the second, 0: tie).
    assert preferred_prediction(record([2, 2, 2, 1, 1, 0])) == "p2"  # p2 wins 3
    assert preferred_prediction(record([1, 2, 2, 2, 0, 1])) == "p3"  # p3 wins 3, p1 and p4 1 each
    assert preferred_prediction(record([0, 0, 0, 0, 0, 0])) == "p1"  # all ties: the first
    assert preferred_prediction(record([2, 1, 0, 0, 2, 0])) == "p1"  # p1, p2, p4 win 1 each: the lowest
    assert preferred_prediction(record([0, 0, 2, 0, 0, 2])) == "p4"  # p4 wins 2


def test_preferred_predictions_join_the_train_pairs_beside_the_corrected_answers():
    from fgrlhf.data import load_feedback
    from fgrlhf.train.sft_run import preferred_prediction

    prompts, feedback = DATA_DIR / "qa_feedback" / "prompts.json", DATA_DIR / "qa_feedback" / "feedback.json"
    plain = sft_pairs("qa_feedback", prompts, SplitConfig())
    preferred = sft_pairs("qa_feedback", prompts, SplitConfig(), preferred_from=feedback)
    both = sft_pairs("qa_feedback", prompts, SplitConfig(), corrected_from=feedback, preferred_from=feedback)
    records = {ex.question: ex for ex in load_feedback(feedback)}
    predictions = {p for ex in records.values() for p in ex.predictions}
    assert preferred["dev"] == plain["dev"] and len(preferred["train"]) == 600  # no prediction is blank
    # Each train question: its reference, then its preferred prediction, under one prompt.
    for (p_ref, ref), (p_pref, pref), (p_plain, plain_ref) in zip(preferred["train"][::2], preferred["train"][1::2],
                                                                   plain["train"]):
        assert p_ref == p_pref == p_plain and ref == plain_ref
        assert pref in predictions
    assert 880 <= len(both["train"]) < 900  # + the corrected answers (a few records leave them empty)
    assert {a for _, a in preferred["train"]} <= {a for _, a in both["train"]}
    # The pick is the rule's: the prediction with most wins.
    chosen = {preferred_prediction(ex) for ex in records.values()}
    assert {a for _, a in preferred["train"][1::2]} <= chosen
