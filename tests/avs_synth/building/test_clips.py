"""``--frames N`` / ``--onset-offset P``: clips cut from one picture along a crop path."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import webdataset as wds
from PIL import Image
from typer.testing import CliRunner

from avs_synth import schema
from avs_synth.audio.negative_audio import level_dbfs
from avs_synth.building.config import BuildConfig, RunOptions
from avs_synth.building.inputs import corpus_inputs
from avs_synth.building.inspect_shards import describe, inspect_shards, write_inspect_page
from avs_synth.building.plan import make_plan
from avs_synth.building.run import build_dataset, execute_plan
from avs_synth.building.splits import SplitFractions
from avs_synth.masks import decode_mask
from avs_synth_cli.synth import app
from tests.support.build_support import (
    MATCHES,
    build_sample,
    built_fixture,
    instance,
    make_world,
    shard_digests,
)

CONFIG = BuildConfig(
    fractions=SplitFractions(train=0.6, val=0.2, test=0.2),
    min_mask_area=0.0,
    max_per_picture=0,
    negative_ratio=0.5,
    negatives=("absent", "silence"),
    class_masks=True,
    frames=5,
    onset_offset=0.5,
    shard_size=8,
    audio_bank=False,
    max_side=160,
)


built = built_fixture(CONFIG, "clips")


def _samples(out: Path) -> list[dict]:
    urls = [str(p) for p in sorted(out.glob("*.tar"))]
    return list(wds.WebDataset(urls, shardshuffle=False))


def test_clip_samples_have_n_frames_masks_and_n_audio_seconds(built: Path) -> None:
    samples = _samples(built)
    manifest = json.loads((built / "manifest.json").read_text())
    clips = manifest["config"]["clips"]
    assert clips["frames"] == 5 and clips["onset_offset"] == 0.5 and clips["path"] == "ease-in-out"
    members = schema.clip_members(5, class_masks=True)
    assert clips["members"] == list(members) and members[:3] == (
        "0.jpg",
        "0.mask.png",
        "0.classes.png",
    )
    kinds = {"positive": 0, "absent": 0, "silence": 0}
    for raw in samples:
        assert set(raw) - {"__key__", "__url__", "__local_path__"} == set(members)
        t = schema.decode_triplet(raw)
        clip = t.meta.clip
        assert clip is not None and clip.frames == 5 and len(t.frames) == 5
        assert {f.size for f in t.frames} == {(t.meta.width, t.meta.height)}
        assert max(t.meta.width, t.meta.height) <= 160
        assert all(m.shape == (t.meta.height, t.meta.width) for m in t.frame_masks)
        assert len(t.audio) == 5 * 16000 and t.meta.audio.window_s == 5.0
        assert clip.areas == tuple(int(m.sum()) for m in t.frame_masks)
        union = np.logical_or.reduce(t.frame_masks)
        assert t.meta.area == int(union.sum()) and t.meta.bbox == _box(union)
        labels = [
            schema.decode_class_mask(raw[schema.frame_member(k, "classes.png")]) for k in range(5)
        ]
        assert all(np.array_equal(lab > 0, m) for lab, m in zip(labels, t.frame_masks, strict=True))
        kinds[t.meta.kind] += 1
        if t.meta.negative:
            assert not union.any() and clip.event is None and not any(clip.silent)
        else:
            sounding = [m for m, quiet in zip(t.frame_masks, clip.silent, strict=True) if not quiet]
            assert sounding and all(m.any() for m in sounding)
    assert all(kinds.values()), kinds


def _box(mask: np.ndarray):
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return None
    return (
        int(xs.min()),
        int(ys.min()),
        int(xs.max() - xs.min() + 1),
        int(ys.max() - ys.min() + 1),
    )


def test_silent_frames_have_empty_masks_and_silent_audio(built: Path) -> None:
    events = {"none": 0, "onset": 0, "offset": 0}
    for raw in _samples(built):
        t = schema.decode_triplet(raw)
        clip = t.meta.clip
        if t.meta.negative:
            continue
        events[clip.event or "none"] += 1
        for k, quiet in enumerate(clip.silent):
            stretch = t.audio[k * 16000 : (k + 1) * 16000]
            if quiet:
                assert not t.frame_masks[k].any() and clip.areas[k] == 0
                assert level_dbfs(stretch) <= -59.0 and clip.rms_dbfs[k] <= -59.0
                if clip.silence == "zeros":
                    assert not stretch.any()
            else:  # a sounding frame's second is heard (the clip's window was chosen so)
                assert (
                    level_dbfs(stretch) >= t.meta.audio.rms_dbfs - 40 and clip.rms_dbfs[k] >= -45.5
                )
        if any(clip.silent):
            assert clip.silence in ("zeros", "floor") and clip.event in ("onset", "offset")
    manifest = json.loads((built / "manifest.json").read_text())
    counted = {"none": 0, "onset": 0, "offset": 0}
    for split in schema.SPLITS:
        for event, n in manifest["splits"][split]["per_clip_event"].items():
            counted[event] += n
    assert counted == events and events["onset"] + events["offset"] > 0 and events["none"] > 0


def test_masks_follow_the_crops(tmp_path: Path) -> None:
    """Frame t's mask is the full-picture mask cropped by frame t's box, resized (area average,
    half coverage), on a hand-made world whose masks are known rectangles."""
    records, clips = make_world(tmp_path / "world", pictures=8, clip_seconds=4)
    big = [Image.open(r.path).resize((256, 192)) for r in records]
    for image, record in zip(big, records, strict=True):
        image.save(record.path, format="JPEG", quality=95)
    records = [
        replace(r, width=256, height=192, instances=tuple(_scaled(i) for i in r.instances))
        for r in records
    ]
    config = BuildConfig(
        min_mask_area=0.0, max_per_picture=0, frames=2, audio_bank=False, max_side=64
    )
    plan = make_plan(records=records, clips=clips, matches=MATCHES, config=config)
    out = tmp_path / "out"
    execute_plan(plan, config=config, out=out, run=RunOptions(progress=False))
    by_key = {s.key: s for u in plan.units for s in u.triplets}
    checked = 0
    for raw in _samples(out):
        t = schema.decode_triplet(raw)
        spec = by_key[t.key]
        full = np.zeros((192, 256), dtype=bool)
        for inst in spec.instances:
            full |= decode_mask(inst.segmentation, 192, 256, source="test")
        size = (t.meta.width, t.meta.height)
        for (x, y, w, h), mask in zip(t.meta.clip.boxes, t.frame_masks, strict=True):
            crop = full[y : y + h, x : x + w]
            assert crop.sum() == full.sum()  # the box holds the whole mask
            resized = Image.fromarray(crop.astype(np.uint8) * 255).resize(
                size, Image.Resampling.BOX
            )
            assert np.array_equal(mask, np.asarray(resized) >= 128)
            checked += 1
    assert checked >= 4


def _scaled(inst):
    """The instance at 4 x the world's scale."""
    x, y, w, h = (int(v * 4) for v in inst.bbox)
    return instance(inst.instance_id, inst.category_id, inst.category_name, x, y, w, h)


