"""Synthetic pictures of the sample-corpus categories with exact per-instance polygons and masks.

Objects (:mod:`avs_synth.sample_corpus.object_models`) are placed without touching on a varied
background (gradients, low-frequency noise, stripes, sky/ground), optionally behind a vertical
pole that splits them in two, which gives multi-part polygons as in real COCO annotations. Each
visible silhouette is traced into polygons and painted through their raster
(:mod:`avs_synth.sample_corpus.polygons`), so the written polygons reproduce the drawn pixels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from avs_synth.sample_corpus.object_models import (
    ObjectModel,
    Paint,
    Placement,
    jitter_hsv,
    sample_object_model,
)
from avs_synth.sample_corpus.polygons import (
    Polygon,
    mask_box,
    parts_to_pixels,
    rasterize,
    rasterize_crop,
    silhouette,
    to_unit,
    trace_polygons,
)

# --------------------------------------------------------------------------------------------
# Painting.
# --------------------------------------------------------------------------------------------


def _texture(paint: Paint, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    base = np.asarray(paint.base, dtype=np.float64)
    second = np.asarray(paint.second, dtype=np.float64)
    prm = paint.params
    t = paint.texture
    if t == "solid":
        w = np.zeros_like(u)
    elif t == "stripes":
        a = prm["angle"]
        s = (u * math.cos(a) + v * math.sin(a)) / prm["period"] + prm["phase"]
        w = ((s - np.floor(s)) < prm["duty"]).astype(np.float64)
    elif t == "band":
        w = ((v >= prm["v0"]) & (v <= prm["v1"])).astype(np.float64)
    elif t == "spots":
        s = np.sin(prm["f1"] * u + prm["p1"]) * np.sin(prm["f2"] * v + prm["p2"])
        s = s + 0.6 * np.sin(prm["f3"] * (u - v) + prm["p3"])
        w = (s > prm["thr"]).astype(np.float64)
    elif t == "grain":
        s = np.sin(prm["f"] * (v + 0.08 * np.sin(6.0 * u + prm["p"])) + prm["p"])
        w = (0.5 + 0.5 * s) * (0.6 if prm.get("w", 0.0) > 0 else 0.25)
    elif t == "fur":
        s = np.sin(prm["f"] * u + prm["p"]) * np.sin(prm["f"] * 0.7 * v + 2 * prm["p"])
        w = 0.35 * (0.5 + 0.5 * s)
    elif t == "grid":
        gu = (u + 1.0) * prm["nx"] / 2.0
        gv = (v + 1.0) * prm["ny"] / 2.0
        gap = prm["gap"]
        w = (((gu - np.floor(gu)) < gap) | ((gv - np.floor(gv)) < gap)).astype(np.float64)
    elif t == "keys":
        n = prm["n"]
        gu = (u + 1.0) * n / 2.0
        frac = gu - np.floor(gu)
        lines = frac < 0.08
        idx = np.floor(gu).astype(np.int64) % 7
        black = np.isin(idx, (0, 1, 3, 4, 5)) & (frac > 0.65) & (v < prm["split"] * 0.3 + 0.08)
        w = (lines | black).astype(np.float64)
    else:
        raise ValueError(f"unknown texture {t!r}")
    return base[None, None, :] * (1.0 - w[..., None]) + second[None, None, :] * w[..., None]


def paint_object(canvas: np.ndarray, model: ObjectModel, p: Placement, visible: np.ndarray) -> None:
    """Paint ``model`` at ``p`` into ``canvas`` (float RGB [H, W, 3]) on the ``visible`` pixels."""
    box = mask_box(visible)
    if box is None:
        return
    y0, y1, x0, x1 = box
    gy, gx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    u, v = to_unit(gx + 0.5, gy + 0.5, model, p)
    region = visible[y0:y1, x0:x1]
    crop = canvas[y0:y1, x0:x1]
    base = "body" if "body" in model.paints else model.parts[0].paint
    colour = _texture(model.paints[base], u, v)
    for part, poly in zip(model.parts, parts_to_pixels(model, p), strict=True):
        if part.paint == base:
            continue
        pm = rasterize_crop(poly, x0, y0, x1, y1)
        if pm.any():
            tex = _texture(model.paints[part.paint], u, v)
            colour = np.where(pm[..., None], tex, colour)
    la = model.light_angle
    strength = model.paints[base].shade
    shade = strength * (u * math.cos(la) + v * math.sin(la)) / 2.0
    colour = np.clip(colour * (1.0 + shade[..., None]), 0.0, 1.0)
    crop[region] = colour[region]


# --------------------------------------------------------------------------------------------
# Backgrounds.
# --------------------------------------------------------------------------------------------


def tiled_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Gaussian noise (float32) of ``shape`` [H, W, C] tiled from a random 96x96 patch."""
    h, w = shape[0], shape[1]
    patch = sigma * rng.standard_normal(size=(96, 96, *shape[2:]), dtype=np.float32)
    oy, ox = int(rng.integers(0, 96)), int(rng.integers(0, 96))
    reps = (-(-(h + oy) // 96), -(-(w + ox) // 96)) + (1,) * (len(shape) - 2)
    return np.tile(patch, reps)[oy : oy + h, ox : ox + w]


def draw_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A random background (float RGB [H, W, 3]): gradient, noise, stripes or sky/ground."""
    kind = int(rng.integers(0, 4))
    c1 = np.array(
        jitter_hsv(rng, rng.uniform(0, 360), rng.uniform(0.05, 0.5), rng.uniform(0.3, 0.9))
    )
    c2 = np.array(
        jitter_hsv(rng, rng.uniform(0, 360), rng.uniform(0.05, 0.5), rng.uniform(0.3, 0.9))
    )
    gy = (np.arange(height, dtype=np.float32) / max(height - 1, 1))[:, None]
    gx = (np.arange(width, dtype=np.float32) / max(width - 1, 1))[None, :]
    gy, gx = np.broadcast_arrays(gy, gx)
    if kind == 0:  # linear gradient
        a = rng.uniform(0, 2 * math.pi)
        t = gx * math.cos(a) + gy * math.sin(a)
        t = (t - t.min()) / (np.ptp(t) + 1e-9)
    elif kind == 1:  # low-frequency noise
        gh, gw = int(rng.integers(3, 7)), int(rng.integers(3, 7))
        small = (rng.random((gh, gw)) * 255).astype(np.uint8)
        t = np.asarray(Image.fromarray(small).resize((width, height), Image.BICUBIC)) / 255.0
    elif kind == 2:  # stripes
        a = rng.uniform(0, math.pi)
        period = rng.uniform(0.05, 0.2)
        s = (gx * math.cos(a) + gy * math.sin(a)) / period
        t = 0.5 + 0.5 * np.sin(2 * math.pi * s)
    else:  # sky over ground
        horizon = rng.uniform(0.35, 0.7)
        t = np.clip((gy - horizon) * 40.0, 0.0, 1.0)
        c1 = np.array(jitter_hsv(rng, 205, 0.35, 0.9))
    t = np.asarray(t, dtype=np.float32)
    c1, c2 = c1.astype(np.float32), c2.astype(np.float32)
    bg = c1[None, None, :] * (1.0 - t[..., None]) + c2[None, None, :] * t[..., None]
    bg += tiled_noise(rng, bg.shape, 0.015)
    return np.clip(bg, 0.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Scenes.
# --------------------------------------------------------------------------------------------


@dataclass
class DrawnObject:
    """One drawn instance: what it is, its exact visible polygons and mask.

    Args:
        category: corpus category key.
        polygons: COCO polygons of the visible silhouette (several for a split object).
        mask: bool [H, W], exactly ``rasterize(polygons)``.
        bbox: (x, y, w, h) of the mask (pycocotools' ``toBbox``).
        area: mask pixel count.
        group: crowd group number (objects drawn as one flock), None otherwise.
        tag: the caller's tag for the object (see :func:`place_objects`).
    """

    category: str
    polygons: list[Polygon]
    mask: np.ndarray
    bbox: tuple[float, float, float, float]
    area: int
    group: int | None = None
    tag: str | None = None


@dataclass
class DrawnScene:
    """A rendered picture and its objects (``image`` is uint8 RGB [H, W, 3])."""

    image: np.ndarray
    objects: list[DrawnObject]

    def label_map(self) -> np.ndarray:
        """uint8 [H, W]: 0 background, ``i + 1`` for ``objects[i]``."""
        out = np.zeros(self.image.shape[:2], dtype=np.uint8)
        for i, obj in enumerate(self.objects):
            out[obj.mask] = i + 1
        return out


@dataclass(frozen=True)
class SceneObject:
    """An object to draw: its appearance and its placement in each frame."""

    model: ObjectModel
    placements: tuple[Placement, ...]
    group: int | None = None
    tag: str | None = None


def _bbox_of(mask: np.ndarray) -> tuple[float, float, float, float]:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    x, y, w, h = mask_utils.toBbox(rle).tolist()
    return (float(x), float(y), float(w), float(h))


def place_objects(
    rng: np.random.Generator,
    *,
    height: int,
    width: int,
    categories: Sequence[str],
    tags: Sequence[str | None] | None = None,
    size_range: tuple[float, float] = (0.22, 0.42),
    num_frames: int = 1,
    max_shift: float = 0.0,
    flock: int = 0,
    gap: int = 4,
) -> list[SceneObject]:
    """Sample models and non-overlapping placements (over all frames) for ``categories``.

    ``tags`` (one per category) travel with the objects so callers can find them again.
    ``size_range`` is the object's larger side as a fraction of the picture's smaller side.
    ``max_shift`` (pixels per frame) makes objects drift for videos. ``flock > 0`` adds that many
    small birds close together, marked as one crowd group (tag ``flock``). Objects that find no
    free spot after some tries are left out.
    """
    occupied = np.zeros((height, width), dtype=bool)
    out: list[SceneObject] = []
    short = min(height, width)
    tag_list = list(tags) if tags is not None else [None] * len(categories)
    if len(tag_list) != len(categories):
        raise ValueError("tags must have one entry per category")
    wanted: list[tuple[str, tuple[float, float], int | None, str | None]] = [
        (c, size_range, None, t) for c, t in zip(categories, tag_list, strict=True)
    ]
    pad = int(gap)
    flock_centre: tuple[float, float] | None = None
    to_place = list(wanted)
    if flock:
        to_place = [("bird", (0.07, 0.11), 1, "flock")] * flock + to_place
    for category, (lo, hi), group, tag in to_place:
        model = sample_object_model(category, rng)
        for attempt in range(40):
            scale = rng.uniform(lo, hi) * (0.97**attempt)
            big = scale * short
            half_w = big / 2 if model.aspect >= 1 else big * model.aspect / 2
            half_h = half_w / model.aspect
            reach = math.hypot(half_w, half_h) + 2
            if group is not None and flock_centre is not None:
                cx = flock_centre[0] + rng.uniform(-0.18, 0.18) * short
                cy = flock_centre[1] + rng.uniform(-0.12, 0.12) * short
            else:
                cx = rng.uniform(reach, max(reach + 1, width - reach))
                cy = rng.uniform(reach, max(reach + 1, height - reach))
            angle = rng.uniform(-0.2, 0.2)
            flip = bool(rng.random() < 0.5)
            vx, vy = rng.uniform(-max_shift, max_shift), rng.uniform(-max_shift, max_shift) * 0.5
            placements = tuple(
                Placement(cx + k * vx, cy + k * vy, half_w, angle + k * 0.01, flip)
                for k in range(num_frames)
            )
            swept = np.zeros((height, width), dtype=bool)
            ok = True
            for pl in placements:
                if not (reach <= pl.cx <= width - reach and reach <= pl.cy <= height - reach):
                    ok = False
                    break
                swept |= silhouette(model, pl, height, width)
            if not ok or not swept.any():
                continue
            if (swept & occupied).any():
                continue
            grown = _dilate(swept, pad)
            occupied |= grown
            out.append(SceneObject(model, placements, group, tag))
            if group is not None and flock_centre is None:
                flock_centre = (cx, cy)
            break
    return out


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    out = mask.copy()
    for _ in range(r):
        grown = out.copy()
        grown[1:, :] |= out[:-1, :]
        grown[:-1, :] |= out[1:, :]
        grown[:, 1:] |= out[:, :-1]
        grown[:, :-1] |= out[:, 1:]
        out = grown
    return out


def render_frame(
    background: np.ndarray,
    objects: Sequence[SceneObject],
    *,
    frame: int = 0,
    occluder: tuple[float, float] | None = None,
    occluder_colour: tuple[float, float, float] = (0.45, 0.4, 0.35),
    polygons: bool = True,
    noise_rng: np.random.Generator | None = None,
) -> DrawnScene:
    """Draw ``objects`` (their ``frame``-th placement) over ``background``.

    Args:
        background: float RGB [H, W, 3] in [0, 1].
        objects: what to draw (from :func:`place_objects`).
        frame: which placement of each object to use.
        occluder: (x0, x1) of a vertical pole drawn in front of the objects, or None.
        occluder_colour: the pole's colour.
        polygons: trace polygons (needed for LVIS / COCO / Open Images); when False the masks
            are the silhouettes themselves and ``polygons`` stays empty (AVSBench frames).
        noise_rng: adds faint sensor noise when given.
    """
    h, w = background.shape[:2]
    canvas = background.copy()
    pole = None
    if occluder is not None:
        pole = np.zeros((h, w), dtype=bool)
        pole[:, int(round(occluder[0])) : int(round(occluder[1]))] = True
    drawn: list[DrawnObject] = []
    for obj in objects:
        pl = obj.placements[frame]
        sil = silhouette(obj.model, pl, h, w)
        if pole is not None:
            sil &= ~pole
        if polygons:
            polys = trace_polygons(sil)
            mask = rasterize(polys, h, w)
        else:
            polys, mask = [], sil
        if not mask.any():
            continue
        paint_object(canvas, obj.model, pl, mask)
        drawn.append(
            DrawnObject(
                obj.model.category,
                polys,
                mask,
                _bbox_of(mask),
                int(mask.sum()),
                group=obj.group,
                tag=obj.tag,
            )
        )
    if pole is not None:
        free = pole.copy()
        for d in drawn:
            free &= ~d.mask
        shade = 0.85 + 0.15 * np.linspace(-1, 1, w)[None, :]
        pole_rgb = np.asarray(occluder_colour)[None, None, :] * shade[..., None]
        canvas = np.where(free[..., None], np.broadcast_to(pole_rgb, canvas.shape), canvas)
    if noise_rng is not None:
        canvas = canvas + tiled_noise(noise_rng, canvas.shape, 0.01)
    image = (np.clip(canvas, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return DrawnScene(image=image, objects=drawn)


def compose_picture(
    rng: np.random.Generator,
    *,
    height: int,
    width: int,
    categories: Sequence[str],
    tags: Sequence[str | None] | None = None,
    occluder: bool = False,
    flock: int = 0,
    size_range: tuple[float, float] = (0.22, 0.42),
) -> DrawnScene:
    """One still picture with ``categories``, traced polygons and masks.

    ``occluder`` puts a vertical pole through the first object (which then usually has a
    two-part polygon); ``flock`` adds a crowd of small birds; ``tags`` label the objects (see
    :func:`place_objects`).
    """
    background = draw_background(rng, height, width)
    objects = place_objects(
        rng,
        height=height,
        width=width,
        categories=categories,
        tags=tags,
        flock=flock,
        size_range=size_range,
    )
    pole = None
    if occluder and objects:
        target = next((o for o in objects if o.group is None), objects[0])
        pl = target.placements[0]
        pw = rng.uniform(0.025, 0.045) * width
        x0 = pl.cx + rng.uniform(-0.25, 0.25) * pl.half_width - pw / 2
        pole = (max(0.0, x0), min(float(width), x0 + pw))
    colour = jitter_hsv(rng, 30, 0.2, 0.45)
    return render_frame(background, objects, occluder=pole, occluder_colour=colour, noise_rng=rng)


def scaled_size(size: tuple[int, int], scale: float) -> tuple[int, int]:
    return max(64, int(round(size[0] * scale))), max(64, int(round(size[1] * scale)))


def draw_picture(
    rng: np.random.Generator,
    *,
    width: int,
    height: int,
    pool: list[str],
    extra_tag: str | None = None,
    occluder: bool = False,
    flock: int = 0,
) -> DrawnScene:
    """A picture with 2-4 distinct categories from ``pool`` (retried until >= 2 are drawn)."""
    for _ in range(8):
        n = int(rng.integers(2, 5))
        cats = [str(c) for c in rng.choice(pool, size=min(n, len(pool)), replace=False)]
        if flock:
            cats = [c for c in cats if c != "bird"] or [c for c in pool if c != "bird"][:2]
        tags: list[str | None] = [None] * len(cats)
        if extra_tag is not None:
            cats.append(cats[0])
            tags.append(extra_tag)
        scene = compose_picture(
            rng,
            height=height,
            width=width,
            categories=cats,
            tags=tags,
            occluder=occluder,
            flock=flock,
        )
        distinct = {o.category for o in scene.objects}
        if len(distinct) >= 2:
            return scene
    raise RuntimeError("could not place two objects in a picture; enlarge the picture")


def numbered_objects(scene: DrawnScene) -> list[tuple[int, object]]:
    return [(i + 1, obj) for i, obj in enumerate(scene.objects)]
