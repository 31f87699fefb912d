"""Fixtures of the evaluation tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from avs_model.modeling.build import build_model
from avs_model.runtime.checkpoint import Checkpoint, save_checkpoint
from avs_model.runtime.train_config import resolve_model_config
from tests.support.train_support import tiny_config


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """An untrained ``autr_tiny`` checkpoint at 32 px (seeded weights, step 7)."""
    torch.manual_seed(0)
    config = tiny_config()
    model_config = resolve_model_config(config)
    ckpt = Checkpoint(
        model=build_model(model_config).state_dict(),
        step=7,
        epoch=0,
        train_config=config.to_dict(),
        model_config=model_config.to_dict(),
    )
    return save_checkpoint(ckpt, tmp_path_factory.mktemp("ckpt") / "model.pt")
