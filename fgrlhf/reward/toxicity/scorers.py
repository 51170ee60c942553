"""Offline toxicity scorers: P(toxic | text) from a model trained on RTP's Perspective scores.

Two unrelated kinds fill the same contract (``OfflineToxicityScorer``): ``ToxicityScorer``,
a mean-pooled MiniLM regressor, and ``FastTextToxicityScorer``, a bag of hashed n-grams.
``fgrlhf-toxicity`` trains either through that contract (``encode`` → ``logits``), rewards and
evaluation read ``toxicity``; ``load_toxicity_scorer`` opens whichever kind a checkpoint holds.
"""

from __future__ import annotations

import itertools
import re
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from fgrlhf.device import default_device, resolve_bf16
from fgrlhf.reward.learned import MeanPoolScorer, RMMetadata, pad_batch
from fgrlhf.segment.base import Granularity
from fgrlhf.toolkit.save import save_model_dir

CATEGORY = "toxicity"  # RMMetadata.category and .kind of a toxicity-scorer checkpoint
SPLIT_FILE = "split.json"


@runtime_checkable
class TextToxicity(Protocol):
    """Anything that gives each text a toxicity in [0, 1] (higher is more toxic)."""

    def toxicity(self, texts: Sequence[str]) -> list[float]: ...


@runtime_checkable
class OfflineToxicityScorer(Protocol):
    """A trainable toxicity scorer: ``toxicity = σ(logits(encode(texts)))``.

    ``model`` is the ``torch.nn.Module`` whose ``score`` layer gives the logit; ``bf16``
    says whether ``logits`` runs under bfloat16 autocast; ``meta`` is set when loaded from
    a checkpoint. ``save(directory, meta, split)`` writes a checkpoint that
    ``load_toxicity_scorer`` opens again.
    """

    model: torch.nn.Module
    device: torch.device
    batch_size: int
    bf16: bool
    meta: RMMetadata | None

    def encode(self, texts: Sequence[str]) -> list[list[int]]: ...

    def logits(self, ids: Sequence[Sequence[int]]) -> Tensor: ...

    def toxicity(self, texts: Sequence[str]) -> list[float]: ...

    def save(self, directory: str | Path, meta: RMMetadata, split=None) -> Path: ...


@torch.no_grad()
def batched_toxicity(scorer: OfflineToxicityScorer, texts: Sequence[str]) -> list[float]:
    """``σ(logit)`` of every text, in ``scorer.batch_size`` forward passes over texts sorted
    by length (little padding); eval mode, no gradients, the model's mode restored after."""
    if not texts:
        return []
    was_training = scorer.model.training
    scorer.model.eval()
    ids = scorer.encode(texts)
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out = [0.0] * len(ids)
    for start in range(0, len(order), scorer.batch_size):
        idx = order[start : start + scorer.batch_size]
        probs = torch.sigmoid(scorer.logits([ids[i] for i in idx])).tolist()
        for i, p in zip(idx, probs):
            out[i] = p
    scorer.model.train(was_training)
    return out


def _checkpoint_files(meta: RMMetadata, split) -> tuple[dict[str, Any], Any]:
    """``save_model_dir``'s ``metadata`` and ``extra`` for a scorer: ``fgrlhf_rm.json`` and,
    when given, the ``RTPSplit`` the scorer was trained on."""
    extra = (lambda tmp: split.save(tmp / SPLIT_FILE)) if split is not None else None
    return meta.as_files(), extra


# --- the MiniLM scorer -------------------------------------------------------------------

