"""The ``fgrlhf-rm`` recipe: train or evaluate one QA-Feedback reward model.

Training splits the feedback file's questions into train/dev/test with a fixed seed (saved
as ``split.json`` in the checkpoint), early-stops on dev, saves the best state in Hugging Face
format with its tokenizer and ``fgrlhf_rm.json``, and returns the held-out test metrics.
Evaluation returns the same metrics for any checkpoint and feedback file.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from fgrlhf.errors import ConfigError
from fgrlhf.paths import PROJECT_ROOT, run_dir
from fgrlhf.policy.lora import lora_enabled, merge_trunk_adapters
from fgrlhf.reward.categories import RM_CATEGORIES


def build_examples(category: str, data, segmenter, spec):
    """The training examples of ``category`` from QA-Feedback records; ``spec`` gives the
    span and coverage thresholds (``min_error_words``, ``coverage_threshold``)."""
    from fgrlhf.data import rm_examples as rx

    if category == "relevance":
        return rx.relevance_examples(data, segmenter, spec.min_error_words)
    if category == "factuality":
        return rx.factuality_examples(data, segmenter, spec.min_error_words)
    if category == "completeness":
        return rx.completeness_examples(data, segmenter, spec.coverage_threshold)
    if category == "preference":
        return rx.preference_examples(data)
    raise ValueError(f"unknown reward category {category!r}; expected one of {', '.join(RM_CATEGORIES)}")


def select(records, idx: list[int]):
    """The records whose question is one of ``idx``."""
    keep = set(idx)
    return [r for r in records if r.qid in keep]


def run(cfg) -> dict[str, Any]:
    """Train (``cfg.mode=train``) or evaluate (``eval``) the reward model ``cfg.rm.category``;
    ``cfg``: the ``fgrlhf-rm`` schema (``fgrlhf.cli.rm.RMAppConfig``). Returns the summary."""
    import torch

    from fgrlhf.data import load_feedback
    from fgrlhf.device import default_device
    from fgrlhf.segment import MultiGranularitySegmenter, make_sentence_segmenter
    from fgrlhf.train.config import set_up_runtime

    spec = cfg.rm
    checkpoint = Path(cfg.checkpoint or PROJECT_ROOT / "runs" / "rm" / spec.category)
    with claim_outputs(cfg, checkpoint):
        set_up_runtime(cfg.threads)  # quiet transformers: the new-head load report is expected here
        device = torch.device(cfg.device) if cfg.device else default_device()
        data = load_feedback(cfg.feedback_file)
        questions = [ex.question for ex in data]
        segmenter = MultiGranularitySegmenter(make_sentence_segmenter(cfg.sentence_splitter))
        examples = build_examples(spec.category, data, segmenter, spec)
        if cfg.mode == "eval":
            return evaluate(cfg, checkpoint, examples, questions, device)
        if cfg.mode == "calibrate":
            return calibrate(cfg, checkpoint, examples, questions, device)
        extra = extra_examples(spec, data, segmenter)
        return train(cfg, checkpoint, examples, data, device, extra, segmenter)


def extra_examples(spec, data, segmenter):
    """R1/R2's training-only examples (``spec.extra_answers``); none for other models."""
    from fgrlhf.data.rm_examples import no_error_examples

    if not spec.extra_answers or spec.category not in ("relevance", "factuality"):
        return []
    return no_error_examples(data, segmenter, spec.category, list(spec.extra_answers), spec.gold_grounding)


