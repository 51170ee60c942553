"""PPO losses, loss aggregation, entropy and log-probs from logits."""

from __future__ import annotations

import math

import pytest
import torch

from fgrlhf.core.losses import (
    aggregate_loss,
    entropy_from_logits,
    logprobs_from_logits,
    loss_denominator,
    policy_loss,
    value_loss,
)

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")),
]
NAN = float("nan")
INF = float("inf")


# ---------------------------------------------------------------- policy loss

# Six real tokens, clip_eps = 0.2 (clip range [0.8, 1.2]), plus one padded token of junk.
#   tok  A    ρ     −A·ρ    −A·clip(ρ)   max     clipped term active?
#   0   +1   1.1   −1.1    −1.1         −1.1    no  (inside)
#   1   +1   1.5   −1.5    −1.2         −1.2    yes (A>0, above range)
#   2   −1   0.5   +0.5    +0.8         +0.8    yes (A<0, below range)
#   3   −1   1.5   +1.5    +1.2         +1.5    no  (A<0, above: pessimistic unclipped)
#   4   +1   0.5   −0.5    −0.8         −0.5    no  (A>0, below: pessimistic unclipped)
#   5   −2   0.9   +1.8    +1.8         +1.8    no  (inside; equal terms)
#   token-mean: (−1.1 − 1.2 + 0.8 + 1.5 − 0.5 + 1.8) / 6 = 1.3 / 6 = 0.2166667 ; clip fraction 2/6
POLICY_ADV = [1.0, 1.0, -1.0, -1.0, 1.0, -2.0]
POLICY_RATIO = [1.1, 1.5, 0.5, 1.5, 0.5, 0.9]


def _policy_case(device, pad_adv=NAN, pad_logprob=50.0):
    adv = torch.tensor([POLICY_ADV + [pad_adv]], dtype=torch.float64, device=device)
    logprobs = torch.tensor([[math.log(x) for x in POLICY_RATIO] + [pad_logprob]], dtype=torch.float64,
                            device=device)
    old = torch.zeros_like(logprobs)
    mask = torch.tensor([[True] * 6 + [False]], device=device)
    return logprobs, old, adv, mask


@pytest.mark.parametrize("device", DEVICES)
def test_policy_loss_hand(device):
    logprobs, old, adv, mask = _policy_case(device)
    loss, clip_frac = policy_loss(logprobs, old, adv, mask, clip_eps=0.2)
    assert loss.item() == pytest.approx(1.3 / 6.0, abs=1e-12)
    assert clip_frac.item() == pytest.approx(2.0 / 6.0, abs=1e-12)
    assert not clip_frac.requires_grad


@pytest.mark.parametrize("i,expected,clipped", [
    (0, -1.1, 0.0), (1, -1.2, 1.0), (2, 0.8, 1.0), (3, 1.5, 0.0), (4, -0.5, 0.0), (5, 1.8, 0.0),
])
def test_policy_loss_single_tokens(i, expected, clipped):
    # Each row of the table above on its own.
    lp = torch.tensor([[math.log(POLICY_RATIO[i])]], dtype=torch.float64)
    adv = torch.tensor([[POLICY_ADV[i]]], dtype=torch.float64)
    loss, frac = policy_loss(lp, torch.zeros_like(lp), adv, torch.ones(1, 1, dtype=torch.bool))
    assert loss.item() == pytest.approx(expected, abs=1e-12)
    assert frac.item() == clipped


def test_policy_loss_nonzero_old_logprobs():
    # ρ = exp(−1.0 − (−1.5)) = e^0.5 = 1.6487 ; A = 2 -> clipped: −2 · 1.2 = −2.4 (clip active)
    # ρ = exp(−2.0 − (−1.9)) = e^−0.1 = 0.904837 ; A = 3 -> inside: −3 · 0.904837 = −2.714512
    # mean = (−2.4 − 2.714512) / 2 = −2.557256
    lp = torch.tensor([[-1.0, -2.0]], dtype=torch.float64)
    old = torch.tensor([[-1.5, -1.9]], dtype=torch.float64)
    adv = torch.tensor([[2.0, 3.0]], dtype=torch.float64)
    loss, frac = policy_loss(lp, old, adv, torch.ones(1, 2, dtype=torch.bool))
    assert loss.item() == pytest.approx((-2.4 - 3 * math.exp(-0.1)) / 2, abs=1e-12)
    assert frac.item() == 0.5


