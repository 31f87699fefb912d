from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from avs_synth.errors import DataFormatError
from avs_synth.safe_pickle import UnsafePickleError
from avs_synth.sources import AVSBenchReader
from avs_synth.sources.avsbench import (
    load_log_mel,
    load_mask,
    mask_census,
    read_official_mask,
)
from tests.support.fixtures_sources import write_png


def _s4(root: Path) -> Path:
    """A release layout with one S4 train video and one S4 test video."""
    single = root / "Single-source"
    single.mkdir(parents=True)
    (single / "s4_meta_data.csv").write_text(
        "name,start,category,split\n-_wznbUu3DY,0,helicopter,train\n0d9u2CymIxc,5,dog,test\n",
        encoding="utf-8",
    )
    data = single / "s4_data"
    for split, category, name in [
        ("train", "helicopter", "-_wznbUu3DY"),
        ("test", "dog", "0d9u2CymIxc"),
    ]:
        for k in range(1, 6):
            write_png(
                data / "visual_frames" / split / category / name / f"{name}_{k}.png",
                np.zeros((4, 4)),
            )
        for k in range(1, 2 if split == "train" else 6):
            write_png(
                data / "gt_masks" / split / category / name / f"{name}_{k}.png", np.eye(4) * 255
            )
        pkl = data / "audio_log_mel" / split / category / f"{name}.pkl"
        pkl.parent.mkdir(parents=True, exist_ok=True)
        value = 1.0 if split == "train" else 5.0
        pkl.write_bytes(pickle.dumps(torch.full((5, 1, 96, 64), value)))
    wav = data / "audio_wav" / "test" / "dog" / "0d9u2CymIxc.wav"
    wav.parent.mkdir(parents=True)
    wav.write_bytes(b"RIFF")
    return root


def _ms3(root: Path) -> Path:
    multi = root / "Multi-sources"
    multi.mkdir(parents=True)
    (multi / "ms3_meta_data.csv").write_text("video_id,split\nAbC_-1,val\n", encoding="utf-8")
    data = multi / "ms3_data"
    (data / "visual_frames" / "AbC_-1").mkdir(parents=True)
    (data / "audio_log_mel" / "val").mkdir(parents=True)
    (data / "audio_log_mel" / "val" / "AbC_-1.pkl").write_bytes(
        pickle.dumps(torch.zeros(5, 96, 64))
    )
    return root


def test_s4_release_layout(tmp_path: Path) -> None:
    reader = AVSBenchReader(root=_s4(tmp_path), subset="s4")
    assert len(reader) == 2 and reader.categories == ["dog", "helicopter"]
    data = tmp_path.absolute() / "Single-source" / "s4_data"
    (train,) = reader.videos("train")
    assert train.subset == "s4" and train.name == "-_wznbUu3DY" and train.category == "helicopter"
    assert (
        train.frame_paths[4]
        == data / "visual_frames/train/helicopter/-_wznbUu3DY/-_wznbUu3DY_5.png"
    )
    assert train.mask_paths[0] == data / "gt_masks/train/helicopter/-_wznbUu3DY/-_wznbUu3DY_1.png"
    assert train.mask_paths[1:] == (None, None, None, None)
    assert all(p.is_file() for p in train.frame_paths)
    assert train.log_mel_path == data / "audio_log_mel/train/helicopter/-_wznbUu3DY.pkl"
    assert train.wav_path is None
    assert train.extra == {"start": "0"}
    (test,) = reader.videos("test")
    assert all(p is not None and p.is_file() for p in test.mask_paths)
    assert test.wav_path == data / "audio_wav/test/dog/0d9u2CymIxc.wav"
    np.testing.assert_array_equal(load_mask(test.mask_paths[2], "s4"), np.eye(4, dtype=bool))
    log_mel = load_log_mel(test)
    assert log_mel.shape == (5, 1, 96, 64) and log_mel.dtype == torch.float32
    assert torch.equal(log_mel, torch.full((5, 1, 96, 64), 5.0))


@pytest.mark.parametrize("relative", ["Single-source", "Single-source/s4_data"])
def test_lenient_roots_give_the_same_videos(tmp_path: Path, relative: str) -> None:
    expected = AVSBenchReader(root=_s4(tmp_path), subset="s4").videos()
    assert AVSBenchReader(root=tmp_path / relative, subset="s4").videos() == expected


def test_ms3_layout_and_palette_masks(tmp_path: Path) -> None:
    reader = AVSBenchReader(root=_ms3(tmp_path), subset="ms3")
    (video,) = reader.videos()
    data = tmp_path.absolute() / "Multi-sources" / "ms3_data"
    assert video.category is None and video.split == "val" and reader.categories == []
    assert video.frame_paths[0] == data / "visual_frames/AbC_-1/AbC_-1.mp4_1.png"
    assert video.mask_paths[4] == data / "gt_masks/val/AbC_-1/AbC_-1_5.png"
    assert load_log_mel(video).shape == (5, 1, 96, 64)  # [5, 96, 64] is given its channel axis
    palette = write_png(tmp_path / "p.png", np.array([[0, 1], [2, 0]]), mode="P")
    np.testing.assert_array_equal(load_mask(palette, "ms3"), [[False, True], [True, False]])


