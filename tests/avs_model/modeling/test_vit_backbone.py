"""Plain-ViT backbones (DINOv2, SAM, EVA) with ViTDet's simple feature pyramid: shapes, strides,
freezing, weight files, and AuTR built on them. The ViTs are timm's, cut to two thin blocks."""

from __future__ import annotations

import logging

import pytest
import timm
import torch
from safetensors.torch import save_file

from avs_model.modeling.backbone import ViTBackbone, is_plain_vit
from avs_model.modeling.build import build_backbone, build_model
from avs_model.modeling.config import AuTRConfig, BackboneConfig, preset
from avs_model.modeling.simple_feature_pyramid import SimpleFeaturePyramid
from avs_model.runtime.train_config import load_train_config, resolve_model_config

SMALL = {  # timm name: (kwargs that shrink it, patch size)
    "vit_small_patch14_dinov2": ({"depth": 2, "embed_dim": 64, "num_heads": 2}, 14),
    "samvit_base_patch16": (
        {"depth": 2, "embed_dim": 64, "num_heads": 2, "global_attn_indexes": [1]},
        16,
    ),
    "eva02_tiny_patch14_224": ({"depth": 2}, 14),
}


def small_vit(name: str, **changes) -> ViTBackbone:
    kwargs, _ = SMALL[name]
    return ViTBackbone(name=name, timm_kwargs=kwargs, pyramid_channels=24, **changes)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_maps_at_four_patch_relative_strides(name):
    torch.manual_seed(0)
    backbone = small_vit(name)
    patch = SMALL[name][1]
    assert backbone.patch_size == patch
    assert backbone.strides == [patch / 4, patch / 2, patch, 2 * patch]
    assert backbone.channels == [24] * 4
    h, w = 4 * patch, 3 * patch  # any multiple of the patch, not square, an odd grid
    maps = backbone(torch.randn(2, 3, h, w))
    assert [tuple(m.shape) for m in maps] == [(2, 24, 16, 12), (2, 24, 8, 6), (2, 24, 4, 3),
                                              (2, 24, 2, 2)]  # fmt: skip
    assert all(torch.isfinite(m).all() for m in maps)


def test_frozen_vit_trains_only_the_pyramid():
    torch.manual_seed(0)
    backbone = small_vit("vit_small_patch14_dinov2").train()
    assert not backbone.body.training and backbone.pyramid.training
    sum(m.square().mean() for m in backbone(torch.randn(1, 3, 56, 56))).backward()
    assert all(p.grad is None and not p.requires_grad for p in backbone.body.parameters())
    pyramid = list(backbone.pyramid.named_parameters())
    assert pyramid and all(p.grad is not None and p.grad.abs().sum() > 0 for _, p in pyramid)

    unfrozen = small_vit("vit_small_patch14_dinov2", frozen=False).train()
    assert unfrozen.body.training
    sum(m.square().mean() for m in unfrozen(torch.randn(1, 3, 56, 56))).backward()
    assert unfrozen.body.model.blocks[0].attn.qkv.weight.grad is not None


def test_a_vit_trained_on_other_normalisation_is_flagged(caplog):
    with caplog.at_level(logging.WARNING):
        small_vit("vit_small_patch14_dinov2")
    assert "normalised with mean" not in caplog.text  # DINOv2: ImageNet's mean / std
    with caplog.at_level(logging.WARNING):
        small_vit("eva02_tiny_patch14_224")  # EVA-02: CLIP's
    assert "eva02_tiny_patch14_224 was trained on pictures normalised with mean" in caplog.text


def test_sides_must_be_multiples_of_the_patch():
    backbone = small_vit("vit_small_patch14_dinov2")
    with pytest.raises(ValueError, match="multiples of its 14-px patch, got 64 x 56"):
        backbone(torch.randn(1, 3, 64, 56))


