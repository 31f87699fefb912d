from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
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


@pytest.mark.parametrize("far", [2e8, 5e8, 1e9, -1e9])
def test_far_polygon_coordinates_are_cut_not_crashed_on(far: float) -> None:
    # pycocotools alone: 2e8 takes 23 GB, 5e8 overflows its int32 and kills the process
    strip = (1.0, 1.0, far, 1.0, far, 3.0, 1.0, 3.0)  # x in [1, far) (or (far, 1]), y in [1, 3)
    mask = decode_mask(PolygonSegmentation(polygons=(strip,)), 5, 6)
    expected = np.zeros((5, 6), dtype=bool)
    expected[1:3, 1:] = far > 0
    if far < 0:
        expected[1:3, :1] = True
    np.testing.assert_array_equal(mask, expected)
    corner = (0.0, 0.0, abs(far), 0.0, 0.0, abs(far))  # the hypotenuse is far outside
    assert decode_mask(PolygonSegmentation(polygons=(corner,)), 10, 10).all()
    near = 0.9 * far
    outside = (near, near, near + 1, near, near, near + 1)  # wholly outside: an empty mask
    assert not decode_mask(PolygonSegmentation(polygons=(outside,)), 10, 10).any()


def test_a_polygon_within_the_margin_is_drawn_as_pycocotools_draws_it() -> None:
    polygon = [-6.0, -1.5, 17.9, 2.25, 9.5, 15.0, -0.25, 7.0]  # margin: 6 pixels around
    expected = mask_utils.decode(mask_utils.frPyObjects([polygon], 5, 6)).astype(bool)[..., 0]
    mask = decode_mask(PolygonSegmentation(polygons=(tuple(polygon),)), 5, 6)
    np.testing.assert_array_equal(mask, expected)


def test_polygon_beyond_the_largest_coordinate_is_refused() -> None:
    with pytest.raises(InvalidSegmentationError, match="beyond 1e.09 pixels"):
        decode_mask(PolygonSegmentation(polygons=((0, 0, 2e9, 0, 0, 5),)), 5, 6, source="a.json")


def test_far_polygon_in_a_child_with_little_memory() -> None:
    """The cut keeps pycocotools' memory bounded: 2e8 decodes under a 1.5 GB address limit."""
    code = (
        "import resource; resource.setrlimit(resource.RLIMIT_AS, (1536 << 20, 1536 << 20))\n"
        "from avs_synth.masks import decode_mask\n"
        "from avs_synth.records import PolygonSegmentation as P\n"
        "print(int(decode_mask(P(polygons=((3, 3, 2e8, 5, 5, 2e8),)), 480, 640).sum()))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert 0 < int(done.stdout) <= 480 * 640


COORD = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-50, max_value=50),
    st.integers(min_value=-(10**10), max_value=10**10).map(float),
)


@settings(max_examples=300, deadline=None)
@given(
    parts=st.lists(st.lists(COORD, max_size=12), max_size=3),
    height=st.integers(min_value=1, max_value=12),
    width=st.integers(min_value=1, max_value=12),
)
def test_any_polygon_gives_a_mask_or_an_invalid_segmentation_error(parts, height, width) -> None:
    """Property: polygons of any floats give a [height, width] bool mask or one clear error."""
    segmentation = PolygonSegmentation(polygons=tuple(tuple(p) for p in parts))
    try:
        mask = decode_mask(segmentation, height, width, source="ann.json: annotation 1")
    except InvalidSegmentationError as error:
        assert str(error).startswith("ann.json: annotation 1: ")
        return
    assert mask.shape == (height, width) and mask.dtype == bool


@settings(max_examples=300, deadline=None)
@given(
    counts=st.one_of(
        st.lists(st.integers(min_value=-5, max_value=40), max_size=8),
        st.text(max_size=12),
        st.binary(max_size=12),
    ),
    size=st.tuples(st.integers(min_value=1, max_value=6), st.integers(min_value=1, max_value=6)),
    image=st.tuples(st.integers(min_value=1, max_value=6), st.integers(min_value=1, max_value=6)),
)
def test_any_rle_gives_a_mask_or_an_invalid_segmentation_error(counts, size, image) -> None:
    """Property: any RLE (run lists, compressed strings, bytes) gives a mask whose pixels are
    the runs, or one clear error."""
    segmentation = RLESegmentation(
        size=size, counts=counts if isinstance(counts, str | bytes) else tuple(counts)
    )
    try:
        mask = decode_mask(segmentation, *image, source="ann.json")
    except InvalidSegmentationError as error:
        assert str(error).startswith("ann.json: ")
        return
    assert mask.shape == image and mask.dtype == bool
    runs = rle_string_to_counts(counts) if isinstance(counts, str | bytes) else counts
    assert sum(runs) == image[0] * image[1]
    assert int(mask.sum()) == sum(runs[1::2])
