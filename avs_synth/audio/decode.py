"""Reading audio clips: wav/flac/ogg/mp3 through soundfile, video containers through PyAV.

Samples come back as float32 mono at the requested rate, made by one of two resamplers
(:data:`RESAMPLERS`, the ``--resampler`` option of ``build`` and ``predict``):

- ``avsbench``: exactly as AVSBench made its 16 kHz wavs (moviepy 1.0.3 over FFmpeg, see
  :mod:`avs_synth.audio.avsbench_resampler`), read as VGGish reads them. 16 kHz output only.
- ``bandlimited``: the AVSBench convention for reading (16-bit PCM as ``int16 / 32768``, channels
  averaged) with torchaudio's band-limited sinc resampling
  (:func:`avs_synth.audio.logmel.resample`) to any rate.

VGGSound clips are often kept as the downloaded ``.mp4`` / ``.mkv`` / ``.webm``: their audio is
decoded in-process by PyAV (FFmpeg's libraries ship in its wheel; no ``ffmpeg`` program is
needed, see :mod:`avs_synth.audio.container`). Every reader refuses a header with an impossible
sample rate and samples that are NaN or infinite (:mod:`avs_synth.audio.audio_checks`).
"""

from __future__ import annotations

import logging
from os import PathLike
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf

from avs_synth.audio.audio_checks import AudioReadError, check_finite, check_format
from avs_synth.audio.avsbench_resampler import AVSBENCH_RATE, MoviepyClip
from avs_synth.audio.container import ContainerDecoder

logger = logging.getLogger(__name__)

__all__ = [
    "CONTAINER_EXTENSIONS",
    "RESAMPLERS",
    "SOUNDFILE_EXTENSIONS",
    "AudioReadError",
    "Resampler",
    "audio_duration",
    "load_audio",
]