def test_plain_vits_are_told_from_hierarchical_networks():
    assert is_plain_vit("vit_base_patch14_dinov2") and is_plain_vit("samvit_base_patch16")
    assert not is_plain_vit("resnet50") and not is_plain_vit("pvt_v2_b5")
    config = BackboneConfig(name="vit_small_patch14_dinov2", timm_kwargs=SMALL[
        "vit_small_patch14_dinov2"][0])  # fmt: skip
    assert isinstance(build_backbone(config), ViTBackbone)


def test_loads_timm_files_and_hugging_face_cache_folders(tmp_path):
    torch.manual_seed(0)
    kwargs, _ = SMALL["vit_small_patch14_dinov2"]
    full = timm.create_model("vit_small_patch14_dinov2", **kwargs)  # with its final norm, head
    snapshot = tmp_path / "models--timm--vit_small_patch14_dinov2.lvd142m" / "snapshots" / "0a1"
    snapshot.mkdir(parents=True)
    save_file(full.state_dict(), str(snapshot / "model.safetensors"))
    backbone = small_vit("vit_small_patch14_dinov2", pretrained_path=str(tmp_path))
    body = backbone.body.model
    assert torch.equal(body.blocks[1].mlp.fc2.weight, full.blocks[1].mlp.fc2.weight)
    assert torch.equal(body.pos_embed, full.pos_embed)
    assert torch.equal(body.blocks[0].ls1.gamma, full.blocks[0].ls1.gamma)


def test_loads_the_original_dinov2_and_sam_releases(tmp_path):
    torch.manual_seed(0)
    # DINOv2's release: timm's names plus a mask token
    kwargs, _ = SMALL["vit_small_patch14_dinov2"]
    full = timm.create_model("vit_small_patch14_dinov2", **kwargs)
    release = {k: v for k, v in full.state_dict().items() if not k.startswith("head")}
    release["mask_token"] = torch.zeros(1, 64)
    torch.save(release, tmp_path / "dinov2_vits14_pretrain.pth")
    backbone = small_vit(
        "vit_small_patch14_dinov2", pretrained_path=str(tmp_path / "dinov2_vits14_pretrain.pth")
    )
    assert torch.equal(
        backbone.body.model.blocks[1].attn.qkv.weight, full.blocks[1].attn.qkv.weight
    )

    # SAM's release: the image encoder under "image_encoder.", MLP layers named lin1 / lin2,
    # next to the prompt encoder and mask decoder
    kwargs, _ = SMALL["samvit_base_patch16"]
    sam = timm.create_model("samvit_base_patch16", **kwargs)
    release = {
        "image_encoder." + k.replace("mlp.fc", "mlp.lin"): v for k, v in sam.state_dict().items()
    }
    release["mask_decoder.iou_token.weight"] = torch.zeros(1, 256)
    torch.save(release, tmp_path / "sam_vit_b_01ec64.pth")
    backbone = small_vit(
        "samvit_base_patch16", pretrained_path=str(tmp_path / "sam_vit_b_01ec64.pth")
    )
    body = backbone.body.model
    assert torch.equal(body.blocks[1].mlp.fc1.weight, sam.blocks[1].mlp.fc1.weight)
    assert torch.equal(body.blocks[1].attn.rel_pos_h, sam.blocks[1].attn.rel_pos_h)


def test_weights_of_another_vit_are_refused_naming_the_file(tmp_path):
    other = timm.create_model("vit_small_patch14_dinov2", depth=2, embed_dim=96, num_heads=2)
    torch.save(other.state_dict(), tmp_path / "wider.pth")
    with pytest.raises(
        ValueError, match=r"wider\.pth does not fit timm 'vit_small_patch14_dinov2'"
    ):
        small_vit("vit_small_patch14_dinov2", pretrained_path=str(tmp_path / "wider.pth"))


def test_simple_feature_pyramid_shapes_and_odd_grids():
    torch.manual_seed(0)
    pyramid = SimpleFeaturePyramid(in_channels=16, out_channels=8)
    maps = pyramid(torch.randn(2, 16, 5, 7))
    assert [tuple(m.shape) for m in maps] == [(2, 8, 20, 28), (2, 8, 10, 14), (2, 8, 5, 7),
                                              (2, 8, 3, 4)]  # fmt: skip
    # every output ends in a LayerNorm over channels: zero mean, unit variance per pixel
    for m in maps:
        torch.testing.assert_close(m.mean(1), torch.zeros_like(m[:, 0]), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="divisible by 4"):
        SimpleFeaturePyramid(in_channels=18)


