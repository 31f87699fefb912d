"""Small real-format inputs for the build tests (JPEGs, FLAC clips, hand-made records)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

from avs_synth.building.plan import CategoryMatch
from avs_synth.records import AudioClip, ImageRecord, Instance, PolygonSegmentation

SR = 16000
DOG, CAT = "dog barking", "cat meowing"


def write_jpeg(path: Path, width: int, height: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format="JPEG", quality=90)
    return path


def write_clip(path: Path, levels: list[float], *, rate: int = SR, seed: int = 0) -> Path:
    """A FLAC clip, one second per entry of ``levels`` (noise of that amplitude; 0 = silence)."""
    rng = np.random.default_rng(seed)
    parts = [a * rng.uniform(-1, 1, size=rate) for a in levels]
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.concatenate(parts).astype(np.float32), rate, format="FLAC", subtype="PCM_16")
    return path


def box(x: float, y: float, w: float, h: float) -> PolygonSegmentation:
    return PolygonSegmentation(polygons=((x, y, x + w, y, x + w, y + h, x, y + h),))


def instance(iid: str, cat: str, name: str, x: int, y: int, w: int, h: int, **kw) -> Instance:
    return Instance(
        instance_id=iid,
        category_id=cat,
        category_name=name,
        bbox=(float(x), float(y), float(w), float(h)),
        area=float(w * h),
        segmentation=kw.pop("segmentation", box(x, y, w, h)),
        **kw,
    )


MATCHES = [
    CategoryMatch(source="lvis", visual_id="3", visual_name="dog", vggsound_label=DOG),
    CategoryMatch(source="lvis", visual_id="4", visual_name="cat", vggsound_label=CAT),
    CategoryMatch(source="coco", visual_id="18", visual_name="dog", vggsound_label=DOG),
    CategoryMatch(source="coco", visual_id="17", visual_name="cat", vggsound_label=CAT),
]


def make_world(root: Path, *, pictures: int = 16, clip_seconds: int = 3):
    """Pictures (LVIS ids 0..n-1, COCO ids n/2..n+n/2-1 so half overlap) with dogs and cats,
    and VGGSound clips (4 train, 4 test per class). Returns (records, clips)."""
    W, H = 64, 48
    records: list[ImageRecord] = []
    for n in range(pictures):
        path = write_jpeg(root / "images" / f"{n:012d}.jpg", W, H, seed=n)
        insts = [instance(f"{n}01", "3", "dog", 2, 2, 20, 16)]
        if n % 2:
            insts.append(instance(f"{n}02", "3", "dog", 30, 20, 12, 12))
        if n % 3 == 0:
            insts.append(instance(f"{n}03", "4", "cat", 40, 4, 16, 20))
        records.append(
            ImageRecord(
                source="lvis",
                image_id=str(n),
                path=path,
                width=W,
                height=H,
                instances=tuple(insts),
                negative_category_ids=("4",) if n % 3 == 1 else (),
                license="CC BY 2.0",
                attribution=f"https://example.org/{n}",
            )
        )
    for n in range(pictures // 2, pictures + pictures // 2):
        path = root / "images" / f"{n:012d}.jpg"
        if not path.exists():
            write_jpeg(path, W, H, seed=n)
        records.append(
            ImageRecord(
                source="coco",
                image_id=str(n),
                path=path,
                width=W,
                height=H,
                instances=(instance(f"c{n}", "18", "dog", 10, 10, 30, 20),),
                exhaustive=True,
            )
        )
    clips: list[AudioClip] = []
    for label, tag in ((DOG, "d"), (CAT, "c")):
        for k in range(8):
            split = "train" if k < 4 else "test"
            ytid = f"{tag}{k}-x_y"
            levels = [0.0 if (s + k) % 3 == 0 else 0.3 for s in range(clip_seconds)]
            path = write_clip(root / "clips" / f"{ytid}_{k:06d}.flac", levels, seed=k)
            clips.append(
                AudioClip(youtube_id=ytid, start_seconds=k, label=label, split=split, path=path)
            )
    return records, clips


# --- the sample corpus ----------------------------------------------------------------------


def corpus_matches(path: Path) -> Path:
    """A matching table for the sample corpus's categories (real ids), with one rejected and one
    pending row that the build must ignore."""
    import csv

    from avs_synth.sample_corpus.categories import CATEGORIES

    header = "source,visual_id,visual_name,vggsound_label,score,method,decision,note"
    rows = []
    for c in CATEGORIES:
        rows.append(["lvis", c.lvis_id, c.lvis_name, c.vggsound_label, 100, "test", "accepted", ""])
        if c.coco_id is not None:
            decision = "rejected" if c.key == "dog" else "accepted"
            rows.append(
                ["coco", c.coco_id, c.coco_name, c.vggsound_label, 100, "test", decision, ""]
            )
        if c.openimages_mid is not None:
            rows.append(
                [
                    "openimages",
                    c.openimages_mid,
                    c.openimages_name,
                    c.vggsound_label,
                    100,
                    "test",
                    "accepted",
                    "",
                ]
            )
    rows.append(["lvis", 225, "cat", "lions roaring", 40, "test", "pending", "review: unsure"])
    with path.open("w", newline="", encoding="utf-8") as handle:
        handle.write(header + "\n")
        csv.writer(handle).writerows(rows)
    return path


def sample_corpus(tmp_path_factory) -> Path:
    """A small sample corpus (no AVSBench), written once per test session."""
    from avs_synth.sample_corpus.summary import CorpusSize
    from avs_synth.sample_corpus.writer import write_sample_corpus

    root = tmp_path_factory.getbasetemp() / "avs_build_sample_corpus"
    done = root / "DONE"
    if not done.exists():
        size = CorpusSize(
            lvis_train_images=6,
            lvis_val_images=4,
            coco_only_images=2,
            openimages_train_images=5,
            openimages_val_images=2,
            clips_per_class=2,
            s4_videos_per_category=0,
            ms3_videos_per_split=0,
            image_scale=0.5,
            s4_categories=0,
        )
        write_sample_corpus(root / "corpus", seed=0, size=size, overwrite=True)
        corpus_matches(root / "matches.csv")
        done.write_text("ok")
    return root


def build_sample(corpus: Path, config, out: Path, *, workers: int = 1):
    """``avs-synth build`` of the :func:`sample_corpus` folder ``corpus`` (with its matches.csv)
    into ``out``, without a progress bar; returns the build's summary."""
    from avs_synth.building.config import RunOptions
    from avs_synth.building.inputs import corpus_inputs
    from avs_synth.building.run import build_dataset

    inputs = corpus_inputs(corpus / "corpus", matches=corpus / "matches.csv")
    return build_dataset(
        inputs=inputs, config=config, out=out, run=RunOptions(progress=False, workers=workers)
    )


def built_fixture(config, name: str):
    """A module-scoped fixture ``built``: the ``corpus`` fixture built with ``config`` (a
    BuildConfig, or a function giving one) into a fresh folder named after ``name``."""
    import pytest

    @pytest.fixture(scope="module")
    def built(corpus: Path, tmp_path_factory) -> Path:
        out = tmp_path_factory.mktemp(name) / "out"
        assert build_sample(corpus, config() if callable(config) else config, out)
        return out

    return built


def shard_digests(folder: Path) -> dict[str, str]:
    """Shard name -> sha256 of every ``*.tar`` in ``folder``."""
    import hashlib

    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("*.tar")}
