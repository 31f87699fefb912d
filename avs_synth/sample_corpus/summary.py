"""What a sample corpus is: its size presets, the records of what was drawn (written to
``corpus.json``) and the per-item random streams that make it a pure function of the seed."""

from __future__ import annotations

import logging
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from avs_synth.sample_corpus.categories import category_table

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# Sizes and the returned summary.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CorpusSize:
    """How much to generate.

    Args:
        lvis_train_images: LVIS v1 train pictures (all in COCO train2017).
        lvis_val_images: LVIS v1 val pictures (half from COCO val2017, half from train2017).
        coco_only_images: COCO train2017 pictures that LVIS does not cover.
        openimages_train_images, openimages_val_images: Open Images pictures per split.
        clips_per_class: VGGSound clips per class and split (train, test).
        s4_videos_per_category: AVSBench S4 videos per category and split (train, val, test).
        ms3_videos_per_split: AVSBench MS3 videos per split.
        image_scale: picture size relative to the real datasets (COCO 640 px, Open Images
            1024 px on the long side).
        s4_categories: how many S4 categories get videos (the first ones of the table); None
            for all.
        vggsound_categories: how many categories get VGGSound clips (the first ones of the
            table); None for all.
    """

    lvis_train_images: int
    lvis_val_images: int
    coco_only_images: int
    openimages_train_images: int
    openimages_val_images: int
    clips_per_class: int
    s4_videos_per_category: int
    ms3_videos_per_split: int
    image_scale: float = 1.0
    s4_categories: int | None = None
    vggsound_categories: int | None = None


SIZE_PRESETS: dict[str, CorpusSize] = {
    "tiny": CorpusSize(
        lvis_train_images=6,
        lvis_val_images=4,
        coco_only_images=1,
        openimages_train_images=5,
        openimages_val_images=2,
        clips_per_class=2,
        s4_videos_per_category=1,
        ms3_videos_per_split=1,
        image_scale=0.5,
        s4_categories=4,
    ),
    "small": CorpusSize(
        lvis_train_images=60,
        lvis_val_images=20,
        coco_only_images=6,
        openimages_train_images=40,
        openimages_val_images=10,
        clips_per_class=6,
        s4_videos_per_category=2,
        ms3_videos_per_split=2,
    ),
    "medium": CorpusSize(
        lvis_train_images=1500,
        lvis_val_images=300,
        coco_only_images=60,
        openimages_train_images=800,
        openimages_val_images=200,
        clips_per_class=30,
        s4_videos_per_category=10,
        ms3_videos_per_split=20,
    ),
}


@dataclass(frozen=True)
class DrawnInstance:
    """One drawn object of a picture or video and where each dataset annotates it.

    Args:
        label: its value in the truth label map (1-based).
        category: corpus category key.
        area: pixel count of its visible mask (in frame 1 for AVSBench videos).
        bbox: (x, y, w, h) of the mask (in frame 1 for AVSBench videos).
        lvis_annotation_id, coco_annotation_id: annotation ids, None where not annotated.
        openimages_mask: mask file name inside ``openimages_zip``, None where not annotated.
        openimages_zip: the zip holding it (relative to the corpus root).
        crowd_group: flock number for objects annotated as one COCO crowd.
        sounding_seconds: AVSBench: the seconds (1-5) in which the object sounds.
    """

    label: int
    category: str
    area: int
    bbox: tuple[float, float, float, float]
    lvis_annotation_id: int | None = None
    coco_annotation_id: int | None = None
    openimages_mask: str | None = None
    openimages_zip: str | None = None
    crowd_group: int | None = None
    sounding_seconds: tuple[int, ...] = ()


