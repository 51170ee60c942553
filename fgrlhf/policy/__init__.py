"""Policies (causal and seq2seq) behind one interface, value models, the reference copy,
and locally built tiny models."""

from fgrlhf.policy.model import Policy, PolicyKind, Rollout, SamplingConfig, response_mask_from_ids
from fgrlhf.policy.value import ValueModel, make_reference

__all__ = ["Policy", "PolicyKind", "Rollout", "SamplingConfig", "ValueModel", "make_reference",
           "response_mask_from_ids"]
