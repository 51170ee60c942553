"""Learned reward models: checkpoints of ``fgrlhf-rm`` (or any compatible Hugging Face
checkpoint with an ``fgrlhf_rm.json``), loaded behind the ``RewardModel`` contract.

- ``SegmentClassifierReward`` (R1 relevance, R2 factuality): a token classifier that reads a
  separator before each segment (over a decoder, ``CausalTokenClassifier``: the one after
  it); a segment predicted error-free gets ``positive``, an error gets ``negative`` (the
  paper: ±0.3 for R1, ±0.5 for R2).
- ``SequenceReward`` (R3 completeness, holistic preference): a scalar head over the whole
  input; its raw score is normalised with the mean/std it had on its training set, then
  scaled (the paper scaled R3 by 0.3), and placed at the last segment.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from fgrlhf.device import default_device, resolve_bf16
from fgrlhf.errors import CheckpointError
from fgrlhf.reward.base import RewardInputs, SegmentScores
from fgrlhf.reward.categories import is_error
from fgrlhf.reward.encoding import SeparatorEncoder, Window, passage_evidence
from fgrlhf.reward.evidence import Retriever, segment_inputs
from fgrlhf.reward.normalize import FixedNormalizer
from fgrlhf.segment.base import Granularity, Span

METADATA_FILE = "fgrlhf_rm.json"


class MissingCheckpointError(CheckpointError, FileNotFoundError):
    """A reward-model checkpoint folder, or its ``fgrlhf_rm.json``, that is not there."""


@dataclass
class RMMetadata:
    """What a reward-model checkpoint is, saved next to its weights."""

    category: str  # relevance | factuality | completeness | preference | ...
    kind: Literal["segment", "sequence", "toxicity"]
    granularity: str
    backbone: str
    label_scheme: dict[str, str]
    use_passages: bool
    max_length: int
    max_question_tokens: int = 64
    evidence: str = "passages"  # segment models: passages | bm25 | minilm | hybrid (fgrlhf.reward.evidence)
    evidence_k: int = 3  # passage sentences per segment with a retriever
    score_mean: float = 0.0  # raw score statistics on the training set
    score_std: float = 1.0
    # Segment models: P(error) = softmax(logits / temperature)[error]; fitted on dev with
    # rm.calibrate (fgrlhf.eval.calibration.fit_temperature), 1.0 otherwise.
    temperature: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict)

    def save(self, directory: str | Path) -> None:
        """Writes ``fgrlhf_rm.json`` whole or not at all (a temporary file, then a rename), so
        rewriting a checkpoint's metadata never leaves it unloadable."""
        path = Path(directory) / METADATA_FILE
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1))
        tmp.replace(path)

    def as_files(self) -> dict[str, Any]:
        """``{file name: JSON content}``, what ``save`` writes, for ``save_model_dir``'s ``metadata``."""
        return {METADATA_FILE: asdict(self)}

    def score_normalizer(self) -> FixedNormalizer:
        """``(x − score_mean) / score_std``: the raw scores' normalisation on the training set."""
        return FixedNormalizer(self.score_mean, self.score_std)

    @classmethod
    def load(cls, directory: str | Path, what: str = "reward-model checkpoint") -> RMMetadata:
        """The metadata of the checkpoint in ``directory``; a folder that is missing, or whose
        ``fgrlhf_rm.json`` is missing, unreadable or incomplete, is a ``CheckpointError``
        naming it."""
        from fgrlhf.data.files import read_json_object

        directory = Path(directory)
        if not directory.exists():
            raise MissingCheckpointError(f"the {what} {directory} does not exist")
        if not directory.is_dir():
            raise CheckpointError(f"the {what} {directory} is a file; expected a checkpoint folder")
        path = directory / METADATA_FILE
        if not path.exists():
            raise MissingCheckpointError(
                f"{path} not found: {directory} is not an fgrlhf reward-model checkpoint "
                "(train one with fgrlhf-rm, or write this metadata file next to your weights)"
            )
        data = read_json_object(path)
        names = {f.name for f in fields(cls)}
        missing = [f.name for f in fields(cls) if f.name not in data and f.default is MISSING
                   and f.default_factory is MISSING]
        unknown = sorted(set(data) - names)
        if missing or unknown:
            problem = f"missing field {missing[0]!r}" if missing else f"unknown field {unknown[0]!r}"
            raise CheckpointError(f"{path}: {problem} (not written by fgrlhf-rm or fgrlhf-toxicity?)")
        return cls(**data)


