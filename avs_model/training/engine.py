"""The training loop (small and flat, as DETR's ``engine.py``).

- :func:`train_step`: one optimiser step on a :class:`FrameBatch` (autocast, gradient scaling
  and clipping, a non-finite loss skips the step).
- :func:`fit`: the loop that both ``pretrain`` and ``finetune`` run: steps, periodic validation
  (the evaluation loop of :mod:`avs_model.evaluation.loop`), ``last.pt`` / ``best.pt``
  checkpoints, logs and a progress bar.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from avs_model.data.augment import normalize_images
from avs_model.data.frame_batch import FrameBatch
from avs_model.evaluation.loop import EvalResult
from avs_model.modeling.criterion import SetCriterion
from avs_model.runtime.amp import Precision
from avs_model.runtime.checkpoint import Checkpoint, model_state, rng_state, save_checkpoint, unwrap
from avs_model.runtime.distributed import (
    DistributedContext,
    all_reduce_mean,
    barrier,
    broadcast_object,
)
from avs_model.runtime.progress import progress_bar
from avs_model.runtime.train_config import OptimConfig
from avs_model.training.run_log import RunLog

logger = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_optimizer(model: nn.Module, config: OptimConfig) -> torch.optim.AdamW:
    """AdamW over the trainable parameters; the backbone's group gets ``lr * backbone_lr_scale``."""
    backbone, rest = [], []
    for name, param in unwrap(model).named_parameters():
        if not param.requires_grad:
            continue
        (backbone if name.startswith("backbone.") else rest).append(param)
    groups = [{"params": rest, "lr": config.lr}]
    if backbone:
        groups.append({"params": backbone, "lr": config.lr * config.backbone_lr_scale})
    return torch.optim.AdamW(
        groups, lr=config.lr, weight_decay=config.weight_decay, betas=tuple(config.betas)
    )


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: OptimConfig, *, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Warm-up then ``constant`` / ``cosine`` / ``step`` decay, as a factor of each group's lr."""
    total = max(1, total_steps)
    milestones = [int(round(m * total)) for m in config.step_milestones]

    def factor(step: int) -> float:
        if config.warmup_steps > 0 and step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        if config.schedule == "cosine":
            progress = min(1.0, (step - config.warmup_steps) / max(1, total - config.warmup_steps))
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        if config.schedule == "step":
            return config.step_gamma ** sum(step >= m for m in milestones)
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def train_step(
    *,
    model: nn.Module,
    criterion: SetCriterion,
    batch: FrameBatch,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    precision: Precision,
    device: torch.device,
    clip_grad_norm: float | None = None,
) -> dict[str, float]:
    """One optimiser step; returns the weighted ``loss``, the last layer's named losses and the
    gradient norm (``skipped`` 1.0 when the loss was not finite and the step was skipped)."""
    model.train()
    batch = batch.to(device)
    images = normalize_images(batch.images)  # [N, 3, H, W]
    with precision.autocast():
        outputs = model(images, batch.audio)
    losses = criterion(outputs, {"masks": batch.masks, "valid": batch.valid})
    total = criterion.weighted_total(losses)
    optimizer.zero_grad(set_to_none=True)
    if not torch.isfinite(total):
        value = float(total.detach())
        logger.warning("non-finite loss %s: step skipped", value)
        return {"loss": value, "skipped": 1.0}
    scaler.scale(total).backward()
    grad_norm = float("nan")
    if clip_grad_norm is not None:
        scaler.unscale_(optimizer)
        params = [p for g in optimizer.param_groups for p in g["params"]]
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, clip_grad_norm))
    scaler.step(optimizer)
    scaler.update()
    out = {"loss": float(total.detach()), "grad_norm": grad_norm, "skipped": 0.0}
    out.update({name: float(v.detach()) for name, v in losses.items() if name[-1].isalpha()})
    return out


# --- the training loop ----------------------------------------------------------------------------


@dataclass
class TrainState:
    """Where a run is.

    Attributes:
        step: optimiser steps done.
        best_metric: the best val value so far (None before the first evaluation).
        best_step: the step of ``best.pt``.
    """

    step: int = 0
    best_metric: float | None = None
    best_step: int | None = None
    history: list[dict[str, float]] = field(default_factory=list)


@dataclass
class FitSettings:
    """The loop's settings (from the TrainConfig and the data).

    Attributes:
        total_steps: stop after this many steps.
        steps_per_epoch: steps that make an epoch.
        log_every: log train losses every this many steps.
        checkpoint_every: write ``last.pt`` every this many steps (and at every epoch's end).
        eval_every: validate every this many steps (None: at every epoch's end).
        select_metric: val metric of ``best.pt`` (higher is better).
        clip_grad_norm: gradient clipping.
    """

    total_steps: int
    steps_per_epoch: int
    log_every: int
    checkpoint_every: int
    eval_every: int | None
    select_metric: str
    clip_grad_norm: float | None


