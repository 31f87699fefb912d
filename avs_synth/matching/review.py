"""Reviewing candidate pairs: the interactive loop, and the list of pairs to review (``--list``;
export / import / accept-above are in :mod:`~avs_synth.matching.review_scripted`).

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

Nothing written meanwhile by another reviewer or tool is lost: each decision changes only its
own row of the file as it is at that moment, and only if that row still holds what was shown
(else the other's decision is kept and the session says so), through
:func:`~avs_synth.matching.table.update_matches`.

The session reads keys through a callable and writes to a :class:`rich.console.Console`, so it is
driven by a terminal (``click.getchar``), a pipe or a test alike.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from os import PathLike
from pathlib import Path

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from avs_synth.matching.examples import CategoryExamples
from avs_synth.matching.table import (
    MatchRow,
    atomic_write_text,
    locked_table,
    read_matches,
    update_matches,
)

__all__ = [
    "ReviewSession",
    "ReviewSummary",
    "examples_for",
    "pending_rows",
    "render_review_list",
]

logger = logging.getLogger(__name__)

KEY_HINTS = "[a]ccept  [r]eject  [s]kip  [u]ndo  [n]ote  [q]uit"
_INTERRUPT_KEYS = ("\x03", "\x04", "")
_HISTORY_LIMIT = 200


def pending_rows(rows: Sequence[MatchRow], *, include_automatic: bool = False) -> list[MatchRow]:
    """Rows to review: pending ones, and those the rule accepted when ``include_automatic``."""
    return [
        row for row in rows if row.decision == "pending" or (include_automatic and row.is_automatic)
    ]


def examples_for(
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
            stats = examples_for(row, examples)
            cells.append(stats.summary() if stats else "")
        table.add_row(*(Text(cell) for cell in cells))  # data, never markup
    console.print(table)


@dataclass
class ReviewSummary:
    """What one review session changed, counted by final decision (a pair accepted, undone and
    rejected counts once, as rejected).

    Attributes:
        accepted, rejected: pairs this session decided, as they stand at its end.
        skipped: pairs this session skipped that are still pending.
        reopened: decisions of earlier runs that this session undid back to pending.
        conflicts: decisions not written because the pair changed in the file meanwhile (another
            reviewer or tool); the file's version was kept.
        remaining: pending pairs left in the table.
        interrupted: True after Ctrl-C or end of input.
    """

    accepted: int = 0
    rejected: int = 0
    skipped: int = 0
    reopened: int = 0
    conflicts: int = 0
    remaining: int = 0
    interrupted: bool = False


def _state_path(table_path: Path) -> Path:
    return table_path.with_name(table_path.name + ".review.json")


Key = tuple[str, str, str]
_Verdict = tuple[str, str]  # (decision, note)


def _verdict(row: MatchRow) -> _Verdict:
    return (row.decision, row.note)


def _pair_text(name: str, label: str) -> Text:
    return Text.assemble((name, "bold green"), " ↔ ", (label, "bold magenta"))


class _Conflict(Exception):
    """The pair changed in the file since it was shown (or left the table)."""

    def __init__(self, now: MatchRow | None) -> None:
        super().__init__()
        self.now = now


class ReviewSession:
    """The interactive review of one ``matches.csv``.

    The table is re-read before each pair, and each decision is a compare-and-set on the file as
    it is then (:func:`~avs_synth.matching.table.update_matches`): a pair that another reviewer
    or tool decided meanwhile is not overwritten (the session says so and moves on), rows added
    meanwhile are kept (and pending ones join the queue).

    Args:
        table_path: the table; decisions are written to it at once.
        read_key: returns the next key pressed (``""`` at end of input); may raise
            ``KeyboardInterrupt``.
        console: where pairs and hints are shown.
        read_line: reads a note after ``n`` (defaults to reading keys up to Enter).
        examples: instances from the user's data per ``(source, category_id)``.
        include_automatic: also review pairs the rule accepted.
        show_pictures: called after each pair is shown, with the pair and its examples (pictures
            of the examples: :mod:`avs_synth.matching.review_pictures`).
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
        show_pictures: Callable[[MatchRow, CategoryExamples], None] | None = None,
    ) -> None:
        self.table_path = Path(table_path)
        self.state_path = _state_path(self.table_path)
        self.read_key = read_key
        self.read_line = read_line or self._read_line_from_keys
        self.console = console
        self.examples = examples
        self.include_automatic = include_automatic
        self.show_pictures = show_pictures
        self.rows = read_matches(self.table_path)
        self._before: dict[Key, _Verdict] = {}  # verdicts before this session changed them
        self._skipped_here: set[Key] = set()
        self._conflicts = 0

    # -- the table and the state file, re-read at every change ----------------------------------
    def _refresh(self) -> None:
        self.rows = read_matches(self.table_path)

    def _row(self, key: Key) -> MatchRow | None:
        return next((row for row in self.rows if row.key == key), None)

    def _compare_and_set(self, key: Key, expected: _Verdict, new: _Verdict) -> None:
        """Set the pair's verdict to ``new`` if the file still holds ``expected``.

        Raises:
            _Conflict: the pair now holds something else (or is gone); nothing was written.
        """
        conflict: list[MatchRow | None] = []

        def change(rows: list[MatchRow]) -> list[MatchRow] | None:
            conflict.clear()
            for i, row in enumerate(rows):
                if row.key == key:
                    if _verdict(row) != expected:
                        conflict.append(row)
                        return None
                    rows[i] = replace(row, decision=new[0], note=new[1])
                    return rows
            conflict.append(None)
            return None

        self.rows = update_matches(self.table_path, change)
        if conflict:
            raise _Conflict(conflict[0])
        self._before.setdefault(key, expected)

    def _load_state(self) -> dict[str, list]:
        if not self.state_path.exists():
            return {"skipped": [], "history": []}
        try:
            data = json.loads(self.state_path.read_text(encoding="utf-8"))
            return {
                "skipped": [list(k) for k in data.get("skipped", [])],
                "history": [dict(e) for e in data.get("history", [])],
            }
        except (json.JSONDecodeError, TypeError, ValueError, AttributeError) as error:
            logger.warning("ignoring unreadable review state %s: %s", self.state_path, error)
            return {"skipped": [], "history": []}

    def _update_state(self, change: Callable[[dict[str, list]], object]) -> object:
        """Apply ``change`` to the state file as it is now (under the table's lock)."""
        with locked_table(self.table_path):
            state = self._load_state()
            result = change(state)
            state["history"] = state["history"][-_HISTORY_LIMIT:]
            atomic_write_text(self.state_path, json.dumps(state, indent=1) + "\n")
        return result

    def _skipped(self) -> list[Key]:
        return [tuple(k) for k in self._load_state()["skipped"]]  # type: ignore[misc]

    # -- input -----------------------------------------------------------------------------
    def _read_line_from_keys(self, prompt: str) -> str:
        self.console.print(prompt, end="", markup=False)
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
        details.add_row("method", Text(row.method))
        details.add_row("decision", row.decision)
        if row.note:
            details.add_row("note", Text(row.note))
        if note:
            details.add_row("your note", Text(note))
        stats = examples_for(row, self.examples)
        if stats is not None:
            details.add_row("your data", Text("\n".join(_example_lines(stats))))
        if row.key in self._skipped():
            details.add_row("", "(skipped earlier)")
        hints = Text(KEY_HINTS, style="bold yellow")
        self.console.print(Panel(Group(details, hints), title=title, title_align="left"))
        if stats is not None and stats.examples and self.show_pictures is not None:
            self.show_pictures(row, stats)

    def _say(self, *parts: str | Text | tuple[str, str]) -> None:
        self.console.print(Text.assemble(*parts))

    def _report_conflict(self, row: MatchRow, conflict: _Conflict, action: str) -> None:
        self._conflicts += 1
        now = conflict.now
        state = "it left the table" if now is None else f"it is now {now.decision}"
        if now is not None and now.note:
            state += f" ({now.note})"
        self._say(
            ("not changed: ", "bold yellow"),
            _pair_text(row.visual_name, row.vggsound_label),
            f" changed in {self.table_path} since it was shown ({state}); {action}.",
        )

    # -- loop ------------------------------------------------------------------------------
    def _wanted(self, row: MatchRow | None) -> bool:
        return row is not None and (
            row.decision == "pending" or (self.include_automatic and row.is_automatic)
        )

    def _queue(self) -> list[Key]:
        todo = [
            row.key for row in pending_rows(self.rows, include_automatic=self.include_automatic)
        ]
        skipped = self._skipped()
        later = set(skipped)
        return [k for k in todo if k not in later] + [k for k in skipped if k in todo]

    def run(self) -> ReviewSummary:
        """Review until every pair is decided, ``q`` is pressed or input ends.

        Returns what the session changed (see :class:`ReviewSummary`); ``interrupted`` is True
        after Ctrl-C or end of input.
        """
        summary = ReviewSummary()
        queue = self._queue()
        position = 0
        notes: dict[Key, str] = {}
        if not queue:
            self.console.print(Text("Nothing to review: no pending pairs.", style="green"))
        try:
            while True:
                if position >= len(queue):
                    self._refresh()  # pairs added meanwhile by another tool join the queue
                    queue += [k for k in self._queue() if k not in queue]
                    if position >= len(queue):
                        break
                key = queue[position]
                self._refresh()
                row = self._row(key)
                if not self._wanted(row):
                    position += 1
                    continue
                assert row is not None
                self._render(row, position + 1, len(queue), notes.get(key))
                pressed = self.read_key()
                if pressed in _INTERRUPT_KEYS:
                    summary.interrupted = True
                    break
                pressed = pressed.lower()
                if pressed in ("a", "r"):
                    self._decide(row, "accepted" if pressed == "a" else "rejected", notes)
                    position += 1
                elif pressed == "s":
                    self._skip(key)
                    position += 1
                elif pressed == "u":
                    position = self._undo(queue, position)
                elif pressed == "n":
                    notes[key] = self.read_line("Note for this pair: ")
                elif pressed == "q":
                    break
                else:
                    self._say(("Unknown key ", "red"), (repr(pressed), "red"), ". ", KEY_HINTS)
        except KeyboardInterrupt:
            summary.interrupted = True
        self._refresh()
        self._count(summary)
        self._print_summary(summary)
        return summary

    def _decide(self, row: MatchRow, decision: str, notes: dict[Key, str]) -> None:
        key = row.key
        new = (decision, notes.get(key, ""))
        try:
            self._compare_and_set(key, _verdict(row), new)
        except _Conflict as conflict:
            self._report_conflict(row, conflict, "the file's version is kept")
            return
        notes.pop(key, None)
        entry = {
            "key": list(key),
            "name": row.visual_name,
            "action": "decide",
            "decision": row.decision,
            "note": row.note,
            "after": list(new),
        }

        def record(state: dict[str, list]) -> None:
            state["history"].append(entry)
            state["skipped"] = [k for k in state["skipped"] if tuple(k) != key]

        self._update_state(record)
        self._say((decision, "bold"), ": ", _pair_text(row.visual_name, key[2]))

    def _skip(self, key: Key) -> None:
        row = self._row(key)

        def record(state: dict[str, list]) -> None:
            state["history"].append(
                {"key": list(key), "name": row.visual_name if row else "", "action": "skip"}
            )
            if list(key) not in state["skipped"]:
                state["skipped"].append(list(key))

        self._update_state(record)
        self._skipped_here.add(key)

    def _undo(self, queue: list[Key], position: int) -> int:
        entry = self._update_state(
            lambda state: state["history"].pop() if state["history"] else None
        )
        if not isinstance(entry, dict):
            self.console.print(Text("Nothing to undo.", style="yellow"))
            return position
        key: Key = tuple(entry["key"])  # type: ignore[assignment]
        self._refresh()
        row = self._row(key)
        name = row.visual_name if row is not None else str(entry.get("name") or key[1])
        if entry["action"] == "decide":
            if row is None:
                self._say(
                    ("Cannot undo: ", "yellow"),
                    _pair_text(name, key[2]),
                    " is no longer in the table.",
                )
                return position
            before = (str(entry["decision"]), str(entry["note"]))
            after = tuple(entry["after"]) if "after" in entry else _verdict(row)
            try:
                self._compare_and_set(key, after, before)  # type: ignore[arg-type]
            except _Conflict as conflict:
                self._report_conflict(row, conflict, "nothing undone")
                return position
        else:

            def unskip(state: dict[str, list]) -> None:
                state["skipped"] = [k for k in state["skipped"] if tuple(k) != key]

            self._update_state(unskip)
            self._skipped_here.discard(key)
        self._say(("undone", "bold"), ": ", _pair_text(name, key[2]))
        if key in queue[:position]:
            return queue.index(key)
        queue.insert(position, key)
        return position

    def _count(self, summary: ReviewSummary) -> None:
        for key, before in self._before.items():
            row = self._row(key)
            if row is None or _verdict(row) == before:
                continue
            if row.decision == "accepted":
                summary.accepted += 1
            elif row.decision == "rejected":
                summary.rejected += 1
            else:
                summary.reopened += 1
        skipped = set(self._skipped())
        summary.skipped = sum(
            1 for k in self._skipped_here if k in skipped and self._wanted(self._row(k))
        )
        summary.conflicts = self._conflicts
        summary.remaining = len(pending_rows(self.rows))

    def _print_summary(self, summary: ReviewSummary) -> None:
        state = "Interrupted" if summary.interrupted else "Stopped"
        if summary.remaining == 0:
            state = "Done"
        text = (
            f"{state}: {summary.accepted} accepted, {summary.rejected} rejected, "
            f"{summary.skipped} skipped"
        )
        if summary.reopened:
            text += f", {summary.reopened} earlier decisions reopened"
        if summary.conflicts:
            text += f", {summary.conflicts} not changed (decided meanwhile in the file)"
        self._say(f"{text}; {summary.remaining} pending left (saved in {self.table_path}).")
