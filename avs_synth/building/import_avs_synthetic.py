"""``avs-synth import avs-synthetic``: the paper's released AVS-Synthetic as this toolkit's shards.

Reads the release with :class:`avs_synth.sources.avs_synthetic.AVSSyntheticReader` and writes
what ``avs-synth build`` writes, so ``avs-train pretrain`` trains on the paper's own data:

- ``{train,val,test}-NNNNNN.tar``: one triplet per annotated instance (mask mode ``instance``:
  the instance's own mask, read with ``convert('1')`` as the authors' loader reads it), the
  picture's original JPEG bytes, and one audio window: VGGish example 1 of the wav (samples
  15,360 to 30,960 at 16 kHz), the stretch the authors' loader feeds the model. A val / test row
  has its own audio; a train row gets one drawn from its class with the seed (training then
  re-pairs it from the bank at every epoch, as the authors' loader draws a fresh audio per
  sample);
- ``bank-NNNNNN.tar``: that window of every usable audio, one class per shard;
- ``manifest.json`` (written last: a folder without it is not a finished import) and
  ``report.json``: rows and audios skipped by reason, and the audios excluded because their
  names carry an AVSBench YouTube id (unless kept on purpose).

The output is a pure function of the release, the options and the seed.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from avs_synth import __version__, schema
from avs_synth.audio.decode import AudioReadError, load_audio
from avs_synth.building.shard_writer import ShardWriter, file_sha256, write_atomic
from avs_synth.errors import DataFormatError
from avs_synth.masks import mask_box
from avs_synth.safe_paths import UnsafePathError
from avs_synth.seeded_order import seeded_key
from avs_synth.sources.avs_synthetic import AVSSyntheticReader, SyntheticInstance, youtube_id_of

logger = logging.getLogger(__name__)

EXAMPLE_HOP = 15_360  # VGGish examples start every 96 frames of 160 samples
EXAMPLE_LENGTH = 15_600  # one example: 95 hops + a 400-sample frame
EXAMPLE_INDEX = 1  # the example the authors' loader takes
WINDOW_START = EXAMPLE_INDEX * EXAMPLE_HOP
SAMPLE_RATE = schema.SAMPLE_RATE


@dataclass
class ImportReport:
    """What an import wrote and skipped.

    Attributes:
        out: the output folder.
        samples: triplets written per split.
        bank_windows: audio windows written per class.
        skipped: rows (``row:*``) and audios (``audio:*``) skipped, by reason.
        excluded: audio names left out because they carry an AVSBench YouTube id, and the
            rows that lost their audio with them.
    """

    out: Path
    samples: dict[str, int] = field(default_factory=dict)
    bank_windows: dict[str, int] = field(default_factory=dict)
    skipped: Counter[str] = field(default_factory=Counter)
    excluded: Counter[str] = field(default_factory=Counter)


def import_avs_synthetic(
    root: str | Path,
    out: str | Path,
    *,
    seed: int = 0,
    shard_size: int = 1000,
    bank_windows_per_shard: int = 500,
    is_excluded: Callable[[str], bool] = lambda youtube_id: False,
    exclusion_source: dict[str, Any] | None = None,
) -> ImportReport:
    """Convert the AVS-Synthetic folder ``root`` into shards under ``out`` (see the module
    docstring).

    Args:
        root: the release folder (``annotations.csv``, ``images/``, ``masks/``, ``audios/``,
            ``category_for_vggsound_audios.pkl``).
        out: a new or empty folder.
        seed: the draw of each train row's own audio.
        shard_size: triplets per shard.
        bank_windows_per_shard: windows per bank shard (a class may take several shards).
        is_excluded: YouTube id → True when its audio must not be used (AVSBench clips).
        exclusion_source: what the exclusion list is, recorded in the manifest.
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty: choose a new folder for the import")
    out.mkdir(parents=True, exist_ok=True)
    reader = AVSSyntheticReader(root)
    report = ImportReport(out=out)
    rows = reader.rows()
    for reason, count in reader.skipped.items():
        report.skipped[f"row:{reason}"] += count
    class_audios = reader.class_audios()
    names_of = _usable_names(class_audios, is_excluded, report)
    windows = _AudioWindows(reader, report)

    by_split: dict[str, list[SyntheticInstance]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: (r.split, r.instance_id, r.line)):
        by_split[row.split].append(row)
    split_shards: dict[str, list[dict[str, Any]]] = {}
    per_category: dict[str, Counter[str]] = {}
    for split in schema.SPLITS:
        samples = _triplets(
            by_split.get(split, []), reader, names_of, windows, seed, report, is_excluded
        )
        shards, per_category[split] = _write_shards(out, split, samples, shard_size)
        split_shards[split] = shards
        report.samples[split] = sum(s["samples"] for s in shards)
    class_names = _class_names(rows)
    bank = _write_bank(out, names_of, class_names, windows, bank_windows_per_shard, report)
    manifest = {
        "tool": {"name": "avs-synth", "version": __version__},
        "schema_version": schema.SCHEMA_VERSION,
        "seed": seed,
        "source": {
            "kind": "avs-synthetic",
            "root": str(Path(root)),
            "annotations_sha256": file_sha256(reader.annotations),
            "audio_window": {
                "example": EXAMPLE_INDEX,
                "start": WINDOW_START,
                "samples": EXAMPLE_LENGTH,
            },
        },
        "config": {"mask_mode": "instance", "shard_size": shard_size},
        "exclusions": {
            **(exclusion_source or {}),
            "audio_names_excluded": report.excluded["audio_names"],
            "rows_excluded": report.excluded["rows"],
        },
        "splits": {
            split: {
                "samples": report.samples[split],
                "positives": report.samples[split],
                "negatives": 0,
                "per_category": dict(sorted(per_category[split].items())),
                "shards": split_shards[split],
            }
            for split in schema.SPLITS
        },
        "bank": {
            "windows": sum(report.bank_windows.values()),
            "per_category": dict(sorted(report.bank_windows.items())),
            "shards": bank,
        },
    }
    write_atomic(
        out / schema.REPORT_NAME,
        schema.encode_json(
            {"skipped": dict(sorted(report.skipped.items())), "excluded": dict(report.excluded)}
        ),
    )
    write_atomic(out / schema.MANIFEST_NAME, schema.encode_json(manifest))
    logger.info(
        "imported AVS-Synthetic: %s triplets, %d bank windows; skipped %s; excluded %s",
        report.samples,
        sum(report.bank_windows.values()),
        dict(report.skipped) or "none",
        dict(report.excluded) or "none",
    )
    return report


