"""16-bit FLAC encoding: deterministic bytes, exact round trip through the reader, NaN refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from avs_synth.audio.decode import load_audio
from avs_synth.flac import encode_flac, write_flac


def test_flac_encoding_is_deterministic_and_round_trips(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    samples = rng.uniform(-0.9, 0.9, size=4000).astype(np.float32)
    data = encode_flac(samples, 16000)
    assert data[:4] == b"fLaC"
    assert encode_flac(samples, 16000) == data
    path = write_flac(tmp_path / "out" / "x.flac", samples, 16000)
    assert path.read_bytes() == data
    decoded = load_audio(path)
    np.testing.assert_array_equal(decoded, np.rint(samples.astype(np.float64) * 32768) / 32768)
    assert np.abs(decoded - samples).max() <= 1 / 65536
    assert sf.info(str(path)).subtype == "PCM_16"
    pcm = np.random.default_rng(0).integers(-20000, 20000, size=1600, dtype=np.int16)
    np.testing.assert_array_equal(
        load_audio(write_flac(tmp_path / "i.flac", pcm, 16000)), pcm.astype(np.float32) / 32768
    )
    clipped = load_audio(write_flac(tmp_path / "c.flac", np.array([1.5, -1.5, 1.0]), 16000))
    np.testing.assert_array_equal(clipped, [32767 / 32768, -1.0, 32767 / 32768])


def test_encode_flac_refuses_nan() -> None:
    with pytest.raises(ValueError, match="NaN"):
        encode_flac(np.array([0.0, np.nan]), 16000)
