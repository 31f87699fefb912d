"""Round trip on the sample corpus: shards against the raw annotations, files and ground truth."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import webdataset as wds
from PIL import Image
from pycocotools.coco import COCO

from avs_synth import schema
from avs_synth.building.config import BuildConfig
from avs_synth.building.splits import SplitFractions
from tests.support.build_support import build_sample

CONFIG = BuildConfig(
    fractions=SplitFractions(train=0.6, val=0.2, test=0.2),
    min_mask_area=0.0,
    max_per_picture=0,
    negative_ratio=0.5,
    shard_size=6,
    bank_clips_per_shard=4,
)


@pytest.fixture(scope="module")
def built(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus_build")
    summary = build_sample(corpus, CONFIG, out)
    samples = []
    for split in schema.SPLITS:
        shards = sorted(str(p) for p in out.glob(f"{split}-*.tar"))
        for sample in wds.WebDataset(shards, shardshuffle=False) if shards else []:
            samples.append(schema.decode_triplet(sample))
    return out, summary, samples


class RawAnnotations:
    """The corpus's annotations read without avs_synth: pycocotools and the Open Images files."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.coco: dict[str, COCO] = {}
        for name in ("lvis_v1_train", "lvis_v1_val"):
            self.coco[name] = COCO(str(root / "lvis" / f"{name}.json"))
        for name in ("instances_train2017", "instances_val2017"):
            self.coco[name] = COCO(str(root / "coco" / "annotations" / f"{name}.json"))
        self.oi_rows: dict[str, list[dict]] = defaultdict(list)
        self.oi_negatives: dict[str, set[str]] = defaultdict(set)
        self.oi_split: dict[str, str] = {}
        for split in ("train", "validation"):
            with open(root / "openimages" / f"{split}-annotations-object-segmentation.csv") as f:
                for row in csv.DictReader(f):
                    self.oi_rows[row["ImageID"]].append(row)
                    self.oi_split[row["ImageID"]] = split
            with open(root / "openimages" / f"{split}-annotations-human-imagelabels.csv") as f:
                for row in csv.DictReader(f):
                    if float(row["Confidence"]) == 0:
                        self.oi_negatives[row["ImageID"]].add(row["LabelName"])

    def coco_like(self, source: str, image_id: str) -> tuple[COCO, dict, list[dict]]:
        names = (
            ("lvis_v1_train", "lvis_v1_val")
            if source == "lvis"
            else ("instances_train2017", "instances_val2017")
        )
        for name in names:
            api = self.coco[name]
            if int(image_id) in api.imgs:
                image = api.imgs[int(image_id)]
                return api, image, api.imgToAnns.get(int(image_id), [])
        raise KeyError(image_id)

    def openimages_mask(self, row: dict, width: int, height: int) -> np.ndarray:
        split = self.oi_split[row["ImageID"]]
        archive = (
            self.root / "openimages" / f"{split}-masks" / f"{split}-masks-{row['ImageID'][0]}.zip"
        )
        with zipfile.ZipFile(archive) as z:
            png = Image.open(io.BytesIO(z.read(row["MaskPath"])))
            png = png.convert("L").resize((width, height), Image.Resampling.NEAREST)
        return np.asarray(png) > 0


def _accepted(path: Path) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = defaultdict(set)
    with path.open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["decision"] == "accepted":
                out[(row["source"], row["visual_id"])].add(row["vggsound_label"])
    return out


def test_masks_are_the_union_of_the_raw_instance_masks_and_labels_follow_the_map(corpus, built):
    out, summary, samples = built
    raw = RawAnnotations(corpus / "corpus")
    accepted = _accepted(corpus / "matches.csv")
    assert {t.meta.source for t in samples} == {"lvis", "coco", "openimages"}
    positives = 0
    for t in samples:
        m = t.meta
        if m.negative:
            continue
        positives += 1
        assert t.mask.shape == (m.height, m.width)
        if m.source in ("lvis", "coco"):
            api, image, anns = raw.coco_like(m.source, m.image_id)
            assert (image["width"], image["height"]) == (m.width, m.height)
            crowd = {a["category_id"] for a in anns if a.get("iscrowd")}
            not_exhaustive = set(image.get("not_exhaustive_category_ids", []))
            expected = [
                a
                for a in anns
                if m.audio_class in accepted[(m.source, str(a["category_id"]))]
                and not a.get("iscrowd")
                and a["category_id"] not in crowd | not_exhaustive
            ]
            assert sorted(m.instance_ids) == sorted(str(a["id"]) for a in expected)
            union = np.zeros((m.height, m.width), dtype=bool)
            for a in expected:
                union |= api.annToMask(a).astype(bool)
        else:
            rows = [
                r
                for r in raw.oi_rows[m.image_id]
                if m.audio_class in accepted[("openimages", r["LabelName"])]
            ]
            assert sorted(m.instance_ids) == sorted(r["MaskPath"] for r in rows)
            union = np.zeros((m.height, m.width), dtype=bool)
            for r in rows:
                union |= raw.openimages_mask(r, m.width, m.height)
        assert np.array_equal(t.mask, union), m.key
        assert m.area == int(union.sum()) > 0
        for c in m.categories:
            assert m.audio_class in accepted[(c.source, c.id)]
    assert positives > 20
    # the rejected COCO dog row and the pending LVIS cat row give nothing
    assert not any(t.meta.source == "coco" and t.meta.audio_class == "dog barking" for t in samples)
    assert not any(
        t.meta.audio_class == "lions roaring" and "cat" in t.meta.category for t in samples
    )


