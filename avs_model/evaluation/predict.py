"""``avs-train predict``: sounding-object masks for a video, or for frames plus an audio file.

Frames and audio are paired as AVSBench pairs them: by default one frame per second, frame ``i``
taken near the end of second ``i`` and given the VGGish example of that second (the clip's
examples computed as AVSBench does: 0.96 s hops from the start, the last one repeated when the
audio is short). With ``--fps f`` frame ``i`` is taken near ``(i + 1) / f`` s and given the
0.975 s of audio that end there. A video's frames and audio are read in-process through PyAV
(:mod:`avs_model.evaluation.video_io`; no ``ffmpeg`` program). Given frames (a folder or a list of
images) and an audio file, frame ``i`` stands for the same instant.

The audio becomes 16 kHz with ``resampler``: ``avsbench`` (the default: exactly as AVSBench made
its wavs, so the model hears what it was evaluated on) or ``bandlimited`` (see
:mod:`avs_synth.audio.decode`). Pictures over PIL's decompression-bomb limit are refused with the
file named.

Outputs in ``--out``: ``masks/frame_{i:05d}.png`` (binary, the picture's resolution),
``overlays/frame_{i:05d}.png`` (the mask tinted over the picture with the frame's time and
sounding score), ``overlay.mp4`` (with the input's audio), and ``predictions.json`` (strict JSON:
a score that is not a finite number, from a model gone NaN, is written as ``null`` and warned
about).
"""

from __future__ import annotations

import json
import logging
import math
import random
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from avs_model.data.augment import JointTransform, ResizeConfig
from avs_model.data.frame_batch import FrameSample, collate_frames
from avs_model.evaluation.evaluate import load_model
from avs_model.evaluation.loop import frame_logits, model_inputs
from avs_model.evaluation.video_io import (
    check_picture_size,
    encode_overlay_video,
    grab_frames,
    video_duration,
)
from avs_model.runtime.amp import resolve_precision
from avs_model.runtime.distributed import resolve_device
from avs_model.runtime.train_config import TrainConfig
from avs_synth.audio.decode import Resampler, check_resampler, load_audio
from avs_synth.audio.logmel import EXAMPLE_SAMPLES, SAMPLE_RATE, waveform_to_examples
from avs_synth.errors import DataFormatError
from avs_synth.overlay import mask_overlay

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
FRAME_OFFSET_S = 0.04
"""A frame stands ``FRAME_OFFSET_S`` before the end of its interval ("near the end of second k")."""


@dataclass
class PredictedFrame:
    """One output frame.

    Attributes:
        index: frame number.
        time_s: the instant the frame stands for.
        score: the best query's sounding score (sigmoid); None when not a finite number.
        sounding: False when the gate emptied the mask.
        mask_fraction: fraction of the picture in the mask.
        mask: path of the mask PNG.
        overlay: path of the overlay PNG.
    """

    index: int
    time_s: float
    score: float | None
    sounding: bool
    mask_fraction: float
    mask: str
    overlay: str


@dataclass
class PredictionReport:
    """Everything ``predict`` wrote."""

    frames: list[PredictedFrame]
    video: Path | None
    predictions_json: Path


def frame_times(num_frames: int, fps: float) -> list[float]:
    """The instant of each frame: ``(i + 1) / fps - FRAME_OFFSET_S`` (never below 0)."""
    return [max(0.0, (i + 1) / fps - FRAME_OFFSET_S) for i in range(num_frames)]


def audio_examples(samples: np.ndarray, num_frames: int, fps: float) -> torch.Tensor:
    """One log-mel example per frame ``[num_frames, 1, 96, 64]`` (see the module docstring)."""
    samples = np.asarray(samples, dtype=np.float32)
    if fps == 1.0:
        return waveform_to_examples(samples, num_examples=num_frames).float()
    out = []
    for i in range(num_frames):
        end = int(round((i + 1) / fps * SAMPLE_RATE))
        start = max(0, end - EXAMPLE_SAMPLES)
        window = samples[start : start + EXAMPLE_SAMPLES]
        if len(window) < EXAMPLE_SAMPLES:
            window = np.pad(window, (0, EXAMPLE_SAMPLES - len(window)))
        out.append(waveform_to_examples(window, num_examples=1)[0])
    return torch.stack(out).float()


def read_image(path: Path) -> Image.Image:
    """A picture as RGB; one over the decompression-bomb limit is refused before it is decoded.

    Raises:
        FileNotFoundError: no such file.
        DataFormatError: not a readable picture, or too large (names the file).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                check_picture_size(path, image.width, image.height)
                return image.convert("RGB")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: image not found") from None
    except DataFormatError:
        raise
    except (
        OSError,
        SyntaxError,
        ValueError,
        UnidentifiedImageError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ) as error:
        raise DataFormatError(path, f"cannot decode image: {error}") from None


def list_frames(paths: Sequence[Path]) -> list[Path]:
    """Image files: each given file, and the images of each given folder (sorted by name)."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise FileNotFoundError(f"{path}: no images ({', '.join(IMAGE_SUFFIXES)})")
            out += found
        elif path.is_file():
            out.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such image or folder")
    return out


