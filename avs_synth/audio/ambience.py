"""Ambience classes: VGGSound labels whose clips are a scene's background, not an object's sound.

``avs-synth build --negatives noise --noise-from ambience|both`` pairs pictures with real windows
of these classes (wind, rain, water, crowd murmur, room-tone hum): sound that no object in a
picture makes, as AVSBench-Robust's noise negatives intend, but recorded rather than synthesized.
The list is shipped as ``category_maps/vggsound_ambience_classes.csv`` (``label,why``; labels
verbatim from VGGSound's 309). A listed label that the build's matches table pairs with a visual
category (``running electric fan`` with LVIS ``fan``, ``air conditioning noise`` with
``air_conditioner`` in the packaged table) has a visual match and is not used as ambience.
"""

from __future__ import annotations

import csv
from pathlib import Path

from avs_synth.errors import DataFormatError

AMBIENCE_FILE = "vggsound_ambience_classes.csv"


def load_ambience_classes(path: Path) -> tuple[str, ...]:
    """The labels of a ``label,why`` CSV, sorted.

    Raises:
        DataFormatError: a wrong header, an empty label or a repeated one (file and line named).
    """
    with open(path, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows or [c.strip() for c in rows[0]] != ["label", "why"]:
        raise DataFormatError(path, "header must be label,why", line=1)
    labels: set[str] = set()
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        label = row[0].strip()
        if len(row) != 2 or not label:
            raise DataFormatError(path, "expected label,why", line=line)
        if label in labels:
            raise DataFormatError(path, f"label {label!r} listed twice", line=line)
        labels.add(label)
    return tuple(sorted(labels))


def shipped_ambience_classes() -> tuple[str, ...]:
    """The ambience labels shipped in ``category_maps/``."""
    from avs_synth_category_maps import data_path

    return load_ambience_classes(data_path(AMBIENCE_FILE))
