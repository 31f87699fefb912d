"""The plan hash: every unit field counts, machine-specific absolute paths do not."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from avs_synth.building.config import BuildConfig
from avs_synth.building.plan import ShardUnit, TripletSpec
from avs_synth.building.plan_hash import compute_plan_hash
from avs_synth.records import (
    AudioClip,
    Instance,
    NormalizedBox,
    PolygonSegmentation,
    StoredSegmentation,
)
from avs_synth.schema import VisualCategoryRef


def _units(root: Path, *, index_bytes: bytes = b"0123456789", name: str = "a.jpg"):
    (root / "plan").mkdir(parents=True, exist_ok=True)
    index = root / "plan" / "index-00-lvis.bin"
    index.write_bytes(index_bytes)
    stored = Instance("7", "3", "dog", (1.0, 2.0, 3.0, 4.0), 12.0, StoredSegmentation(index, 2, 5))
    inline = Instance(
        "8", "3", "dog", NormalizedBox(0.1, 0.5, 0.2, 0.6), 0.16,
        PolygonSegmentation(((1.0, 1.0, 5.0, 1.0, 5.0, 5.0),)),
    )  # fmt: skip
    clip = AudioClip("yt", 30, "dog barking", "train", root / "clips" / "yt_000030.flac")
    spec = TripletSpec(
        key="lvis-1-a000",
        split="train",
        audio_class="dog barking",
        negative=False,
        categories=(VisualCategoryRef(source="lvis", id="3", name="dog"),),
        source="lvis",
        image_id="1",
        image_path=root / "images" / name,
        width=640,
        height=480,
        instances=(stored, inline),
        clip=clip,
    )
    return [
        ShardUnit("train-000000.tar", "train", 0, triplets=(spec,)),
        ShardUnit("bank-000000.tar", "bank", 1, audio_class="dog barking", clips=(clip,)),
    ]


def _hash(units) -> str:
    return compute_plan_hash(BuildConfig(), units, ["dog barking"])


def test_the_same_plan_under_another_root_hashes_the_same(tmp_path):
    assert _hash(_units(tmp_path / "one")) == _hash(_units(tmp_path / "two" / "deeper"))


@pytest.mark.parametrize(
    "change",
    [
        "index content",
        "picture name",
        "polygon",
        "box",
        "clip start",
        "licence",
        "position",
        "audio classes",
    ],
)
def test_any_change_of_content_changes_the_hash(tmp_path, change):
    base = _units(tmp_path / "base")
    reference = _hash(base)
    root = tmp_path / "changed"
    units = _units(root)
    spec = units[0].triplets[0]
    if change == "index content":
        units = _units(root, index_bytes=b"0123X56789")  # a byte inside the referenced range
    elif change == "picture name":
        units = _units(root, name="b.jpg")
    elif change == "polygon":
        inline = spec.instances[1]
        moved = PolygonSegmentation(((1.0, 1.0, 5.0, 1.0, 5.0, 5.5),))
        spec = replace(spec, instances=(spec.instances[0], replace(inline, segmentation=moved)))
    elif change == "box":
        spec = replace(spec, instances=(replace(spec.instances[0], bbox=(1.0, 2.0, 3.0, 4.5)),))
    elif change == "clip start":
        spec = replace(spec, clip=replace(spec.clip, start_seconds=31))
    elif change == "licence":
        spec = replace(spec, license="CC BY 2.0")
    if change in ("polygon", "box", "clip start", "licence"):
        units = [replace(units[0], triplets=(spec,)), units[1]]
    if change == "position":
        units = [units[0], replace(units[1], position=2)]
    if change == "audio classes":
        assert compute_plan_hash(BuildConfig(), units, ["dog barking", "cat"]) != reference
    else:
        assert _hash(units) != reference


def test_a_value_the_hash_cannot_encode_is_refused(tmp_path):
    units = _units(tmp_path)
    spec = replace(units[0].triplets[0], attribution=object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="plan hash cannot encode"):
        _hash([replace(units[0], triplets=(spec,))])
