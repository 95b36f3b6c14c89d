"""Two whole-matrix constructions for deep nets without a random variance to tune: ZerO's identity and
Hadamard matrices and Xiao et al.'s delta-orthogonal convolution kernels.

Both work on the PyTorch view (rows = out = shape[0], cols = in = shape[1], then the kernel), like
``distributions.Orthogonal`` and ``Dirac``; the engine transposes to the request's layout, so a Keras
(HWIO) kernel holds the same matrix at the same centre. Both are ``WholeMatrix`` distributions: they go
through the same element, flop and byte limits as orthogonal and identity (``work``), and the matrix
cache serves every Range part from one draw.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from .distributions import MatrixWork, WholeMatrix, qr_work
from .errors import SpecError


def zero_magnitude(rows: int, cols: int) -> float:
    """The value of ZerO's non-zero entries: 1, or Algorithm 1's c = 2^(-(m-1)/2), m = ceil(log2 P), when
    P = rows > Q = cols. As a power of two times sqrt(1/2) (IEEE-exact), not through pow()."""
    if rows <= cols:
        return 1.0
    k = (rows - 1).bit_length() - 1  # m - 1, with m = ceil(log2 P) computed on integers
    return math.ldexp(math.sqrt(0.5) if k % 2 else 1.0, -(k // 2))


def zero_matrix(rows: int, cols: int) -> np.ndarray:
    """ZerO's Algorithm 1 (Zhao, Schäfer & Anandkumar 2022) for one (P = rows, Q = cols) matrix::

        P == Q:  W = I                                       identity mapping
        P <  Q:  W = I*  (P x Q)                              propagate the first P dimensions
        P >  Q:  m = ceil(log2 P), c = 2^(-(m-1)/2)
                 W = c I*(P x 2^m) H_m I*(2^m x Q)            apply a Hadamard matrix

    ``I*`` is the partial identity (ones on the main diagonal), ``H_m`` Sylvester's Hadamard matrix
    (H_0 = 1, H_m = [[H, H], [H, -H]]), whose entry (i, j) is (-1)^popcount(i & j); the two partial
    identities keep its first P rows and Q columns, so the entries are computed directly and the
    2^m x 2^m matrix (up to 4 P^2 entries) is never built."""
    if rows <= cols:
        return np.eye(rows, cols)
    i = np.arange(rows, dtype=np.int32)[:, None]
    j = np.arange(cols, dtype=np.int32)[None, :]
    return zero_magnitude(rows, cols) * (1.0 - 2.0 * (np.bitwise_count(i & j) & 1))


def _centre(shape) -> tuple:
    """The kernel's centre, JAX's (k - 1) // 2 (PyTorch's dirac_ uses k // 2: they differ for even k)."""
    return tuple((k - 1) // 2 for k in shape[2:])


def at_centre(shape, matrix: np.ndarray) -> np.ndarray:
    """A tensor of ``shape`` (PyTorch's view) holding the (shape[0], shape[1]) ``matrix`` at the kernel's
    centre and zeros elsewhere (a 2-D shape: the matrix itself)."""
    out = np.zeros(shape, dtype=matrix.dtype)
    out[(slice(None), slice(None)) + _centre(shape)] = matrix
    return out


@dataclass
class ZerO(WholeMatrix):
    """ZerO (Zhao et al. 2022, Algorithm 1) on a dense weight (PyTorch's (out, in) view: the paper's
    W in R^(P x Q) maps Q inputs to P outputs). On a convolution, Algorithm 1's (out, in/groups) matrix
    at the kernel's centre and zeros elsewhere, per group (each group is a convolution of its own): the
    kernel then acts on the channels as the matrix does, the way ``dirac_`` extends the identity.
    Deterministic: the seed changes nothing."""

    groups: int
    shape: tuple

    def __post_init__(self):
        self.name = "zero_matrix"
        self.blockwise = False
        if len(self.shape) < 2:
            raise SpecError("scheme", f"zero_matrix needs a matrix or a convolution kernel, got shape {list(self.shape)}")
        if self.shape[0] % self.groups:
            raise SpecError("scheme", f"groups ({self.groups}) must divide dim 0 ({self.shape[0]})")

    def _block(self) -> tuple[int, int]:
        return self.shape[0] // self.groups, self.shape[1]

    def _magnitude(self) -> float:
        return zero_magnitude(*self._block())

    def parameters(self):
        """The non-zero entries' magnitude and the Hadamard order m (0: an identity or partial identity)."""
        rows, cols = self._block()
        return {"magnitude": self._magnitude(), "hadamard_m": (rows - 1).bit_length() if rows > cols else 0}

    def bounds(self):
        rows, cols = self._block()
        c = self._magnitude()
        return [0.0, 1.0] if rows <= cols else [-c, c]

    def _sums(self) -> tuple[float, float]:
        """(sum of the entries, sum of their squares) over the whole tensor, exactly."""
        rows, cols = self._block()
        if rows <= cols:
            return float(self.groups * rows), float(self.groups * rows)
        c = self._magnitude()
        return self.groups * c * hadamard_sum(rows, cols), self.groups * rows * cols * c * c

    def mean(self):
        return self._sums()[0] / math.prod(self.shape)

    def variance(self):
        s, s2 = self._sums()
        n = math.prod(self.shape)
        m = s / n
        return s2 / n - m * m

    def work(self, torch_shape, itemsize: int) -> MatrixWork:
        """Three operations per element of the centre slice (and, popcount, scale), one per element to
        zero the rest; in memory the int32 indices, the float64 slice, the float64 tensor, its transposed
        copy and the stored tensor."""
        n = math.prod(torch_shape)
        rows, cols = torch_shape[0], torch_shape[1]
        return MatrixWork(3 * rows * cols + n, 12 * rows * cols + n * (2 * 8 + itemsize))

    def draw(self, shape, normals, extra_rng):
        rows, cols = self._block()
        return at_centre(shape, np.tile(zero_matrix(rows, cols), (self.groups, 1)))


@functools.lru_cache(maxsize=256)
def hadamard_sum(rows: int, cols: int) -> int:
    """The sum of Sylvester's Hadamard entries (-1)^popcount(i & j) over i < rows, j < cols, without
    building them. With h the largest power of two below max(rows, cols), H = [[A, A], [A, -A]] splits
    the rectangle into four; a rectangle spanning all h rows (or columns) of a block sums to h (only
    row (column) 0 of H_k does not cancel), so at most one quarter recurses at each level."""
    if rows == 0 or cols == 0:
        return 0
    if rows == 1 or cols == 1:
        return max(rows, cols)
    h = 1 << (max(rows, cols) - 1).bit_length() - 1
    top, left = min(rows, h), min(cols, h)
    total = hadamard_sum(top, left)
    if cols > h:
        total += hadamard_sum(top, cols - h)
    if rows > h:
        total += hadamard_sum(rows - h, left)
        if cols > h:
            total -= hadamard_sum(rows - h, cols - h)
    return total


@dataclass
class DeltaOrthogonal(WholeMatrix):
    """Xiao et al. 2018's delta-orthogonal kernel, as JAX's ``delta_orthogonal``: a (semi-)orthogonal
    (out, in) matrix times ``gain`` at the kernel's spatial centre ((k - 1) // 2), zeros elsewhere;
    in <= out (each input channel maps to an orthonormal direction). The matrix is drawn like
    ``orthogonal``'s: the Q of the QR of a Gaussian, signs of R's diagonal folded in."""

    gain: float
    shape: tuple

    def __post_init__(self):
        self.name = "delta_orthogonal"
        self.blockwise = False
        if not 3 <= len(self.shape) <= 5:
            raise SpecError("scheme", f"delta_orthogonal needs a convolution kernel of rank 3 to 5 (JAX's rule), "
                                      f"got shape {list(self.shape)}")
        if self.shape[1] > self.shape[0]:
            raise SpecError("scheme", f"delta_orthogonal needs in_channels <= out_channels (JAX's `fan_in` <= "
                                      f"`fan_out`), got {self.shape[1]} > {self.shape[0]}")

    def parameters(self):
        return {"gain": self.gain}

    def bounds(self):
        return [-abs(self.gain), abs(self.gain)]

    def mean(self):
        return 0.0

    def variance(self):
        # The centre slice's in columns are unit vectors times gain: the squares sum to in * gain^2.
        return self.gain ** 2 * self.shape[1] / math.prod(self.shape)

    def work(self, torch_shape, itemsize: int) -> MatrixWork:
        """The QR of the (out, in) centre matrix (``qr_work``), and the whole tensor's float64 normals
        (the block streams it takes the matrix's from), float64 values and transposed copy, stored."""
        n = math.prod(torch_shape)
        qr = qr_work(torch_shape[:2], itemsize)
        return MatrixWork(qr.flops + n, qr.bytes + n * (3 * 8 + itemsize))

    def draw(self, shape, normals, extra_rng):
        rows, cols = shape[0], shape[1]
        q, r = np.linalg.qr(normals()[:rows * cols].reshape(rows, cols))
        d = np.sign(np.diag(r))
        d[d == 0] = 1.0
        return at_centre(shape, q * d * self.gain)
