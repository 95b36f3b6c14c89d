"""safetensors, streamed (the format is simple enough to write directly, block by block;
the ``safetensors`` package, which needs every tensor in memory, is used by the tests to read it).

Byte layout::

    offset 0   uint64 little-endian N
    offset 8   N bytes of UTF-8 JSON, padded with spaces to a multiple of 8:
               {"__metadata__": {"format": "pt", "weightinit": "<report JSON>"},
                "<name>": {"dtype": "F32"|"F64"|"F16"|"BF16", "shape": [...],
                           "data_offsets": [begin, end]}, ...}
    offset 8+N the tensors' little-endian C-order bytes, in architecture order,
               back to back (offsets relative to this point, tiling it with no gaps)

``__metadata__.weightinit`` is the report of ``service.core.report`` without values: seed,
scheme, engine and numpy versions, the normalized request and every tensor's theory.
"""

from __future__ import annotations

import json

from ..core.generate import stream
from .artifact import Artifact, filename
from .report import Report

MEDIA_TYPE = "application/vnd.safetensors"
EXTENSION = ".safetensors"


def safetensors_header(report: Report) -> bytes:
    head: dict = {"__metadata__": {"format": "pt", "weightinit": report.text}}
    offset = 0
    for t in report.plan.selected:
        head[t.name] = {"dtype": t.dtype.safetensors, "shape": list(t.shape), "data_offsets": [offset, offset + t.nbytes]}
        offset += t.nbytes
    raw = json.dumps(head, separators=(",", ":"), ensure_ascii=True).encode()
    return raw + b" " * (-len(raw) % 8)


def size(report: Report) -> int:
    return 8 + len(safetensors_header(report)) + sum(t.nbytes for t in report.plan.selected)


def encode(report: Report, *, parallel: bool = True) -> Artifact:
    selected = report.plan.selected
    header = safetensors_header(report)
    head = len(header).to_bytes(8, "little") + header

    def chunks():
        yield head
        # one prefetch pipeline across tensors (core.generate.stream): no pause at tensor boundaries
        for _, block in stream(selected, parallel):
            yield memoryview(block).cast("B")

    return Artifact("safetensors", MEDIA_TYPE, len(head) + sum(t.nbytes for t in selected), chunks,
                    filename(report.plan, EXTENSION), segments=(head, *selected))