def claim_outputs(cfg, checkpoint: Path):
    """What can be checked before any work: the category and mode exist; in eval and
    calibrate modes, the checkpoint is a whole reward model (and, to calibrate, a writable
    segment model); in train mode, the backbone exists and the
    checkpoint's folder can be written. Returns the run folder's lock to hold while training
    (nothing to hold in the other modes)."""
    import contextlib

    from fgrlhf.reward.learned import RMMetadata
    from fgrlhf.runlock import RunLock, check_writable
    from fgrlhf.toolkit.load import model_source

    if cfg.rm.category not in RM_CATEGORIES:
        raise ConfigError(f"rm.category={cfg.rm.category!r}: one of {', '.join(RM_CATEGORIES)}")
    if cfg.mode not in ("train", "eval", "calibrate"):
        raise ConfigError(f"mode={cfg.mode!r}: one of train, eval, calibrate")
    wants_temperature = cfg.mode == "calibrate" or (cfg.mode == "train" and cfg.rm.calibrate)
    if wants_temperature and RM_CATEGORIES[cfg.rm.category][0] != "segment":
        asked = "mode=calibrate" if cfg.mode == "calibrate" else "rm.calibrate=true"
        raise ConfigError(f"{asked} fits the temperature of P(error): R1/R2 only, not rm={cfg.rm.category}")
    if cfg.mode in ("eval", "calibrate"):
        RMMetadata.load(checkpoint)
        model_source(checkpoint, "reward-model checkpoint")
        if cfg.mode == "calibrate":
            check_writable(checkpoint, "checkpoint")
        return contextlib.nullcontext()
    model_source(backbone_source(cfg.backbone), "backbone")
    check_writable(checkpoint.parent, "checkpoint's folder")
    return RunLock(run_dir(), "fgrlhf-rm")


