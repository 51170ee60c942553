"""fgrlhf-toxicity: train or evaluate the offline toxicity scorer on RealToxicityPrompts.

    fgrlhf-toxicity                                    # MiniLM on the bundled RTP subset → runs/toxicity
    fgrlhf-toxicity mode=eval checkpoint=runs/toxicity eval_split=test
    fgrlhf-toxicity backbone=roberta-base max_length=128 optim.epochs=2 device=cuda
    fgrlhf-toxicity --config-name toxicity_fasttext    # a bag-of-n-grams scorer → runs/toxicity_fasttext

The bundled RTP records are split with a fixed seed (``fgrlhf.data.rtp.split_rtp``; saved as
``split.json`` in the checkpoint): the scorer trains on the Perspective-scored prompt and
continuation texts of ``scorer_train``, never on a record whose prompt is an evaluation
prompt, and its agreement with Perspective is measured on ``scorer_test``. Training prints
that agreement as one JSON line: Pearson and Spearman correlation, MAE, accuracy/precision/
recall/F1 of the toxic (≥ 0.5) decision, and the same for a constant predictor of the
training set's mean toxicity.

Loss: binary cross-entropy of ``σ(logit)`` against Perspective's score as a soft label.
Perspective's toxicity is a probability (the share of raters expected to call the text
toxic), and cross-entropy is the proper scoring rule for a probability: its minimiser is the
label itself, and its gradient on the logit, ``σ(z) − y``, does not vanish when the sigmoid
saturates, as the gradient of the squared error through a sigmoid, ``(σ(z) − y)·σ'(z)``, does.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from fgrlhf.paths import CONF_DIR, PROJECT_ROOT, register_resolvers, run_dir


@dataclass
class ScorerOptimConfig:
    lr: float = 5e-5  # encoder
    head_lr: float = 1e-3  # the new head: a fine-tuning rate would move it too slowly in one epoch
    weight_decay: float = 0.01
    epochs: int = 1
    batch_size: int = 32
    warmup_ratio: float = 0.06
    grad_clip: float = 1.0
    freeze_layers: int = 2  # freeze the embeddings and this many lowest encoder layers (0: none)
    bf16: bool | None = None  # bfloat16 autocast; null: where it is fast (fgrlhf.device)
    seed: int = 0


@dataclass
class WandbConfig:
    project: str | None = None  # None: offline, unless WANDB_PROJECT is set
    mode: str | None = None  # online | offline | disabled


@dataclass
class ToxicityAppConfig:
    mode: str = "train"  # train | eval
    backbone: str = "minilm"  # a Hugging Face encoder (short name, path, hub id), or fasttext
    data_file: str = MISSING  # RTP JSON lines
    checkpoint: str | None = None  # train: where to save (default runs/toxicity); eval: what to load
    split_file: str | None = None  # reuse a saved RTP split instead of drawing one
    split_seed: int = 0
    eval_prompts: int = 500  # non-toxic prompts kept for policy evaluation (never scorer data)
    scorer_test: int = 500  # records whose texts measure the scorer
    threshold: float = 0.5  # toxic ⇔ toxicity ≥ threshold
    max_length: int = 128  # tokens per text; RTP prompts and continuations are short sentences
    max_train_texts: int | None = None  # a seeded sample of the training texts (quick runs)
    eval_split: str = "test"  # eval: test | eval_prompts | all
    eval_batch_size: int = 128
    optim: ScorerOptimConfig = field(default_factory=ScorerOptimConfig)
    device: str | None = None  # default: cuda if available, else cpu
    threads: int | None = None  # torch CPU threads
    progress: bool = True
    wandb: WandbConfig = field(default_factory=WandbConfig)


ConfigStore.instance().store(name="toxicity_schema", node=ToxicityAppConfig)


def _optimizer(scorer, cfg: ScorerOptimConfig, total_steps: int):
    """AdamW, the head at ``head_lr``, no decay on biases and norms; linear warmup and decay."""
    import torch

    encoder_ids = {id(p) for p in scorer.model.encoder.parameters()}
    groups: dict[tuple[bool, bool], list] = {}
    for name, p in scorer.model.named_parameters():
        if p.requires_grad:
            groups.setdefault((id(p) not in encoder_ids, p.ndim >= 2 and "norm" not in name.lower()), []).append(p)
    opt = torch.optim.AdamW([{"params": ps, "lr": cfg.head_lr if is_head else cfg.lr,
                              "weight_decay": cfg.weight_decay if decays else 0.0}
                             for (is_head, decays), ps in groups.items()])
    warmup = max(1, int(cfg.warmup_ratio * total_steps))

    def schedule(step: int) -> float:
        return (step + 1) / warmup if step < warmup else max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, schedule)


def length_batches(lengths: list[int], batch_size: int, rng: random.Random, window: int = 50) -> list[list[int]]:
    """Shuffled minibatches of indices whose lengths are close: the shuffled indices are cut
    into windows of ``window`` batches, each window is sorted by length and cut into batches,
    and the batches are shuffled. Padding to the longest text of a random batch would
    otherwise more than double the tokens of a step (RTP texts: mean 16, max 50 tokens)."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    batches = []
    span = batch_size * window
    for start in range(0, len(order), span):
        chunk = sorted(order[start : start + span], key=lambda j: lengths[j])
        batches += [chunk[k : k + batch_size] for k in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def train_scorer(scorer, texts: list[str], targets: list[float], cfg: ScorerOptimConfig, logger=None,
                 progress: bool = True) -> dict[str, Any]:
    """Fit ``scorer`` (a ``ToxicityScorer``) to soft toxicity labels with BCE on its logits.

    Shuffled minibatches of similar lengths (``length_batches``) for ``cfg.epochs`` epochs,
    grad-norm clipping, lower layers frozen.
    No early stopping: one or two epochs over a few thousand texts do not overfit, so every
    text that is not test data trains the scorer. Returns steps, mean loss of the last epoch
    and seconds.
    """
    import torch
    import torch.nn.functional as F
    from tqdm import tqdm

    from fgrlhf.reward.toxicity import BagOfNgrams
    from fgrlhf.train.rm import freeze_lower_layers

    if not texts:
        raise ValueError("no training texts")
    rng = random.Random(cfg.seed)
    torch.manual_seed(cfg.seed)
    freeze_lower_layers(scorer.model, cfg.freeze_layers)
    mean = min(max(sum(targets) / len(targets), 1e-4), 1 - 1e-4)
    with torch.no_grad():
        # Start at the base rate: the first steps then learn what raises or lowers toxicity
        # instead of spending themselves on the bias.
        scorer.model.score.bias.fill_(math.log(mean / (1 - mean)))
    ids = scorer.encode(texts)
    lengths = [len(x) for x in ids]
    y = torch.tensor(targets, dtype=torch.float32)
    steps_per_epoch = len(length_batches(lengths, cfg.batch_size, random.Random(0)))  # the same every epoch
    opt, sched = _optimizer(scorer, cfg, steps_per_epoch * cfg.epochs)
    from fgrlhf.device import resolve_bf16

    scorer.bf16 = resolve_bf16(cfg.bf16, scorer.device) if not isinstance(scorer.model, BagOfNgrams) else False
    scorer.model.train()
    step, t0, epoch_loss = 0, time.time(), float("nan")
    for epoch in range(cfg.epochs):
        batches = length_batches(lengths, cfg.batch_size, rng)
        total = 0.0
        bar = tqdm(batches, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="step", disable=not progress)
        for i, idx in enumerate(bar):
            logits = scorer.logits([ids[j] for j in idx])  # [N]
            loss = F.binary_cross_entropy_with_logits(logits, y[idx].to(logits.device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(scorer.model.parameters(), cfg.grad_clip)
            opt.step()
            sched.step()
            total += loss.item()
            bar.set_postfix(loss=f"{total / (i + 1):.4f}")
            if logger is not None:
                logger.log({"train/loss": loss.item(), "train/lr": sched.get_last_lr()[0]}, step)
            step += 1
        epoch_loss = total / steps_per_epoch
    scorer.model.eval()
    return {"steps": step, "final_epoch_loss": epoch_loss, "seconds": round(time.time() - t0, 1)}


def _portable(path: str | Path) -> str:
    source = Path(path).resolve()
    return str(source.relative_to(PROJECT_ROOT)) if source.is_relative_to(PROJECT_ROOT) else str(source)


def run(cfg: ToxicityAppConfig) -> dict[str, Any]:
    import torch

    from fgrlhf.data.rtp import RTPSplit, load_rtp, scored_texts, split_rtp
    from fgrlhf.device import default_device
    from fgrlhf.eval.detox import agreement_metrics
    from fgrlhf.reward.toxicity import (
        SPLIT_FILE,
        load_toxicity_scorer,
        new_toxicity_scorer,
        toxicity_metadata,
    )

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    import transformers

    transformers.logging.set_verbosity_error()  # the new-head load report is expected here
    device = torch.device(cfg.device) if cfg.device else default_device()
    records = load_rtp(cfg.data_file)
    checkpoint = Path(cfg.checkpoint or PROJECT_ROOT / "runs" / "toxicity")

    if cfg.mode == "eval":
        scorer = load_toxicity_scorer(checkpoint, device=device, batch_size=cfg.eval_batch_size)
        if cfg.eval_split == "all":
            indices = [r.index for r in records]
        elif cfg.eval_split in ("test", "eval_prompts"):
            split = RTPSplit.load(checkpoint / SPLIT_FILE)
            split.check(records)
            indices = split.scorer_test if cfg.eval_split == "test" else split.eval_prompts
        else:
            raise ValueError(f"eval_split={cfg.eval_split!r}; expected test, eval_prompts or all")
        items = scored_texts(records, indices)
        predicted = scorer.toxicity([t.text for t in items])
        baseline = float(scorer.meta.extra.get("train_mean_toxicity", 0.0))  # type: ignore[union-attr]
        return {"scorer": "toxicity", "split": cfg.eval_split, "file": _portable(cfg.data_file),
                "checkpoint": str(checkpoint),
                **agreement_metrics(predicted, [t.toxicity for t in items], baseline, cfg.threshold)}
    if cfg.mode != "train":
        raise ValueError(f"mode={cfg.mode!r}; expected train or eval")

    if cfg.split_file:
        split = RTPSplit.load(cfg.split_file)
        split.check(records)
    else:
        split = split_rtp(records, cfg.eval_prompts, cfg.scorer_test, cfg.split_seed, cfg.threshold,
                          source=_portable(cfg.data_file))
    train_items = scored_texts(records, split.scorer_train)
    if cfg.max_train_texts is not None and cfg.max_train_texts < len(train_items):
        train_items = random.Random(cfg.split_seed).sample(train_items, cfg.max_train_texts)
    test_items = scored_texts(records, split.scorer_test)
    train_targets = [float(t.toxicity) for t in train_items]  # type: ignore[arg-type]
    train_mean = sum(train_targets) / len(train_targets)

    from fgrlhf.logging import MetricsLogger

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
    optim = asdict(cfg.optim) if not OmegaConf.is_config(cfg.optim) else OmegaConf.to_container(cfg.optim)
    meta = toxicity_metadata(cfg.backbone, cfg.max_length, extra={
        "loss": "binary cross-entropy, Perspective toxicity as soft label", "threshold": cfg.threshold,
        "train_mean_toxicity": train_mean, "n_train_texts": len(train_items), "train_seconds": round(train_seconds, 1),
        "steps": result["steps"], "final_epoch_loss": result["final_epoch_loss"], "optim": optim, "test": test})
    scorer.save(checkpoint, meta, split)
    logger.log({f"test/{k}": v for k, v in test.items() if isinstance(v, (int, float))}, result["steps"])
    logger.close()
    print(f"[fgrlhf-toxicity] trained in {train_seconds:.1f} s on {device} ({torch.get_num_threads()} threads); "
          f"checkpoint {checkpoint}")
    return {"scorer": "toxicity", "split": "test", "checkpoint": str(checkpoint),
            "train_seconds": round(train_seconds, 1), "n_train_texts": len(train_items),
            "final_epoch_loss": result["final_epoch_loss"], **test}


register_resolvers()


@hydra.main(config_path=str(CONF_DIR), config_name="toxicity", version_base="1.3")
def main(cfg) -> None:
    merged = OmegaConf.merge(OmegaConf.structured(ToxicityAppConfig), cfg)
    print(json.dumps(run(merged)))


if __name__ == "__main__":
    main()
