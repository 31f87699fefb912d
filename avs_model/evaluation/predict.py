"""``avs-train predict``: sounding-object masks for a video, or for frames plus an audio file.

Frames and audio are paired as AVSBench pairs them: by default one frame per second, frame ``i``
taken near the end of second ``i`` and given the VGGish example of that second (the clip's
examples computed as AVSBench does: 0.96 s hops from the start, the last one repeated when the
audio is short). With ``--fps f`` frame ``i`` is taken near ``(i + 1) / f`` s and given the
0.975 s of audio that end there. A video's audio is read through FFmpeg; frames are grabbed with
FFmpeg too. Given frames (a folder or a list of images) and an audio file, frame ``i`` stands for
the same instant.

Outputs in ``--out``: ``masks/frame_{i:05d}.png`` (binary, the picture's resolution),
``overlays/frame_{i:05d}.png`` (the mask tinted over the picture with the frame's time and
sounding score), ``overlay.mp4`` when FFmpeg is installed (with the input's audio), and
``predictions.json``.
"""

from __future__ import annotations

import json
import logging
import math
import random
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from io import BytesIO
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from avs_model.data.augment import JointTransform, ResizeConfig
from avs_model.data.frame_batch import FrameSample, collate_frames
from avs_model.evaluation.evaluate import load_model
from avs_model.evaluation.loop import frame_logits, model_inputs
from avs_model.runtime.amp import resolve_precision
from avs_model.runtime.distributed import resolve_device
from avs_model.runtime.train_config import TrainConfig
from avs_synth.audio.decode import FFmpegNotFoundError, load_audio
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
        score: the best query's sounding score (sigmoid).
        sounding: False when the gate emptied the mask.
        mask_fraction: fraction of the picture in the mask.
        mask: path of the mask PNG.
        overlay: path of the overlay PNG.
    """

    index: int
    time_s: float
    score: float
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


def _ffmpeg() -> str:
    found = shutil.which("ffmpeg")
    if found is None:
        raise FFmpegNotFoundError(
            "`ffmpeg` was not found on the PATH; it is needed to read frames from a video "
            "(install FFmpeg, or give --frames and --audio instead)"
        )
    return found


def video_duration(path: Path) -> float:
    """A video's duration in seconds (ffprobe)."""
    _ffmpeg()
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        raise FFmpegNotFoundError("`ffprobe` (shipped with FFmpeg) was not found on the PATH")
    command = [
        ffprobe,
        "-v",
        "error",
        "-show_entries",
        "format=duration",
        "-of",
        "csv=p=0",
        str(path),
    ]
    result = subprocess.run(command, capture_output=True, check=False)
    try:
        return float(result.stdout.decode().strip().splitlines()[0])
    except (ValueError, IndexError):
        detail = result.stderr.decode("utf-8", "replace").strip()
        raise DataFormatError(path, f"cannot read the video's duration: {detail}") from None


def grab_frame(path: Path, time_s: float) -> Image.Image:
    """The first video frame at or after ``time_s`` (FFmpeg); near the end of a video, where no
    frame starts after ``time_s``, the last frame before it."""
    detail = "no frame decoded"
    for back in np.arange(0.0, 2.01, 0.1):
        at = max(0.0, time_s - float(back))
        command = [
            _ffmpeg(),
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-ss",
            f"{at:.3f}",
            "-i",
            str(path),
            "-frames:v",
            "1",
            "-f",
            "image2pipe",
            "-vcodec",
            "png",
            "pipe:1",
        ]
        result = subprocess.run(command, capture_output=True, check=False)
        if result.returncode == 0 and result.stdout:
            return Image.open(BytesIO(result.stdout)).convert("RGB")
        detail = result.stderr.decode("utf-8", "replace").strip() or detail
        if result.returncode != 0 or at == 0.0:
            break
    raise DataFormatError(path, f"cannot read a frame at {time_s:.2f} s: {detail}")


