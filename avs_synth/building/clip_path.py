"""A clip's plan (``avs-synth build --frames N``): the crop path over one picture and which
frames are silent, all drawn from the build seed and the sample key.

AVSBench's models take 5 frames of a 5-second video (one frame per second) with one audio second
each. A still becomes such a clip by moving a crop box over it:

- :func:`crop_path`: a start and an end box of the picture's aspect ratio, each a seeded zoom
  (:data:`MIN_SCALE` to 1 of the picture's side) at a seeded position, both holding the sounding
  mask's whole box; frame ``t`` shows the box interpolated at ``ease(t / (N - 1))`` with the
  smoothstep ``ease(u) = 3u^2 - 2u^3`` (ease-in-out: the camera starts and stops gently). A
  box that holds the mask's box at both ends holds it all along (the interpolation is convex),
  so every frame shows the whole sounding object.
- :func:`silent_frames`: with probability ``onset_offset`` the source starts (``onset``) or stops
  (``offset``) at a seeded frame boundary in ``1 .. N-1``; the frames before (onset) or from
  (offset) it are silent.

Nothing here reads a file: the worker derives the plan from the seed, the key and the full-size
mask, so the plan format does not change and the bytes do not depend on the worker.
"""

from __future__ import annotations

from avs_synth.seeded_order import seeded_key, seeded_uniform

Box = tuple[int, int, int, int]
"""``(x, y, width, height)`` in the picture's pixel grid."""

MIN_SCALE = 0.6
"""The smallest crop side as a fraction of the picture's (a zoom of at most 1 / 0.6 ≈ 1.67)."""

PATH_NAME = "ease-in-out"
ONSET, OFFSET = "onset", "offset"
CLIP_EVENTS: tuple[str, ...] = ("none", ONSET, OFFSET)
"""How a positive clip's source sounds: throughout, starting mid-clip, or stopping mid-clip."""


def ease_in_out(u: float) -> float:
    """Smoothstep ``3u^2 - 2u^3``: 0 at 0, 1 at 1, zero slope at both ends."""
    return u * u * (3.0 - 2.0 * u)


def _end_box(
    width: int,
    height: int,
    mask_box: Box | None,
    *,
    seed: int,
    key: str,
    end: str,
) -> tuple[float, float, float, float]:
    """A seeded box of the picture's aspect ratio holding ``mask_box`` (anywhere when None)."""
    lowest = MIN_SCALE
    if mask_box is not None:
        lowest = max(lowest, mask_box[2] / width, mask_box[3] / height)
    scale = lowest + (1.0 - lowest) * seeded_uniform(seed, "clip-zoom", key, end)
    w, h = width * scale, height * scale
    if mask_box is None:
        x_range, y_range = (0.0, width - w), (0.0, height - h)
    else:
        mx, my, mw, mh = mask_box
        x_range = (max(0.0, mx + mw - w), min(float(mx), width - w))
        y_range = (max(0.0, my + mh - h), min(float(my), height - h))
    x = x_range[0] + (x_range[1] - x_range[0]) * seeded_uniform(seed, "clip-x", key, end)
    y = y_range[0] + (y_range[1] - y_range[0]) * seeded_uniform(seed, "clip-y", key, end)
    return x, y, w, h


def _pixel_box(box: tuple[float, float, float, float], width: int, height: int, mask_box) -> Box:
    """``box`` rounded to whole pixels, inside the picture and still holding ``mask_box``."""
    x, y, w, h = box
    pw = min(width, max(1, round(w)))
    ph = min(height, max(1, round(h)))
    px = min(max(0, round(x)), width - pw)
    py = min(max(0, round(y)), height - ph)
    if mask_box is not None:  # rounding never cuts the mask's box
        mx, my, mw, mh = mask_box
        px = max(min(px, mx), mx + mw - pw)
        py = max(min(py, my), my + mh - ph)
    return int(px), int(py), int(pw), int(ph)


def crop_path(
    width: int, height: int, mask_box: Box | None, frames: int, *, seed: int, key: str
) -> tuple[Box, ...]:
    """The crop box of each of ``frames`` frames (see the module docstring).

    Args:
        width, height: the picture's size.
        mask_box: the tight box of the sounding mask (None for a negative: any boxes).
        frames: N >= 1.
        seed: the build seed.
        key: the sample key.
    """
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    start = _end_box(width, height, mask_box, seed=seed, key=key, end="start")
    end = _end_box(width, height, mask_box, seed=seed, key=key, end="end")
    boxes = []
    for t in range(frames):
        u = ease_in_out(t / (frames - 1)) if frames > 1 else 0.0
        box = tuple(a + (b - a) * u for a, b in zip(start, end, strict=True))
        boxes.append(_pixel_box(box, width, height, mask_box))  # type: ignore[arg-type]
    return tuple(boxes)


def frame_size(boxes: tuple[Box, ...], max_side: int | None) -> tuple[int, int]:
    """``(width, height)`` every frame is stored at: the smallest box's (no frame is enlarged),
    shrunk to ``max_side`` when its longer side exceeds it."""
    w = min(b[2] for b in boxes)
    h = min(b[3] for b in boxes)
    if max_side is not None and max(w, h) > max_side:
        scale = max_side / max(w, h)
        w, h = max(1, round(w * scale)), max(1, round(h * scale))
    return int(w), int(h)


def silent_frames(
    frames: int, probability: float, *, seed: int, key: str
) -> tuple[str, tuple[bool, ...]]:
    """``(event, silent)``: the clip's event (:data:`CLIP_EVENTS`) and, per frame, whether its
    audio is silenced; ``probability`` is the chance of an onset or offset (half each)."""
    none = ("none", (False,) * frames)
    if frames < 2 or probability <= 0.0:
        return none
    if seeded_uniform(seed, "clip-event", key) >= probability:
        return none
    event = ONSET if seeded_uniform(seed, "clip-event-kind", key) < 0.5 else OFFSET
    boundary = 1 + seeded_key(seed, "clip-event-frame", key) % (frames - 1)
    if event == ONSET:
        return event, tuple(t < boundary for t in range(frames))
    return event, tuple(t >= boundary for t in range(frames))