def test_clip_builds_are_byte_identical_resumable_and_partitionable(
    built: Path, corpus: Path, tmp_path: Path
) -> None:
    reference = shard_digests(built)
    two = tmp_path / "two"
    build_sample(corpus, CONFIG, two, workers=2)
    assert shard_digests(two) == reference
    copy = tmp_path / "copy"
    shutil.copytree(built, copy)
    name = sorted(reference)[0]
    (copy / name).unlink()
    (copy / "manifest.json").unlink()
    build_sample(corpus, CONFIG, copy)
    assert shard_digests(copy) == reference
    inputs = corpus_inputs(corpus / "corpus", matches=corpus / "matches.csv")
    union = tmp_path / "union"
    for part in range(2):
        run = RunOptions(progress=False, num_partitions=2, partition=part)
        build_dataset(inputs=inputs, config=CONFIG, out=tmp_path / f"p{part}", run=run)
        shutil.copytree(tmp_path / f"p{part}", union, dirs_exist_ok=True)
    build_sample(corpus, CONFIG, union)  # finalizes
    assert shard_digests(union) == reference
    assert (union / "manifest.json").read_bytes() == (built / "manifest.json").read_bytes()


def test_bad_pictures_are_skipped_and_counted(tmp_path: Path) -> None:
    records, clips = make_world(tmp_path / "world", pictures=6, clip_seconds=4)
    records[0].path.write_bytes(records[0].path.read_bytes()[:200])  # truncated JPEG
    config = BuildConfig(min_mask_area=0.0, max_per_picture=0, frames=2, audio_bank=False)
    plan = make_plan(records=records, clips=clips, matches=MATCHES, config=config)
    out = tmp_path / "out"
    summary = execute_plan(plan, config=config, out=out, run=RunOptions(progress=False))
    assert summary.complete
    report = json.loads((out / "report.json").read_text())
    assert report["skipped"].get("corrupt_image", 0) >= 1
    assert sum(report["written"].values()) > 0


