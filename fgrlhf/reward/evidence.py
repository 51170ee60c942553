"""Evidence for a sentence-level judgement: which passage sentences to read with each answer
sentence.

A factuality reward model (R2) judges whether an answer sentence is supported by the
passages. With ``evidence=passages`` it reads the whole answer with as many passage sentences
as fit (``SeparatorEncoder``'s packing); with a retriever (``bm25``, ``minilm``, ``hybrid``) it
reads each answer sentence in its own window, with the ``k`` passage sentences the retriever
ranks highest for that sentence. Training (``fgrlhf.train.rm.segment_windows``) and scoring
(``fgrlhf.reward.learned.SegmentClassifierReward``) build their inputs with the same
``segment_inputs``, so the model is scored on the kind of input it was trained on.

Retrievers rank the passage sentences of one question (titles excluded, passage order):
- ``bm25``: Okapi BM25 (k1 = 1.2, b = 0.75) over lower-cased ``\\w+`` words, IDF from the
  question's own passage sentences;
- ``minilm``: cosine similarity of all-MiniLM-L6-v2 sentence embeddings (mean-pooled,
  L2-normalised token states);
- ``hybrid``: reciprocal-rank fusion of the two (score Σ 1 / (60 + rank)).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from fgrlhf.reward.encoding import SeparatorEncoder, Window, passage_evidence
from fgrlhf.segment.base import Span
from fgrlhf.segment.words import word_bag

EVIDENCE_MODES = ("passages", "bm25", "minilm", "hybrid")
RRF_OFFSET = 60  # reciprocal-rank fusion's usual constant: damps the weight of the very top ranks


def bm25_scores(query: Counter, docs: Sequence[Counter], k1: float = 1.2, b: float = 0.75) -> list[float]:
    """Okapi BM25 of each document for ``query`` (word multisets); IDF over ``docs`` with the
    non-negative form log(1 + (N − n + 0.5) / (n + 0.5))."""
    n_docs = len(docs)
    if n_docs == 0:
        return []
    avg_len = sum(sum(d.values()) for d in docs) / n_docs or 1.0
    df = Counter(w for d in docs for w in d)
    idf = {w: math.log(1 + (n_docs - df[w] + 0.5) / (df[w] + 0.5)) for w in query}
    out = []
    for d in docs:
        length = sum(d.values())
        s = 0.0
        for w in query:  # each distinct query word once, as in BM25
            tf = d.get(w, 0)
            if tf:
                s += idf[w] * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / avg_len))
        out.append(s)
    return out


def ranking(scores: Sequence[float]) -> list[int]:
    """Indices by descending score; equal scores keep their order (passage order)."""
    return sorted(range(len(scores)), key=lambda i: -scores[i])


def fuse_rankings(rankings: Sequence[Sequence[int]], offset: int = RRF_OFFSET) -> list[int]:
    """Reciprocal-rank fusion: items by descending Σ over rankings of 1 / (offset + rank),
    rank counted from 1; ties keep the order of the first ranking."""
    if not rankings:
        return []
    score: dict[int, float] = {}
    for r in rankings:
        for pos, i in enumerate(r):
            score[i] = score.get(i, 0.0) + 1.0 / (offset + pos + 1)
    first = {i: pos for pos, i in enumerate(rankings[0])}
    return sorted(score, key=lambda i: (-score[i], first.get(i, len(first))))


class SentenceEmbedder:
    """all-MiniLM-L6-v2 sentence embeddings (mean of token states, L2-normalised), on CPU;
    loaded on first use. Holds the model, hence a class."""

    def __init__(self, backbone: str = "minilm", batch_size: int = 64) -> None:
        self.backbone, self.batch_size = backbone, batch_size
        self._model = self._tokenizer = None

    def _load(self) -> None:
        from transformers import AutoModel, AutoTokenizer

        from fgrlhf.paths import resolve_pretrained
        from fgrlhf.toolkit.load import loading, model_source

        source = model_source(resolve_pretrained(self.backbone), "sentence-embedding model")
        with loading(source, "sentence-embedding model"):
            self._tokenizer = AutoTokenizer.from_pretrained(source)
            self._model = AutoModel.from_pretrained(source).eval()

    def __call__(self, texts: Sequence[str]):
        """``[len(texts), H]`` float tensor of unit-length embeddings."""
        import torch

        if self._model is None:
            self._load()
        parts = []
        with torch.no_grad():
            for start in range(0, len(texts), self.batch_size):
                batch = self._tokenizer(list(texts[start : start + self.batch_size]), padding=True, truncation=True,
                                        max_length=128, return_tensors="pt")
                hidden = self._model(**batch).last_hidden_state  # [B, L, H]
                m = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # [B, L, 1]
                pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)  # [B, H]
                parts.append(torch.nn.functional.normalize(pooled, dim=-1))
        return torch.cat(parts) if parts else torch.zeros(0, 0)


class Retriever:
    """Ranks one question's passage sentences for each of its answer sentences (``mode``: one
    of ``bm25``, ``minilm``, ``hybrid``). Holds the embedding model for ``minilm``/``hybrid``."""

    def __init__(self, mode: str, embedder: SentenceEmbedder | None = None) -> None:
        if mode not in EVIDENCE_MODES[1:]:
            raise ValueError(f"retriever {mode!r}: one of {', '.join(EVIDENCE_MODES[1:])}")
        self.mode = mode
        self.embedder = embedder if embedder is not None or mode == "bm25" else SentenceEmbedder()

    def rank(self, queries: Sequence[str], sentences: Sequence[str]) -> list[list[int]]:
        """For each query, all indices of ``sentences``, best first."""
        if not sentences:
            return [[] for _ in queries]
        lexical = semantic = None
        if self.mode in ("bm25", "hybrid"):
            bags = [word_bag(s) for s in sentences]
            lexical = [ranking(bm25_scores(word_bag(q), bags)) for q in queries]
        if self.mode in ("minilm", "hybrid"):
            emb = self.embedder(list(queries) + list(sentences))  # [Q + S, H]
            sims = emb[: len(queries)] @ emb[len(queries) :].T  # [Q, S]
            semantic = [ranking(row) for row in sims.tolist()]
        if self.mode == "bm25":
            return lexical
        if self.mode == "minilm":
            return semantic
        return [fuse_rankings([a, b]) for a, b in zip(lexical, semantic)]

    def top_k(self, queries: Sequence[str], sentences: Sequence[str], k: int) -> list[list[int]]:
        return [r[:k] for r in self.rank(queries, sentences)]


def segment_inputs(encoder: SeparatorEncoder, question: str, answer: str, spans: Sequence[Span],
                   passages: Sequence[Sequence[str]] | None, evidence: str = "passages", k: int = 3,
                   retriever: Retriever | None = None,
                   extra: Sequence[Sequence[int]] | None = None) -> list[Window]:
    """The windows a segment reward model reads for one answer.

    ``passages`` None: question + answer only. ``evidence=passages``: the whole answer with
    passage sentences packed into the room left (``SeparatorEncoder.encode``). A retriever
    mode: one window per segment holding the segment and its ``k`` top-ranked passage
    sentences (in passage order); ``extra`` (training only) adds, per segment, indices into
    the passage sentences that must be read too (evidence named by the annotation).
    """
    if passages is None:
        return encoder.encode(question, answer, spans)
    sentences = passage_evidence(passages)
    if evidence == "passages":
        return encoder.encode(question, answer, spans, sentences)
    if retriever is None or retriever.mode != evidence:
        raise ValueError(f"evidence={evidence!r} needs a Retriever of that mode")
    picks = retriever.top_k([answer[s:e] for s, e in spans], sentences, k)
    if extra is not None:
        picks = [list(dict.fromkeys([*x, *p]))[: max(k, len(x))] for p, x in zip(picks, extra)]
    return encoder.encode_each(question, answer, spans, [[sentences[j] for j in sorted(p)] for p in picks])
