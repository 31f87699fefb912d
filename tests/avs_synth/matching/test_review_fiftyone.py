"""Reviewing in FiftyOne: the dataset of example instances, and tags read back into the CSV.

FiftyOne reads ``FIFTYONE_DATABASE_DIR`` when it is first imported, so the environment is set
before the import, and the database (a local mongod from fiftyone-db) lives in a temporary folder.
The App itself is not launched here.
"""

from __future__ import annotations

import importlib
import sys

import numpy as np
import pytest
from PIL import Image

from avs_synth.matching.examples import collect_examples
from avs_synth.matching.review_fiftyone import TAG_NOTE, decisions_from_tags, review_dataset_name
from avs_synth.matching.table import MatchRow, read_matches, write_matches
from avs_synth.records import ImageRecord, Instance, PolygonSegmentation


def test_decisions_from_tags() -> None:
    key = '["lvis", "378", "dog barking"]'
    other = '["lvis", "379", "dog barking"]'
    both = '["coco", "18", "dog barking"]'
    found = decisions_from_tags(
        [
            (key, ["accept"]),
            (key, []),
            (other, ["Reject", "seen"]),
            (both, ["accept"]),
            (both, ["reject"]),
            ('["lvis", "1", "x"]', ["seen"]),
        ]
    )
    assert found.decisions == {
        ("lvis", "378", "dog barking"): "accepted",
        ("lvis", "379", "dog barking"): "rejected",
    }
    assert found.conflicts == [("coco", "18", "dog barking")]


@pytest.fixture
def fo(tmp_path_factory, monkeypatch):
    db = tmp_path_factory.mktemp("fiftyone-db")
    monkeypatch.setenv("FIFTYONE_DATABASE_DIR", str(db))
    monkeypatch.setenv("FIFTYONE_DO_NOT_TRACK", "true")
    monkeypatch.setenv("FIFTYONE_DATABASE_VALIDATION", "false")
    fiftyone = importlib.import_module("fiftyone")
    if "fiftyone.core.odm.database" in sys.modules:  # imported earlier: point it here too
        fiftyone.config.database_dir = str(db)
    yield fiftyone
    # stop this mongod now: pytest deletes its folder at the end of a passing run, and a mongod
    # still running then aborts (FiftyOne would stop it only at exit)
    database = sys.modules["fiftyone.core.odm.database"]
    database._disconnect()
    service, database._db_service = database._db_service, None
    if service is not None and service.child is not None:
        child = service.child
        service.stop()
        child.wait(timeout=60)


def _records(tmp_path):
    square = PolygonSegmentation(((2.0, 2.0, 10.0, 2.0, 10.0, 8.0, 2.0, 8.0),))
    records = []
    for i in range(2):
        path = tmp_path / f"img{i}.png"
        Image.new("RGB", (16, 12), (40 * i, 90, 200)).save(path)
        records.append(
            ImageRecord(
                source="lvis",
                image_id=str(i),
                path=path,
                width=16,
                height=12,
                instances=(
                    Instance(f"d{i}", "378", "dog", (2.0, 2.0, 8.0, 6.0), 48.0, square),
                    Instance(f"c{i}", "379", "dog_collar", (2.0, 2.0, 8.0, 6.0), 48.0, square),
                ),
            )
        )
    return records


@pytest.mark.slow  # starts FiftyOne's mongod (about 10 s)
def test_tags_round_trip_into_the_csv(fo, tmp_path) -> None:
    from avs_synth.matching.review_fiftyone import apply_tag_decisions, build_review_dataset

    table = tmp_path / "matches.csv"
    rows = [
        MatchRow("lvis", "378", "dog", "dog barking", 100.0, "exact:name", "pending", "review: a"),
        MatchRow("lvis", "379", "dog_collar", "dog barking", 60.0, "modifier:name", "pending", ""),
        MatchRow("lvis", "378", "dog", "dog baying", 100.0, "exact:name", "pending", ""),
        MatchRow("lvis", "99", "bird", "bird squawking", 100.0, "exact:name", "pending", ""),
    ]
    write_matches(table, rows)
    examples = collect_examples(_records(tmp_path), max_examples=2)
    name = review_dataset_name(table)
    dataset = build_review_dataset(rows, examples, name=name)

    assert len(dataset) == 6  # 3 pairs with examples x 2 images; bird has none
    sample = dataset.match({"vggsound_label": "dog barking", "visual_id": "379"}).first()
    assert (sample.visual_name, sample.visual_source, sample.method) == (
        "dog_collar",
        "lvis",
        "modifier:name",
    )
    assert sample.filepath.endswith(".png")
    (detection,) = sample.instance.detections
    assert detection.label == "dog_collar"
    assert np.allclose(detection.bounding_box, [2 / 16, 2 / 12, 8 / 16, 6 / 12])
    assert detection.mask.shape == (6, 8) and detection.mask.any()

    # the reviewer tags in the App; here the tags are set directly
    def tag(label, visual_id, tags):
        for s in dataset.match({"vggsound_label": label, "visual_id": visual_id}):
            s.tags = tags
            s.save()

    tag("dog barking", "378", ["accept"])
    tag("dog barking", "379", ["reject"])
    view = dataset.match({"vggsound_label": "dog baying"})
    first, second = list(view)
    first.tags = ["accept"]
    first.save()
    second.tags = ["reject"]
    second.save()

    found = apply_tag_decisions(table, fo.load_dataset(name))
    assert found.conflicts == [("lvis", "378", "dog baying")]
    after = {(r.visual_id, r.vggsound_label): (r.decision, r.note) for r in read_matches(table)}
    assert after[("378", "dog barking")] == ("accepted", TAG_NOTE)
    assert after[("379", "dog barking")] == ("rejected", TAG_NOTE)
    assert after[("378", "dog baying")] == ("pending", "")  # tagged both ways
    assert after[("99", "bird squawking")] == ("pending", "")

    rebuilt = build_review_dataset(read_matches(table), examples, name=name)
    assert set(rebuilt.distinct("vggsound_label")) == {"dog baying"}
    rebuilt.delete()
