"""COCO instance annotations (``instances_train2017.json``).

The file is parsed by :class:`~avs_synth.sources.coco_format.COCOStyleFile` (msgspec, polygons left
as raw JSON until used); its instances and masks are those of ``pycocotools.coco.COCO``, which the
tests check on the sample corpus.

COCO annotates every instance of its 80 categories in every image, so records carry
``exhaustive=True``: a category absent from an image is a verified negative. Crowd regions
(``iscrowd``, RLE segmentation) become instances with ``is_crowd=True``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from os import PathLike
from typing import Any

from avs_synth.errors import DataFormatError
from avs_synth.records import Category, ImageRecord, Instance
from avs_synth.sources.coco_format import COCOStyleReader

logger = logging.getLogger(__name__)


class COCOReader(COCOStyleReader):
    """Reads a COCO instances file.

    Args:
        annotations: ``instances_{split}.json``.
        images_root: the COCO root (holding ``train2017/`` and ``val2017/``: the split folder
            is the one named in the annotation file, ``instances_val2017.json`` -> ``val2017/``,
            or in the images' ``coco_url``), or the split's folder itself; ``file_name`` is
            joined onto it and checked to stay under ``images_root``.

    Raises:
        FileNotFoundError: the annotation file does not exist.
        DataFormatError: invalid or truncated JSON, missing keys (names the file).
    """

    def __init__(self, *, annotations: str | PathLike[str], images_root: str | PathLike[str]):
        super().__init__(annotations=annotations, images_root=images_root)
        self._categories = [
            Category(source="coco", category_id=str(cat["id"]), name=cat["name"])
            for cat in self._file.category_entries()
        ]

    @property
    def categories(self) -> list[Category]:
        """The COCO categories, by id (ids 1-90 with gaps)."""
        return list(self._categories)

    def _split_folder(self) -> str:
        """``"val2017/"`` when ``images_root`` is the COCO root holding that split's folder, else
        ``""`` (``images_root`` is the split's folder)."""
        folder = getattr(self, "_folder", None)
        if folder is not None:
            return folder
        names = [self.annotations.stem.rsplit("_", 1)[-1]]  # instances_val2017 -> val2017
        images = self._file.images
        url = images[0].get("coco_url") if images and isinstance(images[0], dict) else None
        if isinstance(url, str) and "/" in url:
            names.append(url.rstrip("/").split("/")[-2])
        self._folder = ""
        for name in names:
            if re.fullmatch(r"[A-Za-z0-9_-]+", name) and (self.images_root / name).is_dir():
                self._folder = f"{name}/"
                break
        return self._folder

    def _record(
        self, image: Mapping[str, Any], width: int, height: int, instances: tuple[Instance, ...]
    ) -> ImageRecord:
        image_id = image.get("id")
        file_name = image.get("file_name")
        if not file_name:
            raise DataFormatError(self.annotations, f"image {image_id}: missing file_name")
        return ImageRecord(
            source="coco",
            image_id=str(image_id),
            path=self._root.resolve(f"{self._split_folder()}{file_name}", source=self.annotations),
            width=width,
            height=height,
            instances=instances,
            exhaustive=True,
            license=self._licenses.get(image.get("license")),
            attribution=image.get("flickr_url") or image.get("coco_url"),
        )
