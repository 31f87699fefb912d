"""Fixtures shared by the build tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.build_support import sample_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """The small sample corpus with its matches.csv (written once per session)."""
    return sample_corpus(tmp_path_factory)
