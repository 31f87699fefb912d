"""``predict``: frames paired with their second of audio, masks, overlays, a video."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from avs_model.evaluation.predict import audio_examples, frame_times, predict
from avs_model.evaluation.video_io import grab_frames
from avs_synth.audio.logmel import waveform_to_examples
from avs_synth.errors import DataFormatError
from tests.support.media_files import no_ffmpeg, write_media  # noqa: F401  (a fixture)


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


def _frames_and_audio(tmp_path: Path, count: int, seconds: float) -> Path:
    """``count`` flat 40x30 frames in ``tmp_path / "frames"`` and a tone in ``audio.wav``."""
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(count):
        pixels = np.full((30, 40, 3), 60 * i, dtype=np.uint8)
        Image.fromarray(pixels).save(frames / f"{i:03d}.png")
    sf.write(tmp_path / "audio.wav", _tone(seconds), 16000)
    return frames


def test_frames_and_audio_file(checkpoint: Path, tmp_path: Path) -> None:
    frames = _frames_and_audio(tmp_path, 3, 2.5)
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


@pytest.mark.usefixtures("no_ffmpeg")
def test_video_input_gives_one_frame_per_second_and_an_overlay_video(
    checkpoint: Path, tmp_path: Path
) -> None:
    video = tmp_path / "clip.mp4"
    pictures = [np.full((48, 64, 3), 8 * k, dtype=np.uint8) for k in range(30)]  # 10 fps, 3 s
    write_media(video, _tone(3.0), 16000, video_frames=pictures, fps=10)
    report = predict(checkpoint, out_dir=tmp_path / "out", video=video)
    assert len(report.frames) == 3
    assert Image.open(report.frames[0].overlay).size == (64, 48)
    assert report.video is not None and report.video.stat().st_size > 0
    dense = predict(checkpoint, out_dir=tmp_path / "dense", video=video, fps=2.0, write_video=False)
    assert len(dense.frames) == 6
    assert json.loads(report.predictions_json.read_text())["resampler"] == "avsbench"
    # the frame at or after each instant (0.96 s -> frame 10 at 1.0 s); past the end, the last
    grabbed = grab_frames(video, [0.96, 1.96, 2.96, 0.0])
    levels = [float(np.asarray(g).mean()) for g in grabbed]
    assert levels == pytest.approx([80, 160, 232, 0], abs=4)


def _png_declaring(path: Path, width: int, height: int) -> Path:
    """A PNG whose header declares ``width`` x ``height`` (the data is one pixel)."""
    Image.new("L", (1, 1)).save(path)
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    return path


def test_a_decompression_bomb_is_refused_with_the_file_named(checkpoint: Path, tmp_path: Path):
    sf.write(tmp_path / "audio.wav", _tone(1.0), 16000)
    for size in ((20_000, 20_000), (10_000, 10_000)):  # over twice PIL's limit, and just over it
        bomb = _png_declaring(tmp_path / f"bomb{size[0]}.png", *size)
        with pytest.raises(DataFormatError, match=f"^{bomb}: .*(decompression bomb|pixels)"):
            predict(checkpoint, out_dir=tmp_path / "o", frames=[bomb], audio=tmp_path / "audio.wav")


def test_video_frames_over_the_pixel_limit_are_refused_before_decoding(tmp_path, monkeypatch):
    video = write_media(tmp_path / "v.mp4", _tone(1.0), 16000, video_size=(64, 48))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(DataFormatError, match=f"^{video}: a 64x48 picture"):
        grab_frames(video, [0.5])


def test_non_finite_scores_are_written_as_null_in_strict_json(
    checkpoint: Path, tmp_path: Path, monkeypatch
) -> None:
    from avs_model.evaluation import predict as predict_module

    real = predict_module.frame_logits

    def nan_scores(*args, **kwargs):
        logits, scores = real(*args, **kwargs)
        scores = scores.clone()
        scores[0] = float("nan")
        return logits, scores

    monkeypatch.setattr(predict_module, "frame_logits", nan_scores)
    frames = _frames_and_audio(tmp_path, 2, 2.0)
    report = predict(
        checkpoint,
        out_dir=tmp_path / "out",
        frames=[frames],
        audio=tmp_path / "audio.wav",
        write_video=False,
        resampler="bandlimited",
    )
    text = report.predictions_json.read_text()

    def refuse(constant: str) -> None:
        raise AssertionError(f"not JSON: {constant}")

    saved = json.loads(text, parse_constant=refuse)
    assert [f["score"] for f in saved["frames"]][0] is None
    assert isinstance(saved["frames"][1]["score"], float)
    assert saved["resampler"] == "bandlimited" and not saved["frames"][0]["sounding"]
