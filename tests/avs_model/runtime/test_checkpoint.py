"""Checkpoints: atomic writes, weights-only loading, refusal of code, RNG state round trip."""

from __future__ import annotations

import errno
import io
import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from avs_model.runtime import checkpoint
from avs_model.runtime.checkpoint import (
    CHECKPOINT_FORMAT,
    Checkpoint,
    CheckpointError,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)


def _checkpoint(step: int = 7) -> tuple[Checkpoint, torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    ckpt = Checkpoint(
        model=model.state_dict(),
        step=step,
        epoch=1,
        train_config={"name": "t", "optim": {"lr": 1e-3}},
        model_config={"name": "autr_tiny"},
        optimizer=optimizer.state_dict(),
        data={"kind": "avsbench", "train_videos": ["a", "b"]},
        rng=rng_state(),
    )
    return ckpt, model, optimizer


def test_round_trip_keeps_weights_optimizer_and_metadata(tmp_path: Path) -> None:
    ckpt, model, optimizer = _checkpoint()
    path = save_checkpoint(ckpt, tmp_path / "run" / "last.pt")
    assert path.is_file() and [p.name for p in path.parent.iterdir()] == ["last.pt"]
    back = load_checkpoint(path)
    assert back.step == 7 and back.epoch == 1
    assert back.data["train_videos"] == ["a", "b"]
    assert back.versions["torch"] == str(torch.__version__)
    for name, value in model.state_dict().items():
        assert torch.equal(back.model[name], value)
    state = optimizer.state_dict()["state"]
    for index, values in state.items():
        for key, tensor in values.items():
            assert torch.equal(back.optimizer["state"][index][key], tensor)
    fresh = torch.optim.AdamW(torch.nn.Linear(3, 2).parameters(), lr=1e-3)
    fresh.load_state_dict(back.optimizer)
    assert fresh.state_dict()["param_groups"][0]["lr"] == 1e-3


def test_rewrite_replaces_atomically_and_failed_write_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint(_checkpoint(step=1)[0], path)

    def broken_save(obj, handle):
        handle.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(_checkpoint(step=2)[0], path)
    monkeypatch.undo()
    assert load_checkpoint(path).step == 1  # the old checkpoint is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no temp file left


class _FullDisk(io.FileIO):
    """A file whose disk fills after ``room`` bytes, as a real full disk does (ENOSPC)."""

    def __init__(self, path: str, mode: str, room: int) -> None:
        super().__init__(path, mode)
        self.room = room

    def write(self, data) -> int:
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return super().write(data)


def test_a_full_disk_is_named_not_hidden_behind_torchs_zip_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "best.pt"
    save_checkpoint(_checkpoint(step=1)[0], path)
    monkeypatch.setattr(checkpoint, "open", lambda p, mode: _FullDisk(p, mode, 200), raising=False)
    with pytest.raises(OSError, match=r"cannot write .*best\.pt: No space left on device") as info:
        save_checkpoint(_checkpoint(step=2)[0], path)
    assert info.value.errno == errno.ENOSPC
    assert "unexpected pos" in repr(info.value.__cause__)  # what torch alone would have said
    monkeypatch.undo()
    assert load_checkpoint(path).step == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt"]


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_code_in_a_checkpoint_is_refused_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    bad = tmp_path / "bad.pt"
    torch.save(
        {"format": CHECKPOINT_FORMAT, "model": {"w": torch.zeros(1)}, "x": _Payload(marker)}, bad
    )
    with pytest.raises(CheckpointError, match="bad.pt.*os.system|bad.pt.*posix.system"):
        load_checkpoint(bad)
    assert not marker.exists()


def test_other_files_are_refused_with_their_name(tmp_path: Path) -> None:
    other = tmp_path / "weights.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}}, other)
    with pytest.raises(CheckpointError, match="weights.pt: not an avs-train-checkpoint/1 file"):
        load_checkpoint(other)
    truncated = tmp_path / "truncated.pt"
    save_checkpoint(_checkpoint()[0], truncated)
    truncated.write_bytes(truncated.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="truncated.pt: not a readable checkpoint"):
        load_checkpoint(truncated)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")


def test_rng_state_survives_the_file(tmp_path: Path) -> None:
    random.seed(3)
    np.random.seed(3)
    torch.manual_seed(3)
    ckpt = _checkpoint()[0]
    ckpt.rng = rng_state()
    expected = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    save_checkpoint(ckpt, tmp_path / "c.pt")
    random.seed(99)
    np.random.seed(99)
    torch.manual_seed(99)
    set_rng_state(load_checkpoint(tmp_path / "c.pt").rng)
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == expected
