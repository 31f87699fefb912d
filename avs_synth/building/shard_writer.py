"""Deterministic, atomic tar shards.

A shard is written to ``{name}.tmp-{pid}`` beside its final path and moved into place with
``os.replace`` only once complete, so no reader (and no resumed build) ever sees a partial tar
under a final name. Member headers carry fixed times, owners and modes, so the bytes depend only
on the members given, in the order given.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

MEMBER_MTIME = 0
MEMBER_MODE = 0o644


def temp_path(final: Path) -> Path:
    """Where this process writes ``final`` before it is complete."""
    return final.with_name(f"{final.name}.tmp-{os.getpid()}")


def remove_stale_temps(final: Path) -> int:
    """Delete leftover ``{final}.tmp-*`` files of interrupted runs; returns how many."""
    removed = 0
    for stale in final.parent.glob(f"{final.name}.tmp-*"):
        stale.unlink(missing_ok=True)
        removed += 1
    return removed


def write_atomic(final: Path, data: bytes) -> None:
    """Write ``data`` to ``final`` through a temporary file and ``os.replace``."""
    tmp = temp_path(final)
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class ShardWriter:
    """Writes one tar shard of WebDataset samples, atomically.

    Use as a context manager: on a clean exit the tar is closed, synced and renamed to its final
    name; on an exception (or KeyboardInterrupt) the temporary file is deleted.

    Args:
        path: the shard's final path.
        member_order: the member extensions every sample is written with, in this order.
    """

    def __init__(self, *, path: Path, member_order: Sequence[str]) -> None:
        self.path = Path(path)
        self.member_order = tuple(member_order)
        self.count = 0
        self.sha256: str | None = None
        self.size: int | None = None
        self._tmp = temp_path(self.path)
        self._handle: io.BufferedWriter | None = None
        self._tar: tarfile.TarFile | None = None
        self._keys: set[str] = set()

    def __enter__(self) -> ShardWriter:
        self._handle = open(self._tmp, "wb")  # noqa: SIM115 - closed in __exit__
        self._tar = tarfile.open(fileobj=self._handle, mode="w", format=tarfile.GNU_FORMAT)
        return self

    def write(self, key: str, members: Mapping[str, bytes]) -> None:
        """Add one sample: ``members`` maps each extension of ``member_order`` to its bytes."""
        assert self._tar is not None, "use ShardWriter as a context manager"
        if not key or "." in key or "/" in key:
            raise ValueError(f"invalid sample key {key!r} (empty, or holds '.' or '/')")
        if key in self._keys:
            raise ValueError(f"duplicate sample key {key!r} in {self.path.name}")
        if set(members) != set(self.member_order):
            raise ValueError(
                f"sample {key!r} has members {sorted(members)}, expected {list(self.member_order)}"
            )
        self._keys.add(key)
        for ext in self.member_order:
            data = members[ext]
            info = tarfile.TarInfo(name=f"{key}.{ext}")
            info.size = len(data)
            info.mtime = MEMBER_MTIME
            info.mode = MEMBER_MODE
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.type = tarfile.REGTYPE
            self._tar.addfile(info, io.BytesIO(data))
        self.count += 1

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._tar is not None and self._handle is not None
        try:
            if exc_type is None:
                self._tar.close()
                self._handle.flush()
                os.fsync(self._handle.fileno())
            self._handle.close()
            if exc_type is None:
                self.sha256, self.size = _sha256_and_size(self._tmp)
                os.replace(self._tmp, self.path)
        finally:
            if exc_type is not None or self._tmp.exists():
                self._handle.close()
                self._tmp.unlink(missing_ok=True)


def _sha256_and_size(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def file_sha256(path: Path) -> str:
    """The sha256 hex digest of a file."""
    return _sha256_and_size(Path(path))[0]
