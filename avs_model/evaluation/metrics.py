"""AVSBench metrics: M_J (mask IoU) and M_F (F-measure), exactly as the official test computes them.

Inputs are mask *logits* [N, H, W] (the sigmoid is applied here, as in AVSBench's
``utils/utility.py``) and binary ground truth [N, H, W] at the ground-truth resolution.

M_J, per frame (``p = sigmoid(logits) > 0.5``, ``g`` the ground truth, eps = 1e-7):
    non-empty g: ``sum(p & g) / (sum(p | g) + eps)``;
    empty g:     ``sum(~p) / (H*W + eps)`` (the fraction of pixels predicted empty).
  ``mask_iou`` is the mean over the frames of one batch.

M_F of one batch (``s = sigmoid(logits)``, 255 thresholds ``t = linspace(0, 1 - 1e-10, 255)`` in
float32 -- the last one rounds to exactly 1.0 -- and ``y = s >= t``):
    ``prec = TP / (sum(y) + 1e-20)``, ``rec = TP / (sum(g) + 1e-20)``,
    ``F(t) = 1.3 prec rec / (0.3 prec + rec)`` (beta^2 = 0.3), NaN -> 0;
  frames with an empty ground truth are skipped; ``F(t)`` is averaged over the other frames and
  the batch's value is ``max_t`` of that average (0 when every frame is empty). ``f_measure``
  returns this value. Because the max is taken per batch, it depends on the batch size.

The official dataset figures are the plain mean of the per-batch values (``AVSMetrics.miou`` and
``AVSMetrics.fmeasure``); the official S4 test script uses batches of 4 videos x 5 frames.
Batch-independent variants:
    ``f_measure_per_frame``: ``max_t F(t)`` of every non-empty frame, averaged over those frames;
    ``AVSMetrics.fmeasure_curve``: the official formula with the whole set as one batch
    (``F(t)`` averaged over every non-empty frame of the set, then the max over t).

Counts are exact integers and the ratios float64, so the values agree with the official float32
code to ~1e-6; thresholding (the sigmoid in float32 against float32 thresholds) is identical.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

NUM_THRESHOLDS = 255
BETA2 = 0.3
# the names every output uses (logs, console, TensorBoard, metrics.json)
M_J, M_F = "M_J", "M_F"
M_J_PER_FRAME, M_F_PER_FRAME, M_F_WHOLE_SET = "M_J_per_frame", "M_F_per_frame", "M_F_whole_set"
IOU_EPS = 1e-7
PR_EPS = 1e-20


def _check(logits: Tensor, gt: Tensor) -> tuple[Tensor, Tensor]:
    """``(float32 logits [N, P], bool gt [N, P])`` after checking shapes, dtypes and values."""
    if logits.ndim != 3:
        raise ValueError(f"logits must be [N, H, W], got {tuple(logits.shape)}")
    if gt.shape != logits.shape:
        raise ValueError(f"gt {tuple(gt.shape)} and logits {tuple(logits.shape)} differ in shape")
    if not logits.is_floating_point():
        raise TypeError(f"logits must be a floating tensor of mask logits, got {logits.dtype}")
    if bool(torch.isnan(logits).any()):
        raise ValueError("logits contain NaN")
    if gt.dtype != torch.bool:
        if not bool(((gt == 0) | (gt == 1)).all()):
            raise ValueError("gt must be binary (values 0 and 1 only)")
        gt = gt != 0
    return logits.float().flatten(1), gt.to(logits.device).flatten(1)


def mask_iou_per_frame(logits: Tensor, gt: Tensor) -> Tensor:
    """The AVSBench IoU of every frame.

    Args:
        logits: [N, H, W] mask logits.
        gt: [N, H, W] binary ground truth.

    Returns:
        float64 [N] on the CPU.
    """
    logits, gt = _check(logits, gt)
    pred = logits.sigmoid() > 0.5  # [N, P]
    empty = ~gt.any(1)  # [N]
    inter = (pred & gt).sum(1)
    union = (pred | gt).sum(1)
    inter = torch.where(empty, (~pred).sum(1), inter)
    union = torch.where(empty, torch.full_like(union, gt.shape[1]), union)
    return inter.cpu().double() / (union.cpu().double() + IOU_EPS)


def mask_iou(logits: Tensor, gt: Tensor) -> float:
    """M_J of one batch: the mean of ``mask_iou_per_frame``."""
    return float(mask_iou_per_frame(logits, gt).mean())


def f_measure_thresholds(device: torch.device | str | None = None) -> Tensor:
    """The 255 official thresholds ``linspace(0, 1 - 1e-10, 255)`` in float32 (last one 1.0)."""
    return torch.linspace(0.0, 1.0 - 1e-10, NUM_THRESHOLDS, dtype=torch.float32, device=device)


def f_measure_curves(logits: Tensor, gt: Tensor) -> tuple[Tensor, Tensor]:
    """``F(t)`` of every frame at the 255 thresholds.

    Computed with one histogram per frame instead of 255 thresholded copies: a pixel whose
    probability reaches ``k`` thresholds counts as predicted at the first ``k`` of them.

    Args:
        logits: [N, H, W] mask logits.
        gt: [N, H, W] binary ground truth.

    Returns:
        ``(curves, nonempty)``: float64 [N, 255] on the CPU (rows of empty frames are 0) and
        bool [N], the frames whose ground truth is not empty.
    """
    logits, gt = _check(logits, gt)
    num_frames = logits.shape[0]
    prob = logits.sigmoid()  # [N, P]
    thresholds = f_measure_thresholds(prob.device)
    # number of thresholds <= prob, in 1..255 (the first threshold is 0)
    level = torch.searchsorted(thresholds, prob.contiguous(), right=True)  # [N, P]
    hist = torch.zeros(num_frames, NUM_THRESHOLDS + 1, dtype=torch.long, device=prob.device)
    hist_pred = hist.scatter_add(1, level, torch.ones_like(level))  # [N, 256]
    hist_tp = hist.scatter_add(1, level, gt.long())  # [N, 256]
    # pixels with prob >= thresholds[i] are those with level > i: suffix sums from i + 1
    predicted = hist_pred.flip(1).cumsum(1).flip(1)[:, 1:].cpu().double()  # [N, 255]
    tp = hist_tp.flip(1).cumsum(1).flip(1)[:, 1:].cpu().double()  # [N, 255]
    positives = gt.sum(1).cpu().double()[:, None]  # [N, 1]
    prec = tp / (predicted + PR_EPS)
    rec = tp / (positives + PR_EPS)
    curves = (1 + BETA2) * prec * rec / (BETA2 * prec + rec)
    curves = torch.nan_to_num(curves, nan=0.0)
    nonempty = positives[:, 0] > 0
    curves[~nonempty] = 0.0
    return curves, nonempty


def f_measure(logits: Tensor, gt: Tensor) -> float:
    """M_F of one batch, as the official ``Eval_Fmeasure``: max over t of the mean ``F(t)``.

    Frames with an empty ground truth are skipped; a batch of only empty frames scores 0.
    """
    curves, nonempty = f_measure_curves(logits, gt)
    if not bool(nonempty.any()):
        return 0.0
    return float(curves[nonempty].mean(0).max())


def f_measure_per_frame(logits: Tensor, gt: Tensor) -> float:
    """Batch-independent M_F: ``max_t F(t)`` of every non-empty frame, mean over those frames.

    0 when every frame is empty. Always >= ``f_measure`` of the same frames.
    """
    curves, nonempty = f_measure_curves(logits, gt)
    if not bool(nonempty.any()):
        return 0.0
    return float(curves[nonempty].max(1).values.mean())


@dataclass
class _Sums:
    """Running sums over frames."""

    frames: int = 0
    iou: float = 0.0
    nonempty: int = 0
    frame_max_f: float = 0.0
    curve: Tensor = field(default_factory=lambda: torch.zeros(NUM_THRESHOLDS, dtype=torch.float64))

    def add(self, ious: Tensor, curves: Tensor, nonempty: Tensor) -> None:
        self.frames += int(ious.numel())
        self.iou += float(ious.sum())
        self.nonempty += int(nonempty.sum())
        self.frame_max_f += float(curves[nonempty].max(1).values.sum()) if nonempty.any() else 0.0
        self.curve += curves[nonempty].sum(0)

    def miou(self) -> float:
        return self.iou / self.frames if self.frames else 0.0

    def fmeasure_per_frame(self) -> float:
        return self.frame_max_f / self.nonempty if self.nonempty else 0.0

    def fmeasure_curve(self) -> float:
        return float((self.curve / self.nonempty).max()) if self.nonempty else 0.0


@dataclass(frozen=True)
class CategoryScores:
    """Batch-independent scores of one category.

    Attributes:
        num_frames: frames of the category.
        num_nonempty: those with a non-empty ground truth (the ones M_F looks at).
        miou: mean per-frame IoU.
        fmeasure_per_frame: mean over non-empty frames of ``max_t F(t)``.
        fmeasure_curve: ``max_t`` of ``F(t)`` averaged over the category's non-empty frames.
    """

    num_frames: int
    num_nonempty: int
    miou: float
    fmeasure_per_frame: float
    fmeasure_curve: float

    def to_dict(self) -> dict[str, Any]:
        """The scores under their output names (``M_J``, ``M_F_per_frame``, ``M_F_whole_set``)."""
        return {
            "num_frames": self.num_frames,
            "num_nonempty": self.num_nonempty,
            M_J: self.miou,
            M_F_PER_FRAME: self.fmeasure_per_frame,
            M_F_WHOLE_SET: self.fmeasure_curve,
        }


@dataclass(frozen=True)
class MetricsResult:
    """Dataset-level M_J / M_F.

    Attributes:
        miou: official M_J: the plain mean over batches of each batch's mean IoU.
        fmeasure: official M_F: the plain mean over batches of each batch's ``f_measure``.
        batch_frames: frames in the largest batch (the batch size of ``miou``/``fmeasure``;
            the last batch may be smaller, as in the official loader).
        batch_videos: ``batch_frames // frames_per_video`` when ``frames_per_video`` was given.
        num_batches: batches seen.
        num_frames: frames seen.
        miou_per_frame: the mean IoU over all frames (equals ``miou`` when every batch has the
            same size).
        fmeasure_per_frame: mean over all non-empty frames of ``max_t F(t)`` (batch independent).
        fmeasure_curve: ``max_t`` of ``F(t)`` averaged over all non-empty frames (the official
            formula with the whole set as one batch; batch independent).
        per_category: batch-independent scores by category name (empty without categories).
    """

    miou: float
    fmeasure: float
    batch_frames: int
    batch_videos: int | None
    num_batches: int
    num_frames: int
    miou_per_frame: float
    fmeasure_per_frame: float
    fmeasure_curve: float
    per_category: dict[str, CategoryScores]

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (JSON-serialisable) under the output names."""
        return {
            M_J: self.miou,
            M_F: self.fmeasure,
            "batch_frames": self.batch_frames,
            "batch_videos": self.batch_videos,
            "num_batches": self.num_batches,
            "num_frames": self.num_frames,
            M_J_PER_FRAME: self.miou_per_frame,
            M_F_PER_FRAME: self.fmeasure_per_frame,
            M_F_WHOLE_SET: self.fmeasure_curve,
            "per_category": {name: s.to_dict() for name, s in self.per_category.items()},
        }

    def summary(self) -> str:
        """One line with the official figures and the batch size they depend on."""
        batch = f"{self.batch_frames} frames"
        if self.batch_videos is not None:
            batch += f" = {self.batch_videos} videos"
        return (
            f"{M_J} {self.miou:.4f}  {M_F} {self.fmeasure:.4f} (per batch of {batch}, "
            f"{self.num_batches} batches, {self.num_frames} frames)  "
            f"{M_F_PER_FRAME} {self.fmeasure_per_frame:.4f}  "
            f"{M_F_WHOLE_SET} {self.fmeasure_curve:.4f}"
        )


