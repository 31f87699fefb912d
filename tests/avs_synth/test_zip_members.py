"""Zip members read from their local header offset, against zipfile."""

from __future__ import annotations

import zipfile

import pytest

from avs_synth.masks import read_mask_png
from avs_synth.records import MaskFileSegmentation
from avs_synth.zip_members import ZipMemberError, member_offsets, read_member
from tests.support.fixtures_sources import png_bytes


def _archive(path, compression, prefix=b""):
    members = {f"dir/m{k}.png": bytes(range(k % 256)) * (k + 1) for k in range(40)}
    members["ünï.png"] = b"unicode name"
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    if prefix:  # bytes before the archive (a self-extractor's stub): offsets shift
        path.write_bytes(prefix + path.read_bytes())
    return members


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
@pytest.mark.parametrize("prefix", [b"", b"#!stub\n" * 3])
def test_offsets_and_members_equal_zipfile(tmp_path, compression, prefix):
    path = tmp_path / "masks.zip"
    members = _archive(path, compression, prefix)
    offsets = member_offsets(path)
    assert offsets is not None and set(offsets) == set(members)
    with zipfile.ZipFile(path) as archive:
        for name in members:
            assert offsets[name] == archive.getinfo(name).header_offset  # shifted by the stub
            assert read_member(path, name, offsets[name]) == archive.read(name) == members[name]


def test_bad_offsets_corrupt_bytes_and_unusual_archives(tmp_path):
    path = tmp_path / "masks.zip"
    _archive(path, zipfile.ZIP_DEFLATED)
    offsets = member_offsets(path)
    name, other = "dir/m3.png", "dir/m4.png"
    with pytest.raises(ZipMemberError, match="no local header"):
        read_member(path, name, offsets[other])
    with pytest.raises(ZipMemberError, match="no local header"):
        read_member(path, name, offsets[name] + 1)
    data = bytearray(path.read_bytes())
    data[offsets[name] + 30 + len(name) + 2] ^= 0xFF  # a byte of the compressed data
    path.write_bytes(bytes(data))
    with pytest.raises(ZipMemberError, match="dir/m3.png"):
        read_member(path, name, offsets[name])
    assert member_offsets(tmp_path / "absent.zip") is None
    (tmp_path / "not.zip").write_bytes(b"not a zip at all")
    assert member_offsets(tmp_path / "not.zip") is None


def test_mask_png_read_from_its_offset_and_with_zipfile(tmp_path):
    path = tmp_path / "train-masks-0.zip"
    png = png_bytes([[0, 255], [255, 0]], mode="L")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.png", png)
    offset = member_offsets(path)["a.png"]
    direct = read_mask_png(MaskFileSegmentation(archive=path, member="a.png", offset=offset))
    plain = read_mask_png(MaskFileSegmentation(archive=path, member="a.png"))
    assert direct.tolist() == plain.tolist() == [[False, True], [True, False]]
