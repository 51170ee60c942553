"""The aggregator: segment scores of several reward models → dense [B, T] reward."""

from __future__ import annotations

import pytest
import torch

from fgrlhf.reward import (
    FixedNormalizer,
    KeywordReward,
    LengthReward,
    RewardAggregator,
    RewardInputs,
    RunningNormalizer,
)
from fgrlhf.segment import DecodedResponses


def _decoded_by_words(texts: list[str], pad_to: int | None = None) -> DecodedResponses:
    """A hand-made 'tokenisation': one token per whitespace-separated word (with its
    leading space), so the closing token of a span is the index of its last word."""
    char_ends, positions = [], []
    for text in texts:
        ends = []
        for i, ch in enumerate(text):
            if not ch.isspace() and (i + 1 == len(text) or text[i + 1].isspace()):
                ends.append(i + 1)
        char_ends.append(ends)
        positions.append(list(range(len(ends))))
    width = pad_to or max((len(e) for e in char_ends), default=0)
    return DecodedResponses(list(texts), char_ends, positions, width)


TEXTS = [
    "The cat sat. It was 3 pm. Then it left.",  # 10 words, 3 sentences
    "Hello world.",  # 2 words, 1 sentence
    "",  # empty generation: no segments at all
]


def _inputs(texts=TEXTS):
    return RewardInputs(prompts=["q"] * len(texts), texts=list(texts))


def test_hand_computed_dense_reward():
    # Sentence-level keyword reward: a sentence mentioning "pm" scores -1, others 0.5.
    # Sequence-level length reward, target 4 words: -|n - 4| / 4.
    kw = KeywordReward(["pm"], granularity="sentence", hit=-1.0, miss=0.5)
    ln = LengthReward(target_words=4)
    agg = RewardAggregator({"kw": kw, "len": ln}, weights={"kw": 2.0, "len": 0.5})
    dec = _decoded_by_words(TEXTS)
    out = agg(_inputs(), dec)
    assert out.total.shape == (3, 10)
    assert out.per_category.shape == (3, 10, 2)
    assert out.categories == ["kw", "len"]
    # Row 0 words: The cat sat. | It was 3 pm. | Then it left.  → sentences close at 2, 6, 9.
    expected_kw = torch.zeros(10)
    expected_kw[2] = 2.0 * 0.5
    expected_kw[6] = 2.0 * -1.0
    expected_kw[9] = 2.0 * 0.5
    # Length: 10 words → -|10-4|/4 = -1.5, weight 0.5 → -0.75 at the last token (9).
    expected_len = torch.zeros(10)
    expected_len[9] = -0.75
    torch.testing.assert_close(out.per_category[0, :, 0], expected_kw)
    torch.testing.assert_close(out.per_category[0, :, 1], expected_len)
    torch.testing.assert_close(out.total[0], expected_kw + expected_len)
    # Row 1: "Hello world." one sentence closing at token 1: kw 2*0.5 = 1; len -|2-4|/4*0.5 = -0.25.
    assert out.total[1].tolist() == pytest.approx([0.0, 1.0 - 0.25] + [0.0] * 8)
    # Row 2: empty generation → no segments, zero reward, and no error.
    assert out.total[2].abs().sum() == 0
    assert out.spans["kw"][2] == [] and out.spans["len"][2] == []


def test_total_is_sum_of_categories_and_preserves_weighted_scores():
    kw = KeywordReward(["cat", "world"], granularity="subsentence", hit=1.0, miss=-0.25)
    ln = LengthReward(target_words=3)
    agg = RewardAggregator({"kw": kw, "len": ln}, weights={"kw": 0.3, "len": 1.7})
    out = agg(_inputs(), _decoded_by_words(TEXTS))
    torch.testing.assert_close(out.total, out.per_category.sum(-1))
    for k_i, k in enumerate(out.categories):
        raw = out.raw[k]
        expected = agg.weights[k] * raw.scores[raw.mask].sum()
        torch.testing.assert_close(out.per_category[..., k_i].sum(), expected)