class AVSMetrics:
    """Accumulates M_J and M_F over test batches the way the official test script does.

    Feed it one test batch at a time (all frames of the batch's videos, as the official loader
    yields them); the official figures are the plain mean of the per-batch values, so they depend
    on the batch size, which the result reports.
    """

    def __init__(self, *, frames_per_video: int | None = None) -> None:
        """Args:
        frames_per_video: frames of one video (5 for AVSBench), only used to report the batch
            size in videos.
        """
        if frames_per_video is not None and frames_per_video <= 0:
            raise ValueError(f"frames_per_video must be positive, got {frames_per_video}")
        self.frames_per_video = frames_per_video
        self.reset()

    def reset(self) -> None:
        """Forget every batch."""
        self.batch_miou: list[float] = []
        self.batch_fmeasure: list[float] = []
        self.batch_sizes: list[int] = []
        self._total = _Sums()
        self._categories: dict[str, _Sums] = {}

    def update(self, logits: Tensor, gt: Tensor, categories: Sequence[str] | None = None) -> None:
        """Add one test batch.

        Args:
            logits: [N, H, W] mask logits of the batch's frames.
            gt: [N, H, W] binary ground truth.
            categories: the category name of every frame (N names), for the per-category scores.
        """
        ious = mask_iou_per_frame(logits, gt)  # [N]
        curves, nonempty = f_measure_curves(logits, gt)  # [N, 255], [N]
        if categories is not None and len(categories) != ious.numel():
            raise ValueError(
                f"categories has {len(categories)} names for {ious.numel()} frames "
                "(give one name per frame)"
            )
        self.batch_miou.append(float(ious.mean()))
        batch_f = float(curves[nonempty].mean(0).max()) if bool(nonempty.any()) else 0.0
        self.batch_fmeasure.append(batch_f)
        self.batch_sizes.append(int(ious.numel()))
        self._total.add(ious, curves, nonempty)
        if categories is not None:
            names = list(categories)
            for name in dict.fromkeys(names):
                rows = torch.tensor([n == name for n in names])
                self._categories.setdefault(name, _Sums()).add(
                    ious[rows], curves[rows], nonempty[rows]
                )

    def compute(self) -> MetricsResult:
        """The dataset figures over every batch added so far."""
        if not self.batch_sizes:
            raise ValueError("no batch was added to the metrics")
        batch_frames = max(self.batch_sizes)
        per_category = {
            name: CategoryScores(
                num_frames=sums.frames,
                num_nonempty=sums.nonempty,
                miou=sums.miou(),
                fmeasure_per_frame=sums.fmeasure_per_frame(),
                fmeasure_curve=sums.fmeasure_curve(),
            )
            for name, sums in sorted(self._categories.items())
        }
        return MetricsResult(
            miou=sum(self.batch_miou) / len(self.batch_miou),
            fmeasure=sum(self.batch_fmeasure) / len(self.batch_fmeasure),
            batch_frames=batch_frames,
            batch_videos=(
                batch_frames // self.frames_per_video if self.frames_per_video is not None else None
            ),
            num_batches=len(self.batch_sizes),
            num_frames=self._total.frames,
            miou_per_frame=self._total.miou(),
            fmeasure_per_frame=self._total.fmeasure_per_frame(),
            fmeasure_curve=self._total.fmeasure_curve(),
            per_category=per_category,
        )
