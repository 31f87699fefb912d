"""`avs-synth match` and `avs-synth review-matches`, driven by CliRunner with scripted keys."""

from __future__ import annotations

import csv
import json

import pytest
from PIL import Image
from rich.console import Console
from typer.testing import CliRunner

from avs_synth.matching.examples import collect_examples
from avs_synth.matching.review import ReviewSession
from avs_synth.matching.table import MatchRow, read_matches, write_matches
from avs_synth.records import ImageRecord, Instance, PolygonSegmentation
from avs_synth_cli.synth import app

runner = CliRunner()
ENV = {"COLUMNS": "200", "NO_COLOR": "1"}


def pending(source, vid, name, label, score=100.0, note="review: hint") -> MatchRow:
    return MatchRow(source, vid, name, label, score, "exact:name", "pending", note)


@pytest.fixture
def table(tmp_path):
    path = tmp_path / "matches.csv"
    write_matches(
        path,
        [
            pending("lvis", "99", "bird", "mynah bird singing", 57.1),
            pending("lvis", "379", "dog_collar", "dog barking", 60.0),
            pending("lvis", "521", "guitar", "playing acoustic guitar", 95.0),
            MatchRow(
                "lvis", "378", "dog", "dog barking", 100.0, "exact:name", "accepted", "auto: x"
            ),
        ],
    )
    return path


def decisions(path) -> dict[str, tuple[str, str]]:
    return {r.visual_name: (r.decision, r.note) for r in read_matches(path)}


def review(path, keys: str, *extra: str):
    return runner.invoke(
        app, ["review-matches", "--matches", str(path), *extra], input=keys, env=ENV
    )


def test_interrupted_review_resumes(table) -> None:
    result = review(table, "ar")  # input ends after two keys: an interruption
    assert result.exit_code == 130, result.output
    assert "[1/3]" in result.output and "[a]ccept" in result.output
    assert "Interrupted: 1 accepted, 1 rejected" in result.output
    assert decisions(table)["bird"] == ("accepted", "")
    assert decisions(table)["dog_collar"] == ("rejected", "")
    assert decisions(table)["guitar"][0] == "pending"

    result = review(table, "a")
    assert result.exit_code == 0, result.output
    assert "[1/1]" in result.output and "guitar" in result.output
    assert "Done: 1 accepted" in result.output
    assert decisions(table)["guitar"] == ("accepted", "")
    assert decisions(table)["dog"] == ("accepted", "auto: x")  # automatic rows are not asked


def test_ctrl_c_keeps_what_was_decided(table) -> None:
    result = review(table, "a\x03r")
    assert result.exit_code == 130
    assert [d for d, _ in decisions(table).values()].count("accepted") == 2  # bird + auto dog
    assert decisions(table)["dog_collar"][0] == "pending"


def test_skip_undo_note_quit_and_undo_across_runs(table) -> None:
    result = review(table, "sau" + "n\nnot the animal\n" + "r" + "q")
    assert result.exit_code == 0, result.output
    assert "undone" in result.output
    assert decisions(table)["bird"][0] == "pending"  # skipped
    assert decisions(table)["dog_collar"] == ("rejected", "not the animal")
    state = json.loads((table.parent / "matches.csv.review.json").read_text())
    assert state["skipped"] == [["lvis", "99", "mynah bird singing"]]

    # skipped pairs come last next time; an undo reaches back into the earlier run
    result = review(table, "a" + "u" + "q")
    assert result.exit_code == 0, result.output
    assert result.output.index("guitar") < result.output.index("(skipped earlier)")
    assert decisions(table)["guitar"][0] == "pending"  # accepted, then undone
    result = review(table, "uq")
    assert decisions(table)["dog_collar"] == ("pending", "review: hint")  # first run's reject
    assert result.exit_code == 0


