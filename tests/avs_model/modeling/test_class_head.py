"""AuTR's optional class head: several targets per frame, Hungarian matching, the class losses,
and the head-off model left exactly as it was."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from avs_model.modeling.build import build_model, num_classes_of
from avs_model.modeling.config import AuTRConfig, ClassHeadConfig, LossConfig, preset
from avs_model.modeling.criterion import build_criterion
from avs_model.modeling.losses import dice_loss, sigmoid_focal_loss
from avs_model.modeling.matcher import ClassQueryMatcher, class_targets

# label map of one 4 x 4 frame: class 0 (value 1) on the left half, class 2 (value 3) bottom right
LABELS = torch.tensor([[1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 0, 3], [1, 1, 3, 3]])
LEFT = (LABELS == 1).float()
CORNER = (LABELS == 3).float()


def with_head(classes: list[str]) -> AuTRConfig:
    config = preset("autr_tiny")
    config.class_head = ClassHeadConfig(enabled=True, classes=classes)
    return config


def test_class_targets_split_label_maps_per_class() -> None:
    maps = torch.stack([LABELS, torch.zeros(4, 4, dtype=torch.long), LABELS])
    valid = torch.tensor([True, True, False])
    targets = class_targets({"class_maps": maps, "valid": valid}, num_frames=3, num_classes=3)
    assert targets[0].labels.tolist() == [0, 2]
    assert torch.equal(targets[0].masks, torch.stack([LEFT, CORNER]))
    assert targets[1].labels.numel() == 0  # a negative: no target, every query "no object"
    assert targets[2].labels.numel() == 0  # unannotated: nothing
    with pytest.raises(ValueError, match=r"outside \[0, 2\]"):
        class_targets({"class_maps": maps}, num_frames=3, num_classes=2)
    with pytest.raises(KeyError, match="--class-masks"):
        class_targets({"masks": maps.float()}, num_frames=3, num_classes=3)


def test_hungarian_matching_gives_each_target_its_own_query() -> None:
    # query 0: the left mask and class 0; query 1: a blank mask; query 2: the corner and class 2;
    # query 3: the left mask again with class 2 (the best mask for class 2's cost alone is wrong)
    masks = torch.full((1, 4, 4, 4), -10.0)
    masks[0, 0] = 10 * (2 * LEFT - 1)
    masks[0, 2] = 10 * (2 * CORNER - 1)
    masks[0, 3] = 10 * (2 * LEFT - 1)
    logits = torch.zeros(1, 4, 4)
    logits[0, 0, 0] = logits[0, 2, 2] = logits[0, 3, 2] = 6.0
    matcher = ClassQueryMatcher()
    targets = class_targets({"class_maps": LABELS[None]}, num_frames=1, num_classes=3)
    [(queries, target_ids)] = matcher({"pred_masks": masks, "pred_logits": logits}, targets)
    assert dict(zip(target_ids.tolist(), queries.tolist(), strict=True)) == {0: 0, 1: 2}

    # one query best for both targets: the assignment still gives them two different queries
    masks = torch.full((1, 2, 4, 4), -10.0)
    masks[0, 0] = 10 * (2 * (LEFT + CORNER) - 1)
    logits = torch.zeros(1, 2, 4)
    [(queries, target_ids)] = matcher({"pred_masks": masks, "pred_logits": logits}, targets)
    assert sorted(queries.tolist()) == [0, 1] and sorted(target_ids.tolist()) == [0, 1]

    # the cost, pair by pair: -2 p(class) + 2 focal + 5 dice
    cost = matcher.cost(masks[0], logits[0], targets[0])
    assert cost.shape == (2, 2)
    for q in range(2):
        for m, gt in enumerate((LEFT, CORNER)):
            x, y = masks[0, q].flatten(), gt.flatten()
            expected = -2 * 0.25 + 2 * sigmoid_focal_loss(x, y) + 5 * dice_loss(x, y)
            assert math.isclose(float(cost[q, m]), float(expected), rel_tol=1e-5)


def test_more_targets_than_queries_is_refused() -> None:
    masks, logits = torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4)
    targets = class_targets({"class_maps": LABELS[None]}, num_frames=1, num_classes=3)
    with pytest.raises(ValueError, match="2 class targets but only 1 queries"):
        ClassQueryMatcher()({"pred_masks": masks, "pred_logits": logits}, targets)


def test_class_loss_is_mask2formers_weighted_cross_entropy() -> None:
    torch.manual_seed(0)
    masks = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    logits = torch.randn(2, 3, 4, dtype=torch.float64)
    scores = torch.randn(2, 3, dtype=torch.float64)
    maps = torch.stack([LABELS, torch.zeros(4, 4, dtype=torch.long)])
    loss_config = LossConfig(aux_loss=False)
    criterion = build_criterion(loss_config, num_classes=3)
    outputs = {"pred_masks": masks, "pred_scores": scores, "pred_logits": logits}
    targets = {"masks": (maps > 0).double(), "class_maps": maps}
    losses = criterion(outputs, targets)
    assert set(losses) == {"loss_class", "loss_focal", "loss_dice", "loss_sound"}
    per_class = class_targets(targets, num_frames=2, num_classes=3)
    [(q0, t0), (q1, _)] = criterion.class_matcher(outputs, per_class)
    assert q1.numel() == 0
    wanted = torch.full((2, 3), 3)  # "no object" = index K = 3
    wanted[0, q0] = per_class[0].labels[t0]
    weight = torch.tensor([1.0, 1.0, 1.0, 0.1], dtype=torch.float64)
    expected = F.cross_entropy(logits.transpose(1, 2), wanted, weight=weight)
    assert torch.allclose(losses["loss_class"], expected)
    score_targets = torch.zeros(2, 3, dtype=torch.float64)
    score_targets[0, q0] = 1
    sound = F.binary_cross_entropy_with_logits(scores, score_targets, reduction="sum") / 2
    assert torch.allclose(losses["loss_sound"], sound)
    assert criterion.weight_dict["loss_class"] == loss_config.loss_class
    # no class maps: a clear error, not a silent fall-back to the binary losses
    with pytest.raises(KeyError, match="class_maps"):
        criterion(outputs, {"masks": (maps > 0).double()})


def test_head_off_model_is_unchanged() -> None:
    """Pinned on the model before the class head existed (same seed, same inputs): the state
    dict keys and outputs of the head-off model, and its losses."""
    config = preset("autr_tiny")
    assert not config.class_head.enabled and num_classes_of(config) == 0
    torch.manual_seed(0)
    model = build_model(config).eval()
    g = torch.Generator().manual_seed(1)
    images, audio = torch.randn(2, 3, 64, 64, generator=g), torch.randn(2, 1, 96, 64, generator=g)
    with torch.no_grad():
        out = model(images, audio)
    assert len(model.state_dict()) == 452
    assert not any(k.startswith("class_head") for k in model.state_dict())
    assert sorted(out) == ["aux_outputs", "pred_masks", "pred_scores"]
    assert sorted(out["aux_outputs"][0]) == ["pred_masks", "pred_scores"]
    assert math.isclose(out["pred_masks"].double().sum().item(), 2.863502635154873, rel_tol=1e-4)
    assert math.isclose(
        out["pred_masks"].double().abs().sum().item(), 92.18555804388598, rel_tol=1e-5
    )
    assert math.isclose(out["pred_scores"].double().sum().item(), -2.3586649894714355, rel_tol=1e-5)
    masks = torch.zeros(2, 64, 64)
    masks[0, :20, :20] = 1
    losses = build_criterion(config.loss)(out, {"masks": masks})
    assert sorted(losses) == sorted(
        f"loss_{n}{s}" for n in ("focal", "dice", "sound") for s in ("", "_0")
    )
    assert math.isclose(losses["loss_dice"].item(), 0.8389009237289429, rel_tol=1e-5)
    assert math.isclose(losses["loss_sound"].item(), 2.939605474472046, rel_tol=1e-5)

    # the head-on model: the same other weights (the head is built last) and masks / scores
    torch.manual_seed(0)
    with_class = build_model(with_head(["a", "b", "c"])).eval()
    state = with_class.state_dict()
    assert sorted(k for k in state if k.startswith("class_head")) == [
        "class_head.bias",
        "class_head.weight",
    ]
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    with torch.no_grad():
        out_class = with_class(images, audio)
    assert torch.equal(out_class["pred_masks"], out["pred_masks"])
    assert out_class["pred_logits"].shape == (2, 5, 4)
    assert out_class["aux_outputs"][0]["pred_logits"].shape == (2, 5, 4)


def test_head_needs_its_table_and_configs_round_trip() -> None:
    config = preset("autr_tiny")
    config.class_head.enabled = True
    with pytest.raises(ValueError, match="class_head.classes"):
        build_model(config, load_weights=False)
    config = with_head(["dog barking", "cat meowing"])
    again = AuTRConfig.from_dict(config.to_dict())
    assert again.class_head == config.class_head
    with pytest.raises(ValueError, match="list of strings"):
        AuTRConfig.from_dict({"class_head": {"classes": "dog"}})
    head = again.class_head
    head.check_table(["dog barking", "cat meowing"], where="x")
    with pytest.raises(ValueError, match=r"^shards: the data's class table \(3 classes\)"):
        head.check_table(["dog barking", "cat meowing", "owl hooting"], where="shards")
    with pytest.raises(ValueError, match="another order"):
        head.check_table(["cat meowing", "dog barking"], where="shards")
    with pytest.raises(ValueError, match="no class maps"):
        head.check_table(None, where="shards")


def test_every_parameter_learns_and_the_loss_falls_when_overfitting() -> None:
    """Two frames, two sounding classes in the first and one in the second: a few AdamW steps
    lower every loss term, and every trainable parameter (the class head's too) gets a gradient."""
    torch.manual_seed(0)
    config = with_head(["a", "b", "c"])
    model = build_model(config).train()
    criterion = build_criterion(config.loss, num_classes=3)
    g = torch.Generator().manual_seed(2)
    images, audio = torch.randn(2, 3, 64, 64, generator=g), torch.randn(2, 1, 96, 64, generator=g)
    maps = torch.zeros(2, 64, 64, dtype=torch.long)
    maps[0, 8:28, 6:30] = 1
    maps[0, 36:60, 36:60] = 3
    maps[1, 10:40, 20:50] = 2
    targets = {"masks": (maps > 0).float(), "valid": torch.ones(2, dtype=torch.bool)}
    targets["class_maps"] = maps
    optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=1e-3, weight_decay=0.0)
    history = []
    for step in range(12):
        losses = criterion(model(images, audio), targets)
        total = criterion.weighted_total(losses)
        assert all(torch.isfinite(v) for v in losses.values())
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        if step == 0:
            missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
            assert not missing, missing
        optimizer.step()
        history.append({k: v.item() for k, v in losses.items()} | {"total": total.item()})
    first, last = history[0], history[-1]
    assert last["total"] < 0.75 * first["total"], (first, last)
    assert last["loss_class"] < 0.8 * first["loss_class"], (first, last)
    assert last["loss_dice"] < 0.6 * first["loss_dice"], (first, last)
