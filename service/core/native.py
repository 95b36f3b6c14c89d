"""The engine's compiled twins: ``_ziggurat.c``, built by setup.py when a C compiler is there.

It holds the standard normal sampler (``normals``) and the block streams' seed words (``seeds``),
each the twin of a NumPy reference that gives the same bytes; each has an environment variable
that forces its reference. The functions are called through ctypes with plain addresses: asking
NumPy for them (``a.ctypes.data``, ``bit_generator.ctypes``) builds ctypes objects on every call,
3 us an array and 15 us a fresh bit generator, more than drawing a small tensor costs.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os

import numpy as np

_CAPSULE_POINTER = ctypes.pythonapi.PyCapsule_GetPointer
_CAPSULE_POINTER.restype = ctypes.c_void_p
_CAPSULE_POINTER.argtypes = [ctypes.py_object, ctypes.c_char_p]


def library(switch: str) -> str | None:
    """The path of the compiled ``_ziggurat`` module, or None: it was not built, or the environment
    variable ``switch`` says ``numpy`` (the NumPy reference always; the bytes are the same)."""
    if os.environ.get(switch, "auto").strip().lower() == "numpy":
        return None
    spec = importlib.util.find_spec(__package__ + "._ziggurat")
    return spec.origin if spec is not None and spec.origin else None


def address(a: np.ndarray) -> int:
    """The address of the first byte of ``a``, a writable C-contiguous array of at least one byte
    (ctypes rejects anything else), valid while ``a`` lives."""
    return ctypes.addressof(ctypes.c_char.from_buffer(a))


def bitgen(bit_generator: np.random.BitGenerator) -> int:
    """The address of a NumPy bit generator's ``bitgen_t`` (numpy/random/bitgen.h), from its capsule."""
    return _CAPSULE_POINTER(bit_generator.capsule, b"BitGenerator")
