"""Loading downloaded pickles without running arbitrary code: AVSBench's ``audio_log_mel/*.pkl``
tensors, and plain containers (AVS-Synthetic's ``category_for_vggsound_audios.pkl``).

Those files are ``pickle.dump(tensor)`` output. A plain ``pickle.load`` of a downloaded file can
execute anything, so :func:`load_tensor_pickle` uses an unpickler whose ``find_class`` knows only
the handful of globals a pickled tensor refers to:

- ``torch._utils._rebuild_tensor_v2`` (and the older ``_rebuild_tensor``), wrapped so that only
  a storage, integer offsets / sizes / strides and a bool pass, and backward hooks are dropped;
- ``torch.storage._load_from_bytes``, *replaced* by a function that reads the embedded storage
  with ``torch.load(..., weights_only=True)`` (PyTorch's own restricted unpickler);
- ``collections.OrderedDict`` (the empty backward-hooks dict), ``torch.Size``, the torch dtypes,
  and ``_codecs.encode`` restricted to latin-1 (protocol-2 pickles encode bytes with it).

Anything else (``os.system``, ``builtins.eval``, an arbitrary class) is refused with
:class:`UnsafePickleError` before it is called.
"""

from __future__ import annotations

import codecs
import collections
import io
import pickle
import warnings
from collections.abc import Callable
from os import PathLike
from pathlib import Path
from typing import Any

import torch
import torch._utils

from avs_synth.errors import DataFormatError

__all__ = ["UnsafePickleError", "load_plain_pickle", "load_tensor_pickle", "loads_tensor_pickle"]


class UnsafePickleError(DataFormatError):
    """A pickle that refers to something a pickled tensor never needs (or is not a tensor)."""


def _load_storage_from_bytes(data: bytes) -> Any:
    """The safe stand-in for ``torch.storage._load_from_bytes``."""
    if not isinstance(data, bytes | bytearray):
        raise pickle.UnpicklingError("storage payload is not bytes")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # TypedStorage deprecation
        try:
            storage = torch.load(io.BytesIO(bytes(data)), weights_only=True, map_location="cpu")
        except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as error:
            raise pickle.UnpicklingError(
                f"embedded storage refused by torch.load(weights_only=True): {_gist(error)}"
            ) from None
    if not isinstance(storage, torch.TypedStorage | torch.UntypedStorage):
        raise pickle.UnpicklingError(
            f"embedded payload is a {type(storage).__name__}, not a tensor storage"
        )
    return storage


