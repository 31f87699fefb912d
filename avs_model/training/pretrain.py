"""``avs-train pretrain``: train AuTR on the synthetic shards.

Each rank streams its own resampled draw of the train shards (re-pairing every sample's audio
from the audio bank); an epoch is the manifest's train count divided by the global batch. The val
split is evaluated periodically on rank 0 and selects ``best.pt``; the test split is evaluated
once at the end (scored at each picture's own resolution).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from itertools import islice
from pathlib import Path

from torch import nn

from avs_model.data.frame_batch import FrameBatch
from avs_model.data.stream import make_loader, resolve_shards, train_pipeline
from avs_model.evaluation.benchmarks import evaluate_synthetic
from avs_model.evaluation.loop import EvalResult
from avs_model.runtime.distributed import init_distributed, shutdown
from avs_model.runtime.train_config import TrainConfig
from avs_model.training.run import RunResult, run_training, start_run
from avs_synth.seeded_order import seeded_key

logger = logging.getLogger(__name__)


def pretrain(
    config: TrainConfig,
    *,
    shards: str | Path,
    out_dir: str | Path,
    resume: bool = False,
    init: str | Path | None = None,
    run_test: bool = True,
) -> RunResult:
    """Pre-train on synthetic shards.

    Args:
        config: the experiment (``avs_model/recipes/pretrain_*.yaml``).
        shards: the shard folder or remote location (see :func:`resolve_shards`).
        out_dir: the run folder.
        resume: continue from ``out_dir/last.pt``.
        init: start from these weights instead of the configured initialisation.
        run_test: evaluate the test split at the end.
    """
    context = init_distributed(config.device)
    try:
        shard_set = resolve_shards(shards)
        train_count = config.data.samples_per_epoch or shard_set.num_samples("train")
        if not train_count:
            raise ValueError(
                f"{shard_set.location}: the manifest gives no train sample count; set "
                "data.samples_per_epoch"
            )
        global_batch = config.batch_size * context.world_size
        steps_per_epoch = max(1, math.ceil(train_count / global_batch))
        data = shard_set.data_versions()
        run = start_run(
            config,
            context=context,
            out_dir=Path(out_dir),
            steps_per_epoch=steps_per_epoch,
            resume=resume,
            init=Path(init) if init is not None else None,
            data=data,
            class_table=shard_set.class_table(),
            audio_classes=shard_set.audio_class_labels(),
        )
        class_head = run.model_config.class_head.enabled
        workers = config.data.num_workers

        def train_batches(epoch: int, start: int) -> Iterable[FrameBatch]:
            remaining = steps_per_epoch - start
            seed = seeded_key(config.seed, "train-stream", epoch, start) % 2**31
            pipeline = train_pipeline(
                shard_set,
                resize=config.data.resize,
                augment=config.data.augment,
                batch_size=config.batch_size,
                batches_per_epoch=math.ceil(remaining / max(1, workers)),
                seed=seed,
                shuffle_buffer=config.data.shuffle_buffer,
                repair_audio=config.data.repair_audio,
                remix_audio=config.data.remix_audio,
                audio_buffer_per_class=config.data.audio_buffer_per_class,
                audio_refill_per_sample=config.data.audio_refill_per_sample,
                random_audio_offset=config.data.random_audio_offset,
                max_consecutive_failures=config.data.max_consecutive_failures,
                class_maps=class_head,
            )
            loader = make_loader(
                pipeline, num_workers=workers, pin_memory=context.device.type == "cuda"
            )
            return islice(loader, remaining)

        has_val = bool(shard_set.splits.get("val"))
        has_test = bool(shard_set.splits.get("test"))
        if not has_val:
            logger.warning("%s: no val shards: no periodic evaluation, no best.pt", shards)

        def split_evaluator(split: str, limit: int | None):
            def run_eval(model: nn.Module) -> EvalResult:
                return evaluate_synthetic(
                    model,
                    shard_set,
                    split,
                    config,
                    device=context.device,
                    precision=run.precision,
                    max_samples=limit,
                )

            return run_eval

        return run_training(
            run,
            train_batches=train_batches,
            validate=split_evaluator("val", config.data.max_eval_samples) if has_val else None,
            test=split_evaluator("test", None) if (run_test and has_test) else None,
        )
    finally:
        shutdown(context)
