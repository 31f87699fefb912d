"""Synthetic pictures of the sample-corpus categories with exact per-instance polygons and masks.

Each category of :mod:`avs_synth.sample_corpus.categories` has its own drawing recipe: a silhouette
built from parts (body, head, wheels, neck, ...), a colour scheme and a texture (stripes, spots,
wood grain, key grid, ...), all varied at random per instance (proportions, hue, shade, texture
phase, size, rotation, mirror image). Objects are placed without touching on a varied background
(gradients, low-frequency noise, stripes, sky/ground), optionally behind a vertical pole that
splits them in two, which gives multi-part polygons as in real COCO annotations.

Exactness: an object's visible silhouette is traced into polygons (COCO convention, pixel corners
at integer coordinates) and the object is painted through the raster of exactly those polygons
(pycocotools' rasteriser), so ``annToMask`` of the written polygons reproduces the drawn pixels.
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import contourpy
import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from avs_synth.sample_corpus.categories import CATEGORY_KEYS

Polygon = tuple[float, ...]  # flat [x0, y0, x1, y1, ...] in pixels


# --------------------------------------------------------------------------------------------
# Shapes in unit coordinates: u to the right, v downwards, the object spans about [-1, 1]².
# --------------------------------------------------------------------------------------------


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 36) -> np.ndarray:
    t = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def _rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def _poly(*points: tuple[float, float]) -> np.ndarray:
    return np.array(points, dtype=np.float64)


def _rounded_rect(x0: float, y0: float, x1: float, y1: float, r: float) -> np.ndarray:
    r = min(r, (x1 - x0) / 2, (y1 - y0) / 2)
    pts: list[tuple[float, float]] = []
    for cx, cy, a0 in ((x1 - r, y0 + r, -90), (x1 - r, y1 - r, 0), (x0 + r, y1 - r, 90)):
        for a in np.linspace(a0, a0 + 90, 5):
            pts.append((cx + r * math.cos(math.radians(a)), cy + r * math.sin(math.radians(a))))
    for a in np.linspace(180, 270, 5):
        pts.append((x0 + r + r * math.cos(math.radians(a)), y0 + r + r * math.sin(math.radians(a))))
    return np.array(pts, dtype=np.float64)


def _thick_curve(points: Sequence[tuple[float, float]], width: float) -> np.ndarray:
    """A polygon around a polyline (a tail, a neck) of the given full width."""
    p = np.asarray(points, dtype=np.float64)
    d = np.gradient(p, axis=0)
    n = np.stack([-d[:, 1], d[:, 0]], axis=1)
    n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-9
    left = p + n * width / 2
    right = p - n * width / 2
    return np.concatenate([left, right[::-1]], axis=0)


@dataclass(frozen=True)
class Paint:
    """How a part is coloured: a base colour, a texture and its parameters.

    Args:
        base: RGB in [0, 1].
        texture: ``solid``, ``stripes``, ``band``, ``spots``, ``grain``, ``grid``, ``keys`` or
            ``fur``.
        second: the texture's second colour (RGB in [0, 1]).
        params: texture parameters (period, angle, phase, threshold, ...).
        shade: strength of the linear lighting gradient across the object.
    """

    base: tuple[float, float, float]
    texture: str = "solid"
    second: tuple[float, float, float] = (0.0, 0.0, 0.0)
    params: dict[str, float] = field(default_factory=dict)
    shade: float = 0.12


@dataclass(frozen=True)
class Part:
    """One polygon of a silhouette (unit coordinates) and the name of its paint."""

    polygon: np.ndarray  # [N, 2]
    paint: str


@dataclass(frozen=True)
class ObjectModel:
    """A category instance's appearance, independent of where it is drawn.

    Args:
        category: the corpus category key.
        aspect: width / height of the unit box in pixels.
        parts: silhouette parts, painted in order (later parts on top).
        paints: paint by name; ``body`` is the default for pixels no part claims.
        light_angle: direction of the lighting gradient (radians).
    """

    category: str
    aspect: float
    parts: tuple[Part, ...]
    paints: dict[str, Paint]
    light_angle: float = 0.0


@dataclass(frozen=True)
class Placement:
    """Where an object model lands in a picture.

    Args:
        cx, cy: centre in pixels.
        half_width: half the unit box's width in pixels (height follows from the aspect).
        angle: rotation in radians (counter-clockwise on screen).
        flip: mirror the model left-right.
    """

    cx: float
    cy: float
    half_width: float
    angle: float = 0.0
    flip: bool = False


def _jitter_hsv(
    rng: np.random.Generator, h: float, s: float, v: float, dh: float = 8.0, ds=0.08, dv=0.08
) -> tuple[float, float, float]:
    hh = ((h + rng.uniform(-dh, dh)) % 360.0) / 360.0
    ss = float(np.clip(s + rng.uniform(-ds, ds), 0.0, 1.0))
    vv = float(np.clip(v + rng.uniform(-dv, dv), 0.0, 1.0))
    return colorsys.hsv_to_rgb(hh, ss, vv)


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


# --------------------------------------------------------------------------------------------
# One recipe per category.
# --------------------------------------------------------------------------------------------


def _ambulance(rng: np.random.Generator) -> ObjectModel:
    cab = _u(rng, 0.55, 0.7)
    top = _u(rng, -0.8, -0.65)
    body = _poly((-1, top), (cab, top), (1.0, -0.1), (1.0, 0.6), (-1, 0.6))
    wr = _u(rng, 0.17, 0.22)
    parts = [
        Part(body, "body"),
        Part(_poly((cab + 0.03, top + 0.08), (0.93, -0.12), (cab + 0.03, -0.12)), "window"),
        Part(_rect(-0.5, -0.45, -0.3, -0.05), "cross"),
        Part(_rect(-0.6, -0.35, -0.2, -0.15), "cross"),
        Part(_ellipse(-0.6, 0.62, wr, wr * 1.5), "wheel"),
        Part(_ellipse(0.6, 0.62, wr, wr * 1.5), "wheel"),
        Part(_rect(-0.3, top - 0.12, -0.05, top + 0.01), "light"),
    ]
    red = _jitter_hsv(rng, 0, 0.85, 0.85, dh=4)
    paints = {
        "body": Paint(
            _jitter_hsv(rng, 40, 0.03, 0.95, ds=0.03, dv=0.04),
            "band",
            red,
            {"v0": _u(rng, 0.05, 0.15), "v1": _u(rng, 0.22, 0.32)},
        ),
        "window": Paint(_jitter_hsv(rng, 200, 0.35, 0.8)),
        "cross": Paint(red),
        "wheel": Paint(_jitter_hsv(rng, 0, 0.0, 0.12, dv=0.05), shade=0.0),
        "light": Paint(_jitter_hsv(rng, 220, 0.9, 0.95)),
    }
    return ObjectModel("ambulance", _u(rng, 1.5, 1.75), tuple(parts), paints)


def _cat(rng: np.random.Generator) -> ObjectModel:
    hr = _u(rng, 0.26, 0.32)
    hx, hy = _u(rng, 0.55, 0.65), _u(rng, -0.4, -0.3)
    tail_up = _u(rng, -0.9, -0.5)
    parts = [
        Part(_ellipse(-0.1, 0.2, _u(rng, 0.6, 0.68), _u(rng, 0.36, 0.45)), "body"),
        Part(_thick_curve([(-0.65, 0.2), (-0.85, 0.0), (-0.92, tail_up)], 0.13), "body"),
        Part(_rect(-0.55, 0.4, -0.4, 0.85), "body"),
        Part(_rect(0.2, 0.4, 0.35, 0.85), "body"),
        Part(_ellipse(hx, hy, hr, hr * 0.9), "body"),
        Part(
            _poly((hx - hr, hy - 0.1), (hx - hr * 0.8, hy - hr - 0.25), (hx - 0.05, hy - hr)),
            "body",
        ),
        Part(
            _poly((hx + 0.05, hy - hr), (hx + hr * 0.8, hy - hr - 0.25), (hx + hr, hy - 0.1)),
            "body",
        ),
        Part(_ellipse(hx - 0.1, hy - 0.03, 0.05, 0.035), "eye"),
        Part(_ellipse(hx + 0.1, hy - 0.03, 0.05, 0.035), "eye"),
    ]
    paints = {
        "body": Paint(
            _jitter_hsv(rng, 30, 0.8, 0.95),
            "stripes",
            _jitter_hsv(rng, 22, 0.9, 0.55),
            {
                "angle": _u(rng, 1.3, 1.85),
                "period": _u(rng, 0.16, 0.22),
                "duty": _u(rng, 0.3, 0.45),
                "phase": _u(rng, 0, 1),
            },
        ),
        "eye": Paint(_jitter_hsv(rng, 110, 0.8, 0.7), shade=0.0),
    }
    return ObjectModel("cat", _u(rng, 1.2, 1.4), tuple(parts), paints)


def _dog(rng: np.random.Generator) -> ObjectModel:
    hx, hy = _u(rng, 0.62, 0.72), _u(rng, -0.45, -0.3)
    legs = [
        Part(_rect(x, 0.2, x + 0.14, _u(rng, 0.88, 0.98)), "body")
        for x in (-0.55, -0.35, 0.2, 0.38)
    ]
    parts = [
        Part(_ellipse(0.0, 0.05, _u(rng, 0.58, 0.64), _u(rng, 0.3, 0.36)), "body"),
        *legs,
        Part(_thick_curve([(-0.55, -0.05), (-0.78, -0.3), (-0.85, -0.5)], 0.1), "body"),
        Part(_ellipse(hx, hy, 0.24, 0.22), "body"),
        Part(_rect(hx, hy - 0.05, hx + 0.33, hy + 0.12), "body"),
        Part(_ellipse(hx - 0.13, hy + 0.05, 0.08, 0.2), "ear"),
        Part(_ellipse(hx + 0.33, hy - 0.02, 0.05, 0.05), "nose"),
    ]
    paints = {
        "body": Paint(
            _jitter_hsv(rng, 28, 0.7, 0.42),
            "spots",
            _jitter_hsv(rng, 40, 0.25, 0.9),
            {
                "f1": _u(rng, 9, 13),
                "f2": _u(rng, 9, 13),
                "f3": _u(rng, 6, 9),
                "p1": _u(rng, 0, 6.3),
                "p2": _u(rng, 0, 6.3),
                "p3": _u(rng, 0, 6.3),
                "thr": _u(rng, 0.55, 0.75),
            },
        ),
        "ear": Paint(_jitter_hsv(rng, 20, 0.7, 0.2)),
        "nose": Paint((0.05, 0.05, 0.05), shade=0.0),
    }
    return ObjectModel("dog", _u(rng, 1.3, 1.5), tuple(parts), paints)


def _bus(rng: np.random.Generator) -> ObjectModel:
    n_win = int(rng.integers(4, 7))
    x0, x1 = -0.88, 0.7
    step = (x1 - x0) / n_win
    windows = [
        Part(_rect(x0 + i * step + 0.03, -0.6, x0 + (i + 1) * step - 0.03, -0.12), "window")
        for i in range(n_win)
    ]
    wr = _u(rng, 0.13, 0.16)
    parts = [
        Part(_rounded_rect(-1.0, -0.8, 1.0, 0.62, 0.12), "body"),
        *windows,
        Part(_rect(0.76, -0.6, 0.95, 0.3), "window"),
        Part(_ellipse(-0.62, 0.62, wr, wr * 2.2), "wheel"),
        Part(_ellipse(0.55, 0.62, wr, wr * 2.2), "wheel"),
    ]
    paints = {
        "body": Paint(
            _jitter_hsv(rng, 50, 0.9, 0.95),
            "band",
            _jitter_hsv(rng, 15, 0.9, 0.8),
            {"v0": _u(rng, 0.15, 0.25), "v1": _u(rng, 0.3, 0.38)},
        ),
        "window": Paint(_jitter_hsv(rng, 215, 0.6, 0.35), shade=0.3),
        "wheel": Paint(_jitter_hsv(rng, 0, 0.0, 0.1, dv=0.04), shade=0.0),
    }
    return ObjectModel("bus", _u(rng, 2.0, 2.4), tuple(parts), paints)


def _horse(rng: np.random.Generator) -> ObjectModel:
    hx, hy = _u(rng, 0.72, 0.8), _u(rng, -0.75, -0.6)
    legs = [
        Part(_rect(x, 0.1, x + 0.09, _u(rng, 0.92, 1.0)), "body")
        for x in (-0.62, -0.48, 0.25, 0.38)
    ]
    parts = [
        Part(_ellipse(-0.1, 0.0, _u(rng, 0.58, 0.64), _u(rng, 0.25, 0.3)), "body"),
        *legs,
        Part(
            _poly((0.25, -0.2), (hx - 0.12, hy + 0.05), (hx + 0.05, hy + 0.1), (0.5, 0.1)), "body"
        ),
        Part(
            _thick_curve([(hx - 0.08, hy), (hx + 0.12, hy + 0.1), (hx + 0.25, hy + 0.22)], 0.16),
            "body",
        ),
        Part(_thick_curve([(0.25, -0.22), (hx - 0.12, hy - 0.02)], 0.07), "mane"),
        Part(
            _thick_curve([(-0.68, -0.08), (-0.85, 0.2), (-0.88, _u(rng, 0.45, 0.6))], 0.1), "mane"
        ),
    ]
    paints = {
        "body": Paint(
            _jitter_hsv(rng, 14, 0.75, 0.5),
            "fur",
            _jitter_hsv(rng, 10, 0.8, 0.35),
            {"f": _u(rng, 25, 35), "p": _u(rng, 0, 6.3)},
            shade=0.2,
        ),
        "mane": Paint(_jitter_hsv(rng, 20, 0.5, 0.12)),
    }
    return ObjectModel("horse", _u(rng, 1.1, 1.3), tuple(parts), paints)


def _lion(rng: np.random.Generator) -> ObjectModel:
    mx, my = _u(rng, 0.5, 0.6), _u(rng, -0.3, -0.2)
    mr = _u(rng, 0.38, 0.45)
    parts = [
        Part(_ellipse(-0.15, 0.15, _u(rng, 0.58, 0.64), _u(rng, 0.34, 0.4)), "body"),
        Part(_rect(-0.6, 0.3, -0.44, 0.95), "body"),
        Part(_rect(0.15, 0.3, 0.31, 0.95), "body"),
        Part(_thick_curve([(-0.72, 0.1), (-0.9, 0.3), (-0.95, 0.55)], 0.07), "body"),
        Part(_ellipse(-0.95, 0.6, 0.07, 0.09), "mane"),
        Part(_ellipse(mx, my, mr, mr * 1.05, n=48), "mane"),
        Part(_ellipse(mx + 0.05, my + 0.02, mr * 0.55, mr * 0.6), "face"),
        Part(_ellipse(mx + 0.25, my + 0.12, 0.05, 0.04), "nose"),
    ]
    paints = {
        "body": Paint(
            _jitter_hsv(rng, 42, 0.55, 0.82),
            "fur",
            _jitter_hsv(rng, 38, 0.6, 0.7),
            {"f": _u(rng, 18, 26), "p": _u(rng, 0, 6.3)},
        ),
        "mane": Paint(
            _jitter_hsv(rng, 25, 0.85, 0.45),
            "fur",
            _jitter_hsv(rng, 20, 0.9, 0.3),
            {"f": _u(rng, 40, 55), "p": _u(rng, 0, 6.3)},
        ),
        "face": Paint(_jitter_hsv(rng, 42, 0.5, 0.85)),
        "nose": Paint((0.15, 0.07, 0.05), shade=0.0),
    }
    return ObjectModel("lion", _u(rng, 1.3, 1.5), tuple(parts), paints)


def _bird(rng: np.random.Generator) -> ObjectModel:
    hx, hy = _u(rng, 0.48, 0.58), _u(rng, -0.42, -0.3)
    parts = [
        Part(_ellipse(0.0, 0.1, _u(rng, 0.55, 0.62), _u(rng, 0.36, 0.42)), "body"),
        Part(
            _poly((-0.45, 0.0), (-1.0, _u(rng, -0.25, -0.05)), (-1.0, 0.35), (-0.45, 0.3)), "tail"
        ),
        Part(_ellipse(hx, hy, 0.3, 0.28), "body"),
        Part(_poly((hx + 0.25, hy - 0.08), (1.0, hy + 0.02), (hx + 0.25, hy + 0.1)), "beak"),
        Part(_ellipse(-0.1, 0.05, 0.35, 0.2), "wing"),
        Part(_ellipse(hx + 0.08, hy - 0.06, 0.055, 0.055), "eye"),
        Part(_rect(-0.05, 0.45, 0.02, 0.85), "beak"),
        Part(_rect(0.12, 0.45, 0.19, 0.85), "beak"),
    ]
    paints = {
        "body": Paint(
            _jitter_hsv(rng, 215, 0.75, 0.85),
            "stripes",
            _jitter_hsv(rng, 205, 0.5, 0.95),
            {"angle": 0.0, "period": _u(rng, 0.12, 0.18), "duty": 0.2, "phase": _u(rng, 0, 1)},
        ),
        "tail": Paint(_jitter_hsv(rng, 225, 0.85, 0.5)),
        "wing": Paint(_jitter_hsv(rng, 225, 0.85, 0.55)),
        "beak": Paint(_jitter_hsv(rng, 45, 0.9, 0.95)),
        "eye": Paint((0.02, 0.02, 0.02), shade=0.0),
    }
    return ObjectModel("bird", _u(rng, 1.15, 1.3), tuple(parts), paints)


def _guitar(rng: np.random.Generator) -> ObjectModel:
    lr = _u(rng, 0.42, 0.47)
    ur = lr * _u(rng, 0.7, 0.8)
    parts = [
        Part(_ellipse(0.0, 0.55, lr * 2.2, lr, n=48), "body"),
        Part(_ellipse(0.0, 0.0, ur * 2.2, ur, n=40), "body"),
        Part(_rect(-0.45, 0.1, 0.45, 0.45), "body"),
        Part(_rect(-0.12, -0.92, 0.12, 0.0), "neck"),
        Part(_rect(-0.17, -1.0, 0.17, -0.8), "neck"),
        Part(_ellipse(0.0, 0.22, 0.28, 0.12), "hole"),
        Part(_rect(-0.3, 0.6, 0.3, 0.68), "neck"),
    ]
    paints = {
        "body": Paint(
            _jitter_hsv(rng, 32, 0.45, 0.85),
            "grain",
            _jitter_hsv(rng, 28, 0.6, 0.6),
            {"f": _u(rng, 35, 50), "p": _u(rng, 0, 6.3), "w": _u(rng, 0.1, 0.2)},
        ),
        "neck": Paint(_jitter_hsv(rng, 20, 0.6, 0.25)),
        "hole": Paint((0.03, 0.02, 0.02), shade=0.0),
    }
    return ObjectModel("guitar", _u(rng, 0.45, 0.55), tuple(parts), paints)


def _piano(rng: np.random.Generator) -> ObjectModel:
    parts = [
        Part(_rect(-1.0, -1.0, 1.0, 0.12), "body"),
        Part(_rect(-1.0, 0.08, 1.0, 0.38), "keys"),
        Part(_rect(-0.95, 0.38, -0.78, 1.0), "body"),
        Part(_rect(0.78, 0.38, 0.95, 1.0), "body"),
        Part(_rect(-0.5, -0.85, 0.5, -0.55), "panel"),
    ]
    paints = {
        "body": Paint(
            _jitter_hsv(rng, 0, 0.0, 0.08, dv=0.04),
            "grain",
            (0.3, 0.3, 0.32),
            {"f": 3.0, "p": _u(rng, 0, 6.3), "w": 0.0},
            shade=0.25,
        ),
        "keys": Paint(
            (0.96, 0.96, 0.94),
            "keys",
            (0.03, 0.03, 0.03),
            {"n": float(rng.integers(22, 30)), "split": _u(rng, 0.45, 0.6)},
            shade=0.0,
        ),
        "panel": Paint(_jitter_hsv(rng, 30, 0.4, 0.2)),
    }
    return ObjectModel("piano", _u(rng, 1.15, 1.35), tuple(parts), paints)


def _computer_keyboard(rng: np.random.Generator) -> ObjectModel:
    parts = [
        Part(_rounded_rect(-1.0, -0.7, 1.0, 0.7, 0.15), "body"),
        Part(_rect(-0.93, -0.55, 0.93, 0.6), "keys"),
    ]
    v = _u(rng, 0.55, 0.7)
    paints = {
        "body": Paint(_jitter_hsv(rng, 220, 0.05, 0.45, ds=0.03)),
        "keys": Paint(
            _jitter_hsv(rng, 220, 0.04, v, ds=0.03),
            "grid",
            (0.12, 0.12, 0.14),
            {"nx": float(rng.integers(12, 16)), "ny": 5.0, "gap": _u(rng, 0.15, 0.25)},
            shade=0.05,
        ),
    }
    return ObjectModel("computer_keyboard", _u(rng, 2.8, 3.4), tuple(parts), paints)


def _helicopter(rng: np.random.Generator) -> ObjectModel:
    parts = [
        Part(_ellipse(-0.3, 0.1, _u(rng, 0.45, 0.52), _u(rng, 0.3, 0.36)), "body"),
        Part(_poly((0.05, -0.05), (0.95, -0.12), (0.95, 0.0), (0.05, 0.2)), "body"),
        Part(_poly((0.82, -0.12), (0.95, -0.45), (1.0, -0.45), (0.97, 0.0)), "body"),
        Part(_rect(-0.34, -0.42, -0.26, -0.2), "dark"),
        Part(_rect(-1.0, -0.52, 0.5, -0.44), "dark"),
        Part(_ellipse(-0.5, 0.0, 0.2, 0.16), "window"),
        Part(_rect(-0.55, 0.38, -0.5, 0.6), "dark"),
        Part(_rect(-0.1, 0.38, -0.05, 0.6), "dark"),
        Part(_rect(-0.8, 0.58, 0.15, 0.65), "dark"),
    ]
    paints = {
        "body": Paint(
            _jitter_hsv(rng, 95, 0.55, 0.45),
            "stripes",
            _jitter_hsv(rng, 80, 0.5, 0.3),
            {"angle": 0.6, "period": _u(rng, 0.5, 0.7), "duty": 0.35, "phase": _u(rng, 0, 1)},
        ),
        "dark": Paint(_jitter_hsv(rng, 0, 0.0, 0.15, dv=0.05)),
        "window": Paint(_jitter_hsv(rng, 190, 0.4, 0.85), shade=0.3),
    }
    return ObjectModel("helicopter", _u(rng, 1.7, 1.9), tuple(parts), paints)


def _race_car(rng: np.random.Generator) -> ObjectModel:
    wr = _u(rng, 0.17, 0.2)
    parts = [
        Part(
            _poly((-0.95, 0.1), (-0.7, -0.25), (0.15, -0.3), (1.0, 0.05), (1.0, 0.4), (-0.95, 0.4)),
            "body",
        ),
        Part(_poly((-0.25, -0.28), (-0.12, -0.55), (0.12, -0.55), (0.2, -0.29)), "cockpit"),
        Part(_rect(-1.0, -0.75, -0.72, -0.55), "wing"),
        Part(_rect(-0.9, -0.55, -0.84, -0.2), "wing"),
        Part(_ellipse(-0.6, 0.45, wr, wr * 2.6), "wheel"),
        Part(_ellipse(0.65, 0.45, wr, wr * 2.6), "wheel"),
        Part(_ellipse(0.3, 0.08, 0.1, 0.2), "number"),
    ]
    paints = {
        "body": Paint(
            _jitter_hsv(rng, 352, 0.95, 0.85, dh=5),
            "band",
            (0.97, 0.97, 0.97),
            {"v0": _u(rng, -0.12, -0.05), "v1": _u(rng, 0.0, 0.05)},
        ),
        "cockpit": Paint((0.05, 0.05, 0.08), shade=0.2),
        "wing": Paint(_jitter_hsv(rng, 0, 0.0, 0.15, dv=0.05)),
        "wheel": Paint((0.06, 0.06, 0.06), shade=0.0),
        "number": Paint((0.98, 0.98, 0.98), shade=0.0),
    }
    return ObjectModel("race_car", _u(rng, 2.4, 2.8), tuple(parts), paints)


def _person(rng: np.random.Generator) -> ObjectModel:
    arm = _u(rng, -0.1, 0.15)
    parts = [
        Part(_ellipse(0.0, -0.8, 0.36, 0.18), "skin"),
        Part(_rect(-0.1, -0.66, 0.1, -0.55), "skin"),
        Part(_rounded_rect(-0.55, -0.58, 0.55, 0.12, 0.1), "shirt"),
        Part(
            _poly((-0.55, -0.55), (-0.8, arm + 0.05), (-0.66, arm + 0.1), (-0.42, -0.35)), "shirt"
        ),
        Part(_poly((0.55, -0.55), (0.8, arm + 0.05), (0.66, arm + 0.1), (0.42, -0.35)), "shirt"),
        Part(_ellipse(-0.74, arm + 0.12, 0.12, 0.06), "skin"),
        Part(_ellipse(0.74, arm + 0.12, 0.12, 0.06), "skin"),
        Part(_rect(-0.45, 0.1, -0.05, 1.0), "legs"),
        Part(_rect(0.05, 0.1, 0.45, 1.0), "legs"),
        Part(_rect(-0.45, 0.08, 0.45, 0.25), "legs"),
        Part(_ellipse(0.0, -0.9, 0.36, 0.09), "hair"),
    ]
    paints = {
        "skin": Paint(_jitter_hsv(rng, 25, 0.4, 0.85, dv=0.1), shade=0.05),
        "shirt": Paint(
            _jitter_hsv(rng, 280, 0.6, 0.6),
            "stripes",
            _jitter_hsv(rng, 280, 0.4, 0.8),
            {"angle": 1.57, "period": _u(rng, 0.15, 0.25), "duty": 0.25, "phase": _u(rng, 0, 1)},
        ),
        "legs": Paint(_jitter_hsv(rng, 225, 0.6, 0.3)),
        "hair": Paint(_jitter_hsv(rng, 25, 0.5, 0.15)),
    }
    return ObjectModel("person", _u(rng, 0.42, 0.5), tuple(parts), paints)


def _violin(rng: np.random.Generator) -> ObjectModel:
    parts = [
        Part(_ellipse(0.0, 0.5, _u(rng, 0.9, 1.0), 0.32, n=44), "body"),
        Part(_ellipse(0.0, -0.05, _u(rng, 0.75, 0.85), 0.26, n=40), "body"),
        Part(_rect(-0.55, 0.1, 0.55, 0.35), "body"),
        Part(_rect(-0.12, -0.9, 0.12, 0.55), "board"),
        Part(_ellipse(0.0, -0.92, 0.16, 0.07), "board"),
        Part(_thick_curve([(-0.35, 0.1), (-0.3, 0.3), (-0.38, 0.45)], 0.06), "hole"),
        Part(_thick_curve([(0.35, 0.1), (0.3, 0.3), (0.38, 0.45)], 0.06), "hole"),
        Part(_rect(-0.25, 0.6, 0.25, 0.65), "board"),
    ]
    paints = {
        "body": Paint(
            _jitter_hsv(rng, 12, 0.9, 0.55),
            "grain",
            _jitter_hsv(rng, 8, 0.9, 0.35),
            {"f": _u(rng, 20, 30), "p": _u(rng, 0, 6.3), "w": _u(rng, 0.2, 0.3)},
            shade=0.3,
        ),
        "board": Paint((0.04, 0.03, 0.03), shade=0.1),
        "hole": Paint((0.02, 0.01, 0.01), shade=0.0),
    }
    return ObjectModel("violin", _u(rng, 0.45, 0.55), tuple(parts), paints)


RECIPES: dict[str, Callable[[np.random.Generator], ObjectModel]] = {
    "ambulance": _ambulance,
    "cat": _cat,
    "dog": _dog,
    "bus": _bus,
    "horse": _horse,
    "lion": _lion,
    "bird": _bird,
    "guitar": _guitar,
    "piano": _piano,
    "computer_keyboard": _computer_keyboard,
    "helicopter": _helicopter,
    "race_car": _race_car,
    "person": _person,
    "violin": _violin,
}
assert set(RECIPES) == set(CATEGORY_KEYS), "every corpus category needs a drawing recipe"


def sample_object_model(category: str, rng: np.random.Generator) -> ObjectModel:
    """A random instance appearance of ``category``."""
    if category not in RECIPES:
        raise KeyError(f"no drawing recipe for category {category!r}")
    model = RECIPES[category](rng)
    return replace(model, light_angle=float(rng.uniform(0, 2 * math.pi)))


# --------------------------------------------------------------------------------------------
# Geometry: placement transform, rasterising, contour tracing.
# --------------------------------------------------------------------------------------------


def _to_pixels(points: np.ndarray, model: ObjectModel, p: Placement) -> np.ndarray:
    hw = p.half_width
    hh = hw / model.aspect
    c, s = math.cos(p.angle), math.sin(p.angle)
    fx = -hw if p.flip else hw
    # [x, y] = [u, v] @ M + [cx, cy] with u, v scaled by the half sizes.
    m = np.array([[c * fx, -s * fx], [s * hh, c * hh]])
    return points @ m + np.array([p.cx, p.cy])


def _parts_to_pixels(model: ObjectModel, p: Placement) -> list[Polygon]:
    """All parts' polygons in pixels (one matrix product for the whole model)."""
    sizes = [len(part.polygon) for part in model.parts]
    pts = _to_pixels(np.concatenate([part.polygon for part in model.parts]), model, p)
    out, i = [], 0
    for n in sizes:
        out.append(tuple(pts[i : i + n].ravel().tolist()))
        i += n
    return out


