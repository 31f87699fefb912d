"""SetCriterion: hand-computed values, negatives, invalid frames, gradients, auxiliary layers."""

from __future__ import annotations

import math

import pytest
import torch

from avs_model.modeling.config import LossConfig
from avs_model.modeling.criterion import SetCriterion, build_criterion
from avs_model.modeling.matcher import SoundingQueryMatcher

LN2 = math.log(2)
GT = torch.tensor([[1.0, 1.0], [0.0, 0.0]])  # [2, 2]: top row


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def tiny_batch(requires_grad: bool = False) -> tuple[dict, dict]:
    """Frame 0 positive, frame 1 negative (empty GT), frame 2 unannotated; Q = 2, 2 x 2 masks.

    Frame 0: query 0 has logits 0 (p = 0.5), query 1 the inverse mask (never matched).
    """
    masks = torch.zeros(3, 2, 2, 2, dtype=torch.float64)
    masks[0, 1] = -8 * (2 * GT - 1)
    masks[1] = torch.tensor([[3.0, -1.0], [0.5, 2.0]], dtype=torch.float64)
    masks[2] = torch.tensor([[-4.0, 1.0], [2.0, 7.0]], dtype=torch.float64)
    scores = torch.tensor([[0.0, 0.0], [1.0, -1.0], [5.0, -3.0]], dtype=torch.float64)
    masks.requires_grad_(requires_grad)
    scores.requires_grad_(requires_grad)
    gt = torch.stack([GT, torch.zeros(2, 2), GT]).double()
    valid = torch.tensor([True, True, False])
    return {"pred_masks": masks, "pred_scores": scores}, {"masks": gt, "valid": valid}


# hand values of tiny_batch
FOCAL = (2 * 0.25 * 0.25 * LN2 + 2 * 0.75 * 0.25 * LN2) / 4  # p = 0.5, 2 of 4 pixels positive
DICE = 1 - (2 * 1.0 + 1) / (2.0 + 2.0 + 1)  # = 0.4
SOUND = ((LN2 + LN2) + (softplus(1.0) + softplus(-1.0))) / 2  # frame 0: q0 -> 1, q1 -> 0


def criterion(**kwargs) -> SetCriterion:
    return SetCriterion(matcher=SoundingQueryMatcher(), **kwargs)


def test_hand_computed_values() -> None:
    outputs, targets = tiny_batch()
    losses = criterion()(outputs, targets)
    assert set(losses) == {"loss_focal", "loss_dice", "loss_sound"}
    assert losses["loss_focal"].item() == pytest.approx(FOCAL, rel=1e-10)
    assert losses["loss_dice"].item() == pytest.approx(DICE, rel=1e-10)
    assert losses["loss_sound"].item() == pytest.approx(SOUND, rel=1e-10)
    total = criterion().weighted_total(losses).item()
    assert total == pytest.approx(2 * FOCAL + 5 * DICE + 2 * SOUND, rel=1e-10)


def test_mask_losses_normalised_by_positive_frames() -> None:
    outputs, targets = tiny_batch()
    # make frame 2 a second positive copy of frame 0: mask losses stay the same (mean over 2)
    outputs["pred_masks"] = outputs["pred_masks"].clone()
    outputs["pred_masks"][2] = outputs["pred_masks"][0]
    outputs["pred_scores"] = outputs["pred_scores"].clone()
    outputs["pred_scores"][2] = outputs["pred_scores"][0]
    targets["valid"] = torch.tensor([True, True, True])
    losses = criterion()(outputs, targets)
    assert losses["loss_focal"].item() == pytest.approx(FOCAL, rel=1e-10)
    assert losses["loss_dice"].item() == pytest.approx(DICE, rel=1e-10)
    # sound: per-frame sums, mean over the 3 valid frames
    expected = (2 * (2 * LN2) + softplus(1.0) + softplus(-1.0)) / 3
    assert losses["loss_sound"].item() == pytest.approx(expected, rel=1e-10)


def test_invalid_frames_change_nothing_and_get_no_gradient() -> None:
    outputs, targets = tiny_batch(requires_grad=True)
    base = criterion()(outputs, targets)
    total = criterion().weighted_total(base)
    total.backward()
    masks_grad, scores_grad = outputs["pred_masks"].grad, outputs["pred_scores"].grad
    assert torch.all(masks_grad[2] == 0) and torch.all(scores_grad[2] == 0)

    changed, _ = tiny_batch()
    changed["pred_masks"] = changed["pred_masks"].clone()
    changed["pred_masks"][2] = torch.randn(2, 2, 2, dtype=torch.float64) * 10
    changed["pred_scores"] = changed["pred_scores"].clone()
    changed["pred_scores"][2] = torch.tensor([-7.0, 9.0], dtype=torch.float64)
    other = criterion()(changed, targets)
    for name, value in base.items():
        assert other[name].item() == pytest.approx(value.item(), rel=1e-12), name


