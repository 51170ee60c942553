"""The causal QA prompt: question first, passages cut by relevance to the question."""

from __future__ import annotations

from fgrlhf.data.prompt_format import causal_qa_prompt

PASSAGES = [["Bloom (album)", "Bloom is an album by Troye Sivan.", "It was released on 31 August 2018.",
             "The cover is pink."],
            ["Troye Sivan", "Troye Sivan is an Australian singer."]]


def words(text: str) -> int:
    return len(text.split())


def test_layout_without_a_budget():
    prompt = causal_qa_prompt("When was Bloom released?", PASSAGES)
    assert prompt == ("Question: When was Bloom released?\nPassages:\n"
                      "Bloom (album): Bloom is an album by Troye Sivan. It was released on 31 August 2018. "
                      "The cover is pink.\nTroye Sivan: Troye Sivan is an Australian singer.\nAnswer:")


def test_a_budget_keeps_the_sentences_sharing_words_with_the_question_in_order():
    prompt = causal_qa_prompt("When was Bloom released?", PASSAGES, words, max_tokens=26)
    assert words(prompt) <= 26
    assert "It was released on 31 August 2018." in prompt and "Bloom is an album" in prompt
    assert "The cover is pink." not in prompt
    assert prompt.index("Bloom is an album") < prompt.index("It was released")  # original order
    assert "Troye Sivan:" in prompt  # titles stay


def test_the_question_again_before_the_answer_counts_in_the_budget():
    """``causal_qpq``: the question is repeated after the passages; the repeat is part of
    the prompt the budget measures, so fewer passage sentences fit."""
    prompt = causal_qa_prompt("When was Bloom released?", PASSAGES, repeat_question=True)
    assert prompt.endswith("Troye Sivan: Troye Sivan is an Australian singer.\n"
                           "Question: When was Bloom released?\nAnswer:")
    assert prompt.startswith("Question: When was Bloom released?\nPassages:\n")
    plain = causal_qa_prompt("When was Bloom released?", PASSAGES, words, max_tokens=30)
    again = causal_qa_prompt("When was Bloom released?", PASSAGES, words, max_tokens=30, repeat_question=True)
    assert words(again) <= 30 and again.endswith("Question: When was Bloom released?\nAnswer:")
    assert "It was released on 31 August 2018." in again and "It was released on 31 August 2018." in plain
    assert "The cover is pink." in plain and "The cover is pink." not in again


def test_the_task_shows_each_format(tmp_path):
    import json

    from fgrlhf.data.tasks import qa_feedback_task

    record = {"text": "question: When was Bloom released? context: ...", "question": "When was Bloom released?",
              "answer": ["In 2018."], "passages": str([{"wikipage": "Bloom (album)",
                                                         "content": "Bloom is an album. It was released in 2018."}])}
    path = tmp_path / "prompts.json"
    path.write_text(json.dumps([record]))
    shown = {f: qa_feedback_task(path, prompt_format=f)[0].prompt for f in ("t5", "causal", "causal_qpq")}
    assert shown["t5"] == record["text"]
    assert shown["causal"].count("Question: When was Bloom released?") == 1
    assert shown["causal_qpq"] == shown["causal"].replace("\nAnswer:", "\nQuestion: When was Bloom released?\nAnswer:")
