"""Video for ``predict``, in-process through PyAV (FFmpeg's libraries from its wheel, no ``ffmpeg``
program): a video's duration and the frames at given instants, and the overlay video written back
with the input's audio.

Pictures are bounded before they are decoded: a frame larger than PIL's decompression-bomb limit
(``Image.MAX_IMAGE_PIXELS``) is refused with the file named, never allocated.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np
from PIL import Image

from avs_synth.audio.container import (
    ContainerDecoder,
    add_aac_stream,
    error_text,
    mux_audio,
    open_stream,
)
from avs_synth.errors import DataFormatError

logger = logging.getLogger(__name__)

__all__ = ["check_picture_size", "encode_overlay_video", "grab_frames", "video_duration"]

VIDEO_CODECS = ("libx264", "h264", "mpeg4")
"""Tried in this order for the overlay video (H.264 where the wheel's FFmpeg has an encoder)."""


def check_picture_size(path: Path, width: int, height: int) -> None:
    """Refuse a picture over PIL's decompression-bomb limit before anything is allocated.

    Raises:
        DataFormatError: ``width * height`` exceeds ``Image.MAX_IMAGE_PIXELS`` (names the file).
    """
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and width * height > limit:
        raise DataFormatError(
            path,
            f"a {width}x{height} picture ({width * height:,} pixels) is over the "
            f"{limit:,}-pixel limit (a decompression bomb?); resize it first",
        )


def _open_video(path: Path) -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
    container, stream = open_stream(path, "video", DataFormatError)
    try:
        check_picture_size(path, stream.codec_context.width, stream.codec_context.height)
    except DataFormatError:
        container.close()
        raise
    return container, stream  # type: ignore[return-value]


def video_duration(path: Path) -> float:
    """A video's duration in seconds (the container's, else its video stream's).

    Raises:
        FileNotFoundError, DataFormatError: no such file, not a video, or no duration.
    """
    container, stream = _open_video(path)
    with container:
        if container.duration is not None and container.duration > 0:
            return container.duration / 1_000_000
        if stream.duration is not None and stream.time_base is not None:
            return float(stream.duration * stream.time_base)
    raise DataFormatError(path, "the video declares no duration")


def grab_frames(path: Path, times: Sequence[float]) -> list[Image.Image]:
    """For each instant, the first video frame at or after it; past the last frame, the last one.

    The video is decoded once, front to back; only the chosen frames are kept.

    Raises:
        FileNotFoundError, DataFormatError: as :func:`video_duration`, or no frame decodes.
    """
    container, stream = _open_video(path)
    chosen: list[Image.Image | None] = [None] * len(times)
    order = sorted(range(len(times)), key=lambda i: times[i])
    pending = 0
    last: av.VideoFrame | None = None
    try:
        with container:
            for frame in container.decode(stream):
                check_picture_size(path, frame.width, frame.height)
                at = frame.time if frame.time is not None else 0.0
                while pending < len(order) and at >= times[order[pending]] - 1e-6:
                    chosen[order[pending]] = frame.to_image().convert("RGB")
                    pending += 1
                last = frame
                if pending == len(order):
                    break
    except av.error.FFmpegError as error:
        raise DataFormatError(path, f"cannot decode the video: {error_text(error)}") from None
    if last is None:
        raise DataFormatError(path, "no video frame could be decoded")
    tail = last.to_image().convert("RGB") if pending < len(order) else None
    return [picture if picture is not None else tail for picture in chosen]  # type: ignore[misc]


def encode_overlay_video(
    pictures: Sequence[Path], out: Path, *, fps: float, audio: Path | None
) -> Path | None:
    """The overlay PNGs as a video (H.264 when available, else MPEG-4), with ``audio``'s sound
    (AAC, cut at the video's end). Returns None, with a warning, when no encoder works."""
    for codec in VIDEO_CODECS:
        try:
            _encode(pictures, out, fps=fps, audio=audio, codec=codec)
            return out
        except (av.error.FFmpegError, ValueError) as error:  # codec missing or refusing
            logger.debug("overlay video with %s failed: %s", codec, error)
            out.unlink(missing_ok=True)
    logger.warning("could not encode %s; the overlay PNGs are written", out)
    return None


def _encode(
    pictures: Sequence[Path], out: Path, *, fps: float, audio: Path | None, codec: str
) -> None:
    first = Image.open(pictures[0])
    width, height = first.width // 2 * 2, first.height // 2 * 2  # even sides for yuv420p
    rate = _frame_rate(fps)
    seconds = len(pictures) / fps
    sound = _sound(audio, seconds) if audio is not None else None
    with av.open(str(out), "w") as container:
        video = container.add_stream(codec, rate=rate)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio_stream = None
        if sound is not None:
            samples, sample_rate = sound
            audio_stream = add_aac_stream(container, rate=sample_rate, channels=samples.shape[1])
        for index, picture in enumerate(pictures):
            with Image.open(picture) as image:
                rgb = np.asarray(image.convert("RGB"))[:height, :width]
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts = index
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        if audio_stream is not None and sound is not None:
            mux_audio(container, audio_stream, sound[0])


def _frame_rate(fps: float):
    from fractions import Fraction

    return Fraction(fps).limit_denominator(1001)


def _sound(path: Path, seconds: float) -> tuple[np.ndarray, int] | None:
    """The first ``seconds`` of ``path``'s audio at its own rate, mono or stereo (None: none)."""
    try:
        decoder = ContainerDecoder(path=path)
    except (FileNotFoundError, DataFormatError) as error:
        logger.info("overlay video without sound: %s", error)
        return None
    try:
        samples = decoder.decode(0, int(round(seconds * decoder.rate)))
    except DataFormatError as error:
        logger.info("overlay video without sound: %s", error)
        return None
    finally:
        decoder.close()
    if samples.shape[1] > 2:
        samples = samples.mean(axis=1, keepdims=True, dtype=np.float32)
    if len(samples) == 0:
        return None
    return np.clip(samples, -1.0, 1.0), decoder.rate
