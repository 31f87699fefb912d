"""The interactive review session: final-decision counts, key hints, undo, and the fault suite's
"a table edited during review": decisions and rows written meanwhile are merged or refused, never
overwritten."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console

from avs_synth.errors import DataFormatError
from avs_synth.matching.review import ReviewSession
from avs_synth.matching.table import MatchRow, read_matches, write_matches


def pending(vid: str, name: str, label: str, score: float = 90.0) -> MatchRow:
    return MatchRow("lvis", vid, name, label, score, "exact:name", "pending", "review: hint")


@pytest.fixture
def table(tmp_path) -> Path:
    path = tmp_path / "matches.csv"
    write_matches(
        path,
        [
            pending("1", "bird", "mynah bird singing"),
            pending("2", "dog_collar", "dog barking"),
            pending("3", "guitar", "playing acoustic guitar"),
        ],
    )
    return path


def verdicts(path: Path) -> dict[str, tuple[str, str]]:
    return {r.visual_name: (r.decision, r.note) for r in read_matches(path)}


def keys(*script: str | Callable[[], None]) -> Callable[[], str]:
    """Keys pressed in order; a callable in the script runs (another tool) before the next key."""
    items: Iterator[str | Callable[[], None]] = iter(script)

    def read_key() -> str:
        for item in items:
            if callable(item):
                item()
                continue
            return item
        return ""

    return read_key


def session(path: Path, *script: str | Callable[[], None]) -> tuple[ReviewSession, Console]:
    console = Console(record=True, width=160, color_system=None)
    return ReviewSession(table_path=path, read_key=keys(*script), console=console), console


def shown(console: Console) -> str:
    """What the console printed, with line wrapping undone."""
    return " ".join(console.export_text().split())


def edit(path: Path, name: str, **changes) -> Callable[[], None]:
    """Another tool (a text editor, a second reviewer) changing one row of the file."""

    def run() -> None:
        rows = [replace(r, **changes) if r.visual_name == name else r for r in read_matches(path)]
        write_matches(path, rows)

    return run


def add_row(path: Path, row: MatchRow) -> Callable[[], None]:
    return lambda: write_matches(path, [*read_matches(path), row])


def test_summary_counts_final_decisions_not_key_presses(table) -> None:
    review, console = session(table, "a", "u", "r", "s", "q")
    summary = review.run()
    # bird: accepted, undone, rejected -> one rejection; dog_collar skipped; guitar not reached
    assert (summary.accepted, summary.rejected, summary.skipped) == (0, 1, 1)
    assert summary.remaining == 2 and not summary.interrupted
    assert "Stopped: 0 accepted, 1 rejected, 1 skipped; 2 pending left" in shown(console)


def test_unknown_key_shows_the_hint_ungarbled_and_undo_names_the_pair(table) -> None:
    review, console = session(table, "x", "a", "u", "q")
    review.run()
    text = shown(console)
    assert "Unknown key 'x'. [a]ccept [r]eject [s]kip [u]ndo [n]ote [q]uit" in text
    assert "undone: bird ↔ mynah bird singing" in text
    assert verdicts(table)["bird"] == ("pending", "review: hint")


def test_labels_are_shown_as_written_never_as_markup(tmp_path) -> None:
    path = tmp_path / "matches.csv"
    write_matches(path, [pending("7", "[bold]drum[/bold]", "playing [red] drum")])
    review, console = session(path, "a")
    review.run()
    assert "accepted: [bold]drum[/bold] ↔ playing [red] drum" in shown(console)


def test_reopening_an_earlier_runs_decision_is_counted_as_such(table) -> None:
    session(table, "a", "q")[0].run()
    summary = session(table, "u", "q")[0].run()
    assert (summary.accepted, summary.rejected, summary.reopened) == (0, 0, 1)
    assert verdicts(table)["bird"] == ("pending", "review: hint")


# --- a table edited during review ----------------------------------------------------------------


def test_rows_and_decisions_written_meanwhile_are_kept(table) -> None:
    hand = MatchRow("coco", "5", "gong", "gong", None, "by hand", "accepted", "added by hand")
    review, _ = session(
        table,
        "a",  # bird
        add_row(table, hand),
        edit(table, "guitar", decision="rejected", note="other reviewer"),
        "r",  # dog_collar
    )
    summary = review.run()
    assert verdicts(table) == {
        "bird": ("accepted", ""),
        "dog_collar": ("rejected", ""),
        "guitar": ("rejected", "other reviewer"),  # decided meanwhile: not asked, not overwritten
        "gong": ("accepted", "added by hand"),
    }
    assert (summary.accepted, summary.rejected, summary.remaining) == (1, 1, 0)


def test_a_pair_decided_meanwhile_is_not_overwritten(table) -> None:
    review, console = session(
        table,
        edit(table, "bird", decision="rejected", note="not a bird"),  # after bird was shown
        "a",
        "q",
    )
    summary = review.run()
    assert verdicts(table)["bird"] == ("rejected", "not a bird")
    assert summary.conflicts == 1 and summary.accepted == 0
    text = shown(console)
    assert "not changed: bird ↔ mynah bird singing changed in" in text
    assert "it is now rejected (not a bird)" in text


def test_a_pending_pair_added_meanwhile_joins_the_queue(table) -> None:
    extra = pending("4", "gong", "gong")
    review, _ = session(table, add_row(table, extra), "a", "a", "a", "a")
    summary = review.run()
    assert verdicts(table)["gong"] == ("accepted", "")
    assert summary.accepted == 4 and summary.remaining == 0


def test_undo_refuses_when_the_pair_changed_meanwhile(table) -> None:
    review, console = session(
        table, "a", edit(table, "bird", decision="rejected", note="second opinion"), "u", "q"
    )
    summary = review.run()
    assert verdicts(table)["bird"] == ("rejected", "second opinion")
    assert summary.conflicts == 1
    assert "nothing undone" in shown(console)


def test_a_pair_removed_meanwhile_is_not_written_back(table) -> None:
    def remove_bird() -> None:
        write_matches(table, [r for r in read_matches(table) if r.visual_name != "bird"])

    review, console = session(table, remove_bird, "a", "q")
    review.run()
    assert "bird" not in verdicts(table)
    assert "it left the table" in shown(console)


def test_a_table_broken_meanwhile_stops_the_session_and_is_left_alone(table) -> None:
    broken = "source,visual_id\nnot a table\n"
    review, _ = session(table, "a", lambda: table.write_text(broken), "r")
    with pytest.raises(DataFormatError, match="header must be"):
        review.run()
    assert table.read_text() == broken
