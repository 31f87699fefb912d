"""What ``pretrain`` and ``finetune`` share: setting a run up, resuming it, and the final test.

:func:`start_run` builds the model (from the config, from ``--init`` weights, or from the run's
own ``last.pt`` when resuming), the criterion, AdamW, the schedule, the gradient scaler, the logs
and the training state; :func:`run_training` runs :func:`avs_model.training.engine.fit` and,
once training is over, evaluates the test split a single time with ``best.pt`` (selected on val).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from avs_model.data.frame_batch import FrameBatch
from avs_model.evaluation.loop import EvalResult
from avs_model.modeling.build import build_model, num_classes_of
from avs_model.modeling.config import AuTRConfig, merge_nested
from avs_model.modeling.criterion import SetCriterion, build_criterion
from avs_model.modeling.weights import WeightFile
from avs_model.runtime.amp import Precision, resolve_precision
from avs_model.runtime.checkpoint import (
    Checkpoint,
    load_checkpoint,
    save_checkpoint,
    seed_everything,
    set_rng_state,
    unwrap,
)
from avs_model.runtime.distributed import DistributedContext, barrier, wrap_model
from avs_model.runtime.train_config import TrainConfig, resolve_model_config, save_train_config
from avs_model.training.engine import (
    FitSettings,
    TrainState,
    build_optimizer,
    build_scheduler,
    fit,
    make_state_checkpoint,
)
from avs_model.training.run_log import RunLog

logger = logging.getLogger(__name__)

_RUN_LENGTH_KEYS = {"epochs", "max_steps"}


@dataclass
class TrainingRun:
    """A run, set up and ready to train (see :func:`start_run`)."""

    config: TrainConfig
    model_config: AuTRConfig
    context: DistributedContext
    precision: Precision
    model: nn.Module
    criterion: SetCriterion
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    state: TrainState
    out_dir: Path
    steps_per_epoch: int
    total_steps: int
    data: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunResult:
    """What a finished run left behind.

    Attributes:
        out_dir: the run folder.
        last: ``last.pt``.
        best: ``best.pt`` (None without validation).
        step: steps done.
        best_metric: the best val value.
        test: the test evaluation (None when skipped), as a dict.
    """

    out_dir: Path
    last: Path
    best: Path | None
    step: int
    best_metric: float | None
    test: dict[str, Any] | None


def total_steps_of(config: TrainConfig, steps_per_epoch: int) -> int:
    """``max_steps`` when set, else ``ceil(epochs * steps_per_epoch)``."""
    if config.max_steps is not None:
        return int(config.max_steps)
    return max(1, math.ceil(config.epochs * steps_per_epoch))


def load_init_weights(model: nn.Module, checkpoint: Checkpoint, *, source: Path) -> None:
    """Copy a checkpoint's weights into ``model`` (they must match the architecture)."""
    try:
        unwrap(model).load_state_dict(checkpoint.model, strict=True)
    except RuntimeError as error:
        raise ValueError(
            f"{source}: the weights do not fit the model: {str(error).splitlines()[0]}"
        ) from None


def log_weight_sources(weights: dict[str, Any]) -> None:
    """Log what each pretrained part was loaded from (the same record goes in every checkpoint)."""
    if "init" in weights:
        init = weights["init"]
        logger.info("weights: all from %s (sha256 %s)", init.get("path"), init.get("sha256"))
        weights = weights.get("init_weights") or {}
    for part, source in weights.items():
        if source.get("source") == "file":
            logger.info("weights: %s from %s (sha256 %s)", part, source["path"], source["sha256"])
        else:
            trained = "trained from scratch" if source.get("trained") else "frozen, RANDOM"
            logger.info("weights: %s random init (%s)", part, trained)


