"""Do negative kinds teach AuTR to stay empty? Train ``autr_tiny`` on the sample corpus with and
without the negatives of ``--negatives absent,silence,noise,offscreen`` and score both on the same
held-out positives and negatives of every kind.

    python bench/negative_robustness.py [--steps 600] [--seeds 0 1 2] [--parallel 2] [--work DIR]

Data: one build of the "proofs" sample corpus (``--corpus-size``, the corpus of
``bench/audio_awareness.py``) with every matched category of a picture as its own sample and
negative kinds at ``--negative-ratio`` negatives per positive (an equal share per kind; 2.4 gives
~360 held-out negatives per kind beside ~570 held-out positives). The arm "with" trains on a copy
whose train shards keep every absent and off-screen negative but only ``--easy-share`` of the
silence and noise ones (a seeded draw by key): those two are told apart by the audio alone and are
learnt from a few hundred, while absent and off-screen negatives need the picture and the sound
compared, the hard part. Its batches hold 8 positives on average, as the other arm's, plus their
negatives (21 samples with the defaults), so both arms train their masks on as many positives.
The arm "without" trains on a copy whose train shards hold the positives only. Both are scored
on the same full test split (all kinds, test pictures never seen in training).

Model and training: as ``bench/audio_awareness.py`` (``autr_tiny``, frozen EfficientNet-Lite0
with ImageNet weights, trainable audio CNN, 96 px, AdamW cosine, train audio re-paired from the
bank; a silence / noise negative keeps its own window). AuTR learns negatives through its
sounding head (every query's score towards 0 on an empty mask); its masks are not trained on them.
``--audio-tags`` gives both arms the audio-tagging head; ``--audio-pretrain-steps N`` first
pre-trains each arm's small audio CNN N steps on the build's audio bank (``avs-train
pretrain-audio``, single sources: the build has no mixes), counted in the run's time.

Budget: 600 steps (the default) take ~630 CPU-s for the arm with negatives (batches of 21) and
~380 for the other, each with its scoring of the ~2,000 test samples, so both arms x 3 seeds fit
the issue's 30 minutes on two idle cores (~3,000 CPU-s; ``--parallel 2``). With
``--audio-tags --audio-pretrain-steps 800`` a seed takes ~700 + ~450 CPU-s (3,477 in all for 3
seeds, measured), still within the budget, but its absent FPR sits at the 0.1 (0.095 that day,
0.107 when rerun on 2026-11-30). The setting that meets every target with a margin is the same
with ``--steps 900``: absent 0.049, off-screen 0.050, positive M_J gap -0.004, 1,914 CPU-s and
17.2 min on the 2-core Xeon of 2026-11-30 (about twice as fast a core as the one above).

Figures, each the mean over ``--seeds`` (one training run per seed and arm), on the test split:

- positives: M_J of the positive frames alone (ungated), and the share of them whose sounding
  score passes the gate (so that a model that never passes the gate cannot meet the FPR targets
  unnoticed);
- per negative kind: ``FPR_frame_gated`` (share of negative frames with any predicted pixel once
  frames whose sounding score is below the 0.5 gate are emptied: what a user of the model sees),
  ``FPR_frame`` (ungated: the selected query's mask as it is) and ``FPR_pixel`` (AVSBench-Robust's
  ``calculate_FPR``, ungated);
- G_M_J (G-mIoU): harmonic mean of the positives' M_J and ``1 - FPR_pixel``.

Targets (issue 15 (b)), on the gated frame FPR: with negatives <= 0.1 for every kind and <= 1/3
of the arm without them; positive M_J at most 0.05 below that arm's.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import multiprocessing
import shutil
import statistics
import tarfile
import time
import zlib
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch
from audio_awareness import (
    BACKBONE_WEIGHTS,
    audio_stage,
    bench_corpus,
    build_bench_shards,
    cpu_seconds,
    train_arm,
    train_config,
    training_bench_parser,
)

from avs_model.data.stream import resolve_shards
from avs_model.evaluation.benchmarks import synthetic_eval_batches
from avs_model.evaluation.evaluate import load_model
from avs_model.evaluation.gallery import FrameGallery
from avs_model.evaluation.loop import evaluate
from avs_model.evaluation.negative_metrics import G_M_J
from avs_model.runtime.amp import resolve_precision
from avs_synth import schema

KINDS = ("absent", "silence", "noise", "offscreen")
EASY_KINDS = ("silence", "noise")
"""Kinds told apart by the audio alone (no sounding class): a share of them is enough to train."""


def prepare_shards(
    work: Path, corpus_size: str, negative_ratio: float, easy_share: float
) -> tuple[Path, Path, Path]:
    """The build with negative kinds, the "with" arm's train copy (``easy_share`` of the train
    silence and noise negatives kept) and the positives-only copy (all kept in ``work``)."""
    build = build_bench_shards(
        bench_corpus(work, corpus_size),
        work / "shards_with_negatives",
        negative_ratio=negative_ratio,
        negatives=KINDS,
    )
    with_negatives = work / f"shards_train_with_negatives_{easy_share:g}"
    if not (with_negatives / "manifest.json").is_file():
        filtered_copy(
            build,
            with_negatives,
            keep=lambda meta: meta.kind not in EASY_KINDS or kept_by_key(meta.key, easy_share),
            splits=("train",),
        )
    without = work / "shards_positives_only"
    if not (without / "manifest.json").is_file():
        filtered_copy(build, without, keep=lambda meta: not meta.negative, splits=("train",))
    return build, with_negatives, without


def kept_by_key(key: str, share: float) -> bool:
    """A seeded-by-key draw: True for about ``share`` of the keys, the same on every run."""
    return zlib.crc32(key.encode()) / 2**32 < share


def filtered_copy(
    source: Path,
    out: Path,
    *,
    keep: Callable[[schema.TripletMeta], bool],
    splits: tuple[str, ...],
) -> None:
    """A copy of the build ``source`` whose ``splits`` shards keep only the samples ``keep``
    accepts (the manifest's counts and shard digests of those splits updated; every other shard
    copied as it is)."""
    out.mkdir(parents=True, exist_ok=True)
    manifest = json.loads((source / schema.MANIFEST_NAME).read_text())
    for split in splits:
        section = manifest["splits"][split]
        kept_metas: list[schema.TripletMeta] = []
        for shard in section["shards"]:
            data, kept = _filter_tar(source / shard["name"], keep)
            kept_metas += kept
            (out / shard["name"]).write_bytes(data)
            shard.update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
            shard["samples"] = len(kept)
        section.pop("per_kind", None)
        section.update(_counts(kept_metas, with_sources="per_num_sources" in section))
    for path in source.glob("*.tar"):
        if not (out / path.name).exists():
            shutil.copyfile(path, out / path.name)
    (out / schema.MANIFEST_NAME).write_text(json.dumps(manifest, indent=1, sort_keys=True))


def _counts(metas: list[schema.TripletMeta], *, with_sources: bool) -> dict[str, Any]:
    """A split's counts of the manifest for these samples (as the build counts them): samples,
    positives and negatives, then per audio class, per source dataset, and positives per number
    of sources."""
    negatives = sum(meta.negative for meta in metas)
    totals = {"samples": len(metas), "positives": len(metas) - negatives, "negatives": negatives}
    per: dict[str, dict[str, int]] = {
        "per_category": defaultdict(int),
        "per_source": defaultdict(int),
    }
    if with_sources:
        per["per_num_sources"] = defaultdict(int)
    for meta in metas:
        per["per_category"][meta.audio_class] += 1
        per["per_source"][meta.source] += 1
        if with_sources and not meta.negative:
            per["per_num_sources"][str(meta.num_sources)] += 1
    return totals | {name: dict(sorted(counts.items())) for name, counts in per.items()}


def _filter_tar(
    path: Path, keep: Callable[[schema.TripletMeta], bool]
) -> tuple[bytes, list[schema.TripletMeta]]:
    """The tar's members of the samples ``keep`` accepts, in order, and those samples' metadata."""
    with tarfile.open(path) as tar:
        members = tar.getmembers()
        kept: dict[str, schema.TripletMeta] = {}
        for member in members:
            if member.name.endswith(".json"):
                meta = schema.decode_triplet_meta(tar.extractfile(member).read())
                if keep(meta):
                    kept[member.name.split(".", 1)[0]] = meta
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as out:
            for member in members:
                if member.name.split(".", 1)[0] in kept:
                    out.addfile(member, tar.extractfile(member))
    return buffer.getvalue(), list(kept.values())


class _GateRecorder(FrameGallery):
    """The gallery of :func:`evaluate`, also counting the positive frames that pass the gate."""

    def __init__(self, gate: float) -> None:
        super().__init__()
        self.gate = gate
        self.passed: list[bool] = []

    def add(self, batch, logits, scores) -> None:
        super().add(batch, logits, scores)
        for score, gt in zip(scores.tolist(), batch.gt_masks, strict=True):
            if bool(gt.any()):
                self.passed.append(score >= self.gate)


def score(checkpoint: Path, test_shards: Path, config) -> dict[str, float]:
    """The positive M_J, the share of positives passing the gate, per kind FPRs and G_M_J of a
    checkpoint on the test split."""
    device = torch.device("cpu")
    model, _ = load_model(checkpoint, device)
    recorder = _GateRecorder(config.eval.gate_threshold)
    result = evaluate(
        model,
        synthetic_eval_batches(resolve_shards(test_shards), "test", config),
        device=device,
        precision=resolve_precision("fp32", device),
        gate_threshold=config.eval.gate_threshold,
        gallery=recorder,
        metrics_per_sample=True,
    )
    assert result.positives is not None and result.negatives is not None
    figures = {
        "positive M_J": result.positives.miou,
        "positives gated open": statistics.mean(recorder.passed),
        "G_M_J": result.robust_scores()[G_M_J],
    }
    for kind, s in result.negatives.per_kind.items():
        figures[f"{kind} FPR_frame_gated"] = s.frame_fpr_gated
        figures[f"{kind} FPR_frame"] = s.frame_fpr
        figures[f"{kind} FPR_pixel"] = s.pixel_fpr
    return figures


def run_one(task: tuple[int, str, int, int, int, bool, int, str, str, str]) -> dict[str, float]:
    """Train one arm with one seed and score it (a worker process with one thread)."""
    seed, arm, steps, image_size, batch_size, tags, audio_steps, train_dir, test_dir, work = task
    config = train_config(
        seed,
        steps,
        plain_queries=False,
        image_size=image_size,
        batch_size=batch_size,
        audio_tags=tags,
    )
    config.name = f"negative_robustness_{arm}{'_tags' if tags else ''}_{seed}"
    tick, cpu = time.perf_counter(), time.process_time()
    result = train_arm(config, train_dir, work, audio_pretrain_steps=audio_steps)
    figures = score(result.last, Path(test_dir), config)
    figures["seconds"] = time.perf_counter() - tick
    figures["cpu seconds"] = time.process_time() - cpu
    return figures


def main() -> None:
    parser = training_bench_parser(
        __doc__.splitlines()[0], work="runs/proofs", steps=600, corpus_size="proofs"
    )
    parser.add_argument(
        "--negative-ratio", type=float, default=2.4, help="negatives per positive in the build"
    )
    parser.add_argument(
        "--easy-share",
        type=float,
        default=0.25,
        help="share of the build's train silence and noise negatives the 'with' arm keeps",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    torch.set_num_threads(1)
    start = time.perf_counter()
    build, with_negatives, without = prepare_shards(
        args.work, args.corpus_size, args.negative_ratio, args.easy_share
    )
    train = resolve_shards(with_negatives).manifest["splits"]["train"]
    test = resolve_shards(build).manifest["splits"]["test"]
    # the "with" arm's batches hold as many positives as the other arm's 8, plus its negatives
    batch_with = round(8 * train["samples"] / train["positives"])
    print(
        f"data: sample corpus ({args.corpus_size}), negatives {args.negative_ratio:g} per "
        f"positive ({args.easy_share:g} of the silence and noise ones kept for training): "
        f"train {train['positives']} positives + {train['negatives']} negatives; test "
        f"{test['positives']} positives, negatives per kind {test['per_kind']} "
        f"({time.perf_counter() - start:.0f} s)",
        flush=True,
    )
    print(
        f"model: autr_tiny, backbone efficientnet_lite0 ({BACKBONE_WEIGHTS}, frozen); "
        f"{args.steps} steps at {args.image_size} px of 8 pictures (without negatives) or "
        f"{batch_with} (with: 8 positives and their negatives on average); gate 0.5"
        f"{'; audio-tagging head' if args.audio_tags else ''}"
        f"{audio_stage(args.audio_pretrain_steps)}",
        flush=True,
    )
    arms = {"with": (with_negatives, batch_with), "without": (without, 8)}
    tasks = [
        (
            seed,
            arm,
            args.steps,
            args.image_size,
            arms[arm][1],
            args.audio_tags,
            args.audio_pretrain_steps,
            str(arms[arm][0]),
            str(build),
            str(args.work),
        )
        for seed in args.seeds
        for arm in arms
    ]
    figures: dict[str, dict[str, list[float]]] = {arm: defaultdict(list) for arm in arms}
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=args.parallel, mp_context=context) as pool:
        for (seed, arm, *_), result in zip(tasks, pool.map(run_one, tasks), strict=True):
            for name, value in result.items():
                figures[arm][name].append(value)
            gated = ", ".join(f"{k} {result[f'{k} FPR_frame_gated']:.3f}" for k in KINDS)
            print(
                f"seed {seed} {arm} negatives: positive M_J {result['positive M_J']:.3f} "
                f"({result['positives gated open']:.3f} pass the gate), gated frame FPR {gated} "
                f"({result['seconds']:.0f} s, {result['cpu seconds']:.0f} CPU-s)",
                flush=True,
            )
    mean = {arm: {k: statistics.mean(v) for k, v in f.items()} for arm, f in figures.items()}
    print(f"test split, mean of {len(args.seeds)} seeds:")
    names = ["positive M_J", "positives gated open", "G_M_J"] + [
        f"{k} {m}" for k in KINDS for m in ("FPR_frame_gated", "FPR_frame", "FPR_pixel")
    ]
    print(f"  {'':28} {'with':>8} {'without':>8}")
    for name in names:
        print(f"  {name:28} {mean['with'][name]:8.3f} {mean['without'][name]:8.3f}")
    ok_level = all(mean["with"][f"{k} FPR_frame_gated"] <= 0.1 for k in KINDS)
    ok_ratio = all(
        mean["with"][f"{k} FPR_frame_gated"] <= mean["without"][f"{k} FPR_frame_gated"] / 3
        and mean["without"][f"{k} FPR_frame_gated"] > 0
        for k in KINDS
    )  # not met when the arm without negatives never fires: there is nothing to divide
    gap = mean["with"]["positive M_J"] - mean["without"]["positive M_J"]
    print(
        f"  targets (gated frame FPR): <= 0.1 every kind: {'met' if ok_level else 'NOT met'}; "
        f"<= 1/3 of without: {'met' if ok_ratio else 'NOT met'}; positive M_J gap {gap:+.3f} "
        f"not below -0.05: {'met' if gap >= -0.05 else 'NOT met'}"
    )
    print(
        f"total time {(time.perf_counter() - start) / 60:.1f} min, "
        f"{cpu_seconds():.0f} CPU-s (this process and its finished workers)"
    )


if __name__ == "__main__":
    main()
