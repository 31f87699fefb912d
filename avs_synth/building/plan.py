"""The build plan: every triplet and audio-bank shard, decided before any file is decoded.

From the image records, the VGGSound clips and the accepted category matches, :func:`make_plan`
makes a deterministic list of :class:`ShardUnit` (a shard's worth of :class:`TripletSpec`, or an
audio-bank shard's clips). Every choice is a seeded order (:mod:`avs_synth.seeded_order`), so the
plan, and therefore every shard, depends only on the inputs and the seed. Shards are the units
of work: each is built by one worker, in any order, on any machine.

Steps:

0. Clips of the excluded YouTube videos (AVSBench's, see
   :mod:`avs_synth.building.avsbench_exclusion`) are left out, in every split and the bank.
1. Pictures: the first record of each picture wins (LVIS before COCO).
2. Positives per picture: the matched categories that are neither crowd-annotated (semantic
   mode: the category's mask would be incomplete) nor marked not exhaustively annotated;
   semantic mode gives one candidate per audio class (the union of its categories' instances),
   instance mode one per instance and audio class. Candidates below ``min_mask_area`` (by
   annotated area; for records without an image size, by normalised box area, the picture's
   header being read only when that is too close to the threshold to tell) or of an audio class
   without any clip file are dropped.
3. Splits by picture (over the pictures with a candidate); candidates whose audio class has no
   clip in the split's VGGSound pool are dropped; ``max_per_picture`` keeps a picture's first
   candidates in seeded order, ``max_per_category`` the first per audio class.
4. Negatives: (picture, audio class) pairs where every category of the picture's source matched
   to the class is verified absent (LVIS ``neg_category_ids``, Open Images verified-negative
   labels, absent from an exhaustively annotated COCO picture); ``negative_ratio`` times the
   split's positives, in seeded order. With negative kinds (``config.negatives``) each kind gets
   an equal share: a verified-absent class is ``absent`` when its VGGSound group (the shipped
   ``vggsound_class_groups.csv``) is the group of a class matched to a category the picture
   holds, ``offscreen`` otherwise; ``silence`` and ``noise`` pair a picture that has a positive
   with a synthesized window (no clip; :mod:`avs_synth.audio.negative_audio`), or, with
   ``noise_from`` / ``silence_from``, a real clip (:mod:`avs_synth.building.negative_clips`).
   With ``config.sources`` each picture gives multi-source candidates instead, up to
   ``mixes_per_picture`` distinct ones: its positive classes in a seeded order, the first ``k``
   sounding (``k`` drawn with the configured weights among the counts the picture allows), the
   others named as silent categories.
5. Clips: each (split, class)'s triplets take the class's clips in seeded order, round robin (the
   further sources of a multi-source triplet: a seeded clip of their class's pool).
6. Shards: each split's triplets in seeded order, ``shard_size`` at a time; the audio bank holds
   every train clip of each audio class, ``bank_clips_per_shard`` clips (one class) per shard.

Why this module is long: the steps above share the candidates, pools and counters of one pass
over the inputs; split into modules, each would pass the same half-dozen structures around.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from PIL import Image

from avs_synth.building.avsbench_exclusion import ClipExclusion
from avs_synth.building.config import BuildConfig
from avs_synth.building.negative_clips import (
    ambience_labels,
    lacks_real_clip,
    real_negative_clip,
    real_negative_pools,
)
from avs_synth.building.plan_hash import compute_plan_hash
from avs_synth.building.sounding_sets import sounding_sets
from avs_synth.building.splits import assign_clips, assign_pictures, picture_key
from avs_synth.matching.vocabulary import shipped_vggsound_groups
from avs_synth.records import (
    AudioClip,
    ImageRecord,
    Instance,
    NormalizedBox,
)
from avs_synth.schema import BANK, SPLITS, VisualCategoryRef, safe_key_part
from avs_synth.schema import shard_name as make_shard_name
from avs_synth.seeded_order import seeded_key, seeded_sorted

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CategoryMatch:
    """One accepted row of the matching table: a visual category that sounds like a label.

    Args:
        source: ``lvis``, ``coco`` or ``openimages``.
        visual_id: the source's category id as a string.
        visual_name: the source's category name.
        vggsound_label: the VGGSound label, verbatim.
    """

    source: str
    visual_id: str
    visual_name: str
    vggsound_label: str


@dataclass(frozen=True)
class SourceSpec:
    """A further sounding source of a multi-source triplet.

    Args:
        audio_class: its VGGSound label.
        categories: the visual categories of its part of the mask.
        instances: their instances.
        clip: the clip its window is cut from.
    """

    audio_class: str
    categories: tuple[VisualCategoryRef, ...]
    instances: tuple[Instance, ...]
    clip: AudioClip


@dataclass(frozen=True)
class TripletSpec:
    """One planned triplet: everything a worker needs to write it, without the annotations.

    Args:
        key: the sample key (unique in the build, no dots or slashes).
        split: ``train``, ``val`` or ``test``.
        audio_class: the VGGSound label.
        negative: True for a verified-absent pairing (empty mask).
        categories: the categories in the mask (negatives: the ones verified absent).
        source, image_id, image_path, width, height, license, attribution: the picture
            (``width`` and ``height`` None: read from the picture by the worker).
        instances: the instances whose union is the mask (empty for a negative); their geometry
            by reference where the reader stored it in an annotation index.
        clip: the VGGSound clip the window is cut from (None: a ``silence`` or ``noise``
            negative, whose window is synthesized).
        negative_kind: the negative's kind when the build makes negative kinds (None otherwise).
        extra_sources: the further sources of a multi-source triplet (the first source is the
            spec's own class, instances and clip).
        silent_categories: with ``config.sources``, the matched categories of the picture that
            do not sound in it (None otherwise).
        class_indices: with ``config.class_masks``, each source's index in the audio classes
            (the spec's own class first; empty for a negative).
    """

    key: str
    split: str
    audio_class: str
    negative: bool
    categories: tuple[VisualCategoryRef, ...]
    source: str
    image_id: str
    image_path: Path
    width: int | None
    height: int | None
    instances: tuple[Instance, ...]
    clip: AudioClip | None
    license: str | None = None
    attribution: str | None = None
    negative_kind: str | None = None
    extra_sources: tuple[SourceSpec, ...] = ()
    silent_categories: tuple[VisualCategoryRef, ...] | None = None
    class_indices: tuple[int, ...] = ()


@dataclass(frozen=True)
class ShardUnit:
    """One shard to write: triplets (``split`` in train/val/test) or audio-bank clips.

    Args:
        name: the shard's file name.
        split: ``train``, ``val``, ``test`` or ``bank``.
        position: the unit's index in the plan (partition ``i`` of ``K`` builds
            ``position % K == i``).
        triplets: the triplets, in write order.
        audio_class: the bank shard's audio class.
        clips: the bank shard's clips, in write order.
    """

    name: str
    split: str
    position: int
    triplets: tuple[TripletSpec, ...] = ()
    audio_class: str | None = None
    clips: tuple[AudioClip, ...] = ()

    @property
    def planned(self) -> int:
        """Triplets (or bank clips) planned in this shard."""
        return len(self.clips) if self.split == BANK else len(self.triplets)


@dataclass(frozen=True, kw_only=True)
class PlanFacts:
    """What a plan decided, apart from its shards' content (shared by the plan in memory and the
    plan stored on disk).

    Args:
        plan_hash: sha256 of the tool version, the configuration and every unit's content.
        audio_classes: the accepted VGGSound labels, sorted.
        class_categories: audio class → the visual categories matched to it.
        dropped: candidates left out while planning, by reason.
        pictures: pictures per split.
        clips: usable clips per split.
        sources: per source, records read and pictures kept.
        exclusion: the clip exclusion lists and what they removed (rows and videos by VGGSound
            split).
    """

    plan_hash: str
    audio_classes: tuple[str, ...]
    class_categories: dict[str, tuple[VisualCategoryRef, ...]]
    dropped: dict[str, int] = field(default_factory=dict)
    pictures: dict[str, int] = field(default_factory=dict)
    clips: dict[str, int] = field(default_factory=dict)
    sources: dict[str, dict[str, int]] = field(default_factory=dict)
    exclusion: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, object]:
        """The plan's deterministic facts for the manifest."""
        return {
            "plan_hash": self.plan_hash,
            "pictures": dict(self.pictures),
            "clips": dict(self.clips),
            "sources": {k: dict(v) for k, v in sorted(self.sources.items())},
            "dropped_while_planning": dict(sorted(self.dropped.items())),
        }


