"""The sample corpus: every format read back with the official tools and checked against what was
drawn (the truth label maps and ``corpus.json``)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import pickle
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from PIL import Image
from typer.testing import CliRunner

from avs_synth.audio.decode import load_audio
from avs_synth.audio.logmel import LogMelFrontend, waveform_to_examples
from avs_synth.sample_corpus.categories import CATEGORIES, category_by_key
from avs_synth.sample_corpus.file_writers import tensor_pickle_bytes
from avs_synth.sample_corpus.polygons import rasterize, trace_polygons
from avs_synth.sample_corpus.scenes import compose_picture
from avs_synth.sample_corpus.sounds import RECIPES, synthesize_clip
from avs_synth.sample_corpus.summary import CorpusSize
from avs_synth.sample_corpus.writer import write_sample_corpus
from avs_synth_cli.synth import app

MICRO = CorpusSize(
    lvis_train_images=2,
    lvis_val_images=2,
    coco_only_images=1,
    openimages_train_images=2,
    openimages_val_images=1,
    clips_per_class=1,
    s4_videos_per_category=1,
    ms3_videos_per_split=1,
    image_scale=0.3,
    s4_categories=1,
    vggsound_categories=7,
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict]:
    """The ``tiny`` corpus, written once through the CLI."""
    root = tmp_path_factory.mktemp("corpus") / "sample"
    result = CliRunner().invoke(app, ["sample-corpus", str(root), "--size", "tiny", "--seed", "0"])
    assert result.exit_code == 0, result.output
    return root, json.loads((root / "corpus.json").read_text())


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def _label_map(root: Path, rel: str) -> np.ndarray:
    return np.asarray(Image.open(root / rel))


def _shoelace(poly: list[float]) -> float:
    p = np.asarray(poly).reshape(-1, 2)
    x, y = p[:, 0], p[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


# ---------------------------------------------------------------------------------------------
# Category table.
# ---------------------------------------------------------------------------------------------


def test_category_table_has_the_zero_shot_pairs_with_real_ids():
    pairs = {(c.key, c.vggsound_label) for c in CATEGORIES}
    for pair in [
        ("ambulance", "ambulance siren"),
        ("cat", "cat meowing"),
        ("dog", "dog barking"),
        ("bus", "driving buses"),
        ("horse", "horse clip-clop"),
        ("lion", "lions roaring"),
        ("bird", "mynah bird singing"),
        ("guitar", "playing acoustic guitar"),
        ("piano", "playing piano"),
        ("computer_keyboard", "typing on computer keyboard"),
    ]:
        assert pair in pairs
    assert len(CATEGORIES) >= 12
    dog = category_by_key("dog")
    assert (dog.lvis_id, dog.coco_id, dog.openimages_mid, dog.s4_category) == (
        378,
        18,
        "/m/0bt9lr",
        "dog_barking",
    )
    bus = category_by_key("bus")
    assert (bus.lvis_name, bus.lvis_synset, bus.lvis_frequency) == (
        "bus_(vehicle)",
        "bus.n.01",
        "f",
    )
    assert category_by_key("person").vggsound_label == "male speech, man speaking"
    assert len({c.lvis_id for c in CATEGORIES}) == len(CATEGORIES)


# ---------------------------------------------------------------------------------------------
# Drawing and sound synthesis.
# ---------------------------------------------------------------------------------------------


def test_pictures_have_exact_polygons_disjoint_masks_and_distinct_categories():
    rng = np.random.default_rng(5)
    keys = [c.key for c in CATEGORIES]
    multi_part = 0
    for i in range(6):
        cats = keys[2 * i : 2 * i + 3]
        scene = compose_picture(rng, height=200, width=260, categories=cats, occluder=i % 2 == 0)
        assert len({o.category for o in scene.objects}) >= 2
        union = np.zeros((200, 260), dtype=int)
        for obj in scene.objects:
            assert np.array_equal(rasterize(obj.polygons, 200, 260), obj.mask)
            assert obj.area == obj.mask.sum() > 0
            union += obj.mask
            multi_part += len(obj.polygons) > 1
        assert union.max() == 1
    assert multi_part > 0


def test_trace_polygons_follows_a_mask_with_two_parts_and_a_hole():
    yy, xx = np.mgrid[0:80, 0:120]
    disc = (yy - 40) ** 2 + (xx - 35) ** 2 < 25**2
    hole = (yy - 40) ** 2 + (xx - 35) ** 2 < 6**2
    box = (yy > 20) & (yy < 60) & (xx > 75) & (xx < 110)
    mask = (disc & ~hole) | box
    polys = trace_polygons(mask)
    assert len(polys) == 2  # the hole is not a separate polygon: COCO polygons cannot hold one
    drawn = rasterize(polys, 80, 120)
    assert _iou(drawn, mask | hole) > 0.97


def test_sounds_vary_per_clip_and_are_reproducible():
    for label in RECIPES:
        a = synthesize_clip(label, np.random.default_rng(1), duration_s=2.0)
        b = synthesize_clip(label, np.random.default_rng(1), duration_s=2.0)
        c = synthesize_clip(label, np.random.default_rng(2), duration_s=2.0)
        assert a.dtype == np.float32 and a.shape == (32_000,)
        assert np.array_equal(a, b)
        assert not np.allclose(a, c)
        assert 0.1 < np.abs(a).max() <= 1.0


def test_tensor_pickle_is_byte_reproducible_and_loads_with_plain_pickle():
    t = torch.arange(5 * 96 * 64, dtype=torch.float32).reshape(5, 1, 96, 64) / 7
    data = tensor_pickle_bytes(t)
    assert data == tensor_pickle_bytes(t.clone())
    loaded = pickle.loads(data)
    assert isinstance(loaded, torch.Tensor) and torch.equal(loaded, t)


# ---------------------------------------------------------------------------------------------
# LVIS and COCO, read with the official APIs.
# ---------------------------------------------------------------------------------------------


def test_lvis_files_read_with_lvis_api_and_match_the_drawing(corpus):
    from lvis import LVIS

    root, info = corpus
    pictures = {p["image_id"]: p for p in info["pictures"] if p["source"] == "coco"}
    folders_in_val = set()
    for split in ("train", "val"):
        lvis = LVIS(str(root / f"lvis/lvis_v1_{split}.json"))
        cats = {c["id"]: c for c in lvis.dataset["categories"]}
        assert cats[378]["name"] == "dog" and cats[173]["synonyms"][0] == "bus_(vehicle)"
        assert len(lvis.dataset["images"]) == info["counts"][f"lvis_{split}_images"]
        for image in lvis.dataset["images"]:
            pic = pictures[str(image["id"])]
            folder = re.fullmatch(
                r"http://images\.cocodataset\.org/(train2017|val2017)/(\d{12}\.jpg)",
                image["coco_url"],
            )
            assert folder and (root / "coco" / folder[1] / folder[2]).is_file()
            folders_in_val.update([folder[1]] if split == "val" else [])
            labels = _label_map(root, pic["label_map"])
            assert labels.shape == (image["height"], image["width"])
            by_ann = {i["lvis_annotation_id"]: i for i in pic["instances"]}
            present = {category_by_key(i["category"]).lvis_id for i in pic["instances"]}
            assert not set(image["neg_category_ids"]) & present
            assert image["neg_category_ids"]
            anns = lvis.img_ann_map[image["id"]]
            for cat_id in image["not_exhaustive_category_ids"]:
                drawn = [
                    i for i in pic["instances"] if category_by_key(i["category"]).lvis_id == cat_id
                ]
                assert len(drawn) > sum(a["category_id"] == cat_id for a in anns)
            for ann in anns:
                inst = by_ann[ann["id"]]
                assert category_by_key(inst["category"]).lvis_id == ann["category_id"]
                mask = lvis.ann_to_mask(ann).astype(bool)
                assert _iou(mask, labels == inst["label"]) > 0.97
                assert ann["area"] == pytest.approx(mask.sum(), rel=0.01)
    assert folders_in_val == {"train2017", "val2017"}  # LVIS val draws from both, as in v1
    assert any(p["not_exhaustive_categories"] for p in pictures.values())


def test_coco_files_read_with_pycocotools_and_match_the_drawing(corpus):
    from pycocotools.coco import COCO

    root, info = corpus
    pictures = {p["image_id"]: p for p in info["pictures"] if p["source"] == "coco"}
    crowds = multi_part = 0
    for folder in ("train2017", "val2017"):
        coco = COCO(str(root / f"coco/annotations/instances_{folder}.json"))
        assert {c["id"] for c in coco.dataset["categories"]} <= {1, 6, 16, 17, 18, 19, 76}
        for image in coco.dataset["images"]:
            assert (root / "coco" / folder / image["file_name"]).is_file()
            pic = pictures[str(image["id"])]
            labels = _label_map(root, pic["label_map"])
            for ann in coco.imgToAnns[image["id"]]:
                members = [i for i in pic["instances"] if i["coco_annotation_id"] == ann["id"]]
                truth = np.isin(labels, [i["label"] for i in members])
                assert {category_by_key(i["category"]).coco_id for i in members} == {
                    ann["category_id"]
                }
                mask = coco.annToMask(ann).astype(bool)
                assert _iou(mask, truth) > 0.97
                assert ann["area"] == pytest.approx(mask.sum(), rel=0.01)
                if ann["iscrowd"]:
                    crowds += 1
                    assert isinstance(ann["segmentation"]["counts"], list) and len(members) > 1
                else:
                    assert len(members) == 1
                    polygon_area = sum(_shoelace(p) for p in ann["segmentation"])
                    assert polygon_area == pytest.approx(ann["area"], rel=0.06)
                    multi_part += len(ann["segmentation"]) > 1
            # COCO is exhaustive: every drawn instance of a COCO category is annotated.
            for inst in pic["instances"]:
                if category_by_key(inst["category"]).coco_id is not None:
                    assert inst["coco_annotation_id"] is not None
    assert crowds >= 1 and multi_part >= 1


# ---------------------------------------------------------------------------------------------
# Open Images.
# ---------------------------------------------------------------------------------------------


def test_openimages_csvs_zips_and_masks(corpus):
    root, info = corpus
    oi = root / "openimages"
    mids = {c.openimages_mid: c.key for c in CATEGORIES if c.openimages_mid}
    desc = pd.read_csv(oi / "oidv7-class-descriptions.csv")
    assert list(desc.columns) == ["LabelName", "DisplayName"]
    assert dict(zip(desc.LabelName, desc.DisplayName, strict=True))["/m/0bt9lr"] == "Dog"
    seg_classes = (oi / "classes-segmentation.txt").read_text().split()
    assert "/m/0bt9lr" in seg_classes and "/m/09ct_" not in seg_classes
    pictures = {p["image_id"]: p for p in info["pictures"] if p["source"] == "openimages"}
    checked = 0
    for split in ("train", "validation"):
        assert sorted(p.name for p in (oi / f"{split}-masks").iterdir()) == sorted(
            f"{split}-masks-{c}.zip" for c in "0123456789abcdef"
        )
        seg = pd.read_csv(oi / f"{split}-annotations-object-segmentation.csv", dtype=str)
        assert list(seg.columns) == [
            "MaskPath", "ImageID", "LabelName", "BoxID", "BoxXMin", "BoxXMax", "BoxYMin",
            "BoxYMax", "PredictedIoU", "Clicks",
        ]  # fmt: skip
        for row in seg.itertuples():
            assert re.fullmatch(r"[0-9a-f]{16}", row.ImageID)
            assert row.MaskPath == f"{row.ImageID}_{row.LabelName.replace('/', '')}_{row.BoxID}.png"
            pic = pictures[row.ImageID]
            image = Image.open(root / pic["path"])
            inst = next(i for i in pic["instances"] if i["openimages_mask"] == row.MaskPath)
            assert inst["openimages_zip"].endswith(f"{split}-masks-{row.ImageID[0]}.zip")
            assert mids[row.LabelName] == inst["category"]
            with zipfile.ZipFile(root / inst["openimages_zip"]) as zf:
                mask_png = Image.open(io.BytesIO(zf.read(row.MaskPath)))
            assert mask_png.size != image.size
            resized = np.asarray(mask_png.convert("L").resize(image.size, Image.NEAREST)) > 0
            truth = _label_map(root, pic["label_map"]) == inst["label"]
            assert _iou(resized, truth) > 0.95
            x, y, w, h = inst["bbox"]
            assert float(row.BoxXMin) == pytest.approx(x / image.width, abs=1e-5)
            assert float(row.BoxYMax) == pytest.approx((y + h) / image.height, abs=1e-5)
            clicks = [c.split() for c in row.Clicks.split(";")]
            assert all(len(c) == 3 and c[2] in "01" for c in clicks)
            checked += 1
        labels = pd.read_csv(oi / f"{split}-annotations-human-imagelabels.csv", dtype=str)
        assert list(labels.columns) == ["ImageID", "Source", "LabelName", "Confidence"]
        assert set(labels.Confidence) == {"0", "1"}
        for row in labels.itertuples():
            present = {i["category"] for i in pictures[row.ImageID]["instances"]}
            assert (mids[row.LabelName] in present) == (row.Confidence == "1")
    assert checked == info["counts"]["openimages_masks"] > 0


# ---------------------------------------------------------------------------------------------
# VGGSound.
# ---------------------------------------------------------------------------------------------


def test_vggsound_csv_and_clips(corpus):
    root, info = corpus
    text = (root / "vggsound/vggsound.csv").read_text()
    assert not text.startswith("youtube_id")
    assert '"male speech, man speaking"' in text and '"playing violin, fiddle"' in text
    rows = list(csv.reader(io.StringIO(text)))
    assert all(len(r) == 4 and r[1].isdigit() and r[3] in ("train", "test") for r in rows)
    assert {r[2] for r in rows} == {c.vggsound_label for c in CATEGORIES}
    ids = [r[0] for r in rows]
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{11}", y) for y in ids)
    assert any("_" in y for y in ids) and any("-" in y for y in ids)
    patterns, formats = set(), set()
    for clip in info["clips"]:
        assert [
            clip["youtube_id"],
            str(clip["start_seconds"]),
            clip["label"],
            clip["split"],
        ] in rows
        if clip["path"] is None:
            assert not list((root / "vggsound/clips").glob(f"{clip['youtube_id']}_*"))
            continue
        path = root / clip["path"]
        y, s = clip["youtube_id"], clip["start_seconds"]
        stem = path.stem
        patterns.add(
            {f"{y}_{s:06d}": "padded", f"{y}_{s}": "plain", f"{y}_{s}_{s + 10}": "range"}[stem]
        )
        formats.add(path.suffix)
        if path.suffix == ".mp4":  # written and read through PyAV: no ffmpeg program
            audio = load_audio(path)
            assert len(audio) == 160_000 and np.sqrt(np.mean(audio**2)) > 0.01
            continue
        audio, rate = sf.read(path, dtype="float32")
        assert rate == 16_000 and audio.shape == (160_000,)
        if clip["silent_stretch"]:  # at least 0.8 s below -45 dBFS, and loud elsewhere
            windows = audio.reshape(-1, 800)  # 50 ms windows
            quiet = np.sqrt(np.mean(windows**2, axis=1)) < 10 ** (-45 / 20)
            run = max(len(r) for r in "".join("1" if q else " " for q in quiet).split() or [""])
            assert run >= 16 and np.abs(audio).max() > 0.3
    assert patterns == {"padded", "plain", "range"}
    assert {".wav", ".flac", ".ogg"} <= formats
    assert (".mp4" in formats) == info["mp4_written"]
    assert sum(c["path"] is None for c in info["clips"]) == 2  # one undownloaded clip per split


def _features(frontend: LogMelFrontend, audio: np.ndarray) -> np.ndarray:
    log_mel = frontend(torch.from_numpy(audio.astype(np.float32)))  # [frames, 64]
    energy = log_mel.mean(dim=1)
    active = log_mel[energy > energy.max() - 5.0]
    flux = (log_mel[1:] - log_mel[:-1]).abs().mean(dim=0)
    return torch.cat([active.mean(0), active.std(0), flux]).numpy()


@pytest.fixture(scope="module")
def classify(corpus):
    """Nearest-centroid audio classifier fitted on the corpus's VGGSound train clips."""
    root, info = corpus
    frontend = LogMelFrontend()
    train = [
        (c["label"], sf.read(root / c["path"], dtype="float32")[0])
        for c in info["clips"]
        if c["split"] == "train" and c["path"] and not c["path"].endswith(".mp4")
    ]
    feats = np.stack([_features(frontend, a) for _, a in train])
    mean, std = feats.mean(0), feats.std(0) + 1e-6
    labels = sorted({label for label, _ in train})
    cents = np.stack(
        [((feats - mean) / std)[[lab == label for lab, _ in train]].mean(0) for label in labels]
    )

    def classify(audio: np.ndarray) -> str:
        z = (_features(frontend, audio) - mean) / std
        return labels[int(np.argmin(((cents - z) ** 2).sum(1)))]

    return classify


