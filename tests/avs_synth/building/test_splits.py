"""Splits: by picture (LVIS and COCO share one), and clips by VGGSound split."""

from __future__ import annotations

from pathlib import Path

import pytest

from avs_synth.building.splits import SplitFractions, assign_clips, assign_pictures, picture_key
from avs_synth.records import AudioClip, ImageRecord


def _record(source: str, image_id: str) -> ImageRecord:
    return ImageRecord(
        source=source, image_id=image_id, path=Path(f"/x/{image_id}.jpg"), width=4, height=4
    )


def test_lvis_and_coco_share_a_picture_key():
    assert picture_key(_record("lvis", "1")) == picture_key(_record("coco", "1")) == "coco:1"
    assert picture_key(_record("openimages", "1")) == "openimages:1"
    assert picture_key(_record("lvis", "2")) != picture_key(_record("coco", "1"))


def test_pictures_are_cut_at_exact_fractions_and_depend_on_the_seed():
    keys = [f"coco:{i}" for i in range(200)]
    fractions = SplitFractions(train=0.8, val=0.05, test=0.15)
    split = assign_pictures(keys, fractions, seed=3)
    counts = {s: sum(1 for v in split.values() if v == s) for s in ("train", "val", "test")}
    assert counts == {"train": 160, "val": 10, "test": 30}
    assert assign_pictures(list(reversed(keys)), fractions, seed=3) == split
    assert assign_pictures(keys, fractions, seed=4) != split


def test_fractions_validation_and_parsing():
    assert SplitFractions.parse("0.9, 0.0, 0.1") == SplitFractions(train=0.9, val=0.0, test=0.1)
    with pytest.raises(ValueError, match="sum to 1"):
        SplitFractions(train=0.9, val=0.2, test=0.1)
    with pytest.raises(ValueError, match="three numbers"):
        SplitFractions.parse("0.5,0.5")
    with pytest.raises(ValueError, match=">= 0"):
        SplitFractions(train=1.2, val=-0.2, test=0.0)


def _clip(n: int, split: str, label: str) -> AudioClip:
    return AudioClip(youtube_id=f"y{n}", start_seconds=n, label=label, split=split)


def test_clips_train_to_train_and_test_cut_between_val_and_test_per_class():
    clips = [_clip(n, "train", "dog barking") for n in range(5)]
    clips += [_clip(100 + n, "test", "dog barking") for n in range(10)]
    clips += [_clip(200 + n, "test", "cat meowing") for n in range(4)]
    split = assign_clips(clips, SplitFractions(train=0.8, val=0.1, test=0.1), seed=0)
    assert {split[c.clip_id] for c in clips[:5]} == {"train"}
    dog = [split[c.clip_id] for c in clips[5:15]]
    cat = [split[c.clip_id] for c in clips[15:]]
    assert dog.count("val") == 5 and dog.count("test") == 5
    assert cat.count("val") == 2 and cat.count("test") == 2
    only_test = assign_clips(clips, SplitFractions(train=0.9, val=0.0, test=0.1), seed=0)
    assert {only_test[c.clip_id] for c in clips[5:]} == {"test"}
    no_train = assign_clips(clips, SplitFractions(train=0.0, val=0.0, test=1.0), seed=0)
    assert clips[0].clip_id not in no_train
