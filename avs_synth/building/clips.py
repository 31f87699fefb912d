"""The pieces of a clip (``avs-synth build --frames N``): its frames and masks cut from one
picture along the crop path (:mod:`avs_synth.building.clip_path`), and its audio, N consecutive
stretches of one window with the silent frames' stretches silenced. With ``crop object`` the
path of a positive moves inside its object-centric crop (:mod:`avs_synth.building.framing`)
instead of the whole picture.

Frame ``t``'s mask is the full-picture mask cropped by frame ``t``'s box and resized to the frame
size as a still's mask is (area average, then half coverage or more), so the masks follow the
crops exactly; a silent frame's mask is empty.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from avs_synth.audio.negative_audio import level_dbfs, negative_window
from avs_synth.audio.windows import (
    ClipReader,
    Window,
    WindowConfig,
    WindowRefused,
    candidate_starts,
    choose_window,
    window_rms_dbfs,
)
from avs_synth.building.clip_path import PATH_NAME, Box, crop_path, frame_size, silent_frames
from avs_synth.building.config import BuildConfig
from avs_synth.building.framing import object_crop_box
from avs_synth.masks import mask_box
from avs_synth.schema import (
    AUDIO,
    CLASS_MASK,
    IMAGE,
    MASK,
    META,
    ClipMeta,
    encode_class_mask,
    encode_image,
    encode_mask,
    frame_member,
)
from avs_synth.seeded_order import seeded_key


def clip_window(window: WindowConfig, frames: int) -> WindowConfig:
    """The window settings of a clip's audio: ``frames`` windows long, its candidates on the
    still's grid (``hop_s``, or one window) so a clip can start at any window of the clip."""
    return replace(window, window_s=window.window_s * frames, hop_s=window.hop_s or window.window_s)


def choose_clip_window(
    clip: ClipReader, config: WindowConfig, *, seed: int, key: str, frames: int
) -> Window:
    """The clip window (``config``: :func:`clip_window`'s) for the sample ``key``.

    The ``nonsilent`` policy takes, in the still's seeded order, the first candidate whose every
    frame stretch is at or above the silence level (a frame is labelled sounding, so its second
    must be heard; VGGSound clips often hold silent seconds), and refuses the clip
    (``silent_audio``) when none is. ``fixed`` and ``loudest`` choose as for a still.
    """
    if config.policy != "nonsilent":
        return choose_window(clip, config, seed=seed, key=key)
    rate = clip.rate
    length = config.window_samples_at(rate)
    if clip.frames < length:
        raise WindowRefused("audio_too_short")
    samples = clip.read(0, clip.frames)
    starts = candidate_starts(len(samples), config, rate)
    stretch = length // frames
    levels = window_rms_dbfs(samples, np.arange(0, len(samples) - stretch + 1), stretch)
    order = sorted(range(len(starts)), key=lambda i: seeded_key(seed, "window", key, i))
    for i in order:
        start = int(starts[i])
        parts = levels[start : start + frames * stretch : stretch]
        if len(parts) == frames and parts.min() >= config.silence_dbfs:
            whole = window_rms_dbfs(samples, np.array([start]), length)[0]
            return Window(start=start, rms_dbfs=float(whole))
    raise WindowRefused("silent_audio")


def render_frames(
    image: Image.Image, boxes: tuple[Box, ...], size: tuple[int, int], *, quality: int
) -> tuple[bytes, ...]:
    """The JPEG bytes of each box of ``image`` (RGB) resized to ``size`` ``(width, height)``."""
    frames = []
    for x, y, w, h in boxes:
        frame = image.crop((x, y, x + w, y + h))
        if frame.size != size:
            frame = frame.resize(size, Image.Resampling.LANCZOS)
        frames.append(encode_image(frame, quality=quality))
    return tuple(frames)


def frame_mask(full_mask: np.ndarray, box: Box, size: tuple[int, int]) -> np.ndarray:
    """``full_mask`` cropped by ``box`` and resized to ``size`` ``(width, height)``: area average,
    then half coverage or more."""
    x, y, w, h = box
    part = full_mask[y : y + h, x : x + w]
    if part.shape == (size[1], size[0]):
        return part.copy()
    image = Image.fromarray(part.astype(np.uint8) * 255)
    return np.asarray(image.resize(size, Image.Resampling.BOX)) >= 128


def silence_stretches(
    audio: np.ndarray, silent: tuple[bool, ...], *, seed: int, key: str
) -> tuple[np.ndarray, str | None]:
    """``audio`` (``len(silent)`` equal stretches) with the silent frames' stretches replaced by
    seeded silence (digital zeros or a near-silent floor, one draw for the clip), and how the
    silence was drawn (None when no frame is silent)."""
    quiet = [t for t, is_silent in enumerate(silent) if is_silent]
    if not quiet:
        return audio, None
    n = len(audio) // len(silent)
    fill, policy = negative_window("silence", n * len(quiet), seed=seed, key=f"{key}-clip")
    out = np.array(audio, dtype=np.float32, copy=True)
    for i, t in enumerate(quiet):
        out[t * n : (t + 1) * n] = fill[i * n : (i + 1) * n]
    return out, policy