def test_audio_classes_are_acoustically_distinct(corpus, classify):
    root, info = corpus
    test = [
        c for c in info["clips"] if c["split"] == "test" and c["path"] and c["path"][-4:] != ".mp4"
    ]
    correct = [classify(sf.read(root / c["path"], dtype="float32")[0]) == c["label"] for c in test]
    assert np.mean(correct) >= 0.85, f"{np.mean(correct):.2f} of test clips by nearest centroid"
    # The spectral centroid separates the extremes by a wide margin.
    centroid = {}
    for c in info["clips"]:
        if c["path"] and c["path"][-4:] != ".mp4":
            a = sf.read(root / c["path"], dtype="float32")[0]
            spec = np.abs(np.fft.rfft(a))
            freqs = np.fft.rfftfreq(len(a), 1 / 16_000)
            centroid.setdefault(c["label"], []).append(float((spec * freqs).sum() / spec.sum()))
    assert min(centroid["mynah bird singing"]) > 2 * max(centroid["driving buses"])


# ---------------------------------------------------------------------------------------------
# AVSBench.
# ---------------------------------------------------------------------------------------------


def test_s4_layout_masks_audio_and_log_mel(corpus, classify):
    root, info = corpus
    base = root / "avsbench/Single-source"
    meta = pd.read_csv(base / "s4_meta_data.csv", dtype={"name": str})
    assert list(meta.columns) == ["name", "start", "category", "split"]
    assert set(meta.split) == {"train", "val", "test"}
    videos = {v["name"]: v for v in info["videos"] if v["subset"] == "s4"}
    assert len(meta) == len(videos) == info["counts"]["s4_videos"]
    s4_of = {c.key: c.s4_category for c in CATEGORIES}
    agree = []
    for row in meta.itertuples():
        video = videos[row.name]
        folder = base / "s4_data"
        for k in range(1, 6):
            frame = (
                folder / f"visual_frames/{row.split}/{row.category}/{row.name}/{row.name}_{k}.png"
            )
            image = Image.open(frame)
            assert image.size == (224, 224) and image.mode == "RGB"
            mask_path = (
                folder / f"gt_masks/{row.split}/{row.category}/{row.name}/{row.name}_{k}.png"
            )
            assert mask_path.exists() == (row.split != "train" or k == 1)
            labels = _label_map(root, video["label_maps"][k - 1])
            sounding = [i for i in video["instances"] if i["sounding_seconds"]]
            assert len(sounding) == 1 and s4_of[sounding[0]["category"]] == row.category
            silent = [i for i in video["instances"] if not i["sounding_seconds"]]
            assert silent and all(i["category"] != sounding[0]["category"] for i in silent)
            if mask_path.exists():
                mask = np.asarray(Image.open(mask_path))
                assert set(np.unique(mask)) <= {0, 255}
                assert np.array_equal(mask > 0, labels == sounding[0]["label"])
        wav = folder / f"audio_wav/{row.split}/{row.category}/{row.name}.wav"
        samples, rate = sf.read(wav, dtype="int16")
        assert rate == 16_000 and samples.shape == (80_000,)
        with open(folder / f"audio_log_mel/{row.split}/{row.category}/{row.name}.pkl", "rb") as f:
            log_mel = pickle.load(f)
        assert log_mel.shape == (5, 1, 96, 64) and log_mel.dtype == torch.float32
        assert torch.equal(log_mel, waveform_to_examples(samples, 16_000, num_examples=5))
        label = category_by_key(video["sounding"][0]).vggsound_label
        agree.append(classify(samples.astype(np.float32) / 32768.0) == label)
    assert np.mean(agree) >= 0.75  # the S4 audio is the sounding object's class


