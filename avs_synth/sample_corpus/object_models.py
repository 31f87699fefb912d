"""Object models of the sample-corpus categories: shapes in unit coordinates and how to paint them.

Each category of :mod:`avs_synth.sample_corpus.categories` has its own drawing recipe: a
silhouette built from parts (body, head, wheels, neck, ...), a colour scheme and a texture
(stripes, spots, wood grain, key grid, ...), all varied at random per instance (proportions, hue,
shade, texture phase, size, rotation, mirror image). :mod:`avs_synth.sample_corpus.polygons`
places a model in a picture and :mod:`avs_synth.sample_corpus.scenes` paints it.
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from avs_synth.sample_corpus.categories import CATEGORY_KEYS

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


def jitter_hsv(
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
    red = jitter_hsv(rng, 0, 0.85, 0.85, dh=4)
    paints = {
        "body": Paint(
            jitter_hsv(rng, 40, 0.03, 0.95, ds=0.03, dv=0.04),
            "band",
            red,
            {"v0": _u(rng, 0.05, 0.15), "v1": _u(rng, 0.22, 0.32)},
        ),
        "window": Paint(jitter_hsv(rng, 200, 0.35, 0.8)),
        "cross": Paint(red),
        "wheel": Paint(jitter_hsv(rng, 0, 0.0, 0.12, dv=0.05), shade=0.0),
        "light": Paint(jitter_hsv(rng, 220, 0.9, 0.95)),
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
            jitter_hsv(rng, 30, 0.8, 0.95),
            "stripes",
            jitter_hsv(rng, 22, 0.9, 0.55),
            {
                "angle": _u(rng, 1.3, 1.85),
                "period": _u(rng, 0.16, 0.22),
                "duty": _u(rng, 0.3, 0.45),
                "phase": _u(rng, 0, 1),
            },
        ),
        "eye": Paint(jitter_hsv(rng, 110, 0.8, 0.7), shade=0.0),
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
            jitter_hsv(rng, 28, 0.7, 0.42),
            "spots",
            jitter_hsv(rng, 40, 0.25, 0.9),
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
        "ear": Paint(jitter_hsv(rng, 20, 0.7, 0.2)),
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
            jitter_hsv(rng, 50, 0.9, 0.95),
            "band",
            jitter_hsv(rng, 15, 0.9, 0.8),
            {"v0": _u(rng, 0.15, 0.25), "v1": _u(rng, 0.3, 0.38)},
        ),
        "window": Paint(jitter_hsv(rng, 215, 0.6, 0.35), shade=0.3),
        "wheel": Paint(jitter_hsv(rng, 0, 0.0, 0.1, dv=0.04), shade=0.0),
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
            jitter_hsv(rng, 14, 0.75, 0.5),
            "fur",
            jitter_hsv(rng, 10, 0.8, 0.35),
            {"f": _u(rng, 25, 35), "p": _u(rng, 0, 6.3)},
            shade=0.2,
        ),
        "mane": Paint(jitter_hsv(rng, 20, 0.5, 0.12)),
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
            jitter_hsv(rng, 42, 0.55, 0.82),
            "fur",
            jitter_hsv(rng, 38, 0.6, 0.7),
            {"f": _u(rng, 18, 26), "p": _u(rng, 0, 6.3)},
        ),
        "mane": Paint(
            jitter_hsv(rng, 25, 0.85, 0.45),
            "fur",
            jitter_hsv(rng, 20, 0.9, 0.3),
            {"f": _u(rng, 40, 55), "p": _u(rng, 0, 6.3)},
        ),
        "face": Paint(jitter_hsv(rng, 42, 0.5, 0.85)),
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
            jitter_hsv(rng, 215, 0.75, 0.85),
            "stripes",
            jitter_hsv(rng, 205, 0.5, 0.95),
            {"angle": 0.0, "period": _u(rng, 0.12, 0.18), "duty": 0.2, "phase": _u(rng, 0, 1)},
        ),
        "tail": Paint(jitter_hsv(rng, 225, 0.85, 0.5)),
        "wing": Paint(jitter_hsv(rng, 225, 0.85, 0.55)),
        "beak": Paint(jitter_hsv(rng, 45, 0.9, 0.95)),
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
            jitter_hsv(rng, 32, 0.45, 0.85),
            "grain",
            jitter_hsv(rng, 28, 0.6, 0.6),
            {"f": _u(rng, 35, 50), "p": _u(rng, 0, 6.3), "w": _u(rng, 0.1, 0.2)},
        ),
        "neck": Paint(jitter_hsv(rng, 20, 0.6, 0.25)),
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
            jitter_hsv(rng, 0, 0.0, 0.08, dv=0.04),
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
        "panel": Paint(jitter_hsv(rng, 30, 0.4, 0.2)),
    }
    return ObjectModel("piano", _u(rng, 1.15, 1.35), tuple(parts), paints)


def _computer_keyboard(rng: np.random.Generator) -> ObjectModel:
    parts = [
        Part(_rounded_rect(-1.0, -0.7, 1.0, 0.7, 0.15), "body"),
        Part(_rect(-0.93, -0.55, 0.93, 0.6), "keys"),
    ]
    v = _u(rng, 0.55, 0.7)
    paints = {
        "body": Paint(jitter_hsv(rng, 220, 0.05, 0.45, ds=0.03)),
        "keys": Paint(
            jitter_hsv(rng, 220, 0.04, v, ds=0.03),
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
            jitter_hsv(rng, 95, 0.55, 0.45),
            "stripes",
            jitter_hsv(rng, 80, 0.5, 0.3),
            {"angle": 0.6, "period": _u(rng, 0.5, 0.7), "duty": 0.35, "phase": _u(rng, 0, 1)},
        ),
        "dark": Paint(jitter_hsv(rng, 0, 0.0, 0.15, dv=0.05)),
        "window": Paint(jitter_hsv(rng, 190, 0.4, 0.85), shade=0.3),
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
            jitter_hsv(rng, 352, 0.95, 0.85, dh=5),
            "band",
            (0.97, 0.97, 0.97),
            {"v0": _u(rng, -0.12, -0.05), "v1": _u(rng, 0.0, 0.05)},
        ),
        "cockpit": Paint((0.05, 0.05, 0.08), shade=0.2),
        "wing": Paint(jitter_hsv(rng, 0, 0.0, 0.15, dv=0.05)),
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
        "skin": Paint(jitter_hsv(rng, 25, 0.4, 0.85, dv=0.1), shade=0.05),
        "shirt": Paint(
            jitter_hsv(rng, 280, 0.6, 0.6),
            "stripes",
            jitter_hsv(rng, 280, 0.4, 0.8),
            {"angle": 1.57, "period": _u(rng, 0.15, 0.25), "duty": 0.25, "phase": _u(rng, 0, 1)},
        ),
        "legs": Paint(jitter_hsv(rng, 225, 0.6, 0.3)),
        "hair": Paint(jitter_hsv(rng, 25, 0.5, 0.15)),
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
            jitter_hsv(rng, 12, 0.9, 0.55),
            "grain",
            jitter_hsv(rng, 8, 0.9, 0.35),
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
