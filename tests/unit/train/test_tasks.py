"""A run's prompts come from the same question split as the reward models and SFT."""

from __future__ import annotations

import pytest

from fgrlhf.config import SplitConfig
from fgrlhf.data.qa_feedback import load_prompts
from fgrlhf.data.split import split_by_question
from fgrlhf.paths import DATA_DIR
from fgrlhf.train.config import TaskConfig
from fgrlhf.train.tasks import evaluation_examples, load_task

PROMPTS = DATA_DIR / "qa_feedback" / "prompts.json"


@pytest.fixture(scope="module")
def questions():
    return [p.question for p in load_prompts(PROMPTS)]


def test_parts_follow_the_reward_models_question_split(questions):
    split = SplitConfig(seed=2, dev_questions=5, test_questions=7)
    parts = load_task(TaskConfig(prompts_file=str(PROMPTS)), split)
    drawn = split_by_question(questions, 5, 7, 2)  # as fgrlhf-rm and fgrlhf-sft draw it
    for part in ("train", "dev", "test"):
        assert [ex.metadata["question"] for ex in parts[part]] == [questions[i] for i in getattr(drawn, part)]


def test_evaluation_examples_take_the_first_questions_of_a_part(questions):
    task = TaskConfig(prompts_file=str(PROMPTS))
    split = SplitConfig(dev_questions=4, test_questions=6)
    test = evaluation_examples(task, split, "test", None)
    assert len(test) == 6
    assert evaluation_examples(task, split, "test", 2) == test[:2]
    assert len(evaluation_examples(task, split, "dev", None)) == 4
    other_seed = evaluation_examples(task, SplitConfig(seed=1, dev_questions=4, test_questions=6), "test", None)
    assert [ex.prompt for ex in other_seed] != [ex.prompt for ex in test]
    with pytest.raises(ValueError, match="part must be train, dev or test"):
        evaluation_examples(task, split, "eval", None)
    with pytest.raises(ValueError, match="needs task qa_feedback"):
        evaluation_examples(TaskConfig(name="rtp", prompts_file=str(PROMPTS)), split, "test", None)


def test_an_unknown_task_is_named():
    with pytest.raises(ValueError, match="task 'squad' is not available"):
        load_task(TaskConfig(name="squad", prompts_file=str(PROMPTS)), SplitConfig())