def test_gradients_flow_only_where_expected() -> None:
    outputs, targets = tiny_batch(requires_grad=True)
    losses = criterion()(outputs, targets)
    criterion().weighted_total(losses).backward()
    masks_grad, scores_grad = outputs["pred_masks"].grad, outputs["pred_scores"].grad
    # positive frame: the matched query's mask gets gradient, the other query's mask none
    assert masks_grad[0, 0].abs().min() > 0
    assert torch.all(masks_grad[0, 1] == 0)
    # negative frame: no mask gradient, but its sounding scores are trained (towards 0)
    assert torch.all(masks_grad[1] == 0)
    assert torch.all(scores_grad[1] > 0)
    # positive frame scores: the matched one pushed up, the other down
    assert scores_grad[0, 0] < 0 < scores_grad[0, 1]
    # d loss_sound / d s = w * (sigmoid(s) - y) / num_valid
    assert scores_grad[1, 0].item() == pytest.approx(2 * (1 / (1 + math.exp(-1.0))) / 2)


def test_negatives_only_train_the_sounding_head() -> None:
    outputs, targets = tiny_batch(requires_grad=True)
    targets["masks"] = torch.zeros(3, 2, 2, dtype=torch.float64)
    losses = criterion()(outputs, targets)
    assert losses["loss_focal"].item() == 0.0
    assert losses["loss_dice"].item() == 0.0
    expected = (2 * LN2 + softplus(1.0) + softplus(-1.0)) / 2
    assert losses["loss_sound"].item() == pytest.approx(expected, rel=1e-10)
    total = criterion().weighted_total(losses)
    assert torch.isfinite(total)
    total.backward()
    assert torch.all(outputs["pred_masks"].grad == 0)
    assert outputs["pred_scores"].grad[:2].abs().min() > 0


def test_nothing_valid_gives_zeros_not_nan() -> None:
    outputs, targets = tiny_batch(requires_grad=True)
    targets["valid"] = torch.zeros(3, dtype=torch.bool)
    losses = criterion()(outputs, targets)
    assert all(value.item() == 0.0 for value in losses.values())
    total = criterion().weighted_total(losses)
    total.backward()
    assert torch.all(outputs["pred_masks"].grad == 0)
    assert torch.all(outputs["pred_scores"].grad == 0)


def test_mask_losses_at_gt_resolution() -> None:
    # logits 0 at [2, 2]; GT at [4, 4] with 4 of 16 pixels on: the hand values need 16 pixels
    masks = torch.zeros(1, 1, 2, 2, dtype=torch.float64)
    scores = torch.zeros(1, 1, dtype=torch.float64)
    gt = torch.zeros(1, 4, 4, dtype=torch.float64)
    gt[0, 1:3, 1:3] = 1.0
    losses = criterion()({"pred_masks": masks, "pred_scores": scores}, {"masks": gt})
    focal = (4 * 0.25 * 0.25 * LN2 + 12 * 0.75 * 0.25 * LN2) / 16
    dice = 1 - (2 * 0.5 * 4 + 1) / (0.5 * 16 + 4 + 1)
    assert losses["loss_focal"].item() == pytest.approx(focal, rel=1e-10)
    assert losses["loss_dice"].item() == pytest.approx(dice, rel=1e-10)
    assert losses["loss_sound"].item() == pytest.approx(LN2, rel=1e-10)


def test_aux_layers_are_matched_independently() -> None:
    outputs, targets = tiny_batch()
    # aux layer 0: the same predictions with the two queries swapped. Matched on its own it
    # has the same losses; with the last layer's matching it would pick the inverse mask.
    swapped = {
        "pred_masks": outputs["pred_masks"].flip(1),
        "pred_scores": outputs["pred_scores"].flip(1),
    }
    # aux layer 1: frame 0's good query scores high -> a smaller sound loss
    louder = {
        "pred_masks": outputs["pred_masks"],
        "pred_scores": outputs["pred_scores"] + torch.tensor([[4.0, 0.0], [0.0, 0.0], [0.0, 0.0]]),
    }
    outputs["aux_outputs"] = [swapped, louder]
    losses = criterion()(outputs, targets)
    assert set(losses) == {
        f"loss_{name}{suffix}" for name in ("focal", "dice", "sound") for suffix in ("", "_0", "_1")
    }
    for name in ("loss_focal", "loss_dice", "loss_sound"):
        assert losses[f"{name}_0"].item() == pytest.approx(losses[name].item(), rel=1e-12)
    louder_sound = ((softplus(-4.0) + LN2) + (softplus(1.0) + softplus(-1.0))) / 2
    assert losses["loss_sound_1"].item() == pytest.approx(louder_sound, rel=1e-10)
    assert losses["loss_dice_1"].item() == pytest.approx(DICE, rel=1e-10)

    crit = criterion()
    total = crit.weighted_total(losses).item()
    assert total == pytest.approx(
        2 * (2 * FOCAL + 5 * DICE + 2 * SOUND) + (2 * FOCAL + 5 * DICE + 2 * louder_sound),
        rel=1e-10,
    )
    # aux off: only the last layer
    assert set(criterion(aux_loss=False)(outputs, targets)) == {
        "loss_focal",
        "loss_dice",
        "loss_sound",
    }


