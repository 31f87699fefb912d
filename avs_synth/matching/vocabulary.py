"""Category vocabularies: the visual categories and the audio classes that matching compares.

Visual categories come from the user's own files (the ``categories`` of an LVIS or COCO
annotation JSON, the Open Images class descriptions restricted to ``classes-segmentation.txt``)
or from the copies shipped in ``category_maps/`` (LVIS v1, COCO 2017, Open Images boxable
classes), so matching runs without the big downloads. Audio classes come from ``vggsound.csv``
(``youtube_id,start_seconds,label,split``, no header) or a plain label list, one label a line.

Every loader returns ``list[Category]`` (see :class:`~avs_synth.records.Category`) and
raises :class:`~avs_synth.errors.DataFormatError` naming the file (and line) on malformed input.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

from avs_synth.errors import DataFormatError
from avs_synth.records import Category

__all__ = [
    "SHIPPED_FILES",
    "VocabularyConfig",
    "find_openimages_class_files",
    "load_audio_classes",
    "load_visual_categories",
    "load_coco_categories",
    "load_lvis_categories",
    "load_openimages_classes",
    "load_openimages_segmentation_mids",
    "load_vggsound_classes",
    "load_vggsound_groups",
    "shipped_coco_categories",
    "shipped_lvis_categories",
    "shipped_openimages_classes",
    "shipped_s4_categories",
    "shipped_vggsound_classes",
    "shipped_vggsound_groups",
]

logger = logging.getLogger(__name__)

SHIPPED_FILES = {
    "lvis": "lvis_v1_categories.csv",
    "coco": "coco_categories.csv",
    "openimages": "openimages_boxable_classes.csv",
    "vggsound": "vggsound_classes.txt",
    "vggsound_groups": "vggsound_class_groups.csv",
    "s4": "avsbench_s4_categories.csv",
}
_SPLITS = ("train", "test")


def _shipped(name: str) -> Path:
    from avs_synth_category_maps import data_path

    return data_path(name)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise
    except UnicodeDecodeError as error:
        raise DataFormatError(path, f"not UTF-8 text ({error.reason})") from None


def _csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of every non-blank CSV record; quoted fields may span lines."""
    reader = csv.reader(io.StringIO(_read_text(path), newline=""), strict=True)
    try:
        for fields in reader:
            if fields and any(f.strip() for f in fields):
                yield reader.line_num, fields
    except csv.Error as error:
        raise DataFormatError(path, f"malformed CSV: {error}", line=reader.line_num + 1) from None


def _load_json_categories(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_bytes().removeprefix(b"\xef\xbb\xbf"))  # BOM: an editor's
    except json.JSONDecodeError as error:
        raise DataFormatError(path, f"invalid JSON: {error.msg}", line=error.lineno) from None
    except UnicodeDecodeError as error:
        raise DataFormatError(path, f"invalid JSON: not UTF-8 ({error.reason})") from None
    if not isinstance(data, dict) or "categories" not in data:
        raise DataFormatError(path, "no 'categories' list at the top level")
    categories = data["categories"]
    if not isinstance(categories, list) or not categories:
        raise DataFormatError(path, "'categories' must be a non-empty list")
    for index, entry in enumerate(categories):
        if not isinstance(entry, dict):
            raise DataFormatError(path, f"categories[{index}] is not an object")
        for key in ("id", "name"):
            if key not in entry:
                raise DataFormatError(path, f"categories[{index}] has no '{key}'")
        if not isinstance(entry["name"], str) or not entry["name"].strip():
            raise DataFormatError(path, f"categories[{index}]: 'name' must be a non-empty string")
        if isinstance(entry["id"], bool) or not isinstance(entry["id"], int | str):
            raise DataFormatError(path, f"categories[{index}]: 'id' must be an integer or a string")
        for key in ("synset", "frequency", "def"):
            if not isinstance(entry.get(key), str | None):
                raise DataFormatError(path, f"categories[{index}]: {key!r} must be a string")
    return categories