def test_session_survives_a_keyboard_interrupt(table) -> None:
    keys = iter("a")

    def read_key() -> str:
        try:
            return next(keys)
        except StopIteration:
            raise KeyboardInterrupt from None

    console = Console(record=True, width=120)
    summary = ReviewSession(table_path=table, read_key=read_key, console=console).run()
    assert (summary.accepted, summary.interrupted, summary.remaining) == (1, True, 2)
    assert decisions(table)["bird"][0] == "accepted"


def test_list_export_import_and_accept_above(table, tmp_path) -> None:
    result = review(table, "", "--list")
    assert result.exit_code == 0, result.output
    assert "Pairs to review (3)" in result.output and "mynah bird singing" in result.output
    assert "auto: x" not in result.output
    result = review(table, "", "--list", "--all")
    assert "All pairs (4)" in result.output

    exported = tmp_path / "review.csv"
    assert review(table, "", "--export", str(exported)).exit_code == 0
    with exported.open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0][-3:] == ["n_images", "n_instances", "example_images"]
    rows[1][6], rows[1][7] = "accepted", "a mynah is a bird"
    rows[2][6] = "rejected"
    with exported.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    result = review(table, "", "--import", str(exported))
    assert result.exit_code == 0, result.output
    assert "2 decisions read" in result.output
    assert decisions(table)["bird"] == ("accepted", "a mynah is a bird")
    assert decisions(table)["dog_collar"] == ("rejected", "")

    result = review(table, "", "--accept-above", "90")
    assert "1 pending pairs scoring >= 90 accepted" in result.output
    assert decisions(table)["guitar"] == ("accepted", "accepted by --accept-above 90")

    rows[1][6] = "perhaps"
    with exported.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    result = review(table, "", "--import", str(exported))
    assert result.exit_code == 1
    assert f"{exported}:2: unknown decision 'perhaps'" in result.output


def test_malformed_table_is_reported_with_its_line(tmp_path) -> None:
    path = tmp_path / "matches.csv"
    path.write_text(
        "source,visual_id,visual_name,vggsound_label,score,method,decision,note\n"
        "lvis,378,dog,dog barking,100,exact,yes,\n"
    )
    result = review(path, "")
    assert result.exit_code == 1
    assert f"{path}:2: decision must be one of" in result.output


