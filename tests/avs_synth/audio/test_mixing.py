"""Multi-source mixes: RMS-normalised sources, seeded gains, pan laws, peak limit."""

from __future__ import annotations

import numpy as np
import pytest

from avs_synth.audio.mixing import (
    MIN_GAIN_DB,
    PEAK,
    TARGET_DBFS,
    mix_sources,
    pan_gains,
    source_gains_db,
)


def _rms_db(x: np.ndarray) -> float:
    return 20 * np.log10(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def test_sources_are_normalised_then_gained() -> None:
    rng = np.random.default_rng(0)
    quiet = 0.001 * rng.standard_normal(8000)
    loud = 0.3 * np.sin(np.arange(8000) * 0.05)
    alone = mix_sources([quiet], [0.0])
    assert _rms_db(alone) == pytest.approx(TARGET_DBFS, abs=0.01)
    assert _rms_db(mix_sources([loud], [-6.0])) == pytest.approx(TARGET_DBFS - 6, abs=0.01)
    both = mix_sources([quiet, loud], [0.0, -3.0])
    expected = alone + mix_sources([loud], [-3.0])
    np.testing.assert_allclose(both, expected, atol=1e-6)


def test_gains_are_seeded_and_in_range() -> None:
    gains = source_gains_db(3, seed=1, key="k")
    assert gains == source_gains_db(3, seed=1, key="k") != source_gains_db(3, seed=2, key="k")
    assert all(MIN_GAIN_DB <= g <= 0 for g in gains)


def test_pan_laws() -> None:
    assert pan_gains(0.25, "linear") == pytest.approx((0.75, 0.25))
    left, right = pan_gains(0.3, "constant-power")
    assert left**2 + right**2 == pytest.approx(1.0)
    assert pan_gains(0.0, "constant-power") == pytest.approx((1.0, 0.0))
    with pytest.raises(ValueError, match="unknown pan"):
        pan_gains(0.5, "none")


def test_a_panned_mix_is_stereo_and_places_each_source() -> None:
    a = np.sin(np.arange(4000) * 0.1)
    b = np.sin(np.arange(4000) * 0.37)
    mix = mix_sources([a, b], [0.0, 0.0], pan="linear", positions=[0.0, 1.0])
    assert mix.shape == (4000, 2)
    np.testing.assert_allclose(mix[:, 0], mix_sources([a], [0.0]), atol=1e-6)  # a only, left
    np.testing.assert_allclose(mix[:, 1], mix_sources([b], [0.0]), atol=1e-6)  # b only, right
    with pytest.raises(ValueError, match="position"):
        mix_sources([a], [0.0], pan="linear")


def test_loud_mixes_are_limited_as_a_whole() -> None:
    spikes = np.zeros(1000)
    spikes[::100] = 1.0  # a sparse click train: its peak is far above its RMS
    mix = mix_sources([spikes, spikes.copy()], [0.0, 0.0])
    assert np.max(np.abs(mix)) == pytest.approx(PEAK, abs=1e-6)
    with pytest.raises(ValueError, match="same length"):
        mix_sources([spikes, spikes[:10]], [0.0, 0.0])