def test_inspect_shows_the_frames_and_the_silent_ones(built: Path, tmp_path: Path) -> None:
    lines = describe(inspect_shards([built], num_samples=1000))
    assert any(line.startswith("clips: 5 frames of 1 s") for line in lines)
    assert any("positive clips by event" in line for line in lines)
    assert any(
        "clip of 5 frames, silent" in line and ("onset" in line or "offset" in line)
        for line in lines
    )
    report = write_inspect_page([built], tmp_path / "page", per_split=100)
    html = (tmp_path / "page" / "index.html").read_text()
    assert "silent frames" in html and "frame crops" in html and "masks empty" in html
    assert not report.problems
    pictures = sorted((tmp_path / "page" / "media").glob("*.jpg"))
    strip = Image.open(pictures[0])
    assert strip.width > 4 * strip.height  # five frames side by side


def test_clip_options_that_do_not_combine_are_refused(corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="multi-source"):
        BuildConfig(frames=5, sources=((2, 1.0),))
    with pytest.raises(ValueError, match="give frames of 2 or more"):
        BuildConfig(onset_offset=0.5)
    with pytest.raises(ValueError, match=r"frames must be in \[1, 10\]"):
        BuildConfig(frames=11)
    result = CliRunner().invoke(
        app,
        [
            "build",
            "--corpus",
            str(corpus / "corpus"),
            "--out",
            str(tmp_path / "x"),
            "--frames",
            "5",
            "--sources",
            "1:0.5,2:0.5",
        ],
    )
    assert result.exit_code != 0 and "multi-source" in result.output
    assert not (tmp_path / "x").exists()


def test_a_still_build_is_unchanged_by_the_clip_options(corpus: Path, tmp_path: Path) -> None:
    """frames 1 writes exactly the bytes of a build that never heard of clips (the members of a
    still, no clip field in the json)."""
    out = tmp_path / "still"
    build_sample(corpus, BuildConfig(min_mask_area=0.0, shard_size=50, audio_bank=False), out)
    raw = _samples(out)[0]
    assert schema.frame_member(0, schema.IMAGE) not in raw and schema.IMAGE in raw
    assert b'"clip"' not in raw[schema.META]
    assert "clips" not in json.loads((out / "manifest.json").read_text())["config"]


def test_a_clip_missing_a_frame_is_named(built: Path) -> None:
    from avs_synth.building.inspect_shards import iter_triplets

    raw = _samples(built)[0]
    broken = {k: v for k, v in raw.items() if k != "3.mask.png"}
    with pytest.raises(KeyError, match=r"lacks members \['3.mask.png'\]"):
        schema.decode_triplet(broken)
    problems: list[str] = []
    shard = sorted(built.glob("train-*.tar"))[0]
    assert len(list(iter_triplets([shard], problems=problems))) > 0 and not problems


def test_object_crops_frame_the_clip_path(corpus: Path, tmp_path: Path) -> None:
    """With crop object a positive clip's boxes all lie inside its object-centric crop (recorded
    as ``crop``), which holds the whole mask; negatives move over the whole picture."""
    config = replace(CONFIG, crop="object", crop_area_fraction=0.3, onset_offset=0.0)
    out = tmp_path / "object"
    build_sample(corpus, config, out)
    cropped = 0
    for raw in _samples(out):
        m = schema.decode_triplet(raw).meta
        if m.negative:
            assert m.crop is None
            continue
        if m.crop is None:  # the mask already covers the share
            continue
        cropped += 1
        cx, cy, cw, ch = m.crop
        for x, y, w, h in m.clip.boxes:
            assert cx <= x and cy <= y and x + w <= cx + cw and y + h <= cy + ch
    assert cropped > 0
    assert json.loads((out / "manifest.json").read_text())["config"]["crop"]["mode"] == "object"
