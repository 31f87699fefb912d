"""Decoding audio from media containers in-process with PyAV (FFmpeg's libraries, from the wheel),
and the one way the toolkit writes an AAC stream (:func:`add_aac_stream`, :func:`mux_audio`).

VGGSound clips are often kept as downloaded (``.mp4`` / ``.mkv`` / ``.webm``); their first audio
stream is decoded here, with no ``ffmpeg`` program involved. Samples come back as float32 at the
stream's own rate and channel count (integer PCM scaled by ``1 / 2**(bits - 1)``, FFmpeg's own
conversion), trimmed at the stream's declared duration as the ``ffmpeg`` command line trims them
(an AAC stream's last frame is padded beyond it).

:meth:`ContainerDecoder.decode` reads a stretch by seeking to it (less a warm-up of
:data:`WARMUP_S`, decoded and dropped so that the codec's overlap state is rebuilt) and decoding
only that stretch. Lossless codecs give exactly the samples of a whole decode; lossy ones
almost exactly: FFmpeg's AAC decoder fills noise-substituted bands (PNS) from a random state that
runs from the start of the stream, so those bands hold different noise after a seek. The AVSBench
resampler (:mod:`avs_synth.audio.avsbench_resampler`) therefore decodes from the clip's start.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import av
import numpy as np

from avs_synth.audio.audio_checks import AudioReadError, check_finite, check_format
from avs_synth.errors import DataFormatError

logger = logging.getLogger(__name__)

__all__ = [
    "WARMUP_S",
    "ContainerDecoder",
    "add_aac_stream",
    "error_text",
    "frame_planes",
    "frame_samples",
    "mux_audio",
    "open_audio",
    "open_stream",
    "plausible_seconds",
]

WARMUP_S = 0.1
"""Audio decoded before a seeked stretch and dropped (about four AAC frames at 44.1 kHz)."""
MAX_DURATION_S = 24 * 3600.0
"""A stream declaring more than this is refused (a corrupt or hostile header)."""
MIN_BITRATE = 4_000
"""Bits per second below which no real audio stream goes (the lowest speech codecs use ~6 kb/s):
a file declaring a longer duration than its size allows at this rate is decoded to be measured."""


def plausible_seconds(path: Path) -> float:
    """The longest audio the file's size allows at :data:`MIN_BITRATE` (plus a second)."""
    return path.stat().st_size * 8 / MIN_BITRATE + 1.0


_DTYPES = {
    "u8": np.uint8,
    "s16": np.int16,
    "s32": np.int32,
    "s64": np.int64,
    "flt": np.float32,
    "dbl": np.float64,
}
_SCALE = {"s16": 1 / 32768, "s32": 1 / 2147483648, "s64": 1 / 9223372036854775808, "u8": 1 / 128}


def frame_planes(frame: av.AudioFrame) -> list[np.ndarray]:
    """A decoded frame's samples without copying: one 1-D array per channel for planar formats,
    one interleaved array for packed ones (``to_ndarray`` rows, an order of magnitude faster)."""
    dtype = _DTYPES[frame.format.name.rstrip("p")]
    planar = frame.format.is_planar
    count = frame.samples * (1 if planar else frame.layout.nb_channels)
    return [np.frombuffer(plane, dtype, count) for plane in frame.planes[: None if planar else 1]]


def frame_samples(frame: av.AudioFrame) -> np.ndarray:
    """A decoded frame as float32 ``[n, C]`` (integer PCM scaled to [-1, 1) as FFmpeg does)."""
    planes = frame_planes(frame)
    channels = frame.layout.nb_channels
    data = np.stack(planes, axis=1) if frame.format.is_planar else planes[0].reshape(-1, channels)
    name = frame.format.name.rstrip("p")
    if name == "u8":
        data = data.astype(np.float32) - 128.0
    if name in _SCALE:
        return (data * np.float32(_SCALE[name])).astype(np.float32)
    return np.ascontiguousarray(data, dtype=np.float32)


