"""AVSBench-object (S4 single-source, MS3 multi-source): frames, masks and audio of each video.

Layouts accepted for ``root`` (first match wins, checked once):

- the release folder holding ``Single-source/s4_meta_data.csv`` + ``Single-source/s4_data/``
  (and ``Multi-sources/ms3_meta_data.csv`` + ``Multi-sources/ms3_data/``);
- the ``Single-source`` / ``Multi-sources`` folder itself (meta CSV + ``s4_data``/``ms3_data``);
- a folder holding the meta CSV next to the data folders (``visual_frames``, ``gt_masks``,
  ``audio_log_mel``, ``audio_wav``);
- the data folder itself (``s4_data``), with the meta CSV in it or in its parent.

Paths, as the official data loaders build them (``k`` = 1..5):

- S4: ``visual_frames/{split}/{category}/{name}/{name}_{k}.png``,
  ``gt_masks/{split}/{category}/{name}/{name}_{k}.png`` (train: frame 1 only),
  ``audio_log_mel/{split}/{category}/{name}.pkl``, ``audio_wav/{split}/{category}/{name}.wav``;
- MS3: ``visual_frames/{name}/{name}.mp4_{k}.png``, ``gt_masks/{split}/{name}/{name}_{k}.png``,
  ``audio_log_mel/{split}/{name}.pkl``, ``audio_wav/{split}/{name}.wav``.

``log_mel_path`` and ``wav_path`` are set only when the file exists; frame and mask paths are
built without touching the disk.

Ground-truth masks are read as the official loaders read them (:func:`read_official_mask`): S4
opens a mask with PIL's ``convert('1')``, which Floyd-Steinberg-dithers grey values; MS3 does
``convert('P')`` then ``ToTensor()``, so its target is the palette index (or grey level) / 255,
with no threshold. On masks holding only 0 and 255 both are plain binary masks;
:func:`mask_census` counts the masks that hold other values (grey, anti-aliased edges, palette
indices such as 1), where the official reading matters.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from PIL import Image, UnidentifiedImageError

from avs_synth.errors import DataFormatError
from avs_synth.records import AVSBenchVideo
from avs_synth.safe_paths import resolve_under

if TYPE_CHECKING:  # torch is loaded with the first log-mel (building a plan needs none)
    import torch

logger = logging.getLogger(__name__)

NUM_FRAMES = 5
SPLITS = ("train", "val", "test")
DATA_FOLDERS = ("visual_frames", "gt_masks", "audio_log_mel", "audio_wav")
_RELEASE_FOLDER = {"s4": "Single-source", "ms3": "Multi-sources"}


def _has_data(folder: Path) -> bool:
    return any((folder / name).is_dir() for name in DATA_FOLDERS)


def locate_avsbench(root: str | PathLike[str], subset: Literal["s4", "ms3"]) -> tuple[Path, Path]:
    """``(meta_csv, data_dir)`` for ``subset`` under ``root`` (see the module docstring).

    Raises:
        FileNotFoundError: no layout matches; the message lists what was looked for.
    """
    if subset not in _RELEASE_FOLDER:
        raise ValueError(f"subset must be 's4' or 'ms3', got {subset!r}")
    root = Path(root)
    meta_name, data_name = f"{subset}_meta_data.csv", f"{subset}_data"
    for folder in (root / _RELEASE_FOLDER[subset], root, root / data_name):
        for data_dir in (folder / data_name, folder):
            if not _has_data(data_dir):
                continue
            for meta_dir in (folder, data_dir, folder.parent, root):
                meta = meta_dir / meta_name
                if meta.is_file():
                    return meta, data_dir
    raise FileNotFoundError(
        f"{root}: no AVSBench {subset.upper()} layout found; expected "
        f"{_RELEASE_FOLDER[subset]}/{meta_name} + {_RELEASE_FOLDER[subset]}/{data_name}/"
        f"{{{','.join(DATA_FOLDERS[:3])}}}, or {meta_name} next to {data_name}/ or to the data "
        "folders"
    )


def _open_mask(path: Path) -> Image.Image:
    try:
        image = Image.open(path)
        image.load()
        return image
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: mask not found") from None
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError) as error:
        raise DataFormatError(path, f"cannot decode mask image: {error}") from None


def read_official_mask(path: str | PathLike[str], subset: Literal["s4", "ms3"]) -> np.ndarray:
    """A ground-truth mask exactly as the official AVSBench loader gives it (``[H, W]``).

    - ``s4``: ``Image.open(path).convert('1')`` then ``ToTensor()``: booleans, grey values
      Floyd-Steinberg-dithered (a 50 % grey area becomes a checkerboard).
    - ``ms3``: ``Image.open(path).convert('P')`` then ``ToTensor()``: float32 palette index (the
      grey level for an ``L`` image) divided by 255, no threshold.

    Raises:
        FileNotFoundError: no such file.
        DataFormatError: not a readable image (names the file).
    """
    if subset not in _RELEASE_FOLDER:
        raise ValueError(f"subset must be 's4' or 'ms3', got {subset!r}")
    path = Path(path)
    with _open_mask(path) as image:
        if subset == "s4":
            return np.array(image.convert("1"), dtype=bool)
        return np.asarray(image.convert("P"), dtype=np.uint8).astype(np.float32) / 255.0


def load_mask(path: str | PathLike[str], subset: Literal["s4", "ms3"]) -> np.ndarray:
    """A ground-truth mask as booleans ``[H, W]`` for training and scoring, from the official
    reading (:func:`read_official_mask`): S4's dithered mask as is; MS3's target where it is not
    zero (identical to the official target wherever masks hold only 0 and 255; see
    :func:`mask_census` for the masks where it is not).

    Raises:
        FileNotFoundError: no such file.
        DataFormatError: the file is not a readable image (names the file).
    """
    official = read_official_mask(path, subset)
    return official if official.dtype == bool else official > 0


@dataclass
class MaskCensus:
    """How many ground-truth masks hold values other than 0 and 255.

    Attributes:
        masks: masks read.
        off_binary: masks holding any other value (grey levels, anti-aliased edges, palette
            indices other than 0 and 255).
        examples: up to five such masks.
    """

    masks: int = 0
    off_binary: int = 0
    examples: list[str] = field(default_factory=list)

    def describe(self, subset: str) -> str:
        """One line for the log."""
        rule = {
            "s4": "the official S4 loader dithers them (PIL convert('1')), as done here",
            "ms3": "the official MS3 loader scores them as soft targets (index / 255); here "
            "they count as foreground wherever not 0",
        }[subset]
        where = f" (e.g. {', '.join(self.examples[:2])})" if self.examples else ""
        return (
            f"AVSBench {subset.upper()}: {self.off_binary} of {self.masks} ground-truth masks hold "
            f"values other than 0 and 255{where}; {rule}"
        )


def stored_values(path: str | PathLike[str]) -> np.ndarray:
    """The distinct values a mask PNG stores (palette indices, grey levels, or RGB channel
    values), as the file holds them."""
    with _open_mask(Path(path)) as image:
        if image.mode == "1":
            return np.unique(np.asarray(image, dtype=np.uint8) * 255)
        return np.unique(np.asarray(image))


def mask_census(videos: list[AVSBenchVideo]) -> MaskCensus:
    """Counts the masks of ``videos`` holding values other than 0 and 255 (see
    :class:`MaskCensus`); a missing or unreadable mask raises as :func:`load_mask`."""
    census = MaskCensus()
    for video in videos:
        for path in video.mask_paths:
            if path is None:
                continue
            census.masks += 1
            values = stored_values(path)
            if not np.isin(values, (0, 255)).all():
                census.off_binary += 1
                if len(census.examples) < 5:
                    census.examples.append(str(path))
    return census


def load_log_mel(video: AVSBenchVideo | str | PathLike[str]) -> torch.Tensor:
    """The precomputed VGGish log-mel of a video, ``[5, 1, 96, 64]`` float32, loaded safely.

    Raises:
        FileNotFoundError: the video has no ``.pkl`` (or the file is gone).
        UnsafePickleError: the pickle is not a plain tensor (see :mod:`avs_synth.safe_pickle`).
        DataFormatError: the tensor does not have the expected shape.
    """
    if isinstance(video, AVSBenchVideo):
        if video.log_mel_path is None:
            raise FileNotFoundError(f"AVSBench video {video.name}: no audio_log_mel .pkl found")
        path = video.log_mel_path
    else:
        path = Path(video)
    from avs_synth.safe_pickle import load_tensor_pickle

    tensor = load_tensor_pickle(path)
    if tensor.ndim == 3 and tensor.shape[1:] == (96, 64):
        tensor = tensor.unsqueeze(1)  # [5, 96, 64] -> [5, 1, 96, 64]
    if tuple(tensor.shape) != (NUM_FRAMES, 1, 96, 64):
        raise DataFormatError(path, f"log-mel shape {list(tensor.shape)}, expected [5, 1, 96, 64]")
    return tensor.float()


class AVSBenchReader:
    """Reads the AVSBench-object S4 or MS3 metadata and builds each video's file paths.

    Args:
        root: the AVSBench folder (lenient, see the module docstring).
        subset: ``s4`` (single source, 23 categories) or ``ms3`` (multiple sources).

    Raises:
        FileNotFoundError: no layout found under ``root``.
        DataFormatError: the meta CSV lacks a column, or a row has an unknown split, an empty
            name or an unsafe name (names the file and line).
    """

    def __init__(self, *, root: str | PathLike[str], subset: Literal["s4", "ms3"]) -> None:
        self.root = Path(root)
        self.subset = subset
        self.meta_csv, self.data_dir = locate_avsbench(self.root, subset)
        self._videos = self._read_meta()

    def _read_meta(self) -> list[AVSBenchVideo]:
        path = self.meta_csv
        videos: list[AVSBenchVideo] = []
        try:
            with path.open(newline="", encoding="utf-8-sig") as handle:
                reader = csv.reader(handle)
                header = [h.strip() for h in next(reader, [])]
                required = ["split"] + (["category"] if self.subset == "s4" else [])
                for column in required:
                    if column not in header:
                        raise DataFormatError(path, f"missing column {column!r}", line=1)
                split_at = header.index("split")
                category_at = header.index("category") if self.subset == "s4" else None
                for fields in reader:
                    if not fields or not any(f.strip() for f in fields):
                        continue
                    line = reader.line_num
                    if len(fields) != len(header):
                        raise DataFormatError(
                            path, f"expected {len(header)} fields, got {len(fields)}", line=line
                        )
                    name, split = fields[0].strip(), fields[split_at].strip()
                    category = fields[category_at].strip() if category_at is not None else None
                    if split not in SPLITS:
                        raise DataFormatError(
                            path, f"split {split!r} is not train/val/test", line=line
                        )
                    if not name or (category is not None and not category):
                        raise DataFormatError(path, "empty name or category", line=line)
                    extra = {
                        h: f.strip()
                        for h, f in zip(header, fields, strict=True)
                        if h not in ("split", "category") and h != header[0]
                    }
                    videos.append(self._video(name, split, category, extra, line))
        except csv.Error as error:
            raise DataFormatError(path, f"malformed CSV: {error}") from None
        except UnicodeDecodeError as error:
            raise DataFormatError(path, f"not UTF-8 text: {error.reason}") from None
        return videos

    def _video(
        self, name: str, split: str, category: str | None, extra: dict[str, str], line: int
    ) -> AVSBenchVideo:
        data = self.data_dir

        def under(*parts: str) -> Path:
            return resolve_under(data, "/".join(parts), source=self.meta_csv, line=line)

        frames_k = range(1, NUM_FRAMES + 1)
        if self.subset == "s4":
            assert category is not None
            frames = tuple(
                under("visual_frames", split, category, name, f"{name}_{k}.png") for k in frames_k
            )
            masks = tuple(
                under("gt_masks", split, category, name, f"{name}_{k}.png")
                if split != "train" or k == 1
                else None
                for k in frames_k
            )
            log_mel = under("audio_log_mel", split, category, f"{name}.pkl")
            wav = under("audio_wav", split, category, f"{name}.wav")
        else:
            frames = tuple(under("visual_frames", name, f"{name}.mp4_{k}.png") for k in frames_k)
            masks = tuple(under("gt_masks", split, name, f"{name}_{k}.png") for k in frames_k)
            log_mel = under("audio_log_mel", split, f"{name}.pkl")
            wav = under("audio_wav", split, f"{name}.wav")
        return AVSBenchVideo(
            subset=self.subset,
            name=name,
            split=split,  # type: ignore[arg-type]
            category=category,
            frame_paths=frames,
            mask_paths=masks,
            log_mel_path=log_mel if log_mel.is_file() else None,
            wav_path=wav if wav.is_file() else None,
            extra=extra,
        )

    def __len__(self) -> int:
        return len(self._videos)

    def videos(self, split: str | None = None) -> list[AVSBenchVideo]:
        """The videos of ``split`` (``train``/``val``/``test``; None: all) in meta-CSV order."""
        if split is not None and split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS} or None, got {split!r}")
        return [v for v in self._videos if split is None or v.split == split]

    @property
    def categories(self) -> list[str]:
        """The S4 categories (sorted); empty for MS3, which has none."""
        return sorted({v.category for v in self._videos if v.category is not None})
