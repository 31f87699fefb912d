"""False-positive rates on negatives and G-mIoU / G-F (AVSBench-Robust), alone and in the loop."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from avs_model.data.frame_batch import FrameSample, collate_frames
from avs_model.evaluation.evaluate import EvaluationReport, format_report
from avs_model.evaluation.loop import UNLABELLED_KIND, evaluate
from avs_model.evaluation.metrics import mask_iou
from avs_model.evaluation.negative_metrics import (
    FPR_FRAME,
    FPR_PIXEL,
    G_M_J,
    NegativeMetrics,
    harmonic_score,
    pixel_fpr,
    pixel_fpr_per_frame,
)
from avs_model.runtime.amp import resolve_precision


def calculate_fpr_reference(pred: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """AVSBench-Robust's ``calculate_FPR`` (jiali-home/AVSBench-Robust,
    ``training_evaluation/code/AVSegFormer/scripts/s4/test.py``), transcribed."""
    assert len(pred.shape) == 3
    pred = torch.sigmoid(pred)
    binary_pred = (pred > 0.5).int()
    n, h, w = binary_pred.shape
    return (binary_pred.sum(dim=(1, 2)) / (h * w + eps)).mean()


def test_pixel_fpr_is_calculate_fpr() -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 7, 9, generator=gen) * 3 - 1
    assert pixel_fpr(logits) == pytest.approx(float(calculate_fpr_reference(logits)), abs=1e-7)
    one = torch.full((1, 4, 5), -5.0)
    one[0, :2, :3] = 5.0  # 6 of 20 pixels predicted
    assert pixel_fpr_per_frame(one).tolist() == pytest.approx([0.3])
    assert pixel_fpr(torch.zeros(2, 3, 3)) == 0.0  # sigmoid(0) = 0.5 is not > 0.5


def test_negative_metrics_per_batch_frame_and_kind() -> None:
    metrics = NegativeMetrics()
    assert metrics.compute() is None
    empty = torch.full((3, 3), -9.0)
    quarter = torch.full((4, 4), -9.0)
    quarter[:2, :2] = 9.0  # 4 of 16 pixels
    # batch 1: two silence frames, one fires (1/9 pixels) and is gated out
    fires = empty.clone()
    fires[0, 0] = 9.0
    metrics.update(torch.stack([empty, fires]), torch.stack([empty, empty]), ["silence"] * 2)
    # batch 2: one noise frame, a quarter predicted, still predicted after the gate
    metrics.update(quarter[None], quarter[None], ["noise"])
    result = metrics.compute()
    assert result is not None
    total = result.total
    assert total.num_frames == 3 and total.num_batches == 2
    # the mean over batches of each batch's mean: ((0 + 1/9) / 2 + 1/4) / 2
    assert total.pixel_fpr == pytest.approx(((0 + 1 / 9) / 2 + 0.25) / 2)
    assert total.frame_fpr == pytest.approx(2 / 3)
    assert total.frame_fpr_gated == pytest.approx(1 / 3)
    assert result.per_kind["silence"].frame_fpr == pytest.approx(0.5)
    assert result.per_kind["silence"].frame_fpr_gated == 0.0
    assert result.per_kind["noise"].pixel_fpr == pytest.approx(0.25)
    assert result.to_dict()[FPR_FRAME] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="one kind"):
        metrics.update(empty[None], empty[None], ["noise", "noise"])


def test_harmonic_score() -> None:
    assert harmonic_score(0.8, 0.0) == pytest.approx(2 * 0.8 / 1.8)
    assert harmonic_score(0.6, 0.4) == pytest.approx(0.6)
    assert harmonic_score(0.0, 1.0) == 0.0
    assert harmonic_score(1.0, 1.0) == 0.0


class _FixedMasks(nn.Module):
    """A model whose one query predicts the top-left quarter for audio > 0 and, for audio <= 0,
    the whole picture with a low sounding score."""

    def forward(self, images: torch.Tensor, audio: torch.Tensor) -> dict[str, torch.Tensor]:
        n, _, h, w = images.shape
        masks = torch.full((n, 1, h, w), -8.0)
        loud = audio.flatten(1).mean(1) > 0  # [N]
        masks[loud, 0, : h // 2, : w // 2] = 8.0
        masks[~loud] = 8.0
        scores = torch.where(loud, 4.0, -4.0)[:, None]  # [N, 1]
        return {"pred_masks": masks, "pred_scores": scores}


def _frame(mask: torch.Tensor, audio: float, kind: str, key: str) -> list[FrameSample]:
    return [
        FrameSample(
            image=torch.zeros(3, 8, 8, dtype=torch.uint8),
            mask=mask.to(torch.uint8),
            audio=torch.full((1, 96, 64), audio),
            content_size=(8, 8),
            gt_mask=mask.bool(),
            category="dog",
            key=key,
            negative_kind=kind,
        )
    ]


def test_the_loop_scores_positives_and_negatives_apart() -> None:
    quarter = torch.zeros(8, 8)
    quarter[:4, :4] = 1
    half = torch.zeros(8, 8)
    half[:, :4] = 1
    empty = torch.zeros(8, 8)
    frames = [
        _frame(quarter, 1.0, "", "p0"),  # IoU 1
        _frame(half, 1.0, "", "p1"),  # IoU 0.5
        _frame(empty, -1.0, "silence", "n0"),  # whole picture, gated out
        _frame(empty, 1.0, "offscreen", "n1"),  # a quarter, not gated
        _frame(empty, -1.0, "", "n2"),  # no kind recorded
    ]
    batches = [collate_frames(frames[:2]), collate_frames(frames[2:])]
    result = evaluate(
        _FixedMasks(),
        batches,
        device=torch.device("cpu"),
        precision=resolve_precision("fp32", torch.device("cpu")),
    )
    assert result.positives is not None and result.negatives is not None
    assert result.positives.miou == pytest.approx(0.75, abs=1e-6)
    assert result.positives.num_frames == 2
    negatives = result.negatives
    assert negatives.total.num_frames == 3 and negatives.total.num_batches == 1
    assert negatives.total.pixel_fpr == pytest.approx((1 + 0.25 + 1) / 3)
    assert negatives.total.frame_fpr == 1.0
    assert negatives.total.frame_fpr_gated == pytest.approx(1 / 3)
    assert set(negatives.per_kind) == {"silence", "offscreen", UNLABELLED_KIND}
    assert negatives.per_kind["offscreen"].frame_fpr_gated == 1.0
    expected = harmonic_score(0.75, 0.75)
    assert result.robust_scores()[G_M_J] == pytest.approx(expected, abs=1e-6)
    scalars = result.scalars()
    assert scalars[FPR_PIXEL] == pytest.approx(0.75)
    # the all-frame figures are unchanged: mean of the two batches' mean IoU
    negative_iou = mask_iou(torch.full((3, 8, 8), 8.0), torch.zeros(3, 8, 8))
    assert negative_iou == 0.0
    assert result.ungated.miou == pytest.approx((0.75 + (0 + 0.75 + 0) / 3) / 2, abs=1e-6)
    report = EvaluationReport(
        dataset="synthetic",
        split="test",
        checkpoint={"path": "x", "step": 1},
        result=result,
        groups={},
    )
    text = format_report(report)
    assert "G_M_J" in text and "offscreen" in text and "calculate_FPR" in text
    assert not math.isnan(report.to_dict()["negatives"][FPR_PIXEL])


def test_without_negatives_the_result_is_as_before() -> None:
    quarter = torch.zeros(8, 8)
    quarter[:4, :4] = 1
    result = evaluate(
        _FixedMasks(),
        [collate_frames([_frame(quarter, 1.0, "", "p0")])],
        device=torch.device("cpu"),
        precision=resolve_precision("fp32", torch.device("cpu")),
    )
    assert result.negatives is None and result.positives is None
    assert result.robust_scores() == {}
    assert FPR_PIXEL not in result.scalars()
