"""Training and evaluating the QA-Feedback reward models.

Segment models (R1, R2): token classification at the separator before each segment,
cross-entropy over labelled segments (``IGNORE`` ones are read but not scored).
Ranking models (R3, preference): a scalar head; a question's K answers form one batch
element and the loss is InstructGPT's −mean over its comparisons of log σ(r_w − r_l).
Both keep the best dev state (early stopping) and are saved in Hugging Face format with the
tokenizer and an ``fgrlhf_rm.json``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from tqdm import tqdm

from fgrlhf.data.rm_examples import IGNORE, RankingExample, SegmentLabelExample
from fgrlhf.data.rm_pairs import LENGTH_MATCH_RATIO, length_matched
from fgrlhf.reward.encoding import SeparatorEncoder, Window, passage_evidence
from fgrlhf.reward.evidence import Retriever, segment_inputs
from fgrlhf.reward.learned import (
    RMMetadata,
    error_probs_of,
    pad_batch,
    score_windows,
    sequence_scores,
    window_logits,
)
from fgrlhf.toolkit.fit import FitConfig, autocast, fit, minibatches
from fgrlhf.toolkit.optim import build_adamw, make_scheduler
from fgrlhf.toolkit.save import save_model_dir


@dataclass
class OptimConfig(FitConfig):
    """A reward model's training: an encoder under a new head, early stopping on dev."""

    RULES: ClassVar[dict[str, str]] = {"warmup_ratio": "[0, 1]", "patience": ">= 0", "evals_per_epoch": "> 0",
                                       "error_class_weight": "> 0", "freeze_layers": ">= 0", "head_lr": "> 0"}

    weight_decay: float = 0.01
    epochs: int = 4
    batch_size: int = 8  # answers (segment models) or questions (ranking models) per step
    warmup_ratio: float = 0.1
    patience: int = 2  # evaluations without dev improvement before stopping
    evals_per_epoch: int = 2
    error_class_weight: float = 1.0  # >1 weighs the error class up in the segment loss
    freeze_layers: int = 0  # freeze the embeddings and this many lowest encoder layers (0: none)
    head_lr: float | None = None  # learning rate of the new head (default: lr); a few hundred
    # examples move a randomly initialised head too slowly at an encoder's fine-tuning rate


# ---------------------------------------------------------------------------------------
# Encoding examples
# ---------------------------------------------------------------------------------------
@dataclass
class LabelledWindow:
    window: Window
    labels: list[int]  # one per separator


@dataclass
class EvidenceReader:
    """What a segment model reads besides question and answer: nothing (``use_passages``
    false), the packed passages, or per segment a retriever's ``k`` best passage sentences
    (``fgrlhf.reward.evidence``)."""

    use_passages: bool
    evidence: str = "passages"
    k: int = 3
    retriever: Retriever | None = None


def evidence_reader(use_passages: bool, evidence: str = "passages", k: int = 3) -> EvidenceReader:
    """An ``EvidenceReader`` with its retriever built (none for ``passages``)."""
    retriever = Retriever(evidence) if use_passages and evidence != "passages" else None
    return EvidenceReader(use_passages, evidence, k, retriever)


def segment_windows(encoder: SeparatorEncoder, examples: Sequence[SegmentLabelExample],
                    read: EvidenceReader | bool, from_labels: bool = False) -> list[LabelledWindow]:
    """The labelled windows of ``examples``; ``read``: an ``EvidenceReader`` or, for the
    packed passages, ``use_passages``. ``from_labels``: each segment also reads the evidence
    its annotation names (retriever modes only)."""
    if isinstance(read, bool):
        read = EvidenceReader(read)
    out = []
    for ex in examples:
        extra = ex.evidence_ids if from_labels and ex.evidence_ids else None
        windows = segment_inputs(encoder, ex.question, ex.answer, ex.spans,
                                 ex.passages if read.use_passages else None, read.evidence, read.k,
                                 read.retriever, extra)
        for w in windows:
            out.append(LabelledWindow(w, [ex.labels[i] for i in w.segment_ids]))
    return out


