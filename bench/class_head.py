"""Does AuTR's class head learn the classes? Train ``autr_tiny`` with the class head on the sample
corpus built with ``--class-masks`` and score held-out pictures with AVSBench-semantic's class
mIoU / F, against chance.

    python bench/class_head.py [--steps 1500] [--seeds 0] [--parallel 1] [--work DIR]

Data and model: as ``bench/audio_awareness.py`` (the same corpus and build: every matched
category of a picture its own sample, masks of at least 2 %, 80/10/10 picture splits, audio
re-paired from the bank), plus ``--class-masks``; ``autr_tiny`` with ``--class-head`` (K + 1
logits per query over the manifest's audio classes).

Figures on the test split (``M_J_class`` / ``M_F_class``: the official means over all C = K + 1
classes, background included; "seen": over the classes present or predicted):

- the trained model's semantic maps (Mask2Former's semantic inference, background below 0.5);
- chance with perfect masks: every ground-truth mask kept, its class replaced by one drawn
  uniformly from the K classes (seeded; the mean of 5 draws) — what a model that segments
  perfectly but cannot tell the classes apart scores;
- all background: every pixel predicted background.

Target: the trained model above chance with perfect masks.
"""

from __future__ import annotations

import logging
import multiprocessing
import random
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch
from audio_awareness import (
    bench_corpus,
    build_bench_shards,
    train_arm,
    train_config,
    training_bench_parser,
)

from avs_model.data.stream import resolve_shards
from avs_model.evaluation.benchmarks import synthetic_eval_batches
from avs_model.evaluation.class_metrics import ClassMetrics, ClassResult
from avs_model.evaluation.evaluate import evaluate_checkpoint
from avs_model.runtime.train_config import TrainConfig


def class_config(seed: int, steps: int, image_size: int) -> TrainConfig:
    config = train_config(seed, steps, plain_queries=False, image_size=image_size)
    config.name = f"class_head_{seed}"
    config.model_overrides["class_head"] = {"enabled": True}
    return config


def run_one(task: tuple[int, int, int, str, str]) -> dict[str, float]:
    """Train one model and score its test split (in a worker process, one thread)."""
    seed, steps, image_size, shards_dir, work = task
    start = time.perf_counter()
    result = train_arm(class_config(seed, steps, image_size), shards_dir, work)
    report = evaluate_checkpoint(result.last, shards=shards_dir, split="test", num_workers=0)
    classes = report.result.classes
    assert classes is not None, report.class_note
    return {
        "M_J_class": classes.miou,
        "M_F_class": classes.fscore,
        "M_J_class seen": classes.miou_seen,
        "M_J": report.result.ungated.miou,
        "seconds": time.perf_counter() - start,
    }


def baselines(shards_dir: Path, image_size: int, num_classes: int) -> dict[str, ClassResult]:
    """Chance with perfect masks (mean over 5 seeded draws) and all background, on test."""
    config = class_config(0, 1, image_size)
    shards = resolve_shards(shards_dir)
    maps = [
        gt
        for batch in synthetic_eval_batches(shards, "test", config, class_maps=True)
        for gt in batch.gt_class_maps
    ]
    background = ClassMetrics(num_classes + 1)
    for gt in maps:
        background.update_labels(torch.zeros_like(gt)[None], gt[None])
    draws = []
    for draw in range(5):
        rng = random.Random(draw)
        metrics = ClassMetrics(num_classes + 1)
        for gt in maps:
            pred = gt.clone()
            for value in gt.unique().tolist():
                if value > 0:
                    pred[gt == value] = rng.randint(1, num_classes)
            metrics.update_labels(pred[None], gt[None])
        draws.append(metrics.compute())
    mean = ClassResult(
        miou=statistics.mean(d.miou for d in draws),
        fscore=statistics.mean(d.fscore for d in draws),
        miou_seen=statistics.mean(d.miou_seen for d in draws),
        fscore_seen=statistics.mean(d.fscore_seen for d in draws),
        per_class_iou=[],
        per_class_fscore=[],
        frames_per_class=[],
    )
    return {"chance, perfect masks": mean, "all background": background.compute()}


def main() -> None:
    parser = training_bench_parser(__doc__.splitlines()[0], work="runs/class_head", steps=1500)
    parser.set_defaults(seeds=[0], parallel=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    torch.set_num_threads(1)
    start = time.perf_counter()
    shards_dir = build_bench_shards(
        bench_corpus(args.work, args.corpus_size),
        args.work / "shards",
        negative_ratio=0.0,
        class_masks=True,
    )
    shards = resolve_shards(shards_dir)
    table = shards.class_table() or []
    counts = {s: shards.num_samples(s) for s in ("train", "val", "test")}
    print(
        f"data: sample corpus ({args.corpus_size}) with --class-masks -> {counts} samples, "
        f"{len(table)} audio classes ({time.perf_counter() - start:.0f} s)",
        flush=True,
    )
    print(
        f"model: autr_tiny --class-head, {args.steps} steps of 8 pictures at {args.image_size} px",
        flush=True,
    )
    tasks = [
        (seed, args.steps, args.image_size, str(shards_dir), str(args.work)) for seed in args.seeds
    ]
    runs = []
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=args.parallel, mp_context=context) as pool:
        for (seed, *_), result in zip(tasks, pool.map(run_one, tasks), strict=True):
            runs.append(result)
            print(
                f"seed {seed}: M_J_class {result['M_J_class']:.3f}, M_F_class "
                f"{result['M_F_class']:.3f}, M_J_class over the seen classes "
                f"{result['M_J_class seen']:.3f}, binary M_J {result['M_J']:.3f} "
                f"({result['seconds']:.0f} s)",
                flush=True,
            )
    trained = statistics.mean(r["M_J_class"] for r in runs)
    print(
        f"test ({counts['test']} held-out samples), C = {len(table) + 1} classes with background:"
    )
    print(
        f"  trained (mean of {len(runs)} seeds)     M_J_class {trained:.3f}   M_F_class "
        f"{statistics.mean(r['M_F_class'] for r in runs):.3f}"
    )
    floors = baselines(shards_dir, args.image_size, len(table))
    for name, result in floors.items():
        print(f"  {name:<34} M_J_class {result.miou:.3f}   M_F_class {result.fscore:.3f}")
    chance = floors["chance, perfect masks"].miou
    print(
        f"  target: trained above chance with perfect masks ({trained:.3f} > {chance:.3f}): "
        f"{'met' if trained > chance else 'NOT met'}"
    )
    print(f"total time {(time.perf_counter() - start) / 60:.1f} min")


if __name__ == "__main__":
    main()
