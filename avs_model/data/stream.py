"""Streaming the synthetic shards: a flat list of named WebDataset stages.

Training (:func:`train_pipeline`)::

    resampled_shards      ResampledShards over the train shards, seeded per rank and worker
                          (every rank and worker streams its own draw of shards)
    tar_samples           tarfile_to_samples, warn-and-continue
    shuffle               a seeded shuffle buffer
    decode                avs_synth.schema decoders -> picture, mask, audio, metadata (and
                          with ``class_maps`` the classes.png label map, None where absent)
    repair_audio          a fresh bank window of the sample's audio class
                          (avs_model.data.audio_bank; with ``remix_audio`` multi-source
                          mixes re-mixed from fresh windows of their classes)
    audio_example         audio -> one VGGish log-mel example [1, 96, 64] (random offset)
    augment               joint picture / mask augmentation and resizing -> [FrameSample]
    batch                 collate_frames (padding to the batch's largest picture)
    .with_epoch(n)        n batches per worker make one epoch

Evaluation (:func:`eval_pipeline`) reads a split once: ``shard_list`` (no resampling), optional
``split_by_node``, ``split_by_worker``, ``tar_samples``, ``decode``, ``audio_example`` (offset 0),
``resize`` (no augmentation; the full-resolution mask is kept for scoring at GT resolution),
``batch``.

Clips (builds with ``--frames N``; :mod:`avs_synth.schema`) go through the same stages:
``decode`` gives their N frames and masks, ``audio_example`` one example per frame (example
``t`` taken inside frame ``t``'s own audio stretch, so a silent frame's example is silent), and
``augment`` / ``resize`` one FrameSample per frame with one augmentation draw for the clip, so a
batch holds B x N frames with ``frames_per_sample`` N: the layout of the AVSBench S4 loader
(:class:`avs_model.data.avsbench_dataset.AVSBenchDataset`: ``[B * 5, 3, H, W]`` frames, ``[B * 5,
H, W]`` masks, ``[B * 5, 1, 96, 64]`` audio). A clip keeps its own audio (its silent frames are
labels): re-pairing is refused for clip shards.

Shard locations (:func:`resolve_shards`): a local folder holding ``manifest.json`` and the
``{split}-{index:06d}.tar`` / ``bank-*.tar`` shards, or anything WebDataset opens (``https://``,
``pipe:``): a location containing ``{name}`` is a template (``"pipe:aws s3 cp
s3://bucket/avs/{name} -"``), any other is a prefix to which ``/{name}`` is appended. Remote
locations must have a ``manifest.json``, which lists the shards.

Why this module is long: the stream is one flat list of named stages (STYLE 7), so the stages,
the two pipelines that list them and the shard locations they read stay side by side in one
module (each stage a small function or class; the optional ones, such as the class maps, beside
the stage they extend).
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import webdataset as wds
from torch.utils.data import DataLoader

from avs_model.data.audio_bank import AudioRepairing, decode_window
from avs_model.data.augment import AugmentConfig, JointTransform, ResizeConfig
from avs_model.data.clip_samples import clip_examples, clip_frame_samples, decode_clip_sample
from avs_model.data.frame_batch import FrameSample, collate_frames
from avs_synth import schema
from avs_synth.audio.logmel import EXAMPLE_SAMPLES, LogMelFrontend, log_mel_to_examples
from avs_synth.seeded_order import seeded_key

logger = logging.getLogger(__name__)


# --- shard locations ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShardSet:
    """The shards of one synthetic dataset.

    Attributes:
        location: what the user gave.
        splits: split name → shard URLs (``train``, ``val``, ``test``).
        bank: the audio-bank shard URLs.
        manifest: the parsed ``manifest.json`` (empty when a local folder has none).
        bank_classes: bank shard URL → its audio class (from the manifest; empty without one).
    """

    location: str
    splits: dict[str, list[str]]
    bank: list[str]
    manifest: dict[str, Any] = field(default_factory=dict)
    bank_classes: dict[str, str] = field(default_factory=dict)

    def urls(self, split: str) -> list[str]:
        """The shards of ``split``; an error naming the location when there are none."""
        urls = self.splits.get(split, [])
        if not urls:
            raise FileNotFoundError(f"{self.location}: no {split} shards ({split}-*.tar)")
        return urls

    def num_samples(self, split: str) -> int | None:
        """The split's sample count from the manifest (None without a manifest)."""
        try:
            return int(self.manifest["splits"][split]["samples"])
        except (KeyError, TypeError, ValueError):
            return None

    def class_table(self) -> list[str] | None:
        """The labels of the class maps' index table (``audio_classes`` in index order) when
        the shards were built with ``--class-masks``; None otherwise, and for clips (``--frames``
        above 1), whose per-frame label maps the class head does not read: it trains on stills."""
        m = self.manifest
        if not isinstance(m.get("config"), dict) or "class_masks" not in m["config"]:
            return None
        if m["config"].get("clips"):
            return None
        return self.audio_class_labels()

    def audio_class_labels(self) -> list[str] | None:
        """The manifest's ``audio_classes`` labels in index order (every build has them; the
        audio-tagging head's table), None for shards without a manifest or the list."""
        entries = self.manifest.get("audio_classes")
        if entries is None:
            return None
        where = f"{self.location}/{schema.MANIFEST_NAME}"
        if not isinstance(entries, list) or not all(
            isinstance(e, dict) and isinstance(e.get("label"), str) for e in entries
        ):
            raise ValueError(f"{where}: malformed audio_classes (a list of {{label, index}})")
        if [e.get("index") for e in entries] != list(range(len(entries))):
            raise ValueError(f"{where}: audio_classes indices are not 0, 1, 2, ... in order")
        return [e["label"] for e in entries]

    def data_versions(self) -> dict[str, Any]:
        """What a checkpoint records about the data it was trained on."""
        m = self.manifest
        shards = [
            s.get("sha256", "")
            for split in schema.SPLITS
            for s in m.get("splits", {}).get(split, {}).get("shards", [])
        ]
        return {
            "kind": "synthetic",
            "location": self.location,
            "tool": m.get("tool"),
            "schema_version": m.get("schema_version"),
            "seed": m.get("seed"),
            "category_map": m.get("category_map", {}).get("sha256")
            if isinstance(m.get("category_map"), dict)
            else None,
            "shards_sha256": _digest(shards) if shards else None,
            "samples": {s: self.num_samples(s) for s in schema.SPLITS},
        }


