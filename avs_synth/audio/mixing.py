"""Mixing the windows of a multi-source triplet (``avs-synth build --sources``), mono or panned.

Each source's window is normalised to :data:`TARGET_DBFS` RMS, scaled by its gain (drawn in
``[MIN_GAIN_DB, 0]`` dB from the seed and the sample's key, recorded in the json), optionally
panned to its mask's horizontal position, and the sources are summed; a mix whose peak would
exceed :data:`PEAK` is scaled down as a whole (the relative gains are kept).

Panning (``p`` in [0, 1], 0 left): ``linear`` as VPO, ``L = (1 - p) w``, ``R = p w``;
``constant-power``, ``L = cos(p pi / 2) w``, ``R = sin(p pi / 2) w``. A stereo mix is
``[n, 2]``; VGGish (and :func:`avs_synth.schema.decode_audio`) averages the channels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from avs_synth.seeded_order import seeded_uniform

TARGET_DBFS = -20.0
MIN_GAIN_DB = -6.0
PEAK = 0.99


def source_gains_db(count: int, *, seed: int, key: str) -> list[float]:
    """The seeded gain of each of ``count`` sources, in dB, rounded to 0.01 dB."""
    return [
        round(MIN_GAIN_DB * seeded_uniform(seed, "source-gain", key, i), 2) for i in range(count)
    ]


def pan_gains(position: float, mode: str) -> tuple[float, float]:
    """``(left, right)`` gains of a source at ``position`` (0 left, 1 right)."""
    p = float(np.clip(position, 0.0, 1.0))
    if mode == "linear":
        return 1.0 - p, p
    if mode == "constant-power":
        return float(np.cos(p * np.pi / 2)), float(np.sin(p * np.pi / 2))
    raise ValueError(f"unknown pan mode {mode!r} (linear or constant-power)")


def mix_sources(
    windows: Sequence[np.ndarray],
    gains_db: Sequence[float],
    *,
    pan: str = "none",
    positions: Sequence[float] | None = None,
) -> np.ndarray:
    """The mix of equally long windows: float32 ``[n]`` (``pan`` ``none``) or ``[n, 2]``.

    Args:
        windows: each source's mono samples.
        gains_db: each source's gain.
        pan: ``none``, ``linear`` or ``constant-power``.
        positions: each source's horizontal position (needed when panning).
    """
    if len(windows) != len(gains_db) or not windows:
        raise ValueError(f"{len(windows)} windows for {len(gains_db)} gains")
    if len({len(w) for w in windows}) != 1:
        raise ValueError("the windows of a mix must have the same length")
    target = 10.0 ** (TARGET_DBFS / 20.0)
    channels = 1 if pan == "none" else 2
    mix = np.zeros((len(windows[0]), channels), dtype=np.float64)
    for n, (window, gain) in enumerate(zip(windows, gains_db, strict=True)):
        w = np.asarray(window, dtype=np.float64)
        rms = float(np.sqrt(np.mean(np.square(w))))
        w = w * (target / rms if rms > 0 else 0.0) * 10.0 ** (gain / 20.0)
        if pan == "none":
            mix[:, 0] += w
        else:
            if positions is None:
                raise ValueError("panning needs each source's position")
            left, right = pan_gains(positions[n], pan)
            mix[:, 0] += left * w
            mix[:, 1] += right * w
    peak = float(np.max(np.abs(mix))) if mix.size else 0.0
    if peak > PEAK:
        mix *= PEAK / peak
    out = mix[:, 0] if pan == "none" else mix
    return out.astype(np.float32)
