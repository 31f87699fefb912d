from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from avs_synth.errors import DataFormatError
from avs_synth.masks import decode_mask
from avs_synth.records import Category, MaskFileSegmentation
from avs_synth.sources import OpenImagesReader
from tests.support.fixtures_sources import png_bytes, write_jpeg, write_zip

HEADER = "MaskPath,ImageID,LabelName,BoxID,BoxXMin,BoxXMax,BoxYMin,BoxYMax,PredictedIoU,Clicks\n"
DOG, CAT, BUS = "/m/0bt9lr", "/m/01yrx", "/m/01bjv"
IMG_A, IMG_B, IMG_GONE, IMG_NOZIP = (
    "0a1b2c3d4e5f6789",
    "f00dcafe12345678",
    "0b0000000000000a",
    "1234567890abcdef",
)
MASK_A1 = f"{IMG_A}_m0bt9lr_5ee2e0a7.png"
MASK_A2 = f"{IMG_A}_m01yrx_8d1c4b2f.png"
MASK_B1 = f"{IMG_B}_m01bjv_00ff00ff.png"
MASK_GONE = f"{IMG_GONE}_m0bt9lr_11111111.png"
MASK_NOZIP = f"{IMG_NOZIP}_m0bt9lr_22222222.png"

LOW_A1 = np.array([[0, 255, 255, 0], [0, 255, 255, 0], [0, 0, 0, 0]], dtype=np.uint8)  # 4 x 3


def _segmentation_csv(rows: list[str]) -> str:
    return HEADER + "".join(row + "\n" for row in rows)


ROWS = [
    # deliberately not sorted by ImageID: records come out in ImageID order
    f'{MASK_B1},{IMG_B},{BUS},b1,0.0,1.0,0.0,1.0,0.9,"0.1 0.2 1;0.3 0.4 0"',
    f"{MASK_A1},{IMG_A},{DOG},a1,0.25,0.75,0.0,0.5,0.8,",
    f"{MASK_GONE},{IMG_GONE},{DOG},g1,0.0,1.0,0.0,1.0,0.8,",
    f"{MASK_A2},{IMG_A},{CAT},a2,0.0,0.5,0.5,1.0,0.7,",
    f"{MASK_NOZIP},{IMG_NOZIP},{DOG},n1,0.0,1.0,0.0,1.0,0.8,",
]


def _download(root: Path, *, zipped: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "train-annotations-object-segmentation.csv").write_text(
        _segmentation_csv(ROWS), encoding="utf-8"
    )
    (root / "oidv7-class-descriptions.csv").write_text(
        f'LabelName,DisplayName\n{DOG},Dog\n{CAT},Cat\n{BUS},"Bus, coach"\n', encoding="utf-8"
    )
    (root / "classes-segmentation.txt").write_text(f"{DOG}\n{CAT}\n{BUS}\n", encoding="utf-8")
    (root / "oidv7-train-annotations-human-imagelabels.csv").write_text(
        "ImageID,Source,LabelName,Confidence\n"
        f"{IMG_A},verification,{DOG},1\n"
        f"{IMG_A},verification,{BUS},0\n"
        f"{IMG_A},crowdsource-verification,/m/0k4j,0\n"
        f"{IMG_B},verification,{CAT},0\n"
        f"ffffffffffffffff,verification,{CAT},0\n",
        encoding="utf-8",
    )
    write_jpeg(root / "train" / f"{IMG_A}.jpg", 8, 6)
    write_jpeg(root / "train" / f"{IMG_B}.jpg", 2, 2)
    write_jpeg(root / "train" / f"{IMG_NOZIP}.jpg", 2, 2)
    masks = root / "train-masks"
    bucket0 = {MASK_A1: png_bytes(LOW_A1, mode="1"), MASK_A2: png_bytes(np.ones((6, 8)) * 255)}
    bucket_f = {MASK_B1: png_bytes(np.array([[255, 0], [0, 0]], dtype=np.uint8))}
    if zipped:
        write_zip(masks / "train-masks-0.zip", bucket0)
        write_zip(masks / "train-masks-f.zip", {f"nested/{k}": v for k, v in bucket_f.items()})
    else:
        for name, data in bucket0.items():
            (masks / "train-masks-0").mkdir(parents=True, exist_ok=True)
            (masks / "train-masks-0" / name).write_bytes(data)
        for name, data in bucket_f.items():
            (masks / "train-masks-f").mkdir(parents=True, exist_ok=True)
            (masks / "train-masks-f" / name).write_bytes(data)
    return root