class ToxicityScorer:
    """P(toxic | text) from a mean-pooled encoder: ``σ(MeanPoolScorer(text))``.

    The head reads the mean token state (sentence encoders like MiniLM are trained to
    summarise a text by it) and log-length. Trained on Perspective's toxicity as a soft
    label by ``fgrlhf-toxicity``, so its output is on Perspective's scale and the 0.5
    line means the same. Saved as a ``MeanPoolScorer`` checkpoint (Hugging Face encoder +
    ``score_head.safetensors``), tokenizer, ``fgrlhf_rm.json`` with ``category: toxicity``
    and the RTP split it was trained on.
    """

    def __init__(self, model: MeanPoolScorer, tokenizer, max_length: int = 128, batch_size: int = 64,
                 device: str | torch.device | None = None, bf16: bool | None = None) -> None:
        self.device = torch.device(device) if device else default_device()
        self.model = model.to(self.device)
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.batch_size = batch_size
        self.bf16 = resolve_bf16(bf16, self.device)
        self.meta: RMMetadata | None = None  # set when loaded from a checkpoint

    @classmethod
    def from_backbone(cls, backbone: str, max_length: int = 128, batch_size: int = 64,
                      device: str | torch.device | None = None, bf16: bool | None = None) -> ToxicityScorer:
        """An untrained scorer: the encoder ``backbone`` (short name, path or hub id) and a new head."""
        from transformers import AutoTokenizer

        from fgrlhf.paths import resolve_pretrained
        from fgrlhf.toolkit.load import loading, model_source

        path = model_source(resolve_pretrained(backbone), "backbone")
        with loading(path, "backbone"):
            model, tokenizer = MeanPoolScorer.from_pretrained(path), AutoTokenizer.from_pretrained(path)
        return cls(model, tokenizer, max_length, batch_size, device, bf16)

    @classmethod
    def from_pretrained(cls, checkpoint: str | Path, device: str | torch.device | None = None,
                        batch_size: int = 64, bf16: bool | None = None) -> ToxicityScorer:
        """A trained scorer, frozen: what rewards and evaluation use."""
        from transformers import AutoTokenizer

        from fgrlhf.errors import CheckpointError
        from fgrlhf.toolkit.load import loading, model_source

        meta = RMMetadata.load(checkpoint, "toxicity scorer")
        if meta.kind != CATEGORY:
            raise CheckpointError(f"{checkpoint} holds a {meta.category} ({meta.kind}) model, not a toxicity "
                                  "scorer (train one with fgrlhf-toxicity)")
        source = model_source(checkpoint, "toxicity scorer")
        with loading(source, "toxicity scorer"):
            model, tokenizer = MeanPoolScorer.from_pretrained(source), AutoTokenizer.from_pretrained(source)
        scorer = cls(model, tokenizer, meta.max_length, batch_size, device, bf16)
        scorer.model.eval().requires_grad_(False)
        scorer.meta = meta
        return scorer

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, cut to ``max_length`` (the text's end is dropped)."""
        return self.tokenizer(list(texts), truncation=True, max_length=self.max_length)["input_ids"]

    def logits(self, ids: Sequence[Sequence[int]]) -> Tensor:
        """``[N]`` logits of already encoded texts, with gradients when the caller allows them."""
        input_ids, mask = pad_batch(ids, self.tokenizer.pad_token_id or 0, self.device)  # [N, L]
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            return self.model(input_ids=input_ids, attention_mask=mask).logits[:, 0].float()  # [N]

    def toxicity(self, texts: Sequence[str]) -> list[float]:
        """``σ(logit)`` of every text (see ``batched_toxicity``)."""
        return batched_toxicity(self, texts)

    def save(self, directory: str | Path, meta: RMMetadata, split=None) -> Path:
        """Model, tokenizer, metadata (and the ``RTPSplit``), swapped in atomically."""
        metadata, extra = _checkpoint_files(meta, split)
        return save_model_dir(directory, self.model, self.tokenizer, metadata, extra)


# --- the bag-of-n-grams scorer -----------------------------------------------------------

class BagOfNgrams(torch.nn.Module):
    """fastText's classifier (Joulin et al. 2017): the mean of hashed word uni- and bigram
    embeddings, then a linear logit. Named like ``MeanPoolScorer`` (``encoder``, ``score``)
    so the same training loop fits both. Saved as ``bag_of_ngrams.safetensors``; its sizes
    go to the checkpoint's metadata."""

    WEIGHTS = "bag_of_ngrams.safetensors"

    def __init__(self, buckets: int = 2**16, dim: int = 16) -> None:
        super().__init__()
        self.buckets, self.dim = buckets, dim
        self.encoder = torch.nn.EmbeddingBag(buckets, dim, mode="mean")
        self.score = torch.nn.Linear(dim, 1)

    def forward(self, flat: Tensor, offsets: Tensor) -> Tensor:
        """``flat`` ``[Σ n_i]`` bucket ids of all texts, ``offsets`` ``[N]`` → logits ``[N]``."""
        return self.score(self.encoder(flat, offsets))[:, 0]

    @classmethod
    def from_pretrained(cls, path: str | Path, buckets: int, dim: int) -> BagOfNgrams:
        from safetensors.torch import load_file

        model = cls(buckets, dim)
        model.load_state_dict(load_file(str(Path(path) / cls.WEIGHTS)))
        return model

    def save_pretrained(self, path: str | Path, safe_serialization: bool = True) -> None:
        """The weights into folder ``path`` (always safetensors), as ``save_model_dir`` calls it."""
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(Path(path) / self.WEIGHTS))


# Words and single punctuation marks: "fool!" gives "fool" and "!", so n-grams see punctuation.
_WORD_OR_PUNCT = re.compile(r"\w+|[^\w\s]")


def ngram_buckets(text: str, buckets: int) -> list[int]:
    """Bucket ids of the lower-cased word unigrams and bigrams of ``text``. crc32, not
    ``hash``: Python salts ``hash`` per process, and a saved model must map the same way."""
    words = _WORD_OR_PUNCT.findall(text.lower())
    grams = words + [f"{a} {b}" for a, b in zip(words, words[1:])]
    return [zlib.crc32(g.encode()) % buckets for g in grams] or [0]  # bucket 0: "no words"