def _check_unique(path: Path, categories: list[Category]) -> list[Category]:
    seen: set[str] = set()
    for category in categories:
        if category.category_id in seen:
            raise DataFormatError(path, f"category id {category.category_id!r} appears twice")
        seen.add(category.category_id)
    return categories


def load_lvis_categories(path: str | PathLike[str]) -> list[Category]:
    """LVIS categories (names, synonyms, synset, frequency, definition).

    Args:
        path: an LVIS annotation JSON (``lvis_v1_val.json`` holds the same 1,203 categories as
            the 1 GB train file and loads faster; only ``categories`` is read), or a CSV in the
            shipped layout ``id,name,synonyms,frequency,synset,def[,...]`` (synonyms joined by
            ``|``).
    """
    path = Path(path)
    if path.suffix.lower() == ".csv":
        return _load_lvis_csv(path)
    categories = []
    for index, entry in enumerate(_load_json_categories(path)):
        synonyms = entry.get("synonyms") or ()
        if not isinstance(synonyms, list | tuple) or not all(isinstance(s, str) for s in synonyms):
            raise DataFormatError(path, f"categories[{index}]: 'synonyms' must be a list of names")
        categories.append(
            Category(
                source="lvis",
                category_id=str(entry["id"]),
                name=entry["name"],
                synonyms=tuple(synonyms),
                synset=entry.get("synset") or None,
                frequency=entry.get("frequency") or None,
                definition=entry.get("def") or None,
            )
        )
    return _check_unique(path, categories)


def _load_lvis_csv(path: Path) -> list[Category]:
    rows = _csv_rows(path)
    header_line, header = next(rows, (1, []))
    expected = ["id", "name", "synonyms", "frequency", "synset", "def"]
    if header[: len(expected)] != expected:
        raise DataFormatError(
            path, f"header must start with {','.join(expected)}, got {header}", line=header_line
        )
    categories = []
    for line, fields in rows:
        if len(fields) < len(expected):
            raise DataFormatError(path, f"expected {len(expected)} fields", line=line)
        cat_id, name, synonyms, frequency, synset, definition = fields[:6]
        if not cat_id.strip() or not name.strip():
            raise DataFormatError(path, "empty id or name", line=line)
        categories.append(
            Category(
                source="lvis",
                category_id=cat_id.strip(),
                name=name,
                synonyms=tuple(s for s in synonyms.split("|") if s),
                synset=synset or None,
                frequency=frequency or None,
                definition=definition or None,
            )
        )
    return _check_unique(path, categories)


