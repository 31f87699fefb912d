from __future__ import annotations

import pickle

from avs_synth.errors import DataFormatError
from avs_synth.masks import InvalidSegmentationError


def test_message_names_file_line_and_member() -> None:
    error = DataFormatError("ann.csv", "missing column 'ImageID'", line=3)
    assert str(error) == "ann.csv:3: missing column 'ImageID'"
    assert isinstance(error, ValueError)
    assert str(DataFormatError("a.zip", "bad", member="m.png")) == "a.zip[m.png]: bad"
    assert str(DataFormatError(None, "bad polygon")) == "bad polygon"


def test_survives_pickling_for_worker_processes() -> None:
    error = InvalidSegmentationError("a.zip", "cannot decode", member="m.png")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is InvalidSegmentationError
    assert (str(copy), copy.path, copy.member, copy.line) == (str(error), "a.zip", "m.png", None)