def ranking_inputs(encoder: SeparatorEncoder, examples: Sequence[RankingExample],
                   use_passages: bool) -> list[list[Window]]:
    """Per example, the input of each of its answers."""
    out = []
    for ex in examples:
        evidence = passage_evidence(ex.passages) if use_passages else []
        out.append([encoder.encode_sequence(ex.question, a, evidence) for a in ex.answers])
    return out


# ---------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------
def segment_metrics(predictions: Sequence[int], labels: Sequence[int]) -> dict[str, float]:
    """Accuracy, error-class precision/recall/F1, and the majority-class baseline."""
    pairs = [(p, y) for p, y in zip(predictions, labels) if y != IGNORE]
    n = len(pairs)
    if n == 0:
        return {"n_segments": 0}
    tp = sum(1 for p, y in pairs if p == 1 and y == 1)
    fp = sum(1 for p, y in pairs if p == 1 and y == 0)
    fn = sum(1 for p, y in pairs if p == 0 and y == 1)
    n_err = sum(1 for _, y in pairs if y == 1)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "n_segments": n,
        "accuracy": sum(1 for p, y in pairs if p == y) / n,
        "error_precision": precision,
        "error_recall": recall,
        "error_f1": f1,
        "majority_baseline": max(n_err, n - n_err) / n,
        "error_rate": n_err / n,
    }


def pairwise_metrics(scores: Sequence[Sequence[float]], examples: Sequence[RankingExample],
                     ratio: float = LENGTH_MATCH_RATIO) -> dict[str, float]:
    """Pairwise accuracy of the model (a tie in model score counts half), of the length-only
    baseline "the longer answer wins" (equal length counts half), and of "the answer listed
    first wins" (QA-Feedback's annotators favour the lower-numbered prediction); the same
    three on the length-matched pairs alone (``length_matched`` at ``ratio``, keys
    ``matched_*``), where length cannot decide and what a model learned beyond it shows."""
    # [kind][subset]: kind 0 model, 1 longer-wins, 2 first-wins; subset 0 all, 1 matched
    hits = [[0.0, 0.0] for _ in range(3)]
    n = [0, 0]
    for s, ex in zip(scores, examples):
        for w, lo in ex.pairs:
            lw, ll = len(ex.answers[w].split()), len(ex.answers[lo].split())
            outcome = (1.0 if s[w] > s[lo] else 0.5 if s[w] == s[lo] else 0.0,
                       1.0 if lw > ll else 0.5 if lw == ll else 0.0,
                       1.0 if w < lo else 0.0)
            subsets = (0, 1) if length_matched(ex.answers[w], ex.answers[lo], ratio) else (0,)
            for k in subsets:
                n[k] += 1
                for kind in range(3):
                    hits[kind][k] += outcome[kind]
    if n[0] == 0:
        return {"n_pairs": 0}
    out: dict[str, float] = {"n_pairs": n[0], "pairwise_accuracy": hits[0][0] / n[0],
                             "length_baseline": hits[1][0] / n[0], "first_listed_baseline": hits[2][0] / n[0],
                             "n_matched_pairs": n[1], "length_match_ratio": ratio}
    if n[1]:
        out.update(matched_pairwise_accuracy=hits[0][1] / n[1], matched_length_baseline=hits[1][1] / n[1],
                   matched_first_listed_baseline=hits[2][1] / n[1])
    return out


# ---------------------------------------------------------------------------------------
# Loops
# ---------------------------------------------------------------------------------------
def freeze_lower_layers(model, n_layers: int) -> int:
    """Freeze the embeddings and the ``n_layers`` lowest transformer layers of an encoder
    (BERT, RoBERTa, Longformer, DeBERTa, ... layouts: ``embeddings``, ``encoder.layer``) or
    of a decoder used as a backbone (Llama, Gemma, ... layouts: ``embed_tokens``,
    ``layers``). With a few hundred examples this trains faster and overfits less. Returns
    the number of frozen parameters."""
    if n_layers <= 0:
        return 0
    base = model.base_model
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    embeddings = getattr(base, "embeddings", None)
    if layers is None or embeddings is None:
        layers, embeddings = getattr(base, "layers", None), getattr(base, "embed_tokens", None)
    if layers is None or embeddings is None:
        raise ValueError(f"freeze_layers: cannot find embeddings and encoder.layer (or embed_tokens and layers) "
                         f"in {type(base).__name__}; set rm.optim.freeze_layers=0")
    if n_layers > len(layers):
        from fgrlhf.errors import ConfigError

        raise ConfigError(f"optim.freeze_layers={n_layers}, but the encoder has {len(layers)} layers")
    frozen = 0
    for module in [embeddings, *layers[:n_layers]]:
        for p in module.parameters():
            p.requires_grad_(False)
            frozen += p.numel()
    return frozen