class TrunkAndHead(torch.nn.Module):
    """A pretrained trunk (``encoder``, any Hugging Face base model) under a small new head
    (``score``); saved as the trunk's Hugging Face checkpoint plus ``HEAD_FILE`` (the head's
    weights, with ``head_metadata()``). ``encoder`` is where ``fgrlhf.policy.lora`` finds
    the trunk for adapters."""

    HEAD_FILE: str

    def __init__(self, encoder, score: torch.nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.score = score

    @property
    def base_model(self):
        return self.encoder

    @property
    def config(self):
        return self.encoder.config

    def head_metadata(self) -> dict[str, str] | None:
        return None

    def load_head(self, path: str | Path) -> TrunkAndHead:
        """The saved head's weights, if ``path`` holds ``HEAD_FILE`` (else the head stays new)."""
        from safetensors.torch import load_file

        head = Path(path) / self.HEAD_FILE
        if head.exists():
            self.score.load_state_dict(load_file(head))
        return self

    def save_pretrained(self, path: str | Path, safe_serialization: bool = True) -> None:
        from safetensors.torch import save_file

        self.encoder.save_pretrained(path, safe_serialization=safe_serialization)
        save_file({k: v.contiguous() for k, v in self.score.state_dict().items()}, Path(path) / self.HEAD_FILE,
                  metadata=self.head_metadata())


class MeanPoolScorer(TrunkAndHead):
    """A scalar reward head on the answer's mean token state and its length.

    ``r = w · [mean_{t ∈ answer} h_t ; log(1 + n_answer)] + b``. The question and evidence
    are read (attention) but only the answer's tokens are pooled: the answer is what is
    judged. Mean pooling, not the ``[CLS]``/pooler output, because sentence encoders such as
    all-MiniLM-L6-v2 are trained to summarise text by the mean of their token states; the
    mean hides how much the answer says, so its length enters explicitly (completeness is
    largely about how much of the needed information an answer holds). Saved as the
    encoder's Hugging Face checkpoint plus ``score_head.safetensors``.
    """

    HEAD_FILE = "score_head.safetensors"

    def __init__(self, encoder) -> None:
        super().__init__(encoder, torch.nn.Linear(encoder.config.hidden_size + 1, 1))

    def forward(self, input_ids: Tensor, attention_mask: Tensor, pool_mask: Tensor | None = None):
        """``pool_mask`` ``[N, L]`` marks the answer's tokens (default: all real tokens)."""
        from types import SimpleNamespace

        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # [N, L, H]
        pool = attention_mask if pool_mask is None else pool_mask
        m = pool.unsqueeze(-1).to(hidden.dtype)  # [N, L, 1]
        n = m.sum(dim=1)  # [N, 1]
        pooled = (hidden * m).sum(dim=1) / n.clamp(min=1.0)  # [N, H]
        features = torch.cat([pooled, torch.log1p(n)], dim=-1)  # [N, H + 1]
        return SimpleNamespace(logits=self.score(features))  # [N, 1]

    @classmethod
    def from_pretrained(cls, path: str | Path) -> MeanPoolScorer:
        """From a scorer checkpoint, or from a bare encoder (the head is then new)."""
        from transformers import AutoModel

        return cls(AutoModel.from_pretrained(path)).load_head(path)


def is_causal_trunk(config) -> bool:
    """Whether a backbone reads left to right only (a decoder LM: Gemma, Llama, GPT-2, ...)
    rather than both ways (BERT, RoBERTa, Longformer, DeBERTa, ...). Encoders are among the
    masked-LM architectures of transformers; decoders only among the causal-LM ones."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    kind = config.model_type
    return kind in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and kind not in MODEL_FOR_MASKED_LM_MAPPING_NAMES


def closing_separators(input_ids: Tensor, attention_mask: Tensor, sep_id: int) -> Tensor:
    """``[N, L]``: for every position, the first separator after it among the real tokens
    (the position itself where none follows)."""
    n, width = input_ids.shape
    pos = torch.arange(width, device=input_ids.device).expand(n, width)  # [N, L]
    at = torch.where((input_ids == sep_id) & attention_mask.bool(), pos, torch.full_like(pos, width))
    from_here = at.flip(-1).cummin(dim=-1).values.flip(-1)  # [N, L]: first separator at or after p
    after = torch.cat([from_here[:, 1:], torch.full_like(from_here[:, :1], width)], dim=1)  # [N, L]: after p
    return torch.where(after < width, after, pos)


class CausalTokenClassifier(TrunkAndHead):
    """A segment classifier (R1/R2) over a causal trunk, e.g. Gemma 3.

    ``SeparatorEncoder`` puts a separator in front of every segment and the segment models
    read their logits there. An encoder's state at that separator has read the whole input;
    a decoder's has read nothing of the segment it opens. So this head reads each segment at
    the separator that closes it (the next one; the last segment's is the closing separator
    every window ends with), and returns those logits at the opening separator's position:
    callers index ``sep_positions`` whatever the trunk. Saved as the trunk's Hugging Face
    checkpoint plus ``token_head.safetensors`` (the head, with the separator id and the
    number of labels in its metadata).
    """

    HEAD_FILE = "token_head.safetensors"

    def __init__(self, encoder, num_labels: int, sep_token_id: int) -> None:
        super().__init__(encoder, torch.nn.Linear(encoder.config.hidden_size, num_labels))
        self.sep_token_id = sep_token_id

    def forward(self, input_ids: Tensor, attention_mask: Tensor):
        from types import SimpleNamespace

        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                              use_cache=False).last_hidden_state  # [N, L, H]
        logits = self.score(hidden)  # [N, L, C]
        at = closing_separators(input_ids, attention_mask, self.sep_token_id)  # [N, L]
        return SimpleNamespace(logits=logits.gather(1, at.unsqueeze(-1).expand(-1, -1, logits.shape[-1])))

    @classmethod
    def from_pretrained(cls, path: str | Path, num_labels: int = 2,
                        sep_token_id: int | None = None) -> CausalTokenClassifier:
        """From a classifier checkpoint, or from a bare causal LM (the head is then new and
        ``sep_token_id`` is required)."""
        from safetensors import safe_open
        from transformers import AutoModel

        head = Path(path) / cls.HEAD_FILE
        if head.exists():
            with safe_open(str(head), framework="pt") as f:
                info = f.metadata() or {}
            num_labels, sep_token_id = int(info["num_labels"]), int(info["sep_token_id"])
        elif sep_token_id is None:
            raise ValueError(f"{path} has no {cls.HEAD_FILE}: a new head needs sep_token_id")
        return cls(AutoModel.from_pretrained(path), num_labels, sep_token_id).load_head(path)

    def head_metadata(self) -> dict[str, str]:
        return {"num_labels": str(self.score.out_features), "sep_token_id": str(self.sep_token_id)}


def load_token_classifier(path: str | Path, sep_token_id: int | None = None):
    """An R1/R2 classifier (label 1 = error) from ``path``: a ``CausalTokenClassifier``
    checkpoint, a new one over a causal LM, else Hugging Face's token classifier (a new head
    over an encoder, or its trained checkpoint)."""
    from transformers import AutoConfig, AutoModelForTokenClassification

    if (Path(path) / CausalTokenClassifier.HEAD_FILE).exists() or is_causal_trunk(AutoConfig.from_pretrained(path)):
        return CausalTokenClassifier.from_pretrained(path, 2, sep_token_id)
    return AutoModelForTokenClassification.from_pretrained(
        path, num_labels=2, id2label={0: "no-error", 1: "error"}, label2id={"no-error": 0, "error": 1})


def error_probs_of(logits: Tensor, temperature: float = 1.0) -> Tensor:
    """``[n]`` P(error) of a segment classifier's ``[n, 2]`` logits divided by ``temperature``
    (``RMMetadata.temperature``): the one reading of R1/R2 outputs, in training and scoring."""
    return torch.softmax(logits.float() / temperature, dim=-1)[:, 1]


def pad_batch(seqs: Sequence[Sequence[int]], pad_id: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Right-pad id lists: ``input_ids``, ``attention_mask`` ``[N, L]``."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, : len(s)] = 1
    return ids.to(device), mask.to(device)


def window_logits(model, windows: Sequence[Window], pad_id: int, device: torch.device,
                  batch_size: int) -> list[Tensor]:
    """Token-classifier logits at each window's separators: one ``[n_segments, C]`` per window.
    Windows are batched by length to waste little padding."""
    order = sorted(range(len(windows)), key=lambda i: len(windows[i].input_ids))
    out: list[Tensor | None] = [None] * len(windows)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        ids, mask = pad_batch([windows[i].input_ids for i in idx], pad_id, device)
        logits = model(input_ids=ids, attention_mask=mask).logits  # [N, L, C]
        for row, i in enumerate(idx):
            out[i] = logits[row, windows[i].sep_positions]  # [n_segments, C]
    return out  # type: ignore[return-value]


def _passages(meta: RMMetadata, record: dict[str, Any]) -> list[list[str]] | None:
    """The example's passages if the model reads them (None if it does not)."""
    if not meta.use_passages:
        return None
    passages = record.get("passages")
    if passages is None:
        raise KeyError(f"reward model '{meta.category}' reads passages, but the example's metadata has none")
    return passages


