"""AuTR speed: train-step and inference frames/s and peak memory, against the backbone's ceiling.

A train step is the full preset from raw inputs -- images [N, 3, H, W] and 16 kHz waveforms
[N, 16000] (the audio encoder runs the log-mel frontend) -- through the forward pass (under
autocast), matching and the losses of every decoder layer (the criterion), backward, gradient
clipping (``--clip-grad-norm``, 0.1 as the training default) and an AdamW step over the trainable
parameters. Inference is the forward pass under ``torch.no_grad`` plus ``select_sounding_mask``
at the input resolution. Every timed call is bracketed by ``torch.cuda.synchronize()`` on a GPU;
the figure is the median of ``--steps`` calls after ``--warmup`` untimed ones. N = clips x frames.

The ceiling is the forward-only frames/s of the bare timm backbone of the preset (the
classification network, random init, eval mode, ``torch.no_grad``, channels_last, batch
``--ceiling-batch``; a plain ViT built for the input size) at the same size and precision,
measured in the same run. The backbone of the model runs channels_last too
(``backbone.channels_last``, on by default in every preset).

The image side is ``--size``, else the preset's ``image_size`` on a GPU (224 for ``autr_r50`` /
``autr_pvtv2_b5``, 448 for ``autr_dinov2_b``, 512 for ``autr_sam_b``) and 96 on the CPU, rounded
up to a multiple of the coarsest backbone stride (32, or twice a ViT's patch).

Variants: ``--compile`` (``torch.compile`` of the model and of the ceiling network, with
``--compile-mode``: ``default``, ``reduce-overhead`` = CUDA graphs, ``max-autotune``...;
``--compile-backend`` ``aot_eager`` traces without generating code, for quick CPU checks),
``--deformable-kernel`` (``auto``: the fused Triton kernel on CUDA; ``pytorch``: the
``grid_sample`` reference), ``--fused-optimizer`` (AdamW's fused implementation).
``--shrink`` cuts every backbone to one block per stage (two for a ViT) of the same timm family:
a quick check that the script runs (``bench/gpu_check.py --smoke``), not a speed figure.

Peak memory: ``torch.cuda.max_memory_allocated`` of the train and the inference phases on a GPU;
on the CPU the process's peak resident set (``resource.getrusage``) after the train phase. Each
preset runs in a fresh process (``--no-isolate`` to run in this one), so the figures do not mix.

Targets (GPU, full sizes, as fractions of the ceiling of the same run): autr_r50 trains at >=
0.15x and infers at >= 0.3x the resnet50 ceiling; autr_pvtv2_b5 trains at >= 0.5x and infers at
>= 0.7x the pvt_v2_b5 ceiling; peak training memory <= 12 GiB. On the CPU the labels are printed
for reference only.

Usage::

    python bench/model_speed.py --device cuda [--json speed.json]      # 224 px, 8 x 5 frames
    OMP_NUM_THREADS=1 python bench/model_speed.py --device cpu          # 96 px, 1 x 5 frames
    OMP_NUM_THREADS=1 python bench/model_speed.py --device cpu --presets autr_tiny --size 64
    python bench/model_speed.py --presets autr_dinov2_b autr_sam_b          # at 448 / 512 px
    python bench/model_speed.py --presets autr_r50 --compile --compile-mode reduce-overhead
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import timm
import torch

from avs_model.evaluation.inference import select_sounding_mask
from avs_model.modeling.backbone import is_plain_vit
from avs_model.modeling.build import build_model
from avs_model.modeling.config import PRESETS, AuTRConfig, preset
from avs_model.modeling.criterion import build_criterion
from avs_model.runtime.amp import Precision, resolve_precision
from avs_synth.audio.logmel import SAMPLE_RATE

GIB = 1024**3
TRAIN_MEMORY_TARGET_GIB = 12.0
TARGETS = {  # preset: (train / ceiling, infer / ceiling)
    "autr_r50": (0.15, 0.3),
    "autr_pvtv2_b5": (0.5, 0.7),
}
GPU_DEFAULTS = dict(clips=8, frames=5, steps=50, warmup=10, ceiling_batch=64)
CPU_DEFAULTS = dict(clips=1, frames=5, steps=5, warmup=2, ceiling_batch=8)
CPU_SIZE = 96
SHRINK = {  # --shrink: timm arguments that cut each preset's backbone to a few blocks
    "resnet50": {"layers": [1, 1, 1, 1]},
    "pvt_v2_b5": {"depths": [1, 1, 1, 1]},
    "vit_base_patch14_dinov2": {"depth": 2},
    "samvit_base_patch16": {"depth": 2, "global_attn_indexes": [1]},
}


@dataclass
class Settings:
    """One benchmark run's settings (shared by every preset)."""

    device: str
    size: int | None  # None: the preset's image_size on a GPU, CPU_SIZE on the CPU
    clips: int
    frames: int
    steps: int
    warmup: int
    ceiling_batch: int
    precision: str
    compile: bool
    channels_last: bool
    clip_grad_norm: float | None
    threads: int | None
    compile_mode: str | None = None
    compile_backend: str = "inductor"
    deformable_kernel: str = "auto"
    fused_optimizer: bool = False
    shrink: bool = False
    seed: int = 0

    @property
    def num_frames(self) -> int:
        return self.clips * self.frames


