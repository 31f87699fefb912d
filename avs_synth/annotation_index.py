"""The annotation index: instance geometry written once while planning, read by whoever draws it.

A build plans over millions of instances but draws only the masks it writes. The readers stream an
annotation file and store the polygons / RLE of the instances a build may use in an index file, in
picture order; a plan then holds a :class:`~avs_synth.records.StoredSegmentation` (file, offset,
length) per instance, and the worker that draws the mask reads those bytes back.

Record format (little-endian), one per segmentation:

- ``P``, ``uint32`` part count, one ``uint32`` coordinate count per part, then every coordinate
  as ``float64``: polygons, stored exactly as the JSON parser gave them (float32 would move
  rasterised mask pixels);
- ``J``, then UTF-8 JSON ``{"size": [h, w], "counts": ...}``: an RLE, verbatim.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from avs_synth.errors import DataFormatError
from avs_synth.records import PolygonSegmentation, RLESegmentation, StoredSegmentation

_POLYGONS = b"P"
_RLE = b"J"
_FD_CACHE_SIZE = 16
_fds: OrderedDict[tuple[int, str], int] = OrderedDict()
_fd_lock = threading.Lock()


def encode_segmentation(segmentation: PolygonSegmentation | RLESegmentation) -> bytes:
    """One index record (see the module docstring)."""
    if isinstance(segmentation, PolygonSegmentation):
        parts = segmentation.polygons
        coords = np.array([v for part in parts for v in part], dtype="<f8")
        header = struct.pack(f"<I{len(parts)}I", len(parts), *(len(part) for part in parts))
        return _POLYGONS + header + coords.tobytes()
    if isinstance(segmentation, RLESegmentation):
        counts = segmentation.counts
        value = {
            "size": list(segmentation.size),
            "counts": counts if isinstance(counts, str) else list(counts),
        }
        return _RLE + json.dumps(value, separators=(",", ":")).encode("utf-8")
    raise TypeError(f"cannot index a {type(segmentation).__name__}")


def decode_segmentation(data: bytes) -> PolygonSegmentation | RLESegmentation:
    """The segmentation of one index record.

    Raises:
        ValueError: the bytes are not an index record.
    """
    kind, body = data[:1], memoryview(data)[1:]
    if kind == _POLYGONS:
        if len(body) < 4:
            raise ValueError("polygon record shorter than its header")
        (count,) = struct.unpack_from("<I", body)
        sizes = struct.unpack_from(f"<{count}I", body, 4)
        coords = np.frombuffer(body, dtype="<f8", offset=4 + 4 * count)
        if len(coords) != sum(sizes):
            raise ValueError(
                f"polygon record holds {len(coords)} coordinates, expected {sum(sizes)}"
            )
        values = coords.tolist()
        parts, start = [], 0
        for size in sizes:
            parts.append(tuple(values[start : start + size]))
            start += size
        return PolygonSegmentation(polygons=tuple(parts))
    if kind == _RLE:
        value = json.loads(bytes(body).decode("utf-8"))
        counts = value["counts"]
        return RLESegmentation(
            size=(value["size"][0], value["size"][1]),
            counts=counts if isinstance(counts, str) else tuple(counts),
        )
    raise ValueError(f"unknown record kind {bytes(kind)!r}")


class AnnotationIndexWriter:
    """Appends segmentations to an index file (created, truncated) and hands out references.

    Args:
        path: the index file.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path).absolute()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = self.path.open("wb")
        self._offset = 0
        self._digest = hashlib.blake2b(digest_size=16)

    def add(self, segmentation: PolygonSegmentation | RLESegmentation) -> StoredSegmentation:
        """Store one segmentation; returns the reference to put in the instance."""
        data = encode_segmentation(segmentation)
        self._handle.write(data)
        self._digest.update(data)
        ref = StoredSegmentation(path=self.path, offset=self._offset, length=len(data))
        self._offset += len(data)
        return ref

    @property
    def digest(self) -> str:
        """BLAKE2b of every byte written so far (the index's identity in a plan hash)."""
        return self._digest.hexdigest()

    def close(self) -> None:
        """Flush and close the file (references stay valid)."""
        if not self._handle.closed:
            self._handle.close()

    def __enter__(self) -> AnnotationIndexWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _fd(path: Path) -> int:
    """An open descriptor of ``path``, cached per process (never shared across a fork)."""
    key = (os.getpid(), os.fspath(path))
    with _fd_lock:
        fd = _fds.get(key)
        if fd is not None:
            _fds.move_to_end(key)
            return fd
        fd = os.open(path, os.O_RDONLY)
        _fds[key] = fd
        while len(_fds) > _FD_CACHE_SIZE:
            (pid, _), old = _fds.popitem(last=False)
            if pid == os.getpid():
                os.close(old)
        return fd


def read_segmentation(ref: StoredSegmentation) -> PolygonSegmentation | RLESegmentation:
    """The segmentation a reference points to.

    Raises:
        FileNotFoundError: the index file is gone.
        DataFormatError: the bytes there are not a record of that length (names the index).
    """
    data = os.pread(_fd(ref.path), ref.length, ref.offset)
    if len(data) != ref.length:
        raise DataFormatError(
            ref.path,
            f"index record at byte {ref.offset} is cut short ({len(data)} of {ref.length})",
        )
    try:
        return decode_segmentation(data)
    except (ValueError, KeyError, TypeError, IndexError, struct.error) as error:
        raise DataFormatError(ref.path, f"bad index record at byte {ref.offset}: {error}") from None
