"""PyTorch's CPU float kernels, emulated operation by operation in NumPy.

``fma32``: a correctly rounded float32 fused multiply-add; ``log256_ps`` / ``sincos256_ps``: the
Cephes polynomials of ATen's ``avx_mathfun.h`` with the fusions GCC chose; ``box_muller_avx2``
(bit-exact) and ``box_muller_default`` (glibc's logf/cosf/sinf approximated in float64: not exact)
transform blocks of 16 uniforms the way ``normal_``'s kernel does. docs/torch-replay.md has the
findings behind each.
"""

from __future__ import annotations

import math

import numpy as np

_F32 = np.float32
_F64 = np.float64




def fma32(a, b, c) -> np.ndarray:
    """Correctly rounded float32 ``a*b + c`` for float32 inputs (arrays or scalars).

    ``a*b`` is exact in float64 (24+24 bits); the float64 sum ``s`` is then rounded
    to float32, which equals the single rounding of the exact value unless ``s``
    is exactly halfway between two float32 numbers while the exact sum is not
    (double rounding); those rare ties are fixed with the TwoSum error term.
    """
    a64 = np.asarray(a, dtype=_F32).astype(_F64)
    p = a64 * np.asarray(b, dtype=_F32).astype(_F64)
    c64 = np.asarray(c, dtype=_F32).astype(_F64)
    s = p + c64
    r = s.astype(_F32)
    bits = np.asarray(s).view(np.uint64)
    suspect = (bits & np.uint64(0x1FFFFFFF)) == np.uint64(0x10000000)
    # below 2**-125 (float32 subnormal range, and zero) ties sit elsewhere: check those too
    suspect |= (bits & np.uint64(0x7FF0000000000000)) < np.uint64((1023 - 125) << 52)
    if suspect.any():
        idx = np.nonzero(suspect)
        pb = np.broadcast_to(p, s.shape)[idx]
        cb = np.broadcast_to(c64, s.shape)[idx]
        ss = s[idx]
        bb = ss - pb
        err = (pb - (ss - bb)) + (cb - bb)
        nudged = np.where(err > 0, np.nextafter(ss, np.inf), np.where(err < 0, np.nextafter(ss, -np.inf), ss))
        # nudging by one float64 ulp moves a float32 tie to the side of the exact value
        # and cannot cross any other float32 rounding boundary
        r = np.array(r, copy=True)
        r[idx] = nudged.astype(_F32)
    return r


def fma64_exact(a: float, b: float, c: float) -> float:
    """Correctly rounded double fma for Python floats (used on < 16 values)."""
    from fractions import Fraction

    return float(Fraction(a) * Fraction(b) + Fraction(c))


# --------------------------------------------------------------------------- avx_mathfun emulation

_C = _F32
_SQRTHF = _C(0.707106781186547524)
_LOG_P = [_C(v) for v in (7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1,
                          1.4249322787e-1, -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1,
                          3.3333331174e-1)]
_LOG_Q1 = _C(-2.12194440e-4)
_LOG_Q2 = _C(0.693359375)
_DP1 = _C(-0.78515625)
_DP2 = _C(-2.4187564849853515625e-4)
_DP3 = _C(-3.77489497744594108e-8)
_SINCOF = [_C(-1.9515295891e-4), _C(8.3321608736e-3), _C(-1.6666654611e-1)]
_COSCOF = [_C(2.443315711809948e-005), _C(-1.388731625493765e-003), _C(4.166664568298827e-002)]
_FOPI = _C(1.27323954473516)
_ONE = _C(1.0)
_HALF = _C(0.5)
_TWO_PI_F32 = _C(2.0 * math.pi)  # _mm256_set1_ps(2.0f * c10::pi<double>)


