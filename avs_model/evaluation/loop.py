"""The evaluation loop: M_J / M_F of a model over batches, ungated and gated, the official way.

- :func:`frame_logits`: the selected query's mask logits of every frame at its ground-truth
  resolution (padding cropped away), ungated or gated by the sounding score.
- :func:`frame_semantic_maps`: with the class head, every frame's semantic map at its ground-truth
  resolution (:func:`~avs_model.evaluation.inference.semantic_map`).
- :func:`evaluate`: M_J / M_F over a loader, ungated and gated; training validates with it and
  ``avs-train evaluate`` scores checkpoints with it. Where the data holds negatives (frames with
  an empty ground truth) it also scores the positive frames alone and the negatives' false-
  positive rates with AVSBench-Robust's G-mIoU / G-F (:mod:`avs_model.evaluation.negative_metrics`).
  Where the model has the class head and the batches carry class maps, it also scores the
  semantic maps with AVSBench-semantic's class mIoU / F (:mod:`avs_model.evaluation.class_metrics`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avs_model.data.augment import normalize_images
from avs_model.data.frame_batch import FrameBatch
from avs_model.evaluation.class_metrics import M_F_CLASS, M_J_CLASS, ClassMetrics, ClassResult
from avs_model.evaluation.gallery import FrameGallery, GalleryFrame
from avs_model.evaluation.inference import (
    gate,
    select_sounding_mask,
    semantic_map,
    sounding_query,
)
from avs_model.evaluation.metrics import (
    M_F,
    M_F_PER_FRAME,
    M_F_WHOLE_SET,
    M_J,
    AVSMetrics,
    MetricsResult,
)
from avs_model.evaluation.negative_metrics import (
    FPR_FRAME,
    FPR_FRAME_GATED,
    FPR_PIXEL,
    G_M_F,
    G_M_J,
    NegativeMetrics,
    NegativeResult,
    harmonic_score,
)
from avs_model.runtime.amp import Precision
from avs_model.runtime.checkpoint import unwrap
from avs_model.runtime.progress import progress_bar


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

    A frame that fills the model input is resized straight from the mask resolution to its target
    (one bilinear step); a padded frame is first resized to the input size and its padding
    cropped away, then resized to its target. Each frame's logits depend on that frame alone,
    not on the other frames of its batch.

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
    unpadded = [tuple(c) == (height, width) for c in batch.content_sizes]
    if all(unpadded) and len(set(sizes)) == 1:
        logits, scores = select_sounding_mask(outputs, size=sizes[0], gate_threshold=gate_threshold)
        return list(logits.float().cpu().unbind(0)), scores.float().cpu()
    masks, scores = sounding_query(outputs)  # [N, h, w], [N]
    out = []
    for i, (content, size) in enumerate(zip(batch.content_sizes, sizes, strict=True)):
        first = tuple(size) if unpadded[i] else (height, width)
        logit = F.interpolate(
            masks[i : i + 1, None], size=first, mode="bilinear", align_corners=False
        )
        logit = gate(logit, scores[i : i + 1], gate_threshold)
        if not unpadded[i]:
            logit = logit[..., : content[0], : content[1]].float()  # [1, 1, h, w]
            if tuple(logit.shape[-2:]) != tuple(size):
                logit = F.interpolate(logit, size=tuple(size), mode="bilinear", align_corners=False)
        out.append(logit[0, 0].float().cpu())
    return out, scores.float().cpu()


def frame_semantic_maps(outputs: dict[str, Any], batch: FrameBatch) -> list[Tensor]:
    """Per frame, the semantic map (int64 [Hg_i, Wg_i] on the CPU: 0 background, ``k + 1`` for
    class k) of a model with the class head, at the resolution of the frame's class map (padding
    cropped away first, as :func:`frame_logits` does)."""
    if batch.gt_class_maps is None:
        raise ValueError("semantic maps are scored against class maps: the batch has none")
    height, width = batch.images.shape[-2:]
    out = []
    for i, (content, gt) in enumerate(zip(batch.content_sizes, batch.gt_class_maps, strict=True)):
        masks = outputs["pred_masks"][i : i + 1].float()  # [1, Q, h, w]
        if tuple(content) != (height, width):
            masks = F.interpolate(masks, size=(height, width), mode="bilinear", align_corners=False)
            masks = masks[..., : content[0], : content[1]]
        masks = F.interpolate(masks, size=tuple(gt.shape), mode="bilinear", align_corners=False)
        out.append(semantic_map(masks, outputs["pred_logits"][i : i + 1])[0].cpu())
    return out


@dataclass
class EvalResult:
    """Figures of one evaluation.

    Attributes:
        ungated: every frame gets its best query's mask.
        gated: frames whose best sounding score is below ``gate_threshold`` get an empty mask.
        gate_threshold: the gate used.
        mean_score_positive / mean_score_negative: the mean best sounding score over frames
            whose ground truth is non-empty / empty (NaN when there are none).
        previews: the first frames with their predictions (TensorBoard images; not in
            :meth:`to_dict`).
        positives: M_J / M_F (ungated) of the frames with a non-empty ground truth alone (None
            when there are none).
        negatives: the false-positive rates on the frames with an empty ground truth, in total
            and per negative kind (None when there are none).
        classes: the semantic maps' class mIoU / F (None unless the model has the class head
            and the data class maps).
    """

    ungated: MetricsResult
    gated: MetricsResult
    gate_threshold: float
    mean_score_positive: float
    mean_score_negative: float
    previews: list[GalleryFrame] = field(default_factory=list)
    positives: MetricsResult | None = None
    negatives: NegativeResult | None = None
    classes: ClassResult | None = None

    def robust_scores(self) -> dict[str, float]:
        """AVSBench-Robust's G-mIoU / G-F (``G_M_J`` / ``G_M_F``): the harmonic means of the
        positive frames' M_J / M_F and ``1 - FPR_pixel`` of the negatives (empty without both
        positives and negatives)."""
        if self.positives is None or self.negatives is None:
            return {}
        fpr = self.negatives.total.pixel_fpr
        return {
            G_M_J: harmonic_score(self.positives.miou, fpr),
            G_M_F: harmonic_score(self.positives.fmeasure, fpr),
        }

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict; NaN (no frames of a kind) becomes None, so the JSON is valid."""
        return json_safe(
            {
                "ungated": self.ungated.to_dict(),
                "gated": self.gated.to_dict(),
                "gate_threshold": self.gate_threshold,
                "mean_score_positive": self.mean_score_positive,
                "mean_score_negative": self.mean_score_negative,
                "positives": None if self.positives is None else self.positives.to_dict(),
                "negatives": None if self.negatives is None else self.negatives.to_dict(),
                "classes": None if self.classes is None else self.classes.to_dict(),
                **self.robust_scores(),
            }
        )

    def scalars(self) -> dict[str, float]:
        """The headline figures for logs (``M_J``, ``M_F``, ``M_F_per_frame``, ..., and on data
        with negatives ``FPR_pixel``, ``FPR_frame``, ``FPR_frame_gated``, ``G_M_J``, ``G_M_F``;
        with class scores ``M_J_class``, ``M_F_class``)."""
        out = {
            M_J: self.ungated.miou,
            M_F: self.ungated.fmeasure,
            M_F_PER_FRAME: self.ungated.fmeasure_per_frame,
            M_F_WHOLE_SET: self.ungated.fmeasure_curve,
            f"{M_J}_gated": self.gated.miou,
            f"{M_F}_gated": self.gated.fmeasure,
        }
        if self.negatives is not None:
            out[FPR_PIXEL] = self.negatives.total.pixel_fpr
            out[FPR_FRAME] = self.negatives.total.frame_fpr
            out[FPR_FRAME_GATED] = self.negatives.total.frame_fpr_gated
        out.update(self.robust_scores())
        if self.classes is not None:
            out[M_J_CLASS] = self.classes.miou
            out[M_F_CLASS] = self.classes.fscore
        return out


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (strict JSON has no NaN)."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _update(
    metrics: AVSMetrics, logits: list[Tensor], gt_masks: list[Tensor], categories: list[str]
) -> None:
    shapes = {tuple(g.shape) for g in gt_masks}
    if len(shapes) == 1:
        metrics.update(torch.stack(logits), torch.stack(gt_masks), categories)
        return
    for logit, gt, category in zip(logits, gt_masks, categories, strict=True):
        metrics.update(logit[None], gt[None], [category])  # pictures of different sizes


