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
from pathlib import Path
from typing import TYPE_CHECKING

from avs_synth import __version__
from avs_synth.building.avsbench_exclusion import ClipExclusion
from avs_synth.building.config import BuildConfig
from avs_synth.records import AudioClip, Instance, MaskFileSegmentation, StoredSegmentation
from avs_synth.schema import SCHEMA_VERSION

if TYPE_CHECKING:
    from avs_synth.building.plan import ShardUnit


def _segmentation_identity(inst: Instance, index_digests: dict[Path, str]) -> str:
    seg = inst.segmentation
    if isinstance(seg, MaskFileSegmentation):
        return f"maskfile:{seg.member or (seg.path.name if seg.path else '')}"
    if isinstance(seg, StoredSegmentation):
        digest = index_digests.get(seg.path)
        if digest is None:
            digest = index_digests[seg.path] = _file_digest(seg.path)
        return f"index:{digest}:{seg.offset}:{seg.length}"
    return hashlib.blake2b(repr(seg).encode("utf-8"), digest_size=16).hexdigest()


def _file_digest(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _clip_identity(clip: AudioClip | None) -> str:
    if clip is None:
        return "synthesized"
    name = clip.path.name if clip.path is not None else ""
    return f"{clip.clip_id}|{clip.label}|{clip.split}|{name}"


def compute_plan_hash(
    config: BuildConfig,
    units: Sequence[ShardUnit],
    classes: Sequence[str],
    exclusion: ClipExclusion | None,
) -> str:
    """sha256 of what decides the output bytes; machine-specific absolute paths are left out
    (an annotation index is identified by its content's digest and the record's place in it)."""
    digest = hashlib.sha256()
    header = {
        "tool_version": __version__,
        "schema_version": SCHEMA_VERSION,
        "config": config.as_dict(),
        "audio_classes": list(classes),
        "excluded_videos": exclusion.digest if exclusion is not None else None,
    }
    index_digests: dict[Path, str] = {}
    digest.update(json.dumps(header, sort_keys=True, default=str).encode("utf-8"))
    for unit in units:
        digest.update(f"\n#{unit.name}|{unit.split}|{unit.audio_class}".encode())
        for spec in unit.triplets:
            parts = [
                spec.key,
                spec.split,
                spec.audio_class,
                str(spec.negative),
                spec.source,
                spec.image_id,
                spec.image_path.name,
                f"{spec.width}x{spec.height}",
                _clip_identity(spec.clip),
                repr([(c.source, c.id, c.name) for c in spec.categories]),
                repr(spec.license),
                repr(spec.attribution),
            ]
            if spec.negative_kind is not None:
                parts.append(f"kind:{spec.negative_kind}")
            for src in spec.extra_sources:
                parts.append(f"source:{src.audio_class}:{_clip_identity(src.clip)}")
                parts += [
                    f"{inst.instance_id}:{inst.category_id}:{inst.bbox}:{inst.area}:"
                    f"{_segmentation_identity(inst, index_digests)}"
                    for inst in src.instances
                ]
            if spec.class_indices:
                parts.append(f"classes:{list(spec.class_indices)}")
            if spec.silent_categories is not None:
                parts.append(f"silent:{[(c.source, c.id) for c in spec.silent_categories]}")
            for inst in spec.instances:
                parts.append(
                    f"{inst.instance_id}:{inst.category_id}:{inst.bbox}:{inst.area}:"
                    f"{_segmentation_identity(inst, index_digests)}"
                )
            digest.update(("\n" + "|".join(parts)).encode("utf-8"))
        for clip in unit.clips:
            digest.update(("\n" + _clip_identity(clip)).encode("utf-8"))
    return digest.hexdigest()
