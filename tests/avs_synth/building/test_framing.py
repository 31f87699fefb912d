"""``--crop object``: crops around the sounding mask, geometry and build."""

from __future__ import annotations

import json

import numpy as np
import pytest
import webdataset as wds
from hypothesis import given, settings
from hypothesis import strategies as st

from avs_synth import schema
from avs_synth.building.config import BuildConfig, RunOptions
from avs_synth.building.framing import object_crop_box
from avs_synth.building.inputs import corpus_inputs
from avs_synth.building.run import build_dataset
from avs_synth.building.splits import SplitFractions
from tests.support.build_support import sample_corpus


def test_a_small_central_object_is_framed_to_the_fraction() -> None:
    mask = np.zeros((100, 200), dtype=bool)
    mask[40:50, 90:110] = True  # 200 px of 20,000: 1 %
    x, y, w, h = object_crop_box(mask, 0.25)
    assert w / h == pytest.approx(2.0, abs=0.05)
    assert mask[y : y + h, x : x + w].sum() == 200
    assert 200 / (w * h) == pytest.approx(0.25, rel=0.05)
    assert (x + w / 2, y + h / 2) == pytest.approx((100, 45), abs=1)


def test_large_masks_and_masks_near_the_edge() -> None:
    big = np.zeros((50, 50), dtype=bool)
    big[:30, :30] = True
    assert object_crop_box(big, 0.3) is None  # already 36 %
    corner = np.zeros((100, 100), dtype=bool)
    corner[0:4, 0:4] = True
    assert object_crop_box(corner, 0.25) == (0, 0, 8, 8)
    thin = np.zeros((100, 100), dtype=bool)
    thin[50, 10:90] = True  # 80 px wide: the crop grows to hold it
    x, y, w, h = object_crop_box(thin, 0.5)
    assert w >= 80 and x <= 10 and x + w >= 90
    with pytest.raises(ValueError, match="empty"):
        object_crop_box(np.zeros((4, 4), dtype=bool), 0.5)


@settings(max_examples=60, deadline=None)
@given(
    h=st.integers(8, 60),
    w=st.integers(8, 60),
    box=st.tuples(st.floats(0, 1), st.floats(0, 1), st.floats(0.02, 1), st.floats(0.02, 1)),
    fraction=st.floats(0.05, 0.95),
)
def test_crops_stay_inside_and_keep_the_whole_mask(h, w, box, fraction) -> None:
    mask = np.zeros((h, w), dtype=bool)
    x0, y0 = int(box[0] * (w - 1)), int(box[1] * (h - 1))
    mask[y0 : y0 + max(1, int(box[3] * h)), x0 : x0 + max(1, int(box[2] * w))] = True
    crop = object_crop_box(mask, fraction)
    if crop is None:
        return
    x, y, cw, ch = crop
    assert 0 <= x and 0 <= y and x + cw <= w and y + ch <= h and cw >= 1 and ch >= 1
    assert mask[y : y + ch, x : x + cw].sum() == mask.sum()
    assert mask.sum() / (cw * ch) > mask.sum() / (w * h)


def _whole_and_framed(
    tmp_path_factory, tmp_path, base: dict, area: float
) -> dict[str, dict[str, dict]]:
    """The raw samples by key of a build without and one with ``--crop object``."""
    corpus = sample_corpus(tmp_path_factory)
    inputs = corpus_inputs(corpus / "corpus", matches=corpus / "matches.csv")
    built = {}
    for name, extra in (("whole", {}), ("framed", {"crop": "object", "crop_area_fraction": area})):
        out = tmp_path / name
        build_dataset(
            inputs=inputs,
            config=BuildConfig(**base, **extra),
            out=out,
            run=RunOptions(progress=False),
        )
        urls = [str(p) for p in sorted(out.glob("*.tar"))]
        built[name] = {s["__key__"]: s for s in wds.WebDataset(urls, shardshuffle=False)}
    return built


def test_build_crops_positives_around_their_mask(tmp_path_factory, tmp_path) -> None:
    base = dict(
        fractions=SplitFractions(train=0.6, val=0.2, test=0.2),
        min_mask_area=0.0,
        max_per_picture=0,
        negative_ratio=0.3,
        shard_size=100,
        audio_bank=False,
    )
    built = _whole_and_framed(tmp_path_factory, tmp_path, base, 0.3)
    metas = {
        name: {key: schema.decode_triplet(s) for key, s in samples.items()}
        for name, samples in built.items()
    }
    manifest = json.loads((tmp_path / "framed" / "manifest.json").read_text())
    assert manifest["config"]["crop"] == {"mode": "object", "area_fraction": 0.3}
    assert metas["whole"].keys() == metas["framed"].keys()
    cropped = 0
    for key, framed in metas["framed"].items():
        whole = metas["whole"][key]
        crop = framed.meta.crop
        if framed.meta.negative or crop is None:
            assert crop is None and np.array_equal(framed.mask, whole.mask)
            if not framed.meta.negative:
                assert whole.meta.area_fraction >= 0.3
            continue
        cropped += 1
        x, y, w, h = crop
        assert np.array_equal(framed.mask, whole.mask[y : y + h, x : x + w])
        assert framed.image.size == (w, h) and framed.meta.image_reencoded
        assert framed.meta.area == whole.meta.area  # the whole mask is kept
        assert framed.meta.area_fraction > whole.meta.area_fraction
    assert cropped > 0


def test_multi_source_crops_hold_every_source(tmp_path_factory, tmp_path) -> None:
    base = dict(
        fractions=SplitFractions(train=0.6, val=0.2, test=0.2),
        min_mask_area=0.0,
        max_per_picture=0,
        sources=((1, 0.2), (2, 0.5), (3, 0.3)),
        pan="linear",
        class_masks=True,
        shard_size=100,
        audio_bank=False,
    )
    built = {
        name: {
            key: (schema.decode_triplet(s), schema.decode_class_mask(s[schema.CLASS_MASK]))
            for key, s in samples.items()
        }
        for name, samples in _whole_and_framed(tmp_path_factory, tmp_path, base, 0.5).items()
    }
    assert built["whole"].keys() == built["framed"].keys()
    cropped_multi = 0
    for key, (framed, framed_labels) in built["framed"].items():
        whole, whole_labels = built["whole"][key]
        crop = framed.meta.crop
        if crop is None:
            assert np.array_equal(framed.mask, whole.mask)
            continue
        x, y, w, h = crop
        assert np.array_equal(framed.mask, whole.mask[y : y + h, x : x + w])
        assert np.array_equal(framed_labels, whole_labels[y : y + h, x : x + w])
        assert framed.meta.area == whole.meta.area  # the union, so every source, is inside
        for mine, theirs in zip(framed.meta.sources, whole.meta.sources, strict=True):
            assert mine.audio_class == theirs.audio_class and mine.gain_db == theirs.gain_db
            # the pan follows the source's place in the crop, not in the source picture
            assert mine.pan == pytest.approx((theirs.pan * whole.meta.width - x) / w, abs=2e-4)
        cropped_multi += framed.meta.num_sources > 1
    assert cropped_multi > 0