@dataclass(frozen=True, kw_only=True)
class BuildPlan(PlanFacts):
    """The whole build, decided (the other fields are :class:`PlanFacts`').

    Args:
        units: every shard, in plan order (triplet splits, then the bank).
    """

    units: tuple[ShardUnit, ...]


@dataclass
class _Candidate:
    key: str
    audio_class: str
    negative: bool
    categories: tuple[VisualCategoryRef, ...]
    record: ImageRecord
    instances: tuple[Instance, ...]
    split: str = ""
    kind: str | None = None
    extra: list[_Candidate] = field(default_factory=list)
    silent: tuple[VisualCategoryRef, ...] | None = None


def _triplet_key(record: ImageRecord, class_index: int, suffix: str = "") -> str:
    base = f"{record.source}-{safe_key_part(record.image_id)}-a{class_index:03d}"
    return base + (f"-{suffix}" if suffix else "")


def _positives(
    record: ImageRecord,
    *,
    classes_of: dict[tuple[str, str], tuple[str, ...]],
    class_index: dict[str, int],
    config: BuildConfig,
    dropped: Counter[str],
) -> list[_Candidate]:
    if not record.instances:
        return []
    not_exhaustive = set(record.not_exhaustive_category_ids)
    crowd_categories = {i.category_id for i in record.instances if i.is_crowd}
    by_category: dict[str, list[Instance]] = defaultdict(list)
    for inst in record.instances:
        if inst.is_crowd or (record.source, inst.category_id) not in classes_of:
            continue
        by_category[inst.category_id].append(inst)
    usable: dict[str, list[Instance]] = {}
    for cat, insts in by_category.items():
        if cat in not_exhaustive:
            dropped["not_exhaustive_category"] += 1
        elif config.mask_mode == "semantic" and cat in crowd_categories:
            dropped["crowd_category"] += 1
        else:
            usable[cat] = insts
    groups: list[tuple[str, str, list[Instance]]] = []  # (audio class, suffix, instances)
    if config.mask_mode == "semantic":
        per_class: dict[str, list[Instance]] = defaultdict(list)
        for cat, insts in usable.items():
            for label in classes_of[(record.source, cat)]:
                per_class[label].extend(insts)
        groups = [(label, "", insts) for label, insts in per_class.items()]
    else:
        for cat, insts in usable.items():
            for inst in insts:
                for label in classes_of[(record.source, cat)]:
                    groups.append((label, safe_key_part(inst.instance_id), [inst]))
    out: list[_Candidate] = []
    order: dict[str, int] = {}
    for label, suffix, insts in groups:
        if len(insts) > 1:
            order = order or {inst.instance_id: n for n, inst in enumerate(record.instances)}
            insts = sorted(insts, key=lambda i: order[i.instance_id])
        small = _too_small(record, insts, config.min_mask_area)
        if small is None:
            dropped["unreadable_image"] += 1
            continue
        if small:
            dropped["small_mask"] += 1
            continue
        cats: dict[str, str] = {}
        for inst in insts:
            cats.setdefault(inst.category_id, inst.category_name)
        refs = tuple(
            VisualCategoryRef(source=record.source, id=cid, name=name)
            for cid, name in sorted(cats.items())
        )
        out.append(
            _Candidate(
                key=_triplet_key(record, class_index[label], f"i{suffix}" if suffix else ""),
                audio_class=label,
                negative=False,
                categories=refs,
                record=record,
                instances=tuple(insts),
            )
        )
    return out


