"""Object-centric framing (``avs-synth build --crop object``): a crop around the sounding mask.

The paper traces its worst zero-shot AVSBench category to framing: AVSBench frames show the
sounding object large and central, while COCO-style pictures often show it small in a wide scene.
:func:`object_crop_box` gives the crop of the picture's aspect ratio, centred on the mask's box
(shifted to stay inside the picture), whose area makes the mask cover ``area_fraction`` of it --
or more, when the mask's box does not fit in that crop (the crop always holds the whole mask).
"""

from __future__ import annotations

import math

import numpy as np


def object_crop_box(mask: np.ndarray, area_fraction: float) -> tuple[int, int, int, int] | None:
    """The crop ``(x, y, width, height)`` in ``mask``'s pixel grid, or None when the mask already
    covers ``area_fraction`` of the picture (or the crop would be the whole picture).

    Args:
        mask: boolean ``[H, W]`` sounding mask (not empty).
        area_fraction: the mask's share of the crop to aim at, in (0, 1).
    """
    if not 0.0 < area_fraction < 1.0:
        raise ValueError(f"area_fraction must be in (0, 1), got {area_fraction}")
    height, width = mask.shape
    area = int(mask.sum())
    if area == 0:
        raise ValueError("cannot frame an empty mask")
    if area / float(width * height) >= area_fraction:
        return None
    ys, xs = np.nonzero(mask)
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1
    aspect = width / float(height)
    crop_w = math.sqrt(area / area_fraction * aspect)
    crop_h = crop_w / aspect
    grow = max(1.0, (x1 - x0) / crop_w, (y1 - y0) / crop_h)  # hold the whole mask
    crop_w = min(width, max(1, round(crop_w * grow)))
    crop_h = min(height, max(1, round(crop_h * grow)))
    if crop_w == width and crop_h == height:
        return None
    x = min(max(0, round((x0 + x1) / 2 - crop_w / 2)), width - crop_w)
    y = min(max(0, round((y0 + y1) / 2 - crop_h / 2)), height - crop_h)
    x, y = min(x, x0), min(y, y0)  # rounding never cuts the mask's box
    x, y = max(x, x1 - crop_w), max(y, y1 - crop_h)
    return int(x), int(y), int(crop_w), int(crop_h)
