"""Checkpoints: written atomically, read with ``torch.load(weights_only=True)``.

A checkpoint is one ``torch.save`` file holding plain containers and tensors only, so that
PyTorch's restricted unpickler reads it and a downloaded checkpoint can never run code:

    {
      "format": CHECKPOINT_FORMAT,
      "model": state dict,             # parameters and buffers
      "optimizer": state dict | None,  "scaler": state dict | None,  "scheduler": state dict | None,
      "step": int, "epoch": int,       # optimiser steps done, epochs started
      "train_config": dict,            # TrainConfig.to_dict()
      "model_config": dict,            # AuTRConfig.to_dict()
      "data": dict,                    # what the run trained on (manifest versions, video lists)
      "weights": dict,                 # what the pretrained parts were loaded from (path, sha256)
      "metrics": dict,                 # e.g. the val figures that selected it
      "rng": dict,                     # torch / python / numpy RNG states, for resuming
      "versions": dict,                # avs-synth, torch
    }

The file is written to a temporary name in the same folder, flushed and synced, then moved onto
its final name with ``os.replace``, so a crash or a kill at any moment leaves either the previous
checkpoint or the new one, never a truncated file.

A checkpoint is self-contained: ``model`` holds every weight, frozen parts included, so loading it
(evaluate, predict, ``--init``, ``--resume``) never reads the weight files its config names;
``weights`` only records where they came from.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from avs_synth import __version__

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "avs-train-checkpoint/1"


@dataclass
class Checkpoint:
    """The content of a checkpoint file (see the module docstring).

    Args:
        model: the model state dict.
        step: optimiser steps done.
        epoch: epochs started.
        train_config: ``TrainConfig.to_dict()``.
        model_config: ``AuTRConfig.to_dict()``.
        optimizer, scaler, scheduler: their state dicts (None in a weights-only export).
        data: what the run trained on.
        weights: where the pretrained parts came from (``AuTR.weight_sources()``, or the ``init``
            checkpoint with its own record).
        metrics: figures worth keeping with the weights.
        rng: RNG states.
        versions: package versions of the writer.
    """

    model: dict[str, torch.Tensor]
    step: int
    epoch: int
    train_config: dict[str, Any]
    model_config: dict[str, Any]
    optimizer: dict[str, Any] | None = None
    scaler: dict[str, Any] | None = None
    scheduler: dict[str, Any] | None = None
    data: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    rng: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "model": self.model,
            "optimizer": self.optimizer,
            "scaler": self.scaler,
            "scheduler": self.scheduler,
            "step": int(self.step),
            "epoch": int(self.epoch),
            "train_config": self.train_config,
            "model_config": self.model_config,
            "data": self.data,
            "weights": self.weights,
            "metrics": self.metrics,
            "rng": self.rng,
            "versions": self.versions or package_versions(),
        }


def package_versions() -> dict[str, str]:
    """Versions recorded in every checkpoint."""
    return {"avs_synth": str(__version__), "torch": str(torch.__version__)}


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside DDP / ``torch.compile`` wrappers."""
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod  # torch.compile's OptimizedModule
        else:
            return model


def model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict of the unwrapped model, on the CPU."""
    return {k: v.detach().cpu() for k, v in unwrap(model).state_dict().items()}


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (a run's model initialisation starts from here)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """torch (CPU and CUDA), Python and NumPy RNG states, as weights-only-loadable values."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": _to_lists(random.getstate()),
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore :func:`rng_state`'s output (missing entries are left alone)."""
    if "torch" in state:
        torch.set_rng_state(state["torch"])
    if "python" in state:
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
    if "numpy" in state:
        name, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_lists(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_to_lists(v) for v in value]
    return value


def save_checkpoint(checkpoint: Checkpoint, path: str | os.PathLike[str]) -> Path:
    """Write ``checkpoint`` to ``path`` atomically (temp file, fsync, ``os.replace``)."""
    path = save_atomically(checkpoint.to_dict(), path)
    logger.debug("wrote checkpoint %s (step %d)", path, checkpoint.step)
    return path


def save_atomically(obj: Any, path: str | os.PathLike[str]) -> Path:
    """``torch.save(obj)`` to ``path`` atomically (temp file, fsync, ``os.replace``): a file at
    ``path`` is always complete."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            try:
                torch.save(obj, handle)
            except RuntimeError as error:
                # torch's zip writer reports a failed write (a full disk) as "unexpected pos"
                failed = error.__context__
                if isinstance(failed, OSError):
                    message = f"cannot write {path}: {failed.strerror}"
                    raise OSError(failed.errno, message) from error
                raise
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
    return path


def _gist(error: BaseException) -> str:
    """The informative line of torch's long weights-only error (it advises weights_only=False,
    which must not be followed for a file from elsewhere)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for line in lines:
        if "Unsupported" in line or "GLOBAL" in line:
            return line.replace("WeightsUnpickler error: ", "")
    return lines[-1] if lines else type(error).__name__


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used (names the file)."""


def load_checkpoint(path: str | os.PathLike[str], *, map_location: Any = "cpu") -> Checkpoint:
    """Read a checkpoint with ``torch.load(weights_only=True)``.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: not a checkpoint of this format, or refused by the restricted loader.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        raw = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises UnpicklingError, RuntimeError, EOFError...
        raise CheckpointError(f"{path}: not a readable checkpoint: {_gist(error)}") from None
    if not isinstance(raw, dict) or raw.get("format") != CHECKPOINT_FORMAT:
        found = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
        raise CheckpointError(f"{path}: not an {CHECKPOINT_FORMAT} file (format {found!r})")
    missing = [k for k in ("model", "step", "train_config", "model_config") if k not in raw]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {missing}")
    return Checkpoint(
        model=raw["model"],
        step=int(raw["step"]),
        epoch=int(raw.get("epoch", 0)),
        train_config=raw["train_config"],
        model_config=raw["model_config"],
        optimizer=raw.get("optimizer"),
        scaler=raw.get("scaler"),
        scheduler=raw.get("scheduler"),
        data=raw.get("data") or {},
        weights=raw.get("weights") or {},
        metrics=raw.get("metrics") or {},
        rng=raw.get("rng") or {},
        versions=raw.get("versions") or {},
    )
