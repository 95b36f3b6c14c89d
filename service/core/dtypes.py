"""Output dtypes and their storage.

NumPy has no bfloat16, so bfloat16 tensors are held as ``uint16`` bit patterns: the upper half
of the float32 value rounded to nearest, ties to even (what PyTorch's ``.to(torch.bfloat16)``
and the safetensors ``BF16`` dtype do). Every value is first drawn in float32 (float64 for a
float64 tensor), never drawn in float64 and cast.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DType:
    name: str            # request name: float32 | float64 | float16 | bfloat16
    storage: np.dtype    # how the bytes are held in NumPy (little-endian)
    compute: np.dtype    # the float type values are drawn in
    safetensors: str     # safetensors dtype code
    itemsize: int
    finfo_eps: float     # spacing at 1.0, for tolerances


DTYPES: dict[str, DType] = {
    "float32": DType("float32", np.dtype("<f4"), np.dtype(np.float32), "F32", 4, 2.0 ** -23),
    "float64": DType("float64", np.dtype("<f8"), np.dtype(np.float64), "F64", 8, 2.0 ** -52),
    "float16": DType("float16", np.dtype("<f2"), np.dtype(np.float32), "F16", 2, 2.0 ** -10),
    "bfloat16": DType("bfloat16", np.dtype("<u2"), np.dtype(np.float32), "BF16", 2, 2.0 ** -7),
}


def float32_to_bfloat16_bits(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Round float32 values to bfloat16 (nearest, ties to even) and return the uint16 bits."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    # Adding 0x7FFF plus the lowest kept bit rounds to nearest-even in the upper 16 bits. One
    # temporary, updated in place (uint32 arithmetic wraps the same in any order): fresh arrays
    # cost page faults, and this runs once per block of every bfloat16 tensor.
    t = np.right_shift(bits, np.uint32(16))
    t &= np.uint32(1)
    t += np.uint32(0x7FFF)
    t += bits
    t >>= np.uint32(16)
    if out is None:
        return t.astype(np.uint16)
    np.copyto(out, t, casting="unsafe")
    return out


def bfloat16_bits_to_float32(bits: np.ndarray) -> np.ndarray:
    """The exact float32 values of bfloat16 bit patterns."""
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << np.uint32(16)).view(np.float32)


def to_storage(values: np.ndarray, dtype: DType, out: np.ndarray | None = None) -> np.ndarray:
    """Cast drawn values (float32 or float64) into the dtype's storage array."""
    if dtype.name == "bfloat16":
        return float32_to_bfloat16_bits(values, out)
    if out is None:
        return values.astype(dtype.storage, copy=False)
    np.copyto(out, values, casting="unsafe")
    return out


def as_float(stored: np.ndarray, dtype: DType) -> np.ndarray:
    """Stored values as floats NumPy can compute with (float64 for float64, else float32)."""
    if dtype.name == "bfloat16":
        return bfloat16_bits_to_float32(stored)
    if dtype.name == "float16":
        return stored.astype(np.float32)
    return stored


def round_scalar(value: float, dtype: DType) -> float:
    """A Python float rounded to the dtype (used for bounds and constants)."""
    if dtype.name == "bfloat16":
        return float(bfloat16_bits_to_float32(float32_to_bfloat16_bits(np.array([value], np.float32)))[0])
    return float(np.array([value]).astype(dtype.storage)[0])
