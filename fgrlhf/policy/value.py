"""The value function and the frozen reference policy.

``ValueModel`` predicts V(x, y_≤t) for every response token from an LM's last hidden states:
- ``separate`` (the paper's setup: a T5-base value model beside a T5-large policy): its own
  backbone, run with the policy's layout (a LoRA policy's copy keeps frozen weights and
  trains adapters of its own);
- ``shared``: a head on the policy's own hidden states, computed in the same forward pass as
  the log-probs (cheaper; policy and value gradients then meet in the trunk).
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from fgrlhf.policy.lora import AdaptersOff, LoRAConfig, apply_lora, has_adapters, lora_enabled
from fgrlhf.policy.model import Policy, Rollout


class ValueModel(nn.Module):
    """A linear value head, on its own backbone or on the policy's hidden states."""

    def __init__(self, hidden_size: int, backbone: nn.Module | None = None, heads: int = 1) -> None:
        super().__init__()
        self.backbone = backbone
        self.heads = heads  # 1: V(s); H > 1: one value per reward category and the KL term
        self.head = nn.Linear(hidden_size, heads)
        # Start at V = 0 everywhere: the first advantages are then the rewards themselves,
        # not noise from a random head.
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def set_heads(self, heads: int) -> None:
        """A fresh zero-initialised head with ``heads`` outputs (the per-category critic: one
        value per reward category plus one for the KL term)."""
        self.heads = heads
        self.head = nn.Linear(self.head.in_features, heads).to(self.head.weight.device)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    @property
    def shared(self) -> bool:
        return self.backbone is None

    @classmethod
    def for_policy(cls, policy: Policy, separate: bool, backbone_path: str | None = None,
                   lora: LoRAConfig | None = None, heads: int = 1) -> ValueModel:
        """A value model for ``policy``: ``separate`` loads ``backbone_path`` (default: a copy
        of the policy's own weights, adapters included when it has them) as an LM of the same
        kind, with the same tokenizer. With ``lora`` enabled, a backbone loaded from
        ``backbone_path`` gets adapters of its own and only they (and the head) train.
        ``heads`` values per token (the per-category critic)."""
        if not separate:
            return cls(_hidden_size(policy.model), heads=heads)
        if backbone_path is None:
            backbone = copy.deepcopy(policy.model)
        else:
            from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

            from fgrlhf.paths import resolve_pretrained
            from fgrlhf.toolkit.load import loading, model_source

            model_cls = AutoModelForSeq2SeqLM if policy.kind == "seq2seq" else AutoModelForCausalLM
            source = model_source(resolve_pretrained(backbone_path), "value model (policy.value_init)")
            with loading(source, "value model (policy.value_init)"):
                backbone = model_cls.from_pretrained(source)
            backbone = backbone.to(policy.device)
            if lora_enabled(lora):
                backbone = apply_lora(backbone, lora, policy.kind)
        return cls(_hidden_size(backbone), backbone, heads).to(policy.device)

    def forward(self, policy: Policy, rollout: Rollout, policy_hidden: Tensor | None = None) -> Tensor:
        """Values ``[B, T]`` (``[B, T, heads]`` with several heads; 0 at padding). A shared head
        needs ``policy_hidden`` ``[B, T, H]`` from ``policy.forward(..., output_hidden_states=True)``."""
        if self.backbone is None:
            if policy_hidden is None:
                raise ValueError("a shared value head needs the policy's hidden states")
            hidden = policy_hidden
        else:
            hidden = policy.hidden_states(rollout, self.backbone)
        values = self.head(hidden.float())  # [B, T, heads]
        if self.heads == 1:
            values = values.squeeze(-1)  # [B, T]
            return torch.where(rollout.response_mask, values, torch.zeros_like(values))
        return torch.where(rollout.response_mask.unsqueeze(-1), values, torch.zeros_like(values))


def _hidden_size(model: nn.Module) -> int:
    config = model.config
    for key in ("hidden_size", "d_model", "n_embd"):
        if getattr(config, key, None):
            return int(getattr(config, key))
    decoder = getattr(config, "decoder", None)  # EncoderDecoderModel keeps sizes per side
    if decoder is not None:
        return int(decoder.hidden_size)
    raise ValueError(f"cannot find the hidden size of {type(model).__name__}")


def make_reference(policy: Policy) -> nn.Module | AdaptersOff:
    """The KL anchor, frozen at the policy's current weights: with LoRA adapters, the policy's
    own model with its adapters switched off (the frozen base; no second copy of the
    weights); otherwise a frozen copy of the weights, in eval mode."""
    if has_adapters(policy.model):
        return AdaptersOff(policy.model)
    ref = copy.deepcopy(policy.model)
    ref.eval()
    ref.requires_grad_(False)
    return ref
