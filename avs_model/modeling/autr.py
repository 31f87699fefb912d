"""AuTR: the audio-aware query-enhanced transformer for audio-visual segmentation."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from avs_model.modeling.audio_encoder import AudioEncoder, TagHeadInit
from avs_model.modeling.backbone import Backbone, ViTBackbone
from avs_model.modeling.decoder import AudioAwareDecoder
from avs_model.modeling.fusion import AudioVisualFusion
from avs_model.modeling.mask_head import DotProductMaskHead, DynamicConvMaskHead
from avs_model.modeling.pixel_decoder import PixelDecoder
from avs_model.modeling.transformer_encoder import TransformerEncoder
from avs_model.modeling.weights import part_source


class AuTR(nn.Module):
    """Backbone + audio encoder → fusion → deformable encoder → audio-aware decoder → masks."""

    def __init__(
        self,
        *,
        backbone: Backbone | ViTBackbone,
        audio_encoder: AudioEncoder,
        fusion: AudioVisualFusion,
        encoder: TransformerEncoder,
        decoder: AudioAwareDecoder,
        pixel_decoder: PixelDecoder,
        mask_head: DynamicConvMaskHead | DotProductMaskHead,
        num_classes: int = 0,
        audio_tags: list[str] | None = None,
    ) -> None:
        """Args:
        backbone: the visual encoder (maps at strides 4, 8, 16, 32; p/4 ... 2p for a ViT).
        audio_encoder: waveforms or log-mel examples → one embedding per frame.
        fusion: per-scale projection + audio cross-attention (strides 8, 16, 32[, 64]).
        encoder: the multi-scale deformable transformer encoder.
        decoder: the audio-aware query decoder.
        pixel_decoder: FPN to stride-4 mask features.
        mask_head: query embeddings + mask features → mask logits.
        num_classes: K > 0 adds the class head, a linear layer giving every query K + 1 class
            logits (the K audio classes of the training data's table, then "no object"); 0 (the
            paper's model) adds nothing.
        audio_tags: the audio-tagging head's class table: given, a linear layer on the audio
            embedding gives a logit per class (``AudioTagConfig``); None or empty adds nothing.
        """
        super().__init__()
        self.backbone = backbone
        self.audio_encoder = audio_encoder
        self.fusion = fusion
        self.encoder = encoder
        self.decoder = decoder
        self.pixel_decoder = pixel_decoder
        self.mask_head = mask_head
        self.score_head = nn.Linear(decoder.d_model, 1)
        prior = 1.0 / decoder.num_queries  # one sounding query per frame
        nn.init.constant_(self.score_head.bias, -math.log((1 - prior) / prior))
        # built last, so that the other parts draw the same initial weights with or without it
        self.class_head = nn.Linear(decoder.d_model, num_classes + 1) if num_classes > 0 else None
        self.num_classes = num_classes
        # built after the class head, so that the other parts draw the same initial weights
        self.audio_tags = list(audio_tags or [])
        self.tag_head = (
            nn.Linear(audio_encoder.embed_dim, len(self.audio_tags)) if self.audio_tags else None
        )
        if self.tag_head is not None:
            self._init_tag_head(audio_encoder.tag_init)

    @torch.no_grad()
    def _init_tag_head(self, pretrained: TagHeadInit | None) -> None:
        """The tagging head's bias starts at the prior of one class heard among the table's (as
        the sounding score's), so its first loss is not the table's size times log 2; the rows of
        the classes a pre-trained audio encoder's own head knows start from that head."""
        assert self.tag_head is not None
        prior = 1.0 / max(len(self.audio_tags), 2)
        nn.init.constant_(self.tag_head.bias, -math.log((1 - prior) / prior))
        if pretrained is None:
            return
        row = {label: i for i, label in enumerate(pretrained.classes)}
        for i, label in enumerate(self.audio_tags):
            if label in row:
                self.tag_head.weight[i] = pretrained.weight[row[label]]
                self.tag_head.bias[i] = pretrained.bias[row[label]]

    def weight_sources(self) -> dict[str, dict[str, Any]]:
        """What the pretrained parts were built from (a file with its sha256, or random init);
        the rest of the model starts random (seeded)."""
        return {
            "backbone": part_source(self.backbone.weights, frozen=self.backbone.frozen),
            "audio_encoder": part_source(
                self.audio_encoder.weights, frozen=self.audio_encoder.frozen
            ),
        }

    def forward(self, images: Tensor, audio: Tensor) -> dict[str, Tensor | list[dict[str, Tensor]]]:
        """Run AuTR on N = B·T frames (clips folded into the batch).

        Args:
            images: [N, 3, H, W], ImageNet-normalised.
            audio: [N, 1, 96, 64] VGGish log-mel examples (one per frame), or [N, S] 16 kHz
                waveforms (S >= 15,600; the first example of each is used).

        Returns:
            a dict with
            - ``pred_masks``: [N, Q, H/4, W/4] mask logits of every query (last decoder layer);
            - ``pred_scores``: [N, Q] sounding-score logits of every query (last layer);
            - with the class head only, ``pred_logits``: [N, Q, K + 1] class logits of every
              query (K audio classes, then "no object"; last layer);
            - with the audio-tagging head only, ``audio_tag_logits``: [N, T] a logit per class of
              its table;
            - ``aux_outputs``: a list of L-1 dicts with ``pred_masks`` and ``pred_scores`` (and
              ``pred_logits``) of the same shapes for decoder layers 0 .. L-2.
        """
        if images.shape[0] != audio.shape[0]:
            raise ValueError(f"{images.shape[0]} frames but {audio.shape[0]} audio examples")
        stride4, *feats = self.backbone(images)  # [N, C_s, H/s, W/s], s = 4, 8, 16, 32
        audio_embedding = self.audio_encoder(audio)  # [N, A]
        maps, audio_tokens = self.fusion(feats, audio_embedding)  # [N, d, H_l, W_l], [N, 1, d]
        maps, memory, memory_pos = self.encoder(maps)
        hs = self.decoder(audio_tokens, memory, memory_pos)  # [L, N, Q, d]
        mask_features = self.pixel_decoder(maps, stride4, audio_tokens)  # [N, C, H/4, W/4]
        num_layers, n, q, d = hs.shape
        queries = hs.permute(1, 0, 2, 3).reshape(n, num_layers * q, d)  # [N, L·Q, d]
        masks = self.mask_head(queries, mask_features)  # [N, L·Q, H/4, W/4]
        masks = masks.view(n, num_layers, q, *masks.shape[-2:])  # [N, L, Q, H/4, W/4]
        scores = self.score_head(hs).squeeze(-1)  # [L, N, Q]
        layers = [{"pred_masks": masks[:, i], "pred_scores": scores[i]} for i in range(num_layers)]
        if self.class_head is not None:
            class_logits = self.class_head(hs)  # [L, N, Q, K+1]
            for i, layer in enumerate(layers):
                layer["pred_logits"] = class_logits[i]
        out = {**layers[-1], "aux_outputs": layers[:-1]}
        if self.tag_head is not None:
            out["audio_tag_logits"] = self.tag_head(audio_embedding)
        return out

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The parameters that get gradients (frozen backbone / audio encoder excluded)."""
        return [p for p in self.parameters() if p.requires_grad]

    @torch.no_grad()
    def count_parameters(self) -> dict[str, int]:
        """Parameter counts: total, trainable and per part."""
        counts = {name: sum(p.numel() for p in m.parameters()) for name, m in self.named_children()}
        counts["total"] = sum(p.numel() for p in self.parameters())
        counts["trainable"] = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return counts
