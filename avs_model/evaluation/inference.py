"""From AuTR outputs to one mask per frame: the query with the highest sounding score."""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from avs_model.modeling.matcher import check_outputs

EMPTY_LOGIT = -1.0e4
"""Logit given to every pixel of a gated-out frame (sigmoid 0 in float16/32; finite in float16)."""


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
    pred_masks, pred_scores = check_outputs(outputs)
    best = pred_scores.argmax(dim=1)  # [N]
    frame_ids = torch.arange(pred_masks.shape[0], device=pred_masks.device)
    logits = pred_masks[frame_ids, best][:, None]  # [N, 1, h, w]
    logits = F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False)[:, 0]
    scores = pred_scores[frame_ids, best].sigmoid()  # [N]
    if gate_threshold is not None:
        gated = scores < gate_threshold  # [N]
        logits = logits.masked_fill(gated[:, None, None], EMPTY_LOGIT)
    return logits, scores
