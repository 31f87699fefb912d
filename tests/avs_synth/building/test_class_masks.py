"""``--class-masks``: a class-indexed label map beside the binary mask."""

from __future__ import annotations

import json

import numpy as np
import pytest
import webdataset as wds

from avs_synth import schema
from avs_synth.building.config import BuildConfig
from avs_synth.building.splits import SplitFractions
from tests.support.build_support import build_sample, sample_corpus


@pytest.mark.parametrize("sources", [(), ((2, 1.0), (3, 1.0))], ids=["single", "multi"])
def test_label_maps_match_the_masks_and_the_class_table(tmp_path_factory, tmp_path, sources):
    corpus = sample_corpus(tmp_path_factory)
    config = BuildConfig(
        fractions=SplitFractions(train=0.6, val=0.2, test=0.2),
        min_mask_area=0.0,
        max_per_picture=0,
        negative_ratio=0.5,
        negatives=("absent", "noise"),
        sources=sources,
        class_masks=True,
        shard_size=50,
        audio_bank=False,
        max_side=200,
    )
    build_sample(corpus, config, tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["config"]["class_masks"]["member"] == schema.CLASS_MASK
    index = {c["label"]: c["index"] for c in manifest["audio_classes"]}
    urls = [str(p) for p in sorted(tmp_path.glob("*.tar"))]
    seen_multi = False
    for raw in wds.WebDataset(urls, shardshuffle=False):
        t = schema.decode_triplet(raw)
        labels = schema.decode_class_mask(raw[schema.CLASS_MASK])
        assert labels.shape == t.mask.shape
        assert np.array_equal(labels > 0, t.mask)
        if t.meta.negative:
            assert not labels.any()
            continue
        classes = (
            [s.audio_class for s in t.meta.sources] if t.meta.sources else [t.meta.audio_class]
        )
        assert set(np.unique(labels[labels > 0]).tolist()) <= {index[c] + 1 for c in classes}
        assert (labels == index[classes[0]] + 1).any()
        seen_multi |= len(set(np.unique(labels[labels > 0]).tolist())) > 1
    assert seen_multi == bool(sources)


def test_wide_label_maps_round_trip() -> None:
    labels = np.array([[0, 1, 300], [65535, 2, 0]])
    assert np.array_equal(schema.decode_class_mask(schema.encode_class_mask(labels)), labels)
    small = np.array([[0, 5]])
    assert np.array_equal(schema.decode_class_mask(schema.encode_class_mask(small)), small)
    with pytest.raises(ValueError, match="65535"):
        schema.encode_class_mask(np.array([[70000]]))
