"""``torch.nn.init``'s functions on the replayed generator: the same bound or std computed in Python
doubles exactly as ``torch/nn/init.py`` computes it, then ``uniform_`` / ``normal_`` on the stream.

Each function takes the generator first and returns float32 values in PyTorch's shape (and, where
the draw can be inexact, ``(values, exact)``). Fans and gains are the engine's own (``core.fans``,
``core.gains``), with PyTorch's refusal of tensors of rank < 2 where PyTorch refuses.

``orthogonal_`` is exact only to ``ORTHOGONAL_BOUND_FACTOR * max(rows, cols) * 2**-24 * |gain|``:
torch runs a float32 QR (MKL), NumPy a float64 one (docs/torch-replay.md).
"""

from __future__ import annotations

import math

import numpy as np

from ..fans import torch_fans
from ..gains import calculate_gain
from .generator import TorchCPUGenerator, shape_tuple

_F32 = np.float32
_F64 = np.float64

#: orthogonal_: |ours - torch| <= ORTHOGONAL_BOUND_FACTOR * max(rows, cols) * 2**-24 * |gain|
#: (measured worst 3.4 over 448 matrices; 2x margin; an empirical bound, not a guarantee)
ORTHOGONAL_BOUND_FACTOR = 8


#: The ranks torch.nn.init's functions accept, and what they raise for another (torch/nn/init.py).
_RANKS = {
    "fans": ((2, None), "Fan in and fan out can not be computed for tensor with fewer than 2 dimensions"),
    "orthogonal_": ((2, None), "Only tensors with 2 or more dimensions are supported"),
    "sparse_": ((2, 2), "Only tensors with 2 dimensions are supported"),
    "eye_": ((2, 2), "Only tensors with 2 dimensions are supported"),
    "dirac_": ((3, 5), "Only tensors with 3, 4, or 5 dimensions are supported"),
}
#: The functions that compute fans (kaiming_* return an empty tensor untouched before they do).
_FANS = ("xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_")


def refusal(method: str, shape) -> str | None:
    """The error PyTorch raises for ``torch.nn.init.<method>`` on a tensor of this shape, or None: the
    plan refuses such a tensor before a value is drawn (a 422, not a failure mid-stream)."""
    shape = shape_tuple(shape)
    if method.startswith("kaiming_") and 0 in shape:
        return None
    rule = _RANKS.get("fans" if method in _FANS else method)
    if rule is None:
        return None
    (lo, hi), message = rule
    return None if lo <= len(shape) and (hi is None or len(shape) <= hi) else message


def _require(method: str, shape) -> None:
    message = refusal(method, shape)
    if message:
        raise ValueError(message)


def fans(shape) -> tuple[int, int]:
    """torch.nn.init._calculate_fan_in_and_fan_out: PyTorch refuses tensors of rank < 2."""
    shape = shape_tuple(shape)
    _require("xavier_uniform_", shape)
    return torch_fans(shape)


def _correct_fan(shape, mode: str) -> int:
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of ['fan_in', 'fan_out']")
    fan_in, fan_out = fans(shape)
    return fan_in if mode == "fan_in" else fan_out


def kaiming_uniform_(gen: TorchCPUGenerator, shape, a: float = 0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu") -> np.ndarray:
    shape = shape_tuple(shape)
    if 0 in shape:
        return np.empty(shape, dtype=_F32)
    fan = _correct_fan(shape, mode)
    gain = calculate_gain(nonlinearity, a)
    std = gain / math.sqrt(fan)
    bound = math.sqrt(3.0) * std
    return gen.uniform_(shape, -bound, bound)


def kaiming_normal_(gen: TorchCPUGenerator, shape, a: float = 0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu") -> tuple[np.ndarray, bool]:
    shape = shape_tuple(shape)
    if 0 in shape:
        return np.empty(shape, dtype=_F32), True
    fan = _correct_fan(shape, mode)
    gain = calculate_gain(nonlinearity, a)
    std = gain / math.sqrt(fan)
    return gen.normal_(shape, 0, std)


def xavier_uniform_(gen: TorchCPUGenerator, shape, gain: float = 1.0) -> np.ndarray:
    fan_in, fan_out = fans(shape)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    a = math.sqrt(3.0) * std
    return gen.uniform_(shape, -a, a)


def xavier_normal_(gen: TorchCPUGenerator, shape, gain: float = 1.0) -> tuple[np.ndarray, bool]:
    fan_in, fan_out = fans(shape)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return gen.normal_(shape, 0.0, std)


#: The replayed calls whose values come out of a QR (LAPACK): not bit-exact, and in the ETag's linalg identity.
QR_METHODS = ("orthogonal_", "delta_orthogonal")


def orthogonal_(gen: TorchCPUGenerator, shape, gain: float = 1) -> tuple[np.ndarray, bool]:
    """torch.nn.init.orthogonal_; QR in float64 LAPACK, so exact=False."""
    shape = shape_tuple(shape)
    _require("orthogonal_", shape)
    n = int(np.prod(shape, dtype=np.int64))
    if n == 0:
        return np.empty(shape, dtype=_F32), True
    rows = shape[0]
    cols = n // rows
    flat, _ = gen.normal_((rows, cols), 0, 1)
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


def sparse_(gen: TorchCPUGenerator, shape, sparsity: float, std: float = 0.01) -> tuple[np.ndarray, bool]:
    """torch.nn.init.sparse_: normal_ then a torch.randperm per column."""
    shape = shape_tuple(shape)
    _require("sparse_", shape)
    rows, cols = shape
    num_zeros = math.ceil(sparsity * rows)
    values, exact = gen.normal_(shape, 0, std)
    values = values.copy()
    if rows >= (2**32 - 1) // 20:
        raise ValueError("sparse_ replay supports fewer than 214748364 rows (torch's small-n randperm)")
    if cols == 0 or num_zeros <= 0:
        if rows > 1:
            gen.discard(cols * (rows - 1))
        return values, exact
    steps = rows - 1
    if steps > 0:
        draws = gen._raw(cols * steps).reshape(cols, steps)
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


def constant_(gen: TorchCPUGenerator, shape, val: float) -> np.ndarray:
    return np.full(shape_tuple(shape), _F32(val), dtype=_F32)


def zeros_(gen: TorchCPUGenerator, shape) -> np.ndarray:
    return np.zeros(shape_tuple(shape), dtype=_F32)


def ones_(gen: TorchCPUGenerator, shape) -> np.ndarray:
    return np.ones(shape_tuple(shape), dtype=_F32)


def eye_(gen: TorchCPUGenerator, shape) -> np.ndarray:
    shape = shape_tuple(shape)
    _require("eye_", shape)
    return np.eye(shape[0], shape[1], dtype=_F32)


def dirac_(gen: TorchCPUGenerator, shape, groups: int = 1) -> np.ndarray:
    shape = shape_tuple(shape)
    _require("dirac_", shape)
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
