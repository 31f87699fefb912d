"""Decoding instance masks: COCO polygons and RLE (pycocotools) and mask PNGs (Open Images).

Every decoder returns a boolean array ``[H, W]`` at the image's annotated size. Masks that cannot
be decoded raise :class:`InvalidSegmentationError` (a :class:`~avs_synth.errors.DataFormatError`)
naming the file, zip member or annotation at fault.
"""

from __future__ import annotations

import io
import math
import os
import threading
import zipfile
from collections import OrderedDict
from collections.abc import Sequence
from os import PathLike
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from pycocotools import mask as mask_utils

from avs_synth.annotation_index import read_segmentation
from avs_synth.errors import DataFormatError
from avs_synth.records import (
    MaskFileSegmentation,
    PolygonSegmentation,
    RLESegmentation,
    Segmentation,
    StoredSegmentation,
)
from avs_synth.zip_members import ZipMemberError, read_member

__all__ = [
    "InvalidSegmentationError",
    "binarize_mask_image",
    "decode_mask",
    "read_mask_png",
    "rle_string_to_counts",
]


MAX_COORDINATE = 1e9
"""Largest polygon coordinate (pixels, either sign) accepted; larger ones are refused as invalid
(no picture is that large: such a value is a corrupt annotation)."""


class InvalidSegmentationError(DataFormatError):
    """A polygon, RLE or mask PNG that does not describe a valid mask."""


def decode_mask(
    segmentation: Segmentation,
    height: int,
    width: int,
    *,
    source: str | PathLike[str] | None = None,
) -> np.ndarray:
    """Decode one instance's segmentation into a boolean mask ``[height, width]``.

    Args:
        segmentation: polygons (all parts are merged), an RLE (compressed string or uncompressed
            counts; its size must equal ``(height, width)``), either of them stored in an
            annotation index (read from it first), or a mask PNG (read from its zip
            member or file, binarised with ``> 0`` and resized with nearest neighbour to
            ``(width, height)`` when its resolution differs).
        height, width: the image size the mask must have.
        source: the annotation file (or "file: annotation id") named in errors about polygons
            and RLE; mask PNG errors name the PNG (and zip member) itself.

    Raises:
        InvalidSegmentationError: fewer than 3 points, an odd or non-finite coordinate list, a
            coordinate beyond :data:`MAX_COORDINATE`, an
            RLE whose counts do not cover ``height * width`` pixels, a PNG that cannot be read.
    """
    if not (isinstance(height, int | np.integer) and isinstance(width, int | np.integer)):
        raise TypeError(f"height and width must be integers, got {height!r}, {width!r}")
    if height <= 0 or width <= 0:
        raise InvalidSegmentationError(source, f"image size must be positive, got {width}x{height}")
    if isinstance(segmentation, StoredSegmentation):
        segmentation = read_segmentation(segmentation)
    if isinstance(segmentation, PolygonSegmentation):
        return _decode_polygons(segmentation.polygons, int(height), int(width), source)
    if isinstance(segmentation, RLESegmentation):
        return _decode_rle(segmentation, int(height), int(width), source)
    if isinstance(segmentation, MaskFileSegmentation):
        mask = read_mask_png(segmentation)
        if mask.shape != (height, width):
            mask = _resize_nearest(mask, int(height), int(width))
        return mask
    raise TypeError(f"unknown segmentation type {type(segmentation).__name__}")


def _decode_polygons(
    polygons: Sequence[Sequence[float]],
    height: int,
    width: int,
    source: str | PathLike[str] | None,
) -> np.ndarray:
    if len(polygons) == 0:
        raise InvalidSegmentationError(source, "polygon segmentation has no parts")
    parts: list[list[float]] = []
    for index, polygon in enumerate(polygons):
        coords = [float(v) for v in polygon]
        if len(coords) % 2 != 0:
            raise InvalidSegmentationError(
                source, f"polygon part {index} has an odd number of coordinates ({len(coords)})"
            )
        if len(coords) < 6:
            raise InvalidSegmentationError(
                source, f"polygon part {index} has {len(coords) // 2} points, needs at least 3"
            )
        if not all(math.isfinite(v) for v in coords):
            raise InvalidSegmentationError(
                source, f"polygon part {index} has a non-finite coordinate"
            )
        if max(abs(v) for v in coords) > MAX_COORDINATE:
            raise InvalidSegmentationError(
                source, f"polygon part {index} has a coordinate beyond {MAX_COORDINATE:g} pixels"
            )
        parts.append(_clip_far_polygon(coords, height, width))
    parts = [part for part in parts if len(part) >= 6]
    if not parts:  # every part lay wholly outside the margin around the picture
        return np.zeros((height, width), dtype=bool)
    rles = mask_utils.frPyObjects(parts, height, width)
    return mask_utils.decode(mask_utils.merge(rles)).astype(bool)


