"""Fixed 2D sine position encoding (DETR's ``PositionEmbeddingSine`` with ``normalize=True``).

No padding masks: every frame fills its whole map, so positions depend only on the map size.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class PositionEmbeddingSine(nn.Module):
    """[H, W] map size → position encoding [1, d_model, H, W] (broadcast over the batch)."""

    def __init__(self, *, d_model: int, temperature: float = 10000.0) -> None:
        """Args:
        d_model: channels of the encoding (half for y, half for x; must be even).
        temperature: the frequency base.
        """
        super().__init__()
        if d_model % 2:
            raise ValueError(f"d_model must be even for a 2D sine encoding, got {d_model}")
        self.num_pos_feats = d_model // 2
        self.temperature = temperature
        self.scale = 2 * math.pi

    def forward(self, height: int, width: int, *, device=None, dtype=torch.float32) -> Tensor:
        eps = 1e-6
        y = torch.arange(1, height + 1, device=device, dtype=torch.float32)
        x = torch.arange(1, width + 1, device=device, dtype=torch.float32)
        y = y / (height + eps) * self.scale  # [H]
        x = x / (width + eps) * self.scale  # [W]
        dim_t = torch.arange(self.num_pos_feats, device=device, dtype=torch.float32)
        dim_t = self.temperature ** (
            2 * torch.div(dim_t, 2, rounding_mode="floor") / self.num_pos_feats
        )
        pos_y = y[:, None] / dim_t  # [H, F]
        pos_x = x[:, None] / dim_t  # [W, F]
        pos_y = torch.stack((pos_y[:, 0::2].sin(), pos_y[:, 1::2].cos()), dim=2).flatten(1)
        pos_x = torch.stack((pos_x[:, 0::2].sin(), pos_x[:, 1::2].cos()), dim=2).flatten(1)
        pos = torch.cat(
            (
                pos_y[:, None, :].expand(height, width, -1),
                pos_x[None, :, :].expand(height, width, -1),
            ),
            dim=2,
        )  # [H, W, d]
        return pos.permute(2, 0, 1)[None].to(dtype)  # [1, d, H, W]
