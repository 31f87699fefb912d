"""AVS-Synthetic, the annotation-free AVS paper's released dataset (Zenodo record 8125822).

Layout under ``ROOT``::

    annotations.csv                       one row per instance, with a header
    images/{image_id}.jpg                 the pictures
    masks/{instance_id}.png               one binary mask per instance
    audios/{name}.wav                     VGGSound audio
    category_for_vggsound_audios.pkl      class id -> the audio names of that class

The rows are read as the authors' loader reads them: by column position (0 instance id, 1 image
id, 4 class name, 5 class id, 6 source dataset, 8 audio name, given for val/test rows only) plus
the ``split`` column by name (``train``, ``validate``, ``test``). Masks are opened as that loader
opens them: PIL ``convert('1')`` (which dithers grey values). A train row has no audio of its own:
the loader draws a fresh audio of its class for every sample, and of a wav it takes VGGish
example 1 (int16 / 32768, channels averaged, 16 kHz). The pickle is read by a restricted
unpickler (plain data only). Bad rows are skipped and counted by reason, with the first line of
each reason logged.
"""

from __future__ import annotations

import csv
import logging
import re
from collections import Counter
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np
from PIL import Image

from avs_synth.errors import DataFormatError
from avs_synth.safe_paths import resolve_under
from avs_synth.safe_pickle import load_plain_pickle

logger = logging.getLogger(__name__)

SPLITS = {"train": "train", "validate": "val", "test": "test"}  # the release's → ours
ANNOTATIONS = "annotations.csv"
CLASS_AUDIOS = "category_for_vggsound_audios.pkl"
_YOUTUBE_ID = re.compile(r"^([A-Za-z0-9_-]{11})_\d+")
_COLUMNS = 9


@dataclass(frozen=True)
class SyntheticInstance:
    """One row of ``annotations.csv``.

    Args:
        instance_id: the mask's file stem.
        image_id: the picture's file stem.
        class_name, class_id: the AVS-Synthetic category.
        source_dataset: where the instance comes from (LVIS, Open Images...), verbatim.
        split: ``train``, ``val`` or ``test`` (the release's ``validate`` is ``val``).
        audio_name: the row's own audio (val / test); None for train rows.
        line: the row's line in ``annotations.csv``.
    """

    instance_id: str
    image_id: str
    class_name: str
    class_id: int
    source_dataset: str
    split: str
    audio_name: str | None
    line: int


def youtube_id_of(audio_name: str) -> str | None:
    """The YouTube id a VGGSound-style audio name starts with (``{ytid}_{start}...``), if any."""
    match = _YOUTUBE_ID.match(audio_name)
    return match.group(1) if match else None


class AVSSyntheticReader:
    """The rows, files and class audios of an AVS-Synthetic folder (see the module docstring)."""

    def __init__(self, root: str | PathLike[str]) -> None:
        self.root = Path(root)
        self.annotations = self.root / ANNOTATIONS
        if not self.annotations.is_file():
            raise FileNotFoundError(f"{self.annotations}: not found (is {root} AVS-Synthetic?)")
        self.skipped: Counter[str] = Counter()

    def _skip(self, reason: str, line: int, detail: str) -> None:
        if not self.skipped[reason]:
            logger.warning(
                "%s:%d: %s (row skipped; more of the kind are counted)",
                self.annotations,
                line,
                detail,
            )
        self.skipped[reason] += 1

    def rows(self) -> list[SyntheticInstance]:
        """Every readable row; the others are counted in :attr:`skipped` by reason.

        Raises:
            DataFormatError: a file that is not UTF-8 CSV text, or has no header / no ``split``.
        """
        try:
            return self._read_rows()
        except UnicodeDecodeError as error:
            raise DataFormatError(self.annotations, f"not UTF-8 text: {error.reason}") from None
        except csv.Error as error:
            raise DataFormatError(self.annotations, f"malformed CSV: {error}") from None

    def _read_rows(self) -> list[SyntheticInstance]:
        with open(self.annotations, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise DataFormatError(self.annotations, "empty file (no header row)")
            names = [h.strip() for h in header]
            if "split" not in names:
                raise DataFormatError(self.annotations, "no 'split' column in the header", line=1)
            split_at = names.index("split")
            out = []
            for line, row in enumerate(reader, start=2):
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) < max(_COLUMNS, split_at + 1):
                    self._skip("short_row", line, f"{len(row)} columns, expected {_COLUMNS}")
                    continue
                split = SPLITS.get(row[split_at].strip())
                if split is None:
                    self._skip("unknown_split", line, f"split {row[split_at]!r}")
                    continue
                try:
                    class_id = int(float(row[5]))
                except ValueError:
                    self._skip("bad_class_id", line, f"class id {row[5]!r} is not a number")
                    continue
                instance_id, image_id = row[0].strip(), row[1].strip()
                if not instance_id or not image_id:
                    self._skip("missing_id", line, "empty instance or image id")
                    continue
                audio = row[8].strip() or None
                if split != "train" and audio is None:
                    self._skip("missing_audio_name", line, f"a {split} row without an audio")
                    continue
                out.append(
                    SyntheticInstance(
                        instance_id=instance_id,
                        image_id=image_id,
                        class_name=row[4].strip(),
                        class_id=class_id,
                        source_dataset=row[6].strip(),
                        split=split,
                        audio_name=audio if split != "train" else None,
                        line=line,
                    )
                )
        return out

    def class_audios(self) -> dict[int, list[str]]:
        """Class id → its audio names, from the pickle (restricted unpickler; checked)."""
        path = self.root / CLASS_AUDIOS
        if not path.is_file():
            raise FileNotFoundError(f"{path}: not found")
        data = load_plain_pickle(path)
        if not isinstance(data, dict):
            raise DataFormatError(
                path, f"expected a dict of class id -> audio names, got {type(data).__name__}"
            )
        out: dict[int, list[str]] = {}
        for key, names in data.items():
            if isinstance(key, bool) or not isinstance(key, int | float | str):
                raise DataFormatError(path, f"class id {key!r} is not a number")
            if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
                raise DataFormatError(path, f"class {key!r}: expected a list of audio names")
            out[int(key)] = list(names)
        return out

    def image_path(self, item: SyntheticInstance) -> Path:
        return resolve_under(
            self.root / "images", f"{item.image_id}.jpg", source=self.annotations, line=item.line
        )

    def mask_path(self, item: SyntheticInstance) -> Path:
        return resolve_under(
            self.root / "masks", f"{item.instance_id}.png", source=self.annotations, line=item.line
        )

    def audio_path(self, name: str) -> Path:
        return resolve_under(self.root / "audios", f"{name}.wav", source=self.root / CLASS_AUDIOS)

    def read_mask(self, item: SyntheticInstance) -> np.ndarray:
        """The instance mask as the authors' loader reads it: ``convert('1')`` (bool [H, W])."""
        path = self.mask_path(item)
        try:
            with Image.open(path) as image:
                return np.array(image.convert("1"), dtype=bool)
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            raise DataFormatError(path, f"unreadable mask: {error}") from None
