"""AVSBench S4 / MS3 as a torch Dataset, with the fine-tuning selections of the paper.

- :func:`select_fraction` keeps ``round(n * f)`` videos of each category (at least one), chosen by
  a seeded hash of the video name, so a smaller fraction is a subset of a larger one and the
  choice does not depend on the CSV order (MS3 has no categories: its videos form one group).
- :func:`filter_categories` keeps or drops S4 categories (the open-set protocol;
  :func:`open_set_split` reads the shipped 11 seen / 12 unseen split).
- :class:`AVSBenchDataset` yields one video as a list of :class:`FrameSample`: S4 train videos
  give their one annotated frame (``frames="annotated"``), every other case its five frames.
  Audio is the clip's log-mel ``.pkl`` (read by the restricted unpickler of
  :mod:`avs_synth.safe_pickle`) or its wav (through the VGGish frontend): one example per frame.
  Masks are read as the official loaders read them (:func:`avs_synth.sources.avsbench.load_mask`:
  S4 dithered by PIL's ``convert('1')``); for scoring (``with_gt``) the dataset first logs how
  many masks hold values other than 0 and 255 (:func:`~avs_synth.sources.avsbench.mask_census`).
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from importlib.resources import files
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from avs_model.data.augment import AugmentConfig, JointTransform, ResizeConfig
from avs_model.data.frame_batch import FrameSample
from avs_synth.audio.decode import load_audio
from avs_synth.audio.logmel import waveform_to_examples
from avs_synth.errors import DataFormatError
from avs_synth.records import AVSBenchVideo
from avs_synth.seeded_order import seeded_key, seeded_sorted
from avs_synth.sources.avsbench import NUM_FRAMES, load_log_mel, load_mask, mask_census

logger = logging.getLogger(__name__)

AudioSource = Literal["auto", "log_mel", "wav"]
FrameChoice = Literal["annotated", "all"]

ALL_VIDEOS = "__all__"


def select_fraction(
    videos: Sequence[AVSBenchVideo], fraction: float, *, seed: int = 0
) -> list[AVSBenchVideo]:
    """Keep ``max(1, round(n * fraction))`` videos of each category, chosen by a seeded hash.

    Args:
        videos: the candidate videos (usually one split).
        fraction: in (0, 1]; 1 keeps everything.
        seed: the hash seed.

    Returns:
        The kept videos, in their input order.
    """
    if not 0 < fraction <= 1:
        raise ValueError(
            f"fraction must be in (0, 1], got {fraction} (0 % of the data is zero-shot: evaluate "
            "the pre-trained checkpoint instead)"
        )
    groups: dict[str, list[AVSBenchVideo]] = defaultdict(list)
    for video in videos:
        groups[video.category or ALL_VIDEOS].append(video)
    kept: set[str] = set()
    for group, members in groups.items():
        count = max(1, int(round(len(members) * fraction)))
        ordered = seeded_sorted(members, seed=seed, identity=lambda v: v.name, salt="fraction")
        kept.update(v.name for v in ordered[:count])
        logger.debug("fraction %.3g: %s keeps %d of %d", fraction, group, count, len(members))
    return [v for v in videos if v.name in kept]


def open_set_split() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(seen, unseen)`` S4 categories of the shipped open-set split."""
    resource = files("avs_model") / "recipes" / "open_set_split.txt"
    seen: list[str] = []
    unseen: list[str] = []
    for number, raw in enumerate(resource.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2 or parts[0] not in ("seen", "unseen"):
            raise DataFormatError(
                str(resource), f"expected 'seen NAME' or 'unseen NAME', got {raw!r}", line=number
            )
        (seen if parts[0] == "seen" else unseen).append(parts[1])
    return tuple(seen), tuple(unseen)


def filter_categories(
    videos: Iterable[AVSBenchVideo],
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    known: Sequence[str] | None = None,
) -> list[AVSBenchVideo]:
    """Videos whose category is in ``include`` (all when empty) and not in ``exclude``.

    Args:
        videos: the videos.
        include, exclude: S4 category names.
        known: the dataset's categories; names outside it are an error (catches typos).
    """
    if known is not None:
        unknown = sorted((set(include) | set(exclude)) - set(known))
        if unknown:
            raise ValueError(f"unknown categories {unknown}; the dataset has {sorted(known)}")
    include_set, exclude_set = set(include), set(exclude)
    out = []
    for video in videos:
        if (include_set or exclude_set) and video.category is None:
            raise ValueError("category filters apply to S4 only (MS3 videos have no category)")
        if include_set and video.category not in include_set:
            continue
        if video.category in exclude_set:
            continue
        out.append(video)
    return out


class AVSBenchDataset(Dataset):
    """AVSBench videos as lists of frames (see the module docstring)."""

    def __init__(
        self,
        *,
        videos: Sequence[AVSBenchVideo],
        resize: ResizeConfig,
        augment: AugmentConfig | None = None,
        audio: AudioSource = "auto",
        frames: FrameChoice = "all",
        with_gt: bool = False,
        seed: int = 0,
    ) -> None:
        """Args:
        videos: the videos (from ``AVSBenchReader.videos(split)``, possibly selected).
        resize: model input size.
        augment: training augmentation, the same draw for every frame of a video (None: off).
        audio: ``auto`` (the ``.pkl`` when present, else the wav), ``log_mel`` or ``wav``.
        frames: ``annotated`` keeps only frames with a mask (S4 train: frame 1); ``all`` keeps
            the five (unannotated ones are marked invalid for the loss).
        with_gt: also return each frame's mask at its own resolution (for scoring).
        seed: base seed of the augmentation (mixed with the video index and ``set_epoch``).
        """
        if not videos:
            raise ValueError("no AVSBench videos to load (check the split, fraction and filters)")
        self.videos = list(videos)
        self.transform = JointTransform(resize=resize, augment=augment)
        self.audio = audio
        self.frames = frames
        self.with_gt = with_gt
        self.seed = seed
        self.epoch = 0
        if with_gt:
            for subset in sorted({v.subset for v in self.videos}):
                census = mask_census([v for v in self.videos if v.subset == subset])
                log = logger.warning if census.off_binary else logger.info
                log("%s", census.describe(subset))

    def set_epoch(self, epoch: int) -> None:
        """Change the augmentation draws (call once per epoch)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.videos)

    def frame_indices(self, video: AVSBenchVideo) -> list[int]:
        """The 0-based frames this dataset yields for ``video``."""
        if self.frames == "annotated":
            return [k for k, path in enumerate(video.mask_paths) if path is not None]
        return list(range(NUM_FRAMES))

    def load_audio(self, video: AVSBenchVideo) -> torch.Tensor:
        """The video's five log-mel examples ``[5, 1, 96, 64]``."""
        use_pkl = self.audio == "log_mel" or (self.audio == "auto" and video.log_mel_path)
        if use_pkl:
            return load_log_mel(video)
        if video.wav_path is None:
            raise FileNotFoundError(
                f"AVSBench video {video.name}: no audio_wav/{video.name}.wav"
                + (" (and no log-mel .pkl)" if self.audio == "auto" else "")
            )
        samples = load_audio(video.wav_path, sample_rate=16_000)
        return waveform_to_examples(samples, num_examples=NUM_FRAMES).float()

    def __getitem__(self, index: int) -> list[FrameSample]:
        video = self.videos[index]
        audio = self.load_audio(video)  # [5, 1, 96, 64]
        draw = seeded_key(self.seed, "avsbench-augment", self.epoch, video.name)
        out = []
        for k in self.frame_indices(video):
            image = _read_frame(video.frame_paths[k])
            mask_path = video.mask_paths[k]
            mask = load_mask(mask_path, video.subset) if mask_path is not None else None
            if mask is not None and mask.shape != (image.height, image.width):
                # masks are scored at their own resolution; the model's target follows the frame
                mask_for_frame = _resize_mask(mask, (image.height, image.width))
            else:
                mask_for_frame = mask
            frame = self.transform(image, mask_for_frame, random.Random(draw))
            out.append(
                FrameSample(
                    image=frame.image,
                    mask=frame.mask,
                    audio=audio[k],
                    content_size=frame.content_size,
                    gt_mask=torch.from_numpy(mask) if self.with_gt and mask is not None else None,
                    category=video.category or "",
                    key=f"{video.name}_{k + 1}",
                )
            )
        if self.with_gt and any(f.gt_mask is None for f in out):
            raise ValueError(f"AVSBench video {video.name}: frames without masks cannot be scored")
        return out


def _read_frame(path: Path) -> Image.Image:
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: AVSBench frame not found") from None
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError) as error:
        raise DataFormatError(path, f"cannot decode frame image: {error}") from None


def _resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    image = Image.fromarray(mask.astype(np.uint8) * 255).resize((size[1], size[0]), Image.NEAREST)
    return np.asarray(image) > 127