def log256_ps(x: np.ndarray) -> np.ndarray:
    """``log256_ps`` of avx_mathfun.h as compiled with FMA contraction (x > 0)."""
    x = np.maximum(x, np.array(0x00800000, dtype=np.int32).view(_F32))
    bits = x.view(np.int32)
    e = ((bits.view(np.uint32) >> np.uint32(23)).astype(np.int32) - 0x7F).astype(_F32) + _ONE
    x = ((bits & np.int32(~0x7F800000)) | _HALF.view(np.int32)).view(_F32)
    mask = x < _SQRTHF
    tmp = np.where(mask, x, _F32(0))
    x = x - _ONE
    e = e - np.where(mask, _ONE, _F32(0))
    x = x + tmp
    z = x * x
    y = fma32(_LOG_P[0], x, _LOG_P[1])
    for p in _LOG_P[2:]:
        y = fma32(y, x, p)
    y = y * x
    y = fma32(y, z, e * _LOG_Q1)        # y*z + e*q1: the first product is fused
    y = fma32(-z, _HALF, y)             # y - z*0.5
    x = x + y
    return fma32(e, _LOG_Q2, x)         # x + e*q2


def sincos256_ps(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``sincos256_ps`` of avx_mathfun.h as compiled with FMA contraction."""
    sign_sin = np.signbit(x)
    x = np.abs(x)
    j = (x * _FOPI).astype(np.int32)       # cvtt: truncation
    j = (j + 1) & ~1
    y = j.astype(_F32)
    swap_sin = (j & 4) != 0
    poly = (j & 2) == 0
    sign_cos = (~(j - 2) & 4) != 0
    sign_sin ^= swap_sin
    x = fma32(y, _DP1, x)
    x = fma32(y, _DP2, x)
    x = fma32(y, _DP3, x)
    z = x * x
    yc = fma32(_COSCOF[0], z, _COSCOF[1])
    yc = fma32(yc, z, _COSCOF[2])
    yc = yc * z
    yc = fma32(yc, z, -(z * _HALF))      # y*z - z*0.5: the first product is fused
    yc = yc + _ONE
    ys = fma32(_SINCOF[0], z, _SINCOF[1])
    ys = fma32(ys, z, _SINCOF[2])
    ys = ys * z
    ys = fma32(ys, x, x)
    s = np.where(poly, ys, yc)
    c = np.where(poly, yc, ys)
    s = np.where(sign_sin, -s, s)
    c = np.where(sign_cos, -c, c)
    return s, c


def box_muller_avx2(u: np.ndarray, mean: np.float32, std: np.float32) -> np.ndarray:
    """NormalFill16<float> AVX2 on ``u`` of shape (m, 16) float32 uniforms."""
    u1 = (_ONE - u[:, :8]).ravel()  # contiguous halves: the lane order does not matter
    u2 = np.ascontiguousarray(u[:, 8:]).ravel()
    radius = np.sqrt(_F32(-2.0) * log256_ps(u1))
    s, c = sincos256_ps(_TWO_PI_F32 * u2)
    out = np.empty_like(u)
    out[:, :8] = fma32(radius * c, std, mean).reshape(-1, 8)
    out[:, 8:] = fma32(radius * s, std, mean).reshape(-1, 8)
    return out


def box_muller_default(u: np.ndarray, mean: np.float32, std: np.float32) -> np.ndarray:
    """NormalFill16 scalar (DEFAULT capability), glibc float functions approximated
    by float64 evaluation rounded to float32 (not bit-exact)."""
    u1 = _ONE - u[:, :8]
    u2 = u[:, 8:]
    lg = np.log(u1.astype(_F64)).astype(_F32)
    radius = np.sqrt(_F32(-2.0) * lg)
    theta = (2.0 * math.pi * u2.astype(_F64)).astype(_F32).astype(_F64)
    c = np.cos(theta).astype(_F32)
    s = np.sin(theta).astype(_F32)
    out = np.empty_like(u)
    out[:, :8] = fma32(radius * c, std, mean)
    out[:, 8:] = fma32(radius * s, std, mean)
    return out
