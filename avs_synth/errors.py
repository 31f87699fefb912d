"""The error every reader raises for bad input: it always names the file (and line or member).

A user with a 20 GB download and one broken row must be told exactly where to look, so
:class:`DataFormatError` formats its message as ``path:line: message`` (or
``archive[member]: message`` for a file inside a zip).
"""

from __future__ import annotations

from os import PathLike


class DataFormatError(ValueError):
    """A dataset file that cannot be read as its format says.

    Args:
        path: the file at fault (None only where no file is involved, e.g. an in-memory polygon).
        message: what is wrong, in words.
        line: 1-based line (CSV / text) or row number where known.
        member: the member name when ``path`` is an archive (zip).

    ``str(error)`` is ``"path:line: message"``, ``"path[member]: message"`` or ``"path: message"``.
    """

    def __init__(
        self,
        path: str | PathLike[str] | None,
        message: str,
        *,
        line: int | None = None,
        member: str | None = None,
    ) -> None:
        self.path = None if path is None else str(path)
        self.message = message
        self.line = line
        self.member = member
        super().__init__(self._format())

    def _format(self) -> str:
        if self.path is None:
            return self.message
        where = self.path
        if self.member is not None:
            where += f"[{self.member}]"
        if self.line is not None:
            where += f":{self.line}"
        return f"{where}: {self.message}"

    def __reduce__(self):  # keep the keyword arguments through pickling (multiprocessing)
        return (_rebuild, (self.__class__, self.path, self.message, self.line, self.member))


def _rebuild(
    cls: type[DataFormatError],
    path: str | None,
    message: str,
    line: int | None,
    member: str | None,
) -> DataFormatError:
    return cls(path, message, line=line, member=member)
