"""Policies: generation layout, masks, and log-probs that match what generation computed."""

from __future__ import annotations

import pytest
import torch

from fgrlhf.policy import Policy, Rollout, SamplingConfig, response_mask_from_ids

PROMPTS = ["question: who sang it? context: a song", "question: when was the tower built in paris, france?"]


@pytest.fixture(scope="module")
def tiny_causal(tiny_gpt2_dir):
    return Policy.from_pretrained(str(tiny_gpt2_dir))


@pytest.fixture(scope="module")
def tiny_seq2seq(tiny_seq2seq_dir):
    return Policy.from_pretrained(str(tiny_seq2seq_dir))


def test_response_mask_keeps_the_first_eos_and_nothing_after():
    ids = torch.tensor([[5, 6, 2, 7, 2], [5, 5, 5, 5, 5], [2, 9, 9, 9, 9]])
    expected = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], dtype=torch.bool)
    assert torch.equal(response_mask_from_ids(ids, eos_id=2), expected)
    assert torch.equal(response_mask_from_ids(torch.tensor([[4, 4, 0, 0]]), None, pad_id=0),
                       torch.tensor([[True, True, False, False]]))


@pytest.mark.parametrize("which", ["tiny_causal", "tiny_seq2seq"])
def test_logprobs_match_the_generation_scores(request, which):
    """Greedy decoding's own per-step logits, at the chosen tokens, are the log-probs the
    policy computes afterwards from (query, response): the layouts line up."""
    policy: Policy = request.getfixturevalue(which)
    torch.manual_seed(0)
    rollout = policy.generate(PROMPTS, SamplingConfig(max_new_tokens=10, do_sample=False))
    q_mask = rollout.query_mask.long()
    out = policy.model.generate(input_ids=rollout.query_ids, attention_mask=q_mask, max_new_tokens=10,
                                do_sample=False, output_logits=True, return_dict_in_generate=True,
                                pad_token_id=policy.tokenizer.pad_token_id, eos_token_id=policy.eos_id)
    step_logits = torch.stack(out.logits, dim=1).float()  # [B, T, V]
    T = rollout.response_ids.shape[1]
    expected = torch.log_softmax(step_logits[:, :T], -1).gather(-1, rollout.response_ids.unsqueeze(-1)).squeeze(-1)
    got = policy.logprobs(rollout)
    m = rollout.response_mask
    torch.testing.assert_close(got[m], expected[m], atol=1e-4, rtol=1e-4)
    assert bool((got[~m] == 0).all())


def test_causal_layout_left_pads_prompts(tiny_causal):
    rollout = tiny_causal.generate(PROMPTS, SamplingConfig(max_new_tokens=6, num_samples=3))
    assert rollout.prompt_index == [0, 0, 0, 1, 1, 1]
    assert rollout.query_ids.shape[0] == 6 and rollout.response_ids.shape == (6, 6)
    # the shorter prompt is padded on the left, so its last column is real
    assert bool(rollout.query_mask[:, -1].all()) and not bool(rollout.query_mask[0, 0])
    dec = tiny_causal.decode(rollout)
    assert len(dec.texts) == 6 and all(len(e) == int(m.sum()) for e, m in zip(dec.char_ends, rollout.response_mask))


def test_long_prompts_are_cut_and_counted(tiny_causal):
    tiny_causal.max_prompt_tokens = 8
    try:
        rollout = tiny_causal.generate(["question: " + "word " * 50, "short"], SamplingConfig(max_new_tokens=2))
    finally:
        tiny_causal.max_prompt_tokens = 512
    assert rollout.truncated_prompts == 1 and rollout.query_ids.shape[1] == 8


def test_sampling_is_reproducible_with_a_seed(tiny_seq2seq):
    cfg = SamplingConfig(max_new_tokens=8, top_k=20, temperature=0.7, num_samples=2)
    torch.manual_seed(1)
    a = tiny_seq2seq.generate(PROMPTS, cfg)
    torch.manual_seed(1)
    b = tiny_seq2seq.generate(PROMPTS, cfg)
    assert torch.equal(a.response_ids, b.response_ids)
    assert a.response_ids.shape[0] == 4


