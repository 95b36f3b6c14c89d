"""The standard normal sampler: a ziggurat whose bytes depend on no CPU feature, in two twins.

Every normal the engine draws (normal, truncated normal, the Gaussian matrices of orthogonal
and sparse) comes from :func:`fill`. It is Marsaglia and Tsang's ziggurat (2000, "The
Ziggurat Method for Generating Random Variables", J. Stat. Softw. 5(8)) with 256 layers and
the bit layout of NumPy's own float32 ``Generator.standard_normal``, organized so that it can
run as whole-array NumPy operations.

Two implementations, one output. This module is the reference: NumPy operations over chunks,
~7 ns per value here. ``_ziggurat.c`` is its compiled twin, mirroring it operation for
operation (~2.6 ns per value, and called through ctypes, so it releases the GIL and the
engine's drawing threads run in parallel). ``setup.py`` builds the twin when a C compiler is
there; without one, this module draws. The bytes are the same either way, values and
generator state (tests/core/test_normals.py), so an artifact never depends on how the
service was installed. ``BACKEND`` says which one runs; ``WEIGHTINIT_NORMALS=numpy`` forces
the reference.

Why not NumPy's ``standard_normal``: one C call per value, 10-14 ns here, slower than
PyTorch's vectorized Box-Muller. Why not a vectorized Box-Muller: its log/sin/cos would come
from NumPy's SIMD kernels, whose last bits differ between AVX512, AVX2 and baseline CPUs, so
one request would give different bytes on different machines. Here the bytes are a function
of the generator's words only:

* **Fast path (98.5% of values)**: integer masks and shifts, table lookups, one exact
  integer-to-float conversion and one IEEE multiplication (correctly rounded everywhere).
* **Slow path (1.5%)**: the wedge test and the tail need ``exp`` and ``log``; both are
  computed here from IEEE additions, multiplications and divisions plus exact scalings
  (:func:`_exp`, :func:`_log`), never from libm or SIMD kernels, and the tables are built the
  same way at import. The C twin is compiled with ``-ffp-contract=off``: no fused
  multiply-adds, every operation rounded as NumPy's ufuncs round it. So the values are the
  same on every IEEE-754 machine, whatever its vector units (golden digests pin them).

Bit layout of one draw (``W`` = 32 bits for float32 output: a 64-bit word from the bit
generator's ``random_raw`` gives two, low half first; ``W`` = 64 bits for float64 output: one
word each)::

    bits 0-7   layer i (0 = base strip + tail, 1..255 = rectangles from widest to narrowest)
    bit  8     sign
    bits 9..   (float32: the 23 bits 9-31; float64: the 52 bits 12-63) magnitude m

    x = m * w[i] (w[i] = +-X[i] / 2^bits), accepted at once when m < k[i] = floor(X[i+1]/X[i] * 2^bits)

Element ``j`` of a call uses word ``j``. The slow path then draws, in element order, the
float64 uniforms (``Generator.random``) its wedge tests need, then the tail's (Marsaglia's
tail method, in rounds of candidates); values whose wedge test fails restart the ziggurat
(its retry loop), from one batch of fresh candidates taken in order. ``CHUNK`` is not part of
the contract: the word-to-element map and the slow path's order do not depend on it.
"""

from __future__ import annotations

import ctypes
import math
import threading

import numpy as np

from . import native

#: Right edge of the base rectangle and area of every layer (Marsaglia & Tsang's 256-layer constants).
R = 3.6541528853610088
V = 0.00492867323399

#: Elements per pass of the NumPy reference: large enough that each NumPy call amortizes its
#: overhead, small enough that the scratch stays in L2 and NumPy's temporaries stay below
#: malloc's mmap threshold (fresh pages fault expensively). Not part of the output contract.
CHUNK = 1 << 14

_LN2_HI = 6.93147180369123816490e-01   # ln 2 split so that k * _LN2_HI is exact for |k| < 2^11
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.0 / 0.6931471805599453
_SQRT_HALF = 0.7071067811865476
_EXP_COEF = [1.0 / math.factorial(n) for n in range(14)]     # 1/n!, n = 0..13
_LOG_COEF = [1.0 / n for n in range(1, 26, 2)]               # 1/1, 1/3, ..., 1/25
#: Every constant of the slow path, in the layout _ziggurat.c reads (C_* there).
_CONSTANTS = np.array([_INV_LN2, _LN2_HI, _LN2_LO, R, _SQRT_HALF, *_EXP_COEF, *_LOG_COEF], dtype=np.float64)
assert _CONSTANTS.size == 32


