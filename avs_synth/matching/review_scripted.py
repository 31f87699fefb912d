"""Reviewing by script instead of key by key: export the pairs to review to a CSV (for a
spreadsheet), import its edited decisions, accept every pair above a score.

Each change is made to the table as it is on disk at that moment, under its lock
(:func:`~avs_synth.matching.table.update_matches`): nothing written meanwhile is lost.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import replace
from os import PathLike
from pathlib import Path

from avs_synth.errors import DataFormatError
from avs_synth.matching.examples import CategoryExamples
from avs_synth.matching.review import examples_for
from avs_synth.matching.table import (
    DECISIONS,
    HEADER,
    MatchRow,
    atomic_write_text,
    update_matches,
)

__all__ = ["accept_above", "export_review", "import_decisions"]


def export_review(
    rows: Sequence[MatchRow],
    path: str | PathLike[str],
    *,
    examples: Mapping[tuple[str, str], CategoryExamples] | None = None,
) -> None:
    """Write rows to a CSV for review elsewhere: the ``matches.csv`` columns, then
    ``n_images, n_instances, example_images`` (``|``-separated paths). Edit the ``decision``
    (and ``note``) column and read it back with :func:`import_decisions`."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow((*HEADER, "n_images", "n_instances", "example_images"))
    for row in rows:
        stats = examples_for(row, examples)
        writer.writerow(
            [
                row.source,
                row.visual_id,
                row.visual_name,
                row.vggsound_label,
                "" if row.score is None else f"{row.score:g}",
                row.method,
                row.decision,
                row.note,
                "" if stats is None else stats.n_images,
                "" if stats is None else stats.n_instances,
                "" if stats is None else "|".join(str(e.image_path) for e in stats.examples),
            ]
        )
    atomic_write_text(Path(path), buffer.getvalue())


def import_decisions(table_path: str | PathLike[str], edited: str | PathLike[str]) -> int:
    """Apply the ``accepted`` / ``rejected`` decisions of an edited export (or any CSV with the
    ``matches.csv`` columns first) to the table. Returns how many rows changed.

    Raises:
        DataFormatError: a malformed edited file (names the file and line) or a pair that is
            not in the table.
    """
    edited = Path(edited)
    reader = csv.reader(io.StringIO(edited.read_text(encoding="utf-8-sig"), newline=""))
    header = next(reader, None)
    if header is None or tuple(header[: len(HEADER)]) != HEADER:
        raise DataFormatError(edited, f"header must start with {','.join(HEADER)}", line=1)
    wanted: list[tuple[int, tuple[str, str, str], str, str]] = []
    for fields in reader:
        line = reader.line_num
        if not fields or not any(f.strip() for f in fields):
            continue
        if len(fields) < len(HEADER):
            raise DataFormatError(edited, f"expected at least {len(HEADER)} fields", line=line)
        source, visual_id, _, label, _, _, decision, note = (f.strip() for f in fields[:8])
        if decision not in DECISIONS:
            raise DataFormatError(edited, f"unknown decision {decision!r}", line=line)
        if decision == "pending":
            continue
        if note.startswith(("auto:", "review:")):
            note = ""
        wanted.append((line, (source, visual_id, label), decision, note))
    changed = 0

    def apply(rows: list[MatchRow]) -> list[MatchRow] | None:
        nonlocal changed
        index = {row.key: i for i, row in enumerate(rows)}
        changed = 0
        for line, key, decision, note in wanted:
            if key not in index:
                raise DataFormatError(edited, f"pair {key} is not in {table_path}", line=line)
            row = rows[index[key]]
            if row.decision != decision or row.note != note:
                rows[index[key]] = replace(row, decision=decision, note=note)
                changed += 1
        return rows if changed else None

    update_matches(table_path, apply)
    return changed


def accept_above(table_path: str | PathLike[str], score: float) -> int:
    """Accept every pending pair whose score is at least ``score`` (a scripted decision, noted
    as such). Returns how many rows were accepted."""
    changed = 0

    def apply(rows: list[MatchRow]) -> list[MatchRow] | None:
        nonlocal changed
        changed = 0
        for i, row in enumerate(rows):
            if row.decision == "pending" and row.score is not None and row.score >= score:
                rows[i] = replace(
                    row, decision="accepted", note=f"accepted by --accept-above {score:g}"
                )
                changed += 1
        return rows if changed else None

    update_matches(table_path, apply)
    return changed