def test_weight_dict_and_aux_overrides() -> None:
    crit = criterion(
        weight_dict={"loss_focal": 1.0, "loss_dice": 3.0, "loss_sound": 0.5, "loss_sound_0": 0.0}
    )
    assert crit.weight("loss_dice_7") == 3.0
    assert crit.weight("loss_sound_0") == 0.0
    assert crit.weight("loss_sound_1") == 0.5
    losses = {
        "loss_focal": torch.tensor(1.0),
        "loss_sound": torch.tensor(2.0),
        "loss_sound_0": torch.tensor(100.0),
    }
    assert crit.weighted_total(losses).item() == pytest.approx(1.0 + 1.0)
    with pytest.raises(KeyError, match="loss_other"):
        crit.weight("loss_other")
    with pytest.raises(ValueError, match="loss_sound"):
        criterion(weight_dict={"loss_focal": 1.0, "loss_dice": 1.0})


def test_random_contract_shaped_outputs() -> None:
    # N = B * T = 2 * 5 frames, Q = 5, masks at H/4 = 16, GT at 64; S4-train-like validity
    g = torch.Generator().manual_seed(0)
    n, q = 10, 5

    def layer() -> dict:
        return {
            "pred_masks": torch.randn(n, q, 16, 16, generator=g).requires_grad_(),
            "pred_scores": torch.randn(n, q, generator=g).requires_grad_(),
        }

    outputs = layer()
    outputs["aux_outputs"] = [layer(), layer()]
    gt = (torch.rand(n, 64, 64, generator=g) > 0.7).float()
    gt[5] = 0.0
    valid = torch.tensor([True, False, False, False, False] * 2)
    losses = criterion()(outputs, {"masks": gt, "valid": valid})
    assert len(losses) == 9
    total = criterion().weighted_total(losses)
    assert torch.isfinite(total)
    total.backward()
    for layer_out in [outputs, *outputs["aux_outputs"]]:
        grad = layer_out["pred_masks"].grad
        assert torch.isfinite(grad).all()
        assert grad[0].abs().sum() > 0  # frame 0 positive
        assert torch.all(grad[1:] == 0)  # frames 1-4 invalid, 5 negative, 6-9 invalid
        sgrad = layer_out["pred_scores"].grad
        assert sgrad[0].abs().min() > 0 and sgrad[5].abs().min() > 0
        assert torch.all(sgrad[valid.logical_not()] == 0)


def test_bfloat16_predictions_give_float32_losses() -> None:
    outputs, targets = tiny_batch()
    half = {k: v.bfloat16() for k, v in outputs.items()}
    losses = criterion()(half, targets)
    assert all(value.dtype == torch.float32 for value in losses.values())
    assert losses["loss_focal"].item() == pytest.approx(FOCAL, rel=1e-6)
    assert losses["loss_dice"].item() == pytest.approx(DICE, rel=1e-6)
    assert losses["loss_sound"].item() == pytest.approx(SOUND, rel=1e-6)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_autocast_matches_cpu() -> None:
    g = torch.Generator().manual_seed(0)
    outputs = {
        "pred_masks": torch.randn(10, 5, 16, 16, generator=g),
        "pred_scores": torch.randn(10, 5, generator=g),
    }
    targets = {"masks": (torch.rand(10, 64, 64, generator=g) > 0.7).float()}
    ref = criterion()(outputs, targets)
    cuda_out = {k: v.cuda().requires_grad_() for k, v in outputs.items()}
    with torch.autocast("cuda", dtype=torch.float16):
        losses = criterion()(cuda_out, {"masks": targets["masks"].cuda()})
    criterion().weighted_total(losses).backward()
    for name, value in ref.items():
        assert losses[name].item() == pytest.approx(value.item(), rel=1e-4), name
    assert torch.isfinite(cuda_out["pred_masks"].grad).all()


def test_build_criterion_from_config() -> None:
    crit = build_criterion(LossConfig(loss_dice=4.0, cost_sound=7.0, aux_loss=False))
    assert crit.weight_dict == {"loss_focal": 2.0, "loss_dice": 4.0, "loss_sound": 2.0}
    assert crit.matcher.cost_sound == 7.0 and crit.matcher.cost_dice == 5.0
    assert not crit.aux_loss
    outputs, targets = tiny_batch()
    assert crit(outputs, targets)["loss_dice"].item() == pytest.approx(DICE, rel=1e-10)
