"""SoundingQueryMatcher on hand-built frames whose right query is known."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from avs_model.modeling.losses import dice_loss, sigmoid_focal_loss
from avs_model.modeling.matcher import SoundingQueryMatcher

GT = torch.tensor(
    [[1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0]]
)  # [4, 4], left half


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def exact_vs_loud_frame() -> tuple[torch.Tensor, torch.Tensor]:
    """Query 2 has the exact mask but a low score; query 0 a blank mask and the highest score."""
    masks = torch.zeros(1, 3, 4, 4)
    masks[0, 1] = -10 * (2 * GT - 1)  # the inverse mask
    masks[0, 2] = 10 * (2 * GT - 1)  # the exact mask
    scores = torch.tensor([[3.0, -2.0, -0.5]])
    return masks, scores


def test_exact_mask_beats_loud_query_with_default_weights() -> None:
    masks, scores = exact_vs_loud_frame()
    matcher = SoundingQueryMatcher()
    idx = matcher({"pred_masks": masks, "pred_scores": scores}, {"masks": GT[None]})
    assert idx.tolist() == [2]

    # cost of query 0 by hand: p = 0.5 on 16 pixels, 8 of them positive
    focal0 = (8 * 0.25 * 0.25 * math.log(2) + 8 * 0.75 * 0.25 * math.log(2)) / 16
    dice0 = 1 - (2 * 4 + 1) / (8 + 8 + 1)
    cost0 = 2 * focal0 + 5 * dice0 + 2 * softplus(-3.0)
    cost = matcher.cost(masks, scores, GT[None])
    assert cost.shape == (1, 3)
    assert cost[0, 0].item() == pytest.approx(cost0, rel=1e-5)
    # query 2: mask costs ~0, sound cost 2 * softplus(0.5)
    assert cost[0, 2].item() == pytest.approx(2 * softplus(0.5), abs=1e-3)
    assert cost0 == pytest.approx(2.6234, abs=1e-4)
    assert 2 * softplus(0.5) == pytest.approx(1.9482, abs=1e-4)


def test_weights_decide_as_the_cost_says() -> None:
    masks, scores = exact_vs_loud_frame()
    outputs = {"pred_masks": masks, "pred_scores": scores}
    targets = {"masks": GT[None]}
    # a heavy sound weight: the loud query wins despite its blank mask
    assert SoundingQueryMatcher(cost_sound=10.0)(outputs, targets).tolist() == [0]
    # sound only: the highest score wins
    only_sound = SoundingQueryMatcher(cost_focal=0.0, cost_dice=0.0, cost_sound=1.0)
    assert only_sound(outputs, targets).tolist() == [0]
    # masks only: the exact mask wins
    only_mask = SoundingQueryMatcher(cost_sound=0.0)
    assert only_mask(outputs, targets).tolist() == [2]
    with pytest.raises(ValueError, match="all matcher costs are 0"):
        SoundingQueryMatcher(cost_focal=0.0, cost_dice=0.0, cost_sound=0.0)


def test_empty_and_invalid_frames_get_minus_one() -> None:
    masks = torch.zeros(4, 2, 4, 4)
    masks[:, 1] = 10 * (2 * GT - 1)
    scores = torch.zeros(4, 2)
    gt = torch.stack([GT, torch.zeros(4, 4), GT, GT])
    valid = torch.tensor([True, True, False, True])
    idx = SoundingQueryMatcher()(
        {"pred_masks": masks, "pred_scores": scores}, {"masks": gt, "valid": valid}
    )
    assert idx.dtype == torch.long
    assert idx.tolist() == [1, -1, -1, 1]
    # no valid positive at all
    idx = SoundingQueryMatcher()(
        {"pred_masks": masks, "pred_scores": scores},
        {"masks": torch.zeros(4, 4, 4), "valid": valid},
    )
    assert idx.tolist() == [-1, -1, -1, -1]


def test_missing_valid_means_all_annotated_and_bool_masks() -> None:
    masks = torch.zeros(2, 3, 4, 4)
    masks[0, 0] = 10 * (2 * GT - 1)
    masks[1, 2] = 10 * (2 * GT - 1)
    idx = SoundingQueryMatcher()(
        {"pred_masks": masks, "pred_scores": torch.zeros(2, 3)},
        {"masks": torch.stack([GT, GT]).bool()},
    )
    assert idx.tolist() == [0, 2]


def test_mask_costs_use_logits_upsampled_to_gt_resolution() -> None:
    # low-res logits [2, 2]: query 0 lights the left column, query 1 the top-left cell only;
    # at 8 x 8 the left half of the GT is what query 0 covers after bilinear upsampling.
    gt = torch.zeros(1, 8, 8)
    gt[0, :, :4] = 1.0
    masks = torch.tensor([[[[6.0, -6.0], [6.0, -6.0]], [[6.0, -6.0], [-6.0, -6.0]]]])
    scores = torch.zeros(1, 2)
    matcher = SoundingQueryMatcher()
    cost = matcher.cost(masks, scores, gt)
    up = F.interpolate(masks, size=(8, 8), mode="bilinear", align_corners=False).flatten(2)
    flat_gt = gt.flatten(1)
    for q in range(2):
        ref = (
            2 * sigmoid_focal_loss(up[0, q][None], flat_gt).item()
            + 5 * dice_loss(up[0, q][None], flat_gt).item()
            + 2 * math.log(2)
        )
        assert cost[0, q].item() == pytest.approx(ref, rel=1e-5)
    assert matcher({"pred_masks": masks, "pred_scores": scores}, {"masks": gt}).tolist() == [0]


def test_batched_frames_each_get_their_own_query() -> None:
    g = torch.Generator().manual_seed(0)
    n, q = 6, 5
    gts = (torch.rand(n, 8, 8, generator=g) > 0.5).float()
    masks = torch.randn(n, q, 8, 8, generator=g)
    right = torch.tensor([4, 0, 3, 1, 2, 4])
    masks[torch.arange(n), right] = 8 * (2 * gts - 1)
    idx = SoundingQueryMatcher()(
        {"pred_masks": masks, "pred_scores": torch.zeros(n, q)}, {"masks": gts}
    )
    assert idx.tolist() == right.tolist()


def test_no_grad_and_shape_checks() -> None:
    masks = torch.randn(2, 3, 4, 4, requires_grad=True)
    scores = torch.randn(2, 3, requires_grad=True)
    matcher = SoundingQueryMatcher()
    idx = matcher({"pred_masks": masks, "pred_scores": scores}, {"masks": torch.stack([GT, GT])})
    assert not idx.requires_grad
    assert not matcher.cost(masks, scores, torch.stack([GT, GT])).requires_grad
    with pytest.raises(ValueError, match="pred_scores"):
        matcher({"pred_masks": masks, "pred_scores": scores[:, :2]}, {"masks": GT[None]})
    with pytest.raises(ValueError, match="masks"):
        matcher({"pred_masks": masks, "pred_scores": scores}, {"masks": GT[None]})
    with pytest.raises(ValueError, match="valid"):
        matcher(
            {"pred_masks": masks, "pred_scores": scores},
            {"masks": torch.stack([GT, GT]), "valid": torch.ones(3, dtype=torch.bool)},
        )


def test_cost_is_full_precision_under_autocast_and_half_inputs() -> None:
    g = torch.Generator().manual_seed(1)
    masks = torch.randn(3, 5, 8, 8, generator=g)
    scores = torch.randn(3, 5, generator=g)
    gts = (torch.rand(3, 16, 16, generator=g) > 0.5).float()
    matcher = SoundingQueryMatcher()
    ref = matcher.cost(masks, scores, gts)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast = matcher.cost(masks, scores, gts)
    assert under_autocast.dtype == torch.float32
    torch.testing.assert_close(under_autocast, ref)
    half = matcher.cost(masks.bfloat16(), scores.bfloat16(), gts.bool())
    assert half.dtype == torch.float32
    torch.testing.assert_close(half, ref, atol=0.05, rtol=0.02)


def test_non_binary_targets_are_refused() -> None:
    masks = torch.zeros(1, 2, 4, 4)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        SoundingQueryMatcher()(
            {"pred_masks": masks, "pred_scores": torch.zeros(1, 2)}, {"masks": 255 * GT[None]}
        )