def _to_unit(xs: np.ndarray, ys: np.ndarray, model: ObjectModel, p: Placement):
    hw = p.half_width
    hh = hw / model.aspect
    dx, dy = xs - p.cx, ys - p.cy
    c, s = math.cos(p.angle), math.sin(p.angle)
    u = c * dx - s * dy
    v = s * dx + c * dy
    return u / hw * (-1.0 if p.flip else 1.0), v / hh


def rasterize(polygons: Sequence[Polygon], height: int, width: int) -> np.ndarray:
    """Union of COCO polygons as a bool mask [H, W], with pycocotools' rasteriser.

    Only the polygons' bounding box (plus a margin) is rasterised, shifted by whole pixels, which
    gives the same pixels as rasterising the full frame.
    """
    polys = [np.asarray(q, dtype=np.float64) for q in polygons if len(q) >= 6]
    out = np.zeros((height, width), dtype=bool)
    if not polys:
        return out
    pts = np.concatenate(polys).reshape(-1, 2)
    x0 = max(0, int(math.floor(pts[:, 0].min())) - 2)
    y0 = max(0, int(math.floor(pts[:, 1].min())) - 2)
    x1 = min(width, int(math.ceil(pts[:, 0].max())) + 3)
    y1 = min(height, int(math.ceil(pts[:, 1].max())) + 3)
    if x1 <= x0 or y1 <= y0:
        return out
    shift = np.array([x0, y0], dtype=np.float64)
    local = [((q.reshape(-1, 2) - shift).ravel()).tolist() for q in polys]
    rles = mask_utils.frPyObjects(local, y1 - y0, x1 - x0)
    out[y0:y1, x0:x1] = mask_utils.decode(mask_utils.merge(rles)).astype(bool)
    return out


