"""The build plan, from hand-made records: composition, filters, splits, negatives, hash."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from avs_synth.building.config import BuildConfig
from avs_synth.building.plan import make_plan
from avs_synth.building.splits import SplitFractions
from avs_synth.records import AudioClip, ImageRecord
from tests.support.build_support import CAT, DOG, MATCHES, instance

FRACTIONS = SplitFractions(train=0.5, val=0.25, test=0.25)


def _clips(per_split: int = 3) -> list[AudioClip]:
    return [
        AudioClip(
            youtube_id=f"{label[:3]}{k}",
            start_seconds=k,
            label=label,
            split=split,
            path=Path(f"/clips/{label[:3]}{k}.flac"),
        )
        for label in (DOG, CAT)
        for k, split in enumerate(["train"] * per_split + ["test"] * per_split)
    ]


def _record(source, image_id, insts, **kw) -> ImageRecord:
    return ImageRecord(
        source=source,
        image_id=str(image_id),
        path=Path(f"/img/{image_id}.jpg"),
        width=100,
        height=100,
        instances=tuple(insts),
        **kw,
    )


def _specs(plan):
    return [s for u in plan.units for s in u.triplets]


def _plan(records, config=None, clips=None):
    config = config or BuildConfig(fractions=FRACTIONS, max_per_picture=0, min_mask_area=0.0)
    return make_plan(records=records, clips=clips or _clips(), matches=MATCHES, config=config)


def test_semantic_mask_is_every_matched_instance_and_skips_crowd_and_not_exhaustive():
    records = [
        _record(
            "lvis",
            1,
            [
                instance("a", "3", "dog", 0, 0, 10, 10),
                instance("b", "3", "dog", 50, 50, 10, 10),
                instance("c", "4", "cat", 20, 20, 10, 10),
                instance("z", "99", "chair", 0, 0, 5, 5),
            ],
        ),
        _record(
            "lvis",
            2,
            [instance("d", "3", "dog", 0, 0, 10, 10), instance("e", "4", "cat", 0, 0, 9, 9)],
            not_exhaustive_category_ids=("4",),
        ),
        _record(
            "coco",
            3,
            [
                instance("f", "18", "dog", 0, 0, 10, 10),
                instance("g", "18", "dog", 30, 30, 40, 40, is_crowd=True),
                instance("h", "17", "cat", 0, 0, 10, 10),
            ],
        ),
    ]
    plan = _plan(records)
    got = {(s.image_id, s.audio_class): [i.instance_id for i in s.instances] for s in _specs(plan)}
    assert got == {("1", DOG): ["a", "b"], ("1", CAT): ["c"], ("2", DOG): ["d"], ("3", CAT): ["h"]}
    assert plan.dropped["not_exhaustive_category"] == 1 and plan.dropped["crowd_category"] == 1
    dog1 = next(s for s in _specs(plan) if s.image_id == "1" and s.audio_class == DOG)
    assert [(c.source, c.id, c.name) for c in dog1.categories] == [("lvis", "3", "dog")]


def test_instance_mode_gives_one_sample_per_non_crowd_instance():
    records = [
        _record(
            "coco",
            3,
            [
                instance("f", "18", "dog", 0, 0, 10, 10),
                instance("g", "18", "dog", 30, 30, 40, 40, is_crowd=True),
                instance("k", "18", "dog", 60, 0, 10, 10),
            ],
        )
    ]
    config = BuildConfig(
        fractions=FRACTIONS, mask_mode="instance", max_per_picture=0, min_mask_area=0.0
    )
    specs = _specs(_plan(records, config))
    assert sorted((s.key, s.instances[0].instance_id) for s in specs) == [
        ("coco-3-a001-if", "f"),
        ("coco-3-a001-ik", "k"),
    ]


def test_filters_min_area_per_picture_and_per_category():
    records = [
        _record(
            "lvis",
            n,
            [
                instance(f"{n}a", "3", "dog", 0, 0, 10, 10 if n else 2),
                instance(f"{n}b", "4", "cat", 0, 0, 30, 30),
            ],
        )
        for n in range(12)
    ]
    config = BuildConfig(
        fractions=FRACTIONS, min_mask_area=0.005, max_per_picture=1, max_per_category=4
    )
    plan = _plan(records, config)
    specs = _specs(plan)
    per_picture = Counter(s.image_id for s in specs)
    assert max(per_picture.values()) == 1
    per_class = Counter(s.audio_class for s in specs)
    assert all(n <= 4 for n in per_class.values())
    assert plan.dropped["small_mask"] == 1  # picture 0's dog: 20 px of 10,000
    assert plan.dropped["picture_cap"] == 11
    assert "no_clip_in_split" not in plan.dropped
    assert plan.dropped["category_cap"] >= 2  # 12 samples, two classes, 4 each at most
    assert sum(per_class.values()) == 12 - plan.dropped["category_cap"]


def test_splits_by_picture_and_clip_pools_are_disjoint():
    records = [_record("lvis", n, [instance(f"{n}a", "3", "dog", 0, 0, 10, 10)]) for n in range(20)]
    records += [
        _record("coco", n, [instance(f"c{n}", "18", "dog", 0, 0, 10, 10)]) for n in range(10, 30)
    ]
    plan = _plan(records)
    specs = _specs(plan)
    assert {s.source for s in specs if int(s.image_id) < 20} == {"lvis"}
    assert plan.dropped["picture_in_earlier_source"] == 10
    assert plan.pictures == {"train": 15, "val": 8, "test": 7}
    split_of_picture: dict[str, set[str]] = {}
    split_of_clip: dict[str, set[str]] = {}
    for s in specs:
        split_of_picture.setdefault(s.image_id, set()).add(s.split)
        split_of_clip.setdefault(s.clip.clip_id, set()).add(s.split)
        assert s.clip.split == ("train" if s.split == "train" else "test")
        assert s.clip.label == s.audio_class
    assert all(len(v) == 1 for v in split_of_picture.values())
    assert all(len(v) == 1 for v in split_of_clip.values())
    assert len(specs) == 30


def test_negatives_only_from_verified_absences():
    records = [
        _record("lvis", 1, [instance("a", "3", "dog", 0, 0, 10, 10)], negative_category_ids=("4",)),
        _record("lvis", 2, [instance("b", "3", "dog", 0, 0, 10, 10)]),  # cat merely unannotated
        _record(
            "lvis",
            3,
            [instance("c", "3", "dog", 0, 0, 10, 10)],
            negative_category_ids=("4",),
            not_exhaustive_category_ids=("4",),
        ),
        _record("coco", 4, [instance("d", "18", "dog", 0, 0, 10, 10)], exhaustive=True),
        _record("coco", 5, [instance("e", "18", "dog", 0, 0, 10, 10)], exhaustive=False),
    ]
    config = BuildConfig(
        fractions=SplitFractions(train=1.0, val=0.0, test=0.0),
        negative_ratio=10.0,
        max_per_picture=0,
        min_mask_area=0.0,
    )
    specs = _specs(_plan(records, config))
    negatives = sorted((s.source, s.image_id, s.audio_class) for s in specs if s.negative)
    assert negatives == [("coco", "4", CAT), ("lvis", "1", CAT)]
    for s in specs:
        if s.negative:
            assert s.instances == () and [c.id for c in s.categories] in (["4"], ["17"])


def test_clips_without_files_and_classes_without_clips_are_left_out():
    records = [_record("lvis", n, [instance(f"{n}", "4", "cat", 0, 0, 10, 10)]) for n in range(4)]
    clips = [c for c in _clips() if c.label == DOG] + [
        replace(c, path=None) for c in _clips() if c.label == CAT
    ]
    plan = _plan(records, clips=clips)
    assert _specs(plan) == []
    assert plan.dropped["missing_audio_file"] == 6 and plan.dropped["no_clip_for_class"] == 4
    # a class with train clips only: its val / test candidates are dropped
    records = [_record("lvis", n, [instance(f"{n}", "3", "dog", 0, 0, 10, 10)]) for n in range(8)]
    train_only = [c for c in _clips() if c.label == DOG and c.split == "train"]
    plan = _plan(records, clips=train_only)
    assert {s.split for s in _specs(plan)} == {"train"} and len(_specs(plan)) == 4
    assert plan.dropped["no_clip_in_split"] == 4


def test_the_picture_cap_keeps_a_class_with_clips_over_one_without():
    records = [
        _record(
            "lvis",
            n,
            [
                instance(f"{n}a", "3", "dog", 0, 0, 10, 10),
                instance(f"{n}b", "4", "cat", 50, 50, 10, 10),
            ],
        )
        for n in range(10)
    ]
    clips = [c for c in _clips() if c.label == DOG]
    config = BuildConfig(fractions=FRACTIONS, max_per_picture=1, min_mask_area=0.0)
    specs = _specs(_plan(records, config, clips))
    assert len(specs) == 10 and {s.audio_class for s in specs} == {DOG}


def test_shards_bank_and_hash():
    records = [_record("lvis", n, [instance(f"{n}", "3", "dog", 0, 0, 10, 10)]) for n in range(10)]
    config = BuildConfig(
        fractions=FRACTIONS,
        shard_size=2,
        bank_clips_per_shard=2,
        max_per_picture=0,
        min_mask_area=0.0,
    )
    plan = _plan(records, config)
    names = [u.name for u in plan.units]
    assert names[:3] == ["train-000000.tar", "train-000001.tar", "train-000002.tar"]
    assert [u.position for u in plan.units] == list(range(len(plan.units)))
    bank = [u for u in plan.units if u.split == "bank"]
    assert [(u.name, u.audio_class, len(u.clips)) for u in bank] == [
        ("bank-000000.tar", CAT, 2),
        ("bank-000001.tar", CAT, 1),
        ("bank-000002.tar", DOG, 2),
        ("bank-000003.tar", DOG, 1),
    ]
    assert {c.split for u in bank for c in u.clips} == {"train"}
    again = _plan(list(reversed(records)), config)
    assert again.plan_hash == plan.plan_hash and again.units == plan.units
    assert _plan(records, replace(config, seed=1)).plan_hash != plan.plan_hash
    assert _plan(records[:-1], config).plan_hash != plan.plan_hash


def test_keys_are_safe_and_unique():
    records = [
        _record(
            "openimages", "../../etc/x.y", [instance("m.png", "/m/0bt9lr", "Dog", 0, 0, 50, 50)]
        )
    ]
    matches = [*MATCHES]
    from avs_synth.building.plan import CategoryMatch

    matches.append(
        CategoryMatch(
            source="openimages", visual_id="/m/0bt9lr", visual_name="Dog", vggsound_label=DOG
        )
    )
    config = BuildConfig(
        fractions=SplitFractions(train=1.0, val=0.0, test=0.0),
        mask_mode="instance",
        min_mask_area=0.0,
    )
    plan = make_plan(records=records, clips=_clips(), matches=matches, config=config)
    assert [s.key for s in _specs(plan)] == ["openimages-______etc_x_y-a001-im_png"]


def test_config_validation():
    with pytest.raises(ValueError, match="mask mode"):
        BuildConfig(mask_mode="panoptic")
    with pytest.raises(ValueError, match="min_mask_area"):
        BuildConfig(min_mask_area=1.5)
