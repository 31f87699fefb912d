"""LVIS v1 (and v0.5) instance annotations.

The file is parsed by :class:`~avs_synth.sources.coco_format.COCOStyleFile` (msgspec, polygons left
as raw JSON until used); its instances and masks are those of the official ``lvis.LVIS`` class
(``ann_to_mask``), which the tests check on the sample corpus.

Image files: LVIS v1 entries carry no ``file_name``, only ``coco_url`` such as
``http://images.cocodataset.org/train2017/000000391895.jpg`` (LVIS v1 val also draws on COCO
train2017 and val2017). The last two parts of the URL name the file: it is looked for as
``images_root/train2017/000000391895.jpg`` when ``images_root`` holds a ``train2017`` folder (the
usual COCO layout, ``images_root`` being the folder that holds train2017/ and val2017/), else as
``images_root/000000391895.jpg`` (``images_root`` being a flat folder of images). The choice is
made once per COCO split folder, not per image. Entries without ``coco_url`` use ``file_name``.
Every name is checked to stay under ``images_root``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from os import PathLike
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

from avs_synth.errors import DataFormatError
from avs_synth.records import Category, ImageRecord, Instance
from avs_synth.sources.coco_format import COCOStyleReader

logger = logging.getLogger(__name__)

_PLAIN_URL = re.compile(
    r"https?://[^/?#;]+/(?:[^?#;]*/)?"
    r"([A-Za-z0-9_-][A-Za-z0-9_.-]*)/([A-Za-z0-9_-][A-Za-z0-9_.-]*)"
)
"""A ``coco_url`` whose last two parts read the same without :func:`urlparse` (no query,
fragment or parameters; plain names that are not ``.`` or ``..``): every LVIS entry's."""


def url_folder_and_name(url: str) -> tuple[str, ...]:
    """The last two parts of a ``coco_url``'s path, as ``PurePosixPath(urlparse(url).path)``
    parts them (fewer where the path has fewer)."""
    match = _PLAIN_URL.fullmatch(url)
    if match is not None:
        return match.groups()
    return PurePosixPath(urlparse(url).path).parts[-2:]


def _ids(values: Any, what: str, image_id: Any, path: Path) -> tuple[str, ...]:
    if values is None:
        return ()
    if not isinstance(values, list):
        raise DataFormatError(path, f"image {image_id}: {what} must be a list")
    return tuple(str(v) for v in values)


class LVISReader(COCOStyleReader):
    """Reads an LVIS annotation file (``lvis_v1_train.json``, ``lvis_v1_val.json``).

    Args:
        annotations: the LVIS JSON file.
        images_root: the COCO images folder (holding ``train2017/`` and ``val2017/``, or the
            images themselves); see the module docstring.

    Raises:
        FileNotFoundError: the annotation file does not exist.
        DataFormatError: invalid or truncated JSON, missing keys (names the file).
    """

    def __init__(self, *, annotations: str | PathLike[str], images_root: str | PathLike[str]):
        super().__init__(annotations=annotations, images_root=images_root)
        self._categories = [
            Category(
                source="lvis",
                category_id=str(cat["id"]),
                name=cat["name"],
                synonyms=tuple(cat.get("synonyms") or ()),
                synset=cat.get("synset"),
                frequency=cat.get("frequency"),
                definition=cat.get("def"),
            )
            for cat in self._file.category_entries()
        ]
        self._split_dirs: dict[str, bool] = {}

    @property
    def categories(self) -> list[Category]:
        """All LVIS categories, by id, with synonyms, synset, frequency and definition."""
        return list(self._categories)

    def image_path(self, image: Mapping[str, Any]) -> Path:
        """The file of one LVIS image entry (see the module docstring)."""
        url = image.get("coco_url")
        if url:
            parts = url_folder_and_name(str(url))
            if len(parts) < 2:
                raise DataFormatError(
                    self.annotations, f"image {image.get('id')}: cannot parse coco_url {url!r}"
                )
            split, name = parts[-2], parts[-1]
            has_split_dir = self._split_dirs.get(split)
            if has_split_dir is None:
                usable = split not in ("/", ".", "..")
                has_split_dir = usable and (self.images_root / split).is_dir()
                self._split_dirs[split] = has_split_dir
            relative = f"{split}/{name}" if has_split_dir else name
        elif image.get("file_name"):
            relative = str(image["file_name"])
        else:
            raise DataFormatError(
                self.annotations, f"image {image.get('id')}: neither coco_url nor file_name"
            )
        return self._root.resolve(relative, source=self.annotations)

    def _record(
        self, image: Mapping[str, Any], width: int, height: int, instances: tuple[Instance, ...]
    ) -> ImageRecord:
        image_id = image.get("id")
        return ImageRecord(
            source="lvis",
            image_id=str(image_id),
            path=self.image_path(image),
            width=width,
            height=height,
            instances=instances,
            negative_category_ids=_ids(
                image.get("neg_category_ids"), "neg_category_ids", image_id, self.annotations
            ),
            not_exhaustive_category_ids=_ids(
                image.get("not_exhaustive_category_ids"),
                "not_exhaustive_category_ids",
                image_id,
                self.annotations,
            ),
            exhaustive=False,
            license=self._licenses.get(image.get("license")),
            attribution=image.get("flickr_url") or image.get("coco_url"),
        )
