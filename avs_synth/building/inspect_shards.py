"""`avs-synth inspect`: a build's manifest and a few decoded samples, as text, as a static HTML
page (:func:`write_inspect_page`), or in FiftyOne.

Works on a build folder (``manifest.json`` and ``*.tar``) or on shard files given directly.
Shards are read strictly (:func:`iter_triplets`): a corrupt or truncated tar, or a sample that does
not decode, is skipped and reported by name (``shard[member]: reason``), never a traceback.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from avs_synth import schema
from avs_synth.building.manifest_text import describe_manifest
from avs_synth.overlay import MASK_COLOR, mask_overlay
from avs_synth.pages import PageFilter, PageItem, PageWriter

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
    kind: str = "positive"
    sources: tuple[str, ...] = ()
    frames: int = 1
    silent_frames: tuple[int, ...] = ()
    clip_event: str | None = None


@dataclass
class Inspection:
    """What :func:`inspect_shards` found.

    Args:
        manifest: the build's manifest (None when only shards were given).
        shards: the triplet shards, sorted.
        bank_shards: the audio-bank shards, sorted.
        samples: the first samples, decoded.
        problems: the shards and samples that could not be read (``shard[member]: reason``).
    """

    manifest: dict[str, Any] | None
    shards: list[Path]
    bank_shards: list[Path]
    samples: list[SampleSummary] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


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


class ShardReadError(ValueError):
    """A shard that is not a readable tar (``str()`` names the shard and, where known, the
    member)."""


_TAR_END = 1024  # a tar ends with two 512-byte zero blocks


def iter_samples(shard: Path) -> Iterator[dict[str, Any]]:
    """The samples of one shard as WebDataset groups them (``__key__``, ``__url__`` and each
    member's bytes by extension), read strictly.

    Raises:
        ShardReadError: not a tar, a damaged header, or a truncated file (after the samples
            before the damage were yielded).
    """
    shard = Path(shard)
    current: dict[str, Any] | None = None
    member_name: str | None = None
    try:
        size = os.path.getsize(shard)
        with tarfile.open(shard, mode="r:") as tar:
            for member in tar:
                member_name = member.name
                if not member.isfile():
                    continue
                base = member.name.rsplit("/", 1)[-1]
                key, dot, extension = base.partition(".")
                if not dot or not key:
                    raise ShardReadError(f"{shard}[{member.name}]: not a KEY.EXTENSION member")
                handle = tar.extractfile(member)
                data = handle.read() if handle is not None else b""
                if len(data) != member.size:
                    raise ShardReadError(f"{shard}[{member.name}]: truncated")
                if current is not None and current[schema.KEY] != key:
                    yield current
                    current = None
                if current is None:
                    current = {schema.KEY: key, "__url__": str(shard)}
                current[extension] = data
            if size < tar.offset + _TAR_END:
                raise ShardReadError(f"{shard}: truncated (no end-of-archive blocks)")
    except (tarfile.TarError, OSError, EOFError) as error:
        where = f"{shard}[{member_name}]" if member_name else str(shard)
        if "unexpected end of data" in str(error):
            raise ShardReadError(f"{where}: truncated tar") from None
        raise ShardReadError(f"{where}: unreadable tar ({error})") from None
    if current is not None:
        yield current


_DECODE_ERRORS = (KeyError, ValueError, TypeError, OSError, RuntimeError, json.JSONDecodeError)


def iter_triplets(
    shards: Sequence[Path], *, problems: list[str] | None = None
) -> Iterator[tuple[str, schema.DecodedTriplet]]:
    """(shard name, decoded triplet) for every readable sample of the shards, in order.

    Args:
        shards: the shard files.
        problems: receives one line per unreadable shard or sample (``shard[key]: reason``);
            without it, the first problem is raised as :class:`ShardReadError`.
    """
    for shard in shards:
        samples = iter_samples(Path(shard))
        while True:
            try:
                sample = next(samples)
            except StopIteration:
                break
            except ShardReadError as error:
                if problems is None:
                    raise
                problems.append(str(error))
                break
            try:
                triplet = schema.decode_triplet(sample)
            except _DECODE_ERRORS as error:
                message = f"{shard}[{sample[schema.KEY]}]: sample does not decode ({error})"
                if problems is None:
                    raise ShardReadError(message) from None
                problems.append(message)
                continue
            yield Path(shard).name, triplet


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
        kind=m.kind,
        sources=tuple(src.audio_class for src in m.sources or ()),
        frames=m.clip.frames if m.clip else 1,
        silent_frames=m.clip.silent_frames if m.clip else (),
        clip_event=m.clip.event if m.clip else None,
    )


def inspect_shards(paths: Sequence[Path], *, num_samples: int = 3) -> Inspection:
    """Read the manifest and decode the first ``num_samples`` triplets."""
    manifest, triplets, bank = find_shards(paths)
    inspection = Inspection(manifest=manifest, shards=triplets, bank_shards=bank)
    if num_samples > 0:
        for shard, triplet in iter_triplets(triplets, problems=inspection.problems):
            inspection.samples.append(_summary(shard, triplet))
            if len(inspection.samples) >= num_samples:
                break
    return inspection


def describe(inspection: Inspection) -> list[str]:
    """Human-readable lines: the manifest's counts, the shards, the decoded samples, and what
    could not be read."""
    lines = describe_manifest(inspection.manifest)
    lines.append(
        f"{len(inspection.shards)} triplet shards, {len(inspection.bank_shards)} bank shards"
    )
    for s in inspection.samples:
        sounding = " + ".join(repr(c) for c in s.sources) if s.sources else repr(s.audio_class)
        lines.append(
            f"- {s.key} [{s.split}] {sounding} <- {s.category or '-'}"
            f"{f' (negative: {s.kind})' if s.negative else ''}: {s.source} {s.image_id} "
            f"{s.image_size[0]}x{s.image_size[1]}, mask {s.mask_area_fraction:.1%}, "
            f"audio {s.audio_seconds:.3f} s "
            + (f"from {s.vggsound_id} at {s.window_start_s} s" if s.vggsound_id else "synthesized")
            + _clip_words(s)
        )
    lines += [f"unreadable: {problem}" for problem in inspection.problems]
    return lines


def _clip_words(s: SampleSummary) -> str:
    """``; clip of 5 frames, silent 0, 1 (onset)`` for a clip, nothing for a still."""
    if s.frames == 1:
        return ""
    if s.negative:
        return f"; clip of {s.frames} frames"
    silent = ", ".join(str(t) for t in s.silent_frames)
    return f"; clip of {s.frames} frames" + (
        f", silent {silent} ({s.clip_event})" if silent else ", sounding throughout"
    )


# --- the HTML page -------------------------------------------------------------------------------

_YOUTUBE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
PAGE_FILTERS = (
    PageFilter("split", "split"),
    PageFilter("category", "category"),
    PageFilter("kind", "kind"),
)


@dataclass
class PageReport:
    """What :func:`write_inspect_page` wrote.

    Args:
        index: the page's ``index.html``.
        per_split: triplets shown per split.
        problems: shards and samples that could not be read (``shard[member]: reason``).
    """

    index: Path
    per_split: dict[str, int]
    problems: list[str]


def _youtube_link(audio: schema.AudioWindowMeta) -> tuple[str, str] | None:
    if not _YOUTUBE_ID.match(audio.youtube_id):
        return None
    start = int(audio.start_seconds + math.floor(audio.window_start_s))
    url = f"https://www.youtube.com/watch?v={audio.youtube_id}&t={start}s"
    return (f"YouTube {audio.youtube_id} at {start} s", url)


def triplet_card(page: PageWriter, shard: str, t: schema.DecodedTriplet) -> PageItem:
    """The page card of one triplet: picture with its mask, audio window, label, split, negative
    or not, and provenance (dataset, image id, licence, VGGSound clip and window)."""
    m = t.meta
    a = m.audio
    facts = [
        ("split", m.split),
        ("sounding class", m.audio_class),
        ("visual category", m.category or "none"),
        ("negative", _NEGATIVE_FACTS.get(m.kind, "no") if m.negative else "no"),
        ("mask", f"{m.area_fraction:.1%} of {m.width}x{m.height}"),
        ("picture", f"{m.source} image {m.image_id} ({m.image_file})"),
        ("licence", m.license or "not given by the source"),
        (
            ("audio", f"VGGSound {a.vggsound_id} ({a.vggsound_split}), {a.label}")
            if a.vggsound_id
            else ("audio", f"synthesized {a.label}, no clip")
        ),
        (
            "window",
            (
                f"{a.window_start_s:g}-{a.window_start_s + a.window_s:g} s of the clip "
                if a.vggsound_id
                else f"{a.window_s:g} s "
            )
            + f"({a.policy}, {a.rms_dbfs:.1f} dBFS)",
        ),
        *([("audibility", f"{m.audibility:.3f}")] if m.audibility is not None else []),
        *(
            [("tagger probability", f"{m.tagger_probability:.3f}")]
            if m.tagger_probability is not None
            else []
        ),
        *_source_facts(m),
        *(
            [("crop", f"{m.crop[2]}x{m.crop[3]} at ({m.crop[0]}, {m.crop[1]}) of the source")]
            if m.crop is not None
            else []
        ),
        ("sample", f"{shard} / {t.key}"),
    ]
    links = []
    youtube = _youtube_link(a)
    if youtube is not None:
        links.append(youtube)
    if m.attribution:
        links.append(("picture source", m.attribution))
    if m.clip is not None:
        facts[-1:-1] = _clip_facts(m.clip, negative=m.negative)
    return PageItem(
        title=f"{m.audio_class} ← {m.category or 'nothing'}",
        picture=page.picture(_shown(t, with_mask=True)),
        plain_picture=page.picture(_shown(t, with_mask=False)),
        audio=page.audio(t.audio, a.sample_rate),
        facts=tuple(facts),
        links=tuple(links),
        filters=(
            ("split", m.split),
            ("category", m.audio_class),
            ("kind", m.kind),
        ),
        badge=f"negative: {m.kind}" if m.negative else None,
    )


def _shown(t: schema.DecodedTriplet, *, with_mask: bool) -> Image.Image:
    """The picture with (or without) its mask; a clip's frames side by side, each captioned with
    its number (``t`` of its ``KEY.{t}.jpg`` member), silent ones marked ``silent``."""
    if not t.frames:
        return mask_overlay(t.image, t.mask if with_mask else None, max_side=480)
    assert t.meta.clip is not None
    tiles = [
        mask_overlay(
            frame,
            mask if with_mask else None,
            caption=f"{n}{' silent' if quiet else ''}",
            max_side=240,
        )
        for n, (frame, mask, quiet) in enumerate(
            zip(t.frames, t.frame_masks, t.meta.clip.silent, strict=True)
        )
    ]
    gap = 4
    strip = Image.new(
        "RGB",
        (sum(tile.width for tile in tiles) + gap * (len(tiles) - 1), max(x.height for x in tiles)),
        (255, 255, 255),
    )
    x = 0
    for tile in tiles:
        strip.paste(tile, (x, 0))
        x += tile.width + gap
    return strip


def _clip_facts(clip: schema.ClipMeta, *, negative: bool) -> list[tuple[str, str]]:
    """A clip's frames, path, silent frames (a positive's) and per-frame levels."""
    silent = ", ".join(str(t) for t in clip.silent_frames)
    return [
        ("clip", f"{clip.frames} frames of {clip.frame_s:g} s, {clip.path} pan / zoom"),
        *(
            []
            if negative
            else [
                (
                    "silent frames",
                    f"{silent} ({clip.event}; audio {clip.silence}, masks empty)"
                    if silent
                    else "none: the source sounds throughout",
                )
            ]
        ),
        ("frame crops", "; ".join(f"{w}x{h} at ({x}, {y})" for x, y, w, h in clip.boxes)),
        ("frame levels", ", ".join(f"{v:.1f}" for v in clip.rms_dbfs) + " dBFS"),
    ]


def _source_facts(m: schema.TripletMeta) -> list[tuple[str, str]]:
    """A multi-source triplet's sources (gain, pan, clip) and its silent categories."""
    if not m.sources:
        return []
    facts = [
        (
            f"source {n}",
            f"{src.audio_class} ({src.audio.vggsound_id} at {src.audio.window_start_s:g} s, "
            f"{src.gain_db:+.2f} dB"
            + (f", pan {src.pan:.2f}" if src.pan is not None else "")
            + ")",
        )
        for n, src in enumerate(m.sources, start=1)
    ]
    silent = ", ".join(c.name for c in m.silent_categories or ()) or "none"
    return [*facts, ("silent in the picture", silent)]


