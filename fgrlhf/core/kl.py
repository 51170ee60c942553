"""Per-token KL estimators and KL-coefficient controllers."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

KLEstimator = Literal["k1", "k2", "k3"]


def kl_per_token(logprobs: Tensor, ref_logprobs: Tensor, estimator: KLEstimator = "k1") -> Tensor:
    """Per-token estimate of KL(π ‖ π_ref) from log-probs of tokens sampled from π.

    With ``log r = log π_ref(y_t) − log π(y_t)`` (Schulman, "Approximating KL divergence"):

        k1 = −log r               unbiased, high variance, can be negative
        k2 = ½ (log r)²           biased, low variance, ≥ 0
        k3 = (r − 1) − log r      unbiased, low variance, ≥ 0

    Shapes: logprobs, ref_logprobs ``[B, T]`` → ``[B, T]``. Masking is left to the caller.
    """
    log_ratio = ref_logprobs - logprobs  # [B, T]
    if estimator == "k1":
        return -log_ratio
    if estimator == "k2":
        return 0.5 * log_ratio**2
    if estimator == "k3":
        return torch.expm1(log_ratio) - log_ratio
    raise ValueError(f"unknown KL estimator {estimator!r}; expected one of 'k1', 'k2', 'k3'")


@dataclass
class FixedKLController:
    """A constant KL coefficient β."""

    kl_coef: float

    def update(self, observed_kl: float, n_steps: int) -> float:
        return self.kl_coef

    def state_dict(self) -> dict:
        return {"kl_coef": self.kl_coef}

    def load_state_dict(self, state: dict) -> None:
        self.kl_coef = float(state["kl_coef"])


@dataclass
class AdaptiveKLController:
    """Adaptive β of Ziegler et al. 2019 (eq. 2), a proportional controller on log-space error.

        e_t = clip(KL_obs / KL_target − 1, −0.2, 0.2)
        β_{t+1} = β_t · (1 + K_β · e_t),   K_β = n_steps / horizon

    ``n_steps`` is the number of samples (episodes) the KL was measured on, so the rate of
    change does not depend on the batch size.
    """

    kl_coef: float
    target: float
    horizon: float = 10000.0

    def __post_init__(self) -> None:
        if self.target <= 0 or self.horizon <= 0:
            raise ValueError("AdaptiveKLController: target and horizon must be positive")

    def update(self, observed_kl: float, n_steps: int) -> float:
        if not math.isfinite(observed_kl):
            raise FloatingPointError(f"AdaptiveKLController: observed KL is {observed_kl}")
        error = min(max(observed_kl / self.target - 1.0, -0.2), 0.2)
        self.kl_coef *= 1.0 + error * n_steps / self.horizon
        return self.kl_coef

    def state_dict(self) -> dict:
        return {"kl_coef": self.kl_coef, "target": self.target, "horizon": self.horizon}

    def load_state_dict(self, state: dict) -> None:
        self.kl_coef = float(state["kl_coef"])
        self.target = float(state["target"])
        self.horizon = float(state["horizon"])


KLController = FixedKLController | AdaptiveKLController


def make_kl_controller(kl_coef: float, adaptive: bool = False, target: float | None = None,
                       horizon: float = 10000.0) -> KLController:
    """The controller a config asks for: fixed unless ``adaptive`` (then ``target`` is needed)."""
    if not adaptive:
        return FixedKLController(kl_coef)
    if target is None:
        raise ValueError("an adaptive KL controller needs a target KL")
    return AdaptiveKLController(kl_coef, target, horizon)
