"""VGGSound: ``vggsound.csv`` and the downloaded clip files.

``vggsound.csv`` has no header; each row is ``youtube_id,start_seconds,label,split`` with the
label quoted when it holds a comma (``"male speech, man speaking"``), so it is read with a CSV
parser (a UTF-8 byte-order mark is skipped; a file without a single row is an error). Clip
files, found anywhere under ``clips_root`` (indexed once), are named ``{ytid}_{start:06d}.{ext}``
(the release's name), ``{ytid}_{start}.{ext}`` or ``{ytid}_{start}_{end}.{ext}``; the folder walk
follows symbolic links but enters each real folder once, so a link loop ends it. YouTube ids
contain ``_`` and ``-`` (``-_a_b-c_Xy``), so names are parsed from the right; every reading of a
name is indexed, and a CSV row only picks the file whose reading matches its own (id, start).
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Iterator
from os import PathLike
from pathlib import Path

from avs_synth.errors import DataFormatError
from avs_synth.records import AudioClip, Category

logger = logging.getLogger(__name__)

#: Clip extensions, most preferred first (when a clip exists in several formats).
CLIP_EXTENSIONS = (".flac", ".wav", ".ogg", ".mp3", ".m4a", ".mp4", ".mkv", ".webm")
SPLITS = ("train", "test")


def parse_clip_name(file_name: str) -> list[tuple[str, int]]:
    """The possible ``(youtube_id, start_seconds)`` readings of a clip file name.

    ``abc_000030.flac`` → ``[("abc", 30)]``; ``abc_30_40.mp4`` → ``[("abc_30", 40), ("abc", 30)]``
    (the first reading is ``{id}_{start}``, the second ``{id}_{start}_{end}``). Names with an
    unknown extension or no numeric suffix give ``[]``.
    """
    stem, dot, ext = file_name.rpartition(".")
    if not dot or f".{ext.lower()}" not in CLIP_EXTENSIONS:
        return []
    readings: list[tuple[str, int]] = []
    head, _, last = stem.rpartition("_")
    if head and last.isdigit():
        readings.append((head, int(last)))
        ytid, _, start = head.rpartition("_")
        if ytid and start.isdigit() and int(start) <= int(last):
            readings.append((ytid, int(start)))
    return readings


def read_label_list(path: str | PathLike[str]) -> list[str]:
    """A plain label list: one label per line, verbatim (commas kept); blank lines and lines
    starting with ``#`` are skipped. Duplicates raise :class:`DataFormatError`."""
    path = Path(path)
    labels: list[str] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        label = line.strip()
        if not label or label.startswith("#"):
            continue
        if label in seen:
            raise DataFormatError(
                path, f"duplicate label {label!r} (first on line {seen[label]})", line=number
            )
        seen[label] = number
        labels.append(label)
    return labels


def _walk_each_folder_once(root: Path) -> Iterator[tuple[str, list[str], list[str]]]:
    """``os.walk(root, followlinks=True)`` in name order that enters every real folder once: a
    folder reached again (through a symbolic link loop, or two links to one folder) is not
    walked again."""
    seen: set[tuple[int, int]] = set()
    for folder, folders, files in os.walk(root, followlinks=True):
        try:
            stat = os.stat(folder)
        except OSError:
            folders[:] = []
            continue
        key = (stat.st_dev, stat.st_ino)
        if key in seen:
            folders[:] = []
            continue
        seen.add(key)
        folders.sort()
        yield folder, folders, files


