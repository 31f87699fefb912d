"""The COCO annotation format shared by LVIS and COCO: parsing the JSON with clear errors and
turning annotation dicts into :class:`~avs_synth.records.Instance` records.

:class:`COCOStyleFile` parses a file with msgspec, leaving every annotation as its raw JSON text
until it is needed: a reader that wants the instances of a few categories (a build) decodes only
those, and the polygons of the others are never turned into Python floats (``json.load`` of LVIS
v1 train takes ~7x the file's size in memory). Files that msgspec refuses but Python's ``json``
accepts (``NaN`` literals) are read with ``json``; malformed ones raise
:class:`~avs_synth.errors.DataFormatError` with the line, as ``json`` reports it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from os import PathLike
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from avs_synth.annotation_index import AnnotationIndexWriter
from avs_synth.errors import DataFormatError
from avs_synth.records import (
    ImageRecord,
    Instance,
    PolygonSegmentation,
    RLESegmentation,
    Segmentation,
)
from avs_synth.safe_paths import SafeRoot

T = TypeVar("T")
_UNSET = msgspec.UNSET


class _Top(msgspec.Struct):
    images: list[Any] | msgspec.UnsetType = _UNSET
    annotations: list[msgspec.Raw] | msgspec.UnsetType = _UNSET
    categories: list[Any] | msgspec.UnsetType = _UNSET
    licenses: Any = None


class _Annotation(msgspec.Struct, gc=False):
    """An annotation with its bulky values left as raw JSON (or Python values, read by json)."""

    id: Any = _UNSET
    image_id: Any = _UNSET
    category_id: Any = _UNSET
    bbox: Any = _UNSET
    area: Any = _UNSET
    segmentation: Any = _UNSET
    iscrowd: Any = 0


class _RawAnnotation(msgspec.Struct, gc=False):
    id: Any = _UNSET
    image_id: Any = _UNSET
    category_id: Any = _UNSET
    bbox: msgspec.Raw = msgspec.Raw()
    area: msgspec.Raw = msgspec.Raw()
    segmentation: msgspec.Raw = msgspec.Raw()
    iscrowd: Any = 0


_TOP = msgspec.json.Decoder(_Top)
_ANNOTATION = msgspec.json.Decoder(_RawAnnotation)
_FIELDS = ("id", "image_id", "category_id", "bbox", "area", "segmentation", "iscrowd")


def _line_of(data: bytes, offset: int) -> tuple[int, int]:
    line = data.count(b"\n", 0, offset) + 1
    return line, offset - (data.rfind(b"\n", 0, offset) + 1) + 1


def _value(value: Any) -> Any:
    """A raw JSON value as Python (``json`` semantics: huge numbers become inf), else as is."""
    if isinstance(value, msgspec.Raw):
        if not value:
            return _UNSET
        try:
            return msgspec.json.decode(value)
        except msgspec.DecodeError:
            return json.loads(bytes(value))
    return value


class COCOStyleFile:
    """A COCO-format annotation file (COCO instances, LVIS), parsed once.

    Args:
        path: the JSON file.

    Raises:
        FileNotFoundError: no such file.
        DataFormatError: invalid or truncated JSON (names the line), not a COCO-style object, or
            a missing ``images`` / ``annotations`` / ``categories`` key.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: annotation file not found")
        data = self.path.read_bytes()
        if data.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark (an editor's save)
            data = data[3:]
        try:
            top = _TOP.decode(data)
        except msgspec.ValidationError as error:
            raise DataFormatError(self.path, f"not a COCO-style annotation file: {error}") from None
        except msgspec.DecodeError as error:
            top = self._read_with_json(data, error)
        for key in ("images", "annotations", "categories"):
            if getattr(top, key) is _UNSET:
                raise DataFormatError(self.path, f"missing key {key!r}")
        self.images: list[Any] = top.images  # type: ignore[assignment]
        self.categories: list[Any] = top.categories  # type: ignore[assignment]
        self.licenses: Any = top.licenses
        self._annotations: list[Any] = top.annotations  # type: ignore[assignment]

    def _read_with_json(self, data: bytes, error: msgspec.DecodeError) -> _Top:
        if "truncated" in str(error):
            line, _ = _line_of(data, len(data))
            raise DataFormatError(
                self.path, "invalid JSON (the file ends too early); truncated download?", line=line
            ) from None
        try:
            value = json.loads(data)
        except json.JSONDecodeError as json_error:
            raise DataFormatError(
                self.path,
                f"invalid JSON ({json_error.msg}, column {json_error.colno}); truncated download?",
                line=json_error.lineno,
            ) from None
        except UnicodeDecodeError as decode_error:
            raise DataFormatError(self.path, f"not UTF-8 text: {decode_error.reason}") from None
        if not isinstance(value, dict):
            raise DataFormatError(self.path, "not a COCO-style annotation file: not an object")
        for key in ("images", "annotations", "categories"):
            if key in value and not isinstance(value[key], list):
                raise DataFormatError(self.path, f"unexpected structure: {key} is not a list")
        return _Top(
            images=value.get("images", _UNSET),
            annotations=value.get("annotations", _UNSET),
            categories=value.get("categories", _UNSET),
            licenses=value.get("licenses"),
        )

    def _annotation(self, item: Any, number: int) -> _Annotation | _RawAnnotation:
        if isinstance(item, msgspec.Raw):
            try:
                return _ANNOTATION.decode(item)
            except (msgspec.ValidationError, msgspec.DecodeError) as error:
                raise DataFormatError(self.path, f"annotation #{number}: {error}") from None
        if not isinstance(item, Mapping):
            raise DataFormatError(self.path, f"annotation #{number} is not an object")
        return _Annotation(**{k: item[k] for k in _FIELDS if k in item})

    def annotations_by_image(
        self, categories: Iterable[str] | None = None
    ) -> dict[Any, list[_Annotation | _RawAnnotation]]:
        """Image id → its annotations in file order (only those whose ``str(category_id)`` is in
        ``categories``, when given: the others are not decoded)."""
        keep = None if categories is None else set(categories)
        by_image: dict[Any, list[_Annotation | _RawAnnotation]] = {}
        try:
            for number, item in enumerate(self._annotations):
                ann = self._annotation(item, number)
                if keep is not None and str(ann.category_id) not in keep:
                    continue
                by_image.setdefault(ann.image_id, []).append(ann)
        except TypeError as error:  # an unhashable image_id
            raise DataFormatError(self.path, f"unexpected structure: {error}") from None
        return by_image

    def category_entries(self) -> list[Mapping[str, Any]]:
        """The ``categories`` entries sorted by id, each checked: an object with an integer or
        string ``id`` (unique) and a non-empty string ``name``; ``synonyms``, where given, a
        list of strings, and ``synset``, ``frequency``, ``def`` strings or null."""
        entries: dict[Any, Mapping[str, Any]] = {}
        for number, cat in enumerate(self.categories):
            where = f"categories[{number}]"
            if not isinstance(cat, Mapping):
                raise DataFormatError(self.path, f"{where} is not an object")
            cat_id, name = cat.get("id"), cat.get("name")
            if isinstance(cat_id, bool) or not isinstance(cat_id, int | str):
                raise DataFormatError(
                    self.path, f"{where}: 'id' must be an integer or a string, got {cat_id!r}"
                )
            if not isinstance(name, str) or not name.strip():
                raise DataFormatError(
                    self.path,
                    f"{where} (id {cat_id!r}): 'name' must be a non-empty string, got {name!r}",
                )
            synonyms = cat.get("synonyms")
            if synonyms is not None and not (
                isinstance(synonyms, list) and all(isinstance(v, str) for v in synonyms)
            ):
                raise DataFormatError(
                    self.path, f"{where} (id {cat_id!r}): 'synonyms' must be a list of strings"
                )
            for key in ("synset", "frequency", "def"):
                if not isinstance(cat.get(key), str | None):
                    raise DataFormatError(
                        self.path, f"{where} (id {cat_id!r}): {key!r} must be a string"
                    )
            if cat_id in entries:
                raise DataFormatError(self.path, f"{where}: id {cat_id!r} appears twice")
            entries[cat_id] = cat
        return [entries[k] for k in sorted(entries, key=lambda k: (isinstance(k, str), k))]

    def category_names(self) -> dict[Any, str]:
        """Category id → name (the JSON's id values as keys)."""
        return {cat["id"]: cat["name"] for cat in self.category_entries()}

    def instances(
        self,
        annotations: Iterable[_Annotation | _RawAnnotation],
        category_names: Mapping[Any, str],
        index: AnnotationIndexWriter | None = None,
    ) -> Iterator[Instance]:
        """The annotations as instances; with ``index``, their geometry goes to the index and the
        instances hold a reference to it."""
        store = None if index is None else index.add
        for ann in annotations:
            fields = {k: _value(getattr(ann, k)) for k in _FIELDS}
            yield parse_instance(
                {k: v for k, v in fields.items() if v is not _UNSET},
                category_names,
                self.path,
                store,  # type: ignore[arg-type]
            )


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
    annotation: Mapping[str, Any],
    category_names: Mapping[Any, str],
    path: Path,
    store: Callable[[Segmentation], Segmentation] | None = None,
) -> Instance:
    """One COCO/LVIS annotation dict as an :class:`Instance` (its segmentation passed through
    ``store`` where given: a reference to where it was stored)."""
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
    parsed = parse_segmentation(segmentation, where, path)
    return Instance(
        instance_id=str(annotation_id),
        category_id=str(category_id),
        category_name=category_names[category_id],
        bbox=box,  # type: ignore[arg-type]
        area=area,
        segmentation=parsed if store is None else store(parsed),
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


def image_entries(file: COCOStyleFile) -> Iterator[Mapping[str, Any]]:
    """The ``images`` entries of a file, each checked to be an object."""
    for number, image in enumerate(file.images):
        if not isinstance(image, Mapping):
            raise DataFormatError(file.path, f"image #{number} is not an object")
        yield image


class COCOStyleReader:
    """What the LVIS and COCO readers share: the parsed file, its licences and category names,
    the images folder guard, and :meth:`images`; a subclass says how an image entry becomes a
    record (:meth:`_record`).

    Args:
        annotations: the JSON file.
        images_root: the images folder (file names are checked to stay under it).

    Raises:
        FileNotFoundError: the annotation file does not exist.
        DataFormatError: invalid or truncated JSON, missing keys (names the file).
    """

    def __init__(self, *, annotations: str | PathLike[str], images_root: str | PathLike[str]):
        self.annotations = Path(annotations)
        self.images_root = Path(images_root)
        self._file = COCOStyleFile(self.annotations)
        self._licenses = license_lookup({"licenses": self._file.licenses})
        self._category_names = self._file.category_names()
        self._root = SafeRoot(self.images_root)

    def __len__(self) -> int:
        return len(self._file.images)

    def images(
        self,
        *,
        categories: Iterable[str] | None = None,
        index: AnnotationIndexWriter | None = None,
    ) -> Iterator[ImageRecord]:
        """Every image of the file, in file order, with its instances and annotation flags.

        Args:
            categories: keep only the instances of these category ids (the others are neither
                decoded nor checked); None keeps every instance.
            index: store the instances' geometry there (they hold a reference to it).
        """
        by_image = self._file.annotations_by_image(categories)
        names = self._category_names
        for image in image_entries(self._file):
            width, height = image_size(image, self.annotations)
            anns = by_image.get(image.get("id"), ())
            instances = tuple(self._file.instances(anns, names, index))
            yield self._record(image, width, height, instances)

    def _record(
        self, image: Mapping[str, Any], width: int, height: int, instances: tuple[Instance, ...]
    ) -> ImageRecord:
        raise NotImplementedError
