"""Fans: PyTorch's rule, and the permutation between PyTorch's and Keras's storage layouts.

Fans are a property of the layer, not of the layout. They are computed on the PyTorch view of a
weight, ``(out, in/groups, *k)`` (``(in, out/groups, *k)`` for transposed convolutions,
``(gates*H, I)`` for recurrent kernels)::

    fan_in = shape[1] * prod(shape[2:])        fan_out = shape[0] * prod(shape[2:])

Keras's rule on its own kernel layout ``(*k, in, out)`` gives the same numbers for dense, conv
(with groups), transposed conv and recurrent kernels. A tensor of rank < 2 gets ``(n, n)``,
Keras's rank-1 rule (PyTorch refuses to compute it). The same helper serves the engine and the
PyTorch emulation (``core.torch``), which checks rank itself where PyTorch raises.
"""

from __future__ import annotations

import math


def torch_fans(torch_shape: tuple) -> tuple[int, int]:
    """(fan_in, fan_out) of a tensor in PyTorch's view (rank < 2: (n, n))."""
    if len(torch_shape) < 2:
        n = torch_shape[0] if torch_shape else 1
        return n, n
    rf = math.prod(torch_shape[2:])
    return torch_shape[1] * rf, torch_shape[0] * rf


def keras_perm(rank: int) -> tuple:
    """Axes taking a PyTorch-view weight (out, in, *k) to Keras's (*k, in, out)."""
    if rank < 2:
        return tuple(range(rank))
    return tuple(range(2, rank)) + (1, 0)
