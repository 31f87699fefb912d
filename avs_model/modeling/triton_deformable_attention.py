"""Multi-scale deformable attention fused into one Triton kernel, forward and backward.

The same computation as ``multi_scale_deformable_attention`` of
:mod:`avs_model.modeling.deformable_attention` (the plain-PyTorch reference, which stays the CPU
path): every query, head, level and point
samples the value map bilinearly at a normalised location (x, y) in [0, 1] -- pixel coordinates
(x·W − 0.5, y·H − 0.5), zeros outside the map, as ``grid_sample(align_corners=False)`` -- and the
samples are summed with the attention weights. The plain version materialises every sample
(``grid_sample`` per level, a stack, a multiply and a sum); here one program reads the four
corner vectors of each point and accumulates them in registers, and the backward kernel
recomputes the corners instead of saving them:

- ``grad_value``: scattered with atomic adds into a float32 (float64) buffer, so the summation
  order, and the last bits of the gradient, differ from run to run;
- ``grad_locations``: the derivative of the bilinear weights, times the attention weight, times
  W (for x) or H (for y);
- ``grad_weights``: the dot product of the output gradient with the sample.

Arithmetic is float64 when any input is float64, else float32; bf16 / fp16 inputs are read as they
are (no cast copy of ``value``) and the output has the dtype the reference gives
(``promote_types(value, locations)``). Locations may lie anywhere (outside [0, 1] they sample
zeros); non-finite locations are not supported.

The kernels are wrapped as the custom operators ``avs_model::ms_deform_attn`` and
``avs_model::ms_deform_attn_backward`` (with fake implementations), so ``torch.compile`` keeps
them as single opaque calls and CUDA graphs can capture them. They run on CUDA, and on the CPU
under Triton's interpreter (``TRITON_INTERPRET=1`` set before this module is imported), which is
how the tests check them against the reference without a GPU.

Importing this module needs the ``triton`` package (installed with CUDA builds of torch).
"""

import torch
import triton
import triton.language as tl
from torch import Tensor

_MAX_BLOCK_ELEMENTS = 2048  # queries x channels per program


@triton.jit
def _pixel_position(location_pointer, query_mask, size, COMPUTE: tl.constexpr):
    """A normalised coordinate → (its pixel's floor as int32, the fraction above it).

    Far-away points are clamped to two pixels outside the map, where every corner is still
    outside (so they sample zeros and get zero gradients, and the int32 cast cannot overflow).
    """
    coordinate = tl.load(location_pointer, mask=query_mask, other=0.0).to(COMPUTE)
    size_f = size.to(COMPUTE)
    pixel = coordinate * size_f - 0.5
    pixel = tl.minimum(tl.maximum(pixel, -2.0), size_f + 1.0)
    floor = tl.floor(pixel)
    return floor.to(tl.int32), pixel - floor


