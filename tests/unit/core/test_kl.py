"""Per-token KL estimators and the KL-coefficient controllers."""

from __future__ import annotations

import math

import pytest
import torch

from fgrlhf.core.kl import (
    AdaptiveKLController,
    FixedKLController,
    kl_per_token,
    make_kl_controller,
)

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")),
]

LN2 = math.log(2.0)


# ---------------------------------------------------------------- estimators: hand values


@pytest.mark.parametrize("device", DEVICES)
def test_estimators_hand_values(device):
    # Token 0: π(y) = 1/2, π_ref(y) = 1   -> log r = log π_ref − log π = ln 2
    # Token 1: π(y) = 1/2, π_ref(y) = 1/4 -> log r = −ln 2
    # Token 2: equal log-probs            -> log r = 0
    logprobs = torch.tensor([[-LN2, -LN2, -1.3]], dtype=torch.float64, device=device)
    ref = torch.tensor([[0.0, -2 * LN2, -1.3]], dtype=torch.float64, device=device)
    k1 = kl_per_token(logprobs, ref, "k1").cpu().tolist()[0]
    k2 = kl_per_token(logprobs, ref, "k2").cpu().tolist()[0]
    k3 = kl_per_token(logprobs, ref, "k3").cpu().tolist()[0]
    # k1 = −log r: −ln2 = −0.693147, +ln2 = 0.693147, 0
    assert k1 == pytest.approx([-LN2, LN2, 0.0], abs=1e-12)
    # k2 = ½ (log r)²: ½ · 0.480453 = 0.2402265 for both, 0
    assert k2 == pytest.approx([0.5 * LN2**2, 0.5 * LN2**2, 0.0], abs=1e-12)
    # k3 = (r − 1) − log r: r = 2 -> 1 − 0.693147 = 0.306853 ; r = ½ -> −0.5 + 0.693147 = 0.193147
    assert k3 == pytest.approx([1.0 - LN2, -0.5 + LN2, 0.0], abs=1e-12)
    assert k3[0] == pytest.approx(0.3068528194, abs=1e-9)
    assert k3[1] == pytest.approx(0.1931471806, abs=1e-9)


def test_default_estimator_is_k1():
    lp, ref = torch.tensor([-1.0, -2.0]), torch.tensor([-1.5, -0.5])
    # −(ref − lp) = lp − ref = [0.5, −1.5]
    assert kl_per_token(lp, ref).tolist() == [0.5, -1.5]


def test_estimators_keep_shape_and_dtype():
    lp = torch.randn(3, 5, 2)
    for est in ("k1", "k2", "k3"):
        out = kl_per_token(lp, lp * 0.5, est)
        assert out.shape == lp.shape and out.dtype == lp.dtype


@pytest.mark.parametrize("device", DEVICES)
def test_k2_k3_nonnegative(device):
    g = torch.Generator().manual_seed(0)
    lp = (torch.randn(64, 128, generator=g) * 4.0).to(device)
    ref = (torch.randn(64, 128, generator=g) * 4.0).to(device)
    assert (kl_per_token(lp, ref, "k2") >= 0).all()
    assert (kl_per_token(lp, ref, "k3") >= 0).all()
    # k1 takes both signs on the same data, as it should.
    k1 = kl_per_token(lp, ref, "k1")
    assert (k1 < 0).any() and (k1 > 0).any()


def test_k3_small_log_ratio_is_accurate():
    # For tiny log r = x: k3 = e^x − 1 − x ≈ x²/2. x = 1e-6 -> 5e-13 (exp(x) − 1 would cancel).
    lp = torch.tensor([0.0], dtype=torch.float64)
    ref = torch.tensor([1e-6], dtype=torch.float64)
    assert kl_per_token(lp, ref, "k3").item() == pytest.approx(5e-13, rel=1e-5)


def test_unknown_estimator_raises():
    with pytest.raises(ValueError, match="k4"):
        kl_per_token(torch.zeros(2), torch.zeros(2), "k4")


# ---------------------------------------------------------------- estimators: unbiasedness

P = [0.5, 0.3, 0.2]  # π (the sampling policy)
Q = [0.2, 0.3, 0.5]  # π_ref


def _samples(n=200_000, seed=1234):
    g = torch.Generator().manual_seed(seed)
    p = torch.tensor(P, dtype=torch.float64)
    q = torch.tensor(Q, dtype=torch.float64)
    y = torch.multinomial(p, n, replacement=True, generator=g)  # y ~ π
    return p.log()[y], q.log()[y]


def _exact_kl() -> float:
    # KL(π‖π_ref) = Σ p log(p/q) = 0.5 ln 2.5 + 0.3 ln 1 + 0.2 ln 0.4 = 0.3 · ln 2.5 = 0.274887
    return sum(p * math.log(p / q) for p, q in zip(P, Q))


def test_exact_kl_table_value():
    assert _exact_kl() == pytest.approx(0.3 * math.log(2.5), abs=1e-12)


@pytest.mark.parametrize("estimator,tol", [("k1", 5e-3), ("k3", 3e-3)])
def test_k1_k3_unbiased(estimator, tol):
    lp, ref = _samples()
    est = kl_per_token(lp, ref, estimator).mean().item()
    assert est == pytest.approx(_exact_kl(), abs=tol)