class FastTextToxicityScorer:
    """A second, unrelated offline scorer: ``σ(BagOfNgrams(text))``, trained by
    ``fgrlhf-toxicity --config-name toxicity_fasttext`` on the same Perspective labels.

    It shares no weights, tokenizer or architecture with the MiniLM scorer, so a policy that
    learnt to fool the scorer it was trained against does not fool this one the same way:
    the detox experiment evaluates with it. Saved as ``bag_of_ngrams.safetensors`` plus
    ``fgrlhf_rm.json`` (backbone ``fasttext``, buckets and dim in ``extra``)."""

    WEIGHTS = BagOfNgrams.WEIGHTS
    BACKBONE = "fasttext"

    def __init__(self, model: BagOfNgrams, batch_size: int = 256,
                 device: str | torch.device | None = None) -> None:
        self.device = torch.device(device) if device else default_device()
        self.model = model.to(self.device)
        self.batch_size = batch_size
        self.bf16 = False  # embedding bags gain nothing from autocast; logits never use it
        self.meta: RMMetadata | None = None  # set when loaded from a checkpoint

    @classmethod
    def new(cls, buckets: int = 2**16, dim: int = 16, batch_size: int = 256,
            device: str | torch.device | None = None) -> FastTextToxicityScorer:
        return cls(BagOfNgrams(buckets, dim), batch_size, device)

    @classmethod
    def from_pretrained(cls, checkpoint: str | Path, device: str | torch.device | None = None,
                        batch_size: int = 256, bf16: bool | None = None) -> FastTextToxicityScorer:
        """A trained scorer, frozen. ``bf16`` is accepted like ``ToxicityScorer``'s and unused."""
        from fgrlhf.toolkit.load import loading

        meta = RMMetadata.load(checkpoint, "toxicity scorer")
        with loading(checkpoint, "toxicity scorer"):
            model = BagOfNgrams.from_pretrained(checkpoint, int(meta.extra["buckets"]), int(meta.extra["dim"]))
        scorer = cls(model.eval().requires_grad_(False), batch_size, device)
        scorer.meta = meta
        return scorer

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Bucket ids of each text's n-grams (see ``ngram_buckets``)."""
        return [ngram_buckets(t, self.model.buckets) for t in texts]

    def logits(self, ids: Sequence[Sequence[int]]) -> Tensor:
        """``[N]`` logits of already encoded texts."""
        offsets = torch.tensor([0, *itertools.accumulate(len(x) for x in ids)][:-1], device=self.device)  # [N]
        flat = torch.tensor([i for x in ids for i in x], device=self.device)  # [Σ n_i]
        return self.model(flat, offsets)

    def toxicity(self, texts: Sequence[str]) -> list[float]:
        """``σ(logit)`` of every text (see ``batched_toxicity``)."""
        return batched_toxicity(self, texts)

    def save(self, directory: str | Path, meta: RMMetadata, split=None) -> Path:
        """Weights, metadata with the model's sizes (and the ``RTPSplit``), swapped in atomically."""
        meta.extra.update(buckets=self.model.buckets, dim=self.model.dim)
        metadata, extra = _checkpoint_files(meta, split)
        return save_model_dir(directory, self.model, None, metadata, extra)


# --- checkpoints of either kind --------------------------------------------------------------

def load_toxicity_scorer(checkpoint: str | Path, device: str | torch.device | None = None,
                         batch_size: int = 64, bf16: bool | None = None) -> OfflineToxicityScorer:
    """The scorer saved in ``checkpoint`` by ``fgrlhf-toxicity``, whichever kind it is."""
    meta = RMMetadata.load(checkpoint, "toxicity scorer")
    if meta.kind == CATEGORY and meta.backbone == FastTextToxicityScorer.BACKBONE:
        return FastTextToxicityScorer.from_pretrained(checkpoint, device, max(batch_size, 256))
    return ToxicityScorer.from_pretrained(checkpoint, device, batch_size, bf16)


def new_toxicity_scorer(backbone: str, max_length: int = 128, batch_size: int = 64,
                        device: str | torch.device | None = None) -> OfflineToxicityScorer:
    """An untrained scorer: ``fasttext`` (a bag of n-grams), or an encoder (name, path, hub id)."""
    if backbone == FastTextToxicityScorer.BACKBONE:
        return FastTextToxicityScorer.new(batch_size=max(batch_size, 256), device=device)
    return ToxicityScorer.from_backbone(backbone, max_length, batch_size, device)


def toxicity_metadata(backbone: str, max_length: int, extra: dict[str, Any] | None = None) -> RMMetadata:
    """The ``fgrlhf_rm.json`` of a toxicity scorer: ``kind: toxicity`` keeps loaders of other
    reward-model kinds (``SequenceReward`` reads question + answer) from taking it."""
    return RMMetadata(category=CATEGORY, kind=CATEGORY,
                      granularity=Granularity.SEQUENCE.value, backbone=backbone,
                      label_scheme={"toxicity": "P(toxic), Perspective API toxicity as a soft label"},
                      use_passages=False, max_length=max_length, extra=dict(extra or {}))
