from __future__ import annotations

import os
from pathlib import Path

import pytest

from avs_synth.errors import DataFormatError
from avs_synth.safe_paths import UnsafePathError, resolve_under


def test_relative_name_is_joined(tmp_path: Path) -> None:
    root = tmp_path / "images"
    root.mkdir()
    assert resolve_under(root, "train2017/0001.jpg") == root / "train2017" / "0001.jpg"
    assert resolve_under(root, "a.jpg").is_absolute()


@pytest.mark.parametrize(
    "name",
    [
        "/etc/passwd",
        "../secret.jpg",
        "train2017/../../secret.jpg",
        "..\\secret.jpg",
        "C:\\Windows\\win.ini",
        "C:relative.jpg",
        "\\\\server\\share\\x.jpg",
        "a\x00.jpg",
        "",
    ],
)
def test_escaping_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(UnsafePathError, match="refusing file name"):
        resolve_under(tmp_path, name)


def test_symlink_escape_is_refused_and_inner_symlink_allowed(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "real").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.jpg").write_bytes(b"x")
    os.symlink(outside, root / "link")
    os.symlink(root / "real", root / "inner")
    with pytest.raises(UnsafePathError, match="outside the root"):
        resolve_under(root, "link/x.jpg")
    assert resolve_under(root, "inner/y.jpg") == root / "inner" / "y.jpg"


def test_root_that_is_a_symlink_is_fine(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    os.symlink(real, tmp_path / "alias")
    assert resolve_under(tmp_path / "alias", "a.jpg") == tmp_path / "alias" / "a.jpg"


def test_error_names_annotation_file_and_line(tmp_path: Path) -> None:
    source = tmp_path / "ann.csv"
    with pytest.raises(DataFormatError) as info:
        resolve_under(tmp_path, "../x.jpg", source=source, line=7)
    assert str(info.value).startswith(f"{source}:7: refusing file name '../x.jpg'")
    assert info.value.line == 7
