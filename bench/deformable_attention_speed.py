"""The deformable attention's sampling core alone: the fused Triton kernel against the
``grid_sample`` reference, forward and forward + backward, at AuTR's sizes.

One encoder layer's call: N frames, the tokens of the stride-8/16/32 maps of a square picture as
queries and values, 8 heads of 32 channels, 4 points per head and level, ``value`` in bf16 and
the locations / weights in float32 (what autocast gives), locations a few pixels around each
query's own position (some outside the map). Prints the median milliseconds of each variant
(every call bracketed by ``torch.cuda.synchronize()``), the speed-up, and the largest
differences of the output and of the three gradients between the kernels.

    python bench/deformable_attention_speed.py                      # CUDA, 40 frames at 224 px
    python bench/deformable_attention_speed.py --size 448 --frames 8
    python bench/deformable_attention_speed.py --smoke              # CPU, Triton interpreted
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch


def median_ms(fn: Callable[[], object], *, steps: int, warmup: int, cuda: bool) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def inputs(args: argparse.Namespace, device: torch.device):
    """value [N, S, M, Dh] bf16, locations [N, S, M, L, P, 2] and weights [N, S, M, L, P] fp32."""
    gen = torch.Generator().manual_seed(0)
    shapes = [(args.size // s, args.size // s) for s in (8, 16, 32)]
    n, m, dh, p, levels = args.frames, args.heads, args.head_dim, args.points, len(shapes)
    s = sum(h * w for h, w in shapes)
    value = torch.randn(n, s, m, dh, generator=gen).to(device, torch.bfloat16)
    centres = torch.cat(
        [
            torch.stack(
                torch.meshgrid(
                    (torch.arange(w) + 0.5) / w, (torch.arange(h) + 0.5) / h, indexing="xy"
                ),
                -1,
            ).reshape(-1, 2)
            for h, w in shapes
        ]
    )  # [S, 2] (x, y)
    scale = torch.tensor([[w, h] for h, w in shapes], dtype=torch.float32)  # [L, 2]
    offsets = torch.randn(n, s, m, levels, p, 2, generator=gen) * 2.0 / scale[:, None, :]
    locations = (centres[None, :, None, None, None, :] + offsets).to(device)
    logits = torch.randn(n, s, m, levels * p, generator=gen)
    weights = logits.softmax(-1).view(n, s, m, levels, p).to(device)
    return shapes, value, locations, weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", type=int, default=224, help="picture side (multiple of 32)")
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--head-dim", type=int, default=32)
    parser.add_argument("--points", type=int, default=4)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument(
        "--smoke", action="store_true", help="CPU, tiny sizes, Triton under its interpreter"
    )
    args = parser.parse_args()
    if args.smoke:
        args.device, args.size, args.frames, args.heads = "cpu", 32, 1, 2
        args.head_dim, args.points, args.steps, args.warmup = 8, 2, 1, 0
    device = torch.device(args.device)
    if device.type == "cpu":
        os.environ["TRITON_INTERPRET"] = "1"  # before the kernel module is imported
    from avs_model.modeling.deformable_attention import (
        level_tensors,
        multi_scale_deformable_attention,
    )
    from avs_model.modeling.triton_deformable_attention import (
        triton_multi_scale_deformable_attention,
    )

    shapes, value, locations, weights = inputs(args, device)
    levels = level_tensors(shapes, device)
    kernels = {
        "pytorch": lambda v, p, a: multi_scale_deformable_attention(v, shapes, p, a),
        "triton": lambda v, p, a: triton_multi_scale_deformable_attention(v, *levels, p, a),
    }
    cuda = device.type == "cuda"
    print(
        f"deformable attention core on {torch.cuda.get_device_name() if cuda else 'cpu'}: "
        f"{args.frames} frames, {args.size} px (levels {shapes}, {value.shape[1]} queries), "
        f"{args.heads} heads x {args.head_dim}, {args.points} points; value bf16, "
        f"locations / weights fp32; median of {args.steps} after {args.warmup}",
        flush=True,
    )
    results, outputs = {}, {}
    grad_out = torch.randn(value.shape[0], value.shape[1], args.heads * args.head_dim)
    grad_out = grad_out.to(device)
    for name, kernel in kernels.items():
        leaves = [t.detach().clone().requires_grad_() for t in (value, locations, weights)]

        def forward(kernel=kernel, leaves=leaves) -> None:
            with torch.no_grad():
                kernel(*leaves)

        def forward_backward(kernel=kernel, leaves=leaves) -> None:
            out = kernel(*leaves)
            torch.autograd.grad(out, leaves, grad_out.to(out.dtype))

        results[name] = (
            median_ms(forward, steps=args.steps, warmup=args.warmup, cuda=cuda),
            median_ms(forward_backward, steps=args.steps, warmup=args.warmup, cuda=cuda),
        )
        out = kernel(*leaves)
        grads = torch.autograd.grad(out, leaves, grad_out.to(out.dtype))
        outputs[name] = [t.detach().float() for t in (out, *grads)]
        print(
            f"  {name:8s} forward {results[name][0]:8.3f} ms   forward + backward "
            f"{results[name][1]:8.3f} ms",
            flush=True,
        )
    forward_gain = results["pytorch"][0] / results["triton"][0]
    total_gain = results["pytorch"][1] / results["triton"][1]
    print(
        f"  triton speed-up: forward {forward_gain:.2f}x, forward + backward {total_gain:.2f}x"
        + ("" if cuda else " (CPU: the Triton interpreter, timings mean nothing)")
    )
    names = ("output", "grad value", "grad locations", "grad weights")
    differences = [
        f"{name} {float((a - b).abs().max()):.2e} (scale {float(b.abs().max()):.2e})"
        for name, a, b in zip(names, outputs["triton"], outputs["pytorch"], strict=True)
    ]
    print("  largest |triton - pytorch|: " + ", ".join(differences))


if __name__ == "__main__":
    main()
