"""The sample corpus's COCO 2017 and LVIS v1 files: pictures, instance json (polygons, crowd
RLE), LVIS's negative and not-exhaustive category lists."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from avs_synth.sample_corpus.categories import CATEGORIES, category_by_key
from avs_synth.sample_corpus.file_writers import label_map_image, write_jpeg, write_json, write_png
from avs_synth.sample_corpus.scenes import draw_picture, numbered_objects, scaled_size
from avs_synth.sample_corpus.summary import (
    CorpusPicture,
    CorpusSize,
    CorpusSummary,
    DrawnInstance,
    item_rng,
)

log = logging.getLogger(__name__)


COCO_URL = "http://images.cocodataset.org/{folder}/{image_id:012d}.jpg"
_COCO_SIZES = ((640, 480), (480, 640), (640, 427), (612, 612), (640, 360), (500, 375))

_COCO_LICENSES = [
    {"url": "http://creativecommons.org/licenses/by-nc-sa/2.0/", "id": 1,
     "name": "Attribution-NonCommercial-ShareAlike License"},
    {"url": "http://creativecommons.org/licenses/by-nc/2.0/", "id": 2,
     "name": "Attribution-NonCommercial License"},
    {"url": "http://creativecommons.org/licenses/by-nc-nd/2.0/", "id": 3,
     "name": "Attribution-NonCommercial-NoDerivs License"},
    {"url": "http://creativecommons.org/licenses/by/2.0/", "id": 4, "name": "Attribution License"},
    {"url": "http://creativecommons.org/licenses/by-sa/2.0/", "id": 5,
     "name": "Attribution-ShareAlike License"},
    {"url": "http://creativecommons.org/licenses/by-nd/2.0/", "id": 6,
     "name": "Attribution-NoDerivs License"},
    {"url": "http://flickr.com/commons/usage/", "id": 7, "name": "No known copyright restrictions"},
    {"url": "http://www.usa.gov/copyright.shtml", "id": 8, "name": "United States Government Work"},
]  # fmt: skip


def _polygons_json(polygons) -> list[list[float]]:
    return [[round(float(v), 2) for v in poly] for poly in polygons]


def write_coco_and_lvis(out: Path, seed: int, size: CorpusSize, summary: CorpusSummary) -> None:
    rng = item_rng(seed, "coco-plan")
    plan: list[tuple[str | None, str]] = [("train", "train2017")] * size.lvis_train_images
    n_val_from_val = (size.lvis_val_images + 1) // 2
    plan += [("val", "val2017")] * n_val_from_val
    plan += [("val", "train2017")] * (size.lvis_val_images - n_val_from_val)
    plan += [(None, "train2017")] * size.coco_only_images
    ids = (rng.choice(581_929, size=len(plan), replace=False) + 1).tolist()
    keys = [c.key for c in CATEGORIES]

    lvis_images: dict[str, list[dict]] = {"train": [], "val": []}
    lvis_anns: dict[str, list[dict]] = {"train": [], "val": []}
    coco_images: dict[str, list[dict]] = {"train2017": [], "val2017": []}
    coco_anns: dict[str, list[dict]] = {"train2017": [], "val2017": []}
    lvis_ann_id = 1
    coco_ann_id = 100_001
    for index, ((lvis_split, folder), image_id) in enumerate(zip(plan, ids, strict=True)):
        r = item_rng(seed, "coco", index)
        w, h = scaled_size(_COCO_SIZES[int(r.integers(len(_COCO_SIZES)))], size.image_scale)
        flock = int(r.integers(4, 8)) if index % 25 == 1 else 0
        unannotated = lvis_split is not None and (index % 25 == 2 or r.random() < 0.1)
        scene = draw_picture(
            r,
            width=w,
            height=h,
            pool=keys,
            extra_tag="lvis-unannotated" if unannotated and not flock else None,
            occluder=bool(r.random() < 0.2),
            flock=flock,
        )
        rel = f"coco/{folder}/{image_id:012d}.jpg"
        write_jpeg(out / rel, scene.image)
        label_rel = f"truth/labelmaps/coco/{folder}/{image_id:012d}.png"
        write_png(out / label_rel, label_map_image(scene.label_map()))

        present = {o.category for o in scene.objects}
        not_exhaustive = sorted({o.category for o in scene.objects if o.tag == "lvis-unannotated"})
        absent = [k for k in keys if k not in present]
        n_neg = min(len(absent), int(r.integers(1, 4)))
        negatives = sorted(str(k) for k in r.choice(absent, size=n_neg, replace=False))
        date = (
            f"201{int(r.integers(3, 5))}-{int(r.integers(1, 13)):02d}-{int(r.integers(1, 29)):02d}"
            f" {int(r.integers(0, 24)):02d}:{int(r.integers(0, 60)):02d}:"
            f"{int(r.integers(0, 60)):02d}"
        )
        licence = int(r.integers(1, 9))
        flickr = (
            f"http://farm{int(r.integers(1, 10))}.staticflickr.com/{int(r.integers(1000, 9999))}/"
            f"{int(r.integers(10**9, 10**10))}_{r.bytes(5).hex()}_z.jpg"
        )
        coco_url = COCO_URL.format(folder=folder, image_id=image_id)

        # COCO annotations: every instance of every COCO category (exhaustive); a flock of
        # birds is one crowd annotation (uncompressed RLE), as COCO does for groups.
        coco_ids: dict[int, int] = {}
        flock_labels = [i for i, o in numbered_objects(scene) if o.group is not None]
        for label, obj in numbered_objects(scene):
            cat = category_by_key(obj.category)
            if cat.coco_id is None or (obj.group is not None and len(flock_labels) > 1):
                continue
            coco_anns[folder].append(
                {
                    "segmentation": _polygons_json(obj.polygons),
                    "area": float(obj.area),
                    "iscrowd": 0,
                    "image_id": image_id,
                    "bbox": [round(v, 2) for v in obj.bbox],
                    "category_id": cat.coco_id,
                    "id": coco_ann_id,
                }
            )
            coco_ids[label] = coco_ann_id
            coco_ann_id += 1
        if len(flock_labels) > 1:
            union = np.zeros((h, w), dtype=bool)
            for label in flock_labels:
                union |= scene.objects[label - 1].mask
            crowd_id = 900_100_000_000 + image_id
            coco_anns[folder].append(
                {
                    "segmentation": {"counts": _uncompressed_rle(union), "size": [h, w]},
                    "area": float(union.sum()),
                    "iscrowd": 1,
                    "image_id": image_id,
                    "bbox": [round(v, 2) for v in _mask_bbox(union)],
                    "category_id": category_by_key("bird").coco_id,
                    "id": crowd_id,
                }
            )
            for label in flock_labels:
                coco_ids[label] = crowd_id
        coco_images[folder].append(
            {
                "license": licence,
                "file_name": f"{image_id:012d}.jpg",
                "coco_url": coco_url,
                "height": h,
                "width": w,
                "date_captured": date,
                "flickr_url": flickr,
                "id": image_id,
            }
        )

        lvis_ids: dict[int, int] = {}
        if lvis_split is not None:
            for label, obj in numbered_objects(scene):
                if obj.tag == "lvis-unannotated":
                    continue
                cat = category_by_key(obj.category)
                lvis_anns[lvis_split].append(
                    {
                        "id": lvis_ann_id,
                        "image_id": image_id,
                        "category_id": cat.lvis_id,
                        "segmentation": _polygons_json(obj.polygons),
                        "bbox": [round(v, 2) for v in obj.bbox],
                        "area": float(obj.area),
                    }
                )
                lvis_ids[label] = lvis_ann_id
                lvis_ann_id += 1
            lvis_images[lvis_split].append(
                {
                    "id": image_id,
                    "width": w,
                    "height": h,
                    "license": licence,
                    "flickr_url": flickr,
                    "coco_url": coco_url,
                    "date_captured": date,
                    "neg_category_ids": sorted(category_by_key(k).lvis_id for k in negatives),
                    "not_exhaustive_category_ids": sorted(
                        category_by_key(k).lvis_id for k in not_exhaustive
                    ),
                }
            )

        instances = tuple(
            DrawnInstance(
                label=label,
                category=obj.category,
                area=obj.area,
                bbox=obj.bbox,
                lvis_annotation_id=lvis_ids.get(label),
                coco_annotation_id=coco_ids.get(label),
                crowd_group=obj.group,
            )
            for label, obj in numbered_objects(scene)
        )
        summary.pictures.append(
            CorpusPicture(
                source="coco",
                image_id=str(image_id),
                split=folder,
                path=rel,
                width=w,
                height=h,
                label_map=label_rel,
                instances=instances,
                lvis_split=lvis_split,
                negative_categories=tuple(negatives) if lvis_split else (),
                not_exhaustive_categories=tuple(not_exhaustive) if lvis_split else (),
            )
        )

    # LVIS counts come from the train split for both files, as in LVIS v1.
    image_count: dict[int, set[int]] = {}
    instance_count: dict[int, int] = {}
    for ann in lvis_anns["train"]:
        image_count.setdefault(ann["category_id"], set()).add(ann["image_id"])
        instance_count[ann["category_id"]] = instance_count.get(ann["category_id"], 0) + 1
    lvis_categories = [
        {
            "id": c.lvis_id,
            "name": c.lvis_name,
            "synonyms": list(c.lvis_synonyms),
            "synset": c.lvis_synset,
            "frequency": c.lvis_frequency,
            "def": c.lvis_def,
            "image_count": len(image_count.get(c.lvis_id, ())),
            "instance_count": instance_count.get(c.lvis_id, 0),
        }
        for c in sorted(CATEGORIES, key=lambda c: c.lvis_id)
    ]
    for split in ("train", "val"):
        rel = f"lvis/lvis_v1_{split}.json"
        write_json(
            out / rel,
            {
                "info": {
                    "description": "LVIS v1 format; avs-synth sample corpus (synthetic pictures)",
                    "url": "https://www.lvisdataset.org",
                    "version": "1.0",
                    "year": 2020,
                    "contributor": "avs-synth sample-corpus",
                    "date_created": "2020-01-30 00:00:00",
                },
                "licenses": _COCO_LICENSES,
                "images": lvis_images[split],
                "annotations": lvis_anns[split],
                "categories": lvis_categories,
            },
        )
        summary.files[f"lvis_{split}"] = rel
    coco_categories = [
        {"supercategory": c.coco_supercategory, "id": c.coco_id, "name": c.coco_name}
        for c in sorted(CATEGORIES, key=lambda c: c.coco_id or 0)
        if c.coco_id is not None
    ]
    for folder in ("train2017", "val2017"):
        rel = f"coco/annotations/instances_{folder}.json"
        write_json(
            out / rel,
            {
                "info": {
                    "description": "COCO 2017 format; avs-synth sample corpus (synthetic pictures)",
                    "url": "http://cocodataset.org",
                    "version": "1.0",
                    "year": 2017,
                    "contributor": "avs-synth sample-corpus",
                    "date_created": "2017/09/01",
                },
                "licenses": _COCO_LICENSES,
                "images": coco_images[folder],
                "annotations": coco_anns[folder],
                "categories": coco_categories,
            },
        )
        summary.files[f"coco_{folder}"] = rel
        summary.files[f"coco_{folder}_images"] = f"coco/{folder}"


def _uncompressed_rle(mask: np.ndarray) -> list[int]:
    """COCO's uncompressed RLE of a mask (column-major runs, starting with zeros)."""
    flat = np.asfortranarray(mask.astype(np.uint8)).ravel(order="F")
    changes = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat[0] == 1:
        runs = [0, *runs]
    return [int(x) for x in runs]


def _mask_bbox(mask: np.ndarray) -> tuple[float, float, float, float]:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return tuple(float(v) for v in mask_utils.toBbox(rle).tolist())  # type: ignore[return-value]