def test_policy_loss_clip_eps_changes_range():
    # ρ = 1.5, A = 1: with clip_eps = 0.6 the range is [0.4, 1.6], so no clipping: −1.5.
    lp = torch.tensor([[math.log(1.5)]], dtype=torch.float64)
    loss, frac = policy_loss(lp, torch.zeros_like(lp), torch.ones_like(lp), torch.ones(1, 1, dtype=torch.bool),
                             clip_eps=0.6)
    assert loss.item() == pytest.approx(-1.5)
    assert frac.item() == 0.0


@pytest.mark.parametrize("pad_adv,pad_lp", [(NAN, 50.0), (INF, -INF), (1e9, 0.0), (-INF, NAN)])
def test_policy_loss_ignores_padding(pad_adv, pad_lp):
    logprobs, old, adv, mask = _policy_case("cpu", pad_adv=pad_adv, pad_logprob=pad_lp)
    loss, clip_frac = policy_loss(logprobs, old, adv, mask)
    assert loss.item() == pytest.approx(1.3 / 6.0, abs=1e-12)
    assert clip_frac.item() == pytest.approx(2.0 / 6.0, abs=1e-12)


def test_policy_loss_gradient_hand():
    # Token-mean over 6 tokens: dL/dlogπ_t = −A_t·ρ_t / 6 where the unclipped term is active
    # (or the two are equal and the clip is inactive), 0 where the clipped term is active.
    #   tok0: −1·1.1/6 ; tok1: 0 ; tok2: 0 ; tok3: +1·1.5/6 = 0.25 ; tok4: −1·0.5/6 ; tok5: +2·0.9/6 = 0.3
    logprobs, old, adv, mask = _policy_case("cpu", pad_adv=0.0, pad_logprob=0.0)
    logprobs.requires_grad_(True)
    loss, _ = policy_loss(logprobs, old, adv, mask)
    loss.backward()
    expected = [-1.1 / 6, 0.0, 0.0, 0.25, -0.5 / 6, 0.3, 0.0]
    assert logprobs.grad.tolist()[0] == pytest.approx(expected, abs=1e-12)


# ---------------------------------------------------------------- value loss

# clip_eps = 0.2
#   tok  V     V_old  R     (V−R)²   V_clip = V_old + clip(V−V_old)   (V_clip−R)²     ½·max
#   0   1.0   0.5    1.0   0        0.5 + 0.2 = 0.7                    0.09           0.045  (clip active)
#   1   1.0   0.9    0.0   1        0.9 + 0.1 = 1.0                    1              0.5
#   2   0.0   1.0    2.0   4        1.0 − 0.2 = 0.8                    1.44           2.0
#   token-mean: (0.045 + 0.5 + 2.0) / 3 = 0.8483333 ; clip fraction 1/3
#   unclipped (clip_eps=None): ½ (0 + 1 + 4) / 3 = 0.8333333 ; clip fraction 0


def _value_case(device):
    v = torch.tensor([[1.0, 1.0, 0.0, NAN]], dtype=torch.float64, device=device)
    old = torch.tensor([[0.5, 0.9, 1.0, INF]], dtype=torch.float64, device=device)
    ret = torch.tensor([[1.0, 0.0, 2.0, -INF]], dtype=torch.float64, device=device)
    mask = torch.tensor([[True, True, True, False]], device=device)
    return v, old, ret, mask


@pytest.mark.parametrize("device", DEVICES)
def test_value_loss_clipped_hand(device):
    v, old, ret, mask = _value_case(device)
    loss, frac = value_loss(v, old, ret, mask, clip_eps=0.2)
    assert loss.item() == pytest.approx(2.545 / 3, abs=1e-12)
    assert frac.item() == pytest.approx(1 / 3, abs=1e-12)


@pytest.mark.parametrize("device", DEVICES)
def test_value_loss_unclipped_hand(device):
    v, old, ret, mask = _value_case(device)
    loss, frac = value_loss(v, old, ret, mask, clip_eps=None)
    assert loss.item() == pytest.approx(2.5 / 3, abs=1e-12)
    assert frac.item() == 0.0


