"""Generalised advantage estimation over dense token-level rewards."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fgrlhf.core.gae import gae

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")),
]


def reference_gae(rewards, values, mask, gamma, lam):
    """Plain-Python GAE, one row at a time, visiting only the real tokens (right to left).
    Returns nested lists of advantages and returns, 0 at masked positions."""
    rewards, values, mask = rewards.tolist(), values.tolist(), mask.tolist()
    adv_out, ret_out = [], []
    for r_row, v_row, m_row in zip(rewards, values, mask):
        T = len(r_row)
        adv, ret = [0.0] * T, [0.0] * T
        real = [t for t in range(T) if m_row[t]]
        next_value, next_adv = 0.0, 0.0  # past the last real token the episode has ended
        for t in reversed(real):
            delta = r_row[t] + gamma * next_value - v_row[t]
            a = delta + gamma * lam * next_adv
            adv[t] = a
            ret[t] = a + v_row[t]
            next_value, next_adv = v_row[t], a
        adv_out.append(adv)
        ret_out.append(ret)
    return adv_out, ret_out


def _mask(kind: str, B: int, T: int, g: torch.Generator) -> torch.Tensor:
    """right-pad: random lengths 0..T (0 = empty generation, T = no padding);
    holes: right padding plus random holes inside the real prefix."""
    lengths = torch.randint(0, T + 1, (B,), generator=g)
    lengths[0] = T  # one full-length row
    if B > 1:
        lengths[1] = 0  # one empty row
    mask = torch.arange(T)[None, :] < lengths[:, None]  # [B, T]
    if kind == "holes":
        mask &= torch.rand(B, T, generator=g) > 0.3
    return mask


def _batch(seed: int, B: int, T: int, kind: str, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    rewards = torch.randn(B, T, generator=g, dtype=dtype)
    values = torch.randn(B, T, generator=g, dtype=dtype)
    mask = _mask(kind, B, T, g)
    return rewards, values, mask


def _check_against_reference(rewards, values, mask, gamma, lam, atol=1e-10):
    adv, ret = gae(rewards, values, mask, gamma=gamma, lam=lam)
    ref_adv, ref_ret = reference_gae(rewards.cpu(), values.cpu(), mask.cpu(), gamma, lam)
    expected_adv = torch.tensor(ref_adv, dtype=rewards.dtype)
    expected_ret = torch.tensor(ref_ret, dtype=rewards.dtype)
    assert adv.shape == rewards.shape and ret.shape == rewards.shape
    assert adv.dtype == rewards.dtype and ret.dtype == rewards.dtype
    assert adv.device == rewards.device
    torch.testing.assert_close(adv.cpu(), expected_adv, atol=atol, rtol=0)
    torch.testing.assert_close(ret.cpu(), expected_ret, atol=atol, rtol=0)


# ---------------------------------------------------------------- hand-computed cases


def test_hand_computed_full_row():
    r = torch.tensor([[1.0, 0.0, 2.0]], dtype=torch.float64)
    v = torch.tensor([[0.5, 1.0, 1.5]], dtype=torch.float64)
    m = torch.tensor([[True, True, True]])
    adv, ret = gae(r, v, m, gamma=0.9, lam=0.5)
    # gamma*lam = 0.45
    # t=2: delta = 2 + 0.9*0 - 1.5 = 0.5                 A2 = 0.5
    # t=1: delta = 0 + 0.9*1.5 - 1.0 = 0.35              A1 = 0.35 + 0.45*0.5 = 0.575
    # t=0: delta = 1 + 0.9*1.0 - 0.5 = 1.4               A0 = 1.4 + 0.45*0.575 = 1.65875
    # returns = A + V: 2.15875, 1.575, 2.0
    assert adv.tolist()[0] == pytest.approx([1.65875, 0.575, 0.5])
    assert ret.tolist()[0] == pytest.approx([2.15875, 1.575, 2.0])


def test_hand_computed_hole_and_padding():
    # Token 1 is a hole and token 3 is padding: both hold junk that must be skipped.
    r = torch.tensor([[1.0, 99.0, 2.0, -50.0]], dtype=torch.float64)
    v = torch.tensor([[0.5, 99.0, 1.5, 77.0]], dtype=torch.float64)
    m = torch.tensor([[True, False, True, False]])
    adv, ret = gae(r, v, m, gamma=0.9, lam=0.5)
    # t=2 (last real): delta = 2 + 0.9*0 - 1.5 = 0.5            A2 = 0.5
    # t=0: next real token is t=2, so V' = 1.5 and A' = 0.5
    #      delta = 1 + 0.9*1.5 - 0.5 = 1.85                      A0 = 1.85 + 0.45*0.5 = 2.075
    # returns: 2.075 + 0.5 = 2.575, 0.5 + 1.5 = 2.0; masked -> 0
    assert adv.tolist()[0] == pytest.approx([2.075, 0.0, 0.5, 0.0])
    assert ret.tolist()[0] == pytest.approx([2.575, 0.0, 2.0, 0.0])


def test_hand_computed_gamma_one_single_terminal_reward():
    # Sparse reward 1 at the last of 3 real tokens, V = 0 everywhere, gamma = 1, lam = 0.5:
    # A2 = 1 ; A1 = 0 + 0.5*1 = 0.5 ; A0 = 0 + 0.5*0.5 = 0.25 ; padding -> 0
    r = torch.tensor([[0.0, 0.0, 1.0, 0.0]])
    v = torch.zeros(1, 4)
    m = torch.tensor([[1, 1, 1, 0]])  # an integer mask works like a bool one
    adv, ret = gae(r, v, m, gamma=1.0, lam=0.5)
    assert adv.tolist()[0] == [0.25, 0.5, 1.0, 0.0]
    assert ret.tolist()[0] == [0.25, 0.5, 1.0, 0.0]


# ---------------------------------------------------------------- against the reference loop


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", ["right-pad", "holes"])
@pytest.mark.parametrize("gamma,lam", [(1.0, 0.95), (0.99, 0.95), (0.9, 0.0), (1.0, 1.0), (0.5, 0.3)])
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_reference_random_batches(device, kind, gamma, lam, seed):
    rewards, values, mask = _batch(seed, B=7, T=13, kind=kind)
    _check_against_reference(rewards.to(device), values.to(device), mask.to(device), gamma, lam)


@pytest.mark.parametrize("device", DEVICES)
def test_matches_reference_float32(device):
    rewards, values, mask = _batch(3, B=16, T=40, kind="holes", dtype=torch.float32)
    _check_against_reference(rewards.to(device), values.to(device), mask.to(device), 1.0, 0.95, atol=1e-4)


@settings(max_examples=50, deadline=None)
@given(
    B=st.integers(1, 6),
    T=st.integers(0, 20),
    kind=st.sampled_from(["right-pad", "holes"]),
    gamma=st.floats(0.0, 1.0),
    lam=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**31 - 1),
)
def test_property_matches_reference(B, T, kind, gamma, lam, seed):
    g = torch.Generator().manual_seed(seed)
    rewards = torch.randn(B, T, generator=g, dtype=torch.float64)
    values = torch.randn(B, T, generator=g, dtype=torch.float64)
    lengths = torch.randint(0, T + 1, (B,), generator=g)
    mask = torch.arange(T)[None, :] < lengths[:, None]
    if kind == "holes":
        mask &= torch.rand(B, T, generator=g) > 0.3
    _check_against_reference(rewards, values, mask, gamma, lam, atol=1e-9)


@settings(max_examples=50, deadline=None)
@given(
    B=st.integers(1, 5),
    T=st.integers(1, 15),
    gamma=st.floats(0.0, 1.0),
    lam=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**31 - 1),
    junk=st.sampled_from([float("nan"), float("inf"), float("-inf"), 1e6, -3.0]),
)
def test_property_masked_positions_change_nothing(B, T, gamma, lam, seed, junk):
    g = torch.Generator().manual_seed(seed)
    rewards = torch.randn(B, T, generator=g, dtype=torch.float64)
    values = torch.randn(B, T, generator=g, dtype=torch.float64)
    mask = torch.rand(B, T, generator=g) > 0.4
    adv, ret = gae(rewards, values, mask, gamma=gamma, lam=lam)
    r2 = torch.where(mask, rewards, torch.full_like(rewards, junk))
    v2 = torch.where(mask, values, torch.randn(B, T, generator=g, dtype=torch.float64) * 100)
    adv2, ret2 = gae(r2, v2, mask, gamma=gamma, lam=lam)
    assert torch.equal(adv, adv2)
    assert torch.equal(ret, ret2)
    assert (adv[~mask] == 0).all() and (ret[~mask] == 0).all()


# ---------------------------------------------------------------- closed forms


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", ["right-pad", "holes"])
def test_gamma_lam_one_is_reward_to_go_minus_value(device, kind):
    rewards, values, mask = _batch(11, B=9, T=17, kind=kind)
    rewards, values, mask = rewards.to(device), values.to(device), mask.to(device)
    adv, ret = gae(rewards, values, mask, gamma=1.0, lam=1.0)
    # Reward-to-go over real tokens: reversed cumulative sum of the masked rewards.
    r_real = torch.where(mask, rewards, torch.zeros_like(rewards))
    to_go = torch.flip(torch.cumsum(torch.flip(r_real, dims=[1]), dim=1), dims=[1])  # [B, T]
    expected_adv = torch.where(mask, to_go - values, torch.zeros_like(rewards))
    expected_ret = torch.where(mask, to_go, torch.zeros_like(rewards))
    torch.testing.assert_close(adv, expected_adv, atol=1e-10, rtol=0)
    torch.testing.assert_close(ret, expected_ret, atol=1e-10, rtol=0)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("gamma", [1.0, 0.9])
def test_lam_zero_is_one_step_td_error(device, gamma):
    # Right padding only: the next real token after t is t+1 whenever mask[t+1] is true.
    rewards, values, mask = _batch(12, B=9, T=17, kind="right-pad")
    rewards, values, mask = rewards.to(device), values.to(device), mask.to(device)
    adv, ret = gae(rewards, values, mask, gamma=gamma, lam=0.0)
    zeros = torch.zeros_like(values)
    v_real = torch.where(mask, values, zeros)
    next_v = torch.cat([v_real[:, 1:], zeros[:, :1]], dim=1)  # [B, T], 0 after the last real token
    td = rewards + gamma * next_v - values
    expected = torch.where(mask, td, zeros)
    torch.testing.assert_close(adv, expected, atol=1e-12, rtol=0)
    torch.testing.assert_close(ret, torch.where(mask, expected + values, zeros), atol=1e-12, rtol=0)


def test_rows_are_independent():
    rewards, values, mask = _batch(21, B=6, T=10, kind="holes")
    adv, ret = gae(rewards, values, mask, gamma=0.97, lam=0.9)
    for b in range(6):
        a1, r1 = gae(rewards[b : b + 1], values[b : b + 1], mask[b : b + 1], gamma=0.97, lam=0.9)
        assert torch.equal(a1[0], adv[b]) and torch.equal(r1[0], ret[b])


def test_empty_time_dimension():
    adv, ret = gae(torch.zeros(3, 0), torch.zeros(3, 0), torch.zeros(3, 0, dtype=torch.bool))
    assert adv.shape == (3, 0) and ret.shape == (3, 0)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "r_shape,v_shape,m_shape",
    [((2, 3), (2, 4), (2, 3)), ((2, 3), (2, 3), (2, 4)), ((2, 3), (3, 2), (2, 3)), ((2, 3), (2, 3), (6,))],
)
def test_shape_mismatch_raises(r_shape, v_shape, m_shape):
    with pytest.raises(ValueError, match="same"):
        gae(torch.zeros(r_shape), torch.zeros(v_shape), torch.ones(m_shape, dtype=torch.bool))