def _coco_data(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    Image.new("RGB", (40, 30), (120, 80, 40)).save(images / "000000000001.jpg")
    annotations = tmp_path / "instances.json"
    annotations.write_text(
        json.dumps(
            {
                "images": [{"id": 1, "file_name": "000000000001.jpg", "width": 40, "height": 30}],
                "annotations": [
                    {
                        "id": 7,
                        "image_id": 1,
                        "category_id": 18,
                        "segmentation": [[5, 5, 25, 5, 25, 20, 5, 20]],
                        "area": 300.0,
                        "bbox": [5, 5, 20, 15],
                        "iscrowd": 0,
                    }
                ],
                "categories": [{"id": 18, "name": "dog", "supercategory": "animal"}],
            }
        )
    )
    return annotations, images


def test_match_then_list_with_examples_from_user_files(tmp_path) -> None:
    annotations, images = _coco_data(tmp_path)
    labels = tmp_path / "vggsound.csv"
    labels.write_text(
        'a,0,dog barking,train\nb,5,dog growling,test\nc,1,"alligators, crocodiles hissing",train\n'
    )
    out = tmp_path / "matches.csv"
    args = ["match", "--coco", str(annotations), "--vggsound", str(labels), "--out", str(out)]
    result = runner.invoke(app, [*args, "--no-seed"], env=ENV)
    assert result.exit_code == 0, result.output
    rows = {r.vggsound_label: r for r in read_matches(out)}
    assert set(rows) == {"dog barking", "dog growling"}
    assert rows["dog barking"].decision == "accepted" and rows["dog barking"].is_automatic

    # a human decision survives regeneration
    write_matches(
        out,
        [
            r
            if r.vggsound_label != "dog growling"
            else MatchRow(**{**r.__dict__, "decision": "rejected", "note": "mine"})
            for r in rows.values()
        ],
    )
    assert runner.invoke(app, args, env=ENV).exit_code == 0
    assert {r.vggsound_label: r.note for r in read_matches(out)}["dog growling"] == "mine"

    write_matches(
        out,
        [MatchRow("coco", "18", "dog", "dog barking", 100.0, "exact:name", "pending", "review: x")],
    )
    result = review(
        out,
        "",
        "--list",
        "--coco",
        str(annotations),
        "--coco-images",
        str(images),
        "--max-images",
        "1",
    )
    assert result.exit_code == 0, result.output
    assert "1 instance in 1 image, median area 300 px" in result.output


def test_match_rejects_a_malformed_user_file(tmp_path) -> None:
    bad = tmp_path / "lvis.json"
    bad.write_text('{"categories": [}')
    result = runner.invoke(app, ["match", "--lvis", str(bad), "--out", str(tmp_path / "m.csv")])
    assert result.exit_code == 1
    assert f"{bad}:1: invalid JSON" in result.output


def test_examples_are_counted_per_category(tmp_path) -> None:
    seg = PolygonSegmentation(((0.0, 0.0, 4.0, 0.0, 4.0, 4.0),))
    records = [
        ImageRecord(
            source="lvis",
            image_id=str(i),
            path=tmp_path / f"{i}.jpg",
            width=10,
            height=10,
            instances=(
                Instance(str(i), "378", "dog", (0, 0, 4, 4), 8.0 * (i + 1), seg),
                Instance(f"c{i}", "378", "dog", (0, 0, 9, 9), 50.0, seg, is_crowd=True),
                Instance(f"x{i}", "225", "cat", (0, 0, 4, 4), 8.0, seg),
            ),
        )
        for i in range(5)
    ]
    found = collect_examples(records, wanted={("lvis", "378")}, max_examples=2)
    dog = found[("lvis", "378")]
    assert (dog.n_images, dog.n_instances, dog.n_crowd) == (5, 10, 5)
    assert [e.image_path.name for e in dog.examples] == ["0.jpg", "1.jpg"]
    assert dog.median_area == 24.0  # non-crowd areas 8, 16, 24, 32, 40
    assert set(found) == {("lvis", "378")}


def test_review_with_pictures_from_the_coco_root_as_in_build(tmp_path) -> None:
    annotations, images = _coco_data(tmp_path)
    root = tmp_path / "coco"
    (root / "annotations").mkdir(parents=True)
    images.rename(root / "val2017")
    annotations.rename(root / "annotations" / "instances_val2017.json")
    table = tmp_path / "matches.csv"
    write_matches(table, [pending("coco", "18", "dog", "dog barking")])
    coco = ["--coco", str(root / "annotations" / "instances_val2017.json")]
    sheets = tmp_path / "sheets"
    result = review(
        table,
        "a",
        *coco,
        "--coco-images",
        str(root),
        "--pictures",
        "sheet",
        "--sheets",
        str(sheets),
    )
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output
    assert f"{root / 'val2017' / '000000000001.jpg'}  (40x30" in result.output
    [sheet] = sheets.glob("*.png")
    assert f"pictures: {sheet}" in " ".join(result.output.split())
    assert decisions(table)["dog"] == ("accepted", "")

    # the split folder still works; a folder without the pictures is a warning, not a crash
    write_matches(table, [pending("coco", "18", "dog", "dog barking")])
    result = review(table, "", *coco, "--coco-images", str(root / "val2017"), "--list")
    assert result.exit_code == 0 and "warning" not in result.output
    result = review(table, "q", *coco, "--coco-images", str(tmp_path), "--sheets", str(sheets))
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "warning: 1 of 1 coco example pictures not found (first: " in text
    assert "--coco-images is the dataset's root folder" in text
    assert f"warning: {tmp_path / '000000000001.jpg'}: example picture not found" in text
