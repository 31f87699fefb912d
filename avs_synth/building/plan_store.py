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
from pathlib import Path
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


# --- encoding ----------------------------------------------------------------------------------


def _segmentation(seg: Segmentation) -> dict[str, Any]:
    if isinstance(seg, StoredSegmentation):
        return {"index": [str(seg.path), seg.offset, seg.length]}
    if isinstance(seg, MaskFileSegmentation):
        return {
            "mask_file": [
                None if seg.path is None else str(seg.path),
                None if seg.archive is None else str(seg.archive),
                seg.member,
                seg.offset,
            ]
        }
    if isinstance(seg, PolygonSegmentation):
        return {"polygons": [list(part) for part in seg.polygons]}
    if isinstance(seg, RLESegmentation):
        counts = seg.counts if isinstance(seg.counts, str) else list(seg.counts)
        return {"rle": [list(seg.size), counts]}
    raise TypeError(f"cannot store a {type(seg).__name__}")


def _segmentation_from(value: dict[str, Any]) -> Segmentation:
    if "index" in value:
        path, offset, length = value["index"]
        return StoredSegmentation(path=Path(path), offset=offset, length=length)
    if "mask_file" in value:
        path, archive, member, offset = value["mask_file"]
        return MaskFileSegmentation(
            path=None if path is None else Path(path),
            archive=None if archive is None else Path(archive),
            member=member,
            offset=offset,
        )
    if "polygons" in value:
        return PolygonSegmentation(polygons=tuple(tuple(p) for p in value["polygons"]))
    size, counts = value["rle"]
    return RLESegmentation(
        size=(size[0], size[1]), counts=counts if isinstance(counts, str) else tuple(counts)
    )


def _instance(inst: Instance) -> list[Any]:
    box = inst.bbox
    bbox: Any = (
        {"normalized": [box.x_min, box.x_max, box.y_min, box.y_max]}
        if isinstance(box, NormalizedBox)
        else list(box)
    )
    return [
        inst.instance_id,
        inst.category_id,
        inst.category_name,
        bbox,
        inst.area,
        _segmentation(inst.segmentation),
        inst.is_crowd,
    ]


def _instance_from(value: list[Any]) -> Instance:
    iid, category_id, name, bbox, area, seg, crowd = value
    box = NormalizedBox(*bbox["normalized"]) if isinstance(bbox, dict) else tuple(bbox)
    return Instance(
        instance_id=iid,
        category_id=category_id,
        category_name=name,
        bbox=box,  # type: ignore[arg-type]
        area=area,
        segmentation=_segmentation_from(seg),
        is_crowd=crowd,
    )


def _clip(clip: AudioClip) -> list[Any]:
    path = None if clip.path is None else str(clip.path)
    return [clip.youtube_id, clip.start_seconds, clip.label, clip.split, path]


def _clip_from(value: list[Any]) -> AudioClip:
    ytid, start, label, split, path = value
    return AudioClip(
        youtube_id=ytid,
        start_seconds=start,
        label=label,
        split=split,
        path=None if path is None else Path(path),
    )


def _spec(spec: TripletSpec) -> dict[str, Any]:
    return {
        "key": spec.key,
        "split": spec.split,
        "audio_class": spec.audio_class,
        "negative": spec.negative,
        "categories": [[c.source, c.id, c.name] for c in spec.categories],
        "source": spec.source,
        "image_id": spec.image_id,
        "image_path": str(spec.image_path),
        "size": None if spec.width is None else [spec.width, spec.height],
        "instances": [_instance(i) for i in spec.instances],
        "clip": None if spec.clip is None else _clip(spec.clip),
        "license": spec.license,
        "attribution": spec.attribution,
        "negative_kind": spec.negative_kind,
        "extra_sources": [
            [
                src.audio_class,
                _refs(src.categories),
                [_instance(i) for i in src.instances],
                _clip(src.clip),
            ]
            for src in spec.extra_sources
        ],
        "silent_categories": (
            None if spec.silent_categories is None else _refs(spec.silent_categories)
        ),
        "class_indices": list(spec.class_indices),
    }


def _refs(refs: tuple[VisualCategoryRef, ...]) -> list[list[str]]:
    return [[c.source, c.id, c.name] for c in refs]


def _refs_from(value: list[list[str]]) -> tuple[VisualCategoryRef, ...]:
    return tuple(VisualCategoryRef(source=s, id=i, name=n) for s, i, n in value)


def _spec_from(value: dict[str, Any]) -> TripletSpec:
    width, height = value["size"] if value["size"] is not None else (None, None)
    return TripletSpec(
        key=value["key"],
        split=value["split"],
        audio_class=value["audio_class"],
        negative=value["negative"],
        categories=tuple(
            VisualCategoryRef(source=s, id=i, name=n) for s, i, n in value["categories"]
        ),
        source=value["source"],
        image_id=value["image_id"],
        image_path=Path(value["image_path"]),
        width=width,
        height=height,
        instances=tuple(_instance_from(i) for i in value["instances"]),
        clip=None if value["clip"] is None else _clip_from(value["clip"]),
        license=value["license"],
        attribution=value["attribution"],
        negative_kind=value.get("negative_kind"),
        extra_sources=tuple(
            SourceSpec(
                audio_class=label,
                categories=_refs_from(refs),
                instances=tuple(_instance_from(i) for i in instances),
                clip=_clip_from(clip),
            )
            for label, refs, instances, clip in value.get("extra_sources", ())
        ),
        silent_categories=(
            None
            if value.get("silent_categories") is None
            else _refs_from(value["silent_categories"])
        ),
        class_indices=tuple(value.get("class_indices", ())),
    )


def encode_unit(unit: ShardUnit) -> bytes:
    """One unit as MessagePack."""
    value = {
        "name": unit.name,
        "split": unit.split,
        "position": unit.position,
        "audio_class": unit.audio_class,
        "triplets": [_spec(s) for s in unit.triplets],
        "clips": [_clip(c) for c in unit.clips],
    }
    return msgspec.msgpack.encode(value)


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
