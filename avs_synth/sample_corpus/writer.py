"""``avs-synth sample-corpus``: a small corpus in the REAL on-disk formats of every source.

The pictures are synthetic (:mod:`avs_synth.sample_corpus.scenes`) and the sounds too
(:mod:`avs_synth.sample_corpus.sounds`), but every file follows the layout and format of the real
release, so the readers in :mod:`avs_synth.sources`, the matching and the build run on it exactly
as on the real data. Categories carry their real ids and names (:mod:`avs_synth.sample_corpus.categories`).

Layout under ``OUT``::

    README.md, corpus.json              what was generated (counts, seed, categories, every
                                        picture / clip / video with its ground truth)
    coco/train2017/{id:012d}.jpg        the COCO pictures (LVIS shares them, as in reality)
    coco/val2017/{id:012d}.jpg
    coco/annotations/instances_train2017.json, instances_val2017.json
                                        COCO: polygons, iscrowd, an uncompressed-RLE crowd
    lvis/lvis_v1_train.json, lvis/lvis_v1_val.json
                                        LVIS v1 (coco_url; neg_category_ids: truly absent;
                                        not_exhaustive_category_ids: a present instance was left
                                        unannotated); LVIS val pictures come from COCO val2017
                                        and train2017, as in LVIS v1; a few COCO train pictures
                                        are not in LVIS
    openimages/{train,validation}/{ImageID}.jpg
    openimages/{split}-annotations-object-segmentation.csv
                                        MaskPath,ImageID,LabelName,BoxID,BoxXMin,BoxXMax,BoxYMin,
                                        BoxYMax,PredictedIoU,Clicks
    openimages/{split}-masks/{split}-masks-{0-9a-f}.zip
                                        mask PNGs {ImageID}_{mid without /}_{BoxID}.png, at
                                        another resolution than the picture, zipped by the first
                                        hex digit of the ImageID
    openimages/{split}-annotations-human-imagelabels.csv
                                        ImageID,Source,LabelName,Confidence (0 = verified absent)
    openimages/oidv7-class-descriptions.csv, openimages/classes-segmentation.txt
    vggsound/vggsound.csv               no header: youtube_id,start_seconds,label,split
    vggsound/clips/                     10 s, 16 kHz mono clips named {ytid}_{start:06d}.ext,
                                        {ytid}_{start}.ext or {ytid}_{start}_{end}.ext; wav
                                        (int16), flac, ogg, mp4 (AAC + a tiny black video; needs
                                        ffmpeg); one row per split has no file (as in real,
                                        incomplete downloads)
    avsbench/Single-source/s4_meta_data.csv (name,start,category,split)
    avsbench/Single-source/s4_data/visual_frames/{split}/{category}/{name}/{name}_{k}.png
    avsbench/Single-source/s4_data/gt_masks/{split}/{category}/{name}/{name}_{k}.png
                                        binary (0/255); train: frame 1 only; val/test: 1-5
    avsbench/Single-source/s4_data/audio_wav/{split}/{category}/{name}.wav (5 s, 16 kHz)
    avsbench/Single-source/s4_data/audio_log_mel/{split}/{category}/{name}.pkl
                                        pickle of a float32 tensor [5, 1, 96, 64] made with
                                        avs_synth.audio.logmel.waveform_to_examples from the wav
    avsbench/Multi-sources/ms3_meta_data.csv (video_id,split)
    avsbench/Multi-sources/ms3_data/visual_frames/{name}/{name}.mp4_{k}.png
    avsbench/Multi-sources/ms3_data/gt_masks/{split}/{name}/{name}_{k}.png (palette PNG)
    avsbench/Multi-sources/ms3_data/audio_wav/{split}/{name}.wav
    avsbench/Multi-sources/ms3_data/audio_log_mel/{split}/{name}.pkl
    truth/labelmaps/...                 not part of any dataset: uint8 label maps (0 background,
                                        i for the i-th object listed in corpus.json) of every
                                        picture and AVSBench frame, the drawn ground truth

Every picture holds 2-4 objects of different categories; every AVSBench frame holds the sounding
object(s) and silent objects of other categories, so segmentation needs the audio. Everything
is a pure function of ``seed`` and the size: two runs write byte-identical files (fixed zip
timestamps, fixed PNG / JPEG encoder settings, fixed Ogg serial numbers, bit-exact ffmpeg).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import pickle
import shutil
import subprocess
import time
import zipfile
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from PIL import Image
from pycocotools import mask as mask_utils

from avs_synth.audio.logmel import waveform_to_examples
from avs_synth.sample_corpus.categories import (
    CATEGORIES,
    CorpusCategory,
    category_by_key,
    category_table,
)
from avs_synth.sample_corpus.scenes import (
    DrawnScene,
    compose_picture,
    draw_background,
    place_objects,
    rasterize,
    render_frame,
    scale_polygons,
)
from avs_synth.sample_corpus.sounds import SAMPLE_RATE, synthesize_clip, to_int16

log = logging.getLogger(__name__)

COCO_URL = "http://images.cocodataset.org/{folder}/{image_id:012d}.jpg"
MANAGED = (
    "coco",
    "lvis",
    "openimages",
    "vggsound",
    "avsbench",
    "truth",
    "corpus.json",
    "README.md",
)
S4_SPLITS = ("train", "val", "test")
AVS_SIZE = 224
AVS_FRAMES = 5
CLIP_SECONDS = 10
AVS_SECONDS = 5


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
    """A VGGSound row and its file (None for rows without a downloaded clip)."""

    youtube_id: str
    start_seconds: int
    label: str
    category: str
    split: str
    path: str | None
    audio_format: str | None
    silent_stretch: bool


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


# --------------------------------------------------------------------------------------------
# Deterministic writers.
# --------------------------------------------------------------------------------------------


def _rng(seed: int, stream: str, *index: int) -> np.random.Generator:
    """An independent generator for one item of one stream (order-independent)."""
    return np.random.default_rng([seed, zlib.crc32(stream.encode()), *index])


def _write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _png_bytes(image: Image.Image, compress_level: int = 6) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False, compress_level=compress_level)
    return buf.getvalue()


def _write_png(path: Path, image: Image.Image, compress_level: int = 6) -> None:
    _write_bytes(path, _png_bytes(image, compress_level))


def _write_jpeg(path: Path, rgb: np.ndarray) -> None:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(
        buf, format="JPEG", quality=90, subsampling=2, optimize=False, progressive=False
    )
    _write_bytes(path, buf.getvalue())


def _write_json(path: Path, obj: object) -> None:
    _write_bytes(path, json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode())


def _write_csv(path: Path, header: list[str] | None, rows: list[list[object]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if header is not None:
        writer.writerow(header)
    writer.writerows(rows)
    _write_bytes(path, buf.getvalue().encode())


def _write_zip(path: Path, members: list[tuple[str, bytes]]) -> None:
    """A zip with fixed timestamps and attributes (byte-identical for identical members)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in sorted(members):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            info.create_system = 3
            zf.writestr(info, data)
    _write_bytes(path, buf.getvalue())


