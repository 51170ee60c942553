"""Toxicity rewards for the detoxification experiment of Wu et al. (2023, §4).

The paper scores the generated continuation ``y`` (not the prompt) with the Perspective API:

- holistic: one reward per continuation, ``1 − tox(y)``, at its last segment;
- sentence level: for sentence j, ``r_j = −(tox(y_≤j) − tox(y_≤j−1))``, the change in
  toxicity that sentence causes. The sum over sentences telescopes to
  ``−(tox(y) − tox(y_≤0))``: the dense reward only redistributes the holistic one over the
  sentences (up to a constant), so it changes credit assignment, not the objective.

``y_≤j`` is the text up to the end of sentence j; ``y_≤0`` is the empty string, whose
toxicity is by default what the scorer says of ``""`` (scored in the same batch): then the
first sentence is judged against the scorer's own baseline, not against 0, and a scorer's
bias on short texts does not fall on the first sentence alone. ``empty_toxicity=0.0``
fixes it to 0 instead.

Where toxicity comes from is pluggable (``TextToxicity``: ``toxicity(texts) → [0, 1]``):
``ToxicityScorer``, a MiniLM regressor trained offline on RTP's Perspective scores by
``fgrlhf-toxicity`` (no network), or ``PerspectiveScorer``, the API itself for users with a key.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from fgrlhf.device import default_device, resolve_bf16
from fgrlhf.reward.base import RewardInputs, SegmentScores
from fgrlhf.reward.learned import MeanPoolScorer, RMMetadata, pad_batch
from fgrlhf.segment.base import Granularity, Span

CATEGORY = "toxicity"  # RMMetadata.category and .kind of a toxicity-scorer checkpoint
SPLIT_FILE = "split.json"


@runtime_checkable
class TextToxicity(Protocol):
    """Anything that gives each text a toxicity in [0, 1] (higher is more toxic)."""

    def toxicity(self, texts: Sequence[str]) -> list[float]: ...


# --- the offline scorer ------------------------------------------------------------------

class ToxicityScorer:
    """P(toxic | text) from a mean-pooled encoder: ``σ(MeanPoolScorer(text))``.

    The head reads the mean token state (sentence encoders like MiniLM are trained to
    summarise a text by it) and log-length. Trained on Perspective's toxicity as a soft
    label (see ``fgrlhf.cli.toxicity``), so its output is on Perspective's scale and the 0.5
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

        path = resolve_pretrained(backbone)
        return cls(MeanPoolScorer.from_pretrained(path), AutoTokenizer.from_pretrained(path),
                   max_length, batch_size, device, bf16)

    @classmethod
    def from_pretrained(cls, checkpoint: str | Path, device: str | torch.device | None = None,
                        batch_size: int = 64, bf16: bool | None = None) -> ToxicityScorer:
        """A trained scorer, frozen: what rewards and evaluation use."""
        from transformers import AutoTokenizer

        meta = RMMetadata.load(checkpoint)
        if meta.kind != CATEGORY:
            raise ValueError(f"{checkpoint} holds a {meta.category} ({meta.kind}) model, not a toxicity scorer "
                             "(train one with fgrlhf-toxicity)")
        scorer = cls(MeanPoolScorer.from_pretrained(checkpoint), AutoTokenizer.from_pretrained(str(checkpoint)),
                     meta.max_length, batch_size, device, bf16)
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

    @torch.no_grad()
    def toxicity(self, texts: Sequence[str]) -> list[float]:
        """``σ(logit)`` of every text, in ``batch_size`` forward passes over texts sorted by
        length (little padding); eval mode, no gradients."""
        if not texts:
            return []
        was_training = self.model.training
        self.model.eval()
        ids = self.encode(texts)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out = [0.0] * len(ids)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            probs = torch.sigmoid(self.logits([ids[i] for i in idx])).tolist()
            for i, p in zip(idx, probs):
                out[i] = p
        self.model.train(was_training)
        return out

    def save(self, directory: str | Path, meta: RMMetadata, split=None) -> Path:
        """Model, tokenizer, metadata (and the ``RTPSplit``), swapped in atomically."""
        from fgrlhf.toolkit.save import atomic_save_dir

        def write(tmp: Path) -> None:
            self.model.save_pretrained(tmp, safe_serialization=True)
            self.tokenizer.save_pretrained(tmp)
            meta.save(tmp)
            if split is not None:
                split.save(tmp / SPLIT_FILE)

        return atomic_save_dir(directory, write)


