"""The fused Triton deformable attention against the plain-PyTorch reference.

Without a GPU the kernels run in Triton's interpreter (``TRITON_INTERPRET=1``, which
``tests/conftest.py`` sets before anything imports Triton), which executes the same kernel code on
the CPU; with a GPU they run compiled on it.
A separate test compiles the kernels for real GPU targets (sm_80, sm_90) without a GPU, which the
interpreter does not do. Sizes are tiny: the interpreter costs about a second per launch.

Tolerances: float64 1e-10; float32 1e-4 (different summation order); bf16 ``value`` with float32
locations and weights (what autocast gives) 1e-4 against the reference on the same bf16 values,
since the kernel reads bf16 and computes in float32; everything bf16 (output bf16) 2e-2 relative
to the output's scale, the rounding of one bf16 output (2^-8) with margin.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import subprocess
import sys

import pytest
import torch

from avs_model.modeling.deformable_attention import (
    MultiScaleDeformableAttention,
    level_tensors,
    multi_scale_deformable_attention,
)

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("triton") is None,
    reason="triton is not installed (it comes with the CUDA builds of torch)",
)
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


@pytest.fixture(scope="module")
def triton_attention():
    """The kernel module (interpreted when there is no GPU)."""
    module = importlib.import_module("avs_model.modeling.triton_deformable_attention")
    if DEVICE == "cpu" and not module.interpreted():
        pytest.fail("without a GPU the kernels need TRITON_INTERPRET=1 (see tests/conftest.py)")
    return module


def random_case(seed: int, dtype: torch.dtype, *, location_dtype: torch.dtype | None = None):
    """Random sizes, levels of random shapes (1x1 included), locations reaching outside [0, 1]."""
    gen = torch.Generator().manual_seed(seed)

    def pick(low: int, high: int) -> int:
        return int(torch.randint(low, high + 1, (1,), generator=gen))

    num_levels, num_points = pick(1, 4), pick(1, 4)
    shapes = [(pick(1, 6), pick(1, 6)) for _ in range(num_levels)]
    n, lq, m, dh = pick(1, 2), pick(1, 9), pick(1, 3), pick(1, 9)
    s = sum(h * w for h, w in shapes)
    value = torch.randn(n, s, m, dh, generator=gen, dtype=torch.float64)
    locations = torch.rand(n, lq, m, num_levels, num_points, 2, generator=gen, dtype=torch.float64)
    locations = locations * 1.6 - 0.3
    logits = torch.randn(n, lq, m, num_levels * num_points, generator=gen, dtype=torch.float64)
    weights = logits.softmax(-1).view(n, lq, m, num_levels, num_points)
    location_dtype = location_dtype or dtype
    return (
        shapes,
        value.to(DEVICE, dtype),
        locations.to(DEVICE, location_dtype),
        weights.to(DEVICE, location_dtype),
    )


def values_and_gradients(fn, value, locations, weights, grad_out=None):
    inputs = [t.detach().clone().requires_grad_() for t in (value, locations, weights)]
    out = fn(*inputs)
    if grad_out is None:
        grad_out = torch.randn(out.shape, generator=torch.Generator().manual_seed(99))
    grads = torch.autograd.grad(out, inputs, grad_out.to(out))
    return out, grads, grad_out


def run_triton(module, shapes, value, locations, weights, grad_out=None):
    levels = level_tensors(shapes, value.device)
    return values_and_gradients(
        lambda v, p, a: module.triton_multi_scale_deformable_attention(v, *levels, p, a),
        value,
        locations,
        weights,
        grad_out,
    )


def run_reference(shapes, value, locations, weights, grad_out):
    return values_and_gradients(
        lambda v, p, a: multi_scale_deformable_attention(v, shapes, p, a),
        value,
        locations,
        weights,
        grad_out,
    )


@pytest.mark.parametrize(
    "dtype,tolerance", [(torch.float64, 1e-10), (torch.float32, 1e-4)], ids=["fp64", "fp32"]
)
@pytest.mark.parametrize("seed", [0, 1, 3, 7])  # 1, 2, 3 and 4 levels
def test_triton_values_and_gradients_match_the_reference(triton_attention, seed, dtype, tolerance):
    shapes, value, locations, weights = random_case(seed, dtype)
    out, grads, grad_out = run_triton(triton_attention, shapes, value, locations, weights)
    expected, expected_grads, _ = run_reference(shapes, value, locations, weights, grad_out)
    assert out.dtype == dtype and out.shape == expected.shape
    torch.testing.assert_close(out, expected, atol=tolerance, rtol=tolerance)
    for name, got, want in zip(
        ("value", "locations", "weights"), grads, expected_grads, strict=True
    ):
        assert got.dtype == want.dtype, name
        torch.testing.assert_close(got, want, atol=tolerance, rtol=tolerance, msg=name)
    assert expected.abs().max() > 0.05 and expected_grads[1].abs().max() > 0.05  # not all zeros


def test_triton_several_query_blocks(triton_attention):
    """130 queries: three programs per head, the last one partly masked."""
    gen = torch.Generator().manual_seed(8)
    shapes = [(7, 9), (4, 5)]
    value = torch.randn(1, 83, 2, 4, generator=gen, dtype=torch.float64).to(DEVICE)
    locations = torch.rand(1, 130, 2, 2, 2, 2, generator=gen, dtype=torch.float64) * 1.2 - 0.1
    weights = torch.rand(1, 130, 2, 2, 2, generator=gen, dtype=torch.float64)
    locations, weights = locations.to(DEVICE), weights.to(DEVICE)
    out, grads, grad_out = run_triton(triton_attention, shapes, value, locations, weights)
    expected, expected_grads, _ = run_reference(shapes, value, locations, weights, grad_out)
    torch.testing.assert_close(out, expected, atol=1e-10, rtol=1e-10)
    for got, want in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-10)


def test_triton_bf16_value_with_float32_locations_as_under_autocast(triton_attention):
    shapes, value, locations, weights = random_case(5, torch.float32)
    value = value.bfloat16()
    out, grads, grad_out = run_triton(triton_attention, shapes, value, locations, weights)
    # the reference on the same bf16 numbers, in float64
    expected, expected_grads, _ = run_reference(
        shapes, value.double(), locations.double(), weights.double(), grad_out.double()
    )
    assert out.dtype == torch.float32 and grads[0].dtype == torch.bfloat16
    torch.testing.assert_close(out.double(), expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(grads[1].double(), expected_grads[1], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(grads[2].double(), expected_grads[2], atol=1e-4, rtol=1e-4)
    # the value gradient is rounded to bf16 once
    scale = expected_grads[0].abs().max()
    torch.testing.assert_close(grads[0].double(), expected_grads[0], atol=1e-2 * scale, rtol=0)


def test_triton_all_bf16_inputs(triton_attention):
    shapes, value, locations, weights = random_case(6, torch.bfloat16)
    out, grads, grad_out = run_triton(triton_attention, shapes, value, locations, weights)
    expected, expected_grads, _ = run_reference(
        shapes, value.double(), locations.double(), weights.double(), grad_out.double()
    )
    assert out.dtype == torch.bfloat16 and all(g.dtype == torch.bfloat16 for g in grads)
    for got, want in zip((out, *grads), (expected, *expected_grads), strict=True):
        scale = float(want.detach().abs().max())
        torch.testing.assert_close(got.double(), want, atol=2e-2 * scale, rtol=2e-2)


def test_triton_pixel_centres_far_points_and_zero_gradients_outside(triton_attention):
    # a 4 x 5 map whose pixel (i, j) holds i * 5 + j + 1
    value = torch.arange(1, 21, dtype=torch.float64, device=DEVICE).view(1, 20, 1, 1)
    centre = [(3 + 0.5) / 5, (2 + 0.5) / 4]  # pixel (2, 3)
    # the map's corner (0, 0) is a quarter of pixel (0, 0); the others are far outside
    points = [centre, [0.0, 0.0], [1.5, 0.5], [-1e9, 0.5], [0.5, 3e12]]
    locations = torch.tensor(points, dtype=torch.float64, device=DEVICE).view(1, 5, 1, 1, 1, 2)
    weights = torch.ones(1, 5, 1, 1, 1, dtype=torch.float64, device=DEVICE)
    out, grads, _ = run_triton(
        triton_attention, [(4, 5)], value, locations, weights, torch.ones(1, 5, 1)
    )
    assert out[0, :, 0].tolist() == [14.0, 0.25, 0.0, 0.0, 0.0]
    assert grads[2][0, :, 0, 0, 0].tolist() == [14.0, 0.25, 0.0, 0.0, 0.0]
    assert grads[1][0, 2:].abs().max() == 0  # no location gradient outside the map
    expected_value_grad = torch.zeros(20, dtype=torch.float64)
    expected_value_grad[2 * 5 + 3] = 1.0
    expected_value_grad[0] = 0.25
    assert grads[0].flatten().cpu().tolist() == expected_value_grad.tolist()


def test_triton_module_equals_the_pytorch_module(triton_attention):
    torch.manual_seed(3)
    shapes = [(4, 5), (3, 2), (2, 2)]
    pytorch = MultiScaleDeformableAttention(
        d_model=12, num_levels=3, num_heads=3, num_points=2, kernel="pytorch"
    ).double()
    with torch.no_grad():  # non-trivial offsets and weights (the init zeroes their weights)
        pytorch.sampling_offsets.weight.normal_(0, 0.5)
        pytorch.attention_weights.weight.normal_(0, 0.5)
    fused = MultiScaleDeformableAttention(
        d_model=12, num_levels=3, num_heads=3, num_points=2, kernel="triton"
    ).double()
    fused.load_state_dict(pytorch.state_dict())
    pytorch, fused = pytorch.to(DEVICE), fused.to(DEVICE)
    s = sum(h * w for h, w in shapes)
    query = torch.randn(2, 6, 12, dtype=torch.float64, device=DEVICE)
    tokens = torch.randn(2, s, 12, dtype=torch.float64, device=DEVICE)
    ref = torch.rand(2, 6, 3, 2, dtype=torch.float64, device=DEVICE)
    outputs = []
    for module in (pytorch, fused):
        out = module(query, ref, tokens, shapes)
        out.square().sum().backward()
        outputs.append(out)
    torch.testing.assert_close(outputs[1], outputs[0], atol=1e-10, rtol=1e-10)
    for (name, p), q in zip(pytorch.named_parameters(), fused.parameters(), strict=True):
        torch.testing.assert_close(q.grad, p.grad, atol=1e-9, rtol=1e-9, msg=name)
    assert fused.uses_triton(tokens.device) and not pytorch.uses_triton(tokens.device)


def test_triton_op_under_torch_compile(triton_attention):
    """The custom op's fake (shape) implementation and autograd formula work when compiled."""
    shapes, value, locations, weights = random_case(7, torch.float32)
    levels = level_tensors(shapes, value.device)

    def attend(v, p, a):
        return triton_attention.triton_multi_scale_deformable_attention(v, *levels, p, a) * 2

    compiled = torch.compile(attend, backend="aot_eager", fullgraph=True)
    out, grads, grad_out = values_and_gradients(compiled, value, locations, weights)
    expected, expected_grads, _ = values_and_gradients(attend, value, locations, weights, grad_out)
    torch.testing.assert_close(out, expected)
    for got, want in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want)