def open_stream(
    path: Path, kind: Literal["audio", "video"], error: type[DataFormatError]
) -> tuple[av.container.InputContainer, av.stream.Stream]:
    """The media file at ``path`` and its first ``kind`` stream, opened for decoding.

    Raises:
        FileNotFoundError: no such file.
        error: (a :class:`DataFormatError`) not a media file, or no such stream (names the file).
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {kind} file not found")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, OSError, ValueError) as failure:
        raise error(path, f"cannot decode {kind}: {error_text(failure)}") from None
    streams = container.streams.audio if kind == "audio" else container.streams.video
    if not streams:
        container.close()
        raise error(path, f"holds no {kind} stream")
    return container, streams[0]


def open_audio(path: Path) -> tuple[av.container.InputContainer, av.audio.stream.AudioStream]:
    """The container at ``path`` and its first audio stream, opened for decoding.

    Raises:
        FileNotFoundError: no such file.
        AudioReadError: not a media file, no audio stream, or an impossible declared format.
    """
    container, stream = open_stream(path, "audio", AudioReadError)
    try:
        context = stream.codec_context
        if context is None:
            raise AudioReadError(path, "cannot decode audio: no decoder for its audio codec")
        check_format(path, int(context.sample_rate or 0), int(context.channels))
    except AudioReadError:
        container.close()
        raise
    return container, stream  # type: ignore[return-value]


def error_text(error: BaseException) -> str:
    """A PyAV / OS error as one line of text."""
    text = getattr(error, "strerror", None) or str(error)
    return " ".join(str(text).split()) or type(error).__name__


def add_aac_stream(
    out: av.container.OutputContainer,
    *,
    rate: int,
    channels: int,
    bit_rate: int | None = None,
    options: dict[str, str] | None = None,
) -> av.audio.stream.AudioStream:
    """An AAC stream (mono or stereo) added to ``out``, to be filled by :func:`mux_audio`."""
    layout = "stereo" if channels == 2 else "mono"
    stream = out.add_stream("aac", rate=rate, layout=layout, options=options or {})
    if bit_rate is not None:
        stream.bit_rate = bit_rate
    stream.codec_context.thread_count = 1
    return stream


def mux_audio(
    out: av.container.OutputContainer, stream: av.audio.stream.AudioStream, samples: np.ndarray
) -> None:
    """Encode float ``samples`` (``[n]`` or ``[n, C]`` in [-1, 1)) into ``stream`` and mux them."""
    data = np.asarray(samples, dtype=np.float32)
    data = data[:, None] if data.ndim == 1 else data
    context = stream.codec_context
    step = context.frame_size or 1024
    for begin in range(0, len(data), step):
        chunk = np.ascontiguousarray(data[begin : begin + step].T)
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=stream.layout.name)
        frame.sample_rate, frame.pts = context.sample_rate, begin
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)


class ContainerDecoder:
    """One open media file, decoded by stretches of its first audio stream.

    Args:
        path: the file.

    Attributes:
        rate: the stream's sample rate.
        channels: its channel count.
        declared_frames: its length in samples as the container declares it (None: unknown).

    Raises:
        FileNotFoundError, AudioReadError: as :func:`open_audio`.
    """

    def __init__(self, *, path: Path) -> None:
        self.path = Path(path)
        self._container, self._stream = open_audio(self.path)
        self.rate = int(self._stream.codec_context.sample_rate)
        self.channels = int(self._stream.codec_context.channels)
        self.declared_frames = self._declared_frames()
        self._decoded_once = False

    def _declared_frames(self) -> int | None:
        stream = self._stream
        seconds = None
        if stream.duration is not None and stream.time_base is not None:
            seconds = float(stream.duration * stream.time_base)
        elif self._container.duration is not None:
            seconds = self._container.duration / 1_000_000
        if seconds is None or seconds <= 0 or seconds > plausible_seconds(self.path):
            return None  # unknown, or more than the file can hold: decoded to be measured
        if seconds > MAX_DURATION_S:
            raise AudioReadError(self.path, f"declares {seconds:.0f} s of audio; corrupt header")
        return int(round(seconds * self.rate))

    def _position(self, frame: av.AudioFrame) -> int | None:
        if frame.pts is None or frame.time_base is None:
            return None
        start = self._stream.start_time or 0
        return int(round(float((frame.pts - start) * frame.time_base) * self.rate))

    def decode(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Samples ``[start, stop)`` of the stream (fewer where it ends), float32 ``[n, C]``.

        A stretch that does not begin at 0 is reached by seeking (see the module docstring); when
        the container cannot seek there, the stream is decoded from its start.

        Raises:
            AudioReadError: the stream cannot be decoded or holds non-finite samples.
        """
        start = max(0, start)
        if stop is not None and stop <= start:
            return np.zeros((0, self.channels), dtype=np.float32)
        pieces: list[np.ndarray] | None = None
        target = start - int(WARMUP_S * self.rate)
        if target > 0:
            pieces = self._decode(start, stop, seek_to=target)
        if pieces is None:
            pieces = self._decode(start, stop, seek_to=None)
            assert pieces is not None
        out = np.concatenate(pieces) if pieces else np.zeros((0, self.channels), np.float32)
        check_finite(self.path, out, first=start)
        return out

    def _decode(self, start: int, stop: int | None, *, seek_to: int | None) -> list | None:
        """Decoded pieces of ``[start, stop)``; None when a seek did not land before ``start``."""
        end = self.declared_frames
        if stop is not None:
            end = stop if end is None else min(end, stop)
        stream, tb = self._stream, self._stream.time_base
        try:
            if seek_to is not None:
                offset = int((stream.start_time or 0) + seek_to / self.rate / tb)
                self._container.seek(offset, stream=stream, backward=True)
            elif self._decoded_once:  # from the start again: a fresh demuxer and decoder, as
                self._container.close()  # a seek to 0 would not drop the codec's priming again
                self._container, self._stream = open_audio(self.path)
                stream, tb = self._stream, self._stream.time_base
            self._decoded_once = True
            pieces: list[np.ndarray] = []
            position = 0
            first = True
            for frame in self._container.decode(stream):
                at = self._position(frame) if seek_to is not None else position
                if at is None or (first and seek_to is not None and at > start):
                    return None  # no timestamps, or the seek overshot: decode from the start
                first = False
                samples = frame_samples(frame)
                position = at + len(samples)
                lo, hi = max(0, start - at), len(samples)
                if end is not None:
                    hi = min(hi, end - at)
                if hi > lo:
                    pieces.append(samples[lo:hi])
                if end is not None and position >= end:
                    break
        except av.error.FFmpegError as error:
            if seek_to is not None:
                logger.debug(
                    "%s: seek to %d failed (%s); decoding from the start", self.path, seek_to, error
                )
                return None
            raise AudioReadError(self.path, f"cannot decode audio: {error_text(error)}") from None
        return pieces

    def close(self) -> None:
        """Close the file."""
        self._container.close()
