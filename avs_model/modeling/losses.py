"""Mask and sounding-score loss functions (pure functions, DETR / Mask2Former style).

Every function takes *logits* (the sigmoid is applied inside) and reduces over the last dimension
(the flattened pixels), so the caller decides how to normalise (the criterion divides by the
number of positive frames, as DETR divides by ``num_boxes``).

- ``sigmoid_focal_loss`` / ``dice_loss``: matching pairs, ``[..., P]`` x ``[..., P]`` -> ``[...]``.
- ``pairwise_sigmoid_focal_loss`` / ``pairwise_dice_loss``: every prediction against every target,
  ``[..., Q, P]`` x ``[..., M, P]`` -> ``[..., Q, M]`` (the matcher's cost matrices).
- ``sounding_bce``: binary cross-entropy of sounding-score logits.

Definitions (per prediction ``x`` of P pixels, target ``y`` in [0, 1], ``p = sigmoid(x)``):

    focal = mean_i  alpha_t * (1 - p_t)^gamma * BCE(x_i, y_i)
            with p_t = p*y + (1-p)*(1-y), alpha_t = alpha*y + (1-alpha)*(1-y)
    dice  = 1 - (2 * sum(p*y) + 1) / (sum(p) + sum(y) + 1)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

FOCAL_ALPHA = 0.25
FOCAL_GAMMA = 2.0


def upcast(x: Tensor) -> Tensor:
    """``x`` in at least float32 (float16 / bfloat16 / integers / bool become float32; float64
    stays), the precision every loss here is computed in under mixed precision."""
    if not x.is_floating_point():
        return x.float()
    return x.to(torch.promote_types(x.dtype, torch.float32))


def sigmoid_focal_loss(
    logits: Tensor, targets: Tensor, *, alpha: float = FOCAL_ALPHA, gamma: float = FOCAL_GAMMA
) -> Tensor:
    """Sigmoid focal loss averaged over the last dimension.

    Args:
        logits: [..., P] mask logits.
        targets: [..., P] targets in [0, 1], same shape as ``logits``.
        alpha: weight of the positive pixels (negative alpha disables the weighting).
        gamma: focusing exponent.

    Returns:
        [...] the loss of every mask (mean over its P pixels).
    """
    targets = targets.to(logits.dtype)
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = prob * targets + (1 - prob) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss.mean(-1)


def dice_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Dice loss (with +1 smoothing) of every mask.

    Args:
        logits: [..., P] mask logits.
        targets: [..., P] targets in [0, 1], same shape as ``logits``.

    Returns:
        [...] ``1 - (2 sum(p y) + 1) / (sum(p) + sum(y) + 1)``.
    """
    targets = targets.to(logits.dtype)
    prob = logits.sigmoid()
    numerator = 2 * (prob * targets).sum(-1)
    denominator = prob.sum(-1) + targets.sum(-1)
    return 1 - (numerator + 1) / (denominator + 1)


def pairwise_sigmoid_focal_loss(
    logits: Tensor, targets: Tensor, *, alpha: float = FOCAL_ALPHA, gamma: float = FOCAL_GAMMA
) -> Tensor:
    """Focal loss of every prediction against every target (equals ``sigmoid_focal_loss`` per pair).

    Args:
        logits: [..., Q, P] mask logits.
        targets: [..., M, P] targets in [0, 1]; the leading dimensions match ``logits``.
        alpha: weight of the positive pixels (negative alpha disables the weighting).
        gamma: focusing exponent.

    Returns:
        [..., Q, M] cost matrix.
    """
    targets = targets.to(logits.dtype)
    num_pixels = logits.shape[-1]
    prob = logits.sigmoid()
    # BCE(x, 1) = softplus(-x), BCE(x, 0) = softplus(x)
    focal_pos = (1 - prob) ** gamma * F.softplus(-logits)  # [..., Q, P]
    focal_neg = prob**gamma * F.softplus(logits)  # [..., Q, P]
    if alpha >= 0:
        focal_pos = focal_pos * alpha
        focal_neg = focal_neg * (1 - alpha)
    loss = torch.einsum("...qp,...mp->...qm", focal_pos, targets)
    loss = loss + torch.einsum("...qp,...mp->...qm", focal_neg, 1 - targets)
    return loss / num_pixels


def pairwise_dice_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Dice loss of every prediction against every target (equals ``dice_loss`` per pair).

    Args:
        logits: [..., Q, P] mask logits.
        targets: [..., M, P] targets in [0, 1]; the leading dimensions match ``logits``.

    Returns:
        [..., Q, M] cost matrix.
    """
    targets = targets.to(logits.dtype)
    prob = logits.sigmoid()
    numerator = 2 * torch.einsum("...qp,...mp->...qm", prob, targets)
    denominator = prob.sum(-1)[..., :, None] + targets.sum(-1)[..., None, :]
    return 1 - (numerator + 1) / (denominator + 1)


def sounding_bce(score_logits: Tensor, targets: Tensor | float) -> Tensor:
    """Element-wise binary cross-entropy of sounding-score logits (no reduction).

    Args:
        score_logits: [...] sounding-score logits.
        targets: [...] targets in [0, 1] (or one number for all).

    Returns:
        [...] ``-y log sigmoid(s) - (1 - y) log(1 - sigmoid(s))``.
    """
    if not isinstance(targets, Tensor):
        targets = torch.full_like(score_logits, float(targets))
    return F.binary_cross_entropy_with_logits(
        score_logits, targets.to(score_logits.dtype), reduction="none"
    )
