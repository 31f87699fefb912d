"""Joining file names read from annotations onto a root folder, refusing any that escape it.

Annotation files are data from the internet: a ``file_name`` of ``../../home/user/.ssh/id_rsa``
or ``/etc/passwd`` must never make a reader open (or a shard builder copy) a file outside the
dataset's folder.
"""

from __future__ import annotations

import os
import stat
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

    problem = _lexical_problem(name)
    if problem is not None:
        raise refuse(problem)
    root_abs = Path(os.path.abspath(root))
    candidate = root_abs / PurePosixPath(name)
    resolved_root = Path(os.path.realpath(root_abs))
    resolved = Path(os.path.realpath(candidate))
    if not _inside(resolved, resolved_root):
        raise refuse(f"it resolves to {resolved}, outside the root (symlink escape)")
    return candidate


def _lexical_problem(name: object) -> str | None:
    """Why a name is refused without looking at the disk (None: it is not)."""
    if not isinstance(name, str) or not name:
        return "empty or not a string"
    if "\x00" in name:
        return "contains a NUL byte"
    posix, windows = PurePosixPath(name), PureWindowsPath(name)
    if posix.is_absolute() or windows.is_absolute() or windows.drive or windows.root:
        return "absolute paths are not allowed"
    if ".." in windows.parts or ".." in posix.parts:
        return "'..' components are not allowed"
    return None


def _inside(resolved: Path, resolved_root: Path) -> bool:
    return resolved == resolved_root or resolved_root in resolved.parents


class SafeRoot:
    """:func:`resolve_under` for many names under one root, at the cost of one ``lstat`` a name.

    The same names are refused, for the same reasons: the lexical checks run on every name; the
    real path of each folder is resolved once and cached; a file's own real path is resolved only
    when it is a symbolic link (otherwise it is its folder's real path joined with its name).

    Args:
        root: the dataset folder the names must stay under.
    """

    def __init__(self, root: str | PathLike[str]) -> None:
        self.root = root
        self._root_abs = Path(os.path.abspath(root))
        self._resolved_root = Path(os.path.realpath(self._root_abs))
        self._folders: dict[Path, Path] = {}

    def resolve(
        self, name: str, *, source: str | PathLike[str] | None = None, line: int | None = None
    ) -> Path:
        """``root / name``, refused as :func:`resolve_under` refuses it.

        Raises:
            UnsafePathError: when the name escapes the root.
        """
        problem = _lexical_problem(name)
        if problem is None:
            candidate = self._root_abs / PurePosixPath(name)
            folder = candidate.parent
            real_folder = self._folders.get(folder)
            if real_folder is None:
                real_folder = self._folders[folder] = Path(os.path.realpath(folder))
            resolved = real_folder / candidate.name if candidate != self._root_abs else real_folder
            try:
                if stat.S_ISLNK(os.lstat(candidate).st_mode):
                    resolved = Path(os.path.realpath(candidate))
            except OSError:  # nothing there (or not reachable): the folder's real path decides
                pass
            if _inside(resolved, self._resolved_root):
                return candidate
            problem = f"it resolves to {resolved}, outside the root (symlink escape)"
        where = source if source is not None else self.root
        raise UnsafePathError(
            where, f"refusing file name {name!r}: {problem} (root {self.root})", line=line
        )
