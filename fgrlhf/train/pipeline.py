"""The whole QA-Feedback pipeline (``fgrlhf-pipeline``, ``make run``) on the embedded default:

    reward models (R1, R2, R3; cached) → SFT policy (cached) → evaluate SFT
    → fine-grained PPO → evaluate PPO → report (table, learning curves, before/after plot)

Each training stage is the project's own command (``fgrlhf-rm``, ``fgrlhf-sft``,
``fgrlhf-train``) run as a subprocess with its progress bars, so a stage that fails says so
in its own words and the stages before it stay done: reward models and the SFT policy are
reused from ``rm_dir``/``sft_dir`` on the next run. All stages draw the same question split
(the pipeline's ``split``, passed on as ``split.*``) and log to the same wandb settings.
Evaluation uses the same reward-model objects as ``fgrlhf-eval``, on the held-out test
questions. Everything else goes to the run folder:

    ppo/          fgrlhf-train's folder (metrics.jsonl, metrics.json, policy/, checkpoint/)
    eval_sft/     summary.json + outputs.jsonl of the SFT policy
    eval_ppo/     the same for the PPO policy
    report.md, learning_curves.png, before_after.png, pipeline.json (stage timings)
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from omegaconf import OmegaConf

from fgrlhf.config import RuntimeConfig, SplitConfig, WandbConfig
from fgrlhf.paths import CONF_DIR, PROJECT_ROOT, run_dir
from fgrlhf.reward.categories import QA_CATEGORIES
from fgrlhf.train.config import TaskConfig, set_up_runtime


@dataclass
class PipelineConfig(RuntimeConfig):
    """``fgrlhf-pipeline``'s schema. ``device`` and ``threads``, when set, hold for every stage."""

    RULES: ClassVar[dict[str, str]] = {"eval_questions": "> 0", "eval_batch_size": "> 0"}

    rm_dir: str = str(PROJECT_ROOT / "runs" / "rm")  # <rm_dir>/<category>, trained if missing
    policy_init: str = "minilm_seq2seq"
    sft_dir: str = str(PROJECT_ROOT / "runs" / "sft" / "minilm_seq2seq")  # trained if missing
    sft_overrides: list[str] = field(default_factory=list)  # extra fgrlhf-sft arguments
    train_overrides: list[str] = field(default_factory=lambda: ["experiment=qa_cpu"])  # fgrlhf-train's
    eval_questions: int | None = None  # the first N test questions (default: all of split.test_questions)
    eval_batch_size: int = 8
    split: SplitConfig = field(default_factory=SplitConfig)
    wandb: WandbConfig = field(default_factory=WandbConfig)
    output: str | None = None  # default: the Hydra run folder


def run_pipeline(cfg: PipelineConfig) -> dict[str, Any]:
    """Run the six stages; returns what ``pipeline.json`` holds (before/after metrics, timings).
    Every stage's settings are checked, and the output folders claimed, before the first runs."""
    from fgrlhf.runlock import RunLock

    out = (Path(cfg.output) if cfg.output else run_dir()).resolve()
    check_before_stages(cfg)
    with RunLock(out, "fgrlhf-pipeline"):
        return _run_stages(cfg, out)