def scale_polygons(polygons: Sequence[Polygon], sx: float, sy: float) -> list[Polygon]:
    """Polygons with x scaled by ``sx`` and y by ``sy`` (to draw a mask at another size)."""
    out = []
    for q in polygons:
        a = np.asarray(q, dtype=np.float64).reshape(-1, 2) * np.array([sx, sy])
        out.append(tuple(a.ravel().tolist()))
    return out


def _mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(y0, y1, x0, x1) of a bool mask's True pixels (end exclusive), None if empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if len(rows) == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _drop_collinear(ring: np.ndarray) -> np.ndarray:
    """Remove the middle points of straight runs of a closed ring (first point == last)."""
    pts = ring[:-1]
    if len(pts) < 4:
        return ring
    prev = pts - np.roll(pts, 1, axis=0)
    nxt = np.roll(pts, -1, axis=0) - pts
    cross = prev[:, 0] * nxt[:, 1] - prev[:, 1] * nxt[:, 0]
    keep = np.abs(cross) > 1e-9
    if keep.sum() < 3:
        return ring
    kept = pts[keep]
    return np.concatenate([kept, kept[:1]])


def _simplify(points: np.ndarray, eps: float) -> np.ndarray:
    """Ramer-Douglas-Peucker on an open polyline [N, 2]."""
    keep = np.zeros(len(points), dtype=bool)
    keep[0] = keep[-1] = True
    stack = [(0, len(points) - 1)]
    while stack:
        i, j = stack.pop()
        if j <= i + 1:
            continue
        a, b = points[i], points[j]
        seg = b - a
        norm = math.hypot(seg[0], seg[1])
        rel = points[i + 1 : j] - a
        if norm < 1e-12:
            d = np.hypot(rel[:, 0], rel[:, 1])
        else:
            d = np.abs(seg[0] * rel[:, 1] - seg[1] * rel[:, 0]) / norm
        k = int(np.argmax(d))
        if d[k] > eps:
            m = i + 1 + k
            keep[m] = True
            stack.append((i, m))
            stack.append((m, j))
    return points[keep]


