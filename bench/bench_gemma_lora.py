"""One PPO iteration of Gemma 3 270M: LoRA against full fine-tuning, the reference as the
policy with its adapters off against a copy of its weights, and the LM head computed only at
the response positions against at every position.

    .venv/bin/python bench/bench_gemma_lora.py [--policy gemma3_270m|PATH] [--prompts 4] [--samples 2]
        [--new-tokens 32] [--prompt-tokens 256] [--threads 1] [--lora-r 16] [--bf16 auto|on|off]

Setup, the same for every case: the first ``--prompts`` QA-Feedback training questions as
causal prompts (``fgrlhf.data.prompt_format``) capped by relevance at ``--prompt-tokens``,
``--samples`` responses each of exactly ``--new-tokens`` tokens (EOS held back), top-k 20 at
temperature 0.7; the model-free rewards of ``conf/reward/rules.yaml`` (the reward's cost is
not what is measured); a value head on the policy's trunk; PPO with one epoch over
minibatches of 4; AdamW over what trains; bf16 autocast where the CPU computes it fast.

Cases (each in a process of its own, so that its peak memory is its own):
- ``lora``: adapters (r=``--lora-r``, every linear layer of the trunk), reference = adapters off;
- ``lora+copy``: the same, with the reference a frozen copy of the weights (the memory a copy costs);
- ``lora+full-head``: ``lora`` with the LM head run at every position of prompt and response;
- ``full``: full fine-tuning, reference = a frozen copy (the only reference it can have).

Columns: the iteration's time and phases (``time/*`` metrics of ``PPOTrainer.step``) and the
process's peak resident memory (VmHWM) over model loading and the iteration; the head-only
speed-up is the ``lora+full-head`` row against ``lora``, the memory a copied reference costs
the ``lora+copy`` row against ``lora``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

CASES = ("lora", "lora+copy", "lora+full-head", "full")


def peak_rss_gib() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    return float("nan")


def run_case(case: str, args) -> dict:
    import copy

    import torch
    from accelerate import Accelerator
    from omegaconf import OmegaConf

    from fgrlhf.config import SplitConfig
    from fgrlhf.device import resolve_bf16
    from fgrlhf.paths import PROJECT_ROOT
    from fgrlhf.policy import Policy, SamplingConfig, ValueModel, make_reference
    from fgrlhf.policy import model as policy_model
    from fgrlhf.policy.checkpoint import base_checkpoint
    from fgrlhf.policy.lora import LoRAConfig
    from fgrlhf.train.config import RewardConfig, TaskConfig, set_up_runtime
    from fgrlhf.train.ppo import PPOConfig, PPOTrainer
    from fgrlhf.train.rewards import build_aggregator
    from fgrlhf.train.tasks import load_task

    set_up_runtime(args.threads)
    torch.manual_seed(0)
    path = base_checkpoint(args.policy)
    task = TaskConfig(prompts_file=str(PROJECT_ROOT / "data" / "qa_feedback" / "prompts.json"),
                      prompt_format="causal", max_prompt_tokens=args.prompt_tokens, tokenizer=path)
    examples = load_task(task, SplitConfig())["train"][: args.prompts]
    lora = LoRAConfig(r=args.lora_r, alpha=2 * args.lora_r) if case != "full" else None
    policy = Policy.from_pretrained(path, "causal", args.prompt_tokens, "cpu", lora=lora)
    if case in ("lora+copy", "full"):
        reference = copy.deepcopy(hf_base(policy.model)).eval().requires_grad_(False)
    else:
        reference = make_reference(policy)
    if case == "lora+full-head":
        policy_model.head_at_response_only = lambda model: False
    value = ValueModel.for_policy(policy, separate=False)
    reward = build_aggregator(OmegaConf.merge(OmegaConf.structured(RewardConfig),
                                              OmegaConf.load(PROJECT_ROOT / "conf" / "reward" / "rules.yaml")))
    bf16 = resolve_bf16({"auto": None, "on": True, "off": False}[args.bf16], "cpu")
    accelerator = Accelerator(cpu=True, mixed_precision="bf16" if bf16 else "no")
    # Every response exactly --new-tokens long (EOS held back), whatever the weights.
    sampling = SamplingConfig(max_new_tokens=args.new_tokens, num_samples=args.samples, min_new_tokens=args.new_tokens)
    trainer = PPOTrainer(policy, value, reference, reward, PPOConfig(ppo_epochs=1, minibatch_size=4, lr=1e-4),
                         sampling, accelerator=accelerator)
    trainable = sum(p.numel() for p in policy.model.parameters() if p.requires_grad)
    t = time.perf_counter()
    metrics = trainer.step([ex.prompt for ex in examples], [ex.metadata for ex in examples])
    seconds = time.perf_counter() - t
    return {"case": case, "seconds": seconds, "peak_gib": peak_rss_gib(), "trainable": trainable, "bf16": bf16,
            **{k: v for k, v in metrics.items() if k.startswith("time/")},
            "prompt_tokens": int(trainer.policy.encode_prompts([ex.prompt for ex in examples])[0].shape[1])}


def hf_base(model):
    """The plain weights of a policy's model (a LoRA model's base, without adapters)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policy", default="gemma3_270m")
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--samples", type=int, default=2)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--prompt-tokens", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--bf16", choices=("auto", "on", "off"), default="auto")
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)
    parser.add_argument("--cases", default=",".join(CASES), help="which cases, comma-separated")
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args)))
        return
    rows = []
    passed = [a for a in sys.argv[1:] if not a.startswith("--cases")]
    for case in args.cases.split(","):
        res = subprocess.run([sys.executable, __file__, *passed, "--case", case], capture_output=True, text=True)
        if res.returncode != 0:
            raise SystemExit(f"case {case} failed:\n{res.stderr[-3000:]}")
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
        print(f"  {case}: {rows[-1]['seconds']:.1f} s", file=sys.stderr, flush=True)
    print(f"Gemma PPO iteration: {args.prompts} prompts × {args.samples} samples, {args.new_tokens} new tokens, "
          f"prompts ≤ {args.prompt_tokens} tokens, {args.threads} thread(s), bf16 autocast {rows[0]['bf16']}")
    print(f"{'case':<17}{'trainable':>12}{'iteration s':>13}{'generate':>10}{'forward':>9}{'update':>9}{'peak GiB':>10}")
    for r in rows:
        print(f"{r['case']:<17}{r['trainable']:>12,}{r['seconds']:>13.1f}{r['time/generate']:>10.1f}"
              f"{r['time/forward']:>9.1f}{r['time/update']:>9.1f}{r['peak_gib']:>10.2f}")
    by = {r["case"]: r for r in rows}
    if "lora" in by and "lora+full-head" in by:
        a, b = by["lora+full-head"], by["lora"]
        print(f"LM head only at response positions: forward {a['time/forward'] / b['time/forward']:.2f}×, "
              f"update {a['time/update'] / b['time/update']:.2f}×, iteration {a['seconds'] / b['seconds']:.2f}× faster")
    if "lora" in by and "lora+copy" in by:
        print(f"reference as adapters off instead of a copy: {by['lora+copy']['peak_gib'] - by['lora']['peak_gib']:.2f} GiB "
              "less peak memory")


if __name__ == "__main__":
    main()
