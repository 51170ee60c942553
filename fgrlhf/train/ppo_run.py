"""The PPO run recipe behind ``fgrlhf-train``: from a config to a trained policy and its
records. ``run_ppo`` reads top to bottom as the steps of a run:

    1. set up the process: threads, the accelerator, seeds
    2. load the task: the training prompts and the held-out prompts evaluations use
    3. build the models: policy (resumed weights), reference, value model, rewards, trainer
    4. open the outputs: the run folder and its metrics logger
    5. resume (trainer state, data order, history) or evaluate the initial policy
    6. train: each iteration draws its prompts, takes a PPO step, evaluates, logs, checkpoints
    7. summarise and write the outputs: metrics.json, learning_curves.png, policy/

A run folder holds ``metrics.jsonl`` (one line per iteration), ``metrics.json`` (the
summary), ``learning_curves.png``, the final ``policy/`` and, with ``checkpoint_every``, a
resumable ``checkpoint/``. Under ``accelerate launch`` every process trains on its share of
each iteration's prompts; the main process alone evaluates and writes.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from fgrlhf.config import RuntimeConfig, SplitConfig, WandbConfig
from fgrlhf.paths import run_dir
from fgrlhf.policy.model import SamplingConfig
from fgrlhf.train.config import EvalConfig, PolicyConfig, RewardConfig, TaskConfig, set_up_runtime
from fgrlhf.train.evaluate import evaluate_during_training, load_judges
from fgrlhf.train.ppo import PPOConfig
from fgrlhf.train.rewards import build_aggregator
from fgrlhf.train.tasks import load_task


@dataclass
class PPORunConfig(RuntimeConfig):
    """A PPO run; ``fgrlhf-train``'s schema. ``device``: null (CUDA when available, one GPU
    per process, else CPU), ``cpu`` or ``cuda``."""

    task: TaskConfig = field(default_factory=TaskConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    iterations: int = 100
    seed: int = 0
    precision: str | None = None  # no | bf16 | fp16 autocast; null: as `accelerate launch` configured
    save_policy: bool = True
    checkpoint_every: int = 0  # iterations between resumable checkpoints (0: none)
    ptx_per_iteration: int = 8  # PPO-ptx (ppo.ptx_coef > 0): SFT pairs per iteration
    resume: str | None = None  # a checkpoint folder written by checkpoint_every
    eval: EvalConfig = field(default_factory=EvalConfig)
    wandb: WandbConfig = field(default_factory=WandbConfig)


def run_ppo(cfg: PPORunConfig) -> dict[str, Any]:
    """Train a policy with PPO as ``cfg`` says; returns the summary written to ``metrics.json``."""
    from tqdm import tqdm

    # 1. Set up the process.
    par = set_up(cfg)
    # 2. Load the task.
    train, held_out = load_prompts(cfg, par)
    # 3. Build the models; a resumed run takes the policy's weights from its checkpoint.
    trainer, resumed = build_trainer(cfg, par)
    judges = {}
    if cfg.eval.every and cfg.eval.toxicity_scorers and par.is_main:
        judges = load_judges(cfg.eval, par.accelerator.device)
    # 4. Open the outputs: the main process's run folder (every process names it) and its logger.
    out = Path(par.gather_objects([str(run_dir())])[0])
    logger = open_logger(cfg, out) if par.is_main else None
    # 5. Resume where the checkpoint stopped, or evaluate the initial policy (the curve's start).
    order = PromptOrder(len(train), cfg.seed)
    history: list[dict[str, float]] = []
    eval_initial = None
    if resumed is not None:
        trainer.load_state_dict(resumed["trainer"])
        order.load_state_dict(resumed)
        history, eval_initial = resumed["history"], resumed.get("eval_initial")
    elif cfg.eval.every and cfg.eval.initial:
        eval_initial = evaluate_on_main(trainer, held_out, cfg, judges, par) or None
    # 6. Train.
    bar = tqdm(range(trainer.iteration, cfg.iterations), desc="ppo", unit="it", initial=trainer.iteration,
               total=cfg.iterations, disable=not par.is_main)
    for it in bar:
        batch = [train[i] for i in order.next(cfg.task.prompts_per_iteration)]
        ptx = ptx_pairs(train, order, cfg.ptx_per_iteration) if cfg.ppo.ptx_coef > 0 else None
        metrics = step_or_stop(trainer, batch, ptx, it, logger, out)
        if cfg.eval.every and ((it + 1) % cfg.eval.every == 0 or it + 1 == cfg.iterations):
            metrics.update(evaluate_on_main(trainer, held_out, cfg, judges, par))
        if logger:
            logger.log(metrics, it)
        history.append(metrics)
        bar.set_postfix(reward=f"{metrics['reward/total']:.3f}", kl=f"{metrics['kl/sequence']:.3f}")
        if cfg.checkpoint_every and (it + 1) % cfg.checkpoint_every == 0:
            checkpoint_on_main(out / "checkpoint", trainer, {**order.state_dict(), "history": history,
                                                             "eval_initial": eval_initial}, par)
    # 7. Summarise and write the outputs.
    summary = summarise(cfg, history, eval_initial, par.world, out)
    if par.is_main:
        logger.close()
        write_outputs(out, summary, trainer.policy if cfg.save_policy else None)
    par.barrier()
    release_accelerator(par)
    return summary


def make_accelerator(cfg: PPORunConfig):
    """The ``Accelerator`` of this process: plain CPU/GPU when run directly, data parallel
    under ``accelerate launch``. Unused parameters are allowed (a value model built from an
    LM never uses its LM head), at a small cost in DDP."""
    import torch
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    if cfg.device not in (None, "cpu", "cuda"):
        raise ValueError(f"device must be null, cpu or cuda (one GPU per process), not {cfg.device!r}")
    # On a machine without CUDA the processes of `accelerate launch --multi_gpu` (or torchrun)
    # meet over gloo: accelerate does that only when told to use the CPU.
    cpu = cfg.device == "cpu" or not torch.cuda.is_available()
    return Accelerator(cpu=cpu, mixed_precision=cfg.precision,
                       kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])


def set_up(cfg: PPORunConfig):
    """Step 1: threads, this process's ``Parallel`` view of the accelerator, and the seeds.
    Model initialisation draws from the seed alone (every process builds the same models)."""
    import torch

    from fgrlhf.train.parallel import Parallel

    set_up_runtime(cfg.threads)
    par = Parallel(make_accelerator(cfg))
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    return par


def load_prompts(cfg: PPORunConfig, par) -> tuple[list, list]:
    """Step 2: the training prompts and the first ``eval.questions`` prompts of the held-out
    part ``eval.split``; settings that cannot work fail here, before any model loads."""
    parts = load_task(cfg.task, cfg.split)
    held_out_parts = sorted(p for p in parts if p != "train")
    if cfg.eval.split not in held_out_parts:
        raise ValueError(f"eval.split must be one of {held_out_parts} for task {cfg.task.name}, "
                         f"not {cfg.eval.split!r}")
    if cfg.ppo.ptx_coef > 0 and cfg.task.name != "qa_feedback":
        raise ValueError("PPO-ptx (ppo.ptx_coef > 0) mixes in QA-Feedback reference answers; "
                         f"task {cfg.task.name} has none")
    par.shard(cfg.task.prompts_per_iteration)  # the batch must split evenly over the processes
    return parts["train"], parts[cfg.eval.split][: cfg.eval.questions]


def build_trainer(cfg: PPORunConfig, par):
    """Step 3: the ``PPOTrainer`` and, when resuming, the checkpoint's state (else None).
    The reference is always the initial policy, also after a resume. Sampling streams differ
    per process from here on (a second process must not reuse the first one's random
    numbers on other prompts)."""
    import torch

    from fgrlhf.policy import Policy, ValueModel, make_reference
    from fgrlhf.policy.checkpoint import base_checkpoint
    from fgrlhf.train.ppo import PPOTrainer

    device = par.accelerator.device
    if par.is_main:
        base_checkpoint(cfg.policy.init)
    par.barrier()  # the main process builds a missing base checkpoint, the others wait
    policy = Policy.from_pretrained(base_checkpoint(cfg.policy.init), cfg.policy.kind, cfg.policy.max_prompt_tokens,
                                    device)
    reference = make_reference(policy)
    state = None
    if cfg.resume:
        state, policy.model = load_checkpoint(Path(cfg.resume), type(policy.model), device)
    value = ValueModel.for_policy(policy, cfg.policy.value == "separate", cfg.policy.value_init)
    torch.manual_seed(cfg.seed + par.rank)
    trainer = PPOTrainer(policy, value, reference, build_aggregator(cfg.reward), cfg.ppo, cfg.sampling,
                         accelerator=par.accelerator, seed=cfg.seed)
    return trainer, state


def open_logger(cfg: PPORunConfig, out: Path):
    """Step 4: ``metrics.jsonl`` in ``out``, and wandb (offline unless a project is set)."""
    from fgrlhf.logging import MetricsLogger

    return MetricsLogger(out, config=OmegaConf.to_container(OmegaConf.structured(cfg)), project=cfg.wandb.project,
                         mode=cfg.wandb.mode, name=f"ppo-{cfg.reward.name}")


class PromptOrder:
    """Which training prompts each iteration takes: passes over a seeded shuffle of all of
    them, reshuffled when the next batch would run past the end. PPO-ptx pairs are drawn
    from the same random stream, so a checkpoint's stream state resumes both."""

    def __init__(self, n: int, seed: int) -> None:
        self.order = list(range(n))
        self.position = 0
        self.rng = random.Random(seed)
        self.rng.shuffle(self.order)

    def next(self, k: int) -> list[int]:
        """The indices of the next ``k`` prompts."""
        if self.position + k > len(self.order):  # a new pass over the prompts
            self.rng.shuffle(self.order)
            self.position = 0
        indices = self.order[self.position : self.position + k]
        self.position += k
        return indices

    def sample(self, k: int) -> list[int]:
        """``k`` distinct indices drawn uniformly (independent of the pass)."""
        return self.rng.sample(range(len(self.order)), k)

    def state_dict(self) -> dict[str, Any]:
        return {"order": self.order, "position": self.position, "python_rng": self.rng.getstate()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.order, self.position = state["order"], state["position"]
        self.rng.setstate(state["python_rng"])


def ptx_pairs(train: list, order: PromptOrder, k: int) -> tuple[list[str], list[str]]:
    """PPO-ptx's SFT pairs: (prompt, first reference answer) of ``k`` training examples."""
    pairs = [train[i] for i in order.sample(k)]
    return [ex.prompt for ex in pairs], [ex.metadata["references"][0] for ex in pairs]


def step_or_stop(trainer, batch: list, ptx, iteration: int, logger, out: Path) -> dict[str, float]:
    """One PPO iteration on ``batch``; a non-finite reward or loss ends the run with a message
    that says whether the last checkpoint can resume it."""
    try:
        return trainer.step([ex.prompt for ex in batch], [ex.metadata for ex in batch], ptx)
    except FloatingPointError as err:
        if logger:
            logger.close()
        last = out / "checkpoint"
        kept = (f"the last checkpoint, {last}, is intact (resume with resume={last})"
                if (last / "trainer.pt").exists() else "no checkpoint had been written yet")
        raise SystemExit(f"fgrlhf-train: stopped at iteration {iteration}: {err}; {kept}") from err


def evaluate_on_main(trainer, held_out: list, cfg: PPORunConfig, judges: dict, par) -> dict[str, float]:
    """The held-out metrics, computed by the main process (empty elsewhere) while the others wait."""
    metrics = evaluate_during_training(trainer, held_out, cfg.task.name, cfg.sampling, cfg.eval, cfg.seed,
                                       judges) if par.is_main else {}
    par.barrier()
    return metrics


def checkpoint_on_main(directory: Path, trainer, progress: dict[str, Any], par) -> None:
    """A resumable checkpoint of the trainer and the run's ``progress`` (data order, history,
    initial evaluation): every process takes part in collecting the trainer's state (a
    collective), the main process writes it, the others wait."""
    trainer_state = trainer.state_dict()
    if par.is_main:
        save_checkpoint(directory, trainer.policy, {"trainer": trainer_state, **progress})
    par.barrier()


def save_checkpoint(directory: Path, policy, state: dict[str, Any]) -> None:
    """The policy (Hugging Face format, ``policy/``) and ``trainer.pt`` (optimizer, scheduler,
    KL controller, normalisers, value model, RNG states, data position, metric history),
    replaced atomically: a crash mid-save leaves the previous checkpoint loadable."""
    import torch

    from fgrlhf.toolkit.save import atomic_save_dir, save_model_dir

    def write(tmp: Path) -> None:
        save_model_dir(tmp / "policy", policy.model, policy.tokenizer)
        torch.save(state, tmp / "trainer.pt")

    atomic_save_dir(directory, write)


def load_checkpoint(directory: Path, model_cls, device):
    """(trainer state, policy model) from a folder written by ``save_checkpoint``."""
    import torch

    if not (directory / "trainer.pt").exists():
        raise FileNotFoundError(f"{directory} is not an fgrlhf-train checkpoint (no trainer.pt)")
    state = torch.load(directory / "trainer.pt", map_location="cpu", weights_only=False)
    return state, model_cls.from_pretrained(directory / "policy").to(device)


def summarise(cfg: PPORunConfig, history: list[dict[str, float]], eval_initial: dict[str, float] | None,
              processes: int, out: Path) -> dict[str, Any]:
    """``metrics.json``: the first iteration, the mean of the last five, the last held-out
    evaluation and the initial one (``eval/`` dropped from their keys)."""
    last = history[-min(len(history), 5):]
    summary = {
        "iterations": cfg.iterations,
        "reward": cfg.reward.name,
        "weights": dict(cfg.reward.weights),
        "processes": processes,
        "final": {k: sum(m[k] for m in last) / len(last) for k in last[0]} if last else {},
        "first": history[0] if history else {},
        "output": str(out),
    }
    evals = [m for m in history if any(k.startswith("eval/") for k in m)]
    if evals:
        summary["eval"] = {k[len("eval/"):]: v for k, v in evals[-1].items() if k.startswith("eval/")}
    if eval_initial:
        summary["eval_initial"] = {k[len("eval/"):]: v for k, v in eval_initial.items()}
    return summary


def write_outputs(out: Path, summary: dict[str, Any], policy=None) -> None:
    """``metrics.json``, ``learning_curves.png`` (once there is an iteration) and, given a
    policy, the final ``policy/`` folder."""
    with open(out / "metrics.json", "w") as f:
        json.dump(summary, f, indent=1)
    if summary["first"]:
        from fgrlhf.eval.plots import plot_learning_curves

        plot_learning_curves(out / "metrics.jsonl", out / "learning_curves.png")
    if policy is not None:
        from fgrlhf.toolkit.save import save_model_dir

        save_model_dir(out / "policy", policy.model, policy.tokenizer)


def release_accelerator(par) -> None:
    """Forget this process's accelerate state after a single-process run: a Hydra multirun
    runs several jobs in one process, and each makes its own ``Accelerator``."""
    if par.world == 1:
        from accelerate.state import AcceleratorState

        AcceleratorState._reset_state(reset_partial_state=True)
