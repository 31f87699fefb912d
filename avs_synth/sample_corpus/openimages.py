"""The sample corpus's Open Images V7 files: pictures, segmentation CSV, zipped mask PNGs,
image-level labels and class lists."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image

from avs_synth.sample_corpus.categories import CATEGORIES, category_by_key
from avs_synth.sample_corpus.file_writers import (
    label_map_image,
    png_bytes,
    write_bytes,
    write_csv,
    write_jpeg,
    write_png,
    write_zip,
)
from avs_synth.sample_corpus.polygons import rasterize, scale_polygons
from avs_synth.sample_corpus.scenes import draw_picture, numbered_objects, scaled_size
from avs_synth.sample_corpus.summary import (
    CorpusPicture,
    CorpusSize,
    CorpusSummary,
    DrawnInstance,
    item_rng,
)

log = logging.getLogger(__name__)


_OI_SIZES = ((1024, 768), (1024, 683), (768, 1024), (1024, 576), (800, 600))


def _mid_file_part(mid: str) -> str:
    return mid.replace("/", "")


def write_openimages(out: Path, seed: int, size: CorpusSize, summary: CorpusSummary) -> None:
    pool = [c.key for c in CATEGORIES if c.openimages_mid is not None]
    with_mid = [c for c in CATEGORIES if c.openimages_mid is not None]
    used_ids: set[str] = set()
    root = out / "openimages"
    for split, count in (
        ("train", size.openimages_train_images),
        ("validation", size.openimages_val_images),
    ):
        seg_rows: list[list[object]] = []
        label_rows: list[list[object]] = []
        zips: dict[str, list[tuple[str, bytes]]] = {c: [] for c in "0123456789abcdef"}
        for index in range(count):
            r = item_rng(seed, f"openimages-{split}", index)
            while True:
                image_id = r.bytes(8).hex()
                if image_id not in used_ids:
                    used_ids.add(image_id)
                    break
            w, h = scaled_size(_OI_SIZES[int(r.integers(len(_OI_SIZES)))], size.image_scale)
            scene = draw_picture(r, width=w, height=h, pool=pool, occluder=bool(r.random() < 0.15))
            rel = f"openimages/{split}/{image_id}.jpg"
            write_jpeg(out / rel, scene.image)
            label_rel = f"truth/labelmaps/openimages/{split}/{image_id}.png"
            write_png(out / label_rel, label_map_image(scene.label_map()))
            scale = float(r.choice([1.25, 1.5, 2.0]))  # masks never match the picture size
            mw, mh = max(8, int(round(w * scale))), max(8, int(round(h * scale)))
            instances = []
            zip_rel = f"openimages/{split}-masks/{split}-masks-{image_id[0]}.zip"
            for label, obj in numbered_objects(scene):
                cat = category_by_key(obj.category)
                member = None
                if cat.openimages_segmentable and cat.openimages_mid is not None:
                    box_id = r.bytes(4).hex()
                    member = f"{image_id}_{_mid_file_part(cat.openimages_mid)}_{box_id}.png"
                    polys = scale_polygons(obj.polygons, mw / w, mh / h)
                    mask = rasterize(polys, mh, mw)
                    zips[image_id[0]].append((member, png_bytes(Image.fromarray(mask))))
                    x, y, bw, bh = obj.bbox
                    seg_rows.append(
                        [
                            member,
                            image_id,
                            cat.openimages_mid,
                            box_id,
                            f"{x / w:.6f}",
                            f"{(x + bw) / w:.6f}",
                            f"{y / h:.6f}",
                            f"{(y + bh) / h:.6f}",
                            f"{r.uniform(0.6, 0.98):.5f}",
                            _clicks(r, obj.mask, obj.bbox, w, h),
                        ]
                    )
                instances.append(
                    DrawnInstance(
                        label=label,
                        category=obj.category,
                        area=obj.area,
                        bbox=obj.bbox,
                        openimages_mask=member,
                        openimages_zip=zip_rel if member else None,
                    )
                )
            present = {o.category for o in scene.objects}
            for c in with_mid:
                if c.key in present:
                    source = "verification" if r.random() < 0.7 else "crowdsource-verification"
                    label_rows.append([image_id, source, c.openimages_mid, 1])
            absent = [c for c in with_mid if c.key not in present]
            n_neg = min(len(absent), int(r.integers(1, 4)))
            negatives = [absent[int(i)] for i in r.choice(len(absent), size=n_neg, replace=False)]
            for c in negatives:
                label_rows.append([image_id, "verification", c.openimages_mid, 0])
            summary.pictures.append(
                CorpusPicture(
                    source="openimages",
                    image_id=image_id,
                    split=split,
                    path=rel,
                    width=w,
                    height=h,
                    label_map=label_rel,
                    instances=tuple(instances),
                    negative_categories=tuple(sorted(c.key for c in negatives)),
                    mask_size=(mw, mh),
                )
            )
        seg_rows.sort(key=lambda row: (row[1], row[2], row[3]))
        label_rows.sort(key=lambda row: (row[0], row[2]))
        seg_rel = f"openimages/{split}-annotations-object-segmentation.csv"
        write_csv(
            out / seg_rel,
            ["MaskPath", "ImageID", "LabelName", "BoxID", "BoxXMin", "BoxXMax", "BoxYMin",
             "BoxYMax", "PredictedIoU", "Clicks"],
            seg_rows,
        )  # fmt: skip
        labels_rel = f"openimages/{split}-annotations-human-imagelabels.csv"
        write_csv(out / labels_rel, ["ImageID", "Source", "LabelName", "Confidence"], label_rows)
        for hexchar, members in zips.items():
            write_zip(root / f"{split}-masks" / f"{split}-masks-{hexchar}.zip", members)
        summary.files[f"openimages_{split}_segmentation"] = seg_rel
        summary.files[f"openimages_{split}_imagelabels"] = labels_rel
        summary.files[f"openimages_{split}_masks"] = f"openimages/{split}-masks"
        summary.files[f"openimages_{split}_images"] = f"openimages/{split}"
    write_csv(
        root / "oidv7-class-descriptions.csv",
        ["LabelName", "DisplayName"],
        sorted([c.openimages_mid, c.openimages_name] for c in with_mid),
    )
    seg_mids = sorted(c.openimages_mid for c in with_mid if c.openimages_segmentable)
    write_bytes(root / "classes-segmentation.txt", ("\n".join(seg_mids) + "\n").encode())
    summary.files["openimages_class_descriptions"] = "openimages/oidv7-class-descriptions.csv"
    summary.files["openimages_segmentation_classes"] = "openimages/classes-segmentation.txt"


def _clicks(
    r: np.random.Generator,
    mask: np.ndarray,
    bbox: tuple[float, float, float, float],
    w: int,
    h: int,
) -> str:
    """Open Images-style annotator clicks: ``x y 1`` inside the mask, ``x y 0`` outside."""
    x0, y0, bw, bh = bbox
    ys, xs = np.nonzero(mask)
    clicks = []
    for _ in range(int(r.integers(2, 5))):
        i = int(r.integers(len(xs)))
        clicks.append(f"{(xs[i] + 0.5) / w:.5f} {(ys[i] + 0.5) / h:.5f} 1")
    for _ in range(int(r.integers(0, 3))):
        cx = int(np.clip(x0 + r.uniform(0, bw), 0, w - 1))
        cy = int(np.clip(y0 + r.uniform(0, bh), 0, h - 1))
        if not mask[cy, cx]:
            clicks.append(f"{(cx + 0.5) / w:.5f} {(cy + 0.5) / h:.5f} 0")
    return ";".join(clicks)
