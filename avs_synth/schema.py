"""The shard sample schema: keys, encodings and metadata, shared by the writer and the loader.

A triplet sample is five tar members with one key (WebDataset's grouping: the key is the member
name up to its first dot, so keys never contain a dot)::

    {key}.jpg        the picture: the source's original JPEG bytes (re-encoded only when the
                     build resizes it or the original is not a JPEG); decode without EXIF
                     rotation, masks are in the file's raw pixel grid
    {key}.mask.png   the sounding mask: a 1-bit PNG at the stored image's resolution
    {key}.classes.png  builds with ``--class-masks`` only: the class-indexed mask, an 8-bit (16-bit
                     past 255 classes) PNG at the same resolution, each sounding pixel holding its
                     audio class's index in the manifest's ``audio_classes`` plus one, 0 elsewhere
    {key}.flac       the audio window: mono (stereo for a panned multi-source mix), 16 kHz,
                     16-bit FLAC
    {key}.json       :class:`TripletMeta` (UTF-8 JSON, sorted keys)

A clip (builds with ``--frames N``, N > 1: AVSBench's 5-frame input shape) keeps the key and
numbers its frames ``t = 0 .. N-1`` in the member names, frame by frame, then one audio member::

    {key}.{t}.jpg        frame t: the crop ``meta.clip.boxes[t]`` of the one source picture,
                         resized to the clip's frame size (every frame has the same size)
    {key}.{t}.mask.png   frame t's sounding mask (empty while the source is silent)
    {key}.{t}.classes.png  ``--class-masks`` builds only
    {key}.flac           N consecutive audio stretches of ``meta.clip.frame_s`` seconds, stretch t
                         going with frame t (AVSBench: audio second t with frame t)
    {key}.json           :class:`TripletMeta` with :attr:`TripletMeta.clip` set

WebDataset groups them under one key (the key ends at the first dot), and a decoder choosing by
the last extension reads ``0.jpg`` as a JPEG. Frame numbers are single digits (at most
:data:`MAX_FRAMES` frames), so the lexical order of the member names is the frame order.

An audio-bank sample (``bank-*.tar``, one audio class per shard) is ``{key}.flac`` and
``{key}.json`` (:class:`BankWindowMeta`).

Optional metadata fields (:data:`OPTIONAL_META_FIELDS`) are written only when a build option sets
them, so a build without the newer options writes exactly the bytes it wrote before they existed,
and shards written before them still decode (the fields take their defaults).

Members are written in :data:`TRIPLET_MEMBERS` / :data:`BANK_MEMBERS` order. Every encoder here
has its decoder next to it; the training loader imports this module, never re-implements it.

Why this module is long: the writer and the reader share one schema, so every member's encoder
and decoder and every metadata record (still, clip, source, bank window) are defined here once.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import soundfile as sf
from PIL import Image

from avs_synth.errors import DataFormatError
from avs_synth.flac import encode_flac

SCHEMA_VERSION = 1

SAMPLE_RATE = 16_000
"""Sample rate of every stored audio window (VGGish's)."""

KEY = "__key__"
IMAGE = "jpg"
MASK = "mask.png"
AUDIO = "flac"
META = "json"

CLASS_MASK = "classes.png"

TRIPLET_MEMBERS: tuple[str, ...] = (IMAGE, MASK, AUDIO, META)
CLASS_TRIPLET_MEMBERS: tuple[str, ...] = (IMAGE, MASK, CLASS_MASK, AUDIO, META)
"""The members of a triplet of a ``--class-masks`` build."""
BANK_MEMBERS: tuple[str, ...] = (AUDIO, META)

MAX_FRAMES = 10
"""Most frames of a clip (AVSBench-object's clips have 5, AVSBench-semantic's up to 10)."""


def frame_member(index: int, member: str) -> str:
    """The extension of frame ``index``'s ``member`` in a clip (``frame_member(2, MASK)`` is
    ``2.mask.png``)."""
    if not 0 <= index < MAX_FRAMES:
        raise ValueError(f"frame index must be in [0, {MAX_FRAMES}), got {index}")
    return f"{index}.{member}"


def clip_members(frames: int, *, class_masks: bool = False) -> tuple[str, ...]:
    """The members of a clip of ``frames`` frames, in the order they are written."""
    per_frame = (IMAGE, MASK, CLASS_MASK) if class_masks else (IMAGE, MASK)
    return (
        *(frame_member(t, member) for t in range(frames) for member in per_frame),
        AUDIO,
        META,
    )


def is_clip_sample(sample: dict[str, Any]) -> bool:
    """True for a clip's members (its frame 0 picture is there)."""
    return frame_member(0, IMAGE) in sample


SPLITS: tuple[str, ...] = ("train", "val", "test")

NEGATIVE_KINDS: tuple[str, ...] = ("absent", "silence", "noise", "offscreen")
"""The kinds of negative (empty-mask) triplets ``avs-synth build --negatives`` makes:

- ``absent``: the sound of a class verified absent from the picture, of the same broad VGGSound
  group (animals, music, people, vehicle, ...) as a category the picture does hold;
- ``silence``: digital zeros or a near-silent noise floor;
- ``noise``: white or pink noise, no class at all;
- ``offscreen``: the sound of a class verified absent from the picture, of a broad group none of
  the picture's matched categories belongs to.

A negative of a build without ``--negatives`` has no recorded kind; it is read as ``absent``
(any verified-absent class, whatever its group)."""
BANK = "bank"

MANIFEST_NAME = "manifest.json"
REPORT_NAME = "report.json"
PLAN_NAME = "plan.json"

_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
# every shard name a build writes, and the only ones a reader accepts from a manifest: a name is
# pasted into locations (``pipe:cat DIR/{name}``), so it must never carry shell or path syntax
SHARD_NAME = re.compile(r"^(train|val|test|bank)-\d{6}\.tar$")


def shard_name(split: str, index: int) -> str:
    """``{split}-{index:06d}.tar`` (``split`` is a triplet split or :data:`BANK`)."""
    if split not in (*SPLITS, BANK):
        raise ValueError(f"unknown shard split {split!r}")
    return f"{split}-{index:06d}.tar"


def check_shard_name(name: object, *, where: str) -> str:
    """``name`` when it matches :data:`SHARD_NAME`; a :class:`DataFormatError` naming ``where``
    (the manifest) otherwise."""
    if not isinstance(name, str) or not SHARD_NAME.fullmatch(name):
        raise DataFormatError(
            where, f"shard name {name!r} is not {{train,val,test,bank}}-NNNNNN.tar: refused"
        )
    return name


def safe_key_part(text: str) -> str:
    """``text`` with every character but ``[A-Za-z0-9_-]`` replaced by ``_`` (no dots, no
    slashes: a key can never name a path outside the shard or split a WebDataset key)."""
    return _KEY_UNSAFE.sub("_", text)


# --- metadata -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class VisualCategoryRef:
    """A visual category of the picture whose instances make up the mask.

    Args:
        source: ``lvis``, ``coco`` or ``openimages``.
        id: the source's category id as a string.
        name: the source's category name, verbatim.
    """

    source: str
    id: str
    name: str


@dataclass(frozen=True)
class InstanceRef:
    """One instance in the mask, in the source's pixel grid (before any ``--max-side`` resize).

    Args:
        id: the source's instance id (annotation id, Open Images mask file name).
        category_id: the instance's category id.
        bbox: ``[x, y, width, height]`` as annotated.
        area: the annotated area in pixels.
    """

    id: str
    category_id: str
    bbox: tuple[float, float, float, float]
    area: float


@dataclass(frozen=True)
class AudioWindowMeta:
    """Where a stored audio window comes from.

    Args:
        vggsound_id: the clip id ``{youtube_id}_{start_seconds:06d}``.
        youtube_id, start_seconds: the VGGSound row.
        label: the clip's VGGSound label.
        vggsound_split: ``train`` or ``test`` (VGGSound's own split).
        window_start_s: start of the window inside the clip file, in seconds.
        window_s: the window length in seconds.
        sample_rate: the stored sample rate.
        num_samples: the stored length in samples (``round(window_s * sample_rate)``).
        policy: the window policy that chose the start (``fixed``, ``loudest``, ``nonsilent``).
        rms_dbfs: the window's RMS level in dB full scale.
    """

    vggsound_id: str
    youtube_id: str
    start_seconds: int
    label: str
    vggsound_split: str
    window_start_s: float
    window_s: float
    sample_rate: int
    num_samples: int
    policy: str
    rms_dbfs: float


@dataclass(frozen=True)
class SourceMeta:
    """One sounding source of a multi-source triplet (``avs-synth build --sources``).

    Args:
        audio_class: the source's VGGSound label.
        categories: the visual categories whose instances are its part of the mask.
        instance_ids: those instances.
        audio: where its window comes from.
        gain_db: its gain in the mix, after each window was normalised to the same RMS level.
        pan: its position in the stereo field, 0 (left) to 1 (right): its mask's centroid over
            the picture's width (None in a mono build).
    """

    audio_class: str
    categories: tuple[VisualCategoryRef, ...]
    instance_ids: tuple[str, ...]
    audio: AudioWindowMeta
    gain_db: float
    pan: float | None = None


@dataclass(frozen=True)
class ClipMeta:
    """The frames of a clip (``avs-synth build --frames N``): one picture seen along a crop path.

    Args:
        frames: N, the number of frames.
        frame_s: seconds of audio per frame (stretch t of the ``flac`` member goes with frame t).
        boxes: per frame, the crop ``[x, y, w, h]`` of the source picture it shows (in the
            source's pixel grid; the frames are these crops resized to the clip's frame size).
        path: how the boxes move from the first to the last (``ease-in-out``: smoothstep
            interpolation between a seeded start and end box, each holding the whole mask).
        silent: per frame, True when the build silenced its audio stretch (the source starts or
            stops mid-clip); a silent frame's mask is empty.
        event: ``onset`` (silent frames, then sounding ones), ``offset`` (sounding, then silent)
            or None (the source sounds throughout, or a negative).
        silence: how the silent stretches were made (``zeros`` or ``floor``, as
            :mod:`avs_synth.audio.negative_audio` draws silence); None without silent frames.
        areas: foreground pixels of each frame's stored mask.
        rms_dbfs: each frame's audio stretch level in dB full scale.
    """

    frames: int
    frame_s: float
    boxes: tuple[tuple[int, int, int, int], ...]
    path: str
    silent: tuple[bool, ...]
    event: str | None
    silence: str | None
    areas: tuple[int, ...]
    rms_dbfs: tuple[float, ...]

    @property
    def silent_frames(self) -> tuple[int, ...]:
        """The indices of the silent frames."""
        return tuple(t for t, quiet in enumerate(self.silent) if quiet)


@dataclass(frozen=True)
class TripletMeta:
    """The ``json`` member of a triplet.

    Args:
        key: the sample key.
        split: ``train``, ``val`` or ``test``.
        audio_class: the VGGSound label that sounds (the sample's category for balance and
            counts).
        negative: True when the audio class is verified absent from the picture (empty mask).
        mask_mode: ``semantic`` (union of every matched instance) or ``instance``.
        categories: the visual categories whose instances make up the mask (for a negative, the
            categories verified absent).
        source: the dataset the picture and its annotations were read from.
        image_id: the source's image id.
        image_file: the picture's file name (relative, as in the source).
        width, height: the stored image's size (the mask's too).
        original_width, original_height: the source picture's size.
        image_reencoded: True when the JPEG is not the source's original bytes.
        instance_ids: the instances in the mask, in the source's order.
        instances: their annotated bbox and area.
        bbox: the tight box of the stored mask ``[x, y, w, h]`` (None for an empty mask).
        area: foreground pixels of the stored mask.
        area_fraction: ``area / (width * height)``.
        audio: where the audio window comes from.
        license, attribution: the picture's licence and author / URL, where the source gives them.
        schema_version: :data:`SCHEMA_VERSION` of the writer.
        negative_kind: a negative's kind (:data:`NEGATIVE_KINDS`), written by builds with
            ``--negatives`` (None otherwise: see :attr:`kind`).
        audibility: the audio window's audibility in [0, 1] (see
            :mod:`avs_synth.audio.audibility`), written by builds with ``--min-audibility``
            (None otherwise, and for synthesized silence / noise).
        sources: a multi-source triplet's sounding sources, the first being ``audio_class`` /
            ``audio`` (written by builds with ``--sources``; None otherwise). The ``flac`` member
            is then their mix (two channels with ``--pan``), the mask the union of their masks.
        silent_categories: matched categories the picture holds that do not sound in this
            triplet (builds with ``--sources``).
        crop: the object-centric crop ``[x, y, w, h]`` of the source picture the stored picture
            and mask show (builds with ``--crop object``; None: the whole picture). ``instances``
            stay in the source's grid. For a clip: the region its crop path moves in.
        tagger_probability: a user-supplied audio tagger's probability for the window's class
            (builds with ``--tagger``; None otherwise, or when the tagger lacks the class; for a
            multi-source triplet the smallest of its sources').
        clip: a clip's frames (builds with ``--frames`` above 1; None: a still). ``width`` /
            ``height`` are then the frames' size and ``bbox`` / ``area`` / ``area_fraction`` those
            of the union of the frames' stored masks.
    """

    key: str
    split: str
    audio_class: str
    negative: bool
    mask_mode: str
    categories: tuple[VisualCategoryRef, ...]
    source: str
    image_id: str
    image_file: str
    width: int
    height: int
    original_width: int
    original_height: int
    image_reencoded: bool
    instance_ids: tuple[str, ...]
    instances: tuple[InstanceRef, ...]
    bbox: tuple[int, int, int, int] | None
    area: int
    area_fraction: float
    audio: AudioWindowMeta
    license: str | None = None
    attribution: str | None = None
    schema_version: int = SCHEMA_VERSION
    negative_kind: str | None = None
    audibility: float | None = None
    sources: tuple[SourceMeta, ...] | None = None
    silent_categories: tuple[VisualCategoryRef, ...] | None = None
    crop: tuple[int, int, int, int] | None = None
    tagger_probability: float | None = None
    clip: ClipMeta | None = None

    @property
    def num_sources(self) -> int:
        """Sounding sources mixed in the audio (0 for a negative)."""
        if self.negative:
            return 0
        return len(self.sources) if self.sources else 1

    @property
    def kind(self) -> str:
        """``positive`` or the negative's kind (``absent`` when the writer recorded none)."""
        if not self.negative:
            return "positive"
        return self.negative_kind or "absent"

    @property
    def category(self) -> str:
        """The visual category names joined with ``|`` (one name in most samples)."""
        return "|".join(c.name for c in self.categories)


@dataclass(frozen=True)
class BankWindowMeta:
    """The ``json`` member of an audio-bank sample.

    Args:
        key: the sample key.
        audio_class: the VGGSound label of the clip.
        audio: where the window comes from.
        schema_version: :data:`SCHEMA_VERSION` of the writer.
    """

    key: str
    audio_class: str
    audio: AudioWindowMeta
    schema_version: int = field(default=SCHEMA_VERSION)


def encode_json(obj: Any) -> bytes:
    """Canonical JSON bytes: sorted keys, compact separators, UTF-8, a final newline."""
    if hasattr(obj, "__dataclass_fields__"):
        obj = asdict(obj)
    text = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return (text + "\n").encode("utf-8")


OPTIONAL_META_FIELDS: tuple[str, ...] = (
    "negative_kind",
    "audibility",
    "sources",
    "silent_categories",
    "crop",
    "tagger_probability",
    "clip",
)
"""Metadata fields left out of the ``json`` member while they are None (see the module
docstring)."""


def encode_meta(meta: TripletMeta | BankWindowMeta) -> bytes:
    """Metadata → the ``json`` member's bytes (optional fields only when set)."""
    d = asdict(meta)
    for name in OPTIONAL_META_FIELDS:
        if d.get(name, 0) is None:
            del d[name]
    return encode_json(d)


def _audio_meta(d: dict[str, Any]) -> AudioWindowMeta:
    return AudioWindowMeta(**d)


def decode_triplet_meta(data: bytes) -> TripletMeta:
    """A triplet's ``json`` member → :class:`TripletMeta`."""
    d = json.loads(data.decode("utf-8"))
    d["categories"] = tuple(VisualCategoryRef(**c) for c in d["categories"])
    d["instances"] = tuple(
        InstanceRef(id=i["id"], category_id=i["category_id"], bbox=tuple(i["bbox"]), area=i["area"])
        for i in d["instances"]
    )
    d["instance_ids"] = tuple(d["instance_ids"])
    d["bbox"] = None if d["bbox"] is None else tuple(d["bbox"])
    d["audio"] = _audio_meta(d["audio"])
    if d.get("sources") is not None:
        d["sources"] = tuple(
            SourceMeta(
                audio_class=src["audio_class"],
                categories=tuple(VisualCategoryRef(**c) for c in src["categories"]),
                instance_ids=tuple(src["instance_ids"]),
                audio=_audio_meta(src["audio"]),
                gain_db=src["gain_db"],
                pan=src.get("pan"),
            )
            for src in d["sources"]
        )
    if d.get("crop") is not None:
        d["crop"] = tuple(d["crop"])
    if d.get("silent_categories") is not None:
        d["silent_categories"] = tuple(VisualCategoryRef(**c) for c in d["silent_categories"])
    if d.get("clip") is not None:
        d["clip"] = _clip_meta(d["clip"])
    return TripletMeta(**d)


def _clip_meta(d: dict[str, Any]) -> ClipMeta:
    return ClipMeta(
        **{
            **d,
            "boxes": tuple(tuple(b) for b in d["boxes"]),
            "silent": tuple(d["silent"]),
            "areas": tuple(d["areas"]),
            "rms_dbfs": tuple(d["rms_dbfs"]),
        }
    )


def decode_bank_meta(data: bytes) -> BankWindowMeta:
    """An audio-bank sample's ``json`` member → :class:`BankWindowMeta`."""
    d = json.loads(data.decode("utf-8"))
    d["audio"] = _audio_meta(d["audio"])
    return BankWindowMeta(**d)


# --- image ---------------------------------------------------------------------------------------


def encode_image(image: Image.Image, *, quality: int = 95) -> bytes:
    """A PIL image → JPEG bytes (used only when the source's bytes cannot be kept)."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def decode_image(data: bytes) -> Image.Image:
    """The ``jpg`` member → an RGB PIL image in the file's raw pixel grid (no EXIF rotation)."""
    return decode_image_reduced(data, None)[0]


def decode_image_reduced(
    data: bytes, needed: Callable[[int, int], tuple[int, int]] | None
) -> tuple[Image.Image, tuple[int, int]]:
    """The ``jpg`` member → ``(RGB picture, (height, width) of the full picture)``.

    ``needed(width, height)`` gives the smallest ``(width, height)`` the caller can use; a JPEG is
    then decoded at the coarsest DCT scale (1/2, 1/4 or 1/8) still at least that large, which is
    several times cheaper than a full decode followed by a downscale. ``None``: full size.
    """
    with Image.open(io.BytesIO(data)) as image:
        full_w, full_h = image.size
        if needed is not None and image.format == "JPEG":
            image.draft("RGB", needed(full_w, full_h))
        image.load()
        if image.mode != "RGB":
            return image.convert("RGB"), (full_h, full_w)
        return image, (full_h, full_w)


# --- mask ----------------------------------------------------------------------------------------


def encode_mask(mask: np.ndarray) -> bytes:
    """A boolean ``[H, W]`` mask → 1-bit PNG bytes (deterministic for a given Pillow/zlib)."""
    if mask.ndim != 2:
        raise ValueError(f"mask must be [H, W], got shape {mask.shape}")
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(mask, dtype=bool)).save(buffer, format="PNG")
    return buffer.getvalue()


