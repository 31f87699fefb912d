"""The AVSBench resampler against moviepy 1.0.3 itself (the test-only dependency that made
AVSBench's wavs; imageio-ffmpeg gives it its FFmpeg program)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from moviepy.audio.io.AudioFileClip import AudioFileClip

from avs_synth.audio.avsbench_resampler import (
    MoviepyClip,
    MoviepyReplay,
    avsbench_waveform,
    ffmpeg_printed_duration,
    moviepy_picks,
)
from avs_synth.audio.clip_reader import open_clip
from avs_synth.audio.decode import load_audio
from avs_synth.audio.windows import WindowConfig, choose_window, extract
from tests.support.media_files import write_media

SECONDS = 6.0  # past moviepy's first buffer (200,000 frames = 4.5 s at 44.1 kHz): one refill


def _signal(rate: int, channels: int, seconds: float = SECONDS) -> np.ndarray:
    """A tone, a chirp up to 20 kHz (aliased by the AVSBench path) and noise; near full scale so
    that moviepy's clipping at 0.99 happens."""
    rng = np.random.default_rng(rate + channels)
    t = np.arange(int(seconds * rate)) / rate
    base = 0.45 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * (2000 + 1500 * t) * t)
    out = np.stack([base * (1.0 - 0.3 * c) for c in range(channels)], axis=1)
    out += 0.08 * rng.standard_normal(out.shape)
    out[int(1.5 * rate) : int(1.6 * rate)] *= 2.5  # past 0.99: clipped
    return np.clip(out, -1.0, 1.0 - 1 / 32768)


def _moviepy_wav(path: Path, tmp_path: Path) -> np.ndarray:
    """What AVSBench did: ``AudioFileClip(path).write_audiofile(wav, fps=16000)``."""
    wav = tmp_path / f"{path.name}.moviepy.wav"
    clip = AudioFileClip(str(path))
    try:
        clip.write_audiofile(str(wav), fps=16000, logger=None)
    finally:
        clip.close()
    data, rate = sf.read(wav, dtype="int16", always_2d=True)
    assert rate == 16000 and data.shape[1] == 2
    return data


CASES = [
    ("aac44k-stereo.mp4", 44100, 2, "aac"),
    ("aac44k-mono.mp4", 44100, 1, "aac"),
    ("aac48k-stereo.mp4", 48000, 2, "aac"),
    ("aac48k-mono.mp4", 48000, 1, "aac"),
    ("pcm44k-stereo.flac", 44100, 2, None),  # read by stretches with soundfile
    ("pcm44k-mono.wav", 44100, 1, None),  # the same, with FFmpeg's int16 -3 dB spread
    ("pcm16k-mono.wav", 16000, 1, None),
]


@pytest.mark.slow  # moviepy runs FFmpeg twice per clip: about 1 s each
@pytest.mark.parametrize(("name", "rate", "channels", "codec"), CASES)
def test_sample_exact_against_moviepy(tmp_path, name, rate, channels, codec):
    path = tmp_path / name
    signal = _signal(rate, channels)
    if codec is None:
        sf.write(path, signal, rate, subtype="PCM_16")
    else:
        write_media(path, signal, rate, codec=codec, video_size=(32, 32))
    reference = _moviepy_wav(path, tmp_path)  # int16 [n, 2]
    clip = MoviepyClip(path=path)
    assert clip.frames == len(reference) == int(16000 * SECONDS)
    assert np.array_equal(clip.stereo_int16(), reference)
    if channels == 2:  # (FFmpeg spreads mono at -3 dB: never near full scale)
        assert np.abs(reference).max() == 32440  # moviepy's clipping at 0.99 is reproduced
    # as VGGish reads the wav: int16 / 32768, channels averaged
    vggish = reference.astype(np.float64).mean(axis=1) / 32768.0
    whole = avsbench_waveform(path)
    assert whole.dtype == np.float32 and np.array_equal(whole, vggish.astype(np.float32))
    assert np.array_equal(load_audio(path, resampler="avsbench"), whole)
    # stretches read alone (a fresh clip each: decoded from the start only as far as needed)
    for start in (0, 7, 16000, 71_999, 80_000, len(reference) - 16000):
        alone = MoviepyClip(path=path).read(start, 16000)
        assert np.array_equal(alone, whole[start : start + 16000]), start
    # and a build's window: measured and cut from that same audio
    reader = open_clip(path, resampler="avsbench")
    window = choose_window(reader, WindowConfig(policy="loudest"), seed=0, key="k")
    piece = extract(reader, window, WindowConfig())
    assert np.array_equal(piece, whole[window.start : window.start + 16000])


def test_picks_follow_moviepys_buffer_not_just_rounding():
    frames = moviepy_picks(10.0, 441_000)
    k = np.arange(160_000)
    rounded = np.round(44100 * ((1.0 / 16000) * k)).astype(np.int64)  # moviepy's float order
    assert frames.shape == (160_000,)
    # exact until the write chunk (2,000 samples = 5,513 frames) that reaches past the first
    # 200,000-frame buffer refills it; from there one frame earlier per refill
    first_refill = int(np.argmax(frames != rounded))
    assert 200_000 - 5_513 < rounded[first_refill] <= 200_000 and np.array_equal(
        frames[:first_refill], rounded[:first_refill]
    )
    shifts = np.unique(rounded - frames)
    assert shifts.tolist() == [0, 1, 2, 3]
    assert 0.40 < np.mean(frames == rounded) < 0.5
    # a stream shorter than the duration: past its end moviepy repeats its buffer's last frame
    short = moviepy_picks(10.0, 300_000)
    assert short.max() == 299_999 and short[-1] == 299_999
    # any stretch replayed alone takes the same frames
    replay = MoviepyReplay(10.0, 441_000)
    assert np.array_equal(replay.picks(123_456, 140_001)[0], frames[123_456:140_001])
    assert np.array_equal(replay.picks(5, 2_003)[0], frames[5:2_003])


def test_ffmpeg_printed_duration_rounds_to_centiseconds_as_ffmpeg_prints():
    assert ffmpeg_printed_duration(10_000_000) == 10.0
    assert ffmpeg_printed_duration(10_004_999) == 10.0
    assert ffmpeg_printed_duration(10_005_000) == 10.01
    assert ffmpeg_printed_duration(3_725_126_000) == 3725.13  # 01:02:05.13