def test_triton_op_rejects_inconsistent_inputs(triton_attention):
    shapes, value, locations, weights = random_case(0, torch.float32)
    levels = level_tensors(shapes, value.device)
    with pytest.raises(ValueError, match="do not agree"):
        triton_attention.triton_multi_scale_deformable_attention(
            value, *levels, locations, weights[:, :, :, :, :0]
        )
    with pytest.raises(ValueError, match="value must be"):
        triton_attention.triton_multi_scale_deformable_attention(
            value[0], *levels, locations, weights
        )


_COMPILE_SCRIPT = """
import json, sys
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from avs_model.modeling import triton_deformable_attention as module

kernel = module._kernel
results = []
for arch, value_dtype, backward in json.loads(sys.argv[1]):
    compute = "fp64" if value_dtype == "fp64" else "fp32"
    signature = {name: "constexpr" for name in kernel.arg_names}
    signature.update(value_ptr="*" + value_dtype, shapes_ptr="*i32", starts_ptr="*i32",
                     num_queries="i32", num_tokens="i32")
    for name in ("locations_ptr", "weights_ptr", "out_ptr", "grad_value_ptr",
                 "grad_locations_ptr", "grad_weights_ptr"):
        signature[name] = "*" + compute
    constants = dict(NUM_HEADS=8, HEAD_DIM=32, NUM_LEVELS=3, NUM_POINTS=4, BLOCK_Q=64,
                     BLOCK_D=32, BACKWARD=backward)
    source = ASTSource(
        fn=kernel, signature=signature,
        constexprs={(kernel.arg_names.index(k),): v for k, v in constants.items()},
    )
    compiled = triton.compile(source, target=GPUTarget("cuda", arch, 32))
    results.append(len(compiled.asm["cubin"]))
print(json.dumps(results))
"""


@pytest.mark.timeout(900)  # ~100 s alone; several times that on a loaded 2-core machine
def test_triton_kernels_compile_for_gpu_targets():
    """Triton's real compiler (not the interpreter) turns both passes into sm_80 / sm_90 cubins,
    for bf16, float32 and float64 values; no GPU is needed to compile."""
    cases = [
        [90, "bf16", False],
        [90, "bf16", True],
        [80, "bf16", False],
        [80, "bf16", True],
        [90, "fp32", True],
        [90, "fp64", True],
    ]
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    result = subprocess.run(
        [sys.executable, "-c", _COMPILE_SCRIPT, json.dumps(cases)],
        capture_output=True,
        text=True,
        env=env,
        timeout=280,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    sizes = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(sizes) == len(cases) and all(size > 1000 for size in sizes)
