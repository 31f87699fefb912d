"""Masks drawn over pictures: one look for every picture the tools show.

Used by the shard pages (``avs-synth inspect --html``), the review's contact sheets, the
prediction pages and overlay PNGs of ``avs-train``, and TensorBoard's validation images: the mask
is tinted over the picture and outlined; a second mask (the ground truth under a prediction) can
be drawn as an outline only, in another colour.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["MASK_COLOR", "OUTLINE_COLOR", "fit_within", "mask_overlay", "outline_of"]

MASK_COLOR = (255, 40, 40)
"""The tint of the mask (a prediction, or the sounding mask of a triplet)."""
OUTLINE_COLOR = (40, 255, 90)
"""The outline of the second mask (the ground truth under a prediction)."""
_TINT = 0.55


def outline_of(mask: np.ndarray) -> np.ndarray:
    """The pixels of ``mask`` with at least one 4-neighbour outside it (bool ``[H, W]``)."""
    padded = np.pad(mask, 1, constant_values=False)
    inner = (
        padded[1:-1, 1:-1]
        & padded[:-2, 1:-1]
        & padded[2:, 1:-1]
        & padded[1:-1, :-2]
        & padded[1:-1, 2:]
    )
    return mask & ~inner


def fit_within(image: Image.Image, max_side: int) -> Image.Image:
    """``image`` scaled down (never up) so that its longer side is at most ``max_side``."""
    scale = max_side / max(image.size)
    if scale >= 1:
        return image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BILINEAR)


def _resized(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if mask.shape == (size[1], size[0]):
        return mask
    image = Image.fromarray(mask.astype(np.uint8) * 255)
    return np.asarray(image.resize(size, Image.Resampling.NEAREST)) > 127


def mask_overlay(
    image: Image.Image,
    mask: np.ndarray | None,
    *,
    outline: np.ndarray | None = None,
    caption: str | None = None,
    max_side: int | None = None,
) -> Image.Image:
    """The picture with ``mask`` tinted and outlined over it.

    Args:
        image: the picture (any mode; drawn as RGB).
        mask: bool ``[H, W]`` (any resolution: resized to the picture), or None for no mask.
        outline: a second mask drawn as an outline only (e.g. the ground truth).
        caption: text in the top-left corner, on black.
        max_side: scale the result down to this longer side first (masks follow).

    Returns:
        a new RGB image.
    """
    picture = image.convert("RGB")
    if max_side is not None:
        picture = fit_within(picture, max_side)
    base = np.asarray(picture, dtype=np.float32)
    if mask is not None:
        shown = _resized(np.asarray(mask, dtype=bool), picture.size)
        tint = np.array(MASK_COLOR, dtype=np.float32)
        base = np.where(shown[..., None], (1 - _TINT) * base + _TINT * tint, base)
        base[outline_of(shown)] = tint
    if outline is not None:
        base[outline_of(_resized(np.asarray(outline, dtype=bool), picture.size))] = OUTLINE_COLOR
    out = Image.fromarray(base.clip(0, 255).astype(np.uint8))
    if caption:
        draw = ImageDraw.Draw(out)
        box = draw.textbbox((4, 4), caption)
        draw.rectangle((box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2), fill=(0, 0, 0))
        draw.text((4, 4), caption, fill=(255, 255, 255))
    return out