def train(cfg, checkpoint: Path, examples, data, device, extra=(), segmenter=None) -> dict[str, Any]:
    """Train on the split's train questions (``examples`` and the training-only ``extra``),
    keep the best dev state, save it to ``checkpoint`` and return the test metrics (dev and
    test hold only ``examples``)."""
    import torch
    from transformers import AutoTokenizer

    from fgrlhf.data.rm_pairs import is_plain, training_pairs
    from fgrlhf.data.split import QuestionSplit, questions_fingerprint, split_by_question
    from fgrlhf.logging import MetricsLogger
    from fgrlhf.reward.encoding import SeparatorEncoder
    from fgrlhf.reward.learned import RMMetadata
    from fgrlhf.toolkit.load import loading, model_source
    from fgrlhf.toolkit.save import plain_config, portable_path, save_or_rescue
    from fgrlhf.train import rm as T

    spec = cfg.rm
    kind, granularity = RM_CATEGORIES[spec.category]
    questions = [ex.question for ex in data]
    if cfg.split_file:
        split = QuestionSplit.load(cfg.split_file)
        if split.fingerprint != questions_fingerprint(questions):
            raise ConfigError(f"split_file={cfg.split_file} was drawn for another feedback file ({split.source}), "
                              f"not {cfg.feedback_file}")
    else:
        split = split_by_question(questions, cfg.split.dev_questions, cfg.split.test_questions, cfg.split.seed,
                                  source=portable_path(cfg.feedback_file))
    train_ex, dev_ex, test_ex = (select(examples, getattr(split, part)) for part in ("train", "dev", "test"))
    if kind == "sequence" and not is_plain(spec.pairs):
        # Extra answers, weights and margins for training only: dev and test keep the plain
        # pairs among the 4 predictions, the figures every model is compared on.
        if segmenter is None:
            from fgrlhf.segment import MultiGranularitySegmenter, make_sentence_segmenter

            segmenter = MultiGranularitySegmenter(make_sentence_segmenter(cfg.sentence_splitter))
        train_ex = training_pairs(train_ex, data, spec.category, spec.pairs, segmenter,
                                  spec.coverage_threshold)
    train_ex += select(list(extra), split.train)

    backbone = model_source(backbone_source(cfg.backbone), "backbone")
    with loading(backbone, "backbone"):
        tokenizer = AutoTokenizer.from_pretrained(backbone)
    encoder = SeparatorEncoder(tokenizer, spec.max_length, spec.max_question_tokens)
    pad_id = tokenizer.pad_token_id or 0
    logger = MetricsLogger(run_dir(), config=OmegaConf.to_container(OmegaConf.structured(cfg)),
                           project=cfg.wandb.project, mode=cfg.wandb.mode, name=f"rm-{spec.category}")
    print(f"[fgrlhf-rm] {spec.category}: {len(train_ex)} train / {len(dev_ex)} dev / {len(test_ex)} test "
          f"examples from {len(data)} questions; backbone {cfg.backbone}; device {device}; "
          f"{torch.get_num_threads()} CPU threads")
    t0 = time.time()
    torch.manual_seed(spec.optim.seed)  # the new head's initialisation is part of the run
    if kind == "segment":
        from fgrlhf.reward.learned import load_token_classifier

        with loading(backbone, "backbone"):
            model = load_token_classifier(backbone, encoder.sep_id).to(device)
        trainable = with_adapters(model, spec.lora)
        read = T.evidence_reader(spec.use_passages, spec.evidence, spec.evidence_k)
        tr = T.segment_windows(encoder, train_ex, read, spec.evidence_from_labels)
        dv, te = (T.segment_windows(encoder, x, read) for x in (dev_ex, test_ex))
        result = T.train_segment_model(model, tr, dv, pad_id, spec.optim, device, logger)
        train_seconds = time.time() - t0
        temperature = dev_temperature(model, dv, pad_id, device) if spec.calibrate else 1.0
        _, _, probs = T.predict_segments(model, tr, pad_id, device, temperature=temperature)
        preds, golds, test_probs = T.predict_segments(model, te, pad_id, device, temperature=temperature)
        test = {**T.segment_metrics(preds, golds), **calibration_report(test_probs, golds, spec.category),
                "temperature": temperature}
        stats = torch.tensor(probs, dtype=torch.float64)
        label_scheme = {"0": "no-error", "1": "error"}
    else:
        from fgrlhf.reward.learned import MeanPoolScorer

        with loading(backbone, "backbone"):
            model = MeanPoolScorer.from_pretrained(backbone).to(device)
        trainable = with_adapters(model, spec.lora)
        tr, dv, te = (T.ranking_inputs(encoder, x, spec.use_passages) for x in (train_ex, dev_ex, test_ex))
        result = T.train_ranking_model(model, tr, train_ex, dv, dev_ex, pad_id, spec.optim, device, logger)
        train_seconds = time.time() - t0
        stats = torch.tensor([s for row in T.predict_rankings(model, tr, pad_id, device) for s in row],
                             dtype=torch.float64)
        test = T.pairwise_metrics(T.predict_rankings(model, te, pad_id, device), test_ex)
        label_scheme = {"score": "higher is better"}
        temperature = 1.0
    meta = RMMetadata(
        category=spec.category, kind=kind, granularity=granularity, backbone=cfg.backbone,
        label_scheme=label_scheme, use_passages=spec.use_passages, max_length=encoder.max_length,
        evidence=spec.evidence, evidence_k=spec.evidence_k,
        max_question_tokens=spec.max_question_tokens, score_mean=float(stats.mean()),
        score_std=float(stats.std()) if stats.numel() > 1 and float(stats.std()) > 0 else 1.0,
        temperature=temperature,
        extra={"best_dev_accuracy": result["best_dev_accuracy"], "best_step": result["best_step"],
               "train_seconds": round(train_seconds, 1), "test": test, "optim": plain_config(spec.optim),
               "min_error_words": spec.min_error_words, "coverage_threshold": spec.coverage_threshold,
               "pairs": plain_config(spec.pairs), "extra_answers": list(spec.extra_answers),
               "gold_grounding": spec.gold_grounding, "evidence_from_labels": spec.evidence_from_labels},
    )
    if lora_enabled(spec.lora):
        meta.extra["lora"] = {**plain_config(spec.lora), "trainable_parameters": trainable}
        merge_trunk_adapters(model)  # a plain checkpoint: it loads and scores like any other
    logger.log({f"test/{k}": v for k, v in test.items()}, result["best_step"] + 1)
    logger.close()
    # A checkpoint folder that cannot be written keeps the trained model in a rescue folder.
    save_or_rescue(checkpoint, lambda folder: T.save_checkpoint(model, tokenizer, meta, folder, split), "fgrlhf-rm")
    print(f"[fgrlhf-rm] {spec.category} trained in {train_seconds:.1f} s on {device} "
          f"({torch.get_num_threads()} threads); checkpoint {checkpoint}")
    return {"rm": spec.category, "split": "test", "checkpoint": str(checkpoint),
            "train_seconds": round(train_seconds, 1), "best_dev_accuracy": result["best_dev_accuracy"], **test}


