"""Class mIoU / F-score against a transcription of AVSBench-semantic's evaluation code."""

from __future__ import annotations

import pytest
import torch

from avs_model.evaluation.class_metrics import ClassMetrics, class_scores


def _batch_miou_fscore_reference(output, target, nclass, beta2=0.3):
    """OpenNLPLab/AVSBench ``avs_scripts/avss/utils/compute_color_metrics.py``
    ``_batch_miou_fscore`` (after ``calc_color_miou_fscore``'s softmax), transcribed."""
    mini, maxi, nbins = 1, nclass, nclass
    predict = torch.argmax(output, 1) + 1
    target = target.float() + 1
    predict = predict.float() * (target > 0).float()
    intersection = predict * (predict == target).float()
    cls_count = torch.zeros(nclass).float()
    ious = torch.zeros(nclass).float()
    fscores = torch.zeros(nclass).float()
    for i in range(target.shape[0]):
        area_inter = torch.histc(intersection[i].cpu(), bins=nbins, min=mini, max=maxi)
        area_pred = torch.histc(predict[i].cpu(), bins=nbins, min=mini, max=maxi)
        area_lab = torch.histc(target[i].cpu(), bins=nbins, min=mini, max=maxi)
        area_union = area_pred + area_lab - area_inter
        iou = 1.0 * area_inter.float() / (2.220446049250313e-16 + area_union.float())
        ious += iou
        cls_count[torch.nonzero(area_union).squeeze(-1)] += 1
        precision = area_inter / area_pred
        recall = area_inter / area_lab
        fscore = (1 + beta2) * precision * recall / (beta2 * precision + recall)
        fscore[torch.isnan(fscore)] = 0.0
        fscores += fscore
    return ious, fscores, cls_count


def _official_test_loop(batches, nclass):
    """``avs_scripts/avss/test.py``: sums over batches, then the means over all classes."""
    miou_pc = torch.zeros(nclass)
    fs_pc = torch.zeros(nclass)
    cls_pc = torch.zeros(nclass)
    for logits, target in batches:
        iou, fs, cls = _batch_miou_fscore_reference(torch.softmax(logits, 1), target, nclass)
        miou_pc += iou
        fs_pc += fs
        cls_pc += cls
    miou_pc = miou_pc / cls_pc
    miou_pc[torch.isnan(miou_pc)] = 0
    f_pc = fs_pc / cls_pc
    f_pc[torch.isnan(f_pc)] = 0
    return torch.mean(miou_pc).item(), torch.mean(f_pc).item(), miou_pc, cls_pc


def test_scores_equal_the_official_code() -> None:
    gen = torch.Generator().manual_seed(0)
    nclass = 6
    batches = []
    for n in range(3):
        logits = torch.randn(4, nclass, 9, 11, generator=gen) * 2
        logits[:, 5] -= 100.0  # class 5: never predicted, never in the ground truth
        target = torch.randint(0, nclass - 2, (4, 9, 11), generator=gen)  # 4, 5 never in the gt
        target[0, :3] = 0
        if n == 1:
            logits[:, 3] += 5.0  # class 3 predicted a lot, never in the ground truth
        batches.append((logits, target))
    metrics = ClassMetrics(nclass)
    for logits, target in batches:
        metrics.update(logits, target)
    result = metrics.compute()
    miou, fscore, per_class, counts = _official_test_loop(batches, nclass)
    assert result.miou == pytest.approx(miou, abs=1e-6)
    assert result.fscore == pytest.approx(fscore, abs=1e-6)
    assert result.per_class_iou == pytest.approx(per_class.tolist(), abs=1e-6)
    assert result.frames_per_class == [int(c) for c in counts.tolist()]
    assert result.frames_per_class[5] == 0  # never present nor predicted: 0 in the mean
    seen = [v for v, c in zip(result.per_class_iou, result.frames_per_class, strict=True) if c]
    assert result.miou_seen == pytest.approx(sum(seen) / len(seen))


def test_hand_counted_frame() -> None:
    logits = torch.zeros(1, 3, 2, 2)
    logits[0, 1, 0, :] = 9.0  # top row: class 1
    logits[0, 2, 1, 0] = 9.0  # bottom left: class 2; bottom right: class 0
    target = torch.tensor([[[1, 0], [2, 2]]])
    iou, fscore, count = class_scores(logits, target)
    # class 0: pred {(0,1)? no: (1,1)}, gt {(0,1)} -> inter 0, union 2
    # class 1: pred 2 px, gt 1 px, inter 1 -> IoU 1/2; P 1/2, R 1 -> F = 1.3*0.5/(0.15+1)
    # class 2: pred 1 px, gt 2 px, inter 1 -> IoU 1/2; P 1, R 1/2 -> F = 1.3*0.5/(0.3+0.5)
    assert iou.tolist() == pytest.approx([0.0, 0.5, 0.5])
    assert fscore.tolist() == pytest.approx([0.0, 0.65 / 1.15, 0.65 / 0.8])
    assert count.tolist() == [1, 1, 1]
    with pytest.raises(ValueError, match="expected"):
        class_scores(logits, target[0])
