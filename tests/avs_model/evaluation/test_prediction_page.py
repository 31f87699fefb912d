"""Frames kept for pictures (first frames, best / worst per category), the evaluation page with
its audio in a real browser (synthetic shards and AVSBench), and TensorBoard's prediction images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avs_model.data.frame_batch import FrameBatch
from avs_model.evaluation.evaluate import evaluate_checkpoint
from avs_model.evaluation.gallery import FrameGallery
from avs_model.training.run_log import RunLog
from avs_synth.audio.decode import load_audio
from avs_synth.overlay import OUTLINE_COLOR
from avs_synth.sources.avsbench import AVSBenchReader
from tests.support.browser import check_page
from tests.support.train_support import build_shards, write_mini_avsbench


def batch_of(ious_wanted: list[float], categories: list[str]) -> tuple[FrameBatch, list]:
    """Frames 10 x 10 whose ground truth is the left half and whose prediction covers a chosen
    share of it (IoU = that share)."""
    n = len(ious_wanted)
    gts, logits = [], []
    for share in ious_wanted:
        gt = torch.zeros(10, 10, dtype=torch.bool)
        gt[:, :5] = True
        pred = torch.full((10, 10), -5.0)
        pred[: round(10 * share), :5] = 5.0
        gts.append(gt)
        logits.append(pred)
    batch = FrameBatch(
        images=torch.full((n, 3, 12, 12), 100, dtype=torch.uint8),
        masks=torch.zeros(n, 12, 12, dtype=torch.uint8),
        valid=torch.ones(n, dtype=torch.bool),
        audio=torch.zeros(n, 1, 96, 64),
        content_sizes=[(10, 10)] * n,
        gt_masks=gts,
        categories=categories,
        keys=[f"k{i}" for i in range(n)],
        frames_per_sample=1,
    )
    return batch, logits


def test_the_gallery_keeps_the_first_frames_and_the_extremes_per_category() -> None:
    gallery = FrameGallery(first=2, per_category=2)
    shares = [0.5, 0.9, 0.1, 0.7, 0.3, 1.0]
    batch, logits = batch_of(shares, ["dog", "dog", "dog", "dog", "cat", "cat"])
    gallery.add(batch, logits, torch.linspace(0, 1, 6))
    assert [f.key for f in gallery.first_frames] == ["k0", "k1"]
    assert gallery.categories == ["cat", "dog"]
    assert [(f.key, round(f.iou, 3)) for f in gallery.best("dog")] == [("k1", 0.9), ("k3", 0.7)]
    assert [(f.key, round(f.iou, 3)) for f in gallery.worst("dog")] == [("k2", 0.1), ("k0", 0.5)]
    assert [f.key for f in gallery.best("cat")] == ["k5", "k4"]
    frame = gallery.best("dog")[0]
    assert frame.picture.shape == (10, 10, 3) and frame.picture.dtype == np.uint8
    assert frame.prediction.sum() == 45 and frame.truth.sum() == 50
    assert frame.score == pytest.approx(0.2)
    overlay = np.asarray(frame.overlay())
    assert overlay[4, 2, 0] > 150 and tuple(overlay[4, 7]) == (100, 100, 100)  # tinted red
    assert tuple(overlay[9, 2]) == OUTLINE_COLOR  # the ground truth outlined below it


def test_the_avsbench_page_plays_what_the_model_heard(checkpoint, tmp_path) -> None:
    root = write_mini_avsbench(tmp_path / "avs")
    out = tmp_path / "eval"
    report = evaluate_checkpoint(
        checkpoint, avsbench=root, subset="s4", out_dir=out, num_workers=0, page_frames=2
    )
    assert report.page_path == out / "page" / "index.html"
    text = report.page_path.read_text()
    # 3 categories x 2 test videos x 5 frames: 2 best + 2 worst each, no frame twice
    assert text.count('<figure class="card"') == 12
    assert text.count('data-rank="best"') == 6 and text.count('data-rank="worst"') == 6
    per_frame = report.result.ungated.per_category["helicopter"].miou
    assert 0.0 <= per_frame <= 1.0 and "IoU" in text
    check = check_page(report.page_path, tmp_path / "eval.png", profile=tmp_path / "profile")
    assert (check.images, check.audio) == (24, 12)
    assert check.broken_images == [] and check.broken_audio == [] and check.errors == []
    assert check.durations == [pytest.approx(0.975)] * 12

    # the audio of frame k is the k-th VGGish example's stretch of the wav
    video = AVSBenchReader(root=root, subset="s4").videos("test")[0]
    key = f"{video.name}_3"
    from avs_model.evaluation.prediction_page import avsbench_audio

    samples, rate = avsbench_audio([video])([key])[key]
    wav = load_audio(video.wav_path, sample_rate=16000)
    assert rate == 16000 and np.array_equal(samples, wav[2 * 15360 : 2 * 15360 + 15600])


def test_the_synthetic_page_and_tensorboard_images(checkpoint, tmp_path) -> None:
    shards = build_shards(tmp_path)
    report = evaluate_checkpoint(
        checkpoint, shards=shards, split="val", out_dir=tmp_path / "eval", num_workers=0
    )
    check = check_page(report.page_path, tmp_path / "syn.png", profile=tmp_path / "profile")
    assert check.audio > 0 and check.broken_audio == [] and check.errors == []
    assert check.durations == [1.0] * check.audio  # the stored 1 s windows
    assert len(report.result.previews) == 4

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with RunLog(out_dir=tmp_path / "run") as log:
        log.log_predictions(report.result.previews, step=5)
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    assert sorted(events.Tags()["images"]) == [f"val/prediction/{i}" for i in range(4)]
    image = events.Images("val/prediction/0")[0]
    assert image.step == 5 and image.width == report.result.previews[0].picture.shape[1]