def _run_stages(cfg: PipelineConfig, out: Path) -> dict[str, Any]:
    from fgrlhf.eval.checkpoint import evaluate_checkpoint
    from fgrlhf.eval.plots import plot_before_after, plot_learning_curves
    from fgrlhf.train.rewards import build_aggregator, fine_grained_reward
    from fgrlhf.train.tasks import evaluation_examples

    set_up_runtime(cfg.threads)
    rm_dir, sft_dir = Path(cfg.rm_dir), Path(cfg.sft_dir)
    shared = shared_overrides(cfg)
    timings: dict[str, float] = {}
    total, t_all = 6, time.perf_counter()

    t = _stage(1, total, "reward models")
    for k in QA_CATEGORIES:
        if (rm_dir / k / "fgrlhf_rm.json").exists():
            print(f"  {k}: cached at {rm_dir / k}")
        else:
            _command("rm", f"rm={k}", f"checkpoint={rm_dir / k}", f"hydra.run.dir={out / 'rm' / k}", *shared)
    timings["reward models"] = time.perf_counter() - t

    t = _stage(2, total, "SFT policy")
    if (sft_dir / "fgrlhf_sft.json").exists():
        print(f"  cached at {sft_dir}")
    else:
        _command("sft", *stage_arguments(cfg)["sft"], f"hydra.run.dir={out / 'sft'}")
    timings["SFT"] = time.perf_counter() - t

    aggregator = build_aggregator(fine_grained_reward(rm_dir))
    task = OmegaConf.merge(OmegaConf.structured(TaskConfig), OmegaConf.load(CONF_DIR / "task" / "qa_feedback.yaml"))
    examples = evaluation_examples(task, cfg.split, "test", cfg.eval_questions)

    def evaluate(policy: Path, folder: str) -> dict[str, Any]:
        return evaluate_checkpoint(str(policy), examples, aggregator, out / folder, batch_size=cfg.eval_batch_size,
                                   device=cfg.device)

    t = _stage(3, total, f"evaluate the SFT policy on {len(examples)} test questions")
    before = evaluate(sft_dir, "eval_sft")
    timings["evaluate SFT"] = time.perf_counter() - t

    t = _stage(4, total, "fine-grained PPO")
    ppo_dir = out / "ppo"
    _command("train", *stage_arguments(cfg)["train"], f"hydra.run.dir={ppo_dir}")
    timings["PPO"] = time.perf_counter() - t

    t = _stage(5, total, "evaluate the PPO policy")
    after = evaluate(ppo_dir / "policy", "eval_ppo")
    timings["evaluate PPO"] = time.perf_counter() - t

    t = _stage(6, total, "report")
    plot_learning_curves(ppo_dir / "metrics.jsonl", out / "learning_curves.png")
    plot_before_after(before, after, out / "before_after.png", labels=("SFT", "fine-grained PPO"))
    train_summary = json.loads((ppo_dir / "metrics.json").read_text())
    timings["report"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t_all
    (out / "report.md").write_text(report_markdown(before, after, timings, train_summary, cfg))
    result = {"output": str(out), "before": before, "after": after, "seconds": {k: round(v, 1) for k, v in timings.items()}}
    (out / "pipeline.json").write_text(json.dumps(result, indent=1))
    print(f"\n[fgrlhf-pipeline] done in {timings['total'] / 60:.1f} min; report: {out / 'report.md'}")
    return result


def stage_arguments(cfg: PipelineConfig) -> dict[str, list[str]]:
    """The command-line settings of the SFT and PPO stages' commands (``fgrlhf-sft``,
    ``fgrlhf-train``), without their run folders."""
    rm_dir, sft_dir = Path(cfg.rm_dir), Path(cfg.sft_dir)
    shared = shared_overrides(cfg)
    return {"sft": [f"policy.init={cfg.policy_init}", f"output={sft_dir}", *shared, *cfg.sft_overrides],
            "train": [*cfg.train_overrides, f"policy.init={sft_dir}", *shared,
                      *(f"reward.models.{k}.checkpoint={rm_dir / k}" for k in QA_CATEGORIES)]}


def check_before_stages(cfg: PipelineConfig) -> None:
    """What can fail before the first stage starts, so that no stage's work is spent on a run
    that cannot finish: the SFT and PPO stages' settings (``sft_overrides``,
    ``train_overrides``) composed and range-checked as their commands will; the initial
    policy exists; the reward-model and SFT folders can be written where they are missing."""
    import contextlib

    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from fgrlhf.cli.sft import SFTAppConfig
    from fgrlhf.cli.train import TrainAppConfig
    from fgrlhf.errors import ConfigError
    from fgrlhf.policy.checkpoint import LOCAL_INITS
    from fgrlhf.runlock import check_writable
    from fgrlhf.toolkit.load import model_source
    from fgrlhf.train.ppo_run import config_problems
    from fgrlhf.validate import validate

    schemas = {"sft": (SFTAppConfig, "sft_overrides", lambda c: []),
               "train": (TrainAppConfig, "train_overrides", config_problems)}
    # Inside the running app Hydra is set up already; called directly, set it up here.
    outside = not GlobalHydra.instance().is_initialized()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3") if outside else contextlib.nullcontext():
        for stage, args in stage_arguments(cfg).items():
            schema, key, problems = schemas[stage]
            try:
                merged = OmegaConf.merge(OmegaConf.structured(schema), compose(config_name=stage, overrides=args))
                validate(merged, schema, problems(merged))
            except (HydraException, OmegaConfBaseException, ConfigError) as err:
                # Hydra's first line says what failed, its cause's first line why.
                lines = [(str(e).strip().splitlines() or [type(e).__name__])[0].rstrip(".") for e in (err, err.__cause__) if e]
                detail = str(err).strip() if isinstance(err, ConfigError) else ": ".join(lines)
                raise ConfigError(f"{key}: the fgrlhf-{stage} stage would refuse its settings: {detail}") from None
    if cfg.policy_init not in LOCAL_INITS:
        model_source(cfg.policy_init, "initial policy (policy_init)")
    rm_dir, sft_dir = Path(cfg.rm_dir), Path(cfg.sft_dir)
    if not all((rm_dir / k / "fgrlhf_rm.json").exists() for k in QA_CATEGORIES):
        check_writable(rm_dir, "reward models' folder (rm_dir)")
    if not (sft_dir / "fgrlhf_sft.json").exists():
        check_writable(sft_dir.parent, "SFT policy's folder (sft_dir)")


def shared_overrides(cfg: PipelineConfig) -> list[str]:
    """The settings every stage's command shares with the pipeline: the question split
    always, wandb and the runtime where the pipeline sets them."""
    args = [f"split.seed={cfg.split.seed}", f"split.dev_questions={cfg.split.dev_questions}",
            f"split.test_questions={cfg.split.test_questions}"]
    optional = {"wandb.mode": cfg.wandb.mode, "wandb.project": cfg.wandb.project, "device": cfg.device,
                "threads": cfg.threads}
    return args + [f"{k}={v}" for k, v in optional.items() if v is not None]


def _stage(n: int, total: int, title: str) -> float:
    print(f"\n[fgrlhf-pipeline] stage {n}/{total}: {title}", flush=True)
    return time.perf_counter()


def _command(module: str, *args: str) -> None:
    """Run one of the project's commands; its progress bars go straight to the terminal."""
    cmd = [sys.executable, "-m", f"fgrlhf.cli.{module}", *args]
    res = subprocess.run(cmd, cwd=PROJECT_ROOT)
    if res.returncode != 0:
        raise SystemExit(f"fgrlhf-pipeline: `{' '.join(cmd[2:])}` failed (exit {res.returncode}); "
                         "stages finished before it are kept and reused on the next run")


def alert_markdown(alerts: dict[str, list[int]]) -> str:
    """The report's banner: the reward-hacking alerts that fired while training, if any."""
    fired = {name: steps for name, steps in alerts.items() if steps}
    if not fired:
        return ""
    lines = "\n".join(f"> - `{name}`: iterations {', '.join(map(str, steps))}" for name, steps in fired.items())
    return (f"\n> **Reward-hacking alerts fired while training** (rules in `conf/alerts/`; marked on "
            f"`learning_curves.png`):\n{lines}\n")


def report_markdown(before: dict[str, Any], after: dict[str, Any], timings: dict[str, float],
                    train_summary: dict[str, Any], cfg: PipelineConfig) -> str:
    """The report: before/after table, where the outputs are, what the run was."""
    from fgrlhf.eval import EVAL_METRICS

    def cell(x):
        return "n/a" if x is None else f"{x:.3f}" if isinstance(x, float) else str(x)

    rows = ["| metric | SFT | fine-grained PPO | change |", "|---|---|---|---|"]
    for k in EVAL_METRICS:
        a, b = before.get(k), after.get(k)
        change = f"{b - a:+.3f}" if isinstance(a, (int, float)) and isinstance(b, (int, float)) else ""
        rows.append(f"| {k} | {cell(a)} | {cell(b)} | {change} |")
    steps = "\n".join(f"- {k}: {v:.0f} s" for k, v in timings.items())
    final = train_summary.get("final", {})
    rewards = ", ".join(f"{k} {v:+.3f}" for k, v in final.items() if k.startswith("reward/"))
    return f"""# fgrlhf pipeline report
{alert_markdown(train_summary.get("alerts", {}))}
Policy: `{cfg.policy_init}` after SFT (`{cfg.sft_dir}`), then fine-grained PPO with R1 + R2 + R3
(`{cfg.rm_dir}`); `fgrlhf-train {' '.join(cfg.train_overrides)}`.
Evaluated greedily on {after.get('questions')} held-out test questions (never seen by the
reward models, SFT or PPO).

{chr(10).join(rows)}

Ratios: share of sub-sentences (relevance, R1) and sentences (factuality, R2) judged
error-free; completeness: R3's score normalised by its training-set mean/std; ROUGE-Lsum ×100
against the references (best reference). Per-question answers with segment verdicts:
`eval_sft/outputs.jsonl`, `eval_ppo/outputs.jsonl`.

PPO, last iterations (per response, weighted): {rewards}.
Learning curves: `learning_curves.png`; before/after: `before_after.png`.

A CPU-scale run: a 6-layer MiniLM encoder-decoder and reward models trained on 300
questions. The metrics are judged by the same reward models PPO optimised, so gains in the
ratios show the optimiser works; whether answers truly got better needs the references
(ROUGE-Lsum) and reading `outputs.jsonl`.

Time per stage:
{steps}
"""
