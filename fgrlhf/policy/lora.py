"""LoRA adapters (through PEFT) on any policy, causal or seq2seq.

With ``policy.lora.r > 0`` the policy's weights stay frozen and only low-rank adapters train
(Hu et al. 2021). The reference policy of PPO's KL penalty is then the same model with its
adapters switched off (``AdaptersOff``), not a second copy of the weights: for a 270M-parameter
policy that saves a full model's memory. ``quantize_4bit`` loads the frozen base in 4-bit
NF4 (QLoRA, Dettmers et al. 2023; bitsandbytes, CUDA only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from torch import nn

ADAPTER_CONFIG = "adapter_config.json"
# A LoRA policy's adapters: beside its merged export (``policy/``) in a run folder, alone in
# a PPO checkpoint (whose frozen weights are the run's ``policy.init``).
ADAPTERS_DIR = "policy_adapters"


@dataclass
class LoRAConfig:
    RULES: ClassVar[dict[str, str]] = {"r": ">= 0", "alpha": "> 0", "dropout": "[0, 1)"}

    r: int = 0  # adapter rank; 0: no adapters (full fine-tuning)
    alpha: float = 32.0  # scale alpha / r
    dropout: float = 0.0
    # Module names (or "all-linear": every linear layer of the trunk, not the LM head).
    target_modules: list[str] = field(default_factory=lambda: ["all-linear"])
    quantize_4bit: bool = False  # QLoRA: the frozen base in 4-bit NF4 (CUDA and bitsandbytes)


def lora_enabled(cfg: LoRAConfig | None) -> bool:
    """Whether ``cfg`` asks for adapters (a dataclass or the config node Hydra passes)."""
    return cfg is not None and int(cfg.r) > 0


def peft_config(cfg: LoRAConfig, kind: str | None):
    """PEFT's config for ``cfg``: a policy's (``kind`` causal | seq2seq), or with ``kind=None``
    a bare trunk's (no task head: a classifier's trunk)."""
    from peft import LoraConfig, TaskType

    targets: Any = cfg.target_modules
    if list(targets) == ["all-linear"]:
        targets = "all-linear"
    task = None if kind is None else TaskType.SEQ_2_SEQ_LM if kind == "seq2seq" else TaskType.CAUSAL_LM
    return LoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, target_modules=targets,
                      task_type=task)


def apply_lora(model: nn.Module, cfg: LoRAConfig, kind: str) -> nn.Module:
    """``model`` with fresh adapters (initialised so that the model's output is unchanged);
    only the adapters require gradients."""
    from peft import get_peft_model

    training = model.training
    if cfg.quantize_4bit:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model)
    # PEFT's wrapper starts in train mode whatever the model's mode: keep the model's.
    return get_peft_model(model, peft_config(cfg, kind)).train(training)


def has_adapters(model: nn.Module) -> bool:
    return hasattr(model, "disable_adapter") and hasattr(model, "peft_config")


def quantization_config(cfg: LoRAConfig, device: Any):
    """The 4-bit loading config for QLoRA, or ``None``; a clear error off CUDA."""
    if not cfg.quantize_4bit:
        return None
    import torch

    from fgrlhf.errors import ConfigError

    if str(device).split(":")[0] != "cuda" or not torch.cuda.is_available():
        raise ConfigError(f"policy.lora.quantize_4bit=true (QLoRA) needs a CUDA device and bitsandbytes; "
                          f"this run is on {device}. Use policy.lora.quantize_4bit=false on CPU")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as err:
        raise ConfigError("policy.lora.quantize_4bit=true needs bitsandbytes: pip install bitsandbytes") from err
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=torch.bfloat16)


class AdaptersOff:
    """The reference policy as a view of the policy's model with its adapters switched off:
    called like a model, it returns the frozen base model's outputs. Nothing is copied."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    @property
    def config(self):
        return self.model.config

    def __call__(self, *args: Any, **kwargs: Any):
        with self.model.disable_adapter():
            return self.model(*args, **kwargs)

    # Train/eval mode is the shared model's: a caller that turns dropout off for a reference
    # pass (and restores the mode after) does so for the one model there is.
    @property
    def training(self) -> bool:
        return self.model.training

    def train(self, mode: bool = True) -> AdaptersOff:
        self.model.train(mode)
        return self

    def eval(self) -> AdaptersOff:
        return self.train(False)

    def parameters(self):  # the frozen base's weights, for device and dtype look-ups
        return (p for n, p in self.model.named_parameters() if "lora_" not in n)


def merged_model(model: nn.Module) -> nn.Module:
    """A plain model with the adapters folded into its weights (``W + (alpha/r)·B·A``), for
    export: it loads anywhere without PEFT. The adapters of ``model`` are left in place."""
    import copy

    return copy.deepcopy(model).merge_and_unload()


def load_adapters(base: nn.Module, adapter_dir: str | Path, trainable: bool = True) -> nn.Module:
    """``base`` with the adapters saved in ``adapter_dir`` (by ``save_pretrained`` of a PEFT model)."""
    from peft import PeftModel

    return PeftModel.from_pretrained(base, str(adapter_dir), is_trainable=trainable)


def load_adapter_weights(model: nn.Module, adapter_dir: str | Path) -> nn.Module:
    """``model`` (a PEFT model with adapters of the same shape) with the adapter weights saved
    in ``adapter_dir`` copied in, in place: the frozen base stays as loaded (4-bit included)."""
    from peft import set_peft_model_state_dict
    from peft.utils import load_peft_weights

    result = set_peft_model_state_dict(model, load_peft_weights(str(adapter_dir), device="cpu"))
    missing = [k for k in result.missing_keys if "lora_" in k]
    if missing or result.unexpected_keys:
        raise ValueError(f"the adapters in {adapter_dir} do not fit this model: missing {missing[:3]}, "
                         f"unexpected {list(result.unexpected_keys)[:3]}")
    return model


# ---------------------------------------------------------------------------------------
# Adapters on the trunk of a classifier (reward models)
# ---------------------------------------------------------------------------------------
def trunk_name(model: nn.Module) -> str:
    """The attribute holding a classifier's pretrained trunk: Hugging Face's
    ``base_model_prefix`` (``bert``, ``model``, ...), or ``encoder`` (``fgrlhf.reward.learned.TrunkAndHead``)."""
    name = getattr(model, "base_model_prefix", "") or "encoder"
    if not isinstance(getattr(model, name, None), nn.Module):
        raise ValueError(f"cannot find the pretrained trunk of {type(model).__name__} (no .{name})")
    return name


def add_trunk_adapters(model: nn.Module, cfg: LoRAConfig) -> int:
    """LoRA adapters on the trunk of a classifier, in place: the trunk's weights freeze, its
    adapters and the new head train. The trunk is wrapped (``PeftModel``) under its own
    attribute, so the classifier's forward is unchanged. Returns the trainable count."""
    from peft import get_peft_model

    if cfg.quantize_4bit:
        from fgrlhf.errors import ConfigError

        raise ConfigError("rm.lora.quantize_4bit: 4-bit bases are for policies; reward models train in "
                          "full precision (or bf16 autocast)")
    name = trunk_name(model)
    trunk = getattr(model, name)
    setattr(model, name, get_peft_model(trunk, peft_config(cfg, None)).train(trunk.training))
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def merge_trunk_adapters(model: nn.Module) -> nn.Module:
    """Folds the trunk's adapters into its weights, in place: the classifier is a plain model
    again (saved, loaded and scored like any other), computing what it computed before."""
    name = trunk_name(model)
    trunk = getattr(model, name)
    if has_adapters(trunk):
        setattr(model, name, trunk.merge_and_unload())
    return model
