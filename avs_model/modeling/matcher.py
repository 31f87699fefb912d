"""The sounding-query matcher: which of a frame's Q queries answers for its ground-truth mask.

Every frame carries one ground-truth mask (the union of its sounding objects). For a frame with a
non-empty mask the positive query is the one with the lowest cost

    C = cost_dice * dice + cost_focal * focal + cost_sound * BCE(sound score, 1)

where the mask costs compare the query's mask logits, bilinearly upsampled to the ground-truth
resolution, with the ground-truth mask. Frames whose mask is empty (negatives: the audio names
nothing in the picture) and unannotated frames (``valid`` False) get no positive: index -1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avs_model.modeling.losses import (
    FOCAL_ALPHA,
    FOCAL_GAMMA,
    pairwise_dice_loss,
    pairwise_sigmoid_focal_loss,
    sounding_bce,
    upcast,
)


@dataclass(frozen=True)
class FrameTargets:
    """Per-frame targets, checked and converted.

    Attributes:
        masks: float [N, Hg, Wg] ground-truth masks in {0, 1} (at least float32).
        valid: bool [N] annotated frames.
        positive: bool [N] annotated frames with a non-empty mask.
    """

    masks: Tensor
    valid: Tensor
    positive: Tensor


def frame_targets(targets: Mapping[str, Tensor], *, num_frames: int) -> FrameTargets:
    """Check the targets dict ``{"masks": [N, Hg, Wg], "valid": bool [N] (optional)}``.

    A missing ``valid`` means every frame is annotated.
    """
    if "masks" not in targets:
        raise KeyError("targets need a 'masks' entry: float/bool [N, Hg, Wg]")
    masks = targets["masks"]
    if masks.ndim != 3 or masks.shape[0] != num_frames:
        raise ValueError(
            f"targets['masks'] must be [N={num_frames}, Hg, Wg], got {tuple(masks.shape)}"
        )
    valid = targets.get("valid")
    if valid is None:
        valid = torch.ones(num_frames, dtype=torch.bool, device=masks.device)
    if valid.shape != (num_frames,):
        raise ValueError(f"targets['valid'] must be [N={num_frames}], got {tuple(valid.shape)}")
    valid = valid.to(device=masks.device, dtype=torch.bool)
    masks = upcast(masks)
    if bool(((masks < 0) | (masks > 1)).any()):
        raise ValueError("targets['masks'] must hold values in [0, 1] (binary masks)")
    positive = valid & (masks.flatten(1).sum(1) > 0)
    return FrameTargets(masks=masks, valid=valid, positive=positive)


def check_outputs(outputs: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
    """``(pred_masks [N, Q, h, w], pred_scores [N, Q])`` from a model output dict, checked."""
    pred_masks, pred_scores = outputs["pred_masks"], outputs["pred_scores"]
    if pred_masks.ndim != 4:
        raise ValueError(f"pred_masks must be [N, Q, h, w], got {tuple(pred_masks.shape)}")
    if pred_scores.shape != pred_masks.shape[:2]:
        raise ValueError(
            f"pred_scores must be [N, Q] = {tuple(pred_masks.shape[:2])}, "
            f"got {tuple(pred_scores.shape)}"
        )
    return pred_masks, pred_scores


class SoundingQueryMatcher(nn.Module):
    """Picks, for every frame with a non-empty ground-truth mask, its lowest-cost query."""

    def __init__(
        self,
        *,
        cost_focal: float = 2.0,
        cost_dice: float = 5.0,
        cost_sound: float = 2.0,
        focal_alpha: float = FOCAL_ALPHA,
        focal_gamma: float = FOCAL_GAMMA,
    ) -> None:
        """Args:
        cost_focal: weight of the sigmoid focal mask cost.
        cost_dice: weight of the dice mask cost.
        cost_sound: weight of the sounding cost ``BCE(score, 1)``.
        focal_alpha: focal loss alpha.
        focal_gamma: focal loss gamma.
        """
        super().__init__()
        if cost_focal == 0 and cost_dice == 0 and cost_sound == 0:
            raise ValueError("all matcher costs are 0")
        self.cost_focal = cost_focal
        self.cost_dice = cost_dice
        self.cost_sound = cost_sound
        self.focal_alpha = focal_alpha
        self.focal_gamma = focal_gamma

    @torch.no_grad()
    def cost(self, pred_masks: Tensor, pred_scores: Tensor, gt_masks: Tensor) -> Tensor:
        """The matching cost of every query of every frame.

        Args:
            pred_masks: [N, Q, h, w] mask logits.
            pred_scores: [N, Q] sounding-score logits.
            gt_masks: [N, Hg, Wg] ground-truth masks.

        Returns:
            float [N, Q] cost.
        """
        num_frames, num_queries = pred_scores.shape
        size = gt_masks.shape[-2:]
        # full precision even under mixed precision (einsum would run in float16)
        with torch.autocast(pred_masks.device.type, enabled=False):
            logits = F.interpolate(
                upcast(pred_masks), size=size, mode="bilinear", align_corners=False
            ).flatten(2)  # [N, Q, Hg*Wg]
            gt = upcast(gt_masks).flatten(1)[:, None, :]  # [N, 1, Hg*Wg]
            cost = self.cost_sound * sounding_bce(upcast(pred_scores), 1.0)  # [N, Q]
            if self.cost_focal:
                focal = pairwise_sigmoid_focal_loss(
                    logits, gt, alpha=self.focal_alpha, gamma=self.focal_gamma
                )  # [N, Q, 1]
                cost = cost + self.cost_focal * focal[..., 0]
            if self.cost_dice:
                cost = cost + self.cost_dice * pairwise_dice_loss(logits, gt)[..., 0]
        return cost.view(num_frames, num_queries)

    @torch.no_grad()
    def forward(self, outputs: Mapping[str, Tensor], targets: Mapping[str, Tensor]) -> Tensor:
        """Match the queries of one decoder layer.

        Args:
            outputs: ``{"pred_masks": [N, Q, h, w], "pred_scores": [N, Q], ...}``.
            targets: ``{"masks": [N, Hg, Wg], "valid": bool [N]}``.

        Returns:
            LongTensor [N]: the positive query of every frame, -1 where the frame is invalid or
            its mask is empty.
        """
        pred_masks, pred_scores = check_outputs(outputs)
        frames = frame_targets(targets, num_frames=pred_masks.shape[0])
        indices = torch.full(
            (pred_masks.shape[0],), -1, dtype=torch.long, device=pred_scores.device
        )
        positive = frames.positive.to(pred_scores.device)
        if not bool(positive.any()):
            return indices
        gt_masks = frames.masks.to(pred_masks.device)[positive]  # [P, Hg, Wg]
        cost = self.cost(pred_masks[positive], pred_scores[positive], gt_masks)  # [P, Q]
        indices[positive] = cost.argmin(dim=1)
        return indices
