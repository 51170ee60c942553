"""The math of dense-reward RLHF: device-agnostic tensor functions with no state and no I/O
(masked statistics, GAE, KL estimators, losses, reward placement on tokens), plus the KL
controllers (``kl.py``), the one stateful piece: β, updated once per iteration and saved in
checkpoints."""

from fgrlhf.core.gae import gae
from fgrlhf.core.kl import (
    AdaptiveKLController,
    FixedKLController,
    KLController,
    kl_per_token,
    make_kl_controller,
)
from fgrlhf.core.losses import (
    aggregate_loss,
    entropy_from_logits,
    logprobs_from_logits,
    loss_denominator,
    policy_loss,
    value_loss,
)
from fgrlhf.core.masked import masked_mean, masked_sum, masked_var, whiten
from fgrlhf.core.scatter import scatter_segment_scores

__all__ = [
    "AdaptiveKLController",
    "FixedKLController",
    "KLController",
    "aggregate_loss",
    "entropy_from_logits",
    "gae",
    "kl_per_token",
    "logprobs_from_logits",
    "loss_denominator",
    "make_kl_controller",
    "masked_mean",
    "masked_sum",
    "masked_var",
    "policy_loss",
    "scatter_segment_scores",
    "value_loss",
    "whiten",
]
