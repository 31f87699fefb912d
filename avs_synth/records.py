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

    ``member`` is the file name inside the zip when ``archive`` is set, else ``path`` is the PNG.
    The PNG may have another resolution than its image: decoders resize it (nearest neighbour).
    """

    path: Path | None = None
    archive: Path | None = None
    member: str | None = None


Segmentation = PolygonSegmentation | RLESegmentation | MaskFileSegmentation


@dataclass(frozen=True)
class Instance:
    """One annotated object instance.

    Args:
        instance_id: unique within its source ("12345" for LVIS/COCO annotation ids, the mask file
            name for Open Images).
        category_id: the source's category id as a string ("3" for LVIS/COCO, "/m/0bt9lr" for Open
            Images).
        category_name: the category name verbatim from the source (``bus_(vehicle)``, ``Dog``).
        bbox: (x, y, width, height) in image pixels.
        area: mask area in pixels where the source gives it (else the bbox area).
        segmentation: the instance's mask description, decoded by :func:`avs_synth.masks.decode`.
        is_crowd: COCO ``iscrowd`` / Open Images ``IsGroupOf``; crowd instances are not used as
            sounding masks.
    """

    instance_id: str
    category_id: str
    category_name: str
    bbox: tuple[float, float, float, float]
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
        width, height: image size in pixels as annotated.
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
    width: int
    height: int
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