def test_value_loss_gradient_hand():
    # clip_eps=0.2, token-mean over 3 tokens.
    # tok0: clipped term active (V_clip is constant in V there) -> 0
    # tok1: both equal, inside clip range -> d/dV ½(V−R)²/3 = (1 − 0)/3
    # tok2: unclipped active -> (0 − 2)/3
    v, old, ret, mask = _value_case("cpu")
    v = torch.where(mask, v, torch.zeros_like(v)).requires_grad_(True)
    old = torch.where(mask, old, torch.zeros_like(old))
    ret = torch.where(mask, ret, torch.zeros_like(ret))
    loss, _ = value_loss(v, old, ret, mask, clip_eps=0.2)
    loss.backward()
    assert v.grad.tolist()[0] == pytest.approx([0.0, 1 / 3, -2 / 3, 0.0], abs=1e-12)


def test_value_clip_fraction_ignores_rounding_inside_the_range():
    # |V − V_old| = 0.054 < 0.2: nothing is clipped. In float32, V_old + (V − V_old) rounds to
    # one ulp away from V, and that rounded copy's squared error is the larger one: comparing
    # the squared errors alone counted this token as clipped (a fraction of 1.0).
    def t(x):
        return torch.tensor([[x]], dtype=torch.float32)

    mask = torch.tensor([[True]])
    v, old, ret = t(0.003994009457528591), t(-0.05006125941872597), t(-0.20949408411979675)
    assert float(old + torch.clamp(v - old, -0.2, 0.2)) != float(v)  # the rounding the case is about
    loss, frac = value_loss(v, old, ret, mask, 0.2)
    assert frac.item() == 0.0
    assert loss.item() == pytest.approx(0.5 * (0.003994009457528591 + 0.20949408411979675) ** 2, rel=1e-6)


def test_value_clip_fraction_counts_only_moves_beyond_the_range():
    # Three tokens, ε = 0.2, R = 0:
    #   V_old 0, V 0.5  → moved 0.5 > ε, V^clip = 0.2: (0.2)² < (0.5)², unclipped taken → not counted
    #   V_old 1, V 0.5  → moved 0.5 > ε, V^clip = 0.8: (0.8)² > (0.5)², clipped taken   → counted
    #   V_old 1, V 0.9  → moved 0.1 < ε: inside the range                                → not counted
    v = torch.tensor([[0.5, 0.5, 0.9]])
    old = torch.tensor([[0.0, 1.0, 1.0]])
    _, frac = value_loss(v, old, torch.zeros_like(v), torch.ones_like(v, dtype=torch.bool), 0.2)
    assert frac.item() == pytest.approx(1 / 3)


# ---------------------------------------------------------------- aggregation

# Ragged mask: row 0 has 3 real tokens, row 1 has 1, row 2 none (an empty generation).
AGG_LOSS = [[1.0, 2.0, 3.0, NAN], [20.0, INF, 30.0, 40.0], [5.0, 6.0, -INF, 8.0]]
AGG_MASK = [[1, 1, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode,expected", [
    # token-mean: (1 + 2 + 3 + 20) / 4 tokens = 26/4 = 6.5
    ("token-mean", 6.5),
    # seq-mean-token-mean: row means 6/3 = 2, 20/1 = 20, empty -> 0 ; mean (2 + 20 + 0)/3 = 22/3
    ("seq-mean-token-mean", 22.0 / 3.0),
    # seq-mean-token-sum: row sums 6, 20, 0 ; mean 26/3
    ("seq-mean-token-sum", 26.0 / 3.0),
])
def test_aggregate_modes_hand(device, mode, expected):
    per_token = torch.tensor(AGG_LOSS, dtype=torch.float64, device=device)
    mask = torch.tensor(AGG_MASK, device=device).bool()
    out = aggregate_loss(per_token, mask, mode)
    assert out.dim() == 0
    assert out.item() == pytest.approx(expected, abs=1e-12)


def test_aggregate_default_is_token_mean():
    per_token = torch.tensor(AGG_LOSS, dtype=torch.float64)
    assert aggregate_loss(per_token, torch.tensor(AGG_MASK)).item() == pytest.approx(6.5)


