"""`avs-synth inspect`: a build's manifest and a few decoded samples; optionally into FiftyOne.

Works on a build folder (``manifest.json`` and ``*.tar``) or on shard files given directly.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import webdataset as wds

from avs_synth import schema

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SampleSummary:
    """One decoded triplet, in a few words."""

    shard: str
    key: str
    split: str
    audio_class: str
    category: str
    negative: bool
    source: str
    image_id: str
    image_size: tuple[int, int]
    mask_area_fraction: float
    audio_seconds: float
    vggsound_id: str
    window_start_s: float


@dataclass
class Inspection:
    """What :func:`inspect_shards` found.

    Args:
        manifest: the build's manifest (None when only shards were given).
        shards: the triplet shards, sorted.
        bank_shards: the audio-bank shards, sorted.
        samples: the first samples, decoded.
    """

    manifest: dict[str, Any] | None
    shards: list[Path]
    bank_shards: list[Path]
    samples: list[SampleSummary] = field(default_factory=list)


def find_shards(paths: Sequence[Path]) -> tuple[dict[str, Any] | None, list[Path], list[Path]]:
    """(manifest, triplet shards, bank shards) from build folders and / or ``.tar`` files."""
    manifest = None
    triplets: list[Path] = []
    bank: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            manifest_path = path / schema.MANIFEST_NAME
            if manifest_path.is_file():
                try:
                    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
                except (json.JSONDecodeError, UnicodeDecodeError) as error:
                    raise ValueError(f"{manifest_path}: malformed manifest: {error}") from None
            for split in schema.SPLITS:
                triplets += sorted(path.glob(f"{split}-[0-9]*.tar"))
            bank += sorted(path.glob(f"{schema.BANK}-[0-9]*.tar"))
        elif path.is_file() and path.suffix == ".tar":
            (bank if path.name.startswith(f"{schema.BANK}-") else triplets).append(path)
        else:
            raise FileNotFoundError(f"{path}: not a build folder or a .tar shard")
    if not triplets and not bank:
        raise FileNotFoundError(f"no shards found in {', '.join(str(p) for p in paths)}")
    return manifest, triplets, bank


def iter_triplets(shards: Sequence[Path]) -> Iterator[tuple[str, schema.DecodedTriplet]]:
    """(shard name, decoded triplet) for every sample of the shards, in order."""
    for shard in shards:
        for sample in wds.WebDataset(str(shard), shardshuffle=False):
            yield Path(sample["__url__"]).name, schema.decode_triplet(sample)


def _summary(shard: str, t: schema.DecodedTriplet) -> SampleSummary:
    m = t.meta
    return SampleSummary(
        shard=shard,
        key=t.key,
        split=m.split,
        audio_class=m.audio_class,
        category=m.category,
        negative=m.negative,
        source=m.source,
        image_id=m.image_id,
        image_size=t.image.size,
        mask_area_fraction=round(float(t.mask.mean()), 4),
        audio_seconds=round(len(t.audio) / m.audio.sample_rate, 4),
        vggsound_id=m.audio.vggsound_id,
        window_start_s=m.audio.window_start_s,
    )


def inspect_shards(paths: Sequence[Path], *, num_samples: int = 3) -> Inspection:
    """Read the manifest and decode the first ``num_samples`` triplets."""
    manifest, triplets, bank = find_shards(paths)
    inspection = Inspection(manifest=manifest, shards=triplets, bank_shards=bank)
    if num_samples > 0:
        for shard, triplet in iter_triplets(triplets):
            inspection.samples.append(_summary(shard, triplet))
            if len(inspection.samples) >= num_samples:
                break
    return inspection


def describe(inspection: Inspection) -> list[str]:
    """Human-readable lines: the manifest's counts, the shards, the decoded samples."""
    lines: list[str] = []
    m = inspection.manifest
    if m is not None:
        cmap = str(m.get("category_map", {}).get("sha256", "?"))[:12]
        lines.append(
            f"{m['tool']['name']} {m['tool']['version']}, seed {m['seed']}, "
            f"plan {m['plan']['plan_hash'][:12]}, category map {cmap}"
        )
        for split in schema.SPLITS:
            info = m["splits"][split]
            per_class = ", ".join(f"{k}: {v}" for k, v in info["per_category"].items())
            lines.append(
                f"{split}: {info['samples']} triplets ({info['negatives']} negatives) in "
                f"{len(info['shards'])} shards; {per_class or 'no classes'}"
            )
        lines.append(f"bank: {m['bank']['windows']} windows in {len(m['bank']['shards'])} shards")
    lines.append(
        f"{len(inspection.shards)} triplet shards, {len(inspection.bank_shards)} bank shards"
    )
    for s in inspection.samples:
        lines.append(
            f"- {s.key} [{s.split}] {s.audio_class!r} <- {s.category or '-'}"
            f"{' (negative)' if s.negative else ''}: {s.source} {s.image_id} "
            f"{s.image_size[0]}x{s.image_size[1]}, mask {s.mask_area_fraction:.1%}, "
            f"audio {s.audio_seconds:.3f} s from {s.vggsound_id} at {s.window_start_s} s"
        )
    return lines


def load_into_fiftyone(
    paths: Sequence[Path],
    *,
    export_dir: Path,
    dataset_name: str = "avs-synth",
    max_samples: int | None = None,
    overwrite: bool = True,
    persistent: bool = True,
):
    """Load triplets into a FiftyOne dataset for browsing.

    Pictures and audio windows are written to ``export_dir`` (FiftyOne shows files);
    the sounding mask is a ``ground_truth`` segmentation; split, audio class, categories, source
    and clip are sample fields, and the split is also a tag.

    Returns:
        the ``fiftyone.Dataset``.
    """
    import fiftyone as fo
    import numpy as np

    _, triplets, _ = find_shards(paths)
    export_dir = Path(export_dir)
    export_dir.mkdir(parents=True, exist_ok=True)
    dataset = fo.Dataset(dataset_name, overwrite=overwrite)
    batch = []
    for count, (shard, t) in enumerate(iter_triplets(triplets)):
        if max_samples is not None and count >= max_samples:
            break
        m = t.meta
        image_path = export_dir / f"{t.key}.jpg"
        t.image.save(image_path, format="JPEG", quality=95)
        audio_path = export_dir / f"{t.key}.flac"
        audio_path.write_bytes(schema.encode_audio(t.audio, m.audio.sample_rate))
        batch.append(
            fo.Sample(
                filepath=str(image_path),
                tags=[m.split],
                ground_truth=fo.Segmentation(mask=t.mask.astype(np.uint8)),
                key=t.key,
                shard=shard,
                split=m.split,
                audio_class=m.audio_class,
                category=m.category,
                negative=m.negative,
                source=m.source,
                image_id=m.image_id,
                mask_area_fraction=float(m.area_fraction),
                vggsound_id=m.audio.vggsound_id,
                window_start_s=float(m.audio.window_start_s),
                audio_path=str(audio_path),
                license=m.license,
                attribution=m.attribution,
            )
        )
    dataset.add_samples(batch)
    dataset.default_mask_targets = {1: "sounding"}
    dataset.persistent = persistent
    dataset.save()
    logger.info(
        "FiftyOne dataset %r: %d samples (files in %s)", dataset_name, len(batch), export_dir
    )
    return dataset