def _digest(items: Sequence[str]) -> str:
    import hashlib

    return hashlib.sha256("\n".join(items).encode()).hexdigest()


def _join(location: str, name: str) -> str:
    if "{name}" in location:
        return location.replace("{name}", name)
    return location.rstrip("/") + "/" + name


def resolve_shards(location: str | Path) -> ShardSet:
    """Find the shards (and read the manifest) at ``location`` (see the module docstring)."""
    text = str(location)
    local = Path(text)
    if "{name}" not in text and "://" not in text and not text.startswith("pipe:"):
        if not local.is_dir():
            raise FileNotFoundError(f"{local}: shard folder not found")
        manifest_path = local / schema.MANIFEST_NAME
        manifest: dict[str, Any] = {}
        if manifest_path.is_file():
            try:
                manifest = json.loads(manifest_path.read_text(encoding="utf-8-sig"))
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                raise ValueError(f"{manifest_path}: malformed JSON: {error}") from None
            _check_manifest(manifest, str(manifest_path))
        splits = {split: _local_shards(local, split) for split in schema.SPLITS}
        bank = _local_shards(local, schema.BANK)
        if not any(splits.values()):
            raise FileNotFoundError(f"{local}: no shards (train-*.tar, val-*.tar, test-*.tar)")
        return ShardSet(
            location=text,
            splits=splits,
            bank=bank,
            manifest=manifest,
            bank_classes=_bank_classes(manifest, lambda name: str(local / name))
            if manifest
            else {},
        )
    manifest_url = _join(text, schema.MANIFEST_NAME)
    try:
        with wds.gopen(manifest_url, "rb") as stream:
            manifest = json.loads(stream.read().decode("utf-8-sig"))
    except Exception as error:
        raise FileNotFoundError(f"{manifest_url}: cannot read the manifest: {error}") from None
    _check_manifest(manifest, manifest_url)
    splits = {
        split: [_join(text, s["name"]) for s in _listed(manifest["splits"].get(split, {}))]
        for split in schema.SPLITS
    }
    bank = [_join(text, s["name"]) for s in _listed(manifest["bank"])]
    return ShardSet(
        location=text,
        splits=splits,
        bank=bank,
        manifest=manifest,
        bank_classes=_bank_classes(manifest, lambda name: _join(text, name)),
    )


