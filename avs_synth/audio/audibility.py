"""How audible a window's source is: its level and spectral flatness against its clip's.

A VGGSound label says the class sounds somewhere in the clip, not in every second: a source may
pause, start late or drown in the recording's hiss. The build scores each window it cuts
(``avs-synth build --min-audibility``) from the clip's samples, in the worker (a plan decodes no
audio):

- level: the window's RMS level against the clip's, ``clip((L_window - L_clip + 30) / 30, 0, 1)``
  (1 when the window is as loud as the clip overall, 0 at 30 dB below it), and against full
  scale, ``clip((L_window + 60) / 20, 0, 1)`` (0 at -60 dBFS, 1 from -40 dBFS), the smaller of
  the two;
- flatness: the median over 25 ms frames (10 ms hop, Hann) of the power spectrum's spectral
  flatness (geometric over arithmetic mean; about 0.56 for white noise, near 0 for a tone), and
  ``clip(1 - 2 max(0, F_window - F_clip), 0, 1)``: a window much flatter (more noise-like) than
  its clip holds the clip's noise floor rather than its source.

The score is the product, in [0, 1]. It is validated on the sample corpus's drawn silent stretches
(``bench/audibility_auroc.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FRAME_S, HOP_S = 0.025, 0.010
_TINY = 1e-12


@dataclass(frozen=True)
class Audibility:
    """A window's audibility and the measurements behind it.

    Attributes:
        score: the audibility in [0, 1].
        level_dbfs, clip_level_dbfs: RMS levels of the window and the whole clip.
        flatness, clip_flatness: median spectral flatness of the window's and the clip's frames.
    """

    score: float
    level_dbfs: float
    clip_level_dbfs: float
    flatness: float
    clip_flatness: float


def rms_dbfs(samples: np.ndarray) -> float:
    """The RMS level in dB full scale (floored at -150 dB)."""
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if len(samples) else 0.0
    return max(-150.0, 20.0 * np.log10(max(rms, _TINY)))


def spectral_flatness(samples: np.ndarray, rate: int) -> float:
    """The median over frames of the power spectrum's flatness (1.0 for a silent window)."""
    frame = max(16, int(round(FRAME_S * rate)))
    hop = max(1, int(round(HOP_S * rate)))
    x = np.asarray(samples, dtype=np.float64)
    if len(x) < frame:
        x = np.pad(x, (0, frame - len(x)))
    count = 1 + (len(x) - frame) // hop
    index = np.arange(frame)[None, :] + hop * np.arange(count)[:, None]  # [frames, frame]
    power = np.abs(np.fft.rfft(x[index] * np.hanning(frame), axis=1)) ** 2  # [frames, bins]
    power = power[:, 1:] + _TINY  # without DC
    flatness = np.exp(np.mean(np.log(power), axis=1)) / np.mean(power, axis=1)
    return float(np.median(flatness))


def audibility(window: np.ndarray, clip: np.ndarray, rate: int) -> Audibility:
    """The audibility of ``window`` cut from ``clip`` (both float samples at ``rate``)."""
    level, clip_level = rms_dbfs(window), rms_dbfs(clip)
    flat, clip_flat = spectral_flatness(window, rate), spectral_flatness(clip, rate)
    relative = np.clip((level - clip_level + 30.0) / 30.0, 0.0, 1.0)
    absolute = np.clip((level + 60.0) / 20.0, 0.0, 1.0)
    noise_like = np.clip(1.0 - 2.0 * max(0.0, flat - clip_flat), 0.0, 1.0)
    return Audibility(
        score=float(min(relative, absolute) * noise_like),
        level_dbfs=level,
        clip_level_dbfs=clip_level,
        flatness=flat,
        clip_flatness=clip_flat,
    )
