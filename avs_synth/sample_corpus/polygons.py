"""Geometry of a placed object model: to pixels, rasterising, contour tracing (COCO polygons).

Exactness: an object's visible silhouette is traced into polygons (COCO convention, pixel corners
at integer coordinates) and the object is painted through the raster of exactly those polygons
(pycocotools' rasteriser), so ``annToMask`` of the written polygons reproduces the drawn pixels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import contourpy
import numpy as np
from pycocotools import mask as mask_utils

from avs_synth.sample_corpus.object_models import ObjectModel, Placement

Polygon = tuple[float, ...]  # flat [x0, y0, x1, y1, ...] in pixels


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


def parts_to_pixels(model: ObjectModel, p: Placement) -> list[Polygon]:
    """All parts' polygons in pixels (one matrix product for the whole model)."""
    sizes = [len(part.polygon) for part in model.parts]
    pts = _to_pixels(np.concatenate([part.polygon for part in model.parts]), model, p)
    out, i = [], 0
    for n in sizes:
        out.append(tuple(pts[i : i + n].ravel().tolist()))
        i += n
    return out


def to_unit(xs: np.ndarray, ys: np.ndarray, model: ObjectModel, p: Placement):
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


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
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
    box = mask_box(mask)
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


def rasterize_crop(poly: Polygon, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """One polygon rasterised within the window [y0:y1, x0:x1] (same pixels as full frame)."""
    local = (np.asarray(poly, dtype=np.float64).reshape(-1, 2) - np.array([x0, y0])).ravel()
    rles = mask_utils.frPyObjects([local.tolist()], y1 - y0, x1 - x0)
    return mask_utils.decode(mask_utils.merge(rles)).astype(bool)


def silhouette(model: ObjectModel, p: Placement, height: int, width: int) -> np.ndarray:
    """The union of the model's parts drawn at ``p`` (bool [H, W])."""
    return rasterize(parts_to_pixels(model, p), height, width)
