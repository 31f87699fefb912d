"""Audio window policies on clips with known loud and silent seconds."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from avs_synth.audio.clip_reader import SoundFileClip, open_clip
from avs_synth.audio.logmel import resample
from avs_synth.audio.windows import (
    ArrayClip,
    WindowConfig,
    WindowRefused,
    candidate_starts,
    choose_quiet_window,
    choose_window,
    extract,
    usable_windows,
    window_rms_dbfs,
)

SR = 16000


def _tone(levels: list[float], rate: int = SR) -> np.ndarray:
    """One second per entry: a 440 Hz sine of that amplitude (0 = digital silence)."""
    t = np.arange(rate) / rate
    tone = np.sin(2 * np.pi * 440 * t)
    return np.concatenate([a * tone for a in levels]).astype(np.float32)


def _clip(levels: list[float], rate: int = SR) -> ArrayClip:
    return ArrayClip(samples=_tone(levels, rate), rate=rate)


def test_rms_of_full_scale_sine_is_minus_3_dbfs_and_silence_is_floored():
    levels = window_rms_dbfs(_tone([1.0, 0.0]), np.array([0, SR]), SR)
    assert levels[0] == pytest.approx(-3.0103, abs=1e-3)
    assert levels[1] == -120.0


def test_candidates_are_complete_windows_on_the_hop_grid():
    config = WindowConfig(window_s=1.0, hop_s=0.5)
    assert candidate_starts(int(2.9 * SR), config).tolist() == [0, 8000, 16000, 24000]
    assert candidate_starts(SR - 1, config).tolist() == []
    assert candidate_starts(2 * 44100, WindowConfig(), 44100).tolist() == [0, 44100]


def test_loudest_picks_the_loudest_second():
    window = choose_window(
        _clip([0.01, 0.2, 0.9, 0.3]), WindowConfig(policy="loudest"), seed=0, key="k"
    )
    assert window.start == 2 * SR
    assert window.rms_dbfs == pytest.approx(20 * np.log10(0.9 / np.sqrt(2)), abs=1e-3)


def test_nonsilent_never_picks_a_silent_second_and_depends_on_seed_and_key():
    clip = _clip([0.0, 0.5, 0.0, 0.5, 0.0, 0.5, 0.0, 0.0001])
    config = WindowConfig(policy="nonsilent", silence_dbfs=-45.0)
    starts = [
        choose_window(clip, config, seed=s, key=f"k{n}").start for s in range(3) for n in range(30)
    ]
    assert set(starts) == {SR, 3 * SR, 5 * SR}
    assert min(starts.count(s) for s in set(starts)) >= 15  # roughly uniform over the three
    assert choose_window(clip, config, seed=1, key="k7") == choose_window(
        clip, config, seed=1, key="k7"
    )


def test_fixed_start_is_kept_and_clamped_into_short_clips():
    clip = _clip([0.5, 0.5, 0.5])
    assert (
        choose_window(clip, WindowConfig(policy="fixed", fixed_start_s=1.25), seed=0, key="k").start
        == 20000
    )
    late = choose_window(clip, WindowConfig(policy="fixed", fixed_start_s=9.0), seed=0, key="k")
    assert late.start == 2 * SR


def test_refusals_name_their_reason():
    with pytest.raises(WindowRefused) as short:
        choose_window(
            ArrayClip(samples=np.zeros(SR - 1, np.float32), rate=SR),
            WindowConfig(),
            seed=0,
            key="k",
        )
    assert short.value.reason == "audio_too_short"
    for policy in ("loudest", "nonsilent"):
        with pytest.raises(WindowRefused) as silent:
            choose_window(_clip([0.0, 0.001]), WindowConfig(policy=policy), seed=0, key="k")
        assert silent.value.reason == "silent_audio"


def test_usable_windows_and_extract_length():
    clip = _clip([0.5, 0.0, 0.5, 0.5])
    config = WindowConfig()
    windows = usable_windows(clip, config)
    assert [w.start for w in windows] == [0, 2 * SR, 3 * SR]
    piece = extract(clip, windows[1], config)
    assert piece.shape == (SR,) and piece.dtype == np.float32
    assert np.array_equal(piece, clip.samples[2 * SR : 3 * SR])


@pytest.mark.parametrize("rate", [44100, 48000, 22050])
def test_windows_at_the_clip_rate_match_resampling_the_whole_clip(rate):
    rng = np.random.default_rng(rate)
    t = np.arange(4 * rate) / rate
    samples = (0.3 * np.sin(2 * np.pi * 523 * t) + 0.05 * rng.standard_normal(t.shape)).astype(
        np.float32
    )
    samples[rate : 2 * rate] = 0.0  # second 1 is silent
    clip = ArrayClip(samples=samples, rate=rate)
    config = WindowConfig()
    windows = usable_windows(clip, config)
    assert [w.start for w in windows] == [0, 2 * rate, 3 * rate]
    whole = resample(torch.from_numpy(samples), rate, SR).numpy()
    for window in windows:
        piece = extract(clip, window, config)
        assert piece.shape == (SR,) and piece.dtype == np.float32
        begin = window.start * SR // rate
        reference = whole[begin : begin + SR]
        # equal up to the sinc filter's edge effects in the first / last few samples
        assert np.max(np.abs(piece[32:-32] - reference[32:-32])) < 1e-4
        assert np.sqrt(np.mean((piece - reference) ** 2)) < 2e-3


def test_a_flac_file_seeked_window_by_window_gives_the_same_choice_as_decoded_whole(tmp_path):
    rate = 44100
    left = _tone([0.0, 0.4, 0.0, 0.6, 0.2], rate)
    stereo = np.stack([left, 0.5 * left], axis=1)
    path = tmp_path / "clip.flac"
    sf.write(path, stereo, rate, format="FLAC", subtype="PCM_16")
    reader = open_clip(path)
    assert isinstance(reader, SoundFileClip) and (reader.rate, reader.frames) == (rate, 5 * rate)
    decoded, _ = sf.read(path, dtype="float32", always_2d=True)
    whole = ArrayClip(samples=decoded.mean(axis=1, dtype=np.float32), rate=rate)
    assert np.array_equal(reader.read(3 * rate, 100), whole.samples[3 * rate : 3 * rate + 100])
    for policy in ("nonsilent", "loudest", "fixed"):
        config = WindowConfig(policy=policy, fixed_start_s=2.5)
        for key in ("a", "b", "c", "d"):
            chosen = choose_window(reader, config, seed=0, key=key)
            assert chosen == choose_window(whole, config, seed=0, key=key)
            assert np.array_equal(extract(reader, chosen, config), extract(whole, chosen, config))
    assert choose_window(reader, WindowConfig(policy="loudest"), seed=0, key="k").start == 3 * rate


def test_config_validation():
    with pytest.raises(ValueError, match="policy"):
        WindowConfig(policy="middle")
    with pytest.raises(ValueError, match="positive"):
        WindowConfig(window_s=0)
    assert WindowConfig(window_s=0.975).window_samples == 15600


def test_quiet_window_lies_inside_the_near_silent_stretch_below_the_threshold():
    clip = _clip([0.5, 0.001, 0.5])  # -9 dBFS, then a second at -63 dBFS, then loud again
    config = WindowConfig(window_s=0.5)
    starts = set()
    for key in ("a", "b", "c", "d", "e", "f"):
        window = choose_quiet_window(clip, config, below_dbfs=-50.0, seed=0, key=key)
        assert SR <= window.start and window.start + SR // 2 <= 2 * SR
        assert window.rms_dbfs == pytest.approx(-63.0, abs=0.1)
        starts.add(window.start)
        again = choose_quiet_window(clip, config, below_dbfs=-50.0, seed=0, key=key)
        assert again == window  # a pure function of seed and key
    assert len(starts) > 1  # a seeded draw over the grid, not always the first
    with pytest.raises(WindowRefused) as refused:
        choose_quiet_window(clip, config, below_dbfs=-70.0, seed=0, key="a")
    assert refused.value.reason == "no_quiet_window"
    zeros = ArrayClip(samples=np.zeros(2 * SR, dtype=np.float32), rate=SR)
    with pytest.raises(WindowRefused, match="no_quiet_window"):  # exact zeros are not "real"
        choose_quiet_window(zeros, config, below_dbfs=-50.0, seed=0, key="a")
    short = ArrayClip(samples=np.full(100, 0.001, dtype=np.float32), rate=SR)
    with pytest.raises(WindowRefused, match="audio_too_short"):
        choose_quiet_window(short, config, below_dbfs=-50.0, seed=0, key="a")