def _usable_names(
    class_audios: dict[int, list[str]], is_excluded: Callable[[str], bool], report: ImportReport
) -> dict[int, list[str]]:
    """Each class's audio names, AVSBench clips left out (counted), sorted and unique."""
    out = {}
    for class_id, names in sorted(class_audios.items()):
        kept = []
        for name in sorted(set(names)):
            youtube_id = youtube_id_of(name)
            if youtube_id is not None and is_excluded(youtube_id):
                report.excluded["audio_names"] += 1
                continue
            kept.append(name)
        out[class_id] = kept
    return out


class _AudioWindows:
    """Example 1 of each audio, FLAC-encoded, decoded once; None for an unusable file (the
    reason counted once per file)."""

    def __init__(self, reader: AVSSyntheticReader, report: ImportReport) -> None:
        self.reader = reader
        self.report = report
        self.cache: dict[str, tuple[bytes, float] | None] = {}

    def get(self, name: str) -> tuple[bytes, float] | None:
        if name not in self.cache:
            self.cache[name] = self._read(name)
        return self.cache[name]

    def _read(self, name: str) -> tuple[bytes, float] | None:
        try:
            path = self.reader.audio_path(name)
            samples = load_audio(path, sample_rate=SAMPLE_RATE)
        except (FileNotFoundError, AudioReadError, DataFormatError) as error:
            self._skip("audio:unreadable", f"{name}: {error}")
            return None
        window = samples[WINDOW_START : WINDOW_START + EXAMPLE_LENGTH]
        if len(window) < EXAMPLE_LENGTH:
            self._skip("audio:too_short", f"{path}: {len(samples)} samples, need 30,960")
            return None
        if not np.all(np.isfinite(window)):
            self._skip("audio:not_finite", f"{path}: NaN or infinite samples")
            return None
        rms = float(np.sqrt(np.mean(np.square(window, dtype=np.float64))))
        return schema.encode_audio(window), 20 * np.log10(max(rms, 1e-10))

    def _skip(self, reason: str, detail: str) -> None:
        if not self.report.skipped[reason]:
            logger.warning("%s (skipped; more of the kind are counted)", detail)
        self.report.skipped[reason] += 1


