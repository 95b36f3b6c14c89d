"""Pure-NumPy replay of PyTorch's CPU random stream (``torch.manual_seed`` + init).

Reproduces, bit for bit where stated, the float32 tensors that
``torch.manual_seed(seed)`` followed by building ``torch.nn`` modules and calling
``torch.nn.init`` functions produces on the CPU -- without importing torch.
Everything below was measured against torch 2.13.0+cpu (x86-64, AVX2 kernels,
GCC 13 build) on this project's machines; the tests in
``tests/core/test_torch_rng.py`` re-check it against a real torch.

Findings (what torch does, with the arithmetic)
-----------------------------------------------
Generator
  * ``torch.manual_seed(s)`` keeps ``s mod 2**64`` (negative seeds wrap) and seeds
    a 32-bit Mersenne Twister (mt19937) with the *low 32 bits*: ``state[0] =
    s & 0xffffffff; state[j] = 1812433253 * (state[j-1] ^ (state[j-1] >> 30)) + j``
    -- Matsumoto-Nishimura ``init_genrand``, the same as NumPy's legacy 32-bit
    seeding.  Seeds ``s`` and ``s + 2**32`` therefore give identical streams.
    ``np.random.MT19937.random_raw`` returns the same 32-bit outputs (as uint64).
    Seeding also clears the generator's cached normal sample (see normal_ < 16).
  * A float32 element takes one 32-bit draw ``d``; a float64 element takes one
    "random64" = two draws, the first one in the high half:
    ``(d0 << 32) | d1``, of which the low 53 bits are used.

uniform_(from, to) on float32 (the issue's claim holds, with two additions)
  * ``x = (d & 0xFFFFFF) * 2**-24`` (exact), ``from``/``to`` cast to float32,
    ``range = to - from`` in float32, ``v = x * range + from``.  On the AVX2 (and,
    by the same compiled source, AVX512) kernels GCC contracts ``x*range+from``
    into one fused multiply-add, i.e. a single rounding of the exact value to
    float32.  The issue's "in double, then cast" gives the same result except in
    double-rounding ties, which this module handles exactly (see ``_fma32``).
  * New in recent torch (verified in 2.13): ``if v == float32(to): v = float32(from)``
    (the kernel clamps a result that rounded up to the excluded upper bound).
    Example: seed 2, draw #12675698, ``uniform_(0.1, 2.7)`` returns 0.1.
  * On the DEFAULT (non-AVX2) CPU capability -- old CPUs, or
    ``ATEN_CPU_CAPABILITY=default`` -- torch rounds twice instead:
    ``float32(float32(x * range) + from)``; about half of all uniform values then
    differ by 1 ulp from the AVX2 ones.  Selected with ``capability="default"``.
  * float64: ``x = (random64 & (2**53-1)) * 2**-53``, ``fma(x, to-from, from)`` in
    double (AVX2).  This module generates float32 only.

normal_(mean, std) on float32
  * ``numel >= 16`` (contiguous): fill with ``numel`` uniforms ``x`` as above (one
    draw each), then for each block of 16: ``u1 = 1 - x[j]``, ``u2 = x[j+8]``
    (j < 8), ``radius = sqrt(-2 * log(u1))``, ``theta = float32(2*pi) * u2``,
    ``x[j] = fma(radius * cos(theta), std, mean)``, ``x[j+8] = fma(radius *
    sin(theta), std, mean)``, with ``mean``/``std`` cast to float32.  If
    ``numel % 16 != 0`` the last 16 positions ``[numel-16, numel)`` are redrawn
    (16 *new* draws, so ``numel + 16`` draws in total) and transformed as one more
    block; the leftover uniforms are discarded.
  * On AVX2/AVX512 builds log/sin/cos are NOT Sleef: they are ``log256_ps`` and
    ``sincos256_ps`` of ``ATen/native/cpu/avx_mathfun.h`` (Cephes polynomials,
    Pommier/Garberoglio), compiled by GCC with FMA contraction.  This module
    emulates them operation by operation in float32, with the exact fusion GCC
    chose (every ``a*b + c`` of the source is one fused multiply-add; in
    ``y*z + e*q1`` and ``y*z - z*0.5`` the first product is the fused one).
    Result: bit-identical (0 mismatches on more than 20 million values, many
    seeds, means and stds, tails).  The issue's "Sleef ... up to 3 ulp" is a
    comparison with NumPy's own float32 log/sin/cos, not with what torch runs:
    plain float32 evaluation without the fusion differs by up to 3 ulp too.
  * On the DEFAULT capability the block is scalar C++ with glibc
    ``logf/cosf/sinf`` (and ``theta = float32(2*pi_double * u2)``); those are not
    correctly rounded and cannot be vectorised in NumPy bit for bit, so
    ``capability="default"`` evaluates them in float64 and rounds:
    exact=False (see bounds below).
  * ``numel < 16``: a different path, per element in double: two float64 uniforms
    (two random64 = four draws) ``u1, u2``; ``r = sqrt(-2 * log1p(-u2))``,
    ``theta = 2 * pi * u1``; it returns ``r*cos(theta)`` and *caches*
    ``r*sin(theta)`` in the generator, which the next element of any later
    ``normal_`` call of this path consumes first (the cache survives across
    tensors until the next ``manual_seed``).  Output ``float32(fma(z, std,
    mean))`` in double (AVX2; the DEFAULT build rounds the product first).  The
    double log1p/sin/cos are glibc's, the same functions Python's ``math`` module
    calls, so this path is exact too (verified).

trunc_normal_ (torch 2.13 changed the algorithm: the old erfinv method is gone)
  * ``p = Phi((b-mean)/std) - Phi((a-mean)/std)`` (``math.erf``).  If ``p > 0.3``:
    ``normal_(mean, std)``, then while any value is ``< float32(a)`` or ``>
    float32(b)``, draw a *whole new* ``normal_`` tensor of the same size and take
    its values at the rejected positions.  Exact whenever ``normal_`` is.
  * Else (narrow windows): rejection from ``uniform_(a, b)`` with acceptance test
    ``log(uniform_(0, 1)) > -0.5 * ((c - mean)/std)**2 - log_peak`` evaluated in
    float32 by torch's kernels (plain float32 sub, div, square, mul, sub with the
    scalars cast to float32; verified); every round redraws both tensors in
    full.  torch's float32 ``log_`` (vectorised Sleef on x86 builds, glibc on
    DEFAULT; both <= 1 ulp) is not reproduced bit for bit; instead a decision is
    taken as certain only when the float64 log is more than 2 float32 ulps away
    from the threshold; otherwise the tensor is flagged exact=False (practically
    never happens: no such case in the tests).

Other init functions and modules
  * kaiming_*/xavier_* compute their bound/std in Python doubles exactly as
    ``torch/nn/init.py`` does and call uniform_/normal_.  kaiming_* on a tensor
    with a zero dimension draws nothing.
  * orthogonal_: ``normal_`` on ``(rows, numel/rows)`` (transposed when rows <
    cols), QR, ``q *= sign(diag(r))``, ``* float32(gain)``.  torch runs float32
    LAPACK (MKL sgeqrf/sorgqr); NumPy only has float64 LAPACK, whose result
    rounded to float32 differs from torch's in the last bits: exact=False.
  * sparse_: ``normal_(0, std)`` then, per column, ``torch.randperm(rows)``:
    Fisher-Yates with ``rows - 1`` draws, ``swap(p[i], p[i + d % (rows - i)])``;
    the first ``ceil(sparsity * rows)`` indices are zeroed.  Exact when normal_ is.
  * eye_, dirac_, constant_, zeros_, ones_: no draws, exact.
  * Linear/Conv*/ConvTranspose*: ``kaiming_uniform_(weight, a=sqrt(5))`` then
    bias ``uniform_(-1/sqrt(fan_in), 1/sqrt(fan_in))`` with fan_in from the
    weight (ConvTranspose weight is ``(in, out/groups, *k)``, so its fan_in is
    ``out/groups * prod(k)``).  RNN/LSTM/GRU: every parameter in registration
    order ``uniform_(-1/sqrt(hidden), 1/sqrt(hidden))``.  Embedding:
    ``normal_(0, 1)`` (padding row zeroed).  LayerNorm/BatchNorm: ones/zeros, no
    draws.  MultiheadAttention: ``__init__`` first builds ``out_proj`` (a
    Linear: kaiming_uniform_ on out_proj.weight, then uniform_ on out_proj.bias),
    then ``_reset_parameters``: ``xavier_uniform_(in_proj_weight)`` (or q/k/v
    proj weights), in_proj_bias and out_proj.bias set to 0 (the out_proj.bias
    draws are consumed and thrown away), ``xavier_normal_`` on bias_k, bias_v.
    ``named_parameters`` lists own parameters first (in_proj_weight,
    in_proj_bias, bias_k, bias_v) and then out_proj.weight, out_proj.bias.

Exactness guarantee (``exact`` flag)
  * capability="avx2" (default; x86-64 CPUs with AVX2 or AVX512): every function
    and module here is bit-identical to torch 2.13 CPU, except orthogonal_
    (exact=False, last-bit differences from LAPACK) and the rare ambiguous
    trunc_normal_ narrow-window decision described above.  AVX512 uses the same
    source code paths; it was not measured on an AVX512 machine.
  * capability="default": uniform-based results are exact; normal-based ones are
    exact only for numel < 16, else exact=False.
  * Measured bounds where not exact (torch 2.13, x86-64):
    - DEFAULT-capability normal_ (numel >= 16): 0.9 % of values differ (glibc's
      logf/cosf/sinf are not correctly rounded), by at most 4.0 ulps of
      ``max(|value|, std)`` over 12 million values; ``DEFAULT_NORMAL_ULP_BOUND``
      = 8 is that with a 2x margin.  (Values near 0 differ by more ulps of
      *themselves*; the absolute error is what is bounded.)
    - orthogonal_: about 90 % of the entries differ in the last bits (torch's
      float32 QR rounding; ours is float64 QR rounded once).  Measured
      ``max |ours - torch| <= 3.4 * max(rows, cols) * 2**-24 * |gain|`` over 448
      matrices from 2x2 to 512x512 (40 seeds); ``ORTHOGONAL_BOUND_FACTOR`` = 8 in that
      formula.  The error grows with the condition number of the Gaussian draw,
      so this is an empirical bound, not a guarantee.
  * Other CPUs (aarch64, ...) were not measured.  PyTorch itself gives different
    normal_ values (and, on non-AVX2 x86, different uniform_ values) on CPUs of
    different capability.

Speed (sequential by nature: one mt19937 stream; one core of this 2-core machine)
  * 2048x1024 (2.1 M values): uniform_ 0.07 s, normal_ 0.3 s.
  * 50 M values: uniform_ 1.1 s, normal_ 7.1 s -- the Box-Muller emulation is
    about 45 float32 operations per pair, 25 of them fused multiply-adds emulated
    in float64 with a tie check.  torch itself (1 thread): 0.5 s and 0.33 s.
  * Work is done in chunks of 2**21 values: peak extra memory is about 100 MB
    beyond the result.  Skipping ahead (``discard``) costs about 0.004 s per
    million draws.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

__all__ = [
    "TorchCPUGenerator",
    "torch_fans",
    "calculate_gain",
    "construct_module",
    "MODULE_KINDS",
    "ORTHOGONAL_BOUND_FACTOR",
    "DEFAULT_NORMAL_ULP_BOUND",
]

_F32 = np.float32
_F64 = np.float64
_CHUNK = 1 << 21  # values per chunk (multiple of 16)
_TWO_M24 = 2.0**-24
_TWO_M53 = 2.0**-53
_MASK53 = np.uint64((1 << 53) - 1)

#: orthogonal_: |ours - torch| <= ORTHOGONAL_BOUND_FACTOR * max(rows, cols) * 2**-24 * |gain|
#: (measured worst 3.4 over 448 matrices; 2x margin; an empirical bound, not a guarantee)
ORTHOGONAL_BOUND_FACTOR = 8
#: DEFAULT-capability normal_ (numel >= 16): |ours - torch| <= this many ulps of max(|value|, std)
#: (measured worst 4.0 over 12 million values; 2x margin)
DEFAULT_NORMAL_ULP_BOUND = 8

CAPABILITIES = ("avx2", "default")


# --------------------------------------------------------------------------- float helpers


def _fma32(a, b, c) -> np.ndarray:
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


def _fma64_exact(a: float, b: float, c: float) -> float:
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


def _log256_ps(x: np.ndarray) -> np.ndarray:
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
    y = _fma32(_LOG_P[0], x, _LOG_P[1])
    for p in _LOG_P[2:]:
        y = _fma32(y, x, p)
    y = y * x
    y = _fma32(y, z, e * _LOG_Q1)        # y*z + e*q1: the first product is fused
    y = _fma32(-z, _HALF, y)             # y - z*0.5
    x = x + y
    return _fma32(e, _LOG_Q2, x)         # x + e*q2


def _sincos256_ps(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
    x = _fma32(y, _DP1, x)
    x = _fma32(y, _DP2, x)
    x = _fma32(y, _DP3, x)
    z = x * x
    yc = _fma32(_COSCOF[0], z, _COSCOF[1])
    yc = _fma32(yc, z, _COSCOF[2])
    yc = yc * z
    yc = _fma32(yc, z, -(z * _HALF))      # y*z - z*0.5: the first product is fused
    yc = yc + _ONE
    ys = _fma32(_SINCOF[0], z, _SINCOF[1])
    ys = _fma32(ys, z, _SINCOF[2])
    ys = ys * z
    ys = _fma32(ys, x, x)
    s = np.where(poly, ys, yc)
    c = np.where(poly, yc, ys)
    s = np.where(sign_sin, -s, s)
    c = np.where(sign_cos, -c, c)
    return s, c


def _box_muller_avx2(u: np.ndarray, mean: np.float32, std: np.float32) -> np.ndarray:
    """NormalFill16<float> AVX2 on ``u`` of shape (m, 16) float32 uniforms."""
    u1 = (_ONE - u[:, :8]).ravel()  # contiguous halves: the lane order does not matter
    u2 = np.ascontiguousarray(u[:, 8:]).ravel()
    radius = np.sqrt(_F32(-2.0) * _log256_ps(u1))
    s, c = _sincos256_ps(_TWO_PI_F32 * u2)
    out = np.empty_like(u)
    out[:, :8] = _fma32(radius * c, std, mean).reshape(-1, 8)
    out[:, 8:] = _fma32(radius * s, std, mean).reshape(-1, 8)
    return out


def _box_muller_default(u: np.ndarray, mean: np.float32, std: np.float32) -> np.ndarray:
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
    out[:, :8] = _fma32(radius * c, std, mean)
    out[:, 8:] = _fma32(radius * s, std, mean)
    return out


# --------------------------------------------------------------------------- fans and gains


def _shape_tuple(shape) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    return tuple(int(s) for s in shape)


def torch_fans(shape) -> tuple[int, int]:
    """torch.nn.init._calculate_fan_in_and_fan_out for a tensor of this shape."""
    shape = _shape_tuple(shape)
    if len(shape) < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 dimensions")
    receptive = 1
    for s in shape[2:]:
        receptive *= s
    return shape[1] * receptive, shape[0] * receptive


def calculate_gain(nonlinearity: str, param=None) -> float:
    """torch.nn.init.calculate_gain."""
    linear_fns = ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                  "conv_transpose3d"]
    if nonlinearity in linear_fns or nonlinearity == "sigmoid":
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            negative_slope = 0.01
        elif (not isinstance(param, bool) and isinstance(param, int)) or isinstance(param, float):
            negative_slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + negative_slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def _correct_fan(shape, mode: str) -> int:
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of ['fan_in', 'fan_out']")
    fan_in, fan_out = torch_fans(shape)
    return fan_in if mode == "fan_in" else fan_out


def _norm_cdf(x: float) -> float:
    return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0


def _mt19937_key(seed32: int) -> np.ndarray:
    key = np.empty(624, dtype=np.uint32)
    v = seed32 & 0xFFFFFFFF
    key[0] = v
    for j in range(1, 624):
        v = (1812433253 * (v ^ (v >> 30)) + j) & 0xFFFFFFFF
        key[j] = v
    return key


# --------------------------------------------------------------------------- generator


class TorchCPUGenerator:
    """Replays torch.manual_seed(seed) + the CPU mt19937 stream.

    ``capability`` selects which torch CPU kernels are replayed: ``"avx2"`` (x86-64
    with AVX2 or AVX512: what torch picks on any CPU of the last decade) or
    ``"default"`` (x86-64 without AVX2, or ``ATEN_CPU_CAPABILITY=default``).
    The generator is stateful and sequential: calls consume the stream in order,
    exactly like consecutive torch calls on the default CPU generator.
    """

    def __init__(self, seed: int, capability: str = "avx2"):
        if capability not in CAPABILITIES:
            raise ValueError(f"capability must be one of {CAPABILITIES}")
        self.capability = capability
        self.seed = int(seed) % (1 << 64)  # torch keeps seed mod 2**64 (negative seeds wrap)
        self._bg = np.random.MT19937(0)
        self._bg.state = {
            "bit_generator": "MT19937",
            "state": {"key": _mt19937_key(self.seed & 0xFFFFFFFF), "pos": 624},
        }
        self._normal_cache: float | None = None  # next_double_normal_sample_
        self.draws = 0  # number of 32-bit outputs consumed so far

    # ---------------------------------------------------------------- raw stream
    def _raw(self, n: int) -> np.ndarray:
        self.draws += n
        return self._bg.random_raw(n)

    def discard(self, n: int) -> None:
        """Consume ``n`` 32-bit draws (to skip ahead to a later tensor)."""
        while n > 0:
            k = min(n, 1 << 22)
            self._raw(k)
            n -= k

    def _u24(self, n: int) -> np.ndarray:
        """n float32 elements of uniform_(0, 1): (d & 0xFFFFFF) * 2**-24."""
        return ((self._raw(n) & np.uint64(0xFFFFFF)).astype(_F64) * _TWO_M24).astype(_F32)

    def _u53(self, n: int) -> np.ndarray:
        """n float64 uniforms from random64 = (first << 32) | second."""
        d = self._raw(2 * n)
        r64 = (d[0::2] << np.uint64(32)) | d[1::2]
        return (r64 & _MASK53).astype(_F64) * _TWO_M53

    # ---------------------------------------------------------------- uniform
    def _uniform_flat(self, n: int, low: float, high: float) -> np.ndarray:
        if not low <= high:
            raise ValueError(f"uniform_ expects to return a [from, to) range, but found from={low} > to={high}")
        f = _F32(low)
        t = _F32(high)
        rng = _F32(t - f)
        out = np.empty(n, dtype=_F32)
        for start in range(0, n, _CHUNK):
            m = min(_CHUNK, n - start)
            x = self._u24(m)
            if self.capability == "avx2":
                v = _fma32(x, rng, f)
            else:
                v = (x * rng) + f
            v[v == t] = f  # torch: value == to ? from : value
            out[start:start + m] = v
        return out

    def uniform_(self, shape, low: float = 0.0, high: float = 1.0) -> np.ndarray:
        """Exactly torch.empty(shape).uniform_(low, high) (float32)."""
        shape = _shape_tuple(shape)
        n = int(np.prod(shape, dtype=np.int64))
        return self._uniform_flat(n, low, high).reshape(shape)

    # ---------------------------------------------------------------- normal
    def _normal_small(self, n: int, mean: float, std: float) -> np.ndarray:
        """numel < 16: at::normal_distribution<double> with the cached sin sample."""
        out = np.empty(n, dtype=_F32)
        for i in range(n):  # at most 15 elements
            if self._normal_cache is not None:
                z = self._normal_cache
                self._normal_cache = None
            else:
                u1, u2 = (float(v) for v in self._u53(2))
                r = math.sqrt(-2.0 * math.log1p(-u2))
                theta = 2.0 * math.pi * u1
                self._normal_cache = r * math.sin(theta)
                z = r * math.cos(theta)
            if self.capability == "avx2":
                out[i] = _F32(_fma64_exact(z, float(std), float(mean)))
            else:
                out[i] = _F32(z * float(std) + float(mean))
        return out

    def _normal_flat(self, n: int, mean: float, std: float) -> tuple[np.ndarray, bool]:
        if n == 0:
            return np.empty(0, dtype=_F32), True
        if n < 16:
            return self._normal_small(n, mean, std), True
        m32 = _F32(mean)
        s32 = _F32(std)
        bm = _box_muller_avx2 if self.capability == "avx2" else _box_muller_default
        full = n // 16 * 16
        out = np.empty(n, dtype=_F32)
        for start in range(0, full, _CHUNK):
            m = min(_CHUNK, full - start)
            out[start:start + m] = bm(self._u24(m).reshape(-1, 16), m32, s32).reshape(-1)
        if n != full:
            self._raw(n - full)  # the leftover uniforms are drawn, then overwritten
            out[n - 16:] = bm(self._u24(16).reshape(1, 16), m32, s32).reshape(-1)
        return out, self.capability == "avx2"

    def normal_(self, shape, mean: float = 0.0, std: float = 1.0) -> tuple[np.ndarray, bool]:
        """torch.empty(shape).normal_(mean, std) -> (float32 values, exact)."""
        shape = _shape_tuple(shape)
        n = int(np.prod(shape, dtype=np.int64))
        v, exact = self._normal_flat(n, mean, std)
        return v.reshape(shape), exact

    # ---------------------------------------------------------------- trunc_normal_
    def trunc_normal_(self, shape, mean: float = 0.0, std: float = 1.0, a: float = -2.0,
                      b: float = 2.0) -> tuple[np.ndarray, bool]:
        """torch.nn.init.trunc_normal_ (torch 2.13 algorithm) -> (values, exact)."""
        shape = _shape_tuple(shape)
        n = int(np.prod(shape, dtype=np.int64))
        p = _norm_cdf((b - mean) / std) - _norm_cdf((a - mean) / std)
        if p > 0.3:
            lo, hi = _F32(a), _F32(b)
            result, exact = self._normal_flat(n, mean, std)
            while True:
                mask = (result < lo) | (result > hi)
                if not mask.any():
                    break
                fresh, ex = self._normal_flat(n, mean, std)
                exact &= ex
                result = np.where(mask, fresh, result)
            return result.reshape(shape), exact

        mode = max(a, min(mean, b))
        log_peak = -0.5 * ((mode - mean) / std) ** 2
        m32, s32, lp32 = _F32(mean), _F32(std), _F32(log_peak)
        exact = True

        def log_pdf(c: np.ndarray) -> np.ndarray:
            d = (c - m32) / s32
            return (d * d) * _F32(-0.5) - lp32

        def accept_test(cand: np.ndarray) -> tuple[np.ndarray, bool]:
            u = self._uniform_flat(n, 0.0, 1.0)
            with np.errstate(divide="ignore"):
                lg = np.log(u.astype(_F64))
            r = lg.astype(_F32)
            lo_ok = np.nextafter(np.nextafter(r, _F32(-np.inf)), _F32(-np.inf))
            hi_ok = np.nextafter(np.nextafter(r, _F32(np.inf)), _F32(np.inf))
            gt = lg > cand.astype(_F64)
            ambiguous = (u > 0) & (cand >= lo_ok) & (cand < hi_ok)
            return gt, not bool(ambiguous.any())

        result = self._uniform_flat(n, a, b)
        pending, ok = accept_test(log_pdf(result))
        exact &= ok
        while pending.any():
            cand = self._uniform_flat(n, a, b)
            result = np.where(pending, cand, result)
            gt, ok = accept_test(log_pdf(cand))
            exact &= ok
            pending = np.where(pending, gt, pending)
        return result.reshape(shape), exact

    # ---------------------------------------------------------------- torch.nn.init
    def kaiming_uniform_(self, shape, a: float = 0, mode: str = "fan_in",
                         nonlinearity: str = "leaky_relu") -> np.ndarray:
        shape = _shape_tuple(shape)
        if 0 in shape:
            return np.empty(shape, dtype=_F32)
        fan = _correct_fan(shape, mode)
        gain = calculate_gain(nonlinearity, a)
        std = gain / math.sqrt(fan)
        bound = math.sqrt(3.0) * std
        return self.uniform_(shape, -bound, bound)

    def kaiming_normal_(self, shape, a: float = 0, mode: str = "fan_in",
                        nonlinearity: str = "leaky_relu") -> tuple[np.ndarray, bool]:
        shape = _shape_tuple(shape)
        if 0 in shape:
            return np.empty(shape, dtype=_F32), True
        fan = _correct_fan(shape, mode)
        gain = calculate_gain(nonlinearity, a)
        std = gain / math.sqrt(fan)
        return self.normal_(shape, 0, std)

    def xavier_uniform_(self, shape, gain: float = 1.0) -> np.ndarray:
        fan_in, fan_out = torch_fans(shape)
        std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
        a = math.sqrt(3.0) * std
        return self.uniform_(shape, -a, a)

    def xavier_normal_(self, shape, gain: float = 1.0) -> tuple[np.ndarray, bool]:
        fan_in, fan_out = torch_fans(shape)
        std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
        return self.normal_(shape, 0.0, std)

    def orthogonal_(self, shape, gain: float = 1) -> tuple[np.ndarray, bool]:
        """torch.nn.init.orthogonal_; QR in float64 LAPACK, so exact=False."""
        shape = _shape_tuple(shape)
        if len(shape) < 2:
            raise ValueError("Only tensors with 2 or more dimensions are supported")
        n = int(np.prod(shape, dtype=np.int64))
        if n == 0:
            return np.empty(shape, dtype=_F32), True
        rows = shape[0]
        cols = n // rows
        flat, _ = self.normal_((rows, cols), 0, 1)
        if rows < cols:
            flat = flat.T
        q, r = np.linalg.qr(flat.astype(_F64))
        q = q.astype(_F32)
        ph = np.sign(np.diag(r)).astype(_F32)
        q = q * ph
        if rows < cols:
            q = q.T
        out = np.ascontiguousarray(q).reshape(shape) * _F32(gain)
        return out.astype(_F32), False

    def sparse_(self, shape, sparsity: float, std: float = 0.01) -> tuple[np.ndarray, bool]:
        """torch.nn.init.sparse_: normal_ then a torch.randperm per column."""
        shape = _shape_tuple(shape)
        if len(shape) != 2:
            raise ValueError("Only tensors with 2 dimensions are supported")
        rows, cols = shape
        num_zeros = math.ceil(sparsity * rows)
        values, exact = self.normal_(shape, 0, std)
        values = values.copy()
        if rows >= (2**32 - 1) // 20:
            raise ValueError("sparse_ replay supports fewer than 214748364 rows (torch's small-n randperm)")
        if cols == 0 or num_zeros <= 0:
            if rows > 1:
                self.discard(cols * (rows - 1))
            return values, exact
        steps = rows - 1
        if steps > 0:
            draws = self._raw(cols * steps).reshape(cols, steps)
        perm = np.tile(np.arange(rows, dtype=np.int64), (cols, 1))
        col_idx = np.arange(cols)
        for i in range(min(num_zeros, steps)):  # vectorised over columns
            z = (draws[:, i] % np.uint64(rows - i)).astype(np.int64) + i
            a = perm[:, i].copy()
            perm[:, i] = perm[col_idx, z]
            perm[col_idx, z] = a
        zero_rows = perm[:, :num_zeros]  # (cols, num_zeros)
        values[zero_rows, col_idx[:, None]] = 0
        return values, exact

    # no-draw initialisations (kept here so every torch.nn.init name is available)
    @staticmethod
    def constant_(shape, val: float) -> np.ndarray:
        return np.full(_shape_tuple(shape), _F32(val), dtype=_F32)

    @staticmethod
    def zeros_(shape) -> np.ndarray:
        return np.zeros(_shape_tuple(shape), dtype=_F32)

    @staticmethod
    def ones_(shape) -> np.ndarray:
        return np.ones(_shape_tuple(shape), dtype=_F32)

    @staticmethod
    def eye_(shape) -> np.ndarray:
        shape = _shape_tuple(shape)
        if len(shape) != 2:
            raise ValueError("Only tensors with 2 dimensions are supported")
        return np.eye(shape[0], shape[1], dtype=_F32)

    @staticmethod
    def dirac_(shape, groups: int = 1) -> np.ndarray:
        shape = _shape_tuple(shape)
        if len(shape) not in (3, 4, 5):
            raise ValueError("Only tensors with 3, 4, or 5 dimensions are supported")
        if shape[0] % groups != 0:
            raise ValueError("dim 0 must be divisible by groups")
        out = np.zeros(shape, dtype=_F32)
        per = shape[0] // groups
        min_dim = min(per, shape[1])
        centre = tuple(s // 2 for s in shape[2:])
        for g in range(groups):
            d = np.arange(min_dim)
            out[(g * per + d, d) + centre] = 1
        return out


# --------------------------------------------------------------------------- modules

Param = tuple[str, np.ndarray, bool]


def _ntuple(v, n: int) -> tuple[int, ...]:
    if isinstance(v, Iterable):
        t = tuple(int(x) for x in v)
        if len(t) != n:
            raise ValueError(f"kernel_size needs {n} values")
        return t
    return (int(v),) * n


def _linear_like(gen: TorchCPUGenerator, weight_shape, bias_size: int | None, prefix: str = "") -> list[Param]:
    w = gen.kaiming_uniform_(weight_shape, a=math.sqrt(5))
    out = [(prefix + "weight", w, True)]
    if bias_size is not None:
        fan_in, _ = torch_fans(weight_shape)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        out.append((prefix + "bias", gen.uniform_((bias_size,), -bound, bound), True))
    return out


def _dense(gen, in_features, out_features, bias=True) -> list[Param]:
    return _linear_like(gen, (int(out_features), int(in_features)), int(out_features) if bias else None)


def _conv(nd: int, transposed: bool):
    def build(gen, in_channels, out_channels, kernel_size, groups=1, bias=True) -> list[Param]:
        in_channels, out_channels, groups = int(in_channels), int(out_channels), int(groups)
        if groups <= 0:
            raise ValueError("groups must be a positive integer")
        if in_channels % groups or out_channels % groups:
            raise ValueError("in_channels and out_channels must be divisible by groups")
        k = _ntuple(kernel_size, nd)
        if transposed:
            shape = (in_channels, out_channels // groups, *k)
        else:
            shape = (out_channels, in_channels // groups, *k)
        return _linear_like(gen, shape, out_channels if bias else None)

    return build


def _embedding(gen, num_embeddings, embedding_dim, padding_idx=None) -> list[Param]:
    w, exact = gen.normal_((int(num_embeddings), int(embedding_dim)), 0.0, 1.0)
    if padding_idx is not None:
        w = w.copy()
        w[int(padding_idx)] = 0
    return [("weight", w, exact)]


def _rnn(mode: str):
    gates = {"lstm": 4, "gru": 3, "rnn": 1}[mode]

    def build(gen, input_size, hidden_size, bias=True, num_layers=1, bidirectional=False,
              proj_size=0) -> list[Param]:
        input_size, hidden_size, num_layers = int(input_size), int(hidden_size), int(num_layers)
        proj_size = int(proj_size)
        if proj_size and mode != "lstm":
            raise ValueError("proj_size is only supported by lstm")
        gate = gates * hidden_size
        real_hidden = proj_size if proj_size > 0 else hidden_size
        dirs = 2 if bidirectional else 1
        stdv = 1.0 / math.sqrt(hidden_size) if hidden_size > 0 else 0
        out: list[Param] = []
        for layer in range(num_layers):
            for direction in range(dirs):
                layer_in = input_size if layer == 0 else real_hidden * dirs
                sfx = f"_l{layer}" + ("_reverse" if direction == 1 else "")
                specs = [("weight_ih" + sfx, (gate, layer_in)), ("weight_hh" + sfx, (gate, real_hidden))]
                if bias:
                    specs += [("bias_ih" + sfx, (gate,)), ("bias_hh" + sfx, (gate,))]
                if proj_size > 0:
                    specs.append(("weight_hr" + sfx, (proj_size, hidden_size)))
                for name, shape in specs:
                    out.append((name, gen.uniform_(shape, -stdv, stdv), True))
        return out

    return build


def _batchnorm(gen, num_features, affine=True) -> list[Param]:
    if not affine:
        return []
    n = int(num_features)
    return [("weight", np.ones(n, _F32), True), ("bias", np.zeros(n, _F32), True)]


def _layernorm(gen, normalized_shape, elementwise_affine=True, bias=True) -> list[Param]:
    shape = _shape_tuple(normalized_shape)
    if not elementwise_affine:
        return []
    out = [("weight", np.ones(shape, _F32), True)]
    if bias:
        out.append(("bias", np.zeros(shape, _F32), True))
    return out


def _attention(gen, embed_dim, num_heads, bias=True, add_bias_kv=False, kdim=None, vdim=None) -> list[Param]:
    e, h = int(embed_dim), int(num_heads)
    if e <= 0 or h <= 0:
        raise ValueError("embed_dim and num_heads must be greater than 0")
    if (e // h) * h != e:
        raise ValueError("embed_dim must be divisible by num_heads")
    kdim = e if kdim is None else int(kdim)
    vdim = e if vdim is None else int(vdim)
    same = kdim == e and vdim == e
    # __init__: out_proj = Linear(e, e, bias) is constructed (and draws) first
    out_proj = _linear_like(gen, (e, e), e if bias else None, prefix="out_proj.")
    own: list[Param] = []
    # _reset_parameters
    if same:
        own.append(("in_proj_weight", gen.xavier_uniform_((3 * e, e)), True))
    else:
        own.append(("q_proj_weight", gen.xavier_uniform_((e, e)), True))
        own.append(("k_proj_weight", gen.xavier_uniform_((e, kdim)), True))
        own.append(("v_proj_weight", gen.xavier_uniform_((e, vdim)), True))
    if bias:
        own.append(("in_proj_bias", np.zeros(3 * e, _F32), True))
        out_proj[1] = ("out_proj.bias", np.zeros(e, _F32), True)
    if add_bias_kv:
        bk, ek = gen.xavier_normal_((1, 1, e))
        bv, ev = gen.xavier_normal_((1, 1, e))
        own += [("bias_k", bk, ek), ("bias_v", bv, ev)]
    return own + out_proj


_BUILDERS = {
    "dense": _dense,
    "conv1d": _conv(1, False), "conv2d": _conv(2, False), "conv3d": _conv(3, False),
    "conv_transpose1d": _conv(1, True), "conv_transpose2d": _conv(2, True), "conv_transpose3d": _conv(3, True),
    "embedding": _embedding,
    "rnn": _rnn("rnn"), "lstm": _rnn("lstm"), "gru": _rnn("gru"),
    "batchnorm": _batchnorm,
    "layernorm": _layernorm,
    "attention": _attention,
}
MODULE_KINDS = tuple(_BUILDERS)


def construct_module(gen: TorchCPUGenerator, kind: str, **kwargs) -> list[Param]:
    """Replay a torch.nn module constructor on ``gen``'s stream.

    Returns ``(name, float32 array in PyTorch's shape, exact)`` in
    ``named_parameters()`` order with PyTorch's names.  Kinds and arguments:
    dense(in_features, out_features, bias=True) = nn.Linear;
    conv{1,2,3}d / conv_transpose{1,2,3}d(in_channels, out_channels, kernel_size, groups=1, bias=True);
    embedding(num_embeddings, embedding_dim, padding_idx=None);
    rnn/lstm/gru(input_size, hidden_size, bias=True, num_layers=1, bidirectional=False[, proj_size=0]);
    batchnorm(num_features, affine=True) (BatchNorm1d/2d/3d alike);
    layernorm(normalized_shape, elementwise_affine=True, bias=True);
    attention(embed_dim, num_heads, bias=True, add_bias_kv=False, kdim=None, vdim=None) = nn.MultiheadAttention.
    """
    try:
        builder = _BUILDERS[kind]
    except KeyError:
        raise ValueError(f"unknown module kind {kind!r}; expected one of {MODULE_KINDS}") from None
    return builder(gen, **kwargs)
