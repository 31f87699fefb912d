"""Opening a build's inputs: the visual readers, VGGSound, the accepted category matches.

Missing inputs fail fast with one line naming the path (:class:`BuildInputError`); readers raise
:class:`~avs_synth.errors.DataFormatError` for files in an unknown or broken format.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from avs_synth.annotation_index import AnnotationIndexWriter
from avs_synth.building.avsbench_exclusion import ClipExclusion, load_exclusion
from avs_synth.building.config import BuildConfig, BuildInputs, VisualInput
from avs_synth.building.plan import CategoryMatch
from avs_synth.records import AudioClip, ImageRecord

logger = logging.getLogger(__name__)


class BuildInputError(Exception):
    """An input of the build is missing or unusable (the message is one line naming it)."""


def packaged_matches() -> Path:
    """The matching table shipped with the package (``category_maps/matches.csv``)."""
    from avs_synth_category_maps import data_path

    return data_path("matches.csv")


def corpus_inputs(corpus: Path, *, matches: Path | None = None) -> BuildInputs:
    """Inputs laid out as the sample corpus writes them: LVIS (``lvis/lvis_v1_{train,val}.json``
    over the COCO pictures), COCO (``coco/annotations/instances_{split}.json`` and
    ``coco/{split}/``), Open Images (``openimages/`` and its split folders), VGGSound
    (``vggsound/vggsound.csv``, ``vggsound/clips/``) and AVSBench (``avsbench/``, whose videos'
    clips are excluded); each dataset is used when it is there.

    Args:
        corpus: the corpus folder.
        matches: the matching table (None: the corpus's ``matches.csv`` if it has one, else the
            packaged table).
    """
    corpus = Path(corpus)
    if not corpus.is_dir():
        raise BuildInputError(f"{corpus}: corpus folder not found")
    visual: list[VisualInput] = []
    coco = corpus / "coco"
    for name in ("lvis_v1_train.json", "lvis_v1_val.json"):
        if (corpus / "lvis" / name).is_file():
            visual.append(
                VisualInput(source="lvis", annotations=corpus / "lvis" / name, images_root=coco)
            )
    for split in ("train2017", "val2017"):
        ann = coco / "annotations" / f"instances_{split}.json"
        if ann.is_file():
            visual.append(VisualInput(source="coco", annotations=ann, images_root=coco / split))
    openimages = corpus / "openimages"
    for split in ("train", "validation", "test"):
        if (openimages / split).is_dir():
            visual.append(VisualInput(source="openimages", root=openimages, split=split))
    if not visual:
        raise BuildInputError(f"{corpus}: no lvis/, coco/ or openimages/ data found")
    if matches is None and (corpus / "matches.csv").is_file():
        matches = corpus / "matches.csv"
    return BuildInputs(
        visual=tuple(visual),
        vggsound_csv=corpus / "vggsound" / "vggsound.csv",
        vggsound_clips=corpus / "vggsound" / "clips",
        matches=matches,
        avsbench=corpus / "avsbench" if (corpus / "avsbench").is_dir() else None,
    )


def check_inputs(inputs: BuildInputs) -> None:
    """Fail fast, before any reading, when an input path is missing."""

    def need(path: Path | None, what: str, *, folder: bool = False) -> None:
        if path is None:
            raise BuildInputError(f"{what} is not given")
        ok = Path(path).is_dir() if folder else Path(path).is_file()
        if not ok:
            kind = "folder" if folder else "file"
            raise BuildInputError(f"{path}: {what} {kind} not found")

    if not inputs.visual:
        raise BuildInputError("no visual dataset given (LVIS, COCO or Open Images)")
    for vis in inputs.visual:
        if vis.source in ("lvis", "coco"):
            need(vis.annotations, f"{vis.source} annotations")
            need(vis.images_root, f"{vis.source} images", folder=True)
        elif vis.source == "openimages":
            need(vis.root, "Open Images", folder=True)
        else:
            raise BuildInputError(f"unknown visual source {vis.source!r}")
    need(inputs.vggsound_csv, "VGGSound CSV")
    need(inputs.vggsound_clips, "VGGSound clips", folder=True)
    need(inputs.matches or packaged_matches(), "category matches")
    if inputs.avsbench is not None:
        need(inputs.avsbench, "AVSBench", folder=True)
    for path in inputs.exclude_clips:
        need(path, "--exclude-clips")


def read_exclusion(inputs: BuildInputs, config: BuildConfig) -> ClipExclusion:
    """The YouTube videos whose clips the build leaves out (see
    :mod:`avs_synth.building.avsbench_exclusion`)."""
    try:
        return load_exclusion(
            avsbench=config.exclude_avsbench,
            avsbench_root=inputs.avsbench,
            exclude_files=inputs.exclude_clips,
        )
    except FileNotFoundError as error:
        raise BuildInputError(str(error)) from None


def read_image_records(
    visual: Sequence[VisualInput],
    *,
    skipped: Counter[str] | None = None,
    categories: Mapping[str, set[str]] | None = None,
    negatives: bool = True,
    index_dir: Path | None = None,
    unused: Counter[str] | None = None,
) -> Iterator[ImageRecord]:
    """Every image record of the visual inputs, in the order given.

    Args:
        visual: the inputs.
        skipped: receives what the readers skipped (Open Images pictures whose JPEG is missing,
            masks not found), as ``{source}_reader_skipped_{what}``.
        categories: source → the category ids whose instances are kept (a build's matched
            ones); None keeps every instance (and Open Images sizes are read from the JPEGs).
        negatives: with ``categories``, whether Open Images pictures whose only use is as a
            negative (a verified-absent label among ``categories``) are wanted; the pictures
            left out are checked as usual and counted in ``unused``.
        index_dir: where the LVIS / COCO geometry of the kept instances is stored
            (``index-{n}-{source}.bin``); None keeps it in the records.
        unused: receives the count of Open Images records read but not yielded, by source.
    """
    for number, vis in enumerate(visual):
        logger.info("reading %s %s", vis.source, vis.annotations or f"{vis.root} ({vis.split})")
        wanted = None if categories is None else categories.get(vis.source, set())
        index = None
        if vis.source in ("lvis", "coco"):
            if vis.source == "lvis":
                from avs_synth.sources.lvis import LVISReader as Reader
            else:
                from avs_synth.sources.coco import COCOReader as Reader  # type: ignore[assignment]
            reader: Any = Reader(annotations=vis.annotations, images_root=vis.images_root)
            if index_dir is not None:
                index = AnnotationIndexWriter(index_dir / f"index-{number:02d}-{vis.source}.bin")
            with index if index is not None else nullcontext():
                yield from reader.images(categories=wanted, index=index)
        else:
            from avs_synth.sources.openimages import OpenImagesReader

            reader = OpenImagesReader(root=vis.root, split=vis.split or "train")
            yield from reader.images(
                categories=wanted,
                negative_categories=wanted if negatives else None,
                read_sizes=categories is None,
            )
            if unused is not None:
                unused[vis.source] += reader.unused
        if skipped is not None:
            for what, count in (getattr(reader, "skipped", None) or {}).items():
                if count:
                    skipped[f"{vis.source}_reader_skipped_{what}"] += count
        del reader  # the parsed file goes before the next one is read


def read_clips(csv_path: Path, clips_root: Path) -> list[AudioClip]:
    """Every VGGSound row, with its file where found."""
    from avs_synth.sources.vggsound import VGGSoundReader

    return list(VGGSoundReader(csv_path=csv_path, clips_root=clips_root).clips())


def read_accepted_matches(path: Path | None) -> tuple[list[CategoryMatch], dict[str, Any]]:
    """The accepted rows of a matching table, and what the manifest records about it.

    Returns:
        (matches, info) with ``info`` holding the file name, its sha256 and the row counts.

    Raises:
        FileNotFoundError: the table does not exist.
        DataFormatError: a malformed table (names the file and line).
    """
    from avs_synth.matching.table import DECISIONS, accepted_rows, read_matches

    path = packaged_matches() if path is None else Path(path)
    rows = read_matches(path)
    matches = [
        CategoryMatch(
            source=row.source,
            visual_id=row.visual_id,
            visual_name=row.visual_name,
            vggsound_label=row.vggsound_label,
        )
        for row in accepted_rows(rows)
    ]
    info = {
        "file": path.name,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "rows": {d: sum(1 for r in rows if r.decision == d) for d in DECISIONS},
        "accepted_pairs": len(matches),
    }
    return matches, info
