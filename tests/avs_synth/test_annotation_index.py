"""The annotation index: segmentations written while planning read back exactly."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycocotools import mask as mask_utils

from avs_synth.annotation_index import (
    AnnotationIndexWriter,
    decode_segmentation,
    encode_segmentation,
    read_segmentation,
)
from avs_synth.errors import DataFormatError
from avs_synth.masks import decode_mask
from avs_synth.records import PolygonSegmentation, RLESegmentation, StoredSegmentation

coordinates = st.floats(allow_nan=True, allow_infinity=True, width=64)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(coordinates, max_size=40), min_size=0, max_size=4))
def test_polygons_round_trip_bit_for_bit(parts):
    seg = PolygonSegmentation(polygons=tuple(tuple(p) for p in parts))
    back = decode_segmentation(encode_segmentation(seg))
    assert isinstance(back, PolygonSegmentation) and len(back.polygons) == len(parts)
    for ours, theirs in zip(back.polygons, seg.polygons, strict=True):
        assert [math.copysign(1, v) if math.isnan(v) else v for v in ours] == [
            math.copysign(1, v) if math.isnan(v) else v for v in theirs
        ]
        assert np.array(ours, dtype="<f8").tobytes() == np.array(theirs, dtype="<f8").tobytes()


def test_rle_and_references_through_a_file(tmp_path):
    polygon = PolygonSegmentation(polygons=((1.25, 1.0, 4.0, 1.0, 4.0, 3.5, 1.0, 3.0),))
    encoded = mask_utils.frPyObjects({"size": [5, 6], "counts": [3, 5, 22]}, 5, 6)["counts"]
    compressed = RLESegmentation(size=(5, 6), counts=encoded.decode("ascii"))
    uncompressed = RLESegmentation(size=(5, 6), counts=(0, 5, 25))
    with AnnotationIndexWriter(tmp_path / "index.bin") as writer:
        refs = [writer.add(s) for s in (polygon, compressed, uncompressed)]
        digest = writer.digest
    assert [r.offset for r in refs] == [0, refs[0].length, refs[0].length + refs[1].length]
    assert [read_segmentation(r) for r in refs] == [polygon, compressed, uncompressed]
    assert len(digest) == 32
    for ref, seg in zip(refs, (polygon, compressed, uncompressed), strict=True):
        assert np.array_equal(decode_mask(ref, 5, 6), decode_mask(seg, 5, 6))
    cut = StoredSegmentation(path=refs[0].path, offset=refs[2].offset, length=refs[2].length + 9)
    with pytest.raises(DataFormatError, match=r"index.bin: index record at byte \d+ is cut short"):
        read_segmentation(cut)
    wrong = StoredSegmentation(path=refs[0].path, offset=1, length=refs[0].length - 1)
    with pytest.raises(DataFormatError, match="bad index record at byte 1"):
        read_segmentation(wrong)
