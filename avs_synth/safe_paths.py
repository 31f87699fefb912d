"""Joining file names read from annotations onto a root folder, refusing any that escape it.

Annotation files are data from the internet: a ``file_name`` of ``../../home/user/.ssh/id_rsa``
or ``/etc/passwd`` must never make a reader open (or a shard builder copy) a file outside the
dataset's folder.
"""

from __future__ import annotations

import os
from os import PathLike
from pathlib import Path, PurePosixPath, PureWindowsPath

from avs_synth.errors import DataFormatError


class UnsafePathError(DataFormatError):
    """A file name from an annotation that would resolve outside its root folder."""


def resolve_under(
    root: str | PathLike[str],
    name: str,
    *,
    source: str | PathLike[str] | None = None,
    line: int | None = None,
) -> Path:
    """``root / name`` as an absolute path, refused when it leaves ``root``.

    Refused: empty names, NUL bytes, absolute paths (POSIX or Windows style, drive letters), any
    ``..`` component, and names whose fully resolved path (symlinks followed) is outside the
    resolved ``root``. ``/`` and ``\\`` both count as separators in the checks.

    Args:
        root: the dataset folder the name must stay under.
        name: the relative file name as written in the annotation.
        source: the annotation file the name came from (named in the error).
        line: its line or row, where known.

    Returns:
        ``root.absolute() / name`` (symlinks inside the root are kept, not resolved).

    Raises:
        UnsafePathError: when the name escapes the root.
    """
    where = source if source is not None else root

    def refuse(reason: str) -> UnsafePathError:
        return UnsafePathError(
            where, f"refusing file name {name!r}: {reason} (root {root})", line=line
        )

    if not isinstance(name, str) or not name:
        raise refuse("empty or not a string")
    if "\x00" in name:
        raise refuse("contains a NUL byte")
    posix, windows = PurePosixPath(name), PureWindowsPath(name)
    if posix.is_absolute() or windows.is_absolute() or windows.drive or windows.root:
        raise refuse("absolute paths are not allowed")
    if ".." in windows.parts or ".." in posix.parts:
        raise refuse("'..' components are not allowed")
    root_abs = Path(os.path.abspath(root))
    candidate = root_abs / posix
    resolved_root = Path(os.path.realpath(root_abs))
    resolved = Path(os.path.realpath(candidate))
    if resolved != resolved_root and resolved_root not in resolved.parents:
        raise refuse(f"it resolves to {resolved}, outside the root (symlink escape)")
    return candidate
