"""The PPO run recipe behind ``fgrlhf-train``: from a config to a trained policy and its
records. ``run_ppo`` reads top to bottom as the steps of a run:

    1. set up the process: every setting checked against its range, threads, the
       accelerator, seeds; the run folder claimed (writable, one run at a time)
    2. load the task: the training prompts and the held-out prompts evaluations use
    3. build the models: policy (resumed weights), reference, value model, rewards, trainer
    4. open the outputs: the metrics logger (a resumed run's records up to its checkpoint)
    5. resume (trainer state, data order, history; the checkpoint's config compared with
       this one) or evaluate the initial policy
    6. train: each iteration draws its prompts, takes a PPO step, checks the alert rules,
       evaluates, logs, checkpoints
    7. summarise and write the outputs: metrics.json, learning_curves.png, policy/

A run folder holds ``metrics.jsonl`` (one line per iteration), ``metrics.json`` (the
summary), ``learning_curves.png``, the final ``policy/`` and, with ``checkpoint_every``, a
resumable ``checkpoint/``. Under ``accelerate launch`` every process trains on its share of
each iteration's prompts; the main process alone evaluates and writes.
"""

from __future__ import annotations

import json
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from omegaconf import OmegaConf

from fgrlhf.config import RuntimeConfig, SplitConfig, WandbConfig
from fgrlhf.errors import CheckpointError, ConfigError, UserError
from fgrlhf.eval.alerts import AlertConfig, AlertRule, Alerts
from fgrlhf.paths import run_dir
from fgrlhf.policy.model import SamplingConfig
from fgrlhf.train.config import EvalConfig, PolicyConfig, RewardConfig, TaskConfig, set_up_runtime
from fgrlhf.train.evaluate import evaluate_during_training, load_judges
from fgrlhf.train.ppo import PPOConfig
from fgrlhf.train.rewards import build_aggregator
from fgrlhf.train.tasks import load_task
from fgrlhf.validate import problems, validate


@dataclass
class PPORunConfig(RuntimeConfig):
    """A PPO run; ``fgrlhf-train``'s schema. ``device``: null (CUDA when available, one GPU
    per process, else CPU), ``cpu`` or ``cuda``."""

    RULES: ClassVar[dict[str, str]] = {"iterations": "> 0", "checkpoint_every": ">= 0", "ptx_per_iteration": "> 0",
                                       "precision": "in no bf16 fp16", "device": "in cpu cuda"}

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
    # Settings that may differ from the checkpoint's on resume, applied as given (e.g.
    # [ppo.lr,reward.weights.length]); any other difference refuses to resume.
    resume_overrides: list[str] = field(default_factory=list)
    eval: EvalConfig = field(default_factory=EvalConfig)
    alerts: AlertConfig = field(default_factory=AlertConfig)
    wandb: WandbConfig = field(default_factory=WandbConfig)


def config_problems(cfg: PPORunConfig) -> list[str]:
    """Settings that are each in range but do not fit together."""
    found = []
    if cfg.sampling.min_new_tokens > cfg.sampling.max_new_tokens:
        found.append(f"sampling.min_new_tokens={cfg.sampling.min_new_tokens}: must be at most "
                     f"sampling.max_new_tokens={cfg.sampling.max_new_tokens}")
    if cfg.ppo.adaptive_kl and cfg.ppo.kl_target is None:
        found.append("ppo.kl_target=None: an adaptive KL controller (ppo.adaptive_kl=true) needs a target")
    unknown = sorted(set(cfg.reward.weights) - set(cfg.reward.models))
    if unknown:
        found.append(f"reward.weights names no reward model: {', '.join(unknown)} "
                     f"(models: {', '.join(cfg.reward.models) or 'none'})")
    if cfg.resume_overrides and not cfg.resume:
        found.append("resume_overrides is set but resume is not")
    for i, rule in enumerate(cfg.alerts.rules):
        found += problems(rule, AlertRule, f"alerts.rules[{i}].")
        if not rule.name or not (rule.metric or (rule.rising and rule.falling)):
            found.append(f"alerts.rules[{i}]: needs a name and a metric (or rising and falling)")
    return found


def run_ppo(cfg: PPORunConfig) -> dict[str, Any]:
    """Train a policy with PPO as ``cfg`` says; returns the summary written to ``metrics.json``."""
    # 1. Set up the process and claim the run folder (the main process's, named by every process).
    validate(cfg, PPORunConfig, config_problems(cfg))
    par = set_up(cfg)
    out = Path(par.gather_objects([str(run_dir())])[0])
    lock = claim_run_folder(out) if par.is_main else None
    try:
        return _run(cfg, par, out)
    finally:
        if lock is not None:
            lock.release()


