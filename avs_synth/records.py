"""Typed records yielded by the source readers.

Every reader in :mod:`avs_synth.sources` turns one dataset's on-disk format into these records, so
the rest of the pipeline (matching, build, training) never looks at a dataset's raw files again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

VisualSource = Literal["lvis", "coco", "openimages"]


@dataclass(frozen=True)
class Category:
    """One visual category (LVIS, COCO, Open Images) or audio class (VGGSound).

    Args:
        source: ``lvis``, ``coco``, ``openimages`` or ``vggsound``.
        category_id: the source's id as a string ("3", "/m/0bt9lr"; the label itself for
            VGGSound).
        name: verbatim from the source (``bus_(vehicle)``, ``Dog``, ``dog barking``).
        synonyms: LVIS synonyms (verbatim), empty elsewhere.
        synset: WordNet synset name (``dog.n.01``) where the source gives one.
        frequency: LVIS frequency bucket (``r``, ``c``, ``f``) where given.
        definition: LVIS gloss where given.
    """

    source: Literal["lvis", "coco", "openimages", "vggsound"]
    category_id: str
    name: str
    synonyms: tuple[str, ...] = ()
    synset: str | None = None
    frequency: str | None = None
    definition: str | None = None


@dataclass(frozen=True)
class PolygonSegmentation:
    """COCO-style polygons: one flat ``[x0, y0, x1, y1, ...]`` list per part, in pixels."""

    polygons: tuple[tuple[float, ...], ...]


@dataclass(frozen=True)
class RLESegmentation:
    """COCO run-length encoding (``counts`` compressed string or uncompressed list)."""

    size: tuple[int, int]  # (height, width)
    counts: str | tuple[int, ...]


@dataclass(frozen=True)
class MaskFileSegmentation:
    """A per-instance mask PNG (Open Images), read from ``archive`` (a zip) or from a folder.

    ``member`` is the file name inside the zip when ``archive`` is set, else ``path`` is the PNG;
    ``offset``, where known, is the member's local header offset in the zip (read from there
    without parsing the zip's directory). The PNG may have another resolution than its image:
    decoders resize it (nearest neighbour).
    """

    path: Path | None = None
    archive: Path | None = None
    member: str | None = None
    offset: int | None = None


@dataclass(frozen=True, slots=True)
class StoredSegmentation:
    """A polygon or RLE segmentation stored in an annotation index file, read when it is drawn.

    The build's readers write the geometry of the instances a build may use into an index
    (:mod:`avs_synth.annotation_index`) while streaming an annotation file, so that a plan holds
    this reference (a few bytes) instead of the coordinates; :func:`avs_synth.masks.decode_mask`
    reads it back (coordinates are stored as float64, exactly as the JSON parser gives them).

    Args:
        path: the index file.
        offset: where the record starts in it.
        length: the record's length in bytes.
    """

    path: Path
    offset: int
    length: int


Segmentation = PolygonSegmentation | RLESegmentation | MaskFileSegmentation | StoredSegmentation


@dataclass(frozen=True, slots=True)
class NormalizedBox:
    """A box as fractions of the image size, verbatim from an annotation file that gives no image
    size (Open Images ``XMin, XMax, YMin, YMax``). Pixel values are computed from it once the
    picture is opened, by :meth:`to_pixels`, with the same arithmetic as a reader that knows the
    size, so the result is the same to the last bit."""

    x_min: float
    x_max: float
    y_min: float
    y_max: float

    @property
    def area_fraction(self) -> float:
        """The box's area as a fraction of the image's (0 for an empty or inverted box)."""
        return max(0.0, self.x_max - self.x_min) * max(0.0, self.y_max - self.y_min)

    def to_pixels(self, width: int, height: int) -> tuple[tuple[float, float, float, float], float]:
        """``((x, y, w, h), area)`` in pixels of a ``width`` x ``height`` picture."""
        x0, x1 = self.x_min * width, self.x_max * width
        y0, y1 = self.y_min * height, self.y_max * height
        return (x0, y0, x1 - x0, y1 - y0), max(0.0, x1 - x0) * max(0.0, y1 - y0)


@dataclass(frozen=True)
class Instance:
    """One annotated object instance.

    Args:
        instance_id: unique within its source ("12345" for LVIS/COCO annotation ids, the mask file
            name for Open Images).
        category_id: the source's category id as a string ("3" for LVIS/COCO, "/m/0bt9lr" for Open
            Images).
        category_name: the category name verbatim from the source (``bus_(vehicle)``, ``Dog``).
        bbox: (x, y, width, height) in image pixels; a :class:`NormalizedBox` in records whose
            image size is not known yet (``ImageRecord.width`` None).
        area: mask area in pixels where the source gives it (else the bbox area); with a
            :class:`NormalizedBox`, the box's fraction of the image area.
        segmentation: the instance's mask description, decoded by :func:`avs_synth.masks.decode`.
        is_crowd: COCO ``iscrowd`` / Open Images ``IsGroupOf``; crowd instances are not used as
            sounding masks.
    """

    instance_id: str
    category_id: str
    category_name: str
    bbox: tuple[float, float, float, float] | NormalizedBox
    area: float
    segmentation: Segmentation
    is_crowd: bool = False


@dataclass(frozen=True)
class ImageRecord:
    """One picture with its instances and the annotation flags that matter for sampling.

    Args:
        source: which dataset the record was read from.
        image_id: the source's image id as a string (LVIS and COCO share ids for shared pictures).
        path: absolute path of the image file (checked to stay under the images root).
        width, height: image size in pixels as annotated; None when the annotations give none and
            the reader was asked not to open the picture (Open Images read for a build: the
            worker that opens the JPEG reads its size, and instance boxes are normalised).
        instances: all instances of the image.
        negative_category_ids: categories verified absent from the image (LVIS
            ``neg_category_ids``, Open Images image-level labels with confidence 0).
        not_exhaustive_category_ids: categories whose instances may be missing (LVIS
            ``not_exhaustive_category_ids``).
        exhaustive: True when every instance of every listed category is annotated (COCO), so an
            absent category is a verified negative.
        license: licence name or URL, where the source gives one.
        attribution: author / original URL, where the source gives one.
    """

    source: VisualSource
    image_id: str
    path: Path
    width: int | None
    height: int | None
    instances: tuple[Instance, ...] = ()
    negative_category_ids: tuple[str, ...] = ()
    not_exhaustive_category_ids: tuple[str, ...] = ()
    exhaustive: bool = False
    license: str | None = None
    attribution: str | None = None


@dataclass(frozen=True)
class AudioClip:
    """One VGGSound clip (a row of ``vggsound.csv`` and, where found, its file).

    ``clip_id`` is ``f"{youtube_id}_{start_seconds:06d}"``, the canonical VGGSound file stem.
    """

    youtube_id: str
    start_seconds: int
    label: str
    split: Literal["train", "test"]
    path: Path | None = None

    @property
    def clip_id(self) -> str:
        return f"{self.youtube_id}_{self.start_seconds:06d}"


@dataclass(frozen=True)
class AVSBenchVideo:
    """One AVSBench-object video (S4 or MS3): five frames, their masks and the audio.

    ``mask_paths[k]`` is None for frames without annotation (S4 train frames 2-5).
    ``category`` is the S4 category (``dog``, ``male_speech``) or None for MS3.
    """

    subset: Literal["s4", "ms3"]
    name: str
    split: Literal["train", "val", "test"]
    category: str | None
    frame_paths: tuple[Path, ...]
    mask_paths: tuple[Path | None, ...]
    log_mel_path: Path | None = None
    wav_path: Path | None = None
    extra: dict[str, str] = field(default_factory=dict, compare=False)
