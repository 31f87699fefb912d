"""Joining file names read from annotations onto a root folder, refusing any that escape it.

Annotation files are data from the internet: a ``file_name`` of ``../../home/user/.ssh/id_rsa``
or ``/etc/passwd`` must never make a reader open (or a shard builder copy) a file outside the
dataset's folder.
"""

from __future__ import annotations

import os
import re
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


# Names made of these characters, no empty, "." or ".." part, are fine without further parsing.
_PART = r"(?!\.{1,2}(?:/|$))[A-Za-z0-9_.+-]+"
_PLAIN_NAME = re.compile(rf"(?!\.){_PART}(?:/{_PART})*")


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
        self._root_abs = os.path.abspath(root)
        self._resolved_root = os.path.realpath(self._root_abs)
        self._folders: dict[str, str] = {}

    def resolve(
        self,
        name: str,
        *,
        source: str | PathLike[str] | None = None,
        line: int | None = None,
        must_exist: bool = False,
    ) -> Path:
        """``root / name``, refused as :func:`resolve_under` refuses it (see :meth:`check`)."""
        return Path(self.check(name, source=source, line=line, must_exist=must_exist))

    def check(
        self,
        name: str,
        *,
        source: str | PathLike[str] | None = None,
        line: int | None = None,
        must_exist: bool = False,
    ) -> str:
        """``root / name`` as a string (no ``Path`` made), refused as :func:`resolve_under`
        refuses it.

        Args:
            name: the relative file name as written in the annotation.
            source: the annotation file the name came from (named in the error).
            line: its line or row, where known.
            must_exist: also check that a file is there (with the same ``lstat``).

        Raises:
            UnsafePathError: when the name escapes the root.
            FileNotFoundError: ``must_exist`` and no file is there.
        """
        if isinstance(name, str) and _PLAIN_NAME.fullmatch(name):
            relative = name  # the common case: no pathlib parsing needed
            problem = None
        else:
            problem = _lexical_problem(name)
            relative = str(PurePosixPath(name)) if problem is None else ""
        if problem is None:
            candidate = os.path.join(self._root_abs, relative)
            folder, base = os.path.split(candidate)
            real_folder = self._folders.get(folder)
            if real_folder is None:
                real_folder = self._folders[folder] = os.path.realpath(folder)
            resolved = os.path.join(real_folder, base)
            try:
                mode = os.lstat(candidate).st_mode
            except OSError:  # nothing there (or not reachable): the folder's real path decides
                mode = None
            if mode is not None and stat.S_ISLNK(mode):
                resolved = os.path.realpath(candidate)
                mode = os.stat(resolved).st_mode if os.path.exists(resolved) else None
            root = self._resolved_root
            if resolved == root or resolved.startswith(root.rstrip(os.sep) + os.sep):
                if must_exist and (mode is None or not stat.S_ISREG(mode)):
                    raise FileNotFoundError(f"{candidate}: file not found")
                return candidate
            problem = f"it resolves to {resolved}, outside the root (symlink escape)"
        where = source if source is not None else self.root
        raise UnsafePathError(
            where, f"refusing file name {name!r}: {problem} (root {self.root})", line=line
        )
