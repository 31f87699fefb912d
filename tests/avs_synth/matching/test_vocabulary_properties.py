"""Property tests (hypothesis) for the vocabularies `avs-synth match` reads from outside: any
LVIS / COCO JSON, VGGSound list or Open Images class CSV gives categories with non-empty string
names (and string-or-None synsets), or one DataFormatError naming the file."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avs_synth.errors import DataFormatError
from avs_synth.matching.vocabulary import (
    load_coco_categories,
    load_lvis_categories,
    load_openimages_classes,
    load_vggsound_classes,
)
from tests.support.json_strategies import category_entries, json_values

SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _checked(categories) -> None:
    for cat in categories:
        assert isinstance(cat.category_id, str)
        assert isinstance(cat.name, str) and cat.name.strip()
        assert all(isinstance(s, str) for s in cat.synonyms)
        for value in (cat.synset, cat.frequency, cat.definition):
            assert value is None or isinstance(value, str), value


@SETTINGS
@given(
    doc=st.one_of(
        json_values,
        st.fixed_dictionaries({"categories": st.lists(category_entries | json_values, max_size=4)}),
    )
)
def test_any_lvis_or_coco_json_gives_categories_or_an_error(tmp_path, doc) -> None:
    path = tmp_path / "lvis.json"
    for bom in (b"", b"\xef\xbb\xbf"):
        path.write_bytes(bom + json.dumps(doc).encode("utf-8"))
        for load in (load_lvis_categories, load_coco_categories):
            try:
                _checked(load(path))
            except DataFormatError as error:
                assert str(error).startswith(f"{path}")
                assert "BOM" not in str(error)


@SETTINGS
@given(text=st.text(max_size=80), raw=st.binary(max_size=40))
def test_any_label_list_or_class_csv_gives_categories_or_an_error(tmp_path, text, raw) -> None:
    for data in (text.encode("utf-8"), raw):
        for load, name in (
            (load_vggsound_classes, "vggsound.csv"),
            (load_openimages_classes, "oidv7-class-descriptions.csv"),
        ):
            path = tmp_path / name
            path.write_bytes(data)
            try:
                _checked(load(path))
            except DataFormatError as error:
                assert str(error).startswith(f"{path}")
