from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from avs_synth.errors import DataFormatError
from avs_synth.masks import decode_mask
from avs_synth.records import Category, PolygonSegmentation, RLESegmentation
from avs_synth.safe_paths import UnsafePathError
from avs_synth.sources import LVISReader
from avs_synth.sources.lvis import _PLAIN_URL, url_folder_and_name
from tests.support.fixtures_sources import write_json


def _lvis_json() -> dict:
    return {
        "info": {"description": "tiny LVIS"},
        "licenses": [
            {
                "id": 4,
                "name": "Attribution License",
                "url": "http://creativecommons.org/licenses/by/2.0/",
            },
            {"id": 5, "name": "No URL licence"},
        ],
        "categories": [
            {
                "id": 3,
                "name": "bus_(vehicle)",
                "synonyms": ["bus_(vehicle)", "autobus", "coach"],
                "synset": "bus.n.01",
                "frequency": "f",
                "def": "a vehicle carrying many passengers",
                "image_count": 1,
                "instance_count": 1,
            },
            {
                "id": 1,
                "name": "dog",
                "synonyms": ["dog"],
                "synset": "dog.n.01",
                "frequency": "c",
                "def": "a member of the genus Canis",
            },
        ],
        "images": [
            {
                "id": 391895,
                "width": 6,
                "height": 5,
                "coco_url": "http://images.cocodataset.org/train2017/000000391895.jpg",
                "flickr_url": "http://farm9.staticflickr.com/8186/8119368305_4e622c8349_z.jpg",
                "license": 4,
                "neg_category_ids": [1],
                "not_exhaustive_category_ids": [3],
            },
            {
                "id": 7,
                "width": 4,
                "height": 3,
                "coco_url": "http://images.cocodataset.org/val2017/000000000007.jpg",
                "license": 5,
                "neg_category_ids": [],
                "not_exhaustive_category_ids": [],
            },
        ],
        "annotations": [
            {
                "id": 11,
                "image_id": 391895,
                "category_id": 3,
                "bbox": [1, 1, 3, 2],
                "area": 6.0,
                "segmentation": [[1, 1, 4, 1, 4, 3, 1, 3], [4, 3, 6, 3, 6, 5, 4, 5]],
            },
            {
                "id": 12,
                "image_id": 391895,
                "category_id": 1,
                "bbox": [0, 0, 2, 5],
                "area": 10.0,
                "segmentation": {"size": [5, 6], "counts": [0, 5, 25]},
            },
        ],
    }


def test_records_categories_and_paths(tmp_path: Path) -> None:
    ann = write_json(tmp_path / "lvis_v1_train.json", _lvis_json())
    images_root = tmp_path / "coco"
    (images_root / "train2017").mkdir(parents=True)
    reader = LVISReader(annotations=ann, images_root=images_root)
    assert len(reader) == 2
    assert reader.categories == [
        Category("lvis", "1", "dog", ("dog",), "dog.n.01", "c", "a member of the genus Canis"),
        Category(
            "lvis",
            "3",
            "bus_(vehicle)",
            ("bus_(vehicle)", "autobus", "coach"),
            "bus.n.01",
            "f",
            "a vehicle carrying many passengers",
        ),
    ]
    first, second = list(reader.images())
    assert first.source == "lvis" and first.image_id == "391895"
    assert first.path == images_root.absolute() / "train2017" / "000000391895.jpg"
    assert (first.width, first.height) == (6, 5)
    assert first.negative_category_ids == ("1",)
    assert first.not_exhaustive_category_ids == ("3",)
    assert first.exhaustive is False
    assert first.license == "http://creativecommons.org/licenses/by/2.0/"
    assert first.attribution.startswith("http://farm9.staticflickr.com/")
    bus, dog = first.instances
    assert (bus.instance_id, bus.category_id, bus.category_name) == ("11", "3", "bus_(vehicle)")
    assert bus.bbox == (1.0, 1.0, 3.0, 2.0) and bus.area == 6.0 and not bus.is_crowd
    assert isinstance(bus.segmentation, PolygonSegmentation)
    assert len(bus.segmentation.polygons) == 2
    expected = np.zeros((5, 6), dtype=bool)
    expected[1:3, 1:4] = True
    expected[3:5, 4:6] = True
    np.testing.assert_array_equal(decode_mask(bus.segmentation, 5, 6), expected)
    assert isinstance(dog.segmentation, RLESegmentation)
    dog_mask = decode_mask(dog.segmentation, 5, 6)
    np.testing.assert_array_equal(
        dog_mask, np.tile([True, False, False, False, False, False], (5, 1))
    )
    # no val2017 folder under the root: the flat layout is used for that split
    assert second.path == images_root.absolute() / "000000000007.jpg"
    assert second.instances == () and second.license == "No URL licence"


