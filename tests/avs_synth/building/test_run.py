"""Shards from hand-made records: round trip, determinism, partitions, resume, bad input."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import webdataset as wds

from avs_synth import schema
from avs_synth.building.config import BuildConfig, RunOptions
from avs_synth.building.plan import make_plan
from avs_synth.building.run import PlanMismatchError, execute_plan
from avs_synth.building.splits import SplitFractions
from avs_synth.masks import decode_mask
from avs_synth.records import PolygonSegmentation
from tests.support.build_support import CAT, DOG, MATCHES, box, make_world, write_clip

CONFIG = BuildConfig(
    fractions=SplitFractions(train=0.5, val=0.25, test=0.25),
    shard_size=4,
    bank_clips_per_shard=2,
    negative_ratio=0.5,
    max_per_picture=2,
)
QUIET = RunOptions(progress=False)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    records, clips = make_world(root)
    return records, clips


def _plan(world, config=CONFIG):
    records, clips = world
    return make_plan(records=records, clips=clips, matches=MATCHES, config=config)


def _digests(out: Path) -> dict[str, str]:
    return {
        p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file()
    }


def _samples(out: Path, pattern: str) -> list[dict]:
    shards = sorted(str(p) for p in out.glob(pattern))
    return list(wds.WebDataset(shards, shardshuffle=False)) if shards else []


@pytest.fixture(scope="module")
def built(world, tmp_path_factory):
    out = tmp_path_factory.mktemp("built")
    summary = execute_plan(_plan(world), config=CONFIG, out=out, run=QUIET)
    return out, summary


def test_round_trip_masks_audio_labels_and_splits(world, built):
    out, summary = built
    records, _ = world
    by_id = {(r.source, r.image_id): r for r in records}
    allowed = {(m.source, m.visual_id): m.vggsound_label for m in MATCHES}
    pictures: dict[str, set[str]] = {}
    clips: dict[str, set[str]] = {}
    total = 0
    for split in schema.SPLITS:
        for sample in _samples(out, f"{split}-*.tar"):
            t = schema.decode_triplet(sample)
            meta = t.meta
            total += 1
            assert meta.split == split and meta.key == t.key
            record = by_id[(meta.source, meta.image_id)]
            assert t.image.size == (record.width, record.height) and meta.image_reencoded is False
            assert sample["jpg"] == record.path.read_bytes()
            expected = np.zeros((record.height, record.width), dtype=bool)
            for inst in record.instances:
                if inst.instance_id in meta.instance_ids:
                    expected |= decode_mask(inst.segmentation, record.height, record.width)
            assert np.array_equal(t.mask, expected)
            assert meta.area == int(expected.sum())
            if meta.negative:
                assert meta.instance_ids == () and meta.area == 0 and meta.bbox is None
                assert all(
                    c.id not in {i.category_id for i in record.instances} for c in meta.categories
                )
            else:
                assert meta.area > 0
                cats = {
                    i.category_id for i in record.instances if i.instance_id in meta.instance_ids
                }
                assert {allowed[(meta.source, c)] for c in cats} == {meta.audio_class}
                # semantic: every instance of the matched categories is in the mask
                assert set(meta.instance_ids) == {
                    i.instance_id for i in record.instances if i.category_id in cats
                }
            assert t.audio.shape == (meta.audio.num_samples,) == (16000,)
            assert meta.audio.label == meta.audio_class
            assert meta.audio.vggsound_split == ("train" if split == "train" else "test")
            assert meta.audio.rms_dbfs >= CONFIG.window.silence_dbfs
            assert meta.license == "CC BY 2.0" or meta.source == "coco"
            pictures.setdefault(f"coco:{meta.image_id}", set()).add(split)
            clips.setdefault(meta.audio.vggsound_id, set()).add(split)
    assert total == sum(summary.samples.values()) > 20
    assert all(len(s) == 1 for s in pictures.values())
    assert all(len(s) == 1 for s in clips.values())
    manifest = json.loads((out / "manifest.json").read_text())
    assert {s: manifest["splits"][s]["samples"] for s in schema.SPLITS} == summary.samples
    assert manifest["splits"]["train"]["negatives"] > 0
    assert manifest["config"]["filters"] == {
        "min_mask_area": 0.01,
        "max_per_picture": 2,
        "max_per_category": 0,
    }
    assert manifest["seed"] == 0 and manifest["tool"]["name"] == "avs-synth"


def test_audio_bank_holds_every_nonsilent_window_of_the_train_clips(world, built):
    out, _ = built
    _, clips = world
    windows = [schema.decode_bank_meta(s["json"]) for s in _samples(out, "bank-*.tar")]
    train = {c.clip_id: c for c in clips if c.split == "train"}
    got = sorted((w.audio.vggsound_id, w.audio.window_start_s) for w in windows)
    expected = []
    for clip in train.values():
        k = clip.start_seconds
        expected += [(clip.clip_id, float(s)) for s in range(3) if (s + k) % 3 != 0]
    assert got == sorted(expected)
    assert {w.audio_class for w in windows} == {DOG, CAT}
    for sample in _samples(out, "bank-*.tar"):
        audio, rate = schema.decode_audio(sample["flac"])
        assert rate == 16000 and audio.shape == (16000,)


def test_same_bytes_with_two_workers_and_for_the_union_of_partitions(world, built, tmp_path):
    out, _ = built
    reference = _digests(out)
    plan = _plan(world)
    two = tmp_path / "two"
    execute_plan(plan, config=CONFIG, out=two, run=replace(QUIET, workers=2))
    assert _digests(two) == reference
    parts = []
    for i in range(3):
        part = tmp_path / f"p{i}"
        summary = execute_plan(
            plan, config=CONFIG, out=part, run=replace(QUIET, num_partitions=3, partition=i)
        )
        assert not summary.complete and not (part / "manifest.json").exists()
        parts.append({k for k in _digests(part) if k.endswith(".tar")})
    assert all(not (a & b) for a in parts for b in parts if a is not b)
    union = tmp_path / "union"
    union.mkdir()
    for i in range(3):
        shutil.copytree(tmp_path / f"p{i}", union, dirs_exist_ok=True)
    summary = execute_plan(plan, config=CONFIG, out=union, run=QUIET)  # only finalizes
    assert summary.complete and summary.units_built == 0
    assert _digests(union) == reference


def test_resume_rebuilds_only_missing_shards_and_refuses_another_plan(world, built, tmp_path):
    out, _ = built
    reference = _digests(out)
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "train-000001.tar").unlink()
    (copy / ".parts" / "test-000000.tar.json").unlink()
    (copy / "manifest.json").unlink()
    (copy / "val-000000.tar.tmp-99999").write_bytes(b"partial")
    summary = execute_plan(_plan(world), config=CONFIG, out=copy, run=QUIET)
    assert summary.units_built == 2 and summary.complete
    assert _digests(copy) == reference
    other = replace(CONFIG, seed=5)
    with pytest.raises(PlanMismatchError, match="another plan"):
        execute_plan(_plan(world, other), config=other, out=copy, run=QUIET)


def test_bad_inputs_are_skipped_and_counted(world, tmp_path):
    records, clips = world
    inputs = tmp_path / "bad"
    inputs.mkdir()
    bad = list(records)
    corrupt = inputs / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    truncated = inputs / "truncated.jpg"
    truncated.write_bytes(records[0].path.read_bytes()[:300])
    lvis = [n for n, r in enumerate(bad) if r.source == "lvis"]
    bad[lvis[0]] = replace(bad[lvis[0]], path=corrupt)
    bad[lvis[1]] = replace(bad[lvis[1]], path=truncated)
    bad[lvis[2]] = replace(bad[lvis[2]], path=inputs / "missing.jpg")
    bad[lvis[3]] = replace(bad[lvis[3]], width=65)
    broken = PolygonSegmentation(polygons=((1.0, 1.0, 5.0, 5.0),))  # two points
    r = bad[lvis[4]]
    bad[lvis[4]] = replace(r, instances=tuple(replace(i, segmentation=broken) for i in r.instances))
    r = bad[lvis[5]]
    outside = box(200, 200, 10, 10)  # polygon entirely outside the picture: empty mask
    bad[lvis[5]] = replace(
        r, instances=tuple(replace(i, segmentation=outside) for i in r.instances)
    )
    bad_clips = []
    for n, clip in enumerate(clips):
        if n == 0:
            garbage = inputs / "garbage.flac"
            garbage.write_bytes(b"fLaC garbage")
            clip = replace(clip, path=garbage)
        elif n == 1:
            clip = replace(clip, path=write_clip(inputs / "silent.flac", [0.0, 0.0, 0.0]))
        elif n == 2:
            clip = replace(clip, path=inputs / "gone.flac")
        bad_clips.append(clip)
    config = replace(
        CONFIG,
        fractions=SplitFractions(train=1.0, val=0.0, test=0.0),
        max_per_picture=0,
        negative_ratio=0.0,
        shard_size=100,
    )
    plan = make_plan(records=bad, clips=bad_clips, matches=MATCHES, config=config)
    out = tmp_path / "out"
    summary = execute_plan(plan, config=config, out=out, run=QUIET)
    report = json.loads((out / "report.json").read_text())
    skipped = report["skipped_per_split"]["train"]
    for reason in (
        "corrupt_image",
        "missing_file",
        "image_size_mismatch",
        "invalid_mask",
        "empty_mask",
        "unreadable_audio",
        "silent_audio",
    ):
        assert skipped.get(reason, 0) >= 1, reason
    assert report["skipped_per_split"]["bank"] == {
        "missing_file": 1,
        "silent_audio": 1,
        "unreadable_audio": 1,
    }
    assert summary.skipped == report["skipped"]
    written = report["written"]["train"]
    assert written + sum(skipped.values()) == report["planned"]["train"]
    keys = {s["__key__"] for s in _samples(out, "train-*.tar")}
    assert f"lvis-{bad[lvis[0]].image_id}-a001" not in keys


def test_max_side_resizes_picture_and_mask_together(world, tmp_path):
    config = replace(CONFIG, max_side=32, audio_bank=False)
    out = tmp_path / "small"
    execute_plan(_plan(world, config), config=config, out=out, run=QUIET)
    samples = _samples(out, "train-*.tar")
    assert samples
    for sample in samples:
        t = schema.decode_triplet(sample)
        assert t.image.size == (32, 24) and t.mask.shape == (24, 32)
        assert t.meta.image_reencoded and (t.meta.original_width, t.meta.original_height) == (
            64,
            48,
        )
        assert t.meta.area == int(t.mask.sum())
    assert not list(out.glob("bank-*.tar"))