class VGGSoundReader:
    """Reads ``vggsound.csv`` and finds each row's clip file.

    Args:
        csv_path: ``vggsound.csv`` (no header: ``youtube_id,start_seconds,label,split``).
        clips_root: the folder holding the downloaded clips (searched recursively, once); None
            leaves every clip's ``path`` unset.

    Raises:
        FileNotFoundError: the CSV does not exist.
        DataFormatError: a row with the wrong number of fields, a non-integer start, an unknown
            split or an empty id / label (names the file and line); a file without a row.
    """

    def __init__(
        self, *, csv_path: str | PathLike[str], clips_root: str | PathLike[str] | None = None
    ) -> None:
        self.csv_path = Path(csv_path)
        self.clips_root = None if clips_root is None else Path(clips_root)
        self._rows = self._read_rows()
        self._files = self._index_clips() if self.clips_root is not None else {}

    def _read_rows(self) -> list[tuple[str, int, str, str]]:
        path = self.csv_path
        rows: list[tuple[str, int, str, str]] = []
        try:
            with path.open(newline="", encoding="utf-8-sig") as handle:
                reader = csv.reader(handle)
                for fields in reader:
                    line = reader.line_num
                    if not fields or (len(fields) == 1 and not fields[0].strip()):
                        continue
                    if len(fields) != 4:
                        raise DataFormatError(
                            path,
                            f"expected 4 fields (youtube_id,start_seconds,label,split), "
                            f"got {len(fields)}",
                            line=line,
                        )
                    ytid, start, label, split = (f.strip() for f in fields)
                    if not ytid or not label:
                        raise DataFormatError(path, "empty youtube_id or label", line=line)
                    if not start.isdigit():
                        if not rows and start == "start_seconds":
                            continue  # tolerate a header line
                        raise DataFormatError(
                            path, f"start_seconds {start!r} is not an integer", line=line
                        )
                    if split not in SPLITS:
                        raise DataFormatError(
                            path, f"split {split!r} is not 'train' or 'test'", line=line
                        )
                    rows.append((ytid, int(start), label, split))
        except csv.Error as error:
            raise DataFormatError(path, f"malformed CSV: {error}") from None
        except UnicodeDecodeError as error:
            raise DataFormatError(path, f"not UTF-8 text: {error.reason}") from None
        if not rows:
            raise DataFormatError(
                path, "no clip rows (expected youtube_id,start_seconds,label,split lines)"
            )
        return rows

    def _index_clips(self) -> dict[tuple[str, int], Path]:
        root = self.clips_root
        assert root is not None
        if not root.is_dir():
            raise FileNotFoundError(f"{root}: clips folder not found")
        rank = {ext: i for i, ext in enumerate(CLIP_EXTENSIONS)}
        best: dict[tuple[str, int], tuple[int, str]] = {}  # (rank, path) as strings: cheap
        for folder, _, files in _walk_each_folder_once(root):
            for name in files:
                for key in parse_clip_name(name):
                    path = os.path.join(folder, name)
                    candidate = (rank[os.path.splitext(name)[1].lower()], path)
                    current = best.get(key)
                    if current is None or candidate < current:
                        best[key] = candidate
        index = {key: Path(path) for key, (_, path) in best.items()}
        logger.info("indexed %d clip files under %s", len(index), root)
        return index

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def labels(self) -> list[str]:
        """The distinct labels of the CSV, sorted."""
        return sorted({row[2] for row in self._rows})

    @property
    def categories(self) -> list[Category]:
        """The labels as :class:`Category` records (id and name are the label itself)."""
        return [Category(source="vggsound", category_id=label, name=label) for label in self.labels]

    def clips(
        self, split: str | None = None, *, available_only: bool = False
    ) -> Iterator[AudioClip]:
        """The CSV's clips in file order, with ``path`` set where the file was found.

        Args:
            split: ``train`` or ``test`` to keep one split, None for both.
            available_only: skip clips whose file was not found.
        """
        if split is not None and split not in SPLITS:
            raise ValueError(f"split must be 'train', 'test' or None, got {split!r}")
        for ytid, start, label, row_split in self._rows:
            if split is not None and row_split != split:
                continue
            path = self._files.get((ytid, start))
            if available_only and path is None:
                continue
            yield AudioClip(
                youtube_id=ytid,
                start_seconds=start,
                label=label,
                split=row_split,  # type: ignore[arg-type]
                path=path,
            )
