from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avs_synth.errors import DataFormatError
from avs_synth.records import AudioClip, Category
from avs_synth.sources import VGGSoundReader
from avs_synth.sources.vggsound import parse_clip_name, read_label_list

CSV = (
    "-_a_b-c_Xy,30,dog barking,train\n"
    '--U7joUcTCo,0,"male speech, man speaking",test\n'
    "xY_12345678,5,dog barking,train\n"
    'abcdefghijk,120,"playing violin, fiddle",train\n'
    "nofile_here,7,dog barking,test\n"
)


def _clips(root: Path) -> Path:
    for name in [
        "-_a_b-c_Xy_000030.flac",  # canonical name, id with '_' and '-'
        "-_a_b-c_Xy_000030.mp4",  # same clip as video: flac is preferred
        "sub/--U7joUcTCo_0_10.wav",  # {id}_{start}_{end}, in a subfolder
        "xY_12345678_5.webm",  # {id}_{start}, id ending in digits
        "abcdefghijk_000120.txt",  # not an audio/video extension
        "abcdefghijk_000121.ogg",  # another start second
    ]:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    return root


def test_clip_names_are_parsed_from_the_right() -> None:
    assert parse_clip_name("-_a_b-c_Xy_000030.flac") == [("-_a_b-c_Xy", 30)]
    assert parse_clip_name("--U7joUcTCo_0_10.wav") == [("--U7joUcTCo_0", 10), ("--U7joUcTCo", 0)]
    assert parse_clip_name("xY_12345678_5.mkv") == [("xY_12345678", 5)]  # 12345678 > 5: no end
    assert parse_clip_name("a_b.flac") == []
    assert parse_clip_name("abc_000010.txt") == []


def test_rows_labels_and_files(tmp_path: Path) -> None:
    csv_path = tmp_path / "vggsound.csv"
    csv_path.write_text(CSV, encoding="utf-8")
    reader = VGGSoundReader(csv_path=csv_path, clips_root=_clips(tmp_path / "clips"))
    assert len(reader) == 5
    assert reader.labels == ["dog barking", "male speech, man speaking", "playing violin, fiddle"]
    assert reader.categories[1] == Category(
        "vggsound", "male speech, man speaking", "male speech, man speaking"
    )
    clips = list(reader.clips())
    root = tmp_path / "clips"
    assert clips[0] == AudioClip(
        "-_a_b-c_Xy", 30, "dog barking", "train", root / "-_a_b-c_Xy_000030.flac"
    )
    assert clips[0].clip_id == "-_a_b-c_Xy_000030"
    assert clips[1].path == root / "sub" / "--U7joUcTCo_0_10.wav"
    assert clips[1].label == "male speech, man speaking" and clips[1].split == "test"
    assert clips[2].path == root / "xY_12345678_5.webm"
    assert clips[3].path is None and clips[4].path is None
    assert [c.youtube_id for c in reader.clips("test")] == ["--U7joUcTCo", "nofile_here"]
    assert [c.youtube_id for c in reader.clips(available_only=True)] == [
        "-_a_b-c_Xy",
        "--U7joUcTCo",
        "xY_12345678",
    ]
    without_files = VGGSoundReader(csv_path=csv_path)
    assert all(c.path is None for c in without_files.clips())


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("abc,3,dog barking\n", "expected 4 fields"),
        ("abc,3,dog, barking,train\n", "expected 4 fields"),  # unquoted comma
        ("abc,three,dog barking,train\n", "start_seconds 'three' is not an integer"),
        ("abc,3,dog barking,validation\n", "split 'validation'"),
        (",3,dog barking,train\n", "empty youtube_id or label"),
    ],
)
def test_malformed_rows_name_file_and_line(tmp_path: Path, row: str, message: str) -> None:
    path = tmp_path / "vggsound.csv"
    path.write_text("ok_id,1,dog barking,train\n\n" + row, encoding="utf-8")
    with pytest.raises(DataFormatError, match=f"^{path}:3: {message}"):
        VGGSoundReader(csv_path=path)


