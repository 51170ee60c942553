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
