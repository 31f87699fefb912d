"""Object-centric framing (``avs-synth build --crop object``): a crop around the sounding mask.

The paper traces its worst zero-shot AVSBench category to framing: AVSBench frames show the
sounding object large and central, while COCO-style pictures often show it small in a wide scene.
:func:`object_crop_box` gives the crop of the picture's aspect ratio, centred on the mask's box
(shifted to stay inside the picture), whose area makes the mask cover ``area_fraction`` of it --
or more, when the mask's box does not fit in that crop (the crop always holds the whole mask).
The fraction is fixed (``--crop-area``) or drawn per sample from a :class:`MaskAreaHistogram`
(:func:`draw_area_fraction`), the one measured from AVSBench S4's train masks
(:mod:`avs_synth.building.s4_mask_areas`) when ``--avsbench`` is given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from avs_synth.seeded_order import seeded_uniform

AREA_BINS = 20
"""Equal-width bins of a mask-area histogram over [0, 1]."""
MIN_DRAWN_FRACTION = 0.005


@dataclass(frozen=True)
class MaskAreaHistogram:
    """Counts of masks by the share of their frame they cover, in :data:`AREA_BINS` equal bins.

    Args:
        counts: masks per bin ``[i / AREA_BINS, (i + 1) / AREA_BINS)`` (the last bin holds 1.0).
        source: what was measured (e.g. ``AVSBench S4 train ground-truth masks``).
        masks: non-empty masks counted.
        empty: empty masks, not counted (no object to frame).
        skipped: masks missing or unreadable, not counted.
    """

    counts: tuple[int, ...]
    source: str
    masks: int
    empty: int = 0
    skipped: int = 0

    def __post_init__(self) -> None:
        if len(self.counts) != AREA_BINS or any(c < 0 for c in self.counts):
            raise ValueError(f"a mask-area histogram has {AREA_BINS} counts >= 0")
        if sum(self.counts) < 1 or sum(self.counts) != self.masks:
            raise ValueError("a mask-area histogram needs at least one mask, counted once")

    @classmethod
    def of_fractions(cls, fractions: list[float], **fields: object) -> MaskAreaHistogram:
        """The histogram of area ``fractions`` (each in (0, 1])."""
        counts = [0] * AREA_BINS
        for f in fractions:
            counts[min(AREA_BINS - 1, int(f * AREA_BINS))] += 1
        return cls(counts=tuple(counts), masks=len(fractions), **fields)  # type: ignore[arg-type]

    def bin_edges(self) -> list[float]:
        return [round(i / AREA_BINS, 6) for i in range(AREA_BINS + 1)]


def draw_area_fraction(histogram: MaskAreaHistogram, *, seed: int, key: str) -> float:
    """A target area fraction for the sample ``key``: a bin drawn with the histogram's weights,
    then a uniform point in it (at least :data:`MIN_DRAWN_FRACTION`, below 1)."""
    total = sum(histogram.counts)
    pick = seeded_uniform(seed, "crop-area-bin", key) * total
    cumulative = np.cumsum(histogram.counts)
    index = int(np.searchsorted(cumulative, pick, side="right"))  # first bin with pick < sum
    within = seeded_uniform(seed, "crop-area-within", key)
    fraction = (index + within) / AREA_BINS
    return float(min(max(fraction, MIN_DRAWN_FRACTION), 0.999))


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
