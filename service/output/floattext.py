"""float32 arrays as JSON text, byte for byte what ``orjson.dumps(a, option=OPT_SERIALIZE_NUMPY)``
prints, without holding the GIL.

orjson prints ~27 ns per float32 value and holds the GIL while it does: for a 1M-value tensor
that is most of a JSON response's time, on one core, and nothing else can run meanwhile.
``_f32text.c`` finds each value's shortest round-trip digits (Ryu's answer, with exact integer
arithmetic) and lays the text out as orjson does, in C through ctypes (so without the GIL), on
the engine's threads, one slice of rows each. Values outside the C code's exact range (below
1e-34 or from 1e9 up in magnitude: no initial weight is there) are asked of orjson one by one.
Without the compiled module (no C compiler at install) orjson prints everything: the same
bytes, slower. The C code sizes the output (``Printer.capacity``: every value at its longest) and
checks the room before each write: a full buffer is an error, never a write past the end.
"""

from __future__ import annotations

import ctypes
import importlib.util

import numpy as np
import orjson

from ..core import streams

_OPTS = orjson.OPT_SERIALIZE_NUMPY
#: Below this many values one orjson call costs less than the hand-offs to threads.
MIN_VALUES = 1 << 16
_ORJSON = 3  # _f32text.c's KIND_ORJSON
#: What _f32text.c's entry points return instead of a length.
NEEDS_ORJSON, FULL, BAD_ARGUMENTS = -1, -2, -3


class Printer:
    """``_f32text.c`` bound from one shared library: the package's own build (``PRINTER``) or, in
    the tests, a build of the same source with sanitizers.

    The C code owns the layout, so it also owns the sizes: ``max_value_text`` (the longest text
    it writes for one value) and ``capacity(values)``, the most bytes an array's text takes, which
    sizes the buffer. Each call is told that capacity and fails (FULL) rather than write past it."""

    def __init__(self, path: str):
        self.lib = lib = ctypes.CDLL(path)
        p, i64, i32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
        for name, restype, argtypes in (
                ("weightinit_f32_max_value_text", i32, []), ("weightinit_f32_max_ndim", i32, []),
                ("weightinit_f32_capacity", i64, [i64, p, i32]),
                ("weightinit_f32_json", i64, [p, i64, p, i32, p, i64]),
                ("weightinit_f32_digits", i64, [p, i64, p, p, p, p]),
                ("weightinit_f32_format", i64, [p, i64, p, i32, p, p, p, p, p, i64])):
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = restype, argtypes
        #: Bytes of the longest value text (17: "-0.00000ddddddddd"); each value also takes a comma.
        self.max_value_text = lib.weightinit_f32_max_value_text()
        #: The most dimensions the C code prints (NumPy's own limit).
        self.max_ndim = lib.weightinit_f32_max_ndim()

    def capacity(self, values: np.ndarray) -> int:
        """The most bytes the text of ``values`` takes (every value at its longest)."""
        shape = np.array(values.shape, np.int64)
        return self._checked(self.lib.weightinit_f32_capacity(values.size, shape.ctypes.data, values.ndim))

    def text(self, values: np.ndarray) -> memoryview:
        """The text of a C-contiguous float32 array (1 <= ndim <= max_ndim, no zero dimension), in
        one call; values the C code has no exact digits for are asked of orjson."""
        n, ndim, ptr = values.size, values.ndim, values.ctypes.data
        shape = np.array(values.shape, np.int64)
        capacity = self.capacity(_checked_array(values))
        out = np.empty(capacity, np.uint8)
        length = self.lib.weightinit_f32_json(ptr, n, shape.ctypes.data, ndim, out.ctypes.data, capacity)
        if length == NEEDS_ORJSON:  # some value needs orjson: two passes
            digits, ndig, exp10, kind = self.digits(values)
            length = self.lib.weightinit_f32_format(ptr, n, shape.ctypes.data, ndim, digits.ctypes.data,
                                                    ndig.ctypes.data, exp10.ctypes.data, kind.ctypes.data,
                                                    out.ctypes.data, capacity)
        return memoryview(out)[:self._checked(length)]

    def digits(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Pass 1 of a C-contiguous float32 array: per value, (digits, number of digits, decimal
        exponent, kind) as ``weightinit_f32_format`` reads them; orjson's digits where the C code
        has none."""
        n = _checked_array(values).size
        digits, ndig = np.empty(n, np.uint32), np.empty(n, np.uint8)
        exp10, kind = np.empty(n, np.int16), np.empty(n, np.uint8)
        if self._checked(self.lib.weightinit_f32_digits(values.ctypes.data, n, digits.ctypes.data, ndig.ctypes.data,
                                                        exp10.ctypes.data, kind.ctypes.data)):
            flat = values.reshape(-1)
            for i in np.flatnonzero(kind == _ORJSON):
                d, nd, x = digits_of(orjson.dumps(flat[i:i + 1], option=_OPTS)[1:-1].decode())
                digits[i], ndig[i], exp10[i], kind[i] = d, nd, x, 0
        return digits, ndig, exp10, kind

    @staticmethod
    def _checked(result: int) -> int:
        if result == FULL:  # capacity() is the most any text takes: a bug, not an input
            raise RuntimeError("float printer: the text did not fit the capacity computed for it")
        if result < 0:
            raise ValueError("float printer: not an array it prints (its shape, or the digits handed to pass 2)")
        return result


def _checked_array(values: np.ndarray) -> np.ndarray:
    """The C code reads values.size float32 from the array's first byte."""
    if values.dtype != np.float32 or not values.flags.c_contiguous:
        raise ValueError(f"the printer takes a C-contiguous float32 array, not {values.dtype} "
                         f"(C-contiguous: {values.flags.c_contiguous})")
    return values


def _default() -> Printer | None:
    """The package's own build (setup.py builds it when a C compiler is there), or None."""
    try:
        spec = importlib.util.find_spec(__package__ + "._f32text")
        if spec is None or not spec.origin:
            return None
        return Printer(spec.origin)
    except (OSError, AttributeError, ImportError):  # AttributeError: a build of older source
        return None


#: The compiled printer, or None without one (then orjson prints everything).
PRINTER = _default()
#: Who prints large float32 JSON values: "c" (the compiled printer) or "orjson".
BACKEND = "c" if PRINTER is not None else "orjson"


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


def applies_to_size(size: int) -> bool:
    return PRINTER is not None and size >= MIN_VALUES


def applies(values: np.ndarray) -> bool:
    return (applies_to_size(values.size) and values.dtype == np.float32 and 1 <= values.ndim <= PRINTER.max_ndim
            and 0 not in values.shape)


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
    futures = [streams.pool().submit(PRINTER.text, values[cuts[k]:cuts[k + 1]]) for k in range(parts)]

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
