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