class BagOfNgrams(torch.nn.Module):
    """fastText's classifier (Joulin et al. 2017): the mean of hashed word uni- and bigram
    embeddings, then a linear logit. Named like ``MeanPoolScorer`` (``encoder``, ``score``)
    so the same training loop fits both."""

    def __init__(self, buckets: int = 2**16, dim: int = 16) -> None:
        super().__init__()
        self.buckets, self.dim = buckets, dim
        self.encoder = torch.nn.EmbeddingBag(buckets, dim, mode="mean")
        self.score = torch.nn.Linear(dim, 1)

    def forward(self, flat: Tensor, offsets: Tensor) -> Tensor:
        """``flat`` ``[Σ n_i]`` bucket ids of all texts, ``offsets`` ``[N]`` → logits ``[N]``."""
        return self.score(self.encoder(flat, offsets))[:, 0]


def ngram_buckets(text: str, buckets: int) -> list[int]:
    """Bucket ids of the lower-cased word unigrams and bigrams of ``text``. crc32, not
    ``hash``: Python salts ``hash`` per process, and a saved model must map the same way."""
    words = _WORD.findall(text.lower())
    grams = words + [f"{a} {b}" for a, b in zip(words, words[1:])]
    return [zlib.crc32(g.encode()) % buckets for g in grams] or [0]  # bucket 0: "no words"


_WORD = re.compile(r"\w+|[^\w\s]")


class FastTextToxicityScorer(ToxicityScorer):
    """A second, unrelated offline scorer: ``σ(BagOfNgrams(text))``, trained by
    ``fgrlhf-toxicity --config-name toxicity_fasttext`` on the same Perspective labels.

    It shares no weights, tokenizer or architecture with the MiniLM scorer, so a policy that
    learnt to fool the scorer it was trained against does not fool this one the same way:
    the detox experiment evaluates with it. Saved as ``bag_of_ngrams.safetensors`` plus
    ``fgrlhf_rm.json`` (backbone ``fasttext``, buckets and dim in ``extra``)."""

    WEIGHTS = "bag_of_ngrams.safetensors"
    BACKBONE = "fasttext"

    def __init__(self, model: BagOfNgrams, batch_size: int = 256,
                 device: str | torch.device | None = None) -> None:
        super().__init__(model, None, 0, batch_size, device, bf16=False)  # type: ignore[arg-type]

    @classmethod
    def new(cls, buckets: int = 2**16, dim: int = 16, batch_size: int = 256,
            device: str | torch.device | None = None) -> FastTextToxicityScorer:
        return cls(BagOfNgrams(buckets, dim), batch_size, device)

    @classmethod
    def from_pretrained(cls, checkpoint: str | Path, device: str | torch.device | None = None,  # type: ignore[override]
                        batch_size: int = 256, bf16: bool | None = None) -> FastTextToxicityScorer:
        from safetensors.torch import load_file

        meta = RMMetadata.load(checkpoint)
        model = BagOfNgrams(int(meta.extra["buckets"]), int(meta.extra["dim"]))
        model.load_state_dict(load_file(str(Path(checkpoint) / cls.WEIGHTS)))
        scorer = cls(model.eval().requires_grad_(False), batch_size, device)
        scorer.meta = meta
        return scorer

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return [ngram_buckets(t, self.model.buckets) for t in texts]

    def logits(self, ids: Sequence[Sequence[int]]) -> Tensor:
        offsets = torch.tensor([0, *itertools.accumulate(len(x) for x in ids)][:-1], device=self.device)  # [N]
        flat = torch.tensor([i for x in ids for i in x], device=self.device)  # [Σ n_i]
        return self.model(flat, offsets)

    def save(self, directory: str | Path, meta: RMMetadata, split=None) -> Path:
        from safetensors.torch import save_file

        from fgrlhf.toolkit.save import atomic_save_dir

        meta.extra.update(buckets=self.model.buckets, dim=self.model.dim)

        def write(tmp: Path) -> None:
            save_file({k: v.contiguous() for k, v in self.model.state_dict().items()}, str(tmp / self.WEIGHTS))
            meta.save(tmp)
            if split is not None:
                split.save(tmp / SPLIT_FILE)

        return atomic_save_dir(directory, write)


def load_toxicity_scorer(checkpoint: str | Path, device: str | torch.device | None = None,
                         batch_size: int = 64, bf16: bool | None = None) -> ToxicityScorer:
    """The scorer saved in ``checkpoint`` by ``fgrlhf-toxicity``, whichever kind it is."""
    meta = RMMetadata.load(checkpoint)
    if meta.kind == CATEGORY and meta.backbone == FastTextToxicityScorer.BACKBONE:
        return FastTextToxicityScorer.from_pretrained(checkpoint, device, max(batch_size, 256))
    return ToxicityScorer.from_pretrained(checkpoint, device, batch_size, bf16)


def new_toxicity_scorer(backbone: str, max_length: int = 128, batch_size: int = 64,
                        device: str | torch.device | None = None) -> ToxicityScorer:
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


# --- pure reward arithmetic ----------------------------------------------------------------