def predict(
    checkpoint: str | Path,
    *,
    out_dir: str | Path,
    video: str | Path | None = None,
    frames: Sequence[str | Path] = (),
    audio: str | Path | None = None,
    fps: float = 1.0,
    gate_threshold: float | None = None,
    gate: bool = True,
    image_size: int | None = None,
    device: str = "auto",
    batch_size: int = 8,
    write_video: bool = True,
    resampler: Resampler = "avsbench",
) -> PredictionReport:
    """Predict sounding-object masks (see the module docstring).

    Args:
        checkpoint: an ``avs-train`` checkpoint.
        out_dir: the output folder.
        video: a video file (frames and audio from it, through PyAV).
        frames: images or folders of images (with ``audio``), instead of ``video``.
        audio: the audio file of ``frames`` (any format :func:`load_audio` reads).
        fps: frames per second (1: AVSBench's pairing).
        gate_threshold: the sounding-score gate (default: the checkpoint's).
        gate: apply the gate (False: every frame gets its best query's mask).
        image_size: the model input side (default: the checkpoint's training size).
        device: ``auto``, ``cpu``, ``cuda``.
        batch_size: frames per forward pass.
        write_video: also encode ``overlay.mp4``.
        resampler: how the audio becomes 16 kHz: ``avsbench`` or ``bandlimited``.
    """
    if (video is None) == (not frames):
        raise ValueError("give either a video, or frames with an audio file")
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps}")
    if gate_threshold is not None and not math.isfinite(gate_threshold):
        raise ValueError(f"gate_threshold must be a number, got {gate_threshold}")
    check_resampler(resampler, SAMPLE_RATE)
    out = Path(out_dir)
    torch_device = resolve_device(device)
    model, ckpt = load_model(checkpoint, torch_device)
    config = TrainConfig.from_dict(ckpt.train_config, source=str(checkpoint))
    resize: ResizeConfig = config.data.resize
    if image_size is not None:
        resize.size = image_size
    threshold = config.eval.gate_threshold if gate_threshold is None else gate_threshold
    precision = resolve_precision(config.precision, torch_device)

    audio_source: Path | None
    if video is not None:
        video = Path(video)
        if not video.is_file():
            raise FileNotFoundError(f"{video}: video not found")
        duration = video_duration(video)
        count = max(1, int(math.floor(duration * fps + 1e-6)))
        times = frame_times(count, fps)
        pictures = grab_frames(video, times)
        samples = load_audio(video, sample_rate=SAMPLE_RATE, resampler=resampler)
        audio_source = video
    else:
        if audio is None:
            raise ValueError("frames need an audio file (--audio)")
        paths = list_frames([Path(f) for f in frames])
        pictures = [read_image(p) for p in paths]
        times = frame_times(len(pictures), fps)
        samples = load_audio(audio, sample_rate=SAMPLE_RATE, resampler=resampler)
        audio_source = Path(audio)
    examples = audio_examples(samples, len(pictures), fps)  # [T, 1, 96, 64]

    transform = JointTransform(resize=resize)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    (out / "overlays").mkdir(parents=True, exist_ok=True)
    results: list[PredictedFrame] = []
    with torch.no_grad():
        for begin in range(0, len(pictures), batch_size):
            chunk = list(range(begin, min(begin + batch_size, len(pictures))))
            samples_ = []
            for i in chunk:
                frame = transform(pictures[i], None, random.Random(0))
                samples_.append(
                    [
                        FrameSample(
                            image=frame.image,
                            mask=None,
                            audio=examples[i],
                            content_size=frame.content_size,
                            key=str(i),
                        )
                    ]
                )
            batch = collate_frames(samples_, pad_multiple=resize.pad_multiple)
            images, audio_t = model_inputs(batch, torch_device)
            with precision.autocast():
                outputs = model(images, audio_t)
            sizes = [(pictures[i].height, pictures[i].width) for i in chunk]
            logits, scores = frame_logits(
                outputs, batch, sizes=sizes, gate_threshold=threshold if gate else None
            )
            for i, logit, score in zip(chunk, logits, scores.tolist(), strict=True):
                mask = (logit.sigmoid() > 0.5).numpy()
                sounding = not gate or score >= threshold
                mask_path = out / "masks" / f"frame_{i:05d}.png"
                overlay_path = out / "overlays" / f"frame_{i:05d}.png"
                Image.fromarray(mask.astype(np.uint8) * 255).save(mask_path)
                finite = math.isfinite(score)
                caption = f"t={times[i]:.2f}s  sounding score {score:.2f}"
                if not sounding:
                    caption += " (silent: gated)"
                mask_overlay(pictures[i], mask, caption=caption).save(overlay_path)
                results.append(
                    PredictedFrame(
                        index=i,
                        time_s=round(times[i], 4),
                        score=round(float(score), 6) if finite else None,
                        sounding=sounding,
                        mask_fraction=round(float(mask.mean()), 6),
                        mask=str(mask_path),
                        overlay=str(overlay_path),
                    )
                )
    not_finite = sum(r.score is None for r in results)
    if not_finite:
        logger.warning(
            "%d of %d frames got a sounding score that is not a number (the model output NaN or "
            "infinity); predictions.json holds null for them",
            not_finite,
            len(results),
        )
    video_path = None
    if write_video:
        video_path = encode_overlay_video(
            [Path(r.overlay) for r in results], out / "overlay.mp4", fps=fps, audio=audio_source
        )
    predictions = out / "predictions.json"
    predictions.write_text(
        json.dumps(
            {
                "checkpoint": str(checkpoint),
                "fps": fps,
                "resampler": resampler,
                "gate_threshold": threshold if gate else None,
                "video": str(video_path) if video_path else None,
                "frames": [asdict(r) for r in results],
            },
            indent=2,
            allow_nan=False,  # strict JSON, whatever the model gives
        )
    )
    return PredictionReport(frames=results, video=video_path, predictions_json=predictions)