@dataclass
class PresetResult:
    """The figures of one preset."""

    preset: str
    backbone: str
    size: int
    precision: str
    deformable_kernel: str  # what ran: "triton" or "pytorch"
    frames_per_step: int
    trainable_parameters: int
    total_parameters: int
    train_step_s: float
    train_fps: float
    infer_step_s: float
    infer_fps: float
    ceiling_step_s: float
    ceiling_fps: float
    train_fraction: float
    infer_fraction: float
    train_fraction_target: float | None
    infer_fraction_target: float | None
    train_peak_bytes: int
    infer_peak_bytes: int | None
    memory_kind: str  # "cuda_max_allocated" or "cpu_rss_peak"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(
    fn: Callable[[], object], *, steps: int, warmup: int, device: torch.device
) -> float:
    """The median wall time of ``steps`` synchronised calls of ``fn`` after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(steps):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def random_targets(n: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """One random axis-aligned ellipse per frame: float [n, size, size] GT masks."""
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    centre = torch.rand(n, 2, generator=generator) * 0.5 + 0.25  # [n, (y, x)] in [0.25, 0.75]
    radius = torch.rand(n, 2, generator=generator) * 0.2 + 0.1
    dy = (yy[None] / size - centre[:, 0, None, None]) / radius[:, 0, None, None]
    dx = (xx[None] / size - centre[:, 1, None, None]) / radius[:, 1, None, None]
    return (dy**2 + dx**2 <= 1.0).float()


def peak_rss_bytes() -> int:
    """This process's peak resident set size (``ru_maxrss`` is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if platform.system() == "Darwin" else peak * 1024)


def compiled(module: torch.nn.Module, settings: Settings) -> torch.nn.Module:
    """``module`` under ``torch.compile`` as the settings ask (unchanged without ``--compile``)."""
    if not settings.compile:
        return module
    return torch.compile(module, mode=settings.compile_mode, backend=settings.compile_backend)


def backbone_ceiling(
    name: str, size: int, settings: Settings, precision: Precision, device: torch.device
) -> float:
    """Median seconds of one forward pass of the bare timm network (batch ``ceiling_batch``)."""
    kwargs = {"img_size": size} if is_plain_vit(name) else {}
    if settings.shrink:
        kwargs.update(SHRINK.get(name, {}))
    net = timm.create_model(name, pretrained=False, **kwargs).eval().to(device)
    x = torch.randn(settings.ceiling_batch, 3, size, size, device=device)
    if settings.channels_last:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    net = compiled(net, settings)

    def forward() -> None:
        with torch.no_grad(), precision.autocast():
            net(x)

    return median_seconds(forward, steps=settings.steps, warmup=settings.warmup, device=device)


@dataclass
class ModelTimings:
    size: int
    deformable_kernel: str
    train_s: float
    infer_s: float
    train_peak: int
    infer_peak: int | None
    counts: dict[str, int]