def _audio_meta(name: str, class_name: str, rms_dbfs: float) -> schema.AudioWindowMeta:
    youtube_id = youtube_id_of(name) or ""
    start = name[len(youtube_id) + 1 :].split("_", 1)[0] if youtube_id else ""
    return schema.AudioWindowMeta(
        vggsound_id=name,
        youtube_id=youtube_id,
        start_seconds=int(start) if start.isdigit() else 0,
        label=class_name,
        vggsound_split="unknown",
        window_start_s=WINDOW_START / SAMPLE_RATE,
        window_s=EXAMPLE_LENGTH / SAMPLE_RATE,
        sample_rate=SAMPLE_RATE,
        num_samples=EXAMPLE_LENGTH,
        policy=f"avs-synthetic-example-{EXAMPLE_INDEX}",
        rms_dbfs=round(rms_dbfs, 3),
    )


def _triplets(
    rows: Sequence[SyntheticInstance],
    reader: AVSSyntheticReader,
    names_of: dict[int, list[str]],
    windows: _AudioWindows,
    seed: int,
    report: ImportReport,
    is_excluded: Callable[[str], bool],
) -> Iterable[tuple[str, dict[str, bytes], str] | None]:
    """``(key, members, category)`` per usable row, in order (None for a skipped row)."""
    seen: set[str] = set()
    for row in rows:
        if row.instance_id in seen:
            report.skipped["row:duplicate_instance_id"] += 1
            yield None
            continue
        seen.add(row.instance_id)
        if row.audio_name is not None:
            name = row.audio_name
            youtube_id = youtube_id_of(name)
            if youtube_id is not None and is_excluded(youtube_id):
                report.excluded["rows"] += 1  # its own audio is an AVSBench clip
                yield None
                continue
        else:
            choices = names_of.get(row.class_id, [])
            if not choices:
                report.skipped["row:no_audio_for_class"] += 1
                yield None
                continue
            name = choices[seeded_key(seed, "avs-synthetic-audio", row.instance_id) % len(choices)]
        audio = windows.get(name)
        if audio is None:
            report.skipped["row:audio_unusable"] += 1
            yield None
            continue
        try:
            yield _triplet(row, reader, name, audio)
        except DataFormatError as error:
            reason = "unsafe_path" if isinstance(error, UnsafePathError) else error.message
            reason = reason.split(":", 1)[0].replace(" ", "_")
            if not report.skipped[f"row:{reason}"]:
                logger.warning("%s (row skipped; more of the kind are counted)", error)
            report.skipped[f"row:{reason}"] += 1
            yield None


