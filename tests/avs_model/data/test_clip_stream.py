"""Clip shards (``avs-synth build --frames 5``) through the stream: the AVSBench S4 loader's
layout, per-frame audio examples, silent frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import webdataset as wds

from avs_model.data.augment import AugmentConfig, ResizeConfig
from avs_model.data.avsbench_dataset import AVSBenchDataset
from avs_model.data.frame_batch import collate_frames
from avs_model.data.stream import eval_pipeline, make_loader, resolve_shards, train_pipeline
from avs_model.modeling.config import ClassHeadConfig
from avs_synth import schema
from avs_synth.audio.logmel import EXAMPLE_SAMPLES, LogMelFrontend, log_mel_to_examples
from avs_synth.building.config import BuildConfig
from avs_synth.building.splits import SplitFractions
from avs_synth.sources.avsbench import AVSBenchReader
from tests.support.build_support import build_sample, sample_corpus
from tests.support.train_support import write_mini_avsbench


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("clip-stream") / "out"
    config = BuildConfig(
        fractions=SplitFractions(train=0.6, val=0.2, test=0.2),
        min_mask_area=0.0,
        max_per_picture=0,
        frames=5,
        onset_offset=1.0,
        shard_size=6,
        audio_bank=False,
        max_side=96,
    )
    build_sample(sample_corpus(tmp_path_factory), config, out)
    return out


def _example(samples: np.ndarray) -> torch.Tensor:
    window = torch.from_numpy(np.ascontiguousarray(samples[:EXAMPLE_SAMPLES], dtype=np.float32))
    return log_mel_to_examples(LogMelFrontend()(window), num_examples=1)[0]


def test_clip_batches_have_the_s4_loaders_layout(clips: Path, tmp_path: Path) -> None:
    shards = resolve_shards(clips)
    batch = next(
        iter(
            make_loader(
                eval_pipeline(shards.urls("train"), resize=ResizeConfig(size=32), batch_size=2),
                num_workers=0,
            )
        )
    )
    bench = write_mini_avsbench(tmp_path / "bench")
    s4 = AVSBenchDataset(
        videos=AVSBenchReader(root=bench, subset="s4").videos("test"),
        resize=ResizeConfig(size=32),
        with_gt=True,
    )
    reference = collate_frames([s4[0], s4[1]])
    assert batch.frames_per_sample == reference.frames_per_sample == 5
    for name in ("images", "masks", "valid", "audio"):
        ours, theirs = getattr(batch, name), getattr(reference, name)
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype, name
    assert batch.images.shape == (10, 3, 32, 32) and batch.audio.shape == (10, 1, 96, 64)
    assert batch.valid.all() and len(batch.gt_masks) == 10
    # frames of one clip are consecutive, keyed {key}_{t} like AVSBench's {video}_{k}
    assert batch.keys[:5] == [f"{batch.keys[0][:-2]}_{t}" for t in range(5)]


def test_each_frame_hears_its_own_second_and_silent_frames_are_negatives(clips: Path) -> None:
    shards = resolve_shards(clips)
    raw = {s["__key__"]: s for s in wds.WebDataset(shards.urls("train"), shardshuffle=False)}
    pipeline = eval_pipeline(shards.urls("train"), resize=ResizeConfig(size=32), batch_size=1)
    silent_seen = 0
    for batch in make_loader(pipeline, num_workers=0):
        key = batch.keys[0][:-2]
        t = schema.decode_triplet(raw[key])
        for k in range(5):
            stretch = t.audio[k * 16000 : (k + 1) * 16000]
            assert torch.allclose(batch.audio[k], _example(stretch), atol=1e-5)
            assert torch.equal(batch.gt_masks[k], torch.from_numpy(t.frame_masks[k]))
            if t.meta.clip.silent[k]:
                silent_seen += 1
                assert batch.negative_kinds[k] == "silence" and not batch.masks[k].any()
                if t.meta.clip.silence == "zeros":
                    assert torch.allclose(batch.audio[k], _example(np.zeros(16000)))
            else:
                assert batch.negative_kinds[k] == "" and batch.masks[k].any()
    assert silent_seen > 0


def test_training_on_clips_keeps_their_audio(clips: Path) -> None:
    shards = resolve_shards(clips)
    settings = dict(
        resize=ResizeConfig(size=32),
        augment=AugmentConfig(hflip=0.5, scale=(0.6, 1.0)),
        batch_size=2,
        batches_per_epoch=2,
        seed=0,
        shuffle_buffer=4,
    )
    with pytest.raises(ValueError, match="set data.repair_audio: false"):
        train_pipeline(shards, **settings)
    batches = list(
        make_loader(train_pipeline(shards, repair_audio=False, **settings), num_workers=0)
    )
    assert len(batches) == 2
    for batch in batches:
        assert batch.images.shape == (10, 3, 32, 32) and batch.frames_per_sample == 5
        assert torch.isfinite(batch.audio).all() and batch.audio.shape == (10, 1, 96, 64)


def test_pretraining_on_clips_runs_and_scores_the_frames(clips: Path, tmp_path: Path) -> None:
    from avs_model.training.pretrain import pretrain
    from tests.support.train_support import tiny_config

    config = tiny_config(
        max_steps=1, batch_size=1, **{"data.repair_audio": False, "data.max_eval_samples": 4}
    )
    result = pretrain(config, shards=clips, out_dir=tmp_path / "run", run_test=True)
    assert result.step == 1 and result.last.is_file()
    assert result.test is not None
    frames = result.test["ungated"]["num_frames"]
    assert frames > 0 and frames % 5 == 0 and 0.0 <= result.test["ungated"]["M_J"] <= 1.0
    # the silent frames of the clips (onset_offset 1.0: every positive has some) are scored as
    # silence negatives
    negatives = result.test["negatives"]
    assert set(negatives["per_kind"]) == {"silence"} and 0 < negatives["num_frames"] < frames


def test_one_augmentation_draw_per_clip() -> None:
    from PIL import Image

    from avs_model.data.augment import JointTransform
    from avs_model.data.stream import Augment

    rng = np.random.default_rng(0)
    picture = Image.fromarray(rng.integers(0, 255, size=(40, 60, 3), dtype=np.uint8))
    mask = np.zeros((40, 60), dtype=bool)
    mask[5:20, 10:50] = True
    clip = {
        "key": "k",
        "frames": [picture] * 5,
        "frame_masks": [mask] * 5,
        "silent": (False,) * 5,
        "audio": torch.zeros(5, 1, 96, 64),
        "audio_class": "c",
    }
    augment = AugmentConfig(hflip=0.5, scale=(0.4, 1.0), color_jitter=0.3)
    transform = JointTransform(resize=ResizeConfig(size=24), augment=augment)
    stage = Augment(transform=transform, keep_gt=False)
    outputs = list(stage(iter([dict(clip) for _ in range(6)])))
    firsts = []
    for frames in outputs:  # identical frames stay identical: one draw for the whole clip
        assert len(frames) == 5
        assert all(torch.equal(f.image, frames[0].image) for f in frames)
        assert all(torch.equal(f.mask, frames[0].mask) for f in frames)
        firsts.append(frames[0].image)
    assert any(not torch.equal(a, firsts[0]) for a in firsts[1:])  # clips draw anew


def test_a_clip_missing_a_frame_is_named(clips: Path) -> None:
    from avs_model.data.stream import decode_sample

    raw = next(iter(wds.WebDataset(resolve_shards(clips).urls("train"), shardshuffle=False)))
    broken = {k: v for k, v in raw.items() if k != "3.mask.png"}
    with pytest.raises(ValueError, match=r"\]: cannot decode the clip: .*'3.mask.png'"):
        decode_sample(broken)


def test_clip_shards_offer_the_class_head_no_table(tmp_path_factory) -> None:
    out = tmp_path_factory.mktemp("clip-classes") / "out"
    config = BuildConfig(
        min_mask_area=0.0, max_per_picture=0, frames=2, class_masks=True, audio_bank=False
    )
    build_sample(sample_corpus(tmp_path_factory), config, out)
    shards = resolve_shards(out)
    assert shards.manifest["config"]["class_masks"] and shards.manifest["config"]["clips"]
    assert shards.class_table() is None  # the head trains on stills: refused, not fed clips
    with pytest.raises(ValueError, match="the model has a class head but the data has no class"):
        ClassHeadConfig(enabled=True, classes=["a"]).check_table(shards.class_table(), where="x")