def _exp(t):
    """e**t for float64 t in [-745, 0] (an array or a NumPy scalar), from IEEE +, *, / only (no
    libm): reproducible bytes.

    Cody-Waite reduction t = k ln2 + r with |r| <= ln2/2, a degree-13 Taylor polynomial for e**r
    (truncation error below 4e-18), and an exact scaling by 2**k. Within 2 ulp of exp."""
    t = np.float64(t) if np.ndim(t) == 0 else np.asarray(t, dtype=np.float64)
    k = np.rint(t * _INV_LN2)
    r = (t - k * _LN2_HI) - k * _LN2_LO
    p = _EXP_COEF[13]
    for n in range(12, -1, -1):
        p = p * r + _EXP_COEF[n]
    return np.ldexp(p, k.astype(np.int64))


def _log(u):
    """ln u for float64 u > 0 (an array or a NumPy scalar), from IEEE +, *, / only (no libm):
    reproducible bytes.

    u = m 2**e with m in [sqrt(1/2), sqrt(2)), ln m = 2 atanh(s) with s = (m-1)/(m+1), |s| < 0.172,
    summed as 2s(1 + s^2/3 + ... + s^24/25) (truncation error below 1e-19). Within 2 ulp of log."""
    m, e = np.frexp(np.float64(u) if np.ndim(u) == 0 else np.asarray(u, dtype=np.float64))
    small = m < _SQRT_HALF
    m = m * (1.0 + small)  # doubled where small: exact
    e = (e - small).astype(np.float64)
    s = (m - 1.0) / (m + 1.0)
    z = s * s
    p = _LOG_COEF[12]
    for j in range(11, -1, -1):
        p = p * z + _LOG_COEF[j]
    return e * _LN2_HI + (2.0 * s * p + e * _LN2_LO)


def _edges() -> np.ndarray:
    """X[0..256]: X[0] = V/f(R) (the base strip's virtual width), X[1] = R, ..., X[256] = 0.

    Built on NumPy scalars (a 1-element array per call costs ten times as much at import)."""
    f = lambda x: float(_exp(-0.5 * x * x))  # noqa: E731
    x = [V / f(R), R]
    for _ in range(254):
        xi = x[-1]
        x.append(float(np.sqrt(-2.0 * _log(V / xi + f(xi)))))
    x.append(0.0)
    return np.array(x)


class _Tables:
    """Per output width: the 512-entry (layer, sign) tables and the layer density values."""

    def __init__(self, edges: np.ndarray, word: type, value: type, bits: int):
        scale = 2.0 ** bits
        k = np.floor(edges[1:] / edges[:-1] * scale)
        w = edges[:-1] / scale
        self.word, self.value, self.bits, self.shift = np.dtype(word), np.dtype(value), bits, (64 if word is np.uint64 else 32) - bits
        self.k = np.concatenate([k, k]).astype(word)                     # index = layer | sign << 8
        self.w = np.concatenate([w, -w]).astype(value)
        self.f = _exp(-0.5 * edges * edges)                               # density at every edge, float64
        #: What _ziggurat.c reads after the output: K, W, F and the constants (module-lifetime arrays).
        self.addresses = (self.k.ctypes.data, self.w.ctypes.data, self.f.ctypes.data, _CONSTANTS.ctypes.data)


_EDGES = _edges()
_T32 = _Tables(_EDGES, np.uint32, np.float32, 23)
_T64 = _Tables(_EDGES, np.uint64, np.float64, 52)
_LOCAL = threading.local()


