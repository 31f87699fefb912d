"""VGGish: layout, torchvggish flatten order, strict loading of the state dict; audio encoder."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from avs_model.modeling.audio_encoder import AudioEncoder, SmallAudioCNN
from avs_model.modeling.build import build_audio_encoder
from avs_model.modeling.config import AudioEncoderConfig
from avs_model.modeling.vggish import VGGish, load_vggish_weights
from avs_synth.audio.logmel import waveform_to_examples

# the names and shapes of vggish-10086976.pth
VGGISH_SHAPES = {
    "features.0.weight": (64, 1, 3, 3),
    "features.0.bias": (64,),
    "features.3.weight": (128, 64, 3, 3),
    "features.3.bias": (128,),
    "features.6.weight": (256, 128, 3, 3),
    "features.6.bias": (256,),
    "features.8.weight": (256, 256, 3, 3),
    "features.8.bias": (256,),
    "features.11.weight": (512, 256, 3, 3),
    "features.11.bias": (512,),
    "features.13.weight": (512, 512, 3, 3),
    "features.13.bias": (512,),
    "embeddings.0.weight": (4096, 12288),
    "embeddings.0.bias": (4096,),
    "embeddings.2.weight": (4096, 4096),
    "embeddings.2.bias": (4096,),
    "embeddings.4.weight": (128, 4096),
    "embeddings.4.bias": (128,),
}


def meta_vggish() -> VGGish:
    with torch.device("meta"):  # no 72 M-parameter random init
        return VGGish()


@pytest.fixture(scope="module")
def vggish_file(tmp_path_factory):
    """A file with the names and shapes of vggish-10086976.pth, small on disk: the two big FC
    weights repeat one random row (stride-0 views save one row), which keeps every output
    sensitive to the flatten order."""
    gen = torch.Generator().manual_seed(0)
    state = {}
    for key, shape in VGGISH_SHAPES.items():
        if key in ("embeddings.0.weight", "embeddings.2.weight"):
            state[key] = (torch.randn(1, shape[1], generator=gen) * 0.05).expand(shape)
        else:
            state[key] = torch.randn(shape, generator=gen) * 0.05
    path = tmp_path_factory.mktemp("vggish") / "vggish-10086976.pth"
    torch.save(state, path)
    return path, state


def functional_vggish(state, x):
    """VGGish written out with the file's tensors; NHWC flatten as torchvggish."""
    for i, conv in enumerate((0, 3, 6, 8, 11, 13)):
        x = F.relu(
            F.conv2d(x, state[f"features.{conv}.weight"], state[f"features.{conv}.bias"], padding=1)
        )
        if i in (0, 1, 3, 5):
            x = F.max_pool2d(x, 2)
    x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # [N, 6·4·512] in (H, W, C) order
    for fc in (0, 2, 4):
        x = F.relu(F.linear(x, state[f"embeddings.{fc}.weight"], state[f"embeddings.{fc}.bias"]))
    return x


def test_model_has_exactly_the_file_layout():
    shapes = {k: tuple(v.shape) for k, v in meta_vggish().state_dict().items()}
    assert shapes == VGGISH_SHAPES


def test_strict_load_and_forward_match_the_reference(vggish_file):
    path, state = vggish_file
    model = VGGish()  # on CPU: the file's values are copied into its parameters
    load_vggish_weights(model, path)
    for key, tensor in model.state_dict().items():
        assert torch.equal(tensor, state[key])
    x = torch.randn(2, 1, 96, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got = model(x)
        expected = functional_vggish(state, x)
        # the NCHW flatten order gives something else: the comparison can tell the two apart
        nchw = dict(state)
        w = state["embeddings.0.weight"]
        nchw["embeddings.0.weight"] = (
            w.reshape(4096, 6, 4, 512).permute(0, 3, 1, 2).reshape(4096, -1)
        )
        wrong = functional_vggish(nchw, x)
    assert got.shape == (2, 128)
    assert (got >= 0).all()  # ReLU after the last FC
    assert (got > 0).sum() > 10
    torch.testing.assert_close(got, expected, rtol=1e-3, atol=1e-4)
    assert (wrong - got).abs().max() > 0.1 * got.abs().max()


def test_wrong_key_fails_with_a_clear_error(vggish_file, tmp_path):
    _, state = vggish_file
    bad = dict(state)
    bad["features.1.weight"] = bad.pop("features.0.weight")
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match=r"bad\.pth.*missing keys \['features\.0\.weight'\]") as e:
        load_vggish_weights(meta_vggish(), tmp_path / "bad.pth")
    assert "unexpected keys ['features.1.weight']" in str(e.value)


def test_wrong_shape_fails_with_a_clear_error(vggish_file, tmp_path):
    _, state = vggish_file
    bad = dict(state)
    bad["embeddings.4.weight"] = torch.zeros(1).expand(256, 4096)
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match=r"embeddings\.4\.weight: file \(256, 4096\) vs model"):
        load_vggish_weights(meta_vggish(), tmp_path / "bad.pth")


def test_missing_or_unreadable_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        load_vggish_weights(meta_vggish(), tmp_path / "nowhere.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="junk.pth"):
        load_vggish_weights(meta_vggish(), tmp_path / "junk.pth")


def test_build_loads_weights_and_freezes(vggish_file):
    path, state = vggish_file
    encoder = build_audio_encoder(AudioEncoderConfig(kind="vggish", weights_path=str(path)))
    assert torch.equal(encoder.network.embeddings[4].bias, state["embeddings.4.bias"])
    assert not any(p.requires_grad for p in encoder.parameters())
    encoder.train()
    assert not encoder.network.training
    out = encoder(torch.randn(1, 1, 96, 64))
    assert out.shape == (1, 128) and not out.requires_grad


def test_waveform_input_uses_the_first_logmel_example():
    torch.manual_seed(0)
    encoder = AudioEncoder(
        network=SmallAudioCNN(channels=8, embed_dim=16), embed_dim=16, frozen=False
    )
    encoder.eval()
    waveform = torch.randn(3, 32_000) * 0.1
    examples = waveform_to_examples(waveform)[:, 0]  # [3, 1, 96, 64]
    torch.testing.assert_close(encoder.log_mel_examples(waveform), examples)
    torch.testing.assert_close(encoder(waveform), encoder(examples))
    assert encoder(waveform).shape == (3, 16)


def test_bad_audio_input_is_rejected():
    encoder = AudioEncoder(
        network=SmallAudioCNN(channels=8, embed_dim=16), embed_dim=16, frozen=False
    )
    with pytest.raises(ValueError, match="at least 15600 samples"):
        encoder(torch.randn(2, 8000))
    with pytest.raises(ValueError, match=r"got shape \(2, 96, 64\)"):
        encoder(torch.randn(2, 96, 64))


def test_unknown_audio_kind():
    with pytest.raises(ValueError, match="unknown audio encoder kind 'wav2vec'"):
        build_audio_encoder(AudioEncoderConfig(kind="wav2vec"))
