"""The AVS-Synthetic release read as the authors' loader reads it."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from avs_synth.safe_pickle import UnsafePickleError
from avs_synth.sources.avs_synthetic import AVSSyntheticReader, youtube_id_of
from tests.support.avs_synthetic_support import AUDIOS, write_avs_synthetic


def test_rows_by_position_and_split_by_name(tmp_path: Path) -> None:
    root = write_avs_synthetic(tmp_path / "avss")
    reader = AVSSyntheticReader(root)
    rows = reader.rows()
    assert len(rows) == 12 and not reader.skipped
    assert {r.split for r in rows} == {"train", "val", "test"}  # "validate" is ours "val"
    first = rows[0]
    assert (first.instance_id, first.image_id, first.class_name, first.class_id) == (
        "inst_0000",
        "lvis_0000",
        "dog",
        3,
    )
    assert first.source_dataset == "LVIS" and first.audio_name is None and first.line == 2
    test = next(r for r in rows if r.split == "test")
    assert test.audio_name in AUDIOS[test.class_id]
    assert reader.class_audios() == AUDIOS


def test_bad_rows_are_skipped_and_counted(tmp_path: Path) -> None:
    extra = [
        ["short", "row"],
        ["i1", "im1", "", "", "dog", "three", "LVIS", "train", ""],
        ["i2", "im2", "", "", "dog", "3", "LVIS", "holdout", ""],
        ["i3", "im3", "", "", "dog", "3", "LVIS", "test", ""],
    ]
    root = write_avs_synthetic(tmp_path / "avss", extra_rows=extra)
    text = (root / "annotations.csv").read_text(encoding="utf-8")
    (root / "annotations.csv").write_text("\ufeff" + text, encoding="utf-8")  # a BOM drops nothing
    reader = AVSSyntheticReader(root)
    assert len(reader.rows()) == 12
    assert dict(reader.skipped) == {
        "short_row": 1,
        "bad_class_id": 1,
        "unknown_split": 1,
        "missing_audio_name": 1,
    }


def test_masks_are_read_with_convert_1_like_the_authors_loader(tmp_path: Path) -> None:
    root = write_avs_synthetic(tmp_path / "avss")
    reader = AVSSyntheticReader(root)
    row = reader.rows()[0]
    grey = np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (48, 1))  # anti-aliased / grey
    Image.fromarray(grey).save(reader.mask_path(row))
    mask = reader.read_mask(row)
    expected = np.array(Image.open(reader.mask_path(row)).convert("1"), dtype=bool)
    assert np.array_equal(mask, expected)
    assert 0.3 < mask.mean() < 0.7 and not np.array_equal(mask, grey > 127)  # dithered


def test_the_pickle_is_read_without_running_code(tmp_path: Path) -> None:
    root = write_avs_synthetic(tmp_path / "avss")

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'PWNED'}",))

    (root / "category_for_vggsound_audios.pkl").write_bytes(pickle.dumps({3: [Evil()]}))
    with pytest.raises(UnsafePickleError, match="category_for_vggsound_audios.pkl"):
        AVSSyntheticReader(root).class_audios()
    assert not (tmp_path / "PWNED").exists()


def test_youtube_ids_of_audio_names() -> None:
    assert youtube_id_of("dog-CCCC_C3_000030") == "dog-CCCC_C3"
    assert youtube_id_of("-0BIyqJj9ZU_30_40") == "-0BIyqJj9ZU"
    assert youtube_id_of("short_10") is None and youtube_id_of("no-start-here") is None