class Native:
    """``_ziggurat.c`` bound from one shared library: the package's own build (the module default)
    or, in the tests, a build of the same source with sanitizers.

    Each entry point is bound twice: releasing the GIL (CDLL), so that the engine's threads draw
    large blocks in parallel, and holding it (PyDLL) for calls of up to ``HOLD_GIL_BELOW`` values
    (a few microseconds), where a thread that lets the GIL go waits longer to get it back than it
    drew for."""

    ABI = 2  # weightinit_abi(): the signatures below (2 adds weightinit_seed_state, seeds.py's)
    HOLD_GIL_BELOW = 1 << 14

    def __init__(self, path: str):
        released, held = ctypes.CDLL(path), ctypes.PyDLL(path)
        if released.weightinit_abi() != self.ABI:
            raise OSError(f"{path}: not the sampler ABI {self.ABI}")
        self._fill = {}
        for width in (32, 64):
            for gil, lib in (("released", released), ("held", held)):
                fn = getattr(lib, f"weightinit_fill_f{width}")
                fn.restype = ctypes.c_int
                # (bitgen_t *, out, n, K (512 words), W (512 values), F (257 doubles), _CONSTANTS (32 doubles))
                fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64] + [ctypes.c_void_p] * 4
                self._fill[width, gil] = fn

    def fill(self, rng: np.random.Generator, out: np.ndarray) -> None:
        """:func:`fill`, drawn by this library."""
        t = _tables_for(out)
        n = out.size
        if not n:  # nothing to draw (and no byte to take the address of)
            return
        fn = self._fill[32 if t is _T32 else 64, "held" if n < self.HOLD_GIL_BELOW else "released"]
        bg = rng.bit_generator
        with bg.lock:  # other threads may draw other blocks meanwhile, on their own generators
            rc = fn(native.bitgen(bg), native.address(out), n, *t.addresses)
        if rc:
            raise MemoryError("normals: out of memory in the native sampler")


def _load_native() -> Native | None:
    """The C twin of this module (_ziggurat.c, built by setup.py when a compiler is there), or None.

    WEIGHTINIT_NORMALS=numpy forces the NumPy reference; the bytes are the same either way."""
    try:
        path = native.library("WEIGHTINIT_NORMALS")
        return Native(path) if path else None
    except (OSError, AttributeError, ImportError):
        return None


_NATIVE = _load_native()
#: Which implementation draws: "c" (the compiled twin) or "numpy" (the reference).
BACKEND = "c" if _NATIVE else "numpy"


def _scratch(t: _Tables, n: int):
    """Per-thread buffers, grown on demand: fresh memory page-faults, and blocks are drawn on pool threads."""
    bufs = getattr(_LOCAL, "bufs", None)
    if bufs is None:
        bufs = _LOCAL.bufs = {}
    key = t.bits
    have = bufs.get(key)
    if have is None or have[4].size < n + 8:
        c, size = CHUNK, max(n, CHUNK)
        have = bufs[key] = (np.empty(c, t.word), np.empty(c, t.word), np.empty(c, t.value),
                            np.empty(c, np.intp), np.zeros(size + 8, bool), np.empty(size, np.uint16))
    return have