_BORDERLINE = 1e-9  # relative distance to the threshold below which normalised areas cannot tell


def _too_small(record: ImageRecord, insts: Sequence[Instance], threshold: float) -> bool | None:
    """Whether the instances' annotated area is below ``threshold`` of the picture's (None: the
    picture's size was needed and its header could not be read)."""
    if record.width is not None and record.height is not None:
        image_area = float(record.width * record.height)
        return image_area <= 0 or sum(float(i.area) for i in insts) / image_area < threshold
    fraction = sum(float(i.area) for i in insts)  # normalised boxes: the area is a fraction
    if abs(fraction - threshold) > _BORDERLINE * threshold:
        return fraction < threshold
    # Too close to call: decide with pixel boxes, as a reader that opened the picture would.
    try:
        with Image.open(record.path) as image:
            width, height = image.size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None
    boxes = [i.bbox for i in insts]
    areas = [b.to_pixels(width, height)[1] for b in boxes if isinstance(b, NormalizedBox)]
    return sum(areas) / float(width * height) < threshold


def _negatives(
    record: ImageRecord,
    *,
    categories_of: dict[tuple[str, str], dict[str, str]],
    class_index: dict[str, int],
    positive_classes: set[str],
) -> list[_Candidate]:
    present = {i.category_id for i in record.instances}
    negatives = set(record.negative_category_ids)
    not_exhaustive = set(record.not_exhaustive_category_ids)
    out: list[_Candidate] = []
    for (source, label), cats in categories_of.items():
        if source != record.source or label in positive_classes:
            continue
        verified = all(
            cid not in present
            and cid not in not_exhaustive
            and (cid in negatives or record.exhaustive)
            for cid in cats
        )
        if not verified:
            continue
        refs = tuple(
            VisualCategoryRef(source=source, id=cid, name=name)
            for cid, name in sorted(cats.items())
        )
        out.append(
            _Candidate(
                key=_triplet_key(record, class_index[label], "neg"),
                audio_class=label,
                negative=True,
                categories=refs,
                record=record,
                instances=(),
            )
        )
    return out


