"""The shipped list of VGGSound ambience classes and its reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from avs_synth.audio.ambience import load_ambience_classes, shipped_ambience_classes
from avs_synth.errors import DataFormatError
from avs_synth.matching.vocabulary import shipped_vggsound_classes


def test_shipped_ambience_classes_are_vggsound_labels() -> None:
    labels = shipped_ambience_classes()
    official = {c.name for c in shipped_vggsound_classes()}
    assert len(labels) >= 12 and set(labels) <= official
    assert {"wind noise", "raining", "stream burbling", "people crowd"} <= set(labels)


def test_reader_names_file_and_line_of_bad_rows(tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text('label,why\n"rain, heavy",weather\nwind noise,wind\n\n', encoding="utf-8")
    assert load_ambience_classes(good) == ("rain, heavy", "wind noise")
    cases = {
        "label\nwind noise\n": "header must be label,why",
        "label,why\nwind noise,a\nwind noise,b\n": "listed twice",
        "label,why\n,empty\n": "expected label,why",
        "label,why\na,b,c\n": "expected label,why",
    }
    for n, (text, message) in enumerate(cases.items()):
        path = tmp_path / f"bad{n}.csv"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(DataFormatError, match=message) as error:
            load_ambience_classes(path)
        assert str(path) in str(error.value)
