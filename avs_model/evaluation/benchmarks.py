"""Scoring the two kinds of data: synthetic shard splits and AVSBench S4 / MS3 videos.

Both run the evaluation loop (:func:`avs_model.evaluation.loop.evaluate`) with the batching their
metrics need: one synthetic picture per batch (pictures differ in size and are scored at their
own resolution); AVSBench in whole videos, ``eval.batch_videos`` videos of 5 frames a batch (the
official M_F depends on it).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from functools import partial

import torch
from torch import nn
from torch.utils.data import DataLoader

from avs_model.data.avsbench_dataset import AVSBenchDataset
from avs_model.data.frame_batch import FrameBatch, collate_frames
from avs_model.data.stream import ShardSet, eval_pipeline, make_loader
from avs_model.evaluation.gallery import FrameGallery
from avs_model.evaluation.loop import EvalResult, evaluate
from avs_model.runtime.amp import Precision
from avs_model.runtime.checkpoint import unwrap
from avs_model.runtime.train_config import TrainConfig
from avs_synth.records import AVSBenchVideo
from avs_synth.sources.avsbench import NUM_FRAMES


def synthetic_eval_batches(
    shards: ShardSet,
    split: str,
    config: TrainConfig,
    *,
    max_samples: int | None = None,
    class_maps: bool = False,
) -> Iterable[FrameBatch]:
    """The batches of one pass over a synthetic split, ``eval.batch_pictures`` pictures (or clips)
    a batch (one in ``keep_aspect`` mode: pictures of different shapes would be padded to one
    size); score them with ``evaluate(..., metrics_per_sample=True)``: pictures differ in size, so
    each is its own metrics batch. ``max_samples``: the first that many samples;
    ``class_maps``: with the label maps."""
    size = 1 if config.data.resize.mode == "keep_aspect" else config.eval.batch_pictures
    pipeline = eval_pipeline(
        shards.urls(split), resize=config.data.resize, batch_size=size, class_maps=class_maps
    )
    workers = min(config.data.num_workers, len(shards.urls(split)))
    batches = make_loader(pipeline, num_workers=workers)
    return batches if max_samples is None else first_samples(batches, max_samples)


def first_samples(batches: Iterable[FrameBatch], count: int) -> Iterator[FrameBatch]:
    """The batches of the first ``count`` samples of ``batches`` (the last one cut short)."""
    if count <= 0:
        return
    left = count
    for batch in batches:
        samples = len(batch) // batch.frames_per_sample
        yield batch if samples <= left else batch.head(left)
        left -= samples
        if left <= 0:
            return


def evaluate_synthetic(
    model: nn.Module,
    shards: ShardSet,
    split: str,
    config: TrainConfig,
    *,
    device: torch.device,
    precision: Precision,
    max_samples: int | None = None,
    progress: bool = False,
    gallery: FrameGallery | None = None,
) -> EvalResult:
    """M_J / M_F of ``model`` on a synthetic split (at each picture's own resolution); class
    mIoU / F too when the model has the class head and the shards class maps."""
    class_maps = has_class_head(model) and shards.class_table() is not None
    return evaluate(
        model,
        synthetic_eval_batches(
            shards, split, config, max_samples=max_samples, class_maps=class_maps
        ),
        device=device,
        precision=precision,
        metrics_per_sample=True,
        gate_threshold=config.eval.gate_threshold,
        progress_label=f"{split}" if progress else None,
        gallery=gallery,
    )


def has_class_head(model: nn.Module) -> bool:
    """Whether ``model`` (DDP / compile wrappers removed) has AuTR's class head."""
    return getattr(unwrap(model), "class_head", None) is not None


def avsbench_eval_loader(
    videos: Sequence[AVSBenchVideo], config: TrainConfig, *, batch_videos: int | None = None
) -> DataLoader:
    """Batches of ``batch_videos`` whole videos (5 frames each) with ground truths, in order."""
    dataset = AVSBenchDataset(
        videos=videos,
        resize=config.data.resize,
        augment=None,
        audio=config.data.avsbench_audio,
        frames="all",
        with_gt=True,
    )
    return DataLoader(
        dataset,
        batch_size=batch_videos or config.eval.batch_videos,
        shuffle=False,
        num_workers=config.data.num_workers,
        collate_fn=partial(collate_frames, pad_multiple=config.data.resize.pad_multiple),
    )


def evaluate_avsbench(
    model: nn.Module,
    videos: Sequence[AVSBenchVideo],
    config: TrainConfig,
    *,
    device: torch.device,
    precision: Precision,
    batch_videos: int | None = None,
    progress: bool = False,
    gallery: FrameGallery | None = None,
) -> EvalResult:
    """M_J / M_F on AVSBench videos with the official batching."""
    return evaluate(
        model,
        avsbench_eval_loader(videos, config, batch_videos=batch_videos),
        device=device,
        precision=precision,
        gate_threshold=config.eval.gate_threshold,
        frames_per_video=NUM_FRAMES,
        progress_label="avsbench" if progress else None,
        gallery=gallery,
    )
