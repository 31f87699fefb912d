"""Multi-scale deformable attention (Deformable DETR): the module and its plain-PyTorch core.

The reference core, :func:`multi_scale_deformable_attention`, samples with ``F.grid_sample``
(bilinear, zero padding, ``align_corners=False``), so it runs on any device without a compiled
extension and equals Deformable DETR's CUDA kernel: a normalised location (x, y) in [0, 1] samples
pixel coordinates (x·W − 0.5, y·H − 0.5). It is the CPU path.

On CUDA the module runs the fused Triton kernel of
:mod:`avs_model.modeling.triton_deformable_attention` instead (``kernel="auto"``, the default),
which computes the same thing without materialising the samples; ``kernel="pytorch"`` /
``"triton"`` force one or the other.
"""

from __future__ import annotations

import importlib.util
import logging
import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

logger = logging.getLogger(__name__)

KERNELS = ("auto", "triton", "pytorch")


def multi_scale_deformable_attention(
    value: Tensor,
    spatial_shapes: Sequence[tuple[int, int]],
    sampling_locations: Tensor,
    attention_weights: Tensor,
) -> Tensor:
    """The sampling core of multi-scale deformable attention.

    Args:
        value: [N, S, M, Dh], the tokens of all levels (S = sum of H_l·W_l), M heads.
        spatial_shapes: (H_l, W_l) of every level, in the order of ``value``.
        sampling_locations: [N, Lq, M, L, P, 2], normalised (x, y) in [0, 1].
        attention_weights: [N, Lq, M, L, P], softmax-normalised over L·P.

    Returns:
        [N, Lq, M·Dh]. Computed in the wider of ``value``'s and ``sampling_locations``' dtypes
        (under autocast: float32 sampling, one cast of ``value``).
    """
    n, _, m, dh = value.shape
    _, lq, _, num_levels, num_points, _ = sampling_locations.shape
    dtype = torch.promote_types(value.dtype, sampling_locations.dtype)
    value = value.to(dtype)
    grids = (
        (2 * sampling_locations.to(dtype) - 1).transpose(1, 2).flatten(0, 1)
    )  # [N·M, Lq, L, P, 2]
    sizes = [h * w for h, w in spatial_shapes]
    sampled = []
    for level, value_l in enumerate(value.split(sizes, dim=1)):
        h, w = spatial_shapes[level]
        value_l = value_l.permute(0, 2, 3, 1).reshape(n * m, dh, h, w)  # [N·M, Dh, H_l, W_l]
        sampled.append(
            F.grid_sample(
                value_l,
                grids[:, :, level],  # [N·M, Lq, P, 2]
                mode="bilinear",
                padding_mode="zeros",
                align_corners=False,
            )  # [N·M, Dh, Lq, P]
        )
    weights = (
        attention_weights.to(dtype).transpose(1, 2).reshape(n * m, 1, lq, num_levels * num_points)
    )
    out = (torch.stack(sampled, dim=-2).flatten(-2) * weights).sum(-1)  # [N·M, Dh, Lq]
    return out.view(n, m * dh, lq).transpose(1, 2)  # [N, Lq, M·Dh]


_TRITON_USABLE: dict[torch.device, bool] = {}


def triton_usable(device: torch.device) -> bool:
    """True when the Triton kernel can run on ``device``: a CUDA device of compute capability
    7.0 or more, and the kernel module imports (else a warning, once, and False).

    Cached per device. Written so that ``torch.compile`` traces it without a graph break
    (``get_device_properties`` is constant-folded).
    """
    if device in _TRITON_USABLE:
        return _TRITON_USABLE[device]
    usable = (
        device.type == "cuda"
        and importlib.util.find_spec("triton") is not None
        and torch.cuda.get_device_properties(device).major >= 7
    )
    if usable:
        try:
            import avs_model.modeling.triton_deformable_attention  # noqa: F401
        except Exception as error:  # a Triton that does not match this torch, a missing compiler
            logger.warning("Triton deformable attention unavailable (%s): using PyTorch", error)
            usable = False
    _TRITON_USABLE[device] = usable
    return usable


def level_tensors(
    spatial_shapes: Sequence[tuple[int, int]], device: torch.device | str
) -> tuple[Tensor, Tensor]:
    """``(shapes int32 [L, 2] (H_l, W_l), level starts int32 [L])`` on ``device``: the levels as
    the Triton kernel takes them."""
    starts, total = [], 0
    for h, w in spatial_shapes:
        starts.append(total)
        total += h * w
    if total >= 2**31:
        raise ValueError(f"{total} tokens per frame do not fit the kernel's int32 indices")
    shapes = torch.tensor(list(spatial_shapes), dtype=torch.int32, device=device)
    return shapes, torch.tensor(starts, dtype=torch.int32, device=device)


class _Levels(NamedTuple):
    """Per-shapes constants on one device (see ``MultiScaleDeformableAttention._levels``)."""

    normaliser: Tensor  # float32 [L, 2], (W_l, H_l)
    shapes: Tensor  # int32 [L, 2], (H_l, W_l), for the Triton kernel
    starts: Tensor  # int32 [L], first token of each level, for the Triton kernel


