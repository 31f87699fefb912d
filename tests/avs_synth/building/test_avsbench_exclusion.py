"""No AVSBench clip in the synthetic audio: a corpus whose vggsound.csv overlaps its AVSBench."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import webdataset as wds

from avs_synth.building.avsbench_exclusion import (
    avsbench_ids,
    load_exclusion,
    packaged_hashes,
    read_exclude_file,
    youtube_id_hash,
)
from avs_synth.building.config import BuildConfig, RunOptions
from avs_synth.building.inputs import corpus_inputs
from avs_synth.building.run import build_dataset
from avs_synth.building.splits import SplitFractions
from avs_synth.errors import DataFormatError
from tests.support.build_support import corpus_matches

CONFIG = BuildConfig(
    fractions=SplitFractions(train=0.6, val=0.2, test=0.2),
    min_mask_area=0.0,
    max_per_picture=0,
    shard_size=20,
    bank_clips_per_shard=10,
)
QUIET = RunOptions(progress=False)


def test_packaged_list_holds_the_4932_s4_videos_as_hashes():
    hashes = packaged_hashes()
    assert len(hashes) == len(set(hashes)) == 4932
    assert all(len(h) == 64 and int(h, 16) >= 0 for h in hashes)
    assert youtube_id_hash("-_wznbUu3DY") == hashlib.sha256(b"-_wznbUu3DY").hexdigest()


def test_exclude_file_entries_and_avsbench_metadata(tmp_path):
    listing = tmp_path / "exclude.txt"
    hashed = youtube_id_hash("hashedVideo")
    listing.write_text(
        "# AVSBench videos of another benchmark\n"
        "abcdefghijk\n"
        "lmnopqrstuv_000030,dog barking,train\n"  # a clip name (11-character id) and CSV fields
        f"{hashed}\n\n"
        "short_id\n",
        encoding="utf-8",
    )
    assert read_exclude_file(listing) == [
        youtube_id_hash("abcdefghijk"),
        youtube_id_hash("lmnopqrstuv"),
        hashed,
        youtube_id_hash("short_id"),
    ]
    root = tmp_path / "avsbench"
    (root / "Single-source").mkdir(parents=True)
    (root / "Single-source/s4_meta_data.csv").write_text(
        "name,start,category,split\nAAAAAAAAAAA,0,dog,train\nBBBBBBBBBBB,5,cat,test\n"
    )
    (root / "Multi-sources").mkdir()
    (root / "Multi-sources/ms3_meta_data.csv").write_text("video_id,split\nCCCCCCCCCCC,val\n")
    (root / "metadata.csv").write_text(
        "vid,uid,s_min,s_sec,a_obj,split,label\nDDDDDDDDDDD,x,0,0,y,train,v2\n"
    )
    assert avsbench_ids(root) == {
        "avsbench_s4": ["AAAAAAAAAAA", "BBBBBBBBBBB"],
        "avsbench_ms3": ["CCCCCCCCCCC"],
        "avsbench_semantic": ["DDDDDDDDDDD"],
    }
    exclusion = load_exclusion(avsbench_root=root, exclude_files=[listing])
    assert exclusion.sources == {
        "packaged_s4": 4932,
        "avsbench_s4": 2,
        "avsbench_ms3": 1,
        "avsbench_semantic": 1,
        "exclude_clips": 4,
    }
    assert exclusion.excludes("CCCCCCCCCCC") and exclusion.excludes("abcdefghijk")
    assert not exclusion.excludes("EEEEEEEEEEE")
    off = load_exclusion(avsbench=False, avsbench_root=root, exclude_files=[listing])
    assert off.sources == {"exclude_clips": 4} and not off.excludes("CCCCCCCCCCC")
    (root / "metadata.csv").write_text("uid,split\nx,train\n")
    with pytest.raises(DataFormatError, match="metadata.csv:1: missing column 'vid'"):
        avsbench_ids(root)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no AVSBench metadata found"):
        avsbench_ids(tmp_path / "empty")


@pytest.fixture(scope="module")
def overlapping(tmp_path_factory) -> Path:
    """A small sample corpus whose vggsound.csv also lists clips of its AVSBench videos (every S4
    and MS3 video, in both VGGSound splits, with a file each)."""
    from avs_synth.sample_corpus.summary import CorpusSize
    from avs_synth.sample_corpus.writer import write_sample_corpus

    root = tmp_path_factory.mktemp("overlap")
    size = CorpusSize(
        lvis_train_images=6,
        lvis_val_images=4,
        coco_only_images=2,
        openimages_train_images=3,
        openimages_val_images=2,
        clips_per_class=2,
        s4_videos_per_category=1,
        ms3_videos_per_split=1,
        image_scale=0.5,
        s4_categories=4,
    )
    corpus = root / "corpus"
    write_sample_corpus(corpus, seed=0, size=size, overwrite=True)
    corpus_matches(root / "matches.csv")
    vgg = corpus / "vggsound" / "vggsound.csv"
    rows = list(csv.reader(vgg.open(newline="", encoding="utf-8")))
    labels = sorted({r[2] for r in rows})
    a_clip = next(p for p in sorted((corpus / "vggsound" / "clips").rglob("*.flac")))
    s4 = [
        r["name"]
        for r in csv.DictReader((corpus / "avsbench/Single-source/s4_meta_data.csv").open())
    ]
    ms3 = [
        r["video_id"]
        for r in csv.DictReader((corpus / "avsbench/Multi-sources/ms3_meta_data.csv").open())
    ]
    added = []
    for n, ytid in enumerate(s4 + ms3):
        for start, split in ((0, "train"), (10, "test")):
            added.append([ytid, str(start), labels[n % len(labels)], split])
            shutil.copy(a_clip, corpus / "vggsound" / "clips" / f"{ytid}_{start:06d}.flac")
    with vgg.open("a", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(added)
    (root / "added.json").write_text(json.dumps({"s4": s4, "ms3": ms3, "rows": len(added)}))
    return root


def _clip_ids(out: Path) -> set[str]:
    ids = set()
    for pattern in ("train-*.tar", "val-*.tar", "test-*.tar", "bank-*.tar"):
        shards = sorted(str(p) for p in out.glob(pattern))
        for sample in wds.WebDataset(shards, shardshuffle=False) if shards else []:
            ids.add(json.loads(sample["json"])["audio"]["youtube_id"])
    return ids


@pytest.mark.slow
def test_a_build_over_an_overlapping_vggsound_excludes_and_counts_every_avsbench_clip(
    overlapping, tmp_path
):
    added = json.loads((overlapping / "added.json").read_text())
    avsbench = set(added["s4"]) | set(added["ms3"])
    inputs = corpus_inputs(overlapping / "corpus", matches=overlapping / "matches.csv")
    assert inputs.avsbench == overlapping / "corpus" / "avsbench"  # --corpus picks it up
    out = tmp_path / "excluded"
    build_dataset(inputs=inputs, config=CONFIG, out=out, run=QUIET)
    assert not (_clip_ids(out) & avsbench)
    manifest = json.loads((out / "manifest.json").read_text())
    report = json.loads((out / "report.json").read_text())
    exclusion = manifest["clip_exclusion"]
    assert exclusion == report["clip_exclusion"]
    assert exclusion["rows_excluded"] == {"train": len(avsbench), "test": len(avsbench)}
    assert exclusion["videos_excluded_total"] == len(avsbench) == added["rows"] // 2
    assert exclusion["ids_per_list"]["avsbench_s4"] == len(added["s4"])
    assert exclusion["ids_per_list"]["avsbench_ms3"] == len(added["ms3"])
    assert manifest["config"]["exclude_avsbench"] is True
    dropped = manifest["plan"]["dropped_while_planning"]["excluded_clip"]
    assert 0 < dropped <= added["rows"]
    # kept on request: the same corpus then draws from those clips
    kept = tmp_path / "kept"
    build_dataset(
        inputs=inputs, config=replace(CONFIG, exclude_avsbench=False), out=kept, run=QUIET
    )
    assert _clip_ids(kept) & avsbench
    assert json.loads((kept / "manifest.json").read_text())["clip_exclusion"]["rows_excluded"] == {
        "train": 0,
        "test": 0,
    }
