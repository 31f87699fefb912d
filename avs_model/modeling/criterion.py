"""The AuTR training criterion: matched mask losses plus the sounding-score loss.

Per decoder layer (the last one and every auxiliary one, each matched on its own):

- a frame with a non-empty ground-truth mask (positive) trains its matched query's mask with
  sigmoid focal + dice losses (logits bilinearly upsampled to the ground-truth resolution) and
  its sounding score towards 1; its other queries' sounding scores go towards 0;
- a frame with an empty mask (negative) trains only the sounding head: every query towards 0;
- an unannotated frame (``valid`` False) contributes nothing.

Normalisation: ``loss_focal`` and ``loss_dice`` are summed over positive frames and divided by
the number of positive frames (DETR's ``num_boxes``); ``loss_sound`` is the BCE summed over the
Q queries of every valid frame, divided by the number of valid frames (a negative frame counts as
much as a positive one). Without positives (or without valid frames) the affected terms are an
exact 0 that is still connected to the graph (zero gradients, never NaN). Counts are local to the
process (no all-reduce across workers).

With the class head (``class_matcher`` given; Mask2Former's set criterion), every sounding class
present in a frame's label map is a target with its own mask, matched one-to-one to the queries
by :class:`~avs_model.modeling.matcher.ClassQueryMatcher`:

- ``loss_class``: cross-entropy of every query of every valid frame over the K + 1 classes (a
  matched query towards its target's class, every other one towards "no object", whose weight is
  ``no_object_weight``), the weighted mean over those queries (``F.cross_entropy`` with class
  weights, as Mask2Former);
- ``loss_focal`` / ``loss_dice``: each matched query's mask against its class's mask, summed over
  the matched pairs and divided by their number (Mask2Former's ``num_masks``);
- ``loss_sound``: as above, with every matched query's target 1 (a sounding object).

With the audio-tagging head (``audio_tag_logits`` in the outputs, ``audio_tags`` in the targets),
``loss_tag`` is the binary cross-entropy of its logits against the multi-hot classes heard, summed
over the table's classes and averaged over the frames whose heard classes are known
(``audio_tag_known``); an exact, connected 0 without such frames. It has no per-layer copies.

Names: ``loss_focal``, ``loss_dice``, ``loss_sound`` (and ``loss_class``) for the last layer;
``loss_focal_0``, ... for auxiliary layer 0, and so on. ``weighted_total`` applies the weight
dict; an auxiliary name falls back to its base name's weight unless the dict names it explicitly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avs_model.modeling.config import LossConfig
from avs_model.modeling.losses import (
    FOCAL_ALPHA,
    FOCAL_GAMMA,
    dice_loss,
    sigmoid_focal_loss,
    sounding_bce,
    upcast,
)
from avs_model.modeling.matcher import (
    ClassQueryMatcher,
    ClassTargets,
    FrameTargets,
    SoundingQueryMatcher,
    check_class_logits,
    check_outputs,
    class_targets,
    frame_targets,
)

DEFAULT_WEIGHTS: dict[str, float] = {"loss_focal": 2.0, "loss_dice": 5.0, "loss_sound": 2.0}
_AUX_SUFFIX = re.compile(r"_\d+$")


class SetCriterion(nn.Module):
    """Named AuTR losses for the last decoder layer and every auxiliary one."""

    def __init__(
        self,
        *,
        matcher: SoundingQueryMatcher,
        weight_dict: Mapping[str, float] | None = None,
        focal_alpha: float = FOCAL_ALPHA,
        focal_gamma: float = FOCAL_GAMMA,
        aux_loss: bool = True,
        class_matcher: ClassQueryMatcher | None = None,
        num_classes: int = 0,
        no_object_weight: float = 0.1,
    ) -> None:
        """Args:
        matcher: picks the positive query of every frame (re-run for every decoder layer).
        weight_dict: weights of ``loss_focal``, ``loss_dice``, ``loss_sound`` (defaults 2, 5, 2);
            auxiliary names (``loss_dice_0``) may be given to override their base weight.
        focal_alpha: focal loss alpha.
        focal_gamma: focal loss gamma.
        aux_loss: also compute the losses of ``outputs["aux_outputs"]``.
        class_matcher: the class head's matcher; given, the losses are the class head's (see
            the module docstring) and ``weight_dict`` must name ``loss_class`` too.
        num_classes: K, the class head's table size (with ``class_matcher``).
        no_object_weight: the "no object" class's cross-entropy weight (with ``class_matcher``).
        """
        super().__init__()
        weights = dict(DEFAULT_WEIGHTS if weight_dict is None else weight_dict)
        required = set(DEFAULT_WEIGHTS) | ({"loss_class"} if class_matcher is not None else set())
        missing = required - set(weights)
        if missing:
            raise ValueError(f"weight_dict lacks {sorted(missing)}")
        self.matcher = matcher
        self.weight_dict = weights
        self.focal_alpha = focal_alpha
        self.focal_gamma = focal_gamma
        self.aux_loss = aux_loss
        self.class_matcher = class_matcher
        self.num_classes = num_classes
        if class_matcher is not None:
            if num_classes < 1:
                raise ValueError("the class head's criterion needs num_classes >= 1")
            class_weight = torch.ones(num_classes + 1)
            class_weight[-1] = no_object_weight
            self.register_buffer("class_weight", class_weight)

    def layer_losses(
        self, outputs: Mapping[str, Tensor], frames: FrameTargets, indices: Tensor
    ) -> dict[str, Tensor]:
        """The three losses of one decoder layer given its matching.

        Args:
            outputs: ``{"pred_masks": [N, Q, h, w], "pred_scores": [N, Q]}``.
            frames: the checked targets.
            indices: LongTensor [N] from the matcher (-1: no positive query).

        Returns:
            ``{"loss_focal", "loss_dice", "loss_sound"}`` scalars.
        """
        pred_masks, pred_scores = check_outputs(outputs)
        device = pred_scores.device
        valid = frames.valid.to(device)
        indices = indices.to(device)
        matched = indices >= 0  # [N]
        if bool((matched & ~valid).any()):
            raise ValueError("the matcher returned a query for an invalid frame")

        # Sounding score: 1 for the matched query, 0 for every other query of a valid frame.
        pred_scores = upcast(pred_scores)
        score_targets = torch.zeros_like(pred_scores)  # [N, Q]
        frame_ids = matched.nonzero(as_tuple=True)[0]  # [P]
        query_ids = indices[frame_ids]  # [P]
        score_targets[frame_ids, query_ids] = 1.0
        bce = sounding_bce(pred_scores, score_targets)  # [N, Q]
        loss_sound = bce[valid].sum() / valid.sum().clamp(min=1)

        # Masks: only the matched query of every positive frame, at ground-truth resolution.
        num_positive = frame_ids.numel()
        if num_positive == 0:
            # an exact 0 that is still in the graph (zero gradients), whatever the logits hold
            zero = upcast(pred_masks[:0]).sum()
            return {"loss_focal": zero, "loss_dice": zero.clone(), "loss_sound": loss_sound}
        gt = frames.masks.to(device)[frame_ids]  # [P, Hg, Wg]
        logits = upcast(pred_masks[frame_ids, query_ids][:, None])  # [P, 1, h, w]
        logits = F.interpolate(logits, size=gt.shape[-2:], mode="bilinear", align_corners=False)
        logits = logits.flatten(1)  # [P, Hg*Wg]
        gt = gt.flatten(1)  # [P, Hg*Wg]
        focal = sigmoid_focal_loss(logits, gt, alpha=self.focal_alpha, gamma=self.focal_gamma)
        return {
            "loss_focal": focal.sum() / num_positive,
            "loss_dice": dice_loss(logits, gt).sum() / num_positive,
            "loss_sound": loss_sound,
        }

    def class_layer_losses(
        self,
        outputs: Mapping[str, Tensor],
        frames: FrameTargets,
        targets: list[ClassTargets],
        matches: list[tuple[Tensor, Tensor]],
    ) -> dict[str, Tensor]:
        """The four losses of one decoder layer with the class head, given its matching.

        Args:
            outputs: ``{"pred_masks": [N, Q, h, w], "pred_scores": [N, Q], "pred_logits":
                [N, Q, K + 1]}``.
            frames: the checked binary targets (for ``valid``).
            targets: the frames' class targets.
            matches: per frame ``(query_ids, target_ids)`` from the class matcher.

        Returns:
            ``{"loss_class", "loss_focal", "loss_dice", "loss_sound"}`` scalars.
        """
        pred_masks, pred_scores = check_outputs(outputs)
        num_frames, num_queries = pred_scores.shape
        pred_logits = upcast(check_class_logits(outputs, num_queries))
        device = pred_scores.device
        valid = frames.valid.to(device)
        no_object = pred_logits.shape[-1] - 1
        class_targets_ = torch.full((num_frames, num_queries), no_object, device=device)
        score_targets = torch.zeros_like(upcast(pred_scores))  # [N, Q]
        for i, ((query_ids, target_ids), target) in enumerate(zip(matches, targets, strict=True)):
            class_targets_[i, query_ids] = target.labels.to(device)[target_ids]
            score_targets[i, query_ids] = 1.0
        ce = F.cross_entropy(
            pred_logits[valid].transpose(1, 2),  # [V, K+1, Q]
            class_targets_[valid],  # [V, Q]
            weight=self.class_weight.to(pred_logits.dtype),
            reduction="sum",
        )
        weight_sum = self.class_weight.to(device)[class_targets_[valid]].sum()
        loss_class = ce / weight_sum.clamp(min=1e-12)
        bce = sounding_bce(upcast(pred_scores), score_targets)  # [N, Q]
        loss_sound = bce[valid].sum() / valid.sum().clamp(min=1)

        num_masks = sum(q.numel() for q, _ in matches)
        if num_masks == 0:
            zero = upcast(pred_masks[:0]).sum()
            return {
                "loss_class": loss_class,
                "loss_focal": zero,
                "loss_dice": zero.clone(),
                "loss_sound": loss_sound,
            }
        focal_sum, dice_sum = [], []
        for i, ((query_ids, target_ids), target) in enumerate(zip(matches, targets, strict=True)):
            if query_ids.numel() == 0:
                continue
            gt = target.masks.to(device)[target_ids].flatten(1)  # [M, Hg*Wg]
            logits = upcast(pred_masks[i, query_ids.to(device)][:, None])  # [M, 1, h, w]
            logits = F.interpolate(
                logits, size=target.masks.shape[-2:], mode="bilinear", align_corners=False
            ).flatten(1)  # [M, Hg*Wg]
            focal_sum.append(
                sigmoid_focal_loss(logits, gt, alpha=self.focal_alpha, gamma=self.focal_gamma).sum()
            )
            dice_sum.append(dice_loss(logits, gt).sum())
        return {
            "loss_class": loss_class,
            "loss_focal": torch.stack(focal_sum).sum() / num_masks,
            "loss_dice": torch.stack(dice_sum).sum() / num_masks,
            "loss_sound": loss_sound,
        }

    def forward(
        self, outputs: Mapping[str, object], targets: Mapping[str, Tensor]
    ) -> dict[str, Tensor]:
        """All named losses (unweighted).

        Args:
            outputs: the model output: ``pred_masks`` [N, Q, h, w], ``pred_scores`` [N, Q] and
                ``aux_outputs`` (a list of such dicts, one per earlier decoder layer).
            targets: ``{"masks": [N, Hg, Wg], "valid": bool [N]}``, with the class head also
                ``"class_maps"``: int [N, Hg, Wg] (0 background, ``k + 1`` for class k), with the
                audio-tagging head ``"audio_tags"``: float [N, T] multi-hot classes heard and
                ``"audio_tag_known"``: bool [N] (see :func:`audio_tag_targets`).

        Returns:
            ``loss_focal``, ``loss_dice``, ``loss_sound`` (and ``loss_class``, ``loss_tag``)
            and, for auxiliary layer i, ``loss_focal_i``, ``loss_dice_i``, ``loss_sound_i``
            (...).
        """
        pred_masks, _ = check_outputs(outputs)
        frames = frame_targets(targets, num_frames=pred_masks.shape[0])
        if self.class_matcher is None:

            def layer(out: Mapping[str, Tensor]) -> dict[str, Tensor]:
                return self.layer_losses(out, frames, self.matcher(out, targets))

        else:
            per_class = class_targets(
                targets, num_frames=pred_masks.shape[0], num_classes=self.num_classes
            )

            def layer(out: Mapping[str, Tensor]) -> dict[str, Tensor]:
                matches = self.class_matcher(out, per_class)
                return self.class_layer_losses(out, frames, per_class, matches)

        losses = layer(outputs)
        if self.aux_loss:
            for i, aux in enumerate(outputs.get("aux_outputs", None) or []):
                losses.update({f"{name}_{i}": value for name, value in layer(aux).items()})
        if "audio_tag_logits" in outputs and "audio_tags" in targets:
            losses["loss_tag"] = audio_tag_loss(
                outputs["audio_tag_logits"], targets["audio_tags"], targets["audio_tag_known"]
            )
        return losses

    def weight(self, name: str) -> float:
        """The weight of a loss name; ``loss_dice_3`` falls back to ``loss_dice``."""
        if name in self.weight_dict:
            return self.weight_dict[name]
        base = _AUX_SUFFIX.sub("", name)
        if base in self.weight_dict:
            return self.weight_dict[base]
        raise KeyError(f"no weight for loss {name!r} (weights: {sorted(self.weight_dict)})")

    def weighted_total(self, losses: Mapping[str, Tensor]) -> Tensor:
        """``sum(weight(name) * loss)`` over the named losses."""
        if not losses:
            raise ValueError("no losses to sum")
        return sum(self.weight(name) * value for name, value in losses.items())


def audio_tag_targets(
    heard: list[tuple[str, ...] | None], table: list[str], *, device: torch.device | None = None
) -> tuple[Tensor, Tensor]:
    """``(audio_tags float [N, T], audio_tag_known bool [N])``: per frame the multi-hot of the
    classes heard over ``table`` (a class outside it has no index and is left out), and whether
    they are known (None: unknown, e.g. an AVSBench frame; ``()``: nothing heard, e.g. silence)."""
    index = {label: i for i, label in enumerate(table)}
    tags = torch.zeros(len(heard), len(table))
    for frame, classes in enumerate(heard):
        for label in classes or ():
            if label in index:
                tags[frame, index[label]] = 1.0
    known = torch.tensor([classes is not None for classes in heard], dtype=torch.bool)
    return tags.to(device), known.to(device)


def audio_tag_loss(logits: Tensor, tags: Tensor, known: Tensor) -> Tensor:
    """The audio-tagging BCE, summed over classes and averaged over the known frames."""
    if logits.shape != tags.shape:
        raise ValueError(
            f"audio_tag_logits {tuple(logits.shape)} and audio_tags {tuple(tags.shape)} differ"
        )
    logits = upcast(logits)
    per_frame = F.binary_cross_entropy_with_logits(
        logits, tags.to(logits.dtype), reduction="none"
    ).sum(-1)
    return (per_frame * known.to(logits.dtype)).sum() / known.sum().clamp(min=1)


def build_criterion(
    config: LossConfig, *, num_classes: int = 0, audio_tags: bool = False
) -> SetCriterion:
    """The matcher and criterion described by a ``LossConfig``; ``num_classes`` K > 0: the class
    head's (its table's size); ``audio_tags``: the model has the audio-tagging head
    (``loss_tag`` weighted)."""
    class_matcher = None
    weight_dict = config.weight_dict()
    if audio_tags:
        weight_dict["loss_tag"] = config.loss_tag
    if num_classes > 0:
        class_matcher = ClassQueryMatcher(
            cost_class=config.cost_class,
            cost_focal=config.cost_focal,
            cost_dice=config.cost_dice,
            focal_alpha=config.focal_alpha,
            focal_gamma=config.focal_gamma,
        )
        weight_dict["loss_class"] = config.loss_class
    matcher = SoundingQueryMatcher(
        cost_focal=config.cost_focal,
        cost_dice=config.cost_dice,
        cost_sound=config.cost_sound,
        focal_alpha=config.focal_alpha,
        focal_gamma=config.focal_gamma,
    )
    return SetCriterion(
        matcher=matcher,
        weight_dict=weight_dict,
        focal_alpha=config.focal_alpha,
        focal_gamma=config.focal_gamma,
        aux_loss=config.aux_loss,
        class_matcher=class_matcher,
        num_classes=num_classes,
        no_object_weight=config.no_object_weight,
    )
