"""The matchers: which of a frame's Q queries answers for which ground-truth target.

``SoundingQueryMatcher`` (AuTR, one target per frame) is described here; ``ClassQueryMatcher``
(the optional class head, one target per sounding class present, Hungarian matching) is
described at its class.

Every frame carries one ground-truth mask (the union of its sounding objects). For a frame with a
non-empty mask the positive query is the one with the lowest cost

    C = cost_dice * dice + cost_focal * focal + cost_sound * BCE(sound score, 1)

where the mask costs compare the query's mask logits, bilinearly upsampled to the ground-truth
resolution, with the ground-truth mask. Frames whose mask is empty (negatives: the audio names
nothing in the picture) and unannotated frames (``valid`` False) get no positive: index -1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
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


# --- the class head's matching: several targets per frame -----------------------------------------


@dataclass(frozen=True)
class ClassTargets:
    """One frame's class targets: one per sounding class present in its label map.

    Attributes:
        labels: long [M] class indices in ``[0, K)`` (ascending).
        masks: float [M, Hg, Wg] each class's mask in {0, 1}.
    """

    labels: Tensor
    masks: Tensor


def class_targets(
    targets: Mapping[str, Tensor], *, num_frames: int, num_classes: int
) -> list[ClassTargets]:
    """Split the label maps ``targets["class_maps"]`` (int [N, Hg, Wg]: 0 background, ``k + 1``
    for class k) into per-class targets; an unannotated frame (``valid`` False) gets none."""
    if "class_maps" not in targets:
        raise KeyError(
            "the class head needs targets['class_maps'] (int [N, Hg, Wg] label maps): train it on "
            "shards built with --class-masks"
        )
    maps = targets["class_maps"]
    if maps.ndim != 3 or maps.shape[0] != num_frames:
        raise ValueError(
            f"targets['class_maps'] must be [N={num_frames}, Hg, Wg], got {tuple(maps.shape)}"
        )
    valid = targets.get("valid")
    valid_list = [True] * num_frames if valid is None else valid.bool().tolist()
    if len(valid_list) != num_frames:
        raise ValueError(f"targets['valid'] must be [N={num_frames}], got {len(valid_list)}")
    maps = maps.long()
    if bool(((maps < 0) | (maps > num_classes)).any()):
        raise ValueError(
            f"targets['class_maps'] holds values outside [0, {num_classes}] (0 background, "
            f"k + 1 for class k of the {num_classes}-class table)"
        )
    out = []
    for frame, is_valid in zip(maps, valid_list, strict=True):
        values = frame.unique()
        values = values[values > 0] if is_valid else values[:0]
        masks = (frame[None] == values[:, None, None]).float()  # [M, Hg, Wg]
        out.append(ClassTargets(labels=values - 1, masks=masks))
    return out


def check_class_logits(outputs: Mapping[str, Tensor], num_queries: int) -> Tensor:
    """``pred_logits`` [N, Q, K + 1] of a model output with the class head, checked."""
    if "pred_logits" not in outputs:
        raise KeyError("the model output has no 'pred_logits': the model has no class head")
    logits = outputs["pred_logits"]
    if logits.ndim != 3 or logits.shape[1] != num_queries or logits.shape[2] < 2:
        raise ValueError(f"pred_logits must be [N, Q={num_queries}, K+1], got {logits.shape}")
    return logits


class ClassQueryMatcher(nn.Module):
    """Hungarian matching of a frame's Q queries to its M class targets (Mask2Former's matcher,
    on the full-resolution masks): the cost of query q for target m is

        C = cost_class * (-softmax(class logits_q)[label_m]) + cost_focal * focal
            + cost_dice * dice

    and every target gets a distinct query (M <= Q); the other queries are "no object".
    """

    def __init__(
        self,
        *,
        cost_class: float = 2.0,
        cost_focal: float = 2.0,
        cost_dice: float = 5.0,
        focal_alpha: float = FOCAL_ALPHA,
        focal_gamma: float = FOCAL_GAMMA,
    ) -> None:
        """Args:
        cost_class: weight of the class cost.
        cost_focal: weight of the sigmoid focal mask cost.
        cost_dice: weight of the dice mask cost.
        focal_alpha: focal loss alpha.
        focal_gamma: focal loss gamma.
        """
        super().__init__()
        if cost_class == 0 and cost_focal == 0 and cost_dice == 0:
            raise ValueError("all matcher costs are 0")
        self.cost_class = cost_class
        self.cost_focal = cost_focal
        self.cost_dice = cost_dice
        self.focal_alpha = focal_alpha
        self.focal_gamma = focal_gamma

    @torch.no_grad()
    def cost(self, pred_masks: Tensor, pred_logits: Tensor, target: ClassTargets) -> Tensor:
        """The cost matrix of one frame.

        Args:
            pred_masks: [Q, h, w] mask logits.
            pred_logits: [Q, K + 1] class logits.
            target: the frame's M targets.

        Returns:
            float [Q, M] cost.
        """
        with torch.autocast(pred_masks.device.type, enabled=False):
            gt = target.masks.to(pred_masks.device)
            logits = F.interpolate(
                upcast(pred_masks)[None], size=gt.shape[-2:], mode="bilinear", align_corners=False
            )[0].flatten(1)  # [Q, Hg*Wg]
            gt = upcast(gt).flatten(1)  # [M, Hg*Wg]
            prob = upcast(pred_logits).softmax(-1)  # [Q, K+1]
            cost = -self.cost_class * prob[:, target.labels.to(prob.device)]  # [Q, M]
            if self.cost_focal:
                cost = cost + self.cost_focal * pairwise_sigmoid_focal_loss(
                    logits, gt, alpha=self.focal_alpha, gamma=self.focal_gamma
                )
            if self.cost_dice:
                cost = cost + self.cost_dice * pairwise_dice_loss(logits, gt)
        return cost

    @torch.no_grad()
    def forward(
        self, outputs: Mapping[str, Tensor], targets: Sequence[ClassTargets]
    ) -> list[tuple[Tensor, Tensor]]:
        """Match the queries of one decoder layer.

        Args:
            outputs: ``{"pred_masks": [N, Q, h, w], "pred_logits": [N, Q, K + 1], ...}``.
            targets: N frames' class targets (:func:`class_targets`).

        Returns:
            per frame ``(query_ids, target_ids)``: two LongTensors [M] on the CPU, target
            ``target_ids[i]`` answered by query ``query_ids[i]`` (sorted by query).
        """
        pred_masks = outputs["pred_masks"]
        pred_logits = check_class_logits(outputs, pred_masks.shape[1])
        if len(targets) != pred_masks.shape[0]:
            raise ValueError(f"{len(targets)} frames of targets, {pred_masks.shape[0]} predicted")
        out = []
        for masks, logits, target in zip(pred_masks, pred_logits, targets, strict=True):
            num_targets = target.labels.numel()
            if num_targets > masks.shape[0]:
                raise ValueError(f"{num_targets} class targets but only {masks.shape[0]} queries")
            if num_targets == 0:
                empty = torch.zeros(0, dtype=torch.long)
                out.append((empty, empty.clone()))
                continue
            cost = self.cost(masks, logits, target).cpu()
            rows, cols = linear_sum_assignment(cost.numpy())
            out.append((torch.as_tensor(rows, dtype=torch.long), torch.as_tensor(cols)))
        return out