def _triplet(
    row: SyntheticInstance, reader: AVSSyntheticReader, audio_name: str, audio: tuple[bytes, float]
) -> tuple[str, dict[str, bytes], str]:
    image_path = reader.image_path(row)
    try:
        jpeg = image_path.read_bytes()
        with Image.open(image_path) as image:
            image.verify()
        with Image.open(image_path) as image:
            width, height = image.size
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise DataFormatError(image_path, f"unreadable picture: {error}") from None
    mask = reader.read_mask(row)
    if mask.shape != (height, width):
        raise DataFormatError(
            reader.mask_path(row),
            f"mask size: {mask.shape[::-1]} differs from the picture's {(width, height)}",
        )
    area = int(mask.sum())
    bbox = mask_box(mask)
    key = schema.safe_key_part(f"avss-{row.instance_id}")
    flac, rms_dbfs = audio
    meta = schema.TripletMeta(
        key=key,
        split=row.split,
        audio_class=row.class_name,
        negative=False,
        mask_mode="instance",
        categories=(
            schema.VisualCategoryRef(
                source=row.source_dataset, id=str(row.class_id), name=row.class_name
            ),
        ),
        source="avs-synthetic",
        image_id=row.image_id,
        image_file=f"images/{row.image_id}.jpg",
        width=width,
        height=height,
        original_width=width,
        original_height=height,
        image_reencoded=False,
        instance_ids=(row.instance_id,),
        instances=(
            schema.InstanceRef(
                id=row.instance_id,
                category_id=str(row.class_id),
                bbox=tuple(float(v) for v in (bbox or (0, 0, 0, 0))),
                area=float(area),
            ),
        ),
        bbox=bbox,
        area=area,
        area_fraction=round(area / float(width * height), 6),
        audio=_audio_meta(audio_name, row.class_name, rms_dbfs),
    )
    members = {
        schema.IMAGE: jpeg,
        schema.MASK: schema.encode_mask(mask),
        schema.AUDIO: flac,
        schema.META: schema.encode_meta(meta),
    }
    return key, members, row.class_name


def _class_names(rows: Sequence[SyntheticInstance]) -> dict[int, str]:
    """Class id → the name its rows give (the most common one, should rows disagree)."""
    names: dict[int, Counter[str]] = defaultdict(Counter)
    for row in rows:
        names[row.class_id][row.class_name] += 1
    return {class_id: counts.most_common(1)[0][0] for class_id, counts in names.items()}


def _write_shards(
    out: Path,
    split: str,
    samples: Iterable[tuple[str, dict[str, bytes], str] | None],
    shard_size: int,
    members: Sequence[str] = schema.TRIPLET_MEMBERS,
) -> tuple[list[dict[str, Any]], Counter[str]]:
    """Write ``samples`` (None ones skipped) into ``{split}-NNNNNN.tar`` shards of
    ``shard_size``; the shards' manifest entries and the samples per category."""
    shards: list[dict[str, Any]] = []
    per_category: Counter[str] = Counter()
    batch: list[tuple[str, dict[str, bytes], str]] = []

    def flush() -> None:
        if not batch:
            return
        path = out / schema.shard_name(split, len(shards))
        with ShardWriter(path=path, member_order=members) as writer:
            for key, data, category in batch:
                writer.write(key, data)
                per_category[category] += 1
        shards.append(
            {
                "name": path.name,
                "samples": writer.count,
                "sha256": writer.sha256,
                "bytes": writer.size,
                "audio_class": batch[0][2],
            }
        )
        batch.clear()

    for sample in samples:
        if sample is None:
            continue
        if split == schema.BANK and batch and batch[-1][2] != sample[2]:
            flush()  # one audio class per bank shard
        batch.append(sample)
        if len(batch) >= shard_size:
            flush()
    flush()
    if split != schema.BANK:
        for shard in shards:
            del shard["audio_class"]
    return shards, per_category


def _write_bank(
    out: Path,
    names_of: dict[int, list[str]],
    class_names: dict[int, str],
    windows: _AudioWindows,
    per_shard: int,
    report: ImportReport,
) -> list[dict[str, Any]]:
    """Every usable audio's window, grouped by class (one class per shard)."""

    def samples() -> Iterable[tuple[str, dict[str, bytes], str] | None]:
        for class_id in sorted(class_names):
            audio_class = class_names[class_id]
            for name in names_of.get(class_id, []):
                audio = windows.get(name)
                if audio is None:
                    continue
                flac, rms_dbfs = audio
                key = schema.safe_key_part(f"avss-{class_id}-{name}")
                meta = schema.BankWindowMeta(
                    key=key, audio_class=audio_class, audio=_audio_meta(name, audio_class, rms_dbfs)
                )
                report.bank_windows[audio_class] = report.bank_windows.get(audio_class, 0) + 1
                yield key, {schema.AUDIO: flac, schema.META: schema.encode_meta(meta)}, audio_class

    shards, _ = _write_shards(out, schema.BANK, samples(), per_shard, schema.BANK_MEMBERS)
    for shard in shards:
        shard["windows"] = shard.pop("samples")
    return shards