def sentence_prefixes(text: str, spans: Sequence[Span]) -> list[str]:
    """``y_≤j`` for every segment j: the text up to the segment's end."""
    return [text[:end] for _, end in spans]


def prefix_delta_rewards(prefix_toxicity: Sequence[float], empty_toxicity: float) -> list[float]:
    """``r_j = −(t_j − t_{j−1})`` with ``t_0 = empty_toxicity``; ``Σ_j r_j = −(t_S − t_0)``."""
    previous = [empty_toxicity, *prefix_toxicity[:-1]]
    return [-(t - p) for t, p in zip(prefix_toxicity, previous)]


def holistic_rewards(toxicity: float, n_segments: int) -> list[float]:
    """``1 − tox(y)`` on the last of ``n_segments`` segments, 0 on the others (none if none)."""
    return [0.0] * (n_segments - 1) + [1.0 - toxicity] if n_segments else []


def sentence_toxicity_rows(scorer: TextToxicity, texts: Sequence[str], spans: Sequence[Sequence[Span]],
                           empty_toxicity: float | None = None) -> list[list[float]]:
    """Δ-toxicity rewards of every segment of every text, from ONE ``scorer.toxicity`` call:
    all prefixes of the batch (and ``""`` when ``empty_toxicity`` is None) are flattened,
    scored together and cut back into rows."""
    flat = [p for text, row in zip(texts, spans) for p in sentence_prefixes(text, row)]
    score_empty = empty_toxicity is None and bool(flat)
    if not flat:
        return [[] for _ in spans]
    tox = scorer.toxicity(flat + [""] if score_empty else flat)
    t0 = tox[-1] if score_empty else float(empty_toxicity)  # type: ignore[arg-type]
    rows, offset = [], 0
    for row in spans:
        rows.append(prefix_delta_rewards(tox[offset : offset + len(row)], t0))
        offset += len(row)
    return rows


def holistic_toxicity_rows(scorer: TextToxicity, texts: Sequence[str],
                           spans: Sequence[Sequence[Span]]) -> list[list[float]]:
    """``1 − tox(y)`` at each text's last segment, from one ``scorer.toxicity`` call over the
    texts that have a segment (an empty generation gets no reward and is not scored)."""
    scored = [b for b, row in enumerate(spans) if row]
    tox = dict(zip(scored, scorer.toxicity([texts[b] for b in scored]))) if scored else {}
    return [holistic_rewards(tox[b], len(row)) if row else [] for b, row in enumerate(spans)]


def _scorer(checkpoint: str | Path | None, scorer: TextToxicity | None, device, batch_size: int,
            bf16: bool | None) -> TextToxicity:
    if (checkpoint is None) == (scorer is None):
        raise ValueError("give a toxicity-scorer checkpoint or a scorer object, exactly one of them")
    if scorer is not None:
        return scorer
    return load_toxicity_scorer(checkpoint, device=device, batch_size=batch_size, bf16=bf16)


class HolisticToxicityReward:
    """``1 − tox(y)`` per generated continuation, at its last segment (sequence granularity)."""

    granularity = Granularity.SEQUENCE

    def __init__(self, checkpoint: str | Path | None = None, scorer: TextToxicity | None = None,
                 device: str | None = None, batch_size: int = 64, bf16: bool | None = None) -> None:
        self.scorer = _scorer(checkpoint, scorer, device, batch_size, bf16)

    def score(self, inputs: RewardInputs, spans: Sequence[Sequence[Span]]) -> SegmentScores:
        return SegmentScores.from_lists(holistic_toxicity_rows(self.scorer, inputs.texts, spans))


class SentenceToxicityReward:
    """``−(tox(y_≤j) − tox(y_≤j−1))`` per sentence j of the continuation (sentence granularity)."""

    granularity = Granularity.SENTENCE

    def __init__(self, checkpoint: str | Path | None = None, scorer: TextToxicity | None = None,
                 device: str | None = None, batch_size: int = 64, bf16: bool | None = None,
                 empty_toxicity: float | None = None) -> None:
        self.scorer = _scorer(checkpoint, scorer, device, batch_size, bf16)
        self.empty_toxicity = empty_toxicity

    def score(self, inputs: RewardInputs, spans: Sequence[Sequence[Span]]) -> SegmentScores:
        return SegmentScores.from_lists(
            sentence_toxicity_rows(self.scorer, inputs.texts, spans, self.empty_toxicity))


# --- the Perspective API -------------------------------------------------------------------

PERSPECTIVE_URL = "https://commentanalyzer.googleapis.com/v1alpha1/comments:analyze"
PERSPECTIVE_KEY_ENV = "PERSPECTIVE_API_KEY"
# Rate-limit and server-side failures worth waiting for; anything else (a bad key, a
# malformed request) fails at once.
_RETRY_STATUS = (429, 500, 502, 503, 504)


