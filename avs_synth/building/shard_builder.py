"""Writing one planned shard: decode, check, encode and tar its samples.

:func:`build_unit` is what a worker runs. It depends only on the unit and the configuration, so a
shard has the same bytes whichever worker or machine builds it. Per-sample failures (missing or
corrupt picture, invalid or empty mask, missing, unreadable, short, silent or, with
``min_audibility``, inaudible audio; for a ``quiet`` silence negative, a clip without a
near-silent window) skip the sample and are counted by reason; the shard's
counts go to ``.parts/{shard}.json``, written after the tar is in place (a unit is complete when
both exist).

Why this module is long: the three kinds of triplet (a clip's window, a synthesized silence or
noise window, a mix of several sources) share the picture, mask, window and metadata helpers,
and so does a ``frames`` build's clip (its frames and silences made in
:mod:`avs_synth.building.clips`).
"""

from __future__ import annotations

import io
import json
import logging
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from avs_synth.audio.audibility import audibility
from avs_synth.audio.clip_reader import open_clip
from avs_synth.audio.decode import AudioReadError, Resampler
from avs_synth.audio.mixing import mix_sources, source_gains_db
from avs_synth.audio.negative_audio import level_dbfs, negative_window
from avs_synth.audio.tagger import tagger_probability
from avs_synth.audio.windows import (
    ArrayClip,
    ClipReader,
    Window,
    WindowRefused,
    choose_quiet_window,
    choose_window,
    extract,
    usable_windows,
)
from avs_synth.building.clip_path import silent_frames
from avs_synth.building.clips import choose_clip_window, clip_window, cut_frames
from avs_synth.building.config import BuildConfig
from avs_synth.building.framing import object_crop_box
from avs_synth.building.plan import ShardUnit, TripletSpec
from avs_synth.building.shard_writer import ShardWriter, remove_stale_temps, write_atomic
from avs_synth.errors import DataFormatError
from avs_synth.masks import decode_mask as decode_instance_mask
from avs_synth.masks import mask_box
from avs_synth.records import AudioClip, Instance, NormalizedBox
from avs_synth.schema import (
    AUDIO,
    BANK,
    BANK_MEMBERS,
    CLASS_MASK,
    CLASS_TRIPLET_MEMBERS,
    IMAGE,
    MASK,
    META,
    TRIPLET_MEMBERS,
    AudioWindowMeta,
    BankWindowMeta,
    InstanceRef,
    SourceMeta,
    TripletMeta,
    clip_members,
    encode_audio,
    encode_class_mask,
    encode_image,
    encode_json,
    encode_mask,
    encode_meta,
    safe_key_part,
)

logger = logging.getLogger(__name__)

PARTS_DIR = ".parts"
_CLIP_CACHE_SIZE = 8

_stop_requested = False


def request_stop(signum: int | None = None, frame: object = None) -> None:
    """Ask the shard being built to stop at the next sample boundary (a SIGINT handler).

    A KeyboardInterrupt raised at an arbitrary point could land inside a C callback (soundfile's
    FLAC writer), be swallowed there and leave a corrupt member in a shard that then completes;
    stopping between samples never does.
    """
    global _stop_requested
    _stop_requested = True


def clear_stop() -> None:
    """Forget an earlier :func:`request_stop`."""
    global _stop_requested
    _stop_requested = False


def stop_requested() -> bool:
    """True once :func:`request_stop` was called."""
    return _stop_requested


def _check_stop() -> None:
    if _stop_requested:
        raise KeyboardInterrupt


class SampleSkipped(Exception):
    """A sample that cannot be made; ``reason`` is its count key in the report."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def parts_path(out: Path, name: str) -> Path:
    """Where a shard's counts are written."""
    return out / PARTS_DIR / f"{name}.json"


def is_complete(out: Path, name: str) -> bool:
    """True when the shard and its counts are both in place."""
    return (out / name).is_file() and parts_path(out, name).is_file()


@dataclass(frozen=True)
class _Picture:
    data: bytes
    width: int
    height: int
    reencoded: bool
    original_width: int
    original_height: int