def test_aggregation_passes_through_policy_loss():
    # Unclipped tokens with ρ = 1, so the per-token loss is −A. Row 0: A = 1, 2 ; row 1: A = 6.
    # token-mean: −(1 + 2 + 6)/3 = −3 ; seq-mean-token-mean: −(1.5 + 6)/2 = −3.75 ; seq-mean-token-sum: −(3 + 6)/2 = −4.5
    lp = torch.zeros(2, 2, dtype=torch.float64)
    adv = torch.tensor([[1.0, 2.0], [6.0, NAN]], dtype=torch.float64)
    mask = torch.tensor([[True, True], [True, False]])
    for mode, expected in [("token-mean", -3.0), ("seq-mean-token-mean", -3.75), ("seq-mean-token-sum", -4.5)]:
        loss, _ = policy_loss(lp, lp, adv, mask, aggregation=mode)
        assert loss.item() == pytest.approx(expected)
        vloss, _ = value_loss(lp, lp, adv, mask, clip_eps=None, aggregation=mode)
        # ½ A² per token: token-mean (0.5 + 2 + 18)/3 ; seq-mean-token-mean (1.25 + 18)/2 ; seq-mean-token-sum (2.5 + 18)/2
        vexp = {"token-mean": 20.5 / 3, "seq-mean-token-mean": 19.25 / 2, "seq-mean-token-sum": 20.5 / 2}[mode]
        assert vloss.item() == pytest.approx(vexp)


def test_aggregate_unknown_mode_raises():
    with pytest.raises(ValueError, match="token-sum-mean"):
        aggregate_loss(torch.zeros(2, 2), torch.ones(2, 2), "token-sum-mean")
    with pytest.raises(ValueError):
        policy_loss(torch.zeros(1, 1), torch.zeros(1, 1), torch.zeros(1, 1), torch.ones(1, 1), aggregation="sum")


# ---------------------------------------------------------------- entropy and log-probs


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_entropy_matches_definition(device, seed):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, 5, 11, generator=g) * 3.0
    out = entropy_from_logits(logits.to(device))
    assert out.shape == (3, 5)
    # −Σ p log p, in float64 from the probability table
    p = torch.softmax(logits.double(), dim=-1)
    expected = -(p * torch.log(p)).sum(dim=-1)
    torch.testing.assert_close(out.double().cpu(), expected, atol=1e-5, rtol=0)


def test_entropy_hand():
    # logits [0, ln 3] -> p = [1/4, 3/4] ; H = −(¼ ln ¼ + ¾ ln ¾) = 0.25·1.386294 + 0.75·0.287682 = 0.562335
    logits = torch.tensor([[[0.0, math.log(3.0)]]])
    assert entropy_from_logits(logits).item() == pytest.approx(0.5623351446, abs=1e-6)


@pytest.mark.parametrize("V", [2, 50, 32000])
@pytest.mark.parametrize("c", [0.0, -7.5, 1000.0])
def test_entropy_uniform_is_log_v(V, c):
    logits = torch.full((2, 3, V), c)
    out = entropy_from_logits(logits)
    torch.testing.assert_close(out, torch.full((2, 3), math.log(V)), atol=1e-4, rtol=0)


def test_entropy_near_deterministic_is_zero():
    logits = torch.zeros(1, 1, 10)
    logits[..., 3] = 100.0  # p ≈ 1 on one token; the rest ≈ e^−100
    assert entropy_from_logits(logits).item() == pytest.approx(0.0, abs=1e-6)


def test_entropy_bfloat16_input_returns_float32():
    logits = torch.randn(2, 4, 7).bfloat16()
    out = entropy_from_logits(logits)
    assert out.dtype == torch.float32
    p = torch.softmax(logits.double(), dim=-1)
    torch.testing.assert_close(out.double(), -(p * p.log()).sum(-1), atol=1e-5, rtol=0)


def test_entropy_with_masked_vocab_entry():
    # logits [0, 0, −inf] -> p = [½, ½, 0] ; H = ln 2 (0·log 0 = 0 by convention)
    logits = torch.tensor([[[0.0, 0.0, -INF]]])
    assert entropy_from_logits(logits).item() == pytest.approx(math.log(2.0), abs=1e-6)


@pytest.mark.parametrize("device", DEVICES)
def test_logprobs_match_log_softmax_gather(device):
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(4, 6, 13, generator=g) * 2.0
    labels = torch.randint(0, 13, (4, 6), generator=g)
    out = logprobs_from_logits(logits.to(device), labels.to(device))
    assert out.shape == (4, 6)
    expected = torch.log_softmax(logits.double(), dim=-1).gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(out.double().cpu(), expected, atol=1e-5, rtol=0)