def _run(cfg: PPORunConfig, par, out: Path) -> dict[str, Any]:
    from tqdm import tqdm

    # 2. Load the task.
    train, held_out = load_prompts(cfg, par)
    # 3. Build the models; a resumed run takes the policy's weights from its checkpoint, whose
    # config must agree with this one except where resume_overrides says otherwise.
    trainer, resumed = build_trainer(cfg, par)
    applied = check_resumed_config(cfg, resumed) if resumed is not None else []
    judges = {}
    if cfg.eval.every and cfg.eval.toxicity_scorers and par.is_main:
        judges = load_judges(cfg.eval, par.accelerator.device)
    # 4. Open the outputs: the logger, its records cut back to the checkpoint's iteration.
    if par.is_main and resumed is not None:
        keep_metrics_before(out / "metrics.jsonl", int(resumed["trainer"]["iteration"]))
    logger = open_logger(cfg, out) if par.is_main else None
    # 5. Resume where the checkpoint stopped, or evaluate the initial policy (the curve's start).
    order = PromptOrder(len(train), cfg.seed)
    alerts = Alerts(cfg.alerts.rules)
    history: list[dict[str, float]] = []
    eval_initial = None
    if resumed is not None:
        trainer.load_state_dict(resumed["trainer"])
        apply_resumed_settings(trainer, cfg, applied)
        order.load_state_dict(resumed)
        history, eval_initial = resumed["history"], resumed.get("eval_initial")
        if "alerts" in resumed:
            alerts.load_state_dict(resumed["alerts"])
    elif cfg.eval.every and cfg.eval.initial:
        eval_initial = evaluate_on_main(trainer, held_out, cfg, judges, par) or None
        if eval_initial:  # the baseline of the rules on eval/ keys
            alerts.observe(eval_initial)
    # 6. Train.
    bar = tqdm(range(trainer.iteration, cfg.iterations), desc="ppo", unit="it", initial=trainer.iteration,
               total=cfg.iterations, disable=not par.is_main)
    for it in bar:
        batch = [train[i] for i in order.next(cfg.task.prompts_per_iteration)]
        ptx = ptx_pairs(train, order, cfg.ptx_per_iteration) if cfg.ppo.ptx_coef > 0 else None
        metrics = step_or_stop(trainer, batch, ptx, it, logger, out)
        if cfg.eval.every and ((it + 1) % cfg.eval.every == 0 or it + 1 == cfg.iterations):
            metrics.update(evaluate_on_main(trainer, held_out, cfg, judges, par))
        for warning in alerts.check(metrics):  # every process: all see the same metrics
            if par.is_main:
                tqdm.write(f"fgrlhf-train: warning: iteration {it}: {warning}", file=sys.stderr)
        if logger:
            logger.log(metrics, it)
        history.append(metrics)
        bar.set_postfix(reward=f"{metrics['reward/total']:.3f}", kl=f"{metrics['kl/sequence']:.3f}")
        stop = cfg.alerts.stop_on_alert and bool(alerts.firing)
        if (cfg.checkpoint_every and (it + 1) % cfg.checkpoint_every == 0) or stop:
            checkpoint_on_main(out / "checkpoint", trainer, {**order.state_dict(), "history": history,
                                                             "eval_initial": eval_initial,
                                                             "alerts": alerts.state_dict(),
                                                             "config": config_dict(cfg)}, par)
        if stop:
            if par.is_main:
                tqdm.write(f"fgrlhf-train: stopped after iteration {it} on alert ({', '.join(sorted(alerts.firing))}); "
                           f"the checkpoint {out / 'checkpoint'} holds this iteration", file=sys.stderr)
            break
    # 7. The policy first, so that nothing after it can lose what training made; then the
    # summary and the files that mark the run complete.
    if par.is_main and cfg.save_policy:
        save_final_policy(out, trainer.policy)
    summary = summarise(cfg, history, eval_initial, par.world, out)
    summary["alerts"] = {r.name: [i for i, m in enumerate(history) if m.get(f"alert/{r.name}")]
                         for r in cfg.alerts.rules}
    if resumed is not None:
        summary["resumed"] = {"from": cfg.resume, "applied": {k: [old, new] for k, old, new in applied}}
    if par.is_main:
        logger.close()
        write_outputs(out, summary)
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