UNLABELLED_KIND = "unlabelled"
"""The kind of a negative frame whose data records none (an AVSBench frame with an empty mask)."""


def _split_update(
    positives: AVSMetrics,
    negatives: NegativeMetrics,
    logits: list[Tensor],
    gated_logits: list[Tensor],
    gt_masks: list[Tensor],
    categories: list[str],
    kinds: list[str],
) -> None:
    """One metrics batch's positive frames into ``positives`` (one metrics batch) and its negative
    frames into ``negatives`` (one FPR batch; frames of different sizes each their own)."""
    empty = [not bool(g.any()) for g in gt_masks]
    pos = [i for i, e in enumerate(empty) if not e]
    neg = [i for i, e in enumerate(empty) if e]
    if pos:
        _update(
            positives,
            [logits[i] for i in pos],
            [gt_masks[i] for i in pos],
            [categories[i] for i in pos],
        )
    groups = [neg] if len({tuple(logits[i].shape) for i in neg}) <= 1 else [[i] for i in neg]
    for rows in groups:
        if rows:
            negatives.update(
                torch.stack([logits[i] for i in rows]),
                torch.stack([gated_logits[i] for i in rows]),
                [kinds[i] or UNLABELLED_KIND for i in rows],
            )


def metrics_batches(batch: FrameBatch, *, per_sample: bool) -> list[list[int]]:
    """The frames of each metrics batch of a loader batch: all of them, or with ``per_sample``
    each collated sample's (a picture: one frame; a clip: its frames)."""
    if not per_sample:
        return [list(range(len(batch)))]
    step = batch.frames_per_sample
    return [list(range(start, start + step)) for start in range(0, len(batch), step)]


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
    gallery: FrameGallery | None = None,
    metrics_per_sample: bool = False,
) -> EvalResult:
    """M_J / M_F (official per-batch and batch-independent), ungated and gated; on data with
    negatives also the positive frames' M_J / M_F, the negatives' FPRs and G-mIoU / G-F.

    Each loader batch is one metrics batch (for AVSBench: ``batch_videos`` videos x 5 frames),
    or with ``metrics_per_sample`` each of its collated samples (synthetic data: a picture, or a
    clip's frames, whatever the model's batch); a metrics batch whose ground truths differ in
    size is scored frame by frame.

    Args:
        model: the model (DDP / compile wrappers are removed: evaluation runs on one rank).
        batches: batches with ``gt_masks``.
        device, precision: where and how to run.
        gate_threshold: the gate of the gated figures.
        frames_per_video: frames per video, to report the batch size in videos.
        audio_override: replaces each batch's audio (e.g. deranged audio for an ablation).
        progress_label: show a progress bar with this label.
        gallery: keeps frames for pictures (default: the first few, as ``previews``).
        metrics_per_sample: one metrics batch per collated sample, not per loader batch.
    """
    gallery = gallery if gallery is not None else FrameGallery()
    net = unwrap(model)
    was_training = net.training
    net.eval()
    ungated = AVSMetrics(frames_per_video=frames_per_video)
    gated = AVSMetrics(frames_per_video=frames_per_video)
    positives = AVSMetrics(frames_per_video=frames_per_video)
    negatives = NegativeMetrics()
    positive_scores: list[float] = []
    negative_scores: list[float] = []
    class_metrics: ClassMetrics | None = None
    progress = progress_bar(enabled=progress_label is not None)
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
                kinds = batch.negative_kinds or [""] * len(batch)
                for rows in metrics_batches(batch, per_sample=metrics_per_sample):
                    gts = [batch.gt_masks[i] for i in rows]
                    names = [batch.categories[i] for i in rows]
                    ungated_part = [logits[i] for i in rows]
                    gated_part = [gated_logits[i] for i in rows]
                    _update(ungated, ungated_part, gts, names)
                    _update(gated, gated_part, gts, names)
                    _split_update(
                        positives,
                        negatives,
                        ungated_part,
                        gated_part,
                        gts,
                        names,
                        [kinds[i] for i in rows],
                    )
                gallery.add(batch, logits, scores)
                if "pred_logits" in outputs and batch.gt_class_maps is not None:
                    if class_metrics is None:  # K + 1 logits: C = K + 1 with the background
                        class_metrics = ClassMetrics(outputs["pred_logits"].shape[-1])
                    semantic = frame_semantic_maps(outputs, batch)
                    for pred, gt in zip(semantic, batch.gt_class_maps, strict=True):
                        class_metrics.update_labels(pred[None], gt[None])
                for score, gt in zip(scores.tolist(), batch.gt_masks, strict=True):
                    (positive_scores if bool(gt.any()) else negative_scores).append(score)
                progress.advance(task, len(batch))
    finally:
        net.train(was_training)
    negative_result = negatives.compute()
    return EvalResult(
        ungated=ungated.compute(),
        gated=gated.compute(),
        gate_threshold=gate_threshold,
        mean_score_positive=float(np.mean(positive_scores)) if positive_scores else float("nan"),
        mean_score_negative=float(np.mean(negative_scores)) if negative_scores else float("nan"),
        previews=list(gallery.first_frames),
        positives=positives.compute() if negative_result and positives.batch_sizes else None,
        negatives=negative_result,
        classes=None if class_metrics is None else class_metrics.compute(),
    )
