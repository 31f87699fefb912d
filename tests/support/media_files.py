"""Media files for tests, written with PyAV (no ``ffmpeg`` program), and a guard that keeps any
``ffmpeg`` / ``ffprobe`` program out of a test's reach."""

from __future__ import annotations

import subprocess
from pathlib import Path

import av
import numpy as np
import pytest


def write_media(
    path: Path,
    samples: np.ndarray,
    rate: int,
    *,
    codec: str = "aac",
    video_size: tuple[int, int] | None = None,
    video_frames: list[np.ndarray] | None = None,
    fps: int = 4,
) -> Path:
    """A media file holding ``samples`` (float [N, C] in [-1, 1) or int16) as its audio stream.

    Args:
        path: the file (its extension picks the container: .mp4, .m4a, .mkv, ...).
        samples: [N] or [N, C] audio.
        rate: its sample rate.
        codec: the audio codec (``aac``, ``flac``, ``alac``, ``libopus``, ``pcm_s16le``).
        video_size: also a black video stream of this (width, height).
        video_frames: also a video stream of these RGB uint8 pictures.
        fps: the video stream's frame rate.
    """
    data = np.asarray(samples)
    if data.ndim == 1:
        data = data[:, None]
    if data.dtype == np.int16:
        data = data.astype(np.float32) / 32768.0
    data = data.astype(np.float32)
    channels = data.shape[1]
    with av.open(str(path), "w") as out:
        video = None
        if video_size is not None or video_frames is not None:
            if video_frames is None:
                assert video_size is not None
                width, height = video_size
                count = max(1, int(round(len(data) / rate * fps)))
                video_frames = [np.zeros((height, width, 3), np.uint8)] * count
            video = out.add_stream("mpeg4", rate=fps)
            video.height, video.width = video_frames[0].shape[:2]
            video.pix_fmt = "yuv420p"
        audio = out.add_stream(codec, rate=rate, layout="stereo" if channels == 2 else "mono")
        fmt = audio.codec_context.format
        step = audio.codec_context.frame_size or 1024
        for begin in range(0, len(data), step):
            chunk = data[begin : begin + step]
            if fmt.name.startswith("s16"):
                chunk = np.clip(np.rint(chunk * 32768), -32768, 32767).astype(np.int16)
            elif fmt.name.startswith("s32"):
                chunk = np.clip(np.rint(chunk * 2**31), -(2**31), 2**31 - 1).astype(np.int32)
            array = chunk.T if fmt.is_planar else chunk.reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(array), format=fmt.name, layout=audio.layout.name
            )
            frame.sample_rate = rate
            frame.pts = begin
            for packet in audio.encode(frame):
                out.mux(packet)
        for packet in audio.encode(None):
            out.mux(packet)
        if video is not None:
            assert video_frames is not None
            for index, picture in enumerate(video_frames):
                frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
                frame.pts = index
                for packet in video.encode(frame):
                    out.mux(packet)
            for packet in video.encode(None):
                out.mux(packet)
    return path


@pytest.fixture
def no_ffmpeg(monkeypatch, tmp_path):
    """No ``ffmpeg`` / ``ffprobe`` program: PATH without them, and any attempt to run one fails
    the test (the toolkit must decode and encode in-process through PyAV)."""
    bin_dir = tmp_path / "bin-without-ffmpeg"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    real_popen = subprocess.Popen

    class GuardedPopen(real_popen):  # type: ignore[misc, valid-type]
        def __init__(self, args, *rest, **kwargs):
            program = args if isinstance(args, str) else (args[0] if args else "")
            if Path(str(program).split()[0]).name.startswith(("ffmpeg", "ffprobe")):
                raise AssertionError(f"an ffmpeg program was run: {args}")
            super().__init__(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", GuardedPopen)
    yield
