from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avs_synth.errors import DataFormatError
from avs_synth.masks import decode_mask
from avs_synth.records import Category, PolygonSegmentation, RLESegmentation
from avs_synth.safe_paths import UnsafePathError
from avs_synth.sources import COCOReader
from tests.support.fixtures_sources import write_json


def _coco_json() -> dict:
    return {
        "info": {"year": 2017},
        "licenses": [
            {"id": 1, "name": "CC BY", "url": "http://creativecommons.org/licenses/by/2.0/"}
        ],
        "categories": [
            {"id": 18, "name": "dog", "supercategory": "animal"},
            {"id": 1, "name": "person", "supercategory": "person"},
        ],
        "images": [
            {
                "id": 42,
                "file_name": "000000000042.jpg",
                "width": 3,
                "height": 4,
                "license": 1,
                "coco_url": "http://images.cocodataset.org/train2017/000000000042.jpg",
            },
        ],
        "annotations": [
            {
                "id": 5,
                "image_id": 42,
                "category_id": 18,
                "iscrowd": 0,
                "area": 2.0,
                "bbox": [0, 0, 1, 2],
                "segmentation": [[0, 0, 1, 0, 1, 2, 0, 2]],
            },
            {
                "id": 6,
                "image_id": 42,
                "category_id": 1,
                "iscrowd": 1,
                "area": 3.0,
                "bbox": [1, 0, 2, 4],
                "segmentation": {"size": [4, 3], "counts": [4, 3, 1, 3, 1]},
            },
        ],
    }


def test_records_are_exhaustive_with_crowd_rle(tmp_path: Path, capsys) -> None:
    ann = write_json(tmp_path / "instances_train2017.json", _coco_json())
    reader = COCOReader(annotations=ann, images_root=tmp_path / "train2017")
    assert capsys.readouterr().out == ""  # pycocotools' prints are swallowed
    assert len(reader) == 1
    assert reader.categories == [Category("coco", "1", "person"), Category("coco", "18", "dog")]
    (record,) = list(reader.images())
    assert record.source == "coco" and record.image_id == "42" and record.exhaustive
    assert record.path == (tmp_path / "train2017").absolute() / "000000000042.jpg"
    assert record.license == "http://creativecommons.org/licenses/by/2.0/"
    dog, crowd = record.instances
    assert isinstance(dog.segmentation, PolygonSegmentation) and not dog.is_crowd
    assert dog.category_name == "dog" and dog.category_id == "18"
    expected_dog = np.zeros((4, 3), dtype=bool)
    expected_dog[0:2, 0:1] = True
    np.testing.assert_array_equal(decode_mask(dog.segmentation, 4, 3), expected_dog)
    assert crowd.is_crowd and isinstance(crowd.segmentation, RLESegmentation)
    assert crowd.segmentation.counts == (4, 3, 1, 3, 1)
    expected_crowd = np.array([[0, 1, 1], [0, 1, 1], [0, 1, 1], [0, 0, 0]], dtype=bool)
    np.testing.assert_array_equal(decode_mask(crowd.segmentation, 4, 3), expected_crowd)


def test_escaping_file_name_is_refused(tmp_path: Path) -> None:
    data = _coco_json()
    data["images"][0]["file_name"] = "/etc/passwd"
    ann = write_json(tmp_path / "instances.json", data)
    reader = COCOReader(annotations=ann, images_root=tmp_path)
    with pytest.raises(UnsafePathError, match=f"^{ann}: refusing file name '/etc/passwd'"):
        list(reader.images())


def test_malformed_json_and_unknown_category(tmp_path: Path) -> None:
    path = tmp_path / "instances.json"
    path.write_text('{"images": [ {"id": 1,', encoding="utf-8")
    with pytest.raises(DataFormatError, match=rf"^{path}:1: invalid JSON"):
        COCOReader(annotations=path, images_root=tmp_path)
    data = _coco_json()
    data["annotations"][0]["category_id"] = 99
    path = write_json(tmp_path / "unknown.json", data)
    with pytest.raises(DataFormatError, match="annotation 5: unknown category_id 99"):
        list(COCOReader(annotations=path, images_root=tmp_path).images())