SOUNDFILE_EXTENSIONS = frozenset(
    {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff"}
)
CONTAINER_EXTENSIONS = frozenset({".mp4", ".m4a", ".mkv", ".webm", ".mov", ".aac", ".avi"})

Resampler = Literal["avsbench", "bandlimited"]
RESAMPLERS: tuple[str, ...] = ("avsbench", "bandlimited")


def check_resampler(resampler: str, sample_rate: int) -> None:
    """Refuse an unknown resampler, and ``avsbench`` at a rate other than 16 kHz."""
    if resampler not in RESAMPLERS:
        raise ValueError(f"resampler must be one of {RESAMPLERS}, got {resampler!r}")
    if resampler == "avsbench" and sample_rate != AVSBENCH_RATE:
        raise ValueError(
            f"the avsbench resampler makes {AVSBENCH_RATE} Hz audio (AVSBench's), not {sample_rate}"
        )


def uses_container(path: Path) -> bool:
    """True for the video / media containers read through PyAV."""
    return path.suffix.lower() in CONTAINER_EXTENSIONS


def _check_exists(path: Path) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: audio file not found")


def load_audio(
    path: str | PathLike[str],
    *,
    sample_rate: int = 16_000,
    offset_s: float = 0.0,
    duration_s: float | None = None,
    resampler: Resampler = "bandlimited",
) -> np.ndarray:
    """Read an audio file (or a video's first audio stream) as float32 mono samples.

    Args:
        path: a .wav/.flac/.ogg/.mp3 file (soundfile) or a .mp4/.m4a/.mkv/.webm file (PyAV).
            Other extensions are tried with soundfile first, then PyAV.
        sample_rate: the rate to resample to (16 kHz for ``avsbench``).
        offset_s: start reading this many seconds into the file (the output's seconds).
        duration_s: read at most this many seconds (None: to the end).
        resampler: ``avsbench`` or ``bandlimited`` (see the module docstring).

    Returns:
        ``[N]`` float32 samples at ``sample_rate`` (fewer than asked when the file ends first).

    Raises:
        FileNotFoundError: no such file.
        AudioReadError: the file cannot be decoded, declares an impossible format or holds
            non-finite samples (names the file).
    """
    path = Path(path)
    if offset_s < 0 or (duration_s is not None and duration_s < 0):
        raise ValueError(f"offset_s and duration_s must be >= 0, got {offset_s}, {duration_s}")
    check_resampler(resampler, sample_rate)
    _check_exists(path)
    if resampler == "avsbench":
        clip = MoviepyClip(path=path)
        try:
            start = int(round(offset_s * sample_rate))
            count = clip.frames if duration_s is None else int(round(duration_s * sample_rate))
            return clip.read(start, count)
        finally:
            clip.close()
    if uses_container(path):
        samples, native_rate = _read_container(path, offset_s, duration_s)
    else:
        try:
            samples, native_rate = _read_soundfile(path, offset_s, duration_s)
        except AudioReadError as error:
            if path.suffix.lower() in SOUNDFILE_EXTENSIONS:
                raise
            try:
                samples, native_rate = _read_container(path, offset_s, duration_s)
            except AudioReadError:
                raise error from None
    mono = samples.mean(axis=1, dtype=np.float32) if samples.shape[1] > 1 else samples[:, 0]
    mono = np.ascontiguousarray(mono, dtype=np.float32)
    if native_rate != sample_rate and mono.size > 0:
        import torch  # here, not at the top: a build's plan imports this module and needs no torch

        from avs_synth.audio.logmel import resample

        try:
            mono = resample(torch.from_numpy(mono), native_rate, sample_rate).numpy()
        except ValueError as error:
            raise AudioReadError(path, str(error)) from None
    return mono


def _read_soundfile(
    path: Path, offset_s: float, duration_s: float | None
) -> tuple[np.ndarray, int]:
    try:
        with sf.SoundFile(path) as handle:
            rate = handle.samplerate
            check_format(path, rate, handle.channels)
            start = int(round(offset_s * rate))
            frames = -1 if duration_s is None else int(round(duration_s * rate))
            if start > 0:
                if handle.frames > 0 and start >= handle.frames:
                    return np.zeros((0, handle.channels), dtype=np.float32), rate
                handle.seek(start)
            data = handle.read(frames=frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as error:
        if isinstance(error, AudioReadError):
            raise
        raise AudioReadError(path, f"cannot decode audio: {error}") from None
    check_finite(path, data, first=start)
    return data, rate


def _read_container(
    path: Path, offset_s: float, duration_s: float | None
) -> tuple[np.ndarray, int]:
    decoder = ContainerDecoder(path=path)
    try:
        rate = decoder.rate
        start = int(round(offset_s * rate))
        stop = None if duration_s is None else start + int(round(duration_s * rate))
        return decoder.decode(start, stop), rate
    finally:
        decoder.close()


def audio_duration(path: str | PathLike[str]) -> float:
    """Duration of an audio file (or a video's first audio stream) in seconds.

    soundfile formats read the header; containers give their audio stream's declared duration,
    and are decoded when they declare none.

    Raises:
        FileNotFoundError, AudioReadError: as :func:`load_audio`.
    """
    path = Path(path)
    _check_exists(path)
    if not uses_container(path):
        try:
            info = sf.info(str(path))
        except (sf.LibsndfileError, RuntimeError, TypeError) as error:
            if path.suffix.lower() in SOUNDFILE_EXTENSIONS:
                raise AudioReadError(path, f"cannot decode audio: {error}") from None
        else:
            check_format(path, info.samplerate, info.channels)
            if info.frames > 0:
                return info.frames / info.samplerate
            return float(info.duration)
    decoder = ContainerDecoder(path=path)
    try:
        if decoder.declared_frames is not None:
            return decoder.declared_frames / decoder.rate
        return len(decoder.decode(0, None)) / decoder.rate
    finally:
        decoder.close()
