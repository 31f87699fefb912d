"""Opening a clip for windowing: seek-and-read for FLAC / WAV, whole decoding otherwise.

A 10-s clip is read through :func:`open_clip`: FLAC and WAV files are seeked with soundfile and
only the stretches a window policy asks for are decoded (at the file's own rate, channels
averaged exactly as :func:`avs_synth.audio.decode.load_audio` does); other formats (MP3, OGG, video
containers through FFmpeg) are decoded whole once by :func:`~avs_synth.audio.decode.load_audio`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from avs_synth.audio.decode import FFMPEG_EXTENSIONS, AudioReadError, load_audio
from avs_synth.audio.windows import ArrayClip, ClipReader

SEEKABLE_EXTENSIONS = frozenset({".flac", ".wav"})


def downmix(data: np.ndarray) -> np.ndarray:
    """``[N, C]`` float32 → ``[N]``: the channels' sum divided by their count (for two channels
    bit-identical to ``mean(axis=1, dtype=float32)``, without its slow strided reduction)."""
    if data.shape[1] == 1:
        return np.ascontiguousarray(data[:, 0])
    total = data[:, 0].copy()
    for channel in range(1, data.shape[1]):
        total += data[:, channel]
    return total / np.float32(data.shape[1])


class SoundFileClip:
    """A FLAC / WAV clip read window by window through one open handle.

    Each read is widened by :attr:`READ_MARGIN_S` on both sides and kept, so that the read a
    window policy makes to measure a window also serves the resampling of that window (which
    needs a little context around it).

    Args:
        path: the file.

    Raises:
        FileNotFoundError: no such file.
        AudioReadError: the header cannot be read.
    """

    READ_MARGIN_S = 0.025

    def __init__(self, *, path: Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: audio file not found")
        try:
            self._handle = sf.SoundFile(str(self.path))
        except (sf.LibsndfileError, RuntimeError, TypeError) as error:
            raise AudioReadError(self.path, f"cannot decode audio: {error}") from None
        self.rate = int(self._handle.samplerate)
        self.frames = int(self._handle.frames)
        self.channels = int(self._handle.channels)
        self._margin = int(round(self.READ_MARGIN_S * self.rate))
        self._block_start = 0
        self._block = np.zeros(0, dtype=np.float32)

    def read(self, start: int, length: int) -> np.ndarray:
        start = max(0, start)
        offset = start - self._block_start
        if offset < 0 or offset + length > len(self._block):
            self._refill(start, length)
            offset = start - self._block_start
        return self._block[offset : offset + length]

    def _refill(self, start: int, length: int) -> None:
        begin = max(0, start - self._margin)
        count = length + (start - begin) + self._margin
        try:
            self._handle.seek(begin)
            data = self._handle.read(frames=count, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, TypeError) as error:
            raise AudioReadError(self.path, f"cannot decode audio: {error}") from None
        self._block_start, self._block = begin, downmix(data)

    def close(self) -> None:
        """Close the file (the cache closes clips it drops)."""
        self._handle.close()


def open_clip(path: Path, *, sample_rate: int = 16_000) -> ClipReader:
    """A reader of the clip at ``path``.

    Args:
        path: the clip file.
        sample_rate: the rate formats without seeking are decoded at when soundfile cannot tell
            their own rate (video containers).

    Raises:
        FileNotFoundError, AudioReadError: as :func:`avs_synth.audio.decode.load_audio`.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in SEEKABLE_EXTENSIONS:
        clip = SoundFileClip(path=path)
        if clip.frames > 0:
            return clip
    rate = sample_rate
    if suffix not in FFMPEG_EXTENSIONS:
        try:
            rate = int(sf.info(str(path)).samplerate)
        except (sf.LibsndfileError, RuntimeError, TypeError):
            rate = sample_rate
    return ArrayClip(samples=load_audio(path, sample_rate=rate), rate=rate)