def tiny_on_vit(name: str) -> AuTRConfig:
    config = preset("autr_tiny")
    config.backbone = BackboneConfig(
        name=name, timm_kwargs=SMALL[name][0], pyramid_channels=24, channels_last=False
    )
    config.random_init = True  # the frozen ViT runs on random weights: a test
    return config


@pytest.mark.parametrize("name", ["vit_small_patch14_dinov2", "samvit_base_patch16"])
def test_autr_on_a_frozen_vit_every_trainable_parameter_gets_a_gradient(name):
    torch.manual_seed(0)
    model = build_model(tiny_on_vit(name)).train()
    side = 4 * SMALL[name][1]
    images = torch.randn(2, 3, side, side)
    audio = torch.randn(2, 1, 96, 64)
    out = model(images, audio)
    assert out["pred_masks"].shape == (2, 5, side * 4 // SMALL[name][1], side * 4 // SMALL[name][1])
    layers = [out, *out["aux_outputs"]]
    loss = sum(o["pred_masks"].sigmoid().mean() + o["pred_scores"].mean() for o in layers)
    loss.backward()
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    frozen = {n: p for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen and all(n.startswith("backbone.body.") for n in frozen)
    assert any(n.startswith("backbone.pyramid.") for n in trainable)
    no_grad = [n for n, p in trainable.items() if p.grad is None or not p.grad.abs().sum() > 0]
    assert no_grad == []
    assert all(torch.isfinite(p.grad).all() for p in trainable.values())


@pytest.mark.parametrize(
    "name,timm_name,size,strides",
    [
        ("autr_dinov2_b", "vit_base_patch14_dinov2", 448, [3.5, 7.0, 14.0, 28.0]),
        ("autr_sam_b", "samvit_base_patch16", 512, [4.0, 8.0, 16.0, 32.0]),
    ],
)
def test_foundation_presets(name, timm_name, size, strides):
    config = preset(name)
    assert config.backbone.name == timm_name and config.image_size == size
    assert config.backbone.frozen
    assert size % (2 * strides[2]) == 0  # an even patch grid
    with torch.device("meta"):  # the full-size backbone, without memory
        backbone = build_backbone(config.backbone)
    assert isinstance(backbone, ViTBackbone) and backbone.strides == strides
    assert backbone.channels == [256] * 4
    encoder = sum(p.numel() for p in backbone.body.parameters() if not p.requires_grad)
    assert 85e6 < encoder < 95e6  # ViT-B, frozen
    assert all(p.requires_grad for p in backbone.pyramid.parameters())
    assert AuTRConfig.from_dict(config.to_dict()) == config


def test_timm_kwargs_must_be_a_mapping():
    data = preset("autr_tiny").to_dict()
    data["backbone"]["timm_kwargs"] = ["depth", 2]
    with pytest.raises(ValueError, match="backbone.timm_kwargs: expected a mapping"):
        AuTRConfig.from_dict(data)


@pytest.mark.parametrize("variant,patch", [("dinov2_b", 14), ("sam_b", 16)])
def test_foundation_recipes_feed_whole_patch_grids(variant, patch):
    for kind in ("pretrain", "s4", "ms3"):
        config = load_train_config(f"{kind}_{variant}")
        model = resolve_model_config(config)
        assert model.name == f"autr_{variant}" and model.backbone.frozen
        resize = config.data.resize
        # both sides are whole multiples of twice the patch (the half-grid level is whole)
        assert resize.size % (2 * patch) == 0
        if resize.mode == "keep_aspect":
            assert resize.pad_multiple % (2 * patch) == 0 and config.batch_size == 1
        else:
            assert resize.size == model.image_size and config.batch_size == 8
            assert config.avsbench.subset == kind
