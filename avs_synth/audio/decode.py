"""Reading audio clips (wav/flac/ogg/mp3 via soundfile, video containers via FFmpeg).

Samples come back as float32 mono at the requested rate, in the AVSBench convention: 16-bit PCM is
read as ``int16 / 32768`` (soundfile's float reading), channels are averaged, and resampling is
torchaudio's band-limited sinc (:func:`avs_synth.audio.logmel.resample`).

VGGSound clips are often kept as the downloaded ``.mp4`` / ``.mkv`` / ``.webm``: those are decoded
by an ``ffmpeg`` subprocess (install FFmpeg, e.g. ``apt-get install ffmpeg``), which writes 32-bit
float WAV at the file's own rate and channel count into a pipe; averaging and resampling then
happen here exactly as for the soundfile formats.
"""

from __future__ import annotations

import io
import logging
import math
import shutil
import subprocess
from os import PathLike
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from avs_synth.audio.logmel import resample
from avs_synth.errors import DataFormatError

logger = logging.getLogger(__name__)

__all__ = [
    "FFMPEG_EXTENSIONS",
    "SOUNDFILE_EXTENSIONS",
    "AudioReadError",
    "FFmpegNotFoundError",
    "audio_duration",
    "load_audio",
]

SOUNDFILE_EXTENSIONS = frozenset(
    {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff"}
)
FFMPEG_EXTENSIONS = frozenset({".mp4", ".m4a", ".mkv", ".webm", ".mov", ".aac", ".avi"})


class AudioReadError(DataFormatError):
    """An audio file that exists but cannot be decoded."""


class FFmpegNotFoundError(RuntimeError):
    """A video-container clip was asked for but no ``ffmpeg`` executable is on the PATH."""


def _ffmpeg_executable(program: str = "ffmpeg") -> str:
    found = shutil.which(program)
    if found is None:
        raise FFmpegNotFoundError(
            f"`{program}` was not found on the PATH; it is needed to decode audio from video "
            "containers (.mp4, .mkv, .webm, .m4a). Install FFmpeg (e.g. `apt-get install "
            "ffmpeg`, `brew install ffmpeg` or `conda install -c conda-forge ffmpeg`), or "
            "convert the clips to .flac/.wav first."
        )
    return found


def _uses_ffmpeg(path: Path) -> bool:
    return path.suffix.lower() in FFMPEG_EXTENSIONS


def _check_exists(path: Path) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: audio file not found")


def load_audio(
    path: str | PathLike[str],
    *,
    sample_rate: int = 16_000,
    offset_s: float = 0.0,
    duration_s: float | None = None,
) -> np.ndarray:
    """Read an audio file (or a video's first audio stream) as float32 mono samples.

    Args:
        path: a .wav/.flac/.ogg/.mp3 file (soundfile) or a .mp4/.m4a/.mkv/.webm file (FFmpeg).
            Other extensions are tried with soundfile first, then FFmpeg.
        sample_rate: the rate to resample to.
        offset_s: start reading this many seconds into the file.
        duration_s: read at most this many seconds (None: to the end).

    Returns:
        ``[N]`` float32 samples at ``sample_rate`` (fewer than asked when the file ends first).

    Raises:
        FileNotFoundError: no such file.
        AudioReadError: the file cannot be decoded (names the file).
        FFmpegNotFoundError: a video container was given and FFmpeg is not installed.
    """
    path = Path(path)
    if offset_s < 0 or (duration_s is not None and duration_s < 0):
        raise ValueError(f"offset_s and duration_s must be >= 0, got {offset_s}, {duration_s}")
    _check_exists(path)
    if _uses_ffmpeg(path):
        samples, native_rate = _read_ffmpeg(path, offset_s, duration_s)
    else:
        try:
            samples, native_rate = _read_soundfile(path, offset_s, duration_s)
        except AudioReadError:
            if path.suffix.lower() in SOUNDFILE_EXTENSIONS or shutil.which("ffmpeg") is None:
                raise
            samples, native_rate = _read_ffmpeg(path, offset_s, duration_s)
    mono = samples.mean(axis=1, dtype=np.float32) if samples.shape[1] > 1 else samples[:, 0]
    mono = np.ascontiguousarray(mono, dtype=np.float32)
    if native_rate != sample_rate and mono.size > 0:
        mono = resample(torch.from_numpy(mono), native_rate, sample_rate).numpy()
    return mono


def _read_soundfile(
    path: Path, offset_s: float, duration_s: float | None
) -> tuple[np.ndarray, int]:
    try:
        with sf.SoundFile(path) as handle:
            rate = handle.samplerate
            start = int(round(offset_s * rate))
            frames = -1 if duration_s is None else int(round(duration_s * rate))
            if start > 0:
                if handle.frames > 0 and start >= handle.frames:
                    return np.zeros((0, handle.channels), dtype=np.float32), rate
                handle.seek(start)
            data = handle.read(frames=frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as error:
        raise AudioReadError(path, f"cannot decode audio: {error}") from None
    return data, rate


def _run_ffmpeg(path: Path, arguments: list[str]) -> bytes:
    command = [_ffmpeg_executable(), "-nostdin", "-hide_banner", "-loglevel", "error", *arguments]
    try:
        result = subprocess.run(command, capture_output=True, check=False)
    except OSError as error:
        raise AudioReadError(path, f"cannot run ffmpeg: {error}") from None
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = message[-1] if message else f"exit status {result.returncode}"
        raise AudioReadError(path, f"ffmpeg cannot decode the audio: {detail}")
    return result.stdout


def _read_ffmpeg(path: Path, offset_s: float, duration_s: float | None) -> tuple[np.ndarray, int]:
    arguments: list[str] = []
    if offset_s > 0:
        arguments += ["-ss", f"{offset_s:.6f}"]
    if duration_s is not None:
        arguments += ["-t", f"{duration_s:.6f}"]
    arguments += ["-i", str(path), "-map", "0:a:0", "-vn", "-sn", "-dn"]
    arguments += ["-f", "wav", "-acodec", "pcm_f32le", "pipe:1"]
    data = _run_ffmpeg(path, arguments)
    try:
        samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as error:
        raise AudioReadError(path, f"cannot read ffmpeg's decoded audio: {error}") from None
    return samples, int(rate)


def audio_duration(path: str | PathLike[str]) -> float:
    """Duration of an audio file (or a video's first audio stream) in seconds.

    soundfile formats read the header; video containers ask ``ffprobe`` (shipped with FFmpeg)
    for the stream's duration, and decode the stream when no duration is recorded.

    Raises:
        FileNotFoundError, AudioReadError, FFmpegNotFoundError: as :func:`load_audio`.
    """
    path = Path(path)
    _check_exists(path)
    if not _uses_ffmpeg(path):
        try:
            info = sf.info(str(path))
        except (sf.LibsndfileError, RuntimeError, TypeError) as error:
            if path.suffix.lower() in SOUNDFILE_EXTENSIONS or shutil.which("ffmpeg") is None:
                raise AudioReadError(path, f"cannot decode audio: {error}") from None
        else:
            if info.frames > 0:
                return info.frames / info.samplerate
            return float(info.duration)
    _ffmpeg_executable()
    ffprobe = shutil.which("ffprobe")
    if ffprobe is not None:
        command = [ffprobe, "-v", "error", "-select_streams", "a:0"]
        command += ["-show_entries", "stream=duration:format=duration", "-of", "csv=p=0", str(path)]
        result = subprocess.run(command, capture_output=True, check=False)
        if result.returncode != 0:
            detail = result.stderr.decode("utf-8", "replace").strip()
            raise AudioReadError(path, f"ffprobe cannot read the file: {detail}")
        for token in result.stdout.decode().replace(",", "\n").split():
            try:
                value = float(token)
            except ValueError:
                continue
            if math.isfinite(value) and value > 0:
                return value
    samples, rate = _read_ffmpeg(path, 0.0, None)
    return samples.shape[0] / rate