def config_dict(cfg: PPORunConfig) -> dict[str, Any]:
    """The run's settings as plain data (what ``metrics.json``, wandb and checkpoints record)."""
    return OmegaConf.to_container(OmegaConf.structured(cfg) if not OmegaConf.is_config(cfg) else cfg, resolve=True)


def claim_run_folder(out: Path):
    """The run folder, proven writable and locked for this run before any work starts."""
    from fgrlhf.runlock import RunLock

    return RunLock(out, "fgrlhf-train").acquire()


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
        raise ConfigError(f"eval.split must be one of {held_out_parts} for task {cfg.task.name}, "
                         f"not {cfg.eval.split!r}")
    if cfg.ppo.ptx_coef > 0 and cfg.task.name != "qa_feedback":
        raise ConfigError("PPO-ptx (ppo.ptx_coef > 0) mixes in QA-Feedback reference answers; "
                         f"task {cfg.task.name} has none")
    if not parts["train"]:
        raise ConfigError(f"{cfg.task.prompts_file}: the split leaves no training prompt "
                          f"(split.dev_questions={cfg.split.dev_questions}, split.test_questions={cfg.split.test_questions})")
    if cfg.ppo.ptx_coef > 0 and cfg.ptx_per_iteration > len(parts["train"]):
        raise ConfigError(f"ptx_per_iteration={cfg.ptx_per_iteration}: more than the {len(parts['train'])} "
                          "training prompts")
    try:
        par.shard(cfg.task.prompts_per_iteration)  # the batch must split evenly over the processes
    except ValueError as err:
        raise ConfigError(f"task.prompts_per_iteration={cfg.task.prompts_per_iteration}: {err}") from None
    return parts["train"], parts[cfg.eval.split][: cfg.eval.questions]


def build_trainer(cfg: PPORunConfig, par):
    """Step 3: the ``PPOTrainer`` and, when resuming, the checkpoint's state (else None).
    The reference is always the initial policy, also after a resume. Sampling streams differ
    per process from here on (a second process must not reuse the first one's random
    numbers on other prompts)."""
    import torch

    from fgrlhf.policy import Policy, ValueModel, make_reference
    from fgrlhf.policy.checkpoint import base_checkpoint
    from fgrlhf.policy.lora import lora_enabled
    from fgrlhf.train.ppo import PPOTrainer

    device = par.accelerator.device
    resume = find_checkpoint(cfg.resume) if cfg.resume else None  # fail before any model loads
    if par.is_main:
        base_checkpoint(cfg.policy.init)
    par.barrier()  # the main process builds a missing base checkpoint, the others wait
    lora = cfg.policy.lora
    adapters = lora_enabled(lora)
    policy = Policy.from_pretrained(base_checkpoint(cfg.policy.init), cfg.policy.kind, cfg.policy.max_prompt_tokens,
                                    device, lora=lora)
    # Without adapters the reference is a copy of the initial weights, taken before a resume
    # replaces them; with adapters it is the policy's own model with them switched off.
    reference = None if adapters else make_reference(policy)
    state = None
    if resume is not None:
        state, policy.model = load_checkpoint(resume, type(policy.model), device,
                                              base=policy.model if adapters else None)
    if reference is None:
        reference = make_reference(policy)
    value = ValueModel.for_policy(policy, cfg.policy.value == "separate", cfg.policy.value_init, lora)
    torch.manual_seed(cfg.seed + par.rank)
    trainer = PPOTrainer(policy, value, reference, build_aggregator(cfg.reward), cfg.ppo, cfg.sampling,
                         accelerator=par.accelerator, seed=cfg.seed)
    return trainer, state