def test_k2_is_biased_here():
    # E_π[½ (log r)²] = ½ (0.5 + 0.2) · ln²2.5 = 0.29386 ≠ KL = 0.27489
    lp, ref = _samples()
    est = kl_per_token(lp, ref, "k2").mean().item()
    exact_k2 = 0.5 * 0.7 * math.log(2.5) ** 2
    assert est == pytest.approx(exact_k2, abs=3e-3)
    assert abs(est - _exact_kl()) > 0.01


# ---------------------------------------------------------------- controllers


def test_fixed_controller():
    c = FixedKLController(0.05)
    assert c.update(123.0, 64) == 0.05
    assert c.update(0.0, 1) == 0.05
    assert c.kl_coef == 0.05
    sd = c.state_dict()
    d = FixedKLController(1.0)
    d.load_state_dict(sd)
    assert d.kl_coef == 0.05


def test_adaptive_above_target():
    c = AdaptiveKLController(kl_coef=0.1, target=6.0, horizon=10000.0)
    # e = clip(7/6 − 1, ±0.2) = 1/6 ; β = 0.1 · (1 + (1/6) · 64/10000) = 0.1 · 1.00106667 = 0.100106667
    beta = c.update(7.0, 64)
    assert beta == pytest.approx(0.1001066667, abs=1e-10)
    assert c.kl_coef == beta


def test_adaptive_below_target():
    c = AdaptiveKLController(kl_coef=0.1, target=6.0, horizon=10000.0)
    # e = 5/6 − 1 = −1/6 ; β = 0.1 · (1 − (1/6) · 64/10000) = 0.1 · 0.99893333 = 0.099893333
    assert c.update(5.0, 64) == pytest.approx(0.0998933333, abs=1e-10)


def test_adaptive_on_target_is_unchanged():
    c = AdaptiveKLController(kl_coef=0.2, target=3.0)
    assert c.update(3.0, 512) == pytest.approx(0.2, abs=1e-15)


def test_adaptive_clips_error():
    c = AdaptiveKLController(kl_coef=0.1, target=6.0, horizon=10000.0)
    # KL 60: e = 60/6 − 1 = 9 -> clipped to 0.2 ; β = 0.1 · (1 + 0.2 · 64/10000) = 0.100128
    assert c.update(60.0, 64) == pytest.approx(0.100128, abs=1e-12)
    c = AdaptiveKLController(kl_coef=0.1, target=6.0, horizon=10000.0)
    # KL 0: e = −1 -> clipped to −0.2 ; β = 0.1 · (1 − 0.00128) = 0.099872
    assert c.update(0.0, 64) == pytest.approx(0.099872, abs=1e-12)
    # Exactly at the edge: KL 7.2 gives e = 0.2, the same as any larger KL.
    a = AdaptiveKLController(kl_coef=0.1, target=6.0)
    b = AdaptiveKLController(kl_coef=0.1, target=6.0)
    assert a.update(7.2, 64) == pytest.approx(b.update(1e9, 64), abs=1e-15)


def test_adaptive_compounds_over_updates():
    c = AdaptiveKLController(kl_coef=1.0, target=1.0, horizon=100.0)
    # each step: e = clip(2 − 1) = 0.2 ; factor 1 + 0.2 · 10/100 = 1.02 ; three steps: 1.02³ = 1.061208
    for _ in range(3):
        c.update(2.0, 10)
    assert c.kl_coef == pytest.approx(1.061208, abs=1e-12)


def test_adaptive_state_dict_roundtrip():
    c = AdaptiveKLController(kl_coef=0.1, target=6.0, horizon=5000.0)
    c.update(9.0, 32)
    c.update(4.0, 32)
    sd = c.state_dict()
    assert set(sd) == {"kl_coef", "target", "horizon"}
    d = AdaptiveKLController(kl_coef=7.0, target=1.0, horizon=1.0)
    d.load_state_dict(sd)
    assert (d.kl_coef, d.target, d.horizon) == (c.kl_coef, 6.0, 5000.0)
    # The restored controller then evolves exactly like the original.
    for kl in (1.0, 12.0, 6.5):
        assert d.update(kl, 16) == c.update(kl, 16)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_adaptive_non_finite_kl_raises(bad):
    c = AdaptiveKLController(kl_coef=0.1, target=6.0)
    with pytest.raises(FloatingPointError):
        c.update(bad, 64)
    assert c.kl_coef == 0.1  # untouched


@pytest.mark.parametrize("target,horizon", [(0.0, 100.0), (-1.0, 100.0), (6.0, 0.0), (6.0, -5.0)])
def test_adaptive_rejects_non_positive_target_or_horizon(target, horizon):
    with pytest.raises(ValueError):
        AdaptiveKLController(kl_coef=0.1, target=target, horizon=horizon)


def test_make_kl_controller():
    fixed = make_kl_controller(0.05)
    assert isinstance(fixed, FixedKLController) and fixed.kl_coef == 0.05
    adaptive = make_kl_controller(0.1, adaptive=True, target=6.0, horizon=2000.0)
    assert isinstance(adaptive, AdaptiveKLController)
    assert (adaptive.kl_coef, adaptive.target, adaptive.horizon) == (0.1, 6.0, 2000.0)
    # a target without adaptive=True is ignored: still fixed
    assert isinstance(make_kl_controller(0.1, target=6.0), FixedKLController)


def test_make_kl_controller_errors():
    with pytest.raises(ValueError, match="target"):
        make_kl_controller(0.1, adaptive=True)
    with pytest.raises(ValueError):
        make_kl_controller(0.1, adaptive=True, target=0.0)
    with pytest.raises(ValueError):
        make_kl_controller(0.1, adaptive=True, target=6.0, horizon=0.0)
