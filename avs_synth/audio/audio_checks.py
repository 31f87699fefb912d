"""What every decoded audio file must satisfy before its samples are used.

A header can declare anything: a WAV claiming 1 Hz would otherwise be read as 20 s of audio, and
a float WAV can carry NaN or infinite samples that poison a whole build when they reach the FLAC
encoder. Every reader of :mod:`avs_synth.audio` checks what it decodes here and raises
:class:`AudioReadError` (which names the file), so a build skips and counts the clip instead.
"""

from __future__ import annotations

import math
from os import PathLike

import numpy as np

from avs_synth.errors import DataFormatError

__all__ = [
    "MAX_SAMPLE_RATE",
    "MIN_SAMPLE_RATE",
    "AudioReadError",
    "check_finite",
    "check_format",
    "check_resample_rates",
]

MIN_SAMPLE_RATE = 4_000
"""Lowest accepted sample rate (narrow-band speech is 8 kHz; nothing real is below 4 kHz)."""
MAX_SAMPLE_RATE = 384_000
"""Highest accepted sample rate (the highest rate of real PCM audio)."""
MAX_CHANNELS = 64


class AudioReadError(DataFormatError):
    """An audio file that exists but cannot be decoded, or declares or holds impossible audio."""


def check_format(path: str | PathLike[str], rate: int, channels: int) -> None:
    """Refuse a header whose sample rate or channel count no real audio has.

    Raises:
        AudioReadError: the rate is outside ``[MIN_SAMPLE_RATE, MAX_SAMPLE_RATE]`` Hz or the
            channel count outside ``[1, MAX_CHANNELS]``.
    """
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise AudioReadError(
            path,
            f"the header declares a sample rate of {rate} Hz (accepted: {MIN_SAMPLE_RATE:,}-"
            f"{MAX_SAMPLE_RATE:,} Hz); the file is corrupt",
        )
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioReadError(
            path, f"the header declares {channels} channels (accepted: 1-{MAX_CHANNELS})"
        )


def check_finite(path: str | PathLike[str], samples: np.ndarray, *, first: int = 0) -> None:
    """Refuse samples holding NaN or infinity.

    Args:
        path: the file (named in the error).
        samples: decoded samples (any shape; integer arrays always pass).
        first: the file position (in frames) of ``samples[0]``, to say where the bad sample is.

    Raises:
        AudioReadError: a sample is NaN or infinite.
    """
    if not np.issubdtype(samples.dtype, np.floating):
        return
    finite = np.isfinite(samples)
    if finite.all():
        return
    bad = np.flatnonzero(~finite.reshape(len(samples), -1).all(axis=1))
    raise AudioReadError(
        path, f"holds NaN or infinite samples (first at sample frame {first + int(bad[0])})"
    )


MAX_KERNEL_ELEMENTS = 4_000_000
"""The largest sinc kernel built (16 MB): the kernel of ``a -> b`` Hz has about
``(b / g) * (a / g)`` elements for ``g = gcd(a, b)``: 70,560 for 44.1 -> 16 kHz, but 20 million
for a header's 5,038 Hz, so an odd rate must not reach torchaudio unchecked."""


def check_resample_rates(orig_sr: int, new_sr: int) -> None:
    """Refuse a pair of rates whose exact sinc kernel would be huge (see
    :data:`MAX_KERNEL_ELEMENTS`); every standard rate passes.

    Raises:
        ValueError: the kernel would exceed the limit.
    """
    g = math.gcd(orig_sr, new_sr)
    if (orig_sr // g) * (new_sr // g) > MAX_KERNEL_ELEMENTS:
        raise ValueError(
            f"cannot resample {orig_sr} Hz to {new_sr} Hz band-limited (the rates share no "
            "usable divisor); convert the clip to a standard rate, or use the avsbench resampler"
        )
