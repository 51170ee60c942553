"""``fgrlhf-train``: fine-grained PPO from the command line (a Hydra app).

    fgrlhf-train experiment=tiny                                   # model-free rewards, tiny GPT-2
    fgrlhf-train reward=fine_grained policy.init=runs/sft/minilm_seq2seq
    fgrlhf-train -m experiment=tiny reward.weights.relevance=0.1,0.2,0.3
    accelerate launch --multi_gpu --num_processes 2 -m fgrlhf.cli.train experiment=tiny hydra.run.dir=outputs/dp

Config groups (``conf/``): ``task``, ``policy``, ``reward``, ``ppo``, ``experiment``. Every
run writes ``metrics.jsonl`` (one line per iteration), ``metrics.json`` (a summary) and the
final policy to its own output folder; wandb logs offline unless a project is set. Under
``accelerate launch`` every process trains on its share of each iteration's prompts and the
main process alone writes; give ``hydra.run.dir`` so that all processes agree on the folder.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from fgrlhf.paths import CONF_DIR, register_resolvers, run_dir
from fgrlhf.policy.model import SamplingConfig
from fgrlhf.train.ppo import PPOConfig


@dataclass
class TaskConfig:
    name: str = "qa_feedback"  # qa_feedback | rtp
    prompts_file: str = MISSING
    split_seed: int = 0
    dev_questions: int = 40  # qa_feedback: the split of fgrlhf-rm and fgrlhf-sft
    test_questions: int = 60
    eval_prompts: int = 500  # rtp: the split of fgrlhf-toxicity and fgrlhf-sft (task=rtp)
    scorer_test: int = 500
    prompts_per_iteration: int = 8


@dataclass
class PolicyConfig:
    init: str = "minilm_seq2seq"  # a checkpoint path or hub id, or minilm_seq2seq | tiny_gpt2
    kind: str = "auto"  # auto | causal | seq2seq
    max_prompt_tokens: int = 256
    value: str = "separate"  # separate | shared
    value_init: str | None = None  # separate value backbone (default: a copy of the policy)


@dataclass
class RewardConfig:
    name: str = "fine_grained"
    models: dict[str, Any] = field(default_factory=dict)  # category → reward config (_target_ or name)
    weights: dict[str, float] = field(default_factory=dict)
    normalize: dict[str, Any] = field(default_factory=dict)  # category → {kind, mean, std}
    sentence_splitter: str = "sentencizer"


@dataclass
class EvalConfig:
    every: int = 0  # iterations between evaluations on held-out prompts (0: none)
    initial: bool = True  # with every > 0: also evaluate the initial policy (metrics.json eval_initial)
    split: str = "dev"  # qa_feedback: dev | test (the question split of fgrlhf-rm/-sft); rtp: eval
    questions: int = 20  # the first N prompts of the split
    batch_size: int = 8
    # rtp: continuations sampled per prompt (the paper: 25, nucleus 0.9) and toxicity scorers
    # other than the reward's (name → fgrlhf-toxicity checkpoint) that judge them too.
    samples: int = 25
    top_p: float = 0.9
    toxicity_scorers: dict[str, str] = field(default_factory=dict)


@dataclass
class WandbConfig:
    project: str | None = None
    mode: str | None = None


@dataclass
class TrainAppConfig:
    task: TaskConfig = field(default_factory=TaskConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    iterations: int = 100
    seed: int = 0
    device: str | None = None  # null: CUDA when available (one GPU per process), else CPU; or "cpu"
    precision: str | None = None  # no | bf16 | fp16 autocast; null: as `accelerate launch` configured
    threads: int | None = None
    save_policy: bool = True
    checkpoint_every: int = 0  # iterations between resumable checkpoints (0: none)
    ptx_per_iteration: int = 8  # PPO-ptx (ppo.ptx_coef > 0): SFT pairs per iteration
    resume: str | None = None  # a checkpoint folder written by checkpoint_every
    eval: EvalConfig = field(default_factory=EvalConfig)
    wandb: WandbConfig = field(default_factory=WandbConfig)


ConfigStore.instance().store(name="train_schema", node=TrainAppConfig)


def build_aggregator(cfg: RewardConfig):
    from fgrlhf.reward import RewardAggregator, build_reward, make_normalizer
    from fgrlhf.segment import MultiGranularitySegmenter, make_sentence_segmenter

    if not cfg.models:
        raise ValueError(f"reward config {cfg.name!r} names no reward models")
    rewards = {k: build_reward(v, key=k) for k, v in cfg.models.items()}
    normalizers = {k: make_normalizer(**dict(v)) for k, v in cfg.normalize.items()}
    segmenter = MultiGranularitySegmenter(make_sentence_segmenter(cfg.sentence_splitter))
    return RewardAggregator(rewards, dict(cfg.weights), normalizers, segmenter)


def save_checkpoint(directory: Path, policy, state: dict[str, Any]) -> None:
    """The policy (Hugging Face format) and ``trainer.pt`` (optimizer, scheduler, KL
    controller, normalisers, value model, RNG states, data position, metric history),
    replaced atomically: a crash mid-save leaves the previous checkpoint loadable."""
    import torch

    from fgrlhf.toolkit.save import atomic_save_dir

    def write(tmp: Path) -> None:
        policy.model.save_pretrained(tmp / "policy")
        policy.tokenizer.save_pretrained(tmp / "policy")
        torch.save(state, tmp / "trainer.pt")

    atomic_save_dir(directory, write)


def load_checkpoint(directory: Path, model_cls, device):
    """(trainer state, policy model) from a folder written by ``save_checkpoint``."""
    import torch

    if not (directory / "trainer.pt").exists():
        raise FileNotFoundError(f"{directory} is not an fgrlhf-train checkpoint (no trainer.pt)")
    state = torch.load(directory / "trainer.pt", map_location="cpu", weights_only=False)
    return state, model_cls.from_pretrained(directory / "policy").to(device)


def load_task(cfg: TaskConfig) -> dict[str, list]:
    """The task's prompts by part: qa_feedback ``train``/``dev``/``test`` (the question split
    of the reward models and SFT); rtp ``train``/``eval`` (the non-toxic prompts, split as the
    toxicity scorer was: no evaluation prompt's record ever trained it)."""
    if cfg.name == "qa_feedback":
        from fgrlhf.data.tasks import qa_feedback_task, split_task

        return split_task(qa_feedback_task(cfg.prompts_file), cfg.dev_questions, cfg.test_questions,
                          cfg.split_seed)[1]
    if cfg.name == "rtp":
        from fgrlhf.data.rtp import load_rtp, rtp_task, split_rtp

        records = load_rtp(cfg.prompts_file)
        split = split_rtp(records, cfg.eval_prompts, cfg.scorer_test, cfg.split_seed)
        return {"train": rtp_task(records, split.train_prompts), "eval": rtp_task(records, split.eval_prompts)}
    raise ValueError(f"task {cfg.name!r} is not available; expected qa_feedback or rtp")


def evaluate_during_training(trainer, examples, cfg: TrainAppConfig, judges: dict | None = None) -> dict[str, float]:
    """The current policy's metrics on held-out prompts, as ``eval/<metric>``. QA-Feedback:
    greedy answers judged by the trainer's own reward models. RTP: ``eval.samples`` nucleus
    samples per prompt, toxicity from the reward's scorer (``eval/<metric>``) and from each
    of ``judges`` (``eval/<name>/<metric>``), perplexity under the frozen initial policy.
    The RNG state is put back, so evaluating does not change the training run."""
    import torch

    from fgrlhf.policy import SamplingConfig

    rng = torch.get_rng_state()
    if cfg.task.name == "rtp":
        from fgrlhf.eval.detox import evaluate_detox, rescore_detox

        sampling = SamplingConfig(max_new_tokens=cfg.sampling.max_new_tokens, do_sample=True, top_k=0,
                                  top_p=cfg.eval.top_p, temperature=1.0, num_samples=cfg.eval.samples,
                                  min_new_tokens=cfg.sampling.min_new_tokens)
        scorer = trainer.aggregator.rewards["toxicity"].scorer
        summary, records = evaluate_detox(trainer.policy, examples, scorer, sampling,
                                          reference=(trainer.reference, trainer.policy.tokenizer),
                                          batch_size=cfg.eval.batch_size, seed=cfg.seed, progress=False)
        for name, judge in (judges or {}).items():
            summary.update({f"{name}/{k}": v for k, v in rescore_detox(records, judge).items()})
    else:
        from fgrlhf.eval import evaluate_qa

        greedy = SamplingConfig(max_new_tokens=cfg.sampling.max_new_tokens, do_sample=False, num_samples=1)
        summary, _ = evaluate_qa(trainer.policy, examples, trainer.aggregator.rewards, greedy,
                                 batch_size=cfg.eval.batch_size, progress=False,
                                 segmenter=trainer.aggregator.segmenter)
    torch.set_rng_state(rng)
    trainer.policy.model.eval()
    return {f"eval/{k}": float(v) for k, v in summary.items() if isinstance(v, (int, float)) and v is not None}


def make_accelerator(cfg: TrainAppConfig):
    """The ``Accelerator`` of this process: plain CPU/GPU when run directly, data parallel
    under ``accelerate launch``. Unused parameters are allowed (a value model built from an
    LM never uses its LM head), at a small cost in DDP."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    if cfg.device not in (None, "cpu", "cuda"):
        raise ValueError(f"device must be null, cpu or cuda (one GPU per process), not {cfg.device!r}")
    import torch

    # On a machine without CUDA the processes of `accelerate launch --multi_gpu` (or torchrun)
    # meet over gloo: accelerate does that only when told to use the CPU.
    cpu = cfg.device == "cpu" or not torch.cuda.is_available()
    return Accelerator(cpu=cpu, mixed_precision=cfg.precision,
                       kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])


def run(cfg: TrainAppConfig) -> dict[str, Any]:
    import torch
    import transformers
    from tqdm import tqdm

    from fgrlhf.policy.checkpoint import base_checkpoint
    from fgrlhf.logging import MetricsLogger
    from fgrlhf.policy import Policy, ValueModel, make_reference
    from fgrlhf.train.parallel import Parallel
    from fgrlhf.train.ppo import PPOTrainer

    transformers.logging.set_verbosity_error()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    accelerator = make_accelerator(cfg)
    par = Parallel(accelerator)
    device = accelerator.device
    # Model initialisation draws from the seed alone; sampling streams differ per process
    # (a second process must not reuse the first one's random numbers on other prompts).
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    parts = load_task(cfg.task)
    train = parts["train"]
    held_out_parts = sorted(p for p in parts if p != "train")
    if cfg.eval.split not in held_out_parts:
        raise ValueError(f"eval.split must be one of {held_out_parts} for task {cfg.task.name}, "
                         f"not {cfg.eval.split!r}")
    held_out = parts[cfg.eval.split][: cfg.eval.questions]
    if cfg.ppo.ptx_coef > 0 and cfg.task.name != "qa_feedback":
        raise ValueError("PPO-ptx (ppo.ptx_coef > 0) mixes in QA-Feedback reference answers; "
                         f"task {cfg.task.name} has none")
    par.shard(cfg.task.prompts_per_iteration)  # fail now, not after loading models
    init = base_checkpoint(cfg.policy.init) if par.is_main else None
    par.barrier()  # the main process builds a missing base checkpoint, the others wait
    init = base_checkpoint(cfg.policy.init)
    policy = Policy.from_pretrained(init, cfg.policy.kind, cfg.policy.max_prompt_tokens, device)
    reference = make_reference(policy)  # always the initial policy, also after a resume
    state = None
    if cfg.resume:
        state, policy.model = load_checkpoint(Path(cfg.resume), type(policy.model), device)
    value = ValueModel.for_policy(policy, cfg.policy.value == "separate", cfg.policy.value_init)
    torch.manual_seed(cfg.seed + par.rank)
    trainer = PPOTrainer(policy, value, reference, build_aggregator(cfg.reward), cfg.ppo, cfg.sampling,
                         accelerator=accelerator, seed=cfg.seed)
    judges = {}
    if cfg.eval.every and cfg.eval.toxicity_scorers and par.is_main:
        from fgrlhf.reward.toxicity import load_toxicity_scorer

        judges = {name: load_toxicity_scorer(path, device) for name, path in cfg.eval.toxicity_scorers.items()}
    out = Path(par.gather_objects([str(run_dir())])[0])  # the main process's folder
    logger = MetricsLogger(out, config=OmegaConf.to_container(OmegaConf.structured(cfg)),
                           project=cfg.wandb.project, mode=cfg.wandb.mode, name=f"ppo-{cfg.reward.name}") \
        if par.is_main else None
    order = list(range(len(train)))
    rng = random.Random(cfg.seed)
    rng.shuffle(order)
    position = 0
    history: list[dict[str, float]] = []
    if state is not None:
        trainer.load_state_dict(state["trainer"])
        order, position, history = state["order"], state["position"], state["history"]
        rng.setstate(state["python_rng"])
    eval_initial = state.get("eval_initial") if state is not None else None
    if cfg.eval.every and cfg.eval.initial and state is None:  # the curve's starting point
        if par.is_main:
            eval_initial = evaluate_during_training(trainer, held_out, cfg, judges)
        par.barrier()
    bar = tqdm(range(trainer.iteration, cfg.iterations), desc="ppo", unit="it", initial=trainer.iteration,
               total=cfg.iterations, disable=not par.is_main)
    for it in bar:
        if position + cfg.task.prompts_per_iteration > len(order):  # a new pass over the prompts
            rng.shuffle(order)
            position = 0
        batch = [train[i] for i in order[position : position + cfg.task.prompts_per_iteration]]
        position += cfg.task.prompts_per_iteration
        ptx = None
        if cfg.ppo.ptx_coef > 0:  # PPO-ptx: SFT pairs (prompt, first reference) from the train split
            pairs = [train[i] for i in rng.sample(range(len(train)), cfg.ptx_per_iteration)]
            ptx = ([ex.prompt for ex in pairs], [ex.metadata["references"][0] for ex in pairs])
        try:
            metrics = trainer.step([ex.prompt for ex in batch], [ex.metadata for ex in batch], ptx)
        except FloatingPointError as err:
            if logger:
                logger.close()
            last = out / "checkpoint"
            kept = (f"the last checkpoint, {last}, is intact (resume with resume={last})"
                    if (last / "trainer.pt").exists() else "no checkpoint had been written yet")
            raise SystemExit(f"fgrlhf-train: stopped at iteration {it}: {err}; {kept}") from err
        if cfg.eval.every and ((it + 1) % cfg.eval.every == 0 or it + 1 == cfg.iterations):
            if par.is_main:
                metrics.update(evaluate_during_training(trainer, held_out, cfg, judges))
            par.barrier()
        if logger:
            logger.log(metrics, it)
        history.append(metrics)
        bar.set_postfix(reward=f"{metrics['reward/total']:.3f}", kl=f"{metrics['kl/sequence']:.3f}")
        if cfg.checkpoint_every and (it + 1) % cfg.checkpoint_every == 0:
            trainer_state = trainer.state_dict()  # a collective: every process takes part
            if par.is_main:
                save_checkpoint(out / "checkpoint", policy, {
                    "trainer": trainer_state, "order": order, "position": position,
                    "python_rng": rng.getstate(), "history": history, "eval_initial": eval_initial})
            par.barrier()
    last = history[-min(len(history), 5):]
    summary = {
        "iterations": cfg.iterations,
        "reward": cfg.reward.name,
        "weights": dict(cfg.reward.weights),
        "processes": par.world,
        "final": {k: sum(m[k] for m in last) / len(last) for k in last[0]} if last else {},
        "first": history[0] if history else {},
        "output": str(out),
    }
    evals = [m for m in history if any(k.startswith("eval/") for k in m)]
    if evals:
        summary["eval"] = {k[len("eval/"):]: v for k, v in evals[-1].items() if k.startswith("eval/")}
    if eval_initial:
        summary["eval_initial"] = {k[len("eval/"):]: v for k, v in eval_initial.items()}
    if par.is_main:
        logger.close()
        with open(out / "metrics.json", "w") as f:
            json.dump(summary, f, indent=1)
        if history:
            from fgrlhf.eval.plots import plot_learning_curves

            plot_learning_curves(out / "metrics.jsonl", out / "learning_curves.png")
        if cfg.save_policy:
            from fgrlhf.toolkit.save import atomic_save_dir

            def write(tmp: Path) -> None:
                policy.model.save_pretrained(tmp)
                policy.tokenizer.save_pretrained(tmp)

            atomic_save_dir(out / "policy", write)
    par.barrier()
    if par.world == 1:
        # A Hydra multirun runs several jobs in one process; each makes its own Accelerator.
        from accelerate.state import AcceleratorState

        AcceleratorState._reset_state(reset_partial_state=True)
    return summary


register_resolvers()


@hydra.main(config_path=str(CONF_DIR), config_name="train", version_base="1.3")
def main(cfg) -> None:
    merged = OmegaConf.merge(OmegaConf.structured(TrainAppConfig), cfg)
    summary = run(merged)
    if int(os.environ.get("RANK", "0")) != 0:  # one summary line per run, not per process
        return
    print(json.dumps({"output": summary["output"], **{k: round(v, 4) for k, v in summary["final"].items()
                                                      if k.startswith(("reward/", "kl/"))}}))


if __name__ == "__main__":
    main()
