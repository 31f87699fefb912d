"""A plain multi-layer perceptron (DETR's ``MLP``): Linear layers with ReLU between them."""

from __future__ import annotations

from torch import Tensor, nn


class MLP(nn.Module):
    """``num_layers`` Linear layers, ReLU after all but the last."""

    def __init__(self, *, in_dim: int, hidden_dim: int, out_dim: int, num_layers: int) -> None:
        """Args:
        in_dim: input features.
        hidden_dim: width of the hidden layers.
        out_dim: output features.
        num_layers: number of Linear layers (>= 1).
        """
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"an MLP needs at least one layer, got {num_layers}")
        dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        self.layers = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True)
        )
        self.activation = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = self.activation(x)
        return x
