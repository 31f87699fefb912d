"""Property tests (hypothesis) for the CSV readers of outside data not covered beside their own
tests: matches.csv, the AVSBench metadata (the AVSBench reader and the build's clip exclusion) and
the Open Images CSVs. Any file gives its rows or one DataFormatError naming it, never another
exception; a UTF-8 byte-order mark changes nothing."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avs_synth.building.avsbench_exclusion import avsbench_ids
from avs_synth.errors import DataFormatError
from avs_synth.matching.table import HEADER, read_matches
from avs_synth.sources import AVSBenchReader, OpenImagesReader

FIELD = st.one_of(
    st.sampled_from(["lvis", "coco", "openimages", "accepted", "pending", "rejected", "", "3"]),
    st.sampled_from(["100", "-1", "nan", "1e400", "dog", "s4", "train", "test", "/m/0bt9lr"]),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8),
)
ROWS = st.lists(st.lists(FIELD, min_size=0, max_size=10), max_size=5)
SETTINGS = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _csv_text(header: list[str] | None, rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if header is not None:
        writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _both_encodings(path: Path, text: str, read):
    """The reader's result for the text with and without a BOM (equal), or a DataFormatError
    naming ``path`` (for both)."""
    results = []
    for data in (text.encode("utf-8"), b"\xef\xbb\xbf" + text.encode("utf-8")):
        path.write_bytes(data)
        try:
            results.append(read(path))
        except DataFormatError as error:
            assert str(error).startswith(f"{path}"), str(error)
            results.append(("error", error.line, error.message))
    assert results[0] == results[1]
    return results[0]


@SETTINGS
@given(rows=ROWS, header=st.booleans(), raw=st.binary(max_size=60))
def test_any_matches_csv_gives_rows_or_an_error_naming_it(tmp_path, rows, header, raw) -> None:
    path = tmp_path / "matches.csv"
    found = _both_encodings(path, _csv_text(list(HEADER) if header else None, rows), read_matches)
    if not isinstance(found, tuple):
        assert header and len(found) <= len(rows)
        assert all(r.decision in ("accepted", "pending", "rejected") for r in found)
    path.write_bytes(raw)
    try:
        read_matches(path)
    except DataFormatError as error:
        assert str(error).startswith(f"{path}")


@SETTINGS
@given(rows=ROWS, columns=st.permutations(["name", "start", "category", "split"]))
def test_any_avsbench_metadata_gives_videos_or_an_error_naming_it(tmp_path, rows, columns) -> None:
    folder = tmp_path / "Single-source"
    (folder / "s4_data" / "visual_frames").mkdir(parents=True, exist_ok=True)
    path = folder / "s4_meta_data.csv"
    text = _csv_text(list(columns), rows)

    def read(p: Path):
        return (
            [(v.name, v.split) for v in AVSBenchReader(root=tmp_path, subset="s4").videos()],
            avsbench_ids(tmp_path),
        )

    found = _both_encodings(path, text, read)
    if not isinstance(found, tuple) or found[0] != "error":
        videos, ids = found
        assert all(split in ("train", "val", "test") for _, split in videos)
        assert all(i and i.replace("_", "").replace("-", "").isalnum() for i in ids["avsbench_s4"])


@SETTINGS
@given(rows=ROWS, which=st.sampled_from(["segmentation", "classes", "labels"]))
def test_any_open_images_csv_gives_records_or_an_error_naming_it(tmp_path, rows, which) -> None:
    dog = "/m/0bt9lr"
    files = {
        "segmentation": tmp_path / "train-annotations-object-segmentation.csv",
        "classes": tmp_path / "oidv7-class-descriptions.csv",
        "labels": tmp_path / "oidv7-train-annotations-human-imagelabels.csv",
    }
    headers = {
        "segmentation": "MaskPath,ImageID,LabelName,BoxID,BoxXMin,BoxXMax,BoxYMin,BoxYMax",
        "classes": "LabelName,DisplayName",
        "labels": "ImageID,Source,LabelName,Confidence",
    }
    good = {
        "segmentation": f"0a1b2c3d4e5f6789_m0bt9lr_1.png,0a1b2c3d4e5f6789,{dog},b,0,1,0,1\n",
        "classes": f"{dog},Dog\n",
        "labels": f"0a1b2c3d4e5f6789,verification,{dog},0\n",
    }
    for name, path in files.items():
        path.write_text(headers[name] + "\n" + good[name], encoding="utf-8")
    (tmp_path / "train").mkdir(exist_ok=True)
    text = _csv_text(headers[which].split(","), rows)

    def read(p: Path):
        reader = OpenImagesReader(root=tmp_path)
        return [(r.image_id, len(r.instances)) for r in reader.images()], reader.categories

    _both_encodings(files[which], text, read)
