"""NumPy ``.npy`` (format 1.0), streamed.

Byte layout (numpy.lib.format)::

    offset 0   b"\\x93NUMPY"              magic
    offset 6   b"\\x01\\x00"              format version 1.0
    offset 8   uint16 little-endian       HEADER_LEN
    offset 10  HEADER_LEN bytes of ASCII  "{'descr': '<f4', 'fortran_order': False, 'shape': (m, n), }"
                                          padded with spaces and a final "\\n" so that
                                          10 + HEADER_LEN is a multiple of 64
    then       prod(shape) * itemsize     raw little-endian data, C order

The header comes from ``numpy.lib.format`` itself (the same code ``write_array(...,
allow_pickle=False)`` runs), so the bytes equal ``numpy.save`` of the array; a test checks it.
bfloat16 has no NumPy dtype: it is stored as ``'<u2'``, the bfloat16 bit patterns (read them
as uint16 and shift left by 16 into float32).

A .npy holds one tensor: several selected tensors is an error pointing to npz/safetensors.
"""

from __future__ import annotations

import io

from numpy.lib import format as npformat

from ..core.errors import SpecError
from ..core.plan import TensorPlan
from .artifact import Artifact, filename
from .report import Report

MEDIA_TYPE = "application/x-npy"
EXTENSION = ".npy"


def npy_header(t: TensorPlan) -> bytes:
    buf = io.BytesIO()
    d = {"descr": npformat.dtype_to_descr(t.dtype.storage), "fortran_order": False, "shape": tuple(t.shape)}
    npformat.write_array_header_1_0(buf, d)
    return buf.getvalue()


#: numpy.lib.format's room for a longer first axis (GROWTH_AXIS_MAX_DIGITS) and its alignment (ARRAY_ALIGN).
_GROWTH_DIGITS, _ALIGN = 21, 64


def header_length(descr: str, shape: tuple) -> int:
    """The length of the format 1.0 header ``numpy.lib.format`` writes for a C-order array (what
    ``npy_header`` returns), without writing it: what the artifacts' sizes need, per tensor per
    request. Its text is ``{'descr': <descr!r>, 'fortran_order': False, 'shape': <shape!r>, }``,
    then one space per digit the first axis could still grow by (up to 21; none for a 0-d
    array), then spaces and a newline up to the next multiple of 64 bytes counting the 10-byte
    prefix (a full 64 when it is one already). tests/output/test_formats.py checks it against
    NumPy's header for every dtype and shapes of every rank and digit count."""
    text = len(f"{{'descr': {descr!r}, 'fortran_order': False, 'shape': {shape!r}, }}")
    if shape:
        text += _GROWTH_DIGITS - len(repr(shape[0]))
    return _ALIGN * ((10 + text + 1) // _ALIGN + 1)


def tensor_header_length(t: TensorPlan) -> int:
    """``len(npy_header(t))``, measured (``header_length``)."""
    return header_length(npformat.dtype_to_descr(t.dtype.storage), tuple(t.shape))


def tensor_chunks(t: TensorPlan, parallel: bool = True):
    """The raw bytes of one tensor, block by block (memoryviews of reused buffers)."""
    for block in t.blocks(parallel=parallel):
        yield memoryview(block).cast("B")


def _only_tensor(report: Report) -> TensorPlan:
    selected = report.plan.selected
    if len(selected) != 1:
        raise SpecError("format", f"npy holds exactly one tensor but {len(selected)} are selected; "
                                  "use npz or safetensors, or select one tensor with `tensors`")
    return selected[0]


def size(report: Report) -> int | None:
    """The artifact's length (None: not one tensor, so no npy)."""
    selected = report.plan.selected
    return tensor_header_length(selected[0]) + selected[0].nbytes if len(selected) == 1 else None


def encode(report: Report, *, parallel: bool = True) -> Artifact:
    t = _only_tensor(report)
    header = npy_header(t)

    def chunks():
        yield header
        yield from tensor_chunks(t, parallel)

    return Artifact("npy", MEDIA_TYPE, len(header) + t.nbytes, chunks, filename(report.plan, EXTENSION),
                    segments=(header, t))
