"""Loader throughput: decoded, augmented samples per second per worker, and (on a GPU) how much
of the in-memory training speed the real loader keeps.

    python bench/loader_throughput.py [--shards DIR] [--samples 600] [--workers 2]

Without ``--shards`` a ``small`` sample corpus (640-px pictures) is generated and built into a
temporary folder (about a minute). Part 1 runs the full training stream (resampled shards, shuffle,
decode, audio re-pairing from the bank, log-mel, joint augmentation, resize, batching) in this
process, i.e. exactly one worker's work, for the AVSBench-style square 224 px setting and the
paper's pre-training setting (longest side 640, padded batches), per wall-clock second and per
CPU-second of the process (the worker's own cost, which other load on a shared machine does not
change); then the same through a DataLoader with ``--workers`` processes. Part 2 (CUDA only)
trains AuTR-R50 for a few dozen steps on batches from the loader and on one batch kept on the
GPU, and prints the ratio (target: the loader keeps >= 90 % of the in-memory frames/s).

    python bench/loader_throughput.py --compare-only        # part 2 alone (bench/gpu_check.py)
    python bench/loader_throughput.py --compare-only --device cpu --preset autr_tiny \
        --corpus-size tiny --steps 2 --batch-size 2 --compare-workers 0 --size 64   # smoke
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from itertools import islice
from pathlib import Path

import torch

from avs_model.data.augment import AugmentConfig, ResizeConfig
from avs_model.data.stream import make_loader, resolve_shards, train_pipeline


def _make_shards(root: Path, corpus_size: str = "small") -> Path:
    from avs_synth.building.config import BuildConfig, RunOptions
    from avs_synth.building.inputs import corpus_inputs
    from avs_synth.building.run import build_dataset
    from avs_synth.sample_corpus.writer import write_sample_corpus

    corpus = root / "corpus"
    write_sample_corpus(corpus, size=corpus_size, mp4=False)
    config = BuildConfig(
        max_per_picture=0, negative_ratio=0.25, shard_size=50, bank_clips_per_shard=20
    )
    out = root / "shards"
    build_dataset(
        inputs=corpus_inputs(corpus), config=config, out=out, run=RunOptions(progress=False)
    )
    return out


def _stream(shards, resize: ResizeConfig, batch_size: int, batches: int, seed: int = 0):
    return train_pipeline(
        shards,
        resize=resize,
        augment=AugmentConfig(hflip=0.5, scale=(0.7, 1.0)),
        batch_size=batch_size,
        batches_per_epoch=batches,
        seed=seed,
        shuffle_buffer=200,
    )


def samples_per_second(
    shards, resize: ResizeConfig, *, samples: int, workers: int, batch_size: int = 8
) -> tuple[float, float]:
    """Samples per wall-clock second and per CPU second of this process, of the training stream
    (``workers`` = 0: in this process, so the CPU figure is one worker's own cost)."""
    batches = max(1, samples // batch_size)
    per_worker = batches if workers == 0 else -(-batches // workers) + 4
    loader = make_loader(_stream(shards, resize, batch_size, per_worker), num_workers=workers)
    iterator = iter(loader)
    for _ in range(2 if workers == 0 else 2 * workers):  # warm up (and start workers)
        next(iterator)
    start, cpu = time.perf_counter(), time.process_time()
    count = sum(len(b) for b in islice(iterator, batches))
    return count / (time.perf_counter() - start), count / (time.process_time() - cpu)


def gpu_comparison(
    shards,
    *,
    steps: int = 40,
    batch_size: int = 8,
    workers: int = 8,
    device: str = "cuda",
    preset_name: str = "autr_r50",
    size: int = 224,
) -> None:
    """Train frames/s with the real loader vs one in-memory batch (CUDA; CPU: a smoke check)."""
    from avs_model.modeling.build import build_model
    from avs_model.modeling.config import preset
    from avs_model.modeling.criterion import build_criterion
    from avs_model.runtime.amp import resolve_precision
    from avs_model.runtime.train_config import OptimConfig
    from avs_model.training.engine import build_optimizer, train_step

    device = torch.device(device)
    cuda = device.type == "cuda"
    config = preset(preset_name)
    config.random_init = True  # the speed does not depend on the weights
    model = build_model(config).to(device)
    criterion = build_criterion(config.loss).to(device)
    optimizer = build_optimizer(model, OptimConfig())
    precision = resolve_precision("auto", device)
    scaler = precision.grad_scaler()
    resize = ResizeConfig(size=size)

    warmup = min(5, steps - 1)

    def run(batches) -> float:
        """Frames/s over the steps after the warm-up steps, waiting for data included."""
        iterator = iter(batches)
        for _ in range(warmup):
            train_step(
                model=model,
                criterion=criterion,
                batch=next(iterator),
                optimizer=optimizer,
                scaler=scaler,
                precision=precision,
                device=device,
                clip_grad_norm=0.1,
            )
        if cuda:
            torch.cuda.synchronize()
        start, frames = time.perf_counter(), 0
        for batch in iterator:
            train_step(
                model=model,
                criterion=criterion,
                batch=batch,
                optimizer=optimizer,
                scaler=scaler,
                precision=precision,
                device=device,
                clip_grad_norm=0.1,
            )
            frames += len(batch)
        if cuda:
            torch.cuda.synchronize()
        return frames / (time.perf_counter() - start)

    loader = make_loader(
        _stream(shards, resize, batch_size, steps + 10), num_workers=workers, pin_memory=cuda
    )
    fixed = next(iter(loader)).to(device)
    in_memory = run([fixed] * steps)
    streamed = run(islice(loader, steps))
    print(
        f"{device.type.upper()} train frames/s ({preset_name}, {precision.name}, batch "
        f"{batch_size}, {size} px): in-memory {in_memory:.1f}, "
        f"real loader with {workers} workers {streamed:.1f} -> "
        f"{100 * streamed / in_memory:.1f} % of in-memory"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=Path, default=None)
    parser.add_argument("--samples", type=int, default=600)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--compare-only", action="store_true", help="only part 2: loader vs in-memory training"
    )
    parser.add_argument("--device", default="cuda", help="part 2's device (cpu: a smoke check)")
    parser.add_argument("--preset", default="autr_r50", help="part 2's model")
    parser.add_argument("--steps", type=int, default=40, help="part 2's timed steps")
    parser.add_argument("--batch-size", type=int, default=8, help="part 2's samples per step")
    parser.add_argument("--size", type=int, default=224, help="part 2's picture side")
    parser.add_argument("--compare-workers", type=int, default=8, help="part 2's loader workers")
    parser.add_argument(
        "--corpus-size", default="small", help="sample corpus built when --shards is not given"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        location = args.shards or _make_shards(Path(tmp), args.corpus_size)
        shards = resolve_shards(location)
        print(
            f"shards: {location} ({shards.num_samples('train')} train samples, "
            f"{len(shards.bank)} bank shards)"
        )
        settings = {
            "square 224 (AVSBench)": ResizeConfig(size=224),
            "keep-aspect 640 (pre-training)": ResizeConfig(mode="keep_aspect", size=640),
        }
        compare = {
            "steps": args.steps,
            "batch_size": args.batch_size,
            "workers": args.compare_workers,
            "device": args.device,
            "preset_name": args.preset,
            "size": args.size,
        }
        if args.compare_only:
            gpu_comparison(shards, **compare)
            return
        for name, resize in settings.items():
            runs = [
                samples_per_second(shards, resize, samples=args.samples, workers=0)
                for _ in range(args.repeats)
            ]
            wall, cpu = [r[0] for r in runs], [r[1] for r in runs]
            print(
                f"{name}: {statistics.median(wall):.1f} decoded, augmented samples/s per "
                f"worker (median of {args.repeats}; runs {', '.join(f'{r:.0f}' for r in wall)}); "
                f"{statistics.median(cpu):.1f} per CPU-second of the worker"
            )
            if args.workers > 0:
                total, _ = samples_per_second(
                    shards, resize, samples=args.samples, workers=args.workers
                )
                print(f"{name}: {total:.1f} samples/s with {args.workers} DataLoader workers")
        if torch.cuda.is_available():
            gpu_comparison(shards, **compare)
        else:
            print("GPU comparison skipped: no CUDA device on this machine")


if __name__ == "__main__":
    main()
