"""ViTDet's simple feature pyramid: the last map of a plain ViT → four maps of one width.

A plain ViT (DINOv2, SAM, EVA) gives one map at its patch stride p. Following ViTDet (Li et al.,
"Exploring Plain Vision Transformer Backbones for Object Detection", 2022, Fig. 2c), that map is
upsampled twice by 2x2 transposed convolutions (stride p/4), once (p/2), kept (p) and max-pooled
(2p); each result then goes through a 1x1 and a 3x3 convolution, each followed by a LayerNorm over
channels. For DINOv2's 14-pixel patches the strides are 3.5, 7, 14 and 28; for SAM's 16, the
usual 4, 8, 16 and 32.
"""

from __future__ import annotations

from timm.layers import LayerNorm2d
from torch import Tensor, nn

SCALES = (4.0, 2.0, 1.0, 0.5)  # output resolution relative to the ViT's patch grid


class SimpleFeaturePyramid(nn.Module):
    """One [N, C, h, w] map → [N, out, 4h, 4w], [N, out, 2h, 2w], [N, out, h, w],
    [N, out, ceil(h/2), ceil(w/2)]."""

    def __init__(self, *, in_channels: int, out_channels: int = 256) -> None:
        """Args:
        in_channels: channels C of the ViT map (its embedding width; divisible by 4).
        out_channels: channels of every output map.
        """
        super().__init__()
        if in_channels % 4:
            raise ValueError(f"in_channels must be divisible by 4, got {in_channels}")
        c = in_channels
        self.scale4 = nn.Sequential(
            nn.ConvTranspose2d(c, c // 2, 2, stride=2),
            LayerNorm2d(c // 2),
            nn.GELU(),
            nn.ConvTranspose2d(c // 2, c // 4, 2, stride=2),
        )
        self.scale2 = nn.ConvTranspose2d(c, c // 2, 2, stride=2)
        self.scale_half = nn.MaxPool2d(2, stride=2, ceil_mode=True)  # odd grids keep their edge
        self.outputs = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(channels, out_channels, 1, bias=False),
                LayerNorm2d(out_channels),
                nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
                LayerNorm2d(out_channels),
            )
            for channels in (c // 4, c // 2, c, c)
        )
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> list[Tensor]:
        """x [N, C, h, w] → four maps, finest first (scales 4, 2, 1, 1/2 of x's resolution)."""
        maps = (self.scale4(x), self.scale2(x), x, self.scale_half(x))
        return [out(m) for out, m in zip(self.outputs, maps, strict=True)]
