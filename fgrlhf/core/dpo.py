"""Direct preference optimisation losses (no reward model, no RL).

With ``h = (log π(y_w|x) − log π_ref(y_w|x)) − (log π(y_l|x) − log π_ref(y_l|x))`` for a
preferred answer ``y_w`` and a dispreferred ``y_l`` (sequence log-probabilities):

- sigmoid DPO (Rafailov et al. 2023): ``−(1−ε)·log σ(β·h) − ε·log σ(−β·h)`` (ε: label
  smoothing, the conservative DPO of Mitchell 2023; 0 is plain DPO);
- IPO (Azar et al. 2023): ``(h − 1/(2β))²``.

The implicit rewards ``β·(log π − log π_ref)`` of each answer give the logged reward
accuracy (share of pairs where the preferred answer's is higher) and margin.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

DPO_LOSSES = ("sigmoid", "ipo")


def dpo_loss(policy_chosen: Tensor, policy_rejected: Tensor, ref_chosen: Tensor, ref_rejected: Tensor,
             beta: float = 0.1, loss_type: str = "sigmoid", label_smoothing: float = 0.0) -> Tensor:
    """Per-pair losses ``[N]`` from sequence log-probs ``[N]`` of each pair's two answers."""
    h = (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)  # [N]
    if loss_type == "sigmoid":
        return -(1 - label_smoothing) * F.logsigmoid(beta * h) - label_smoothing * F.logsigmoid(-beta * h)
    if loss_type == "ipo":
        return (h - 1 / (2 * beta)) ** 2
    raise ValueError(f"loss_type must be one of {DPO_LOSSES}, not {loss_type!r}")


def implicit_rewards(policy_logps: Tensor, ref_logps: Tensor, beta: float) -> Tensor:
    """``β·(log π(y|x) − log π_ref(y|x))`` ``[N]``."""
    return beta * (policy_logps - ref_logps)
