"""A real kill: SIGKILL a training process once a checkpoint exists, then resume it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from typer.testing import CliRunner

from avs_model.runtime.checkpoint import load_checkpoint
from avs_model.runtime.distributed import DistributedContext
from avs_model.runtime.train_config import TrainConfig
from avs_model.training.run import start_run
from avs_model.training.run_log import read_metrics
from avs_synth_cli.train import app
from tests.support.train_support import build_shards

ARGS = [
    "--model",
    "autr_tiny",
    "--image-size",
    "32",
    "--batch-size",
    "2",
    "--num-workers",
    "0",
    "--checkpoint-every",
    "2",
    "--eval-every",
    "100000",
    "--no-test",
    "--set",
    "log_every_steps=1",
]


def _wait_for_checkpoint(path: Path, process: subprocess.Popen, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and load_checkpoint(path).step >= 4:
            return
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        time.sleep(0.2)
    raise AssertionError("no checkpoint appeared")


def test_sigkill_then_resume_continues_at_the_saved_step(tmp_path: Path) -> None:
    shards = build_shards(tmp_path)
    out = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "avs_synth_cli.train",
        "pretrain",
        "--shards",
        str(shards),
        "--out",
        str(out),
        "--max-steps",
        "100000",
        *ARGS,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for_checkpoint(out / "last.pt", process)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    saved = load_checkpoint(out / "last.pt")  # never a torn file: written atomically
    step = saved.step
    assert step >= 4 and step % 2 == 0

    # the restored run holds the saved step, optimiser, scheduler and weights
    config = TrainConfig.from_dict(saved.train_config)
    context = DistributedContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    run = start_run(config, context=context, out_dir=out, steps_per_epoch=11, resume=True)
    assert run.state.step == step
    restored = run.optimizer.state_dict()
    assert restored["param_groups"] == saved.optimizer["param_groups"]
    for index, values in saved.optimizer["state"].items():
        for key, tensor in values.items():
            assert torch.equal(restored["state"][index][key], tensor), (index, key)
    for name, tensor in run.model.state_dict().items():
        assert torch.equal(tensor, saved.model[name]), name
    assert not list(out.glob(".*.tmp-*"))  # a killed write leaves no temp file behind

    # resuming through the CLI trains exactly the missing steps
    result = CliRunner().invoke(
        app,
        [
            "pretrain",
            "--shards",
            str(shards),
            "--out",
            str(out),
            "--max-steps",
            str(step + 3),
            "--resume",
            *ARGS,
        ],
    )
    assert result.exit_code == 0, result.output
    assert load_checkpoint(out / "last.pt").step == step + 3
    train_steps = [
        int(r["step"])
        for r in read_metrics(out / "metrics.csv")
        if r["split"] == "train" and r["metric"] == "loss"
    ]
    assert train_steps[-3:] == [step + 1, step + 2, step + 3]
    assert train_steps == sorted(set(train_steps))  # no step logged twice
