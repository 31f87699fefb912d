"""Reviewing candidate pairs: the interactive loop and its non-interactive companions.

:class:`ReviewSession` shows each pending pair of a ``matches.csv`` (score, method, the rule's
note, example instances from the user's data) and reads one key per pair:

=====  ==========================================================
``a``  accept the pair
``r``  reject the pair
``s``  skip it for now (it comes back after the others next time)
``u``  undo the last decision or skip (also one made in an earlier run)
``n``  type a note, saved with the next decision of this pair
``q``  quit (everything decided so far is saved)
=====  ==========================================================

Every decision is written at once, atomically (temporary file + ``os.replace``), so Ctrl-C or a
closed terminal loses nothing, and the next run resumes with the first pair still pending. Skips
and the undo history live in ``<matches>.review.json`` beside the table.

The session reads keys through a callable and writes to a :class:`rich.console.Console`, so it is
driven by a terminal (``click.getchar``), a pipe or a test alike.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from os import PathLike
from pathlib import Path

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from avs_synth.errors import DataFormatError
from avs_synth.matching.table import (
    DECISIONS,
    HEADER,
    MatchRow,
    atomic_write_text,
    read_matches,
    write_matches,
)
from avs_synth.records import ImageRecord, Instance

__all__ = [
    "CategoryExamples",
    "ExampleInstance",
    "ReviewSession",
    "ReviewSummary",
    "accept_above",
    "collect_examples",
    "export_review",
    "import_decisions",
    "pending_rows",
    "render_review_list",
]

logger = logging.getLogger(__name__)

KEY_HINTS = "[a]ccept  [r]eject  [s]kip  [u]ndo  [n]ote  [q]uit"
_INTERRUPT_KEYS = ("\x03", "\x04", "")
_HISTORY_LIMIT = 200


@dataclass(frozen=True)
class ExampleInstance:
    """One annotated instance shown as an example of a category."""

    image_path: Path
    width: int
    height: int
    instance: Instance


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


@dataclass
class CategoryExamples:
    """What the user's data holds for one visual category.

    Args:
        source, category_id: the category.
        n_images: images with at least one instance.
        n_instances: instances (crowd ones included).
        n_crowd: crowd / group-of instances (not used as sounding masks).
        areas: areas in pixels of the non-crowd instances.
        examples: the first few non-crowd instances, one per image.
    """

    source: str
    category_id: str
    n_images: int = 0
    n_instances: int = 0
    n_crowd: int = 0
    areas: list[float] = field(default_factory=list)
    examples: list[ExampleInstance] = field(default_factory=list)

    @property
    def median_area(self) -> float | None:
        return statistics.median(self.areas) if self.areas else None

    def summary(self) -> str:
        """``"412 instances in 230 images (3 crowd), median area 5,120 px"``."""
        if not self.n_instances:
            return "no instances in the given data"
        text = f"{_count(self.n_instances, 'instance')} in {_count(self.n_images, 'image')}"
        if self.n_crowd:
            text += f" ({self.n_crowd:,} crowd)"
        if self.median_area is not None:
            text += f", median area {self.median_area:,.0f} px"
        return text


def collect_examples(
    records: Iterable[ImageRecord],
    *,
    wanted: set[tuple[str, str]] | None = None,
    max_examples: int = 3,
) -> dict[tuple[str, str], CategoryExamples]:
    """Count instances per category and keep a few examples.

    Args:
        records: images from any reader (LVIS, COCO, Open Images).
        wanted: ``(source, category_id)`` pairs to collect (all when None).
        max_examples: examples kept per category (non-crowd, one per image).
    """
    found: dict[tuple[str, str], CategoryExamples] = {}
    for record in records:
        counted: set[tuple[str, str]] = set()
        shown: set[tuple[str, str]] = set()
        for instance in record.instances:
            key = (record.source, instance.category_id)
            if wanted is not None and key not in wanted:
                continue
            stats = found.get(key)
            if stats is None:
                stats = found[key] = CategoryExamples(record.source, instance.category_id)
            stats.n_instances += 1
            stats.n_crowd += instance.is_crowd
            if not instance.is_crowd:
                stats.areas.append(float(instance.area))
            if key not in counted:
                stats.n_images += 1
                counted.add(key)
            if not instance.is_crowd and key not in shown and len(stats.examples) < max_examples:
                stats.examples.append(
                    ExampleInstance(record.path, record.width, record.height, instance)
                )
                shown.add(key)
    return found


def pending_rows(rows: Sequence[MatchRow], *, include_automatic: bool = False) -> list[MatchRow]:
    """Rows to review: pending ones, and those the rule accepted when ``include_automatic``."""
    return [
        row for row in rows if row.decision == "pending" or (include_automatic and row.is_automatic)
    ]


def _examples_for(
    row: MatchRow, examples: Mapping[tuple[str, str], CategoryExamples] | None
) -> CategoryExamples | None:
    if examples is None:
        return None
    return examples.get((row.source, row.visual_id)) or CategoryExamples(row.source, row.visual_id)


def _example_lines(stats: CategoryExamples) -> list[str]:
    lines = [stats.summary()]
    for example in stats.examples:
        x, y, w, h = example.instance.bbox
        lines.append(
            f"  {example.image_path}  ({example.width}x{example.height}, "
            f"box {w:.0f}x{h:.0f} at {x:.0f},{y:.0f})"
        )
    return lines


def render_review_list(
    rows: Sequence[MatchRow],
    console: Console,
    *,
    examples: Mapping[tuple[str, str], CategoryExamples] | None = None,
    title: str = "Pairs to review",
) -> None:
    """Print rows as a table (``review-matches --list``)."""
    if not rows:
        console.print(f"{title}: none.")
        return
    table = Table(title=f"{title} ({len(rows)})", show_lines=False, expand=False)
    for column in ("source", "visual", "vggsound label", "score", "method", "decision", "note"):
        table.add_column(column, overflow="fold")
    if examples is not None:
        table.add_column("in your data", overflow="fold")
    for row in rows:
        cells = [
            row.source,
            f"{row.visual_name} ({row.visual_id})",
            row.vggsound_label,
            "" if row.score is None else f"{row.score:g}",
            row.method,
            row.decision,
            row.note,
        ]
        if examples is not None:
            stats = _examples_for(row, examples)
            cells.append(stats.summary() if stats else "")
        table.add_row(*cells)
    console.print(table)


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
        stats = _examples_for(row, examples)
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
    rows = read_matches(table_path)
    index = {row.key: i for i, row in enumerate(rows)}
    changed = 0
    for fields in reader:
        line = reader.line_num
        if not fields or not any(f.strip() for f in fields):
            continue
        if len(fields) < len(HEADER):
            raise DataFormatError(edited, f"expected at least {len(HEADER)} fields", line=line)
        source, visual_id, _, label, _, _, decision, note = (f.strip() for f in fields[:8])
        if decision not in DECISIONS:
            raise DataFormatError(edited, f"unknown decision {decision!r}", line=line)
        key = (source, visual_id, label)
        if key not in index:
            raise DataFormatError(edited, f"pair {key} is not in {table_path}", line=line)
        if decision == "pending":
            continue
        row = rows[index[key]]
        if note.startswith(("auto:", "review:")):
            note = ""
        if row.decision != decision or row.note != note:
            rows[index[key]] = replace(row, decision=decision, note=note)
            changed += 1
    write_matches(table_path, rows)
    return changed


def accept_above(table_path: str | PathLike[str], score: float) -> int:
    """Accept every pending pair whose score is at least ``score`` (a scripted decision, noted
    as such). Returns how many rows were accepted."""
    rows = read_matches(table_path)
    changed = 0
    for i, row in enumerate(rows):
        if row.decision == "pending" and row.score is not None and row.score >= score:
            rows[i] = replace(
                row, decision="accepted", note=f"accepted by --accept-above {score:g}"
            )
            changed += 1
    write_matches(table_path, rows)
    return changed


@dataclass
class ReviewSummary:
    """Counts of one review session."""

    accepted: int = 0
    rejected: int = 0
    skipped: int = 0
    undone: int = 0
    remaining: int = 0
    interrupted: bool = False


def _state_path(table_path: Path) -> Path:
    return table_path.with_name(table_path.name + ".review.json")


def _key_text(key: tuple[str, str, str]) -> list[str]:
    return list(key)


class ReviewSession:
    """The interactive review of one ``matches.csv``.

    Args:
        table_path: the table; decisions are written to it at once.
        read_key: returns the next key pressed (``""`` at end of input); may raise
            ``KeyboardInterrupt``.
        console: where pairs and hints are shown.
        read_line: reads a note after ``n`` (defaults to reading keys up to Enter).
        examples: instances from the user's data per ``(source, category_id)``.
        include_automatic: also review pairs the rule accepted.
    """

    def __init__(
        self,
        *,
        table_path: str | PathLike[str],
        read_key: Callable[[], str],
        console: Console,
        read_line: Callable[[str], str] | None = None,
        examples: Mapping[tuple[str, str], CategoryExamples] | None = None,
        include_automatic: bool = False,
    ) -> None:
        self.table_path = Path(table_path)
        self.state_path = _state_path(self.table_path)
        self.read_key = read_key
        self.read_line = read_line or self._read_line_from_keys
        self.console = console
        self.examples = examples
        self.include_automatic = include_automatic
        self.rows = read_matches(self.table_path)
        self.skipped, self.history = self._load_state()

    # -- state -----------------------------------------------------------------------------
    def _load_state(self) -> tuple[list[tuple[str, str, str]], list[dict]]:
        if not self.state_path.exists():
            return [], []
        try:
            data = json.loads(self.state_path.read_text(encoding="utf-8"))
            skipped = [tuple(k) for k in data.get("skipped", [])]
            history = list(data.get("history", []))
        except (json.JSONDecodeError, TypeError, AttributeError) as error:
            logger.warning("ignoring unreadable review state %s: %s", self.state_path, error)
            return [], []
        return skipped, history

    def _save_state(self) -> None:
        data = {
            "skipped": [_key_text(k) for k in self.skipped],
            "history": self.history[-_HISTORY_LIMIT:],
        }
        atomic_write_text(self.state_path, json.dumps(data, indent=1) + "\n")

    def _index(self, key: tuple[str, str, str]) -> int | None:
        for i, row in enumerate(self.rows):
            if row.key == key:
                return i
        return None

    def _set(self, key: tuple[str, str, str], decision: str, note: str) -> None:
        i = self._index(key)
        if i is None:
            raise KeyError(key)
        self.rows[i] = replace(self.rows[i], decision=decision, note=note)
        write_matches(self.table_path, self.rows)

    # -- input -----------------------------------------------------------------------------
    def _read_line_from_keys(self, prompt: str) -> str:
        self.console.print(prompt, end="")
        chars: list[str] = []
        while True:
            ch = self.read_key()
            if ch in ("\r", "\n", ""):
                break
            if ch == "\x03":
                raise KeyboardInterrupt
            chars.append(ch)
        self.console.print()
        return "".join(chars).strip()

    # -- display ---------------------------------------------------------------------------
    def _render(self, row: MatchRow, position: int, total: int, note: str | None) -> None:
        title = Text.assemble(
            (f"[{position}/{total}] ", "bold"),
            (f"{row.source} ", "cyan"),
            (row.visual_name, "bold green"),
            f" (id {row.visual_id})  ↔  ",
            (row.vggsound_label, "bold magenta"),
        )
        details = Table.grid(padding=(0, 2))
        details.add_column(style="dim")
        details.add_column()
        details.add_row("score", "" if row.score is None else f"{row.score:g}")
        details.add_row("method", row.method)
        details.add_row("decision", row.decision)
        if row.note:
            details.add_row("note", row.note)
        if note:
            details.add_row("your note", note)
        stats = _examples_for(row, self.examples)
        if stats is not None:
            details.add_row("your data", "\n".join(_example_lines(stats)))
        if (row.source, row.visual_id, row.vggsound_label) in self.skipped:
            details.add_row("", "(skipped earlier)")
        hints = Text(KEY_HINTS, style="bold yellow")
        self.console.print(Panel(Group(details, hints), title=title, title_align="left"))

    # -- loop ------------------------------------------------------------------------------
    def _queue(self) -> list[tuple[str, str, str]]:
        todo = [
            row.key for row in pending_rows(self.rows, include_automatic=self.include_automatic)
        ]
        skipped = set(self.skipped)
        return [k for k in todo if k not in skipped] + [k for k in self.skipped if k in todo]

    def run(self) -> ReviewSummary:
        """Review until every pair is decided, ``q`` is pressed or input ends.

        Returns the session's counts; ``interrupted`` is True after Ctrl-C or end of input.
        """
        summary = ReviewSummary()
        queue = self._queue()
        reviewed: set[tuple[str, str, str]] = set()
        position = 0
        notes: dict[tuple[str, str, str], str] = {}
        if not queue:
            self.console.print("[green]Nothing to review: no pending pairs.[/green]")
        try:
            while position < len(queue):
                key = queue[position]
                i = self._index(key)
                row = self.rows[i] if i is not None else None
                if row is None or not (
                    row.decision == "pending" or (self.include_automatic and row.is_automatic)
                ):
                    position += 1
                    continue
                self._render(row, position + 1, len(queue), notes.get(key))
                pressed = self.read_key()
                if pressed in _INTERRUPT_KEYS:
                    summary.interrupted = True
                    break
                pressed = pressed.lower()
                if pressed in ("a", "r"):
                    decision = "accepted" if pressed == "a" else "rejected"
                    self.history.append(
                        {
                            "key": _key_text(key),
                            "action": "decide",
                            "decision": row.decision,
                            "note": row.note,
                        }
                    )
                    self._set(key, decision, notes.pop(key, ""))
                    if key in self.skipped:
                        self.skipped.remove(key)
                    self._save_state()
                    reviewed.add(key)
                    if decision == "accepted":
                        summary.accepted += 1
                    else:
                        summary.rejected += 1
                    self.console.print(f"[bold]{decision}[/bold]: {row.visual_name} ↔ {key[2]}")
                    position += 1
                elif pressed == "s":
                    self.history.append({"key": _key_text(key), "action": "skip"})
                    if key not in self.skipped:
                        self.skipped.append(key)
                    self._save_state()
                    summary.skipped += 1
                    position += 1
                elif pressed == "u":
                    position = self._undo(queue, position, summary)
                elif pressed == "n":
                    notes[key] = self.read_line("Note for this pair: ")
                elif pressed == "q":
                    break
                else:
                    self.console.print(f"[red]Unknown key {pressed!r}.[/red] {KEY_HINTS}")
        except KeyboardInterrupt:
            summary.interrupted = True
        summary.remaining = len(pending_rows(self.rows))
        self._print_summary(summary)
        return summary

    def _undo(self, queue: list, position: int, summary: ReviewSummary) -> int:
        if not self.history:
            self.console.print("[yellow]Nothing to undo.[/yellow]")
            return position
        entry = self.history.pop()
        key = tuple(entry["key"])
        if entry["action"] == "decide":
            if self._index(key) is None:
                self.console.print(
                    f"[yellow]Cannot undo: {key} is no longer in the table.[/yellow]"
                )
                self._save_state()
                return position
            self._set(key, entry["decision"], entry["note"])
        elif key in self.skipped:
            self.skipped.remove(key)
        self._save_state()
        summary.undone += 1
        self.console.print(f"[bold]undone[/bold]: {key[1]} ↔ {key[2]}")
        if key in queue[:position]:
            return queue.index(key)
        queue.insert(position, key)
        return position

    def _print_summary(self, summary: ReviewSummary) -> None:
        state = "Interrupted" if summary.interrupted else "Stopped"
        if summary.remaining == 0:
            state = "Done"
        self.console.print(
            f"{state}: {summary.accepted} accepted, {summary.rejected} rejected, "
            f"{summary.skipped} skipped, {summary.undone} undone; "
            f"{summary.remaining} pending left (saved in {self.table_path})."
        )