def test_records_from_zipped_masks(tmp_path: Path) -> None:
    reader = OpenImagesReader(root=_download(tmp_path))
    assert reader.categories == [
        Category("openimages", DOG, "Dog"),
        Category("openimages", CAT, "Cat"),
        Category("openimages", BUS, "Bus, coach"),
    ]
    assert len(reader) == 4
    records = list(reader.images())
    assert [r.image_id for r in records] == [IMG_A, IMG_B]
    assert reader.skipped == {"images": 2, "masks": 1}  # IMG_GONE: no JPEG; IMG_NOZIP: no zip
    a, b = records
    assert a.source == "openimages" and (a.width, a.height) == (8, 6) and not a.exhaustive
    assert a.path == (tmp_path / "train").absolute() / f"{IMG_A}.jpg"
    assert a.negative_category_ids == (BUS, "/m/0k4j")  # sorted, positives left out
    assert b.negative_category_ids == (CAT,)
    dog, cat = a.instances
    assert (dog.instance_id, dog.category_id, dog.category_name) == (MASK_A1, DOG, "Dog")
    assert dog.bbox == (2.0, 0.0, 4.0, 3.0) and dog.area == 12.0 and not dog.is_crowd
    archive = tmp_path / "train-masks" / "train-masks-0.zip"
    with zipfile.ZipFile(archive) as handle:  # the member is read straight from its local header
        offset = handle.getinfo(MASK_A1).header_offset
    assert dog.segmentation == MaskFileSegmentation(archive=archive, member=MASK_A1, offset=offset)
    expected = np.zeros((6, 8), dtype=bool)
    expected[0:4, 2:6] = True  # 4x3 mask scaled 2x to the 8x6 image
    np.testing.assert_array_equal(decode_mask(dog.segmentation, a.height, a.width), expected)
    assert decode_mask(cat.segmentation, 6, 8).all()
    (bus,) = b.instances
    assert bus.category_name == "Bus, coach"
    assert bus.segmentation.member == f"nested/{MASK_B1}"
    np.testing.assert_array_equal(
        decode_mask(bus.segmentation, 2, 2), [[True, False], [False, False]]
    )


def test_extracted_mask_folders(tmp_path: Path) -> None:
    reader = OpenImagesReader(root=_download(tmp_path, zipped=False))
    a, b = list(reader.images())
    assert a.instances[0].segmentation == MaskFileSegmentation(
        path=(tmp_path / "train-masks" / "train-masks-0").absolute() / MASK_A1
    )
    expected = np.zeros((6, 8), dtype=bool)
    expected[0:4, 2:6] = True
    np.testing.assert_array_equal(decode_mask(a.instances[0].segmentation, 6, 8), expected)


def test_headerless_class_descriptions_and_overrides(tmp_path: Path) -> None:
    root = _download(tmp_path / "oi")
    old = tmp_path / "class-descriptions-boxable.csv"
    old.write_text(f'{DOG},Dog\n{BUS},"Bus, coach"\n{CAT},Cat\n', encoding="utf-8")
    (root / "classes-segmentation.txt").unlink()
    reader = OpenImagesReader(root=root, class_descriptions=old, image_labels=None)
    assert reader.class_names == {DOG: "Dog", BUS: "Bus, coach", CAT: "Cat"}
    # without classes-segmentation.txt: the labels present in the CSV, sorted
    assert [c.category_id for c in reader.categories] == sorted({DOG, CAT, BUS})


def test_missing_image_raises_when_not_skipping(tmp_path: Path) -> None:
    reader = OpenImagesReader(root=_download(tmp_path), skip_unreadable_images=False)
    with pytest.raises(FileNotFoundError, match=f"{IMG_GONE}.jpg"):
        list(reader.images())