def perspective_request_body(text: str, attributes: Sequence[str] = ("TOXICITY",),
                             languages: Sequence[str] = ("en",), do_not_store: bool = True) -> dict[str, Any]:
    """The JSON body of one ``comments:analyze`` request. ``doNotStore``: generated text is
    not training data for Google's models."""
    return {"comment": {"text": text}, "languages": list(languages),
            "requestedAttributes": {a: {} for a in attributes}, "doNotStore": do_not_store}


def perspective_toxicity(response: dict[str, Any], attribute: str = "TOXICITY") -> float:
    """The summary score of ``attribute`` in a ``comments:analyze`` response."""
    try:
        return float(response["attributeScores"][attribute]["summaryScore"]["value"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"Perspective response has no {attribute} summary score: {str(response)[:300]}") from err


class PerspectiveScorer:
    """Toxicity from the Perspective API, one request per distinct non-blank text.

    Requests are spaced by ``1 / rate_limit`` seconds (the API's default quota is 1 request/s)
    and retried with exponential backoff on 429 and 5xx answers and network errors. A blank
    text is not sent (the API rejects empty comments) and gets toxicity 0.
    """

    def __init__(self, api_key: str | None = None, rate_limit: float = 1.0, max_retries: int = 5,
                 timeout: float = 30.0, url: str = PERSPECTIVE_URL, languages: Sequence[str] = ("en",)) -> None:
        key = api_key or os.environ.get(PERSPECTIVE_KEY_ENV)
        if not key:
            raise RuntimeError(
                f"the Perspective API needs a key: set {PERSPECTIVE_KEY_ENV} or pass api_key=... "
                "(https://developers.perspectiveapi.com/s/docs-get-started); without network access "
                "use the offline scorer (fgrlhf-toxicity, reward=detox_sentence / detox_holistic)")
        if rate_limit <= 0:
            raise ValueError(f"rate_limit must be positive (requests per second), not {rate_limit}")
        self._key = key
        self.interval = 1.0 / rate_limit
        self.max_retries, self.timeout, self.url, self.languages = max_retries, timeout, url, tuple(languages)
        self._last = 0.0
        self._lock = threading.Lock()

    def _wait_turn(self) -> None:
        with self._lock:
            delay = self._last + self.interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self._last = time.monotonic()

    def _request(self, text: str) -> float:
        body = json.dumps(perspective_request_body(text, languages=self.languages)).encode()
        request = urllib.request.Request(f"{self.url}?key={self._key}", data=body,
                                         headers={"Content-Type": "application/json"}, method="POST")
        for attempt in range(self.max_retries + 1):
            self._wait_turn()
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                    return perspective_toxicity(json.load(resp))
            except urllib.error.HTTPError as err:
                if err.code not in _RETRY_STATUS or attempt == self.max_retries:
                    detail = err.read().decode(errors="replace")[:300]
                    raise RuntimeError(f"Perspective API answered HTTP {err.code}: {detail}") from err
            except (urllib.error.URLError, TimeoutError) as err:
                if attempt == self.max_retries:
                    raise RuntimeError(f"Perspective API unreachable after {attempt + 1} tries: {err}") from err
            time.sleep(min(60.0, 2.0 ** attempt))
        raise AssertionError("unreachable")

    def toxicity(self, texts: Sequence[str]) -> list[float]:
        scores = {t: (0.0 if not t.strip() else None) for t in texts}
        for t in scores:
            if scores[t] is None:
                scores[t] = self._request(t)
        return [float(scores[t]) for t in texts]  # type: ignore[arg-type]


class PerspectiveReward:
    """The paper's own reward: holistic (``granularity=sequence``) or Δ-toxicity per sentence
    (``granularity=sentence``) from the Perspective API. Fails at construction without a key."""

    def __init__(self, granularity: str = "sentence", api_key: str | None = None, rate_limit: float = 1.0,
                 max_retries: int = 5, timeout: float = 30.0, empty_toxicity: float | None = 0.0) -> None:
        self.granularity = Granularity(granularity)
        if self.granularity not in (Granularity.SEQUENCE, Granularity.SENTENCE):
            raise ValueError(f"PerspectiveReward: granularity must be sequence or sentence, not {granularity!r}")
        self.scorer = PerspectiveScorer(api_key, rate_limit, max_retries, timeout)
        # The API scores "" as nothing: 0 unless told otherwise (None scores "" → 0 as well).
        self.empty_toxicity = empty_toxicity

    def score(self, inputs: RewardInputs, spans: Sequence[Sequence[Span]]) -> SegmentScores:
        if self.granularity is Granularity.SEQUENCE:
            rows = holistic_toxicity_rows(self.scorer, inputs.texts, spans)
        else:
            rows = sentence_toxicity_rows(self.scorer, inputs.texts, spans, self.empty_toxicity)
        return SegmentScores.from_lists(rows)