def trace_polygons(mask: np.ndarray, *, eps: float = 0.5, min_area: float = 6.0) -> list[Polygon]:
    """Outer outlines of a bool mask as COCO polygons (one per connected part, holes dropped).

    Marching squares at level 0.5 on pixel centres, shifted by half a pixel into COCO's corner
    convention, simplified with Ramer-Douglas-Peucker (``eps`` pixels).
    """
    box = _mask_box(mask)
    if box is None:
        return []
    y0, y1, x0, x1 = box
    y0, y1, x0, x1 = max(y0 - 1, 0), y1 + 1, max(x0 - 1, 0), x1 + 1
    crop = np.zeros((y1 - y0 + 2, x1 - x0 + 2), dtype=np.float64)
    crop[1:-1, 1:-1] = mask[y0:y1, x0:x1]
    lines = contourpy.contour_generator(z=crop).lines(0.5)
    rings = []
    for line in lines:
        pts = np.asarray(line, dtype=np.float64)
        if len(pts) < 4:
            continue
        x, y = pts[:, 0], pts[:, 1]
        signed = 0.5 * float(np.sum(x[:-1] * y[1:] - x[1:] * y[:-1]))
        rings.append((signed, pts))
    if not rings:
        return []
    outer_sign = math.copysign(1.0, max(rings, key=lambda r: abs(r[0]))[0])
    out: list[Polygon] = []
    h, w = mask.shape
    for signed, pts in rings:
        if signed * outer_sign <= 0 or abs(signed) < min_area:
            continue
        closed = np.allclose(pts[0], pts[-1])
        ring = pts if closed else np.concatenate([pts, pts[:1]])
        simple = _simplify(_drop_collinear(ring), eps)[:-1]
        if len(simple) < 3:
            continue
        simple = simple + np.array([x0 - 1 + 0.5, y0 - 1 + 0.5])
        simple[:, 0] = np.clip(simple[:, 0], 0.0, w)
        simple[:, 1] = np.clip(simple[:, 1], 0.0, h)
        out.append(tuple(np.round(simple, 2).ravel().tolist()))
    return out