def time_model(
    config: AuTRConfig, settings: Settings, precision: Precision, device: torch.device
) -> ModelTimings:
    """Median train-step and inference seconds of the model built from ``config``."""
    config.backbone.channels_last = settings.channels_last
    config.transformer.deformable_kernel = settings.deformable_kernel
    config.random_init = True  # speed does not depend on the weights; nothing to download
    if settings.shrink:
        config.backbone.timm_kwargs.update(SHRINK.get(config.backbone.name, {}))
    model = build_model(config).to(device)
    criterion = build_criterion(config.loss)
    trainable = model.trainable_parameters()
    fused = {"fused": True} if settings.fused_optimizer else {}
    optimizer = torch.optim.AdamW(trainable, lr=1e-4, weight_decay=5e-4, **fused)
    forward = compiled(model, settings)
    kernel = "triton" if model.encoder.layers[0].self_attn.uses_triton(device) else "pytorch"

    n = settings.num_frames
    size = image_size(config, settings, unit=int(max(model.backbone.strides)))
    gen = torch.Generator().manual_seed(settings.seed)
    images = torch.randn(n, 3, size, size, generator=gen).to(device)
    if settings.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    waveforms = (0.1 * torch.randn(n, SAMPLE_RATE, generator=gen)).to(device)  # 1 s at 16 kHz
    targets = {
        "masks": random_targets(n, size, gen).to(device),
        "valid": torch.ones(n, dtype=torch.bool, device=device),
    }

    def train_step() -> None:
        with precision.autocast():
            outputs = forward(images, waveforms)
        losses = criterion(outputs, targets)
        total = criterion.weighted_total(losses)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        if settings.clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(trainable, settings.clip_grad_norm)
        optimizer.step()

    def infer() -> None:
        with torch.no_grad(), precision.autocast():
            select_sounding_mask(forward(images, waveforms), size=(size, size))

    # inference first, so that its peak holds no gradients or optimiser state
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    model.eval()
    infer_s = median_seconds(infer, steps=settings.steps, warmup=settings.warmup, device=device)
    infer_peak = torch.cuda.max_memory_allocated(device) if cuda else None
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    model.train()
    train_s = median_seconds(
        train_step, steps=settings.steps, warmup=settings.warmup, device=device
    )
    train_peak = torch.cuda.max_memory_allocated(device) if cuda else peak_rss_bytes()
    return ModelTimings(
        size=size,
        deformable_kernel=kernel,
        train_s=train_s,
        infer_s=infer_s,
        train_peak=train_peak,
        infer_peak=infer_peak,
        counts=model.count_parameters(),
    )