def test_logprobs_hand():
    # logits [0, ln 3] -> p = [¼, ¾] ; labels 1, 0 -> ln ¾ = −0.287682, ln ¼ = −1.386294
    logits = torch.tensor([[[0.0, math.log(3.0)], [0.0, math.log(3.0)]]])
    labels = torch.tensor([[1, 0]])
    assert logprobs_from_logits(logits, labels).tolist()[0] == pytest.approx(
        [math.log(0.75), math.log(0.25)], abs=1e-6)


def test_logprobs_large_logits_are_stable():
    # Shift-invariance: adding 1e4 to every logit changes nothing ; no overflow.
    logits = torch.tensor([[[1.0, 2.0, 3.0]]])
    labels = torch.tensor([[2]])
    a = logprobs_from_logits(logits, labels)
    b = logprobs_from_logits(logits + 1e4, labels)
    # ln(e³ / (e + e² + e³)) = −0.407606
    assert a.item() == pytest.approx(-0.4076059644, abs=1e-6)
    assert b.item() == pytest.approx(a.item(), abs=1e-3)


# ---------------------------------------------------------------- gradients flow


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", ["token-mean", "seq-mean-token-mean", "seq-mean-token-sum"])
def test_gradients_flow_through_full_loss(device, mode):
    g = torch.Generator().manual_seed(9)
    B, T, V = 3, 5, 7
    logits = (torch.randn(B, T, V, generator=g) * 2).to(device).requires_grad_(True)
    values = torch.randn(B, T, generator=g).to(device).requires_grad_(True)
    labels = torch.randint(0, V, (B, T), generator=g).to(device)
    old_lp = (torch.randn(B, T, generator=g) * 0.3 - 2.0).to(device)
    adv = torch.randn(B, T, generator=g).to(device)
    old_v = torch.randn(B, T, generator=g).to(device)
    ret = torch.randn(B, T, generator=g).to(device)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]], device=device).bool()

    lp = logprobs_from_logits(logits, labels)
    pl, _ = policy_loss(lp, old_lp, adv, mask, aggregation=mode)
    vl, _ = value_loss(values, old_v, ret, mask, aggregation=mode)
    ent = aggregate_loss(entropy_from_logits(logits), mask, mode)
    loss = pl + 0.5 * vl - 0.01 * ent
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(logits.grad).all() and torch.isfinite(values.grad).all()
    # Real tokens get a gradient, padded ones none.
    assert (logits.grad[mask].abs().sum(-1) > 0).all()
    assert (logits.grad[~mask] == 0).all()
    assert (values.grad[~mask] == 0).all()
    assert values.grad[mask].abs().sum() > 0


# ---------------------------------------------------------------- split batches


@pytest.mark.parametrize("mode", ["token-mean", "seq-mean-token-mean", "seq-mean-token-sum"])
def test_pieces_with_the_whole_denominator_add_up_to_the_whole(mode):
    # Uneven pieces (3 + 1 + 2 rows, one response empty): with the whole batch's denominator,
    # the pieces' losses sum to the whole batch's loss. This is what makes gradient
    # accumulation and data-parallel shards equal to one big batch.
    g = torch.Generator().manual_seed(0)
    per_token = torch.randn(6, 5, generator=g, dtype=torch.float64)
    mask = torch.rand(6, 5, generator=g) > 0.3
    mask[4] = False
    whole = aggregate_loss(per_token, mask, mode)
    denom = loss_denominator(mask, mode)
    pieces = [slice(0, 3), slice(3, 4), slice(4, 6)]
    total = sum(aggregate_loss(per_token[s], mask[s], mode, denom) for s in pieces)
    torch.testing.assert_close(total, whole)
    # Without it, the mean of the pieces' means is not the whole batch's loss.
    naive = sum(aggregate_loss(per_token[s], mask[s], mode) for s in pieces) / 3
    assert not torch.allclose(naive, whole)


def test_loss_denominator_counts():
    mask = torch.tensor([[True, True, False], [False, False, False]])
    assert loss_denominator(mask, "token-mean").item() == 2
    assert loss_denominator(mask, "seq-mean-token-sum").item() == 2
    with pytest.raises(ValueError, match="unknown loss aggregation"):
        loss_denominator(mask, "sum")
