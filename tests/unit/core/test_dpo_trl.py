"""fgrlhf's DPO losses against TRL's (``trl==1.12.0``, the optional ``bench`` dependency) on
random logits, masks and reference log-probs.

TRL 1.12 has no standalone loss function: ``DPOTrainer._compute_loss(model, inputs)`` turns a
model's logits over ``[chosen..., rejected...]`` rows into the loss. It runs here on a plain
object carrying the trainer attributes it reads (their values from ``trl.DPOConfig``'s
defaults) and a stand-in model returning fixed random logits; the sequence log-probs it
sums are computed independently here (log-softmax, gather, mask) and given to
``fgrlhf.core.dpo.dpo_loss``.

- sigmoid: TRL's ``sigmoid`` loss.
- ipo: TRL divides each log-ratio by the completion's token count; ``fgrlhf-dpo`` does the
  same (``fgrlhf.train.dpo.pair_terms``), so both are compared on per-token means.
- label smoothing (conservative DPO): TRL 1.12's ``sigmoid`` no longer reads it; its ``aot``
  loss is that smoothed loss on sorted log-ratio differences, which for a single pair is the
  pair itself, so it is compared pair by pair.
"""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch

trl = pytest.importorskip("trl")

from fgrlhf.core.dpo import dpo_loss  # noqa: E402
from fgrlhf.train.dpo import DPOConfig, pair_terms  # noqa: E402

N, L, V, PROMPT = 5, 14, 11, 4  # pairs, row length, vocabulary, prompt tokens


class _Accelerator:
    device = torch.device("cpu")

    @staticmethod
    def gather(x):
        return x

    gather_for_metrics = gather


def _trainer(tmp_path, loss_type: str, beta: float, label_smoothing: float = 0.0):
    """The attributes ``DPOTrainer._compute_loss`` reads, as ``DPOTrainer.__init__`` sets them."""
    args = trl.DPOConfig(output_dir=str(tmp_path), loss_type=[loss_type], beta=beta, label_smoothing=label_smoothing,
                         precompute_ref_log_probs=True, use_cpu=True, report_to=[])
    return SimpleNamespace(
        model=SimpleNamespace(training=True), accelerator=_Accelerator(), aux_loss_enabled=False,
        beta=args.beta, precompute_ref_logps=args.precompute_ref_log_probs, loss_types=args.loss_type,
        loss_weights=args.loss_weights or [1.0] * len(args.loss_type), ld_alpha=args.ld_alpha,
        f_divergence_type=args.f_divergence_type, f_alpha_divergence_coef=args.f_alpha_divergence_coef,
        label_smoothing=args.label_smoothing, use_weighting=args.use_weighting, args=args,
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)}, _total_train_tokens=0)


def _random_batch(seed: int):
    """Logits ``[2N, L, V]`` and TRL's inputs: ``PROMPT`` prompt tokens, then completions of
    random lengths (then padding), reference log-probs drawn at random."""
    g = torch.Generator().manual_seed(seed)
    logits = 3 * torch.randn(2 * N, L, V, generator=g, dtype=torch.float64)
    input_ids = torch.randint(0, V, (2 * N, L), generator=g)
    lengths = torch.randint(1, L - PROMPT + 1, (2 * N,), generator=g)
    position = torch.arange(L)
    completion = ((position >= PROMPT) & (position < PROMPT + lengths[:, None])).long()  # [2N, L]
    attention = (position < PROMPT + lengths[:, None]).long()
    ref = -20 * torch.rand(2 * N, generator=g, dtype=torch.float64)
    inputs = {"input_ids": input_ids, "attention_mask": attention, "completion_mask": completion,
              "ref_chosen_logps": ref[:N], "ref_rejected_logps": ref[N:]}
    return logits, inputs


def _trl_loss(tmp_path, loss_type, beta, logits, inputs, label_smoothing=0.0):
    def model(**kwargs):
        return SimpleNamespace(logits=logits)

    trainer = _trainer(tmp_path, loss_type, beta, label_smoothing)
    return trl.DPOTrainer._compute_loss(trainer, model, inputs, return_outputs=False)