def _local_shards(folder: Path, split: str) -> list[str]:
    """The shards of ``split`` in a folder: only names a build writes (others are ignored)."""
    return [
        str(p)
        for p in sorted(folder.glob(f"{split}-[0-9]*.tar"))
        if schema.SHARD_NAME.fullmatch(p.name)
    ]


def _check_manifest(manifest: Any, where: str) -> None:
    """Refuse a manifest whose shard listings are not what a build writes (names included);
    absent sections become empty ones, so later reads need no checks."""
    if not isinstance(manifest, dict):
        raise ValueError(f"{where}: the manifest is not a JSON object")
    for section in ("splits", "bank"):
        manifest.setdefault(section, {})
        if not isinstance(manifest[section], dict):
            raise ValueError(f"{where}: {section!r} in the manifest is not an object")
    sections = [manifest["bank"], *(manifest["splits"].get(s, {}) for s in schema.SPLITS)]
    for section in sections:
        shards = section.get("shards", []) if isinstance(section, dict) else None
        if not isinstance(shards, list) or not all(isinstance(s, dict) for s in shards):
            raise ValueError(f"{where}: malformed shard list in the manifest")
        for shard in shards:
            schema.check_shard_name(shard.get("name"), where=where)


def _listed(section: dict[str, Any]) -> list[dict[str, Any]]:
    """A checked manifest section's shard entries."""
    return section.get("shards", [])


def _bank_classes(manifest: dict[str, Any], url_of) -> dict[str, str]:
    """Bank shard URL → audio class, from a checked manifest's bank listing."""
    return {
        url_of(shard["name"]): str(shard["audio_class"])
        for shard in _listed(manifest["bank"])
        if "audio_class" in shard
    }


# --- stages ---------------------------------------------------------------------------------------


class StreamError(ValueError):
    """A stream that gives up: too many consecutive samples or shards could not be read.

    Raised in a DataLoader worker, it reaches the main process with the worker's traceback in its
    message; only the last line, the error itself, is kept, so the user sees one line.
    """

    def __init__(self, message: str) -> None:
        if "Original Traceback" in message:  # re-raised by torch from a DataLoader worker
            last = message.strip().splitlines()[-1]
            message = last.split(f"{type(self).__name__}: ", 1)[-1]
        super().__init__(message)


class SkipHandler:
    """WebDataset handler: log a bad sample or shard, count it, and continue; give up with a
    :class:`StreamError` after ``max_consecutive`` failures in a row (a stream whose every shard
    is broken would otherwise retry forever). A stage mapped with :meth:`passed` after the one
    that can fail resets the run of failures."""

    def __init__(self, *, what: str = "shards", max_consecutive: int = 100) -> None:
        """Args:
        what: the data read, named in the messages (``train shards [a.tar, b.tar]``).
        max_consecutive: failures in a row that end the stream.
        """
        self.what = what
        self.max_consecutive = max_consecutive
        self.skipped = 0
        self.consecutive = 0

    def __call__(self, error: Exception) -> bool:
        self.skipped += 1
        self.consecutive += 1
        if self.consecutive >= self.max_consecutive:
            raise StreamError(
                f"gave up reading the {self.what}: {self.consecutive} samples or shards in a row "
                f"could not be read (last: {error})"
            )
        logger.warning("skipped a bad sample or shard (%d so far): %s", self.skipped, error)
        return True

    def passed(self, item: Any) -> Any:
        """Stage: a sample got through; the run of failures ends."""
        self.consecutive = 0
        return item


