"""Opening a clip for windowing, with one of the two resamplers of :mod:`avs_synth.audio.decode`.

A 10-s clip is read through :func:`open_clip`, and only the stretches a window policy asks for are
decoded:

- ``bandlimited``: FLAC and WAV files are seeked with soundfile (:class:`SoundFileClip`), video
  containers with PyAV (:class:`ContainerClip`), at the file's own rate, channels averaged
  exactly as :func:`avs_synth.audio.decode.load_audio` does; the chosen window is resampled
  alone (:func:`avs_synth.audio.windows.extract`). MP3 and OGG are decoded whole once.
- ``avsbench``: the clip is seen at 16 kHz as AVSBench's wav of it
  (:class:`~avs_synth.audio.avsbench_resampler.MoviepyClip`), so windows are measured and cut
  from exactly the audio AVSBench would have made.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from avs_synth.audio.audio_checks import (
    AudioReadError,
    check_finite,
    check_format,
    check_resample_rates,
)
from avs_synth.audio.avsbench_resampler import MoviepyClip
from avs_synth.audio.container import ContainerDecoder
from avs_synth.audio.decode import Resampler, check_resampler, load_audio, uses_container
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
        try:
            check_format(self.path, self.rate, self.channels)
        except AudioReadError:
            self._handle.close()
            raise
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
        check_finite(self.path, data, first=begin)
        self._block_start, self._block = begin, downmix(data)

    def close(self) -> None:
        """Close the file (the cache closes clips it drops)."""
        self._handle.close()


class ContainerClip:
    """A clip in a video / media container, read window by window through PyAV.

    Reads are widened and kept as :class:`SoundFileClip` does; each stretch is decoded from a
    seek (see :mod:`avs_synth.audio.container`).

    Args:
        path: the file.

    Raises:
        FileNotFoundError, AudioReadError: the file is missing or cannot be decoded (a stream
            that declares no length is decoded whole here).
    """

    READ_MARGIN_S = 0.025

    def __init__(self, *, path: Path) -> None:
        self.path = Path(path)
        self._decoder = ContainerDecoder(path=self.path)
        self.rate = self._decoder.rate
        self._margin = int(round(self.READ_MARGIN_S * self.rate))
        self._block_start = 0
        self._block = np.zeros(0, dtype=np.float32)
        frames = self._decoder.declared_frames
        if frames is None:  # no declared length: decode it all once
            try:
                self._block = downmix(self._decoder.decode(0, None))
            except AudioReadError:
                self._decoder.close()
                raise
            frames = len(self._block)
        self.frames = frames

    def read(self, start: int, length: int) -> np.ndarray:
        start = max(0, start)
        offset = start - self._block_start
        if offset < 0 or offset + length > len(self._block):
            begin = max(0, start - self._margin)
            count = length + (start - begin) + self._margin
            self._block_start = begin
            self._block = downmix(self._decoder.decode(begin, begin + count))
            offset = start - begin
        return self._block[offset : offset + length]

    def close(self) -> None:
        """Close the file (the cache closes clips it drops)."""
        self._decoder.close()


def _resamplable(clip: SoundFileClip | ContainerClip, sample_rate: int) -> ClipReader:
    """The clip, if its rate can be resampled to ``sample_rate`` (else closed and refused)."""
    try:
        check_resample_rates(clip.rate, sample_rate)
    except ValueError as error:
        clip.close()
        raise AudioReadError(clip.path, str(error)) from None
    return clip


def open_clip(
    path: Path, *, sample_rate: int = 16_000, resampler: Resampler = "bandlimited"
) -> ClipReader:
    """A reader of the clip at ``path``.

    Args:
        path: the clip file.
        sample_rate: the rate of the windows (16 kHz for ``avsbench``).
        resampler: ``avsbench`` (a reader at 16 kHz: AVSBench's wav of the clip) or
            ``bandlimited`` (a reader at the clip's own rate).

    Raises:
        FileNotFoundError, AudioReadError: as :func:`avs_synth.audio.decode.load_audio`.
    """
    path = Path(path)
    check_resampler(resampler, sample_rate)
    if resampler == "avsbench":
        return MoviepyClip(path=path)
    suffix = path.suffix.lower()
    if suffix in SEEKABLE_EXTENSIONS:
        clip = SoundFileClip(path=path)
        if clip.frames > 0:
            return _resamplable(clip, sample_rate)
        clip.close()
    if uses_container(path):
        return _resamplable(ContainerClip(path=path), sample_rate)
    try:
        rate = int(sf.info(str(path)).samplerate)
    except (sf.LibsndfileError, RuntimeError, TypeError):
        rate = sample_rate
    return ArrayClip(samples=load_audio(path, sample_rate=rate), rate=rate)