def test_label_list(tmp_path: Path) -> None:
    path = tmp_path / "labels.txt"
    path.write_text(
        "# VGGSound labels\ndog barking\n\nmale speech, man speaking\n", encoding="utf-8"
    )
    assert read_label_list(path) == ["dog barking", "male speech, man speaking"]
    path.write_text("dog barking\ncat meowing\ndog barking\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=f"^{path}:3: duplicate label 'dog barking'"):
        read_label_list(path)


def test_an_empty_csv_is_an_error_not_zero_clips(tmp_path: Path) -> None:
    for text in ("", "\n\n", "\ufeff", "youtube_id,start_seconds,label,split\n"):
        path = tmp_path / "vggsound.csv"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(DataFormatError, match=f"^{path}: no clip rows"):
            VGGSoundReader(csv_path=path)


def test_a_byte_order_mark_drops_no_clip(tmp_path: Path) -> None:
    path = tmp_path / "vggsound.csv"
    path.write_text("\ufeff" + CSV, encoding="utf-8")
    clips = list(VGGSoundReader(csv_path=path).clips())
    assert [c.youtube_id for c in clips][:2] == ["-_a_b-c_Xy", "--U7joUcTCo"]
    assert len(clips) == 5
    labels = tmp_path / "labels.txt"
    labels.write_text("\ufeffdog barking\ncat purring\n", encoding="utf-8")
    assert read_label_list(labels) == ["dog barking", "cat purring"]


@pytest.mark.timeout(60)
def test_a_symlink_loop_in_the_clips_folder_ends_the_walk(tmp_path: Path) -> None:
    csv_path = tmp_path / "vggsound.csv"
    csv_path.write_text(CSV, encoding="utf-8")
    root = _clips(tmp_path / "clips")
    # two loops per level: a walk that follows them would visit 2**40 folders
    (root / "sub" / "up").symlink_to(root, target_is_directory=True)
    (root / "sub" / "again").symlink_to(root, target_is_directory=True)
    (root / "zlink").symlink_to(root / "sub", target_is_directory=True)
    (root / "dangling").symlink_to(tmp_path / "nowhere", target_is_directory=True)
    reader = VGGSoundReader(csv_path=csv_path, clips_root=root)
    found = {c.youtube_id: c.path for c in reader.clips(available_only=True)}
    assert found == {
        "-_a_b-c_Xy": root / "-_a_b-c_Xy_000030.flac",
        "--U7joUcTCo": root / "sub" / "--U7joUcTCo_0_10.wav",
        "xY_12345678": root / "xY_12345678_5.webm",
    }


CSV_FIELD = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(st.lists(CSV_FIELD, min_size=0, max_size=6), max_size=6),
    bom=st.booleans(),
    raw=st.binary(max_size=40),
)
def test_any_csv_gives_clips_or_one_error_naming_the_file(tmp_path, rows, bom, raw) -> None:
    """Property: any vggsound.csv (text rows, or raw bytes) gives its clips, each row's fields
    as written, or one DataFormatError naming the file."""
    path = tmp_path / "vggsound.csv"
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    for data in (("\ufeff" if bom else "") + buffer.getvalue()).encode("utf-8"), raw:
        path.write_bytes(data)
        try:
            clips = list(VGGSoundReader(csv_path=path).clips())
        except DataFormatError as error:
            assert str(error).startswith(f"{path}")
            continue
        assert clips, "a file without rows must be refused"
        if data is raw:
            continue
        written = [r for r in rows if len(r) == 4 and r[1].strip() != "start_seconds"]
        assert [(c.youtube_id, c.start_seconds, c.label, c.split) for c in clips] == [
            (r[0].strip(), int(r[1].strip()), r[2].strip(), r[3].strip()) for r in written
        ]