_NEGATIVE_FACTS = {
    "absent": "yes (absent): the class is verified absent, the mask is empty",
    "offscreen": "yes (offscreen): a verified-absent class of another group, the mask is empty",
    "silence": "yes (silence): nothing sounds, the mask is empty",
    "noise": "yes (noise): noise of no class, the mask is empty",
}


def write_inspect_page(paths: Sequence[Path], out_dir: Path, *, per_split: int = 50) -> PageReport:
    """A static page of the first ``per_split`` triplets of each split (the shards' order is
    already a seeded shuffle, so these are a random sample), filterable by split, category
    (the sounding VGGSound class) and kind (positive or the negative's kind: absent, silence,
    noise, offscreen).

    Args:
        paths: build folders or shard files.
        out_dir: the page's folder (``index.html`` and ``media/``).
        per_split: triplets shown per split.
    """
    manifest, triplets, _ = find_shards(paths)
    problems: list[str] = []
    counts = {split: 0 for split in schema.SPLITS}
    summary = describe_manifest(manifest)
    summary.append(
        f"The first {per_split} triplets of each split (a seeded shuffle). Sounding mask in red; "
        "point at a picture to see it without the mask."
    )
    title = f"avs-synth triplets: {', '.join(str(p) for p in paths)}"
    groups = [[s for s in triplets if s.name.startswith(f"{split}-")] for split in schema.SPLITS]
    groups.append([s for s in triplets if not any(s in group for group in groups)])
    legend = ((MASK_COLOR, "sounding mask"),)
    with PageWriter(
        out_dir, title=title, filters=PAGE_FILTERS, summary=summary, legend=legend
    ) as page:
        for shards in groups:
            for shard, triplet in iter_triplets(shards, problems=problems):
                split = triplet.meta.split
                if counts.get(split, per_split) < per_split:
                    page.add(triplet_card(page, shard, triplet))
                    counts[split] += 1
                if all(counts[s] >= per_split for s in schema.SPLITS) or (
                    shards is not groups[-1] and counts.get(split, 0) >= per_split
                ):
                    break
    return PageReport(index=out_dir / "index.html", per_split=counts, problems=problems)


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
    problems: list[str] = []
    for count, (shard, t) in enumerate(iter_triplets(triplets, problems=problems)):
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
                negative_kind=m.kind if m.negative else None,
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
    for problem in problems:
        logger.warning("unreadable: %s", problem)
    dataset.add_samples(batch)
    dataset.default_mask_targets = {1: "sounding"}
    dataset.persistent = persistent
    dataset.save()
    logger.info(
        "FiftyOne dataset %r: %d samples (files in %s)", dataset_name, len(batch), export_dir
    )
    return dataset
