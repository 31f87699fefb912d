"""Choosing and cutting the audio window of a clip: ``fixed``, ``loudest`` or ``nonsilent``.

A clip is seen through a :class:`ClipReader` (its rate, its length, and reads of any stretch, mono)
so that a policy reads only what it needs: a FLAC file is seeked, not decoded whole. Candidate
windows are ``window_s`` long on a grid of ``hop_s`` (default: the window length, so bank windows
never overlap); only complete windows count. A window's level is its RMS in dB full scale, at the
clip's own rate.

- ``fixed``: the window starting at ``fixed_start_s`` (moved back to fit inside a short clip).
- ``loudest``: the candidate with the highest RMS (reads the whole clip).
- ``nonsilent`` (default; VGGSound clips often hold silent seconds): the candidates in an order
  drawn from the seed and the sample's key; the first at or above ``silence_dbfs`` is taken
  (uniform over the non-silent windows; usually one window is read).

``loudest`` and ``nonsilent`` refuse a clip without any window above the silence level. The
chosen window is resampled alone (with a little context) to ``sample_rate``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from math import gcd
from typing import Literal, Protocol

import numpy as np

from avs_synth.audio.audio_checks import check_resample_rates
from avs_synth.seeded_order import seeded_key

WindowPolicy = Literal["fixed", "loudest", "nonsilent"]
WINDOW_POLICIES: tuple[str, ...] = ("fixed", "loudest", "nonsilent")

SILENCE_FLOOR_DBFS = -120.0

# Context kept on each side of a window resampled alone (then cut away), so that its samples
# match those of resampling the whole clip up to the sinc filter's precision.
_RESAMPLE_CONTEXT_S = 0.01


@dataclass(frozen=True)
class WindowConfig:
    """How a window is cut from a clip.

    Args:
        window_s: window length in seconds (1.0 holds one full VGGish example of 0.975 s).
        policy: ``fixed``, ``loudest`` or ``nonsilent``.
        hop_s: spacing of candidate windows (None: ``window_s``).
        fixed_start_s: the start used by the ``fixed`` policy.
        silence_dbfs: windows below this RMS level (dB full scale) are silent.
        sample_rate: the rate windows are stored at.
    """

    window_s: float = 1.0
    policy: WindowPolicy = "nonsilent"
    hop_s: float | None = None
    fixed_start_s: float = 0.0
    silence_dbfs: float = -45.0
    sample_rate: int = 16_000

    def __post_init__(self) -> None:
        if self.policy not in WINDOW_POLICIES:
            raise ValueError(f"window policy must be one of {WINDOW_POLICIES}, got {self.policy!r}")
        if not self.window_s > 0:
            raise ValueError(f"window length must be positive, got {self.window_s}")
        if self.hop_s is not None and not self.hop_s > 0:
            raise ValueError(f"window hop must be positive, got {self.hop_s}")
        if self.fixed_start_s < 0:
            raise ValueError(f"fixed window start must be >= 0, got {self.fixed_start_s}")

    @property
    def window_samples(self) -> int:
        """Samples of a stored window (at ``sample_rate``)."""
        return self.window_samples_at(self.sample_rate)

    def window_samples_at(self, rate: int) -> int:
        """Samples of a window in a clip at ``rate``."""
        return int(round(self.window_s * rate))

    def hop_samples_at(self, rate: int) -> int:
        """Spacing of candidate windows in a clip at ``rate``."""
        hop = self.window_s if self.hop_s is None else self.hop_s
        return max(1, int(round(hop * rate)))


class ClipReader(Protocol):
    """Mono access to a clip at its own rate."""

    rate: int
    frames: int

    def read(self, start: int, length: int) -> np.ndarray:
        """``length`` mono float32 samples from ``start`` (fewer at the clip's end)."""
        ...


@dataclass(frozen=True)
class ArrayClip:
    """A clip already decoded to mono samples."""

    samples: np.ndarray
    rate: int

    @property
    def frames(self) -> int:
        return len(self.samples)

    def read(self, start: int, length: int) -> np.ndarray:
        return self.samples[max(0, start) : max(0, start) + length]


@dataclass(frozen=True)
class Window:
    """A chosen window: its first sample (at the clip's rate) and its level."""

    start: int
    rms_dbfs: float


class WindowRefused(Exception):
    """No window can be cut (``reason``: ``audio_too_short``, ``silent_audio`` or, for
    :func:`choose_quiet_window`, ``no_quiet_window``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def candidate_starts(num_samples: int, config: WindowConfig, rate: int | None = None) -> np.ndarray:
    """First samples of the complete candidate windows of a clip of ``num_samples`` at ``rate``
    (default: ``config.sample_rate``)."""
    rate = rate or config.sample_rate
    length = config.window_samples_at(rate)
    if num_samples < length:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, num_samples - length + 1, config.hop_samples_at(rate), dtype=np.int64)


def window_rms_dbfs(samples: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """RMS level in dBFS of ``samples[s : s + length]`` for every ``s`` in ``starts``."""
    if len(starts) == 0:
        return np.zeros(0, dtype=np.float64)
    squares = np.concatenate([[0.0], np.cumsum(np.square(samples, dtype=np.float64))])
    energy = (squares[starts + length] - squares[starts]) / length
    rms = np.sqrt(np.maximum(energy, 0.0))
    with np.errstate(divide="ignore"):
        level = 20.0 * np.log10(rms)
    return np.maximum(level, SILENCE_FLOOR_DBFS)


def _level(samples: np.ndarray) -> float:
    return float(window_rms_dbfs(samples, np.zeros(1, dtype=np.int64), len(samples))[0])


def choose_window(clip: ClipReader, config: WindowConfig, *, seed: int, key: str) -> Window:
    """The window ``config.policy`` picks from a clip.

    Args:
        clip: the clip (see :class:`ClipReader`, :class:`ArrayClip`).
        config: the window settings.
        seed: the build seed.
        key: the sample's key (the ``nonsilent`` order depends on it and on the seed only).

    Raises:
        WindowRefused: the clip is shorter than a window, or (``loudest``, ``nonsilent``) has no
            window above the silence level.
    """
    rate = clip.rate
    length = config.window_samples_at(rate)
    if clip.frames < length:
        raise WindowRefused("audio_too_short")
    if config.policy == "fixed":
        start = min(int(round(config.fixed_start_s * rate)), clip.frames - length)
        return Window(start=start, rms_dbfs=_level(clip.read(start, length)))
    starts = candidate_starts(clip.frames, config, rate)
    if config.policy == "loudest":
        levels = window_rms_dbfs(clip.read(0, clip.frames), starts, length)
        best = int(np.argmax(levels))
        if levels[best] < config.silence_dbfs:
            raise WindowRefused("silent_audio")
        return Window(start=int(starts[best]), rms_dbfs=float(levels[best]))
    order = sorted(range(len(starts)), key=lambda i: seeded_key(seed, "window", key, i))
    for i in order:
        start = int(starts[i])
        piece = clip.read(start, length)
        if len(piece) < length:  # the header promised more than the file holds
            continue
        level = _level(piece)
        if level >= config.silence_dbfs:
            return Window(start=start, rms_dbfs=level)
    raise WindowRefused("silent_audio")


def choose_quiet_window(
    clip: ClipReader, config: WindowConfig, *, below_dbfs: float, seed: int, key: str
) -> Window:
    """A near-silent window of a real clip (a ``silence`` negative's audio): a seeded draw among
    the windows on a grid of a tenth of the window length whose RMS level is below
    ``below_dbfs`` and above the digital-zero floor (stretches of exact zeros are the synthetic
    ``zeros`` negatives' business). Reads the whole clip.

    Raises:
        WindowRefused: ``audio_too_short``, or ``no_quiet_window`` when no window qualifies.
    """
    length = config.window_samples_at(clip.rate)
    samples = clip.read(0, clip.frames)
    if len(samples) < length:
        raise WindowRefused("audio_too_short")
    starts = np.arange(0, len(samples) - length + 1, max(1, length // 10), dtype=np.int64)
    levels = window_rms_dbfs(samples, starts, length)
    quiet = np.nonzero((levels < below_dbfs) & (levels > SILENCE_FLOOR_DBFS))[0]
    if len(quiet) == 0:
        raise WindowRefused("no_quiet_window")
    pick = min(quiet.tolist(), key=lambda i: seeded_key(seed, "quiet-window", key, i))
    return Window(start=int(starts[pick]), rms_dbfs=float(levels[pick]))


def usable_windows(clip: ClipReader, config: WindowConfig) -> list[Window]:
    """Every candidate window at or above the silence level (the audio bank's windows)."""
    samples = clip.read(0, clip.frames)
    starts = candidate_starts(len(samples), config, clip.rate)
    levels = window_rms_dbfs(samples, starts, config.window_samples_at(clip.rate))
    return [
        Window(start=int(s), rms_dbfs=float(v))
        for s, v in zip(starts, levels, strict=True)
        if v >= config.silence_dbfs
    ]


@lru_cache(maxsize=8)
def _resampler(rate: int, out_rate: int):
    """torchaudio's sinc resampler (as :func:`avs_synth.audio.logmel.resample`, same defaults) with
    its kernel computed once per pair of rates."""
    from torchaudio.transforms import Resample

    check_resample_rates(rate, out_rate)
    return Resample(orig_freq=rate, new_freq=out_rate)


def extract(clip: ClipReader, window: Window, config: WindowConfig) -> np.ndarray:
    """The window's samples at ``config.sample_rate``: exactly ``config.window_samples``.

    A clip at another rate has only the window (with a little context) read and resampled.
    """
    rate, out_rate, need = clip.rate, config.sample_rate, config.window_samples
    if rate == out_rate:
        out = clip.read(window.start, need)
        if len(out) != need:
            raise ValueError("window does not fit inside the clip")
        return np.ascontiguousarray(out, dtype=np.float32)
    import torch

    period = rate // gcd(rate, out_rate)  # input samples per whole number of output samples
    context = int(round(_RESAMPLE_CONTEXT_S * rate))
    begin = max(0, (window.start - context) // period * period)
    end = min(clip.frames, window.start + config.window_samples_at(rate) + context)
    piece = np.ascontiguousarray(clip.read(begin, end - begin), dtype=np.float32)
    with torch.no_grad():
        resampled = _resampler(rate, out_rate)(torch.from_numpy(piece)).numpy()
    offset = int(round((window.start - begin) * out_rate / rate))
    out = resampled[offset : offset + need]
    if len(out) < need:  # the clip's last output sample lost to rounding
        out = np.pad(out, (0, need - len(out)), mode="edge" if len(out) else "constant")
    return np.ascontiguousarray(out, dtype=np.float32)
