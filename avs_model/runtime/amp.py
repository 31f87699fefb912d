"""Mixed precision: the autocast context and the gradient scaler of a run.

``auto`` means bf16 autocast on CUDA (no scaler needed) and plain fp32 on CPU. ``fp16`` uses a
``torch.amp.GradScaler``; its state travels with the checkpoint.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Precision:
    """The resolved precision of a run.

    Attributes:
        device_type: ``cuda`` or ``cpu``.
        dtype: the autocast dtype, or None for fp32.
    """

    device_type: str
    dtype: torch.dtype | None

    @property
    def name(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """The forward pass's autocast context (a no-op in fp32)."""
        if self.dtype is None:
            yield
            return
        with torch.autocast(device_type=self.device_type, dtype=self.dtype):
            yield

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A scaler that is enabled only for fp16."""
        return torch.amp.GradScaler(self.device_type, enabled=self.dtype == torch.float16)


def resolve_precision(name: str, device: torch.device) -> Precision:
    """``auto`` / ``bf16`` / ``fp16`` / ``fp32`` on ``device`` → :class:`Precision`.

    ``auto`` is bf16 on a CUDA device that supports it and fp32 elsewhere; fp16 is refused on CPU.
    """
    kind = device.type
    if name == "auto":
        if kind == "cuda" and torch.cuda.is_bf16_supported():
            return Precision(kind, torch.bfloat16)
        return Precision(kind, None)
    if name == "fp32":
        return Precision(kind, None)
    if name == "bf16":
        return Precision(kind, torch.bfloat16)
    if name == "fp16":
        if kind != "cuda":
            raise ValueError("fp16 autocast needs a CUDA device; use bf16 or fp32 on CPU")
        return Precision(kind, torch.float16)
    raise ValueError(f"precision must be auto, bf16, fp16 or fp32, got {name!r}")
