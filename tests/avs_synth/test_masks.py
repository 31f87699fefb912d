from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from avs_synth.errors import DataFormatError
from avs_synth.masks import (
    InvalidSegmentationError,
    decode_mask,
    read_mask_png,
    rle_string_to_counts,
)
from avs_synth.records import MaskFileSegmentation, PolygonSegmentation, RLESegmentation
from tests.support.fixtures_sources import png_bytes, write_png, write_zip

SQUARE = (1.0, 1.0, 4.0, 1.0, 4.0, 3.0, 1.0, 3.0)  # covers x in [1, 4), y in [1, 3)


def test_polygon_rectangle() -> None:
    mask = decode_mask(PolygonSegmentation(polygons=(SQUARE,)), 5, 6)
    expected = np.zeros((5, 6), dtype=bool)
    expected[1:3, 1:4] = True
    assert mask.dtype == bool
    np.testing.assert_array_equal(mask, expected)


def test_multi_part_polygon_is_the_union() -> None:
    second = (4.0, 3.0, 6.0, 3.0, 6.0, 5.0, 4.0, 5.0)  # x in [4, 6), y in [3, 5)
    mask = decode_mask(PolygonSegmentation(polygons=(SQUARE, second)), 5, 6)
    expected = np.zeros((5, 6), dtype=bool)
    expected[1:3, 1:4] = True
    expected[3:5, 4:6] = True
    np.testing.assert_array_equal(mask, expected)


@pytest.mark.parametrize(
    ("polygons", "message"),
    [
        (((0.0, 0.0, 2.0, 2.0),), "2 points, needs at least 3"),  # pycocotools would take a bbox
        (((0.0, 0.0, 2.0, 2.0, 3.0),), "odd number"),
        (((0.0, 0.0, 2.0, float("nan"), 3.0, 3.0),), "non-finite"),
        (((0.0, 0.0, 2.0, float("inf"), 3.0, 3.0),), "non-finite"),
        ((), "no parts"),
    ],
)
def test_invalid_polygons_are_refused(polygons, message: str) -> None:
    with pytest.raises(InvalidSegmentationError, match=message) as info:
        decode_mask(PolygonSegmentation(polygons=polygons), 5, 6, source="ann.json: annotation 9")
    assert str(info.value).startswith("ann.json: annotation 9: ")
    assert isinstance(info.value, DataFormatError)


def test_uncompressed_rle_is_column_major() -> None:
    # 3 x 2 image, column-major runs: 1 background, 3 foreground, 2 background
    mask = decode_mask(RLESegmentation(size=(3, 2), counts=(1, 3, 2)), 3, 2)
    np.testing.assert_array_equal(mask, np.array([[0, 1], [1, 0], [1, 0]], dtype=bool))


def test_compressed_rle_round_trip() -> None:
    expected = np.zeros((7, 9), dtype=bool)
    expected[2:6, 3:8] = True
    expected[0, 0] = True
    encoded = mask_utils.encode(np.asfortranarray(expected.astype(np.uint8)))
    counts = encoded["counts"].decode("ascii")
    assert sum(rle_string_to_counts(counts)) == 63
    mask = decode_mask(RLESegmentation(size=(7, 9), counts=counts), 7, 9)
    np.testing.assert_array_equal(mask, expected)


def test_rle_that_does_not_cover_the_image_is_refused() -> None:
    with pytest.raises(InvalidSegmentationError, match="cover 5 pixels, the image has 6"):
        decode_mask(RLESegmentation(size=(3, 2), counts=(1, 3, 1)), 3, 2)
    with pytest.raises(InvalidSegmentationError, match="differs from the image size"):
        decode_mask(RLESegmentation(size=(2, 3), counts=(6,)), 3, 2)
    with pytest.raises(InvalidSegmentationError, match="compressed RLE"):
        decode_mask(RLESegmentation(size=(3, 2), counts="\x7f\x7f"), 3, 2)


def test_mask_png_from_zip_is_binarised_and_resized_nearest(tmp_path: Path) -> None:
    low = np.zeros((2, 3), dtype=np.uint8)
    low[0, 1] = 255
    low[1, 2] = 1  # any non-zero value is foreground
    archive = write_zip(tmp_path / "train-masks-0.zip", {"0abc_m01_x.png": png_bytes(low)})
    segmentation = MaskFileSegmentation(archive=archive, member="0abc_m01_x.png")
    np.testing.assert_array_equal(read_mask_png(segmentation), low > 0)
    mask = decode_mask(segmentation, 4, 6)  # 2x upscale, nearest
    expected = np.zeros((4, 6), dtype=bool)
    expected[0:2, 2:4] = True
    expected[2:4, 4:6] = True
    np.testing.assert_array_equal(mask, expected)


@pytest.mark.parametrize("mode", ["1", "L", "P"])
def test_mask_png_file_modes(tmp_path: Path, mode: str) -> None:
    array = np.array([[0, 1, 0], [2, 0, 0]], dtype=np.uint8)
    path = write_png(tmp_path / "m.png", array * (255 if mode == "1" else 1), mode=mode)
    mask = decode_mask(MaskFileSegmentation(path=path), 2, 3)
    np.testing.assert_array_equal(mask, array > 0)


def test_corrupt_mask_png_names_archive_and_member(tmp_path: Path) -> None:
    good = png_bytes(np.ones((4, 4), dtype=np.uint8))
    archive = write_zip(tmp_path / "train-masks-f.zip", {"f1_m.png": good[: len(good) // 2]})
    with pytest.raises(InvalidSegmentationError) as info:
        decode_mask(MaskFileSegmentation(archive=archive, member="f1_m.png"), 4, 4)
    assert str(info.value).startswith(f"{archive}[f1_m.png]: cannot decode mask image")
    with pytest.raises(FileNotFoundError, match="no such member"):
        decode_mask(MaskFileSegmentation(archive=archive, member="absent.png"), 4, 4)


def test_corrupt_mask_file_and_archive_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.png"
    path.write_bytes(b"\x89PNG not really")
    with pytest.raises(InvalidSegmentationError, match=f"^{path}: cannot decode"):
        decode_mask(MaskFileSegmentation(path=path), 4, 4)
    bad_zip = tmp_path / "bad.zip"
    bad_zip.write_bytes(b"PK not a zip")
    with pytest.raises(InvalidSegmentationError, match=f"^{bad_zip}: cannot open mask archive"):
        decode_mask(MaskFileSegmentation(archive=bad_zip, member="x.png"), 4, 4)
