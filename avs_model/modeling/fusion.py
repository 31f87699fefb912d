"""Audio-visual feature fusion, per scale, before the transformer encoder.

Each backbone map (strides 8, 16, 32, and optionally an extra stride-64 map) is projected to
``d_model`` by a 1x1 conv + GroupNorm; the audio embedding goes through a two-layer MLP to
``d_model``; then multi-head attention with the visual tokens as queries and the audio token(s)
as keys/values is added back to the visual tokens (residual + LayerNorm).

With one audio token per frame (the AuTR contract) the softmax over the keys is identically 1,
so the attention adds ``out_proj(v_proj(audio))`` to every visual token: ``AudioCrossAttention``
computes exactly that, without projecting the visual tokens (the query/key projections would
receive zero gradient anyway). With several audio tokens it runs the full attention.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from avs_model.modeling.mlp import MLP


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with 32 groups, or the largest power of two below that divides ``channels``."""
    groups = next(g for g in (32, 16, 8, 4, 2, 1) if channels % g == 0)
    return nn.GroupNorm(groups, channels)


class AudioCrossAttention(nn.Module):
    """Visual tokens (queries) attend to audio tokens (keys/values); residual + LayerNorm."""

    def __init__(self, *, d_model: int, num_heads: int, dropout: float = 0.0) -> None:
        """Args:
        d_model: token width of both modalities.
        num_heads: attention heads.
        dropout: dropout on the attention output.
        """
        super().__init__()
        self.attn = nn.MultiheadAttention(d_model, num_heads, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(d_model)
        self.d_model = d_model

    def forward(self, tokens: Tensor, audio: Tensor) -> Tensor:
        """tokens [N, L, d], audio [N, La, d] → [N, L, d]."""
        if audio.shape[1] == 1:
            # softmax over a single key is 1: every query receives out_proj(v_proj(audio))
            d = self.d_model
            value = F.linear(
                audio, self.attn.in_proj_weight[2 * d :], self.attn.in_proj_bias[2 * d :]
            )
            attended = self.attn.out_proj(value).expand_as(tokens)  # [N, L, d]
        else:
            attended = self.attn(tokens, audio, audio, need_weights=False)[0]  # [N, L, d]
        return self.norm(tokens + self.dropout(attended))

    def forward_map(self, x: Tensor, audio: Tensor) -> Tensor:
        """x [N, d, H, W], audio [N, La, d] → [N, d, H, W]."""
        n, d, h, w = x.shape
        tokens = self.forward(x.flatten(2).transpose(1, 2), audio)  # [N, H·W, d]
        return tokens.transpose(1, 2).reshape(n, d, h, w)


class AudioVisualFusion(nn.Module):
    """Backbone maps + audio embedding → fused maps [N, d, H_l, W_l] and audio tokens [N, 1, d]."""

    def __init__(
        self,
        *,
        visual_channels: Sequence[int],
        audio_dim: int,
        d_model: int,
        num_heads: int,
        enabled: bool = True,
        extra_level: bool = False,
        dropout: float = 0.0,
    ) -> None:
        """Args:
        visual_channels: channels of the backbone maps at strides 8, 16, 32.
        audio_dim: size of the audio embedding (128 for VGGish).
        d_model: the model width.
        num_heads: heads of the audio cross-attention.
        enabled: False turns the audio cross-attention off (Table IV ablation); the maps are
            then only projected.
        extra_level: add a stride-64 level (3x3 stride-2 conv on the stride-32 map).
        dropout: dropout on the attention output.
        """
        super().__init__()
        proj = [
            nn.Sequential(nn.Conv2d(c, d_model, 1), group_norm(d_model)) for c in visual_channels
        ]
        if extra_level:
            proj.append(
                nn.Sequential(
                    nn.Conv2d(visual_channels[-1], d_model, 3, stride=2, padding=1),
                    group_norm(d_model),
                )
            )
        self.input_proj = nn.ModuleList(proj)
        for layer in self.input_proj:
            nn.init.xavier_uniform_(layer[0].weight, gain=1)
            nn.init.constant_(layer[0].bias, 0)
        self.audio_mlp = MLP(in_dim=audio_dim, hidden_dim=d_model, out_dim=d_model, num_layers=2)
        self.enabled = enabled
        self.attn = (
            nn.ModuleList(
                AudioCrossAttention(d_model=d_model, num_heads=num_heads, dropout=dropout)
                for _ in self.input_proj
            )
            if enabled
            else None
        )
        self.extra_level = extra_level
        self.num_levels = len(self.input_proj)

    def forward(self, feats: Sequence[Tensor], audio: Tensor) -> tuple[list[Tensor], Tensor]:
        """Args:
            feats: backbone maps at strides 8, 16, 32: [N, C_l, H_l, W_l].
            audio: audio embeddings [N, A].

        Returns:
            the fused maps [N, d, H_l, W_l] (one more, at stride 64, with ``extra_level``) and
            the projected audio tokens [N, 1, d].
        """
        audio_tokens = self.audio_mlp(audio)[:, None]  # [N, 1, d]
        inputs = list(feats) + ([feats[-1]] if self.extra_level else [])
        maps = [proj(x) for proj, x in zip(self.input_proj, inputs, strict=True)]
        if self.attn is not None:
            maps = [
                attn.forward_map(x, audio_tokens) for attn, x in zip(self.attn, maps, strict=True)
            ]
        return maps, audio_tokens
