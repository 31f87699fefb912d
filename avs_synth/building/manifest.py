"""``manifest.json`` and ``report.json``: what a finished build holds, and what it skipped.

Both are computed from the plan and the per-shard counts (``.parts/*.json``) only, so the single-
machine build and the union of a partitioned build write the same bytes.

- ``manifest.json``: tool and schema version, seed, plan hash, the configuration (filters,
  window, splits, mask mode), the category map's sha256 and accepted rows, the audio classes with
  their visual categories, per split the sample counts (total, positives, negatives, per audio
  class, per source) and the shards with their sha256, the audio bank's shards per class, and
  the clip exclusion (``clip_exclusion``: the lists applied and the VGGSound rows and videos they
  removed, by VGGSound split). A build with negative kinds also records them
  (``config.negatives``) and counts each split's negatives per kind (``per_kind``); one with
  ``min_audibility`` records it among the filters; one with ``sources`` records the counts'
  weights and the pan mode (and ``mixes_per_picture`` when above 1) and counts each split's
  positives by number of sources (``per_num_sources``); one with ``class_masks`` says how its
  ``classes.png`` members are labelled; one with ``crop`` records the mode and the mask's aimed
  share of a crop (or the measured mask-area histogram the share is drawn from); one whose
  ``silence`` / ``noise`` negatives take real clips records ``noise_from`` (with the ambience
  classes used) and ``silence_from`` (with the quiet threshold); one with a ``tagger`` records the
  model's file name, digest, activation and which audio classes it can score; one with
  ``frames`` above 1 records the clips' layout (``config.clips``) and counts each split's positive
  clips by event (``per_clip_event``: ``none``, ``onset``, ``offset``).
- ``report.json``: skipped samples by reason (per split and in total), the candidates left out
  while planning and the clip exclusion.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from avs_synth import __version__
from avs_synth.audio.ambience import AMBIENCE_FILE, shipped_ambience_classes
from avs_synth.building.clip_path import MIN_SCALE, PATH_NAME
from avs_synth.building.config import BuildConfig
from avs_synth.building.plan_store import StoredPlan
from avs_synth.schema import BANK, SCHEMA_VERSION, SPLITS, clip_members


def _sum_counters(parts: Sequence[Mapping[str, Any]], field: str) -> dict[str, int]:
    total: Counter[str] = Counter()
    for part in parts:
        total.update(part.get(field, {}))
    return dict(sorted(total.items()))


def make_manifest(
    *,
    plan: StoredPlan,
    config: BuildConfig,
    parts: Sequence[Mapping[str, Any]],
    category_map: Mapping[str, Any],
) -> dict[str, Any]:
    """The manifest of a complete build (``parts``: every unit's counts, in plan order)."""
    splits: dict[str, Any] = {}
    for split in SPLITS:
        mine = [p for p in parts if p["split"] == split]
        splits[split] = {
            "samples": sum(p["samples"] for p in mine),
            "positives": sum(p["positives"] for p in mine),
            "negatives": sum(p["negatives"] for p in mine),
            "pictures_planned": plan.pictures.get(split, 0),
            "clips_available": plan.clips.get(split, 0),
            "per_category": _sum_counters(mine, "per_category"),
            "per_source": _sum_counters(mine, "per_source"),
            "shards": [
                {
                    "name": p["name"],
                    "samples": p["samples"],
                    "sha256": p["sha256"],
                    "bytes": p["bytes"],
                }
                for p in mine
            ],
        }
        if config.negatives:
            splits[split]["per_kind"] = _sum_counters(mine, "per_kind")
        if config.sources:
            splits[split]["per_num_sources"] = _sum_counters(mine, "per_num_sources")
        if config.frames > 1:
            splits[split]["per_clip_event"] = _sum_counters(mine, "per_clip_event")
    bank = [p for p in parts if p["split"] == BANK]
    manifest = {
        "tool": {"name": "avs-synth", "version": __version__},
        "schema_version": SCHEMA_VERSION,
        "seed": config.seed,
        "plan": plan.summary(),
        "config": {
            "mask_mode": config.mask_mode,
            "filters": {
                "min_mask_area": config.min_mask_area,
                "max_per_picture": config.max_per_picture,
                "max_per_category": config.max_per_category,
            },
            "splits": config.fractions.as_dict(),
            "window": asdict(config.window),
            "negative_ratio": config.negative_ratio,
            "max_side": config.max_side,
            "jpeg_quality": config.jpeg_quality,
            "shard_size": config.shard_size,
            "audio_bank": config.audio_bank,
            "bank_clips_per_shard": config.bank_clips_per_shard,
            "exclude_avsbench": config.exclude_avsbench,
        },
        "category_map": dict(category_map),
        "clip_exclusion": dict(plan.exclusion),
        "audio_classes": [
            {
                "label": label,
                "index": index,
                "categories": [asdict(c) for c in plan.class_categories.get(label, ())],
            }
            for index, label in enumerate(plan.audio_classes)
        ],
        "splits": splits,
        "bank": {
            "windows": sum(p["samples"] for p in bank),
            "clips": sum(p.get("clips", 0) for p in bank),
            "per_category": _sum_counters(bank, "per_category"),
            "shards": [
                {
                    "name": p["name"],
                    "audio_class": p["audio_class"],
                    "windows": p["samples"],
                    "clips": p.get("clips", 0),
                    "sha256": p["sha256"],
                    "bytes": p["bytes"],
                }
                for p in bank
            ],
        },
    }
    if config.negatives:
        manifest["config"]["negatives"] = list(config.negatives)
    manifest["config"].update(negative_audio_record(config, plan.audio_classes))
    if config.sources:
        manifest["config"]["sources"] = [[k, w] for k, w in config.sources]
        manifest["config"]["pan"] = config.pan
        if config.mixes_per_picture > 1:
            manifest["config"]["mixes_per_picture"] = config.mixes_per_picture
    if config.class_masks:
        manifest["config"]["class_masks"] = {
            "member": "classes.png",
            "values": "0 background, audio_classes[i].index + 1 for the pixels of class i",
        }
    if config.crop != "none":
        manifest["config"]["crop"] = {
            "mode": config.crop,
            "area_fraction": config.crop_area_fraction,
        }
        if config.crop_areas is not None:
            areas = config.crop_areas
            manifest["config"]["crop"] = {
                "mode": config.crop,
                "area_fraction": "drawn per sample from area_distribution",
                "area_distribution": {
                    "source": areas.source,
                    "bin_edges": areas.bin_edges(),
                    "counts": list(areas.counts),
                    "masks": areas.masks,
                    "empty": areas.empty,
                    "skipped": areas.skipped,
                },
            }
    if config.frames > 1:
        manifest["config"]["clips"] = _clips_entry(config)
    if config.min_audibility is not None:
        manifest["config"]["filters"]["min_audibility"] = config.min_audibility
    if config.tagger is not None:
        manifest["config"]["filters"]["audibility_from"] = config.audibility_from
        manifest["config"]["tagger"] = {
            "file": config.tagger.path.name,
            "sha256": config.tagger.sha256,
            "activation": config.tagger.activation,
            "labels": len(config.tagger.labels),
            "audio_classes_tagged": [c for c in plan.audio_classes if c in config.tagger.labels],
        }
    return manifest


def negative_audio_record(config: BuildConfig, audio_classes: Sequence[str]) -> dict[str, Any]:
    """Where ``silence`` / ``noise`` negatives' audio comes from, when not only synthesized: the
    options and the ambience classes used (the shipped list less the matched classes)."""
    record: dict[str, Any] = {}
    if config.noise_from != "synthetic":
        matched = set(audio_classes)
        record["noise_from"] = {
            "source": config.noise_from,
            "ambience_classes": [c for c in shipped_ambience_classes() if c not in matched],
            "list": f"category_maps/{AMBIENCE_FILE}",
        }
    if config.silence_from != "synthetic":
        record["silence_from"] = {"source": config.silence_from, "quiet_dbfs": config.quiet_dbfs}
    return record


def _clips_entry(config: BuildConfig) -> dict[str, Any]:
    """What a clip build's samples hold and how they were cut."""
    n, frame_s = config.frames, config.window.window_s
    return {
        "frames": n,
        "frame_s": frame_s,
        "path": PATH_NAME,
        "min_scale": MIN_SCALE,
        "onset_offset": config.onset_offset,
        "members": [*clip_members(n, class_masks=config.class_masks)],
        "layout": (
            f"KEY.{{t}}.jpg / KEY.{{t}}.mask.png for frames t = 0..{n - 1} (crops of one picture, "
            f"one size), KEY.flac: {n} consecutive stretches of {frame_s:g} s, stretch t with "
            "frame t; json clip.boxes / clip.silent per frame"
        ),
    }


def make_report(*, plan: StoredPlan, parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Skipped samples by reason (per split, bank and total) and the planning exclusions."""
    per_split = {
        split: _sum_counters([p for p in parts if p["split"] == split], "skipped")
        for split in (*SPLITS, BANK)
    }
    return {
        "skipped": _sum_counters(parts, "skipped"),
        "skipped_per_split": per_split,
        "planned": {
            split: sum(p["planned"] for p in parts if p["split"] == split)
            for split in (*SPLITS, BANK)
        },
        "written": {
            split: sum(p["samples"] for p in parts if p["split"] == split)
            for split in (*SPLITS, BANK)
        },
        "dropped_while_planning": dict(sorted(plan.dropped.items())),
        "clip_exclusion": dict(plan.exclusion),
    }
