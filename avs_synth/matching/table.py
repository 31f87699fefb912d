"""The verification table ``matches.csv``: schema, validation, atomic writes, merging.

Header (exactly)::

    source,visual_id,visual_name,vggsound_label,score,method,decision,note

* ``source``: ``lvis``, ``coco`` or ``openimages``; ``visual_id`` the source's id (``3``,
  ``/m/0bt9lr``); ``visual_name`` verbatim from the source (``bus_(vehicle)``, ``Dog``);
  ``vggsound_label`` verbatim (may hold commas, so it is quoted);
* ``score``: rapidfuzz similarity 0-100 (empty for a pair added by hand); ``method``: how the
  candidate was found (``exact:name``...; free text for hand-added pairs);
* ``decision``: ``accepted``, ``rejected`` or ``pending``. The build uses accepted rows only;
* ``note``: ``auto: ...`` for a pair the acceptance rule accepted, ``review: ...`` for the rule's
  hint on a pending pair, anything else is a person's note.

A row is a *human decision* when it is accepted or rejected and its note does not start with
``auto:``. Regenerating candidates (:func:`merge_candidates`) keeps every human decision, drops
pending and automatic rows that are no longer candidates, and keeps human rows whose pair is no
longer generated (pairs added by hand). Rows are keyed by ``(source, visual_id,
vggsound_label)``; a human decision whose id changed (LVIS v0.5 vs v1) is found by
``(source, visual_name, vggsound_label)``.

Several tools and reviewers may change one table at a time (``review-matches`` in two terminals,
``--import`` from a spreadsheet, ``match`` regenerating, a text editor). No change may lose
another's: every change is a read-modify-write of the file *as it is on disk now*, done by
:func:`update_matches` under an exclusive lock (``flock`` on a hidden ``.{name}.lock`` beside the
table; it works on local disks and NFS), and a change computed from a file that another program
rewrote meanwhile is recomputed from the new file. Writes keep the file's permission bits.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import logging
import os
import stat
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from os import PathLike
from pathlib import Path

from avs_synth.errors import DataFormatError
from avs_synth.matching.candidates import Candidate

__all__ = [
    "DECISIONS",
    "HEADER",
    "SOURCES",
    "MatchRow",
    "MergeReport",
    "accepted_rows",
    "candidates_to_rows",
    "count_by_source",
    "merge_candidates",
    "read_matches",
    "locked_table",
    "shipped_matches",
    "update_match_table",
    "update_matches",
    "write_matches",
]

logger = logging.getLogger(__name__)

HEADER = (
    "source",
    "visual_id",
    "visual_name",
    "vggsound_label",
    "score",
    "method",
    "decision",
    "note",
)
SOURCES = ("lvis", "coco", "openimages")
DECISIONS = ("accepted", "rejected", "pending")
AUTO_PREFIX = "auto:"
REVIEW_PREFIX = "review:"


@dataclass(frozen=True)
class MatchRow:
    """One row of ``matches.csv`` (see the module docstring for the columns)."""

    source: str
    visual_id: str
    visual_name: str
    vggsound_label: str
    score: float | None
    method: str
    decision: str
    note: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        """``(source, visual_id, vggsound_label)``, unique within a table."""
        return (self.source, self.visual_id, self.vggsound_label)

    @property
    def name_key(self) -> tuple[str, str, str]:
        return (self.source, self.visual_name, self.vggsound_label)

    @property
    def is_automatic(self) -> bool:
        """Accepted by the rule, not by a person."""
        return self.decision == "accepted" and self.note.startswith(AUTO_PREFIX)

    @property
    def is_human(self) -> bool:
        """Accepted or rejected by a person."""
        return self.decision in ("accepted", "rejected") and not self.note.startswith(AUTO_PREFIX)


def _parse_score(text: str, path: Path, line: int) -> float | None:
    if not text.strip():
        return None
    try:
        score = float(text)
    except ValueError:
        raise DataFormatError(
            path, f"score must be a number 0-100, got {text!r}", line=line
        ) from None
    if not 0.0 <= score <= 100.0:
        raise DataFormatError(path, f"score must be within 0-100, got {score}", line=line)
    return score


def read_matches(path: str | PathLike[str]) -> list[MatchRow]:
    """Read and validate a ``matches.csv``.

    Raises:
        FileNotFoundError: the file does not exist.
        DataFormatError: a wrong header, a row with the wrong number of fields, an unknown source
            or decision, an empty id/name/label, a score outside 0-100, or a pair listed twice;
            the error names the file and line.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise DataFormatError(path, f"not UTF-8 text ({error.reason})") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[MatchRow] = []
    seen: dict[tuple[str, str, str], int] = {}
    try:
        header = next(reader, None)
        if header is None:
            raise DataFormatError(path, f"empty file; the header must be {','.join(HEADER)}")
        if tuple(h.strip() for h in header) != HEADER:
            raise DataFormatError(
                path, f"header must be {','.join(HEADER)}, got {','.join(header)}", line=1
            )
        start = reader.line_num + 1
        for fields in reader:
            line, start = start, reader.line_num + 1
            if not fields or not any(f.strip() for f in fields):
                continue
            if len(fields) != len(HEADER):
                raise DataFormatError(
                    path,
                    f"expected {len(HEADER)} fields, got {len(fields)} "
                    "(quote labels that contain commas)",
                    line=line,
                )
            source, visual_id, visual_name, label, score, method, decision, note = fields
            source, decision = source.strip(), decision.strip()
            if source not in SOURCES:
                raise DataFormatError(
                    path, f"source must be one of {', '.join(SOURCES)}, got {source!r}", line=line
                )
            if decision not in DECISIONS:
                raise DataFormatError(
                    path,
                    f"decision must be one of {', '.join(DECISIONS)}, got {decision!r}",
                    line=line,
                )
            for column, value in (
                ("visual_id", visual_id),
                ("visual_name", visual_name),
                ("vggsound_label", label),
            ):
                if not value.strip():
                    raise DataFormatError(path, f"empty {column}", line=line)
            row = MatchRow(
                source=source,
                visual_id=visual_id.strip(),
                visual_name=visual_name,
                vggsound_label=label.strip(),
                score=_parse_score(score, path, line),
                method=method.strip(),
                decision=decision,
                note=note.strip(),
            )
            if row.key in seen:
                raise DataFormatError(
                    path,
                    f"pair {row.source} {row.visual_id} ({row.visual_name}) / "
                    f"{row.vggsound_label!r} is listed twice (first on line {seen[row.key]})",
                    line=line,
                )
            seen[row.key] = line
            rows.append(row)
    except csv.Error as error:
        raise DataFormatError(path, f"malformed CSV: {error}", line=reader.line_num) from None
    return rows