def encoder_optimizer(model, trunk, cfg, total_steps: int):
    """AdamW for a pretrained encoder ``trunk`` under a new head (``cfg.head_lr``), no decay
    on biases and norms; linear warmup over ``cfg.warmup_ratio`` of the steps (at least
    one), then linear decay to 0. ``cfg``: an ``OptimConfig`` or any config with its
    ``lr``, ``weight_decay``, ``head_lr`` and ``warmup_ratio``."""
    opt = build_adamw(model, cfg.lr, cfg.weight_decay, head_lr=cfg.head_lr, trunk=trunk, decay_norms=False)
    warmup = max(1, int(cfg.warmup_ratio * total_steps))
    return opt, make_scheduler(opt, warmup, total_steps, decay_after_warmup=True)


@torch.no_grad()
def predict_segments(model, windows: Sequence[LabelledWindow], pad_id: int, device, batch_size: int = 32,
                     temperature: float = 1.0) -> tuple[list[int], list[int], list[float]]:
    """Predicted labels, gold labels and P(error) (logits divided by ``temperature``, as
    ``SegmentClassifierReward`` scores) for every separator of every window."""
    model.eval()
    logits = window_logits(model, [lw.window for lw in windows], pad_id, device, batch_size)
    preds, golds, probs = [], [], []
    for lw, lg in zip(windows, logits):
        p = error_probs_of(lg, temperature)
        probs += p.tolist()
        preds += (p > 0.5).long().tolist()
        golds += lw.labels
    return preds, golds, probs


@torch.no_grad()
def predict_rankings(model, inputs: Sequence[Sequence[Window]], pad_id: int, device,
                     batch_size: int = 32) -> list[list[float]]:
    model.eval()
    flat = [seq for ex in inputs for seq in ex]
    scores = sequence_scores(model, flat, pad_id, device, batch_size)
    out, i = [], 0
    for ex in inputs:
        out.append(scores[i : i + len(ex)])
        i += len(ex)
    return out


def _fit(model, n_train: int, batch_loss, evaluate, describe, cfg: OptimConfig, logger=None) -> dict:
    """Both kinds: ``fgrlhf.toolkit.fit`` over shuffled minibatches of training indices,
    ``evals_per_epoch`` dev evaluations (under the training's autocast) per epoch, early
    stopping on the dev ``accuracy`` and the best state restored at the end.

    ``batch_loss(indices)`` returns the loss of a minibatch (None if it has nothing to learn);
    ``evaluate()`` returns dev metrics holding ``accuracy``; ``describe(metrics)`` a log line.
    """
    freeze_lower_layers(model, cfg.freeze_layers)
    t0 = time.time()

    def dev(epoch: int, step: int) -> dict:
        with autocast(model, cfg.bf16):
            m = evaluate()
        m.update(epoch=epoch + 1, step=step, seconds=round(time.time() - t0, 1))
        if logger:
            logger.log({f"dev/{k}": v for k, v in m.items()}, step)
        tqdm.write(f"  step {step}: {describe(m)}")
        return m

    result = fit(model, batch_loss, lambda rng: minibatches(n_train, cfg.batch_size, rng), cfg,
                 lambda total: encoder_optimizer(model, model.base_model, cfg, total), evaluate=dev,
                 evals_per_epoch=cfg.evals_per_epoch, patience=cfg.patience, logger=logger)
    return {"history": result.history, "best_step": result.best_step, "best_dev_accuracy": result.best_value,
            "seconds": result.seconds}