def backbone_source(name: str) -> str:
    """A backbone's path: the short names of ``fgrlhf.paths`` (``minilm``), the project's
    local base models (``gemma3_270m``, converted on first use), else the path or hub id."""
    from fgrlhf.paths import resolve_pretrained
    from fgrlhf.policy.checkpoint import LOCAL_INITS, base_checkpoint

    return base_checkpoint(name) if name in LOCAL_INITS else resolve_pretrained(name)


def with_adapters(model, lora) -> int | None:
    """LoRA adapters on ``model``'s backbone when ``lora.r`` > 0: the trainable count (else None)."""
    from fgrlhf.policy.lora import add_trunk_adapters

    if not lora_enabled(lora):
        return None
    n = add_trunk_adapters(model, lora)
    print(f"[fgrlhf-rm] LoRA r={lora.r} on the backbone: {n:,} trainable parameters of "
          f"{sum(p.numel() for p in model.parameters()):,}")
    return n


def dev_temperature(model, dev, pad_id: int, device) -> float:
    """The temperature that calibrates the trained segment model's P(error) on dev (the
    early-stopping questions: the test split stays unseen)."""
    from fgrlhf.eval.calibration import brier_score, fit_temperature, with_temperature
    from fgrlhf.train import rm as T

    _, golds, probs = T.predict_segments(model, dev, pad_id, device)
    temperature = fit_temperature(probs, golds)
    print(f"[fgrlhf-rm] temperature {temperature:.3f} fitted on dev: Brier score "
          f"{brier_score(probs, golds):.4f} -> {brier_score(with_temperature(probs, temperature), golds):.4f}")
    return temperature


def calibration_report(probs, golds, category: str) -> dict[str, Any]:
    """ECE, Brier score and reliability bins of a segment model's P(error) on the evaluated
    segments, and its reliability diagram as ``reliability.png`` in the run folder."""
    from fgrlhf.eval.calibration import calibration_metrics, plot_reliability, reliability_bins

    m = calibration_metrics(probs, golds)
    png = plot_reliability({f"{category}, ECE {m['ece']:.3f}": reliability_bins(probs, golds)},
                           run_dir() / "reliability.png", title=f"{category}: reliability of P(error)")
    return {**m, "reliability_png": str(png)}


def checkpoint_metadata(cfg, path: Path):
    """``path``'s ``RMMetadata``, which must be of the category asked for."""
    from fgrlhf.reward.learned import RMMetadata

    meta = RMMetadata.load(path)
    if meta.category != cfg.rm.category:
        raise ConfigError(f"checkpoint={path} is a {meta.category} model, but rm={cfg.rm.category} was asked for")
    return meta


def checkpoint_part(cfg, checkpoint: Path, examples, questions, part: str, asked: str):
    """The examples of one part (train, dev, test) of the split ``checkpoint`` was trained
    with; ``asked``: the setting that needs it, for the error."""
    from fgrlhf.data.split import QuestionSplit, questions_fingerprint

    split_path = checkpoint / "split.json"
    split = QuestionSplit.load(split_path) if split_path.exists() else None
    if split is None or split.fingerprint != questions_fingerprint(questions):
        raise ConfigError(f"{asked} needs the split the checkpoint was trained with, and "
                          f"{cfg.feedback_file} is not the file it was drawn from"
                          + ("; use eval_split=all" if asked.startswith("eval_split") else ""))
    return select(examples, getattr(split, part))