def read_image(path: Path) -> Image.Image:
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: image not found") from None
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError) as error:
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


def encode_video(frames_pattern: str, out: Path, *, fps: float, audio: Path | None) -> Path | None:
    """Overlay PNGs → ``out`` (H.264 when available, else MPEG-4), with ``audio`` muxed in."""
    if shutil.which("ffmpeg") is None:
        logger.info("FFmpeg not found: no overlay video (the overlay PNGs are written)")
        return None
    for codec in (["-c:v", "libx264", "-pix_fmt", "yuv420p"], ["-c:v", "mpeg4", "-q:v", "3"]):
        command = [
            _ffmpeg(),
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-framerate",
            f"{fps:g}",
            "-i",
            frames_pattern,
        ]
        if audio is not None:
            command += [
                "-i",
                str(audio),
                "-map",
                "0:v:0",
                "-map",
                "1:a:0?",
                "-c:a",
                "aac",
                "-shortest",
            ]
        command += ["-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2", *codec, str(out)]
        result = subprocess.run(command, capture_output=True, check=False)
        if result.returncode == 0:
            return out
        logger.debug("ffmpeg %s failed: %s", codec[1], result.stderr.decode(errors="replace"))
    logger.warning("FFmpeg could not encode %s; the overlay PNGs are written", out)
    return None


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
) -> PredictionReport:
    """Predict sounding-object masks (see the module docstring).

    Args:
        checkpoint: an ``avs-train`` checkpoint.
        out_dir: the output folder.
        video: a video file (frames and audio from it, through FFmpeg).
        frames: images or folders of images (with ``audio``), instead of ``video``.
        audio: the audio file of ``frames`` (any format :func:`load_audio` reads).
        fps: frames per second (1: AVSBench's pairing).
        gate_threshold: the sounding-score gate (default: the checkpoint's).
        gate: apply the gate (False: every frame gets its best query's mask).
        image_size: the model input side (default: the checkpoint's training size).
        device: ``auto``, ``cpu``, ``cuda``.
        batch_size: frames per forward pass.
        write_video: also encode ``overlay.mp4`` when FFmpeg is there.
    """
    if (video is None) == (not frames):
        raise ValueError("give either a video, or frames with an audio file")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
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
        pictures = [grab_frame(video, t) for t in times]
        samples = load_audio(video, sample_rate=SAMPLE_RATE)
        audio_source = video
    else:
        if audio is None:
            raise ValueError("frames need an audio file (--audio)")
        paths = list_frames([Path(f) for f in frames])
        pictures = [read_image(p) for p in paths]
        times = frame_times(len(pictures), fps)
        samples = load_audio(audio, sample_rate=SAMPLE_RATE)
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
                caption = f"t={times[i]:.2f}s  sounding score {score:.2f}"
                if not sounding:
                    caption += " (silent: gated)"
                mask_overlay(pictures[i], mask, caption=caption).save(overlay_path)
                results.append(
                    PredictedFrame(
                        index=i,
                        time_s=round(times[i], 4),
                        score=round(float(score), 6),
                        sounding=sounding,
                        mask_fraction=round(float(mask.mean()), 6),
                        mask=str(mask_path),
                        overlay=str(overlay_path),
                    )
                )
    video_path = None
    if write_video:
        video_path = encode_video(
            str(out / "overlays" / "frame_%05d.png"),
            out / "overlay.mp4",
            fps=fps,
            audio=audio_source,
        )
    predictions = out / "predictions.json"
    predictions.write_text(
        json.dumps(
            {
                "checkpoint": str(checkpoint),
                "fps": fps,
                "gate_threshold": threshold if gate else None,
                "video": str(video_path) if video_path else None,
                "frames": [asdict(r) for r in results],
            },
            indent=2,
        )
    )
    return PredictionReport(frames=results, video=video_path, predictions_json=predictions)
