"""Frames kept for pictures while a model is evaluated.

The evaluation loop hands every scored batch to a :class:`FrameGallery`, which keeps, at a small
size, only the frames that will be shown: the first few (TensorBoard's prediction images at each
validation, the same frames every time) and, per category, the best and the worst by IoU (the
page ``avs-train evaluate`` writes). Memory stays bounded whatever the size of the split.

A kept frame holds the picture the model saw (padding cropped away, brought to the ground
truth's aspect), the predicted mask (the selected query, ungated, as the ungated M_J scores it),
the ground truth, its IoU and its sounding score.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from avs_model.data.frame_batch import FrameBatch
from avs_model.evaluation.metrics import mask_iou_per_frame
from avs_synth.overlay import mask_overlay

PREVIEW_FRAMES = 4
"""Frames kept by default for TensorBoard (the first of the split)."""


@dataclass
class GalleryFrame:
    """One frame kept for pictures.

    Attributes:
        key: the frame's key (sample key, ``{video}_{k}``).
        category: its category.
        iou: its AVSBench IoU (ungated).
        score: its sounding score.
        picture: uint8 ``[h, w, 3]``, the model's input picture at the ground truth's aspect.
        prediction, truth: bool ``[h, w]``.
    """

    key: str
    category: str
    iou: float
    score: float
    picture: np.ndarray
    prediction: np.ndarray
    truth: np.ndarray

    def plain(self) -> Image.Image:
        """The picture alone."""
        return Image.fromarray(self.picture)

    def overlay(self, *, caption: bool = False) -> Image.Image:
        """The picture with the prediction tinted and the ground truth outlined."""
        text = f"{self.key}  IoU {self.iou:.2f}  score {self.score:.2f}" if caption else None
        return mask_overlay(
            Image.fromarray(self.picture), self.prediction, outline=self.truth, caption=text
        )


def _frame(
    batch: FrameBatch, i: int, logits: Tensor, iou: float, score: float, max_side: int
) -> GalleryFrame:
    assert batch.gt_masks is not None
    truth = batch.gt_masks[i]
    height, width = truth.shape[-2:]
    scale = min(1.0, max_side / max(height, width))
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    content_h, content_w = batch.content_sizes[i]
    image = batch.images[i, :, :content_h, :content_w].float()[None]  # [1, 3, h, w]
    image = F.interpolate(image, size=size, mode="bilinear", align_corners=False)
    masks = torch.stack([logits.float() > 0, truth.bool()])[:, None].float()  # [2, 1, Hg, Wg]
    masks = F.interpolate(masks, size=size, mode="nearest")[:, 0] > 0.5
    return GalleryFrame(
        key=batch.keys[i],
        category=batch.categories[i],
        iou=iou,
        score=score,
        picture=image[0].permute(1, 2, 0).round().clamp(0, 255).byte().cpu().numpy(),
        prediction=masks[0].cpu().numpy(),
        truth=masks[1].cpu().numpy(),
    )


@dataclass
class FrameGallery:
    """Keeps the frames to show (see the module docstring).

    Args:
        first: keep the first this many frames (:attr:`first_frames`).
        per_category: keep this many best and this many worst frames per category.
        max_side: longer side of the kept pictures, in pixels.
    """

    first: int = PREVIEW_FRAMES
    per_category: int = 0
    max_side: int = 320
    first_frames: list[GalleryFrame] = field(default_factory=list)
    _best: dict[str, list] = field(default_factory=dict)
    _worst: dict[str, list] = field(default_factory=dict)
    _order: itertools.count = field(default_factory=itertools.count)

    def add(self, batch: FrameBatch, logits: list[Tensor], scores: Tensor) -> None:
        """Look at one scored batch (``logits``: the ungated mask logits at the ground truths'
        sizes, as :func:`~avs_model.evaluation.loop.frame_logits` returns them)."""
        if batch.gt_masks is None or not (self.first or self.per_category):
            return
        for i, (logit, gt) in enumerate(zip(logits, batch.gt_masks, strict=True)):
            iou = float(mask_iou_per_frame(logit[None], gt[None])[0])
            score = float(scores[i])
            n = next(self._order)  # ties: the earlier frame stays
            category = batch.categories[i]
            best = self._best.setdefault(category, [])
            worst = self._worst.setdefault(category, [])
            wanted = [
                (heap, rank)
                for heap, rank in ((best, (iou, -n)), (worst, (-iou, -n)))
                if self.per_category and _ranks_in(heap, rank, self.per_category)
            ]
            keep_first = len(self.first_frames) < self.first
            if not (wanted or keep_first):
                continue
            frame = _frame(batch, i, logit, iou, score, self.max_side)
            if keep_first:
                self.first_frames.append(frame)
            for heap, rank in wanted:
                if len(heap) < self.per_category:
                    heapq.heappush(heap, (rank, frame))
                else:
                    heapq.heapreplace(heap, (rank, frame))

    def best(self, category: str) -> list[GalleryFrame]:
        """The category's best frames, best first."""
        return [
            f for _, f in sorted(self._best.get(category, []), key=lambda e: e[0], reverse=True)
        ]

    def worst(self, category: str) -> list[GalleryFrame]:
        """The category's worst frames, worst first."""
        return [
            f for _, f in sorted(self._worst.get(category, []), key=lambda e: e[0], reverse=True)
        ]

    @property
    def categories(self) -> list[str]:
        return sorted(self._best)


def _ranks_in(heap: list, rank: tuple[float, int], size: int) -> bool:
    """Whether ``rank`` belongs among the ``size`` highest kept in the min-heap ``heap``."""
    return len(heap) < size or rank > heap[0][0]
