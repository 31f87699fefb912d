"""Deterministic, atomic tar shards."""

from __future__ import annotations

import hashlib
import tarfile

import pytest
import webdataset as wds

from avs_synth.building.shard_writer import ShardWriter, remove_stale_temps, temp_path

ORDER = ("jpg", "mask.png", "flac", "json")


def _members(n: int) -> dict[str, bytes]:
    return {ext: f"{ext}-{n}".encode() * (n + 1) for ext in ORDER}


def _write(path, keys):
    with ShardWriter(path=path, member_order=ORDER) as writer:
        for n, key in enumerate(keys):
            writer.write(key, _members(n))
    return writer


def test_same_samples_give_same_bytes_and_fixed_headers(tmp_path):
    a = _write(tmp_path / "a.tar", ["k0", "k1", "k2"])
    b = _write(tmp_path / "b.tar", ["k0", "k1", "k2"])
    data = (tmp_path / "a.tar").read_bytes()
    assert data == (tmp_path / "b.tar").read_bytes()
    assert a.sha256 == hashlib.sha256(data).hexdigest() and a.size == len(data) and a.count == 3
    assert b.sha256 == a.sha256
    with tarfile.open(tmp_path / "a.tar") as tar:
        infos = tar.getmembers()
    assert [i.name for i in infos[:4]] == ["k0.jpg", "k0.mask.png", "k0.flac", "k0.json"]
    assert {(i.mtime, i.uid, i.gid, i.uname, i.gname, i.mode) for i in infos} == {
        (0, 0, 0, "", "", 0o644)
    }


def test_webdataset_groups_members_by_key(tmp_path):
    _write(tmp_path / "s.tar", ["lvis-1-a000", "coco-2-a001"])
    samples = list(wds.WebDataset(str(tmp_path / "s.tar"), shardshuffle=False))
    assert [s["__key__"] for s in samples] == ["lvis-1-a000", "coco-2-a001"]
    assert samples[1]["mask.png"] == _members(1)["mask.png"]
    assert set(samples[0]) >= set(ORDER)


def test_failure_leaves_no_file_under_either_name(tmp_path):
    path = tmp_path / "x.tar"
    with pytest.raises(RuntimeError):
        with ShardWriter(path=path, member_order=ORDER) as writer:
            writer.write("k0", _members(0))
            raise RuntimeError("worker died")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("key", ["", "a.b", "a/b"])
def test_invalid_keys_are_refused(tmp_path, key):
    with pytest.raises(ValueError, match="invalid sample key"):
        with ShardWriter(path=tmp_path / "x.tar", member_order=ORDER) as writer:
            writer.write(key, _members(0))
    assert not (tmp_path / "x.tar").exists()


def test_duplicate_key_and_wrong_members_are_refused(tmp_path):
    with pytest.raises(ValueError, match="duplicate"):
        _write(tmp_path / "x.tar", ["k", "k"])
    with pytest.raises(ValueError, match="expected"):
        with ShardWriter(path=tmp_path / "y.tar", member_order=ORDER) as writer:
            writer.write("k", {"jpg": b""})


def test_stale_temporaries_are_removed(tmp_path):
    final = tmp_path / "train-000000.tar"
    (tmp_path / "train-000000.tar.tmp-123").write_bytes(b"partial")
    (tmp_path / "train-000001.tar.tmp-123").write_bytes(b"other shard")
    assert temp_path(final).name.startswith("train-000000.tar.tmp-")
    assert remove_stale_temps(final) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train-000001.tar.tmp-123"]