def _words(rng: np.random.Generator, t: _Tables, n: int) -> np.ndarray:
    raw = rng.bit_generator.random_raw(n if t.word.itemsize == 8 else (n + 1) // 2)
    raw = raw.astype("<u8", copy=False)  # a no-op on little-endian machines; fixes the half order elsewhere
    return raw if t.word.itemsize == 8 else raw.view("<u4")[:n]


def _fast(rng, t: _Tables, out: np.ndarray):
    """Fill ``out`` from its words; return the positions the fast path rejected and their (layer | sign << 8)."""
    n = out.size
    idx, kg, wg, ip, bad, index = _scratch(t, n)
    for start in range(0, n, CHUNK):
        m = min(CHUNK, n - start)
        w = _words(rng, t, m)
        i, k, g, o, j = idx[:m], kg[:m], wg[:m], out[start:start + m], ip[:m]
        # The index is cast to intp by copyto, not by the ufunc (a casting ufunc output holds the
        # GIL) nor by take (which would allocate a fresh intp array per call: page faults).
        np.bitwise_and(w, 0x1FF, out=i)
        np.copyto(j, i, casting="unsafe")
        np.right_shift(w, t.shift, out=w)                       # the magnitude
        np.take(t.w, j, out=g, mode="clip")
        np.take(t.k, j, out=k, mode="clip")
        np.copyto(o, w, casting="unsafe")                       # exact: at most 23 / 52 bits
        np.multiply(o, g, out=o)
        np.greater_equal(w, k, out=bad[start:start + m])
        np.copyto(index[start:start + m], i, casting="unsafe")
    # ~1.5% are rejected: find them 8 flags at a time (the flags past n are kept False), then exactly.
    flags = bad[: n + 8]
    flags[n:] = False
    groups = np.flatnonzero(flags[: (n + 7) // 8 * 8].view(np.uint64))
    pos = (groups[:, None] * 8 + np.arange(8)).ravel()
    pos = pos[flags[pos]]
    return pos, index[pos].astype(np.intp)


def _slow(rng, t: _Tables, out: np.ndarray, pos: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Decide the values the fast path did not accept (wedges and tail); return the positions to redraw."""
    layer, negative = index & 0xFF, index >= 256
    is_tail = layer == 0
    wedge = np.flatnonzero(~is_tail)
    redo = np.empty(0, np.intp)
    if wedge.size:
        # Wedge of layer i: x uniform on [X[i+1], X[i]), y uniform on [f(X[i]), f(X[i+1])); keep x if y < f(x).
        li = layer[wedge]
        x = out[pos[wedge]].astype(np.float64)
        y = t.f[li] + rng.random(wedge.size) * (t.f[li + 1] - t.f[li])
        redo = pos[wedge[y >= _exp(-0.5 * x * x)]]
    tails = np.flatnonzero(is_tail)
    if tails.size:
        out[pos[tails]] = np.where(negative[tails], -1.0, 1.0) * _tail(rng, tails.size)
    return redo


def _tail(rng, n: int) -> np.ndarray:
    """n draws from the normal tail beyond R (Marsaglia 1964): R + a with a = -ln(U1)/R, kept when -2 ln(U2) > a^2.

    Candidates come in rounds of ``n_left + n_left // 8 + 8`` pairs (about 93% are kept, so one
    round nearly always suffices); the first kept ones fill the remaining slots in order."""
    res = np.empty(n)
    done = 0
    while done < n:
        left = n - done
        u = _log(1.0 - rng.random((2, left + left // 8 + 8)))   # 1 - U is in (0, 1]: no log(0)
        a = u[0] / -R
        kept = (R + a[-2.0 * u[1] > a * a])[:left]
        res[done:done + kept.size] = kept
        done += kept.size
    return res


def _tables_for(out: np.ndarray) -> _Tables:
    if out.dtype == np.float32:
        t = _T32
    elif out.dtype == np.float64:
        t = _T64
    else:
        raise TypeError(f"normals are drawn in float32 or float64, not {out.dtype}")
    if out.ndim != 1 or not out.flags.c_contiguous:
        raise ValueError("out must be a 1-D C-contiguous array")
    return t


def fill(rng: np.random.Generator, out: np.ndarray) -> None:
    """Fill the 1-D C-contiguous float32 or float64 array ``out`` with standard normals from ``rng``."""
    if _NATIVE is not None:
        _NATIVE.fill(rng, out)
        return
    t = _tables_for(out)
    pos, index = _fast(rng, t, out)
    where = _slow(rng, t, out, pos, index)
    while where.size:
        # A failed wedge test restarts the ziggurat for that value. The restarts are drawn as one
        # batch of candidates (fast path, then their own wedges and tail), a few more than needed
        # since ~0.7% fail again; the first accepted ones fill the positions in order.
        vals, ok = _candidates(rng, t, where.size + where.size // 32 + 16)
        kept = vals[ok][: where.size]
        out[where[: kept.size]] = kept
        where = where[kept.size:]


def _candidates(rng, t: _Tables, n: int):
    """n ziggurat candidates: their values, and whether each was accepted (fast path, wedge or tail)."""
    vals = np.empty(n, t.value)
    pos, index = _fast(rng, t, vals)
    ok = np.ones(n, bool)
    ok[_slow(rng, t, vals, pos, index)] = False
    return vals, ok


def draw(rng: np.random.Generator, n: int, dtype=np.float64) -> np.ndarray:
    out = np.empty(n, dtype)
    fill(rng, out)
    return out
