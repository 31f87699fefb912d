"""Multi-GPU / multi-node training through ``torchrun`` (DistributedDataParallel).

``torchrun --nproc_per_node=G [--nnodes=N ...] -m avs_synth_cli.train pretrain ...`` sets
``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK``; :func:`init_distributed` reads them, opens the process
group (NCCL on CUDA, gloo on CPU) and pins each rank to its GPU. Every rank streams its own
shards (WebDataset's ``split_by_node`` for finite passes, rank-seeded resampling for training).
Evaluation runs on rank 0 only, with the official batching, while the other ranks wait.
Without those variables everything here is a no-op for a single process.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits.

    Attributes:
        rank: global rank.
        world_size: number of processes.
        local_rank: rank on this node (the GPU index).
        device: the device this rank computes on.
    """

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` → ``cuda:{local_rank}`` when CUDA is available, else ``cpu``."""
    if name == "auto":
        return (
            torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
        )
    device = torch.device(name)
    if device.type == "cuda" and device.index is None:
        device = torch.device(f"cuda:{local_rank}")
    return device


def init_distributed(device: str = "auto", *, timeout_s: float = 1800.0) -> DistributedContext:
    """Join the process group described by torchrun's environment (or run single-process).

    Args:
        device: ``auto``, ``cpu``, ``cuda`` (each rank takes ``cuda:{LOCAL_RANK}``).
        timeout_s: collective timeout.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    resolved = resolve_device(device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if resolved.type == "cuda" else "gloo"
        if resolved.type == "cuda":
            torch.cuda.set_device(resolved)
        dist.init_process_group(
            backend=backend, rank=rank, world_size=world_size, timeout=timedelta(seconds=timeout_s)
        )
        logger.info(
            "rank %d/%d joined the %s process group on %s", rank, world_size, backend, resolved
        )
    return DistributedContext(
        rank=rank, world_size=world_size, local_rank=local_rank, device=resolved
    )


def wrap_model(model: nn.Module, context: DistributedContext) -> nn.Module:
    """DDP-wrap ``model`` when running with several processes (else return it unchanged)."""
    if not context.enabled:
        return model
    device_ids = [context.device.index] if context.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def barrier(context: DistributedContext) -> None:
    """Wait for every rank (no-op for one process)."""
    if context.enabled:
        dist.barrier()


def broadcast_object(value: object, context: DistributedContext) -> object:
    """Rank 0's ``value`` on every rank."""
    if not context.enabled:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_reduce_sum(values: list[float], context: DistributedContext) -> list[float]:
    """The sum over ranks of each value; every rank passes the same number of values."""
    if not context.enabled or not values:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=context.device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def all_finite(finite: torch.Tensor, context: DistributedContext | None) -> bool:
    """True when ``finite`` (a bool scalar) is true on every rank (one all-reduce under DDP)."""
    if context is None or not context.enabled:
        return bool(finite)
    flag = finite.to(device=context.device, dtype=torch.int32).reshape(1)
    dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item())


def shutdown(context: DistributedContext) -> None:
    """Leave the process group."""
    if context.enabled and dist.is_initialized():
        dist.destroy_process_group()