def _sequence_logps(logits, inputs):
    """Σ over completion tokens of log p(token): position t − 1 predicts token t. ``[2N]``."""
    logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, inputs["input_ids"][:, 1:, None]).squeeze(-1)
    return (logp * inputs["completion_mask"][:, 1:]).sum(dim=1)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("beta", [0.1, 0.5])
def test_sigmoid_loss_matches_trl(tmp_path, seed, beta):
    logits, inputs = _random_batch(seed)
    logps = _sequence_logps(logits, inputs)
    ours = dpo_loss(logps[:N], logps[N:], inputs["ref_chosen_logps"], inputs["ref_rejected_logps"], beta).mean()
    theirs = _trl_loss(tmp_path, "sigmoid", beta, logits, inputs)
    torch.testing.assert_close(ours, theirs.to(ours.dtype))
    assert 0.0 < float(ours) < 50.0  # a real loss, not a degenerate one


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("beta", [0.1, 0.5])
def test_ipo_loss_on_per_token_means_matches_trl(tmp_path, seed, beta):
    logits, inputs = _random_batch(seed)
    logps = _sequence_logps(logits, inputs)
    n = inputs["completion_mask"].sum(dim=1).double()
    ref = torch.cat([inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]])
    theirs = _trl_loss(tmp_path, "ipo", beta, logits, inputs)
    ours = dpo_loss(logps[:N] / n[:N], logps[N:] / n[N:], ref[:N] / n[:N], ref[N:] / n[N:], beta, "ipo").mean()
    torch.testing.assert_close(ours, theirs.to(ours.dtype))
    # fgrlhf-dpo's per-pair terms, from sequence log-probs and token counts, give the same loss
    cfg = DPOConfig(beta=beta, loss_type="ipo")
    terms = pair_terms(torch.stack([logps[:N], logps[N:]], dim=1), torch.stack([n[:N], n[N:]], dim=1),
                       torch.stack([ref[:N], ref[N:]], dim=1), cfg)
    torch.testing.assert_close(terms["loss"].mean(), theirs.to(ours.dtype))
    # on whole-sequence sums IPO is another loss: the normalisation matters
    plain = dpo_loss(logps[:N], logps[N:], ref[:N], ref[N:], beta, "ipo").mean()
    assert not torch.allclose(plain, theirs.to(plain.dtype))


@pytest.mark.parametrize("label_smoothing", [0.1, 0.3])
def test_label_smoothing_matches_trls_conservative_loss_pair_by_pair(tmp_path, label_smoothing):
    logits, inputs = _random_batch(7)
    logps = _sequence_logps(logits, inputs)
    for i in range(N):
        rows = [i, N + i]
        one = {"input_ids": inputs["input_ids"][rows], "attention_mask": inputs["attention_mask"][rows],
               "completion_mask": inputs["completion_mask"][rows],
               "ref_chosen_logps": inputs["ref_chosen_logps"][i : i + 1],
               "ref_rejected_logps": inputs["ref_rejected_logps"][i : i + 1]}
        theirs = _trl_loss(tmp_path, "aot", 0.2, logits[rows], one, label_smoothing)
        ours = dpo_loss(logps[i : i + 1], logps[N + i : N + i + 1], one["ref_chosen_logps"],
                        one["ref_rejected_logps"], 0.2, label_smoothing=label_smoothing).mean()
        torch.testing.assert_close(ours, theirs.to(ours.dtype))


def test_trl_logs_the_same_reward_accuracy_and_margin(tmp_path):
    logits, inputs = _random_batch(3)
    logps = _sequence_logps(logits, inputs)
    trainer = _trainer(tmp_path, "sigmoid", 0.1)
    trl.DPOTrainer._compute_loss(trainer, lambda **kw: SimpleNamespace(logits=logits), inputs, return_outputs=False)
    ref = torch.stack([inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]], dim=1)
    terms = pair_terms(torch.stack([logps[:N], logps[N:]], dim=1), torch.ones(N, 2), ref, DPOConfig(beta=0.1))
    chosen, rejected = terms["chosen_reward"], terms["rejected_reward"]
    metrics = trainer._metrics["train"]
    assert metrics["rewards/accuracies"][-1] == pytest.approx(float((chosen > rejected).double().mean()))
    assert metrics["rewards/margins"][-1] == pytest.approx(float((chosen - rejected).mean()))
    assert metrics["rewards/chosen"][-1] == pytest.approx(float(chosen.mean()))