def stretch_levels(audio: np.ndarray, frames: int) -> tuple[float, ...]:
    """The RMS level in dBFS of each of the ``frames`` stretches of ``audio``."""
    n = len(audio) // frames
    return tuple(round(level_dbfs(audio[t * n : (t + 1) * n]), 3) for t in range(frames))


@dataclass(frozen=True)
class ClipFrames:
    """A clip's pictures: the crop path, the frames and their masks.

    Args:
        boxes: each frame's crop of the source picture.
        size: ``(width, height)`` of every frame.
        event: ``none``, ``onset`` or ``offset`` (see :mod:`avs_synth.building.clip_path`).
        silent: per frame, whether its audio is silenced (its mask is then empty).
        frames: each frame's JPEG bytes.
        masks: each frame's boolean ``[height, width]`` mask.
        region: the object-centric crop the path moves in (``crop object``), or None.
    """

    boxes: tuple[Box, ...]
    size: tuple[int, int]
    event: str
    silent: tuple[bool, ...]
    frames: tuple[bytes, ...]
    masks: tuple[np.ndarray, ...]
    region: tuple[int, int, int, int] | None = None

    def sounding_frames_shown(self) -> bool:
        """True when every sounding frame's mask kept some pixels after resizing."""
        return all(m.any() for m, quiet in zip(self.masks, self.silent, strict=True) if not quiet)

    def union(self) -> np.ndarray:
        """The union of the frames' masks."""
        return np.logical_or.reduce(self.masks)

    def audio_and_meta(
        self, audio: np.ndarray, config: BuildConfig, *, key: str
    ) -> tuple[np.ndarray, ClipMeta]:
        """The clip's audio window with its silent frames' stretches silenced, and its
        metadata."""
        audio, silence = silence_stretches(audio, self.silent, seed=config.seed, key=key)
        meta = ClipMeta(
            frames=len(self.frames),
            frame_s=config.window.window_s,
            boxes=self.boxes,
            path=PATH_NAME,
            silent=self.silent,
            event=None if self.event == "none" else self.event,
            silence=silence,
            areas=tuple(int(m.sum()) for m in self.masks),
            rms_dbfs=stretch_levels(audio, len(self.frames)),
        )
        return audio, meta

    def members(self, audio: bytes, meta: bytes, *, class_value: int | None) -> dict[str, bytes]:
        """The clip's tar members (``class_value``: the class-indexed masks' value, None
        without class masks)."""
        out: dict[str, bytes] = {}
        for t, (frame, mask) in enumerate(zip(self.frames, self.masks, strict=True)):
            out[frame_member(t, IMAGE)] = frame
            out[frame_member(t, MASK)] = encode_mask(mask)
            if class_value is not None:
                out[frame_member(t, CLASS_MASK)] = encode_class_mask(
                    mask.astype(np.int32) * class_value
                )
        out[AUDIO] = audio
        out[META] = meta
        return out


def cut_frames(
    image_path: Path, full_mask: np.ndarray, *, negative: bool, config: BuildConfig, key: str
) -> ClipFrames:
    """The frames of the clip ``key`` of the picture at ``image_path``, whose sounding mask at
    full size is ``full_mask`` (empty for a negative, whose path may go anywhere and whose audio
    is never silenced).

    Raises:
        OSError, SyntaxError, ValueError, Image.DecompressionBombError: the picture does not
            decode.
    """
    height, width = full_mask.shape
    n = config.frames
    region = clip_region(full_mask, negative=negative, config=config, key=key)
    rx, ry, rw, rh = region or (0, 0, width, height)
    sounding = None
    if not negative:
        mx, my, mw, mh = mask_box(full_mask)  # type: ignore[misc]
        sounding = (mx - rx, my - ry, mw, mh)
    path = crop_path(rw, rh, sounding, n, seed=config.seed, key=key)
    boxes = tuple((x + rx, y + ry, w, h) for x, y, w, h in path)
    size = frame_size(boxes, config.max_side)
    event, silent = ("none", (False,) * n)
    if not negative:
        event, silent = silent_frames(n, config.onset_offset, seed=config.seed, key=key)
    with Image.open(image_path) as image:
        frames = render_frames(image.convert("RGB"), boxes, size, quality=config.jpeg_quality)
    masks = tuple(
        frame_mask(full_mask, box, size) & (not quiet)
        for box, quiet in zip(boxes, silent, strict=True)
    )
    return ClipFrames(boxes, size, event, silent, frames, masks, region)


def clip_region(
    full_mask: np.ndarray, *, negative: bool, config: BuildConfig, key: str
) -> tuple[int, int, int, int] | None:
    """The part of the picture a clip's path moves in: with ``crop object``, a positive's
    object-centric crop (:func:`~avs_synth.building.framing.object_crop_box`, the mask's share
    as :meth:`BuildConfig.crop_fraction` gives it for ``key``); None (the whole picture)
    otherwise."""
    if config.crop != "object" or negative:
        return None
    return object_crop_box(full_mask, config.crop_fraction(key))
