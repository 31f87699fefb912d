"""Builders: typed config dataclasses → AuTR parts → the model.

``build_model(config)`` reads the configured weight files (backbone, VGGish) and refuses a frozen
part without one unless ``config.random_init`` (:mod:`avs_model.modeling.weights`);
``build_model(config, load_weights=False)`` builds the architecture only, for a checkpoint's
state dict to fill: loading a checkpoint never opens the files its config names.
"""

from __future__ import annotations

import torch

from avs_model.modeling.audio_encoder import AudioEncoder, SmallAudioCNN, load_small_cnn_weights
from avs_model.modeling.autr import AuTR
from avs_model.modeling.backbone import Backbone, ViTBackbone, is_plain_vit
from avs_model.modeling.config import (
    AudioEncoderConfig,
    AuTRConfig,
    BackboneConfig,
    DecoderConfig,
    FusionConfig,
    MaskHeadConfig,
    PixelDecoderConfig,
    TransformerConfig,
)
from avs_model.modeling.decoder import AudioAwareDecoder, DecoderLayer
from avs_model.modeling.fusion import AudioVisualFusion
from avs_model.modeling.mask_head import DotProductMaskHead, DynamicConvMaskHead
from avs_model.modeling.pixel_decoder import PixelDecoder
from avs_model.modeling.transformer_encoder import DeformableEncoderLayer, TransformerEncoder
from avs_model.modeling.vggish import EMBED_DIM, VGGish, load_vggish_weights
from avs_model.modeling.weights import (
    BACKBONE_FILES,
    VGGISH_FILE,
    MissingPart,
    require_weights,
)

AUDIO_KINDS = ("vggish", "small_cnn")
MASK_HEAD_KINDS = ("dynamic_conv", "dot_product")


def frozen_parts_without_weights(config: AuTRConfig) -> list[MissingPart]:
    """The frozen parts of ``config`` that name no weight file."""
    missing = []
    if config.backbone.frozen and config.backbone.pretrained_path is None:
        name = config.backbone.name
        missing.append(
            MissingPart(
                part="backbone",
                name=name,
                key="backbone.pretrained_path",
                file=BACKBONE_FILES.get(name, f"ImageNet weights for timm's {name!r}"),
            )
        )
    audio = config.audio
    if audio.kind == "vggish" and audio.frozen and audio.weights_path is None:
        missing.append(
            MissingPart(
                part="audio encoder", name="vggish", key="audio.weights_path", file=VGGISH_FILE
            )
        )
    return missing


def build_backbone(config: BackboneConfig, *, load_weights: bool = True) -> Backbone | ViTBackbone:
    """A hierarchical timm network, or a plain ViT with a simple feature pyramid."""
    if is_plain_vit(config.name, config.timm_kwargs):
        return ViTBackbone(
            name=config.name,
            pretrained_path=config.pretrained_path if load_weights else None,
            frozen=config.frozen,
            pyramid_channels=config.pyramid_channels,
            timm_kwargs=config.timm_kwargs,
        )
    return Backbone(
        name=config.name,
        pretrained_path=config.pretrained_path if load_weights else None,
        frozen=config.frozen,
        channels_last=config.channels_last,
        fold_frozen=config.fold_frozen,
        timm_kwargs=config.timm_kwargs,
    )


def build_audio_encoder(config: AudioEncoderConfig, *, load_weights: bool = True) -> AudioEncoder:
    weights, tag_init = None, None
    if config.kind == "vggish":
        if config.embed_dim != EMBED_DIM:
            raise ValueError(
                f"VGGish gives {EMBED_DIM}-d embeddings, config says {config.embed_dim}"
            )
        if load_weights and config.weights_path is not None:
            with torch.device("meta"):  # skip the random init the weights replace
                network = VGGish()
            weights = load_vggish_weights(network, config.weights_path)
        else:
            network = VGGish()
    elif config.kind == "small_cnn":
        network = SmallAudioCNN(channels=config.small_channels, embed_dim=config.embed_dim)
        if load_weights and config.weights_path is not None:
            weights, tag_init = load_small_cnn_weights(network, config.weights_path)
    else:
        raise ValueError(f"unknown audio encoder kind {config.kind!r}; choose one of {AUDIO_KINDS}")
    return AudioEncoder(
        network=network,
        embed_dim=config.embed_dim,
        frozen=config.frozen,
        weights=weights,
        tag_init=tag_init,
    )


def build_fusion(
    config: FusionConfig,
    transformer: TransformerConfig,
    *,
    visual_channels: list[int],
    audio_dim: int,
) -> AudioVisualFusion:
    return AudioVisualFusion(
        visual_channels=visual_channels,
        audio_dim=audio_dim,
        d_model=transformer.d_model,
        num_heads=config.num_heads,
        enabled=config.enabled,
        extra_level=transformer.extra_level,
        dropout=transformer.dropout,
    )