def _evidence(meta: RMMetadata, record: dict[str, Any]) -> list[str]:
    passages = _passages(meta, record)
    return [] if passages is None else passage_evidence(passages)


class _Loaded:
    """Loads the checkpoint, tokenizer and metadata; frozen, eval mode, chosen device."""

    def __init__(self, checkpoint: str | Path, load, device: str | None, batch_size: int,
                 bf16: bool | None = None) -> None:
        from transformers import AutoTokenizer

        from fgrlhf.toolkit.load import loading, model_source

        self.checkpoint = str(checkpoint)
        self.meta = RMMetadata.load(checkpoint)
        source = model_source(self.checkpoint, "reward-model checkpoint")
        self.device = torch.device(device) if device else default_device()
        with loading(source, "reward-model checkpoint"):
            self.tokenizer = AutoTokenizer.from_pretrained(source)
            model = load(source)
        self.model = model.to(self.device).eval()
        self.model.requires_grad_(False)
        self.encoder = SeparatorEncoder(self.tokenizer, self.meta.max_length, self.meta.max_question_tokens)
        self.batch_size = batch_size
        self.bf16 = resolve_bf16(bf16, self.device)
        self.granularity = Granularity(self.meta.granularity)

    def autocast(self):
        """bfloat16 autocast for the forward passes when ``bf16`` (``None``: where it is fast)."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)


class SegmentClassifierReward(_Loaded):
    """R1/R2-style reward from a token-classification checkpoint (label 1 = error)."""

    def __init__(self, checkpoint: str | Path, positive: float = 0.3, negative: float = -0.3,
                 mode: Literal["label", "expected"] = "label", device: str | None = None,
                 batch_size: int = 16, bf16: bool | None = None) -> None:
        super().__init__(checkpoint, load_token_classifier, device, batch_size, bf16)
        if self.meta.kind != "segment":
            raise ValueError(f"{checkpoint} holds a {self.meta.kind} model, not a segment classifier")
        if mode not in ("label", "expected"):
            raise ValueError(f"mode must be 'label' or 'expected', not {mode!r}")
        self.positive, self.negative, self.mode = positive, negative, mode
        # The same evidence as in training: fgrlhf.reward.evidence.segment_inputs.
        self.retriever = (Retriever(self.meta.evidence) if self.meta.use_passages
                          and self.meta.evidence != "passages" else None)

    @torch.no_grad()
    def error_probs(self, questions: Sequence[str], texts: Sequence[str], spans: Sequence[Sequence[Span]],
                    metadata: Sequence[dict[str, Any]]) -> list[list[float]]:
        """P(error) of every segment of every text."""
        windows, owner = [], []
        for b, (q, text, row) in enumerate(zip(questions, texts, spans)):
            if not row:
                continue
            for w in segment_inputs(self.encoder, q, text, row, _passages(self.meta, metadata[b]),
                                    self.meta.evidence, self.meta.evidence_k, self.retriever):
                windows.append(w)
                owner.append(b)
        probs: list[list[float]] = [[0.0] * len(row) for row in spans]
        if windows:
            with self.autocast():
                logits = window_logits(self.model, windows, self.tokenizer.pad_token_id or 0, self.device,
                                       self.batch_size)
            for w, b, lg in zip(windows, owner, logits):
                p = error_probs_of(lg, self.meta.temperature).tolist()
                for seg, pe in zip(w.segment_ids, p):
                    probs[b][seg] = pe
        return probs

    def score(self, inputs: RewardInputs, spans: Sequence[Sequence[Span]]) -> SegmentScores:
        probs = self.error_probs(inputs.questions(), inputs.texts, spans, inputs.metadata)
        return SegmentScores.from_lists(error_rewards(probs, self.positive, self.negative, self.mode))


def error_rewards(probs: Sequence[Sequence[float]], positive: float, negative: float,
                  mode: str) -> list[list[float]]:
    """Segment rewards from P(error): ``label`` gives ``negative`` to a segment judged an
    error (``is_error``) and ``positive`` otherwise; ``expected`` interpolates,
    ``positive + (negative − positive) · P(error)``."""
    if mode == "label":
        return [[negative if is_error(p) else positive for p in row] for row in probs]
    return [[positive + (negative - positive) * p for p in row] for row in probs]


class SequenceReward(_Loaded):
    """R3/preference-style reward from a scalar-head checkpoint, one score per answer."""

    granularity = Granularity.SEQUENCE

    def __init__(self, checkpoint: str | Path, scale: float = 1.0, normalize: bool = True,
                 device: str | None = None, batch_size: int = 16, bf16: bool | None = None) -> None:
        super().__init__(checkpoint, MeanPoolScorer.from_pretrained, device, batch_size, bf16)
        if self.meta.kind != "sequence":
            raise ValueError(f"{checkpoint} holds a {self.meta.kind} model, not a sequence reward model")
        self.scale, self.normalize = scale, normalize

    @torch.no_grad()
    def raw_scores(self, questions: Sequence[str], texts: Sequence[str],
                   metadata: Sequence[dict[str, Any]]) -> list[float]:
        seqs = [self.encoder.encode_sequence(q, t, _evidence(self.meta, m))
                for q, t, m in zip(questions, texts, metadata)]
        with self.autocast():
            return sequence_scores(self.model, seqs, self.tokenizer.pad_token_id or 0, self.device, self.batch_size)

    def score(self, inputs: RewardInputs, spans: Sequence[Sequence[Span]]) -> SegmentScores:
        raw = self.raw_scores(inputs.questions(), inputs.texts, inputs.metadata)
        norm = self.meta.score_normalizer() if self.normalize else FixedNormalizer()
        rows = []
        for r, row in zip(raw, spans):
            # The score sits on the last segment (the whole answer at sequence granularity).
            rows.append([0.0] * (len(row) - 1) + [norm.standardize(r, self.scale)] if row else [])
        return SegmentScores.from_lists(rows)


def answer_mask(windows: Sequence[Window], width: int, device: torch.device) -> Tensor:
    """``[N, width]``: 1 on each window's answer tokens, from its first separator to its end
    (none for an empty answer)."""
    mask = torch.zeros(len(windows), width, dtype=torch.long)
    for i, w in enumerate(windows):
        if w.sep_positions:
            mask[i, w.sep_positions[0] : len(w.input_ids)] = 1
    return mask.to(device)


def score_windows(model, windows: Sequence[Window], pad_id: int, device: torch.device) -> Tensor:
    """Scalar-head outputs ``[N]`` for one batch of sequence-level windows."""
    ids, mask = pad_batch([w.input_ids for w in windows], pad_id, device)
    return model(input_ids=ids, attention_mask=mask, pool_mask=answer_mask(windows, ids.shape[1], device)).logits[:, 0]


def sequence_scores(model, windows: Sequence[Window], pad_id: int, device: torch.device,
                    batch_size: int) -> list[float]:
    """Scalar-head outputs for sequence-level windows, batched by length."""
    order = sorted(range(len(windows)), key=lambda i: len(windows[i].input_ids))
    out = [0.0] * len(windows)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        scores = score_windows(model, [windows[i] for i in idx], pad_id, device).float().tolist()
        for i, s in zip(idx, scores):
            out[i] = s
    return out