def test_csv_missing_a_column_names_file_and_column(tmp_path: Path) -> None:
    root = _download(tmp_path)
    path = root / "train-annotations-object-segmentation.csv"
    path.write_text("MaskPath,ImageID,BoxID,BoxXMin,BoxXMax,BoxYMin,BoxYMax\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=f"^{path}:1: missing column 'LabelName'"):
        len(OpenImagesReader(root=root))


def test_bad_box_value_names_the_line(tmp_path: Path) -> None:
    root = _download(tmp_path)
    path = root / "train-annotations-object-segmentation.csv"
    rows = list(ROWS)
    rows[3] = rows[3].replace(",0.0,0.5,0.5,1.0,", ",0.0,half,0.5,1.0,")
    path.write_text(_segmentation_csv(rows), encoding="utf-8")
    with pytest.raises(DataFormatError, match=f"^{path}:5: BoxXMax is not a number: 'half'"):
        list(OpenImagesReader(root=root).images())


def test_image_labels_missing_confidence_column(tmp_path: Path) -> None:
    root = _download(tmp_path)
    labels = root / "oidv7-train-annotations-human-imagelabels.csv"
    labels.write_text(f"ImageID,Source,LabelName\n{IMG_A},verification,{DOG}\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=f"^{labels}:1: missing column 'Confidence'"):
        list(OpenImagesReader(root=root).images())


def test_corrupt_image_is_skipped_and_counted(tmp_path: Path) -> None:
    root = _download(tmp_path)
    (root / "train" / f"{IMG_B}.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    reader = OpenImagesReader(root=root)
    assert [r.image_id for r in reader.images()] == [IMG_A]
    assert reader.skipped["images"] == 3


def test_short_row_names_the_line(tmp_path: Path) -> None:
    root = _download(tmp_path)
    path = root / "train-annotations-object-segmentation.csv"
    path.write_text(
        _segmentation_csv([ROWS[1], f"{MASK_A2},{IMG_A},{CAT},a2,0.0"]), encoding="utf-8"
    )
    with pytest.raises(DataFormatError, match=f"^{path}:3: BoxXMax is not a number: ''"):
        len(OpenImagesReader(root=root))


def test_images_in_python_string_order_where_numpy_orders_otherwise(tmp_path: Path) -> None:
    # NumPy's fixed-width sort ignores trailing NULs ("ab\0" == "ab"); Python's order decides,
    # and rows of one ImageID keep their file order (stable)
    root = _download(tmp_path)
    ids = ["ab\0", "ab", "Ab", "ab", "0a"]
    rows = [
        f"m{n}.png,{image_id},{DOG},x{n},0.0,1.0,0.0,1.0,0.9," for n, image_id in enumerate(ids)
    ]
    (root / "train-annotations-object-segmentation.csv").write_text(
        _segmentation_csv(rows), encoding="utf-8"
    )
    reader = OpenImagesReader(root=root)
    assert reader.image_ids == ["0a", "Ab", "ab", "ab\0"]
    assert reader._table["MaskPath"].tolist() == ["m4.png", "m2.png", "m1.png", "m3.png", "m0.png"]


def test_a_plan_read_keeps_only_the_negatives_it_can_use(tmp_path: Path) -> None:
    """With ``categories``, a record's verified negatives are those among
    ``negative_categories``; with none of them wanted, the labels file is not even read."""
    root = _download(tmp_path)
    reader = OpenImagesReader(root=root)
    a, b = reader.images(categories=[DOG, BUS], negative_categories=[DOG, BUS], read_sizes=False)
    assert a.negative_category_ids == (BUS,)  # /m/0k4j is no category of the plan
    assert b.negative_category_ids == ()
    labels = root / "oidv7-train-annotations-human-imagelabels.csv"
    labels.write_text("ImageID,Source,LabelName,Confidence\nbroken,row\n", encoding="utf-8")
    (only,) = OpenImagesReader(root=root).images(categories=[DOG], read_sizes=False)
    assert only.image_id == IMG_A and only.negative_category_ids == ()
    with pytest.raises(DataFormatError, match="imagelabels"):
        list(OpenImagesReader(root=root).images(categories=[DOG], negative_categories=[BUS]))
