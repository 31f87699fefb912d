"""Class mIoU and F-score exactly as AVSBench-semantic (AVSS) computes them.

Source: OpenNLPLab/AVSBench, ``avs_scripts/avss/utils/compute_color_metrics.py``
(``calc_color_miou_fscore`` / ``_batch_miou_fscore``) and ``avs_scripts/avss/test.py``:

- per frame, ``pred = argmax(softmax(logits))`` over the C classes (background included) and,
  for every class ``c``, ``inter_c`` (pixels where ``pred == target == c``), ``pred_c`` and
  ``target_c`` (the official ``torch.histc`` over ``1..C`` of the labels plus one, which is a
  per-class pixel count; a negative target value also drops the pixel's prediction, one at or
  past C only its label);
- ``IoU_c = inter_c / (2.220446049250313e-16 + union_c)``, summed over frames; a class's frame
  count grows by one for every frame where ``union_c > 0``;
- ``F_c = 1.3 P R / (0.3 P + R)`` with ``P = inter_c / pred_c``, ``R = inter_c / target_c``
  (NaN, from 0 / 0, becomes 0), summed over every frame;
- at the end ``M_J_class = mean_c(sum IoU_c / count_c)`` and ``M_F_class = mean_c(sum F_c /
  count_c)``, a class never present or predicted (count 0) contributing 0 to the mean over all C
  classes (the official ``test.py``). The mean over the classes seen (``count_c > 0``), which the
  official script prints per batch, is given too.

Counts are exact integers and ratios float64 (the official code works in float32: values agree
to ~1e-6).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

M_J_CLASS, M_F_CLASS = "M_J_class", "M_F_class"
IOU_EPS = 2.220446049250313e-16
BETA2 = 0.3


def class_scores(logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per-class sums of one batch, as ``_batch_miou_fscore``.

    Args:
        logits: [N, C, H, W] class logits (background included).
        target: [N, H, W] integer labels in ``[0, C)``.

    Returns:
        ``(iou_sum, fscore_sum, frame_count)``: float64 [C], float64 [C], int64 [C] on the CPU.
    """
    if logits.ndim != 4 or target.shape != (logits.shape[0], *logits.shape[2:]):
        raise ValueError(
            f"logits [N, C, H, W] and target [N, H, W] expected, got {tuple(logits.shape)} and "
            f"{tuple(target.shape)}"
        )
    pred = torch.softmax(logits.float(), dim=1).argmax(1)  # [N, H, W]
    return label_scores(pred, target, num_classes=logits.shape[1])


def label_scores(
    pred: Tensor, target: Tensor, *, num_classes: int
) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`class_scores` of predicted labels (the argmax already taken).

    Args:
        pred: [N, H, W] predicted labels in ``[0, C)``.
        target: [N, H, W] integer labels in ``[0, C)``.
        num_classes: C, background included.
    """
    if pred.shape != target.shape or pred.ndim != 3:
        raise ValueError(
            f"pred and target [N, H, W] expected, got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    pred = pred.long().flatten(1).cpu()  # [N, P]
    target = target.long().flatten(1).cpu()  # [N, P]
    iou_sum = torch.zeros(num_classes, dtype=torch.float64)
    f_sum = torch.zeros(num_classes, dtype=torch.float64)
    count = torch.zeros(num_classes, dtype=torch.long)
    valid_target = (target >= 0) & (target < num_classes)
    for p, t, valid in zip(pred, target, valid_target, strict=True):
        area_pred = torch.bincount(p[t >= 0], minlength=num_classes).double()
        area_lab = torch.bincount(t[valid], minlength=num_classes).double()
        area_inter = torch.bincount(p[valid & (p == t)], minlength=num_classes).double()
        union = area_pred + area_lab - area_inter
        iou_sum += area_inter / (IOU_EPS + union)
        count += (union > 0).long()
        precision = area_inter / area_pred
        recall = area_inter / area_lab
        fscore = (1 + BETA2) * precision * recall / (BETA2 * precision + recall)
        f_sum += torch.nan_to_num(fscore, nan=0.0)
    return iou_sum, f_sum, count


@dataclass(frozen=True)
class ClassResult:
    """Dataset-level class scores.

    Attributes:
        miou, fscore: ``M_J_class`` / ``M_F_class``, the official means over all C classes.
        miou_seen, fscore_seen: the means over the classes present or predicted at least once.
        per_class_iou, per_class_fscore: each class's mean over its frames (0 when never seen).
        frames_per_class: the frames each class was present in or predicted in.
    """

    miou: float
    fscore: float
    miou_seen: float
    fscore_seen: float
    per_class_iou: list[float]
    per_class_fscore: list[float]
    frames_per_class: list[int]

    def to_dict(self) -> dict[str, Any]:
        """Plain dict under the output names."""
        return {
            M_J_CLASS: self.miou,
            M_F_CLASS: self.fscore,
            f"{M_J_CLASS}_seen": self.miou_seen,
            f"{M_F_CLASS}_seen": self.fscore_seen,
            "per_class_iou": self.per_class_iou,
            "per_class_fscore": self.per_class_fscore,
            "frames_per_class": self.frames_per_class,
        }


class ClassMetrics:
    """Accumulates the class scores over batches, as the official AVSS test loop."""

    def __init__(self, num_classes: int) -> None:
        """Args:
        num_classes: C, background included.
        """
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2 (background included), got {num_classes}")
        self.num_classes = num_classes
        self.iou_sum = torch.zeros(num_classes, dtype=torch.float64)
        self.f_sum = torch.zeros(num_classes, dtype=torch.float64)
        self.count = torch.zeros(num_classes, dtype=torch.long)

    def update(self, logits: Tensor, target: Tensor) -> None:
        """Add one batch (see :func:`class_scores`)."""
        if logits.shape[1] != self.num_classes:
            raise ValueError(f"logits have {logits.shape[1]} classes, expected {self.num_classes}")
        self._add(*class_scores(logits, target))

    def update_labels(self, pred: Tensor, target: Tensor) -> None:
        """Add one batch of predicted labels [N, H, W] (see :func:`label_scores`)."""
        self._add(*label_scores(pred, target, num_classes=self.num_classes))

    def _add(self, iou: Tensor, fscore: Tensor, count: Tensor) -> None:
        self.iou_sum += iou
        self.f_sum += fscore
        self.count += count

    def compute(self) -> ClassResult:
        """The scores over every batch so far."""
        counts = self.count.double()
        iou = torch.nan_to_num(self.iou_sum / counts, nan=0.0)
        fscore = torch.nan_to_num(self.f_sum / counts, nan=0.0)
        seen = self.count > 0
        return ClassResult(
            miou=float(iou.mean()),
            fscore=float(fscore.mean()),
            miou_seen=float(iou[seen].mean()) if bool(seen.any()) else 0.0,
            fscore_seen=float(fscore[seen].mean()) if bool(seen.any()) else 0.0,
            per_class_iou=iou.tolist(),
            per_class_fscore=fscore.tolist(),
            frames_per_class=self.count.tolist(),
        )