def _load_picture(spec: TripletSpec, config: BuildConfig) -> _Picture:
    """The JPEG to store (original bytes unless resized or not a JPEG), checked to decode; a spec
    without a size (Open Images) takes the picture's."""
    try:
        data = spec.image_path.read_bytes()
    except FileNotFoundError:
        raise SampleSkipped("missing_file", str(spec.image_path)) from None
    except OSError as error:
        raise SampleSkipped("unreadable_image", f"{spec.image_path}: {error}") from None
    try:
        with Image.open(io.BytesIO(data)) as image:
            original = image.size
            if spec.width is not None and image.size != (spec.width, spec.height):
                raise SampleSkipped(
                    "image_size_mismatch",
                    f"{spec.image_path}: {image.size[0]}x{image.size[1]}, "
                    f"annotated {spec.width}x{spec.height}",
                )
            longest = max(image.size)
            resize = config.max_side is not None and longest > config.max_side
            if image.format == "JPEG" and not resize:
                # Decoding at 1/8 scale still reads the whole entropy-coded stream, so a
                # truncated or corrupt file fails here, at a fraction of a full decode.
                image.draft(image.mode, (max(1, image.width // 8), max(1, image.height // 8)))
                image.load()
                return _Picture(data, *original, False, *original)
            image.load()
            if resize:
                scale = config.max_side / longest
                size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
                image = image.convert("RGB").resize(size, Image.Resampling.LANCZOS)
            encoded = encode_image(image, quality=config.jpeg_quality)
            return _Picture(encoded, image.width, image.height, True, *original)
    except SampleSkipped:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise SampleSkipped("corrupt_image", f"{spec.image_path}: {error}") from None


def _framed(
    spec: TripletSpec, config: BuildConfig, picture: _Picture, full_mask: np.ndarray
) -> tuple[_Picture, np.ndarray, tuple[int, int, int, int] | None]:
    """With ``crop object``: the picture and mask cropped around the mask (the crop re-encoded,
    resized past ``max_side``) and the crop box in the source's grid; unchanged otherwise."""
    box = object_crop_box(full_mask, config.crop_fraction(spec.key))
    if box is None:
        return picture, full_mask, None
    x, y, w, h = box
    try:
        with Image.open(spec.image_path) as image:
            image = image.convert("RGB").crop((x, y, x + w, y + h))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise SampleSkipped("corrupt_image", f"{spec.image_path}: {error}") from None
    if config.max_side is not None and max(w, h) > config.max_side:
        scale = config.max_side / max(w, h)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS)
    data = encode_image(image, quality=config.jpeg_quality)
    size = (picture.original_width, picture.original_height)
    cropped = _Picture(data, image.width, image.height, True, *size)
    return cropped, full_mask[y : y + h, x : x + w], box


def _sounding_mask(
    spec: TripletSpec, instances: tuple[Instance, ...], width: int, height: int
) -> np.ndarray:
    """The union of ``instances``' masks at the picture's size (empty for none)."""
    mask = np.zeros((height, width), dtype=bool)
    for inst in instances:
        try:
            part = decode_instance_mask(
                inst.segmentation,
                height,
                width,
                source=f"{spec.source} image {spec.image_id} instance {inst.instance_id}",
            )
        except FileNotFoundError as error:
            raise SampleSkipped("missing_file", str(error)) from None
        except (DataFormatError, ValueError) as error:
            raise SampleSkipped("invalid_mask", str(error)) from None
        mask |= part
    return mask


def _resize_mask(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    """A mask resized like its picture: area average, then half coverage or more."""
    if mask.shape == (height, width):
        return mask
    image = Image.fromarray(mask.astype(np.uint8) * 255)
    return np.asarray(image.resize((width, height), Image.Resampling.BOX)) >= 128


def _close(item: object) -> None:
    close = getattr(item, "close", None)
    if close is not None:
        close()


class _ClipCache:
    """Opened clips (or why they failed) of the last few clips a worker used."""

    def __init__(self, sample_rate: int, resampler: Resampler) -> None:
        self.sample_rate = sample_rate
        self.resampler = resampler
        self._items: OrderedDict[str, ClipReader | SampleSkipped] = OrderedDict()

    def get(self, clip: AudioClip) -> ClipReader:
        key = clip.clip_id
        item = self._items.get(key)
        if item is None:
            item = self._open(clip)
            self._items[key] = item
            while len(self._items) > _CLIP_CACHE_SIZE:
                _close(self._items.popitem(last=False)[1])
        else:
            self._items.move_to_end(key)
        if isinstance(item, SampleSkipped):
            raise SampleSkipped(item.reason, str(item))
        return item

    def __enter__(self) -> _ClipCache:
        return self

    def __exit__(self, *exc: object) -> None:
        """Close every open clip."""
        for item in self._items.values():
            _close(item)
        self._items.clear()

    def _open(self, clip: AudioClip) -> ClipReader | SampleSkipped:
        if clip.path is None:
            return SampleSkipped("missing_file", f"clip {clip.clip_id} has no file")
        try:
            return open_clip(clip.path, sample_rate=self.sample_rate, resampler=self.resampler)
        except FileNotFoundError:
            return SampleSkipped("missing_file", str(clip.path))
        except (AudioReadError, DataFormatError) as error:
            return SampleSkipped("unreadable_audio", str(error))


def _audio_meta(
    clip: AudioClip, start_s: float, level: float, config: BuildConfig, policy: str
) -> AudioWindowMeta:
    w = config.window
    return AudioWindowMeta(
        vggsound_id=clip.clip_id,
        youtube_id=clip.youtube_id,
        start_seconds=clip.start_seconds,
        label=clip.label,
        vggsound_split=clip.split,
        window_start_s=round(start_s, 6),
        window_s=w.window_s,
        sample_rate=w.sample_rate,
        num_samples=w.window_samples,
        policy=policy,
        rms_dbfs=round(level, 3),
    )


def _instance_ref(inst: Instance, width: int, height: int) -> InstanceRef:
    """The instance as the metadata records it, with pixel box and area."""
    if isinstance(inst.bbox, NormalizedBox):
        bbox, area = inst.bbox.to_pixels(width, height)
    else:
        bbox, area = inst.bbox, inst.area
    return InstanceRef(
        id=inst.instance_id,
        category_id=inst.category_id,
        bbox=tuple(float(v) for v in bbox),  # type: ignore[arg-type]
        area=float(area),
    )


def _synthesized_audio(
    spec: TripletSpec, config: BuildConfig
) -> tuple[np.ndarray, AudioWindowMeta]:
    """The seeded window of a ``silence`` / ``noise`` negative and its metadata (no clip)."""
    w = config.window
    assert spec.negative_kind is not None
    audio, policy = negative_window(
        spec.negative_kind, w.window_samples, seed=config.seed, key=spec.key
    )
    meta = AudioWindowMeta(
        vggsound_id="",
        youtube_id="",
        start_seconds=0,
        label=spec.audio_class,
        vggsound_split="",
        window_start_s=0.0,
        window_s=w.window_s,
        sample_rate=w.sample_rate,
        num_samples=w.window_samples,
        policy=f"synthetic-{policy}",
        rms_dbfs=round(level_dbfs(audio), 3),
    )
    return audio, meta


def _real_negative_audio(
    spec: TripletSpec, config: BuildConfig, clips: _ClipCache
) -> tuple[np.ndarray, AudioWindowMeta]:
    """The window of a ``noise`` negative cut from an ambience clip (the window policy's choice;
    policy ``vggsound-ambience``) or of a ``silence`` negative cut from a real clip's stretch
    below ``quiet_dbfs`` (policy ``vggsound-quiet``).

    Raises:
        SampleSkipped: unreadable audio, no window (``no_quiet_window`` for silence).
    """
    assert spec.clip is not None
    choose: Callable[..., Window] = choose_window
    if spec.negative_kind == "silence":
        choose = partial(choose_quiet_window, below_dbfs=config.quiet_dbfs)
    clip, window, audio = _cut_window(spec.clip, spec.key, config, clips, choose)
    policy = "vggsound-quiet" if spec.negative_kind == "silence" else "vggsound-ambience"
    return audio, _audio_meta(spec.clip, window.start / clip.rate, window.rms_dbfs, config, policy)


def _cut_window(
    source: AudioClip,
    key: str,
    config: BuildConfig,
    clips: _ClipCache,
    choose: Callable[..., Window],
) -> tuple[ClipReader, Window, np.ndarray]:
    """The clip, the window ``choose`` picks in it for the sample ``key``, and its samples.

    Raises:
        SampleSkipped: no window (the refusal's reason), unreadable audio.
    """
    clip = clips.get(source)
    try:
        window = choose(clip, config.window, seed=config.seed, key=key)
        return clip, window, extract(clip, window, config.window)
    except WindowRefused as refused:
        raise SampleSkipped(refused.reason, source.clip_id) from None
    except (AudioReadError, ValueError) as error:
        raise SampleSkipped("unreadable_audio", str(error)) from None


def _clip_audio(
    source: AudioClip,
    key: str,
    config: BuildConfig,
    clips: _ClipCache,
    choose: Callable[..., Window] = choose_window,
) -> tuple[np.ndarray, AudioWindowMeta, float | None, float | None]:
    """The window cut from ``source`` for the sample ``key``, its metadata and (with
    ``min_audibility``) its audibility score and (with a ``tagger``) the tagger's probability.

    Raises:
        SampleSkipped: no window, unreadable audio, or a window below ``min_audibility`` (by
            ``audibility_from``).
    """
    clip, window, audio = _cut_window(source, key, config, clips, choose)
    meta = _audio_meta(
        source, window.start / clip.rate, window.rms_dbfs, config, config.window.policy
    )
    if config.min_audibility is None:
        return audio, meta, None, None
    try:
        whole = clip.read(0, clip.frames)
    except (AudioReadError, ValueError) as error:
        raise SampleSkipped("unreadable_audio", str(error)) from None
    length = config.window.window_samples_at(clip.rate)
    score = round(
        audibility(whole[window.start : window.start + length], whole, clip.rate).score, 4
    )
    tagged = None
    if config.tagger is not None:
        probability = tagger_probability(config.tagger, audio, source.label)
        tagged = None if probability is None else round(probability, 4)
        if tagged is None and config.audibility_from != "energy":
            raise SampleSkipped("tagger_lacks_class", source.label)
    compared = {
        "energy": score,
        "tagger": tagged,
        "both": min(score, tagged) if tagged is not None else score,
    }[config.audibility_from]
    assert compared is not None
    if compared < config.min_audibility:
        raise SampleSkipped("inaudible", f"{source.clip_id} at {meta.window_start_s} s: {compared}")
    return audio, meta, score, tagged


def _picture_fields(
    spec: TripletSpec,
    config: BuildConfig,
    picture: _Picture,
    mask: np.ndarray,
    instances: tuple[Instance, ...],
) -> dict[str, Any]:
    """The metadata fields of the sample's picture, stored mask and instances."""
    width, height = picture.original_width, picture.original_height
    area = int(mask.sum())
    return {
        "key": spec.key,
        "split": spec.split,
        "mask_mode": config.mask_mode,
        "source": spec.source,
        "image_id": spec.image_id,
        "image_file": spec.image_path.name,
        "width": picture.width,
        "height": picture.height,
        "original_width": width,
        "original_height": height,
        "image_reencoded": picture.reencoded,
        "instance_ids": tuple(i.instance_id for i in instances),
        "instances": tuple(_instance_ref(i, width, height) for i in instances),
        "bbox": mask_box(mask),
        "area": area,
        "area_fraction": round(area / float(picture.width * picture.height), 6),
        "license": spec.license,
        "attribution": spec.attribution,
    }


def make_triplet(spec: TripletSpec, config: BuildConfig, clips: _ClipCache) -> dict[str, bytes]:
    """The tar members of one triplet.

    Raises:
        SampleSkipped: the sample cannot be made (the reason is counted).
    """
    picture = _load_picture(spec, config)
    width, height = picture.original_width, picture.original_height
    if config.sources and not spec.negative:
        return _mixed_triplet(spec, config, clips, picture)
    full_mask = _sounding_mask(spec, spec.instances, width, height)
    full_area = int(full_mask.sum())
    if not spec.negative:
        if full_area == 0:
            raise SampleSkipped("empty_mask", spec.key)
        if full_area / float(width * height) < config.min_mask_area:
            raise SampleSkipped("small_mask", spec.key)
    if config.frames > 1:
        return _clip_triplet(spec, config, clips, full_mask)
    crop = None
    if config.crop == "object" and not spec.negative:
        picture, full_mask, crop = _framed(spec, config, picture, full_mask)
    mask = _resize_mask(full_mask, picture.width, picture.height)
    area = int(mask.sum())
    if not spec.negative and area == 0:
        raise SampleSkipped("empty_mask", f"{spec.key} (after resizing)")
    audio, audio_meta, score, tagged = _sample_audio(spec, config, clips)
    meta = _single_source_meta(
        spec, config, picture, mask, audio_meta, score, crop=crop, tagger_probability=tagged
    )
    value = spec.class_indices[0] + 1 if spec.class_indices else 0
    return _members(picture, mask, audio, meta, config, lambda: mask.astype(np.int32) * value)


def _sample_audio(
    spec: TripletSpec,
    config: BuildConfig,
    clips: _ClipCache,
    choose: Callable[..., Window] = choose_window,
) -> tuple[np.ndarray, AudioWindowMeta, float | None, float | None]:
    """A single-source sample's audio window (synthesized for a silence / noise negative without
    a clip, cut from a real clip's quiet or ambience stretch for one with a clip), its metadata,
    its audibility score and the tagger's probability (see :func:`_clip_audio`)."""
    if spec.clip is None:
        return (*_synthesized_audio(spec, config), None, None)
    if spec.negative_kind in ("silence", "noise"):
        return (*_real_negative_audio(spec, config, clips), None, None)
    return _clip_audio(spec.clip, spec.key, config, clips, choose)


def _single_source_meta(
    spec: TripletSpec,
    config: BuildConfig,
    picture: _Picture,
    mask: np.ndarray,
    audio: AudioWindowMeta,
    score: float | None,
    **extra: Any,
) -> TripletMeta:
    """The metadata of a single-source sample (``extra``: its optional fields)."""
    return TripletMeta(
        **_picture_fields(spec, config, picture, mask, spec.instances),
        audio_class=spec.audio_class,
        negative=spec.negative,
        categories=spec.categories,
        audio=audio,
        negative_kind=spec.negative_kind,
        audibility=score,
        **extra,
    )


def _clip_triplet(
    spec: TripletSpec, config: BuildConfig, clips: _ClipCache, full_mask: np.ndarray
) -> dict[str, bytes]:
    """The tar members of a clip (``frames`` > 1; :mod:`avs_synth.building.clips`)."""
    try:
        cut = cut_frames(
            spec.image_path, full_mask, negative=spec.negative, config=config, key=spec.key
        )
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise SampleSkipped("corrupt_image", f"{spec.image_path}: {error}") from None
    if not spec.negative and not cut.sounding_frames_shown():
        raise SampleSkipped("empty_mask", f"{spec.key} (a frame after resizing)")
    wide = replace(config, window=clip_window(config.window, config.frames))
    choose = partial(choose_clip_window, frames=config.frames)
    audio, audio_meta, score, tagged = _sample_audio(spec, wide, clips, choose)
    audio, clip = cut.audio_and_meta(audio, config, key=spec.key)
    stored = _Picture(b"", *cut.size, True, full_mask.shape[1], full_mask.shape[0])
    extra = {"clip": clip, "crop": cut.region, "tagger_probability": tagged}
    meta = _single_source_meta(spec, config, stored, cut.union(), audio_meta, score, **extra)
    value = spec.class_indices[0] + 1 if spec.class_indices else 0
    return cut.members(
        encode_audio(audio, config.window.sample_rate),
        encode_meta(meta),
        class_value=value if config.class_masks else None,
    )


def _mixed_triplet(
    spec: TripletSpec, config: BuildConfig, clips: _ClipCache, picture: _Picture
) -> dict[str, bytes]:
    """The tar members of a positive triplet of a ``sources`` build (one source or more): the
    union of the sources' masks and the mix of their windows (:mod:`avs_synth.audio.mixing`)."""
    assert spec.clip is not None
    width, height = picture.original_width, picture.original_height
    sources = [
        (spec.audio_class, spec.categories, spec.instances, spec.clip, spec.key),
        *(
            (s.audio_class, s.categories, s.instances, s.clip, f"{spec.key}-s{n}")
            for n, s in enumerate(spec.extra_sources, start=1)
        ),
    ]
    masks = [_sounding_mask(spec, instances, width, height) for _, _, instances, _, _ in sources]
    if not all(m.any() for m in masks):
        raise SampleSkipped("empty_mask", f"{spec.key} (a source's mask)")
    full_mask = np.logical_or.reduce(masks)
    if full_mask.sum() / float(width * height) < config.min_mask_area:
        raise SampleSkipped("small_mask", spec.key)
    crop = None
    if config.crop == "object":  # around the union: every source stays inside the crop
        picture, full_mask, crop = _framed(spec, config, picture, full_mask)
        if crop is not None:
            x, y, w, h = crop
            masks = [m[y : y + h, x : x + w] for m in masks]
            width = w
    mask = _resize_mask(full_mask, picture.width, picture.height)
    if not mask.any():
        raise SampleSkipped("empty_mask", f"{spec.key} (after resizing)")
    cut = [_clip_audio(clip, key, config, clips) for _, _, _, clip, key in sources]
    gains = source_gains_db(len(sources), seed=config.seed, key=spec.key)
    positions = [float((np.nonzero(m)[1].mean() + 0.5) / width) for m in masks]
    audio = mix_sources([c[0] for c in cut], gains, pan=config.pan, positions=positions)
    scores = [c[2] for c in cut if c[2] is not None]
    tagged = [c[3] for c in cut if c[3] is not None]
    all_instances = tuple(i for _, _, instances, _, _ in sources for i in instances)
    categories = {(c.source, c.id): c for _, cats, _, _, _ in sources for c in cats}
    meta = TripletMeta(
        **_picture_fields(spec, config, picture, mask, all_instances),
        audio_class=spec.audio_class,
        negative=False,
        categories=tuple(categories[k] for k in sorted(categories)),
        audio=cut[0][1],
        audibility=min(scores) if scores else None,
        tagger_probability=min(tagged) if tagged else None,
        sources=tuple(
            SourceMeta(
                audio_class=label,
                categories=cats,
                instance_ids=tuple(i.instance_id for i in instances),
                audio=window_meta,
                gain_db=gain,
                pan=None if config.pan == "none" else round(position, 4),
            )
            for (label, cats, instances, _, _), (_, window_meta, _, _), gain, position in zip(
                sources, cut, gains, positions, strict=True
            )
        ),
        silent_categories=spec.silent_categories,
        crop=crop,
    )
    return _members(
        picture,
        mask,
        audio,
        meta,
        config,
        lambda: _label_map(masks, spec.class_indices, mask, picture.width, picture.height),
    )


def _members(
    picture: _Picture,
    mask: np.ndarray,
    audio: np.ndarray,
    meta: TripletMeta,
    config: BuildConfig,
    labels: Callable[[], np.ndarray],
) -> dict[str, bytes]:
    """The tar members of a triplet (``labels()``: its class-indexed mask, made only with
    ``class_masks``)."""
    members = {
        IMAGE: picture.data,
        MASK: encode_mask(mask),
        AUDIO: encode_audio(audio, config.window.sample_rate),
        META: encode_meta(meta),
    }
    if config.class_masks:
        members[CLASS_MASK] = encode_class_mask(labels())
    return members


def _label_map(
    masks: list[np.ndarray], indices: tuple[int, ...], union: np.ndarray, width: int, height: int
) -> np.ndarray:
    """Each source's pixels of the stored ``union`` labelled ``index + 1`` (the first source
    wins where they overlap; a pixel of the union no resized source mask covers goes to the
    first source)."""
    labels = np.zeros(union.shape, dtype=np.int32)
    for source_mask, index in reversed(list(zip(masks, indices, strict=True))):
        labels[_resize_mask(source_mask, width, height)] = index + 1
    labels[union & (labels == 0)] = indices[0] + 1
    labels[~union] = 0
    return labels


def _build_triplets(unit: ShardUnit, config: BuildConfig, out: Path) -> dict[str, Any]:
    clips = _ClipCache(config.window.sample_rate, config.resampler)
    skipped: Counter[str] = Counter()
    per_category: Counter[str] = Counter()
    per_source: Counter[str] = Counter()
    per_kind: Counter[str] = Counter()
    per_sources: Counter[str] = Counter()
    per_event: Counter[str] = Counter()
    negatives = 0
    members = CLASS_TRIPLET_MEMBERS if config.class_masks else TRIPLET_MEMBERS
    if config.frames > 1:
        members = clip_members(config.frames, class_masks=config.class_masks)
    with ShardWriter(path=out / unit.name, member_order=members) as writer, clips:
        for spec in unit.triplets:
            _check_stop()
            try:
                members = make_triplet(spec, config, clips)
            except SampleSkipped as skip:
                skipped[skip.reason] += 1
                logger.debug("skipped %s: %s", spec.key, skip)
                continue
            writer.write(spec.key, members)
            per_category[spec.audio_class] += 1
            per_source[spec.source] += 1
            negatives += int(spec.negative)
            if spec.negative_kind is not None:
                per_kind[spec.negative_kind] += 1
            if not spec.negative:
                per_sources[str(1 + len(spec.extra_sources))] += 1
            if config.frames > 1 and not spec.negative:
                n, p = config.frames, config.onset_offset
                per_event[silent_frames(n, p, seed=config.seed, key=spec.key)[0]] += 1
    counts = {
        "samples": writer.count,
        "positives": writer.count - negatives,
        "negatives": negatives,
        "per_category": dict(sorted(per_category.items())),
        "per_source": dict(sorted(per_source.items())),
        "skipped": dict(sorted(skipped.items())),
        "sha256": writer.sha256,
        "bytes": writer.size,
    }
    if config.negatives:
        counts["per_kind"] = dict(sorted(per_kind.items()))
    if config.sources:
        counts["per_num_sources"] = dict(sorted(per_sources.items()))
    if config.frames > 1:
        counts["per_clip_event"] = dict(sorted(per_event.items()))
    return counts


def _build_bank(unit: ShardUnit, config: BuildConfig, out: Path) -> dict[str, Any]:
    clips = _ClipCache(config.window.sample_rate, config.resampler)
    skipped: Counter[str] = Counter()
    clips_used = 0
    label = unit.audio_class or ""
    with ShardWriter(path=out / unit.name, member_order=BANK_MEMBERS) as writer, clips:
        for clip in unit.clips:
            _check_stop()
            try:
                decoded = clips.get(clip)
            except SampleSkipped as skip:
                skipped[skip.reason] += 1
                continue
            if decoded.frames < config.window.window_samples_at(decoded.rate):
                skipped["audio_too_short"] += 1
                continue
            try:
                whole = ArrayClip(samples=decoded.read(0, decoded.frames), rate=decoded.rate)
                windows = usable_windows(whole, config.window)
                pieces = [extract(whole, w, config.window) for w in windows]
            except (AudioReadError, ValueError):
                skipped["unreadable_audio"] += 1
                continue
            if not windows:
                skipped["silent_audio"] += 1
                continue
            clips_used += 1
            for window, audio in zip(windows, pieces, strict=True):
                start_s = window.start / decoded.rate
                offset = int(round(start_s * config.window.sample_rate))
                key = f"{safe_key_part(clip.clip_id)}-s{offset:09d}"
                meta = BankWindowMeta(
                    key=key,
                    audio_class=label,
                    audio=_audio_meta(clip, start_s, window.rms_dbfs, config, "nonsilent"),
                )
                writer.write(
                    key,
                    {
                        AUDIO: encode_audio(audio, config.window.sample_rate),
                        META: encode_meta(meta),
                    },
                )
    return {
        "samples": writer.count,
        "clips": clips_used,
        "per_category": {label: writer.count} if writer.count else {},
        "skipped": dict(sorted(skipped.items())),
        "sha256": writer.sha256,
        "bytes": writer.size,
    }


def build_unit(unit: ShardUnit, config: BuildConfig, out: Path) -> dict[str, Any]:
    """Write one shard and its counts; returns the counts.

    Leftover temporary files of an interrupted build of this shard are removed first. The tar and
    the counts file are each written to a temporary name and moved into place.
    """
    out = Path(out)
    remove_stale_temps(out / unit.name)
    remove_stale_temps(parts_path(out, unit.name))
    if unit.split == BANK:
        counts = _build_bank(unit, config, out)
    else:
        counts = _build_triplets(unit, config, out)
    record = {
        "name": unit.name,
        "split": unit.split,
        "audio_class": unit.audio_class,
        "planned": unit.planned,
        **counts,
    }
    parts_path(out, unit.name).parent.mkdir(parents=True, exist_ok=True)
    write_atomic(parts_path(out, unit.name), encode_json(record))
    return record


def read_parts(out: Path, name: str) -> dict[str, Any]:
    """The counts of a complete shard."""
    return json.loads(parts_path(Path(out), name).read_text(encoding="utf-8"))
