"""Policies: causal (GPT-2 style) and seq2seq (T5 style) language models behind one interface.

A ``Policy`` generates ``Rollout``s and computes the log-probability of each generated
token. Layout conventions (masks ``True`` = real token):

- causal: ``query_ids`` ``[B, P]`` left-padded (so every response starts at column P),
  ``response_ids`` ``[B, T]``; the model reads ``cat(query, response)``.
- seq2seq: ``query_ids`` ``[B, P]`` right-padded encoder input; ``response_ids`` ``[B, T]``
  are the decoder's tokens after the decoder start token.

A response's mask covers its tokens up to and including the first EOS (the EOS is an
action too: its log-prob is trained); everything after is padding.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import ClassVar, Literal

import torch
from torch import Tensor

from fgrlhf.core.losses import logprobs_from_logits
from fgrlhf.policy.lora import AdaptersOff, LoRAConfig

PolicyKind = Literal["causal", "seq2seq"]


@dataclass
class SamplingConfig:
    """How responses are drawn. Training: top-k 20, temperature 0.7, several samples per
    prompt (the paper's QA-Feedback setting); evaluation: greedy (``do_sample=False``)."""

    RULES: ClassVar[dict[str, str]] = {"max_new_tokens": "> 0", "top_k": ">= 0", "top_p": "(0, 1]",
                                       "temperature": "> 0", "num_samples": "> 0", "no_repeat_ngram_size": ">= 0",
                                       "min_new_tokens": ">= 0", "num_beams": "> 0"}

    max_new_tokens: int = 64
    do_sample: bool = True
    top_k: int = 20
    top_p: float = 1.0
    temperature: float = 0.7
    num_samples: int = 1  # responses per prompt
    # > 0: no n-gram of this many tokens twice within a response (``banned_ngram_tokens``);
    # n-grams of the prompt stay allowed, so an answer may quote its passages.
    no_repeat_ngram_size: int = 0
    # EOS is suppressed until this many tokens (max_new_tokens: fixed-length continuations, as
    # detox evaluations use). Log-probs ignore the suppression, as they ignore the top-k cut.
    min_new_tokens: int = 0
    # Beam search (evaluation only: PPO's log-probs are those of sampling, not of a beam).
    num_beams: int = 1


@dataclass
class Rollout:
    """A batch of generated responses. Row b answers ``prompts[prompt_index[b]]``."""

    prompts: list[str]
    prompt_index: list[int]
    query_ids: Tensor  # [B, P]
    query_mask: Tensor  # [B, P] bool
    response_ids: Tensor  # [B, T]
    response_mask: Tensor  # [B, T] bool
    truncated_prompts: int = 0  # prompts cut to the prompt-length limit

    def select(self, idx: Tensor | Sequence[int]) -> Rollout:
        """The rows ``idx`` (in that order) as a rollout of their own. ``prompts`` is shared,
        so ``prompt_index`` still points into it; ``truncated_prompts`` counts the whole
        batch's prompts, so a selection reports 0."""
        rows = idx.tolist() if isinstance(idx, Tensor) else list(idx)
        return Rollout(self.prompts, [self.prompt_index[i] for i in rows], self.query_ids[idx],
                       self.query_mask[idx], self.response_ids[idx], self.response_mask[idx])

    def to(self, device: torch.device | str) -> Rollout:
        return Rollout(self.prompts, self.prompt_index, self.query_ids.to(device), self.query_mask.to(device),
                       self.response_ids.to(device), self.response_mask.to(device), self.truncated_prompts)


def causal_inputs(rollout: Rollout) -> tuple[Tensor, Tensor, Tensor]:
    """A causal LM's view of a rollout: ids and attention mask ``[B, P + T]`` (prompt, then
    response) and position ids that count real tokens only (prompts are left-padded)."""
    ids = torch.cat([rollout.query_ids, rollout.response_ids], dim=1)
    mask = torch.cat([rollout.query_mask, rollout.response_mask], dim=1).long()
    return ids, mask, (mask.cumsum(dim=1) - 1).clamp(min=0)


def response_mask_from_ids(response_ids: Tensor, eos_id: int | None, pad_id: int | None = None) -> Tensor:
    """``[B, T]`` bool: true up to and including the first EOS of each row.

    Without an EOS id every token is real except trailing ``pad_id`` tokens.
    """
    B, T = response_ids.shape
    if eos_id is None:
        if pad_id is None:
            return torch.ones(B, T, dtype=torch.bool, device=response_ids.device)
        return response_ids != pad_id
    is_eos = (response_ids == eos_id).long()  # [B, T]
    # Tokens strictly after the first EOS have a positive count of EOS before them.
    eos_before = torch.cumsum(is_eos, dim=1) - is_eos  # [B, T]
    return eos_before == 0


def banned_ngram_tokens(tokens: Sequence[int], n: int) -> list[int]:
    """The next tokens that would repeat an ``n``-gram already in ``tokens`` (one response's
    ids so far): every token that followed an earlier occurrence of its last ``n - 1``."""
    T = len(tokens)
    if n < 1 or T < n - 1:
        return []
    tail = tuple(tokens[T - n + 1 :]) if n > 1 else ()
    return [tokens[i + n - 1] for i in range(T - n + 1) if tuple(tokens[i : i + n - 1]) == tail]


class ResponseNoRepeatNGram:
    """A ``generate`` logits processor: no ``n``-gram twice within the generated tokens.

    Hugging Face's ``no_repeat_ngram_size`` counts every id the model has read; for a causal
    LM that includes the prompt, so it forbids quoting any n-gram of the passages, which is
    not what the setting promises. Here the ids before column ``start`` (the left-padded
    prompt of a causal LM; 0 for a seq2seq decoder, whose ids are its own) are never
    counted."""

    def __init__(self, n: int, start: int) -> None:
        self.n, self.start = n, start

    def __call__(self, input_ids: Tensor, scores: Tensor) -> Tensor:  # [B, L], [B, V]
        for b, row in enumerate(input_ids[:, self.start :].tolist()):
            banned = banned_ngram_tokens(row, self.n)
            if banned:
                scores[b, banned] = -float("inf")
        return scores


class Policy:
    """A Hugging Face LM plus its tokenizer, causal or seq2seq."""

    def __init__(self, model, tokenizer, kind: PolicyKind, max_prompt_tokens: int = 512) -> None:
        if kind not in ("causal", "seq2seq"):
            raise ValueError(f"policy kind must be 'causal' or 'seq2seq', not {kind!r}")
        self.model = model
        self.tokenizer = tokenizer
        self.kind: PolicyKind = kind
        self.max_prompt_tokens = max_prompt_tokens
        if tokenizer.pad_token_id is None:
            # Causal LMs often ship without a pad token; padding is masked out everywhere.
            tokenizer.pad_token = tokenizer.eos_token
        if kind == "causal":
            tokenizer.padding_side = "left"
        self.eos_id = tokenizer.eos_token_id if kind == "causal" else (
            model.config.eos_token_id if model.config.eos_token_id is not None else tokenizer.eos_token_id)

    @classmethod
    def from_pretrained(cls, name_or_path: str, kind: PolicyKind | Literal["auto"] = "auto",
                        max_prompt_tokens: int = 512, device: str | torch.device | None = None,
                        lora: LoRAConfig | None = None, adapters: str | Path | None = None) -> Policy:
        """Load any Hugging Face checkpoint (local path or hub id). ``auto`` picks seq2seq
        for encoder-decoder configs, causal otherwise.

        ``lora`` (with ``r > 0``): fresh LoRA adapters on the frozen weights (the base in 4-bit
        with ``quantize_4bit``, CUDA only); ``adapters``: a folder of trained adapters
        (``save_pretrained`` of a PEFT model) loaded onto the weights instead, trainable."""
        from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

        from fgrlhf.paths import resolve_pretrained
        from fgrlhf.policy.lora import apply_lora, load_adapters, lora_enabled, quantization_config

        path = resolve_pretrained(name_or_path)
        if kind == "auto":
            kind = "seq2seq" if getattr(AutoConfig.from_pretrained(path), "is_encoder_decoder", False) else "causal"
        model_cls = AutoModelForSeq2SeqLM if kind == "seq2seq" else AutoModelForCausalLM
        quantized = quantization_config(lora, device if device is not None else "cpu") if lora else None
        if quantized is not None:  # bitsandbytes places the 4-bit weights itself
            model = model_cls.from_pretrained(path, quantization_config=quantized, device_map={"": str(device)})
        else:
            model = model_cls.from_pretrained(path)
            if device is not None:
                model = model.to(device)
        if adapters is not None:
            model = load_adapters(model, adapters)
        elif lora_enabled(lora):
            model = apply_lora(model, lora, kind)
        return cls(model, AutoTokenizer.from_pretrained(path), kind, max_prompt_tokens)

    @property
    def has_adapters(self) -> bool:
        """Whether the policy trains LoRA adapters on frozen weights."""
        from fgrlhf.policy.lora import has_adapters

        return has_adapters(self.model)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def encode_prompts(self, prompts: Sequence[str]) -> tuple[Tensor, Tensor, int]:
        """Tokenised prompts ``[B, P]`` and mask, cut to ``max_prompt_tokens`` (the end is cut:
        prompts open with the question). Returns how many were cut."""
        full = self.tokenizer(list(prompts), add_special_tokens=True)["input_ids"]
        truncated = sum(1 for ids in full if len(ids) > self.max_prompt_tokens)
        enc = self.tokenizer(list(prompts), add_special_tokens=True, padding=True, truncation=True,
                             max_length=self.max_prompt_tokens, return_tensors="pt")
        return enc["input_ids"].to(self.device), enc["attention_mask"].to(self.device).bool(), truncated

    def teacher_forced(self, prompts: Sequence[str], answers: Sequence[str], max_answer_tokens: int = 256) -> Rollout:
        """A ``Rollout`` whose responses are the given answers (each ending with EOS): the
        layout for supervised fine-tuning and the PPO-ptx term, identical to sampled ones."""
        query_ids, query_mask, truncated = self.encode_prompts(prompts)
        enc = self.tokenizer(list(answers), add_special_tokens=False, truncation=True,
                             max_length=max_answer_tokens - 1)["input_ids"]
        rows = [ids + [self.eos_id] for ids in enc]
        T = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id
        response = torch.tensor([r + [pad] * (T - len(r)) for r in rows], device=self.device)
        mask = torch.tensor([[True] * len(r) + [False] * (T - len(r)) for r in rows], device=self.device)
        return Rollout(list(prompts), list(range(len(prompts))), query_ids, query_mask, response, mask, truncated)

    @torch.no_grad()
    def generate(self, prompts: Sequence[str], sampling: SamplingConfig) -> Rollout:
        """Sample ``sampling.num_samples`` responses per prompt."""
        was_training = self.model.training
        self.model.eval()
        query_ids, query_mask, truncated = self.encode_prompts(prompts)
        n = sampling.num_samples
        query_ids = query_ids.repeat_interleave(n, dim=0)  # [B·n, P]
        query_mask = query_mask.repeat_interleave(n, dim=0)
        kwargs = dict(max_new_tokens=sampling.max_new_tokens, do_sample=sampling.do_sample,
                      pad_token_id=self.tokenizer.pad_token_id, eos_token_id=self.eos_id)
        if sampling.do_sample:
            kwargs.update(top_k=sampling.top_k, top_p=sampling.top_p, temperature=sampling.temperature)
        if sampling.no_repeat_ngram_size:
            from transformers import LogitsProcessorList

            start = query_ids.shape[1] if self.kind == "causal" else 0
            kwargs["logits_processor"] = LogitsProcessorList([ResponseNoRepeatNGram(sampling.no_repeat_ngram_size,
                                                                                    start)])
        if sampling.min_new_tokens:
            kwargs["min_new_tokens"] = sampling.min_new_tokens
        if sampling.num_beams > 1:
            kwargs["num_beams"] = sampling.num_beams
        out = self.model.generate(input_ids=query_ids, attention_mask=query_mask.long(), **kwargs)
        if self.kind == "causal":
            response = out[:, query_ids.shape[1]:]  # [B·n, T]
        else:
            response = out[:, 1:]  # drop the decoder start token
        if response.shape[1] == 0:  # nothing generated at all: keep a [B, 1] padded tensor
            response = torch.full((out.shape[0], 1), self.tokenizer.pad_token_id, device=out.device)
            mask = torch.zeros_like(response, dtype=torch.bool)
        else:
            mask = response_mask_from_ids(response, self.eos_id)
        response = torch.where(mask, response, torch.full_like(response, self.tokenizer.pad_token_id))
        self.model.train(was_training)
        index = [i for i in range(len(prompts)) for _ in range(n)]
        return Rollout(list(prompts), index, query_ids, query_mask, response, mask, truncated)

    def forward(self, rollout: Rollout, model=None, output_hidden_states: bool = False,
                temperature: float = 1.0):
        """Logits ``[B, T, V]`` predicting each response token, divided by ``temperature``
        (and the last hidden states ``[B, T, H]`` at those positions when asked). ``model``
        defaults to the policy's own (pass the reference to score with it).

        The LM head runs at those ``T`` positions only (``head_at_response_only``): a causal LM
        reads ``P + T`` tokens, and over a vocabulary of 262k (Gemma 3) the head at the
        prompt's positions would cost more than the whole trunk. A seq2seq decoder reads the
        ``T`` response positions alone."""
        model = model if model is not None else self.model
        q, qm, r, rm = rollout.query_ids, rollout.query_mask, rollout.response_ids, rollout.response_mask
        T = r.shape[1]
        if self.kind == "causal":
            ids, mask, position_ids = causal_inputs(rollout)
            P = q.shape[1]
            # Position t predicts token t + 1: the logits of positions P - 1 … P + T - 2, which
            # are the last T + 1 positions but the very last.
            keep = {"logits_to_keep": T + 1} if head_at_response_only(model) else {}
            out = model(input_ids=ids, attention_mask=mask, position_ids=position_ids,
                        output_hidden_states=output_hidden_states, **keep)
            logits = out.logits[:, :T] if keep else out.logits[:, P - 1 : P - 1 + T]  # [B, T, V]
            hidden = out.hidden_states[-1][:, P - 1 : P - 1 + T] if output_hidden_states else None
        else:
            start = model.config.decoder_start_token_id
            if start is None:
                start = self.tokenizer.pad_token_id
            dec_in = torch.cat([torch.full_like(r[:, :1], start), r[:, :-1]], dim=1)  # [B, T]
            dec_mask = torch.cat([torch.ones_like(rm[:, :1]), rm[:, :-1]], dim=1).long()
            out = model(input_ids=q, attention_mask=qm.long(), decoder_input_ids=dec_in,
                        decoder_attention_mask=dec_mask, output_hidden_states=output_hidden_states)
            logits = out.logits
            hidden = out.decoder_hidden_states[-1] if output_hidden_states else None
        if temperature != 1.0:
            logits = logits / temperature
        return logits, hidden

    def hidden_states(self, rollout: Rollout, model) -> Tensor:
        """The last hidden states ``[B, T, H]`` at the positions that predict each response
        token, as ``forward(..., output_hidden_states=True)`` gives them, without the LM head
        where the model exposes its trunk (a causal LM's ``base_model``): a value model on an
        LM backbone needs no logits, and for a small model the head over the vocabulary costs
        as much as the trunk."""
        lm = hf_model(model)
        trunk = getattr(lm, "base_model", lm)
        if self.kind != "causal" or trunk is lm:
            return self.forward(rollout, model=model, output_hidden_states=True)[1]
        ids, mask, position_ids = causal_inputs(rollout)
        out = trunk(input_ids=ids, attention_mask=mask, position_ids=position_ids)
        P = rollout.query_ids.shape[1]
        return out.last_hidden_state[:, P - 1 : P - 1 + rollout.response_ids.shape[1]]

    def logprobs(self, rollout: Rollout, model=None, temperature: float = 1.0) -> Tensor:
        """``log π(y_t | x, y_<t)`` for every response token: ``[B, T]`` (0 at padding), of the
        distribution at ``temperature``."""
        logits, _ = self.forward(rollout, model, temperature=temperature)
        lp = logprobs_from_logits(logits, rollout.response_ids)  # [B, T]
        return torch.where(rollout.response_mask, lp, torch.zeros_like(lp))

    def decode(self, rollout: Rollout):
        """The responses' texts with per-token char offsets (for segmentation)."""
        from fgrlhf.segment import decode_with_offsets

        return decode_with_offsets(self.tokenizer, rollout.response_ids, rollout.response_mask)


def hf_model(model):
    """The Hugging Face model under the wrappers a policy's model may wear: data parallel
    (``module``), the adapters-off reference, PEFT (whose adapters live inside the model
    it returns, so calling that model still runs them)."""
    while True:
        if isinstance(model, AdaptersOff):
            model = model.model
        elif hasattr(model, "get_base_model"):  # a PEFT model
            model = model.get_base_model()
        elif isinstance(model, torch.nn.parallel.DistributedDataParallel):
            model = model.module
        else:
            return model


def keeps_logits(model) -> bool:
    """Whether ``model``'s forward takes ``logits_to_keep`` (transformers' causal LMs do):
    the LM head then runs only at the positions kept."""
    return _forward_takes(type(hf_model(model)), "logits_to_keep")


def head_at_response_only(model) -> bool:
    """Whether ``Policy.forward`` runs ``model``'s LM head at the response positions alone:
    wherever the model takes ``logits_to_keep``, except in a pass that trains the head's
    weight (full fine-tuning's update). There the head's weight gradient, a sum over every
    position, would be summed in another order (the prompt positions add exact zeros, but
    their absence regroups the float sum), moving pinned runs in the 8th digit; frozen passes
    (rollout scoring, the reference, evaluation) and LoRA updates, whose head is frozen, give
    the same bits either way."""
    if not keeps_logits(model):
        return False
    head = hf_model(model).get_output_embeddings()
    return not (torch.is_grad_enabled() and head is not None and head.weight.requires_grad)


@cache
def _forward_takes(model_cls: type, name: str) -> bool:
    return name in inspect.signature(model_cls.forward).parameters
