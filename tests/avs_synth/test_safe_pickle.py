from __future__ import annotations

import builtins
import collections
import io
import os
import pickle
from pathlib import Path

import pytest
import torch
import torch._utils
import torch.storage

from avs_synth.errors import DataFormatError
from avs_synth.safe_pickle import UnsafePickleError, load_tensor_pickle, loads_tensor_pickle


class _Payload:
    """Runs a shell command when unpickled by an unrestricted loader."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _dump(path: Path, obj: object, protocol: int = pickle.DEFAULT_PROTOCOL) -> Path:
    with path.open("wb") as handle:
        pickle.dump(obj, handle, protocol=protocol)
    return path


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_avsbench_log_mel_pickle_round_trips(tmp_path: Path, protocol: int) -> None:
    tensor = torch.randn(5, 1, 96, 64, generator=torch.Generator().manual_seed(0))
    loaded = load_tensor_pickle(_dump(tmp_path / "clip.pkl", tensor, protocol))
    assert loaded.dtype == torch.float32 and loaded.shape == (5, 1, 96, 64)
    assert torch.equal(loaded, tensor)


def test_views_dtypes_and_grad_flags(tmp_path: Path) -> None:
    view = torch.arange(12, dtype=torch.float64).reshape(3, 4)[1:, ::2]
    assert torch.equal(loads_tensor_pickle(pickle.dumps(view)), view)
    ints = torch.tensor([1, -2, 3], dtype=torch.int16)
    assert torch.equal(loads_tensor_pickle(pickle.dumps(ints)), ints)
    leaf = torch.ones(3, requires_grad=True)
    loaded = loads_tensor_pickle(pickle.dumps(leaf))
    assert torch.equal(loaded, torch.ones(3)) and not loaded.requires_grad


def test_code_next_to_a_tensor_is_refused_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = _dump(tmp_path / "evil.pkl", (torch.zeros(2), _Payload(marker)))
    with pytest.raises(UnsafePickleError, match=r"global '(posix|os)\.system' is not allowed"):
        load_tensor_pickle(path)
    assert not marker.exists()
    with pytest.raises(UnsafePickleError) as info:
        load_tensor_pickle(_dump(tmp_path / "alone.pkl", _Payload(marker)))
    assert str(info.value).startswith(f"{tmp_path / 'alone.pkl'}: ")
    assert isinstance(info.value, DataFormatError)
    assert not marker.exists()


def test_code_inside_the_embedded_storage_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    inner = io.BytesIO()
    torch.save(_Payload(marker), inner, _use_new_zipfile_serialization=False)

    class _Storage:
        def __reduce__(self):
            return (torch.storage._load_from_bytes, (inner.getvalue(),))

    class _Tensor:
        def __reduce__(self):
            hooks = collections.OrderedDict()
            return (torch._utils._rebuild_tensor_v2, (_Storage(), 0, (1,), (1,), False, hooks))

    path = _dump(tmp_path / "nested.pkl", _Tensor())
    with pytest.raises(UnsafePickleError, match="weights_only=True") as info:
        load_tensor_pickle(path)
    assert "system" in str(info.value)
    assert not marker.exists()


def test_hooks_and_builtins_are_refused(tmp_path: Path) -> None:
    class _Eval:
        def __reduce__(self):
            return (builtins.eval, ("1 + 1",))

    with pytest.raises(UnsafePickleError, match="builtins.eval"):
        loads_tensor_pickle(pickle.dumps(_Eval()))

    class _HookedTensor:
        def __reduce__(self):
            storage = torch.zeros(1).untyped_storage()
            hooks = collections.OrderedDict([(0, print)])
            return (torch._utils._rebuild_tensor_v2, (storage, 0, (1,), (1,), False, hooks))

    with pytest.raises(UnsafePickleError):
        loads_tensor_pickle(pickle.dumps(_HookedTensor()))


def test_non_tensor_and_truncated_files(tmp_path: Path) -> None:
    with pytest.raises(UnsafePickleError, match="holds a dict, not a tensor"):
        load_tensor_pickle(_dump(tmp_path / "dict.pkl", {"a": 1}))
    data = pickle.dumps(torch.randn(5, 1, 96, 64))
    truncated = tmp_path / "trunc.pkl"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(UnsafePickleError, match=f"^{truncated}: "):
        load_tensor_pickle(truncated)
    with pytest.raises(FileNotFoundError):
        load_tensor_pickle(tmp_path / "absent.pkl")
