from __future__ import annotations

import struct
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from avs_synth.audio.clip_reader import open_clip
from avs_synth.audio.decode import AudioReadError, audio_duration, load_audio
from tests.support.media_files import no_ffmpeg, write_media  # noqa: F401  (a fixture)


def _pcm(seconds: float, rate: int, channels: int = 2, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(-20000, 20000, size=(int(seconds * rate), channels), dtype=np.int16)


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


@pytest.mark.usefixtures("no_ffmpeg")
@pytest.mark.parametrize(("codec", "name"), [("flac", "a.mkv"), ("alac", "a.m4a")])
def test_lossless_video_containers_are_exact(tmp_path: Path, codec: str, name: str) -> None:
    pcm = _pcm(1.0, 8000)
    write_media(tmp_path / name, pcm, 8000, codec=codec)
    expected = (pcm[:, 0].astype(np.float32) + pcm[:, 1]) / 2 / 32768
    samples = load_audio(tmp_path / name, sample_rate=8000)
    np.testing.assert_allclose(samples, expected, rtol=0, atol=1e-7)
    part = load_audio(tmp_path / name, sample_rate=8000, offset_s=0.5, duration_s=0.25)
    np.testing.assert_allclose(part, expected[4000:6000], rtol=0, atol=1e-7)
    assert audio_duration(tmp_path / name) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.usefixtures("no_ffmpeg")
def test_mp4_with_video_stream_and_aac_needs_no_ffmpeg_program(tmp_path: Path) -> None:
    t = np.arange(16000) / 16000
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    write_media(tmp_path / "clip.mp4", tone, 16000, video_size=(32, 32))
    samples = load_audio(tmp_path / "clip.mp4")
    assert samples.shape == (16000,)  # cut at the stream's duration, not the padded last frame
    middle = samples[4000:12000]
    spectrum = np.abs(np.fft.rfft(middle))
    assert np.argmax(spectrum) * 16000 / middle.size == pytest.approx(440, abs=4)
    assert 0.4 < float(np.abs(middle).max()) < 0.6
    assert audio_duration(tmp_path / "clip.mp4") == pytest.approx(1.0, abs=1e-3)
    # a stretch decoded after a seek equals the same stretch of the whole decode (a pure tone:
    # no noise-substituted bands)
    part = load_audio(tmp_path / "clip.mp4", offset_s=0.5, duration_s=0.25)
    np.testing.assert_allclose(part, samples[8000:12000], rtol=0, atol=1e-6)
    # a clip reader seeks forward, then back to the start (priming samples dropped both times)
    reader = open_clip(tmp_path / "clip.mp4")
    assert (reader.rate, reader.frames) == (16000, 16000)
    np.testing.assert_allclose(reader.read(9000, 2000), samples[9000:11000], rtol=0, atol=1e-6)
    np.testing.assert_allclose(reader.read(0, 3000), samples[:3000], rtol=0, atol=1e-6)


def test_unreadable_container_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42 truncated")
    with pytest.raises(AudioReadError, match=f"^{bad}: cannot decode audio"):
        load_audio(bad)
    with pytest.raises(AudioReadError, match=f"^{bad}: "):
        audio_duration(bad)
    video_only = tmp_path / "video-only.mp4"
    with av.open(str(video_only), "w") as out:
        stream = out.add_stream("mpeg4", rate=4)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    with pytest.raises(AudioReadError, match=f"^{video_only}: holds no audio stream"):
        load_audio(video_only)


def _wav_with_rate(path: Path, rate: int) -> Path:
    sf.write(path, np.zeros(20, dtype=np.int16), 16000, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    data[24:28] = struct.pack("<I", rate)
    data[28:32] = struct.pack("<I", rate * 2)
    path.write_bytes(bytes(data))
    return path


def test_a_header_declaring_1_hz_is_refused_not_read_as_20_s(tmp_path: Path) -> None:
    from avs_synth.audio.clip_reader import open_clip

    bad = _wav_with_rate(tmp_path / "one-hertz.wav", 1)
    for read in (load_audio, audio_duration, open_clip):
        with pytest.raises(AudioReadError, match=f"^{bad}: the header declares .* 1 Hz"):
            read(bad)


def test_non_finite_samples_are_refused_with_the_file_named(tmp_path: Path) -> None:
    from avs_synth.audio.clip_reader import open_clip

    samples = np.zeros(16000, dtype=np.float32)
    samples[1234] = np.nan
    samples[5000] = np.inf
    bad = tmp_path / "nan.wav"
    sf.write(bad, samples, 16000, subtype="FLOAT")
    with pytest.raises(AudioReadError, match=f"^{bad}: holds NaN .* sample frame 1234"):
        load_audio(bad)
    clip = open_clip(bad)
    with pytest.raises(AudioReadError, match=f"^{bad}: holds NaN"):
        clip.read(1000, 500)
    assert np.array_equal(clip.read(8000, 100), np.zeros(100, np.float32))  # a clean stretch


def test_the_avsbench_resampler_makes_16_khz_only(tmp_path: Path) -> None:
    sf.write(tmp_path / "a.wav", _pcm(0.5, 44100), 44100, subtype="PCM_16")
    with pytest.raises(ValueError, match="16000 Hz"):
        load_audio(tmp_path / "a.wav", sample_rate=8000, resampler="avsbench")
    with pytest.raises(ValueError, match="resampler must be one of"):
        load_audio(tmp_path / "a.wav", resampler="sinc")  # type: ignore[arg-type]
    assert load_audio(tmp_path / "a.wav", resampler="avsbench").shape == (8000,)