def _clip_far_polygon(coords: list[float], height: int, width: int) -> list[float]:
    """The polygon cut to the picture grown by its longer side on every side, when it reaches
    beyond that margin (Sutherland-Hodgman); else the polygon itself, untouched.

    pycocotools' rasteriser walks every edge at 5x resolution, so its time and memory grow
    with the edges' length (a coordinate of 1e7 takes 2 GB; 2e8 takes 23 GB, and 5e8 overflows
    its int32 and crashes the process). The cut moves only vertices outside the margin, along
    their own edges: the pixels inside the picture are those of the uncut polygon, up to the
    rounding of a moved vertex onto pycocotools' 1/5-pixel grid.
    """
    margin = float(max(height, width))
    low_x, low_y, high_x, high_y = -margin, -margin, width + margin, height + margin
    xs, ys = coords[0::2], coords[1::2]
    if min(xs) >= low_x and min(ys) >= low_y and max(xs) <= high_x and max(ys) <= high_y:
        return coords
    points = list(zip(xs, ys, strict=True))
    for axis, bound, keep_above in (
        (0, low_x, True),
        (0, high_x, False),
        (1, low_y, True),
        (1, high_y, False),
    ):
        points = _clip_to_half_plane(points, axis, bound, keep_above)
        if not points:
            return []
    return [v for point in points for v in point]


