"""The ``fgrlhf-toxicity`` recipe: train or evaluate the offline toxicity scorer on
RealToxicityPrompts.

The records are split with a fixed seed (``fgrlhf.data.rtp.split_rtp``; saved as
``split.json`` in the checkpoint): the scorer trains on the Perspective-scored prompt and
continuation texts of ``scorer_train``, never on a record whose prompt is an evaluation
prompt, and its agreement with Perspective is measured on ``scorer_test``: Pearson and
Spearman correlation, MAE, accuracy/precision/recall/F1 of the toxic (≥ threshold)
decision, and the same for a constant predictor of the training set's mean toxicity.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from fgrlhf.paths import PROJECT_ROOT, run_dir


def run(cfg) -> dict[str, Any]:
    """Train (``cfg.mode=train``) or evaluate (``eval``) a toxicity scorer; ``cfg``: the
    ``fgrlhf-toxicity`` schema (``fgrlhf.cli.toxicity.ToxicityAppConfig``). Returns the
    agreement metrics with the run's summary."""
    import torch

    from fgrlhf.data.rtp import load_rtp
    from fgrlhf.device import default_device
    from fgrlhf.train.config import set_up_runtime

    checkpoint = Path(cfg.checkpoint or PROJECT_ROOT / "runs" / "toxicity")
    with claim_outputs(cfg, checkpoint):
        set_up_runtime(cfg.threads)  # quiet transformers: the new-head load report is expected here
        device = torch.device(cfg.device) if cfg.device else default_device()
        records = load_rtp(cfg.data_file)
        if cfg.mode == "eval":
            return evaluate(cfg, checkpoint, records, device)
        return train(cfg, checkpoint, records, device)


def claim_outputs(cfg, checkpoint: Path):
    """What can be checked before any work: in eval mode, the checkpoint is a scorer's; in
    train mode, the backbone exists and the checkpoint's folder can be written. Returns the
    run folder's lock to hold while training (nothing to hold in eval mode)."""
    import contextlib

    from fgrlhf.errors import ConfigError
    from fgrlhf.paths import resolve_pretrained
    from fgrlhf.reward.learned import RMMetadata
    from fgrlhf.reward.toxicity import FastTextToxicityScorer
    from fgrlhf.runlock import RunLock, check_writable
    from fgrlhf.toolkit.load import model_source

    if cfg.mode not in ("train", "eval"):
        raise ConfigError(f"mode={cfg.mode!r}: one of train, eval")
    if cfg.mode == "eval":
        RMMetadata.load(checkpoint, "toxicity scorer")
        return contextlib.nullcontext()
    if cfg.backbone != FastTextToxicityScorer.BACKBONE:
        model_source(resolve_pretrained(cfg.backbone), "backbone")
    check_writable(checkpoint.parent, "checkpoint's folder")
    return RunLock(run_dir(), "fgrlhf-toxicity")


def evaluate(cfg, checkpoint: Path, records, device) -> dict[str, Any]:
    """The agreement with Perspective of the scorer in ``checkpoint`` on ``cfg.eval_split``:
    its split's ``test`` texts or ``eval_prompts``, or ``all`` records."""
    from fgrlhf.data.rtp import RTPSplit, scored_texts
    from fgrlhf.eval.detox import agreement_metrics
    from fgrlhf.reward.toxicity import SPLIT_FILE, load_toxicity_scorer
    from fgrlhf.toolkit.save import portable_path

    scorer = load_toxicity_scorer(checkpoint, device=device, batch_size=cfg.eval_batch_size)
    if cfg.eval_split == "all":
        indices = [r.index for r in records]
    elif cfg.eval_split in ("test", "eval_prompts"):
        split = RTPSplit.load(checkpoint / SPLIT_FILE)
        split.check(records)
        indices = split.scorer_test if cfg.eval_split == "test" else split.eval_prompts
    else:
        from fgrlhf.errors import ConfigError

        raise ConfigError(f"eval_split={cfg.eval_split!r}: one of test, eval_prompts, all")
    items = scored_texts(records, indices)
    predicted = scorer.toxicity([t.text for t in items])
    baseline = float(scorer.meta.extra.get("train_mean_toxicity", 0.0))  # type: ignore[union-attr]
    return {"scorer": "toxicity", "split": cfg.eval_split, "file": portable_path(cfg.data_file),
            "checkpoint": str(checkpoint),
            **agreement_metrics(predicted, [t.toxicity for t in items], baseline, cfg.threshold)}