def _mixed(
    record: ImageRecord,
    positives: list[_Candidate],
    *,
    config: BuildConfig,
    class_index: dict[str, int],
    dropped: Counter[str],
) -> list[_Candidate]:
    """The picture's multi-source candidates, one per set of
    :func:`~avs_synth.building.sounding_sets.sounding_sets` (empty when no configured count
    fits; a picture whose sets run out before ``mixes_per_picture`` counts the missing ones)."""
    sets = sounding_sets(
        positives,
        identity=lambda c: c.key,
        picture=picture_key(record),
        seed=config.seed,
        sources=config.sources,
        mixes=config.mixes_per_picture,
    )
    if not sets:
        dropped["too_few_classes_for_sources"] += 1
    elif len(sets) < config.mixes_per_picture:
        dropped["fewer_mixes_than_asked"] += config.mixes_per_picture - len(sets)
    out = []
    for (first, *extra), silent in sets:
        key = "-".join([first.key, *(f"a{class_index[c.audio_class]:03d}" for c in extra)])
        refs = tuple(ref for cand in silent for ref in cand.categories)
        out.append(replace(first, key=key, extra=extra, silent=refs))
    return out


SYNTHETIC_CLASS = {"silence": "(silence)", "noise": "(noise)"}
"""The ``audio_class`` of the class-less negatives (no VGGSound label holds parentheses)."""
OTHER_GROUP = "others"


def _kinded_negatives(
    record: ImageRecord,
    negatives: list[_Candidate],
    *,
    has_positive: bool,
    kinds: Sequence[str],
    groups: dict[str, str],
    classes_of: dict[tuple[str, str], tuple[str, ...]],
) -> list[_Candidate]:
    """The picture's negatives of the requested kinds: verified-absent pairs labelled ``absent``
    (a group the picture holds) or ``offscreen`` (another group), and, for a picture with a
    positive, one ``silence`` and one ``noise`` candidate."""
    held = {
        groups.get(label, OTHER_GROUP)
        for inst in record.instances
        for label in classes_of.get((record.source, inst.category_id), ())
    }
    out = []
    for cand in negatives:
        cand.kind = "absent" if groups.get(cand.audio_class, OTHER_GROUP) in held else "offscreen"
        if cand.kind in kinds:
            out.append(cand)
    if has_positive:
        for kind, label in SYNTHETIC_CLASS.items():
            if kind in kinds:
                out.append(
                    _Candidate(
                        key=f"{record.source}-{safe_key_part(record.image_id)}-{kind}",
                        audio_class=label,
                        negative=True,
                        categories=(),
                        record=record,
                        instances=(),
                        kind=kind,
                    )
                )
    return out


