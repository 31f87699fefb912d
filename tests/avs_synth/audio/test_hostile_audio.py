"""Property tests for the audio parsers on hostile input: any header, any sample values.

Every reader either returns finite float32 samples of a length the file can hold, or raises
:class:`AudioReadError` / ``FileNotFoundError`` naming the file: never another exception, never a
hang, never NaN in the output.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avs_synth.audio.audio_checks import MIN_SAMPLE_RATE, AudioReadError
from avs_synth.audio.clip_reader import open_clip
from avs_synth.audio.decode import audio_duration, load_audio
from avs_synth.audio.windows import WindowConfig, WindowRefused, choose_window, extract
from tests.support.media_files import write_media

SETTINGS = settings(
    max_examples=60,
    deadline=5000,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _wav_bytes(frames: int = 400, rate: int = 8000, channels: int = 2) -> bytes:
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    pcm = rng.integers(-20000, 20000, size=(frames, channels), dtype=np.int16)
    sf.write(buffer, pcm, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def _check_every_reader(path: Path) -> None:
    size = path.stat().st_size
    most_frames = size * 16_000 // MIN_SAMPLE_RATE + 16  # >= 1 byte per frame, rate >= 4 kHz
    for resampler in ("bandlimited", "avsbench"):
        try:
            samples = load_audio(path, resampler=resampler)
        except AudioReadError as error:
            assert str(error).startswith(f"{path}: ")
            continue
        assert samples.dtype == np.float32 and samples.ndim == 1
        assert len(samples) <= most_frames
        assert np.isfinite(samples).all()
    try:
        seconds = audio_duration(path)
        assert 0 <= seconds <= size / MIN_SAMPLE_RATE + 1
    except AudioReadError as error:
        assert str(error).startswith(f"{path}: ")
    for resampler in ("bandlimited", "avsbench"):
        try:
            clip = open_clip(path, resampler=resampler)
            window = choose_window(clip, WindowConfig(window_s=0.01), seed=0, key="k")
            piece = extract(clip, window, WindowConfig(window_s=0.01))
        except WindowRefused:
            continue
        except AudioReadError as error:
            assert str(error).startswith(f"{path}: ")
            continue
        assert np.isfinite(piece).all() and len(piece) == 160


@SETTINGS
@given(
    rate=st.one_of(st.integers(0, 2**32 - 1), st.sampled_from([0, 1, 3999, 4000, 384001])),
    channels=st.integers(0, 2**16 - 1),
    bits=st.sampled_from([0, 1, 8, 16, 24, 32, 64, 65535]),
    data_size=st.one_of(st.integers(0, 2**32 - 1), st.just(1600)),
)
def test_any_wav_header_fields(tmp_path_factory, rate, channels, bits, data_size) -> None:
    data = bytearray(_wav_bytes())
    block = max(1, channels * bits // 8) & 0xFFFF
    struct.pack_into("<HI", data, 22, channels, rate)
    struct.pack_into("<IHH", data, 28, (rate * block) & 0xFFFFFFFF, block, bits)
    struct.pack_into("<I", data, 40, data_size)
    path = tmp_path_factory.mktemp("wav") / "clip.wav"
    path.write_bytes(bytes(data))
    _check_every_reader(path)


@SETTINGS
@given(edits=st.lists(st.tuples(st.integers(0, 43), st.integers(0, 255)), min_size=1, max_size=8))
def test_any_bytes_in_a_wav_header(tmp_path_factory, edits) -> None:
    data = bytearray(_wav_bytes())
    for offset, value in edits:
        data[offset] = value
    path = tmp_path_factory.mktemp("wav") / "clip.wav"
    path.write_bytes(bytes(data))
    _check_every_reader(path)


@SETTINGS
@given(
    values=st.lists(
        st.floats(width=32, allow_nan=True, allow_infinity=True), min_size=1, max_size=600
    )
)
def test_any_sample_values_in_a_float_wav(tmp_path_factory, values) -> None:
    samples = np.asarray(values, dtype=np.float32)
    path = tmp_path_factory.mktemp("wav") / "clip.wav"
    sf.write(path, samples, 16000, subtype="FLOAT")
    if np.isfinite(samples).all():
        assert np.array_equal(load_audio(path), samples)
    else:
        with pytest.raises(AudioReadError, match=f"^{path}: holds NaN or infinite samples"):
            load_audio(path)
    _check_every_reader(path)


@pytest.fixture(scope="module")
def small_mp4(tmp_path_factory) -> bytes:
    t = np.arange(8000) / 16000
    path = tmp_path_factory.mktemp("mp4") / "clip.mp4"
    write_media(path, 0.3 * np.sin(2 * np.pi * 440 * t), 16000)
    return path.read_bytes()


@settings(
    max_examples=40,
    deadline=10000,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_corrupted_bytes_in_an_mp4(tmp_path_factory, small_mp4, data) -> None:
    blob = bytearray(small_mp4)
    edits = data.draw(
        st.lists(
            st.tuples(st.integers(0, len(blob) - 1), st.integers(0, 255)), min_size=1, max_size=6
        )
    )
    for offset, value in edits:
        blob[offset] = value
    cut = data.draw(st.integers(8, len(blob)))
    path = tmp_path_factory.mktemp("mp4") / "clip.mp4"
    path.write_bytes(bytes(blob[:cut]))
    _check_every_reader(path)
