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

from ..core.generate import stream
from .artifact import Artifact, filename
from .report import COMPACT_JSON, Report

MEDIA_TYPE = "application/vnd.safetensors"
EXTENSION = ".safetensors"


def _head(report: Report, text: str) -> dict:
    head: dict = {"__metadata__": {"format": "pt", "weightinit": text}}
    offset = 0
    for t in report.plan.selected:
        head[t.name] = {"dtype": t.dtype.safetensors, "shape": list(t.shape), "data_offsets": [offset, offset + t.nbytes]}
        offset += t.nbytes
    return head


def _json(head: dict) -> str:
    return COMPACT_JSON.encode(head)  # ensure_ascii, as json.dumps


def safetensors_header(report: Report) -> bytes:
    raw = _json(_head(report, report.text)).encode()
    return raw + b" " * (-len(raw) % 8)


def header_length(report: Report) -> int:
    """``len(safetensors_header(report))`` without escaping the report text into it once more.

    The report text is ``json.dumps`` output with ``ensure_ascii``: printable ASCII only (every
    other character is already an escape sequence), so as a JSON string it is itself plus its
    two quotes plus one backslash for each ``"`` and each ``\\`` in it. The header is measured
    with an empty text in its place (``""``), and that length added."""
    text = report.text
    head = _head(report, "")
    n = len(_json(head))
    if "weightinit" in head["__metadata__"]:  # (a tensor named __metadata__ would have replaced it)
        n += len(text) + text.count('"') + text.count("\\")
    return n + (-n % 8)


def size(report: Report) -> int:
    return 8 + header_length(report) + sum(t.nbytes for t in report.plan.selected)


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
