from __future__ import annotations

from pathlib import Path

import pytest

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