def _named(urls: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(urls[:limit])
    return f"[{shown}{', ...' if len(urls) > limit else ''}] ({len(urls)} shards)"


def _worker_rng(seed: int, salt: str) -> random.Random:
    rank, _, worker, _ = wds.utils.pytorch_worker_info()
    return random.Random(seeded_key(seed, salt, rank, worker))


class SeededShuffle:
    """Stage ``shuffle``: a shuffle buffer seeded per rank and worker."""

    def __init__(self, *, bufsize: int, seed: int) -> None:
        """Args:
        bufsize: samples in the buffer (a quarter of it is filled before the first sample).
        seed: base seed, mixed with the rank and the DataLoader worker.
        """
        self.bufsize = bufsize
        self.seed = seed

    def __call__(self, src: Iterator[Any]) -> Iterator[Any]:
        rng = _worker_rng(self.seed, "shuffle")
        initial = max(1, min(self.bufsize, self.bufsize // 4))
        return wds.shuffle(self.bufsize, initial, rng=rng)(src)


def decode_sample(
    sample: dict[str, Any],
    *,
    needed: Callable[[int, int], tuple[int, int]] | None = None,
    decode_audio: bool = True,
) -> dict[str, Any]:
    """Stage ``decode``: a tar sample → picture, mask, audio and metadata (schema decoders).

    ``needed(width, height)``: the smallest picture the next stages can use (see
    :meth:`JointTransform.needed_size`); a JPEG is then decoded at a reduced DCT scale when one is
    still large enough. ``image`` may so be a reduced copy; ``mask`` is always at full resolution.
    ``decode_audio=False`` keeps the FLAC bytes (``audio`` None, ``audio_flac``) for a stream
    that re-pairs the audio anyway; :class:`AudioExample` decodes them if they are still needed.
    """
    where = f"{sample.get('__url__', '?')}[{sample.get(schema.KEY, '?')}]"
    if schema.is_clip_sample(sample):
        return decode_clip_sample(sample, where=where, needed=needed)
    missing = [m for m in schema.TRIPLET_MEMBERS if m not in sample]
    if missing:
        raise ValueError(f"{where}: sample lacks members {missing}")
    try:
        meta = schema.decode_triplet_meta(sample[schema.META])
        image, full_size = schema.decode_image_reduced(sample[schema.IMAGE], needed)
        mask = schema.decode_mask(sample[schema.MASK])
        audio = decode_window(sample[schema.AUDIO], f"{where}: audio") if decode_audio else None
    except Exception as error:
        raise ValueError(f"{where}: cannot decode the sample: {error}") from None
    if mask.shape != full_size:
        raise ValueError(f"{where}: mask {mask.shape} and picture {full_size} differ")
    return {
        "key": sample[schema.KEY],
        "image": image,
        "mask": mask,
        "audio": audio,
        "audio_flac": None if decode_audio else sample[schema.AUDIO],
        "where": where,
        "audio_class": meta.audio_class,
        "negative": meta.negative,
        "negative_kind": meta.kind if meta.negative else "",
        "num_sources": meta.num_sources,
        "sources": tuple((src.audio_class, src.gain_db) for src in meta.sources or ()),
    }


def decode_with_class_map(sample: dict[str, Any], **decode: Any) -> dict[str, Any]:
    """Stage ``decode`` of a stream that asks for class maps: :func:`decode_sample` plus
    ``class_map``, the ``classes.png`` label map (int32 [H, W], 0 background, ``k + 1`` for class
    k of the manifest's ``audio_classes``), or None for a sample without one (a build without
    ``--class-masks``); ``decode`` is passed on to :func:`decode_sample`."""
    decoded = decode_sample(sample, **decode)
    if "frames" in decoded:
        raise ValueError(
            f"{decoded['where']}: a clip (--frames above 1): the class head trains on stills only"
        )
    decoded["class_map"] = None
    if schema.CLASS_MASK in sample:
        try:
            labels = schema.decode_class_mask(sample[schema.CLASS_MASK])
        except Exception as error:
            raise ValueError(f"{decoded['where']}: cannot decode the class map: {error}") from None
        if labels.shape != decoded["mask"].shape:
            raise ValueError(
                f"{decoded['where']}: class map {labels.shape} and mask {decoded['mask'].shape} "
                "differ"
            )
        decoded["class_map"] = labels
    return decoded


class AudioExample:
    """Stage ``audio_example``: audio samples → one VGGish log-mel example [1, 96, 64].

    A window longer than one example (15,600 samples) gives the example at a random offset in
    training and at its start otherwise; a shorter one is padded with silence.
    """

    def __init__(
        self, *, random_offset: bool, seed: int = 0, handler: Any = wds.reraise_exception
    ) -> None:
        """Args:
        random_offset: take the example at a random offset (training) instead of the start.
        seed: base seed of the offsets, mixed with the rank and the DataLoader worker.
        handler: WebDataset error handler for audio that is decoded here (kept FLAC bytes).
        """
        self.random_offset = random_offset
        self.seed = seed
        self.handler = handler

    def __call__(self, src: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        rng = _worker_rng(self.seed, "audio-offset")
        frontend = LogMelFrontend()
        for sample in src:
            if sample["audio"] is None:  # kept as FLAC by the decode stage and not re-paired
                where = sample.get("where", "?")
                try:
                    sample["audio"] = decode_window(sample["audio_flac"], f"{where}: audio")
                except Exception as error:
                    if self.handler(ValueError(f"{where}: cannot decode the audio: {error}")):
                        continue
                    raise
            samples = np.asarray(sample["audio"], dtype=np.float32)
            if "frames" in sample:  # a clip: one example per frame, one offset for the clip
                frames = len(sample["frames"])
                extra = len(samples) // frames - EXAMPLE_SAMPLES
                start = rng.randint(0, extra) if self.random_offset and extra > 0 else 0
                sample["audio"] = clip_examples(samples, frames, start, frontend)
                yield sample
                continue
            extra = len(samples) - EXAMPLE_SAMPLES
            start = rng.randint(0, extra) if self.random_offset and extra > 0 else 0
            window = torch.from_numpy(samples[start : start + EXAMPLE_SAMPLES].copy())
            with torch.no_grad():
                examples = log_mel_to_examples(frontend(window), num_examples=1)  # [1, 1, 96, 64]
            sample["audio"] = examples[0]
            yield sample


class Augment:
    """Stage ``augment`` / ``resize``: the joint transform → a one-frame list of FrameSample."""

    def __init__(self, *, transform: JointTransform, keep_gt: bool, seed: int = 0) -> None:
        """Args:
        transform: the model input size and the training augmentation (none: resize only).
        keep_gt: keep the full-resolution mask as ``gt_mask`` (evaluation).
        seed: base seed of the augmentation, mixed with the rank and the DataLoader worker.
        """
        self.transform = transform
        self.keep_gt = keep_gt
        self.seed = seed

    def __call__(self, src: Iterator[dict[str, Any]]) -> Iterator[list[FrameSample]]:
        rng = _worker_rng(self.seed, "augment")
        for sample in src:
            if "frames" in sample:
                draw = rng.getrandbits(64)
                yield clip_frame_samples(sample, self.transform, draw, keep_gt=self.keep_gt)
                continue
            labels = sample.get("class_map")
            frame = self.transform(sample["image"], sample["mask"], rng, labels=labels)
            yield [
                FrameSample(
                    image=frame.image,
                    mask=frame.mask,
                    audio=sample["audio"],
                    content_size=frame.content_size,
                    gt_mask=torch.from_numpy(sample["mask"]) if self.keep_gt else None,
                    category=sample["audio_class"],
                    key=sample["key"],
                    negative_kind=sample.get("negative_kind", ""),
                    class_map=frame.labels,
                    gt_class_map=torch.from_numpy(labels.astype(np.int64))
                    if self.keep_gt and labels is not None
                    else None,
                    heard=heard_classes(sample),
                )
            ]


def heard_classes(sample: dict[str, Any]) -> tuple[str, ...]:
    """The audio classes heard in a decoded still's audio: every source of a mix, else its audio
    class (a positive's, or an absent / off-screen negative's: heard, not seen); none for a
    silence negative."""
    if sample.get("negative_kind") == "silence":
        return ()
    if sample.get("sources"):
        return tuple(label for label, _ in sample["sources"])
    return (sample["audio_class"],) if sample.get("audio_class") else ()


# --- pipelines ------------------------------------------------------------------------------------


def train_pipeline(
    shards: ShardSet,
    *,
    resize: ResizeConfig,
    augment: AugmentConfig,
    batch_size: int,
    batches_per_epoch: int,
    seed: int,
    shuffle_buffer: int = 1000,
    repair_audio: bool = True,
    remix_audio: bool = False,
    audio_buffer_per_class: int = 16,
    audio_refill_per_sample: int = 2,
    random_audio_offset: bool = True,
    max_consecutive_failures: int = 100,
    class_maps: bool = False,
) -> wds.DataPipeline:
    """The endless, resampled training stream (see the module docstring).

    Args:
        shards: the dataset (its train shards, and its bank for re-pairing).
        resize, augment: picture size and augmentation.
        batch_size: samples per batch.
        batches_per_epoch: batches one DataLoader worker yields per epoch (``with_epoch``).
        seed: seed of every random choice (mixed with rank and worker inside each stage).
        shuffle_buffer: samples in the shuffle buffer.
        repair_audio: re-pair audio from the bank (needs ``shards.bank``).
        remix_audio: with ``repair_audio``, also re-mix multi-source triplets from fresh bank
            windows of their sources' classes at their recorded gains (mono builds only).
        audio_buffer_per_class, audio_refill_per_sample: the re-pairing buffer's settings.
        random_audio_offset: take the log-mel example at a random offset in long windows.
        max_consecutive_failures: unreadable samples or shards in a row that end the stream
            (with an error naming the shards) instead of retrying forever.
        class_maps: also decode the class-indexed label maps (``FrameBatch.class_maps``).
    """
    train_urls = shards.urls("train")
    handler = SkipHandler(
        what=f"train shards {_named(train_urls)}", max_consecutive=max_consecutive_failures
    )
    transform = JointTransform(resize=resize, augment=augment)
    stages: list[Any] = [
        wds.ResampledShards(train_urls, seed=seed, deterministic=True),  # resampled_shards
        wds.tarfile_to_samples(handler=handler),  # tar_samples
        SeededShuffle(bufsize=shuffle_buffer, seed=seed),  # shuffle
        wds.map(  # decode
            partial(
                decode_with_class_map if class_maps else decode_sample,
                needed=transform.needed_size,
                decode_audio=not repair_audio,
            ),
            handler=handler,
        ),
        wds.map(handler.passed),  # (a sample got through)
    ]
    if repair_audio and shards.manifest.get("config", {}).get("clips"):
        raise ValueError(
            f"{shards.location}: clip shards (--frames) keep their own audio (its silent frames "
            "are labels): set data.repair_audio: false"
        )
    if remix_audio and not repair_audio:
        raise ValueError("re-mixing (data.remix_audio) draws from the bank: set repair_audio too")
    if remix_audio and shards.manifest.get("config", {}).get("pan", "none") != "none":
        raise ValueError(
            f"{shards.location}: re-mixing makes mono mixes; the build's mixes are panned"
        )
    if repair_audio:
        if not shards.bank:
            raise FileNotFoundError(
                f"{shards.location}: audio re-pairing needs the audio bank (bank-*.tar); build "
                "with the bank or set data.repair_audio: false"
            )
        stages.append(
            AudioRepairing(  # repair_audio
                bank_urls=shards.bank,
                bank_classes=shards.bank_classes
                if set(shards.bank) <= set(shards.bank_classes)
                else None,
                capacity=audio_buffer_per_class,
                refill_per_sample=audio_refill_per_sample,
                seed=seed,
                handler=SkipHandler(
                    what=f"audio-bank shards {_named(shards.bank)}",
                    max_consecutive=max_consecutive_failures,
                ),
                remix=remix_audio,
            )
        )
    stages += [
        AudioExample(  # audio_example
            random_offset=random_audio_offset, seed=seed, handler=handler
        ),
        Augment(transform=transform, keep_gt=False, seed=seed),  # augment
        wds.batched(  # batch
            batch_size,
            collation_fn=partial(collate_frames, pad_multiple=resize.pad_multiple),
            partial=False,
        ),
    ]
    return wds.DataPipeline(*stages).with_epoch(nbatches=batches_per_epoch)


def eval_pipeline(
    urls: Sequence[str],
    *,
    resize: ResizeConfig,
    batch_size: int,
    split_by_node: bool = False,
    max_samples: int | None = None,
    class_maps: bool = False,
) -> wds.DataPipeline:
    """One pass over ``urls`` in order, for evaluation (ground-truth masks kept).

    Args:
        urls: the split's shards.
        resize: the model input size.
        batch_size: pictures per batch.
        split_by_node: give each rank its share of the shards (off: evaluation on one rank).
        max_samples: stop after this many samples per worker (None: all).
        class_maps: also decode the class-indexed label maps (``FrameBatch.gt_class_maps``).
    """
    handler = SkipHandler(what=f"shards {_named(list(urls))}")
    transform = JointTransform(resize=resize, augment=None)
    stages: list[Any] = [wds.SimpleShardList(list(urls))]  # shard_list
    if split_by_node:
        stages.append(wds.split_by_node)
    stages += [
        wds.split_by_worker,
        wds.tarfile_to_samples(handler=handler),  # tar_samples
        wds.map(  # decode
            partial(
                decode_with_class_map if class_maps else decode_sample,
                needed=transform.needed_size,
            ),
            handler=handler,
        ),
        wds.map(handler.passed),  # (a sample got through)
    ]
    if max_samples is not None:
        stages.append(wds.slice(max_samples))
    stages += [
        AudioExample(random_offset=False),  # audio_example
        Augment(transform=transform, keep_gt=True),  # resize
        wds.batched(  # batch
            batch_size,
            collation_fn=partial(collate_frames, pad_multiple=resize.pad_multiple),
            partial=True,
        ),
    ]
    return wds.DataPipeline(*stages)


def make_loader(
    pipeline: wds.DataPipeline, *, num_workers: int, pin_memory: bool = False
) -> DataLoader:
    """A DataLoader over an already batched pipeline."""
    return DataLoader(
        pipeline,
        batch_size=None,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=False,
        prefetch_factor=4 if num_workers > 0 else None,
    )


__all__ = [
    "Augment",
    "AudioExample",
    "SeededShuffle",
    "ShardSet",
    "SkipHandler",
    "StreamError",
    "decode_sample",
    "decode_with_class_map",
    "eval_pipeline",
    "make_loader",
    "resolve_shards",
    "train_pipeline",
]