def _clip_to_half_plane(
    points: list[tuple[float, float]], axis: int, bound: float, keep_above: bool
) -> list[tuple[float, float]]:
    """One Sutherland-Hodgman step: the closed polygon ``points`` cut by ``point[axis] = bound``,
    keeping the side ``>= bound`` (``keep_above``) or ``<= bound``."""

    def inside(point: tuple[float, float]) -> bool:
        return point[axis] >= bound if keep_above else point[axis] <= bound

    def crossing(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
        t = (bound - a[axis]) / (b[axis] - a[axis])
        other = 1 - axis
        moved = a[other] + t * (b[other] - a[other])
        return (bound, moved) if axis == 0 else (moved, bound)

    out: list[tuple[float, float]] = []
    previous = points[-1]
    for point in points:
        if inside(point):
            if not inside(previous):
                out.append(crossing(previous, point))
            out.append(point)
        elif inside(previous):
            out.append(crossing(previous, point))
        previous = point
    return out


def rle_string_to_counts(counts: str | bytes) -> list[int]:
    """Decode COCO's compressed RLE string into run lengths (as pycocotools' ``rleFrString``)."""
    data = counts.encode("ascii") if isinstance(counts, str) else counts
    out: list[int] = []
    p = 0
    n = len(data)
    while p < n:
        x = 0
        k = 0
        more = True
        while more:
            if p >= n:
                raise ValueError("compressed RLE string ends inside a number")
            c = data[p] - 48
            if not 0 <= c < 64:
                raise ValueError(f"byte {data[p]!r} is not a compressed RLE character")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(out) > 2:
            x += out[-2]
        out.append(x)
    return out


def _decode_rle(
    segmentation: RLESegmentation,
    height: int,
    width: int,
    source: str | PathLike[str] | None,
) -> np.ndarray:
    size = tuple(int(v) for v in segmentation.size)
    if size != (height, width):
        raise InvalidSegmentationError(
            source, f"RLE size {list(size)} differs from the image size [{height}, {width}]"
        )
    counts = segmentation.counts
    if isinstance(counts, str | bytes):
        try:
            runs = rle_string_to_counts(counts)
        except ValueError as error:
            raise InvalidSegmentationError(source, f"invalid compressed RLE: {error}") from None
        encoded = counts.encode("ascii") if isinstance(counts, str) else bytes(counts)
        rle = {"size": [height, width], "counts": encoded}
    else:
        runs = [int(v) for v in counts]
        rle = None
    if any(r < 0 for r in runs):
        raise InvalidSegmentationError(source, "RLE has a negative run length")
    if sum(runs) != height * width:
        # pycocotools would read uninitialised memory (short) or fail (long): refuse both.
        raise InvalidSegmentationError(
            source, f"RLE runs cover {sum(runs)} pixels, the image has {height * width}"
        )
    if rle is None:
        rle = mask_utils.frPyObjects({"size": [height, width], "counts": runs}, height, width)
    return mask_utils.decode(rle).astype(bool)


# --- mask PNGs ------------------------------------------------------------------------------

_ZIP_CACHE_SIZE = 32
_zip_cache: OrderedDict[tuple[int, str], zipfile.ZipFile] = OrderedDict()
_zip_lock = threading.Lock()


def _open_zip(archive: Path) -> zipfile.ZipFile:
    """An open ZipFile for ``archive``, cached per process (an Open Images zip's directory of
    ~100k members takes a while to read; handles are never shared across a fork)."""
    key = (os.getpid(), os.fspath(archive))
    with _zip_lock:
        handle = _zip_cache.get(key)
        if handle is not None:
            _zip_cache.move_to_end(key)
            return handle
    try:
        handle = zipfile.ZipFile(archive)
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise InvalidSegmentationError(archive, f"cannot open mask archive: {error}") from None
    with _zip_lock:
        _zip_cache[key] = handle
        while len(_zip_cache) > _ZIP_CACHE_SIZE:
            _, old = _zip_cache.popitem(last=False)
            old.close()
    return handle


def read_mask_png(segmentation: MaskFileSegmentation | str | PathLike[str]) -> np.ndarray:
    """Read a mask PNG (a file, or a member of a zip) as a boolean array at its own resolution.

    Raises:
        FileNotFoundError: the file, the archive or the member does not exist.
        InvalidSegmentationError: the bytes are not a readable image (names file and member).
    """
    if not isinstance(segmentation, MaskFileSegmentation):
        segmentation = MaskFileSegmentation(path=Path(segmentation))
    if segmentation.archive is not None:
        if segmentation.member is None:
            raise ValueError("MaskFileSegmentation with an archive needs a member name")
        where, member = segmentation.archive, segmentation.member
        data = None
        if segmentation.offset is not None:
            try:
                data = read_member(Path(where), member, segmentation.offset)
            except ZipMemberError as error:
                raise InvalidSegmentationError(
                    where, f"cannot read mask: {error}", member=member
                ) from None
        if data is None:
            handle = _open_zip(Path(where))
            try:
                data = handle.read(member)
            except KeyError:
                raise FileNotFoundError(
                    f"{where}[{member}]: no such member in the archive"
                ) from None
            except (zipfile.BadZipFile, OSError, EOFError) as error:
                raise InvalidSegmentationError(
                    where, f"cannot read mask: {error}", member=member
                ) from None
    elif segmentation.path is not None:
        where, member = segmentation.path, None
        data = Path(where).read_bytes()
    else:
        raise ValueError("MaskFileSegmentation needs a path or an archive and member")
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return binarize_mask_image(image)
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError) as error:
        raise InvalidSegmentationError(
            where, f"cannot decode mask image: {error}", member=member
        ) from None


def binarize_mask_image(image: Image.Image) -> np.ndarray:
    """A mask image as booleans ``[H, W]``: any non-zero value (palette index for ``P`` images,
    any colour channel for RGB/RGBA, alpha ignored) is foreground."""
    mode = image.mode
    if mode == "1":
        return np.array(image, dtype=bool)
    if mode in ("RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"):
        return np.asarray(image.convert("RGB")).any(axis=-1)
    if mode in ("LA", "La", "PA"):
        return np.asarray(image)[..., 0] > 0
    return np.asarray(image) > 0  # L, P (indices), I, I;16, F


def _resize_nearest(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    image = Image.fromarray(mask.astype(np.uint8) * 255)
    return np.asarray(image.resize((width, height), Image.Resampling.NEAREST)) > 0


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """The tight box ``(x, y, width, height)`` of a boolean mask's pixels; None when empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if len(rows) == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])
    return (x0, y0, x1 - x0 + 1, y1 - y0 + 1)
