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

from ..core.plan import Plan, TensorPlan
from ..core.report import report_text
from . import MEDIA_TYPES, Artifact, filename


def safetensors_header(plan: Plan) -> bytes:
    head: dict = {"__metadata__": {"format": "pt", "weightinit": _metadata(plan)}}
    offset = 0
    for t in plan.selected:
        head[t.name] = {"dtype": t.dtype.safetensors, "shape": list(t.shape), "data_offsets": [offset, offset + t.nbytes]}
        offset += t.nbytes
    raw = json.dumps(head, separators=(",", ":"), ensure_ascii=True).encode()
    return raw + b" " * (-len(raw) % 8)


def _metadata(plan: Plan) -> str:
    return report_text(plan)


def encode_safetensors(plan: Plan, *, parallel: bool = True) -> Artifact:
    header = safetensors_header(plan)
    total = 8 + len(header) + sum(t.nbytes for t in plan.selected)

    head = len(header).to_bytes(8, "little") + header

    def chunks():
        yield head
        # one prefetch pipeline across tensors (TensorPlan.stream): no pause at tensor boundaries
        for _, block in TensorPlan.stream(plan.selected, parallel):
            yield memoryview(block).cast("B")

    return Artifact("safetensors", MEDIA_TYPES["safetensors"], total, chunks, filename(plan, "safetensors"),
                    segments=(head, *plan.selected))
