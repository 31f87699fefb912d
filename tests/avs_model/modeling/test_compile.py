"""AuTR under ``torch.compile``: the whole forward, the Triton deformable attention included, is
one graph (no graph break), which is what compiling the train step and capturing it in CUDA graphs
(``compile_mode: reduce-overhead``) need.

The ``aot_eager`` backend traces forward and backward exactly as inductor does but generates no
code, so the test stays quick on the CPU; the gradients must equal the uncompiled model's.
"""

from __future__ import annotations

import importlib.util

import pytest
import torch

from avs_model.modeling.build import build_model
from avs_model.modeling.config import preset
from avs_model.runtime.train_config import TrainConfig


def inputs(n: int = 2):
    gen = torch.Generator().manual_seed(0)
    return torch.randn(n, 3, 64, 64, generator=gen), torch.randn(n, 1, 96, 64, generator=gen)


def loss_of(out) -> torch.Tensor:
    layers = [out, *out["aux_outputs"]]
    return sum(o["pred_masks"].sigmoid().mean() + o["pred_scores"].mean() for o in layers)


@pytest.mark.skipif(
    importlib.util.find_spec("triton") is None,
    reason="triton is not installed (it comes with the CUDA builds of torch)",
)
def test_triton_kernel_inside_the_compiled_model_trains_like_the_reference():
    """The Triton op (interpreted without a GPU) in a fullgraph-compiled AuTR (a graph break
    raises), forward and backward, against the eager PyTorch-kernel model."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    config = preset("autr_tiny")
    config.transformer.num_encoder_layers = 1
    config.decoder.num_layers = 1
    config.transformer.deformable_kernel = "pytorch"
    reference = build_model(config).double().to(device).train()
    config.transformer.deformable_kernel = "triton"
    fused = build_model(config).double().to(device).train()
    fused.load_state_dict(reference.state_dict())
    images, audio = (t.double().to(device) for t in inputs())
    loss_of(reference(images, audio)).backward()
    compiled = torch.compile(fused, backend="aot_eager", fullgraph=True)
    loss_of(compiled(images, audio)).backward()
    assert fused.encoder.layers[0].self_attn.uses_triton(images.device)
    for (name, p), q in zip(reference.named_parameters(), fused.parameters(), strict=True):
        if p.grad is not None:
            torch.testing.assert_close(q.grad, p.grad, atol=1e-9, rtol=1e-7, msg=name)
    offsets = fused.encoder.layers[0].self_attn.sampling_offsets.weight.grad
    assert offsets is not None and offsets.abs().max() > 0  # gradients reach the locations


def test_train_config_compile_settings():
    config = TrainConfig.from_dict(
        {"compile": True, "compile_mode": "reduce-overhead", "compile_dynamic": False}
    )
    assert (config.compile_mode, config.compile_dynamic) == ("reduce-overhead", False)
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert TrainConfig().compile_mode == "default" and TrainConfig().compile_dynamic is None
    with pytest.raises(ValueError, match="compile_mode must be one of"):
        TrainConfig.from_dict({"compile_mode": "turbo"})
