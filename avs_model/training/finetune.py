"""``avs-train finetune``: train AuTR on AVSBench S4 or MS3 (native layouts).

The train videos are filtered by category (``--categories`` / ``--exclude-categories`` /
``--open-set``) and cut to ``--fraction`` of each category (a seeded hash; the kept list is saved
in every checkpoint). S4 trains on its one annotated frame per video, MS3 on all five. Starting
points: ``--init`` a pre-training checkpoint (or an S4 checkpoint for MS3), or nothing (the
paper's "w/o P.T." rows: the configured backbone / audio weights, the rest random). The val split
selects ``best.pt``; the test split is evaluated once at the end, with the official batching
(``eval.batch_videos`` videos of 5 frames).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler

from avs_model.data.avsbench_dataset import (
    AVSBenchDataset,
    filter_categories,
    open_set_split,
    select_fraction,
)
from avs_model.data.frame_batch import FrameBatch, collate_frames
from avs_model.evaluation.benchmarks import evaluate_avsbench
from avs_model.evaluation.loop import EvalResult
from avs_model.runtime.distributed import DistributedContext, init_distributed, shutdown
from avs_model.runtime.train_config import TrainConfig
from avs_model.training.run import RunResult, run_training, start_run
from avs_synth.records import AVSBenchVideo
from avs_synth.seeded_order import seeded_key
from avs_synth.sources.avsbench import AVSBenchReader

logger = logging.getLogger(__name__)


class EpochSampler(Sampler[int]):
    """A seeded permutation per epoch, this rank's share, from a given batch on (for resuming).

    Every rank draws the same permutation (seed, epoch), pads it to a multiple of the world size
    by wrapping around, and takes every ``world_size``-th index from its rank.
    """

    def __init__(
        self,
        *,
        length: int,
        seed: int,
        epoch: int,
        rank: int = 0,
        world_size: int = 1,
        start: int = 0,
    ) -> None:
        """Args:
        length: dataset size.
        seed, epoch: fix the permutation.
        rank, world_size: this rank's share.
        start: skip this many of this rank's indices (``start_batch * batch_size``).
        """
        self.length = length
        generator = torch.Generator().manual_seed(seeded_key(seed, "epoch", epoch) % 2**63)
        order = torch.randperm(length, generator=generator).tolist()
        per_rank = math.ceil(length / world_size)
        order += order[: per_rank * world_size - length]
        self.indices = order[rank::world_size][start:]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def training_videos(
    reader: AVSBenchReader,
    *,
    fraction: float,
    fraction_seed: int,
    categories: Sequence[str] = (),
    exclude_categories: Sequence[str] = (),
    open_set: str | None = None,
) -> list[AVSBenchVideo]:
    """The train videos a fine-tuning run uses (category filters, then the fraction)."""
    include, exclude = list(categories), list(exclude_categories)
    if open_set is not None:
        seen, unseen = open_set_split()
        include += list(seen if open_set == "seen" else unseen)
    known = reader.categories if reader.subset == "s4" else None
    videos = filter_categories(
        reader.videos("train"), include=include, exclude=exclude, known=known
    )
    return select_fraction(videos, fraction, seed=fraction_seed)


def _train_loader(
    dataset: AVSBenchDataset,
    config: TrainConfig,
    context: DistributedContext,
    epoch: int,
    start: int,
) -> Iterable[FrameBatch]:
    dataset.set_epoch(epoch)
    sampler = EpochSampler(
        length=len(dataset),
        seed=config.seed,
        epoch=epoch,
        rank=context.rank,
        world_size=context.world_size,
        start=start * config.batch_size,
    )
    return DataLoader(
        dataset,
        batch_size=config.batch_size,
        sampler=sampler,
        num_workers=config.data.num_workers,
        collate_fn=partial(collate_frames, pad_multiple=config.data.resize.pad_multiple),
        pin_memory=context.device.type == "cuda",
        drop_last=False,
    )


def finetune(
    config: TrainConfig,
    *,
    data_root: str | Path,
    out_dir: str | Path,
    init: str | Path | None = None,
    resume: bool = False,
    run_test: bool = True,
) -> RunResult:
    """Fine-tune (or train from scratch) on AVSBench.

    Args:
        config: the experiment; ``config.avsbench`` holds the subset, fraction and filters.
        data_root: the AVSBench folder (see :class:`AVSBenchReader` for the layouts).
        out_dir: the run folder.
        init: a checkpoint to start from (None: the paper's "w/o P.T." setting).
        resume: continue from ``out_dir/last.pt``.
        run_test: evaluate the test split at the end.
    """
    bench = config.avsbench
    context = init_distributed(config.device)
    try:
        reader = AVSBenchReader(root=data_root, subset=bench.subset)
        videos = training_videos(
            reader,
            fraction=bench.fraction,
            fraction_seed=bench.fraction_seed,
            categories=bench.categories,
            exclude_categories=bench.exclude_categories,
            open_set=bench.open_set,
        )
        logger.info(
            "%s train: %d videos (fraction %g of %d)",
            bench.subset.upper(),
            len(videos),
            bench.fraction,
            len(reader.videos("train")),
        )
        dataset = AVSBenchDataset(
            videos=videos,
            resize=config.data.resize,
            augment=config.data.augment,
            audio=config.data.avsbench_audio,
            frames="annotated",
            seed=config.seed,
        )
        global_batch = config.batch_size * context.world_size
        steps_per_epoch = max(1, math.ceil(len(dataset) / global_batch))
        init_data: dict[str, Any] = {}
        if init is not None:
            from avs_model.runtime.checkpoint import load_checkpoint

            init_data = load_checkpoint(init).data
        data = {
            "kind": "avsbench",
            "subset": bench.subset,
            "root": str(data_root),
            "fraction": bench.fraction,
            "fraction_seed": bench.fraction_seed,
            "categories": sorted({v.category for v in videos if v.category}),
            "train_videos": [v.name for v in videos],
            "init": str(init) if init is not None else None,
            "init_data": init_data,
        }
        run = start_run(
            config,
            context=context,
            out_dir=Path(out_dir),
            steps_per_epoch=steps_per_epoch,
            resume=resume,
            init=Path(init) if init is not None else None,
            data=data,
        )
        train_categories = set(data["categories"])
        val_videos = reader.videos("val")
        if (
            bench.subset == "s4"
            and train_categories
            and (bench.categories or bench.exclude_categories or bench.open_set)
        ):
            val_videos = [v for v in val_videos if v.category in train_categories]
        if config.data.max_eval_samples is not None:
            val_videos = val_videos[: config.data.max_eval_samples]
        test_videos = reader.videos("test")

        def validate(model: nn.Module) -> EvalResult:
            return evaluate_avsbench(
                model, val_videos, config, device=context.device, precision=run.precision
            )

        def test(model: nn.Module) -> EvalResult:
            return evaluate_avsbench(
                model, test_videos, config, device=context.device, precision=run.precision
            )

        return run_training(
            run,
            train_batches=lambda epoch, start: _train_loader(
                dataset, config, context, epoch, start
            ),
            validate=validate if val_videos else None,
            test=test if (run_test and test_videos) else None,
        )
    finally:
        shutdown(context)
