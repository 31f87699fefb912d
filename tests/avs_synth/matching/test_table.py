"""The matches.csv table: schema, validation errors with file and line, atomic writes, merging."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from avs_synth.errors import DataFormatError
from avs_synth.matching.candidates import Candidate
from avs_synth.matching.table import (
    HEADER,
    MatchRow,
    accepted_rows,
    count_by_source,
    merge_candidates,
    read_matches,
    update_match_table,
    update_matches,
    write_matches,
)
from avs_synth.records import Category

HEAD = ",".join(HEADER) + "\n"


def row(vid="378", name="dog", label="dog barking", decision="pending", note="", **kw) -> MatchRow:
    fields = dict(
        source="lvis",
        visual_id=vid,
        visual_name=name,
        vggsound_label=label,
        score=100.0,
        method="exact:name",
        decision=decision,
        note=note,
    )
    fields.update(kw)
    return MatchRow(**fields)


def candidate(vid="378", name="dog", label="dog barking", accepted=False, score=100.0):
    return Candidate(
        visual=Category(source="lvis", category_id=vid, name=name),
        vggsound_label=label,
        score=score,
        method="exact:name",
        accepted=accepted,
        note="auto: rule" if accepted else "review: hint",
    )


def test_round_trip_keeps_commas_and_order(tmp_path) -> None:
    path = tmp_path / "matches.csv"
    rows = [
        row("/m/0bt9lr", "Dog", source="openimages", decision="accepted", note="ok"),
        row(label="alligators, crocodiles hissing", score=None, method="by hand"),
        row(vid="8", name="ambulance", label="ambulance siren", score=75.0),
    ]
    write_matches(path, rows)
    text = path.read_text()
    assert text.splitlines()[0] == ",".join(HEADER)
    assert 'lvis,378,dog,"alligators, crocodiles hissing",,by hand,pending,' in text
    back = read_matches(path)
    assert [r.visual_name for r in back] == ["ambulance", "dog", "Dog"]  # sorted: lvis first
    assert back[1] == rows[1]
    assert back[0].score == 75.0
    assert [p.name for p in tmp_path.iterdir()] == ["matches.csv"]  # no temporary file left


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("lvis,378,dog,dog barking,100,exact,accepted\n", 2, "expected 8 fields, got 7"),
        ("lvis,378,dog,dog barking,100,exact,maybe,\n", 2, "decision must be one of"),
        ("imagenet,1,dog,dog barking,100,exact,pending,\n", 2, "source must be one of"),
        ("lvis,378,dog,dog barking,high,exact,pending,\n", 2, "score must be a number"),
        ("lvis,378,dog,dog barking,101,exact,pending,\n", 2, "within 0-100"),
        ("lvis,,dog,dog barking,100,exact,pending,\n", 2, "empty visual_id"),
        (
            'lvis,1,a,x,1,m,pending,"a note\nover two lines"\nlvis,2,b,y,1,m,nope,\n',
            4,
            "decision must be one of",
        ),
        (
            "lvis,378,dog,dog barking,100,m,pending,\nlvis,378,dog,dog barking,90,m,accepted,\n",
            3,
            "listed twice (first on line 2)",
        ),
    ],
)
def test_malformed_rows_name_file_and_line(tmp_path, body, line, message) -> None:
    path = tmp_path / "matches.csv"
    path.write_text(HEAD + body)
    with pytest.raises(DataFormatError) as info:
        read_matches(path)
    assert str(info.value).startswith(f"{path}:{line}: ")
    assert message in str(info.value)


def test_wrong_header_is_line_one(tmp_path) -> None:
    path = tmp_path / "matches.csv"
    path.write_text("source,visual_id,name,label\n")
    with pytest.raises(DataFormatError, match=rf"^{path}:1: header must be source,visual_id"):
        read_matches(path)


def test_human_and_automatic_rows() -> None:
    assert row(decision="accepted", note="auto: rule").is_automatic
    assert not row(decision="accepted", note="auto: rule").is_human
    assert row(decision="accepted", note="").is_human
    assert row(decision="rejected", note="a collar").is_human
    assert not row(decision="pending", note="").is_human


def test_merge_keeps_every_human_decision() -> None:
    existing = [
        row(decision="rejected", note="I disagree", score=50.0),  # human, regenerated
        row(
            vid="8",
            name="ambulance",
            label="ambulance siren",
            decision="accepted",
            note="auto: rule",
        ),  # automatic, no longer generated
        row(vid="9", name="cat", label="cat meowing", decision="pending"),  # stale pending
        row(vid="10", name="owl", label="owl hooting", decision="accepted", note="by hand"),
        row(vid="999", name="lion", label="lions roaring", decision="accepted"),  # old id
    ]
    fresh = [
        row(decision="accepted", note="auto: rule", score=100.0, method="exact:name"),
        row(vid="649", name="lion", label="lions roaring", decision="pending", note="review: x"),
        row(vid="11", name="horse", label="horse neighing", decision="accepted", note="auto: r"),
    ]
    report = merge_candidates(fresh, existing)
    by_key = {r.key: r for r in report.rows}
    dog = by_key[("lvis", "378", "dog barking")]
    assert (dog.decision, dog.note, dog.score) == ("rejected", "I disagree", 100.0)
    lion = by_key[("lvis", "649", "lions roaring")]
    assert (lion.decision, lion.note) == ("accepted", "")  # found by name, id updated
    assert ("lvis", "999", "lions roaring") not in by_key
    assert by_key[("lvis", "10", "owl hooting")].decision == "accepted"  # hand-added, kept
    assert ("lvis", "8", "ambulance siren") not in by_key
    assert ("lvis", "9", "cat meowing") not in by_key
    assert by_key[("lvis", "11", "horse neighing")].is_automatic
    assert (report.kept_human, report.kept_orphans, report.dropped, report.new) == (2, 1, 2, 1)


def test_update_table_regenerates_and_keeps_decisions(tmp_path) -> None:
    path = tmp_path / "matches.csv"
    first = update_match_table(path, [candidate(), candidate("8", "ambulance", "ambulance siren")])
    assert first.new == 2
    rows = read_matches(path)
    write_matches(
        path,
        [
            r
            if r.vggsound_label != "ambulance siren"
            else MatchRow(**{**r.__dict__, "decision": "rejected", "note": "no"})
            for r in rows
        ],
    )
    update_match_table(
        path, [candidate(accepted=True), candidate("8", "ambulance", "ambulance siren")]
    )
    rows = {r.vggsound_label: r for r in read_matches(path)}
    assert (rows["ambulance siren"].decision, rows["ambulance siren"].note) == ("rejected", "no")
    assert rows["dog barking"].is_automatic


def test_seed_applies_only_to_generated_pairs(tmp_path) -> None:
    seed = [
        row(decision="rejected", note="seeded"),
        row(vid="/m/0bt9lr", name="Dog", source="openimages", decision="accepted"),
    ]
    path = tmp_path / "new.csv"
    report = update_match_table(path, [candidate()], seed=seed)
    assert [(r.visual_name, r.decision, r.note) for r in report.rows] == [
        ("dog", "rejected", "seeded")
    ]
    assert len(read_matches(path)) == 1


def test_counts_and_accepted_rows() -> None:
    rows = [
        row(decision="accepted", note="auto: r"),
        row(vid="1", decision="rejected"),
        row(vid="2", source="openimages", decision="pending"),
    ]
    counts = count_by_source(rows)
    assert counts["lvis"] == {"candidates": 2, "accepted": 1, "rejected": 1, "automatic": 1}
    assert counts["openimages"]["pending"] == 1
    assert counts["coco"]["candidates"] == 0
    assert accepted_rows(rows) == rows[:1]


# --- concurrent changes: nothing written by another tool is lost ---------------------------------


def test_update_matches_changes_the_file_as_it_is_now(tmp_path) -> None:
    path = tmp_path / "matches.csv"
    write_matches(path, [row("1", "a"), row("2", "b")])
    write_matches(path, [*read_matches(path), row("3", "hand", method="by hand")])  # another tool

    def accept_b(rows):
        return [
            r if r.visual_name != "b" else MatchRow(**{**r.__dict__, "decision": "accepted"})
            for r in rows
        ]

    rows = update_matches(path, accept_b)
    assert {r.visual_name: r.decision for r in read_matches(path)} == {
        "a": "pending",
        "b": "accepted",
        "hand": "pending",
    }
    assert rows == read_matches(path)
    assert update_matches(path, lambda rows: None) == rows  # no change, no write


def test_update_matches_recomputes_when_an_unlocked_editor_saves_meanwhile(tmp_path) -> None:
    path = tmp_path / "matches.csv"
    write_matches(path, [row("1", "a")])
    calls = []

    def change(rows):
        calls.append([r.visual_name for r in rows])
        if len(calls) == 1:  # a text editor saves while this change is computed
            write_matches(path, [*rows, row("2", "edited")])
        return [MatchRow(**{**r.__dict__, "note": "mine"}) for r in rows]

    update_matches(path, change)
    assert calls == [["a"], ["a", "edited"]]
    assert {r.visual_name: r.note for r in read_matches(path)} == {"a": "mine", "edited": "mine"}


def test_writes_keep_the_file_mode(tmp_path) -> None:
    path = tmp_path / "matches.csv"
    write_matches(path, [row("1", "a")])
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # not the temp file's 0600
    for mode in (0o644, 0o664, 0o640):
        path.chmod(mode)
        update_matches(
            path, lambda rows, m=mode: [MatchRow(**{**r.__dict__, "note": oct(m)}) for r in rows]
        )
        assert stat.S_IMODE(path.stat().st_mode) == mode
        assert read_matches(path)[0].note == oct(mode)


def test_concurrent_processes_lose_no_update(tmp_path) -> None:
    path = tmp_path / "matches.csv"
    write_matches(path, [row(str(i), f"c{i}") for i in range(2)])
    code = (
        "import sys\n"
        "from dataclasses import replace\n"
        "from avs_synth.matching.table import update_matches\n"
        "path, vid = sys.argv[1], sys.argv[2]\n"
        "for n in range(25):\n"
        "    def change(rows, n=n):\n"
        "        return [replace(r, note=r.note + f'{vid}.') if r.visual_id == vid else r\n"
        "                for r in rows]\n"
        "    update_matches(path, change)\n"
    )
    workers = [subprocess.Popen([sys.executable, "-c", code, str(path), vid]) for vid in ("0", "1")]
    assert [w.wait(timeout=120) for w in workers] == [0, 0]
    notes = {r.visual_id: r.note for r in read_matches(path)}
    assert notes == {"0": "0." * 25, "1": "1." * 25}


def test_update_match_table_keeps_a_row_added_by_hand_meanwhile(tmp_path) -> None:
    path = tmp_path / "matches.csv"
    update_match_table(path, [candidate()])
    hand = row("9", "gong", "gong", decision="accepted", note="mine", score=None, method="hand")
    write_matches(path, [*read_matches(path), hand])
    update_match_table(path, [candidate()])
    assert hand in read_matches(path)
