"""Frozen parts never run on random weights unless told to; what every part loaded is recorded."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import pytest
import torch

from avs_model.modeling.build import build_model
from avs_model.modeling.config import preset
from avs_model.modeling.vggish import VGGish
from avs_model.modeling.weights import MissingWeightsError, random_frozen_parts


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.mark.parametrize("name", ["autr_r50", "autr_pvtv2_b5"])
def test_frozen_parts_without_weights_are_an_error_naming_the_files(name: str) -> None:
    with pytest.raises(MissingWeightsError) as caught:
        build_model(preset(name))
    message = str(caught.value)
    assert "vggish-10086976.pth" in message and "audio.weights_path" in message
    assert "backbone.pretrained_path" in message and "model_overrides." in message
    assert ("pvt_v2_b5.pth" if name == "autr_pvtv2_b5" else "resnet50") in message
    assert "--random-init" in message


def test_only_the_missing_part_is_named(tmp_path: Path) -> None:
    config = preset("autr_r50")
    torch.save(VGGish().state_dict(), tmp_path / "vggish.pth")
    config.audio.weights_path = str(tmp_path / "vggish.pth")
    with pytest.raises(MissingWeightsError) as caught:
        build_model(config)
    assert "backbone" in str(caught.value) and "vggish-10086976" not in str(caught.value)


def test_random_init_allows_it_loudly(caplog: pytest.LogCaptureFixture) -> None:
    config = preset("autr_tiny")
    config.backbone.pretrained_path = None
    with pytest.raises(MissingWeightsError):
        build_model(config)
    config.random_init = True
    with caplog.at_level(logging.WARNING):
        model = build_model(config)
    assert "RANDOM weights" in caplog.text
    sources = model.weight_sources()
    assert sources["backbone"] == {"source": "random_init", "trained": False}
    assert random_frozen_parts(sources) == ["backbone"]


def test_unfrozen_parts_may_start_random() -> None:
    config = preset("autr_tiny")
    config.backbone.pretrained_path = None
    config.backbone.frozen = False
    model = build_model(config)  # trained from scratch: no error
    assert model.weight_sources()["backbone"] == {"source": "random_init", "trained": True}
    assert random_frozen_parts(model.weight_sources()) == []


def test_weight_sources_name_the_files_and_their_hashes(tmp_path: Path) -> None:
    config = preset("autr_tiny")  # the efficientnet-lite0 package's ImageNet weights
    config.audio.kind, config.audio.embed_dim, config.audio.frozen = "vggish", 128, True
    torch.save(VGGish().state_dict(), tmp_path / "vggish.pth")
    config.audio.weights_path = str(tmp_path / "vggish.pth")
    sources = build_model(config).weight_sources()
    backbone, audio = sources["backbone"], sources["audio_encoder"]
    assert backbone["source"] == audio["source"] == "file"
    assert backbone["path"].endswith(".pth") and Path(backbone["path"]).is_file()
    assert backbone["sha256"] == _sha256(backbone["path"])
    assert audio == {
        "source": "file",
        "path": str((tmp_path / "vggish.pth").resolve()),
        "sha256": _sha256(tmp_path / "vggish.pth"),
    }


def test_architecture_only_opens_no_file(tmp_path: Path) -> None:
    config = preset("autr_tiny")
    config.backbone.pretrained_path = str(tmp_path / "missing.pth")
    with pytest.raises(FileNotFoundError):
        build_model(config)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    config.backbone.pretrained_path = str(fifo)  # opening it would block forever
    config.audio.kind, config.audio.embed_dim = "vggish", 128
    config.audio.weights_path = "/dev/zero"  # reading it would never end
    model = build_model(config, load_weights=False)
    assert model.weight_sources()["backbone"]["source"] == "random_init"
