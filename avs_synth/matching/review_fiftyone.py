"""Reviewing candidate pairs in the FiftyOne App.

:func:`build_review_dataset` makes one sample per example instance of each pending pair: the
image (``filepath``), the instance with its mask (``instance``, a ``fo.Detections``), the audio
label (``vggsound_label``) and the pair (``visual_source``, ``visual_id``, ``visual_name``,
``score``, ``method``, ``pair_key``). In the App, tag samples ``accept`` or ``reject``;
:func:`apply_tag_decisions` reads the tags back into ``matches.csv`` (all tagged samples of a pair
must agree; a pair tagged both ways stays pending and is reported).

FiftyOne reads its configuration (``FIFTYONE_DATABASE_DIR``...) when first imported, so it is
imported here lazily, inside the functions.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

from avs_synth.errors import DataFormatError
from avs_synth.masks import decode_mask
from avs_synth.matching.examples import CategoryExamples
from avs_synth.matching.review import pending_rows
from avs_synth.matching.table import MatchRow, read_matches, update_matches

if TYPE_CHECKING:
    import fiftyone as fo

__all__ = [
    "ACCEPT_TAG",
    "REJECT_TAG",
    "TagDecisions",
    "apply_tag_decisions",
    "build_review_dataset",
    "decisions_from_tags",
    "launch_review_app",
    "review_dataset_name",
]

logger = logging.getLogger(__name__)

ACCEPT_TAG = "accept"
REJECT_TAG = "reject"
TAG_NOTE = "tagged in the FiftyOne App"


def review_dataset_name(table_path: str | PathLike[str]) -> str:
    """A stable dataset name for one ``matches.csv`` (``avs-synth-review-<hash>``)."""
    digest = hashlib.sha1(str(Path(table_path).resolve()).encode()).hexdigest()[:10]
    return f"avs-synth-review-{digest}"


def _pair_key(row: MatchRow) -> str:
    return json.dumps(list(row.key))


@dataclass(frozen=True)
class TagDecisions:
    """Decisions read from sample tags.

    Args:
        decisions: pair key ``(source, visual_id, vggsound_label)`` -> ``accepted``/``rejected``.
        conflicts: pairs whose samples were tagged both ``accept`` and ``reject``.
    """

    decisions: dict[tuple[str, str, str], str]
    conflicts: list[tuple[str, str, str]]


def decisions_from_tags(pairs_and_tags: Iterable[tuple[str, Iterable[str]]]) -> TagDecisions:
    """Turn ``(pair_key, tags)`` of samples into one decision per pair.

    A pair is accepted when some sample is tagged ``accept`` and none ``reject``, rejected in
    the opposite case, and left out (a conflict) when tagged both ways.
    """
    seen: dict[tuple[str, str, str], set[str]] = {}
    for pair_key, tags in pairs_and_tags:
        key = tuple(json.loads(pair_key))
        if len(key) != 3:
            raise ValueError(f"malformed pair_key {pair_key!r}")
        marks = {t.strip().lower() for t in tags} & {ACCEPT_TAG, REJECT_TAG}
        seen.setdefault(key, set()).update(marks)
    decisions: dict[tuple[str, str, str], str] = {}
    conflicts = []
    for key, marks in seen.items():
        if marks == {ACCEPT_TAG}:
            decisions[key] = "accepted"
        elif marks == {REJECT_TAG}:
            decisions[key] = "rejected"
        elif marks:
            conflicts.append(key)
    return TagDecisions(decisions, sorted(conflicts))


def read_tag_decisions(dataset: fo.Dataset) -> TagDecisions:
    """The decisions tagged in a review dataset."""
    return decisions_from_tags(zip(dataset.values("pair_key"), dataset.values("tags"), strict=True))


def apply_tag_decisions(table_path: str | PathLike[str], dataset: fo.Dataset) -> TagDecisions:
    """Write the decisions tagged in ``dataset`` into ``matches.csv`` (atomically, changing only
    the tagged rows of the file as it is now, so rows written meanwhile by others are kept).

    Tags overrule the table's current decision for that pair (they are the newer word); pairs
    no longer in the table are reported and skipped.
    """
    found = read_tag_decisions(dataset)
    changed = 0
    absent: list[tuple[str, str, str]] = []

    def apply(rows: list[MatchRow]) -> list[MatchRow] | None:
        nonlocal changed
        changed = 0
        absent.clear()
        index = {row.key: i for i, row in enumerate(rows)}
        for key, decision in found.decisions.items():
            i = index.get(key)
            if i is None:
                absent.append(key)
            elif rows[i].decision != decision or rows[i].note != TAG_NOTE:
                rows[i] = replace(rows[i], decision=decision, note=TAG_NOTE)
                changed += 1
        return rows if changed else None

    update_matches(table_path, apply)
    for key in absent:
        logger.warning("tagged pair %s is not in %s; ignored", key, table_path)
    for key in found.conflicts:
        logger.warning("pair %s is tagged both accept and reject; left as it is", key)
    logger.info("%d decisions read from the FiftyOne tags into %s", changed, table_path)
    return found


def _detection(example, label: str) -> Any:
    import fiftyone as fo

    x, y, w, h = (float(v) for v in example.instance.bbox)
    width, height = example.width, example.height
    mask = decode_mask(
        example.instance.segmentation,
        int(height),
        int(width),
        source=f"{example.image_path}: instance {example.instance.instance_id}",
    )
    x0, y0 = max(0, math.floor(x)), max(0, math.floor(y))
    x1, y1 = min(width, math.ceil(x + w)), min(height, math.ceil(y + h))
    if x1 <= x0 or y1 <= y0:
        raise DataFormatError(
            example.image_path, f"instance {example.instance.instance_id} has an empty box"
        )
    return fo.Detection(
        label=label,
        bounding_box=[x0 / width, y0 / height, (x1 - x0) / width, (y1 - y0) / height],
        mask=mask[y0:y1, x0:x1],
    )


def build_review_dataset(
    rows: Iterable[MatchRow],
    examples: Mapping[tuple[str, str], CategoryExamples],
    *,
    name: str,
    include_automatic: bool = False,
) -> fo.Dataset:
    """A (persistent, overwritten) FiftyOne dataset of example instances of each pending pair.

    Args:
        rows: the table's rows; pending ones (and automatic ones with ``include_automatic``)
            get samples.
        examples: instances from the user's data per ``(source, category_id)``.
        name: the dataset name.
        include_automatic: also show pairs the rule accepted.
    """
    import fiftyone as fo

    dataset = fo.Dataset(name, overwrite=True)
    dataset.persistent = True
    samples = []
    without = 0
    for row in pending_rows(list(rows), include_automatic=include_automatic):
        stats = examples.get((row.source, row.visual_id))
        if stats is None or not stats.examples:
            without += 1
            continue
        for example in stats.examples:
            samples.append(
                fo.Sample(
                    filepath=str(example.image_path),
                    instance=fo.Detections(detections=[_detection(example, row.visual_name)]),
                    vggsound_label=row.vggsound_label,
                    visual_source=row.source,
                    visual_id=row.visual_id,
                    visual_name=row.visual_name,
                    score=row.score,
                    method=row.method,
                    pair_key=_pair_key(row),
                )
            )
    if samples:
        dataset.add_samples(samples, progress=False)
    if without:
        logger.info("%d pending pairs have no instances in the given data (not shown)", without)
    return dataset


def launch_review_app(
    table_path: str | PathLike[str],
    examples: Mapping[tuple[str, str], CategoryExamples],
    *,
    wait: Callable[[str], None],
    address: str = "127.0.0.1",
    port: int = 5151,
    include_automatic: bool = False,
) -> TagDecisions:
    """Review in the FiftyOne App: read tags left by an earlier App session, rebuild the
    dataset of pending pairs, launch the App (remote mode, at ``address:port``), call ``wait``
    with the App's URL until the user is done, then read the tags back into the table."""
    import fiftyone as fo

    name = review_dataset_name(table_path)
    if fo.dataset_exists(name):
        apply_tag_decisions(table_path, fo.load_dataset(name))
    dataset = build_review_dataset(
        read_matches(table_path), examples, name=name, include_automatic=include_automatic
    )
    session = fo.launch_app(dataset, remote=True, address=address, port=port, auto=False)
    try:
        wait(session.url)
    finally:
        found = apply_tag_decisions(table_path, dataset)
        session.close()
    return found
