"""Concrete distributions a tensor is drawn from: their theory and their block samplers.

Each distribution knows its exact moments (after any truncation), its support, and how to
fill one block of a tensor from that block's own ``numpy.random.Generator``. Block samplers
draw directly in the compute dtype (float32, or float64 for float64 tensors) into a caller's
buffer, so generation never allocates per block and never draws float64 to cast it down.

Whole-matrix distributions (orthogonal, identity, dirac, sparse) cannot be drawn block by
block; they produce the whole tensor at once and are limited in size (see ``WHOLE_MAX_ELEMENTS``).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field

import numpy as np

from . import normals
from .errors import SpecError

#: The std of a standard normal truncated to [-2, 2]; Keras/JAX divide by it so that the
#: truncated draw has the target variance.
TRUNCATION_STD_CORRECTION = 0.87962566103423978

#: Whole-matrix schemes (QR, permutations) must hold the tensor and a float64 copy in memory.
WHOLE_MAX_ELEMENTS = 1 << 24

# Below this kept probability mass, rejection sampling gets slow, so the inverse CDF is used.
_REJECTION_MIN_MASS = 0.25


def _phi(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


@dataclass
class Distribution:
    """Base: a name, its parameters as reported, support bounds, exact mean and variance."""

    name: str = field(init=False, default="")
    blockwise: bool = field(init=False, default=True)

    def parameters(self) -> dict:
        raise NotImplementedError

    def bounds(self) -> list[float] | None:
        return None

    def mean(self) -> float:
        raise NotImplementedError

    def variance(self) -> float:
        raise NotImplementedError

    def fill(self, rng: np.random.Generator, out: np.ndarray) -> None:
        """Fill ``out`` (a 1-D float32/float64 buffer) with independent draws."""
        raise NotImplementedError

    def cdf(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - overridden where continuous
        raise NotImplementedError


@dataclass
class Uniform(Distribution):
    low: float
    high: float

    def __post_init__(self):
        self.name = "uniform"
        if not (self.low < self.high):
            raise SpecError("low", f"low ({self.low}) must be < high ({self.high})")

    def parameters(self):
        return {"low": self.low, "high": self.high}

    def bounds(self):
        return [self.low, self.high]

    def mean(self):
        return 0.5 * (self.low + self.high)

    def variance(self):
        return (self.high - self.low) ** 2 / 12.0

    def fill(self, rng, out):
        t = out.dtype.type
        if not _uniform_from_raw(rng, out, t(self.high - self.low)):
            rng.random(out=out, dtype=out.dtype)
            out *= t(self.high - self.low)
        out += t(self.low)
        # Rounding of the affine map can step a hair past a bound; the support is closed.
        np.clip(out, t(self.low), t(self.high), out=out)

    def cdf(self, x):
        return np.clip((x - self.low) / (self.high - self.low), 0.0, 1.0)


#: (bits kept per draw, 2**-bits) of NumPy's uniform floats: float32 from 32-bit words, float64 from 64-bit.
_UNIFORM_BITS = {np.dtype(np.float32): (24, 32), np.dtype(np.float64): (53, 64)}


def _uniform_from_raw(rng: np.random.Generator, out: np.ndarray, width) -> bool:
    """``out = rng.random(dtype=out.dtype) * width``, bit for bit, ~25% faster; False when not applicable.

    NumPy draws a float32 as ``(next_uint32() >> 8) * 2**-24`` (a PCG64 64-bit draw gives two 32-bit
    words, low half first) and a float64 as ``(next_uint64() >> 11) * 2**-53``, one C call per value.
    Here the words come in one ``random_raw`` call and the shift, the exact integer-to-float
    conversion and the scaling run as whole-array operations; ``k * (width * 2**-bits)`` equals
    ``(k * 2**-bits) * width`` after rounding because scaling by a power of two is exact (the
    check on ``width`` keeps every intermediate a normal number). The generator is left in the
    state NumPy's loop leaves it in."""
    bits = _UNIFORM_BITS.get(out.dtype)
    if (bits is None or sys.byteorder != "little" or type(rng.bit_generator) is not np.random.PCG64
            or out.ndim != 1 or not out.flags.c_contiguous or not width >= 2.0 ** -60
            or rng.bit_generator.state["has_uint32"]):
        return False
    keep, word = bits
    n = out.size
    bg = rng.bit_generator
    if word == 32:
        raw = bg.random_raw((n + 1) // 2)
        # NumPy keeps the high half of the last draw: buffered for the next call if unused (odd n),
        # else as a stale value; mirrored so that the state is exactly NumPy's.
        st = bg.state
        st["has_uint32"], st["uinteger"] = n % 2, int(raw[-1] >> np.uint64(32))
        bg.state = st
        words = raw.view(np.uint32)[:n]
        np.right_shift(words, 32 - keep, out=words)
    else:
        words = bg.random_raw(n)
        np.right_shift(words, 64 - keep, out=words)
    np.copyto(out, words, casting="unsafe")
    out *= out.dtype.type(width) * out.dtype.type(2.0 ** -keep)
    return True


@dataclass
class Normal(Distribution):
    mean_: float
    std: float

    def __post_init__(self):
        self.name = "normal"
        if not (self.std > 0):
            raise SpecError("std", f"std must be > 0, got {self.std}")

    def parameters(self):
        return {"mean": self.mean_, "std": self.std}

    def mean(self):
        return self.mean_

    def variance(self):
        return self.std ** 2

    def fill(self, rng, out):
        t = out.dtype.type
        normals.fill(rng, out)  # vectorized ziggurat, same bytes on every CPU (see normals.py)
        out *= t(self.std)
        if self.mean_:
            out += t(self.mean_)

    def cdf(self, x):
        from scipy.special import ndtr  # tests only

        return ndtr((x - self.mean_) / self.std)


@dataclass
class TruncatedNormal(Distribution):
    """N(mean, std^2) conditioned on [low, high] (absolute bounds, PyTorch's semantics)."""

    mean_: float
    std: float
    low: float
    high: float

    def __post_init__(self):
        self.name = "truncated_normal"
        if not (self.std > 0):
            raise SpecError("std", f"std must be > 0, got {self.std}")
        if not (self.low < self.high):
            raise SpecError("low", f"low ({self.low}) must be < high ({self.high})")
        self._a = (self.low - self.mean_) / self.std
        self._b = (self.high - self.mean_) / self.std
        self._mass = _cdf(self._b) - _cdf(self._a)
        if self._mass < 1e-12:
            raise SpecError("low", f"[low, high] = [{self.low}, {self.high}] holds almost no mass of N({self.mean_}, {self.std}^2)")

    def parameters(self):
        return {"mean": self.mean_, "std": self.std, "low": self.low, "high": self.high}

    def bounds(self):
        return [self.low, self.high]

    def mean(self):
        a, b, z = self._a, self._b, self._mass
        return self.mean_ + self.std * (_phi(a) - _phi(b)) / z

    def variance(self):
        a, b, z = self._a, self._b, self._mass
        pa, pb = _phi(a), _phi(b)
        fa = a * pa if math.isfinite(a) else 0.0
        fb = b * pb if math.isfinite(b) else 0.0
        return self.std ** 2 * (1.0 + (fa - fb) / z - ((pa - pb) / z) ** 2)

    def fill(self, rng, out):
        t = out.dtype.type
        a, b = self._a, self._b
        if self._mass >= _REJECTION_MIN_MASS:
            # Rejection: redraw the out-of-range values from the same block stream until none is
            # left. Deterministic, exact, and ~1.05 draws per value for +-2 sigma.
            normals.fill(rng, out)
            bad = np.flatnonzero((out < a) | (out > b))
            while bad.size:
                redraw = normals.draw(rng, bad.size, out.dtype)
                out[bad] = redraw
                bad = bad[(redraw < a) | (redraw > b)]
        else:
            # Far tails: inverse-CDF sampling in float64 (ndtri), the way PyTorch's trunc_normal_ does.
            from scipy.special import ndtr, ndtri

            lo, hi = ndtr(a), ndtr(b)
            u = rng.random(out.size)
            out[...] = ndtri(lo + u * (hi - lo))
        out *= t(self.std)
        out += t(self.mean_)
        np.clip(out, t(self.low), t(self.high), out=out)

    def cdf(self, x):
        from scipy.special import ndtr

        z = (np.asarray(x, dtype=np.float64) - self.mean_) / self.std
        return np.clip((ndtr(z) - _cdf(self._a)) / self._mass, 0.0, 1.0)


@dataclass
class Constant(Distribution):
    value: float

    def __post_init__(self):
        self.name = "constant"

    def parameters(self):
        return {"value": self.value}

    def bounds(self):
        return [self.value, self.value]

    def mean(self):
        return self.value

    def variance(self):
        return 0.0

    def fill(self, rng, out):
        out.fill(self.value)


@dataclass(frozen=True)
class MatrixWork:
    """What drawing one whole-matrix tensor costs: floating-point operations (a QR's, a sort's
    comparisons, one per element otherwise) and the bytes held at once while it is drawn."""

    flops: int
    bytes: int


class WholeMatrix(Distribution):
    """A distribution over the whole tensor (not i.i.d. entries): drawn at once, size-limited.

    ``draw(shape, normals)`` gets ``normals``, a callable returning the tensor-sized block-seeded
    float64 standard normals (so these schemes reuse the same per-block streams), and
    ``extra_rng``, a generator from a stream of its own for permutations.

    ``work(torch_shape, itemsize)`` is what the draw costs, known before anything is drawn, so that
    requests can be held to a budget (HTTP 413) before they start. The default covers the cheap
    constructions (identity, dirac, forget-gate bias): one operation per element, and the float64
    matrix, its transposed copy and the stored tensor in memory.
    """

    blockwise = False

    def draw(self, shape, normals, extra_rng) -> np.ndarray:
        raise NotImplementedError

    def work(self, torch_shape, itemsize: int) -> MatrixWork:
        n = math.prod(torch_shape)
        return MatrixWork(n, n * (2 * 8 + itemsize))


def _matrix_dims(shape) -> tuple[int, int]:
    rows = int(shape[0])
    cols = int(np.prod(shape[1:], dtype=np.int64)) if len(shape) > 1 else 1
    return rows, cols


def qr_work(torch_shape, itemsize: int) -> MatrixWork:
    """An orthogonal tensor's cost: Householder QR of the m x n Gaussian (m >= n), 2mn^2 - 2n^3/3
    flops to factor (LAPACK geqrf) and as many to form the thin Q (orgqr); in memory the Gaussian,
    Q and R in float64, the float64 result's transposed copy and the stored tensor."""
    rows, cols = _matrix_dims(torch_shape)
    m, n = max(rows, cols), min(rows, cols)
    return MatrixWork(2 * (2 * m * n * n - (2 * n ** 3) // 3), 8 * (3 * m * n + n * n) + itemsize * m * n)


@dataclass
class Orthogonal(WholeMatrix):
    """Saxe et al. 2013: a (semi-)orthogonal matrix times ``gain``, drawn as the Q of the QR of
    a Gaussian matrix with the signs of R's diagonal folded in (so Q is Haar-distributed).
    Computed on the PyTorch view (rows = shape[0], cols = the rest)."""

    gain: float
    shape: tuple

    def __post_init__(self):
        self.name = "orthogonal"
        self.blockwise = False
        if len(self.shape) < 2:
            raise SpecError("scheme", f"orthogonal needs a tensor of rank >= 2, got shape {list(self.shape)}")

    def parameters(self):
        return {"gain": self.gain}

    def bounds(self):
        return [-abs(self.gain), abs(self.gain)]

    def mean(self):
        return 0.0

    def variance(self):
        rows, cols = _matrix_dims(self.shape)
        # Q^T Q = I on the smaller side: min(r, c) unit vectors, so sum of squares = min * gain^2.
        return self.gain ** 2 * min(rows, cols) / (rows * cols)

    def work(self, torch_shape, itemsize: int) -> MatrixWork:
        return qr_work(torch_shape, itemsize)

    def draw(self, shape, normals, extra_rng):
        rows, cols = _matrix_dims(shape)
        flat = normals().reshape(max(rows, cols), min(rows, cols))
        q, r = np.linalg.qr(flat)
        d = np.sign(np.diag(r))
        d[d == 0] = 1.0
        q *= d
        if rows < cols:
            q = q.T
        return (q * self.gain).reshape(shape)


@dataclass
class Identity(WholeMatrix):
    """The identity matrix times ``gain`` (non-square allowed: ones on the main diagonal)."""

    gain: float
    shape: tuple

    def __post_init__(self):
        self.name = "identity"
        self.blockwise = False
        if len(self.shape) != 2:
            raise SpecError("scheme", f"identity needs a 2-D tensor, got shape {list(self.shape)}")

    def parameters(self):
        return {"gain": self.gain}

    def bounds(self):
        return [min(0.0, self.gain), max(0.0, self.gain)]

    def _k(self):
        return min(self.shape)

    def mean(self):
        return self.gain * self._k() / (self.shape[0] * self.shape[1])

    def variance(self):
        n = self.shape[0] * self.shape[1]
        m = self.mean()
        return self.gain ** 2 * self._k() / n - m * m

    def draw(self, shape, normals, extra_rng):
        return np.eye(shape[0], shape[1]) * self.gain


@dataclass
class Dirac(WholeMatrix):
    """PyTorch's ``dirac_``: a convolution that passes each input channel through unchanged
    (a 1 at the kernel's centre ``k // 2``), per group. On the PyTorch view (out, in/groups, *k)."""

    groups: int
    shape: tuple

    def __post_init__(self):
        self.name = "dirac"
        self.blockwise = False
        if not 3 <= len(self.shape) <= 5:
            raise SpecError("scheme", f"dirac needs a conv weight of rank 3 to 5, got shape {list(self.shape)}")
        if self.shape[0] % self.groups:
            raise SpecError("scheme.groups", f"groups ({self.groups}) must divide dim 0 ({self.shape[0]})")

    def parameters(self):
        return {"groups": self.groups}

    def bounds(self):
        return [0.0, 1.0]

    def _ones(self):
        per_group = self.shape[0] // self.groups
        return self.groups * min(per_group, self.shape[1])

    def mean(self):
        return self._ones() / float(np.prod(self.shape))

    def variance(self):
        m = self.mean()
        return m - m * m

    def draw(self, shape, normals, extra_rng):
        out = np.zeros(shape)
        per_group = shape[0] // self.groups
        centre = tuple(k // 2 for k in shape[2:])
        for g in range(self.groups):
            for d in range(min(per_group, shape[1])):
                out[(g * per_group + d, d) + centre] = 1.0
        return out


@dataclass
class Sparse(WholeMatrix):
    """Martens 2010 as PyTorch's ``sparse_``: N(0, std^2) entries, then in every column
    ``ceil(sparsity * rows)`` entries set to zero. On the PyTorch view (rows, cols), 2-D only."""

    sparsity: float
    std: float
    shape: tuple

    def __post_init__(self):
        self.name = "sparse"
        self.blockwise = False
        if len(self.shape) != 2:
            raise SpecError("scheme", f"sparse needs a 2-D tensor, got shape {list(self.shape)}")
        if not (0.0 <= self.sparsity < 1.0):
            raise SpecError("scheme.sparsity", f"sparsity must be in [0, 1), got {self.sparsity}")
        if not (self.std > 0):
            raise SpecError("scheme.std", f"std must be > 0, got {self.std}")

    def _zeros(self):
        return math.ceil(self.sparsity * self.shape[0])

    def parameters(self):
        return {"sparsity": self.sparsity, "std": self.std, "zeros_per_column": self._zeros()}

    def mean(self):
        return 0.0

    def variance(self):
        return self.std ** 2 * (1.0 - self._zeros() / self.shape[0])

    def work(self, torch_shape, itemsize: int) -> MatrixWork:
        """A stable argsort of every column (about log2(rows) comparisons per element); in memory the
        float64 normals and uniforms, the int64 order, the result and the stored tensor."""
        rows, cols = torch_shape
        n = rows * cols
        return MatrixWork(n * max(1, math.ceil(math.log2(rows))), n * (4 * 8 + itemsize))

    def draw(self, shape, normals, extra_rng):
        rows, cols = shape
        out = normals().reshape(rows, cols) * self.std
        k = self._zeros()
        if k:
            order = np.argsort(extra_rng.random((rows, cols)), axis=0, kind="stable")[:k]
            out[order, np.arange(cols)[None, :]] = 0.0
        return out


@dataclass
class ForgetGateBias(WholeMatrix):
    """Keras's ``unit_forget_bias``: an LSTM bias of four gate blocks (i, f, g, o), 1 on the
    forget gate and 0 elsewhere (Jozefowicz et al. 2015)."""

    gates: int
    size: int

    def __post_init__(self):
        self.name = "lstm_forget_bias"
        self.blockwise = False

    def parameters(self):
        return {"forget_gate": 1.0, "other_gates": 0.0}

    def bounds(self):
        return [0.0, 1.0]

    def mean(self):
        return 1.0 / self.gates

    def variance(self):
        m = self.mean()
        return m - m * m

    def draw(self, shape, normals, extra_rng):
        out = np.zeros(shape)
        h = self.size // self.gates
        out[h:2 * h] = 1.0
        return out
