"""The pixel decoder: a top-down FPN over the encoder maps and the stride-4 backbone map.

From the coarsest encoder map down to stride 8, each level adds the upsampled coarser result,
then a 3x3 conv + GroupNorm + ReLU; the stride-4 backbone map enters through a 1x1 lateral conv
the same way. At every level the visual tokens cross-attend to the audio (residual + LayerNorm).
A 1x1 conv gives the mask features [N, mask_dim, H/4, W/4].
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from avs_model.modeling.fusion import AudioCrossAttention, group_norm


def _conv_norm_relu(in_channels: int, out_channels: int, kernel_size: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
        group_norm(out_channels),
        nn.ReLU(inplace=True),
    )


class PixelDecoder(nn.Module):
    """Encoder maps (strides 8, 16, 32[, 64]) + backbone stride-4 map → mask features."""

    def __init__(
        self,
        *,
        d_model: int,
        num_levels: int,
        stride4_channels: int,
        mask_dim: int,
        num_heads: int,
        audio_attention: bool = True,
    ) -> None:
        """Args:
        d_model: channels of the encoder maps and of the FPN.
        num_levels: number of encoder maps.
        stride4_channels: channels of the backbone's stride-4 map.
        mask_dim: channels of the output mask features.
        num_heads: heads of the audio cross-attention.
        audio_attention: cross-attend to the audio at every FPN level.
        """
        super().__init__()
        self.output_convs = nn.ModuleList(
            _conv_norm_relu(d_model, d_model, 3) for _ in range(num_levels - 1)
        )  # one per merge, coarse to fine, for levels finer than the coarsest
        self.lateral4 = nn.Sequential(
            nn.Conv2d(stride4_channels, d_model, 1, bias=False), group_norm(d_model)
        )
        self.output4 = _conv_norm_relu(d_model, d_model, 3)
        self.audio_attn = (
            nn.ModuleList(
                AudioCrossAttention(d_model=d_model, num_heads=num_heads)
                for _ in range(num_levels + 1)
            )
            if audio_attention
            else None
        )
        self.mask_features = nn.Conv2d(d_model, mask_dim, 1)
        self.num_levels = num_levels

    def _attend(self, level: int, x: Tensor, audio: Tensor) -> Tensor:
        if self.audio_attn is None:
            return x
        return self.audio_attn[level].forward_map(x, audio)

    def forward(self, maps: Sequence[Tensor], stride4: Tensor, audio_tokens: Tensor) -> Tensor:
        """Args:
            maps: encoder maps [N, d, H_l, W_l], finest (stride 8) first.
            stride4: backbone map [N, C4, H/4, W/4].
            audio_tokens: [N, 1, d].

        Returns:
            mask features [N, mask_dim, H/4, W/4].
        """
        if len(maps) != self.num_levels:
            raise ValueError(f"expected {self.num_levels} encoder maps, got {len(maps)}")
        y = self._attend(0, maps[-1], audio_tokens)
        for i, x in enumerate(reversed(maps[:-1])):
            y = x + F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
            y = self._attend(i + 1, self.output_convs[i](y), audio_tokens)
        lateral = self.lateral4(stride4)
        y = lateral + F.interpolate(
            y, size=lateral.shape[-2:], mode="bilinear", align_corners=False
        )
        y = self._attend(self.num_levels, self.output4(y), audio_tokens)
        return self.mask_features(y)  # [N, mask_dim, H/4, W/4]