def load_coco_categories(path: str | PathLike[str]) -> list[Category]:
    """COCO categories from an annotation JSON (``instances_val2017.json``; only ``categories``
    is read; a COCO name gets its WordNet synset from the shipped COCO table, made from lvis-api's
    ``coco_to_synset.json``), or from a CSV in the shipped layout
    ``id,name,supercategory,...,lvis_synset,...`` whose ``lvis_synset`` becomes the synset."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        rows = _csv_rows(path)
        header_line, header = next(rows, (1, []))
        if header[:2] != ["id", "name"]:
            raise DataFormatError(path, "header must start with id,name", line=header_line)
        synset_col = header.index("lvis_synset") if "lvis_synset" in header else None
        categories = []
        for line, fields in rows:
            if len(fields) != len(header):
                raise DataFormatError(path, f"expected {len(header)} fields", line=line)
            if not fields[0].strip() or not fields[1].strip():
                raise DataFormatError(path, "empty id or name", line=line)
            synset = fields[synset_col] if synset_col is not None else ""
            categories.append(
                Category(
                    source="coco",
                    category_id=fields[0].strip(),
                    name=fields[1],
                    synset=synset or None,
                )
            )
        return _check_unique(path, categories)
    # COCO JSON has no synsets: take them from the LVIS team's COCO -> synset table (shipped)
    synsets = {c.name: c.synset for c in shipped_coco_categories()}
    return _check_unique(
        path,
        [
            Category(
                source="coco",
                category_id=str(e["id"]),
                name=e["name"],
                synset=synsets.get(e["name"]),
            )
            for e in _load_json_categories(path)
        ],
    )


def _is_mid(text: str) -> bool:
    return text.startswith("/") and len(text) > 3 and " " not in text


def load_openimages_segmentation_mids(path: str | PathLike[str]) -> list[str]:
    """The MIDs of ``classes-segmentation.txt`` (one MID a line, e.g. ``/m/0bt9lr``)."""
    path = Path(path)
    mids = []
    for line_no, line in enumerate(_read_text(path).splitlines(), start=1):
        text = line.strip()
        if not text:
            continue
        if not _is_mid(text):
            raise DataFormatError(path, f"not an Open Images MID: {text[:60]!r}", line=line_no)
        mids.append(text)
    if not mids:
        raise DataFormatError(path, "no MIDs in the file")
    return mids


def load_openimages_classes(
    descriptions: str | PathLike[str],
    *,
    segmentation_classes: str | PathLike[str] | None = None,
) -> list[Category]:
    """Open Images classes (MID and display name).

    Args:
        descriptions: ``class-descriptions-boxable.csv`` / ``oidv7-class-descriptions.csv``
            (``MID,DisplayName``, with or without a header line), or the shipped
            ``openimages_boxable_classes.csv``.
        segmentation_classes: ``classes-segmentation.txt``; when given, only its MIDs are kept
            (a MID missing from ``descriptions`` is an error naming its line).
    """
    path = Path(descriptions)
    by_mid: dict[str, Category] = {}
    for line, fields in _csv_rows(path):
        if len(fields) < 2:
            raise DataFormatError(path, "expected MID,DisplayName", line=line)
        mid, name = fields[0].strip(), fields[1]
        if not _is_mid(mid):
            if line == 1:  # a header line ("LabelName,DisplayName", "mid,display_name")
                continue
            raise DataFormatError(path, f"not an Open Images MID: {mid[:60]!r}", line=line)
        if not name.strip():
            raise DataFormatError(path, f"empty display name for {mid}", line=line)
        if mid in by_mid:
            raise DataFormatError(path, f"MID {mid} appears twice", line=line)
        by_mid[mid] = Category(source="openimages", category_id=mid, name=name)
    if not by_mid:
        raise DataFormatError(path, "no classes in the file")
    if segmentation_classes is None:
        return list(by_mid.values())
    seg_path = Path(segmentation_classes)
    kept = []
    for line_no, line in enumerate(_read_text(seg_path).splitlines(), start=1):
        mid = line.strip()
        if not mid:
            continue
        if not _is_mid(mid):
            raise DataFormatError(seg_path, f"not an Open Images MID: {mid[:60]!r}", line=line_no)
        if mid not in by_mid:
            raise DataFormatError(seg_path, f"MID {mid} is not in {path}", line=line_no)
        kept.append(by_mid[mid])
    return kept


_OPENIMAGES_DESCRIPTIONS = (
    "oidv7-class-descriptions.csv",
    "oidv7-class-descriptions-boxable.csv",
    "oidv6-class-descriptions.csv",
    "class-descriptions-boxable.csv",
    "class-descriptions.csv",
)
_OPENIMAGES_SEGMENTATION = ("classes-segmentation.txt", "oidv7-classes-segmentation.txt")


def find_openimages_class_files(root: str | PathLike[str]) -> tuple[Path, Path | None]:
    """The class-descriptions CSV and ``classes-segmentation.txt`` (None when absent) of an Open
    Images download folder, looked for in ``root`` and ``root/annotations``.

    Raises:
        FileNotFoundError: no class-descriptions file.
    """
    root = Path(root)
    folders = [root, root / "annotations"]

    def find(names: tuple[str, ...]) -> Path | None:
        for folder in folders:
            for name in names:
                if (folder / name).is_file():
                    return folder / name
        return None

    descriptions = find(_OPENIMAGES_DESCRIPTIONS)
    if descriptions is None:
        raise FileNotFoundError(
            f"{root}: no Open Images class descriptions ({', '.join(_OPENIMAGES_DESCRIPTIONS)})"
        )
    return descriptions, find(_OPENIMAGES_SEGMENTATION)


def _looks_like_vggsound_row(fields: list[str]) -> bool:
    return len(fields) == 4 and fields[1].strip().isdigit() and fields[3].strip() in _SPLITS


def load_vggsound_classes(path: str | PathLike[str]) -> list[Category]:
    """VGGSound classes, sorted, each once (``category_id`` and ``name`` are the label).

    Args:
        path: ``vggsound.csv`` (``youtube_id,start_seconds,label,split``, no header; labels
            with commas are quoted), or a label list: one label a line, verbatim (commas
            included), blank lines and lines starting with ``#`` ignored.

    The file kind is decided by its first record: four fields with an integer start time and a
    ``train``/``test`` split make it ``vggsound.csv``, whose every row must then have that shape.
    """
    path = Path(path)
    text = _read_text(path)
    first = next((line for line in text.splitlines() if line.strip()), None)
    if first is None:
        raise DataFormatError(path, "the file is empty")
    first_fields = next(csv.reader([first]), [])
    labels: set[str] = set()
    if _looks_like_vggsound_row(first_fields):
        for line, fields in _csv_rows(path):
            if not _looks_like_vggsound_row(fields):
                raise DataFormatError(
                    path,
                    "expected youtube_id,start_seconds,label,split (split train or test), "
                    f"got {len(fields)} fields",
                    line=line,
                )
            label = fields[2].strip()
            if not label:
                raise DataFormatError(path, "empty label", line=line)
            labels.add(label)
    else:
        for line_no, line in enumerate(text.splitlines(), start=1):
            label = line.strip()
            if not label or label.startswith("#"):
                continue
            if label.startswith('"'):
                parsed = next(csv.reader([label]), [])
                if len(parsed) != 1:
                    raise DataFormatError(path, "a quoted label must be alone", line=line_no)
                label = parsed[0].strip()
                if not label:
                    raise DataFormatError(path, "empty label", line=line_no)
            labels.add(label)
    if not labels:
        raise DataFormatError(path, "no label in the file")
    return [Category(source="vggsound", category_id=label, name=label) for label in sorted(labels)]


def load_vggsound_groups(path: str | PathLike[str]) -> dict[str, str]:
    """``label -> group`` (animals, music, people, vehicle, sports, tools, home, nature, others)
    from a ``label,group`` CSV such as the shipped ``vggsound_class_groups.csv``."""
    path = Path(path)
    rows = _csv_rows(path)
    header_line, header = next(rows, (1, []))
    if header != ["label", "group"]:
        raise DataFormatError(path, "header must be label,group", line=header_line)
    groups = {}
    for line, fields in rows:
        if len(fields) != 2 or not fields[0].strip() or not fields[1].strip():
            raise DataFormatError(path, "expected label,group", line=line)
        groups[fields[0].strip()] = fields[1].strip()
    return groups


def shipped_lvis_categories() -> list[Category]:
    """The 1,203 LVIS v1 categories shipped in ``category_maps/``."""
    return load_lvis_categories(_shipped(SHIPPED_FILES["lvis"]))


def shipped_coco_categories() -> list[Category]:
    """The 80 COCO 2017 thing categories shipped in ``category_maps/`` (with LVIS synsets)."""
    return load_coco_categories(_shipped(SHIPPED_FILES["coco"]))


def shipped_openimages_classes(*, challenge_segmentable_only: bool = False) -> list[Category]:
    """The 601 Open Images boxable classes shipped in ``category_maps/``.

    They include all 350 segmentation classes, whose official list is not shipped: pass the
    user's ``classes-segmentation.txt`` to :func:`load_openimages_classes` to restrict.
    ``challenge_segmentable_only`` keeps the 300 classes of the 2019 segmentation challenge.
    """
    path = _shipped(SHIPPED_FILES["openimages"])
    classes = load_openimages_classes(path)
    if not challenge_segmentable_only:
        return classes
    flagged = {
        fields[0] for _, fields in _csv_rows(path) if len(fields) > 2 and fields[2].strip() == "1"
    }
    return [c for c in classes if c.category_id in flagged]


def shipped_vggsound_classes() -> list[Category]:
    """The 309 official VGGSound classes shipped in ``category_maps/``."""
    return load_vggsound_classes(_shipped(SHIPPED_FILES["vggsound"]))


def shipped_vggsound_groups() -> dict[str, str]:
    """VGGSound's own grouping of its classes (``dog barking`` -> ``animals``)."""
    return load_vggsound_groups(_shipped(SHIPPED_FILES["vggsound_groups"]))