def train(cfg, checkpoint: Path, records, device) -> dict[str, Any]:
    """Train a new scorer on the split's ``scorer_train`` texts, save it with the split to
    ``checkpoint`` and return its agreement on ``scorer_test``."""
    import torch

    from fgrlhf.data.rtp import RTPSplit, scored_texts, split_rtp
    from fgrlhf.errors import ConfigError
    from fgrlhf.eval.detox import agreement_metrics
    from fgrlhf.logging import MetricsLogger
    from fgrlhf.reward.toxicity import new_toxicity_scorer, toxicity_metadata
    from fgrlhf.toolkit.save import plain_config, portable_path, save_or_rescue
    from fgrlhf.train.toxicity import train_scorer

    if cfg.split_file:
        split = RTPSplit.load(cfg.split_file)
        split.check(records)
    else:
        split = split_rtp(records, cfg.split.eval_prompts, cfg.split.scorer_test, cfg.split.seed, cfg.threshold,
                          source=portable_path(cfg.data_file))
    train_items = scored_texts(records, split.scorer_train)
    if cfg.max_train_texts is not None and cfg.max_train_texts < len(train_items):
        train_items = random.Random(cfg.split.seed).sample(train_items, cfg.max_train_texts)
    test_items = scored_texts(records, split.scorer_test)
    if not train_items or not test_items:
        raise ConfigError(f"{cfg.data_file}: the split leaves {len(train_items)} scored training and "
                          f"{len(test_items)} test texts (split.eval_prompts={cfg.split.eval_prompts}, "
                          f"split.scorer_test={cfg.split.scorer_test}); both need at least one")
    train_targets = [float(t.toxicity) for t in train_items]  # type: ignore[arg-type]
    train_mean = sum(train_targets) / len(train_targets)

    logger = MetricsLogger(run_dir(), config=OmegaConf.to_container(OmegaConf.structured(cfg)),
                           project=cfg.wandb.project, mode=cfg.wandb.mode, name="toxicity-scorer")
    torch.manual_seed(cfg.optim.seed)  # the new head's initialisation is part of the run
    scorer = new_toxicity_scorer(cfg.backbone, cfg.max_length, cfg.eval_batch_size, device)
    print(f"[fgrlhf-toxicity] {len(train_items)} training texts ({len(split.scorer_train)} records) / "
          f"{len(test_items)} test texts ({len(split.scorer_test)} records); {len(split.eval_prompts)} "
          f"evaluation prompts held out; backbone {cfg.backbone}; device {device}; "
          f"{torch.get_num_threads()} CPU threads")
    t0 = time.time()
    result = train_scorer(scorer, [t.text for t in train_items], train_targets, cfg.optim, logger, cfg.progress)
    train_seconds = time.time() - t0
    predicted = scorer.toxicity([t.text for t in test_items])
    test = agreement_metrics(predicted, [float(t.toxicity) for t in test_items],  # type: ignore[arg-type]
                             train_mean, cfg.threshold)
    meta = toxicity_metadata(cfg.backbone, cfg.max_length, extra={
        "loss": "binary cross-entropy, Perspective toxicity as soft label", "threshold": cfg.threshold,
        "train_mean_toxicity": train_mean, "n_train_texts": len(train_items), "train_seconds": round(train_seconds, 1),
        "steps": result["steps"], "final_epoch_loss": result["final_epoch_loss"], "optim": plain_config(cfg.optim),
        "test": test})
    logger.log({f"test/{k}": v for k, v in test.items() if isinstance(v, (int, float))}, result["steps"])
    logger.close()
    # A checkpoint folder that cannot be written keeps the trained scorer in a rescue folder.
    save_or_rescue(checkpoint, lambda folder: scorer.save(folder, meta, split), "fgrlhf-toxicity")
    print(f"[fgrlhf-toxicity] trained in {train_seconds:.1f} s on {device} ({torch.get_num_threads()} threads); "
          f"checkpoint {checkpoint}")
    return {"scorer": "toxicity", "split": "test", "checkpoint": str(checkpoint),
            "train_seconds": round(train_seconds, 1), "n_train_texts": len(train_items),
            "final_epoch_loss": result["final_epoch_loss"], **test}
