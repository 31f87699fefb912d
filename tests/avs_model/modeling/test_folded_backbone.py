"""The frozen backbone's inference copy: BatchNorms folded, 1x1 convolutions as matrix products;
the same maps as the body, the body's own weights in the state dict, remade when they change."""

from __future__ import annotations

import pytest
import torch
from torch import fx, nn

from avs_model.modeling import folded_backbone
from avs_model.modeling.backbone import Backbone
from avs_model.modeling.build import build_model
from avs_model.modeling.config import preset
from avs_model.modeling.folded_backbone import PointwiseLinear, fold_for_inference


def _randomise_batch_norms(module: nn.Module, seed: int) -> None:
    """Give every BatchNorm statistics and an affine map far from the identity."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for bn in module.modules():
            if isinstance(bn, nn.BatchNorm2d):
                shape = bn.running_mean.shape
                bn.running_mean.copy_(torch.randn(shape, generator=gen))
                bn.running_var.copy_(torch.rand(shape, generator=gen) * 2 + 0.1)
                bn.weight.copy_(torch.randn(shape, generator=gen))
                bn.bias.copy_(torch.randn(shape, generator=gen))


def _backbone(name: str, *, fold: bool, channels_last: bool = True) -> Backbone:
    torch.manual_seed(0)
    backbone = Backbone(name=name, frozen=True, channels_last=channels_last, fold_frozen=fold)
    _randomise_batch_norms(backbone.body, seed=1)
    return backbone


def _maps(backbone: Backbone, images: torch.Tensor) -> list[torch.Tensor]:
    with torch.no_grad():
        return backbone(images)


def _assert_same_maps(got: list[torch.Tensor], expected: list[torch.Tensor]) -> None:
    assert len(got) == len(expected) == 4
    for g, e in zip(got, expected, strict=True):
        assert g.shape == e.shape and g.is_contiguous()
        torch.testing.assert_close(g, e, atol=1e-4 * e.abs().max().item(), rtol=1e-4)


@pytest.mark.parametrize("name", ["efficientnet_lite0", "resnet18"])
@pytest.mark.parametrize("channels_last", [True, False])
def test_the_folded_copy_gives_the_bodys_maps(name: str, channels_last: bool) -> None:
    images = torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    folded = _backbone(name, fold=True, channels_last=channels_last)
    plain = _backbone(name, fold=False, channels_last=channels_last)
    _assert_same_maps(_maps(folded, images), _maps(plain, images))
    copy = folded._folded[1]
    assert isinstance(copy, fx.GraphModule)
    # every BatchNorm is gone from the copy, and (channels-last only) every plain 1x1
    # convolution (EfficientNet's; ResNet-18's are strided)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in copy.modules())
    assert not any(n.target is torch.nn.functional.batch_norm for n in copy.graph.nodes)
    pointwise = [m for m in copy.modules() if isinstance(m, PointwiseLinear)]
    assert len(pointwise) == (31 if channels_last and name == "efficientnet_lite0" else 0)
    # the body is untouched: its BatchNorms are still there, its weights are its own
    assert any(isinstance(m, nn.BatchNorm2d) for m in folded.body.modules())
    assert folded.state_dict().keys() == plain.state_dict().keys()
    for key, value in folded.state_dict().items():
        assert torch.equal(value, plain.state_dict()[key]), key


def test_new_weights_are_folded_again() -> None:
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    folded = _backbone("efficientnet_lite0", fold=True)
    before = _maps(folded, images)
    other = _backbone("efficientnet_lite0", fold=False)
    _randomise_batch_norms(other.body, seed=9)
    folded.load_state_dict(other.state_dict())
    after = _maps(folded, images)
    assert not torch.allclose(after[0], before[0])
    _assert_same_maps(after, _maps(other, images))
    with torch.no_grad():  # an in-place update (as an EMA makes) is seen too
        folded.body.conv_stem.weight.mul_(0.5)
        other.body.conv_stem.weight.mul_(0.5)
    _assert_same_maps(_maps(folded, images), _maps(other, images))


def test_a_trainable_body_is_never_folded() -> None:
    backbone = Backbone(name="resnet18", frozen=False, fold_frozen=True)
    backbone(torch.randn(2, 3, 64, 64)).pop().sum().backward()
    assert backbone._folded is None
    assert backbone.body.conv1.weight.grad is not None


def test_a_body_that_cannot_be_traced_runs_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(module):
        raise fx.proxy.TraceError("data-dependent control flow")

    monkeypatch.setattr(folded_backbone.fx, "symbolic_trace", refuse)
    images = torch.randn(2, 3, 64, 64)
    backbone = _backbone("resnet18", fold=True)
    _assert_same_maps(_maps(backbone, images), _maps(_backbone("resnet18", fold=False), images))
    assert backbone._folded[1] is None


def test_only_eval_mode_is_folded() -> None:
    body = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    with pytest.raises(ValueError, match="eval mode"):
        fold_for_inference(body)


def test_a_convolution_called_twice_keeps_its_weights() -> None:
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 1)
            self.bn = nn.BatchNorm2d(4)

        def forward(self, x):
            return self.bn(self.conv(self.conv(x)))

    body = Twice().eval()
    _randomise_batch_norms(body, seed=4)
    x = torch.randn(2, 4, 8, 8)
    assert fold_for_inference(body, pointwise=False) is None  # nothing it may fold
    copy = fold_for_inference(body)  # the 1x1 convolution as a matrix product, the BN kept
    assert isinstance(copy.conv, PointwiseLinear) and isinstance(copy.bn, nn.BatchNorm2d)
    torch.testing.assert_close(copy(x), body(x), atol=1e-5, rtol=1e-5)


def test_the_model_with_a_folded_backbone_predicts_as_without() -> None:
    config = preset("autr_tiny")
    torch.manual_seed(0)
    model = build_model(config).eval()
    _randomise_batch_norms(model.backbone.body, seed=5)
    config.backbone.fold_frozen = False
    plain = build_model(config).eval()
    plain.load_state_dict(model.state_dict())
    gen = torch.Generator().manual_seed(0)
    images, audio = (
        torch.randn(2, 3, 64, 64, generator=gen),
        torch.randn(2, 1, 96, 64, generator=gen),
    )
    with torch.no_grad():
        got, expected = model(images, audio), plain(images, audio)
    torch.testing.assert_close(got["pred_masks"], expected["pred_masks"], atol=1e-4, rtol=1e-4)
    assert model.backbone._folded[1] is not None and plain.backbone._folded is None
