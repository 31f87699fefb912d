"""``avs-train evaluate``: score a checkpoint on synthetic shards or on AVSBench S4 / MS3.

Figures (each ungated and gated by the sounding score):

- M_J: the official mean IoU (mean of per-batch means);
- M_F: the official F-measure, with the batch size it depends on (AVSBench default: 4 videos of
  5 frames, as the official S4 test script; synthetic pictures: one picture per batch, because
  pictures differ in size and are scored at their own resolution);
- M_F_per_frame and M_F_whole_set: batch-independent variants;
- a per-category table (the paper's Table 2 for zero-shot S4), and on S4 the means over the
  open-set split's seen and unseen halves;
- on data with negatives (frames with an empty ground truth): the positive frames' M_J / M_F,
  AVSBench-Robust's pixel FPR (ungated), the frame-level FPR (ungated and gated), per negative
  kind, and G-mIoU / G-F (``G_M_J`` / ``G_M_F``; see
  :mod:`avs_model.evaluation.negative_metrics`);
- with a model that has the class head, on shards built with ``--class-masks``: class mIoU / F
  (``M_J_class`` / ``M_F_class``) exactly as AVSBench-semantic computes them
  (:mod:`avs_model.evaluation.class_metrics`) on the semantic maps
  (:func:`avs_model.evaluation.inference.semantic_map`); otherwise the report says why there are
  none. Shards whose class table is not the checkpoint's are refused.

Outputs in ``--out``: ``metrics.json``, ``per_category.png`` (a bar chart) and ``page/index.html``,
a static page of the best and worst frames of each category with their audio
(:mod:`avs_model.evaluation.prediction_page`).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from avs_model.data.augment import ResizeConfig
from avs_model.data.avsbench_dataset import filter_categories, open_set_split
from avs_model.data.stream import resolve_shards
from avs_model.evaluation.benchmarks import evaluate_avsbench, evaluate_synthetic
from avs_model.evaluation.class_metrics import M_F_CLASS, M_J_CLASS
from avs_model.evaluation.gallery import FrameGallery
from avs_model.evaluation.loop import EvalResult
from avs_model.evaluation.metrics import M_F_PER_FRAME, M_F_WHOLE_SET, M_J, CategoryScores
from avs_model.evaluation.negative_metrics import (
    FPR_FRAME,
    FPR_FRAME_GATED,
    FPR_PIXEL,
    G_M_F,
    G_M_J,
)
from avs_model.evaluation.prediction_page import (
    AudioLookup,
    avsbench_audio,
    synthetic_audio,
    write_prediction_page,
)
from avs_model.modeling.build import build_model
from avs_model.modeling.config import AuTRConfig, ClassHeadConfig
from avs_model.modeling.weights import random_frozen_parts
from avs_model.runtime.amp import resolve_precision
from avs_model.runtime.checkpoint import (
    Checkpoint,
    CheckpointError,
    load_checkpoint,
    seed_everything,
)
from avs_model.runtime.distributed import resolve_device
from avs_model.runtime.train_config import TrainConfig, resolve_model_config
from avs_synth.sources.avsbench import AVSBenchReader

logger = logging.getLogger(__name__)


@dataclass
class EvaluationReport:
    """An evaluation's figures and where they were written.

    Attributes:
        dataset: ``synthetic`` or ``avsbench-s4`` / ``avsbench-ms3``.
        split: the split scored.
        checkpoint: the checkpoint path and step.
        result: the figures.
        groups: on S4, the frame-weighted mean IoU / per-frame M_F of the open-set halves.
        class_note: why there are no class scores (empty when there are).
        json_path, chart_path, page_path: the written files (None when not written).
    """

    dataset: str
    split: str
    checkpoint: dict[str, Any]
    result: EvalResult
    groups: dict[str, dict[str, float]]
    class_note: str = ""
    json_path: Path | None = None
    chart_path: Path | None = None
    page_path: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "split": self.split,
            "checkpoint": self.checkpoint,
            **self.result.to_dict(),
            "groups": self.groups,
            **({"class_note": self.class_note} if self.class_note else {}),
        }


def load_model(checkpoint: str | Path, device: torch.device) -> tuple[torch.nn.Module, Checkpoint]:
    """The model of a checkpoint (weights-only loading), in eval mode on ``device``.

    Every weight comes from the checkpoint: the weight files its config names are never opened.
    """
    ckpt = load_checkpoint(checkpoint)
    model = build_model(AuTRConfig.from_dict(ckpt.model_config), load_weights=False)
    try:
        model.load_state_dict(ckpt.model)
    except RuntimeError as error:
        raise CheckpointError(
            f"{checkpoint}: the weights do not fit the checkpoint's own model config: "
            f"{str(error).splitlines()[0]}"
        ) from None
    model.to(device).eval()
    return model, ckpt


def untrained_model(config: TrainConfig, device: torch.device) -> torch.nn.Module:
    """The model a run of ``config`` starts from, before any step: the configured pretrained
    parts (a frozen part needs its weight file), everything else initialised with
    ``config.seed`` exactly as training initialises it (the paper's "0 % w/o P.T." row)."""
    seed_everything(config.seed)
    model = build_model(resolve_model_config(config))
    model.to(device).eval()
    return model


def group_scores(
    per_category: dict[str, CategoryScores], groups: dict[str, tuple[str, ...]]
) -> dict[str, dict[str, float]]:
    """Frame-weighted mean IoU and per-frame M_F over each group of categories present."""
    out = {}
    for name, members in groups.items():
        scores = [per_category[c] for c in members if c in per_category]
        frames = sum(s.num_frames for s in scores)
        nonempty = sum(s.num_nonempty for s in scores)
        if not frames:
            continue
        out[name] = {
            "categories": float(len(scores)),
            "frames": float(frames),
            M_J: sum(s.miou * s.num_frames for s in scores) / frames,
            M_F_PER_FRAME: (
                sum(s.fmeasure_per_frame * s.num_nonempty for s in scores) / nonempty
                if nonempty
                else 0.0
            ),
        }
    return out


def evaluate_checkpoint(
    checkpoint: str | Path | None,
    *,
    untrained: TrainConfig | None = None,
    shards: str | Path | None = None,
    avsbench: str | Path | None = None,
    subset: Literal["s4", "ms3"] = "s4",
    split: str = "test",
    batch_videos: int = 4,
    gate_threshold: float | None = None,
    categories: tuple[str, ...] = (),
    exclude_categories: tuple[str, ...] = (),
    open_set: Literal["seen", "unseen"] | None = None,
    image_size: int | None = None,
    device: str = "auto",
    num_workers: int = 2,
    max_samples: int | None = None,
    out_dir: str | Path | None = None,
    page_frames: int = 3,
) -> EvaluationReport:
    """Score ``checkpoint`` on one dataset split.

    Args:
        checkpoint: an ``avs-train`` checkpoint (None with ``untrained``).
        untrained: score the untrained model of this train config instead
            (:func:`untrained_model`).
        shards: a synthetic shard location (exclusive with ``avsbench``).
        avsbench: an AVSBench folder.
        subset: ``s4`` or ``ms3`` (AVSBench).
        split: ``test`` (default), ``val`` or ``train`` (AVSBench train has unannotated frames
            and cannot be scored).
        batch_videos: videos per M_F batch (AVSBench; the official S4 script uses 4).
        gate_threshold: the gated figures' threshold (default: the checkpoint's).
        categories, exclude_categories: score only these S4 categories / leave these out.
        open_set: score only the ``seen`` or ``unseen`` half of the shipped open-set split.
        image_size: the model input side (default: the checkpoint's training size; on AVSBench a
            checkpoint trained with ``keep_aspect`` pictures is fed square 224 x 224 frames).
        device: ``auto``, ``cpu``, ``cuda``.
        num_workers: loader workers.
        max_samples: score at most this many pictures / videos.
        out_dir: write ``metrics.json``, ``per_category.png`` and ``page/`` here.
        page_frames: best and worst frames per category on the page (0: no page).
    """
    if (shards is None) == (avsbench is None):
        raise ValueError("give exactly one of shards (synthetic) or avsbench (an AVSBench root)")
    if (checkpoint is None) == (untrained is None):
        raise ValueError("give exactly one of a checkpoint or an untrained config")
    torch_device = resolve_device(device)
    if untrained is not None:
        config = TrainConfig.from_dict(untrained.to_dict())
        model = untrained_model(config, torch_device)
        model_config = resolve_model_config(config)
        described = {
            "path": None,
            "untrained": config.name,
            "seed": config.seed,
            "step": 0,
            "weights": model.weight_sources(),
        }
    else:
        model, ckpt = load_model(checkpoint, torch_device)
        model_config = AuTRConfig.from_dict(ckpt.model_config)
        config = TrainConfig.from_dict(ckpt.train_config, source=str(checkpoint))
        described = {
            "path": str(checkpoint),
            "step": ckpt.step,
            "data": ckpt.data.get("kind"),
            "weights": ckpt.weights,
        }
    config.data.num_workers = num_workers
    if avsbench is not None and config.data.resize.mode != "square":
        # AVSBench frames are scored as the benchmark feeds them: square 224 x 224 pictures
        config.data.resize = ResizeConfig(mode="square", size=224)
    if image_size is not None:
        config.data.resize.size = image_size
    if gate_threshold is not None:
        config.eval.gate_threshold = gate_threshold
    precision = resolve_precision(config.precision, torch_device)
    groups: dict[str, dict[str, float]] = {}
    class_note = ""
    gallery = FrameGallery(per_category=page_frames if out_dir is not None else 0)
    audio: AudioLookup
    if shards is not None:
        shard_set = resolve_shards(shards)
        class_note = class_scores_note(
            model_config.class_head, shard_set.class_table(), where=str(shards)
        )
        dataset = "synthetic"
        result = evaluate_synthetic(
            model,
            shard_set,
            split,
            config,
            device=torch_device,
            precision=precision,
            max_samples=max_samples,
            progress=True,
            gallery=gallery,
        )
        audio = synthetic_audio(shard_set.urls(split))
    else:
        reader = AVSBenchReader(root=avsbench, subset=subset)
        videos = reader.videos(split)
        if open_set is not None:
            seen, unseen = open_set_split()
            categories = (*categories, *(seen if open_set == "seen" else unseen))
        if categories or exclude_categories:
            videos = filter_categories(
                videos, include=categories, exclude=exclude_categories, known=reader.categories
            )
        if max_samples is not None:
            videos = videos[:max_samples]
        dataset = f"avsbench-{subset}"
        class_note = (
            f"no class scores: AVSBench {subset.upper()} has no class maps (AVSBench-semantic's "
            "layout is not read)"
            if model_config.class_head.enabled
            else ""
        )
        result = evaluate_avsbench(
            model,
            videos,
            config,
            device=torch_device,
            precision=precision,
            batch_videos=batch_videos,
            progress=True,
            gallery=gallery,
        )
        audio = avsbench_audio(videos)
        if subset == "s4":
            seen, unseen = open_set_split()
            groups = group_scores(result.ungated.per_category, {"seen": seen, "unseen": unseen})
    report = EvaluationReport(
        dataset=dataset,
        split=split,
        checkpoint=described,
        result=result,
        groups=groups,
        class_note=class_note,
    )
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        report.json_path = out / "metrics.json"
        report.json_path.write_text(json.dumps(report.to_dict(), indent=2, allow_nan=False))
        if result.ungated.per_category:
            report.chart_path = plot_per_category(
                result.ungated.per_category,
                out / "per_category.png",
                title=f"{dataset} {split}: M_J and M_F per category",
            )
        if gallery.per_category:
            report.page_path = write_prediction_page(
                gallery,
                out / "page",
                title=f"{dataset} {split}: best and worst frames per category",
                summary=[
                    *format_report(report).splitlines()[:3],
                    f"The {page_frames} best and {page_frames} worst frames of each category by "
                    "IoU (ungated). Point at a picture to see it without the masks.",
                ],
                audio=audio,
            )
    return report


def class_scores_note(head: ClassHeadConfig, table: list[str] | None, *, where: str) -> str:
    """Why there will be no class scores for a model with ``head`` on shards whose class table is
    ``table`` (None: no class maps); empty when there will be, or when neither the model nor the
    data has anything to do with classes. Shards whose table is not the model's are refused."""
    if not head.enabled:  # said only where class scores could be expected: data with class maps
        return "" if table is None else "no class scores: the model has no class head"
    if table is None:
        return f"no class scores: {where} has no class maps (build with --class-masks)"
    head.check_table(table, where=where)
    return ""


def format_report(report: EvaluationReport) -> str:
    """The report as text: the headline figures, then the per-category table."""
    r = report.result
    ckpt = report.checkpoint
    source = (
        f"{ckpt['path']}, step {ckpt['step']}"
        if ckpt.get("path")
        else f"untrained {ckpt.get('untrained')}, seed {ckpt.get('seed')}"
    )
    lines = [f"{report.dataset} {report.split} ({source})"]
    random_parts = random_frozen_parts(ckpt.get("weights") or {})
    if random_parts:
        lines.append(
            f"  WARNING: frozen {' and '.join(random_parts)} on RANDOM weights (random_init): "
            "these figures are not comparable with published numbers"
        )
    for name, m in (("ungated", r.ungated), (f"gated @ {r.gate_threshold:g}", r.gated)):
        batch = f"{m.batch_frames} frames" + (
            f" = {m.batch_videos} videos" if m.batch_videos is not None else ""
        )
        lines.append(
            f"  {name:<14} M_J {m.miou:.4f}   M_F {m.fmeasure:.4f} (batch {batch})   "
            f"{M_F_PER_FRAME} {m.fmeasure_per_frame:.4f}   {M_F_WHOLE_SET} {m.fmeasure_curve:.4f}"
        )

    def score(value: float) -> str:
        return "none" if math.isnan(value) else f"{value:.3f}"

    lines.append(
        f"  mean sounding score: positives {score(r.mean_score_positive)}, "
        f"negatives {score(r.mean_score_negative)} (frames with an empty ground truth)"
    )
    lines.extend(_negative_lines(r))
    lines.extend(_class_lines(report))
    if r.ungated.per_category:
        lines.append("")
        lines.append(
            f"  {'category':<32} {'frames':>6} {M_J:>7} {M_F_PER_FRAME:>13} {M_F_WHOLE_SET:>13}"
        )
        for name, s in r.ungated.per_category.items():
            lines.append(
                f"  {name[:32]:<32} {s.num_frames:>6d} {s.miou:>7.4f} "
                f"{s.fmeasure_per_frame:>13.4f} {s.fmeasure_curve:>13.4f}"
            )
    for name, g in report.groups.items():
        lines.append(
            f"  open-set {name}: {int(g['categories'])} categories, {int(g['frames'])} frames, "
            f"{M_J} {g[M_J]:.4f}, {M_F_PER_FRAME} {g[M_F_PER_FRAME]:.4f}"
        )
    return "\n".join(lines)


def _negative_lines(r: EvalResult) -> list[str]:
    """The positive-only figures, the FPRs per negative kind and G-mIoU / G-F (none without
    negatives)."""
    if r.negatives is None:
        return []
    lines = []
    if r.positives is not None:
        g = r.robust_scores()
        lines.append(
            f"  positives only {M_J} {r.positives.miou:.4f}   M_F {r.positives.fmeasure:.4f} "
            f"({r.positives.num_frames} frames)   {G_M_J} {g[G_M_J]:.4f}   {G_M_F} {g[G_M_F]:.4f} "
            "(AVSBench-Robust's G-mIoU / G-F)"
        )
    lines.append(
        f"  negatives      {'kind':<12} {'frames':>6} {FPR_PIXEL:>10} {FPR_FRAME:>10} "
        f"{FPR_FRAME_GATED:>16}   ({FPR_PIXEL}: AVSBench-Robust's calculate_FPR, ungated)"
    )
    rows = [("all", r.negatives.total), *r.negatives.per_kind.items()]
    for kind, s in rows:
        lines.append(
            f"  {'':<14} {kind:<12} {s.num_frames:>6d} {s.pixel_fpr:>10.4f} {s.frame_fpr:>10.4f} "
            f"{s.frame_fpr_gated:>16.4f}"
        )
    return lines


def _class_lines(report: EvaluationReport) -> list[str]:
    """The class scores (AVSBench-semantic's), or why there are none."""
    c = report.result.classes
    if c is None:
        return [f"  {report.class_note}"] if report.class_note else []
    seen = sum(n > 0 for n in c.frames_per_class)
    return [
        f"  classes        {M_J_CLASS} {c.miou:.4f}   {M_F_CLASS} {c.fscore:.4f} (AVSBench-"
        f"semantic's, mean over all {len(c.frames_per_class)} classes, background included)   "
        f"over the {seen} seen: {M_J_CLASS} {c.miou_seen:.4f}   {M_F_CLASS} {c.fscore_seen:.4f}"
    ]


def plot_per_category(per_category: dict[str, CategoryScores], path: Path, *, title: str) -> Path:
    """A horizontal bar chart of M_J and per-frame M_F per category (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(per_category)
    mj = [per_category[n].miou for n in names]
    mf = [per_category[n].fmeasure_per_frame for n in names]
    height = max(2.5, 0.35 * len(names) + 1.0)
    fig, ax = plt.subplots(figsize=(7, height))
    ys = range(len(names))
    ax.barh([y + 0.2 for y in ys], mj, height=0.4, label=M_J)
    ax.barh([y - 0.2 for y in ys], mf, height=0.4, label=M_F_PER_FRAME)
    ax.set_yticks(list(ys))
    ax.set_yticklabels(names)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_title(title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