def _sort_key(row: MatchRow) -> tuple:
    return (
        SOURCES.index(row.source),
        row.visual_name.casefold(),
        row.visual_id,
        row.vggsound_label,
    )


def _format_score(score: float | None) -> str:
    return "" if score is None else f"{round(score, 1):g}"


def table_text(rows: Iterable[MatchRow]) -> str:
    """The CSV text of a table, sorted by source, visual name and label."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    for row in sorted(rows, key=_sort_key):
        writer.writerow(
            [
                row.source,
                row.visual_id,
                row.visual_name,
                row.vggsound_label,
                _format_score(row.score),
                row.method,
                row.decision,
                row.note,
            ]
        )
    return buffer.getvalue()


def write_matches(path: str | PathLike[str], rows: Iterable[MatchRow]) -> None:
    """Write the table atomically (a temporary file in the same folder, then ``os.replace``),
    sorted by source, visual name and label, so an interruption never leaves a partial file.

    This replaces the whole file: to change rows of a table others may be editing, use
    :func:`update_matches`."""
    atomic_write_text(Path(path), table_text(rows))


def _new_file_mode() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace``.

    The file keeps its permission bits (a new file gets the usual ``0666`` less the umask, not
    the temporary file's ``0600``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        mode = _new_file_mode()
    handle = tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", newline="", dir=path.parent, prefix=f".{path.name}.", delete=False
    )
    try:
        with handle:
            handle.write(text)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def lock_path(path: str | PathLike[str]) -> Path:
    """The lock file of a table: ``.{name}.lock`` in the table's folder."""
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


@contextlib.contextmanager
def locked_table(path: str | PathLike[str]) -> Iterator[None]:
    """Hold the exclusive lock of a table (waits for another holder to finish)."""
    lock = lock_path(path)
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    return (info.st_ino, info.st_size, info.st_mtime_ns)


_UPDATE_ATTEMPTS = 5


def update_matches(
    path: str | PathLike[str],
    change: Callable[[list[MatchRow]], list[MatchRow] | None],
    *,
    missing_ok: bool = False,
) -> list[MatchRow]:
    """Change a table without losing what others wrote to it meanwhile.

    Under the table's lock, the file is read as it is now, ``change(rows)`` returns the new rows
    (or None to leave the file as it is), and the result is written atomically. When a program
    that does not take the lock (a text editor) rewrote the file while ``change`` ran, the file
    is read again and ``change`` is called again on the new rows, so ``change`` must compute from
    the rows it is given.

    Args:
        path: the table.
        change: rows on disk -> the rows to write, or None for no change.
        missing_ok: a missing table counts as an empty one (else FileNotFoundError).

    Returns:
        the rows now in the file.

    Raises:
        DataFormatError: the table on disk is malformed (nothing is written).
        RuntimeError: the file kept changing under another program (nothing is written).
    """
    path = Path(path)
    with locked_table(path):
        for _ in range(_UPDATE_ATTEMPTS):
            before = _signature(path)
            if before is None and missing_ok:
                rows: list[MatchRow] = []
            else:
                rows = read_matches(path)
            new = change(list(rows))
            if new is None:
                return rows
            text = table_text(new)
            if _signature(path) != before:
                continue  # rewritten by a program that does not lock: start from its rows
            atomic_write_text(path, text)
            return sorted(new, key=_sort_key)
    raise RuntimeError(f"{path}: the file kept changing while it was updated; nothing written")


