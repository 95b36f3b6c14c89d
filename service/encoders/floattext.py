"""float32 arrays as JSON text, byte for byte what ``orjson.dumps(a, option=OPT_SERIALIZE_NUMPY)``
prints, without holding the GIL.

orjson prints ~27 ns per float32 value and holds the GIL while it does: for a 1M-value tensor
that is most of a JSON response's time, on one core, and nothing else can run meanwhile.
``_f32text.c`` finds each value's shortest round-trip digits (Ryu's answer, with exact integer
arithmetic) and lays the text out as orjson does, in C through ctypes (so without the GIL), on
the engine's threads, one slice of rows each. Values outside the C code's exact range (below
1e-34 or from 1e9 up in magnitude: no initial weight is there) are asked of orjson one by one.
Without the compiled module (no C compiler at install) orjson prints everything: the same
bytes, slower.
"""

from __future__ import annotations

import ctypes
import importlib.util

import numpy as np
import orjson

from ..core import streams

_OPTS = orjson.OPT_SERIALIZE_NUMPY
#: Bytes per value at most: sign, 9 digits, point, exponent "e-45", comma.
_MAX_TEXT = 16
#: Below this many values one orjson call costs less than the hand-offs to threads.
MIN_VALUES = 1 << 16
_ORJSON = 3


def _load():
    try:
        spec = importlib.util.find_spec(__package__ + "._f32text")
        if spec is None or not spec.origin:
            return None
        lib = ctypes.CDLL(spec.origin)
    except (OSError, ImportError):
        return None
    p = ctypes.c_void_p
    lib.weightinit_f32_digits.restype = ctypes.c_int64
    lib.weightinit_f32_digits.argtypes = [p, ctypes.c_int64, p, p, p, p]
    lib.weightinit_f32_format.restype = ctypes.c_int64
    lib.weightinit_f32_format.argtypes = [p, ctypes.c_int64, p, ctypes.c_int, p, p, p, p, p]
    lib.weightinit_f32_json.restype = ctypes.c_int64
    lib.weightinit_f32_json.argtypes = [p, ctypes.c_int64, p, ctypes.c_int, p]
    return lib


_LIB = _load()
#: Who prints large float32 JSON values: "c" (the compiled printer) or "orjson".
BACKEND = "c" if _LIB is not None else "orjson"


def digits_of(text: str) -> tuple[int, int, int]:
    """orjson's text of one finite nonzero value -> (digits, number of digits, X), the value
    being d.ddd x 10^X."""
    t = text.lstrip("-")
    if "e" in t:
        mant, exp = t.split("e")
        x, digits = int(exp), mant.replace(".", "")
    else:
        whole, frac = t.split(".")
        if whole.strip("0"):
            x, digits = len(whole.lstrip("0")) - 1, whole.lstrip("0") + frac
        else:
            x, digits = -(len(frac) - len(frac.lstrip("0")) + 1), frac.lstrip("0")
    digits = digits.rstrip("0") or "0"
    return int(digits), len(digits), x


def text(values: np.ndarray) -> memoryview:
    """The text of a C-contiguous float32 array (ndim >= 1, no zero dimension), in one call."""
    n = values.size
    shape = np.array(values.shape, np.int64)
    lists = int(np.prod(values.shape[:-1], dtype=np.int64)) if values.ndim > 1 else 1
    out = np.empty(n * _MAX_TEXT + 2 * lists * values.ndim + 16, np.uint8)
    length = _LIB.weightinit_f32_json(values.ctypes.data, n, shape.ctypes.data, values.ndim, out.ctypes.data)
    if length >= 0:  # one pass: no value needed orjson
        return memoryview(out)[:length]
    digits, ndig = np.empty(n, np.uint32), np.empty(n, np.uint8)
    exp10, kind = np.empty(n, np.int16), np.empty(n, np.uint8)
    ptr = values.ctypes.data
    if _LIB.weightinit_f32_digits(ptr, n, digits.ctypes.data, ndig.ctypes.data, exp10.ctypes.data,
                                  kind.ctypes.data):
        flat = values.reshape(-1)
        for i in np.flatnonzero(kind == _ORJSON):
            d, nd, x = digits_of(orjson.dumps(flat[i:i + 1], option=_OPTS)[1:-1].decode())
            digits[i], ndig[i], exp10[i], kind[i] = d, nd, x, 0
    length = _LIB.weightinit_f32_format(ptr, n, shape.ctypes.data, values.ndim, digits.ctypes.data,
                                        ndig.ctypes.data, exp10.ctypes.data, kind.ctypes.data, out.ctypes.data)
    return memoryview(out)[:length]


def applies_to_size(size: int) -> bool:
    return _LIB is not None and size >= MIN_VALUES


def applies(values: np.ndarray) -> bool:
    return (values.dtype == np.float32 and values.ndim >= 1 and 0 not in values.shape
            and applies_to_size(values.size))


def dumps(values: np.ndarray, *, parts: int | None = None) -> list:
    """``orjson.dumps(values, option=OPT_SERIALIZE_NUMPY)`` as pieces (bytes or memoryviews) that
    concatenate to exactly that text; printed in ``parts`` slices of rows on the engine's pool."""
    return list(submit(values, parts=parts)())


def submit(values: np.ndarray, *, parts: int | None = None):
    """Start printing ``values`` on the engine's pool, in slices of rows (twice as many as the pool
    has threads, so that the first are done early); returns a generator function that yields the
    pieces in order, each as soon as its slice is printed. The caller's thread is free meanwhile
    (the printing holds no GIL): the JSON encoder computes statistics and hashes there."""
    if not applies(values):
        text_ = orjson.dumps(values, option=_OPTS)
        return lambda: iter((text_,))
    values = np.ascontiguousarray(values)
    rows = values.shape[0]
    parts = max(1, min(rows, parts or 2 * streams.pool()._max_workers))
    cuts = [rows * k // parts for k in range(parts + 1)]
    futures = [streams.pool().submit(text, values[cuts[k]:cuts[k + 1]]) for k in range(parts)]

    def pieces():
        if parts == 1:
            yield futures[0].result()
            return
        # Each slice printed alone is "[...]": keep the first's "[" and the last's "]", join by commas.
        for k, f in enumerate(futures):
            t = f.result()
            if k:
                yield b","
            yield t[:-1] if k == 0 else t[1:] if k == parts - 1 else t[1:-1]

    return pieces
