"""``fgrlhf-rm``: train or evaluate a QA-Feedback reward model.

    fgrlhf-rm rm=relevance                       # train R1 on the bundled data, evaluate on test
    fgrlhf-rm rm=factuality backbone=allenai/longformer-base-4096 rm.max_length=4096
    fgrlhf-rm mode=eval rm=relevance checkpoint=runs/rm/relevance feedback_file=dev_feedback.json eval_split=all

Training splits the feedback file's questions into train/dev/test with a fixed seed (saved
as ``split.json`` in the checkpoint), early-stops on dev, saves the best state in Hugging Face
format with its tokenizer and ``fgrlhf_rm.json``, then prints the held-out test metrics as
one JSON line. Evaluation prints the same line for any checkpoint and feedback file.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from fgrlhf.paths import CONF_DIR, PROJECT_ROOT, register_resolvers, run_dir
from fgrlhf.train.rm import OptimConfig

CATEGORIES = {
    # category: (kind, granularity)
    "relevance": ("segment", "subsentence"),
    "factuality": ("segment", "sentence"),
    "completeness": ("sequence", "sequence"),
    "preference": ("sequence", "sequence"),
}


@dataclass
class RMSpec:
    category: str = MISSING  # relevance | factuality | completeness | preference
    use_passages: bool = False
    max_length: int = 256
    max_question_tokens: int = 64
    min_error_words: int = 5  # R1/R2: relevance-family spans shorter than this are dropped
    coverage_threshold: float = 0.8  # R3: word containment needed to match a passage sentence
    optim: OptimConfig = field(default_factory=OptimConfig)


@dataclass
class WandbConfig:
    project: str | None = None  # None: offline, unless WANDB_PROJECT is set
    mode: str | None = None  # online | offline | disabled


@dataclass
class RMAppConfig:
    rm: RMSpec = field(default_factory=RMSpec)
    mode: str = "train"  # train | eval
    backbone: str = "minilm"  # short name, local path or hub id of a Hugging Face encoder
    feedback_file: str = MISSING
    checkpoint: str | None = None  # train: where to save (default runs/rm/<category>); eval: what to load
    split_file: str | None = None  # reuse a saved split instead of drawing one
    split_seed: int = 0
    dev_questions: int = 40
    test_questions: int = 60
    eval_split: str = "test"  # eval: test | dev | train | all
    sentence_splitter: str = "sentencizer"
    device: str | None = None  # default: cuda if available, else cpu
    threads: int | None = None  # torch CPU threads
    wandb: WandbConfig = field(default_factory=WandbConfig)


ConfigStore.instance().store(name="rm_schema", node=RMAppConfig)


def _build_examples(category: str, data, segmenter, spec: RMSpec):
    from fgrlhf.data import rm_examples as rx

    if category == "relevance":
        return rx.relevance_examples(data, segmenter, spec.min_error_words)
    if category == "factuality":
        return rx.factuality_examples(data, segmenter, spec.min_error_words)
    if category == "completeness":
        return rx.completeness_examples(data, segmenter, spec.coverage_threshold)
    if category == "preference":
        return rx.preference_examples(data)
    raise ValueError(f"unknown reward category {category!r}; expected one of {', '.join(CATEGORIES)}")


def _select(records, idx: list[int]):
    keep = set(idx)
    return [r for r in records if r.qid in keep]


def run(cfg: RMAppConfig) -> dict[str, Any]:
    import torch
    from transformers import AutoTokenizer

    from fgrlhf.data import load_feedback
    from fgrlhf.data.split import QuestionSplit, questions_fingerprint, split_by_question
    from fgrlhf.device import default_device
    from fgrlhf.reward.encoding import SeparatorEncoder
    from fgrlhf.reward.learned import RMMetadata
    from fgrlhf.segment import MultiGranularitySegmenter, make_sentence_segmenter
    from fgrlhf.train import rm as T

    spec = cfg.rm
    if spec.category not in CATEGORIES:
        raise ValueError(f"rm.category={spec.category!r}; expected one of {', '.join(CATEGORIES)}")
    kind, granularity = CATEGORIES[spec.category]
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    import transformers

    transformers.logging.set_verbosity_error()  # the new-head load report is expected here
    device = torch.device(cfg.device) if cfg.device else default_device()
    data = load_feedback(cfg.feedback_file)
    questions = [ex.question for ex in data]
    segmenter = MultiGranularitySegmenter(make_sentence_segmenter(cfg.sentence_splitter))
    examples = _build_examples(spec.category, data, segmenter, spec)
    checkpoint = Path(cfg.checkpoint or PROJECT_ROOT / "runs" / "rm" / spec.category)

    if cfg.mode == "eval":
        return _evaluate(cfg, checkpoint, examples, questions, device, kind)
    if cfg.mode != "train":
        raise ValueError(f"mode={cfg.mode!r}; expected train or eval")

    if cfg.split_file:
        split = QuestionSplit.load(cfg.split_file)
        if split.fingerprint != questions_fingerprint(questions):
            raise ValueError(f"split {cfg.split_file} was drawn for another feedback file ({split.source})")
    else:
        source = Path(cfg.feedback_file).resolve()
        if source.is_relative_to(PROJECT_ROOT):  # bundled data: record it portably
            source = source.relative_to(PROJECT_ROOT)
        split = split_by_question(questions, cfg.dev_questions, cfg.test_questions, cfg.split_seed,
                                  source=str(source))
    train_ex, dev_ex, test_ex = (_select(examples, getattr(split, part)) for part in ("train", "dev", "test"))

    from fgrlhf.paths import resolve_pretrained

    backbone = resolve_pretrained(cfg.backbone)
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    encoder = SeparatorEncoder(tokenizer, spec.max_length, spec.max_question_tokens)
    pad_id = tokenizer.pad_token_id or 0
    from fgrlhf.logging import MetricsLogger

    logger = MetricsLogger(run_dir(), config=OmegaConf.to_container(OmegaConf.structured(cfg)),
                           project=cfg.wandb.project, mode=cfg.wandb.mode, name=f"rm-{spec.category}")
    print(f"[fgrlhf-rm] {spec.category}: {len(train_ex)} train / {len(dev_ex)} dev / {len(test_ex)} test "
          f"examples from {len(data)} questions; backbone {cfg.backbone}; device {device}; "
          f"{torch.get_num_threads()} CPU threads")
    t0 = time.time()
    torch.manual_seed(spec.optim.seed)  # the new head's initialisation is part of the run
    if kind == "segment":
        from transformers import AutoModelForTokenClassification

        model = AutoModelForTokenClassification.from_pretrained(
            backbone, num_labels=2, id2label={0: "no-error", 1: "error"}, label2id={"no-error": 0, "error": 1}
        ).to(device)
        tr, dv, te = (T.segment_windows(encoder, x, spec.use_passages) for x in (train_ex, dev_ex, test_ex))
        result = T.train_segment_model(model, tr, dv, pad_id, spec.optim, device, logger)
        train_seconds = time.time() - t0
        _, _, probs = T.predict_segments(model, tr, pad_id, device)
        preds, golds, _ = T.predict_segments(model, te, pad_id, device)
        test = T.segment_metrics(preds, golds)
        stats = torch.tensor(probs, dtype=torch.float64)
        label_scheme = {"0": "no-error", "1": "error"}
    else:
        from fgrlhf.reward.learned import MeanPoolScorer

        model = MeanPoolScorer.from_pretrained(backbone).to(device)
        tr, dv, te = (T.ranking_inputs(encoder, x, spec.use_passages) for x in (train_ex, dev_ex, test_ex))
        result = T.train_ranking_model(model, tr, train_ex, dv, dev_ex, pad_id, spec.optim, device, logger)
        train_seconds = time.time() - t0
        stats = torch.tensor([s for row in T.predict_rankings(model, tr, pad_id, device) for s in row],
                             dtype=torch.float64)
        test = T.pairwise_metrics(T.predict_rankings(model, te, pad_id, device), test_ex)
        label_scheme = {"score": "higher is better"}
    meta = RMMetadata(
        category=spec.category, kind=kind, granularity=granularity, backbone=cfg.backbone,
        label_scheme=label_scheme, use_passages=spec.use_passages, max_length=encoder.max_length,
        max_question_tokens=spec.max_question_tokens, score_mean=float(stats.mean()),
        score_std=float(stats.std()) if stats.numel() > 1 and float(stats.std()) > 0 else 1.0,
        extra={"best_dev_accuracy": result["best_dev_accuracy"], "best_step": result["best_step"],
               "train_seconds": round(train_seconds, 1), "test": test,
               "optim": asdict(spec.optim) if not OmegaConf.is_config(spec.optim)
               else OmegaConf.to_container(spec.optim),
               "min_error_words": spec.min_error_words, "coverage_threshold": spec.coverage_threshold},
    )
    T.save_checkpoint(model, tokenizer, meta, checkpoint)
    split.save(checkpoint / "split.json")
    logger.log({f"test/{k}": v for k, v in test.items()}, result["best_step"] + 1)
    logger.close()
    print(f"[fgrlhf-rm] {spec.category} trained in {train_seconds:.1f} s on {device} "
          f"({torch.get_num_threads()} threads); checkpoint {checkpoint}")
    summary = {"rm": spec.category, "split": "test", "checkpoint": str(checkpoint),
               "train_seconds": round(train_seconds, 1), "best_dev_accuracy": result["best_dev_accuracy"], **test}
    return summary


def _evaluate(cfg: RMAppConfig, checkpoint: Path, examples, questions, device, kind: str) -> dict[str, Any]:
    import torch  # noqa: F401

    from fgrlhf.data.split import QuestionSplit, questions_fingerprint
    from fgrlhf.reward.learned import MeanPoolScorer, RMMetadata
    from fgrlhf.train import rm as T

    meta = RMMetadata.load(checkpoint)
    if meta.category != cfg.rm.category:
        raise ValueError(f"{checkpoint} is a {meta.category} model, but rm={cfg.rm.category} was asked for")
    part = cfg.eval_split
    split_path = checkpoint / "split.json"
    if part != "all":
        split = QuestionSplit.load(split_path) if split_path.exists() else None
        if split is None or split.fingerprint != questions_fingerprint(questions):
            raise ValueError(f"eval_split={part} needs the split the checkpoint was trained with, and "
                             f"{cfg.feedback_file} is not the file it was drawn from; use eval_split=all")
        examples = _select(examples, getattr(split, part))
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from fgrlhf.reward.encoding import SeparatorEncoder

    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    encoder = SeparatorEncoder(tokenizer, meta.max_length, meta.max_question_tokens)
    pad_id = tokenizer.pad_token_id or 0
    if kind == "segment":
        model = AutoModelForTokenClassification.from_pretrained(checkpoint).to(device)
        windows = T.segment_windows(encoder, examples, meta.use_passages)
        preds, golds, _ = T.predict_segments(model, windows, pad_id, device)
        metrics = T.segment_metrics(preds, golds)
    else:
        model = MeanPoolScorer.from_pretrained(checkpoint).to(device)
        inputs = T.ranking_inputs(encoder, examples, meta.use_passages)
        metrics = T.pairwise_metrics(T.predict_rankings(model, inputs, pad_id, device), examples)
    return {"rm": meta.category, "split": part, "file": str(cfg.feedback_file), "checkpoint": str(checkpoint),
            **metrics}


register_resolvers()


@hydra.main(config_path=str(CONF_DIR), config_name="rm", version_base="1.3")
def main(cfg) -> None:
    merged = OmegaConf.merge(OmegaConf.structured(RMAppConfig), cfg)
    summary = run(merged)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
