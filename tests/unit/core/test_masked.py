"""Masked reductions and whitening: masked_sum, masked_mean, masked_var, whiten."""

from __future__ import annotations

import math

import pytest
import torch

from fgrlhf.core.masked import masked_mean, masked_sum, masked_var, whiten

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")),
]

# A 2 x 3 batch whose real elements are {1, 2, 4}; row 1 ends after one token.
VALUES = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
MASK = [[True, True, False], [True, False, False]]


def _case(device, dtype=torch.float64):
    return (torch.tensor(VALUES, dtype=dtype, device=device), torch.tensor(MASK, device=device))


def _poison(values: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
    """Copies of ``values`` whose masked-out positions hold nan, +inf, -inf, a huge number,
    or a mix of them."""
    out = []
    for fill in (float("nan"), float("inf"), float("-inf"), 1e30):
        out.append(torch.where(mask, values, torch.full_like(values, fill)))
    mixed = values.clone()
    pad = (~mask).nonzero(as_tuple=False)
    specials = [float("nan"), float("inf"), float("-inf")]
    for i, idx in enumerate(pad.tolist()):
        mixed[tuple(idx)] = specials[i % 3]
    out.append(mixed)
    return out


def _random_case(seed: int, shape=(6, 9), p_real=0.6):
    g = torch.Generator().manual_seed(seed)
    values = torch.randn(shape, generator=g, dtype=torch.float64) * 3.0 + 1.5
    mask = torch.rand(shape, generator=g) < p_real
    mask.view(-1)[0] = True  # at least two real elements
    mask.view(-1)[-1] = True
    return values, mask


# ---------------------------------------------------------------- hand-computed cases


@pytest.mark.parametrize("device", DEVICES)
def test_masked_sum_hand(device):
    v, m = _case(device)
    # all: 1 + 2 + 4 = 7 ; per row: [1 + 2, 4] = [3, 4]
    assert masked_sum(v, m).item() == 7.0
    assert masked_sum(v, m, dim=-1).cpu().tolist() == [3.0, 4.0]
    # per column: [1 + 4, 2, 0]
    assert masked_sum(v, m, dim=0).cpu().tolist() == [5.0, 2.0, 0.0]


@pytest.mark.parametrize("device", DEVICES)
def test_masked_mean_hand(device):
    v, m = _case(device)
    # (1 + 2 + 4) / 3 = 7/3
    assert masked_mean(v, m).item() == pytest.approx(7.0 / 3.0)
    # rows: (1 + 2)/2 = 1.5 ; 4/1 = 4
    assert masked_mean(v, m, dim=-1).cpu().tolist() == pytest.approx([1.5, 4.0])
    # columns: (1 + 4)/2 = 2.5 ; 2/1 = 2 ; no real element -> 0 (not NaN)
    assert masked_mean(v, m, dim=0).cpu().tolist() == pytest.approx([2.5, 2.0, 0.0])


@pytest.mark.parametrize("device", DEVICES)
def test_masked_var_hand(device):
    v, m = _case(device)
    # mean 7/3; deviations -4/3, -1/3, 5/3; squares 16/9 + 1/9 + 25/9 = 42/9 = 14/3
    # unbiased: (14/3) / (3 - 1) = 7/3 ; biased: (14/3) / 3 = 14/9
    assert masked_var(v, m).item() == pytest.approx(7.0 / 3.0)
    assert masked_var(v, m, unbiased=False).item() == pytest.approx(14.0 / 9.0)


def test_masked_var_fewer_than_two_elements_is_zero():
    v = torch.tensor([[5.0, 7.0]])
    assert masked_var(v, torch.tensor([[True, False]])).item() == 0.0
    assert masked_var(v, torch.tensor([[False, False]])).item() == 0.0


@pytest.mark.parametrize("device", DEVICES)
def test_whiten_hand(device):
    v = torch.tensor([[1.0, 3.0, 100.0]], dtype=torch.float64, device=device)
    m = torch.tensor([[True, True, False]], device=device)
    # real {1, 3}: mean 2, unbiased var ((-1)^2 + 1^2) / (2 - 1) = 2, std sqrt(2)
    # whitened: (1 - 2)/sqrt(2) = -1/sqrt(2), (3 - 2)/sqrt(2) = +1/sqrt(2); padding -> 0
    s = 1.0 / math.sqrt(2.0)
    assert whiten(v, m).cpu().tolist()[0] == pytest.approx([-s, s, 0.0], abs=1e-7)
    # keep-mean variant: add the mean 2 back -> 2 - 1/sqrt(2), 2 + 1/sqrt(2); padding -> 0
    assert whiten(v, m, shift_mean=False).cpu().tolist()[0] == pytest.approx([2 - s, 2 + s, 0.0], abs=1e-7)


def test_whiten_divides_by_std_not_sqrt_std():
    # real {0, 8}: mean 4, unbiased var (16 + 16)/1 = 32, std sqrt(32) = 4*sqrt(2).
    # (0 - 4)/sqrt(32) = -1/sqrt(2). Dividing by sqrt(std) = 32**0.25 would give -4/2.378 = -1.68.
    v = torch.tensor([0.0, 8.0], dtype=torch.float64)
    out = whiten(v, torch.tensor([True, True]))
    assert out.tolist() == pytest.approx([-1 / math.sqrt(2), 1 / math.sqrt(2)], abs=1e-7)


# ---------------------------------------------------------------- masked positions change nothing


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_masked_positions_including_nan_inf_change_nothing(device, seed):
    values, mask = _random_case(seed)
    values, mask = values.to(device), mask.to(device)
    ref_sum = masked_sum(values, mask)
    ref_mean = masked_mean(values, mask)
    ref_row_mean = masked_mean(values, mask, dim=-1)
    ref_var = masked_var(values, mask)
    ref_white = whiten(values, mask)
    ref_white_keep = whiten(values, mask, shift_mean=False)
    for poisoned in _poison(values, mask):
        assert torch.equal(masked_sum(poisoned, mask), ref_sum)
        assert torch.equal(masked_mean(poisoned, mask), ref_mean)
        assert torch.equal(masked_mean(poisoned, mask, dim=-1), ref_row_mean)
        assert torch.equal(masked_var(poisoned, mask), ref_var)
        w = whiten(poisoned, mask)
        assert torch.isfinite(w).all()
        assert torch.equal(w, ref_white)
        assert torch.equal(whiten(poisoned, mask, shift_mean=False), ref_white_keep)


def test_hand_values_with_nan_and_inf_padding():
    # Same real elements {1, 2, 4} as the hand case; padding is nan / inf / -inf.
    nan, inf = float("nan"), float("inf")
    v = torch.tensor([[1.0, 2.0, nan], [4.0, inf, -inf]], dtype=torch.float64)
    m = torch.tensor(MASK)
    assert masked_sum(v, m).item() == 7.0
    assert masked_mean(v, m).item() == pytest.approx(7.0 / 3.0)
    assert masked_var(v, m).item() == pytest.approx(7.0 / 3.0)
    w = whiten(v, m)
    assert w[~m].tolist() == [0.0, 0.0, 0.0]
    # (x - 7/3) / sqrt(7/3) for x in 1, 2, 4
    sd = math.sqrt(7.0 / 3.0)
    assert w[m].tolist() == pytest.approx([(1 - 7 / 3) / sd, (2 - 7 / 3) / sd, (4 - 7 / 3) / sd])


def test_float_mask_is_the_same_as_bool_mask():
    values, mask = _random_case(5)
    fmask = mask.to(torch.float64)
    assert torch.equal(masked_mean(values, fmask), masked_mean(values, mask))
    assert torch.equal(masked_var(values, fmask), masked_var(values, mask))
    assert torch.equal(whiten(values, fmask), whiten(values, mask))


# ---------------------------------------------------------------- whitening statistics


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("seed", range(5))
def test_whiten_unit_std_zero_mean(device, seed):
    values, mask = _random_case(seed, shape=(8, 33))
    values, mask = values.to(device), mask.to(device)
    out = whiten(values, mask)
    sel = out[mask]
    assert sel.mean().item() == pytest.approx(0.0, abs=1e-10)
    assert torch.std(sel, unbiased=True).item() == pytest.approx(1.0, abs=1e-6)
    assert (out[~mask] == 0).all()


@pytest.mark.parametrize("seed", range(5))
def test_whiten_keep_mean(seed):
    values, mask = _random_case(seed, shape=(8, 33))
    out = whiten(values, mask, shift_mean=False)
    sel = out[mask]
    # mean of the input's real elements, computed directly
    expected_mean = values[mask].mean().item()
    assert sel.mean().item() == pytest.approx(expected_mean, abs=1e-10)
    assert torch.std(sel, unbiased=True).item() == pytest.approx(1.0, abs=1e-6)
    assert (out[~mask] == 0).all()


def test_whiten_float32():
    values, mask = _random_case(7, shape=(16, 64))
    out = whiten(values.float(), mask)
    assert out.dtype == torch.float32
    sel = out[mask]
    assert sel.mean().item() == pytest.approx(0.0, abs=1e-5)
    assert torch.std(sel, unbiased=True).item() == pytest.approx(1.0, abs=1e-4)


# ---------------------------------------------------------------- empty masks


@pytest.mark.parametrize("device", DEVICES)
def test_all_false_mask_gives_zero_not_nan(device):
    v = torch.tensor([[1.0, float("nan")], [float("inf"), 2.0]], device=device)
    m = torch.zeros(2, 2, dtype=torch.bool, device=device)
    assert masked_sum(v, m).item() == 0.0
    assert masked_mean(v, m).item() == 0.0
    assert masked_mean(v, m, dim=-1).cpu().tolist() == [0.0, 0.0]
    assert masked_var(v, m).item() == 0.0
    assert whiten(v, m).cpu().tolist() == [[0.0, 0.0], [0.0, 0.0]]
    assert whiten(v, m, shift_mean=False).cpu().tolist() == [[0.0, 0.0], [0.0, 0.0]]


def test_single_real_element_whitens_to_zero():
    # One element: mean = x, var = 0 -> (x - x) * rsqrt(0 + eps) = 0, finite.
    v = torch.tensor([[3.0, float("nan"), 9.0]])
    out = whiten(v, torch.tensor([[True, False, False]]))
    assert out.tolist() == [[0.0, 0.0, 0.0]]
