"""Toxicity rewards: Δ-toxicity by hand and its telescoping sum, one scorer call per batch,
checkpoints that round-trip, and the Perspective client's offline parts."""

from __future__ import annotations

import pytest
import torch

from fgrlhf.reward import RewardAggregator, RewardInputs, RewardModel, build_reward
from fgrlhf.reward.learned import RMMetadata, SequenceReward
from fgrlhf.reward.toxicity import (
    PERSPECTIVE_KEY_ENV,
    FastTextToxicityScorer,
    HolisticToxicityReward,
    OfflineToxicityScorer,
    PerspectiveReward,
    PerspectiveScorer,
    SentenceToxicityReward,
    ToxicityScorer,
    holistic_rewards,
    load_toxicity_scorer,
    ngram_buckets,
    perspective_request_body,
    perspective_toxicity,
    prefix_delta_rewards,
    sentence_prefixes,
    toxicity_metadata,
)
from fgrlhf.segment import Granularity, MultiGranularitySegmenter, decode_with_offsets

TEXTS = [
    " and then he left. He was a fool! Nobody cared.",
    "",
    " I hate you so much. Go away.",
    " A quiet afternoon in the park",
]


class CountingToxicity:
    """A real scorer that counts how often it is asked."""

    def __init__(self, scorer) -> None:
        self.scorer = scorer
        self.calls: list[int] = []

    def toxicity(self, texts):
        self.calls.append(len(texts))
        return self.scorer.toxicity(texts)


@pytest.fixture(scope="module")
def scorer(tiny_bert_dir):
    torch.manual_seed(0)
    s = ToxicityScorer.from_backbone(str(tiny_bert_dir), max_length=64, batch_size=256, device="cpu")
    with torch.no_grad():  # a random head gives spread-out outputs, so differences are visible
        s.model.score.weight.normal_(0, 0.5)
    return s


@pytest.fixture(scope="module")
def segmenter():
    return MultiGranularitySegmenter()


@pytest.fixture(scope="module")
def sentence_spans(segmenter):
    return segmenter(TEXTS, [Granularity.SENTENCE])[Granularity.SENTENCE]


# --- pure arithmetic ----------------------------------------------------------------------

def test_prefix_deltas_by_hand():
    # t0 = 0.1; prefixes 0.2, 0.7, 0.4 → −0.1, −0.5, +0.3
    assert prefix_delta_rewards([0.2, 0.7, 0.4], 0.1) == pytest.approx([-0.1, -0.5, 0.3])
    assert prefix_delta_rewards([], 0.1) == []
    assert holistic_rewards(0.25, 3) == [0.0, 0.0, 0.75]
    assert holistic_rewards(0.25, 0) == []
    assert sentence_prefixes("Ab. Cd.  Ef", [(0, 3), (4, 7), (9, 11)]) == ["Ab.", "Ab. Cd.", "Ab. Cd.  Ef"]


# --- learned scorer -----------------------------------------------------------------------

def test_scorer_outputs_probabilities_independent_of_batching(scorer):
    alone = [scorer.toxicity([t])[0] for t in TEXTS]
    together = scorer.toxicity(TEXTS)
    assert all(0.0 < p < 1.0 for p in together)
    assert together == pytest.approx(alone, abs=1e-5)
    assert max(together) - min(together) > 1e-3
    assert scorer.toxicity([]) == []
    scorer.model.train()
    scorer.toxicity(TEXTS[:1])
    assert scorer.model.training
    scorer.model.eval()


def test_sentence_reward_telescopes_to_the_holistic_difference(scorer, sentence_spans):
    reward = SentenceToxicityReward(scorer=scorer)
    out = reward.score(RewardInputs(["p"] * len(TEXTS), TEXTS), sentence_spans)
    rows = out.rows()
    assert [len(r) for r in rows] == [3, 0, 2, 1]
    t_empty = scorer.toxicity([""])[0]
    for text, row, spans in zip(TEXTS, rows, sentence_spans):
        if not spans:
            continue
        t_full = scorer.toxicity([text[: spans[-1][1]]])[0]
        # Σ_j −(t_j − t_{j−1}) = −(t(y) − t(""))
        assert sum(row) == pytest.approx(-(t_full - t_empty), abs=1e-5)
        # and each term is its own prefix difference
        t = scorer.toxicity([text[:e] for _, e in spans])
        assert row[0] == pytest.approx(-(t[0] - t_empty), abs=1e-5)
        for j in range(1, len(spans)):
            assert row[j] == pytest.approx(-(t[j] - t[j - 1]), abs=1e-5)
    # a fixed empty-prefix toxicity moves only the first sentence
    fixed = SentenceToxicityReward(scorer=scorer, empty_toxicity=0.0).score(
        RewardInputs(["p"] * len(TEXTS), TEXTS), sentence_spans).rows()
    assert fixed[0][0] == pytest.approx(rows[0][0] - t_empty, abs=1e-5)
    assert fixed[0][1:] == pytest.approx(rows[0][1:], abs=1e-6)