def _rasterize_crop(poly: Polygon, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """One polygon rasterised within the window [y0:y1, x0:x1] (same pixels as full frame)."""
    local = (np.asarray(poly, dtype=np.float64).reshape(-1, 2) - np.array([x0, y0])).ravel()
    rles = mask_utils.frPyObjects([local.tolist()], y1 - y0, x1 - x0)
    return mask_utils.decode(mask_utils.merge(rles)).astype(bool)


def silhouette(model: ObjectModel, p: Placement, height: int, width: int) -> np.ndarray:
    """The union of the model's parts drawn at ``p`` (bool [H, W])."""
    return rasterize(_parts_to_pixels(model, p), height, width)


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
    box = _mask_box(visible)
    if box is None:
        return
    y0, y1, x0, x1 = box
    gy, gx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    u, v = _to_unit(gx + 0.5, gy + 0.5, model, p)
    region = visible[y0:y1, x0:x1]
    crop = canvas[y0:y1, x0:x1]
    base = "body" if "body" in model.paints else model.parts[0].paint
    colour = _texture(model.paints[base], u, v)
    for part, poly in zip(model.parts, _parts_to_pixels(model, p), strict=True):
        if part.paint == base:
            continue
        pm = _rasterize_crop(poly, x0, y0, x1, y1)
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
        _jitter_hsv(rng, rng.uniform(0, 360), rng.uniform(0.05, 0.5), rng.uniform(0.3, 0.9))
    )
    c2 = np.array(
        _jitter_hsv(rng, rng.uniform(0, 360), rng.uniform(0.05, 0.5), rng.uniform(0.3, 0.9))
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
        c1 = np.array(_jitter_hsv(rng, 205, 0.35, 0.9))
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
    colour = _jitter_hsv(rng, 30, 0.2, 0.45)
    return render_frame(background, objects, occluder=pole, occluder_colour=colour, noise_rng=rng)
