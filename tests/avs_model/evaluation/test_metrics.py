"""AVSBench M_J / M_F against a line-by-line NumPy version of the official definition."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from avs_model.evaluation.metrics import (
    AVSMetrics,
    f_measure,
    f_measure_curves,
    f_measure_per_frame,
    f_measure_thresholds,
    mask_iou,
    mask_iou_per_frame,
)


def numpy_mask_iou(pred: np.ndarray, target: np.ndarray) -> float:
    """AVSBench ``mask_iou`` (utils/utility.py) step by step, float32 like the original."""
    n, h, w = pred.shape
    prob = (1.0 / (1.0 + np.exp(-pred.astype(np.float32)))).astype(np.float32)
    binary = (prob > 0.5).astype(np.float32)
    target = target.astype(np.float32)
    total = 0.0
    for i in range(n):
        if target[i].sum() == 0:
            inter = ((1 - target[i]) * (1 - binary[i])).sum()
            union = h * w
        else:
            inter = (binary[i] * target[i]).sum()
            union = np.maximum(binary[i], target[i]).sum()
        total += inter / (union + 1e-7)
    return total / n


def numpy_f_measure(pred: np.ndarray, gt: np.ndarray, pr_num: int = 255) -> float:
    """AVSBench ``Eval_Fmeasure`` / ``_eval_pr`` step by step (frame loop, threshold loop)."""
    prob = (1.0 / (1.0 + np.exp(-pred.astype(np.float32)))).astype(np.float32)
    gt = gt.astype(np.float32)
    thresholds = np.linspace(0, 1 - 1e-10, pr_num).astype(np.float32)
    beta2 = 0.3
    avg_f, img_num = np.zeros(pr_num), 0
    score = np.zeros(pr_num)
    for i in range(prob.shape[0]):
        if gt[i].mean() == 0.0:
            continue
        prec, recall = np.zeros(pr_num), np.zeros(pr_num)
        for k in range(pr_num):
            y = (prob[i] >= thresholds[k]).astype(np.float64)
            tp = (y * gt[i]).sum()
            prec[k] = tp / (y.sum() + 1e-20)
            recall[k] = tp / (gt[i].sum() + 1e-20)
        with np.errstate(invalid="ignore"):
            f_score = (1 + beta2) * prec * recall / (beta2 * prec + recall)
        f_score[np.isnan(f_score)] = 0
        avg_f = avg_f + f_score
        img_num += 1
        score = avg_f / img_num
    return float(score.max())


def random_batch(seed: int, n: int = 6, size: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, size, size, generator=g) * 3
    gt = (torch.rand(n, size, size, generator=g) > 0.6).float()
    # correlate prediction with GT so the curves have structure
    logits += 2.5 * (2 * gt - 1)
    gt[1] = 0.0  # an empty frame
    logits[2, :3] = 40.0  # saturated: sigmoid == 1.0 == the last float32 threshold
    logits[-1, -2:] = -40.0
    return logits, gt


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_numpy_reference_on_random_data(seed: int) -> None:
    logits, gt = random_batch(seed)
    assert mask_iou(logits, gt) == pytest.approx(numpy_mask_iou(logits.numpy(), gt.numpy()), 1e-6)
    assert f_measure(logits, gt) == pytest.approx(
        numpy_f_measure(logits.numpy(), gt.numpy()), abs=1e-6
    )
    # every frame alone as a batch
    for i in range(logits.shape[0]):
        one_l, one_g = logits[i : i + 1], gt[i : i + 1]
        ref = numpy_f_measure(one_l.numpy(), one_g.numpy())
        assert f_measure(one_l, one_g) == pytest.approx(ref, abs=1e-6)


def test_thresholds_are_the_official_float32_ones() -> None:
    t = f_measure_thresholds()
    assert t.dtype == torch.float32 and t.shape == (255,)
    assert t[0].item() == 0.0
    assert t[-1].item() == 1.0  # 1 - 1e-10 rounds to 1 in float32
    assert t[1].item() == pytest.approx(1 / 254, rel=1e-6)


def test_last_threshold_counts_saturated_pixels() -> None:
    # pixels with sigmoid == 1.0 are predicted even at the last threshold; F(t_254) = 1 here
    logits = torch.full((1, 2, 2), -40.0)
    logits[0, 0, 0] = 40.0
    gt = torch.zeros(1, 2, 2)
    gt[0, 0, 0] = 1.0
    curves, nonempty = f_measure_curves(logits, gt)
    assert nonempty.tolist() == [True]
    assert curves[0, -1].item() == pytest.approx(1.0)
    assert curves[0, 0].item() == pytest.approx(1.3 * 0.25 / (0.3 * 0.25 + 1))


def test_all_correct_mask() -> None:
    gt = torch.zeros(2, 4, 4)
    gt[0, :2] = 1.0
    gt[1, 1:3, 1:3] = 1.0
    logits = 10 * (2 * gt - 1)
    # inter / (union + 1e-7) with 8 and 4 pixels
    assert mask_iou(logits, gt) == pytest.approx((8 / (8 + 1e-7) + 4 / (4 + 1e-7)) / 2, abs=1e-15)
    assert f_measure(logits, gt) == pytest.approx(1.0, abs=1e-12)
    assert f_measure_per_frame(logits, gt) == pytest.approx(1.0, abs=1e-12)


def test_empty_gt_rules() -> None:
    gt = torch.zeros(1, 4, 4)
    empty_pred = torch.full((1, 4, 4), -5.0)
    full_pred = torch.full((1, 4, 4), 5.0)
    assert mask_iou(empty_pred, gt) == pytest.approx(1.0, abs=1e-8)
    assert mask_iou(full_pred, gt) == 0.0
    # a quarter of the pixels predicted: IoU = fraction predicted empty
    quarter = empty_pred.clone()
    quarter[0, 0] = 5.0
    assert mask_iou(quarter, gt) == pytest.approx(0.75, abs=1e-8)
    # M_F skips empty frames; a batch of only empty frames scores 0
    assert f_measure(full_pred, gt) == 0.0
    assert f_measure_per_frame(full_pred, gt) == 0.0
    # non-empty GT with an empty prediction: IoU 0
    assert mask_iou(empty_pred, torch.ones(1, 4, 4)) == 0.0


def test_binarisation_uses_the_sigmoid() -> None:
    # sigmoid(1e-9) rounds to exactly 0.5 in float32, so the pixel is *not* predicted
    logits = torch.full((1, 1, 2), 1e-9)
    gt = torch.tensor([[[1.0, 0.0]]])
    assert mask_iou_per_frame(logits, gt).tolist() == [0.0]


# Hand-worked F-measure example: 2 x 2 frames, GT [1, 1, 0, 0] and [1, 0, 0, 0].
PROBS_A, GT_A = [0.9, 0.3, 0.6, 0.1], [1.0, 1.0, 0.0, 0.0]
PROBS_B, GT_B = [0.2, 0.1, 0.1, 0.1], [1.0, 0.0, 0.0, 0.0]


def hand_frames() -> tuple[torch.Tensor, torch.Tensor]:
    probs = torch.tensor([PROBS_A, PROBS_B], dtype=torch.float64)
    logits = torch.log(probs / (1 - probs)).float().view(2, 2, 2)
    gt = torch.tensor([GT_A, GT_B]).view(2, 2, 2)
    return logits, gt


def test_hand_computed_f_measure_and_batch_size_dependency() -> None:
    logits, gt = hand_frames()
    # frame A: F over the threshold ranges
    #   t <= .1: P .5 R 1 -> .565217; (.1, .3]: P 2/3 R 1 -> .722222; (.3, .6]: P .5 R .5 -> .5;
    #   (.6, .9]: P 1 R .5 -> .8125; > .9: nothing predicted -> 0
    # frame B: t <= .1: P .25 R 1 -> .302326; (.1, .2]: 1; > .2: 0
    assert f_measure(logits[:1], gt[:1]) == pytest.approx(0.8125, abs=1e-9)
    assert f_measure(logits[1:], gt[1:]) == pytest.approx(1.0, abs=1e-9)
    # one batch of 2: the mean curve peaks on (.1, .2] at (.722222 + 1) / 2
    batch_of_two = f_measure(logits, gt)
    assert batch_of_two == pytest.approx((1.3 * (2 / 3) / (0.3 * (2 / 3) + 1) + 1) / 2, abs=1e-9)
    assert batch_of_two == pytest.approx(0.861111, abs=1e-6)
    # batches of 1: mean of the frames' maxima
    batch_of_one = AVSMetrics()
    batch_of_one.update(logits[:1], gt[:1])
    batch_of_one.update(logits[1:], gt[1:])
    assert batch_of_one.compute().fmeasure == pytest.approx((0.8125 + 1) / 2, abs=1e-9)
    assert batch_of_one.compute().fmeasure > batch_of_two + 0.04
    # the per-frame variant does not depend on the batching
    assert f_measure_per_frame(logits, gt) == pytest.approx(0.90625, abs=1e-9)
    assert batch_of_one.compute().fmeasure_per_frame == pytest.approx(0.90625, abs=1e-9)
    # the whole-set curve is the batch-of-everything value
    assert batch_of_one.compute().fmeasure_curve == pytest.approx(batch_of_two, abs=1e-12)


def test_accumulator_is_the_plain_mean_of_batch_values() -> None:
    batches = [random_batch(seed, n=n) for seed, n in [(10, 4), (11, 4), (12, 3)]]
    metrics = AVSMetrics(frames_per_video=2)
    for logits, gt in batches:
        metrics.update(logits, gt)
    result = metrics.compute()
    miou_values = [numpy_mask_iou(lg.numpy(), g.numpy()) for lg, g in batches]
    f_values = [numpy_f_measure(lg.numpy(), g.numpy()) for lg, g in batches]
    assert result.miou == pytest.approx(np.mean(miou_values), abs=1e-6)
    assert result.fmeasure == pytest.approx(np.mean(f_values), abs=1e-6)
    assert result.batch_frames == 4 and result.batch_videos == 2
    assert result.num_batches == 3 and result.num_frames == 11
    # uneven last batch: the per-frame mean differs from the official mean of batch means
    all_logits = torch.cat([lg for lg, _ in batches])
    all_gt = torch.cat([g for _, g in batches])
    assert result.miou_per_frame == pytest.approx(mask_iou(all_logits, all_gt), abs=1e-12)
    assert result.miou_per_frame != pytest.approx(result.miou, abs=1e-6)
    assert result.fmeasure_per_frame == pytest.approx(
        f_measure_per_frame(all_logits, all_gt), abs=1e-12
    )
    assert result.fmeasure_curve == pytest.approx(f_measure(all_logits, all_gt), abs=1e-12)
    assert "per batch of 4 frames = 2 videos" in result.summary()
    assert result.to_dict()["num_frames"] == 11


def test_per_category_scores() -> None:
    logits, gt = random_batch(20, n=6)
    names = ["dog", "cat", "dog", "piano", "cat", "dog"]
    metrics = AVSMetrics()
    metrics.update(logits[:4], gt[:4], names[:4])
    metrics.update(logits[4:], gt[4:], names[4:])
    per = metrics.compute().per_category
    assert list(per) == ["cat", "dog", "piano"]
    for name in per:
        rows = [i for i, n in enumerate(names) if n == name]
        sub_l, sub_g = logits[rows], gt[rows]
        scores = per[name]
        assert scores.num_frames == len(rows)
        assert scores.num_nonempty == int((sub_g.flatten(1).sum(1) > 0).sum())
        assert scores.miou == pytest.approx(mask_iou(sub_l, sub_g), abs=1e-12)
        assert scores.fmeasure_per_frame == pytest.approx(f_measure_per_frame(sub_l, sub_g), 1e-12)
        assert scores.fmeasure_curve == pytest.approx(f_measure(sub_l, sub_g), abs=1e-12)
    # frame 1 (cat) has an empty GT: one non-empty cat frame
    assert per["cat"].num_nonempty == 1
    with pytest.raises(ValueError, match="one name per frame"):
        metrics.update(logits, gt, ["dog"])


def test_input_checks() -> None:
    logits = torch.zeros(2, 3, 3)
    with pytest.raises(ValueError, match="binary"):
        mask_iou(logits, torch.full((2, 3, 3), 0.5))
    with pytest.raises(ValueError, match="shape"):
        f_measure(logits, torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match=r"\[N, H, W\]"):
        f_measure(logits[0], torch.zeros(3, 3))
    with pytest.raises(TypeError, match="logits"):
        mask_iou(torch.zeros(2, 3, 3, dtype=torch.long), torch.zeros(2, 3, 3))
    with pytest.raises(ValueError, match="NaN"):
        f_measure(torch.full((2, 3, 3), math.nan), torch.zeros(2, 3, 3))
    with pytest.raises(ValueError, match="no batch"):
        AVSMetrics().compute()
    # bool and uint8 ground truth are accepted
    gt = torch.zeros(2, 3, 3, dtype=torch.uint8)
    gt[0, 0, 0] = 1
    assert mask_iou(logits, gt) == mask_iou(logits, gt.bool())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_equals_cpu() -> None:
    logits, gt = random_batch(30, n=8, size=32)
    # the CUDA sigmoid may differ by an ulp: a pixel could cross a threshold, hence abs 2e-3
    assert mask_iou(logits.cuda(), gt.cuda()) == pytest.approx(mask_iou(logits, gt), abs=1e-6)
    assert f_measure(logits.cuda(), gt.cuda()) == pytest.approx(f_measure(logits, gt), abs=2e-3)
    metrics = AVSMetrics()
    metrics.update(logits.cuda().half(), gt.cuda().bool(), ["a"] * 8)
    assert metrics.compute().per_category["a"].num_frames == 8