def test_segments_are_computed_once_per_granularity(monkeypatch):
    kw1 = KeywordReward(["cat"], granularity="sentence")
    kw2 = KeywordReward(["pm"], granularity="sentence")
    agg = RewardAggregator({"a": kw1, "b": kw2})
    calls = []
    original = agg.segmenter.sentences.batch

    def counting(texts):
        calls.append(len(texts))
        return original(texts)

    monkeypatch.setattr(agg.segmenter.sentences, "batch", counting)
    out = agg(_inputs(), _decoded_by_words(TEXTS))
    assert calls == [3]
    assert out.spans["a"] is out.spans["b"]


def test_fixed_and_running_normalisation_are_applied_per_category():
    ln = LengthReward(target_words=4)  # raw: row0 -1.5, row1 -0.5
    agg = RewardAggregator({"len": ln}, normalizers={"len": FixedNormalizer(mean=-1.0, std=0.5)})
    out = agg(_inputs(), _decoded_by_words(TEXTS))
    # (-1.5 - -1)/0.5 = -1 at token 9 of row 0; (-0.5 - -1)/0.5 = +1 at token 1 of row 1.
    assert float(out.total[0, 9]) == pytest.approx(-1.0)
    assert float(out.total[1, 1]) == pytest.approx(1.0)
    # raw scores are kept unnormalised for logging
    assert out.raw["len"].rows()[:2] == [[pytest.approx(-1.5)], [pytest.approx(-0.5)]]

    running = RunningNormalizer()
    agg = RewardAggregator({"len": LengthReward(target_words=4)}, normalizers={"len": running})
    out = agg(_inputs(), _decoded_by_words(TEXTS))
    # Two real scores, -1.5 and -0.5: mean -1, population std 0.5 → -1 and +1.
    assert float(out.total[0, 9]) == pytest.approx(-1.0, abs=1e-4)
    assert float(out.total[1, 1]) == pytest.approx(1.0, abs=1e-4)
    state = agg.state_dict()
    fresh = RewardAggregator({"len": LengthReward(target_words=4)}, normalizers={"len": RunningNormalizer()})
    fresh.load_state_dict(state)
    assert fresh.normalizers["len"].state_dict() == running.state_dict()


def test_running_normalizer_is_independent_of_batching():
    torch.manual_seed(0)
    x = torch.randn(1000, dtype=torch.float64) * 3 + 2
    whole = RunningNormalizer()
    whole.update(x)
    parts = RunningNormalizer()
    for chunk in torch.split(x, [1, 10, 300, 689]):
        parts.update(chunk)
    assert parts.mean == pytest.approx(float(x.mean()), rel=1e-12)
    assert parts.std == pytest.approx(float(x.std(unbiased=False)), rel=1e-9)
    assert whole.state_dict() == pytest.approx(parts.state_dict(), rel=1e-9)


def test_distribute_makes_running_normalisers_see_every_process():
    """A stand-in for a second process: ``gather`` appends its scores (2.0 and 4.0) to this
    process's, so the statistics are those of all four scores, as in one process."""
    other = torch.tensor([2.0, 4.0])
    running, fixed = RunningNormalizer(), FixedNormalizer(mean=-1.0, std=0.5)
    agg = RewardAggregator({"a": LengthReward(target_words=4), "b": LengthReward(target_words=4)},
                           normalizers={"a": running, "b": fixed})
    agg.distribute(lambda v: torch.cat([v, other.to(v.dtype)]))
    agg(_inputs(), _decoded_by_words(TEXTS))
    # this process's raw scores are -1.5 and -0.5 (see above): mean of all four = 1.0,
    # population variance = (6.25 + 2.25 + 1 + 9) / 4 = 4.625
    assert running.count == 4
    assert running.mean == pytest.approx(1.0)
    assert running.std == pytest.approx(4.625 ** 0.5)
    assert fixed.state_dict() == {"mean": -1.0, "std": 0.5}  # keeps no statistics, untouched
    running.set_gather(None)
    agg(_inputs(), _decoded_by_words(TEXTS))
    assert running.count == 6  # this process's two scores only