def train_segment_model(model, train: Sequence[LabelledWindow], dev: Sequence[LabelledWindow], pad_id: int,
                        cfg: OptimConfig, device, logger=None) -> dict:
    """Fine-tune a token classifier at separators; returns the training history."""
    weight = torch.tensor([1.0, cfg.error_class_weight], device=device)

    def batch_loss(indices):
        batch = [train[j] for j in indices]
        ids, mask = pad_batch([lw.window.input_ids for lw in batch], pad_id, device)
        labels = torch.full_like(ids, IGNORE)  # [N, L]: only separators carry labels
        for r, lw in enumerate(batch):
            labels[r, lw.window.sep_positions] = torch.tensor(lw.labels, device=device)
        if not bool((labels != IGNORE).any()):
            return None
        logits = model(input_ids=ids, attention_mask=mask).logits  # [N, L, 2]
        return F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), weight=weight, ignore_index=IGNORE)

    def evaluate():
        preds, golds, _ = predict_segments(model, dev, pad_id, device)
        return segment_metrics(preds, golds)

    def describe(m):
        return (f"dev accuracy {m['accuracy']:.3f} (majority {m['majority_baseline']:.3f}), "
                f"error F1 {m['error_f1']:.3f}")

    return _fit(model, len(train), batch_loss, evaluate, describe, cfg, logger)


def train_ranking_model(model, train: Sequence[Sequence[Window]], train_ex: Sequence[RankingExample],
                        dev: Sequence[Sequence[Window]], dev_ex: Sequence[RankingExample], pad_id: int,
                        cfg: OptimConfig, device, logger=None) -> dict:
    """Fine-tune a scalar head with the pairwise (Bradley–Terry) loss, one question per
    batch element; returns the training history."""
    if not any(ex.pairs for ex in dev_ex):
        # Without a comparison on dev there is nothing to select the best checkpoint by.
        raise ValueError(f"the preference model's dev split ({len(dev_ex)} questions) holds no comparison "
                         "pairs; give it more dev questions (dev_questions) or ones with rankings")

    def batch_loss(indices):
        rewards = score_windows(model, [w for j in indices for w in train[j]], pad_id, device).float()  # [N]
        losses, offset = [], 0
        for j in indices:
            ex = train_ex[j]
            pairs = torch.tensor(ex.pairs, device=device)  # [P, 2]: (better, worse)
            r = rewards[offset : offset + len(train[j])]
            gap = r[pairs[:, 0]] - r[pairs[:, 1]]  # [P]
            if ex.margins:
                gap = gap - torch.tensor(ex.margins, device=device)
            # InstructGPT: all comparisons of a prompt form one batch element (weighted mean
            # when the pairs carry weights, fgrlhf.data.rm_pairs).
            if ex.weights:
                weights = torch.tensor(ex.weights, device=device)  # [P]
                # Mean over the pairs, not over the weights: a question whose pairs are all
                # down-weighted must weigh less (length_balanced_weights balances across questions).
                losses.append(-(weights * F.logsigmoid(gap)).mean())
            else:
                losses.append(-F.logsigmoid(gap).mean())
            offset += len(train[j])
        return torch.stack(losses).mean()

    def evaluate():
        m = pairwise_metrics(predict_rankings(model, dev, pad_id, device), dev_ex)
        return {"accuracy": m["pairwise_accuracy"], **m}

    def describe(m):
        return f"dev pairwise accuracy {m['pairwise_accuracy']:.3f} (longer-wins {m['length_baseline']:.3f})"

    return _fit(model, len(train), batch_loss, evaluate, describe, cfg, logger)


def save_checkpoint(model, tokenizer, meta: RMMetadata, directory, split=None) -> None:
    """Hugging Face format (safetensors) + tokenizer + fgrlhf_rm.json (+ the question
    ``split`` as split.json), written atomically: an interrupted save never leaves a half
    checkpoint."""

    def extra(tmp) -> None:
        meta.save(tmp)
        if split is not None:
            split.save(tmp / "split.json")

    save_model_dir(directory, model, tokenizer, extra=extra)
