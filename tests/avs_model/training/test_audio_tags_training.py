"""The audio-tagging head end to end on real shards built from the sample corpus with multi-source
triplets and negatives: the classes heard that the stream batches, ``avs-train pretrain
--audio-tags``, the checkpoint's table, ``avs-train evaluate`` of the tagged model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import webdataset as wds
from typer.testing import CliRunner

from avs_model.data.augment import ResizeConfig
from avs_model.data.stream import eval_pipeline, resolve_shards, train_pipeline
from avs_model.modeling.build import build_model
from avs_model.modeling.config import AuTRConfig
from avs_model.runtime.checkpoint import load_checkpoint
from avs_model.training.run_log import read_metrics
from avs_synth import schema
from avs_synth.building.config import BuildConfig
from avs_synth.building.splits import SplitFractions
from avs_synth_cli.train import app
from tests.support.build_support import build_sample, sample_corpus
from tests.support.train_support import tiny_config


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tag_shards")
    config = BuildConfig(
        fractions=SplitFractions(train=0.6, val=0.2, test=0.2),
        min_mask_area=0.0,
        max_per_picture=0,
        negative_ratio=0.5,
        negatives=("absent", "silence"),
        sources=((1, 0.5), (2, 0.5)),
        shard_size=50,
        max_side=96,
    )
    build_sample(sample_corpus(tmp_path_factory), config, out)
    return out


@pytest.fixture(scope="module")
def trained(shards: Path, tmp_path_factory) -> Path:
    """``avs-train pretrain --audio-tags`` for a few steps (through the CLI)."""
    out = tmp_path_factory.mktemp("tag_run") / "pt"
    args = ["pretrain", "--shards", str(shards), "--out", str(out), "--model", "autr_tiny"]
    args += ["--audio-tags", "--image-size", "48", "--batch-size", "4", "--max-steps", "3"]
    args += ["--num-workers", "0", "--eval-every", "3", "--no-test"]
    args += ["--set", "data.max_eval_samples=4"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return out


def _table(shards: Path) -> list[str]:
    manifest = json.loads((shards / schema.MANIFEST_NAME).read_text())
    return [c["label"] for c in manifest["audio_classes"]]


def test_the_stream_batches_the_classes_heard(shards: Path) -> None:
    """Each frame's heard classes are what its json says: every source of a mix, the class of a
    single source or an absent negative, none for silence."""
    shard_set = resolve_shards(shards)
    assert shard_set.audio_class_labels() == _table(shards)
    assert shard_set.class_table() is None  # no class masks: no class head table
    metas = {
        raw["__key__"]: schema.decode_triplet_meta(raw["json"])
        for raw in wds.WebDataset(shard_set.urls("train"), shardshuffle=False)
    }
    seen = {"mix": 0, "single": 0, "silence": 0, "absent": 0}
    resize = ResizeConfig(size=48)
    for batch in eval_pipeline(shard_set.urls("train"), resize=resize, batch_size=4):
        for key, heard in zip(batch.keys, batch.heard, strict=True):
            meta = metas[key]
            if meta.negative and meta.kind == "silence":
                assert heard == ()
                seen["silence"] += 1
            elif meta.sources and len(meta.sources) > 1:
                assert heard == tuple(src.audio_class for src in meta.sources)
                seen["mix"] += 1
            else:
                assert heard == (meta.audio_class,)
                seen["absent" if meta.negative else "single"] += 1
    assert all(seen.values()), seen
    # the training stream (re-paired audio) keeps them
    train = train_pipeline(
        shard_set,
        resize=resize,
        augment=tiny_config().data.augment,
        batch_size=4,
        batches_per_epoch=1,
        seed=0,
    )
    batch = next(iter(train))
    assert len(batch.heard) == len(batch) and all(h is not None for h in batch.heard)


def test_the_checkpoint_records_the_table_and_loss_tag_is_logged(
    trained: Path, shards: Path
) -> None:
    ckpt = load_checkpoint(trained / "last.pt")
    config = AuTRConfig.from_dict(ckpt.model_config)
    assert config.audio_tags.enabled and config.audio_tags.classes == _table(shards)
    model = build_model(config, load_weights=False)
    model.load_state_dict(ckpt.model)
    assert tuple(ckpt.model["tag_head.weight"].shape) == (
        len(_table(shards)),
        config.audio.embed_dim,
    )
    rows = read_metrics(trained / "metrics.csv")
    tag = [float(r["value"]) for r in rows if r["split"] == "train" and r["metric"] == "loss_tag"]
    assert tag and all(v > 0 for v in tag)


def test_evaluate_and_resume_take_the_tagged_model(trained: Path, shards: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["evaluate", "--ckpt", str(trained / "last.pt"), "--shards", str(shards)]
        + ["--num-workers", "0", "--max-samples", "3"],
    )
    assert result.exit_code == 0, result.output
    assert "M_J" in result.output
    result = CliRunner().invoke(
        app,
        ["pretrain", "--shards", str(shards), "--out", str(trained), "--resume"]
        + ["--max-steps", "4", "--no-test", "--num-workers", "0"],
    )
    assert result.exit_code == 0, result.output
    assert load_checkpoint(trained / "last.pt").step == 4