def open_logger(cfg: PPORunConfig, out: Path):
    """Step 4: ``metrics.jsonl`` in ``out``, and wandb (offline unless a project is set)."""
    from fgrlhf.logging import MetricsLogger

    return MetricsLogger(out, config=config_dict(cfg), project=cfg.wandb.project,
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
    from fgrlhf.reward.aggregate import RewardModelError

    try:
        return trainer.step([ex.prompt for ex in batch], [ex.metadata for ex in batch], ptx)
    except (FloatingPointError, RewardModelError) as err:
        if logger:
            logger.close()
        last = out / "checkpoint"
        kept = (f"the last checkpoint, {last}, is intact (resume with resume={last})"
                if (last / "trainer.pt").exists() else "no checkpoint had been written yet")
        raise UserError(f"stopped at iteration {iteration}: {err}; {kept}") from err


def evaluate_on_main(trainer, held_out: list, cfg: PPORunConfig, judges: dict, par) -> dict[str, float]:
    """The held-out metrics, computed by the main process while the others wait, then sent to
    every process: alert rules on ``eval/`` keys must fire (and stop a run) everywhere alike."""
    metrics = evaluate_during_training(trainer, held_out, cfg.task.name, cfg.sampling, cfg.eval, cfg.seed,
                                       judges) if par.is_main else {}
    return par.from_main(metrics)


def checkpoint_on_main(directory: Path, trainer, progress: dict[str, Any], par) -> None:
    """A resumable checkpoint of the trainer and the run's ``progress`` (data order, history,
    initial evaluation): every process takes part in collecting the trainer's state (a
    collective), the main process writes it, the others wait."""
    trainer_state = trainer.state_dict()
    if par.is_main:
        save_checkpoint(directory, trainer.policy, {"trainer": trainer_state, **progress})
    par.barrier()


def save_checkpoint(directory: Path, policy, state: dict[str, Any]) -> None:
    """The policy (Hugging Face format, ``policy/``; a LoRA policy's adapters alone, in
    ``policy_adapters/``, the frozen weights being the run's ``policy.init``) and
    ``trainer.pt`` (optimizer, scheduler, KL controller, normalisers, value model, RNG
    states, data position, metric history), replaced atomically: a crash mid-save leaves the
    previous checkpoint loadable."""
    import torch

    from fgrlhf.policy.lora import ADAPTERS_DIR
    from fgrlhf.toolkit.save import atomic_save_dir, save_model_dir

    def write(tmp: Path) -> None:
        name = ADAPTERS_DIR if policy.has_adapters else "policy"
        save_model_dir(tmp / name, policy.model, policy.tokenizer)
        torch.save(state, tmp / "trainer.pt")

    atomic_save_dir(directory, write)


def find_checkpoint(path: str) -> Path:
    """The checkpoint to resume from: ``path``, or, when a save was cut short between the two
    renames of its swap, the whole copy beside it (``.tmp`` or ``.old``)."""
    from fgrlhf.toolkit.save import intact_dir

    directory = Path(path)
    found = intact_dir(directory)
    if found is None:
        raise CheckpointError(f"resume={path}: no such checkpoint folder")
    if found != directory:
        print(f"fgrlhf-train: note: {directory} is missing (a save was interrupted); resuming from the whole "
              f"copy {found}", file=sys.stderr)
    if not (found / "trainer.pt").is_file():
        raise CheckpointError(f"resume={path}: {found} is not an fgrlhf-train checkpoint (no trainer.pt)")
    return found


def load_checkpoint(directory: Path, model_cls, device, base=None):
    """(trainer state, policy model) from a folder written by ``save_checkpoint``; ``base``:
    a LoRA policy on the run's initial weights, whose adapters take the checkpoint's."""
    import torch

    from fgrlhf.toolkit.load import loading, model_source

    try:
        state = torch.load(directory / "trainer.pt", map_location="cpu", weights_only=False)
    except Exception as err:  # truncated or corrupt: torch raises RuntimeError, EOFError, pickle errors
        raise CheckpointError(f"{directory / 'trainer.pt'} cannot be read (truncated or corrupt?): {err}") from None
    from fgrlhf.policy.lora import ADAPTER_CONFIG, ADAPTERS_DIR, load_adapter_weights

    adapters = directory / ADAPTERS_DIR
    if base is not None:
        if not (adapters / ADAPTER_CONFIG).is_file():
            raise CheckpointError(f"{directory} holds no LoRA adapters ({ADAPTERS_DIR}/{ADAPTER_CONFIG}): it was "
                                  "written by a run without policy.lora; resume it with policy.lora.r=0")
        with loading(adapters, "checkpoint's adapters"):
            return state, load_adapter_weights(base, adapters)
    if (adapters / ADAPTER_CONFIG).is_file() and not (directory / "policy").exists():
        lora = state.get("config", {}).get("policy", {}).get("lora", {})
        raise CheckpointError(f"{directory} holds LoRA adapters on the run's initial weights: resume it with "
                              f"the same policy.lora (policy.lora.r={lora.get('r', '?')})")
    source = model_source(directory / "policy", "checkpoint's policy")
    with loading(source, "checkpoint's policy"):
        model = model_cls.from_pretrained(source)
    return state, model.to(device)


def check_resumed_config(cfg: PPORunConfig, state: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """The checkpoint's config against this run's (``fgrlhf.train.resume_config``): the
    differences ``resume_overrides`` applies; anything else that differs refuses to resume."""
    from fgrlhf.train.resume_config import check_resume

    saved = state.get("config")
    if saved is None:
        print(f"fgrlhf-train: note: {cfg.resume} records no configuration (an older checkpoint); "
              "its settings cannot be compared with this run's", file=sys.stderr)
        return []
    return check_resume(saved, config_dict(cfg), cfg.resume_overrides, cfg.resume)


def apply_resumed_settings(trainer, cfg: PPORunConfig, applied: list[tuple[str, Any, Any]]) -> None:
    """After loading a checkpoint's state, the settings this run applies win over the state's
    copies of them: the learning rate (the optimizer and scheduler keep the old one), the KL
    coefficient, and the reward weights (always this run's config)."""
    keys = {k for k, _, _ in applied}
    if "ppo.lr" in keys:
        scheduler = trainer.scheduler
        scheduler.base_lrs = [cfg.ppo.lr for _ in scheduler.base_lrs]
        for group, factor in zip(trainer.optimizer.param_groups, scheduler.lr_lambdas):
            group["initial_lr"] = cfg.ppo.lr
            group["lr"] = cfg.ppo.lr * factor(scheduler.last_epoch)
    if "ppo.kl_coef" in keys:
        trainer.kl_ctl.kl_coef = cfg.ppo.kl_coef
    trainer.aggregator.weights = {k: float(cfg.reward.weights.get(k, 1.0)) for k in trainer.aggregator.categories}


def keep_metrics_before(path: Path, iteration: int) -> None:
    """Cut ``metrics.jsonl`` back to the records of steps before ``iteration``: a run killed
    after logging a step but before checkpointing it logs that step again when resumed."""
    if not path.exists():
        return
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    kept = [line for line in lines if json.loads(line).get("step", -1) < iteration]
    if len(kept) != len(lines):
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("".join(line + "\n" for line in kept))
        tmp.replace(path)


def summarise(cfg: PPORunConfig, history: list[dict[str, float]], eval_initial: dict[str, float] | None,
              processes: int, out: Path) -> dict[str, Any]:
    """``metrics.json``: the first iteration, the mean of the last five (of the metrics all
    five have: an evaluation among them is not averaged), the last held-out evaluation and the
    initial one (``eval/`` dropped from their keys)."""
    last = history[-min(len(history), 5):]
    shared = [k for k in last[0] if all(k in m for m in last)] if last else []
    summary = {
        "iterations": cfg.iterations,
        "reward": cfg.reward.name,
        "weights": dict(cfg.reward.weights),
        "processes": processes,
        "final": {k: sum(m[k] for m in last) / len(last) for k in shared},
        "first": history[0] if history else {},
        "output": str(out),
    }
    evals = [m for m in history if any(k.startswith("eval/") for k in m)]
    if evals:
        summary["eval"] = {k[len("eval/"):]: v for k, v in evals[-1].items() if k.startswith("eval/")}
    if eval_initial:
        summary["eval_initial"] = {k[len("eval/"):]: v for k, v in eval_initial.items()}
    return summary


def write_outputs(out: Path, summary: dict[str, Any]) -> None:
    """``learning_curves.png`` (once there is an iteration), then ``metrics.json``: written
    last, it marks a complete run."""
    if summary["first"]:
        from fgrlhf.eval.plots import plot_learning_curves

        plot_learning_curves(out / "metrics.jsonl", out / "learning_curves.png")
    with open(out / "metrics.json", "w") as f:
        json.dump(summary, f, indent=1)


def save_final_policy(out: Path, policy) -> None:
    """The final ``policy/`` folder: a LoRA policy's adapters merged into its weights (it loads
    anywhere without PEFT), and the adapters alone in ``policy_adapters/`` beside it (where a
    resume looks for them; ``fgrlhf.train.sft_run.save_policy`` keeps them inside the folder)."""
    from fgrlhf.toolkit.save import save_model_dir

    if policy.has_adapters:
        from fgrlhf.policy.lora import ADAPTERS_DIR, merged_model

        save_model_dir(out / ADAPTERS_DIR, policy.model, policy.tokenizer)
        save_model_dir(out / "policy", merged_model(policy.model), policy.tokenizer)
    else:
        save_model_dir(out / "policy", policy.model, policy.tokenizer)


def release_accelerator(par) -> None:
    """Forget this process's accelerate state after a single-process run: a Hydra multirun
    runs several jobs in one process, and each makes its own ``Accelerator``."""
    if par.world == 1:
        from accelerate.state import AcceleratorState

        AcceleratorState._reset_state(reset_partial_state=True)
