"""Reading a large zip's directory and single members fast (the Open Images mask zips).

An Open Images V7 train mask zip holds ~170,000 PNGs; ``zipfile.ZipFile`` builds a ``ZipInfo``
for each of them when it opens the archive (about a second and 60 MB per zip), and every process
that reads a mask pays that again. Here the central directory is scanned once, for the member
names and the offsets of their local headers, and a member is then read straight from its offset:
its local header is checked (signature, name), its bytes inflated and checked against the CRC.

Anything unusual (encryption, data descriptors, another compression method, a directory that
does not parse) makes these functions return None, and the caller falls back to ``zipfile``.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np

_EOCD = struct.Struct("<4sHHHHIIH")  # end of central directory record
_EOCD64_LOCATOR = struct.Struct("<4sIQI")
_EOCD64 = struct.Struct("<4sQHHIIQQQQ")
_CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")  # central directory file header (46 bytes)
_LOCAL = struct.Struct("<4sHHHHHIIIHH")  # local file header (30 bytes)
_UTF8_FLAG = 0x800


class ZipMemberError(OSError):
    """A member whose bytes do not match its header (a corrupt or changed archive)."""


def _zip64_offset(extra: bytes, usize: int, csize: int) -> int | None:
    """The local header offset from a zip64 extra field (None if absent)."""
    pos = 0
    while pos + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, pos)
        if tag == 1:
            values = extra[pos + 4 : pos + 4 + size]
            index = (usize == 0xFFFFFFFF) + (csize == 0xFFFFFFFF)
            if len(values) >= 8 * (index + 1):
                return struct.unpack_from("<Q", values, 8 * index)[0]
            return None
        pos += 4 + size
    return None


def member_offsets(archive: Path) -> dict[str, int] | None:
    """Every member name of ``archive`` → the offset of its local header, from one scan of the
    central directory; None when the directory is not one this scan reads."""
    try:
        with open(archive, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            tail_size = min(size, _EOCD.size + 0xFFFF)
            handle.seek(size - tail_size)
            tail = handle.read(tail_size)
            at = tail.rfind(b"PK\x05\x06")
            if at < 0 or len(tail) - at < _EOCD.size:
                return None
            _, _, _, _, entries, cd_size, cd_offset, _ = _EOCD.unpack_from(tail, at)
            cd_end = size - tail_size + at
            if 0xFFFF in (entries,) or 0xFFFFFFFF in (cd_size, cd_offset):
                handle.seek(cd_end - _EOCD64_LOCATOR.size)
                locator = _EOCD64_LOCATOR.unpack(handle.read(_EOCD64_LOCATOR.size))
                if locator[0] != b"PK\x06\x07":
                    return None
                record_at = cd_end - _EOCD64_LOCATOR.size - _EOCD64.size
                handle.seek(record_at)
                record = _EOCD64.unpack(handle.read(_EOCD64.size))
                if record[0] != b"PK\x06\x06":
                    return None
                entries, cd_size, cd_offset, cd_end = record[7], record[8], record[9], record_at
            cd_start = cd_end - cd_size
            shift = cd_start - cd_offset  # bytes prepended to the archive, if any
            if cd_start < 0:
                return None
            handle.seek(cd_start)
            directory = handle.read(cd_size)
    except (OSError, struct.error):
        return None
    found = _scan_whole(directory, shift)
    if found is None:
        found = _scan_record_by_record(directory, shift)
    if found is None:
        return None
    return found if len(found) == entries or entries == 0xFFFF else None


def _scan_whole(directory: bytes, shift: int) -> dict[str, int] | None:
    """The common case, scanned with array operations: every record's signature found at once,
    the records checked to chain from the first byte to the last (a signature inside a name or
    an extra field breaks the chain), plain ASCII names and no zip64 offset; None otherwise (the
    record-by-record scan then reads it)."""
    size = len(directory)
    if size < 46:
        return None
    data = np.frombuffer(directory, dtype=np.uint8)
    signature = int.from_bytes(b"PK\x01\x02", "little")
    at = np.sort(
        np.concatenate([  # the signature at each of the four byte alignments
            np.flatnonzero(
                np.frombuffer(directory, dtype="<u4", count=(size - shift_) // 4, offset=shift_)
                == signature
            ) * 4 + shift_
            for shift_ in range(4)
        ])
    )  # fmt: skip
    at = at[at <= size - 46]

    def field(offset: int, width: int) -> np.ndarray:
        value = np.zeros(len(at), dtype=np.int64)
        for byte in range(width):
            value |= data[at + offset + byte].astype(np.int64) << (8 * byte)
        return value

    name_length = field(28, 2)
    following = at + 46 + name_length + field(30, 2) + field(32, 2)
    if (
        not len(at)
        or at[0] != 0
        or following[-1] != size
        or not np.array_equal(following[:-1], at[1:])
    ):
        return None
    offsets = field(42, 4)
    if (offsets == 0xFFFFFFFF).any():
        return None  # zip64 offsets are in the extra fields
    text = directory.decode("latin-1")  # one character per byte: slices are byte slices
    starts = (at + 46).tolist()
    names = [text[s:e] for s, e in zip(starts, (at + 46 + name_length).tolist(), strict=True)]
    if not all(map(str.isascii, names)):
        return None  # ASCII reads the same in every encoding a zip name may have
    return dict(zip(names, (offsets + shift).tolist(), strict=True))


def _scan_record_by_record(directory: bytes, shift: int) -> dict[str, int] | None:
    """Every record of the central directory in turn (any name encoding, zip64 offsets)."""
    out: dict[str, int] = {}
    pos, end, unpack = 0, len(directory), _CENTRAL.unpack_from
    try:
        while pos < end:
            (sig, _, _, flags, _, _, _, _, csize, usize, n, m, k, _, _, _, offset) = unpack(
                directory, pos
            )
            if sig != b"PK\x01\x02":
                return None
            raw = directory[pos + 46 : pos + 46 + n]
            # ASCII (every Open Images name) reads the same in both encodings; cp437 is slow
            name = raw.decode(
                "ascii" if raw.isascii() else "utf-8" if flags & _UTF8_FLAG else "cp437"
            )
            if offset == 0xFFFFFFFF:
                found = _zip64_offset(directory[pos + 46 + n : pos + 46 + n + m], usize, csize)
                if found is None:
                    return None
                offset = found
            out[name] = offset + shift
            pos += 46 + n + m + k
    except (struct.error, UnicodeDecodeError):
        return None
    return out


def read_member(archive: Path, member: str, offset: int) -> bytes | None:
    """The bytes of ``member``, whose local header is at ``offset``; None for a member this
    reader does not handle (encrypted, with a data descriptor, zip64 sizes, neither stored nor
    deflated).

    Raises:
        FileNotFoundError: no such archive.
        ZipMemberError: no local header of that name there, or bytes failing their CRC.
    """
    fd = os.open(archive, os.O_RDONLY)
    try:
        header = os.pread(fd, _LOCAL.size, offset)
        if len(header) < _LOCAL.size:
            raise ZipMemberError(f"{archive}[{member}]: no local header at byte {offset}")
        sig, _, flags, method, _, _, crc, csize, usize, n, m = _LOCAL.unpack(header)
        name = os.pread(fd, n, offset + _LOCAL.size)
        expected = member.encode("utf-8" if flags & _UTF8_FLAG else "cp437", "replace")
        if sig != b"PK\x03\x04" or name != expected:
            raise ZipMemberError(f"{archive}[{member}]: no local header at byte {offset}")
        if flags & 0x9 or method not in (0, 8) or 0xFFFFFFFF in (csize, usize):
            return None
        data = os.pread(fd, csize, offset + _LOCAL.size + n + m)
    finally:
        os.close(fd)
    try:
        content = zlib.decompress(data, -15) if method == 8 else data
    except zlib.error as error:
        raise ZipMemberError(f"{archive}[{member}]: cannot inflate: {error}") from None
    if len(content) != usize or zlib.crc32(content) != crc:
        raise ZipMemberError(f"{archive}[{member}]: bytes do not match their CRC")
    return content
