"""One live build per shard of an output folder: a lock per plan partition.

Partitions of one plan may share a folder (each builds every K-th shard); what must never happen
is two processes writing, or cleaning up the temporaries of, the same shard at once, or a build
of another plan starting beside a live one. So a build holds, for as long as it runs, an
exclusive ``flock`` on ``.avs-synth-build-{plan}-{i}of{K}.lock`` in the output folder, and claims
it under a short folder-wide lock (``.avs-synth-build.lock``) during which it also checks and
writes ``plan.json``. A claim is refused with a one-line :class:`BuildLockError` when a live
build (its lock file still locked) has another plan, or a partition that shares a shard with
this one (partition ``i`` of ``K`` and ``j`` of ``L`` share one iff ``i = j (mod gcd(K, L))``);
lock files of ended builds (unlocked) are removed. ``flock`` is kept by the kernel per open
file, so a killed build leaves no live claim; on NFS, Linux maps it onto POSIX locks.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from avs_synth.building.inputs import BuildInputError

FOLDER_LOCK = ".avs-synth-build.lock"
_CLAIM = re.compile(r"^\.avs-synth-build-([0-9a-f]{1,64})-(\d+)of(\d+)\.lock$")


class BuildLockError(BuildInputError):
    """A live build in the output folder holds another plan or an overlapping partition."""


@dataclass
class PartitionClaim:
    """A held claim on a plan partition of an output folder (see :func:`claim_partition`)."""

    path: Path
    handle: IO[str]

    def release(self) -> None:
        """Give the claim up and remove its lock file."""
        if self.handle.closed:
            return
        self.path.unlink(missing_ok=True)
        self.handle.close()  # closing releases the flock


@contextmanager
def folder_lock(out: Path) -> Iterator[None]:
    """Hold the output folder's short exclusive lock (waits for another build's claim)."""
    with open(out / FOLDER_LOCK, "a", encoding="utf-8") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _live_owner(path: Path) -> str | None:
    """Who holds the claim in ``path`` ("pid N on HOST"), or None when no live build does (the
    file is then removed)."""
    try:
        handle = open(path, encoding="utf-8")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return None
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                owner = json.loads(handle.read() or "{}")
                return f"pid {int(owner['pid'])} on {str(owner['host'])[:64]}"
            except (ValueError, KeyError, TypeError):
                return "another process"
        path.unlink(missing_ok=True)  # an ended build's claim
        return None


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Whether partition ``a = (i, K)`` and ``b = (j, L)`` share a shard position."""
    return a[0] % math.gcd(a[1], b[1]) == b[0] % math.gcd(a[1], b[1])


def claim_partition(
    out: Path, *, plan_hash: str, partition: int, num_partitions: int
) -> PartitionClaim:
    """Claim partition ``partition`` of ``num_partitions`` of plan ``plan_hash`` in ``out``;
    call under :func:`folder_lock`.

    Raises:
        BuildLockError: a live build writes another plan, or an overlapping partition of this
            plan, into ``out``.
    """
    mine = (partition, num_partitions)
    for path in sorted(out.glob(".avs-synth-build-*.lock")):
        found = _CLAIM.match(path.name)
        if found is None:
            continue
        owner = _live_owner(path)
        if owner is None:
            continue
        other_plan, other = found.group(1), (int(found.group(2)), int(found.group(3)))
        if not plan_hash.startswith(other_plan):
            raise BuildLockError(
                f"{out}: another build ({owner}, plan {other_plan}) is writing into this "
                "folder: use another --out, or wait for it to end"
            )
        if _overlap(mine, other):
            raise BuildLockError(
                f"{out}: partition {other[0]} of {other[1]} of this plan is being built by "
                f"{owner}, and it shares shards with partition {partition} of {num_partitions}: "
                "wait for it to end, or build another partition"
            )
    path = out / f".avs-synth-build-{plan_hash[:16]}-{partition}of{num_partitions}.lock"
    handle = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed by release()
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
        handle.flush()
    except BaseException:
        handle.close()
        raise
    return PartitionClaim(path=path, handle=handle)
