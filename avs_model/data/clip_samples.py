"""Clip samples (``avs-synth build --frames N``; :mod:`avs_synth.schema`) in the shard stream:
the ``decode``, ``audio_example`` and ``augment`` / ``resize`` work of
:mod:`avs_model.data.stream` for a clip, which becomes N :class:`FrameSample` with one audio
example per frame, batched as AVSBench's S4 loader batches a video's five frames.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from avs_model.data.audio_bank import decode_window
from avs_model.data.augment import JointTransform
from avs_model.data.frame_batch import FrameSample
from avs_synth import schema
from avs_synth.audio.logmel import EXAMPLE_SAMPLES, LogMelFrontend, log_mel_to_examples


def decode_clip_sample(
    sample: dict[str, Any],
    *,
    where: str,
    needed: Callable[[int, int], tuple[int, int]] | None = None,
) -> dict[str, Any]:
    """Stage ``decode`` for a clip: :func:`decode_sample`'s fields with ``frames`` (N pictures),
    ``frame_masks`` (N full-resolution masks) and ``silent`` (per frame); ``image`` / ``mask``
    are frame 0's. The audio is always decoded (a clip keeps its own)."""
    try:
        meta = schema.decode_triplet_meta(sample[schema.META])
        if meta.clip is None:
            raise ValueError("frame members without clip metadata")
        members = schema.clip_members(meta.clip.frames)
        missing = [m for m in members if m not in sample]
        if missing:
            raise ValueError(f"sample lacks members {missing}")
        images, masks = [], []
        for t in range(meta.clip.frames):
            image, full_size = schema.decode_image_reduced(
                sample[schema.frame_member(t, schema.IMAGE)], needed
            )
            mask = schema.decode_mask(sample[schema.frame_member(t, schema.MASK)])
            if mask.shape != full_size:
                raise ValueError(f"frame {t}: mask {mask.shape} and picture {full_size} differ")
            images.append(image)
            masks.append(mask)
        audio = decode_window(sample[schema.AUDIO], f"{where}: audio")
    except Exception as error:
        raise ValueError(f"{where}: cannot decode the clip: {error}") from None
    return {
        "key": sample[schema.KEY],
        "image": images[0],
        "mask": masks[0],
        "frames": images,
        "frame_masks": masks,
        "silent": meta.clip.silent,
        "audio": audio,
        "audio_flac": None,
        "where": where,
        "audio_class": meta.audio_class,
        "negative": meta.negative,
        "negative_kind": meta.kind if meta.negative else "",
        "num_sources": meta.num_sources,
    }


def clip_examples(samples: np.ndarray, frames: int, offset: int, frontend: LogMelFrontend):
    """One VGGish example per frame ``[frames, 1, 96, 64]``: example ``t`` from ``offset``
    samples into frame ``t``'s stretch (``len(samples) / frames`` samples; a short stretch is
    padded with silence)."""
    stretch = len(samples) // frames
    pieces = []
    for t in range(frames):
        piece = samples[t * stretch + offset : t * stretch + min(stretch, offset + EXAMPLE_SAMPLES)]
        pieces.append(np.pad(piece, (0, EXAMPLE_SAMPLES - len(piece))))
    batch = torch.from_numpy(np.stack(pieces).astype(np.float32))  # [T, 15600]
    with torch.no_grad():
        return log_mel_to_examples(frontend(batch), num_examples=1)[:, 0]  # [T, 1, 96, 64]


def clip_frame_samples(
    sample: dict[str, Any], transform: JointTransform, draw: int, *, keep_gt: bool
) -> list[FrameSample]:
    """Stage ``augment`` / ``resize`` for a clip: its frames, each transformed with the same
    ``draw`` (one augmentation per clip, as the AVSBench loader does per video); a silent frame
    of a positive clip is marked as a ``silence`` negative frame (empty mask, silent audio)."""
    out = []
    pairs = zip(sample["frames"], sample["frame_masks"], sample["silent"], strict=True)
    for t, (image, mask, silent) in enumerate(pairs):
        frame = transform(image, mask, random.Random(draw))
        out.append(
            FrameSample(
                image=frame.image,
                mask=frame.mask,
                audio=sample["audio"][t],
                content_size=frame.content_size,
                gt_mask=torch.from_numpy(mask) if keep_gt else None,
                category=sample["audio_class"],
                key=f"{sample['key']}_{t}",
                negative_kind="silence" if silent else sample.get("negative_kind", ""),
                heard=heard_in_clip_frame(sample, silent),
            )
        )
    return out


def heard_in_clip_frame(sample: dict[str, Any], silent: bool) -> tuple[str, ...] | None:
    """A clip frame's heard classes: none while its source is silent, else a single-source clip's
    class; unknown (None) for a multi-source clip, whose sources may start or stop apart."""
    if silent or sample.get("negative_kind") == "silence":
        return ()
    if (sample.get("num_sources") or 1) > 1:
        return None
    return (sample["audio_class"],) if sample.get("audio_class") else ()