def fit(
    *,
    model: nn.Module,
    criterion: SetCriterion,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    precision: Precision,
    context: DistributedContext,
    settings: FitSettings,
    state: TrainState,
    train_batches: Callable[[int, int], Iterable[FrameBatch]],
    validate: Callable[[], EvalResult] | None,
    make_checkpoint: Callable[[TrainState, dict[str, Any]], Checkpoint],
    out_dir: Path,
    run_log: RunLog,
) -> TrainState:
    """Train from ``state.step`` to ``settings.total_steps``.

    Args:
        train_batches: ``(epoch, start_batch)`` → that epoch's batches from ``start_batch`` on
            (this rank's share).
        validate: runs the val evaluation (called on rank 0 only); None: no validation.
        make_checkpoint: builds the checkpoint of the current state (``metrics`` given).
        out_dir: where ``last.pt`` and ``best.pt`` go.
        run_log: the CSV / TensorBoard log.
    """
    device = context.device
    progress = progress_bar(enabled=context.is_main)
    last_path, best_path = out_dir / "last.pt", out_dir / "best.pt"
    if state.step >= settings.total_steps:
        logger.info("nothing to train: step %d of %d", state.step, settings.total_steps)
    with progress:
        task = progress.add_task("train", total=settings.total_steps, completed=state.step)
        while state.step < settings.total_steps:
            epoch = state.step // settings.steps_per_epoch
            start = state.step % settings.steps_per_epoch
            epoch_end = min((epoch + 1) * settings.steps_per_epoch, settings.total_steps)
            sums: dict[str, float] = {}
            count = 0
            tick = time.perf_counter()
            for batch in train_batches(epoch, start):
                values = train_step(
                    model=model,
                    criterion=criterion,
                    batch=batch,
                    optimizer=optimizer,
                    scaler=scaler,
                    precision=precision,
                    device=device,
                    clip_grad_norm=settings.clip_grad_norm,
                )
                scheduler.step()
                state.step += 1
                progress.update(task, completed=state.step)
                for name, value in values.items():
                    if math.isfinite(value):
                        sums[name] = sums.get(name, 0.0) + value
                count += 1
                sums["frames"] = sums.get("frames", 0.0) + len(batch)
                if state.step % settings.log_every == 0 or state.step == epoch_end:
                    elapsed = time.perf_counter() - tick
                    means = {k: v / count for k, v in sums.items() if k != "frames"}
                    means["frames_per_s"] = sums["frames"] / max(elapsed, 1e-9)
                    means["lr"] = optimizer.param_groups[0]["lr"]
                    means = all_reduce_mean(means, context)
                    run_log.log(means, step=state.step, epoch=epoch, split="train")
                    progress.update(task, description=f"train loss {means['loss']:.3f}")
                    sums, count, tick = {}, 0, time.perf_counter()
                at_epoch_end = state.step == epoch_end
                do_eval = validate is not None and (
                    (settings.eval_every is not None and state.step % settings.eval_every == 0)
                    or (settings.eval_every is None and at_epoch_end)
                    or state.step == settings.total_steps
                )
                if do_eval:
                    _validate(
                        validate,
                        state,
                        settings,
                        context,
                        run_log,
                        epoch,
                        make_checkpoint,
                        best_path,
                    )
                if at_epoch_end or state.step % settings.checkpoint_every == 0:
                    if context.is_main:
                        save_checkpoint(make_checkpoint(state, {}), last_path)
                    barrier(context)
                if state.step >= epoch_end:
                    break
            else:
                if state.step < epoch_end:
                    raise RuntimeError(
                        f"the training data ran out at step {state.step} (epoch {epoch} needs "
                        f"{settings.steps_per_epoch} steps): check the shards / dataset"
                    )
    return state


def _validate(
    validate: Callable[[], EvalResult],
    state: TrainState,
    settings: FitSettings,
    context: DistributedContext,
    run_log: RunLog,
    epoch: int,
    make_checkpoint: Callable[[TrainState, dict[str, Any]], Checkpoint],
    best_path: Path,
) -> None:
    scalars: dict[str, float] | None = None
    if context.is_main:
        result = validate()
        scalars = result.scalars()
        run_log.log(scalars, step=state.step, epoch=epoch, split="val")
        run_log.log_predictions(result.previews, step=state.step)
        logger.info("val at step %d: %s", state.step, result.ungated.summary())
        value = scalars.get(settings.select_metric)
        if value is None:
            value = getattr(result.ungated, settings.select_metric)
        if state.best_metric is None or value > state.best_metric:
            state.best_metric, state.best_step = float(value), state.step
            save_checkpoint(make_checkpoint(state, {"val": scalars}), best_path)
            logger.info(
                "new best val %s %.4f at step %d", settings.select_metric, value, state.step
            )
        state.history.append({"step": float(state.step), **scalars})
    best = broadcast_object((state.best_metric, state.best_step), context)
    state.best_metric, state.best_step = best  # type: ignore[misc]
    barrier(context)


def make_state_checkpoint(
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    state: TrainState,
    steps_per_epoch: int,
    train_config: dict[str, Any],
    model_config: dict[str, Any],
    data: dict[str, Any],
    metrics: dict[str, Any],
) -> Checkpoint:
    """The checkpoint of a run's current state."""
    return Checkpoint(
        model=model_state(model),
        step=state.step,
        epoch=state.step // max(1, steps_per_epoch),
        train_config=train_config,
        model_config=model_config,
        optimizer=optimizer.state_dict(),
        scaler=scaler.state_dict(),
        scheduler=scheduler.state_dict(),
        data=data,
        metrics={
            **metrics,
            "best_metric": state.best_metric,
            "best_step": state.best_step,
        },
        rng=rng_state(),
    )
