"""NumPy ``.npz``: a ZIP archive of .npy entries, written in one pass (streamable).

Entries, in order: ``manifest.npy`` (the report of ``service.core.report`` as JSON text in a
0-d unicode array: ``str(np.load(f)["manifest"])``, no pickle needed), then one
``<tensor name>.npy`` per selected tensor in architecture order (``np.load(f)[name]``).

ZIP layout (APPNOTE 6.3.x), every entry STORED (method 0, uncompressed, so sizes are known
before any value is drawn), general-purpose flag bit 3 (the CRC-32 follows the data in a
data descriptor, since it is only known once the data has streamed by)::

    per entry:  local file header   PK\\x03\\x04, version 20 (45 with zip64), flags 0x0008,
                                    method 0, DOS time 00:00 1980-01-01, crc 0, sizes,
                                    name, [zip64 extra 0x0001: sizes]
                data                the .npy bytes
                data descriptor     PK\\x07\\x08, crc32, sizes (8-byte sizes with zip64)
    central directory: one header per entry (PK\\x01\\x02, with crc, sizes, offset; zip64
                extra for any field >= 0xFFFFFFFF)
    [zip64 end of central directory record + locator, when any offset or size needs it]
    end of central directory record (PK\\x05\\x06)

Fixed timestamps make the archive a pure function of the request. Entries of 4 GiB or more
use zip64 (Python's zipfile and NumPy read it).
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from numpy.lib import format as npformat

from .artifact import Artifact, filename
from .npy import header_length, npy_header, tensor_chunks, tensor_header_length
from .report import Report

MEDIA_TYPE = "application/zip"
EXTENSION = ".npz"

_DOS_TIME, _DOS_DATE = 0, (0 << 9) | (1 << 5) | 1
_LIMIT = 0xFFFFFFFF
_FLAGS = 0x0008


def manifest_bytes(report: Report) -> bytes:
    """The manifest entry: a 0-d '<U' array holding the report's JSON text, as .npy bytes."""
    arr = np.array(report.text)
    buf = io.BytesIO()
    npformat.write_array(buf, arr, allow_pickle=False)
    return buf.getvalue()


def manifest_length(report: Report) -> int:
    """``len(manifest_bytes(report))`` without building the array: the .npy header of a 0-d
    '<U{n}' array, then its n characters in UTF-32 (the report is ASCII JSON: n = its length)."""
    n = len(report.text)
    return header_length(f"<U{n}", ()) + 4 * n


class Entry:
    """One ZIP entry's records (local header, data descriptor, central directory header): written
    by the encoder, and rebuilt by ``weightinit fetch`` to check a downloaded archive byte for byte."""

    def __init__(self, name: str, size: int, offset: int, force_zip64: bool):
        self.name = name.encode("ascii")
        self.size = size
        self.offset = offset
        self.zip64 = force_zip64 or size >= _LIMIT
        self.crc = 0

    def local_header(self) -> bytes:
        extra = struct.pack("<HHQQ", 1, 16, self.size, self.size) if self.zip64 else b""
        size32 = _LIMIT if self.zip64 else self.size
        return struct.pack("<IHHHHHIIIHH", 0x04034B50, 45 if self.zip64 else 20, _FLAGS, 0, _DOS_TIME, _DOS_DATE,
                           0, size32, size32, len(self.name), len(extra)) + self.name + extra

    def descriptor(self) -> bytes:
        if self.zip64:
            return struct.pack("<IIQQ", 0x08074B50, self.crc, self.size, self.size)
        return struct.pack("<IIII", 0x08074B50, self.crc, self.size, self.size)

    def _zip64_fields(self, force_zip64: bool) -> list[int]:
        """The central header's zip64 extra fields: the sizes when they need 64 bits, the offset when it does."""
        return [self.size, self.size] * self.zip64 + [self.offset] * (self.offset >= _LIMIT or force_zip64)

    def central(self, force_zip64: bool) -> bytes:
        fields = self._zip64_fields(force_zip64)
        size32 = _LIMIT if self.zip64 else self.size
        off32 = _LIMIT if self.offset >= _LIMIT or force_zip64 else self.offset
        extra = struct.pack(f"<HH{len(fields)}Q", 1, 8 * len(fields), *fields) if fields else b""
        version = 45 if fields else 20
        return struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, version, version, _FLAGS, 0, _DOS_TIME, _DOS_DATE,
                           self.crc, size32, size32, len(self.name), len(extra), 0, 0, 0, 0o100644 << 16,
                           off32) + self.name + extra

    def local_length(self) -> int:
        return 30 + len(self.name) + (20 if self.zip64 else 0) + self.size + (24 if self.zip64 else 16)

    def central_length(self, force_zip64: bool) -> int:
        """``len(self.central(force_zip64))``: 46 bytes, the name, and 4 + 8 per zip64 field."""
        fields = len(self._zip64_fields(force_zip64))
        return 46 + len(self.name) + (4 + 8 * fields if fields else 0)


def _layout(report: Report, force_zip64: bool, man_length: int):
    entries = []
    offset = 0
    items = [("manifest.npy", man_length, None)] + [
        (f"{t.name}.npy", tensor_header_length(t) + t.nbytes, t) for t in report.plan.selected]
    for name, size, t in items:
        e = Entry(name, size, offset, force_zip64)
        entries.append((e, t))
        offset += e.local_length()
    return entries, offset


def _need_zip64_end(n: int, cd_offset: int, cd_size: int, force_zip64: bool) -> bool:
    return force_zip64 or cd_offset >= _LIMIT or cd_size >= _LIMIT or n >= 0xFFFF


def end_records(entries, cd_offset: int, cd_size: int, force_zip64: bool) -> bytes:
    n = len(entries)
    need64 = _need_zip64_end(n, cd_offset, cd_size, force_zip64)
    out = b""
    if need64:
        z64_offset = cd_offset + cd_size
        out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, n, n, cd_size, cd_offset)
        out += struct.pack("<IIQI", 0x07064B50, 0, z64_offset, 1)
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, min(n, 0xFFFF), min(n, 0xFFFF),
                       min(cd_size, _LIMIT), min(cd_offset, _LIMIT), 0)
    return out


def size(report: Report, force_zip64: bool = False) -> int:
    """The archive's length, from the records' lengths (nothing packed): the entries, the central
    directory, the end records (22 bytes; 56 + 20 more with the zip64 ones)."""
    entries, cd_offset = _layout(report, force_zip64, manifest_length(report))
    cd_size = sum(e.central_length(force_zip64) for e, _ in entries)
    return cd_offset + cd_size + 22 + (76 if _need_zip64_end(len(entries), cd_offset, cd_size, force_zip64) else 0)


def encode(report: Report, *, parallel: bool = True, force_zip64: bool = False) -> Artifact:
    man = manifest_bytes(report)
    entries, cd_offset = _layout(report, force_zip64, len(man))
    total = size(report, force_zip64)

    def chunks():
        for e, t in entries:
            yield e.local_header()
            crc = 0
            parts = [man] if t is None else _tensor_parts(t, parallel)
            for part in parts:
                crc = zlib.crc32(part, crc)
                yield part
            e.crc = crc
            yield e.descriptor()
        central = b"".join(e.central(force_zip64) for e, _ in entries)
        yield central + end_records(entries, cd_offset, len(central), force_zip64)

    return Artifact("npz", MEDIA_TYPE, total, chunks, filename(report.plan, EXTENSION))


def _tensor_parts(t, parallel):
    yield npy_header(t)
    yield from tensor_chunks(t, parallel)