_OGG_CRC_TABLE: list[int] | None = None


def _ogg_crc(data: bytes) -> int:
    global _OGG_CRC_TABLE
    if _OGG_CRC_TABLE is None:
        table = []
        for i in range(256):
            r = i << 24
            for _ in range(8):
                r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else (r << 1)
            table.append(r & 0xFFFFFFFF)
        _OGG_CRC_TABLE = table
    crc = 0
    t = _OGG_CRC_TABLE
    for b in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ t[((crc >> 24) & 0xFF) ^ b]
    return crc


def _fix_ogg_serial(data: bytes, serial: int) -> bytes:
    """Replace libsndfile's random Ogg stream serial number with ``serial`` (CRCs recomputed)."""
    out = bytearray()
    pos = 0
    while pos < len(data):
        if data[pos : pos + 4] != b"OggS":
            raise ValueError("not an Ogg stream")
        nseg = data[pos + 26]
        length = 27 + nseg + sum(data[pos + 27 : pos + 27 + nseg])
        page = bytearray(data[pos : pos + length])
        page[14:18] = serial.to_bytes(4, "little")
        page[22:26] = b"\0\0\0\0"
        page[22:26] = _ogg_crc(bytes(page)).to_bytes(4, "little")
        out += page
        pos += length
    return bytes(out)


