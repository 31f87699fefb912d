"""Scores on negatives (frames whose ground truth is empty), as AVSBench-Robust defines them.

AVSBench-Robust (Li et al., "Do Audio-Visual Segmentation Models Truly Segment Sounding
Objects?", arXiv 2502.00358; code: jiali-home/AVSBench-Robust) scores a model on negative audio
(silence, noise, off-screen sound) by how much it still segments:

- ``FPR_pixel``: the repository's ``calculate_FPR`` (``training_evaluation/code/AVSegFormer/
  scripts/s4/test.py``): per batch, the mean over its frames of the fraction of pixels with
  ``sigmoid(logit) > 0.5``; the figure is the plain mean over batches (its ``AverageMeter``). It
  is computed on UNGATED masks (the mask the model outputs, before any sounding-score gate). A
  batch here is one loader batch's negative frames (a synthetic picture is its own batch).
- ``FPR_frame`` / ``FPR_frame_gated``: the share of negative frames with at least one predicted
  pixel (``sigmoid(logit) > 0.5``), ungated and gated by the sounding score -- the figure that
  says how often a user would see a mask where nothing sounds.
- ``G_M_J`` / ``G_M_F`` (the paper's G-mIoU / G-F): the harmonic mean of the positive frames'
  M_J (resp. M_F) and ``1 - FPR_pixel`` on the negatives, ``2 s (1 - FPR) / (s + 1 - FPR)``
  (0 when both are 0): high only when the model segments the sounding objects AND stays empty on
  negatives.

:class:`NegativeMetrics` accumulates these per negative kind (``absent``, ``silence``, ``noise``,
``offscreen``; see :mod:`avs_synth.schema`) and over all negatives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

FPR_PIXEL, FPR_FRAME, FPR_FRAME_GATED = "FPR_pixel", "FPR_frame", "FPR_frame_gated"
G_M_J, G_M_F = "G_M_J", "G_M_F"


def pixel_fpr_per_frame(logits: Tensor) -> Tensor:
    """The fraction of pixels predicted (``sigmoid(logit) > 0.5``) in every frame.

    As ``calculate_FPR``: ``binary.sum() / (H * W + 1e-7)`` per frame.

    Args:
        logits: [N, H, W] mask logits.

    Returns:
        float64 [N] on the CPU.
    """
    if logits.ndim != 3:
        raise ValueError(f"logits must be [N, H, W], got {tuple(logits.shape)}")
    predicted = (logits.float().sigmoid() > 0.5).flatten(1).sum(1)  # [N]
    pixels = logits.shape[-2] * logits.shape[-1]
    return predicted.cpu().double() / (pixels + 1e-7)


def pixel_fpr(logits: Tensor) -> float:
    """``calculate_FPR`` of one batch (``size_average=True``): the mean of
    :func:`pixel_fpr_per_frame`."""
    return float(pixel_fpr_per_frame(logits).mean())


def any_predicted(logits: Tensor) -> Tensor:
    """bool [N]: frames with at least one pixel with ``sigmoid(logit) > 0.5``."""
    return (logits.float().sigmoid() > 0.5).flatten(1).any(1).cpu()


def harmonic_score(score: float, fpr: float) -> float:
    """``2 s (1 - fpr) / (s + 1 - fpr)``: AVSBench-Robust's G-mIoU (``s`` = M_J) or G-F
    (``s`` = M_F); 0 when both terms are 0."""
    kept = 1.0 - fpr
    return 0.0 if score + kept <= 0.0 else 2.0 * score * kept / (score + kept)


@dataclass
class _Sums:
    batch_fpr: list[float] = field(default_factory=list)
    frames: int = 0
    fired: int = 0
    fired_gated: int = 0

    def add(self, pixel: Tensor, fired: Tensor, fired_gated: Tensor) -> None:
        self.batch_fpr.append(float(pixel.mean()))
        self.frames += int(pixel.numel())
        self.fired += int(fired.sum())
        self.fired_gated += int(fired_gated.sum())

    def result(self) -> NegativeScores:
        return NegativeScores(
            num_frames=self.frames,
            num_batches=len(self.batch_fpr),
            pixel_fpr=sum(self.batch_fpr) / len(self.batch_fpr),
            frame_fpr=self.fired / self.frames,
            frame_fpr_gated=self.fired_gated / self.frames,
        )


@dataclass(frozen=True)
class NegativeScores:
    """False-positive rates over a set of negative frames.

    Attributes:
        num_frames, num_batches: negative frames and the batches they came in.
        pixel_fpr: ``FPR_pixel`` (AVSBench-Robust's ``calculate_FPR``, ungated).
        frame_fpr, frame_fpr_gated: ``FPR_frame`` (ungated) and ``FPR_frame_gated``.
    """

    num_frames: int
    num_batches: int
    pixel_fpr: float
    frame_fpr: float
    frame_fpr_gated: float

    def to_dict(self) -> dict[str, Any]:
        """The scores under their output names."""
        return {
            "num_frames": self.num_frames,
            "num_batches": self.num_batches,
            FPR_PIXEL: self.pixel_fpr,
            FPR_FRAME: self.frame_fpr,
            FPR_FRAME_GATED: self.frame_fpr_gated,
        }


@dataclass(frozen=True)
class NegativeResult:
    """Scores over every negative frame and per negative kind.

    Attributes:
        total: every negative frame.
        per_kind: by negative kind (``absent``, ``silence``, ``noise``, ``offscreen``).
    """

    total: NegativeScores
    per_kind: dict[str, NegativeScores]

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict under the output names."""
        return {
            **self.total.to_dict(),
            "per_kind": {kind: s.to_dict() for kind, s in self.per_kind.items()},
        }


class NegativeMetrics:
    """Accumulates the false-positive rates of negative frames, batch by batch."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget every batch."""
        self._total = _Sums()
        self._kinds: dict[str, _Sums] = {}

    def update(self, logits: Tensor, gated_logits: Tensor, kinds: Sequence[str]) -> None:
        """Add one batch of negative frames.

        Args:
            logits: [N, H, W] ungated mask logits of the batch's negative frames.
            gated_logits: [N, H, W] the same frames gated by the sounding score.
            kinds: the negative kind of every frame (N names).
        """
        if len(kinds) != logits.shape[0] or gated_logits.shape != logits.shape:
            raise ValueError(
                f"{len(kinds)} kinds, logits {tuple(logits.shape)} and gated logits "
                f"{tuple(gated_logits.shape)}: give one kind and one gated mask per frame"
            )
        if logits.shape[0] == 0:
            return
        pixel = pixel_fpr_per_frame(logits)  # [N]
        fired = any_predicted(logits)  # [N]
        fired_gated = any_predicted(gated_logits)  # [N]
        self._total.add(pixel, fired, fired_gated)
        names = list(kinds)
        for kind in dict.fromkeys(names):
            rows = torch.tensor([n == kind for n in names])
            self._kinds.setdefault(kind, _Sums()).add(pixel[rows], fired[rows], fired_gated[rows])

    def compute(self) -> NegativeResult | None:
        """The scores so far (None when no negative frame was added)."""
        if not self._total.frames:
            return None
        return NegativeResult(
            total=self._total.result(),
            per_kind={kind: sums.result() for kind, sums in sorted(self._kinds.items())},
        )