def shipped_s4_categories() -> dict[str, str]:
    """AVSBench S4 category -> VGGSound label (``dog_barking`` -> ``dog barking``)."""
    path = _shipped(SHIPPED_FILES["s4"])
    rows = _csv_rows(path)
    next(rows, None)
    return {fields[0]: fields[1] for _, fields in rows}


@dataclass(frozen=True)
class VocabularyConfig:
    """Which vocabularies to match.

    Args:
        lvis: the user's LVIS annotation JSON (or a CSV in the shipped layout).
        coco: the user's COCO annotation JSON (or a CSV in the shipped layout).
        openimages_classes: the user's Open Images class-descriptions CSV.
        openimages_segmentation: the user's ``classes-segmentation.txt`` (restricts the classes).
        vggsound: the user's ``vggsound.csv`` or label list.
        use_shipped: when no visual file is given, match the shipped LVIS, COCO and Open Images
            vocabularies; when no audio file is given, the shipped VGGSound classes.
    """

    lvis: Path | None = None
    coco: Path | None = None
    openimages_classes: Path | None = None
    openimages_segmentation: Path | None = None
    vggsound: Path | None = None
    use_shipped: bool = True


def load_visual_categories(config: VocabularyConfig) -> list[Category]:
    """The visual categories to match: the user's files, else the shipped vocabularies.

    Raises:
        ValueError: no file given and ``use_shipped`` is off, or segmentation classes given
            without class descriptions.
    """
    if config.openimages_segmentation is not None and config.openimages_classes is None:
        raise ValueError("classes-segmentation.txt needs the class descriptions CSV too")
    categories: list[Category] = []
    if config.lvis is not None:
        categories += load_lvis_categories(config.lvis)
    if config.coco is not None:
        categories += load_coco_categories(config.coco)
    if config.openimages_classes is not None:
        categories += load_openimages_classes(
            config.openimages_classes, segmentation_classes=config.openimages_segmentation
        )
    if categories:
        return categories
    if not config.use_shipped:
        raise ValueError("no visual vocabulary: give an LVIS, COCO or Open Images file")
    logger.info("using the shipped LVIS v1, COCO and Open Images vocabularies")
    return shipped_lvis_categories() + shipped_coco_categories() + shipped_openimages_classes()


def load_audio_classes(config: VocabularyConfig) -> list[Category]:
    """The VGGSound classes to match: the user's file, else the shipped 309 classes."""
    if config.vggsound is not None:
        return load_vggsound_classes(config.vggsound)
    if not config.use_shipped:
        raise ValueError("no audio vocabulary: give vggsound.csv or a label list")
    return shipped_vggsound_classes()
