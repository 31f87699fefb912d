"""The page ``avs-train evaluate`` writes: the best and worst predicted frames of each category,
with the audio the model heard.

The frames come from a :class:`~avs_model.evaluation.gallery.FrameGallery` filled during the
evaluation; the page itself is written by :class:`avs_synth.pages.PageWriter`, as the shard pages
of ``avs-synth inspect --html`` are. Each card shows the prediction tinted red with the ground
truth outlined green, the frame's IoU (AVSBench's, ungated) and sounding score, and plays:

- for a synthetic triplet, its stored audio window (read back from its shard);
- for an AVSBench frame ``{video}_{k}``, the 0.975 s of the video's wav that make the k-th
  VGGish example (from ``0.96 (k - 1)`` s), i.e. exactly what the model heard; none when the
  release holds only the log-mel ``.pkl``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import webdataset as wds

from avs_model.evaluation.gallery import FrameGallery, GalleryFrame
from avs_synth import schema
from avs_synth.audio.decode import load_audio
from avs_synth.audio.logmel import EXAMPLE_FRAMES, EXAMPLE_SAMPLES, HOP_LENGTH, SAMPLE_RATE
from avs_synth.overlay import MASK_COLOR, OUTLINE_COLOR
from avs_synth.pages import PageFilter, PageItem, PageWriter
from avs_synth.records import AVSBenchVideo

logger = logging.getLogger(__name__)

Audio = tuple[np.ndarray, int]
"""Mono float samples and their rate."""
AudioLookup = Callable[[Sequence[str]], dict[str, Audio]]
"""Frame keys -> the audio of those found."""

_EXAMPLE_HOP = EXAMPLE_FRAMES * HOP_LENGTH  # 15,360 samples = 0.96 s
FILTERS = (PageFilter("category", "category"), PageFilter("rank", "frames"))


def synthetic_audio(urls: Sequence[str]) -> AudioLookup:
    """Reads the stored windows of the given sample keys back from the shards (one pass that stops
    once every key is found; unreadable samples are skipped)."""

    def lookup(keys: Sequence[str]) -> dict[str, Audio]:
        wanted, found = set(keys), {}
        pipeline = wds.WebDataset(
            list(urls), shardshuffle=False, handler=wds.warn_and_continue, empty_check=False
        )
        for sample in pipeline:
            key = sample.get(schema.KEY)
            if key in wanted and schema.AUDIO in sample:
                try:
                    found[key] = schema.decode_audio(sample[schema.AUDIO])
                except (RuntimeError, ValueError) as error:
                    logger.warning(
                        "%s[%s]: audio does not decode (%s)", sample["__url__"], key, error
                    )
                if len(found) == len(wanted):
                    break
        return found

    return lookup


def avsbench_audio(videos: Iterable[AVSBenchVideo]) -> AudioLookup:
    """The VGGish example's stretch of each frame's video wav (see the module docstring)."""
    by_name = {video.name: video for video in videos}

    def lookup(keys: Sequence[str]) -> dict[str, Audio]:
        found: dict[str, Audio] = {}
        for key in keys:
            name, _, index = key.rpartition("_")
            video = by_name.get(name)
            if video is None or video.wav_path is None or not index.isdigit():
                continue
            try:
                samples = load_audio(video.wav_path, sample_rate=SAMPLE_RATE)
            except (OSError, ValueError, RuntimeError) as error:
                logger.warning("%s: audio not read for the page (%s)", video.wav_path, error)
                continue
            start = (int(index) - 1) * _EXAMPLE_HOP
            if start + EXAMPLE_SAMPLES > len(samples):  # short audio: the last example repeats
                start = max(0, len(samples) - EXAMPLE_SAMPLES)
            found[key] = (samples[start : start + EXAMPLE_SAMPLES], SAMPLE_RATE)
        return found

    return lookup


def _card(page: PageWriter, frame: GalleryFrame, rank: str, audio: Audio | None) -> PageItem:
    facts = (
        ("category", frame.category or "none"),
        ("frame", frame.key),
        ("IoU", f"{frame.iou:.3f}"),
        ("sounding score", f"{frame.score:.3f}"),
        ("predicted mask", f"{frame.prediction.mean():.1%} of the frame"),
        ("ground truth", f"{frame.truth.mean():.1%} of the frame"),
        ("audio", "what the model heard" if audio else "not available (no wav / not found)"),
    )
    return PageItem(
        title=f"{frame.category or 'frame'}: {frame.key}",
        picture=page.picture(frame.overlay()),
        plain_picture=page.picture(frame.plain()),
        audio=page.audio(*audio) if audio is not None else None,
        facts=facts,
        filters=(("category", frame.category or "none"), ("rank", rank)),
        badge=f"{rank} IoU {frame.iou:.2f}",
    )


def write_prediction_page(
    gallery: FrameGallery,
    folder: Path,
    *,
    title: str,
    summary: Sequence[str],
    audio: AudioLookup | None,
) -> Path:
    """Write the page of the gallery's best and worst frames per category; returns
    ``index.html``."""
    chosen: list[tuple[GalleryFrame, str]] = []
    for category in gallery.categories:
        best, worst = gallery.best(category), gallery.worst(category)
        best_keys = {f.key for f in best}
        chosen += [(f, "best") for f in best]
        chosen += [(f, "worst") for f in worst if f.key not in best_keys]
    sounds = audio([f.key for f, _ in chosen]) if audio is not None and chosen else {}
    legend = ((MASK_COLOR, "prediction"), (OUTLINE_COLOR, "ground truth"))
    with PageWriter(folder, title=title, filters=FILTERS, summary=summary, legend=legend) as page:
        for frame, rank in chosen:
            page.add(_card(page, frame, rank, sounds.get(frame.key)))
    return folder / "index.html"
