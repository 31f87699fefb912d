from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from avs_synth.audio import decode as audio_io
from avs_synth.audio.decode import AudioReadError, FFmpegNotFoundError, audio_duration, load_audio


@pytest.fixture
def ffmpeg() -> str:
    """The ffmpeg executable; skips without it, except under CI=true where it must exist."""
    found = shutil.which("ffmpeg")
    if found is None:
        reason = "ffmpeg is not installed (apt-get install ffmpeg)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true: {reason}")
        pytest.skip(reason)
    return found


def _pcm(seconds: float, rate: int, channels: int = 2, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(-20000, 20000, size=(int(seconds * rate), channels), dtype=np.int16)


def _run(ffmpeg: str, *arguments: str) -> None:
    subprocess.run([ffmpeg, "-nostdin", "-v", "error", "-y", *arguments], check=True)


def test_wav_int16_is_read_as_int_over_32768_and_averaged(tmp_path: Path) -> None:
    pcm = _pcm(0.5, 16000)
    sf.write(tmp_path / "a.wav", pcm, 16000, subtype="PCM_16")
    samples = load_audio(tmp_path / "a.wav")
    assert samples.dtype == np.float32 and samples.shape == (8000,)
    expected = (pcm[:, 0].astype(np.float64) + pcm[:, 1]) / 2 / 32768
    np.testing.assert_allclose(samples, expected, rtol=0, atol=1e-7)
    assert samples[0] == np.float32((int(pcm[0, 0]) + int(pcm[0, 1])) / 2 / 32768)


def test_offset_and_duration_are_sample_exact(tmp_path: Path) -> None:
    pcm = _pcm(1.0, 8000, channels=1)
    sf.write(tmp_path / "a.flac", pcm, 8000, subtype="PCM_16")
    part = load_audio(tmp_path / "a.flac", sample_rate=8000, offset_s=0.25, duration_s=0.5)
    np.testing.assert_array_equal(part, pcm[2000:6000, 0].astype(np.float32) / 32768)
    tail = load_audio(tmp_path / "a.flac", sample_rate=8000, offset_s=0.9, duration_s=5.0)
    assert tail.shape == (800,)
    assert load_audio(tmp_path / "a.flac", sample_rate=8000, offset_s=3.0).shape == (0,)


def test_resampling_keeps_a_sine(tmp_path: Path) -> None:
    t = np.arange(8000) / 8000
    sf.write(tmp_path / "s.wav", 0.5 * np.sin(2 * np.pi * 440 * t), 8000, subtype="FLOAT")
    samples = load_audio(tmp_path / "s.wav", sample_rate=16000)
    assert samples.shape == (16000,)
    expected = 0.5 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
    np.testing.assert_allclose(samples[400:-400], expected[400:-400], atol=2e-3)


def test_mp3_through_soundfile(tmp_path: Path) -> None:
    t = np.arange(16000) / 16000
    sf.write(tmp_path / "s.mp3", 0.5 * np.sin(2 * np.pi * 440 * t), 16000, format="MP3")
    samples = load_audio(tmp_path / "s.mp3")
    assert abs(samples.shape[0] - 16000) < 2000
    assert 0.3 < float(np.abs(samples).max()) < 0.7
    assert abs(audio_duration(tmp_path / "s.mp3") - 1.0) < 0.15


def test_duration_of_soundfile_formats(tmp_path: Path) -> None:
    sf.write(tmp_path / "a.wav", _pcm(1.25, 8000), 8000, subtype="PCM_16")
    assert audio_duration(tmp_path / "a.wav") == 1.25


def test_unreadable_and_missing_files_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEgarbage")
    with pytest.raises(AudioReadError, match=f"^{bad}: cannot decode audio"):
        load_audio(bad)
    with pytest.raises(AudioReadError, match=f"^{bad}: "):
        audio_duration(bad)
    with pytest.raises(FileNotFoundError, match="absent.flac"):
        load_audio(tmp_path / "absent.flac")


@pytest.mark.parametrize(("codec", "name"), [("flac", "a.mkv"), ("alac", "a.m4a")])
def test_lossless_video_containers_are_exact(
    tmp_path: Path, ffmpeg: str, codec: str, name: str
) -> None:
    pcm = _pcm(1.0, 8000)
    sf.write(tmp_path / "a.wav", pcm, 8000, subtype="PCM_16")
    _run(ffmpeg, "-i", str(tmp_path / "a.wav"), "-c:a", codec, str(tmp_path / name))
    expected = (pcm[:, 0].astype(np.float32) + pcm[:, 1]) / 2 / 32768
    samples = load_audio(tmp_path / name, sample_rate=8000)
    np.testing.assert_allclose(samples, expected, rtol=0, atol=1e-7)
    part = load_audio(tmp_path / name, sample_rate=8000, offset_s=0.5, duration_s=0.25)
    np.testing.assert_allclose(part, expected[4000:6000], rtol=0, atol=1e-7)
    assert audio_duration(tmp_path / name) == pytest.approx(1.0, abs=1e-3)


def test_mp4_with_video_stream_and_aac(tmp_path: Path, ffmpeg: str) -> None:
    t = np.arange(16000) / 16000
    sf.write(tmp_path / "s.wav", 0.5 * np.sin(2 * np.pi * 440 * t), 16000, subtype="PCM_16")
    video = ["-f", "lavfi", "-i", "color=c=red:s=32x32:r=5:d=1"]
    _run(
        ffmpeg,
        *video,
        "-i",
        str(tmp_path / "s.wav"),
        "-c:v",
        "mpeg4",
        "-c:a",
        "aac",
        "-shortest",
        str(tmp_path / "clip.mp4"),
    )
    samples = load_audio(tmp_path / "clip.mp4")
    assert abs(samples.shape[0] - 16000) < 1100
    middle = samples[4000:12000]
    spectrum = np.abs(np.fft.rfft(middle))
    assert np.argmax(spectrum) * 16000 / middle.size == pytest.approx(440, abs=4)
    assert 0.4 < float(np.abs(middle).max()) < 0.6


def test_unreadable_container_names_the_file(tmp_path: Path, ffmpeg: str) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42 truncated")
    with pytest.raises(AudioReadError, match=f"^{bad}: ffmpeg cannot decode"):
        load_audio(bad)


def test_missing_ffmpeg_says_how_to_install(tmp_path: Path, monkeypatch) -> None:
    clip = tmp_path / "clip.webm"
    clip.write_bytes(b"not decoded: ffmpeg is looked up first")
    monkeypatch.setattr(audio_io.shutil, "which", lambda name: None)
    with pytest.raises(FFmpegNotFoundError, match="apt-get install ffmpeg"):
        load_audio(clip)
