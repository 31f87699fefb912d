"""The class head end to end on real shards built from the sample corpus with ``--class-masks``:
the stream's label maps, ``avs-train pretrain --class-head``, the checkpoint's class table,
``avs-train evaluate``'s class mIoU / F and its refusals."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from avs_model.data.augment import JointTransform, ResizeConfig
from avs_model.data.stream import eval_pipeline, resolve_shards, train_pipeline
from avs_model.evaluation.evaluate import evaluate_checkpoint, format_report
from avs_model.modeling.build import build_model
from avs_model.modeling.config import AuTRConfig
from avs_model.runtime.checkpoint import load_checkpoint
from avs_model.training.pretrain import pretrain
from avs_model.training.run_log import read_metrics
from avs_synth import schema
from avs_synth.building.config import BuildConfig
from avs_synth.building.splits import SplitFractions
from avs_synth_cli.train import app
from tests.support.build_support import build_sample, sample_corpus
from tests.support.train_support import tiny_config


def _build(tmp_path_factory, name: str, *, class_masks: bool) -> Path:
    out = tmp_path_factory.mktemp(name)
    config = BuildConfig(
        fractions=SplitFractions(train=0.6, val=0.2, test=0.2),
        min_mask_area=0.0,
        max_per_picture=0,
        negative_ratio=0.25,
        sources=((1, 0.5), (2, 0.5)),
        class_masks=class_masks,
        shard_size=50,
        max_side=96,
    )
    build_sample(sample_corpus(tmp_path_factory), config, out)
    return out


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    return _build(tmp_path_factory, "class_shards", class_masks=True)


@pytest.fixture(scope="module")
def plain_shards(tmp_path_factory) -> Path:
    return _build(tmp_path_factory, "plain_shards", class_masks=False)


@pytest.fixture(scope="module")
def trained(shards: Path, tmp_path_factory) -> Path:
    """``avs-train pretrain --class-head`` for a few steps (through the CLI)."""
    out = tmp_path_factory.mktemp("class_run") / "pt"
    result = CliRunner().invoke(
        app,
        [
            "pretrain",
            "--shards",
            str(shards),
            "--out",
            str(out),
            "--model",
            "autr_tiny",
            "--class-head",
            "--image-size",
            "48",
            "--batch-size",
            "2",
            "--max-steps",
            "3",
            "--num-workers",
            "0",
            "--eval-every",
            "3",
            "--no-test",
            "--set",
            "data.max_eval_samples=4",
        ],
    )
    assert result.exit_code == 0, result.output
    return out


def _table(shards: Path) -> list[str]:
    manifest = json.loads((shards / schema.MANIFEST_NAME).read_text())
    return [c["label"] for c in manifest["audio_classes"]]


def test_the_stream_batches_label_maps_beside_the_masks(shards: Path, plain_shards: Path) -> None:
    shard_set = resolve_shards(shards)
    assert shard_set.class_table() == _table(shards)
    resize = ResizeConfig(size=48)
    batch = next(iter(eval_pipeline(shard_set.urls("train"), resize=resize, batch_size=1)))
    assert batch.class_maps is None and batch.gt_class_maps is None  # not asked for: not decoded
    several = False
    for batch in eval_pipeline(
        shard_set.urls("train"), resize=resize, batch_size=1, class_maps=True
    ):
        gt, labels = batch.gt_masks[0], batch.gt_class_maps[0]
        assert torch.equal(labels > 0, gt)  # the label map covers the binary mask exactly
        assert batch.class_maps.shape == batch.masks.shape
        # at model resolution: only labels of the picture, and only inside the resized mask
        assert set(batch.class_maps.unique().tolist()) <= set(labels.unique().tolist())
        assert not bool((batch.class_maps.bool() & ~batch.masks.bool()).any())
        several |= len(labels.unique()) > 2
    assert several  # multi-source triplets: several classes in one frame
    train = train_pipeline(
        shard_set,
        resize=resize,
        augment=tiny_config().data.augment,
        batch_size=2,
        batches_per_epoch=1,
        seed=0,
        class_maps=True,
    )
    batch = next(iter(train))
    assert batch.class_maps.shape == batch.masks.shape and batch.class_maps.dtype == torch.int64
    # shards without label maps still decode; asking for them gives none
    plain = resolve_shards(plain_shards)
    assert plain.class_table() is None
    batch = next(
        iter(eval_pipeline(plain.urls("train"), resize=resize, batch_size=1, class_maps=True))
    )
    assert batch.gt_masks is not None and batch.gt_class_maps is None


def test_labels_follow_the_crop_and_flip() -> None:
    picture = Image.fromarray(np.zeros((40, 60, 3), dtype=np.uint8))
    labels = np.zeros((40, 60), dtype=np.int32)
    labels[:, :20] = 2
    labels[10:30, 40:] = 7
    transform = JointTransform(resize=ResizeConfig(size=30))
    frame = transform(picture, labels > 0, random.Random(0), labels=labels)
    assert frame.labels.shape == (30, 30)
    assert set(frame.labels.unique().tolist()) == {0, 2, 7}
    assert torch.equal(frame.labels > 0, frame.mask.bool())
    assert (frame.labels[:, :9] == 2).all() and (frame.labels[8:22, 21:] == 7).all()
    flipped = JointTransform(resize=ResizeConfig(size=30), augment=_flip())
    frame = flipped(picture, labels > 0, random.Random(0), labels=labels)
    assert (frame.labels[:, -9:] == 2).all() and (frame.labels[8:22, :9] == 7).all()


def _flip():
    from avs_model.data.augment import AugmentConfig

    return AugmentConfig(hflip=1.0)


def test_the_checkpoint_records_the_table_and_round_trips(trained: Path, shards: Path) -> None:
    ckpt = load_checkpoint(trained / "last.pt")
    config = AuTRConfig.from_dict(ckpt.model_config)
    assert config.class_head.enabled and config.class_head.classes == _table(shards)
    model = build_model(config, load_weights=False)
    model.load_state_dict(ckpt.model)
    k = len(config.class_head.classes)
    assert tuple(ckpt.model["class_head.weight"].shape) == (k + 1, config.transformer.d_model)
    # validation during training scored the classes too
    rows = read_metrics(trained / "metrics.csv")
    assert {"M_J_class", "M_F_class"} <= {r["metric"] for r in rows if r["split"] == "val"}
    assert "loss_class" in {r["metric"] for r in rows if r["split"] == "train"}


def test_evaluate_prints_class_scores(trained: Path, shards: Path, tmp_path: Path) -> None:
    report = evaluate_checkpoint(
        trained / "last.pt", shards=shards, split="test", num_workers=0, out_dir=tmp_path
    )
    classes = report.result.classes
    assert classes is not None and not report.class_note
    assert len(classes.frames_per_class) == len(_table(shards)) + 1  # + background
    assert classes.frames_per_class[0] > 0  # the background is in every frame
    assert 0.0 <= classes.miou <= 1.0 and 0.0 <= classes.fscore <= 1.0
    text = format_report(report)
    assert f"M_J_class {classes.miou:.4f}" in text and f"M_F_class {classes.fscore:.4f}" in text
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["classes"]["M_J_class"] == pytest.approx(classes.miou)
    result = CliRunner().invoke(
        app,
        ["evaluate", "--ckpt", str(trained / "last.pt"), "--shards", str(shards)]
        + ["--num-workers", "0", "--max-samples", "3"],
    )
    assert result.exit_code == 0, result.output
    assert "M_J_class" in result.output and "M_F_class" in result.output


def test_evaluate_says_why_there_are_no_class_scores(
    trained: Path, shards: Path, plain_shards: Path
) -> None:
    report = evaluate_checkpoint(
        trained / "last.pt", shards=plain_shards, num_workers=0, max_samples=2
    )
    assert report.result.classes is None
    assert "has no class maps (build with --class-masks)" in report.class_note
    assert report.class_note in format_report(report)
    # a model without the class head on class-mask shards
    plain_model = tiny_config(**{"data.resize.size": 48})
    report = evaluate_checkpoint(
        None, untrained=plain_model, shards=shards, max_samples=2, num_workers=0
    )
    assert report.result.classes is None
    assert report.class_note == "no class scores: the model has no class head"
    assert report.class_note in format_report(report)
    # neither: nothing said
    report = evaluate_checkpoint(
        None, untrained=plain_model, shards=plain_shards, max_samples=1, num_workers=0
    )
    assert report.class_note == "" and "class" not in format_report(report)


def test_a_mismatched_class_table_is_refused(trained: Path, shards: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(shards, other)
    manifest = json.loads((other / schema.MANIFEST_NAME).read_text())
    manifest["audio_classes"][0]["label"] = "owl hooting"
    (other / schema.MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="class table .* is not the model's") as error:
        evaluate_checkpoint(trained / "last.pt", shards=other, num_workers=0, max_samples=1)
    assert "\n" not in str(error.value)
    result = CliRunner().invoke(
        app, ["evaluate", "--ckpt", str(trained / "last.pt"), "--shards", str(other)]
    )
    assert result.exit_code != 0 and "is not the model's" in result.output


def test_training_the_head_on_data_without_class_maps_is_refused(
    plain_shards: Path, tmp_path: Path
) -> None:
    config = tiny_config(**{"model_overrides.class_head.enabled": True})
    with pytest.raises(ValueError, match="no class maps"):
        pretrain(config, shards=plain_shards, out_dir=tmp_path / "run", run_test=False)
