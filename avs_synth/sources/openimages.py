"""Open Images V7 instance segmentation (also V5/V6, which share the format).

Files, looked for under ``root`` (and ``root/annotations``) unless given explicitly:

- ``{split}-annotations-object-segmentation.csv``: one row per mask, columns ``MaskPath,
  ImageID, LabelName, BoxID, BoxXMin, BoxXMax, BoxYMin, BoxYMax, PredictedIoU, Clicks``, boxes
  normalised to [0, 1]. Required columns: ``MaskPath, ImageID, LabelName`` and the four box
  columns.
- masks: the official zips ``{split}-masks/{split}-masks-{c}.zip`` (``c`` = first hex character
  of the ImageID), or the same zips extracted into ``{split}-masks/{split}-masks-{c}/``, or all
  PNGs in one folder ``{split}-masks/``. Each source is indexed once (zip directory or folder
  listing); masks that are not there are skipped and counted.
- images: ``{split}/{ImageID}.jpg``. Their size is read from the JPEG header when the record is
  produced (the CSV has none). Missing or unreadable images are skipped and counted (or raise with
  ``skip_unreadable_images=False``).
- class names: ``oidv7-class-descriptions.csv`` (header ``LabelName,DisplayName``) or the older
  headerless ``class-descriptions-boxable.csv`` (``MID,name``). Required.
- ``classes-segmentation.txt``: the 350 segmentable MIDs, one per line, from the user's download
  (optional: without it, the categories are the labels present in the segmentation CSV).
- image-level labels (optional): ``oidv7-{split}-annotations-human-imagelabels.csv`` (V7 names
  the validation split ``val``) or ``{split}-annotations-human-imagelabels[-boxable].csv``,
  columns ``ImageID, Source, LabelName, Confidence``; ``Confidence`` 0 marks a label verified
  absent and becomes ``negative_category_ids``.
- image info (optional, for licences): ``{split}-images-with-rotation.csv`` style files with
  ``ImageID, License`` and optionally ``Author, OriginalLandingURL``.

The segmentation CSV has no crowd flag, so ``is_crowd`` is False; ``area`` is the box area in
pixels. Records are yielded in ImageID order.

Why this module is long: one reader over the six kinds of files of one download (segmentation
CSV, class lists, image labels, image info, mask zips or folders, pictures), which share the
reader's state (the sorted table, the mask sources); each part is a short method.
"""

from __future__ import annotations

import logging
import os
import re
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from avs_synth.errors import DataFormatError
from avs_synth.records import (
    Category,
    ImageRecord,
    Instance,
    MaskFileSegmentation,
    NormalizedBox,
)
from avs_synth.safe_paths import SafeRoot, UnsafePathError
from avs_synth.zip_members import member_offsets

logger = logging.getLogger(__name__)

SEGMENTATION_COLUMNS = (
    "MaskPath",
    "ImageID",
    "LabelName",
    "BoxXMin",
    "BoxXMax",
    "BoxYMin",
    "BoxYMax",
)  # the box columns in NormalizedBox's order
IMAGE_LABEL_COLUMNS = ("ImageID", "LabelName", "Confidence")
HEX_DIGITS = "0123456789abcdef"
_LINE_RE = re.compile(r"line (\d+)")


def _split_aliases(split: str) -> list[str]:
    return {"validation": ["validation", "val"], "val": ["val", "validation"]}.get(split, [split])


def _find(root: Path, names: Iterable[str]) -> Path | None:
    for folder in (root, root / "annotations"):
        for name in names:
            candidate = folder / name
            if candidate.is_file():
                return candidate
    return None


