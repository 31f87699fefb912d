"""Audibility: level and spectral flatness against the clip, checked on hand-made signals and on
the sample corpus's drawn silent stretches."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from avs_synth.audio.audibility import audibility, rms_dbfs, spectral_flatness
from avs_synth.audio.clip_reader import open_clip
from tests.support.build_support import sample_corpus

RATE = 16_000


def _tone(seconds: float, dbfs: float, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return np.sqrt(2) * 10 ** (dbfs / 20) * np.sin(2 * np.pi * freq * t)


def test_flatness_of_noise_and_tone() -> None:
    noise = np.random.default_rng(0).standard_normal(RATE)
    assert spectral_flatness(noise, RATE) == pytest.approx(0.56, abs=0.03)  # e^-gamma
    assert spectral_flatness(_tone(1.0, -20), RATE) < 0.05
    assert rms_dbfs(_tone(1.0, -20)) == pytest.approx(-20.0, abs=0.01)
    assert rms_dbfs(np.zeros(10)) == -150.0


def test_a_source_scores_high_and_its_pause_low() -> None:
    floor = 10 ** (-58 / 20) * np.random.default_rng(1).standard_normal(3 * RATE)
    clip = floor.copy()
    clip[: 2 * RATE] += _tone(2.0, -18)  # the source sounds 2 s, then only the floor
    loud = audibility(clip[:RATE], clip, RATE)
    pause = audibility(clip[2 * RATE :], clip, RATE)
    assert loud.score > 0.95
    assert pause.score == 0.0  # 38 dB under the clip, 58 dB under full scale, noise-like
    assert pause.flatness > 0.4 > loud.flatness
    quiet = audibility(clip[:RATE] * 10 ** (-15 / 20), clip, RATE)  # 15 dB under its clip
    assert 0.4 < quiet.score < 0.6


def test_silent_stretches_of_the_corpus_score_below_the_rest(tmp_path_factory) -> None:
    corpus = sample_corpus(tmp_path_factory) / "corpus"
    clips = json.loads((corpus / "corpus.json").read_text())["clips"]
    audible, inaudible = [], []
    for clip in clips:
        if clip["path"] is None or clip["path"].endswith(".mp4"):
            continue
        reader = open_clip(Path(corpus / clip["path"]), sample_rate=RATE)
        samples = reader.read(0, reader.frames)
        stretch = clip["silent_seconds"]
        assert (stretch is not None) == clip["silent_stretch"]
        for start in np.arange(0.0, 9.01, 0.5):
            end = start + 1.0
            window = samples[int(start * reader.rate) : int(end * reader.rate)]
            score = audibility(window, samples, reader.rate).score
            if stretch is None or end <= stretch[0] or start >= stretch[1]:
                audible.append(score)
            elif stretch[0] <= start and end <= stretch[1]:
                inaudible.append(score)
    assert len(inaudible) >= 5
    pos, neg = np.array(audible)[:, None], np.array(inaudible)[None, :]
    auroc = ((pos > neg).sum() + 0.5 * (pos == neg).sum()) / (pos.size * neg.size)
    assert auroc >= 0.95
