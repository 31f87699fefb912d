"""Versioned category-matching data (installed as the package ``avs_synth_category_maps``)."""

from importlib.resources import files
from pathlib import Path


def data_path(name: str) -> Path:
    """Path of a file shipped in ``category_maps/`` (e.g. ``matches.csv``)."""
    return Path(str(files(__name__).joinpath(name)))
