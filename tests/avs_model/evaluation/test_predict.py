"""``predict``: frames paired with their second of audio, masks, overlays, a video."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from avs_model.evaluation.predict import audio_examples, frame_times, predict
from avs_synth.audio.logmel import waveform_to_examples

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs FFmpeg")


def _tone(seconds: float, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * 16000)) / 16000
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_audio_pairing_follows_avsbench() -> None:
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, 3 * 16000).astype(np.float32)
    per_second = audio_examples(audio, 3, fps=1.0)
    assert torch.allclose(per_second, waveform_to_examples(audio, num_examples=3))
    dense = audio_examples(audio, 6, fps=2.0)
    assert dense.shape == (6, 1, 96, 64)
    # frame 3 at 2 fps ends at 2.0 s: the 15,600 samples before it
    assert torch.allclose(dense[3], waveform_to_examples(audio[32000 - 15600 : 32000])[0])
    assert frame_times(3, 1.0) == pytest.approx([0.96, 1.96, 2.96])


def test_frames_and_audio_file(checkpoint: Path, tmp_path: Path) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        pixels = np.full((30, 40, 3), 60 * i, dtype=np.uint8)
        Image.fromarray(pixels).save(frames / f"{i:03d}.png")
    sf.write(tmp_path / "audio.wav", _tone(2.5), 16000)
    report = predict(
        checkpoint,
        out_dir=tmp_path / "out",
        frames=[frames],
        audio=tmp_path / "audio.wav",
        write_video=False,
    )
    assert [f.index for f in report.frames] == [0, 1, 2]
    for frame in report.frames:
        assert 0.0 <= frame.score <= 1.0
        assert Image.open(frame.mask).size == (40, 30)
        assert Image.open(frame.overlay).size == (40, 30)
    saved = json.loads(report.predictions_json.read_text())
    assert [f["time_s"] for f in saved["frames"]] == [0.96, 1.96, 2.96]
    gated = predict(
        checkpoint,
        out_dir=tmp_path / "gated",
        frames=[frames],
        audio=tmp_path / "audio.wav",
        gate_threshold=1.0,
        write_video=False,
    )
    assert not any(f.sounding for f in gated.frames)
    assert all(np.asarray(Image.open(f.mask)).max() == 0 for f in gated.frames)
    with pytest.raises(FileNotFoundError, match="nope.png: no such image"):
        predict(
            checkpoint,
            out_dir=tmp_path / "x",
            frames=[tmp_path / "nope.png"],
            audio=tmp_path / "audio.wav",
        )


@needs_ffmpeg
def test_video_input_gives_one_frame_per_second_and_an_overlay_video(
    checkpoint: Path, tmp_path: Path
) -> None:
    video = tmp_path / "clip.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=64x48:rate=10:duration=3",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=16000:duration=3",
            "-c:v",
            "mpeg4",
            "-c:a",
            "aac",
            "-shortest",
            str(video),
        ],
        check=True,
    )
    report = predict(checkpoint, out_dir=tmp_path / "out", video=video)
    assert len(report.frames) == 3
    assert Image.open(report.frames[0].overlay).size == (64, 48)
    assert report.video is not None and report.video.stat().st_size > 0
    dense = predict(checkpoint, out_dir=tmp_path / "dense", video=video, fps=2.0, write_video=False)
    assert len(dense.frames) == 6
