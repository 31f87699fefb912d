"""Dataset readers: each turns one dataset's on-disk format (LVIS, COCO, Open Images, VGGSound,
AVSBench) into the records of :mod:`avs_synth.records`.

May import the shared modules of :mod:`avs_synth` only (no other stage). The reader classes are
re-exported here and imported on first use, so that importing one reader does not pull in the
libraries of the others (pandas, pycocotools, lvis, torch).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from avs_synth.sources.avsbench import AVSBenchReader
    from avs_synth.sources.coco import COCOReader
    from avs_synth.sources.lvis import LVISReader
    from avs_synth.sources.openimages import OpenImagesReader
    from avs_synth.sources.vggsound import VGGSoundReader

_READERS = {
    "AVSBenchReader": "avs_synth.sources.avsbench",
    "COCOReader": "avs_synth.sources.coco",
    "LVISReader": "avs_synth.sources.lvis",
    "OpenImagesReader": "avs_synth.sources.openimages",
    "VGGSoundReader": "avs_synth.sources.vggsound",
}

__all__ = [
    "AVSBenchReader",
    "COCOReader",
    "LVISReader",
    "OpenImagesReader",
    "VGGSoundReader",
]


def __getattr__(name: str) -> Any:
    module = _READERS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_READERS))
