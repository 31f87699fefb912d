"""From AuTR outputs to one mask per frame (the query with the highest sounding score) and, for a
model with the class head, to one class-score map per frame (:func:`semantic_scores`)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from avs_model.modeling.matcher import check_outputs

EMPTY_LOGIT = -1.0e4
"""Logit given to every pixel of a gated-out frame (sigmoid 0 in float16/32; finite in float16)."""


def sounding_query(outputs: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
    """Per frame, the mask logits of the query with the highest sounding score at the model's
    mask resolution, ``[N, h, w]``, and the sigmoid of that score, ``[N]``."""
    pred_masks, pred_scores = check_outputs(outputs)
    best = pred_scores.argmax(dim=1)  # [N]
    frame_ids = torch.arange(pred_masks.shape[0], device=pred_masks.device)
    return pred_masks[frame_ids, best], pred_scores[frame_ids, best].sigmoid()


def select_sounding_mask(
    outputs: Mapping[str, Tensor],
    size: tuple[int, int],
    gate_threshold: float | None = None,
) -> tuple[Tensor, Tensor]:
    """Per frame, the mask logits of the query with the highest sounding score.

    The metrics take these raw logits, as the AVSBench evaluation does (it applies the sigmoid
    itself).

    Args:
        outputs: ``{"pred_masks": [N, Q, h, w], "pred_scores": [N, Q], ...}`` (only the last
            decoder layer is used).
        size: ``(Hg, Wg)`` the ground-truth resolution; the logits are upsampled bilinearly.
        gate_threshold: if given, a frame whose best score (after the sigmoid) is below it gets an
            empty mask (every logit ``EMPTY_LOGIT``).

    Returns:
        ``(logits [N, Hg, Wg], scores [N])``: the selected mask logits and the sigmoid of the
        selected query's sounding score.
    """
    masks, scores = sounding_query(outputs)
    logits = F.interpolate(masks[:, None], size=tuple(size), mode="bilinear", align_corners=False)
    return gate(logits[:, 0], scores, gate_threshold), scores


def gate(logits: Tensor, scores: Tensor, gate_threshold: float | None) -> Tensor:
    """``logits [N, ...]`` with every logit of a frame whose score is below ``gate_threshold``
    set to ``EMPTY_LOGIT`` (unchanged without a threshold)."""
    if gate_threshold is None:
        return logits
    gated = (scores < gate_threshold).view(-1, *[1] * (logits.ndim - 1))
    return logits.masked_fill(gated, EMPTY_LOGIT)


BACKGROUND_SCORE = 0.5
"""The background channel of :func:`semantic_scores`: a pixel is background unless a class's
score reaches one half (the binary masks' threshold)."""


def semantic_map(mask_logits: Tensor, class_logits: Tensor, *, chunk: int = 64) -> Tensor:
    """Per frame, the semantic map of a model with the class head: Mask2Former's semantic
    inference with a background channel.

    AVSBench-semantic's own models classify every pixel over C channels, background included
    (``avs_scripts/avss/test.py``: argmax of the softmax); a query model has no such channel, so
    the score of class k is Mask2Former's ``semantic_inference``, ``sum_q softmax(class
    logits_q)[k] * sigmoid(mask_q)`` ("no object" dropped), and the background's is the constant
    :data:`BACKGROUND_SCORE`; each pixel takes the highest (ties: the background, then the lower
    class). Classes are scored ``chunk`` at a time, so memory stays ``chunk`` maps.

    Args:
        mask_logits: [N, Q, H, W] every query's mask logits at the map's resolution.
        class_logits: [N, Q, K + 1] class logits (K classes, then "no object").

    Returns:
        int64 [N, H, W]: 0 background, ``k + 1`` for class k.
    """
    if mask_logits.ndim != 4 or class_logits.shape[:2] != mask_logits.shape[:2]:
        raise ValueError(
            f"mask logits [N, Q, H, W] and class logits [N, Q, K+1] expected, got "
            f"{tuple(mask_logits.shape)} and {tuple(class_logits.shape)}"
        )
    probs = class_logits.float().softmax(-1)[..., :-1]  # [N, Q, K]
    masks = mask_logits.float().sigmoid()  # [N, Q, H, W]
    best = masks.new_full((masks.shape[0], *masks.shape[-2:]), BACKGROUND_SCORE)  # [N, H, W]
    labels = torch.zeros(best.shape, dtype=torch.long, device=best.device)
    for start in range(0, probs.shape[-1], chunk):
        scores = torch.einsum("nqk,nqhw->nkhw", probs[..., start : start + chunk], masks)
        top, index = scores.max(dim=1)  # [N, H, W]
        better = top > best
        best = torch.where(better, top, best)
        labels = torch.where(better, index + start + 1, labels)
    return labels