class MultiScaleDeformableAttention(nn.Module):
    """Deformable DETR's ``MSDeformAttn``: every query attends to P points per head and level."""

    def __init__(
        self,
        *,
        d_model: int = 256,
        num_levels: int = 3,
        num_heads: int = 8,
        num_points: int = 4,
        kernel: str = "auto",
    ) -> None:
        """Args:
        d_model: token width (divisible by ``num_heads``).
        num_levels: feature levels L.
        num_heads: attention heads M.
        num_points: sampling points P per head and level.
        kernel: the sampling core: ``auto`` (Triton on CUDA when usable, else PyTorch),
            ``triton`` (always; on the CPU only under ``TRITON_INTERPRET=1``) or ``pytorch``.
        """
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model {d_model} is not divisible by num_heads {num_heads}")
        if kernel not in KERNELS:
            raise ValueError(f"unknown deformable attention kernel {kernel!r}; choose {KERNELS}")
        self.d_model = d_model
        self.num_levels = num_levels
        self.num_heads = num_heads
        self.num_points = num_points
        self.kernel = kernel
        self.sampling_offsets = nn.Linear(d_model, num_heads * num_levels * num_points * 2)
        self.attention_weights = nn.Linear(d_model, num_heads * num_levels * num_points)
        self.value_proj = nn.Linear(d_model, d_model)
        self.output_proj = nn.Linear(d_model, d_model)
        self._level_cache: dict[tuple, _Levels] = {}
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Deformable DETR's initialisation: offsets start on a ring of directions per head."""
        nn.init.constant_(self.sampling_offsets.weight, 0.0)
        thetas = torch.arange(self.num_heads, dtype=torch.float32) * (
            2.0 * math.pi / self.num_heads
        )
        grid = torch.stack([thetas.cos(), thetas.sin()], -1)  # [M, 2]
        grid = grid / grid.abs().max(-1, keepdim=True)[0]
        grid = grid.view(self.num_heads, 1, 1, 2).repeat(1, self.num_levels, self.num_points, 1)
        for i in range(self.num_points):
            grid[:, :, i, :] *= i + 1
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(grid.view(-1))
        nn.init.constant_(self.attention_weights.weight, 0.0)
        nn.init.constant_(self.attention_weights.bias, 0.0)
        nn.init.xavier_uniform_(self.value_proj.weight)
        nn.init.constant_(self.value_proj.bias, 0.0)
        nn.init.xavier_uniform_(self.output_proj.weight)
        nn.init.constant_(self.output_proj.bias, 0.0)

    def _levels(self, spatial_shapes: Sequence[tuple[int, int]], device) -> _Levels:
        """The normaliser (W_l, H_l) that turns pixel offsets into normalised ones, and the
        level tensors of the Triton kernel.

        Cached per shapes and device: building them from Python numbers is a host-to-device copy,
        which would stall the CUDA stream on every call.
        """
        key = (tuple(spatial_shapes), str(device))
        if key not in self._level_cache:
            if len(self._level_cache) >= 64:  # many input sizes: start over
                self._level_cache.clear()
            with torch.inference_mode(False):  # also saved for backward in later training
                normaliser = torch.tensor(
                    [[w, h] for h, w in spatial_shapes], dtype=torch.float32, device=device
                )
                self._level_cache[key] = _Levels(normaliser, *level_tensors(spatial_shapes, device))
        return self._level_cache[key]

    def uses_triton(self, device: torch.device) -> bool:
        """Whether the sampling core runs the Triton kernel for inputs on ``device``."""
        if self.kernel == "auto":
            return triton_usable(device)
        return self.kernel == "triton"

    def sampling(
        self, query: Tensor, reference_points: Tensor, spatial_shapes: Sequence[tuple[int, int]]
    ) -> tuple[Tensor, Tensor]:
        """Sampling locations [N, Lq, M, L, P, 2] and attention weights [N, Lq, M, L, P]."""
        n, lq, _ = query.shape
        m, num_levels, p = self.num_heads, self.num_levels, self.num_points
        offsets = self.sampling_offsets(query).view(n, lq, m, num_levels, p, 2)
        weights = self.attention_weights(query).view(n, lq, m, num_levels * p)
        weights = weights.softmax(-1).view(n, lq, m, num_levels, p)
        normaliser = self._levels(spatial_shapes, query.device).normaliser  # [L, 2]
        locations = (
            reference_points[:, :, None, :, None, :]
            + offsets / normaliser[None, None, None, :, None, :]
        )  # [N, Lq, M, L, P, 2]
        return locations, weights

    def forward(
        self,
        query: Tensor,
        reference_points: Tensor,
        value: Tensor,
        spatial_shapes: Sequence[tuple[int, int]],
    ) -> Tensor:
        """Args:
            query: [N, Lq, d] (content + position).
            reference_points: [N or 1, Lq, L, 2], normalised (x, y) per level.
            value: [N, S, d], the flattened tokens of all levels.
            spatial_shapes: (H_l, W_l) per level; sum of H_l·W_l must be S.

        Returns:
            [N, Lq, d].
        """
        n, s, _ = value.shape
        if len(spatial_shapes) != self.num_levels:
            raise ValueError(f"expected {self.num_levels} levels, got {len(spatial_shapes)}")
        if sum(h * w for h, w in spatial_shapes) != s:
            raise ValueError(f"spatial shapes {list(spatial_shapes)} do not add up to {s} tokens")
        value = self.value_proj(value).view(n, s, self.num_heads, self.d_model // self.num_heads)
        locations, weights = self.sampling(query, reference_points, spatial_shapes)
        if self.uses_triton(value.device):
            from avs_model.modeling.triton_deformable_attention import (
                triton_multi_scale_deformable_attention,
            )

            levels = self._levels(spatial_shapes, value.device)
            out = triton_multi_scale_deformable_attention(
                value, levels.shapes, levels.starts, locations, weights
            )
        else:
            out = multi_scale_deformable_attention(value, spatial_shapes, locations, weights)
        return self.output_proj(out)