def build_encoder(config: TransformerConfig, *, num_levels: int) -> TransformerEncoder:
    if config.d_model % 4:
        raise ValueError(f"transformer.d_model must be a multiple of 4, got {config.d_model}")
    layer = DeformableEncoderLayer(
        d_model=config.d_model,
        dim_feedforward=config.dim_feedforward,
        dropout=config.dropout,
        num_levels=num_levels,
        num_heads=config.num_heads,
        num_points=config.num_points,
        kernel=config.deformable_kernel,
    )
    return TransformerEncoder(
        layer=layer,
        num_layers=config.num_encoder_layers,
        d_model=config.d_model,
        num_levels=num_levels,
    )


def build_decoder(config: DecoderConfig, *, d_model: int) -> AudioAwareDecoder:
    if config.num_layers < 1 or config.num_queries < 1:
        raise ValueError("decoder.num_layers and decoder.num_queries must be at least 1")
    layer = DecoderLayer(
        d_model=d_model,
        num_heads=config.num_heads,
        dim_feedforward=config.dim_feedforward,
        dropout=config.dropout,
    )
    return AudioAwareDecoder(
        layer=layer,
        num_layers=config.num_layers,
        d_model=d_model,
        num_queries=config.num_queries,
        audio_queries=config.audio_queries,
    )


def build_pixel_decoder(
    config: PixelDecoderConfig,
    *,
    d_model: int,
    num_levels: int,
    stride4_channels: int,
    mask_dim: int,
) -> PixelDecoder:
    return PixelDecoder(
        d_model=d_model,
        num_levels=num_levels,
        stride4_channels=stride4_channels,
        mask_dim=mask_dim,
        num_heads=config.num_heads,
        audio_attention=config.audio_attention,
    )


def build_mask_head(
    config: MaskHeadConfig, *, d_model: int
) -> DynamicConvMaskHead | DotProductMaskHead:
    if config.kind == "dynamic_conv":
        return DynamicConvMaskHead(
            d_model=d_model,
            mask_dim=config.mask_dim,
            num_layers=config.num_layers,
            hidden_channels=config.hidden_channels,
            coord_channels=config.coord_channels,
        )
    if config.kind == "dot_product":
        return DotProductMaskHead(d_model=d_model, mask_dim=config.mask_dim)
    raise ValueError(f"unknown mask head kind {config.kind!r}; choose one of {MASK_HEAD_KINDS}")


def build_model(config: AuTRConfig, *, load_weights: bool = True) -> AuTR:
    """Build AuTR from its config.

    Args:
        config: the model config.
        load_weights: read the configured weight files (backbone, VGGish); a frozen part without
            one is an error unless ``config.random_init``. False: the architecture only (random
            init, no file opened), for a checkpoint's state dict to fill.
    """
    if load_weights:
        require_weights(frozen_parts_without_weights(config), random_init=config.random_init)
    backbone = build_backbone(config.backbone, load_weights=load_weights)
    audio_encoder = build_audio_encoder(config.audio, load_weights=load_weights)
    d_model = config.transformer.d_model
    fusion = build_fusion(
        config.fusion,
        config.transformer,
        visual_channels=backbone.channels[1:],
        audio_dim=audio_encoder.embed_dim,
    )
    return AuTR(
        backbone=backbone,
        audio_encoder=audio_encoder,
        fusion=fusion,
        encoder=build_encoder(config.transformer, num_levels=fusion.num_levels),
        decoder=build_decoder(config.decoder, d_model=d_model),
        pixel_decoder=build_pixel_decoder(
            config.pixel_decoder,
            d_model=d_model,
            num_levels=fusion.num_levels,
            stride4_channels=backbone.channels[0],
            mask_dim=config.mask_head.mask_dim,
        ),
        mask_head=build_mask_head(config.mask_head, d_model=d_model),
        num_classes=num_classes_of(config),
        audio_tags=audio_tags_of(config),
    )


def audio_tags_of(config: AuTRConfig) -> list[str]:
    """The audio-tagging head's class table ([]: no head)."""
    tags = config.audio_tags
    if not tags.enabled:
        return []
    if not tags.classes:
        raise ValueError(
            "audio_tags.enabled needs its class table (audio_tags.classes): training fills it "
            "from the shards' manifest (audio_classes)"
        )
    return list(tags.classes)


def num_classes_of(config: AuTRConfig) -> int:
    """K, the size of the class head's table (0: no class head)."""
    head = config.class_head
    if not head.enabled:
        return 0
    if not head.classes:
        raise ValueError(
            "class_head.enabled needs its class table (class_head.classes): training fills it "
            "from the shards' manifest (audio_classes), built with --class-masks"
        )
    if len(set(head.classes)) != len(head.classes):
        raise ValueError("class_head.classes lists a class twice")
    return len(head.classes)
