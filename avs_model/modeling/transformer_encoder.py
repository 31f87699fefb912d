"""The multi-modal transformer encoder over the tokens of all levels (Deformable DETR's encoder).

The fused audio-visual maps of every level are flattened into one token sequence per frame
(frames are folded into the batch), given a fixed 2D sine position encoding plus a learned level
embedding, and refined by layers of multi-scale deformable self-attention and an FFN (post-norm).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from avs_model.modeling.deformable_attention import MultiScaleDeformableAttention
from avs_model.modeling.position_encoding import PositionEmbeddingSine


class DeformableEncoderLayer(nn.Module):
    """Deformable self-attention + FFN, each with dropout, a residual and a LayerNorm."""

    def __init__(
        self,
        *,
        d_model: int = 256,
        dim_feedforward: int = 1024,
        dropout: float = 0.1,
        num_levels: int = 3,
        num_heads: int = 8,
        num_points: int = 4,
        kernel: str = "auto",
    ) -> None:
        """Args:
        d_model: token width.
        dim_feedforward: FFN hidden width.
        dropout: dropout after attention and in the FFN.
        num_levels: feature levels.
        num_heads: attention heads.
        num_points: sampling points per head and level.
        kernel: the deformable attention's sampling core (``auto``, ``triton``, ``pytorch``).
        """
        super().__init__()
        self.self_attn = MultiScaleDeformableAttention(
            d_model=d_model,
            num_levels=num_levels,
            num_heads=num_heads,
            num_points=num_points,
            kernel=kernel,
        )
        self.dropout1 = nn.Dropout(dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.activation = nn.ReLU(inplace=True)
        self.dropout2 = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.dropout3 = nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(d_model)

    def forward(
        self,
        src: Tensor,
        pos: Tensor,
        reference_points: Tensor,
        spatial_shapes: Sequence[tuple[int, int]],
    ) -> Tensor:
        attended = self.self_attn(src + pos, reference_points, src, spatial_shapes)
        src = self.norm1(src + self.dropout1(attended))
        ffn = self.linear2(self.dropout2(self.activation(self.linear1(src))))
        return self.norm2(src + self.dropout3(ffn))


def reference_points(
    spatial_shapes: Sequence[tuple[int, int]], *, device=None, dtype=torch.float32
) -> Tensor:
    """Normalised pixel centres of every token [1, S, L, 2] (the same for each of the L levels)."""
    points = []
    for h, w in spatial_shapes:
        ys, xs = torch.meshgrid(
            (torch.arange(h, device=device, dtype=dtype) + 0.5) / h,
            (torch.arange(w, device=device, dtype=dtype) + 0.5) / w,
            indexing="ij",
        )
        points.append(torch.stack((xs.reshape(-1), ys.reshape(-1)), -1))  # [H·W, 2]
    ref = torch.cat(points, 0)  # [S, 2]
    return ref[None, :, None, :].expand(1, -1, len(spatial_shapes), 2)  # [1, S, L, 2]


class TransformerEncoder(nn.Module):
    """Maps [N, d, H_l, W_l] per level → refined maps of the same shapes (+ flat tokens)."""

    def __init__(
        self, *, layer: DeformableEncoderLayer, num_layers: int, d_model: int, num_levels: int
    ) -> None:
        """Args:
        layer: one encoder layer; it is deep-copied ``num_layers`` times.
        num_layers: number of layers.
        d_model: token width.
        num_levels: feature levels (one learned level embedding each).
        """
        super().__init__()
        self.layers = nn.ModuleList(copy.deepcopy(layer) for _ in range(num_layers))
        self.position_encoding = PositionEmbeddingSine(d_model=d_model)
        self.level_embed = nn.Parameter(torch.empty(num_levels, d_model))
        nn.init.normal_(self.level_embed)
        self.num_levels = num_levels
        self._static: dict[tuple, tuple[Tensor, Tensor, Tensor]] = {}

    def static_inputs(
        self, shapes: Sequence[tuple[int, int]], device
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Sine encodings [1, S, d], level ids [S] and reference points [1, S, L, 2].

        They depend only on the level shapes, so they are cached per shapes and device (saving
        a few dozen small kernels per forward).
        """
        key = (tuple(shapes), str(device))
        if key not in self._static:
            if len(self._static) >= 64:  # many input sizes: start over
                self._static.clear()
            # normal tensors even when first built under inference_mode (an evaluation): they
            # are saved for backward in later training steps
            with torch.inference_mode(False):
                sine = [
                    self.position_encoding(h, w, device=device).flatten(2).transpose(1, 2)
                    for h, w in shapes
                ]  # [1, H·W, d] each
                levels = [torch.full((h * w,), i, device=device) for i, (h, w) in enumerate(shapes)]
                self._static[key] = (
                    torch.cat(sine, 1),
                    torch.cat(levels),
                    reference_points(shapes, device=device),
                )
        return self._static[key]

    def forward(self, maps: Sequence[Tensor]) -> tuple[list[Tensor], Tensor, Tensor]:
        """Args:
            maps: L maps [N, d, H_l, W_l], finest first.

        Returns:
            the refined maps [N, d, H_l, W_l], the memory tokens [N, S, d] and their position
            encodings [1, S, d].
        """
        if len(maps) != self.num_levels:
            raise ValueError(f"expected {self.num_levels} levels, got {len(maps)}")
        shapes = [tuple(x.shape[-2:]) for x in maps]
        src = torch.cat([x.flatten(2).transpose(1, 2) for x in maps], 1)  # [N, S, d]
        sine, levels, ref = self.static_inputs(shapes, src.device)
        pos = sine + self.level_embed[levels]  # [1, S, d]
        for layer in self.layers:
            src = layer(src, pos, ref, shapes)
        n, _, d = src.shape
        out = [
            tokens.transpose(1, 2).reshape(n, d, h, w)  # [N, d, H_l, W_l]
            for tokens, (h, w) in zip(src.split([h * w for h, w in shapes], 1), shapes, strict=True)
        ]
        return out, src, pos
