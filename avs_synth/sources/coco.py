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
from collections.abc import Iterable, Iterator
from os import PathLike
from pathlib import Path

from avs_synth.annotation_index import AnnotationIndexWriter
from avs_synth.errors import DataFormatError
from avs_synth.records import Category, ImageRecord
from avs_synth.safe_paths import SafeRoot
from avs_synth.sources.coco_format import COCOStyleFile, image_entries, image_size, license_lookup

logger = logging.getLogger(__name__)


class COCOReader:
    """Reads a COCO instances file.

    Args:
        annotations: ``instances_{split}.json``.
        images_root: the folder holding the split's images (``train2017/``); ``file_name`` is
            joined onto it and checked to stay under it.

    Raises:
        FileNotFoundError: the annotation file does not exist.
        DataFormatError: invalid or truncated JSON, missing keys (names the file).
    """

    def __init__(self, *, annotations: str | PathLike[str], images_root: str | PathLike[str]):
        self.annotations = Path(annotations)
        self.images_root = Path(images_root)
        self._file = COCOStyleFile(self.annotations)
        self._licenses = license_lookup({"licenses": self._file.licenses})
        try:
            self._categories = [
                Category(source="coco", category_id=str(cat["id"]), name=str(cat["name"]))
                for cat in sorted(self._file.categories, key=lambda c: c["id"])
            ]
        except (KeyError, TypeError) as error:
            raise DataFormatError(self.annotations, f"malformed category entry: {error}") from None
        self._category_names = self._file.category_names()
        self._root = SafeRoot(self.images_root)

    @property
    def categories(self) -> list[Category]:
        """The COCO categories, by id (ids 1-90 with gaps)."""
        return list(self._categories)

    def __len__(self) -> int:
        return len(self._file.images)

    def images(
        self,
        *,
        categories: Iterable[str] | None = None,
        index: AnnotationIndexWriter | None = None,
    ) -> Iterator[ImageRecord]:
        """Every image of the file, in file order, with its instances (crowd ones included).

        Args:
            categories: keep only the instances of these category ids (the others are neither
                decoded nor checked); None keeps every instance.
            index: store the instances' geometry there (they hold a reference to it).
        """
        by_image = self._file.annotations_by_image(categories)
        names = self._category_names
        for image in image_entries(self._file):
            image_id = image.get("id")
            width, height = image_size(image, self.annotations)
            file_name = image.get("file_name")
            if not file_name:
                raise DataFormatError(self.annotations, f"image {image_id}: missing file_name")
            anns = by_image.get(image_id, ())
            yield ImageRecord(
                source="coco",
                image_id=str(image_id),
                path=self._root.resolve(str(file_name), source=self.annotations),
                width=width,
                height=height,
                instances=tuple(self._file.instances(anns, names, index)),
                exhaustive=True,
                license=self._licenses.get(image.get("license")),
                attribution=image.get("flickr_url") or image.get("coco_url"),
            )