def test_fixed_normalizer_standardizes_floats_and_tensors_alike():
    norm = FixedNormalizer(mean=1.0, std=0.5)
    assert norm.standardize(2.0) == 2.0
    assert norm.standardize(2.0, scale=0.3) == pytest.approx(0.6)
    scores = torch.tensor([[2.0, 0.0]])
    assert norm(scores, torch.ones_like(scores, dtype=torch.bool)).tolist() == [[2.0, -2.0]]
    with pytest.raises(ValueError, match="std must be positive"):
        FixedNormalizer(std=0.0)


def test_user_reward_with_its_own_segmenter():
    from plugins.lab_rewards import CommaPieceCount

    agg = RewardAggregator({"commas": CommaPieceCount()})
    texts = ["a, b c, d", "no commas here"]
    out = agg(_inputs(texts), _decoded_by_words(texts))
    assert [len(r) for r in out.spans["commas"]] == [3, 1]
    assert out.total.sum(-1).tolist() == [3.0, 1.0]


def test_bad_reward_outputs_name_the_reward():
    from plugins.lab_rewards import NaNReward, WrongCount

    agg = RewardAggregator({"broken": WrongCount()})
    with pytest.raises(ValueError, match="reward 'broken' scored 2 segments of response 0, which has 3"):
        agg(_inputs(), _decoded_by_words(TEXTS))
    agg = RewardAggregator({"nan": NaNReward()})
    with pytest.raises(FloatingPointError, match="reward 'nan' returned a non-finite score at response 0"):
        agg(_inputs(), _decoded_by_words(TEXTS))


def test_config_errors():
    ln = LengthReward()
    with pytest.raises(ValueError):
        RewardAggregator({})
    with pytest.raises(KeyError, match="unknown reward categories"):
        RewardAggregator({"len": ln}, weights={"lenght": 1.0})
    with pytest.raises(KeyError, match="normalisation given for unknown"):
        RewardAggregator({"len": ln}, normalizers={"x": FixedNormalizer()})
    with pytest.raises(ValueError, match="std must be positive"):
        FixedNormalizer(0.0, 0.0)
    agg = RewardAggregator({"len": ln})
    with pytest.raises(ValueError, match="must be the decoded responses"):
        agg(_inputs(["x"]), _decoded_by_words(["y"]))


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device"))])
def test_output_on_requested_device(device):
    agg = RewardAggregator({"len": LengthReward(target_words=2)})
    out = agg(_inputs(), _decoded_by_words(TEXTS), device=device)
    assert out.total.device.type == device
    assert float(out.total[1, 1]) == pytest.approx(0.0)


def test_real_tokenizer_end_to_end(minilm_tokenizer, qa_feedback):
    from fgrlhf.segment import decode_with_offsets

    texts = [ex.predictions[0] for ex in qa_feedback[:16]]
    enc = minilm_tokenizer(texts, add_special_tokens=True, padding=True, return_tensors="pt")
    dec = decode_with_offsets(minilm_tokenizer, enc["input_ids"], enc["attention_mask"])
    agg = RewardAggregator({
        "rel": KeywordReward(["the"], granularity="subsentence", hit=0.3, miss=-0.3),
        "fact": KeywordReward(["is"], granularity="sentence", hit=0.5, miss=-0.5),
        "len": LengthReward(target_words=60),
    }, weights={"rel": 1.0, "fact": 1.0, "len": 0.3})
    out = agg(RewardInputs(["q"] * 16, dec.texts), dec)
    assert out.total.shape == enc["input_ids"].shape
    # Rewards sit only on real tokens, never on [CLS]/[SEP]/[PAD].
    special = ~enc["attention_mask"].bool() | torch.isin(
        enc["input_ids"], torch.tensor(minilm_tokenizer.all_special_ids))
    assert out.total[special].abs().sum() == 0
    n_nonzero = (out.per_category[..., 0] != 0).sum()
    assert n_nonzero == sum(len(r) for r in out.spans["rel"])
    assert out.spans["rel"][0] != out.spans["fact"][0]
    assert all(len(r) == 1 for r in out.spans["len"])