def _gist(error: BaseException) -> str:
    """The informative line of torch's long weights-only error (it advises weights_only=False,
    which must not be followed for downloaded files)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for line in lines:
        if "GLOBAL" in line or "Unsupported" in line or "unsupported" in line:
            return line
    return lines[0] if lines else type(error).__name__


def _check_int_tuple(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, tuple | list | torch.Size) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise pickle.UnpicklingError(f"tensor {what} must be a tuple of integers, got {value!r}")
    return tuple(value)


def _rebuild_tensor_v2(
    storage: Any,
    storage_offset: Any,
    size: Any,
    stride: Any,
    requires_grad: Any = False,
    backward_hooks: Any = None,
    metadata: Any = None,
) -> torch.Tensor:
    """``torch._utils._rebuild_tensor_v2`` with its arguments checked and hooks dropped."""
    if not isinstance(storage, torch.TypedStorage | torch.UntypedStorage):
        raise pickle.UnpicklingError(f"tensor storage is a {type(storage).__name__}")
    if not isinstance(storage_offset, int) or storage_offset < 0:
        raise pickle.UnpicklingError(f"invalid tensor storage offset {storage_offset!r}")
    size = _check_int_tuple(size, "size")
    stride = _check_int_tuple(stride, "stride")
    if not isinstance(requires_grad, bool):
        raise pickle.UnpicklingError("tensor requires_grad must be a bool")
    if metadata:
        raise pickle.UnpicklingError("tensor metadata (Python attributes) is not allowed")
    try:
        return torch._utils._rebuild_tensor_v2(
            storage, storage_offset, size, stride, requires_grad, collections.OrderedDict()
        )
    except RuntimeError as error:
        raise pickle.UnpicklingError(f"inconsistent tensor layout: {error}") from None


def _rebuild_tensor(storage: Any, storage_offset: Any, size: Any, stride: Any) -> torch.Tensor:
    """The pre-0.4 ``torch._utils._rebuild_tensor``, routed through the checked v2."""
    return _rebuild_tensor_v2(storage, storage_offset, size, stride)


def _ordered_dict(*args: Any) -> collections.OrderedDict:
    if args:
        raise pickle.UnpicklingError("only an empty OrderedDict (tensor hooks) is allowed")
    return collections.OrderedDict()


def _codecs_encode(obj: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    if encoding not in ("latin1", "latin-1") or not isinstance(obj, str):
        raise pickle.UnpicklingError(f"_codecs.encode with {encoding!r} is not allowed")
    return codecs.encode(obj, "latin1", errors)


_DTYPES = {name: value for name, value in vars(torch).items() if isinstance(value, torch.dtype)}

_ALLOWED: dict[tuple[str, str], Callable[..., Any] | Any] = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch.storage", "_load_from_bytes"): _load_storage_from_bytes,
    ("collections", "OrderedDict"): _ordered_dict,
    ("torch", "Size"): torch.Size,
    ("_codecs", "encode"): _codecs_encode,
    **{("torch", name): dtype for name, dtype in _DTYPES.items()},
}


class _TensorUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals in ``_ALLOWED``."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"global '{module}.{name}' is not allowed in a tensor pickle"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent ids are not allowed in a tensor pickle")


def loads_tensor_pickle(data: bytes, *, source: str | PathLike[str] = "<bytes>") -> torch.Tensor:
    """Unpickle ``data`` that must hold exactly one tensor (see :func:`load_tensor_pickle`)."""
    try:
        obj = _TensorUnpickler(io.BytesIO(data)).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, RuntimeError) as error:
        raise UnsafePickleError(source, f"refused or unreadable tensor pickle: {error}") from None
    except (AttributeError, IndexError, KeyError, MemoryError, OverflowError) as error:
        raise UnsafePickleError(source, f"malformed pickle: {error!r}") from None
    if not isinstance(obj, torch.Tensor):
        raise UnsafePickleError(source, f"the pickle holds a {type(obj).__name__}, not a tensor")
    return obj.detach()


def load_tensor_pickle(path: str | PathLike[str]) -> torch.Tensor:
    """Load a ``pickle.dump(tensor)`` file (AVSBench ``audio_log_mel/*.pkl``) safely.

    Only the globals a pickled CPU tensor refers to are resolved; the embedded storage bytes are
    read by ``torch.load(weights_only=True)``. Nothing else in the file is ever called.

    Raises:
        FileNotFoundError: no such file.
        UnsafePickleError: the file refers to anything else (e.g. ``os.system``), holds
            something other than one tensor, or is truncated / corrupt. Names the file.
    """
    path = Path(path)
    return loads_tensor_pickle(path.read_bytes(), source=path)


def _numpy_scalar(dtype: Any, data: Any = None) -> int | float:
    """``numpy.core.multiarray.scalar`` for integer and float dtypes only, as a Python number."""
    import numpy as np

    if not isinstance(dtype, np.dtype) or dtype.kind not in "iuf" or not isinstance(data, bytes):
        raise pickle.UnpicklingError("only integer and float numpy scalars are allowed")
    return np.frombuffer(data, dtype=dtype, count=1)[0].item()


def _numpy_dtype(name: Any, align: Any = False, copy: Any = False) -> Any:
    import numpy as np

    if not isinstance(name, str) or name.lstrip("<>=|") not in _NUMERIC_DTYPES:
        raise pickle.UnpicklingError(f"numpy dtype {name!r} is not allowed")
    return np.dtype(name)


_NUMERIC_DTYPES = {f"{k}{n}" for k in "iuf" for n in (1, 2, 4, 8)} - {"f1"}


class _PlainUnpickler(pickle.Unpickler):
    """Containers, strings and numbers only; numpy numeric scalars become Python numbers."""

    _ALLOWED = {
        ("numpy.core.multiarray", "scalar"): _numpy_scalar,
        ("numpy._core.multiarray", "scalar"): _numpy_scalar,
        ("numpy", "dtype"): _numpy_dtype,
        ("_codecs", "encode"): _codecs_encode,  # protocol 2 writes bytes through it
    }

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"global '{module}.{name}' is not allowed in a plain-data pickle"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent ids are not allowed in a plain-data pickle")


def load_plain_pickle(path: str | PathLike[str]) -> Any:
    """Load a pickle of plain data (dicts, lists, tuples, strings, numbers, None) safely.

    No global is resolved except numpy's numeric scalars and dtypes (read as Python numbers), so a
    file referring to anything else (``os.system``, a class) is refused before anything runs.

    Raises:
        FileNotFoundError: no such file.
        UnsafePickleError: anything but plain data, or a truncated / corrupt file (names it).
    """
    path = Path(path)
    try:
        return _PlainUnpickler(io.BytesIO(path.read_bytes())).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as error:
        raise UnsafePickleError(path, f"refused or unreadable pickle: {error}") from None
    except (AttributeError, IndexError, KeyError, MemoryError, OverflowError) as error:
        raise UnsafePickleError(path, f"malformed pickle: {error!r}") from None