def test_flat_images_folder(tmp_path: Path) -> None:
    ann = write_json(tmp_path / "lvis.json", _lvis_json())
    reader = LVISReader(annotations=ann, images_root=tmp_path / "flat")
    assert next(reader.images()).path == (tmp_path / "flat").absolute() / "000000391895.jpg"


def test_file_name_fallback_and_escape(tmp_path: Path) -> None:
    data = _lvis_json()
    del data["images"][1]["coco_url"]
    data["images"][1]["file_name"] = "../../etc/passwd"
    ann = write_json(tmp_path / "lvis.json", data)
    reader = LVISReader(annotations=ann, images_root=tmp_path / "images")
    with pytest.raises(UnsafePathError, match="refusing file name '../../etc/passwd'"):
        list(reader.images())


def test_truncated_json_names_file_and_line(tmp_path: Path) -> None:
    text = json.dumps(_lvis_json(), indent=1)
    path = tmp_path / "lvis_v1_val.json"
    path.write_text(text[: len(text) // 2], encoding="utf-8")
    with pytest.raises(DataFormatError, match=rf"^{path}:\d+: invalid JSON") as info:
        LVISReader(annotations=path, images_root=tmp_path)
    assert info.value.line is not None and info.value.line > 10


def test_missing_keys_and_bad_annotations(tmp_path: Path) -> None:
    data = _lvis_json()
    del data["categories"]
    path = write_json(tmp_path / "nocats.json", data)
    with pytest.raises(DataFormatError, match=f"^{path}: missing key 'categories'"):
        LVISReader(annotations=path, images_root=tmp_path)
    data = _lvis_json()
    data["annotations"][0]["bbox"] = [1, 2]
    path = write_json(tmp_path / "badbox.json", data)
    reader = LVISReader(annotations=path, images_root=tmp_path)
    with pytest.raises(DataFormatError, match=f"^{path}: annotation 11: bbox"):
        list(reader.images())
    with pytest.raises(FileNotFoundError):
        LVISReader(annotations=tmp_path / "absent.json", images_root=tmp_path)


_URL_PIECES = ["a", "train2017", "0001.jpg", ".", "..", "", "x y", "%2F", ";p=1", "?q", "#f", "\t"]


@settings(max_examples=300, deadline=None)
@given(
    scheme=st.sampled_from(["http://", "https://", "HTTP://", "ftp://", ""]),
    host=st.sampled_from(["images.cocodataset.org", "h", "h;x", ""]),
    parts=st.lists(st.sampled_from(_URL_PIECES), max_size=5),
)
def test_url_parts_read_as_urlparse_reads_them(scheme, host, parts):
    """The fast path for plain ``coco_url`` values gives urlparse's parts on every URL."""
    url = scheme + host + "/" + "/".join(parts)
    assert url_folder_and_name(url) == PurePosixPath(urlparse(url).path).parts[-2:]


def test_the_usual_coco_url_takes_the_fast_path():
    url = "http://images.cocodataset.org/train2017/000000391895.jpg"
    assert _PLAIN_URL.fullmatch(url) is not None
    assert url_folder_and_name(url) == ("train2017", "000000391895.jpg")
