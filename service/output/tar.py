"""An uncompressed POSIX tar (pax) of one folder, written here byte by byte so that its bytes depend on
this file alone (Python's ``tarfile`` changed its headers between 3.11 patch releases: device fields
of regular files went from ``"0000000\\0"`` to NULs), and equal to what ``tarfile`` 3.11.7 writes in
``PAX_FORMAT`` for the same members (tests/output/test_tar.py).

Byte layout, every header one 512-byte block::

    per member:  [pax header]   only when size >= 8 GiB (8^11, the ustar size field's limit):
                                a ustar header named "././@PaxHeader", type "x", mode 0, then the
                                record "<len> size=<size>\\n" padded with NULs to 512 bytes
                 ustar header   name (ASCII, at most 100 bytes), mode 0644 files / 0755 folder,
                                uid 0, gid 0, size (0 when the pax header carries it), mtime 0,
                                checksum, type "0" file / "5" folder, magic "ustar\\0" "00",
                                empty user, group, device and prefix fields
                 data           the file's bytes, padded with NULs to a multiple of 512
    end:         two NUL blocks, then NULs up to a multiple of 10240 bytes (a tar record, as tarfile
                 and GNU tar write it)

Numbers are octal ASCII, NUL-terminated, zero-padded; the checksum is the sum of the header's bytes
with its own field as 8 spaces, written as 6 octal digits, NUL, space.
"""

from __future__ import annotations

from dataclasses import dataclass

from .artifact import segment_size

BLOCK = 512
RECORD = 20 * BLOCK
#: The ustar size field (11 octal digits) holds sizes below 8 GiB; a larger member gets a pax size record.
USTAR_MAX_SIZE = 8 ** 11 - 1
NAME_MAX = 100
FILE_MODE, FOLDER_MODE = 0o644, 0o755


@dataclass(frozen=True)
class File:
    """One file of the folder: its name and its bytes as segments (``Artifact.segments``)."""

    name: str
    segments: tuple

    @property
    def size(self) -> int:
        return sum(segment_size(s) for s in self.segments)


def _octal(value: int, width: int) -> bytes:
    return b"%0*o\0" % (width - 1, value)


def _ustar(name: str, size: int, typeflag: bytes, mode: int) -> bytes:
    raw = name.encode("ascii")
    if len(raw) > NAME_MAX:
        raise ValueError(f"tar member name {name!r} is longer than {NAME_MAX} bytes")
    block = b"".join((raw.ljust(NAME_MAX, b"\0"), _octal(mode, 8), _octal(0, 8), _octal(0, 8), _octal(size, 12),
                      _octal(0, 12), b" " * 8, typeflag, b"\0" * 100, b"ustar\x0000", b"\0" * 32, b"\0" * 32,
                      b"\0" * 8, b"\0" * 8, b"\0" * 155)).ljust(BLOCK, b"\0")
    return block[:148] + b"%06o\0 " % sum(block) + block[156:]


def _pax_record(key: str, value: str) -> bytes:
    """``"<n> key=value\\n"`` where n is the record's own length, digits included."""
    body = f" {key}={value}\n".encode()
    n = len(body)
    while len(str(n)) + len(body) != n:
        n = len(str(n)) + len(body)
    return str(n).encode() + body


def member_header(name: str, size: int) -> bytes:
    """The header blocks of a regular file of ``size`` bytes (a pax size record when ustar cannot hold it)."""
    if size <= USTAR_MAX_SIZE:
        return _ustar(name, size, b"0", FILE_MODE)
    records = _pax_record("size", str(size))
    return (_ustar("././@PaxHeader", len(records), b"x", 0) + records.ljust(BLOCK, b"\0")
            + _ustar(name, 0, b"0", FILE_MODE))


def folder_header(name: str) -> bytes:
    return _ustar(name.rstrip("/") + "/", 0, b"5", FOLDER_MODE)


def padding(size: int) -> bytes:
    """The NULs after a member's ``size`` data bytes."""
    return b"\0" * (-size % BLOCK)


def end(offset: int) -> bytes:
    """The end of an archive whose members end at ``offset``: two NUL blocks, then up to a whole record."""
    return b"\0" * (2 * BLOCK + (-(offset + 2 * BLOCK) % RECORD))


def archive(root: str, files: list[File]) -> tuple:
    """The tar of ``files`` in folder ``root``, as segments: the ``bytes`` between two tensors joined."""
    out: list = []
    pending = [folder_header(root)]
    for f in files:
        pending.append(member_header(f"{root}/{f.name}", f.size))
        for seg in f.segments:
            if isinstance(seg, bytes):
                pending.append(seg)
            else:
                out.append(b"".join(pending))
                pending = []
                out.append(seg)
        pending.append(padding(f.size))
    offset = sum(segment_size(s) for s in out) + sum(map(len, pending))
    pending.append(end(offset))
    out.append(b"".join(pending))
    return tuple(s for s in out if not isinstance(s, bytes) or s)