def test_all_prefixes_of_a_batch_are_scored_in_one_call(scorer, sentence_spans):
    counting = CountingToxicity(scorer)
    forwards = []
    hook = scorer.model.register_forward_hook(lambda m, i, o: forwards.append(1))
    try:
        SentenceToxicityReward(scorer=counting).score(RewardInputs(["p"] * len(TEXTS), TEXTS), sentence_spans)
        # 3 + 0 + 2 + 1 prefixes and the empty string, in one call and one forward pass
        assert counting.calls == [7]
        assert len(forwards) == 1
        HolisticToxicityReward(scorer=counting).score(
            RewardInputs(["p"] * len(TEXTS), TEXTS), [[(0, len(t))] if t else [] for t in TEXTS])
        assert counting.calls == [7, 3]  # the empty generation is not scored
        SentenceToxicityReward(scorer=counting).score(RewardInputs(["p"], [""]), [[]])
        assert counting.calls == [7, 3]  # nothing to score, no call
    finally:
        hook.remove()


def test_holistic_reward_is_one_minus_toxicity_at_the_last_segment(scorer, segmenter):
    spans = segmenter(TEXTS, [Granularity.SEQUENCE])[Granularity.SEQUENCE]
    out = HolisticToxicityReward(scorer=scorer).score(RewardInputs(["p"] * len(TEXTS), TEXTS), spans)
    rows = out.rows()
    assert rows[1] == []
    for text, row in zip(TEXTS, rows):
        if text:
            assert row == pytest.approx([1.0 - scorer.toxicity([text])[0]], abs=1e-5)
    # at another granularity the score still sits on the last segment
    two = HolisticToxicityReward(scorer=scorer).score(RewardInputs(["p"], TEXTS[:1]), [[(0, 18), (19, 47)]])
    assert two.rows()[0][0] == 0.0 and two.rows()[0][1] == pytest.approx(rows[0][0], abs=1e-5)


def test_checkpoint_round_trip_and_kind_checks(scorer, tmp_path):
    ckpt = tmp_path / "tox"
    scorer.save(ckpt, toxicity_metadata("tiny", 64, extra={"train_mean_toxicity": 0.3}))
    for name in ("model.safetensors", "score_head.safetensors", "tokenizer.json", "fgrlhf_rm.json"):
        assert (ckpt / name).exists(), name
    loaded = ToxicityScorer.from_pretrained(ckpt, device="cpu")
    assert loaded.toxicity(TEXTS) == pytest.approx(scorer.toxicity(TEXTS), abs=1e-6)
    assert not loaded.model.training
    assert not any(p.requires_grad for p in loaded.model.parameters())
    assert loaded.meta.category == "toxicity" and loaded.meta.max_length == 64
    reward = HolisticToxicityReward(checkpoint=ckpt, device="cpu")
    assert isinstance(reward, RewardModel) and isinstance(SentenceToxicityReward(scorer=scorer), RewardModel)
    # a toxicity scorer is not an R3-style sequence reward, and vice versa
    with pytest.raises(ValueError, match="not a sequence reward model"):
        SequenceReward(ckpt)
    meta = RMMetadata.load(ckpt)
    meta.kind, meta.category = "sequence", "completeness"
    meta.save(ckpt)
    with pytest.raises(ValueError, match="not a toxicity scorer"):
        ToxicityScorer.from_pretrained(ckpt)
    with pytest.raises(ValueError, match="exactly one"):
        SentenceToxicityReward()


def test_reward_config_builds_and_aggregates(scorer, tmp_path, minilm_tokenizer):
    """The detox_sentence config's _target_ through build_reward and the aggregator: the dense
    reward of a response sums to −(tox(y) − tox(""))."""
    from omegaconf import OmegaConf

    from fgrlhf.paths import CONF_DIR, register_resolvers

    ckpt = tmp_path / "tox"
    scorer.save(ckpt, toxicity_metadata("tiny", 64))
    register_resolvers()
    for name in ("detox_sentence", "detox_holistic"):
        cfg = OmegaConf.load(CONF_DIR / "reward" / f"{name}.yaml")
        assert cfg.name == name and list(cfg.models) == ["toxicity"] and cfg.weights.toxicity == 1.0
        assert OmegaConf.to_container(cfg, resolve=True)["models"]["toxicity"]["checkpoint"].endswith("runs/toxicity")
    cfg = OmegaConf.load(CONF_DIR / "reward" / "detox_sentence.yaml")
    cfg.models.toxicity.checkpoint = str(ckpt)
    reward = build_reward({**OmegaConf.to_container(cfg.models.toxicity), "device": "cpu"}, key="toxicity")
    assert isinstance(reward, SentenceToxicityReward) and reward.granularity is Granularity.SENTENCE
    agg = RewardAggregator({"toxicity": reward})
    texts = [TEXTS[0], TEXTS[2]]
    enc = minilm_tokenizer(texts, add_special_tokens=False, padding=True, return_tensors="pt")
    dec = decode_with_offsets(minilm_tokenizer, enc["input_ids"], enc["attention_mask"])
    out = agg(RewardInputs(["p", "p"], dec.texts), dec)
    loaded = reward.scorer
    for b, text in enumerate(dec.texts):
        expected = -(loaded.toxicity([text.rstrip()])[0] - loaded.toxicity([""])[0])
        assert float(out.total[b].sum()) == pytest.approx(expected, abs=1e-5)
        assert int((out.total[b] != 0).sum()) == len(out.spans["toxicity"][b])


