"""The train and evaluation loops (small and flat, as DETR's ``engine.py``).

- :func:`train_step`: one optimiser step on a :class:`FrameBatch` (autocast, gradient scaling
  and clipping, a non-finite loss skips the step).
- :func:`frame_logits`: the selected query's mask logits of every frame at its ground-truth
  resolution (padding cropped away), ungated or gated by the sounding score.
- :func:`evaluate`: M_J / M_F over a loader, ungated and gated, the official way.
- :func:`fit`: the loop that both ``pretrain`` and ``finetune`` run: steps, periodic validation,
  ``last.pt`` / ``best.pt`` checkpoints, logs and a progress bar.
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
import torch.nn.functional as F
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch import Tensor, nn

from avs_model.data.augment import normalize_images
from avs_model.data.frame_batch import FrameBatch
from avs_model.evaluation.inference import select_sounding_mask
from avs_model.evaluation.metrics import AVSMetrics, MetricsResult
from avs_model.modeling.criterion import SetCriterion
from avs_model.runtime.amp import Precision
from avs_model.runtime.checkpoint import Checkpoint, model_state, rng_state, save_checkpoint, unwrap
from avs_model.runtime.distributed import (
    DistributedContext,
    all_reduce_mean,
    barrier,
    broadcast_object,
)
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


def model_inputs(batch: FrameBatch, device: torch.device) -> tuple[Tensor, Tensor]:
    """Normalised images and audio of a batch, on ``device``."""
    return normalize_images(batch.images.to(device)), batch.audio.to(device)


def frame_logits(
    outputs: dict[str, Any],
    batch: FrameBatch,
    *,
    sizes: list[tuple[int, int]] | None = None,
    gate_threshold: float | None = None,
) -> tuple[list[Tensor], Tensor]:
    """Per frame, the selected query's mask logits at the ground truth's resolution.

    Padding is cropped away first (``content_sizes``), then each frame is resized to its target.

    Args:
        outputs: the model output.
        batch: the batch it was computed from.
        sizes: per-frame target sizes (default: the ground truths' sizes, else the content
            sizes).
        gate_threshold: empty masks for frames whose best sounding score is below it.

    Returns:
        ``(logits, scores)``: N float tensors [H_i, W_i] on the CPU, and the sounding scores
        (sigmoid) [N].
    """
    height, width = batch.images.shape[-2:]
    if sizes is None:
        sizes = (
            [tuple(g.shape[-2:]) for g in batch.gt_masks]
            if batch.gt_masks is not None
            else list(batch.content_sizes)
        )
    unpadded = all(tuple(c) == (height, width) for c in batch.content_sizes)
    if unpadded and len(set(sizes)) == 1:
        logits, scores = select_sounding_mask(outputs, size=sizes[0], gate_threshold=gate_threshold)
        return list(logits.float().cpu().unbind(0)), scores.float().cpu()
    logits, scores = select_sounding_mask(
        outputs, size=(height, width), gate_threshold=gate_threshold
    )
    out = []
    for i, (content, size) in enumerate(zip(batch.content_sizes, sizes, strict=True)):
        crop = logits[i : i + 1, None, : content[0], : content[1]].float()  # [1, 1, h, w]
        if tuple(crop.shape[-2:]) != tuple(size):
            crop = F.interpolate(crop, size=tuple(size), mode="bilinear", align_corners=False)
        out.append(crop[0, 0].cpu())
    return out, scores.float().cpu()


@dataclass
class EvalResult:
    """Figures of one evaluation.

    Attributes:
        ungated: every frame gets its best query's mask.
        gated: frames whose best sounding score is below ``gate_threshold`` get an empty mask.
        gate_threshold: the gate used.
        mean_score_positive / mean_score_negative: the mean best sounding score over frames
            whose ground truth is non-empty / empty (NaN when there are none).
    """

    ungated: MetricsResult
    gated: MetricsResult
    gate_threshold: float
    mean_score_positive: float
    mean_score_negative: float

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict; NaN (no frames of a kind) becomes None, so the JSON is valid."""
        return json_safe(
            {
                "ungated": self.ungated.to_dict(),
                "gated": self.gated.to_dict(),
                "gate_threshold": self.gate_threshold,
                "mean_score_positive": self.mean_score_positive,
                "mean_score_negative": self.mean_score_negative,
            }
        )

    def scalars(self) -> dict[str, float]:
        """The headline figures for logs."""
        return {
            "miou": self.ungated.miou,
            "fmeasure": self.ungated.fmeasure,
            "fmeasure_per_frame": self.ungated.fmeasure_per_frame,
            "miou_gated": self.gated.miou,
            "fmeasure_gated": self.gated.fmeasure,
        }


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (strict JSON has no NaN)."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _update(metrics: AVSMetrics, logits: list[Tensor], batch: FrameBatch) -> None:
    assert batch.gt_masks is not None
    shapes = {tuple(g.shape) for g in batch.gt_masks}
    if len(shapes) == 1:
        metrics.update(torch.stack(logits), torch.stack(batch.gt_masks), batch.categories)
        return
    for logit, gt, category in zip(logits, batch.gt_masks, batch.categories, strict=True):
        metrics.update(logit[None], gt[None], [category])  # pictures of different sizes


