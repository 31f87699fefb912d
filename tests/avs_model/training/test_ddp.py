"""Two-process DDP on CPU (gloo): after each step both ranks hold the same parameters, equal to
one process trained on the joined batch."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import torch
import torch.multiprocessing as mp

from avs_model.data.frame_batch import FrameBatch
from avs_model.modeling.build import build_model
from avs_model.modeling.config import preset
from avs_model.modeling.criterion import build_criterion
from avs_model.runtime.amp import resolve_precision
from avs_model.runtime.checkpoint import unwrap
from avs_model.runtime.distributed import init_distributed, shutdown, wrap_model
from avs_model.runtime.train_config import OptimConfig
from avs_model.training.engine import build_optimizer, train_step

STEPS = 2
FRAMES = 4  # per rank


def _batch(step: int, frames: slice) -> FrameBatch:
    g = torch.Generator().manual_seed(100 + step)
    n, size = 2 * FRAMES, 32
    images = torch.randint(0, 255, (n, 3, size, size), dtype=torch.uint8, generator=g)
    masks = (torch.rand(n, size, size, generator=g) > 0.6).to(torch.uint8)
    audio = torch.randn(n, 1, 96, 64, generator=g)
    return FrameBatch(
        images=images[frames],
        masks=masks[frames],
        valid=torch.ones(n, dtype=torch.bool)[frames],
        audio=audio[frames],
        content_sizes=[(size, size)] * len(range(n)[frames]),
        gt_masks=None,
        categories=[""] * len(range(n)[frames]),
        keys=[""] * len(range(n)[frames]),
        frames_per_sample=1,
    )


def _train(frames_of_rank, out: Path, rank: int = 0) -> None:
    context = init_distributed("cpu")
    torch.manual_seed(0)
    config = preset("autr_tiny")
    model = wrap_model(build_model(config), context)
    criterion = build_criterion(config.loss)
    optimizer = build_optimizer(model, OptimConfig(lr=1e-3, clip_grad_norm=0.5))
    precision = resolve_precision("fp32", context.device)
    scaler = precision.grad_scaler()
    for step in range(STEPS):
        train_step(
            model=model,
            criterion=criterion,
            batch=_batch(step, frames_of_rank(rank)),
            optimizer=optimizer,
            scaler=scaler,
            precision=precision,
            device=context.device,
            clip_grad_norm=0.5,
        )
    torch.save(
        {k: v.detach().clone() for k, v in unwrap(model).state_dict().items()},
        out / f"rank{rank}.pt",
    )
    shutdown(context)


def _rank_slice(rank: int) -> slice:
    return slice(rank * FRAMES, (rank + 1) * FRAMES)


def _worker(rank: int, port: int, out: Path) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE="2",
        LOCAL_RANK=str(rank),
        OMP_NUM_THREADS="1",
    )
    torch.set_num_threads(1)
    _train(_rank_slice, out, rank)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_ranks_match_one_process_on_the_joined_batch(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(_free_port(), tmp_path), nprocs=2, join=True)
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    single_dir = tmp_path / "single"
    single_dir.mkdir()
    # one thread, as in each rank: oneDNN's multi-threaded kernels sum in another order, and
    # AdamW's first, sign-like steps turn last-bit differences of tiny gradients into whole-lr ones
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _train(lambda rank: slice(0, 2 * FRAMES), single_dir)
    finally:
        torch.set_num_threads(threads)
    single = torch.load(single_dir / "rank0.pt", weights_only=True)
    initial = build_model(preset("autr_tiny")).state_dict()
    moved, largest = 0, 0.0
    for name, value in single.items():
        assert torch.equal(rank0[name], rank1[name]), name
        # AdamW's first steps are ~lr * sign(grad): float summation order (two ranks' gradients
        # averaged vs one sum) moves them by far less than 5 % of one update (lr = 1e-3)
        assert torch.allclose(rank0[name], value, atol=5e-5, rtol=0), name
        if value.is_floating_point() and not torch.equal(value, initial[name]):
            moved += 1
            largest = max(largest, float((value - initial[name]).abs().max()))
    assert moved > 50 and largest > 1.5e-3  # the two steps really moved the parameters


def _nan_worker(rank: int, port: int, out: Path) -> None:
    """Two ranks, one of which sees a non-finite loss at step 0: both must skip that step."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE="2",
        LOCAL_RANK=str(rank),
        OMP_NUM_THREADS="1",
    )
    torch.set_num_threads(1)
    context = init_distributed("cpu", timeout_s=60)  # a rank left waiting fails, not hangs
    torch.manual_seed(0)
    config = preset("autr_tiny")
    model = wrap_model(build_model(config), context)
    criterion = build_criterion(config.loss)
    optimizer = build_optimizer(model, OptimConfig(lr=1e-3))
    precision = resolve_precision("fp32", context.device)
    scaler = precision.grad_scaler()
    skipped = []
    for step in range(STEPS):
        batch = _batch(step, _rank_slice(rank))
        if step == 0 and rank == 1:
            batch.audio[:] = float("nan")
        values = train_step(
            model=model,
            criterion=criterion,
            batch=batch,
            optimizer=optimizer,
            scaler=scaler,
            precision=precision,
            device=context.device,
            context=context,
        )
        skipped.append(values["skipped"])
    state = {k: v.detach().clone() for k, v in unwrap(model).state_dict().items()}
    torch.save({"skipped": skipped, "state": state}, out / f"nan{rank}.pt")
    shutdown(context)


def test_a_non_finite_loss_on_one_rank_skips_the_step_on_every_rank(tmp_path: Path) -> None:
    mp.spawn(_nan_worker, args=(_free_port(), tmp_path), nprocs=2, join=True)
    rank0 = torch.load(tmp_path / "nan0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "nan1.pt", weights_only=True)
    assert rank0["skipped"] == rank1["skipped"] == [1.0, 0.0]
    for name, value in rank0["state"].items():
        assert torch.equal(value, rank1["state"][name]), name
