"""Multi-scale deformable attention against an explicit per-point bilinear-sampling reference."""

from __future__ import annotations

import math

import pytest
import torch

from avs_model.modeling.deformable_attention import (
    MultiScaleDeformableAttention,
    multi_scale_deformable_attention,
)
from avs_model.modeling.transformer_encoder import reference_points

SHAPES = [(4, 5), (3, 2), (2, 2)]


def bilinear_reference(value_l, x, y):
    """Sample value_l [H, W, D] at normalised (x, y), align_corners=False, zeros outside."""
    h, w, d = value_l.shape
    px, py = x * w - 0.5, y * h - 0.5
    x0, y0 = math.floor(px), math.floor(py)
    out = torch.zeros(d, dtype=value_l.dtype)
    for yi, wy in ((y0, y0 + 1 - py), (y0 + 1, py - y0)):
        for xi, wx in ((x0, x0 + 1 - px), (x0 + 1, px - x0)):
            if 0 <= yi < h and 0 <= xi < w:
                out += wy * wx * value_l[yi, xi]
    return out


def deformable_reference(value, shapes, locations, weights):
    """value [N, S, M, D], locations [N, Lq, M, L, P, 2], weights [N, Lq, M, L, P].

    Returns [N, Lq, M·D], one explicit bilinear sample per point."""
    n, _, m, d = value.shape
    _, lq, _, num_levels, num_points, _ = locations.shape
    starts = [0]
    for h, w in shapes:
        starts.append(starts[-1] + h * w)
    out = torch.zeros(n, lq, m, d, dtype=value.dtype)
    for b in range(n):
        for q in range(lq):
            for head in range(m):
                for level, (h, w) in enumerate(shapes):
                    value_l = value[b, starts[level] : starts[level + 1], head].reshape(h, w, d)
                    for p in range(num_points):
                        x, y = locations[b, q, head, level, p].tolist()
                        sample = bilinear_reference(value_l, x, y)
                        out[b, q, head] += weights[b, q, head, level, p] * sample
    return out.reshape(n, lq, m * d)


def test_core_matches_per_point_bilinear_reference():
    torch.manual_seed(0)
    n, lq, m, d, p = 2, 6, 2, 3, 3
    s = sum(h * w for h, w in SHAPES)
    value = torch.randn(n, s, m, d, dtype=torch.float64)
    # locations reach outside [0, 1] so that zero padding is exercised
    locations = torch.rand(n, lq, m, len(SHAPES), p, 2, dtype=torch.float64) * 1.4 - 0.2
    weights = torch.randn(n, lq, m, len(SHAPES) * p, dtype=torch.float64).softmax(-1)
    weights = weights.view(n, lq, m, len(SHAPES), p)
    got = multi_scale_deformable_attention(value, SHAPES, locations, weights)
    expected = deformable_reference(value, SHAPES, locations, weights)
    assert got.shape == (n, lq, m * d)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    assert expected.abs().max() > 0.1  # a real comparison, not zeros against zeros


def test_pixel_centre_returns_that_pixel_and_outside_returns_zero():
    value = torch.arange(4 * 5, dtype=torch.float64).view(1, 20, 1, 1)
    shapes = [(4, 5)]
    i, j = 2, 3
    centre = torch.tensor([(j + 0.5) / 5, (i + 0.5) / 4], dtype=torch.float64)
    outside = torch.tensor([1.5, 0.5], dtype=torch.float64)
    locations = torch.stack([centre, outside]).view(1, 2, 1, 1, 1, 2)
    weights = torch.ones(1, 2, 1, 1, 1, dtype=torch.float64)
    out = multi_scale_deformable_attention(value, shapes, locations, weights)
    assert out[0, 0, 0].item() == pytest.approx(i * 5 + j)
    assert out[0, 1, 0].item() == 0.0


def test_module_matches_reference_with_its_own_projections():
    torch.manual_seed(1)
    attn = MultiScaleDeformableAttention(
        d_model=8, num_levels=3, num_heads=2, num_points=2
    ).double()
    with torch.no_grad():  # non-trivial offsets and weights (the init zeroes their weights)
        attn.sampling_offsets.weight.normal_(0, 0.5)
        attn.attention_weights.weight.normal_(0, 0.5)
    s = sum(h * w for h, w in SHAPES)
    query = torch.randn(2, 4, 8, dtype=torch.float64)
    tokens = torch.randn(2, s, 8, dtype=torch.float64)
    ref = torch.rand(2, 4, 3, 2, dtype=torch.float64)
    got = attn(query, ref, tokens, SHAPES)

    offsets = attn.sampling_offsets(query).view(2, 4, 2, 3, 2, 2)
    weights = attn.attention_weights(query).view(2, 4, 2, 6).softmax(-1).view(2, 4, 2, 3, 2)
    locations = torch.empty_like(offsets)
    for level, (h, w) in enumerate(SHAPES):
        locations[..., level, :, 0] = (
            ref[:, :, None, level, None, 0] + offsets[..., level, :, 0] / w
        )
        locations[..., level, :, 1] = (
            ref[:, :, None, level, None, 1] + offsets[..., level, :, 1] / h
        )
    value = attn.value_proj(tokens).view(2, s, 2, 4)
    expected = attn.output_proj(deformable_reference(value, SHAPES, locations, weights))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_module_rejects_inconsistent_shapes():
    attn = MultiScaleDeformableAttention(d_model=8, num_levels=3, num_heads=2, num_points=2)
    with pytest.raises(ValueError, match="do not add up"):
        attn(torch.randn(1, 2, 8), torch.rand(1, 2, 3, 2), torch.randn(1, 10, 8), SHAPES)
    with pytest.raises(ValueError, match="expected 3 levels"):
        attn(torch.randn(1, 2, 8), torch.rand(1, 2, 3, 2), torch.randn(1, 20, 8), SHAPES[:1])


def test_reference_points_are_normalised_pixel_centres():
    ref = reference_points([(2, 4), (1, 1)])
    assert ref.shape == (1, 9, 2, 2)
    torch.testing.assert_close(ref[0, 0, 0], torch.tensor([0.125, 0.25]))
    torch.testing.assert_close(ref[0, 7, 1], torch.tensor([0.875, 0.75]))
    torch.testing.assert_close(ref[0, 8, 0], torch.tensor([0.5, 0.5]))


def test_autocast_bf16_samples_in_float32():
    torch.manual_seed(2)
    attn = MultiScaleDeformableAttention(d_model=16, num_levels=3, num_heads=2, num_points=2)
    s = sum(h * w for h, w in SHAPES)
    query, tokens = torch.randn(2, 5, 16), torch.randn(2, s, 16)
    ref = torch.rand(1, 5, 3, 2)
    expected = attn(query, ref, tokens, SHAPES)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = attn(query, ref, tokens, SHAPES)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got.float(), expected, atol=0.1, rtol=0.05)
