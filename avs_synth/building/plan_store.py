"""The plan on disk: one file per shard, read by the worker that writes the shard.

A full-size plan holds hundreds of thousands of triplets. Keeping it in the parent process would
make every worker start from a large parent, and keep that memory held through the whole write
phase; so the planner stores each :class:`~avs_synth.building.plan.ShardUnit` as
``units/{name}.msgpack`` in a plan folder and hands the parent a :class:`StoredPlan`: the plan's
facts and a few fields per shard. Instances travel by reference (an annotation-index record, a
mask file); only triplets built from in-memory records (tests, other callers of
:func:`~avs_synth.building.plan.make_plan`) carry their polygons inline.

Files are MessagePack (plain data: floats round-trip exactly, ``NaN`` and infinities included;
a plan folder is data, never code), written and read by msgspec.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

import msgspec

from avs_synth.building.plan import BuildPlan, PlanFacts, ShardUnit, SourceSpec, TripletSpec
from avs_synth.records import (
    AudioClip,
    Instance,
    MaskFileSegmentation,
    NormalizedBox,
    PolygonSegmentation,
    RLESegmentation,
    Segmentation,
    StoredSegmentation,
)
from avs_synth.schema import BANK, VisualCategoryRef

UNITS_DIR = "units"


@dataclass(frozen=True)
class UnitHeader:
    """What the parent knows of a stored shard.

    Args:
        name: the shard's file name.
        split: ``train``, ``val``, ``test`` or ``bank``.
        position: the unit's index in the plan.
        planned: triplets (or bank clips) planned in it.
        audio_class: the bank shard's audio class.
    """

    name: str
    split: str
    position: int
    planned: int
    audio_class: str | None = None


@dataclass(frozen=True, kw_only=True)
class StoredPlan(PlanFacts):
    """A plan whose shards are on disk (see the module docstring; the other fields are
    :class:`~avs_synth.building.plan.PlanFacts`').

    Args:
        folder: the plan folder.
        units: every shard, in plan order.
        planned_per_class: split (and ``bank``) → audio class → triplets (bank: clips) planned.
    """

    folder: Path
    units: tuple[UnitHeader, ...]
    planned_per_class: dict[str, dict[str, int]] = field(default_factory=dict)

    def load_unit(self, name: str) -> ShardUnit:
        """The full unit ``name`` (read from its file)."""
        return load_unit(self.folder, name)


# --- encoding ---------------------------------------------------------------------------------
# A unit is encoded by msgspec itself, each dataclass as a map of its fields (paths as strings):
# no Python-level tree of dicts and lists is built for the ~70 k triplets of a full plan. The
# decoder tells the unions apart by their fields: a pixel box is an array, a normalised box a
# map; a segmentation is an index reference (``length``), a mask file (``member``), polygons or
# an RLE.


def _path_as_text(value: Any) -> str:
    if isinstance(value, PurePath):
        return str(value)
    raise TypeError(f"cannot store a {type(value).__name__}")


_ENCODER = msgspec.msgpack.Encoder(enc_hook=_path_as_text)


def _path(value: str | None) -> Path | None:
    return None if value is None else Path(value)


def _segmentation_from(value: dict[str, Any]) -> Segmentation:
    if "length" in value:
        return StoredSegmentation(
            path=Path(value["path"]), offset=value["offset"], length=value["length"]
        )
    if "member" in value:
        return MaskFileSegmentation(
            path=_path(value["path"]),
            archive=_path(value["archive"]),
            member=value["member"],
            offset=value["offset"],
        )
    if "polygons" in value:
        return PolygonSegmentation(polygons=tuple(tuple(p) for p in value["polygons"]))
    counts = value["counts"]
    size = value["size"]
    return RLESegmentation(
        size=(size[0], size[1]), counts=counts if isinstance(counts, str) else tuple(counts)
    )


def _instance_from(value: dict[str, Any]) -> Instance:
    box = value["bbox"]
    return Instance(
        instance_id=value["instance_id"],
        category_id=value["category_id"],
        category_name=value["category_name"],
        bbox=NormalizedBox(**box) if isinstance(box, dict) else tuple(box),  # type: ignore[arg-type]
        area=value["area"],
        segmentation=_segmentation_from(value["segmentation"]),
        is_crowd=value["is_crowd"],
    )


def _clip_from(value: dict[str, Any]) -> AudioClip:
    return AudioClip(
        youtube_id=value["youtube_id"],
        start_seconds=value["start_seconds"],
        label=value["label"],
        split=value["split"],
        path=_path(value["path"]),
    )


def _refs_from(value: list[dict[str, str]]) -> tuple[VisualCategoryRef, ...]:
    return tuple(VisualCategoryRef(source=c["source"], id=c["id"], name=c["name"]) for c in value)


def _spec_from(value: dict[str, Any]) -> TripletSpec:
    return TripletSpec(
        key=value["key"],
        split=value["split"],
        audio_class=value["audio_class"],
        negative=value["negative"],
        categories=_refs_from(value["categories"]),
        source=value["source"],
        image_id=value["image_id"],
        image_path=Path(value["image_path"]),
        width=value["width"],
        height=value["height"],
        instances=tuple(_instance_from(i) for i in value["instances"]),
        clip=None if value["clip"] is None else _clip_from(value["clip"]),
        license=value["license"],
        attribution=value["attribution"],
        negative_kind=value["negative_kind"],
        extra_sources=tuple(
            SourceSpec(
                audio_class=src["audio_class"],
                categories=_refs_from(src["categories"]),
                instances=tuple(_instance_from(i) for i in src["instances"]),
                clip=_clip_from(src["clip"]),
            )
            for src in value["extra_sources"]
        ),
        silent_categories=(
            None if value["silent_categories"] is None else _refs_from(value["silent_categories"])
        ),
        class_indices=tuple(value["class_indices"]),
    )


def encode_unit(unit: ShardUnit) -> bytes:
    """One unit as MessagePack."""
    return _ENCODER.encode(unit)


def decode_unit(data: bytes) -> ShardUnit:
    """A unit from :func:`encode_unit`'s bytes."""
    value = msgspec.msgpack.decode(data)
    return ShardUnit(
        name=value["name"],
        split=value["split"],
        position=value["position"],
        audio_class=value["audio_class"],
        triplets=tuple(_spec_from(s) for s in value["triplets"]),
        clips=tuple(_clip_from(c) for c in value["clips"]),
    )


# --- the folder ---------------------------------------------------------------------------------


def unit_path(folder: Path, name: str) -> Path:
    """Where unit ``name`` is stored."""
    return Path(folder) / UNITS_DIR / f"{name}.msgpack"


def load_unit(folder: Path, name: str) -> ShardUnit:
    """Read unit ``name`` of the plan stored in ``folder``."""
    return decode_unit(unit_path(folder, name).read_bytes())


def store_plan(plan: BuildPlan, folder: Path) -> StoredPlan:
    """Write every unit of ``plan`` under ``folder`` and return the plan without them."""
    folder = Path(folder)
    (folder / UNITS_DIR).mkdir(parents=True, exist_ok=True)
    headers = []
    per_class: dict[str, Counter[str]] = defaultdict(Counter)
    for unit in plan.units:
        unit_path(folder, unit.name).write_bytes(encode_unit(unit))
        headers.append(
            UnitHeader(
                name=unit.name,
                split=unit.split,
                position=unit.position,
                planned=unit.planned,
                audio_class=unit.audio_class,
            )
        )
        if unit.split == BANK:
            per_class[BANK][unit.audio_class or ""] += len(unit.clips)
        else:
            per_class[unit.split].update(s.audio_class for s in unit.triplets)
    return StoredPlan(
        folder=folder,
        units=tuple(headers),
        plan_hash=plan.plan_hash,
        audio_classes=plan.audio_classes,
        class_categories=plan.class_categories,
        dropped=dict(plan.dropped),
        pictures=dict(plan.pictures),
        clips=dict(plan.clips),
        sources={k: dict(v) for k, v in plan.sources.items()},
        exclusion=dict(plan.exclusion),
        planned_per_class={k: dict(sorted(v.items())) for k, v in sorted(per_class.items())},
    )
