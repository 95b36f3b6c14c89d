"""PyTorch's default CPU generator, replayed: ``torch.manual_seed(seed)`` and the float32 draws of
``uniform_``, ``normal_`` and ``trunc_normal_`` on its mt19937 stream, bit for bit (docs/torch-replay.md).

The generator is stateful and sequential: calls consume the stream in order, exactly like
consecutive torch calls on the default CPU generator. ``torch.nn.init``'s functions are in
``init.py``, ``torch.nn``'s module constructors in ``modules.py``.
"""

from __future__ import annotations

import math

import numpy as np

from .kernels import box_muller_avx2, box_muller_default, fma32, fma64_exact

_F32 = np.float32
_F64 = np.float64
_CHUNK = 1 << 21  # values per chunk (multiple of 16)
_TWO_M24 = 2.0**-24
_TWO_M53 = 2.0**-53
_MASK53 = np.uint64((1 << 53) - 1)

#: DEFAULT-capability normal_ (numel >= 16): |ours - torch| <= this many ulps of max(|value|, std)
#: (measured worst 4.0 over 12 million values; 2x margin)
DEFAULT_NORMAL_ULP_BOUND = 8
CAPABILITIES = ("avx2", "default")


def shape_tuple(shape) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    return tuple(int(s) for s in shape)


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
                v = fma32(x, rng, f)
            else:
                v = (x * rng) + f
            v[v == t] = f  # torch: value == to ? from : value
            out[start:start + m] = v
        return out

    def uniform_(self, shape, low: float = 0.0, high: float = 1.0) -> np.ndarray:
        """Exactly torch.empty(shape).uniform_(low, high) (float32)."""
        shape = shape_tuple(shape)
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
                out[i] = _F32(fma64_exact(z, float(std), float(mean)))
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
        bm = box_muller_avx2 if self.capability == "avx2" else box_muller_default
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
        shape = shape_tuple(shape)
        n = int(np.prod(shape, dtype=np.int64))
        v, exact = self._normal_flat(n, mean, std)
        return v.reshape(shape), exact

    # ---------------------------------------------------------------- trunc_normal_
    def trunc_normal_(self, shape, mean: float = 0.0, std: float = 1.0, a: float = -2.0,
                      b: float = 2.0) -> tuple[np.ndarray, bool]:
        """torch.nn.init.trunc_normal_ (torch 2.13 algorithm) -> (values, exact)."""
        shape = shape_tuple(shape)
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