def test_fasttext_scorer_fills_the_offline_contract_without_subclassing(scorer, tmp_path):
    from fgrlhf.data.rtp import RTPSplit

    torch.manual_seed(0)
    fast = FastTextToxicityScorer.new(buckets=64, dim=4, device="cpu")
    assert not isinstance(fast, ToxicityScorer)
    assert isinstance(fast, OfflineToxicityScorer) and isinstance(scorer, OfflineToxicityScorer)
    # n-grams: words and punctuation lower-cased, then the bigrams; crc32 buckets
    import zlib

    assert ngram_buckets("Fool!", 64) == [zlib.crc32(g.encode()) % 64 for g in ("fool", "!", "fool !")]
    assert ngram_buckets("   ", 64) == [0]
    together = fast.toxicity(TEXTS)
    assert together == pytest.approx([fast.toxicity([t])[0] for t in TEXTS], abs=1e-6)
    split = RTPSplit([1], [2], [3], [4], seed=0, threshold=0.5, source="s", fingerprint="f")
    ckpt = fast.save(tmp_path / "fast", toxicity_metadata("fasttext", 0), split)
    assert sorted(p.name for p in ckpt.iterdir() if not p.name.startswith(".")) == ["bag_of_ngrams.safetensors", "fgrlhf_rm.json", "split.json"]
    assert (ckpt / ".complete").exists()  # written last: the folder is whole
    assert RTPSplit.load(ckpt / "split.json") == split
    loaded = load_toxicity_scorer(ckpt, device="cpu")
    assert isinstance(loaded, FastTextToxicityScorer) and loaded.batch_size == 256
    assert loaded.meta.extra == {"buckets": 64, "dim": 4}
    assert loaded.toxicity(TEXTS) == pytest.approx(together, abs=1e-6)
    assert not any(p.requires_grad for p in loaded.model.parameters())


# --- Perspective (no network here: only what needs none) -------------------------------------

def test_perspective_needs_a_key(monkeypatch):
    monkeypatch.delenv(PERSPECTIVE_KEY_ENV, raising=False)
    with pytest.raises(RuntimeError, match=PERSPECTIVE_KEY_ENV):
        PerspectiveReward(granularity="sentence")
    with pytest.raises(RuntimeError, match="needs a key"):
        PerspectiveScorer()


def test_perspective_request_body_and_response_parsing():
    assert perspective_request_body("you are nice") == {
        "comment": {"text": "you are nice"}, "languages": ["en"],
        "requestedAttributes": {"TOXICITY": {}}, "doNotStore": True}
    body = perspective_request_body("x", attributes=("TOXICITY", "INSULT"), languages=("de",), do_not_store=False)
    assert body["requestedAttributes"] == {"TOXICITY": {}, "INSULT": {}}
    assert body["languages"] == ["de"] and body["doNotStore"] is False
    response = {"attributeScores": {"TOXICITY": {"summaryScore": {"value": 0.83, "type": "PROBABILITY"}}}}
    assert perspective_toxicity(response) == pytest.approx(0.83)
    with pytest.raises(ValueError, match="no TOXICITY summary score"):
        perspective_toxicity({"error": "quota"})


def test_perspective_reward_with_a_key_scores_blank_texts_offline(monkeypatch):
    monkeypatch.setenv(PERSPECTIVE_KEY_ENV, "not-a-real-key")
    reward = PerspectiveReward(granularity="sequence", rate_limit=100.0)
    assert reward.granularity is Granularity.SEQUENCE and isinstance(reward, RewardModel)
    # blank texts never reach the API (it rejects them); they have toxicity 0
    assert reward.scorer.toxicity(["", "   "]) == [0.0, 0.0]
    assert reward.score(RewardInputs(["p"], [""]), [[]]).rows() == [[]]
    with pytest.raises(ValueError, match="sequence or sentence"):
        PerspectiveReward(granularity="subsentence")
    with pytest.raises(ValueError, match="rate_limit"):
        PerspectiveScorer(api_key="k", rate_limit=0)


# --- training helpers (fgrlhf-toxicity) ------------------------------------------------------

def test_length_batches_cover_every_text_once_with_little_padding():
    import random

    from fgrlhf.train.toxicity import length_batches

    lengths = [random.Random(i).randint(3, 60) for i in range(1000)]
    batches = length_batches(lengths, batch_size=16, rng=random.Random(0), window=10)
    assert sorted(i for b in batches for i in b) == list(range(1000))
    assert all(1 <= len(b) <= 16 for b in batches)
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    assert padded < 1.2 * sum(lengths)  # random batches would pad to ~1.9× here
    assert length_batches(lengths, 16, random.Random(0), 10) == batches
    assert length_batches(lengths, 16, random.Random(1), 10) != batches
