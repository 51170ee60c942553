"""Where one fgrlhf PPO iteration spends its time and memory: the fine-grained reward (R1 + R2 +
R3, ``conf/reward/fine_grained.yaml``) against the holistic one (the preference RM alone,
``conf/reward/holistic.yaml``), with the same policy, batch and PPO settings.

    .venv/bin/python bench/bench_ppo_phases.py [--iterations 2] [--policy minilm_seq2seq|tiny_gpt2|PATH]
        [--prompts 8] [--samples 1] [--new-tokens 64] [--rm-dir runs/rm] [--rm-bf16 config|on|off]
        [--device cpu|cuda] [--threads 2]

One iteration is one ``fgrlhf.train.ppo.PPOTrainer.step`` call; its metrics give the phases:
``time/generate`` (sampling), ``time/forward`` (old log-probs, reference log-probs, values),
``time/reward`` (decode with offsets, segmentation, span alignment, every reward model, the
aggregator), ``time/gae`` (KL penalty, GAE, whitening), ``time/update`` (the PPO epochs) and
``time/iteration`` (all of it). The table shows the median of each over ``--iterations``
iterations after one warm-up iteration, for both rewards, and their ratio (target for the whole
iteration: fine-grained ≤ 1.5× holistic).

Setup, the same for both rewards:
- policy: ``--policy`` (default the MiniLM encoder-decoder of ``fgrlhf.policy.checkpoint.base_checkpoint``,
  built once under runs/base/; ``tiny_gpt2`` or a checkpoint path, e.g. an SFT run, also work),
  its prompt-length limit and value-model arrangement from ``conf/policy/<name>.yaml`` (MiniLM:
  256 tokens, separate value model; ``--value`` overrides), a frozen reference copy;
- batch: the first ``--prompts`` (8) prompts of the QA-Feedback training split with their
  metadata (question, passages) from ``fgrlhf.data.tasks``, ``--samples`` (1) responses each of
  exactly ``--new-tokens`` (64) tokens (``min_new_tokens`` on the policy's generation config
  holds EOS back; ``--natural-length`` lets responses end at EOS), top-k 20, temperature 0.7;
- PPO: ``PPOConfig()`` (the paper's preset: 4 epochs, minibatch 8), seed 0, torch threads fixed.
- reward models: the checkpoints in ``--rm-dir`` (default runs/rm/{relevance,factuality,
  completeness,preference}) where they exist; a missing one is made in a temporary folder by
  ``fgrlhf-rm``'s recipe ``fgrlhf.train.rm_run.run`` (its Hydra config composed in this
  process), trained for one step on the first 16 bundled questions: the same architecture,
  tokenizer and metadata as a real run, and the speed of scoring does not depend on the weights. Each model's settings (scale, label values,
  ``bf16``) come from the reward config; ``--rm-bf16 on|off`` overrides ``bf16``.

Each reward's trainer lives in a process of its own, so that its peak memory is its own; the
two processes take turns, one iteration at a time in alternating order (fine-grained,
holistic, holistic, fine-grained, ...), so that a change of load on a shared machine hits
both alike, and never run at the same time. Memory: on CPU the peak
resident set size (VmHWM, reset through /proc/self/clear_refs before every iteration) minus the
resident size just before the iteration, for the first iteration (gradients and AdamW state are
allocated there) and the largest over later ones, and the largest peak itself (models
included); on CUDA the same from ``torch.cuda.max_memory_allocated`` (reset before every
iteration) and ``torch.cuda.memory_allocated``. The machine's load average is printed: other
processes on a shared machine slow both runs. The untrained MiniLM policy writes words without
punctuation, so each response is one segment at every granularity (printed as "segments per
response"); R1/R2 read one window per answer whatever its number of segments, so this changes
the reward models' cost little, the segmenter's more. On 2 idle CPU cores the default run takes about
5 minutes (about 1 of it making stand-in reward models when runs/rm/ has none).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

from fgrlhf.paths import CONF_DIR, DATA_DIR, PROJECT_ROOT  # noqa: E402

REWARDS = {"fine_grained": ("relevance", "factuality", "completeness"), "holistic": ("preference",)}
PHASES = ("generate", "forward", "reward", "gae", "update", "iteration")
RESULT = "@@bench_ppo_phases "
N_QUESTIONS = 16  # bundled questions an untrained stand-in reward model is made from


# ---------------------------------------------------------------------------------------
# Reward-model checkpoints
# ---------------------------------------------------------------------------------------
def reward_checkpoints(rm_dir: Path, scratch: Path, threads: int) -> dict[str, tuple[Path, str]]:
    """category → (checkpoint, how it was made), building the missing ones with fgrlhf-rm."""
    out: dict[str, tuple[Path, str]] = {}
    feedback = None
    for category in sorted({c for cats in REWARDS.values() for c in cats}):
        trained = rm_dir / category
        if (trained / "fgrlhf_rm.json").exists():
            out[category] = (trained, f"checkpoint {trained}")
            continue
        if feedback is None:
            with open(DATA_DIR / "qa_feedback" / "feedback.json") as f:
                data = json.load(f)[:N_QUESTIONS]
            feedback = scratch / f"feedback_{N_QUESTIONS}.json"
            feedback.write_text(json.dumps(data))
        path = scratch / "rm" / category
        t = time.perf_counter()
        # fgrlhf-rm's recipe (fgrlhf.train.rm_run.run, with the app's Hydra config composed here
        # rather than in a new process) on the first N_QUESTIONS questions, one optimizer step (one batch holds every
        # training example), float32: the weights do not change how long scoring takes. Dev
        # needs a few questions: R3's ranking pairs are sparse.
        train_rm([f"rm={category}", f"feedback_file={feedback}", f"checkpoint={path}", "split.dev_questions=6",
                  "split.test_questions=2", "rm.optim.epochs=1", f"rm.optim.batch_size={N_QUESTIONS}",
                  "rm.optim.bf16=false", "wandb.mode=disabled", f"threads={threads}"], scratch / category)
        out[category] = (path, f"untrained stand-in, 1 step of fgrlhf-rm ({time.perf_counter() - t:.0f} s)")
    return out


def train_rm(overrides: list[str], workdir: Path) -> None:
    """``fgrlhf-rm OVERRIDES`` in this process (the app's config, the library's recipe), its
    printout kept unless it fails."""
    import contextlib
    import io

    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from fgrlhf.cli.rm import RMAppConfig
    from fgrlhf.paths import register_resolvers
    from fgrlhf.train.rm_run import run

    register_resolvers()
    workdir.mkdir(parents=True, exist_ok=True)
    log, cwd = io.StringIO(), os.getcwd()
    try:
        os.chdir(workdir)  # its metrics.jsonl goes to the working directory outside a Hydra run
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log), \
                initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            run(OmegaConf.merge(OmegaConf.structured(RMAppConfig), compose("rm", overrides=overrides)))
    except Exception:
        print(log.getvalue()[-3000:], file=sys.stderr)
        raise
    finally:
        os.chdir(cwd)


# ---------------------------------------------------------------------------------------
# One reward configuration, in its own process
# ---------------------------------------------------------------------------------------
def _status_kib(key: str) -> int:
    with open("/proc/self/status") as f:
        m = re.search(rf"^{key}:\s+(\d+) kB", f.read(), re.MULTILINE)
    return int(m.group(1)) if m else 0


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS (Linux ≥ 4.0)
        return True
    except OSError:
        return False


def build_aggregator(reward: str, checkpoints: dict[str, str], device: str, bf16: str):
    """``conf/reward/<reward>.yaml`` through the library's builder, with the benchmark's
    checkpoints, device and bf16 setting; also which models run in bf16."""
    from omegaconf import OmegaConf

    from fgrlhf.paths import register_resolvers
    from fgrlhf.train.config import RewardConfig
    from fgrlhf.train.rewards import build_aggregator as build

    register_resolvers()
    cfg = OmegaConf.merge(OmegaConf.structured(RewardConfig), OmegaConf.load(CONF_DIR / "reward" / f"{reward}.yaml"))
    for k, node in cfg.models.items():
        node.checkpoint = checkpoints[k]
        node.device = device
        if bf16 != "config":
            node.bf16 = bf16 == "on"
    aggregator = build(cfg)
    return aggregator, {k: bool(getattr(r, "bf16", False)) for k, r in aggregator.rewards.items()}


class _Recorder:
    """Calls the aggregator and keeps its last output (for the segment counts)."""

    def __init__(self, aggregator) -> None:
        self.aggregator = aggregator
        self.last = None

    def __call__(self, *args, **kwargs):
        self.last = self.aggregator(*args, **kwargs)
        return self.last

    def __getattr__(self, name):
        return getattr(self.aggregator, name)


def serve(args) -> None:
    """The child process: set up one reward's trainer, say so, then run one iteration per
    ``step`` line on stdin and print its figures, until ``quit``."""
    import torch
    import transformers
    from omegaconf import OmegaConf

    from fgrlhf.data.tasks import qa_feedback_task, split_task
    from fgrlhf.policy import Policy, SamplingConfig, ValueModel, make_reference
    from fgrlhf.policy.checkpoint import LOCAL_INITS, base_checkpoint
    from fgrlhf.train.ppo import PPOConfig, PPOTrainer

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    cuda = device.type == "cuda"

    preset = OmegaConf.load(CONF_DIR / "policy" / f"{args.policy}.yaml") if args.policy in LOCAL_INITS else None
    max_prompt = args.max_prompt_tokens or (preset.max_prompt_tokens if preset else 256)
    separate = (args.value or (preset.value if preset else "separate")) == "separate"
    policy = Policy.from_pretrained(base_checkpoint(args.policy), "auto", max_prompt, device)
    if not args.natural_length:
        policy.model.generation_config.min_new_tokens = args.new_tokens
    value = ValueModel.for_policy(policy, separate)
    reference = make_reference(policy)
    aggregator, bf16 = build_aggregator(args.only, json.loads(args.checkpoints), args.device, args.rm_bf16)
    recorder = _Recorder(aggregator)
    _, parts = split_task(qa_feedback_task(DATA_DIR / "qa_feedback" / "prompts.json"), 40, 60, 0)
    batch = parts["train"][: args.prompts]
    prompts, metadata = [ex.prompt for ex in batch], [ex.metadata for ex in batch]
    sampling = SamplingConfig(max_new_tokens=args.new_tokens, do_sample=True, top_k=20, temperature=0.7,
                              num_samples=args.samples)
    trainer = PPOTrainer(policy, value, reference, recorder, PPOConfig(), sampling)  # type: ignore[arg-type]
    can_reset = _reset_peak_rss()
    print(RESULT + json.dumps({
        "bf16": bf16, "rss_reset": can_reset, "policy_kind": policy.kind, "separate_value": separate,
        "max_prompt_tokens": max_prompt, "params": sum(p.numel() for p in policy.model.parameters())}), flush=True)

    for line in sys.stdin:
        if line.strip() != "step":
            break
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
        else:
            _reset_peak_rss()
            before = _status_kib("VmRSS") * 1024
        metrics = trainer.step(prompts, metadata)
        if cuda:
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated()
        else:
            peak = _status_kib("VmHWM") * 1024
        print(RESULT + json.dumps({
            "phases": {p: metrics[f"time/{p}"] for p in PHASES}, "peak": peak, "increase": peak - before,
            "length": metrics["length/tokens"],
            "segments": {k: sum(len(r) for r in rows) / max(1, len(rows))
                         for k, rows in recorder.last.spans.items()}}), flush=True)


class Child:
    """One reward's trainer in its own process (``serve``)."""

    def __init__(self, reward: str, cmd: list[str]) -> None:
        self.reward = reward
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.info = self.read()

    def read(self) -> dict:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            if line.startswith(RESULT):
                return json.loads(line[len(RESULT):])
        raise SystemExit(f"the {self.reward} process ended (exit {self.proc.wait()}) before answering")

    def step(self) -> dict:
        self.proc.stdin.write("step\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        return self.read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write("quit\n")  # type: ignore[union-attr]
            self.proc.stdin.close()  # type: ignore[union-attr]
        self.proc.wait()


def summarise(runs: list[dict]) -> dict:
    """Medians of the phases over the timed iterations (``runs[0]`` is the warm-up)."""
    timed = runs[1:]
    counts: dict[str, list[float]] = {}
    for r in runs:
        for k, v in r["segments"].items():
            counts.setdefault(k, []).append(v)
    return {
        "phases": {p: statistics.median(r["phases"][p] for r in timed) for p in PHASES},
        "peak_increase_first": runs[0]["increase"],
        "peak_increase_later": max(r["increase"] for r in timed),
        "peak_absolute": max(r["peak"] for r in runs),
        "segments_per_response": {k: statistics.mean(v) for k, v in counts.items()},
        "length": statistics.mean(r["length"] for r in timed),
    }


# ---------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------
def mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=2, help="timed iterations per reward, after 1 warm-up")
    parser.add_argument("--policy", default="minilm_seq2seq", help="minilm_seq2seq | tiny_gpt2 | a checkpoint path")
    parser.add_argument("--value", choices=("separate", "shared"), default=None,
                        help="value model (default: the policy preset's; separate for a path)")
    parser.add_argument("--max-prompt-tokens", type=int, default=None, help="default: the policy preset's")
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--samples", type=int, default=1, help="responses per prompt")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--natural-length", action="store_true", help="let responses stop at EOS")
    parser.add_argument("--rm-dir", type=Path, default=PROJECT_ROOT / "runs" / "rm")
    parser.add_argument("--rm-bf16", choices=("config", "on", "off"), default="config",
                        help="bfloat16 autocast in the reward models (default: as the reward config says)")
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=tuple(REWARDS), help=argparse.SUPPRESS)  # child process
    parser.add_argument("--checkpoints", help=argparse.SUPPRESS)  # child process: JSON category → path
    args = parser.parse_args()
    if args.iterations < 1:
        parser.error("--iterations must be at least 1")
    if args.device is None:
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"

    if args.only:
        serve(args)
        return

    load0 = os.getloadavg()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        made = reward_checkpoints(args.rm_dir, Path(tmp), args.threads)
        for k, (_, how) in made.items():
            print(f"reward model {k}: {how}", flush=True)
        checkpoints = json.dumps({k: str(p) for k, (p, _) in made.items()})
        children: dict[str, Child] = {}
        try:
            for reward in REWARDS:
                cmd = [sys.executable, __file__, "--only", reward, "--checkpoints", checkpoints,
                       "--policy", args.policy, "--prompts", str(args.prompts), "--samples", str(args.samples),
                       "--new-tokens", str(args.new_tokens), "--rm-bf16", args.rm_bf16, "--device", args.device,
                       "--threads", str(args.threads), "--seed", str(args.seed)]
                if args.value:
                    cmd += ["--value", args.value]
                if args.max_prompt_tokens:
                    cmd += ["--max-prompt-tokens", str(args.max_prompt_tokens)]
                if args.natural_length:
                    cmd.append("--natural-length")
                t = time.perf_counter()
                children[reward] = Child(reward, cmd)
                print(f"{reward}: set up in its own process ({time.perf_counter() - t:.0f} s)", flush=True)
            runs: dict[str, list[dict]] = {r: [] for r in REWARDS}
            for it in range(1 + args.iterations):
                # Take turns, in alternating order, so that a change of load hits both alike.
                for reward in (list(REWARDS) if it % 2 == 0 else list(reversed(REWARDS))):
                    runs[reward].append(children[reward].step())
                    label = "warm-up" if it == 0 else f"{it}/{args.iterations}"
                    print(f"  {reward} {label}: " + ", ".join(
                        f"{p} {v:.2f} s" for p, v in runs[reward][-1]["phases"].items()), flush=True)
        finally:
            for child in children.values():
                child.close()
        results = {r: {**children[r].info, **summarise(runs[r])} for r in REWARDS}
    load1 = os.getloadavg()

    fg, ho = results["fine_grained"], results["holistic"]
    print()
    print(f"PPO iteration: {args.prompts} prompts × {args.samples} sample(s) × {fg['length']:.0f} new tokens "
          f"(mean), PPOConfig() (4 epochs, minibatch 8); policy {args.policy} ({fg['policy_kind']}, "
          f"{fg['params'] / 1e6:.1f} M parameters, prompts ≤ {fg['max_prompt_tokens']} tokens, "
          f"{'separate' if fg['separate_value'] else 'shared'} value model); device {args.device}, "
          f"{args.threads} torch threads")
    print("reward models, bf16 autocast: " + ", ".join(f"{k} {'on' if v else 'off'}"
                                                       for r in (fg, ho) for k, v in r["bf16"].items()))
    print("segments per response: " + ", ".join(f"{k} {v:.1f}" for r in (fg, ho)
                                                 for k, v in r["segments_per_response"].items()))
    print(f"load average (1/5/15 min): start {load0[0]:.2f}/{load0[1]:.2f}/{load0[2]:.2f}, "
          f"end {load1[0]:.2f}/{load1[1]:.2f}/{load1[2]:.2f}; {os.cpu_count()} CPUs; "
          f"whole bench {time.perf_counter() - t0:.0f} s")
    print()
    print(f"median seconds over {args.iterations} iteration(s) after 1 warm-up")
    print(f"{'phase':<12}{'fine-grained s':>16}{'holistic s':>14}{'ratio':>9}")
    for p in PHASES:
        a, b = fg["phases"][p], ho["phases"][p]
        ratio = f"{a / b:.2f}×" if b > 0 else "-"
        print(f"{('whole iteration' if p == 'iteration' else p):<12}{a:>16.2f}{b:>14.2f}{ratio:>9}")
    whole = fg["phases"]["iteration"] / ho["phases"]["iteration"]
    print(f"whole-iteration ratio fine-grained / holistic: {whole:.2f}×  "
          f"({'meets' if whole <= 1.5 else 'misses'} the target ≤ 1.5×)")
    print()
    what = "CUDA max_memory_allocated" if args.device.startswith("cuda") else "peak RSS (VmHWM)"
    print(f"{'memory (' + what + ')':<44}{'fine-grained':>14}{'holistic':>14}")
    print(f"{'  increase over the start, first iteration':<44}{mib(fg['peak_increase_first']):>14}"
          f"{mib(ho['peak_increase_first']):>14}")
    print(f"{'  increase over the start, later iterations':<44}{mib(fg['peak_increase_later']):>14}"
          f"{mib(ho['peak_increase_later']):>14}")
    print(f"{'  peak during an iteration, models included':<44}{mib(fg['peak_absolute']):>14}"
          f"{mib(ho['peak_absolute']):>14}")
    if not args.device.startswith("cuda") and not (fg["rss_reset"] and ho["rss_reset"]):
        print("  (/proc/self/clear_refs was not writable: each peak is the process's peak since it started)")


if __name__ == "__main__":
    main()
