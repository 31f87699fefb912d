"""A small AVS-Synthetic release in the layout the authors distribute (Zenodo record 8125822)."""

from __future__ import annotations

import csv
import pickle
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

HEADER = [
    "inst_id",
    "img_id",
    "bbox",
    "area",
    "category",
    "category_id",
    "dataset",
    "split",
    "audio",
]
CLASSES = {3: "dog", 7: "guitar"}
# VGGSound-style audio names: an 11-character YouTube id, then the start second
AUDIOS = {
    3: ["dogAAAAAAA1_000010", "dogBBBBBBB2_000020", "dog-CCCC_C3_000030"],
    7: ["gtrAAAAAAA1_000040", "gtrBBBBBBB2_000050"],
}


def audio_samples(name: str, seconds: float = 2.5, rate: int = 16000) -> np.ndarray:
    """The int16 samples of an audio (a tone whose pitch depends on the name)."""
    t = np.arange(int(seconds * rate)) / rate
    freq = 200 + 40 * (sum(map(ord, name)) % 20)
    return (8000 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def write_avs_synthetic(root: Path, *, extra_rows: list[list[str]] | None = None) -> Path:
    """Pictures with one square object each; train rows without audio, val / test rows with."""
    for folder in ("images", "masks", "audios"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    rows = []
    rng = np.random.default_rng(0)
    splits = ["train"] * 4 + ["validate", "test"]
    for i, split in enumerate(splits * 2):
        class_id = 3 if i % 2 == 0 else 7
        image_id, inst_id = f"lvis_{i:04d}", f"inst_{i:04d}"
        picture = rng.integers(0, 200, size=(48, 64, 3), dtype=np.uint8)
        mask = np.zeros((48, 64), dtype=np.uint8)
        mask[8 + i : 30 + i, 10 + 2 * i : 40 + 2 * i] = 255
        picture[mask > 0] = (250, 20, 20) if class_id == 3 else (20, 20, 250)
        Image.fromarray(picture).save(root / "images" / f"{image_id}.jpg", quality=90)
        Image.fromarray(mask).save(root / "masks" / f"{inst_id}.png")
        audio = "" if split == "train" else AUDIOS[class_id][i % len(AUDIOS[class_id])]
        rows.append(
            [
                inst_id,
                image_id,
                "[0, 0, 1, 1]",
                "1",
                CLASSES[class_id],
                str(class_id),
                "LVIS",
                split,
                audio,
            ]
        )
    for names in AUDIOS.values():
        for name in names:
            sf.write(root / "audios" / f"{name}.wav", audio_samples(name), 16000, subtype="PCM_16")
    with open(root / "annotations.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows + (extra_rows or []))
    (root / "category_for_vggsound_audios.pkl").write_bytes(pickle.dumps(AUDIOS, protocol=2))
    return root
