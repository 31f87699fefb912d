"""AuTR's optional audio-tagging head: its targets (the classes heard), its loss, the head-off
model left exactly as it was, and the classes heard in decoded stills and clip frames."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from avs_model.data.clip_samples import heard_in_clip_frame
from avs_model.data.stream import heard_classes
from avs_model.modeling.build import audio_tags_of, build_model
from avs_model.modeling.config import AudioTagConfig, AuTRConfig, LossConfig, preset
from avs_model.modeling.criterion import audio_tag_loss, audio_tag_targets, build_criterion
from avs_model.training.engine import log_names

TABLE = ["dog barking", "cat meowing", "owl hooting"]


def with_tags(classes: list[str]) -> AuTRConfig:
    config = preset("autr_tiny")
    config.audio_tags = AudioTagConfig(enabled=True, classes=classes)
    return config


def test_targets_are_the_multi_hot_classes_heard() -> None:
    heard = [("dog barking", "owl hooting"), ("cat meowing",), (), None, ("lion roaring",)]
    tags, known = audio_tag_targets(heard, TABLE)
    assert tags.tolist() == [
        [1.0, 0.0, 1.0],  # a mix: both sources
        [0.0, 1.0, 0.0],
        [0.0, 0.0, 0.0],  # silence: nothing heard, every class a negative
        [0.0, 0.0, 0.0],  # unknown (AVSBench): no target at all
        [0.0, 0.0, 0.0],  # a class outside the table has no logit to raise
    ]
    assert known.tolist() == [True, True, True, False, True]


def test_loss_is_the_bce_summed_over_classes_and_averaged_over_known_frames() -> None:
    torch.manual_seed(0)
    logits = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    tags, known = audio_tag_targets(
        [("dog barking",), None, (), ("cat meowing", "owl hooting")], TABLE
    )
    loss = audio_tag_loss(logits, tags, known)
    per_frame = F.binary_cross_entropy_with_logits(logits, tags.double(), reduction="none").sum(1)
    expected = (per_frame[0] + per_frame[2] + per_frame[3]) / 3
    assert torch.allclose(loss, expected)
    loss.backward()
    assert torch.equal(logits.grad[1], torch.zeros(3, dtype=torch.float64))  # unknown: no gradient
    # no known frame: an exact 0, still connected to the graph
    logits.grad = None
    nothing = audio_tag_loss(logits, tags, torch.zeros(4, dtype=torch.bool))
    nothing.backward()
    assert nothing.item() == 0.0 and torch.equal(logits.grad, torch.zeros_like(logits))
    with pytest.raises(ValueError, match=r"audio_tag_logits \(4, 3\) and audio_tags \(4, 2\)"):
        audio_tag_loss(logits, tags[:, :2], known)


def test_criterion_adds_loss_tag_only_with_the_head() -> None:
    torch.manual_seed(0)
    outputs = {"pred_masks": torch.randn(2, 3, 4, 4), "pred_scores": torch.randn(2, 3)}
    targets = {"masks": torch.zeros(2, 4, 4)}
    targets["masks"][0, :2, :2] = 1
    plain = build_criterion(LossConfig(aux_loss=False))
    assert "loss_tag" not in plain.weight_dict and "loss_tag" not in log_names(plain)
    config = LossConfig(aux_loss=False, loss_tag=0.5)
    tagged = build_criterion(config, audio_tags=True)
    assert tagged.weight_dict["loss_tag"] == 0.5 and "loss_tag" in log_names(tagged)
    assert "loss_tag" not in tagged(outputs, targets)  # a model without the head: no term
    logits = torch.randn(2, 3)
    tags, known = audio_tag_targets([("owl hooting",), ()], TABLE)
    losses = tagged(
        {**outputs, "audio_tag_logits": logits},
        {**targets, "audio_tags": tags, "audio_tag_known": known},
    )
    assert torch.allclose(losses["loss_tag"], audio_tag_loss(logits, tags, known))
    assert torch.allclose(
        tagged.weighted_total(losses),
        plain.weighted_total(plain(outputs, targets)) + 0.5 * losses["loss_tag"],
    )


def test_head_off_model_is_unchanged_and_the_head_is_built_last() -> None:
    config = preset("autr_tiny")
    assert not config.audio_tags.enabled and audio_tags_of(config) == []
    torch.manual_seed(0)
    model = build_model(config).eval()
    torch.manual_seed(0)
    tagged = build_model(with_tags(TABLE)).eval()
    state, tagged_state = model.state_dict(), tagged.state_dict()
    assert sorted(set(tagged_state) - set(state)) == ["tag_head.bias", "tag_head.weight"]
    assert all(torch.equal(tagged_state[k], v) for k, v in state.items())
    g = torch.Generator().manual_seed(1)
    images, audio = torch.randn(2, 3, 64, 64, generator=g), torch.randn(2, 1, 96, 64, generator=g)
    with torch.no_grad():
        out, out_tagged = model(images, audio), tagged(images, audio)
    assert "audio_tag_logits" not in out
    assert torch.equal(out_tagged["pred_masks"], out["pred_masks"])
    assert out_tagged["audio_tag_logits"].shape == (2, 3)
    embedding = tagged.audio_encoder(audio)
    assert torch.allclose(out_tagged["audio_tag_logits"], tagged.tag_head(embedding))


def test_the_head_starts_at_the_prior_of_one_class_heard() -> None:
    """Its bias starts at log(p / (1 - p)), p = 1 / the table's size, so a fresh model's tagging
    loss over a large table is a few nats, not the table's size times log 2."""
    table = [f"class {i}" for i in range(174)]
    model = build_model(with_tags(table)).eval()
    assert torch.allclose(model.tag_head.bias, torch.full((174,), -math.log(173.0)))
    g = torch.Generator().manual_seed(2)
    images, audio = torch.randn(4, 3, 64, 64, generator=g), torch.randn(4, 1, 96, 64, generator=g)
    with torch.no_grad():
        logits = model(images, audio)["audio_tag_logits"]
    tags = torch.zeros(4, 174)
    tags[:, 0] = 1.0
    loss = audio_tag_loss(logits, tags, torch.ones(4, dtype=torch.bool))
    assert loss < 15 < 174 * math.log(2)


