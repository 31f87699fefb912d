"""Focal, dice and sounding losses against hand-computed values; pairwise against per pair."""

from __future__ import annotations

import math

import pytest
import torch

from avs_model.modeling.losses import (
    dice_loss,
    pairwise_dice_loss,
    pairwise_sigmoid_focal_loss,
    sigmoid_focal_loss,
    sounding_bce,
)


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def focal_by_hand(x: float, y: float, alpha: float = 0.25, gamma: float = 2.0) -> float:
    p = sigmoid(x)
    ce = -(y * math.log(p) + (1 - y) * math.log(1 - p))
    p_t = p * y + (1 - p) * (1 - y)
    alpha_t = alpha * y + (1 - alpha) * (1 - y)
    return alpha_t * (1 - p_t) ** gamma * ce


def test_focal_at_zero_logits() -> None:
    # p = 0.5: positive pixel 0.25 * 0.25 * ln 2, negative pixel 0.75 * 0.25 * ln 2
    logits = torch.zeros(1, 2, dtype=torch.float64)
    targets = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    expected = (0.25 * 0.25 * math.log(2) + 0.75 * 0.25 * math.log(2)) / 2
    assert sigmoid_focal_loss(logits, targets).item() == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(0.0866434, abs=1e-7)


def test_focal_general_values_and_alpha_off() -> None:
    xs, ys = [2.0, -1.5, 0.3, 4.0], [1.0, 1.0, 0.0, 0.0]
    logits = torch.tensor([xs], dtype=torch.float64)
    targets = torch.tensor([ys], dtype=torch.float64)
    expected = sum(focal_by_hand(x, y) for x, y in zip(xs, ys, strict=True)) / 4
    assert sigmoid_focal_loss(logits, targets).item() == pytest.approx(expected, rel=1e-12)
    no_alpha = sum(focal_by_hand(x, y, alpha=0.5) for x, y in zip(xs, ys, strict=True)) / 4 * 2
    got = sigmoid_focal_loss(logits, targets, alpha=-1).item()
    assert got == pytest.approx(no_alpha, rel=1e-12)
    gamma0 = sum(focal_by_hand(x, y, gamma=0.0) for x, y in zip(xs, ys, strict=True)) / 4
    got = sigmoid_focal_loss(logits, targets, gamma=0.0).item()
    assert got == pytest.approx(gamma0, rel=1e-12)


def test_focal_reduces_last_dim_only() -> None:
    logits = torch.randn(3, 4, 10, generator=torch.Generator().manual_seed(0))
    targets = (torch.rand(3, 4, 10, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    out = sigmoid_focal_loss(logits, targets)
    assert out.shape == (3, 4)
    assert out[1, 2].item() == pytest.approx(
        sigmoid_focal_loss(logits[1, 2][None], targets[1, 2][None]).item(), rel=1e-6
    )


def test_dice_hand_values() -> None:
    # p = 0.5 everywhere, target [1, 1, 0, 0]: 1 - (2 * 1 + 1) / (2 + 2 + 1) = 0.4
    logits = torch.zeros(1, 4, dtype=torch.float64)
    targets = torch.tensor([[1.0, 1.0, 0.0, 0.0]], dtype=torch.float64)
    assert dice_loss(logits, targets).item() == pytest.approx(0.4, abs=1e-12)
    # general logits
    xs, ys = [3.0, -2.0, 0.5, -0.1], [1.0, 0.0, 1.0, 0.0]
    p = [sigmoid(x) for x in xs]
    inter = sum(pi * yi for pi, yi in zip(p, ys, strict=True))
    expected = 1 - (2 * inter + 1) / (sum(p) + sum(ys) + 1)
    got = dice_loss(torch.tensor([xs], dtype=torch.float64), torch.tensor([ys])).item()
    assert got == pytest.approx(expected, rel=1e-12)


def test_dice_perfect_and_empty_target() -> None:
    logits = torch.tensor([[50.0, 50.0, -50.0, -50.0]])
    assert dice_loss(logits, torch.tensor([[1.0, 1.0, 0.0, 0.0]])).item() == pytest.approx(
        0.0, abs=1e-6
    )
    # an empty target with an empty prediction: the +1 smoothing gives 0, not NaN
    assert dice_loss(torch.full((1, 4), -50.0), torch.zeros(1, 4)).item() == pytest.approx(
        0.0, abs=1e-6
    )


def test_pairwise_equal_elementwise() -> None:
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 5, 30, generator=g, dtype=torch.float64) * 3  # [N, Q, P]
    targets = (torch.rand(2, 3, 30, generator=g) > 0.6).double()  # [N, M, P]
    focal = pairwise_sigmoid_focal_loss(logits, targets)
    dice = pairwise_dice_loss(logits, targets)
    assert focal.shape == dice.shape == (2, 5, 3)
    for n in range(2):
        for q in range(5):
            for m in range(3):
                x, y = logits[n, q][None], targets[n, m][None]
                assert focal[n, q, m].item() == pytest.approx(
                    sigmoid_focal_loss(x, y).item(), rel=1e-10
                )
                assert dice[n, q, m].item() == pytest.approx(dice_loss(x, y).item(), rel=1e-10)
    no_alpha = pairwise_sigmoid_focal_loss(logits, targets, alpha=-1.0, gamma=1.0)
    ref = sigmoid_focal_loss(logits[0, 1][None], targets[0, 2][None], alpha=-1.0, gamma=1.0)
    assert no_alpha[0, 1, 2].item() == pytest.approx(ref.item(), rel=1e-10)


def test_sounding_bce() -> None:
    scores = torch.tensor([0.0, 2.0, -1.0], dtype=torch.float64)
    assert sounding_bce(scores, 1.0).tolist() == pytest.approx(
        [math.log(2), math.log1p(math.exp(-2.0)), math.log1p(math.exp(1.0))], rel=1e-12
    )
    targets = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    assert sounding_bce(scores, targets).tolist() == pytest.approx(
        [math.log(2), math.log1p(math.exp(2.0)), math.log1p(math.exp(1.0))], rel=1e-12
    )


def test_large_logits_stay_finite_and_differentiable() -> None:
    logits = torch.tensor([[80.0, -80.0, 80.0, -80.0]], requires_grad=True)
    targets = torch.tensor([[0.0, 1.0, 1.0, 0.0]])
    loss = sigmoid_focal_loss(logits, targets).sum() + dice_loss(logits, targets).sum()
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(logits.grad).all()
    pair = pairwise_sigmoid_focal_loss(logits.detach()[None], targets[None])
    assert torch.isfinite(pair).all()
