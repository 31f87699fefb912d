"""The audio of class-less negatives: silence and noise windows, drawn from a seed.

``avs-synth build --negatives silence,noise`` pairs pictures with audio in which nothing the
picture shows could sound (AVSBench-Robust's silence and noise negatives):

- ``silence``: half digital zeros, half a near-silent Gaussian floor at -80 to -60 dBFS RMS (the
  hiss of a quiet recording; a model must not read it as a source);
- ``noise``: white or pink (1/f power) Gaussian noise at -30 to -12 dBFS RMS.

Each window is a pure function of the seed it is given (the build seeds it from its seed and the
sample's key), so the shards stay byte-identical whatever the workers.
"""

from __future__ import annotations

import numpy as np

from avs_synth.seeded_order import seeded_key

SYNTHETIC_KINDS: tuple[str, ...] = ("silence", "noise")
ZERO_FLOOR_DBFS = -150.0
"""The level recorded for a window of digital zeros (its RMS is 0, i.e. minus infinity dB)."""


def _scaled(samples: np.ndarray, dbfs: float) -> np.ndarray:
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return samples * (10.0 ** (dbfs / 20.0) / max(rms, 1e-12))


def _pink(rng: np.random.Generator, n: int) -> np.ndarray:
    """Gaussian noise with a 1/f power spectrum (white noise shaped in the frequency domain)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.arange(spectrum.shape[0], dtype=np.float64)
    freqs[0] = 1.0
    return np.fft.irfft(spectrum / np.sqrt(freqs), n)


def negative_window(kind: str, num_samples: int, *, seed: int, key: str) -> tuple[np.ndarray, str]:
    """A ``silence`` or ``noise`` window and the name of how it was drawn.

    Args:
        kind: ``silence`` or ``noise``.
        num_samples: the window length in samples.
        seed: the build seed.
        key: the sample's key (with the seed, it fixes the window).

    Returns:
        ``(float32 samples in [-1, 1], policy)``; the policy (``zeros``, ``floor``, ``white``,
        ``pink``) is recorded in the sample's metadata.
    """
    if kind not in SYNTHETIC_KINDS:
        raise ValueError(
            f"no synthetic audio for negative kind {kind!r} (one of {SYNTHETIC_KINDS})"
        )
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    rng = np.random.default_rng(seeded_key(seed, "negative-audio", kind, key))
    if kind == "silence":
        if rng.random() < 0.5:
            return np.zeros(num_samples, dtype=np.float32), "zeros"
        floor = _scaled(rng.standard_normal(num_samples), rng.uniform(-80.0, -60.0))
        return floor.astype(np.float32), "floor"
    colour = "white" if rng.random() < 0.5 else "pink"
    base = rng.standard_normal(num_samples) if colour == "white" else _pink(rng, num_samples)
    noise = np.clip(_scaled(base, rng.uniform(-30.0, -12.0)), -1.0, 1.0)
    return noise.astype(np.float32), colour


def level_dbfs(samples: np.ndarray) -> float:
    """The RMS level of ``samples`` in dB full scale (:data:`ZERO_FLOOR_DBFS` for all zeros)."""
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return ZERO_FLOOR_DBFS if rms <= 0.0 else max(ZERO_FLOOR_DBFS, 20.0 * np.log10(rms))
