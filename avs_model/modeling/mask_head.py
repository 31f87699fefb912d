"""Mask heads: query embeddings [N, Q, d] + mask features [N, C, h, w] → mask logits [N, Q, h, w].

``DynamicConvMaskHead`` (AuTR, after CondInst/ReferFormer): a two-layer MLP turns each query into
the weights and biases of a small stack of 1x1 convs, applied to the mask features with two extra
channels of absolute normalised (x, y) coordinates (pixel centres in [-1, 1]).
``DotProductMaskHead`` (the letter's Table IV "w/o dynamic convolution"): a 3-layer MLP embeds
each query into the mask-feature space and the mask is the dot product with every pixel, as
Mask2Former's predictor does; the ablation recipe gives it Mask2Former's 256-d mask embedding and
features (``mask_head.mask_dim: 256``), not the 8 dimensions that suit the dynamic convolutions.
Both run all queries (and all decoder layers, folded into Q) in one batched einsum.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from avs_model.modeling.mlp import MLP


def coordinate_channels(height: int, width: int, *, device=None, dtype=torch.float32) -> Tensor:
    """Absolute normalised pixel-centre coordinates [2, H, W] in [-1, 1]: channel 0 x, 1 y."""
    ys = (torch.arange(height, device=device, dtype=dtype) + 0.5) / height * 2 - 1
    xs = (torch.arange(width, device=device, dtype=dtype) + 0.5) / width * 2 - 1
    return torch.stack(
        (xs[None, :].expand(height, width), ys[:, None].expand(height, width)), dim=0
    )  # [2, H, W]


class DynamicConvMaskHead(nn.Module):
    """Per-query dynamic 1x1 convs (in → hidden → ... → 1) over the mask features."""

    def __init__(
        self,
        *,
        d_model: int,
        mask_dim: int = 8,
        num_layers: int = 3,
        hidden_channels: int = 8,
        coord_channels: bool = True,
    ) -> None:
        """Args:
        d_model: width of the query embeddings.
        mask_dim: channels of the mask features.
        num_layers: dynamic 1x1 conv layers (ReLU between them; the last gives 1 channel).
        hidden_channels: channels of the hidden dynamic layers.
        coord_channels: append the (x, y) coordinate channels to the mask features.
        """
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"the dynamic mask head needs at least one layer, got {num_layers}")
        in_channels = mask_dim + (2 if coord_channels else 0)
        dims = [in_channels] + [hidden_channels] * (num_layers - 1) + [1]
        self.layer_shapes = list(zip(dims[1:], dims[:-1], strict=True))  # (out, in) per layer
        self.num_params = sum(o * i + o for o, i in self.layer_shapes)
        self.controller = MLP(
            in_dim=d_model, hidden_dim=d_model, out_dim=self.num_params, num_layers=2
        )
        self.coord_channels = coord_channels
        self.mask_dim = mask_dim

    def forward(self, queries: Tensor, mask_features: Tensor) -> Tensor:
        """queries [N, Q, d], mask_features [N, mask_dim, h, w] → mask logits [N, Q, h, w]."""
        n, q, _ = queries.shape
        _, c, h, w = mask_features.shape
        if c != self.mask_dim:
            raise ValueError(f"mask features have {c} channels, the head expects {self.mask_dim}")
        x = mask_features.flatten(2)  # [N, C, h·w]
        if self.coord_channels:
            coords = coordinate_channels(h, w, device=x.device, dtype=x.dtype).flatten(1)
            x = torch.cat((x, coords[None].expand(n, -1, -1)), dim=1)  # [N, C+2, h·w]
        params = self.controller(queries)  # [N, Q, num_params]
        offset = 0
        for i, (out_c, in_c) in enumerate(self.layer_shapes):
            weight = params[..., offset : offset + out_c * in_c].reshape(n, q, out_c, in_c)
            offset += out_c * in_c
            bias = params[..., offset : offset + out_c]  # [N, Q, out]
            offset += out_c
            if i == 0:
                x = torch.einsum("nqoi,nip->nqop", weight, x)  # [N, Q, out, h·w]
            else:
                x = torch.einsum("nqoi,nqip->nqop", weight, x)  # [N, Q, out, h·w]
            x = x + bias[..., None]
            if i < len(self.layer_shapes) - 1:
                x = torch.relu(x)
        return x.view(n, q, h, w)  # [N, Q, h, w]


class DotProductMaskHead(nn.Module):
    """Mask logits as the dot product of a query embedding with every mask-feature pixel."""

    def __init__(self, *, d_model: int, mask_dim: int = 8) -> None:
        """Args:
        d_model: width of the query embeddings.
        mask_dim: channels of the mask features.
        """
        super().__init__()
        self.mask_embed = MLP(in_dim=d_model, hidden_dim=d_model, out_dim=mask_dim, num_layers=3)
        self.mask_dim = mask_dim

    def forward(self, queries: Tensor, mask_features: Tensor) -> Tensor:
        """queries [N, Q, d], mask_features [N, mask_dim, h, w] → mask logits [N, Q, h, w]."""
        if mask_features.shape[1] != self.mask_dim:
            raise ValueError(
                f"mask features have {mask_features.shape[1]} channels, "
                f"the head expects {self.mask_dim}"
            )
        return torch.einsum("nqc,nchw->nqhw", self.mask_embed(queries), mask_features)