def test_errors_name_the_file(tmp_path: Path) -> None:
    root = _s4(tmp_path)
    meta = root / "Single-source" / "s4_meta_data.csv"
    meta.write_text("name,start,split\nabc,0,train\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=f"^{meta}:1: missing column 'category'"):
        AVSBenchReader(root=root, subset="s4")
    meta.write_text("name,start,category,split\nabc,0,dog,dev\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=f"^{meta}:2: split 'dev'"):
        AVSBenchReader(root=root, subset="s4")
    meta.write_text("name,start,category,split\n../../x,0,dog,train\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=f"^{meta}:2: refusing file name"):
        AVSBenchReader(root=root, subset="s4")
    bad_mask = tmp_path / "bad.png"
    bad_mask.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(DataFormatError, match=f"^{bad_mask}: cannot decode mask image"):
        load_mask(bad_mask, "s4")
    bad_pkl = tmp_path / "bad.pkl"
    bad_pkl.write_bytes(pickle.dumps({"log_mel": 1}))
    with pytest.raises(UnsafePickleError, match=f"^{bad_pkl}: "):
        load_log_mel(bad_pkl)
    with pytest.raises(FileNotFoundError, match="no AVSBench MS3 layout"):
        AVSBenchReader(root=tmp_path, subset="ms3")


def _anti_aliased_disk(size: int = 32) -> np.ndarray:
    """A 0/255 disk whose rim pixels hold their coverage as grey (as an anti-aliased drawing)."""
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    distance = np.hypot(yy - size / 2, xx - size / 2)
    coverage = np.clip(size / 3 - distance + 0.5, 0.0, 1.0)
    return np.round(coverage * 255).astype(np.uint8)


def test_s4_masks_are_dithered_as_pil_convert_1_does(tmp_path: Path) -> None:
    grey = write_png(tmp_path / "grey.png", np.full((16, 16), 128))
    mask = read_official_mask(grey, "s4")
    assert mask.dtype == bool and 0.4 < mask.mean() < 0.6  # dithered, not all on (> 0) or off
    assert mask[:, :-1].any() and not mask.all()
    assert np.array_equal(load_mask(grey, "s4"), mask)
    disk = _anti_aliased_disk()
    path = write_png(tmp_path / "disk.png", disk)
    dithered = load_mask(path, "s4")
    assert dithered[disk == 255].all() and not dithered[disk == 0].any()  # exact where binary
    rim = (disk > 0) & (disk < 255)
    assert rim.sum() > 20 and 0.2 < dithered[rim].mean() < 0.8  # the rim is dithered
    # a plain 0/255 mask reads the same every way
    binary = write_png(tmp_path / "binary.png", (disk >= 128).astype(np.uint8) * 255)
    assert np.array_equal(load_mask(binary, "s4"), disk >= 128)
    assert np.array_equal(read_official_mask(binary, "ms3"), (disk >= 128).astype(np.float32))


def test_ms3_targets_are_the_palette_index_over_255_without_threshold(tmp_path: Path) -> None:
    grey = write_png(tmp_path / "grey.png", np.array([[0, 128], [255, 64]]))
    target = read_official_mask(grey, "ms3")
    assert target.dtype == np.float32
    np.testing.assert_array_equal(target, np.array([[0, 128], [255, 64]], np.float32) / 255)
    palette = write_png(tmp_path / "palette.png", np.array([[0, 1], [255, 0]]), mode="P")
    np.testing.assert_array_equal(
        read_official_mask(palette, "ms3"), np.array([[0, 1], [255, 0]], np.float32) / 255
    )
    np.testing.assert_array_equal(load_mask(palette, "ms3"), [[False, True], [True, False]])


def test_mask_census_counts_masks_holding_other_values_than_0_and_255(tmp_path: Path) -> None:
    root = _s4(tmp_path)
    (test,) = AVSBenchReader(root=root, subset="s4").videos("test")
    assert (mask_census([test]).masks, mask_census([test]).off_binary) == (5, 0)
    write_png(test.mask_paths[1], _anti_aliased_disk(4))
    Image.fromarray(np.eye(4, dtype=bool)).save(test.mask_paths[2])  # mode "1": binary
    census = mask_census([test])
    assert (census.masks, census.off_binary) == (5, 1)
    assert census.examples == [str(test.mask_paths[1])]
    assert "1 of 5 ground-truth masks hold values other than 0 and 255" in census.describe("s4")