def image_size(config: AuTRConfig, settings: Settings, *, unit: int) -> int:
    """The image side of a preset's run: ``--size`` (checked), else its own / the CPU size
    rounded up to a multiple of ``unit`` (the backbone's coarsest stride)."""
    if settings.size is not None:
        if settings.size % unit:
            raise ValueError(
                f"--size {settings.size} is not a multiple of {unit} (the coarsest stride of "
                f"{config.name}'s backbone {config.backbone.name})"
            )
        return settings.size
    size = config.image_size if settings.device == "cuda" else CPU_SIZE
    return -(-size // unit) * unit


def bench_preset(name: str, settings: Settings) -> PresetResult:
    """Train, inference and ceiling timings of one preset (random init, synthetic inputs)."""
    device = torch.device(settings.device)
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    precision = resolve_precision(settings.precision, device)
    config = preset(name)
    timings = time_model(config, settings, precision, device)
    if device.type == "cuda":
        torch.cuda.empty_cache()  # the model, its gradients and optimiser state are gone
    ceiling_s = backbone_ceiling(config.backbone.name, timings.size, settings, precision, device)

    n = settings.num_frames
    train_s, infer_s, counts = timings.train_s, timings.infer_s, timings.counts
    train_peak, infer_peak = timings.train_peak, timings.infer_peak
    train_fps, infer_fps = n / train_s, n / infer_s
    ceiling_fps = settings.ceiling_batch / ceiling_s
    targets_of = TARGETS.get(name, (None, None))
    return PresetResult(
        preset=name,
        backbone=config.backbone.name,
        size=timings.size,
        precision=precision.name,
        deformable_kernel=timings.deformable_kernel,
        frames_per_step=n,
        trainable_parameters=counts["trainable"],
        total_parameters=counts["total"],
        train_step_s=train_s,
        train_fps=train_fps,
        infer_step_s=infer_s,
        infer_fps=infer_fps,
        ceiling_step_s=ceiling_s,
        ceiling_fps=ceiling_fps,
        train_fraction=train_fps / ceiling_fps,
        infer_fraction=infer_fps / ceiling_fps,
        train_fraction_target=targets_of[0],
        infer_fraction_target=targets_of[1],
        train_peak_bytes=train_peak,
        infer_peak_bytes=infer_peak,
        memory_kind="cuda_max_allocated" if device.type == "cuda" else "cpu_rss_peak",
    )


def verdict(value: float, target: float | None, *, at_least: bool = True) -> str:
    if target is None:
        return "(no target)"
    ok = value >= target if at_least else value <= target
    return f"target {'>=' if at_least else '<='} {target:g}  {'PASS' if ok else 'FAIL'}"


def report(result: PresetResult, settings: Settings) -> str:
    r = result
    lines = [
        f"{r.preset}: {r.backbone}, {r.size} px, {settings.clips} clips x "
        f"{settings.frames} frames = {r.frames_per_step} frames/step, {r.precision}, "
        f"{settings.device}, {r.deformable_kernel} deformable attention; "
        f"{r.trainable_parameters / 1e6:.1f} M of {r.total_parameters / 1e6:.1f} M parameters "
        "trainable",
        f"  train    {r.train_fps:9.2f} frames/s  ({r.train_step_s * 1e3:.1f} ms/step)",
        f"  infer    {r.infer_fps:9.2f} frames/s  ({r.infer_step_s * 1e3:.1f} ms/step)",
        f"  ceiling  {r.ceiling_fps:9.2f} frames/s  ({r.backbone} forward, batch "
        f"{settings.ceiling_batch}, {r.ceiling_step_s * 1e3:.1f} ms/batch)",
        f"  train / ceiling = {r.train_fraction:.3f}  "
        + verdict(r.train_fraction, r.train_fraction_target),
        f"  infer / ceiling = {r.infer_fraction:.3f}  "
        + verdict(r.infer_fraction, r.infer_fraction_target),
    ]
    if r.memory_kind == "cuda_max_allocated":
        lines.append(
            f"  peak memory (max allocated): train {r.train_peak_bytes / GIB:.2f} GiB  "
            + verdict(r.train_peak_bytes / GIB, TRAIN_MEMORY_TARGET_GIB, at_least=False)
            + f"; infer {r.infer_peak_bytes / GIB:.2f} GiB"
        )
    else:
        lines.append(
            f"  peak memory (process RSS after training): {r.train_peak_bytes / GIB:.2f} GiB  "
            + verdict(r.train_peak_bytes / GIB, TRAIN_MEMORY_TARGET_GIB, at_least=False)
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> tuple[Settings, list[str], Path | None, bool]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--device",
        choices=["cpu", "cuda"],
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="cuda (full sizes by default) or cpu (small sizes by default)",
    )
    parser.add_argument(
        "--presets",
        nargs="+",
        default=["autr_r50", "autr_pvtv2_b5"],
        choices=sorted(PRESETS),
        help="AuTR presets",
    )
    parser.add_argument(
        "--size", type=int, help="image side (GPU: the preset's image_size, CPU 96)"
    )
    parser.add_argument("--clips", type=int, help="clips per batch (GPU 8, CPU 1)")
    parser.add_argument("--frames", type=int, help="frames per clip (5)")
    parser.add_argument("--steps", type=int, help="timed steps, median reported (GPU 50, CPU 5)")
    parser.add_argument("--warmup", type=int, help="untimed steps first (GPU 10, CPU 2)")
    parser.add_argument("--ceiling-batch", type=int, help="backbone ceiling batch (GPU 64, CPU 8)")
    parser.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "bf16", "fp16", "fp32"],
        help="autocast dtype: auto is bf16 on CUDA, fp32 on CPU",
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile model and ceiling")
    parser.add_argument(
        "--compile-mode",
        choices=["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"],
        help="torch.compile mode (reduce-overhead: CUDA graphs)",
    )
    parser.add_argument(
        "--compile-backend",
        default="inductor",
        help="torch.compile backend (aot_eager: trace only, a quick CPU check)",
    )
    parser.add_argument(
        "--deformable-kernel",
        choices=["auto", "triton", "pytorch"],
        default="auto",
        help="deformable attention core: auto = Triton on CUDA, else PyTorch",
    )
    parser.add_argument("--fused-optimizer", action="store_true", help="AdamW(fused=True)")
    parser.add_argument(
        "--shrink", action="store_true", help="few-block backbones: a smoke check, not a figure"
    )
    parser.add_argument(
        "--no-channels-last", action="store_true", help="keep the backbones NCHW-contiguous"
    )
    parser.add_argument(
        "--clip-grad-norm",
        type=float,
        default=0.1,
        help="gradient clipping in the train step (the training default); <= 0: off",
    )
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--no-isolate", action="store_true", help="run every preset in-process")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but CUDA is not available")
    defaults = GPU_DEFAULTS if args.device == "cuda" else CPU_DEFAULTS
    if args.size is not None and args.size < 1:
        parser.error(f"--size must be positive, got {args.size}")

    def pick(key: str) -> int:
        value = getattr(args, key)
        value = defaults[key] if value is None else value
        if value < (0 if key == "warmup" else 1):
            parser.error(f"--{key.replace('_', '-')} must be positive, got {value}")
        return value

    settings = Settings(
        device=args.device,
        size=args.size,
        clips=pick("clips"),
        frames=pick("frames"),
        steps=pick("steps"),
        warmup=pick("warmup"),
        ceiling_batch=pick("ceiling_batch"),
        precision=args.precision,
        compile=args.compile,
        channels_last=not args.no_channels_last,
        clip_grad_norm=args.clip_grad_norm if args.clip_grad_norm > 0 else None,
        threads=args.threads,
        compile_mode=args.compile_mode,
        compile_backend=args.compile_backend,
        deformable_kernel=args.deformable_kernel,
        fused_optimizer=args.fused_optimizer,
        shrink=args.shrink,
    )
    return settings, args.presets, args.json, not args.no_isolate


