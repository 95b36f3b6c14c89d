"""The seed words of a block's stream: NumPy's ``SeedSequence``, or its compiled twin.

Block ``b`` of the tensor at position ``p`` draws from ``PCG64(SeedSequence(seed, spawn_key=(p,
b)))`` (``streams``: the reproducibility contract). PCG64 asks its seed sequence for one thing,
``generate_state(4, np.uint64)``: four words. NumPy's ``SeedSequence`` takes ~17 us to build and
PCG64 another 12-16 us to ask it, per block: for the small tensors of most requests more than
drawing their values. ``_ziggurat.c``'s ``weightinit_seed_state`` computes the same four words
(NumPy's algorithm, ported), ``Words`` hands them to PCG64 through NumPy's ``ISeedSequence``
interface: ~5 us a generator in all. tests/core/test_seeds.py compares the twins over every size
class of seed, position and block. Without the compiled module, or with ``WEIGHTINIT_SEEDS=numpy``,
NumPy's ``SeedSequence`` seeds: the same words, so the same bytes.
"""

from __future__ import annotations

import ctypes

import numpy as np
from numpy.random.bit_generator import ISeedSequence

from . import native

#: The four uint64 words PCG64 is seeded with.
STATE_WORDS = 4
_WORD_LIMIT = 1 << 64


class Words(ISeedSequence):
    """A seed sequence that is its state: the four words PCG64 asks for."""

    def __init__(self, words: np.ndarray):
        self.words = words

    def generate_state(self, n_words, dtype=np.uint32):
        if n_words != STATE_WORDS or np.dtype(dtype) != np.uint64:
            raise ValueError(f"these words seed PCG64: generate_state({STATE_WORDS}, np.uint64) only")
        return self.words


class Seeder:
    """``weightinit_seed_state`` bound from one shared library: the package's own build (``SEEDER``)
    or, in the tests, a build of the same source with sanitizers. Bound without releasing the GIL
    (PyDLL): the call takes well under a microsecond, and a thread that lets the GIL go waits to get
    it back behind the others."""

    ABI = 2  # weightinit_abi() of a library that has weightinit_seed_state

    def __init__(self, path: str):
        lib = ctypes.PyDLL(path)
        if lib.weightinit_abi() < self.ABI:
            raise OSError(f"{path}: no weightinit_seed_state (ABI {lib.weightinit_abi()})")
        fn = self._fn = lib.weightinit_seed_state
        fn.restype = ctypes.c_int
        fn.argtypes = [ctypes.c_uint64, ctypes.c_uint64, ctypes.c_uint64, ctypes.c_void_p, ctypes.c_int64]

    def state(self, seed: int, position: int, block: int, capacity: int = STATE_WORDS) -> np.ndarray:
        """``SeedSequence(seed, spawn_key=(position, block)).generate_state(4, np.uint64)``, for
        integers in [0, 2^64) (ctypes would wrap anything else: ``sequence`` checks first), written
        into a ctypes array of ``capacity`` words (the cheapest buffer to make and to address)."""
        out = (ctypes.c_uint64 * capacity)()
        if self._fn(seed, position, block, ctypes.addressof(out), capacity):
            raise ValueError(f"weightinit_seed_state: {capacity} words of room; it writes {STATE_WORDS}")
        return np.frombuffer(out, np.uint64)


def _load() -> Seeder | None:
    try:
        path = native.library("WEIGHTINIT_SEEDS")
        return Seeder(path) if path else None
    except (OSError, AttributeError, ImportError):  # AttributeError: a build of older source
        return None


#: The compiled twin, or None (then NumPy's SeedSequence seeds).
SEEDER = _load()
#: Who computes the seed words: "c" (the compiled twin) or "numpy" (NumPy's SeedSequence).
BACKEND = "c" if SEEDER is not None else "numpy"


def sequence(seed: int, position: int, block: int) -> ISeedSequence:
    """The seed sequence of block ``block`` of the tensor at ``position``: ``SeedSequence(seed,
    spawn_key=(position, block))`` or, from the compiled twin, its state words."""
    if SEEDER is not None and 0 <= seed < _WORD_LIMIT and 0 <= position < _WORD_LIMIT and 0 <= block < _WORD_LIMIT:
        return Words(SEEDER.state(seed, position, block))
    return np.random.SeedSequence(seed, spawn_key=(position, block))
