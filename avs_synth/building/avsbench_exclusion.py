"""No AVSBench clip in the synthetic audio: the YouTube videos a build must not draw clips from.

AVSBench videos are VGGSound clips (186 S4 videos are VGGSound test clips, with matching labels),
so a synthetic build that uses one of them, in any split or in the audio bank, leaks benchmark
audio into pre-training and contaminates zero-shot and few-shot numbers on AVSBench. A clip is
excluded by its YouTube id, so every segment of an excluded video goes.

The excluded ids are kept as SHA-256 hashes (hex of the UTF-8 id), from up to three places:

- the packaged list ``category_maps/avsbench_s4_youtube_id_sha256.txt``: the 4,932 S4 videos
  (hashes only; the metadata's licence is not stated, so the ids themselves are not shipped);
- the user's AVSBench folder (``--avsbench``): every id of ``s4_meta_data.csv`` (column ``name``),
  ``ms3_meta_data.csv`` (first column, ``video_id``) and AVSBench-semantic's ``metadata.csv``
  (column ``vid``), where present;
- ``--exclude-clips FILE``: one entry a line (``#`` comments, blank lines and a CSV's further
  fields ignored): a YouTube id, a VGGSound clip name ``{id}_{start}`` (11-character id), or the
  64-hex SHA-256 of an id.

The first two are on by default and turned off together (``--keep-avsbench-clips``); the third
always applies. Exclusions are counted in the manifest and the report.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from avs_synth.errors import DataFormatError

PACKAGED_HASHES = "avsbench_s4_youtube_id_sha256.txt"

_HEX64 = re.compile(r"[0-9a-f]{64}")
_CLIP_NAME = re.compile(r"([A-Za-z0-9_-]{11})_\d+")
_VIDEO_ID = re.compile(r"[A-Za-z0-9_-]{1,200}")  # a YouTube id, or AVSBench-semantic's uid
# (file name, column holding the YouTube id or None for the first column, what it is)
_AVSBENCH_METADATA = (
    ("s4_meta_data.csv", "name", "avsbench_s4"),
    ("ms3_meta_data.csv", None, "avsbench_ms3"),
    ("metadata.csv", "vid", "avsbench_semantic"),
)


def youtube_id_hash(youtube_id: str) -> str:
    """The SHA-256 (hex) of a YouTube id, as stored in the exclusion lists."""
    return hashlib.sha256(youtube_id.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ClipExclusion:
    """The YouTube videos a build leaves out.

    Args:
        hashes: SHA-256 (hex) of every excluded YouTube id.
        sources: how many ids each list contributed (``packaged_s4``, ``avsbench_s4``,
            ``avsbench_ms3``, ``avsbench_semantic``, ``exclude_clips``).
        avsbench: whether the AVSBench lists (packaged and ``--avsbench``) are applied.
    """

    hashes: frozenset[str] = frozenset()
    sources: dict[str, int] = field(default_factory=dict)
    avsbench: bool = True

    def excludes(self, youtube_id: str) -> bool:
        """True when every clip of this video is left out."""
        return bool(self.hashes) and youtube_id_hash(youtube_id) in self.hashes

    @property
    def digest(self) -> str:
        """SHA-256 of the sorted hashes (what the plan hash and the manifest record)."""
        return hashlib.sha256("\n".join(sorted(self.hashes)).encode("ascii")).hexdigest()

    def summary(self) -> dict[str, object]:
        """What the manifest records about the lists."""
        return {
            "avsbench": self.avsbench,
            "ids": len(self.hashes),
            "ids_per_list": dict(sorted(self.sources.items())),
            "ids_sha256": self.digest,
        }


def read_hash_list(path: Path) -> list[str]:
    """A list of hex SHA-256 hashes, one a line (``#`` comments and blank lines skipped)."""
    hashes: list[str] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            if not _HEX64.fullmatch(text):
                raise DataFormatError(path, "not a lowercase hex SHA-256", line=number)
            hashes.append(text)
    return hashes


def packaged_hashes() -> list[str]:
    """The hashes of the AVSBench S4 YouTube ids shipped in ``category_maps/``."""
    from avs_synth_category_maps import data_path

    return read_hash_list(data_path(PACKAGED_HASHES))


def _entry_hash(text: str) -> str:
    if _HEX64.fullmatch(text):
        return text
    clip = _CLIP_NAME.fullmatch(text)
    return youtube_id_hash(clip.group(1) if clip else text)


def read_exclude_file(path: Path) -> list[str]:
    """The hashes of the entries of an ``--exclude-clips`` file (see the module docstring)."""
    hashes: list[str] = []
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            for fields in csv.reader(handle):
                text = fields[0].strip() if fields else ""
                if text and not text.startswith("#"):
                    hashes.append(_entry_hash(text))
    except csv.Error as error:
        raise DataFormatError(path, f"malformed CSV: {error}") from None
    except UnicodeDecodeError as error:
        raise DataFormatError(path, f"not UTF-8 text: {error.reason}") from None
    return hashes


def _metadata_ids(path: Path, column: str | None) -> list[str]:
    ids: list[str] = []
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = [h.strip() for h in next(reader, [])]
            if column is not None and column not in header:
                raise DataFormatError(path, f"missing column {column!r}", line=1)
            at = header.index(column) if column is not None else 0
            for fields in reader:
                if len(fields) > at and fields[at].strip():
                    value = fields[at].strip()
                    if not _VIDEO_ID.fullmatch(value):
                        raise DataFormatError(
                            path, f"{value[:40]!r} is not a video id", line=reader.line_num
                        )
                    ids.append(value)
    except csv.Error as error:
        raise DataFormatError(path, f"malformed CSV: {error}") from None
    except UnicodeDecodeError as error:
        raise DataFormatError(path, f"not UTF-8 text: {error.reason}") from None
    return ids


def avsbench_ids(root: Path) -> dict[str, list[str]]:
    """The YouTube ids of an AVSBench folder, by list (``avsbench_s4``, ``avsbench_ms3``,
    ``avsbench_semantic``); each metadata file is looked for in ``root`` and the folders (and
    their sub-folders) directly under it.

    Raises:
        FileNotFoundError: the folder does not exist or holds none of the metadata files.
        DataFormatError: a metadata file without its id column, or with an id that is not
            letters, digits, ``_`` and ``-`` (names the file and line).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: AVSBench folder not found")
    found: dict[str, list[str]] = {}
    for name, column, what in _AVSBENCH_METADATA:
        candidates = [
            root / name,
            *sorted(root.glob(f"*/{name}")),
            *sorted(root.glob(f"*/*/{name}")),
        ]
        for path in candidates:
            if path.is_file():
                found.setdefault(what, []).extend(_metadata_ids(path, column))
    if not found:
        raise FileNotFoundError(
            f"{root}: no AVSBench metadata found (s4_meta_data.csv, ms3_meta_data.csv or "
            "metadata.csv, in the folder or the folders under it)"
        )
    return found


def load_exclusion(
    *,
    avsbench: bool = True,
    avsbench_root: Path | None = None,
    exclude_files: Sequence[Path] = (),
) -> ClipExclusion:
    """The exclusion lists of a build (see the module docstring).

    Args:
        avsbench: apply the packaged S4 list and the ids of ``avsbench_root``.
        avsbench_root: the user's AVSBench folder (None: the packaged list only).
        exclude_files: ``--exclude-clips`` files.
    """
    lists: dict[str, Iterable[str]] = {}
    if avsbench:
        lists["packaged_s4"] = packaged_hashes()
        if avsbench_root is not None:
            for what, ids in avsbench_ids(avsbench_root).items():
                lists[what] = [youtube_id_hash(i) for i in ids]
    for path in exclude_files:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: --exclude-clips file not found")
        lists["exclude_clips"] = [*lists.get("exclude_clips", []), *read_exclude_file(path)]
    hashes: set[str] = set()
    sources: dict[str, int] = {}
    for what, values in lists.items():
        unique = set(values)
        sources[what] = len(unique)
        hashes |= unique
    return ClipExclusion(hashes=frozenset(hashes), sources=sources, avsbench=avsbench)
