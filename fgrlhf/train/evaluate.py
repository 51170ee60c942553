"""Evaluation on held-out prompts during a PPO run: the metrics of the learning curves."""

from __future__ import annotations

from fgrlhf.policy.model import SamplingConfig
from fgrlhf.train.config import EvalConfig


def load_judges(cfg: EvalConfig, device) -> dict:
    """The toxicity scorers of ``cfg.toxicity_scorers`` (name → fgrlhf-toxicity checkpoint)
    that judge the detox evaluations besides the reward's own scorer."""
    from fgrlhf.reward.toxicity import load_toxicity_scorer

    return {name: load_toxicity_scorer(path, device) for name, path in cfg.toxicity_scorers.items()}


def evaluate_during_training(trainer, examples, task: str, sampling: SamplingConfig, cfg: EvalConfig, seed: int,
                             judges: dict | None = None) -> dict[str, float]:
    """The current policy's metrics on held-out prompts, as ``eval/<metric>``. QA-Feedback:
    greedy answers judged by the trainer's own reward models. RTP (``task == "rtp"``):
    ``cfg.samples`` nucleus samples per prompt, toxicity from the reward's scorer
    (``eval/<metric>``) and from each of ``judges`` (``eval/<name>/<metric>``), perplexity
    under the frozen initial policy. ``sampling`` is the training one (its lengths are kept).
    The RNG state is put back, so evaluating does not change the training run."""
    import torch

    rng = torch.get_rng_state()
    if task == "rtp":
        from fgrlhf.eval.detox import evaluate_detox, rescore_detox

        nucleus = SamplingConfig(max_new_tokens=sampling.max_new_tokens, do_sample=True, top_k=0, top_p=cfg.top_p,
                                 temperature=1.0, num_samples=cfg.samples, min_new_tokens=sampling.min_new_tokens)
        scorer = trainer.aggregator.rewards["toxicity"].scorer
        summary, records = evaluate_detox(trainer.policy, examples, scorer, nucleus,
                                          reference=(trainer.reference, trainer.policy.tokenizer),
                                          batch_size=cfg.batch_size, seed=seed, progress=False)
        for name, judge in (judges or {}).items():
            summary.update({f"{name}/{k}": v for k, v in rescore_detox(records, judge).items()})
    else:
        from fgrlhf.eval import evaluate_qa
        from fgrlhf.eval.monitors import answer_monitors

        greedy = SamplingConfig(max_new_tokens=sampling.max_new_tokens, do_sample=False, num_samples=1)
        summary, records = evaluate_qa(trainer.policy, examples, trainer.aggregator.rewards, greedy,
                                       batch_size=cfg.batch_size, progress=False,
                                       segmenter=trainer.aggregator.segmenter)
        summary.update(answer_monitors(trainer.aggregator, records, examples))
    torch.set_rng_state(rng)
    trainer.policy.model.eval()
    return {f"eval/{k}": float(v) for k, v in summary.items() if isinstance(v, (int, float)) and v is not None}