def load_checkpoint(path: Path, meta, is_segment: bool, device):
    """A saved reward model on ``device``, its input encoder and padding id."""
    from transformers import AutoTokenizer

    from fgrlhf.reward.encoding import SeparatorEncoder
    from fgrlhf.reward.learned import MeanPoolScorer, load_token_classifier
    from fgrlhf.toolkit.load import loading

    with loading(path, "reward-model checkpoint"):
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = (load_token_classifier if is_segment else MeanPoolScorer.from_pretrained)(path)
    encoder = SeparatorEncoder(tokenizer, meta.max_length, meta.max_question_tokens)
    return model.to(device), encoder, tokenizer.pad_token_id or 0


def calibrate(cfg, checkpoint: Path, examples, questions, device) -> dict[str, Any]:
    """``rm.calibrate`` after training: fits a trained R1/R2 model's temperature on the dev
    split it was trained with and writes it into its ``fgrlhf_rm.json`` (the weights are not
    touched). Fitted on the uncalibrated P(error), so calibrating twice gives the same
    temperature."""
    from fgrlhf.train import rm as T

    meta = checkpoint_metadata(cfg, checkpoint)
    dev = checkpoint_part(cfg, checkpoint, examples, questions, "dev", "mode=calibrate (on its dev split)")
    model, encoder, pad_id = load_checkpoint(checkpoint, meta, True, device)
    windows = T.segment_windows(encoder, dev, T.evidence_reader(meta.use_passages, meta.evidence, meta.evidence_k))
    previous, meta.temperature = meta.temperature, dev_temperature(model, windows, pad_id, device)
    meta.save(checkpoint)
    return {"rm": cfg.rm.category, "checkpoint": str(checkpoint), "fitted_on": "dev",
            "previous_temperature": previous, "temperature": meta.temperature}


def evaluate(cfg, checkpoint: Path, examples, questions, device) -> dict[str, Any]:
    """The metrics of the model saved in ``checkpoint`` on ``cfg.eval_split`` of the
    examples (a part of the split it was trained with, or ``all``). With ``cfg.ensemble``,
    of the mean of its and those checkpoints' P(error) (segment models) or standardised
    scores (sequence models), as ``fgrlhf.reward.ensemble`` scores."""
    from fgrlhf.reward.ensemble import mean_rows
    from fgrlhf.train import rm as T

    paths = [checkpoint, *(Path(p) for p in cfg.ensemble)]
    metas = [checkpoint_metadata(cfg, p) for p in paths]
    part = cfg.eval_split
    if part != "all":
        examples = checkpoint_part(cfg, checkpoint, examples, questions, part, f"eval_split={part}")
    is_segment = RM_CATEGORIES[cfg.rm.category][0] == "segment"
    outputs, golds = [], []
    for path, meta in zip(paths, metas):
        model, encoder, pad_id = load_checkpoint(path, meta, is_segment, device)
        if is_segment:
            windows = T.segment_windows(encoder, examples, T.evidence_reader(meta.use_passages, meta.evidence,
                                                                             meta.evidence_k))
            _, golds, probs = T.predict_segments(model, windows, pad_id, device, temperature=meta.temperature)
            outputs.append([probs])  # [1][segments]: one row, for mean_rows
        else:
            norm = meta.score_normalizer()
            scores = T.predict_rankings(model, T.ranking_inputs(encoder, examples, meta.use_passages), pad_id, device)
            # A lone model keeps its raw scores; members are standardised before averaging.
            outputs.append(scores if len(paths) == 1 else [[norm.standardize(x) for x in row] for row in scores])
    if is_segment:
        probs = mean_rows(outputs)[0]
        metrics = {**T.segment_metrics([int(p > 0.5) for p in probs], golds),
                   **calibration_report(probs, golds, cfg.rm.category)}
    else:
        metrics = T.pairwise_metrics(mean_rows(outputs), examples)
    members = {"ensemble": [str(p) for p in paths]} if len(paths) > 1 else {}
    return {"rm": cfg.rm.category, "split": part, "file": str(cfg.feedback_file), "checkpoint": str(checkpoint),
            **members, **metrics}
