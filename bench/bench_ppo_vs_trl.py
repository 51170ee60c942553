"""Seconds per PPO iteration: fgrlhf's ``PPOTrainer.step`` against TRL's PPO trainer, side by
side in one process, on the same tiny causal policy, batch and holistic reward model.

    python3 -m venv .venv-bench && .venv-bench/bin/pip install "torch==2.13.0" \
        && .venv-bench/bin/pip install -e ".[dev]" "trl==1.12.0"
    .venv-bench/bin/python bench/bench_ppo_vs_trl.py [--iterations 5] [--threads 2] [--device cpu]

Without TRL (e.g. ``.venv/bin/python bench/bench_ppo_vs_trl.py``) only fgrlhf's side runs and
the script says why. TRL's PPO trainer is ``trl.experimental.ppo.PPOTrainer``, which exists up
to trl 1.12.0 (trl ≥ 1.13 has none).

What is shared by both sides:
- the policy: a GPT-2 from ``fgrlhf.policy.tiny.build_tiny_gpt2`` (byte-level BPE trained on
  the bundled QA-Feedback prompts and answers; 4 layers × 256 by default), saved once in a
  temporary folder and loaded by each side; dropout set to 0 (TRL switches dropout off in
  every model; fgrlhf would otherwise run its update epochs with dropout);
- the batch: the first ``--prompts`` (8) QA-Feedback prompts, tokenised by the policy's
  tokenizer and cut to ``--max-prompt-tokens`` (128, the ``tiny_gpt2`` policy preset), and
  exactly ``--new-tokens`` (64) sampled tokens per prompt (temperature 0.7, no top-k/top-p).
  Exactly 64 because both sides suppress the EOS and pad token ids while sampling
  (``suppress_tokens``): fgrlhf through the policy's ``generation_config``, TRL by adding
  ``suppress_tokens`` to the ``GenerationConfig`` its loop builds (a wrapper around the name
  in TRL's module). The printout shows the measured response lengths of both sides;
- the reward: one holistic, sequence-level reward model, a ``GPT2ForSequenceClassification``
  (the policy's weights, a new scalar ``.score`` head, the policy's tokenizer) saved once.
  TRL calls it on the token ids it generated (``get_reward``: backbone + ``.score`` at the
  last response token). fgrlhf calls it through its ``RewardModel`` contract
  (``SequenceScoreReward`` below, granularity ``sequence``), inside a ``RewardAggregator``:
  decode with offsets → segment → re-tokenise prompt + answer text → the same model → one
  score placed on the answer's closing token;
- the value model: a separate backbone initialised from the policy (fgrlhf:
  ``ValueModel.for_policy(policy, separate=True)``; TRL: a ``GPT2ForSequenceClassification``
  loaded from the policy checkpoint, read through its ``.score`` head);
- a frozen reference copy of the policy for the per-token KL penalty (k1);
- 4 PPO epochs, each one optimizer step over one minibatch of all 8 rollouts (fgrlhf
  ``minibatch_size=8, grad_accum=1``; TRL ``per_device_train_batch_size=8,
  gradient_accumulation_steps=1, num_mini_batches=1``); AdamW (plain ``adamw_torch`` on TRL's
  side, as fgrlhf's ``torch.optim.AdamW``; ``--trl-optim`` to change); float32 everywhere
  (TRL's config defaults to bf16 and gradient checkpointing: both off here);
- ``torch.set_num_threads(--threads)`` (2), one seed.

What is timed (wall clock, ``time.perf_counter``), after one warm-up iteration that is not
counted, over ``--iterations`` iterations; the median (min, max) is printed:
- fgrlhf: one call of ``PPOTrainer.step(prompts, metadata)``: generate, old log-probs,
  reference log-probs, values, decode + segment + reward, KL penalty, GAE, 4 epochs;
- TRL: ``trainer.train()`` with ``total_episodes = (1 + iterations) × batch``, i.e.
  ``1 + iterations`` updates of its loop; a ``TrainerCallback`` takes the time between
  consecutive ``on_step_end`` calls (the first interval, from ``on_train_begin``, is the
  warm-up). One interval is one full pass of TRL's loop body: the next batch from its
  dataloader, generation, forward passes, reward, GAE, 4 epochs, its metrics/logging, its
  ``gc.collect()`` calls. TRL's generation time is taken by wrapping its module-level
  ``batch_generation``, and the response lengths its reward model saw by wrapping
  ``get_reward``; both wrappers only time and record, they call the originals.

The printout gives both medians, the generation share of each, and the ratio fgrlhf / TRL of
the median seconds per iteration (target ≤ 1.0×). The machine's load average is printed at
the start and end: other processes on a shared machine slow both sides.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # importing trl.experimental warns otherwise

import torch  # noqa: E402

from fgrlhf.reward import RewardAggregator, RewardInputs, SegmentScores  # noqa: E402
from fgrlhf.segment import Granularity, Span  # noqa: E402


class SequenceScoreReward:
    """A holistic reward model behind fgrlhf's contract: a Hugging Face sequence classifier
    with a scalar head (``GPT2ForSequenceClassification``), read at the last token of
    ``prompt ids + answer ids`` — what TRL's ``get_reward`` computes on its own token ids.

    It tokenises the prompt (cut to ``max_prompt_tokens``, as the policy cuts it) and the
    answer text itself; its one score per answer sits on the answer's only segment.
    """

    granularity = Granularity.SEQUENCE

    def __init__(self, model, tokenizer, max_prompt_tokens: int, device: torch.device | str) -> None:
        self.model = model.to(device).eval()
        self.model.requires_grad_(False)
        self.tokenizer = tokenizer
        self.max_prompt_tokens = max_prompt_tokens
        self.device = torch.device(device)

    @torch.no_grad()
    def score(self, inputs: RewardInputs, spans: Sequence[Sequence[Span]]) -> SegmentScores:
        prompts = self.tokenizer(list(inputs.prompts), truncation=True, max_length=self.max_prompt_tokens)["input_ids"]
        answers = self.tokenizer(list(inputs.texts), add_special_tokens=False)["input_ids"]
        seqs = [p + a for p, a in zip(prompts, answers)]
        width = max(len(s) for s in seqs)
        pad = self.tokenizer.pad_token_id
        ids = torch.full((len(seqs), width), pad, dtype=torch.long)  # [B, L] right-padded
        mask = torch.zeros((len(seqs), width), dtype=torch.long)  # [B, L]
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
            mask[i, : len(s)] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        position_ids = (mask.cumsum(dim=1) - 1).clamp(min=0)
        backbone = getattr(self.model, self.model.base_model_prefix)
        hidden = backbone(input_ids=ids, attention_mask=mask, position_ids=position_ids).last_hidden_state  # [B, L, H]
        last = mask.sum(dim=1) - 1  # [B] index of each row's last real token
        scores = self.model.score(hidden[torch.arange(len(seqs), device=self.device), last])[:, 0]  # [B]
        rows = [[0.0] * (len(row) - 1) + [float(s)] if row else [] for s, row in zip(scores.tolist(), spans)]
        return SegmentScores.from_lists(rows)


# ---------------------------------------------------------------------------------------
# Shared inputs
# ---------------------------------------------------------------------------------------
def build_models(scratch: Path, args) -> tuple[Path, Path]:
    """The tiny GPT-2 policy checkpoint (dropout 0) and the reward model checkpoint."""
    from transformers import AutoConfig, GPT2ForSequenceClassification

    from fgrlhf.data import load_feedback, load_prompts
    from fgrlhf.paths import DATA_DIR
    from fgrlhf.policy.tiny import build_tiny_gpt2

    prompts = load_prompts(DATA_DIR / "qa_feedback" / "prompts.json")
    feedback = load_feedback(DATA_DIR / "qa_feedback" / "feedback.json")
    texts = [p.text for p in prompts[:100]] + [t for ex in feedback[:100] for t in (*ex.predictions, ex.gold)]
    policy_dir = build_tiny_gpt2(scratch / "policy", texts, vocab_size=args.vocab_size, n_layer=args.n_layer,
                                 n_embd=args.n_embd, n_head=args.n_head, seed=args.seed)
    config = AutoConfig.from_pretrained(policy_dir)
    if not args.keep_dropout:
        config.resid_pdrop = config.embd_pdrop = config.attn_pdrop = config.summary_first_dropout = 0.0
        config.save_pretrained(policy_dir)
    torch.manual_seed(args.seed + 1)  # the new score head
    reward_dir = scratch / "reward"
    GPT2ForSequenceClassification.from_pretrained(policy_dir, num_labels=1).save_pretrained(reward_dir)
    return policy_dir, reward_dir


def bench_prompts(n: int) -> tuple[list[str], list[dict[str, Any]]]:
    from fgrlhf.data import load_prompts
    from fgrlhf.paths import DATA_DIR

    prompts = load_prompts(DATA_DIR / "qa_feedback" / "prompts.json")[:n]
    return [p.text for p in prompts], [{"question": p.question} for p in prompts]


PHASES = ("generate", "forward", "reward", "gae", "update")  # fgrlhf's time/* metrics


def summary(times: Sequence[float]) -> str:
    return f"{statistics.median(times):7.2f} s  (min {min(times):.2f}, max {max(times):.2f})"


# ---------------------------------------------------------------------------------------
# fgrlhf
# ---------------------------------------------------------------------------------------
def run_fgrlhf(policy_dir: Path, reward_dir: Path, prompts: list[str], metadata: list[dict], args) -> dict:
    from transformers import AutoTokenizer, GPT2ForSequenceClassification

    from fgrlhf.policy import Policy, SamplingConfig, ValueModel, make_reference
    from fgrlhf.train.ppo import PPOConfig, PPOTrainer

    torch.manual_seed(args.seed)
    policy = Policy.from_pretrained(str(policy_dir), "causal", args.max_prompt_tokens, args.device)
    tok = policy.tokenizer
    # Exactly --new-tokens tokens per response: EOS (and pad, for symmetry with TRL) never sampled.
    policy.model.generation_config.suppress_tokens = [tok.eos_token_id, tok.pad_token_id]
    value = ValueModel.for_policy(policy, separate=True)
    reference = make_reference(policy)
    rm_tok = AutoTokenizer.from_pretrained(policy_dir)
    rm = SequenceScoreReward(GPT2ForSequenceClassification.from_pretrained(reward_dir), rm_tok,
                             args.max_prompt_tokens, args.device)
    aggregator = RewardAggregator({"preference": rm})  # only the sequence granularity is ever segmented
    cfg = PPOConfig(kl_coef=0.05, gamma=1.0, lam=0.95, clip_eps=0.2, value_clip_eps=0.2, vf_coef=0.1,
                    ppo_epochs=args.ppo_epochs, minibatch_size=args.prompts, grad_accum=1, lr=3e-6)
    sampling = SamplingConfig(max_new_tokens=args.new_tokens, do_sample=True, top_k=0, top_p=1.0,
                              temperature=0.7, num_samples=1)
    trainer = PPOTrainer(policy, value, reference, aggregator, cfg, sampling)
    times, gen, lengths, phases = [], [], [], {p: [] for p in PHASES}
    for it in range(1 + args.iterations):
        t = time.perf_counter()
        metrics = trainer.step(prompts, metadata)
        elapsed = time.perf_counter() - t
        label = "warm-up" if it == 0 else f"{it}/{args.iterations}"
        print(f"  fgrlhf {label}: {elapsed:.2f} s (generate {metrics['time/generate']:.2f} s, "
              f"mean length {metrics['length/tokens']:.1f})", flush=True)
        if it:
            times.append(elapsed)
            gen.append(metrics["time/generate"])
            lengths.append(metrics["length/tokens"])
            for p in PHASES:
                phases[p].append(metrics[f"time/{p}"])
    n_params = sum(p.numel() for p in policy.model.parameters())
    return {"times": times, "generate": gen, "lengths": lengths, "params": n_params,
            "phases": {p: statistics.median(v) for p, v in phases.items()}}


# ---------------------------------------------------------------------------------------
# TRL
# ---------------------------------------------------------------------------------------
def run_trl(policy_dir: Path, reward_dir: Path, prompts: list[str], scratch: Path, args) -> dict:
    import trl
    import trl.experimental.ppo.ppo_trainer as trl_ppo
    from datasets import Dataset
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        GPT2ForSequenceClassification,
        TrainerCallback,
    )
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from trl.experimental.ppo import PPOConfig, PPOTrainer

    torch.manual_seed(args.seed)
    tok = AutoTokenizer.from_pretrained(policy_dir)
    tok.padding_side = "left"  # TRL generates from left-padded queries
    query_ids = tok(prompts, truncation=True, max_length=args.max_prompt_tokens)["input_ids"]
    dataset = Dataset.from_dict({"input_ids": query_ids})
    policy = AutoModelForCausalLM.from_pretrained(policy_dir)
    reference = copy.deepcopy(policy)
    value = GPT2ForSequenceClassification.from_pretrained(policy_dir, num_labels=1)
    reward = GPT2ForSequenceClassification.from_pretrained(reward_dir)

    suppress = [tok.eos_token_id, tok.pad_token_id]
    original_generation_config = trl_ppo.GenerationConfig
    original_batch_generation = trl_ppo.batch_generation
    original_get_reward = trl_ppo.get_reward
    gen_times: list[float] = []
    lengths: list[float] = []

    def generation_config(**kwargs):
        return original_generation_config(**kwargs, suppress_tokens=suppress)

    def batch_generation(*a, **kw):
        t = time.perf_counter()
        out = original_batch_generation(*a, **kw)
        gen_times.append(time.perf_counter() - t)
        return out

    def get_reward(model, query_responses, pad_token_id, context_length):
        out = original_get_reward(model, query_responses, pad_token_id, context_length)
        if model is trainer.reward_model:
            lengths.append(float((out[2] - context_length + 1).float().mean()))  # tokens up to the last real one
        return out

    class IterationTimer(TrainerCallback):
        def __init__(self) -> None:
            self.times: list[float] = []
            self.t = 0.0

        def on_train_begin(self, args, state, control, **kwargs):
            self.t = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            now = time.perf_counter()
            self.times.append(now - self.t)
            it = len(self.times) - 1
            label = "warm-up" if it == 0 else f"{it}/{cli_args.iterations}"
            g = gen_times[-1] if gen_times else float("nan")
            ln = lengths[-1] if lengths else float("nan")
            print(f"  TRL    {label}: {self.times[-1]:.2f} s (generate {g:.2f} s, mean length {ln:.1f})", flush=True)
            self.t = now

    cli_args = args
    config = PPOConfig(
        output_dir=str(scratch / "trl"), report_to="none", save_strategy="no", eval_strategy="no",
        per_device_train_batch_size=args.prompts, gradient_accumulation_steps=1, num_mini_batches=1,
        num_ppo_epochs=args.ppo_epochs, total_episodes=(1 + args.iterations) * args.prompts,
        local_rollout_forward_batch_size=args.prompts, response_length=args.new_tokens, temperature=0.7,
        stop_token=None, missing_eos_penalty=None, kl_coef=0.05, kl_estimator="k1", vf_coef=0.1,
        cliprange=0.2, cliprange_value=0.2, gamma=1.0, lam=0.95, learning_rate=3e-6,
        num_sample_generations=0, gradient_checkpointing=False, bf16=False, fp16=False,
        optim=args.trl_optim, seed=args.seed, use_cpu=torch.device(args.device).type == "cpu",
        dataloader_num_workers=0, disable_tqdm=True, logging_steps=1,
    )
    timer = IterationTimer()
    trainer = PPOTrainer(args=config, processing_class=tok, model=policy, ref_model=reference,
                         reward_model=reward, train_dataset=dataset, value_model=value, callbacks=[timer])
    for cb in (PrinterCallback, ProgressCallback):  # its per-step log printouts
        trainer.remove_callback(cb)
    trl_ppo.GenerationConfig = generation_config
    trl_ppo.batch_generation = batch_generation
    trl_ppo.get_reward = get_reward
    try:
        trainer.train()
    finally:
        trl_ppo.GenerationConfig = original_generation_config
        trl_ppo.batch_generation = original_batch_generation
        trl_ppo.get_reward = original_get_reward
    if len(timer.times) != 1 + args.iterations:
        raise RuntimeError(f"TRL ran {len(timer.times)} updates, expected {1 + args.iterations}")
    return {"times": timer.times[1:], "generate": gen_times[1:], "lengths": lengths[1:], "version": trl.__version__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=5, help="timed iterations per side, after 1 warm-up")
    parser.add_argument("--prompts", type=int, default=8, help="rollouts per iteration (one per prompt)")
    parser.add_argument("--new-tokens", type=int, default=64, help="sampled tokens per response (exactly)")
    parser.add_argument("--max-prompt-tokens", type=int, default=128)
    parser.add_argument("--ppo-epochs", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--n-layer", type=int, default=4)
    parser.add_argument("--n-embd", type=int, default=256)
    parser.add_argument("--n-head", type=int, default=4)
    parser.add_argument("--keep-dropout", action="store_true",
                        help="keep GPT-2's dropout 0.1 (TRL switches it off anyway; fgrlhf then trains with it)")
    parser.add_argument("--trl-optim", default="adamw_torch",
                        help="TRL's optimizer (TrainingArguments.optim); its default is adamw_torch_fused")
    parser.add_argument("--skip-trl", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.iterations < 1:
        parser.error("--iterations must be at least 1")

    import warnings

    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning)  # transformers 5 renames TRL still uses
    torch.set_num_threads(args.threads)
    trl_missing = None
    if not args.skip_trl:
        try:
            import trl  # noqa: F401
            from trl.experimental.ppo import PPOTrainer  # noqa: F401
        except ImportError as err:
            trl_missing = (f"TRL skipped: {err}. Its PPO trainer needs trl==1.12.0 in a separate venv: "
                           "python3 -m venv .venv-bench && .venv-bench/bin/pip install 'torch==2.13.0' && "
                           ".venv-bench/bin/pip install -e '.[dev]' 'trl==1.12.0'; then run this script "
                           "with .venv-bench/bin/python")
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        t = time.perf_counter()
        policy_dir, reward_dir = build_models(scratch, args)
        prompts, metadata = bench_prompts(args.prompts)
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(policy_dir)
        prompt_lens = [len(ids) for ids in tok(prompts, truncation=True, max_length=args.max_prompt_tokens)["input_ids"]]
        print(f"built the policy and reward model in {time.perf_counter() - t:.1f} s; "
              f"prompts: {len(prompts)}, {min(prompt_lens)}–{max(prompt_lens)} tokens")
        print("fgrlhf:", flush=True)
        fg = run_fgrlhf(policy_dir, reward_dir, prompts, metadata, args)
        tr = None
        if not args.skip_trl and trl_missing is None:
            print("TRL:", flush=True)
            tr = run_trl(policy_dir, reward_dir, prompts, scratch, args)
    load1 = os.getloadavg()

    print()
    print(f"PPO iteration: {args.prompts} prompts × {args.new_tokens} new tokens, {args.ppo_epochs} PPO epochs × "
          f"1 minibatch of {args.prompts}, separate value model, reference KL, one holistic RM")
    print(f"policy: tiny GPT-2, {args.n_layer} layers × {args.n_embd}, vocab {args.vocab_size} "
          f"({fg['params'] / 1e6:.1f} M parameters), prompts ≤ {args.max_prompt_tokens} tokens; "
          f"device {args.device}, {torch.get_num_threads()} torch threads; torch {torch.__version__}")
    print(f"load average (1/5/15 min): start {load0[0]:.2f}/{load0[1]:.2f}/{load0[2]:.2f}, "
          f"end {load1[0]:.2f}/{load1[1]:.2f}/{load1[2]:.2f}; {os.cpu_count()} CPUs")
    print(f"seconds per iteration, median of {args.iterations} after 1 warm-up:")
    print(f"  fgrlhf PPOTrainer.step      {summary(fg['times'])}   generate {statistics.median(fg['generate']):.2f} s, "
          f"mean response length {statistics.mean(fg['lengths']):.1f}")
    print("    fgrlhf phases (median s): " + ", ".join(f"{p} {v:.2f}" for p, v in fg["phases"].items()))
    if tr is None:
        print(f"  TRL                         -- {trl_missing or 'skipped (--skip-trl)'}")
        return
    print(f"  TRL {tr['version']} PPOTrainer     {summary(tr['times'])}   generate "
          f"{statistics.median(tr['generate']):.2f} s, mean response length {statistics.mean(tr['lengths']):.1f}")
    fg_rest = [a - b for a, b in zip(fg["times"], fg["generate"])]
    tr_rest = [a - b for a, b in zip(tr["times"], tr["generate"])]
    ratio = statistics.median(fg["times"]) / statistics.median(tr["times"])
    print(f"  without generation: fgrlhf {statistics.median(fg_rest):.2f} s, TRL {statistics.median(tr_rest):.2f} s "
          f"({statistics.median(fg_rest) / statistics.median(tr_rest):.2f}×)")
    verdict = "meets" if ratio <= 1.0 else "misses"
    print(f"ratio fgrlhf / TRL (median s/iteration): {ratio:.2f}×  ({verdict} the target ≤ 1.0×)")


if __name__ == "__main__":
    sys.exit(main())
