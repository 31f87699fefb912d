"""select_sounding_mask: the highest-scoring query, upsampled, optionally gated."""

from __future__ import annotations

import math

import pytest
import torch

from avs_model.evaluation.inference import EMPTY_LOGIT, select_sounding_mask
from avs_model.evaluation.metrics import mask_iou


def outputs() -> dict:
    # 2 frames, 3 queries, masks [2, 2]; every query's mask is a distinct constant
    masks = torch.arange(1.0, 4.0).view(1, 3, 1, 1).expand(2, 3, 2, 2).clone()
    scores = torch.tensor([[0.1, 2.0, -1.0], [-3.0, -4.0, -2.5]])
    return {"pred_masks": masks, "pred_scores": scores, "aux_outputs": []}


def test_picks_the_highest_score_per_frame() -> None:
    logits, scores = select_sounding_mask(outputs(), size=(6, 5))
    assert logits.shape == (2, 6, 5)
    assert torch.all(logits[0] == 2.0)  # frame 0: query 1
    assert torch.all(logits[1] == 3.0)  # frame 1: query 2
    expected = [1 / (1 + math.exp(-2.0)), 1 / (1 + math.exp(2.5))]
    assert scores.tolist() == pytest.approx(expected, rel=1e-6)


def test_bilinear_upsampling_half_pixel_centres() -> None:
    out = outputs()
    out["pred_masks"][0, 1] = torch.tensor([[0.0, 4.0], [0.0, 4.0]])
    logits, _ = select_sounding_mask(out, size=(4, 4))
    # source x = (x + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25 (clamped): 0, 1, 3, 4
    assert logits[0].tolist() == [[0.0, 1.0, 3.0, 4.0]] * 4


def test_gate_empties_low_score_frames() -> None:
    logits, scores = select_sounding_mask(outputs(), size=(4, 4), gate_threshold=0.5)
    # frame 0: sigmoid(2.0) = 0.88 passes; frame 1: sigmoid(-2.5) = 0.08 is gated
    assert torch.all(logits[0] == 2.0)
    assert torch.all(logits[1] == EMPTY_LOGIT)
    assert scores[1].item() < 0.5
    # a gated frame with an empty GT is a perfect IoU; without the gate it is 0
    gt = torch.zeros(1, 4, 4)
    assert mask_iou(logits[1:], gt) == pytest.approx(1.0, abs=1e-8)
    ungated, _ = select_sounding_mask(outputs(), size=(4, 4))
    assert mask_iou(ungated[1:], gt) == 0.0
    # a threshold of 0 gates nothing
    kept, _ = select_sounding_mask(outputs(), size=(4, 4), gate_threshold=0.0)
    assert torch.equal(kept, ungated)


def test_gradient_reaches_only_the_selected_query() -> None:
    out = outputs()
    out["pred_masks"].requires_grad_(True)
    logits, _ = select_sounding_mask(out, size=(4, 4))
    logits.sum().backward()
    grad = out["pred_masks"].grad
    assert grad[0, 1].sum().item() == pytest.approx(16.0)
    assert torch.all(grad[0, 0] == 0) and torch.all(grad[0, 2] == 0)


def test_shape_checks() -> None:
    out = outputs()
    out["pred_scores"] = out["pred_scores"][:, :2]
    with pytest.raises(ValueError, match="pred_scores"):
        select_sounding_mask(out, size=(4, 4))