@triton.jit
def _corner(start, xi, yi, h, w, query_mask, channels, channel_mask, ROW_STRIDE: tl.constexpr):
    """Element offsets [BLOCK_Q, BLOCK_D] of the vectors at integer pixel (yi, xi) of a level,
    relative to the (n, head) base, and the mask of those inside the map."""
    inside = query_mask & (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
    token = (start + yi * w + xi).to(tl.int64)
    return token[:, None] * ROW_STRIDE + channels[None, :], inside[:, None] & channel_mask[None, :]


@triton.jit
def _kernel(
    value_ptr,
    shapes_ptr,
    starts_ptr,
    locations_ptr,
    weights_ptr,
    out_ptr,
    grad_value_ptr,
    grad_locations_ptr,
    grad_weights_ptr,
    num_queries,
    num_tokens,
    NUM_HEADS: tl.constexpr,
    HEAD_DIM: tl.constexpr,
    NUM_LEVELS: tl.constexpr,
    NUM_POINTS: tl.constexpr,
    BLOCK_Q: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BACKWARD: tl.constexpr,
):
    """Program (query block, n·M + m) handles BLOCK_Q queries of one frame n and head m.

    Forward (``BACKWARD`` False): writes ``out`` [N, Lq, M, Dh]. Backward: ``out_ptr`` is the
    output gradient; writes the gradients of the weights and locations and scatters that of
    ``value`` (atomic adds). Arithmetic in the dtype of ``grad_value`` (the forward pass passes
    ``out`` there).
    """
    COMPUTE: tl.constexpr = grad_value_ptr.dtype.element_ty
    ROW_STRIDE: tl.constexpr = NUM_HEADS * HEAD_DIM
    n = tl.program_id(1) // NUM_HEADS
    m = tl.program_id(1) % NUM_HEADS
    queries = tl.program_id(0) * BLOCK_Q + tl.arange(0, BLOCK_Q)
    channels = tl.arange(0, BLOCK_D)
    query_mask = queries < num_queries
    channel_mask = channels < HEAD_DIM
    head_offset = n.to(tl.int64) * num_tokens * ROW_STRIDE + m * HEAD_DIM
    value_base = value_ptr + head_offset
    rows = (n * num_queries + queries).to(tl.int64) * NUM_HEADS + m  # (n, q, m) flat
    out_offsets = rows[:, None] * HEAD_DIM + channels[None, :]
    out_mask = query_mask[:, None] & channel_mask[None, :]
    if BACKWARD:
        grad_out = tl.load(out_ptr + out_offsets, mask=out_mask, other=0.0).to(COMPUTE)
        grad_value_base = grad_value_ptr + head_offset
    acc = tl.zeros([BLOCK_Q, BLOCK_D], dtype=COMPUTE)
    for level in range(NUM_LEVELS):
        h = tl.load(shapes_ptr + 2 * level)
        w = tl.load(shapes_ptr + 2 * level + 1)
        start = tl.load(starts_ptr + level)
        for point in range(NUM_POINTS):
            index = rows * (NUM_LEVELS * NUM_POINTS) + level * NUM_POINTS + point
            attention = tl.load(weights_ptr + index, mask=query_mask, other=0.0).to(COMPUTE)
            x0, fx = _pixel_position(locations_ptr + 2 * index, query_mask, w, COMPUTE)
            y0, fy = _pixel_position(locations_ptr + 2 * index + 1, query_mask, h, COMPUTE)
            gx = 1.0 - fx
            gy = 1.0 - fy
            o00, m00 = _corner(start, x0, y0, h, w, query_mask, channels, channel_mask, ROW_STRIDE)
            o01, m01 = _corner(
                start, x0 + 1, y0, h, w, query_mask, channels, channel_mask, ROW_STRIDE
            )
            o10, m10 = _corner(
                start, x0, y0 + 1, h, w, query_mask, channels, channel_mask, ROW_STRIDE
            )
            o11, m11 = _corner(
                start, x0 + 1, y0 + 1, h, w, query_mask, channels, channel_mask, ROW_STRIDE
            )
            v00 = tl.load(value_base + o00, mask=m00, other=0.0).to(COMPUTE)
            v01 = tl.load(value_base + o01, mask=m01, other=0.0).to(COMPUTE)
            v10 = tl.load(value_base + o10, mask=m10, other=0.0).to(COMPUTE)
            v11 = tl.load(value_base + o11, mask=m11, other=0.0).to(COMPUTE)
            sample = (gy * gx)[:, None] * v00 + (gy * fx)[:, None] * v01
            sample += (fy * gx)[:, None] * v10 + (fy * fx)[:, None] * v11
            if BACKWARD:
                d_x = gy[:, None] * (v01 - v00) + fy[:, None] * (v11 - v10)  # d sample / d px
                d_y = gx[:, None] * (v10 - v00) + fx[:, None] * (v11 - v01)  # d sample / d py
                grad_x = attention * tl.sum(grad_out * d_x, axis=1) * w.to(COMPUTE)
                grad_y = attention * tl.sum(grad_out * d_y, axis=1) * h.to(COMPUTE)
                grad_attention = tl.sum(grad_out * sample, axis=1)
                tl.store(grad_weights_ptr + index, grad_attention, mask=query_mask)
                tl.store(grad_locations_ptr + 2 * index, grad_x, mask=query_mask)
                tl.store(grad_locations_ptr + 2 * index + 1, grad_y, mask=query_mask)
                weighted = attention[:, None] * grad_out
                tl.atomic_add(grad_value_base + o00, (gy * gx)[:, None] * weighted, mask=m00)
                tl.atomic_add(grad_value_base + o01, (gy * fx)[:, None] * weighted, mask=m01)
                tl.atomic_add(grad_value_base + o10, (fy * gx)[:, None] * weighted, mask=m10)
                tl.atomic_add(grad_value_base + o11, (fy * fx)[:, None] * weighted, mask=m11)
            else:
                acc += attention[:, None] * sample
    if not BACKWARD:
        tl.store(out_ptr + out_offsets, acc, mask=out_mask)


def interpreted() -> bool:
    """True when the kernels run in Triton's CPU interpreter (``TRITON_INTERPRET=1`` at import)."""
    return not isinstance(_kernel, triton.runtime.JITFunction)


def _compute_dtype(*tensors: Tensor) -> torch.dtype:
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


def _blocks(head_dim: int) -> tuple[int, int]:
    block_d = triton.next_power_of_2(head_dim)
    return max(1, min(64, _MAX_BLOCK_ELEMENTS // block_d)), block_d


def _launch(
    value: Tensor,
    shapes: Tensor,
    starts: Tensor,
    locations: Tensor,
    weights: Tensor,
    out_or_grad_out: Tensor,
    grad_value: Tensor,
    grad_locations: Tensor,
    grad_weights: Tensor,
) -> None:
    """Run ``_kernel``: the backward pass when ``grad_value`` is not ``out_or_grad_out``."""
    n, s, m, head_dim = value.shape
    lq, num_levels, num_points = locations.shape[1], locations.shape[3], locations.shape[4]
    block_q, block_d = _blocks(head_dim)
    _kernel[(triton.cdiv(lq, block_q), n * m)](
        value.contiguous(),
        shapes.contiguous(),
        starts.contiguous(),
        locations.contiguous(),
        weights.contiguous(),
        out_or_grad_out.contiguous(),
        grad_value,
        grad_locations,
        grad_weights,
        lq,
        s,
        NUM_HEADS=m,
        HEAD_DIM=head_dim,
        NUM_LEVELS=num_levels,
        NUM_POINTS=num_points,
        BLOCK_Q=block_q,
        BLOCK_D=block_d,
        BACKWARD=grad_value is not out_or_grad_out,
    )


def _check(
    value: Tensor, shapes: Tensor, starts: Tensor, locations: Tensor, weights: Tensor
) -> None:
    if value.device.type != "cuda" and not interpreted():
        raise RuntimeError(
            f"the Triton deformable attention runs on CUDA (or on the CPU under "
            f"TRITON_INTERPRET=1), not on {value.device}: use kernel='pytorch' there"
        )
    if value.ndim != 4:
        raise ValueError(f"value must be [N, S, M, Dh], got {tuple(value.shape)}")
    n, s, m, _ = value.shape
    if locations.ndim != 6 or locations.shape[-1] != 2:
        raise ValueError(f"locations must be [N, Lq, M, L, P, 2], got {tuple(locations.shape)}")
    nl, lq, ml, num_levels, num_points, _ = locations.shape
    if (nl, ml) != (n, m) or weights.shape != locations.shape[:-1]:
        raise ValueError(
            f"value {tuple(value.shape)}, locations {tuple(locations.shape)} and weights "
            f"{tuple(weights.shape)} do not agree on N, M, L, P"
        )
    if shapes.shape != (num_levels, 2) or starts.shape != (num_levels,):
        raise ValueError(
            f"spatial shapes {tuple(shapes.shape)} / level starts {tuple(starts.shape)} must be "
            f"[{num_levels}, 2] / [{num_levels}]"
        )


@torch.library.custom_op(
    "avs_model::ms_deform_attn",
    mutates_args=(),
    schema=(
        "(Tensor value, Tensor spatial_shapes, Tensor level_starts, Tensor locations, "
        "Tensor weights) -> Tensor"
    ),
)
def _ms_deform_attn(
    value: Tensor, spatial_shapes: Tensor, level_starts: Tensor, locations: Tensor, weights: Tensor
) -> Tensor:
    _check(value, spatial_shapes, level_starts, locations, weights)
    n, _, m, head_dim = value.shape
    lq = locations.shape[1]
    compute = _compute_dtype(value, locations, weights)
    out = torch.empty(n, lq, m, head_dim, dtype=compute, device=value.device)
    if out.numel():
        _launch(value, spatial_shapes, level_starts, locations, weights, out, out, out, out)
    dtype = torch.promote_types(value.dtype, locations.dtype)
    return out.view(n, lq, m * head_dim).to(dtype)


@_ms_deform_attn.register_fake
def _(value, spatial_shapes, level_starts, locations, weights):
    n, _, m, head_dim = value.shape
    dtype = torch.promote_types(value.dtype, locations.dtype)
    return value.new_empty(n, locations.shape[1], m * head_dim, dtype=dtype)


@torch.library.custom_op(
    "avs_model::ms_deform_attn_backward",
    mutates_args=(),
    schema=(
        "(Tensor grad_out, Tensor value, Tensor spatial_shapes, Tensor level_starts, "
        "Tensor locations, Tensor weights) -> (Tensor, Tensor, Tensor)"
    ),
)
def _ms_deform_attn_backward(
    grad_out: Tensor,
    value: Tensor,
    spatial_shapes: Tensor,
    level_starts: Tensor,
    locations: Tensor,
    weights: Tensor,
) -> tuple[Tensor, Tensor, Tensor]:
    _check(value, spatial_shapes, level_starts, locations, weights)
    compute = _compute_dtype(value, locations, weights)
    grad_value = torch.zeros(value.shape, dtype=compute, device=value.device)
    # every location / weight gradient is written by the kernel; the value one is scattered
    grad_locations = torch.empty(locations.shape, dtype=compute, device=value.device)
    grad_weights = torch.empty(weights.shape, dtype=compute, device=value.device)
    if grad_out.numel():
        _launch(
            value,
            spatial_shapes,
            level_starts,
            locations,
            weights,
            grad_out,
            grad_value,
            grad_locations,
            grad_weights,
        )
    return (
        grad_value.to(value.dtype),
        grad_locations.to(locations.dtype),
        grad_weights.to(weights.dtype),
    )


@_ms_deform_attn_backward.register_fake
def _(grad_out, value, spatial_shapes, level_starts, locations, weights):
    return torch.empty_like(value), torch.empty_like(locations), torch.empty_like(weights)


def _setup_context(ctx, inputs, output) -> None:
    value, spatial_shapes, level_starts, locations, weights = inputs
    ctx.save_for_backward(value, spatial_shapes, level_starts, locations, weights)


def _backward(ctx, grad_out: Tensor):
    value, spatial_shapes, level_starts, locations, weights = ctx.saved_tensors
    grad_value, grad_locations, grad_weights = _ms_deform_attn_backward(
        grad_out, value, spatial_shapes, level_starts, locations, weights
    )
    return grad_value, None, None, grad_locations, grad_weights


_ms_deform_attn.register_autograd(_backward, setup_context=_setup_context)


def triton_multi_scale_deformable_attention(
    value: Tensor,
    spatial_shapes: Tensor,
    level_starts: Tensor,
    sampling_locations: Tensor,
    attention_weights: Tensor,
) -> Tensor:
    """The fused sampling core; arguments as the reference's, with the levels as tensors.

    Args:
        value: [N, S, M, Dh], the tokens of all levels, M heads.
        spatial_shapes: int32 [L, 2], (H_l, W_l) per level, on ``value``'s device (from
            ``deformable_attention.level_tensors``); their H_l·W_l must add up to S, which is
            not checked here (it would cost a device-to-host copy; the module checks it).
        level_starts: int32 [L], index of each level's first token in S.
        sampling_locations: [N, Lq, M, L, P, 2], normalised (x, y).
        attention_weights: [N, Lq, M, L, P].

    Returns:
        [N, Lq, M·Dh] in ``promote_types(value.dtype, sampling_locations.dtype)``.
    """
    return _ms_deform_attn(
        value, spatial_shapes, level_starts, sampling_locations, attention_weights
    )