def decode_mask(data: bytes) -> np.ndarray:
    """The ``mask.png`` member → a boolean ``[H, W]`` array."""
    with Image.open(io.BytesIO(data)) as image:
        if image.mode == "1":
            return np.array(image, dtype=bool)
        return np.asarray(image.convert("L")) > 0


def encode_class_mask(labels: np.ndarray) -> bytes:
    """An integer ``[H, W]`` label map (0 background, ``index + 1`` per class) → PNG bytes:
    8-bit grey while every value fits, 16-bit otherwise."""
    if labels.ndim != 2:
        raise ValueError(f"label map must be [H, W], got shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > 65535):
        raise ValueError("label values must be in [0, 65535]")
    wide = labels.size > 0 and int(labels.max()) > 255
    array = np.ascontiguousarray(labels, dtype=np.uint16 if wide else np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def decode_class_mask(data: bytes) -> np.ndarray:
    """The ``classes.png`` member → an int32 ``[H, W]`` label map."""
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image, dtype=np.int32)


# --- audio ---------------------------------------------------------------------------------------


def encode_audio(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
    """Float samples in [-1, 1], mono ``[n]`` or stereo ``[n, 2]``, → 16-bit FLAC bytes."""
    return encode_flac(np.asarray(samples, dtype=np.float32), sample_rate)


def decode_audio(data: bytes) -> tuple[np.ndarray, int]:
    """The ``flac`` member → (float32 mono samples, sample rate); a stereo window is averaged
    over its channels (as VGGish hears it)."""
    samples, sample_rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=False)
    if samples.ndim == 2:
        samples = samples.mean(axis=1, dtype=np.float32)
    return samples, int(sample_rate)


# --- whole samples -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DecodedTriplet:
    """A triplet decoded from its tar members.

    Args:
        key: the sample key.
        image: the RGB picture.
        mask: the sounding mask, boolean ``[H, W]``.
        audio: float32 mono samples at ``meta.audio.sample_rate``.
        meta: the metadata.
        frames: a clip's frames (``image`` is the first); empty for a still.
        frame_masks: a clip's frame masks (``mask`` is the first); empty for a still.
    """

    key: str
    image: Image.Image
    mask: np.ndarray
    audio: np.ndarray
    meta: TripletMeta
    frames: tuple[Image.Image, ...] = ()
    frame_masks: tuple[np.ndarray, ...] = ()


def decode_triplet(sample: dict[str, Any]) -> DecodedTriplet:
    """A WebDataset sample dict (``__key__`` and raw member bytes) → :class:`DecodedTriplet`
    (a still or a clip)."""
    if is_clip_sample(sample):
        return _decode_clip(sample)
    missing = [m for m in TRIPLET_MEMBERS if m not in sample]
    if missing:
        raise KeyError(f"sample {sample.get(KEY)!r} lacks members {missing}")
    audio, _ = decode_audio(sample[AUDIO])
    return DecodedTriplet(
        key=sample[KEY],
        image=decode_image(sample[IMAGE]),
        mask=decode_mask(sample[MASK]),
        audio=audio,
        meta=decode_triplet_meta(sample[META]),
    )


def _decode_clip(sample: dict[str, Any]) -> DecodedTriplet:
    meta = decode_triplet_meta(sample[META]) if META in sample else None
    if meta is None or meta.clip is None:
        raise KeyError(f"sample {sample.get(KEY)!r}: frame members without clip metadata")
    missing = [m for m in clip_members(meta.clip.frames) if m not in sample]
    if missing:
        raise KeyError(f"sample {sample.get(KEY)!r} lacks members {missing}")
    frames = tuple(decode_image(sample[frame_member(t, IMAGE)]) for t in range(meta.clip.frames))
    masks = tuple(decode_mask(sample[frame_member(t, MASK)]) for t in range(meta.clip.frames))
    audio, _ = decode_audio(sample[AUDIO])
    return DecodedTriplet(
        key=sample[KEY],
        image=frames[0],
        mask=masks[0],
        audio=audio,
        meta=meta,
        frames=frames,
        frame_masks=masks,
    )