def read_csv_checked(
    path: Path,
    required: Sequence[str],
    *,
    chunksize: int | None = None,
    usecols: Sequence[str] | None = None,
) -> pd.DataFrame | Iterator[pd.DataFrame]:
    """Read a CSV with a header as strings (object columns of ``str``: cheaper to make and to
    index than pandas' string arrays), checking that ``required`` columns exist.

    Raises:
        FileNotFoundError: no such file.
        DataFormatError: a missing column, or a row pandas cannot parse (names file and line).
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    try:
        header = pd.read_csv(path, nrows=0, dtype=str)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise DataFormatError(path, f"cannot read the CSV header: {error}", line=1) from None
    columns = [str(c).strip() for c in header.columns]
    for column in required:
        if column not in columns:
            raise DataFormatError(
                path, f"missing column {column!r} (found: {', '.join(columns)})", line=1
            )
    try:
        return pd.read_csv(
            path,
            dtype=object,
            keep_default_na=False,
            usecols=list(usecols) if usecols is not None else None,
            index_col=False,  # extra trailing fields never become the index
            chunksize=chunksize,
        )
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
        match = _LINE_RE.search(str(error))
        line = int(match.group(1)) if match else None
        raise DataFormatError(path, f"malformed CSV: {str(error).strip()}", line=line) from None


def _csv_chunks(path: Path, chunks: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """Iterate CSV chunks, turning parser errors into DataFormatError."""
    try:
        yield from chunks
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
        match = _LINE_RE.search(str(error))
        raise DataFormatError(
            path,
            f"malformed CSV: {str(error).strip()}",
            line=int(match.group(1)) if match else None,
        ) from None


def _fixed_width(texts: np.ndarray, length: int | None = None) -> np.ndarray:
    """An object array of strings as fixed-width characters (their first ``length`` where
    given): bytes, one a character, where every string is ASCII (every official ImageID is),
    else text."""
    try:
        return texts.astype("S" if length is None else f"S{length}")
    except UnicodeEncodeError:
        return texts.astype(str if length is None else f"U{length}")


def _is_sorted(values: np.ndarray) -> bool:
    """Whether an object array of ``str`` is in (Python's) ascending order."""
    return len(values) < 2 or bool((values[1:] >= values[:-1]).all())


@dataclass
class _MaskSource:
    """Where the masks of one hex bucket live, and which file names are there."""

    kind: str  # "zip", "folder" or "missing"
    location: Path | None = None
    members: dict[str, str] = field(default_factory=dict)  # base name -> member / relative path
    offsets: dict[str, int] = field(default_factory=dict)  # zip member -> local header offset
    root: SafeRoot | None = None  # checks folder members' names


def _verified_absent(
    chunk: pd.DataFrame, confidence: np.ndarray, labels: set[str] | None
) -> np.ndarray:
    """The rows of an image-labels chunk that say a label (of ``labels``, where given) is
    verified absent."""
    absent = confidence == 0
    if labels is not None:
        absent &= chunk["LabelName"].isin(labels).to_numpy()
    return absent


class _LicenseTable:
    """ImageID → (licence, attribution) of the image info CSV's rows, made when asked (a build
    asks for a third of the ~1 M pictures); the last row of an ImageID wins."""

    def __init__(self, table: pd.DataFrame) -> None:
        self._license = table["License"].to_numpy()
        blank = np.full(len(table), "", dtype=object)
        self._author = table["Author"].to_numpy() if "Author" in table else blank
        self._url = (
            table["OriginalLandingURL"].to_numpy() if "OriginalLandingURL" in table else blank
        )
        self._rows = dict(zip(table["ImageID"].tolist(), range(len(table)), strict=True))

    def get(
        self, image_id: str, default: tuple[str | None, str | None] = (None, None)
    ) -> tuple[str | None, str | None]:
        row = self._rows.get(image_id)
        if row is None:
            return default
        who, url = self._author[row], self._url[row]
        attribution = " ".join(part for part in (who, f"({url})" if url else "") if part)
        return (self._license[row] or None, attribution or None)


class OpenImagesReader:
    """Reads Open Images instance-segmentation annotations for one split.

    Args:
        root: the Open Images download folder (see the module docstring for the layout).
        split: ``train``, ``validation`` or ``test``.
        segmentation_csv: override for ``{split}-annotations-object-segmentation.csv``.
        masks_root: override for the folder holding ``{split}-masks-{c}.zip`` (or extracted
            folders, or the PNGs themselves).
        images_root: override for the folder holding ``{ImageID}.jpg``.
        class_descriptions: override for the class-descriptions CSV.
        segmentation_classes: override for ``classes-segmentation.txt``.
        image_labels: override for the human image-level labels CSV (negatives).
        image_info: override for the image info CSV with licences.
        skip_unreadable_images: skip (and count) images whose JPEG is missing or unreadable
            instead of raising.
    """

    def __init__(
        self,
        *,
        root: str | PathLike[str],
        split: str = "train",
        segmentation_csv: str | PathLike[str] | None = None,
        masks_root: str | PathLike[str] | None = None,
        images_root: str | PathLike[str] | None = None,
        class_descriptions: str | PathLike[str] | None = None,
        segmentation_classes: str | PathLike[str] | None = None,
        image_labels: str | PathLike[str] | None = None,
        image_info: str | PathLike[str] | None = None,
        skip_unreadable_images: bool = True,
    ) -> None:
        self.root = Path(root)
        self.split = split
        aliases = _split_aliases(split)
        self.segmentation_csv = self._required(
            segmentation_csv,
            [f"{s}-annotations-object-segmentation.csv" for s in aliases]
            + [f"oidv7-{s}-annotations-object-segmentation.csv" for s in aliases],
            "segmentation_csv",
        )
        self.class_descriptions = self._required(
            class_descriptions,
            [
                "oidv7-class-descriptions.csv",
                "oidv7-class-descriptions-boxable.csv",
                "oidv6-class-descriptions.csv",
                "class-descriptions-boxable.csv",
                "class-descriptions.csv",
            ],
            "class_descriptions",
        )
        self.segmentation_classes = (
            Path(segmentation_classes)
            if segmentation_classes is not None
            else _find(self.root, ["classes-segmentation.txt", "oidv7-classes-segmentation.txt"])
        )
        self.image_labels = (
            Path(image_labels)
            if image_labels is not None
            else _find(
                self.root,
                [f"oidv7-{s}-annotations-human-imagelabels.csv" for s in aliases]
                + [f"oidv6-{s}-annotations-human-imagelabels.csv" for s in aliases]
                + [f"{s}-annotations-human-imagelabels.csv" for s in aliases]
                + [f"{s}-annotations-human-imagelabels-boxable.csv" for s in aliases],
            )
        )
        self.image_info = (
            Path(image_info)
            if image_info is not None
            else _find(
                self.root,
                [f"{s}-images-with-rotation.csv" for s in aliases]
                + [f"{s}-images-boxable-with-rotation.csv" for s in aliases]
                + [f"oidv6-{s}-images-with-labels-with-rotation.csv" for s in aliases]
                + [f"{s}-images-with-labels-with-rotation.csv" for s in aliases],
            )
        )
        if masks_root is not None:
            self.masks_root = Path(masks_root)
        else:
            folder = self.root / f"{split}-masks"
            self.masks_root = folder if folder.is_dir() else self.root
        self.images_root = Path(images_root) if images_root is not None else self.root / split
        self.skip_unreadable_images = skip_unreadable_images
        self._mask_sources: dict[str, _MaskSource] = {}
        self._flat_source: _MaskSource | None = None
        self.skipped: dict[str, int] = {"images": 0, "masks": 0}
        self.unused = 0  # images of no use to the plan, not yielded (see images())

    def _required(self, given: str | PathLike[str] | None, names: list[str], what: str) -> Path:
        if given is not None:
            path = Path(given)
            if not path.is_file():
                raise FileNotFoundError(f"{path}: file not found ({what})")
            return path
        found = _find(self.root, names)
        if found is None:
            raise FileNotFoundError(
                f"{self.root}: none of {', '.join(names)} found here or in annotations/; "
                f"pass {what}= explicitly"
            )
        return found

    # --- categories ---------------------------------------------------------------------------

    @cached_property
    def class_names(self) -> dict[str, str]:
        """MID → display name, from the class-descriptions CSV (with or without header)."""
        path = self.class_descriptions
        try:
            table = pd.read_csv(path, header=None, dtype=str, keep_default_na=False)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
            raise DataFormatError(path, f"cannot read class descriptions: {error}") from None
        if table.shape[1] < 2:
            raise DataFormatError(path, "expected two columns: LabelName, DisplayName", line=1)
        start = 1 if table.iloc[0, 0].strip() == "LabelName" else 0
        names: dict[str, str] = {}
        for offset, (mid, name) in enumerate(
            zip(table.iloc[start:, 0], table.iloc[start:, 1], strict=True)
        ):
            if not mid.startswith("/"):
                raise DataFormatError(path, f"not a MID: {mid!r}", line=start + offset + 1)
            names[mid] = name
        return names

    @cached_property
    def categories(self) -> list[Category]:
        """The segmentable classes (``classes-segmentation.txt`` order), with display names."""
        if self.segmentation_classes is not None:
            mids = []
            text = self.segmentation_classes.read_text(encoding="utf-8")
            for number, line in enumerate(text.splitlines(), start=1):
                mid = line.strip().split(",")[0].strip()
                if not mid:
                    continue
                if not mid.startswith("/"):
                    raise DataFormatError(
                        self.segmentation_classes, f"not a MID: {mid!r}", line=number
                    )
                mids.append(mid)
        else:
            logger.warning(
                "%s: no classes-segmentation.txt; using the labels present in %s",
                self.root,
                self.segmentation_csv,
            )
            mids = sorted(set(self._table["LabelName"]))
        names = self.class_names
        return [
            Category(source="openimages", category_id=mid, name=names.get(mid, mid)) for mid in mids
        ]

    # --- annotations --------------------------------------------------------------------------

    @cached_property
    def _table(self) -> pd.DataFrame:
        """The segmentation CSV, validated, sorted by ImageID (stable; a CSV already in that
        order, as the official one nearly is, is kept as it is)."""
        table = self._typed_table()
        if table is None:
            table = self._checked_table()
        table["_line"] = np.arange(2, len(table) + 2)
        ids = table["ImageID"].to_numpy()
        if _is_sorted(ids):
            return table
        # sorted as fixed-width characters (a C comparison, ~5x faster than Python's), then
        # checked in Python's order, which decides where the two differ (NumPy ignores
        # trailing NUL characters)
        ordered = table.take(np.argsort(_fixed_width(ids), kind="stable"))
        if not _is_sorted(ordered["ImageID"].to_numpy()):
            ordered = table.take(np.argsort(ids, kind="stable"))
        return ordered.reset_index(drop=True)

    def _typed_table(self) -> pd.DataFrame | None:
        """The segmentation CSV read with float box columns (the parser gives the same floats as
        ``float(text)``), or None when anything is off: :meth:`_checked_table` then names it."""
        dtypes: dict[str, Any] = {c: object for c in SEGMENTATION_COLUMNS[:3]}
        dtypes |= {c: np.float64 for c in SEGMENTATION_COLUMNS[3:]}
        try:
            table = pd.read_csv(
                self.segmentation_csv,
                usecols=list(SEGMENTATION_COLUMNS),
                index_col=False,  # extra trailing fields never become the index
                dtype=dtypes,
                keep_default_na=False,
            )
        except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
            return None
        for column in SEGMENTATION_COLUMNS[:3]:
            if not all(map(str.strip, table[column].to_numpy().tolist())):
                return None  # an empty or blank cell
        boxes = table[list(SEGMENTATION_COLUMNS[3:])].to_numpy()
        return table if np.isfinite(boxes).all() else None

    def _checked_table(self) -> pd.DataFrame:
        """The segmentation CSV read as text and checked cell by cell (errors name the line)."""
        path = self.segmentation_csv
        table = read_csv_checked(path, SEGMENTATION_COLUMNS, usecols=SEGMENTATION_COLUMNS)
        assert isinstance(table, pd.DataFrame)
        for column in ("MaskPath", "ImageID", "LabelName"):
            empty = np.flatnonzero(table[column].str.strip().to_numpy() == "")
            if empty.size:
                raise DataFormatError(path, f"empty {column}", line=int(empty[0]) + 2)
        for column in ("BoxXMin", "BoxXMax", "BoxYMin", "BoxYMax"):
            values = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=np.float64)
            bad = np.flatnonzero(~np.isfinite(values))
            if bad.size:
                raise DataFormatError(
                    path,
                    f"{column} is not a number: {table[column].iloc[bad[0]]!r}",
                    line=int(bad[0]) + 2,
                )
            table[column] = values
        return table

    @cached_property
    def image_ids(self) -> list[str]:
        """The ImageIDs with at least one mask row, sorted."""
        ids = self._table["ImageID"].to_numpy()
        return ids[np.r_[True, ids[1:] != ids[:-1]]].tolist() if len(ids) else []

    def __len__(self) -> int:
        return len(self.image_ids)

    @cached_property
    def _negatives(self) -> dict[str, tuple[str, ...]]:
        """ImageID → labels with Confidence 0 (verified absent), for images with masks only."""
        return self._read_negatives(None)

    def _read_negatives(self, labels: set[str] | None) -> dict[str, tuple[str, ...]]:
        """ImageID → its labels with Confidence 0 (verified absent), for images with masks only,
        and only ``labels`` where given (every row read and checked; an empty ``labels``: the
        file is not read)."""
        path = self.image_labels
        if path is None or (labels is not None and not labels):
            return {}
        wanted = pd.Index(self.image_ids)
        try:  # Confidence read as floats (fast); any irregular cell: read as text and checked
            chunks = pd.read_csv(
                path,
                usecols=list(IMAGE_LABEL_COLUMNS),
                index_col=False,  # extra trailing fields never become the index
                dtype={"ImageID": object, "LabelName": object, "Confidence": np.float64},
                keep_default_na=False,
                chunksize=1_000_000,
            )
            negatives: dict[str, list[str]] = {}
            for chunk in chunks:
                confidence = chunk["Confidence"].to_numpy()
                if np.isnan(confidence).any():
                    raise ValueError("not a number")
                chunk = chunk[_verified_absent(chunk, confidence, labels)]
                rows = chunk[wanted.get_indexer(chunk["ImageID"]) >= 0]  # one hash table
                for image_id, label in zip(rows["ImageID"], rows["LabelName"], strict=True):
                    negatives.setdefault(image_id, []).append(label)
            return {k: tuple(sorted(set(v))) for k, v in negatives.items()}
        except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
            pass
        chunks = read_csv_checked(
            path, IMAGE_LABEL_COLUMNS, usecols=IMAGE_LABEL_COLUMNS, chunksize=1_000_000
        )
        negatives = {}
        for chunk in _csv_chunks(path, chunks):
            confidence = pd.to_numeric(chunk["Confidence"], errors="coerce")
            bad = np.flatnonzero(confidence.isna().to_numpy())
            if bad.size:
                raise DataFormatError(
                    path,
                    f"Confidence is not a number: {chunk['Confidence'].iloc[bad[0]]!r}",
                    line=int(chunk.index[bad[0]]) + 2,
                )
            chunk = chunk[_verified_absent(chunk, confidence.to_numpy(), labels)]
            rows = chunk[wanted.get_indexer(chunk["ImageID"]) >= 0]
            for image_id, label in zip(rows["ImageID"], rows["LabelName"], strict=True):
                negatives.setdefault(image_id, []).append(label)
        return {k: tuple(sorted(set(v))) for k, v in negatives.items()}

    @cached_property
    def _licenses(self) -> _LicenseTable | dict[str, tuple[str | None, str | None]]:
        """ImageID → (licence, attribution) from the image info CSV, where present."""
        path = self.image_info
        if path is None:
            return {}
        try:
            present = set(pd.read_csv(path, nrows=0).columns)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
            raise DataFormatError(path, f"cannot read the CSV header: {error}", line=1) from None
        usecols = [
            c for c in ("ImageID", "License", "Author", "OriginalLandingURL") if c in present
        ]
        table = read_csv_checked(path, ("ImageID", "License"), usecols=usecols)
        assert isinstance(table, pd.DataFrame)
        table = table[pd.Index(self.image_ids).get_indexer(table["ImageID"]) >= 0]
        return _LicenseTable(table)

    # --- masks and images ---------------------------------------------------------------------

    def _index_folder(self, folder: Path) -> dict[str, str]:
        with os.scandir(folder) as entries:
            return {e.name: e.name for e in entries if e.name.lower().endswith(".png")}

    def _mask_source(self, image_id: str) -> _MaskSource:
        bucket = image_id[0].lower()
        source = self._mask_sources.get(bucket)
        if source is not None:
            return source
        archive = self.masks_root / f"{self.split}-masks-{bucket}.zip"
        folder = self.masks_root / f"{self.split}-masks-{bucket}"
        if bucket in HEX_DIGITS and archive.is_file():
            offsets = member_offsets(archive) or {}
            names = list(offsets)
            if not offsets:  # a directory the fast scan does not read: zipfile's
                try:
                    with zipfile.ZipFile(archive) as handle:
                        names = handle.namelist()
                except (zipfile.BadZipFile, OSError) as error:
                    raise DataFormatError(archive, f"cannot open mask archive: {error}") from None
            if "/" in "".join(names):  # members in folders (or folders themselves)
                members = {n.rsplit("/", 1)[-1]: n for n in names if not n.endswith("/")}
            else:  # the official zips: flat
                members = dict(zip(names, names, strict=True))
            source = _MaskSource("zip", archive, members, offsets)
            for other in [b for b, s in self._mask_sources.items() if s.kind == "zip"]:
                del self._mask_sources[other]  # records come in ImageID order: one zip at a time
        elif bucket in HEX_DIGITS and folder.is_dir():
            source = _MaskSource("folder", folder, self._index_folder(folder))
        else:
            if self._flat_source is None:
                if self.masks_root.is_dir():
                    self._flat_source = _MaskSource(
                        "folder", self.masks_root, self._index_folder(self.masks_root)
                    )
                else:
                    self._flat_source = _MaskSource("missing")
            source = self._flat_source
        self._mask_sources[bucket] = source
        return source

    def _segmentation(self, source: _MaskSource, name: str, line: int) -> MaskFileSegmentation:
        assert source.location is not None
        if source.kind == "zip":
            return MaskFileSegmentation(
                archive=source.location, member=name, offset=source.offsets.get(name)
            )
        if source.root is None:
            source.root = SafeRoot(source.location)
        return MaskFileSegmentation(
            path=source.root.resolve(name, source=self.segmentation_csv, line=line)
        )

    def image_size(self, path: Path) -> tuple[int, int]:
        """``(width, height)`` from the image header (the pixels are not decoded)."""
        try:
            with Image.open(path) as image:
                return image.size
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: image not found") from None
        except (
            OSError,
            UnidentifiedImageError,
            SyntaxError,
            Image.DecompressionBombError,
        ) as error:
            raise DataFormatError(path, f"cannot read the image header: {error}") from None

    def _available_rows(
        self, keep: set[str] | None
    ) -> tuple[np.ndarray, dict[int, MaskFileSegmentation]]:
        """Which rows' masks are in their zip / folder, and the segmentation of each kept one
        (``keep`` None: every row), one mask source at a time."""
        table = self._table
        # rows grouped by the bucket of their ImageID: its first character, lower case
        ids = table["ImageID"].to_numpy()
        first = np.char.lower(_fixed_width(ids, 1))
        paths = table["MaskPath"].to_numpy()
        kept = np.ones(len(table), dtype=bool) if keep is None else table["LabelName"].isin(keep)
        kept = np.asarray(kept)
        lines = table["_line"].to_numpy()
        available = np.zeros(len(table), dtype=bool)
        segmentations: dict[int, MaskFileSegmentation] = {}
        for rows in pd.Series(np.arange(len(table))).groupby(first).indices.values():
            source = self._mask_source(str(ids[rows[0]]))
            if source.location is None:
                continue
            members = source.members
            available[rows] = [path in members for path in paths[rows].tolist()]
            for row in rows[available[rows] & kept[rows]].tolist():
                name = members[paths[row]]
                segmentations[row] = self._segmentation(source, name, int(lines[row]))
        return available, segmentations

    def images(
        self,
        *,
        categories: Iterable[str] | None = None,
        negative_categories: Iterable[str] | None = None,
        read_sizes: bool = True,
    ) -> Iterator[ImageRecord]:
        """Every image with at least one available mask, in ImageID order.

        Images whose JPEG is missing or unreadable, and masks absent from their zip / folder, are
        skipped and counted in ``self.skipped`` (logged at the end).

        Args:
            categories: keep only the instances of these MIDs, and yield only the images that
                have one or a verified-negative label in ``negative_categories`` (the others
                are counted in ``self.unused``, their pictures not even looked for: they are
                never opened); None keeps every instance and image.
            negative_categories: see ``categories``; with ``categories``, also the only labels a
                record's ``negative_category_ids`` holds (the others are of no use to the
                caller).
            read_sizes: read each picture's size from its JPEG header. False (a build's plan):
                the JPEG is only checked to exist, records carry ``width = height = None`` and
                instance boxes are :class:`~avs_synth.records.NormalizedBox` (the worker that
                opens the picture computes the pixel values).
        """
        table = self._table
        licenses = self._licenses
        names = self.class_names
        keep = None if categories is None else set(categories)
        wanted_negatives = set(negative_categories or ())
        # a plan's read keeps only the negatives it can use: those among its categories
        negatives = self._negatives if keep is None else self._read_negatives(wanted_negatives)
        ids = table["ImageID"].to_numpy()
        n = len(ids)
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]]) if n else np.zeros(0, int)
        ends = np.r_[starts[1:], n] if n else np.zeros(0, int)
        available, segmentations = self._available_rows(keep)
        per_image_available = np.add.reduceat(available, starts) if n else np.zeros(0, int)
        per_image_kept = (
            np.bincount(np.searchsorted(starts, list(segmentations), side="right") - 1,
                        minlength=len(starts))
            if n else np.zeros(0, int)
        )  # fmt: skip
        mask_paths, labels = table["MaskPath"].to_numpy(), table["LabelName"].to_numpy()
        boxes = [table[c].to_numpy() for c in SEGMENTATION_COLUMNS[3:]]
        lines = table["_line"].to_numpy()
        root = SafeRoot(self.images_root)
        self.skipped = {"images": 0, "masks": 0}
        self.unused = 0
        image_ids = ids[starts].tolist() if n else []
        for index, (start, end) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
            image_id = str(image_ids[index])
            image_negatives = negatives.get(image_id, ())
            if (
                keep is not None
                and per_image_available[index]
                and not per_image_kept[index]
                and not wanted_negatives.intersection(image_negatives)
            ):
                # of no use to this plan: its picture is never opened, so not even looked for
                self.skipped["masks"] += (end - start) - int(per_image_available[index])
                self.unused += 1
                continue
            try:
                path = root.check(
                    f"{image_id}.jpg",
                    source=self.segmentation_csv,
                    line=int(lines[start]),
                    must_exist=not read_sizes,
                )
                if read_sizes:
                    width, height = self.image_size(Path(path))
                else:
                    width = height = None
            except (FileNotFoundError, DataFormatError) as error:
                if not self.skip_unreadable_images or isinstance(error, UnsafePathError):
                    raise
                logger.debug("skipping image %s: %s", image_id, error)
                self.skipped["images"] += 1
                continue
            self.skipped["masks"] += (end - start) - int(per_image_available[index])
            if not per_image_available[index]:
                self.skipped["images"] += 1
                continue
            instances = []
            for row in range(start, end) if per_image_kept[index] else ():
                segmentation = segmentations.get(row)
                if segmentation is None:
                    continue
                label = str(labels[row])
                box = NormalizedBox(*(float(column[row]) for column in boxes))
                if width is None or height is None:
                    bbox, area = box, box.area_fraction
                else:
                    bbox, area = box.to_pixels(width, height)
                instances.append(
                    Instance(
                        instance_id=str(mask_paths[row]),
                        category_id=label,
                        category_name=names.get(label, label),
                        bbox=bbox,
                        area=area,
                        segmentation=segmentation,
                    )
                )
            license_url, attribution = licenses.get(image_id, (None, None))
            yield ImageRecord(
                source="openimages",
                image_id=image_id,
                path=Path(path),
                width=width,
                height=height,
                instances=tuple(instances),
                negative_category_ids=image_negatives,
                exhaustive=False,
                license=license_url,
                attribution=attribution,
            )
        if self.skipped["images"] or self.skipped["masks"]:
            logger.warning(
                "Open Images %s: skipped %d images (missing/unreadable JPEG or no mask available) "
                "and %d masks absent from %s",
                self.split,
                self.skipped["images"],
                self.skipped["masks"],
                self.masks_root,
            )
