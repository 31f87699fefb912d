"""Small real-format data for the training tests: synthetic shards and a mini AVSBench.

- :func:`build_shards`: a real ``avs-synth`` build (manifest, train/val/test shards, audio bank)
  from the hand-made world of ``build_support`` (64 x 48 JPEGs, dog and cat clips).
- :func:`write_mini_avsbench`: the AVSBench release layout (``Single-source/s4_meta_data.csv`` +
  ``s4_data/``, ``Multi-sources/...``) with 32 x 32 PNG frames holding one coloured square per
  category, binary masks, ``pickle.dump(tensor)`` log-mel files and 5 s wavs.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from PIL import Image

from avs_model.runtime.train_config import TrainConfig
from avs_synth.audio.logmel import waveform_to_examples
from avs_synth.building.config import BuildConfig, RunOptions
from avs_synth.building.plan import make_plan
from avs_synth.building.run import execute_plan
from avs_synth.building.splits import SplitFractions
from tests.support.build_support import MATCHES, make_world

S4_CATEGORIES = ("dog_barking", "helicopter", "cat_meowing")
FRAME_SIZE = 32
COLORS = {"dog_barking": (220, 40, 40), "helicopter": (40, 220, 40), "cat_meowing": (40, 40, 220)}


def build_shards(root: Path, *, negatives: tuple[str, ...] = ()) -> Path:
    """A complete build under ``root/shards`` (train 21, val 12, test 9 samples; 4 bank shards;
    ``negatives``: these negative kinds, one negative per positive)."""
    records, clips = make_world(root / "world")
    config = BuildConfig(
        fractions=SplitFractions(train=0.5, val=0.25, test=0.25),
        shard_size=4,
        bank_clips_per_shard=2,
        negative_ratio=1.0 if negatives else 0.5,
        negatives=negatives,
        max_per_picture=2,
    )
    plan = make_plan(records=records, clips=clips, matches=MATCHES, config=config)
    out = root / "shards"
    execute_plan(plan, config=config, out=out, run=RunOptions(progress=False))
    return out


def tiny_config(**changes) -> TrainConfig:
    """autr_tiny at 32 px, no workers, few steps: the tests' TrainConfig."""
    config = TrainConfig(
        name="test",
        model="autr_tiny",
        batch_size=4,
        max_steps=2,
        log_every_steps=1,
        checkpoint_every_steps=1000,
    )
    config.data.resize.size = 32
    config.data.num_workers = 0
    config.data.shuffle_buffer = 8
    return config.with_updates(**changes) if changes else config


def _frame(category: str, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(90, 140, size=(FRAME_SIZE, FRAME_SIZE, 3), dtype=np.uint8)
    mask = np.zeros((FRAME_SIZE, FRAME_SIZE), dtype=bool)
    x = 4 + (seed + k) % 12
    y = 6 + (seed * 3 + k) % 10
    mask[y : y + 12, x : x + 14] = True
    pixels[mask] = COLORS.get(category, (200, 200, 40))
    return pixels, mask


def _wav(path: Path, category: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    freq = {"dog_barking": 400.0, "helicopter": 90.0, "cat_meowing": 900.0}.get(category, 250.0)
    t = np.arange(5 * 16000) / 16000.0
    samples = 0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, samples.astype(np.float32), 16000, subtype="PCM_16")
    return sf.read(path, dtype="float32")[0]


def write_mini_avsbench(root: Path, *, videos_per_split: dict[str, int] | None = None) -> Path:
    """An AVSBench folder (S4: ``S4_CATEGORIES``; MS3: two videos per split)."""
    counts = videos_per_split or {"train": 4, "val": 1, "test": 2}
    single = root / "Single-source"
    data = single / "s4_data"
    rows = ["name,start,category,split"]
    seed = 0
    for category in S4_CATEGORIES:
        for split, count in counts.items():
            for n in range(count):
                seed += 1
                name = f"{category[:3]}{split[:2]}{n}-x_Y"
                rows.append(f"{name},0,{category},{split}")
                for k in range(1, 6):
                    pixels, mask = _frame(category, k, seed)
                    frame = data / "visual_frames" / split / category / name / f"{name}_{k}.png"
                    frame.parent.mkdir(parents=True, exist_ok=True)
                    Image.fromarray(pixels).save(frame)
                    if split != "train" or k == 1:
                        gt = data / "gt_masks" / split / category / name / f"{name}_{k}.png"
                        gt.parent.mkdir(parents=True, exist_ok=True)
                        Image.fromarray(mask.astype(np.uint8) * 255).save(gt)
                wav = data / "audio_wav" / split / category / f"{name}.wav"
                samples = _wav(wav, category, seed)
                pkl = data / "audio_log_mel" / split / category / f"{name}.pkl"
                pkl.parent.mkdir(parents=True, exist_ok=True)
                pkl.write_bytes(pickle.dumps(waveform_to_examples(samples, num_examples=5)))
    (single / "s4_meta_data.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    multi = root / "Multi-sources"
    mdata = multi / "ms3_data"
    rows = ["video_id,split"]
    for split in ("train", "val", "test"):
        for n in range(2):
            seed += 1
            name = f"ms{split[:2]}{n}"
            rows.append(f"{name},{split}")
            for k in range(1, 6):
                pixels, mask = _frame("dog_barking", k, seed)
                frame = mdata / "visual_frames" / name / f"{name}.mp4_{k}.png"
                frame.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(pixels).save(frame)
                gt = mdata / "gt_masks" / split / name / f"{name}_{k}.png"
                gt.parent.mkdir(parents=True, exist_ok=True)
                palette = Image.fromarray(mask.astype(np.uint8), mode="P")
                palette.putpalette([0, 0, 0, 128, 0, 0] + [0] * 762)
                palette.save(gt)
            pkl = mdata / "audio_log_mel" / split / f"{name}.pkl"
            pkl.parent.mkdir(parents=True, exist_ok=True)
            pkl.write_bytes(
                pickle.dumps(
                    torch.randn(5, 1, 96, 64, generator=torch.Generator().manual_seed(seed))
                )
            )
    (multi / "ms3_meta_data.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root