@torch.no_grad()
def evaluate(
    model: nn.Module,
    batches: Iterable[FrameBatch],
    *,
    device: torch.device,
    precision: Precision,
    gate_threshold: float = 0.5,
    frames_per_video: int | None = None,
    audio_override: Callable[[FrameBatch], Tensor] | None = None,
    progress_label: str | None = None,
) -> EvalResult:
    """M_J / M_F (official per-batch and batch-independent), ungated and gated.

    Each loader batch is one metrics batch (for AVSBench: ``batch_videos`` videos x 5 frames); a
    batch whose ground truths differ in size (synthetic pictures) is scored frame by frame.

    Args:
        model: the model (DDP / compile wrappers are removed: evaluation runs on one rank).
        batches: batches with ``gt_masks``.
        device, precision: where and how to run.
        gate_threshold: the gate of the gated figures.
        frames_per_video: frames per video, to report the batch size in videos.
        audio_override: replaces each batch's audio (e.g. deranged audio for an ablation).
        progress_label: show a progress bar with this label.
    """
    net = unwrap(model)
    was_training = net.training
    net.eval()
    ungated = AVSMetrics(frames_per_video=frames_per_video)
    gated = AVSMetrics(frames_per_video=frames_per_video)
    positive_scores: list[float] = []
    negative_scores: list[float] = []
    progress = _progress(enabled=progress_label is not None)
    try:
        with progress:
            task = progress.add_task(progress_label or "eval", total=None)
            for batch in batches:
                if batch.gt_masks is None:
                    raise ValueError("evaluation batches need ground-truth masks")
                images, audio = model_inputs(batch, device)
                if audio_override is not None:
                    audio = audio_override(batch).to(device)
                with precision.autocast():
                    outputs = net(images, audio)
                logits, scores = frame_logits(outputs, batch)
                gated_logits, _ = frame_logits(outputs, batch, gate_threshold=gate_threshold)
                _update(ungated, logits, batch)
                _update(gated, gated_logits, batch)
                for score, gt in zip(scores.tolist(), batch.gt_masks, strict=True):
                    (positive_scores if bool(gt.any()) else negative_scores).append(score)
                progress.advance(task, len(batch))
    finally:
        net.train(was_training)
    return EvalResult(
        ungated=ungated.compute(),
        gated=gated.compute(),
        gate_threshold=gate_threshold,
        mean_score_positive=float(np.mean(positive_scores)) if positive_scores else float("nan"),
        mean_score_negative=float(np.mean(negative_scores)) if negative_scores else float("nan"),
    )


def _progress(*, enabled: bool) -> Progress:
    """A rich progress bar on stderr (disabled on ranks other than 0 and when not asked for)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not enabled,
    )


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
    progress = _progress(enabled=context.is_main)
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
