"""AuTR configs: presets, dict round trip, checkpoints with weights_only, YAML/JSON files."""

from __future__ import annotations

import json

import pytest
import torch

from avs_model.modeling.build import build_model
from avs_model.modeling.config import AuTRConfig, load_config, preset


def tiny(**changes) -> AuTRConfig:
    config = preset("autr_tiny")
    for key, value in changes.items():
        section, field = key.split("__")
        setattr(getattr(config, section), field, value)
    return config


def inputs(n=2):
    gen = torch.Generator().manual_seed(3)
    return torch.randn(n, 3, 64, 64, generator=gen), torch.randn(n, 1, 96, 64, generator=gen)


def test_presets():
    r50, b5, small = preset("autr_r50"), preset("autr_pvtv2_b5"), preset("autr_tiny")
    assert (r50.backbone.name, b5.backbone.name) == ("resnet50", "pvt_v2_b5")
    assert r50.audio.kind == b5.audio.kind == "vggish" and r50.audio.frozen
    assert (r50.transformer.d_model, r50.transformer.num_encoder_layers) == (256, 4)
    assert (r50.decoder.num_queries, r50.decoder.num_layers) == (5, 4)
    assert (small.transformer.d_model, small.image_size) == (64, 64)
    assert small.transformer.num_encoder_layers == small.decoder.num_layers == 2
    assert preset("autr_tiny") is not preset("autr_tiny")  # fresh copies
    with pytest.raises(ValueError, match="unknown AuTR preset 'autr_huge'"):
        preset("autr_huge")


def test_round_trip_builds_the_same_model():
    config = tiny(decoder__audio_queries=False, mask_head__kind="dot_product")
    data = config.to_dict()
    assert json.loads(json.dumps(data)) == data  # plain builtins only
    again = AuTRConfig.from_dict(data)
    assert again == config
    torch.manual_seed(0)
    a = build_model(config).eval()
    torch.manual_seed(0)
    b = build_model(again).eval()
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    images, audio = inputs()
    with torch.no_grad():
        torch.testing.assert_close(a(images, audio)["pred_masks"], b(images, audio)["pred_masks"])


def test_checkpoint_loads_with_weights_only(tmp_path):
    config = tiny()
    torch.manual_seed(0)
    model = build_model(config).eval()
    torch.save({"config": config.to_dict(), "model": model.state_dict()}, tmp_path / "ckpt.pt")
    ckpt = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    restored_config = AuTRConfig.from_dict(ckpt["config"])
    assert restored_config == config
    torch.manual_seed(1)  # a different init, overwritten by the checkpoint
    restored = build_model(restored_config).eval()
    restored.load_state_dict(ckpt["model"], strict=True)
    images, audio = inputs()
    with torch.no_grad():
        expected, got = model(images, audio), restored(images, audio)
    torch.testing.assert_close(got["pred_masks"], expected["pred_masks"])
    torch.testing.assert_close(got["pred_scores"], expected["pred_scores"])


def test_from_dict_rejects_unknown_fields_and_wrong_types():
    data = preset("autr_tiny").to_dict()
    data["decoder"]["num_querys"] = 3
    unknown = r"model\.decoder: unknown field\(s\) \['num_querys'\]"
    hint = r" \(did you mean model\.decoder\.num_queries\?\)"
    with pytest.raises(ValueError, match=unknown + hint):
        AuTRConfig.from_dict(data)
    data = preset("autr_tiny").to_dict()
    data["transformer"]["d_model"] = "64"
    with pytest.raises(ValueError, match=r"model\.transformer\.d_model: expected an integer"):
        AuTRConfig.from_dict(data)
    data = preset("autr_tiny").to_dict()
    data["fusion"]["enabled"] = "yes"
    with pytest.raises(ValueError, match=r"fusion\.enabled: expected true/false"):
        AuTRConfig.from_dict(data)


def test_partial_dict_keeps_defaults_and_ints_become_floats():
    config = AuTRConfig.from_dict({"loss": {"loss_dice": 4}, "backbone": {"name": "resnet18"}})
    assert config.loss.loss_dice == 4.0 and isinstance(config.loss.loss_dice, float)
    assert config.backbone.name == "resnet18" and config.backbone.frozen is True
    assert config.loss.weight_dict() == {"loss_focal": 2.0, "loss_dice": 4.0, "loss_sound": 2.0}


def test_load_config_yaml_with_preset_override(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text(
        "preset: autr_tiny\n"
        "name: my_exp\n"
        "decoder:\n  num_queries: 3\n"
        "backbone:\n  pretrained_path: /weights/lite0.pth\n"
    )
    config = load_config(path)
    expected = preset("autr_tiny")
    expected.name = "my_exp"
    expected.decoder.num_queries = 3
    expected.backbone.pretrained_path = "/weights/lite0.pth"
    assert config == expected


def test_load_config_json_and_errors(tmp_path):
    path = tmp_path / "exp.json"
    path.write_text(json.dumps(preset("autr_r50").to_dict()))
    assert load_config(path) == preset("autr_r50")
    bad = tmp_path / "bad.yaml"
    bad.write_text("decoder: [unclosed\n")
    with pytest.raises(ValueError, match="malformed AuTR config .*bad.yaml"):
        load_config(bad)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("preset: autr_tiny\nmask_head:\n  kind_: dot_product\n")
    unknown = r"wrong.yaml: model.mask_head: unknown field.*did you mean model.mask_head.kind"
    with pytest.raises(ValueError, match=unknown):
        load_config(wrong)
    with pytest.raises(ValueError, match="cannot read AuTR config .*missing.yaml"):
        load_config(tmp_path / "missing.yaml")
