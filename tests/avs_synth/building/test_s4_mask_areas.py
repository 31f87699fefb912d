"""``--crop object --avsbench ROOT``: crop areas drawn from the S4 train masks' areas."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import webdataset as wds
from PIL import Image
from typer.testing import CliRunner

from avs_synth import schema
from avs_synth.building.config import BuildConfig
from avs_synth.building.framing import AREA_BINS, MaskAreaHistogram, draw_area_fraction
from avs_synth.building.s4_mask_areas import S4_TRAIN_MASKS, measure_s4_mask_areas
from avs_synth.building.splits import SplitFractions
from avs_synth.errors import DataFormatError
from avs_synth_cli.synth import app
from tests.support.build_support import build_sample, sample_corpus

H, W = 40, 50  # 2,000 pixels

# train masks: (name, filled pixels or a special case)
TRAIN = [
    ("dogA", 200),  # 0.10
    ("dogB", 240),  # 0.12
    ("dogC", 620),  # 0.31
    ("catA", 660),  # 0.33
    ("catB", 1240),  # 0.62
    ("catC", 0),  # empty: left out, counted
    ("catD", "missing"),
    ("catE", "corrupt"),
    ("catF", "grey"),  # a 50 % grey frame: the official S4 reading dithers it to about half
]


def _mask(pixels: int) -> np.ndarray:
    mask = np.zeros(H * W, dtype=np.uint8)
    mask[:pixels] = 255
    return mask.reshape(H, W)


def write_fake_s4(root: Path) -> Path:
    """An AVSBench S4 tree in the release layout: meta CSV and ground-truth masks (train: frame 1
    only), plus a val video whose large mask must not count."""
    single = root / "Single-source"
    data = single / "s4_data"
    rows = ["name,start,category,split"]
    for name, pixels in [*TRAIN, ("dogV", 1900)]:
        category = "dog" if name.startswith("dog") else "cat"
        split = "val" if name == "dogV" else "train"
        rows.append(f"{name},0,{category},{split}")
        path = data / "gt_masks" / split / category / name / f"{name}_1.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        if pixels == "missing":
            continue
        if pixels == "corrupt":
            path.write_bytes(b"\x89PNG not really")
        elif pixels == "grey":
            Image.fromarray(np.full((H, W), 128, dtype=np.uint8)).save(path)
        else:
            Image.fromarray(_mask(pixels)).save(path)
    (single / "s4_meta_data.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


def test_the_histogram_counts_train_masks_read_as_the_official_loader_does(tmp_path) -> None:
    hist = measure_s4_mask_areas(write_fake_s4(tmp_path / "AVSBench"))
    assert hist.source == S4_TRAIN_MASKS
    assert (hist.masks, hist.empty, hist.skipped) == (6, 1, 2)
    expected = [0] * AREA_BINS
    for b in (2, 2, 6, 6, 12):  # 0.10, 0.12, 0.31, 0.33, 0.62; the val mask (0.95) not counted
        expected[b] += 1
    grey = [i for i, (a, e) in enumerate(zip(hist.counts, expected, strict=True)) if a != e]
    assert len(grey) == 1 and grey[0] in (9, 10)  # dithered to about half, not 0 or 1
    assert hist.counts[grey[0]] == 1


def test_no_readable_train_mask_is_a_clear_error(tmp_path) -> None:
    root = tmp_path / "AVSBench"
    single = root / "Single-source"
    (single / "s4_data" / "gt_masks").mkdir(parents=True)
    (single / "s4_meta_data.csv").write_text("name,start,category,split\nx,0,dog,train\n")
    with pytest.raises(DataFormatError, match="no readable non-empty S4 train mask"):
        measure_s4_mask_areas(root)
    with pytest.raises(FileNotFoundError, match="no AVSBench S4 layout"):
        measure_s4_mask_areas(tmp_path / "nothing")


def test_drawn_fractions_follow_the_histogram() -> None:
    counts = [0] * AREA_BINS
    counts[2], counts[6], counts[12] = 1, 2, 1
    hist = MaskAreaHistogram(counts=tuple(counts), source="test", masks=4)
    draws = [draw_area_fraction(hist, seed=3, key=f"k{n}") for n in range(4000)]
    assert draws[:5] == [draw_area_fraction(hist, seed=3, key=f"k{n}") for n in range(5)]
    bins = np.bincount([int(d * AREA_BINS) for d in draws], minlength=AREA_BINS)
    assert set(np.nonzero(bins)[0]) == {2, 6, 12}
    assert bins[[2, 6, 12]] / len(draws) == pytest.approx([0.25, 0.5, 0.25], abs=0.03)
    with pytest.raises(ValueError, match="at least one mask"):
        MaskAreaHistogram(counts=(0,) * AREA_BINS, source="x", masks=0)
    with pytest.raises(ValueError, match="crop object"):
        BuildConfig(crop_areas=hist)


def test_build_draws_each_crop_area_from_the_s4_histogram(tmp_path_factory, tmp_path) -> None:
    corpus = sample_corpus(tmp_path_factory)
    avsbench = write_fake_s4(tmp_path / "AVSBench")
    out = tmp_path / "out"
    paths = {
        "--corpus": corpus / "corpus",
        "--matches": corpus / "matches.csv",
        "--avsbench": avsbench,
        "--out": out,
    }
    args = [part for option, path in paths.items() for part in (option, str(path))]
    settings = "--crop object --splits 0.6,0.2,0.2 --min-mask-area 0 --max-per-picture 0"
    result = CliRunner().invoke(
        app, ["build", *args, *settings.split(), "--no-audio-bank", "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    areas = manifest["config"]["crop"]["area_distribution"]
    hist = measure_s4_mask_areas(avsbench)
    assert areas["counts"] == list(hist.counts) and areas["masks"] == 6
    assert areas["bin_edges"][0] == 0 and areas["bin_edges"][-1] == 1 and len(areas["counts"]) == 20
    config = BuildConfig(
        fractions=SplitFractions(train=0.6, val=0.2, test=0.2),
        min_mask_area=0.0,
        max_per_picture=0,
        crop="object",
        crop_areas=hist,
        audio_bank=False,
    )
    again = tmp_path / "again"
    build_sample(corpus, config, again, workers=2)
    names = sorted(p.name for p in out.glob("*.tar"))
    assert names == sorted(p.name for p in again.glob("*.tar"))
    for name in names:  # the library call with the measured histogram makes the same shards
        assert (out / name).read_bytes() == (again / name).read_bytes()
    urls = [str(out / name) for name in names]
    checked = 0
    for raw in wds.WebDataset(urls, shardshuffle=False):
        m = schema.decode_triplet(raw).meta
        if m.negative or m.crop is None:
            continue
        target = draw_area_fraction(hist, seed=0, key=m.key)
        # the crop aims at the drawn share, unless the mask's box needs a larger crop (then the
        # box spans the crop's width or height) or the crop meets the picture's size
        x, y, w, h = m.crop
        _, _, box_w, box_h = m.bbox
        grown = box_w >= w - 2 or box_h >= h - 2
        clipped = w == m.original_width or h == m.original_height
        if not (grown or clipped):
            assert m.area / (w * h) == pytest.approx(target, rel=0.06)
            checked += 1
    assert checked > 0
    inspect = CliRunner().invoke(app, ["inspect", str(out), "--samples", "0"])
    assert f"drawn from {S4_TRAIN_MASKS} (6 masks; 1 empty and 2 unreadable left out)" in (
        inspect.output
    )