def test_ms3_layout_palette_masks_follow_the_sounding_seconds(corpus):
    root, info = corpus
    base = root / "avsbench/Multi-sources"
    meta = pd.read_csv(base / "ms3_meta_data.csv", dtype=str)
    assert list(meta.columns)[1] == "split" and set(meta.split) == {"train", "val", "test"}
    videos = {v["name"]: v for v in info["videos"] if v["subset"] == "ms3"}
    for name, split in zip(meta.iloc[:, 0], meta.split, strict=True):
        video = videos[name]
        sounding = [i for i in video["instances"] if i["sounding_seconds"]]
        assert len(sounding) == 2 and len(video["instances"]) >= 3
        for k in range(1, 6):
            assert Image.open(base / f"ms3_data/visual_frames/{name}/{name}.mp4_{k}.png").size == (
                224,
                224,
            )
            mask = Image.open(base / f"ms3_data/gt_masks/{split}/{name}/{name}_{k}.png")
            assert mask.mode == "P"
            active = [i["label"] for i in sounding if k in i["sounding_seconds"]]
            truth = np.isin(_label_map(root, video["label_maps"][k - 1]), active)
            assert np.array_equal(np.asarray(mask) > 0, truth)
        samples, _ = sf.read(base / f"ms3_data/audio_wav/{split}/{name}.wav", dtype="int16")
        with open(base / f"ms3_data/audio_log_mel/{split}/{name}.pkl", "rb") as f:
            log_mel = pickle.load(f)
        assert torch.equal(log_mel, waveform_to_examples(samples, 16_000, num_examples=5))


# ---------------------------------------------------------------------------------------------
# Determinism and the output folder.
# ---------------------------------------------------------------------------------------------


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.slow  # three small generations, about 5 s
def test_same_seed_gives_identical_files_and_another_seed_differs(tmp_path):
    first = write_sample_corpus(tmp_path / "a", seed=1, size=MICRO)
    write_sample_corpus(tmp_path / "b", seed=1, size=MICRO)
    a, b = _hashes(tmp_path / "a"), _hashes(tmp_path / "b")
    assert a == b and len(a) > 100
    assert any(p.endswith(".ogg") for p in a) and any(p.endswith(".pkl") for p in a)
    assert first.mp4_written and any(p.endswith(".mp4") for p in a)
    with pytest.raises(FileExistsError, match="overwrite"):
        write_sample_corpus(tmp_path / "a", seed=2, size=MICRO)
    write_sample_corpus(tmp_path / "a", seed=2, size=MICRO, overwrite=True)
    c = _hashes(tmp_path / "a")
    unchanged = set(c.values()) & set(a.values())  # empty mask zips, class lists
    assert len(unchanged) < 0.1 * len(c)