def _audio_bytes(samples: np.ndarray, fmt: str, serial: int) -> bytes:
    buf = io.BytesIO()
    if fmt == "wav":
        sf.write(buf, samples, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    elif fmt == "flac":
        sf.write(buf, samples, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    elif fmt == "ogg":
        sf.write(buf, samples, SAMPLE_RATE, format="OGG", subtype="VORBIS")
        return _fix_ogg_serial(buf.getvalue(), serial)
    else:
        raise ValueError(f"unsupported audio format {fmt!r}")
    return buf.getvalue()


def _write_mp4(path: Path, samples: np.ndarray) -> None:
    """A tiny black video with ``samples`` (int16, 16 kHz) as its AAC track, bit-exact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    seconds = len(samples) / SAMPLE_RATE
    cmd = [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"color=c=black:s=64x64:r=4:d={seconds:g}",
        "-f", "s16le", "-ar", str(SAMPLE_RATE), "-ac", "1", "-i", "pipe:0",
        "-map", "0:v", "-map", "1:a", "-c:v", "mpeg4", "-q:v", "5", "-c:a", "aac", "-b:a", "64k",
        "-shortest", "-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact",
        "-map_metadata", "-1", "-threads", "1", str(path),
    ]  # fmt: skip
    proc = subprocess.run(cmd, input=samples.astype("<i2").tobytes(), capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed writing {path}: {proc.stderr.decode(errors='replace')}")


def tensor_pickle_bytes(tensor: torch.Tensor) -> bytes:
    """``pickle.dumps(tensor)``, made byte-reproducible.

    Plain pickling of a torch tensor embeds ``str(storage._cdata)`` (a memory address) as the
    storage key of the legacy ``torch.save`` blob that carries the data, so equal tensors pickle
    to different bytes. Here the key is replaced by ``"0"``; the result still loads with plain
    ``pickle.load`` into an equal tensor.
    """
    t = tensor.detach().cpu().contiguous().clone()

    class _Pickler(pickle.Pickler):
        def reducer_override(self, obj):
            if not isinstance(obj, torch.storage.TypedStorage | torch.UntypedStorage):
                return NotImplemented
            fn, (blob,) = obj.__reduce__()
            untyped = obj._untyped_storage if isinstance(obj, torch.storage.TypedStorage) else obj
            key = str(untyped._cdata).encode()
            old = b"X" + len(key).to_bytes(4, "little") + key
            new = b"X" + (1).to_bytes(4, "little") + b"0"
            cut = len(blob) - untyped.nbytes() - 8  # the raw data (count + bytes) stays as is
            head, tail = blob[:cut], blob[cut:]
            if head.count(old) != 2:
                raise RuntimeError("unexpected layout of torch's legacy tensor serialisation")
            return fn, (head.replace(old, new) + tail,)

    buf = io.BytesIO()
    _Pickler(buf, protocol=pickle.DEFAULT_PROTOCOL).dump(t)
    return buf.getvalue()


# --------------------------------------------------------------------------------------------
# Identifiers.
# --------------------------------------------------------------------------------------------

_YT_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_YT_LAST = "AEIMQUYcgkosw048"  # the 11th character carries only 4 bits


class _YouTubeIds:
    """Unique, realistic 11-character YouTube ids; every fourth one holds ``-`` or ``_``."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def new(self, rng: np.random.Generator) -> str:
        while True:
            chars = [_YT_ALPHABET[i] for i in rng.integers(0, 64, size=10)]
            chars.append(_YT_LAST[int(rng.integers(0, 16))])
            if len(self.used) % 4 == 0:
                chars[int(rng.integers(0, 10))] = "-" if rng.random() < 0.5 else "_"
            if len(self.used) % 9 == 0:
                chars[0] = "-"
            yid = "".join(chars)
            if yid not in self.used:
                self.used.add(yid)
                return yid


def _label_map_image(scene_labels: np.ndarray) -> Image.Image:
    return Image.fromarray(scene_labels.astype(np.uint8))


def _instances_of(scene: DrawnScene) -> list[tuple[int, object]]:
    return [(i + 1, obj) for i, obj in enumerate(scene.objects)]


# --------------------------------------------------------------------------------------------
# COCO + LVIS.
# --------------------------------------------------------------------------------------------

_COCO_SIZES = ((640, 480), (480, 640), (640, 427), (612, 612), (640, 360), (500, 375))
_OI_SIZES = ((1024, 768), (1024, 683), (768, 1024), (1024, 576), (800, 600))
_COCO_LICENSES = [
    {"url": "http://creativecommons.org/licenses/by-nc-sa/2.0/", "id": 1,
     "name": "Attribution-NonCommercial-ShareAlike License"},
    {"url": "http://creativecommons.org/licenses/by-nc/2.0/", "id": 2,
     "name": "Attribution-NonCommercial License"},
    {"url": "http://creativecommons.org/licenses/by-nc-nd/2.0/", "id": 3,
     "name": "Attribution-NonCommercial-NoDerivs License"},
    {"url": "http://creativecommons.org/licenses/by/2.0/", "id": 4, "name": "Attribution License"},
    {"url": "http://creativecommons.org/licenses/by-sa/2.0/", "id": 5,
     "name": "Attribution-ShareAlike License"},
    {"url": "http://creativecommons.org/licenses/by-nd/2.0/", "id": 6,
     "name": "Attribution-NoDerivs License"},
    {"url": "http://flickr.com/commons/usage/", "id": 7, "name": "No known copyright restrictions"},
    {"url": "http://www.usa.gov/copyright.shtml", "id": 8, "name": "United States Government Work"},
]  # fmt: skip


def _scaled(size: tuple[int, int], scale: float) -> tuple[int, int]:
    return max(64, int(round(size[0] * scale))), max(64, int(round(size[1] * scale)))


def _draw_picture(
    rng: np.random.Generator,
    *,
    width: int,
    height: int,
    pool: list[str],
    extra_tag: str | None = None,
    occluder: bool = False,
    flock: int = 0,
) -> DrawnScene:
    """A picture with 2-4 distinct categories from ``pool`` (retried until >= 2 are drawn)."""
    for _ in range(8):
        n = int(rng.integers(2, 5))
        cats = [str(c) for c in rng.choice(pool, size=min(n, len(pool)), replace=False)]
        if flock:
            cats = [c for c in cats if c != "bird"] or [c for c in pool if c != "bird"][:2]
        tags: list[str | None] = [None] * len(cats)
        if extra_tag is not None:
            cats.append(cats[0])
            tags.append(extra_tag)
        scene = compose_picture(
            rng,
            height=height,
            width=width,
            categories=cats,
            tags=tags,
            occluder=occluder,
            flock=flock,
        )
        distinct = {o.category for o in scene.objects}
        if len(distinct) >= 2:
            return scene
    raise RuntimeError("could not place two objects in a picture; enlarge the picture")


def _polygons_json(polygons) -> list[list[float]]:
    return [[round(float(v), 2) for v in poly] for poly in polygons]


def _write_coco_and_lvis(out: Path, seed: int, size: CorpusSize, summary: CorpusSummary) -> None:
    rng = _rng(seed, "coco-plan")
    plan: list[tuple[str | None, str]] = [("train", "train2017")] * size.lvis_train_images
    n_val_from_val = (size.lvis_val_images + 1) // 2
    plan += [("val", "val2017")] * n_val_from_val
    plan += [("val", "train2017")] * (size.lvis_val_images - n_val_from_val)
    plan += [(None, "train2017")] * size.coco_only_images
    ids = (rng.choice(581_929, size=len(plan), replace=False) + 1).tolist()
    keys = [c.key for c in CATEGORIES]

    lvis_images: dict[str, list[dict]] = {"train": [], "val": []}
    lvis_anns: dict[str, list[dict]] = {"train": [], "val": []}
    coco_images: dict[str, list[dict]] = {"train2017": [], "val2017": []}
    coco_anns: dict[str, list[dict]] = {"train2017": [], "val2017": []}
    lvis_ann_id = 1
    coco_ann_id = 100_001
    for index, ((lvis_split, folder), image_id) in enumerate(zip(plan, ids, strict=True)):
        r = _rng(seed, "coco", index)
        w, h = _scaled(_COCO_SIZES[int(r.integers(len(_COCO_SIZES)))], size.image_scale)
        flock = int(r.integers(4, 8)) if index % 25 == 1 else 0
        unannotated = lvis_split is not None and (index % 25 == 2 or r.random() < 0.1)
        scene = _draw_picture(
            r,
            width=w,
            height=h,
            pool=keys,
            extra_tag="lvis-unannotated" if unannotated and not flock else None,
            occluder=bool(r.random() < 0.2),
            flock=flock,
        )
        rel = f"coco/{folder}/{image_id:012d}.jpg"
        _write_jpeg(out / rel, scene.image)
        label_rel = f"truth/labelmaps/coco/{folder}/{image_id:012d}.png"
        _write_png(out / label_rel, _label_map_image(scene.label_map()))

        present = {o.category for o in scene.objects}
        not_exhaustive = sorted({o.category for o in scene.objects if o.tag == "lvis-unannotated"})
        absent = [k for k in keys if k not in present]
        n_neg = min(len(absent), int(r.integers(1, 4)))
        negatives = sorted(str(k) for k in r.choice(absent, size=n_neg, replace=False))
        date = (
            f"201{int(r.integers(3, 5))}-{int(r.integers(1, 13)):02d}-{int(r.integers(1, 29)):02d}"
            f" {int(r.integers(0, 24)):02d}:{int(r.integers(0, 60)):02d}:"
            f"{int(r.integers(0, 60)):02d}"
        )
        licence = int(r.integers(1, 9))
        flickr = (
            f"http://farm{int(r.integers(1, 10))}.staticflickr.com/{int(r.integers(1000, 9999))}/"
            f"{int(r.integers(10**9, 10**10))}_{r.bytes(5).hex()}_z.jpg"
        )
        coco_url = COCO_URL.format(folder=folder, image_id=image_id)

        # COCO annotations: every instance of every COCO category (exhaustive); a flock of
        # birds is one crowd annotation (uncompressed RLE), as COCO does for groups.
        coco_ids: dict[int, int] = {}
        flock_labels = [i for i, o in _instances_of(scene) if o.group is not None]
        for label, obj in _instances_of(scene):
            cat = category_by_key(obj.category)
            if cat.coco_id is None or (obj.group is not None and len(flock_labels) > 1):
                continue
            coco_anns[folder].append(
                {
                    "segmentation": _polygons_json(obj.polygons),
                    "area": float(obj.area),
                    "iscrowd": 0,
                    "image_id": image_id,
                    "bbox": [round(v, 2) for v in obj.bbox],
                    "category_id": cat.coco_id,
                    "id": coco_ann_id,
                }
            )
            coco_ids[label] = coco_ann_id
            coco_ann_id += 1
        if len(flock_labels) > 1:
            union = np.zeros((h, w), dtype=bool)
            for label in flock_labels:
                union |= scene.objects[label - 1].mask
            crowd_id = 900_100_000_000 + image_id
            coco_anns[folder].append(
                {
                    "segmentation": {"counts": _uncompressed_rle(union), "size": [h, w]},
                    "area": float(union.sum()),
                    "iscrowd": 1,
                    "image_id": image_id,
                    "bbox": [round(v, 2) for v in _mask_bbox(union)],
                    "category_id": category_by_key("bird").coco_id,
                    "id": crowd_id,
                }
            )
            for label in flock_labels:
                coco_ids[label] = crowd_id
        coco_images[folder].append(
            {
                "license": licence,
                "file_name": f"{image_id:012d}.jpg",
                "coco_url": coco_url,
                "height": h,
                "width": w,
                "date_captured": date,
                "flickr_url": flickr,
                "id": image_id,
            }
        )

        lvis_ids: dict[int, int] = {}
        if lvis_split is not None:
            for label, obj in _instances_of(scene):
                if obj.tag == "lvis-unannotated":
                    continue
                cat = category_by_key(obj.category)
                lvis_anns[lvis_split].append(
                    {
                        "id": lvis_ann_id,
                        "image_id": image_id,
                        "category_id": cat.lvis_id,
                        "segmentation": _polygons_json(obj.polygons),
                        "bbox": [round(v, 2) for v in obj.bbox],
                        "area": float(obj.area),
                    }
                )
                lvis_ids[label] = lvis_ann_id
                lvis_ann_id += 1
            lvis_images[lvis_split].append(
                {
                    "id": image_id,
                    "width": w,
                    "height": h,
                    "license": licence,
                    "flickr_url": flickr,
                    "coco_url": coco_url,
                    "date_captured": date,
                    "neg_category_ids": sorted(category_by_key(k).lvis_id for k in negatives),
                    "not_exhaustive_category_ids": sorted(
                        category_by_key(k).lvis_id for k in not_exhaustive
                    ),
                }
            )

        instances = tuple(
            DrawnInstance(
                label=label,
                category=obj.category,
                area=obj.area,
                bbox=obj.bbox,
                lvis_annotation_id=lvis_ids.get(label),
                coco_annotation_id=coco_ids.get(label),
                crowd_group=obj.group,
            )
            for label, obj in _instances_of(scene)
        )
        summary.pictures.append(
            CorpusPicture(
                source="coco",
                image_id=str(image_id),
                split=folder,
                path=rel,
                width=w,
                height=h,
                label_map=label_rel,
                instances=instances,
                lvis_split=lvis_split,
                negative_categories=tuple(negatives) if lvis_split else (),
                not_exhaustive_categories=tuple(not_exhaustive) if lvis_split else (),
            )
        )

    # LVIS counts come from the train split for both files, as in LVIS v1.
    image_count: dict[int, set[int]] = {}
    instance_count: dict[int, int] = {}
    for ann in lvis_anns["train"]:
        image_count.setdefault(ann["category_id"], set()).add(ann["image_id"])
        instance_count[ann["category_id"]] = instance_count.get(ann["category_id"], 0) + 1
    lvis_categories = [
        {
            "id": c.lvis_id,
            "name": c.lvis_name,
            "synonyms": list(c.lvis_synonyms),
            "synset": c.lvis_synset,
            "frequency": c.lvis_frequency,
            "def": c.lvis_def,
            "image_count": len(image_count.get(c.lvis_id, ())),
            "instance_count": instance_count.get(c.lvis_id, 0),
        }
        for c in sorted(CATEGORIES, key=lambda c: c.lvis_id)
    ]
    for split in ("train", "val"):
        rel = f"lvis/lvis_v1_{split}.json"
        _write_json(
            out / rel,
            {
                "info": {
                    "description": "LVIS v1 format; avs-synth sample corpus (synthetic pictures)",
                    "url": "https://www.lvisdataset.org",
                    "version": "1.0",
                    "year": 2020,
                    "contributor": "avs-synth sample-corpus",
                    "date_created": "2020-01-30 00:00:00",
                },
                "licenses": _COCO_LICENSES,
                "images": lvis_images[split],
                "annotations": lvis_anns[split],
                "categories": lvis_categories,
            },
        )
        summary.files[f"lvis_{split}"] = rel
    coco_categories = [
        {"supercategory": c.coco_supercategory, "id": c.coco_id, "name": c.coco_name}
        for c in sorted(CATEGORIES, key=lambda c: c.coco_id or 0)
        if c.coco_id is not None
    ]
    for folder in ("train2017", "val2017"):
        rel = f"coco/annotations/instances_{folder}.json"
        _write_json(
            out / rel,
            {
                "info": {
                    "description": "COCO 2017 format; avs-synth sample corpus (synthetic pictures)",
                    "url": "http://cocodataset.org",
                    "version": "1.0",
                    "year": 2017,
                    "contributor": "avs-synth sample-corpus",
                    "date_created": "2017/09/01",
                },
                "licenses": _COCO_LICENSES,
                "images": coco_images[folder],
                "annotations": coco_anns[folder],
                "categories": coco_categories,
            },
        )
        summary.files[f"coco_{folder}"] = rel
        summary.files[f"coco_{folder}_images"] = f"coco/{folder}"


def _uncompressed_rle(mask: np.ndarray) -> list[int]:
    """COCO's uncompressed RLE of a mask (column-major runs, starting with zeros)."""
    flat = np.asfortranarray(mask.astype(np.uint8)).ravel(order="F")
    changes = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat[0] == 1:
        runs = [0, *runs]
    return [int(x) for x in runs]


def _mask_bbox(mask: np.ndarray) -> tuple[float, float, float, float]:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return tuple(float(v) for v in mask_utils.toBbox(rle).tolist())  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------
# Open Images V7.
# --------------------------------------------------------------------------------------------


def _mid_file_part(mid: str) -> str:
    return mid.replace("/", "")


def _write_openimages(out: Path, seed: int, size: CorpusSize, summary: CorpusSummary) -> None:
    pool = [c.key for c in CATEGORIES if c.openimages_mid is not None]
    with_mid = [c for c in CATEGORIES if c.openimages_mid is not None]
    used_ids: set[str] = set()
    root = out / "openimages"
    for split, count in (
        ("train", size.openimages_train_images),
        ("validation", size.openimages_val_images),
    ):
        seg_rows: list[list[object]] = []
        label_rows: list[list[object]] = []
        zips: dict[str, list[tuple[str, bytes]]] = {c: [] for c in "0123456789abcdef"}
        for index in range(count):
            r = _rng(seed, f"openimages-{split}", index)
            while True:
                image_id = r.bytes(8).hex()
                if image_id not in used_ids:
                    used_ids.add(image_id)
                    break
            w, h = _scaled(_OI_SIZES[int(r.integers(len(_OI_SIZES)))], size.image_scale)
            scene = _draw_picture(r, width=w, height=h, pool=pool, occluder=bool(r.random() < 0.15))
            rel = f"openimages/{split}/{image_id}.jpg"
            _write_jpeg(out / rel, scene.image)
            label_rel = f"truth/labelmaps/openimages/{split}/{image_id}.png"
            _write_png(out / label_rel, _label_map_image(scene.label_map()))
            scale = float(r.choice([1.25, 1.5, 2.0]))  # masks never match the picture size
            mw, mh = max(8, int(round(w * scale))), max(8, int(round(h * scale)))
            instances = []
            zip_rel = f"openimages/{split}-masks/{split}-masks-{image_id[0]}.zip"
            for label, obj in _instances_of(scene):
                cat = category_by_key(obj.category)
                member = None
                if cat.openimages_segmentable and cat.openimages_mid is not None:
                    box_id = r.bytes(4).hex()
                    member = f"{image_id}_{_mid_file_part(cat.openimages_mid)}_{box_id}.png"
                    polys = scale_polygons(obj.polygons, mw / w, mh / h)
                    mask = rasterize(polys, mh, mw)
                    zips[image_id[0]].append((member, _png_bytes(Image.fromarray(mask))))
                    x, y, bw, bh = obj.bbox
                    seg_rows.append(
                        [
                            member,
                            image_id,
                            cat.openimages_mid,
                            box_id,
                            f"{x / w:.6f}",
                            f"{(x + bw) / w:.6f}",
                            f"{y / h:.6f}",
                            f"{(y + bh) / h:.6f}",
                            f"{r.uniform(0.6, 0.98):.5f}",
                            _clicks(r, obj.mask, obj.bbox, w, h),
                        ]
                    )
                instances.append(
                    DrawnInstance(
                        label=label,
                        category=obj.category,
                        area=obj.area,
                        bbox=obj.bbox,
                        openimages_mask=member,
                        openimages_zip=zip_rel if member else None,
                    )
                )
            present = {o.category for o in scene.objects}
            for c in with_mid:
                if c.key in present:
                    source = "verification" if r.random() < 0.7 else "crowdsource-verification"
                    label_rows.append([image_id, source, c.openimages_mid, 1])
            absent = [c for c in with_mid if c.key not in present]
            n_neg = min(len(absent), int(r.integers(1, 4)))
            negatives = [absent[int(i)] for i in r.choice(len(absent), size=n_neg, replace=False)]
            for c in negatives:
                label_rows.append([image_id, "verification", c.openimages_mid, 0])
            summary.pictures.append(
                CorpusPicture(
                    source="openimages",
                    image_id=image_id,
                    split=split,
                    path=rel,
                    width=w,
                    height=h,
                    label_map=label_rel,
                    instances=tuple(instances),
                    negative_categories=tuple(sorted(c.key for c in negatives)),
                    mask_size=(mw, mh),
                )
            )
        seg_rows.sort(key=lambda row: (row[1], row[2], row[3]))
        label_rows.sort(key=lambda row: (row[0], row[2]))
        seg_rel = f"openimages/{split}-annotations-object-segmentation.csv"
        _write_csv(
            out / seg_rel,
            ["MaskPath", "ImageID", "LabelName", "BoxID", "BoxXMin", "BoxXMax", "BoxYMin",
             "BoxYMax", "PredictedIoU", "Clicks"],
            seg_rows,
        )  # fmt: skip
        labels_rel = f"openimages/{split}-annotations-human-imagelabels.csv"
        _write_csv(out / labels_rel, ["ImageID", "Source", "LabelName", "Confidence"], label_rows)
        for hexchar, members in zips.items():
            _write_zip(root / f"{split}-masks" / f"{split}-masks-{hexchar}.zip", members)
        summary.files[f"openimages_{split}_segmentation"] = seg_rel
        summary.files[f"openimages_{split}_imagelabels"] = labels_rel
        summary.files[f"openimages_{split}_masks"] = f"openimages/{split}-masks"
        summary.files[f"openimages_{split}_images"] = f"openimages/{split}"
    _write_csv(
        root / "oidv7-class-descriptions.csv",
        ["LabelName", "DisplayName"],
        sorted([c.openimages_mid, c.openimages_name] for c in with_mid),
    )
    seg_mids = sorted(c.openimages_mid for c in with_mid if c.openimages_segmentable)
    _write_bytes(root / "classes-segmentation.txt", ("\n".join(seg_mids) + "\n").encode())
    summary.files["openimages_class_descriptions"] = "openimages/oidv7-class-descriptions.csv"
    summary.files["openimages_segmentation_classes"] = "openimages/classes-segmentation.txt"


def _clicks(
    r: np.random.Generator,
    mask: np.ndarray,
    bbox: tuple[float, float, float, float],
    w: int,
    h: int,
) -> str:
    """Open Images-style annotator clicks: ``x y 1`` inside the mask, ``x y 0`` outside."""
    x0, y0, bw, bh = bbox
    ys, xs = np.nonzero(mask)
    clicks = []
    for _ in range(int(r.integers(2, 5))):
        i = int(r.integers(len(xs)))
        clicks.append(f"{(xs[i] + 0.5) / w:.5f} {(ys[i] + 0.5) / h:.5f} 1")
    for _ in range(int(r.integers(0, 3))):
        cx = int(np.clip(x0 + r.uniform(0, bw), 0, w - 1))
        cy = int(np.clip(y0 + r.uniform(0, bh), 0, h - 1))
        if not mask[cy, cx]:
            clicks.append(f"{(cx + 0.5) / w:.5f} {(cy + 0.5) / h:.5f} 0")
    return ";".join(clicks)


# --------------------------------------------------------------------------------------------
# VGGSound.
# --------------------------------------------------------------------------------------------


def _write_vggsound(
    out: Path,
    seed: int,
    size: CorpusSize,
    summary: CorpusSummary,
    yt_ids: _YouTubeIds,
    mp4: bool,
) -> None:
    formats = ("wav", "flac", "wav", "ogg", "wav", "flac")
    patterns = ("{y}_{s:06d}", "{y}_{s}", "{y}_{s}_{e}")
    rows: list[list[object]] = []
    have_ffmpeg = mp4 and shutil.which("ffmpeg") is not None
    if mp4 and not have_ffmpeg:
        log.warning("ffmpeg not found: the sample corpus gets no mp4 clip")
    counter = 0
    audio_cats = CATEGORIES[: size.vggsound_categories] if size.vggsound_categories else CATEGORIES
    for split_index, split in enumerate(("train", "test")):
        for cat_index, cat in enumerate(audio_cats):
            for k in range(size.clips_per_class):
                r = _rng(seed, f"vggsound-{split}", cat_index, k)
                yid = yt_ids.new(r)
                start = int(r.choice([0, 0, 10, 30, int(r.integers(1, 300))]))
                silent = bool(r.random() < 0.3)
                missing = k == 1 and cat_index == 3 + split_index
                fmt: str | None = formats[counter % len(formats)]
                if have_ffmpeg and k == 0 and cat_index == 5 + split_index:
                    fmt = "mp4"
                stem = patterns[counter % len(patterns)].format(y=yid, s=start, e=start + 10)
                counter += 1
                samples = to_int16(
                    synthesize_clip(
                        cat.vggsound_label, r, duration_s=CLIP_SECONDS, silent_stretch=silent
                    )
                )
                rel: str | None = None
                if missing:
                    fmt = None
                else:
                    rel = f"vggsound/clips/{stem}.{fmt}"
                    if fmt == "mp4":
                        _write_mp4(out / rel, samples)
                        summary.mp4_written = True
                    else:
                        serial = int(r.integers(1, 2**31))
                        _write_bytes(out / rel, _audio_bytes(samples, fmt, serial))
                rows.append([yid, start, cat.vggsound_label, split])
                summary.clips.append(
                    CorpusClip(
                        youtube_id=yid,
                        start_seconds=start,
                        label=cat.vggsound_label,
                        category=cat.key,
                        split=split,
                        path=rel,
                        audio_format=fmt,
                        silent_stretch=silent,
                    )
                )
    rows.sort(key=lambda row: (str(row[0]), int(row[1])))
    _write_csv(out / "vggsound" / "vggsound.csv", None, rows)
    summary.files["vggsound_csv"] = "vggsound/vggsound.csv"
    summary.files["vggsound_clips"] = "vggsound/clips"


# --------------------------------------------------------------------------------------------
# AVSBench S4 and MS3.
# --------------------------------------------------------------------------------------------


def _avs_scene(
    r: np.random.Generator, sounding: list[str], pool: list[str]
) -> tuple[np.ndarray, list]:
    """Background and placed objects (sounding ones tagged) for a 5-frame 224x224 clip."""
    others = [c for c in pool if c not in sounding]
    for _ in range(12):
        n_other = int(r.integers(1, 4)) if len(sounding) == 1 else int(r.integers(1, 3))
        silent = [str(c) for c in r.choice(others, size=n_other, replace=False)]
        cats = list(sounding) + silent
        tags = [f"sounding-{i}" for i in range(len(sounding))] + [None] * len(silent)
        background = draw_background(r, AVS_SIZE, AVS_SIZE)
        objects = place_objects(
            r,
            height=AVS_SIZE,
            width=AVS_SIZE,
            categories=cats,
            tags=tags,
            size_range=(0.3, 0.5) if len(cats) <= 3 else (0.26, 0.4),
            num_frames=AVS_FRAMES,
            max_shift=3.0,
            gap=3,
        )
        placed = [o.tag for o in objects]
        if all(f"sounding-{i}" in placed for i in range(len(sounding))) and len(objects) >= 2:
            return background, objects
    raise RuntimeError(f"could not lay out an AVSBench frame for {sounding}")


def _mix_seconds(clips: list[np.ndarray], seconds: list[tuple[int, ...]]) -> np.ndarray:
    """Sum of 5-s clips, each gated (20 ms ramps) to the seconds in which it sounds."""
    n = AVS_SECONDS * SAMPLE_RATE
    out = np.zeros(n, dtype=np.float64)
    ramp = SAMPLE_RATE // 50
    for clip, active in zip(clips, seconds, strict=True):
        gate = np.zeros(n)
        for s in active:
            gate[(s - 1) * SAMPLE_RATE : s * SAMPLE_RATE] = 1.0
        kernel = np.ones(ramp) / ramp
        gate = np.convolve(gate, kernel, mode="same")
        out += clip.astype(np.float64) * gate
    peak = np.max(np.abs(out)) + 1e-9
    return (out / peak * 0.8).astype(np.float32)


def _write_avs_video(
    out: Path,
    *,
    r: np.random.Generator,
    subset: str,
    name: str,
    split: str,
    s4_category: str | None,
    sounding: list[str],
    pool: list[str],
    frame_rel: list[str],
    mask_rel: list[str | None],
    wav_rel: str,
    pkl_rel: str,
    start: int,
) -> CorpusVideo:
    background, objects = _avs_scene(r, sounding, pool)
    if subset == "s4":
        seconds = [tuple(range(1, AVS_FRAMES + 1))]
    else:
        seconds = [tuple(range(1, AVS_FRAMES + 1))]
        for _ in sounding[1:]:
            length = int(r.integers(2, AVS_FRAMES + 1))
            first = int(r.integers(1, AVS_FRAMES - length + 2))
            seconds.append(tuple(range(first, first + length)))
    tag_seconds = {f"sounding-{i}": s for i, s in enumerate(seconds)}
    label_rels = []
    instances: list[DrawnInstance] = []
    for k in range(AVS_FRAMES):
        scene = render_frame(background, objects, frame=k, polygons=False, noise_rng=r)
        _write_png(out / frame_rel[k], Image.fromarray(scene.image), compress_level=1)
        lm_rel = f"truth/labelmaps/avsbench/{subset}/{split}/{name}/{name}_{k + 1}.png"
        _write_png(out / lm_rel, _label_map_image(scene.label_map()))
        label_rels.append(lm_rel)
        gt = np.zeros((AVS_SIZE, AVS_SIZE), dtype=bool)
        for obj in scene.objects:
            if obj.tag in tag_seconds and (k + 1) in tag_seconds[obj.tag]:
                gt |= obj.mask
        if mask_rel[k] is not None:
            if subset == "s4":
                img = Image.fromarray((gt * 255).astype(np.uint8))
            else:
                img = Image.frombytes("P", (AVS_SIZE, AVS_SIZE), gt.astype(np.uint8).tobytes())
                img.putpalette([0, 0, 0, 128, 0, 0] + [0, 0, 0] * 254)
            _write_png(out / mask_rel[k], img)
        if k == 0:
            instances = [
                DrawnInstance(
                    label=i + 1,
                    category=obj.category,
                    area=obj.area,
                    bbox=obj.bbox,
                    sounding_seconds=tag_seconds.get(obj.tag or "", ()),
                )
                for i, obj in enumerate(scene.objects)
            ]
    clips = [
        synthesize_clip(category_by_key(c).vggsound_label, r, duration_s=AVS_SECONDS)
        for c in sounding
    ]
    wave = to_int16(clips[0] if subset == "s4" else _mix_seconds(clips, seconds))
    _write_bytes(out / wav_rel, _audio_bytes(wave, "wav", 0))
    examples = waveform_to_examples(wave, SAMPLE_RATE, num_examples=AVS_FRAMES)  # [5, 1, 96, 64]
    _write_bytes(out / pkl_rel, tensor_pickle_bytes(examples.float()))
    return CorpusVideo(
        subset=subset,
        name=name,
        split=split,
        category=s4_category,
        sounding=tuple(sounding),
        frames=tuple(frame_rel),
        masks=tuple(mask_rel),
        label_maps=tuple(label_rels),
        wav=wav_rel,
        log_mel=pkl_rel,
        instances=tuple(instances),
        start=start,
    )


def _write_avsbench(
    out: Path, seed: int, size: CorpusSize, summary: CorpusSummary, yt_ids: _YouTubeIds
) -> None:
    keys = [c.key for c in CATEGORIES]
    s4_root = "avsbench/Single-source/s4_data"
    meta: list[list[object]] = []
    s4_cats: list[CorpusCategory] = [c for c in CATEGORIES if c.s4_category is not None]
    s4_cats = s4_cats[: size.s4_categories] if size.s4_categories is not None else s4_cats
    for split_index, split in enumerate(S4_SPLITS):
        for cat_index, cat in enumerate(s4_cats):
            for k in range(size.s4_videos_per_category):
                r = _rng(seed, "s4", split_index, cat_index, k)
                name = yt_ids.new(r)
                start = int(r.choice([0, 0, 0, 0, 5, 2, 1, 3, 4]))
                c4 = cat.s4_category
                assert c4 is not None
                base = f"{split}/{c4}/{name}"
                frames = [f"{s4_root}/visual_frames/{base}/{name}_{j}.png" for j in range(1, 6)]
                masks: list[str | None] = [
                    f"{s4_root}/gt_masks/{base}/{name}_{j}.png"
                    if (split != "train" or j == 1)
                    else None
                    for j in range(1, 6)
                ]
                video = _write_avs_video(
                    out,
                    r=r,
                    subset="s4",
                    name=name,
                    split=split,
                    s4_category=c4,
                    sounding=[cat.key],
                    pool=keys,
                    frame_rel=frames,
                    mask_rel=masks,
                    wav_rel=f"{s4_root}/audio_wav/{split}/{c4}/{name}.wav",
                    pkl_rel=f"{s4_root}/audio_log_mel/{split}/{c4}/{name}.pkl",
                    start=start,
                )
                summary.videos.append(video)
                meta.append([name, start, c4, split])
    meta.sort(key=lambda row: (str(row[2]), str(row[0])))
    _write_csv(
        out / "avsbench/Single-source/s4_meta_data.csv",
        ["name", "start", "category", "split"],
        meta,
    )
    summary.files["s4_meta"] = "avsbench/Single-source/s4_meta_data.csv"
    summary.files["s4_data"] = s4_root

    ms3_root = "avsbench/Multi-sources/ms3_data"
    ms3_meta: list[list[object]] = []
    for split_index, split in enumerate(S4_SPLITS):
        for k in range(size.ms3_videos_per_split):
            r = _rng(seed, "ms3", split_index, k)
            name = yt_ids.new(r)
            sounding = [str(c) for c in r.choice(keys, size=2, replace=False)]
            frames = [f"{ms3_root}/visual_frames/{name}/{name}.mp4_{j}.png" for j in range(1, 6)]
            masks = [f"{ms3_root}/gt_masks/{split}/{name}/{name}_{j}.png" for j in range(1, 6)]
            video = _write_avs_video(
                out,
                r=r,
                subset="ms3",
                name=name,
                split=split,
                s4_category=None,
                sounding=sounding,
                pool=keys,
                frame_rel=frames,
                mask_rel=list(masks),
                wav_rel=f"{ms3_root}/audio_wav/{split}/{name}.wav",
                pkl_rel=f"{ms3_root}/audio_log_mel/{split}/{name}.pkl",
                start=0,
            )
            summary.videos.append(video)
            ms3_meta.append([name, split])
    _write_csv(out / "avsbench/Multi-sources/ms3_meta_data.csv", ["video_id", "split"], ms3_meta)
    summary.files["ms3_meta"] = "avsbench/Multi-sources/ms3_meta_data.csv"
    summary.files["ms3_data"] = ms3_root


# --------------------------------------------------------------------------------------------
# README and entry point.
# --------------------------------------------------------------------------------------------


def _readme(summary: CorpusSummary) -> str:
    lines = [
        "# avs-synth sample corpus",
        "",
        "Synthetic pictures and sounds in the real on-disk formats of LVIS v1, COCO 2017, Open",
        "Images V7 (segmentation), VGGSound and AVSBench (S4, MS3), written by",
        f"`avs-synth sample-corpus` with seed {summary.seed}"
        + (f" and size `{summary.size_name}`." if summary.size_name else "."),
        "Category ids and names are the real ones; the pictures and sounds are not real data.",
        "`corpus.json` lists every picture, clip and video with its drawn ground truth;",
        "`truth/` holds label maps (0 = background, i = the i-th listed object).",
        "",
        "## Counts",
        "",
        "| what | count |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v} |" for k, v in summary.counts().items()]
    lines += [
        "",
        "## Categories",
        "",
        "| key | LVIS id / name | COCO id / name | Open Images MID / name | VGGSound label | S4 |",
        "|---|---|---|---|---|---|",
    ]
    for c in CATEGORIES:
        coco = f"{c.coco_id} / {c.coco_name}" if c.coco_id is not None else "-"
        oi = f"{c.openimages_mid} / {c.openimages_name}" if c.openimages_mid else "-"
        if c.openimages_mid and not c.openimages_segmentable:
            oi += " (image labels only)"
        lines.append(
            f"| {c.key} | {c.lvis_id} / {c.lvis_name} | {coco} | {oi} | {c.vggsound_label} |"
            f" {c.s4_category or '-'} |"
        )
    lines += ["", "## Files", ""]
    lines += [f"- `{k}`: `{v}`" for k, v in sorted(summary.files.items())]
    return "\n".join(lines) + "\n"


def resolve_size(size: CorpusSize | str) -> tuple[str | None, CorpusSize]:
    """A preset name or a :class:`CorpusSize` → (name or None, size)."""
    if isinstance(size, CorpusSize):
        return None, size
    if size not in SIZE_PRESETS:
        raise ValueError(f"unknown corpus size {size!r}; choose one of {', '.join(SIZE_PRESETS)}")
    return size, SIZE_PRESETS[size]


def write_sample_corpus(
    out: Path,
    *,
    seed: int = 0,
    size: CorpusSize | str = "small",
    overwrite: bool = False,
    mp4: bool = True,
) -> CorpusSummary:
    """Write the sample corpus under ``out`` and return what was written.

    Args:
        out: the corpus root (created if needed).
        seed: every file is a pure function of the seed and the size.
        size: a preset name (``tiny``, ``small``, ``medium``) or a :class:`CorpusSize`.
        overwrite: replace a corpus already there (only the corpus's own top-level entries are
            removed); without it an existing corpus is an error.
        mp4: write an mp4 clip per VGGSound split (needs ffmpeg; skipped with a warning if
            ffmpeg is missing).
    """
    size_name, corpus_size = resolve_size(size)
    out = Path(out)
    existing = [name for name in MANAGED if (out / name).exists()]
    if existing:
        if not overwrite:
            raise FileExistsError(
                f"{out} already holds a corpus ({', '.join(existing)}); pass overwrite=True"
                " (--overwrite on the command line)"
            )
        for name in existing:
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink()
    out.mkdir(parents=True, exist_ok=True)
    summary = CorpusSummary(root=out, seed=seed, size_name=size_name, size=corpus_size)
    yt_ids = _YouTubeIds()
    stages = (
        ("COCO + LVIS", lambda: _write_coco_and_lvis(out, seed, corpus_size, summary)),
        ("Open Images", lambda: _write_openimages(out, seed, corpus_size, summary)),
        ("VGGSound", lambda: _write_vggsound(out, seed, corpus_size, summary, yt_ids, mp4)),
        ("AVSBench", lambda: _write_avsbench(out, seed, corpus_size, summary, yt_ids)),
    )
    for title, stage in stages:
        t0 = time.perf_counter()
        stage()
        log.info("sample corpus: %s written in %.1f s", title, time.perf_counter() - t0)
    summary.files["corpus_json"] = "corpus.json"
    summary.files["readme"] = "README.md"
    _write_bytes(out / "corpus.json", json.dumps(summary.to_json(), indent=1).encode())
    _write_bytes(out / "README.md", _readme(summary).encode())
    log.info("sample corpus at %s: %s", out, summary.counts())
    return summary