def run_isolated(name: str, settings: Settings) -> PresetResult:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(bench_preset, name, settings).result()


def environment(settings: Settings) -> dict[str, Any]:
    env: dict[str, Any] = {
        "torch": torch.__version__,
        "timm": timm.__version__,
        "python": sys.version.split()[0],
        "cpu_threads": settings.threads or torch.get_num_threads(),
    }
    if settings.device == "cuda":
        env["gpu"] = torch.cuda.get_device_name()
    else:
        env["cpu"] = platform.processor() or platform.machine()
    return env


def main(argv: list[str] | None = None) -> None:
    settings, presets, json_path, isolate = parse_args(argv)
    env = environment(settings)
    print(
        f"AuTR speed on {settings.device} ({env.get('gpu') or env.get('cpu')}), torch "
        f"{env['torch']}, timm {env['timm']}, CPU threads: {env['cpu_threads']}; median of "
        f"{settings.steps} steps after {settings.warmup} warm-up; compile={settings.compile}"
        + (
            f" (mode {settings.compile_mode or 'default'}, backend {settings.compile_backend})"
            if settings.compile
            else ""
        )
        + f", channels_last={settings.channels_last}, clip_grad_norm={settings.clip_grad_norm}, "
        f"fused AdamW={settings.fused_optimizer}"
        + (", SHRUNK backbones (a smoke check, not a speed figure)" if settings.shrink else "")
    )
    if settings.device == "cpu":
        print("(CPU run: the targets are for a GPU at full size; labels are for reference only)")
    results = []
    for name in presets:
        result = run_isolated(name, settings) if isolate else bench_preset(name, settings)
        results.append(result)
        print(report(result, settings), flush=True)
    if json_path is not None:
        payload = {
            "settings": asdict(settings),
            "environment": env,
            "results": [asdict(r) for r in results],
        }
        json_path.write_text(json.dumps(payload, indent=2, allow_nan=True))
        print(f"wrote {json_path}")


if __name__ == "__main__":
    main()
