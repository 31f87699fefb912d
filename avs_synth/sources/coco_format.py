"""The COCO annotation format shared by LVIS and COCO: loading the JSON with clear errors and
turning annotation dicts into :class:`~avs_synth.records.Instance` records."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from avs_synth.errors import DataFormatError
from avs_synth.records import Instance, PolygonSegmentation, RLESegmentation, Segmentation

T = TypeVar("T")


def load_with_errors(path: Path, loader: Callable[[str], T]) -> T:
    """Run ``loader(str(path))`` (``lvis.LVIS``, ``pycocotools.coco.COCO``) and turn its JSON and
    structure failures into :class:`DataFormatError` naming the file (and line for bad JSON)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: annotation file not found")
    try:
        return loader(str(path))
    except json.JSONDecodeError as error:
        raise DataFormatError(
            path,
            f"invalid JSON ({error.msg}, column {error.colno}); truncated download?",
            line=error.lineno,
        ) from None
    except UnicodeDecodeError as error:
        raise DataFormatError(path, f"not UTF-8 text: {error.reason}") from None
    except KeyError as error:
        raise DataFormatError(path, f"missing key {error.args[0]!r}") from None
    except AssertionError as error:  # the official loaders assert the top level is a dict
        raise DataFormatError(path, f"not a COCO-style annotation file: {error}") from None
    except (TypeError, AttributeError) as error:
        raise DataFormatError(path, f"unexpected structure: {error}") from None


def license_lookup(dataset: Mapping[str, Any]) -> dict[Any, str]:
    """``licenses`` id → URL (or name where no URL is given)."""
    table: dict[Any, str] = {}
    for entry in dataset.get("licenses") or ():
        if isinstance(entry, Mapping) and "id" in entry:
            text = entry.get("url") or entry.get("name")
            if text:
                table[entry["id"]] = str(text)
    return table


def _number(value: Any, what: str, where: str, path: Path) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise DataFormatError(path, f"{where}: {what} must be a finite number, got {value!r}")
    return float(value)


def parse_segmentation(segmentation: Any, where: str, path: Path) -> Segmentation:
    """A COCO ``segmentation`` value (polygon list, RLE dict) as a typed segmentation.

    Only the structure is checked here; :func:`avs_synth.masks.decode_mask` checks the geometry.
    """
    if isinstance(segmentation, list):
        parts = []
        for part in segmentation:
            if not isinstance(part, list):
                raise DataFormatError(path, f"{where}: polygon part is not a list of numbers")
            try:
                parts.append(tuple(map(float, part)))  # finiteness is checked when decoding
            except (TypeError, ValueError):
                raise DataFormatError(
                    path, f"{where}: polygon coordinates must be numbers"
                ) from None
        return PolygonSegmentation(polygons=tuple(parts))
    if isinstance(segmentation, Mapping) and "counts" in segmentation and "size" in segmentation:
        size = segmentation["size"]
        if not (isinstance(size, list | tuple) and len(size) == 2):
            raise DataFormatError(path, f"{where}: RLE size must be [height, width]")
        counts = segmentation["counts"]
        if isinstance(counts, list):
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in counts):
                raise DataFormatError(path, f"{where}: RLE counts must be integers")
            counts = tuple(counts)
        elif not isinstance(counts, str):
            raise DataFormatError(path, f"{where}: RLE counts must be a string or a list")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in size):
            raise DataFormatError(path, f"{where}: RLE size must be two integers")
        return RLESegmentation(size=(size[0], size[1]), counts=counts)
    raise DataFormatError(path, f"{where}: unknown segmentation format")


def parse_instance(
    annotation: Mapping[str, Any], category_names: Mapping[Any, str], path: Path
) -> Instance:
    """One COCO/LVIS annotation dict as an :class:`Instance`."""
    where = f"annotation {annotation.get('id', '?')}"
    try:
        category_id = annotation["category_id"]
        bbox = annotation["bbox"]
        segmentation = annotation["segmentation"]
        annotation_id = annotation["id"]
    except KeyError as error:
        raise DataFormatError(path, f"{where}: missing key {error.args[0]!r}") from None
    if not isinstance(bbox, list | tuple) or len(bbox) != 4:
        raise DataFormatError(path, f"{where}: bbox must be [x, y, width, height]")
    box = tuple(_number(v, "bbox value", where, path) for v in bbox)
    if category_id not in category_names:
        raise DataFormatError(path, f"{where}: unknown category_id {category_id!r}")
    area = annotation.get("area")
    area = box[2] * box[3] if area is None else _number(area, "area", where, path)
    return Instance(
        instance_id=str(annotation_id),
        category_id=str(category_id),
        category_name=category_names[category_id],
        bbox=box,  # type: ignore[arg-type]
        area=area,
        segmentation=parse_segmentation(segmentation, where, path),
        is_crowd=bool(annotation.get("iscrowd", 0)),
    )


def image_size(image: Mapping[str, Any], path: Path) -> tuple[int, int]:
    """``(width, height)`` of a COCO image entry, checked to be positive integers."""
    try:
        width, height = image["width"], image["height"]
    except KeyError as error:
        raise DataFormatError(
            path, f"image {image.get('id', '?')}: missing key {error.args[0]!r}"
        ) from None
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (width, height)):
        raise DataFormatError(
            path, f"image {image.get('id', '?')}: width/height must be positive integers"
        )
    return width, height
