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
