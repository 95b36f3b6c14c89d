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

``__metadata__.weightinit`` is the report (``report.Report``) without values: seed, scheme, engine
and numpy versions, the normalized request and every tensor's theory; with ``metadata: minimal``
(``options``) the header has ``{"format": "pt"}`` alone. The ``hf`` format's shards are written here
too (``file_segments``), their tensors in name order as save_pretrained writes them.
"""

from __future__ import annotations

import json

from .artifact import Artifact, filename, segment_chunks, segment_size
from .options import DEFAULT, Options
from .report import Report

MEDIA_TYPE = "application/vnd.safetensors"
EXTENSION = ".safetensors"


def header(tensors: list, report_text: str | None) -> bytes:
    """The JSON header of a file holding ``tensors`` back to back, in that order, padded to a multiple
    of 8: ``__metadata__`` is ``{"format": "pt"}``, and the report when ``report_text`` is given."""
    meta = {"format": "pt"} if report_text is None else {"format": "pt", "weightinit": report_text}
    head: dict = {"__metadata__": meta}
    offset = 0
    for t in tensors:
        head[t.name] = {"dtype": t.dtype.safetensors, "shape": list(t.shape), "data_offsets": [offset, offset + t.nbytes]}
        offset += t.nbytes
    raw = json.dumps(head, separators=(",", ":"), ensure_ascii=True).encode()
    return raw + b" " * (-len(raw) % 8)


def file_segments(tensors: list, report_text: str | None) -> tuple:
    """The file as segments (``Artifact.segments``): its length prefix and header, then each tensor."""
    h = header(tensors, report_text)
    return (len(h).to_bytes(8, "little") + h, *tensors)


def _report_text(report: Report, options: Options) -> str | None:
    return report.text if options.metadata == "full" else None


def safetensors_header(report: Report, options: Options = DEFAULT) -> bytes:
    return header(report.plan.selected, _report_text(report, options))


def size(report: Report, options: Options = DEFAULT) -> int:
    return 8 + len(safetensors_header(report, options)) + sum(t.nbytes for t in report.plan.selected)


def encode(report: Report, *, parallel: bool = True, options: Options = DEFAULT) -> Artifact:
    segments = file_segments(report.plan.selected, _report_text(report, options))
    return Artifact("safetensors", MEDIA_TYPE, sum(segment_size(s) for s in segments),
                    lambda: segment_chunks(segments, parallel), filename(report.plan, EXTENSION), segments=segments)