def test_head_needs_its_table_and_configs_round_trip() -> None:
    config = preset("autr_tiny")
    config.audio_tags.enabled = True
    with pytest.raises(ValueError, match="audio_tags.classes"):
        build_model(config, load_weights=False)
    config = with_tags(TABLE)
    assert AuTRConfig.from_dict(config.to_dict()).audio_tags == config.audio_tags
    assert AuTRConfig.from_dict({}).audio_tags == AudioTagConfig()  # old checkpoints: no head


def test_the_head_and_the_audio_encoder_learn_from_loss_tag() -> None:
    torch.manual_seed(0)
    model = build_model(with_tags(TABLE)).train()
    g = torch.Generator().manual_seed(2)
    audio = torch.randn(2, 1, 96, 64, generator=g)
    out = model(torch.randn(2, 3, 64, 64, generator=g), audio)
    tags, known = audio_tag_targets([("dog barking", "owl hooting"), ("cat meowing",)], TABLE)
    audio_tag_loss(out["audio_tag_logits"], tags, known).backward()
    assert model.tag_head.weight.grad.abs().sum() > 0
    encoder_grads = [p.grad for p in model.audio_encoder.parameters() if p.requires_grad]
    assert encoder_grads and any(g is not None and g.abs().sum() > 0 for g in encoder_grads)
    assert all(p.grad is None for p in model.decoder.parameters())  # loss_tag reaches no further


@pytest.mark.parametrize(
    ("sample", "heard"),
    [
        ({"audio_class": "dog barking", "sources": ()}, ("dog barking",)),
        (
            {
                "audio_class": "dog barking",
                "sources": (("dog barking", 0.0), ("cat meowing", -3.0)),
            },
            ("dog barking", "cat meowing"),
        ),
        (
            {"audio_class": "owl hooting", "negative_kind": "absent", "sources": ()},
            ("owl hooting",),
        ),
        ({"audio_class": "owl hooting", "negative_kind": "offscreen"}, ("owl hooting",)),
        ({"audio_class": "dog barking", "negative_kind": "silence", "sources": ()}, ()),
        ({"audio_class": "", "negative_kind": "noise", "sources": ()}, ()),
    ],
)
def test_classes_heard_in_a_still(sample: dict, heard: tuple[str, ...]) -> None:
    assert heard_classes(sample) == heard


def test_classes_heard_in_a_clip_frame() -> None:
    single = {"audio_class": "dog barking", "num_sources": 1}
    assert heard_in_clip_frame(single, silent=False) == ("dog barking",)
    assert heard_in_clip_frame(single, silent=True) == ()  # the source is silent in this frame
    assert heard_in_clip_frame({**single, "num_sources": None}, silent=False) == ("dog barking",)
    assert (
        heard_in_clip_frame({"audio_class": "dog barking", "num_sources": 2}, silent=False) is None
    )
    assert heard_in_clip_frame({"audio_class": "x", "negative_kind": "silence"}, silent=False) == ()