def test_rollout_select_takes_rows_in_the_given_order():
    # Three rows answering prompts 0, 0, 1 (two samples of the first prompt).
    q = torch.tensor([[0, 11], [0, 11], [21, 22]])
    r = torch.tensor([[1, 2, 9], [3, 9, 9], [4, 5, 6]])
    rollout = Rollout(["p0", "p1"], [0, 0, 1], q, q != 0, r, r != 9, truncated_prompts=1)
    for idx in (torch.tensor([2, 0]), [2, 0]):
        sub = rollout.select(idx)
        assert sub.prompts == ["p0", "p1"] and sub.prompt_index == [1, 0]
        assert sub.query_ids.tolist() == [[21, 22], [0, 11]]
        assert sub.query_mask.tolist() == [[True, True], [False, True]]
        assert sub.response_ids.tolist() == [[4, 5, 6], [1, 2, 9]]
        assert sub.response_mask.tolist() == [[True, True, True], [True, True, False]]
        assert sub.truncated_prompts == 0


def _response_rows(r: Rollout) -> list[list[int]]:
    return [[t for t, keep in zip(row, mask) if keep] for row, mask in zip(r.response_ids.tolist(), r.response_mask.tolist())]


def _repeats_a_bigram(r: Rollout) -> bool:
    return any(len(set(zip(t, t[1:]))) < len(t) - 1 for t in _response_rows(r))


@pytest.mark.parametrize("which", ["tiny_causal", "tiny_seq2seq"])
def test_evaluation_decoding_options_reach_generate(request, which):
    """Beam search and the repeated-n-gram ban (fgrlhf-eval num_beams / no_repeat_ngram_size)
    are applied, and responses are padded after the first EOS. For a seq2seq decoder the ban
    is Hugging Face's own (its ids are the response); a causal LM's is checked against the
    same ban applied by hand to the response tokens alone."""
    policy: Policy = request.getfixturevalue(which)
    cfg = SamplingConfig(max_new_tokens=12, do_sample=False, num_beams=3, no_repeat_ngram_size=2)
    rollout = policy.generate(PROMPTS, cfg)
    assert not _repeats_a_bigram(rollout)
    m = rollout.response_mask
    T = rollout.response_ids.shape[1]
    if which == "tiny_seq2seq":
        out = policy.model.generate(input_ids=rollout.query_ids, attention_mask=rollout.query_mask.long(),
                                    max_new_tokens=12, do_sample=False, num_beams=3, no_repeat_ngram_size=2,
                                    pad_token_id=policy.tokenizer.pad_token_id, eos_token_id=policy.eos_id)
        assert torch.equal(rollout.response_ids[m], out[:, 1:][:, :T][m])
    else:  # the random GPT-2 repeats itself greedily: the ban had work to do
        assert _repeats_a_bigram(policy.generate(PROMPTS, SamplingConfig(max_new_tokens=12, do_sample=False)))


def test_banned_ngram_tokens_are_those_that_would_repeat_an_ngram():
    from fgrlhf.policy.model import banned_ngram_tokens

    assert banned_ngram_tokens([5, 6, 7, 5], 2) == [6]  # (5, 6) seen: 6 may not follow 5 again
    assert banned_ngram_tokens([5, 6, 7, 5, 9, 5], 2) == [6, 9]
    assert banned_ngram_tokens([5, 6, 7, 5, 6], 3) == [7]
    assert banned_ngram_tokens([5, 6, 7, 5, 8], 3) == []
    assert sorted(banned_ngram_tokens([4, 3, 4], 1)) == [3, 4, 4]
    assert banned_ngram_tokens([5], 3) == []


def test_the_ngram_ban_leaves_the_prompt_quotable(tiny_causal):
    """A causal LM reads prompt + response; the ban looks at the response alone, so an
    answer may quote a phrase of its passages, but not repeat one of its own."""
    from fgrlhf.policy.model import ResponseNoRepeatNGram

    ban = ResponseNoRepeatNGram(2, start=3)
    ids = torch.tensor([[7, 8, 9, 7, 1, 7],    # prompt 7 8 9; response 7 1 7: 1 may not follow 7 again
                        [7, 8, 9, 4, 5, 7]])   # the prompt's (7, 8) does not count: 8 stays allowed
    scores = ban(ids, torch.zeros(2, 12))
    assert scores[0].isinf().nonzero().flatten().tolist() == [1]
    assert not scores[1].isinf().any()
    # Through generate: with the ban, a causal policy's responses hold no bigram twice,
    # whatever its prompt holds.
    prompts = ["a b a b a b a b", "the tower the tower the tower"]
    rollout = tiny_causal.generate(prompts, SamplingConfig(max_new_tokens=16, do_sample=False, no_repeat_ngram_size=2))
    assert not _repeats_a_bigram(rollout)
