"""The sample corpus read back through the project's own readers agrees with what was drawn."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from avs_synth.audio.decode import load_audio
from avs_synth.audio.logmel import waveform_to_examples
from avs_synth.masks import decode_mask
from avs_synth.sample_corpus.writer import write_sample_corpus
from avs_synth.sources import (
    AVSBenchReader,
    COCOReader,
    LVISReader,
    OpenImagesReader,
    VGGSoundReader,
)
from avs_synth.sources.avsbench import load_log_mel, load_mask


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("corpus")
    write_sample_corpus(root, seed=3, size="tiny")
    return root, json.loads((root / "corpus.json").read_text())


def _label_map(root: Path, picture: dict) -> np.ndarray:
    return np.asarray(Image.open(root / picture["label_map"]))


def _truth_mask(root: Path, picture: dict, instance: dict, *, crowd: bool = False) -> np.ndarray:
    """The drawn pixels of an instance (with ``crowd``, of its whole crowd group)."""
    labels = [instance["label"]]
    if crowd and instance["crowd_group"] is not None:
        labels = [
            i["label"] for i in picture["instances"] if i["crowd_group"] == instance["crowd_group"]
        ]
    return np.isin(_label_map(root, picture), labels)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def _pictures_by_id(truth: dict, source: str) -> dict[str, dict]:
    return {p["image_id"]: p for p in truth["pictures"] if p["source"] == source}


@pytest.mark.parametrize("split", ["train", "val"])
def test_lvis_reader_masks_equal_the_drawing(corpus, split) -> None:
    root, truth = corpus
    reader = LVISReader(
        annotations=root / truth["files"][f"lvis_{split}"], images_root=root / "coco"
    )
    pictures = _pictures_by_id(truth, "coco")
    records = list(reader.images())
    assert len(records) == truth["counts"][f"lvis_{split}_images"]
    checked = 0
    for record in records:
        picture = pictures[record.image_id]
        assert record.path == (root / picture["path"]).resolve()
        by_annotation = {i["lvis_annotation_id"]: i for i in picture["instances"]}
        for instance in record.instances:
            drawn = by_annotation[int(instance.instance_id)]
            assert instance.category_name == next(
                c["lvis_name"] for c in truth["categories"] if c["key"] == drawn["category"]
            )
            mask = decode_mask(instance.segmentation, record.height, record.width)
            assert _iou(mask, _truth_mask(root, picture, drawn)) > 0.97
            checked += 1
        # verified negatives are really absent from the picture
        present = {
            str(c["lvis_id"])
            for c in truth["categories"]
            if c["key"] in {i["category"] for i in picture["instances"]}
        }
        assert not present & set(record.negative_category_ids)
    assert checked > 0


def test_coco_reader_masks_equal_the_drawing(corpus) -> None:
    root, truth = corpus
    reader = COCOReader(
        annotations=root / truth["files"]["coco_train2017"], images_root=root / "coco"
    )
    pictures = _pictures_by_id(truth, "coco")
    crowd_seen = 0
    for record in reader.images():
        assert record.exhaustive
        picture = pictures[record.image_id]
        by_annotation = {}
        for drawn in picture["instances"]:
            by_annotation.setdefault(drawn["coco_annotation_id"], drawn)
        for instance in record.instances:
            drawn = by_annotation[int(instance.instance_id)]
            crowd_seen += instance.is_crowd
            assert instance.is_crowd == (drawn["crowd_group"] is not None)
            mask = decode_mask(instance.segmentation, record.height, record.width)
            assert _iou(mask, _truth_mask(root, picture, drawn, crowd=True)) > 0.97
    assert crowd_seen >= 1


def test_openimages_reader_masks_equal_the_drawing(corpus) -> None:
    root, truth = corpus
    reader = OpenImagesReader(root=root / "openimages", split="train")
    pictures = _pictures_by_id(truth, "openimages")
    records = list(reader.images())
    assert len(records) == truth["counts"]["openimages_train_images"]
    for record in records:
        picture = pictures[record.image_id]
        assert (record.width, record.height) == (picture["width"], picture["height"])
        by_mask = {i["openimages_mask"]: i for i in picture["instances"]}
        assert len(record.instances) == len(by_mask)
        for instance in record.instances:
            drawn = by_mask[Path(instance.instance_id).name]
            mask = decode_mask(instance.segmentation, record.height, record.width)
            assert mask.shape == (picture["height"], picture["width"])
            assert _iou(mask, _truth_mask(root, picture, drawn)) > 0.95
        assert set(record.negative_category_ids) == {
            c["openimages_mid"]
            for c in truth["categories"]
            if c["key"] in picture["negative_categories"]
        }


def test_vggsound_reader_finds_every_clip(corpus) -> None:
    root, truth = corpus
    reader = VGGSoundReader(
        csv_path=root / "vggsound" / "vggsound.csv", clips_root=root / "vggsound" / "clips"
    )
    clips = {(c.youtube_id, c.start_seconds): c for c in reader.clips()}
    assert len(clips) == len(truth["clips"])
    for drawn in truth["clips"]:
        clip = clips[(drawn["youtube_id"], drawn["start_seconds"])]
        assert (clip.label, clip.split) == (drawn["label"], drawn["split"])
        if drawn["path"] is None:
            assert clip.path is None
            continue
        assert clip.path == (root / drawn["path"]).resolve()
    one_of_each = {}
    for drawn in truth["clips"]:
        if drawn["path"] is not None:
            one_of_each.setdefault(drawn["audio_format"], drawn)
    assert {"wav", "flac", "ogg", "mp4"} <= set(one_of_each)
    for drawn in one_of_each.values():
        audio = load_audio(root / drawn["path"])
        assert audio.dtype == np.float32
        assert abs(audio.size - 160_000) <= 2048


@pytest.mark.parametrize("subset", ["s4", "ms3"])
def test_avsbench_reader_agrees_with_the_drawing(corpus, subset) -> None:
    root, truth = corpus
    reader = AVSBenchReader(root=root / "avsbench", subset=subset)
    drawn_videos = {v["name"]: v for v in truth["videos"] if v["subset"] == subset}
    videos = reader.videos()
    assert {v.name for v in videos} == set(drawn_videos)
    for video in videos:
        drawn = drawn_videos[video.name]
        assert video.split == drawn["split"]
        assert video.category == drawn["category"]
        assert [str(p) for p in video.frame_paths] == [
            str((root / f).resolve()) for f in drawn["frames"]
        ]
        for k, mask_path in enumerate(video.mask_paths):
            annotated = subset == "ms3" or video.split != "train" or k == 0
            assert (mask_path is not None) == annotated
            if mask_path is None:
                continue
            label_map = np.asarray(Image.open(root / drawn["label_maps"][k]))
            sounding_labels = [
                i["label"] for i in drawn["instances"] if k + 1 in i["sounding_seconds"]
            ]
            assert np.array_equal(
                load_mask(mask_path, video.subset), np.isin(label_map, sounding_labels)
            )
        log_mel = load_log_mel(video)
        assert log_mel.shape == (5, 1, 96, 64)
        expected = waveform_to_examples(load_audio(video.wav_path), num_examples=5)
        torch.testing.assert_close(log_mel, expected, atol=1e-5, rtol=0)
