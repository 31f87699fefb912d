"""Zip members read from their local header offset, against zipfile."""

from __future__ import annotations

import zipfile

import pytest

from avs_synth import zip_members
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


def test_signature_inside_names_extras_and_comments_read_as_zipfile_does(tmp_path):
    """The whole-directory scan finds record signatures anywhere; a signature inside a name, an
    extra field or a member comment must not be taken for a record (the record-by-record scan
    reads such a directory)."""
    signature = "PK\x01\x02"
    path = tmp_path / "masks.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("plain.png", b"a")
        archive.writestr(f"in{signature}name.png", b"b")
        info = zipfile.ZipInfo("extra.png")
        info.extra = b"\xfe\xca\x08\x00" + signature.encode() * 2  # an unknown tag, 8 bytes
        info.comment = signature.encode()
        archive.writestr(info, b"c")
        archive.writestr("last.png", b"d")
    offsets = member_offsets(path)
    with zipfile.ZipFile(path) as archive:
        assert offsets == {i.filename: i.header_offset for i in archive.infolist()}
        assert list(offsets) == archive.namelist()


def test_the_whole_directory_scan_equals_the_record_by_record_scan(tmp_path, monkeypatch):
    path = tmp_path / "masks.zip"
    names = [f"{k:016x}_m0{k % 7}_{k:08x}.png" for k in range(300)]
    with zipfile.ZipFile(path, "w") as archive:
        for k, name in enumerate(names):
            archive.writestr(name, bytes([k % 256]) * (k % 5 + 1))
    fast = member_offsets(path)
    monkeypatch.setattr(zip_members, "_scan_whole", lambda directory, shift: None)
    slow = member_offsets(path)
    assert fast is not None and list(fast.items()) == list(slow.items())
    assert list(fast) == names