def _config_differences(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _config_differences(va, vb, f"{prefix}{key}.")
        elif va != vb:
            out.append(f"{prefix}{key}")
    return out


def start_run(
    config: TrainConfig,
    *,
    context: DistributedContext,
    out_dir: Path,
    steps_per_epoch: int,
    resume: bool = False,
    init: Path | None = None,
    data: dict[str, Any] | None = None,
    class_table: list[str] | None = None,
    audio_classes: list[str] | None = None,
) -> TrainingRun:
    """Set a run up (see the module docstring).

    Args:
        config: the experiment.
        context: the distributed context (its device is used).
        out_dir: the run folder (``last.pt``, ``best.pt``, logs).
        steps_per_epoch: optimiser steps per epoch (for the schedule and epoch bookkeeping).
        resume: continue from ``out_dir/last.pt`` (model, optimiser, scaler, schedule, step, RNG).
        init: start from this checkpoint's weights (pre-training or an earlier fine-tuning).
        data: what the run trains on (saved in every checkpoint).
        class_table: the training data's class table (the manifest's ``audio_classes`` labels;
            None: no class maps). A model with the class head takes it as its table (or, from a
            checkpoint, must already have it).
        audio_classes: the training data's audio-class labels (the manifest's ``audio_classes``,
            class masks or not; None: AVSBench): a model with the audio-tagging head that has no
            table yet takes it.
    """
    out_dir = Path(out_dir)
    last_path = out_dir / "last.pt"
    if context.is_main:
        for stale in out_dir.glob(".*.pt.tmp-*"):  # left by a killed checkpoint write
            stale.unlink(missing_ok=True)
    resumed: Checkpoint | None = None
    if not resume and last_path.is_file():
        raise FileExistsError(
            f"{out_dir} already holds a run (last.pt): pass --resume to continue it, or choose "
            "another --out"
        )
    if resume:
        if not last_path.is_file():
            raise FileNotFoundError(f"{last_path}: nothing to resume (no last.pt in {out_dir})")
        resumed = load_checkpoint(last_path)
        differences = [
            d
            for d in _config_differences(resumed.train_config, config.to_dict())
            if d not in _RUN_LENGTH_KEYS
        ]
        if differences:
            logger.warning(
                "resuming with settings that differ from the checkpoint's: %s",
                ", ".join(differences),
            )
    seed_everything(config.seed)
    if resumed is not None:
        model_config = AuTRConfig.from_dict(resumed.model_config)
    elif init is not None:
        init_ckpt = load_checkpoint(init)
        model_config = AuTRConfig.from_dict(init_ckpt.model_config)
        if config.model_overrides:
            model_config = AuTRConfig.from_dict(
                merge_nested(model_config.to_dict(), config.model_overrides)
            )
    else:
        model_config = resolve_model_config(config)
    if model_config.class_head.enabled:
        if not model_config.class_head.classes and class_table is not None:
            model_config.class_head.classes = list(class_table)
        model_config.class_head.check_table(class_table, where=f"{config.name}: training data")
    if model_config.audio_tags.enabled and not model_config.audio_tags.classes:
        if not audio_classes:
            raise ValueError(
                f"{config.name}: audio_tags.enabled needs the training data's audio classes (the "
                "shards' manifest audio_classes); AVSBench data has none"
            )
        model_config.audio_tags.classes = list(audio_classes)
    device = context.device
    precision = resolve_precision(config.precision, device)
    # a checkpoint holds every weight: from one, the config's weight files are never read
    model = build_model(model_config, load_weights=resumed is None and init is None)
    if resumed is not None:
        weights = resumed.weights
    elif init is not None:
        load_init_weights(model, init_ckpt, source=Path(init))
        logger.info("initialised from %s (step %d)", init, init_ckpt.step)
        init_file = WeightFile.of(init)
        weights = {
            "init": {**init_file.to_dict(), "step": init_ckpt.step},
            "init_weights": init_ckpt.weights,
        }
    else:
        weights = model.weight_sources()
    if context.is_main:
        log_weight_sources(weights)
    model.to(device)
    criterion = build_criterion(
        model_config.loss,
        num_classes=num_classes_of(model_config),
        audio_tags=model_config.audio_tags.enabled,
    )
    criterion.to(device)
    total_steps = total_steps_of(config, steps_per_epoch)
    optimizer = build_optimizer(model, config.optim)
    scheduler = build_scheduler(optimizer, config.optim, total_steps=total_steps)
    scaler = precision.grad_scaler()
    state = TrainState()
    if resumed is not None:
        load_init_weights(model, resumed, source=last_path)
        if resumed.optimizer is not None:
            optimizer.load_state_dict(resumed.optimizer)
        if resumed.scheduler is not None:
            scheduler.load_state_dict(resumed.scheduler)
        if resumed.scaler is not None and scaler.is_enabled():
            scaler.load_state_dict(resumed.scaler)
        set_rng_state(resumed.rng)
        state = TrainState(
            step=resumed.step,
            best_metric=resumed.metrics.get("best_metric"),
            best_step=resumed.metrics.get("best_step"),
        )
        logger.info("resumed from %s at step %d", last_path, resumed.step)
    if config.compile:
        model = torch.compile(model, mode=config.compile_mode, dynamic=config.compile_dynamic)
    model = wrap_model(model, context)
    if context.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        save_train_config(config, out_dir / "train_config.yaml")
        (out_dir / "model_config.json").write_text(json.dumps(model_config.to_dict(), indent=2))
    barrier(context)
    logger.info(
        "%s: %s on %s (%s), %d steps of %d per rank (%d per epoch), world size %d",
        config.name,
        model_config.name,
        device,
        precision.name,
        total_steps,
        config.batch_size,
        steps_per_epoch,
        context.world_size,
    )
    return TrainingRun(
        config=config,
        model_config=model_config,
        context=context,
        precision=precision,
        model=model,
        criterion=criterion,
        optimizer=optimizer,
        scheduler=scheduler,
        scaler=scaler,
        state=state,
        out_dir=out_dir,
        steps_per_epoch=steps_per_epoch,
        total_steps=total_steps,
        data=dict(data or {}),
        weights=weights,
    )


def run_training(
    run: TrainingRun,
    *,
    train_batches: Callable[[int, int], Iterable[FrameBatch]],
    validate: Callable[[nn.Module], EvalResult] | None,
    test: Callable[[nn.Module], EvalResult] | None,
) -> RunResult:
    """Train, then evaluate the test split once with ``best.pt`` (rank 0).

    Args:
        run: from :func:`start_run`.
        train_batches: ``(epoch, start_batch)`` → this rank's batches of that epoch.
        validate: the val evaluation of a model (None: no validation, no ``best.pt``).
        test: the test evaluation of a model (None: skipped).
    """
    config = run.config
    context = run.context
    settings = FitSettings(
        total_steps=run.total_steps,
        steps_per_epoch=run.steps_per_epoch,
        log_every=max(1, config.log_every_steps),
        checkpoint_every=max(1, config.checkpoint_every_steps),
        eval_every=config.eval.every_steps,
        select_metric=config.eval.select_metric,
        clip_grad_norm=config.optim.clip_grad_norm,
    )

    def make_checkpoint(state: TrainState, metrics: dict[str, Any]) -> Checkpoint:
        return make_state_checkpoint(
            model=run.model,
            optimizer=run.optimizer,
            scaler=run.scaler,
            scheduler=run.scheduler,
            state=state,
            steps_per_epoch=run.steps_per_epoch,
            train_config=config.to_dict(),
            model_config=run.model_config.to_dict(),
            data=run.data,
            weights=run.weights,
            metrics=metrics,
        )

    with RunLog(
        out_dir=run.out_dir, enabled=context.is_main, resume_step=run.state.step or None
    ) as run_log:
        state = fit(
            model=run.model,
            criterion=run.criterion,
            optimizer=run.optimizer,
            scheduler=run.scheduler,
            scaler=run.scaler,
            precision=run.precision,
            context=context,
            settings=settings,
            state=run.state,
            train_batches=train_batches,
            validate=(lambda: validate(run.model)) if validate is not None else None,
            make_checkpoint=make_checkpoint,
            out_dir=run.out_dir,
            run_log=run_log,
        )
        last = run.out_dir / "last.pt"
        best = run.out_dir / "best.pt"
        test_result: dict[str, Any] | None = None
        if context.is_main:
            if not last.is_file() or load_checkpoint(last).step != state.step:
                save_checkpoint(make_checkpoint(state, {}), last)
            if test is not None:
                chosen = best if best.is_file() else last
                weights = load_checkpoint(chosen)
                net = build_model(run.model_config, load_weights=False)
                net.load_state_dict(weights.model)
                net.to(context.device)
                result = test(net)
                test_result = {"checkpoint": str(chosen), "step": weights.step, **result.to_dict()}
                (run.out_dir / "test_metrics.json").write_text(
                    json.dumps(test_result, indent=2, allow_nan=False)
                )
                run_log.log(
                    result.scalars(),
                    step=state.step,
                    epoch=state.step // run.steps_per_epoch,
                    split="test",
                )
                logger.info("test (%s): %s", chosen.name, result.ungated.summary())
        barrier(context)
    return RunResult(
        out_dir=run.out_dir,
        last=last,
        best=best if best.is_file() else None,
        step=state.step,
        best_metric=state.best_metric,
        test=test_result,
    )