@dataclass(frozen=True)
class CorpusPicture:
    """A still picture of the corpus (COCO/LVIS or Open Images) and its ground truth.

    Paths are relative to the corpus root.
    """

    source: str  # "coco" (shared with LVIS) or "openimages"
    image_id: str
    split: str  # COCO folder (train2017, val2017) or Open Images split (train, validation)
    path: str
    width: int
    height: int
    label_map: str
    instances: tuple[DrawnInstance, ...]
    lvis_split: str | None = None
    negative_categories: tuple[str, ...] = ()
    not_exhaustive_categories: tuple[str, ...] = ()
    mask_size: tuple[int, int] | None = None  # Open Images mask PNG (width, height)


@dataclass(frozen=True)
class CorpusClip:
    """A VGGSound row and its file (None for rows without a downloaded clip); ``silent_seconds``:
    the muted stretch ``[start, end]`` in seconds of the file when ``silent_stretch``."""

    youtube_id: str
    start_seconds: int
    label: str
    category: str
    split: str
    path: str | None
    audio_format: str | None
    silent_stretch: bool
    silent_seconds: tuple[float, float] | None = None


@dataclass(frozen=True)
class CorpusVideo:
    """An AVSBench video (S4 or MS3) with its drawn ground truth."""

    subset: str
    name: str
    split: str
    category: str | None  # the S4 category (dog_barking); None for MS3
    sounding: tuple[str, ...]  # corpus category keys that sound
    frames: tuple[str, ...]
    masks: tuple[str | None, ...]
    label_maps: tuple[str, ...]
    wav: str
    log_mel: str
    instances: tuple[DrawnInstance, ...]
    start: int = 0


@dataclass
class CorpusSummary:
    """What :func:`write_sample_corpus` wrote (paths relative to ``root``)."""

    root: Path
    seed: int
    size_name: str | None
    size: CorpusSize
    pictures: list[CorpusPicture] = field(default_factory=list)
    clips: list[CorpusClip] = field(default_factory=list)
    videos: list[CorpusVideo] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    mp4_written: bool = False

    def path(self, relative: str) -> Path:
        """Absolute path of a corpus-relative path."""
        return self.root / relative

    def counts(self) -> dict[str, int]:
        """Pictures, instances, clips and videos per kind."""
        coco = [p for p in self.pictures if p.source == "coco"]
        oi = [p for p in self.pictures if p.source == "openimages"]
        return {
            "lvis_train_images": sum(p.lvis_split == "train" for p in coco),
            "lvis_val_images": sum(p.lvis_split == "val" for p in coco),
            "lvis_annotations": sum(
                i.lvis_annotation_id is not None for p in coco for i in p.instances
            ),
            "coco_train2017_images": sum(p.split == "train2017" for p in coco),
            "coco_val2017_images": sum(p.split == "val2017" for p in coco),
            "coco_annotations": len(
                {i.coco_annotation_id for p in coco for i in p.instances} - {None}
            ),
            "openimages_train_images": sum(p.split == "train" for p in oi),
            "openimages_validation_images": sum(p.split == "validation" for p in oi),
            "openimages_masks": sum(i.openimages_mask is not None for p in oi for i in p.instances),
            "vggsound_rows": len(self.clips),
            "vggsound_files": sum(c.path is not None for c in self.clips),
            "s4_videos": sum(v.subset == "s4" for v in self.videos),
            "ms3_videos": sum(v.subset == "ms3" for v in self.videos),
        }

    def to_json(self) -> dict:
        """The summary as written to ``corpus.json``."""
        return {
            "format_version": 1,
            "generator": "avs-synth sample-corpus",
            "seed": self.seed,
            "size_name": self.size_name,
            "size": asdict(self.size),
            "counts": self.counts(),
            "mp4_written": self.mp4_written,
            "files": self.files,
            "categories": category_table(),
            "pictures": [asdict(p) for p in self.pictures],
            "clips": [asdict(c) for c in self.clips],
            "videos": [asdict(v) for v in self.videos],
        }


def item_rng(seed: int, stream: str, *index: int) -> np.random.Generator:
    """An independent generator for one item of one stream (order-independent)."""
    return np.random.default_rng([seed, zlib.crc32(stream.encode()), *index])
