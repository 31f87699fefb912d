"""The msgspec COCO-format reader against the previous one (``json.load`` + ``parse_instance``):
the same records, the same geometry to the bit (also through the annotation index), and on any
malformed file a DataFormatError naming it, never another exception."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avs_synth.annotation_index import AnnotationIndexWriter
from avs_synth.errors import DataFormatError
from avs_synth.masks import InvalidSegmentationError, decode_mask
from avs_synth.sources import COCOReader, LVISReader
from avs_synth.sources.coco_format import image_size, parse_instance
from tests.support.json_strategies import category_entries, json_values

numbers = st.one_of(
    st.integers(-5, 40),
    st.floats(-5, 40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-1e9, 1e9),
    st.just(1e400),  # json: inf
)
polygon = st.lists(st.lists(numbers, max_size=12), min_size=0, max_size=3)
rle = st.fixed_dictionaries(
    {
        "size": st.lists(st.integers(0, 12), min_size=2, max_size=2),
        "counts": st.one_of(
            st.lists(st.integers(0, 50), max_size=6), st.sampled_from(["52203", "0?", "", "a"])
        ),
    }
)
segmentation = st.one_of(polygon, rle, st.just("bad"), st.just([1, 2]), st.just({"x": 1}))
annotation = st.fixed_dictionaries(
    {
        "id": st.integers(1, 10_000),
        "image_id": st.sampled_from([1, 2, 3]),
        "category_id": st.sampled_from([1, 2, 9]),
        "bbox": st.one_of(st.lists(numbers, min_size=4, max_size=4), st.just([1, 2])),
        "segmentation": segmentation,
    },
    optional={"area": numbers, "iscrowd": st.sampled_from([0, 1])},
)
document = st.fixed_dictionaries(
    {
        "images": st.just(
            [
                {"id": 1, "width": 12, "height": 10, "file_name": "a.jpg"},
                {"id": 2, "width": 7, "height": 9, "file_name": "b.jpg"},
            ]
        ),
        "annotations": st.lists(annotation, max_size=5),
        "categories": st.just([{"id": 1, "name": "dog"}, {"id": 2, "name": "cat"}]),
    }
)


def _previous_reader(path: Path) -> list[tuple[str, list]]:
    """What the reader did before: json.load, annotations grouped by image in file order."""
    data = json.loads(path.read_text())
    names = {c["id"]: c["name"] for c in data["categories"]}
    by_image: dict = {}
    for ann in data["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    out = []
    for image in data["images"]:
        image_size(image, path)
        out.append(
            (
                str(image["id"]),
                [parse_instance(a, names, path) for a in by_image.get(image["id"], [])],
            )
        )
    return out


def _same_floats(a, b) -> bool:
    return np.array(a, dtype="<f8").tobytes() == np.array(b, dtype="<f8").tobytes()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(document)
def test_records_and_geometry_equal_the_previous_reader(tmp_path, doc):
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(doc))
    try:
        expected = _previous_reader(path)
    except DataFormatError as error:
        with pytest.raises(DataFormatError) as caught:
            list(COCOReader(annotations=path, images_root=tmp_path).images())
        assert str(caught.value).startswith(str(path)) and str(caught.value) == str(error)
        return
    records = list(COCOReader(annotations=path, images_root=tmp_path).images())
    with AnnotationIndexWriter(tmp_path / "index.bin") as index:
        lean = list(COCOReader(annotations=path, images_root=tmp_path).images(index=index))
    assert [(r.image_id, len(r.instances)) for r in records] == [(i, len(a)) for i, a in expected]
    for record, stored, (_, instances) in zip(records, lean, expected, strict=True):
        for ours, ref, theirs in zip(record.instances, stored.instances, instances, strict=True):
            assert ours.bbox == theirs.bbox or _same_floats(ours.bbox, theirs.bbox)
            assert ours.category_id == theirs.category_id and ours.is_crowd == theirs.is_crowd
            seg, old = ours.segmentation, theirs.segmentation
            if hasattr(old, "polygons"):
                assert all(
                    _same_floats(a, b) for a, b in zip(seg.polygons, old.polygons, strict=True)
                )
            else:
                assert seg == old
            try:
                want = decode_mask(old, record.height, record.width)
            except InvalidSegmentationError as error:
                with pytest.raises(InvalidSegmentationError) as caught:
                    decode_mask(ref.segmentation, record.height, record.width)
                assert caught.value.message == error.message
                continue
            assert np.array_equal(decode_mask(ref.segmentation, record.height, record.width), want)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_bytes_give_records_or_a_data_format_error(tmp_path, data):
    path = tmp_path / "lvis.json"
    path.write_bytes(data)
    try:
        list(LVISReader(annotations=path, images_root=tmp_path).images())
    except DataFormatError as error:
        assert str(error).startswith(str(path))


def test_nan_literals_are_read_as_json_reads_them(tmp_path):
    path = tmp_path / "instances.json"
    doc = {
        "images": [{"id": 1, "width": 4, "height": 4, "file_name": "a.jpg"}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "bbox": [0, 0, 1, 1],
                "segmentation": [[0, 0, 3, 0, float("nan"), 3]],
            }
        ],
        "categories": [{"id": 1, "name": "dog"}],
    }
    path.write_text(json.dumps(doc))  # NaN: not JSON, but Python's json writes and reads it
    (record,) = COCOReader(annotations=path, images_root=tmp_path).images()
    assert math.isnan(record.instances[0].segmentation.polygons[0][4])
    with pytest.raises(InvalidSegmentationError, match="non-finite"):
        decode_mask(record.instances[0].segmentation, 4, 4)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"id": 1, "name": None}, r"categories\[1\] \(id 1\): 'name' must be a non-empty string, "),
        ({"id": 1, "name": " "}, r"categories\[1\] \(id 1\): 'name' must be a non-empty"),
        ({"id": 1}, r"categories\[1\] \(id 1\): 'name' must be a non-empty string, got None"),
        ({"name": "cat"}, r"categories\[1\]: 'id' must be an integer or a string, got None"),
        ({"id": [1], "name": "cat"}, r"categories\[1\]: 'id' must be an integer or a string"),
        ({"id": 7, "name": "dog"}, r"categories\[1\]: id 7 appears twice"),
        ({"id": 1, "name": "cat", "synonyms": "cat"}, "'synonyms' must be a list of strings"),
        ({"id": 1, "name": "cat", "synset": 3}, "'synset' must be a string"),
        ("cat", r"categories\[1\] is not an object"),
    ],
)
def test_a_bad_category_is_an_error_naming_the_file(tmp_path, entry, message) -> None:
    doc = {"images": [], "annotations": [], "categories": [{"id": 7, "name": "dog"}, entry]}
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    for reader in (COCOReader, LVISReader):
        with pytest.raises(DataFormatError, match=f"^{path}: .*{message}"):
            reader(annotations=path, images_root=tmp_path)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(categories=st.lists(category_entries | json_values, max_size=4))
def test_any_categories_give_checked_names_or_an_error(tmp_path, categories) -> None:
    """Property: any ``categories`` list gives categories with string ids and non-empty string
    names (never "None"), or one DataFormatError naming the file."""
    path = tmp_path / "lvis.json"
    path.write_text(
        json.dumps({"images": [], "annotations": [], "categories": categories}), encoding="utf-8"
    )
    for reader in (COCOReader, LVISReader):
        try:
            found = reader(annotations=path, images_root=tmp_path).categories
        except DataFormatError as error:
            assert str(error).startswith(f"{path}: ")
            continue
        assert len(found) == len(categories)
        for cat in found:
            assert isinstance(cat.name, str) and cat.name.strip()
            assert all(isinstance(s, str) for s in cat.synonyms)
        names = {str(c["id"]): c["name"] for c in categories}
        assert {c.category_id: c.name for c in found} == names


def test_a_byte_order_mark_changes_nothing(tmp_path) -> None:
    doc = {
        "images": [{"id": 1, "width": 4, "height": 4, "file_name": "a.jpg"}],
        "annotations": [],
        "categories": [{"id": 1, "name": "dog"}],
    }
    plain, marked = tmp_path / "plain.json", tmp_path / "marked.json"
    plain.write_text(json.dumps(doc), encoding="utf-8")
    marked.write_bytes(b"\xef\xbb\xbf" + json.dumps(doc).encode("utf-8"))
    for reader in (COCOReader, LVISReader):
        first = reader(annotations=plain, images_root=tmp_path)
        second = reader(annotations=marked, images_root=tmp_path)
        assert first.categories == second.categories and len(first) == len(second) == 1