def _seeded_clip(pool: Sequence[AudioClip], seed: int, key: str, label: str) -> AudioClip:
    """A further source's clip: a seeded pick from its class's pool."""
    return pool[seeded_key(seed, "source-clip", key, label) % len(pool)]


def _trimmed(record: ImageRecord) -> ImageRecord:
    """The record without its instances (candidates keep only the instances they use)."""
    return ImageRecord(
        source=record.source,
        image_id=record.image_id,
        path=record.path,
        width=record.width,
        height=record.height,
        license=record.license,
        attribution=record.attribution,
    )


def make_plan(
    *,
    records: Iterable[ImageRecord],
    clips: Iterable[AudioClip],
    matches: Sequence[CategoryMatch],
    config: BuildConfig,
    exclusion: ClipExclusion | None = None,
) -> BuildPlan:
    """Plan a build (see the module docstring for the steps).

    Args:
        records: image records of every visual source, LVIS before COCO.
        clips: VGGSound clips (clips without a file are left out and counted).
        matches: the accepted category matches.
        config: the build settings.
        exclusion: the YouTube videos whose clips are left out (None: none).
    """
    seed = config.seed
    kinds = config.negatives
    groups = shipped_vggsound_groups() if kinds else {}
    dropped: Counter[str] = Counter()
    classes_of_sets: dict[tuple[str, str], set[str]] = defaultdict(set)
    categories_of: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    for m in matches:
        classes_of_sets[(m.source, m.visual_id)].add(m.vggsound_label)
        categories_of[(m.source, m.vggsound_label)][m.visual_id] = m.visual_name
    classes_of = {k: tuple(sorted(v)) for k, v in classes_of_sets.items()}
    audio_classes = tuple(sorted({m.vggsound_label for m in matches}))
    class_index = {label: n for n, label in enumerate(audio_classes)}
    class_categories = {
        label: tuple(
            VisualCategoryRef(source=src, id=cid, name=name)
            for (src, lab), cats in sorted(categories_of.items())
            if lab == label
            for cid, name in sorted(cats.items())
        )
        for label in audio_classes
    }

    # Clips: usable ones (a file, an accepted class), split by VGGSound split.
    usable_clips: list[AudioClip] = []
    ambience_clips: list[AudioClip] = []
    ambience = ambience_labels(config, class_index)
    seen_clips: set[str] = set()
    excluded_rows: Counter[str] = Counter()
    excluded_videos: dict[str, set[str]] = defaultdict(set)
    for clip in clips:
        if exclusion is not None and exclusion.excludes(clip.youtube_id):
            excluded_rows[clip.split] += 1
            excluded_videos[clip.split].add(clip.youtube_id)
            if clip.label in class_index:
                dropped["excluded_clip"] += 1
            continue
        if clip.label not in class_index:
            if clip.label in ambience and clip.path is not None:
                ambience_clips.append(clip)
            continue
        if clip.clip_id in seen_clips:
            dropped["duplicate_clip_row"] += 1
            continue
        seen_clips.add(clip.clip_id)
        if clip.path is None:
            dropped["missing_audio_file"] += 1
            continue
        usable_clips.append(clip)
    clip_split = assign_clips(usable_clips, config.fractions, seed=seed)
    pools: dict[tuple[str, str], list[AudioClip]] = defaultdict(list)
    for clip in usable_clips:
        split = clip_split.get(clip.clip_id)
        if split is not None:
            pools[(split, clip.label)].append(clip)
    pools = {
        k: seeded_sorted(v, seed=seed, identity=lambda c: c.clip_id, salt="clip-order")
        for k, v in pools.items()
    }
    real_pools = real_negative_pools(ambience_clips, pools, config) if kinds else {}

    # Pictures and their candidates, streamed: only the instances a candidate uses are kept.
    sources: dict[str, Counter[str]] = defaultdict(Counter)
    classes_with_clips = {label for _, label in pools}
    by_picture: dict[str, tuple[list[_Candidate], list[_Candidate]]] = {}
    seen_pictures: set[str] = set()
    for record in records:
        sources[record.source]["records"] += 1
        pkey = picture_key(record)
        if pkey in seen_pictures:  # LVIS and COCO share pictures: the first source read wins
            dropped["picture_in_earlier_source"] += 1
            continue
        seen_pictures.add(pkey)
        positives = []
        for cand in _positives(
            record, classes_of=classes_of, class_index=class_index, config=config, dropped=dropped
        ):
            if cand.audio_class in classes_with_clips:
                positives.append(cand)
            else:
                dropped["no_clip_for_class"] += 1
        if config.sources and positives:
            positives = _mixed(
                record, positives, config=config, class_index=class_index, dropped=dropped
            )
        negatives: list[_Candidate] = []
        if config.negative_ratio > 0:
            negatives = [
                cand
                for cand in _negatives(
                    record,
                    categories_of=categories_of,
                    class_index=class_index,
                    positive_classes={c.audio_class for c in positives},
                )
                if cand.audio_class in classes_with_clips
            ]
            if kinds:
                negatives = _kinded_negatives(
                    record,
                    negatives,
                    has_positive=bool(positives),
                    kinds=kinds,
                    groups=groups,
                    classes_of=classes_of,
                )
        if not positives and not negatives:
            continue
        light = _trimmed(record)
        for cand in (*positives, *negatives):
            cand.record = light
        by_picture[pkey] = (positives, negatives)
        sources[record.source]["pictures_used"] += 1

    picture_split = assign_pictures(by_picture, config.fractions, seed=seed)
    pictures = Counter(picture_split.values())

    # Positives: a clip pool in the split, the per-picture cap, then the per-category cap.
    positives_by_class: dict[str, list[_Candidate]] = defaultdict(list)
    negative_pool: dict[tuple[str, str | None], list[_Candidate]] = defaultdict(list)
    for pkey, (positives, negatives) in by_picture.items():
        split = picture_split[pkey]
        usable = []
        for cand in positives:
            cand.split = split
            if all((split, c.audio_class) in pools for c in (cand, *cand.extra)):
                usable.append(cand)
            else:
                dropped["no_clip_in_split"] += 1
        if config.max_per_picture and len(usable) > config.max_per_picture:
            usable = seeded_sorted(usable, seed=seed, identity=lambda c: c.key, salt="picture-cap")
            dropped["picture_cap"] += len(usable) - config.max_per_picture
            usable = usable[: config.max_per_picture]
        for cand in usable:
            positives_by_class[cand.audio_class].append(cand)
        for cand in negatives:
            cand.split = split
            if cand.kind in SYNTHETIC_CLASS:
                if not lacks_real_clip(cand.kind, split, config, real_pools):
                    negative_pool[(split, cand.kind)].append(cand)  # else: negatives_short_*
            elif (split, cand.audio_class) in pools:
                negative_pool[(split, cand.kind)].append(cand)
    chosen: list[_Candidate] = []
    for label in sorted(positives_by_class):
        cands = seeded_sorted(
            positives_by_class[label], seed=seed, identity=lambda c: c.key, salt="category-cap"
        )
        if config.max_per_category and len(cands) > config.max_per_category:
            dropped["category_cap"] += len(cands) - config.max_per_category
            cands = cands[: config.max_per_category]
        chosen.extend(cands)

    # Negatives: ratio × positives per split, from verified absences only (with kinds: an equal
    # share per kind, each from its own pool).
    positives_per_split = Counter(c.split for c in chosen)
    for split in SPLITS:
        for kind in kinds or (None,):
            share = config.negative_ratio / (len(kinds) if kinds else 1)
            wanted = int(round(share * positives_per_split[split]))
            if wanted == 0:
                continue
            pool = seeded_sorted(
                negative_pool[(split, kind)],
                seed=seed,
                identity=lambda c: c.key,
                salt="negatives" if kind is None else f"negatives-{kind}",
            )
            if len(pool) < wanted:
                short = "negatives_short" if kind is None else f"negatives_short_{kind}"
                dropped[short] += wanted - len(pool)
            chosen.extend(pool[:wanted])

    # Clips, round robin over each (split, class) pool.
    by_split_class: dict[tuple[str, str], list[_Candidate]] = defaultdict(list)
    for cand in chosen:
        by_split_class[(cand.split, cand.audio_class)].append(cand)
    specs_by_split: dict[str, list[TripletSpec]] = defaultdict(list)
    for (split, label), cands in sorted(by_split_class.items()):
        pool = pools.get((split, label), [])
        ordered = seeded_sorted(cands, seed=seed, identity=lambda c: c.key, salt="clip-pairing")
        for n, cand in enumerate(ordered):
            rec = cand.record
            specs_by_split[split].append(
                TripletSpec(
                    key=cand.key,
                    split=split,
                    audio_class=label,
                    negative=cand.negative,
                    categories=cand.categories,
                    source=rec.source,
                    image_id=rec.image_id,
                    image_path=rec.path,
                    width=rec.width,
                    height=rec.height,
                    instances=cand.instances,
                    clip=(
                        real_negative_clip(
                            cand.kind, split, cand.key, n, config=config, real_pools=real_pools
                        )
                        if cand.kind in SYNTHETIC_CLASS
                        else pool[n % len(pool)]
                    ),
                    license=rec.license,
                    attribution=rec.attribution,
                    negative_kind=cand.kind,
                    extra_sources=tuple(
                        SourceSpec(
                            audio_class=c.audio_class,
                            categories=c.categories,
                            instances=c.instances,
                            clip=_seeded_clip(
                                pools[(split, c.audio_class)], seed, cand.key, c.audio_class
                            ),
                        )
                        for c in cand.extra
                    ),
                    silent_categories=cand.silent,
                    class_indices=(
                        tuple(class_index[c.audio_class] for c in (cand, *cand.extra))
                        if config.class_masks and not cand.negative
                        else ()
                    ),
                )
            )

    units: list[ShardUnit] = []
    for split in SPLITS:
        ordered_specs = seeded_sorted(
            specs_by_split[split], seed=seed, identity=lambda s: s.key, salt="shard-order"
        )
        for index, begin in enumerate(range(0, len(ordered_specs), config.shard_size)):
            units.append(
                ShardUnit(
                    name=make_shard_name(split, index),
                    split=split,
                    position=len(units),
                    triplets=tuple(ordered_specs[begin : begin + config.shard_size]),
                )
            )
    if config.audio_bank:
        bank_index = 0
        for label in audio_classes:
            pool = seeded_sorted(
                pools.get(("train", label), []),
                seed=seed,
                identity=lambda c: c.clip_id,
                salt="bank-order",
            )
            for begin in range(0, len(pool), config.bank_clips_per_shard):
                units.append(
                    ShardUnit(
                        name=make_shard_name(BANK, bank_index),
                        split=BANK,
                        position=len(units),
                        audio_class=label,
                        clips=tuple(pool[begin : begin + config.bank_clips_per_shard]),
                    )
                )
                bank_index += 1

    clip_counts: Counter[str] = Counter()
    for (split, _), pool in pools.items():
        clip_counts[split] += len(pool)
    exclusion_record: dict[str, Any] = {}
    if exclusion is not None:
        exclusion_record = {
            **exclusion.summary(),
            "rows_excluded": {s: excluded_rows.get(s, 0) for s in ("train", "test")},
            "videos_excluded": {s: len(excluded_videos.get(s, ())) for s in ("train", "test")},
            "videos_excluded_total": len(set().union(*excluded_videos.values())),
        }
    plan_hash = compute_plan_hash(config, units, audio_classes, exclusion)
    return BuildPlan(
        units=tuple(units),
        plan_hash=plan_hash,
        audio_classes=audio_classes,
        class_categories=class_categories,
        dropped=dict(sorted(dropped.items())),
        pictures={s: pictures.get(s, 0) for s in SPLITS},
        clips={s: clip_counts.get(s, 0) for s in SPLITS},
        sources={k: dict(sorted(v.items())) for k, v in sorted(sources.items())},
        exclusion=exclusion_record,
    )
