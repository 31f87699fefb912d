"""Synthetic evaluation in batches of pictures: each picture's mask and figures depend on that
picture alone, so ``eval.batch_pictures`` changes the speed, not the numbers."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from avs_model.data.frame_batch import FrameBatch
from avs_model.data.stream import resolve_shards
from avs_model.evaluation.benchmarks import evaluate_synthetic, synthetic_eval_batches
from avs_model.evaluation.evaluate import load_model
from avs_model.evaluation.inference import EMPTY_LOGIT, select_sounding_mask
from avs_model.evaluation.loop import frame_logits
from avs_model.runtime.amp import resolve_precision
from avs_model.runtime.train_config import EvalConfig
from tests.support.train_support import build_shards, tiny_config

CPU = torch.device("cpu")


def _frames(sizes: list[tuple[int, int]], content: list[tuple[int, int]], side: int = 16):
    n = len(sizes)
    return FrameBatch(
        images=torch.zeros(n, 3, side, side, dtype=torch.uint8),
        masks=torch.zeros(n, side, side, dtype=torch.uint8),
        valid=torch.ones(n, dtype=torch.bool),
        audio=torch.zeros(n, 1, 96, 64),
        content_sizes=content,
        gt_masks=[torch.zeros(size, dtype=torch.bool) for size in sizes],
        categories=["a"] * n,
        keys=[str(i) for i in range(n)],
        frames_per_sample=1,
    )


def test_a_frames_logits_do_not_depend_on_the_other_frames_of_its_batch() -> None:
    generator = torch.Generator().manual_seed(0)
    masks = torch.randn(4, 3, 4, 4, generator=generator) * 4  # [N, Q, h, w]: 16 px / stride 4
    scores = torch.tensor([[1.0, 3.0, -1.0], [2.0, 0.0, 0.0], [-2.0, -3.0, -1.5], [0.5, 4.0, 1.0]])
    outputs = {"pred_masks": masks, "pred_scores": scores}
    sizes = [(30, 40), (48, 36), (30, 40), (20, 20)]  # the ground truths differ in size
    batch = _frames(sizes, [(16, 16)] * 4)
    for threshold in (None, 0.5):
        together, probs = frame_logits(outputs, batch, gate_threshold=threshold)
        for i, size in enumerate(sizes):
            one = {"pred_masks": masks[i : i + 1], "pred_scores": scores[i : i + 1]}
            alone, prob = frame_logits(one, _frames([size], [(16, 16)]), gate_threshold=threshold)
            assert torch.equal(together[i], alone[0])  # bit for bit, one bilinear step
            straight, _ = select_sounding_mask(one, size=size, gate_threshold=threshold)
            assert torch.equal(together[i], straight[0])
            assert probs[i] == prob[0]
    gated, _ = frame_logits(outputs, batch, gate_threshold=0.5)
    assert bool((gated[2] == EMPTY_LOGIT).all())  # its best score is sigmoid(-1) < 0.5


def test_a_padded_frame_is_cropped_then_resized() -> None:
    masks = torch.full((2, 1, 4, 4), -5.0)
    masks[0, 0, :2] = 5.0  # frame 0's content: the top half of the 16 x 16 input
    outputs = {"pred_masks": masks, "pred_scores": torch.zeros(2, 1)}
    batch = _frames([(10, 40), (16, 16)], [(8, 16), (16, 16)])
    logits, _ = frame_logits(outputs, batch)
    assert [tuple(x.shape) for x in logits] == [(10, 40), (16, 16)]
    assert bool((logits[0] > 0).all()) and bool((logits[1] < 0).all())


@pytest.fixture(scope="module")
def scored(tmp_path_factory, checkpoint: Path):
    """An untrained model and a build with absent and silence negatives (test: 7 positives and
    6 negatives)."""
    shards = resolve_shards(
        build_shards(tmp_path_factory.mktemp("batched"), negatives=("absent", "silence"))
    )
    model, _ = load_model(checkpoint, CPU)
    return model, shards


def _scores(model, shards, batch_pictures: int, **kw) -> dict:
    config = tiny_config(**{"eval.batch_pictures": batch_pictures})
    precision = resolve_precision("fp32", CPU)
    result = evaluate_synthetic(
        model, shards, "test", config, device=CPU, precision=precision, **kw
    )
    return result.to_dict()


def _close(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return math.isclose(a, b, rel_tol=0, abs_tol=1e-6)
    return a == b


def test_synthetic_figures_do_not_depend_on_batch_pictures(scored) -> None:
    model, shards = scored
    one = _scores(model, shards, 1)
    assert one["ungated"]["num_batches"] == one["ungated"]["num_frames"] == 13
    assert one["negatives"] is not None and one["positives"]["num_frames"] == 7
    for batch_pictures in (4, 8, 32):
        assert _close(_scores(model, shards, batch_pictures), one)  # every figure, every count


def test_max_samples_counts_samples_not_batches(scored) -> None:
    model, shards = scored
    for batch_pictures in (1, 4):
        for count in (1, 5, 8):
            assert _scores(model, shards, batch_pictures, max_samples=count)["ungated"][
                "num_frames"
            ] == min(count, 13)


def test_batch_sizes_follow_the_resize_mode(scored) -> None:
    _, shards = scored
    square = tiny_config(**{"eval.batch_pictures": 4})
    assert [len(b) for b in synthetic_eval_batches(shards, "test", square)] == [4, 4, 4, 1]
    keep = tiny_config(**{"eval.batch_pictures": 4, "data.resize.mode": "keep_aspect"})
    assert {len(b) for b in synthetic_eval_batches(shards, "test", keep)} == {1}
    with pytest.raises(ValueError, match="batch_pictures must be at least 1"):
        EvalConfig(batch_pictures=0)
