"""The seed words of a block's stream (service/core/seeds.py) and their C twin in _ziggurat.c.

- the twin gives NumPy's ``SeedSequence(seed, spawn_key=(position, block)).generate_state(4,
  np.uint64)`` over every size class of seed, position and block (one 32-bit word or two, the
  engine's EXTRA_KEY, diagnose's PROBE_KEY, the largest values);
- a generator seeded from the twin's words draws what one seeded by NumPy's SeedSequence draws;
- the twin refuses an output without room for four words; values it cannot take go to NumPy;
- ``WEIGHTINIT_SEEDS=numpy`` forces NumPy's SeedSequence, with the same bytes.
test_ziggurat_sanitized.py runs ``SEED_VECTORS`` through a build with sanitizers.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys

import numpy as np
import pytest

from service.core import seeds, streams
from service.core.diagnose import PROBE_KEY

SEEDER = seeds.SEEDER
#: One word, two words, the edges of each, and the engine's own special keys.
SEEDS = [0, 1, 12345, 2**32 - 1, 2**32, 2**40 + 7, 2**63 - 1]
POSITIONS = [0, 1, 5, 2**31, 2**32 - 1, 2**32, PROBE_KEY, 2**64 - 1]
BLOCKS = [0, 1, 3, 2**32 - 1, streams.EXTRA_KEY, 2**35 + 3, 2**64 - 1]
SEED_VECTORS = list(itertools.product(SEEDS, POSITIONS, BLOCKS))


def numpy_words(seed, position, block):
    return np.random.SeedSequence(seed, spawn_key=(position, block)).generate_state(4, np.uint64)


def assert_twin_agrees(seeder, seed, position, block):
    got = seeder.state(seed, position, block)
    assert got.dtype == np.uint64 and got.tolist() == numpy_words(seed, position, block).tolist(), \
        (seed, position, block)


def test_ci_builds_the_c_twin():
    if os.environ.get("CI") and os.environ.get("WEIGHTINIT_SEEDS", "auto") != "numpy":
        assert seeds.BACKEND == "c", "the C twin was not built"


@pytest.mark.skipif(SEEDER is None, reason="the C twin is not built (no C compiler at install)")
def test_c_twin_equals_numpy_seed_sequence():
    for seed, position, block in SEED_VECTORS:
        assert_twin_agrees(SEEDER, seed, position, block)


@pytest.mark.skipif(SEEDER is None, reason="the C twin is not built (no C compiler at install)")
def test_c_twin_equals_numpy_over_many_seeds():
    rng = np.random.default_rng(2026)
    for seed, position, block in zip(rng.integers(0, 2**63, 300), rng.integers(0, 4096, 300), rng.integers(0, 64, 300)):
        assert_twin_agrees(SEEDER, int(seed), int(position), int(block))


@pytest.mark.parametrize("seed, position, block", [(0, 0, 0), (7, 3, 1), (2**63 - 1, 2**32, streams.EXTRA_KEY),
                                                   (99, PROBE_KEY, 1)])
def test_block_rng_draws_what_numpy_seed_sequence_draws(seed, position, block):
    ours = streams.block_rng(seed, position, block)
    ref = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(position, block))))
    assert ours.bit_generator.random_raw(64).tolist() == ref.bit_generator.random_raw(64).tolist()
    assert ours.bit_generator.state == ref.bit_generator.state


@pytest.mark.skipif(SEEDER is None, reason="the C twin is not built (no C compiler at install)")
def test_c_twin_refuses_an_output_without_room():
    with pytest.raises(ValueError, match="3 words of room"):
        SEEDER.state(1, 2, 3, capacity=3)


def test_values_the_twin_cannot_take_go_to_numpy():
    # ctypes would wrap an integer of 64 bits or more; NumPy takes it (or says why not).
    seq = seeds.sequence(1, 2**64, 0)
    assert isinstance(seq, np.random.SeedSequence) and seq.spawn_key == (2**64, 0)
    with pytest.raises(ValueError):
        seeds.sequence(-1, 0, 0)


def test_words_seed_pcg64_only():
    words = seeds.Words(numpy_words(1, 2, 3))
    with pytest.raises(ValueError):
        words.generate_state(8, np.uint32)


def test_weightinit_seeds_numpy_forces_numpy_with_the_same_bytes():
    code = ("import hashlib; from service.core import seeds, streams; "
            "print(seeds.BACKEND, hashlib.sha256(streams.block_rng(2026, 3, 1).bit_generator.random_raw(999)).hexdigest())")
    out = {}
    for mode in ("numpy", "auto"):
        env = {**os.environ, "WEIGHTINIT_SEEDS": mode}
        out[mode] = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                   check=True).stdout.split()
    assert out["numpy"][0] == "numpy" and out["auto"][0] == seeds.BACKEND
    assert out["numpy"][1] == out["auto"][1]
