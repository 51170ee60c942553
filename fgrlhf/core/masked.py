"""Masked reductions and whitening.

Masks follow one convention throughout fgrlhf: ``True``/1 marks a real token, ``False``/0
marks padding (or anything after a sequence ended). Values at masked-out positions never
influence a result, even when they are NaN or inf.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _zero_masked(values: Tensor, mask: Tensor) -> Tensor:
    # torch.where, not values * mask: 0 * inf and 0 * nan are nan, and padded positions may
    # hold either (e.g. log-probs of pad tokens).
    return torch.where(mask.bool(), values, torch.zeros((), dtype=values.dtype, device=values.device))


def masked_sum(values: Tensor, mask: Tensor, dim: int | None = None) -> Tensor:
    """Sum of ``values`` where ``mask`` is true; over all elements, or along ``dim``."""
    v = _zero_masked(values, mask)
    return v.sum() if dim is None else v.sum(dim=dim)


def masked_mean(values: Tensor, mask: Tensor, dim: int | None = None) -> Tensor:
    """Mean of ``values`` over the positions where ``mask`` is true.

    ``mean = Σ m·x / Σ m``. An all-false mask (along ``dim``) gives 0 rather than NaN, so an
    empty generation contributes nothing instead of poisoning a batch statistic.
    """
    m = mask.to(values.dtype)
    count = m.sum() if dim is None else m.sum(dim=dim)
    return masked_sum(values, mask, dim) / count.clamp(min=1.0)


def masked_var(values: Tensor, mask: Tensor, unbiased: bool = True) -> Tensor:
    """Variance of the masked elements (a scalar), with Bessel's correction by default.

    ``var = Σ m·(x − μ)² / (n − 1)`` with ``n = Σ m`` (``/ n`` when ``unbiased`` is False).
    Fewer than two elements give 0.
    """
    mean = masked_mean(values, mask)
    centred_sq = (values - mean) ** 2
    n = mask.to(values.dtype).sum()
    denom = (n - 1.0) if unbiased else n
    if n < 2:
        return torch.zeros((), dtype=values.dtype, device=values.device)
    return masked_sum(centred_sq, mask) / denom


def whiten(values: Tensor, mask: Tensor, shift_mean: bool = True, eps: float = 1e-8) -> Tensor:
    """Normalise the masked elements of ``values`` to unit variance (and zero mean).

    ``(x − μ) / sqrt(var + eps)``, then ``+ μ`` back when ``shift_mean`` is False (the
    "keep-mean" variant used for rewards, where the sign of the mean carries meaning).
    μ and var are over the masked elements only (var with Bessel's correction, see
    ``masked_var``); positions outside the mask are returned as 0.

    The output has unit variance: the denominator is the standard deviation. (The paper's
    released code takes ``rsqrt`` of a function that already returns the std, so it divides
    by ``sqrt(std)`` and its output has variance ``std``; it also divides the variance by
    ``n`` and leaves ``−μ/sqrt(std)`` at padded positions.)

    Shapes: values, mask ``[B, T]`` (any shape works) → same shape.
    """
    mean = masked_mean(values, mask)
    var = masked_var(values, mask)
    out = (values - mean) * torch.rsqrt(var + eps)
    if not shift_mean:
        out = out + mean
    return _zero_masked(out, mask)