def candidates_to_rows(candidates: Iterable[Candidate]) -> list[MatchRow]:
    """Rows for fresh candidates: ``accepted`` (the rule's) or ``pending``."""
    rows = []
    for candidate in candidates:
        if candidate.visual.source not in SOURCES:
            raise ValueError(f"not a visual category: {candidate.visual}")
        rows.append(
            MatchRow(
                source=candidate.visual.source,
                visual_id=candidate.visual.category_id,
                visual_name=candidate.visual.name,
                vggsound_label=candidate.vggsound_label,
                score=candidate.score,
                method=candidate.method,
                decision="accepted" if candidate.accepted else "pending",
                note=candidate.note,
            )
        )
    return rows


@dataclass(frozen=True)
class MergeReport:
    """What :func:`merge_candidates` did.

    Args:
        rows: the merged table.
        kept_human: human decisions carried over onto regenerated candidates.
        kept_orphans: human rows kept although their pair is no longer generated.
        dropped: pending or automatic rows no longer generated.
        new: candidates not in the old table.
    """

    rows: list[MatchRow]
    kept_human: int
    kept_orphans: int
    dropped: int
    new: int


def merge_candidates(fresh: Sequence[MatchRow], existing: Sequence[MatchRow]) -> MergeReport:
    """Merge freshly generated candidate rows into an existing table, keeping human decisions.

    A fresh row takes the decision and note of the existing human row for the same pair
    (matched by id, else by verbatim name); its score and method are refreshed. Existing
    pending and automatic rows are replaced by the fresh verdict.
    """
    by_key = {row.key: row for row in existing}
    by_name = {row.name_key: row for row in existing if row.is_human}
    fresh_keys = {row.key for row in fresh}
    used: set[tuple[str, str, str]] = set()
    merged: list[MatchRow] = []
    kept_human = new = 0
    for row in fresh:
        old = by_key.get(row.key)
        if old is None:  # the same pair under another id (another LVIS version)?
            old = by_name.get(row.name_key)
            if old is not None and (old.key in fresh_keys or old.key in used):
                old = None
        if old is not None:
            used.add(old.key)
        if old is not None and old.is_human:
            merged.append(replace(row, decision=old.decision, note=old.note))
            kept_human += 1
        else:
            merged.append(row)
            new += old is None
    orphans = [
        row
        for row in existing
        if row.is_human and row.key not in used and row.key not in fresh_keys
    ]
    dropped = sum(1 for row in existing if not row.is_human and row.key not in fresh_keys)
    return MergeReport(
        rows=sorted(merged + orphans, key=_sort_key),
        kept_human=kept_human,
        kept_orphans=len(orphans),
        dropped=dropped,
        new=new,
    )


def accepted_rows(rows: Iterable[MatchRow]) -> list[MatchRow]:
    """The rows the build uses: decision ``accepted`` (by the rule or by a person)."""
    return [row for row in rows if row.decision == "accepted"]


def count_by_source(rows: Iterable[MatchRow]) -> dict[str, Counter]:
    """``source -> Counter(candidates=, accepted=, rejected=, pending=, automatic=)``."""
    counts: dict[str, Counter] = {source: Counter() for source in SOURCES}
    for row in rows:
        counter = counts[row.source]
        counter["candidates"] += 1
        counter[row.decision] += 1
        counter["automatic"] += row.is_automatic
    return counts


def shipped_matches() -> list[MatchRow]:
    """The reviewed map shipped in ``category_maps/matches.csv``."""
    from avs_synth_category_maps import data_path

    return read_matches(data_path("matches.csv"))


def update_match_table(
    path: str | PathLike[str],
    candidates: Iterable[Candidate],
    *,
    seed: Sequence[MatchRow] | None = None,
) -> MergeReport:
    """Write fresh candidates into ``path``, keeping the human decisions already there.

    Args:
        path: the table; created when missing.
        candidates: from :func:`~avs_synth.matching.candidates.match_categories`.
        seed: decisions to start from when ``path`` does not exist yet (e.g. the shipped
            reviewed map); only its human decisions are used.
    """
    path = Path(path)
    fresh = candidates_to_rows(candidates)
    keys = {row.key for row in fresh}
    report = MergeReport(rows=[], kept_human=0, kept_orphans=0, dropped=0, new=0)

    def merge(existing: list[MatchRow]) -> list[MatchRow]:
        nonlocal report
        if path.exists():
            report = merge_candidates(fresh, existing)
        else:
            report = merge_candidates(fresh, [row for row in (seed or ()) if row.is_human])
            if seed:  # seeded decisions on pairs not generated here belong to another vocabulary
                report = replace(
                    report, rows=[row for row in report.rows if row.key in keys], kept_orphans=0
                )
        return report.rows

    update_matches(path, merge, missing_ok=True)
    return report
