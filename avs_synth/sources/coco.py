"""COCO instance annotations (``instances_train2017.json``), parsed by ``pycocotools.coco.COCO``.

COCO annotates every instance of its 80 categories in every image, so records carry
``exhaustive=True``: a category absent from an image is a verified negative. Crowd regions
(``iscrowd``, RLE segmentation) become instances with ``is_crowd=True``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
from collections.abc import Iterator
from os import PathLike
from pathlib import Path

from avs_synth.errors import DataFormatError
from avs_synth.records import Category, ImageRecord
from avs_synth.safe_paths import resolve_under
from avs_synth.sources.coco_format import (
    image_size,
    license_lookup,
    load_with_errors,
    parse_instance,
)

logger = logging.getLogger(__name__)


def _quiet_coco(path: str):
    """``COCO(path)`` without its progress prints on stdout."""
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(path)


class COCOReader:
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
        self.annotations = Path(annotations)
        self.images_root = Path(images_root)
        self._coco = load_with_errors(self.annotations, _quiet_coco)
        dataset = self._coco.dataset
        for key in ("images", "annotations", "categories"):
            if key not in dataset:
                raise DataFormatError(self.annotations, f"missing key {key!r}")
        self._licenses = license_lookup(dataset)
        try:
            self._categories = [
                Category(source="coco", category_id=str(cat["id"]), name=str(cat["name"]))
                for cat in sorted(dataset["categories"], key=lambda c: c["id"])
            ]
            self._category_names = {cat["id"]: str(cat["name"]) for cat in dataset["categories"]}
        except (KeyError, TypeError) as error:
            raise DataFormatError(self.annotations, f"malformed category entry: {error}") from None

    @property
    def categories(self) -> list[Category]:
        """The COCO categories, by id (ids 1-90 with gaps)."""
        return list(self._categories)

    def __len__(self) -> int:
        return len(self._coco.dataset["images"])

    def _split_folder(self) -> str:
        """``"val2017/"`` when ``images_root`` is the COCO root holding that split's folder, else
        ``""`` (``images_root`` is the split's folder)."""
        names = [self.annotations.stem.rsplit("_", 1)[-1]]  # instances_val2017 -> val2017
        images = self._coco.dataset["images"]
        url = images[0].get("coco_url") if images and isinstance(images[0], dict) else None
        if isinstance(url, str) and "/" in url:
            names.append(url.rstrip("/").split("/")[-2])
        for name in names:
            if re.fullmatch(r"[A-Za-z0-9_-]+", name) and (self.images_root / name).is_dir():
                return f"{name}/"
        return ""

    def images(self) -> Iterator[ImageRecord]:
        """Every image of the file, in file order, with its instances (crowd ones included)."""
        img_to_anns = self._coco.imgToAnns
        folder = self._split_folder()
        for image in self._coco.dataset["images"]:
            image_id = image.get("id")
            width, height = image_size(image, self.annotations)
            file_name = image.get("file_name")
            if not file_name:
                raise DataFormatError(self.annotations, f"image {image_id}: missing file_name")
            instances = tuple(
                parse_instance(ann, self._category_names, self.annotations)
                for ann in img_to_anns.get(image_id, ())
            )
            yield ImageRecord(
                source="coco",
                image_id=str(image_id),
                path=resolve_under(
                    self.images_root, f"{folder}{file_name}", source=self.annotations
                ),
                width=width,
                height=height,
                instances=instances,
                exhaustive=True,
                license=self._licenses.get(image.get("license")),
                attribution=image.get("flickr_url") or image.get("coco_url"),
            )