def test_negatives_are_verified_absent_and_truly_absent(corpus, built):
    _, _, samples = built
    raw = RawAnnotations(corpus / "corpus")
    truth = json.loads((corpus / "corpus" / "corpus.json").read_text())
    drawn = {
        ("coco" if p["source"] in ("coco", "lvis") else p["source"], p["image_id"]): {
            i["category"] for i in p["instances"]
        }
        for p in truth["pictures"]
    }
    key_of_label = {c["vggsound_label"]: c["key"] for c in truth["categories"]}
    negatives = [t for t in samples if t.meta.negative]
    assert len(negatives) >= 3 and {t.meta.source for t in negatives} >= {"lvis", "openimages"}
    for t in negatives:
        m = t.meta
        assert not t.mask.any() and m.instance_ids == () and m.area == 0
        picture = ("coco" if m.source in ("lvis", "coco") else "openimages", m.image_id)
        assert key_of_label[m.audio_class] not in drawn[picture], m.key
        for c in m.categories:
            if m.source == "lvis":
                _, image, _ = raw.coco_like("lvis", m.image_id)
                assert int(c.id) in image["neg_category_ids"]
            elif m.source == "openimages":
                assert c.id in raw.oi_negatives[m.image_id]
            else:
                _, _, anns = raw.coco_like("coco", m.image_id)
                assert int(c.id) not in {a["category_id"] for a in anns}


def test_audio_lengths_splits_and_manifest(corpus, built):
    out, summary, samples = built
    clips = {}
    with open(corpus / "corpus" / "vggsound" / "vggsound.csv", newline="") as f:
        for ytid, start, label, split in csv.reader(f):
            clips[f"{ytid}_{int(start):06d}"] = (label, split)
    pictures: dict[str, set[str]] = defaultdict(set)
    used_clips: dict[str, set[str]] = defaultdict(set)
    for t in samples:
        m = t.meta
        assert t.audio.shape == (m.audio.num_samples,) == (16000,)
        assert clips[m.audio.vggsound_id] == (m.audio_class, m.audio.vggsound_split)
        assert m.audio.vggsound_split == ("train" if m.split == "train" else "test")
        pictures[("coco:" if m.source != "openimages" else "oi:") + m.image_id].add(m.split)
        used_clips[m.audio.vggsound_id].add(m.split)
    assert all(len(s) == 1 for s in pictures.values())
    assert all(len(s) == 1 for s in used_clips.values())
    assert {t.meta.split for t in samples} == {"train", "val", "test"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert sum(manifest["splits"][s]["samples"] for s in schema.SPLITS) == len(samples)
    with open(corpus / "matches.csv", newline="", encoding="utf-8") as f:
        decisions = [row["decision"] for row in csv.DictReader(f)]
    assert manifest["category_map"]["rows"] == {
        d: decisions.count(d) for d in ("accepted", "rejected", "pending")
    }
    assert manifest["category_map"]["accepted_pairs"] == decisions.count("accepted")
    # the audio bank: windows of train clips only, each of its shard's class
    for shard in manifest["bank"]["shards"]:
        for sample in wds.WebDataset(str(out / shard["name"]), shardshuffle=False):
            meta = schema.decode_bank_meta(sample["json"])
            audio, rate = schema.decode_audio(sample["flac"])
            assert meta.audio_class == shard["audio_class"] == clips[meta.audio.vggsound_id][0]
            assert clips[meta.audio.vggsound_id][1] == "train"
            assert audio.shape == (meta.audio.num_samples,) and rate == 16000
            assert meta.audio.rms_dbfs >= CONFIG.window.silence_dbfs
    assert manifest["bank"]["windows"] > 50
