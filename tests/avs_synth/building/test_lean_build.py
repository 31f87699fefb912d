"""The lean plan on the sample corpus: the same bytes as before it, as the full readers, and a
dry run that plans without writing.

``reference_shard_sha256.json`` holds the sha256 of every shard that the build before the lean
planner (main at f932fbb: ``lvis.LVIS`` / ``pycocotools`` readers, Open Images sizes from the JPEG
headers, the plan in the parent's memory) wrote for the two configurations below on the test
sample corpus (the same check passed against the build of 0ac3da3, before the PyAV audio). Shard
bytes depend on the encoders that wrote the corpus: with other versions of Pillow, PyAV or
libsndfile, regenerate the file with that commit's code.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import webdataset as wds
from lvis import LVIS
from pycocotools.coco import COCO
from typer.testing import CliRunner

from avs_synth import schema
from avs_synth.annotation_index import AnnotationIndexWriter
from avs_synth.building.config import BuildConfig, RunOptions
from avs_synth.building.inputs import (
    corpus_inputs,
    read_accepted_matches,
    read_clips,
    read_image_records,
)
from avs_synth.building.plan import make_plan
from avs_synth.building.run import build_dataset, dry_run, execute_plan
from avs_synth.building.splits import SplitFractions
from avs_synth.masks import decode_mask
from avs_synth.records import StoredSegmentation
from avs_synth.sources import COCOReader, LVISReader
from avs_synth_cli.synth import app

REFERENCE = json.loads((Path(__file__).parent / "reference_shard_sha256.json").read_text())
CONFIGS = {
    "semantic": BuildConfig(
        fractions=SplitFractions(train=0.6, val=0.2, test=0.2),
        min_mask_area=0.0,
        max_per_picture=0,
        negative_ratio=0.5,
        shard_size=6,
        bank_clips_per_shard=4,
    ),
    "instance": BuildConfig(
        mask_mode="instance",
        min_mask_area=0.02,
        max_per_picture=2,
        negative_ratio=0.3,
        shard_size=5,
        bank_clips_per_shard=3,
        seed=7,
        max_side=48,
    ),
}
QUIET = RunOptions(progress=False)


def _inputs(corpus: Path):
    return corpus_inputs(corpus / "corpus", matches=corpus / "matches.csv")


def _digests(out: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.glob("*.tar"))}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_shards_are_byte_identical_to_the_build_before_the_lean_plan(corpus, tmp_path, name):
    out = tmp_path / "out"
    summary = build_dataset(inputs=_inputs(corpus), config=CONFIGS[name], out=out, run=QUIET)
    assert summary.complete
    assert _digests(out) == REFERENCE[name]


def test_lean_and_full_readers_plan_the_same_bytes(corpus, tmp_path):
    """Full records (every instance, polygons in memory, Open Images sizes from the JPEGs) and
    the build's lean ones (matched instances only, geometry in an index, no sizes) plan the same
    shards, and the stored plan holds no polygon."""
    config = CONFIGS["semantic"]
    inputs = _inputs(corpus)
    matches, _ = read_accepted_matches(inputs.matches)
    clips = read_clips(inputs.vggsound_csv, inputs.vggsound_clips)
    full = make_plan(
        records=read_image_records(inputs.visual), clips=clips, matches=matches, config=config
    )
    execute_plan(full, config=config, out=tmp_path / "full", run=QUIET)
    lean_out = tmp_path / "lean"
    build_dataset(inputs=inputs, config=config, out=lean_out, run=QUIET)
    assert _digests(tmp_path / "full") == _digests(lean_out)
    assert (
        json.loads((lean_out / "manifest.json").read_text())["splits"]
        == json.loads((tmp_path / "full" / "manifest.json").read_text())["splits"]
    )


def test_reader_masks_equal_the_official_libraries(corpus, tmp_path):
    """Every instance's mask, read back from the annotation index, equals ``lvis.LVIS``'s
    ``ann_to_mask`` and pycocotools' ``annToMask`` pixel for pixel."""
    root = corpus / "corpus"
    checked = Counter()
    cases = [
        (LVISReader, root / "lvis" / name, root / "coco", LVIS)
        for name in ("lvis_v1_train.json", "lvis_v1_val.json")
    ] + [
        (COCOReader, root / "coco/annotations" / f"instances_{s}.json", root / "coco" / s, COCO)
        for s in ("train2017", "val2017")
    ]
    total = 0
    for reader_class, ann_file, images, official_class in cases:
        official = official_class(str(ann_file))
        to_mask = getattr(official, "ann_to_mask", None) or official.annToMask
        anns = official.dataset["annotations"]
        total += len(anns)
        by_id = {a["id"]: a for a in anns}
        with AnnotationIndexWriter(tmp_path / f"{ann_file.stem}.bin") as index:
            records = list(
                reader_class(annotations=ann_file, images_root=images).images(index=index)
            )
        for record in records:
            for inst in record.instances:
                assert isinstance(inst.segmentation, StoredSegmentation)
                ours = decode_mask(inst.segmentation, record.height, record.width)
                theirs = to_mask(by_id[int(inst.instance_id)]).astype(bool)
                assert np.array_equal(ours, theirs), (ann_file.name, inst.instance_id)
                checked[reader_class.__name__] += 1
        assert checked[reader_class.__name__] > 0
    assert sum(checked.values()) == total  # every LVIS and COCO annotation of the corpus


def test_dry_run_plans_what_the_build_writes_and_leaves_out_untouched(corpus, tmp_path):
    config = CONFIGS["semantic"]
    report = dry_run(inputs=_inputs(corpus), config=config)
    out = tmp_path / "out"
    build_dataset(inputs=_inputs(corpus), config=config, out=out, run=QUIET)
    manifest = json.loads((out / "manifest.json").read_text())
    written = json.loads((out / "report.json").read_text())
    assert report["plan_hash"] == manifest["plan"]["plan_hash"]
    assert report["planned"] == written["planned"]
    assert report["dropped_while_planning"] == written["dropped_while_planning"]
    per_class = Counter()
    for split in schema.SPLITS:
        shards = sorted(str(p) for p in out.glob(f"{split}-*.tar"))
        for sample in wds.WebDataset(shards, shardshuffle=False) if shards else []:
            per_class[(split, json.loads(sample["json"])["audio_class"])] += 1
    planned = {
        (split, label): n
        for split, counts in report["planned_per_class"].items()
        if split != "bank"
        for label, n in counts.items()
    }
    skipped = sum(written["skipped"].values())
    assert sum(planned.values()) - skipped == sum(per_class.values()) > 0
    assert all(per_class[k] <= n for k, n in planned.items())
    # the command: counts printed, --out not created
    target = tmp_path / "dry"
    result = CliRunner().invoke(
        app,
        [
            "build",
            "--corpus",
            str(corpus / "corpus"),
            "--matches",
            str(corpus / "matches.csv"),
            "--out",
            str(target),
            "--min-mask-area",
            "0",
            "--max-per-picture",
            "0",
            "--negative-ratio",
            "0.5",
            "--splits",
            "0.6,0.2,0.2",
            "--no-progress",
            "--dry-run",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "dry run: nothing decoded or written" in result.output
    assert f"train: {report['planned']['train']} triplets" in result.output
    assert "excluded clips: 0 train and 0 test rows of 0 videos" in result.output
    assert not target.exists()
