"""The plan hash: one digest of everything that decides a build's bytes.

``plan.json`` records it and a rerun into the same folder compares it, so a resumed or
partitioned build never mixes shards of two plans. It covers the tool and schema versions, the
configuration, the audio classes, the excluded videos and every unit's content (keys, pictures,
clips, instances and their geometry); absolute paths, which differ between machines, are not in
it (only file names, and the content digest of an annotation index).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

import msgspec

from avs_synth import __version__
from avs_synth.building.avsbench_exclusion import ClipExclusion
from avs_synth.building.config import BuildConfig
from avs_synth.records import StoredSegmentation
from avs_synth.schema import SCHEMA_VERSION

if TYPE_CHECKING:
    from avs_synth.building.plan import ShardUnit


def _index_digests(units: Sequence[ShardUnit]) -> dict[str, str]:
    """Every annotation index the units refer to (its path as text) → the digest of its
    content."""
    paths = {
        inst.segmentation.path
        for unit in units
        for spec in unit.triplets
        for inst in (*spec.instances, *(i for src in spec.extra_sources for i in src.instances))
        if isinstance(inst.segmentation, StoredSegmentation)
    }
    return {str(path): f"index:{_file_digest(path)}" for path in paths}


def _file_digest(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def compute_plan_hash(
    config: BuildConfig,
    units: Sequence[ShardUnit],
    classes: Sequence[str],
    exclusion: ClipExclusion | None = None,
) -> str:
    """sha256 of what decides the output bytes; machine-specific absolute paths are left out
    (an annotation index is identified by its content's digest, a picture or a clip by its file
    name).

    Each unit is encoded whole by msgspec (every field of every dataclass in it, in field order),
    with each path replaced by its identity: no field can be forgotten, and no per-triplet text
    is built in Python.
    """
    digest = hashlib.sha256()
    header = {
        "tool_version": __version__,
        "schema_version": SCHEMA_VERSION,
        "config": config.as_dict(),
        "audio_classes": list(classes),
        "excluded_videos": exclusion.digest if exclusion is not None else None,
    }
    digest.update(json.dumps(header, sort_keys=True, default=str).encode("utf-8"))
    indexes = _index_digests(units)

    known: dict[int, str] = {}  # id(path) → identity: the units keep every path alive

    def identity(value: object) -> str:
        found = known.get(id(value))
        if found is not None:
            return found
        if isinstance(value, PurePath):
            # looked up as text: a path's text is cached, a path's own hash is rebuilt each time
            found = known[id(value)] = indexes.get(str(value)) or value.name
            return found
        raise TypeError(f"the plan hash cannot encode a {type(value).__name__}")

    encoder = msgspec.msgpack.Encoder(enc_hook=identity)
    for unit in units:
        digest.update(encoder.encode(unit))
    return digest.hexdigest()
