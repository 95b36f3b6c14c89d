"""``TensorPlan.block_range`` (any slice of a tensor, alone) and the vectorized uniform sampler.

- ``block_range(a, b)`` concatenates to ``generate().reshape(-1)[a:b]`` for block-wise,
  whole-matrix and ``rng: torch`` tensors in every dtype, and draws only the blocks it overlaps;
- ``Artifact.byte_range`` of npy and safetensors equals the slice of the whole artifact;
- ``Uniform.fill`` (from ``random_raw``) equals NumPy's ``Generator.random`` then the affine map,
  bit for bit, and leaves the generator in exactly NumPy's state.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from service.core import streams

from tests.helpers import plan_of
from service.core import generate
from service.core.distributions import Uniform
from tests.helpers import artifact_of as encode

B = streams.BLOCK_ELEMENTS


def one(shape, scheme, dtype="float32", rng="weightinit"):
    doc = {"architecture": {"layers": [{"type": "tensor", "name": "t", "shape": list(shape)}]}, "scheme": scheme,
           "dtype": dtype, "seed": 3, "rng": rng}
    return plan_of(doc).selected[0]


CASES = [
    ((3 * B + 1000,), "he_normal", "float32", "weightinit"),
    ((700, 1100), "xavier_uniform", "float64", "weightinit"),
    ((1000, 700), {"name": "truncated_normal", "std": 0.02, "low": -0.04, "high": 0.04}, "bfloat16", "weightinit"),
    ((900, 800), "lecun_uniform", "float16", "weightinit"),
    ((600, 500), "orthogonal", "float32", "weightinit"),          # whole matrix
    ((300, 200), "he_uniform", "float32", "torch"),               # PyTorch stream replay
    ((5,), "normal", "float32", "weightinit"),
]


@pytest.mark.parametrize("shape, scheme, dtype, rng", CASES)
def test_block_range_is_a_slice_of_the_whole(shape, scheme, dtype, rng):
    t = one(shape, scheme, dtype, rng)
    flat = t.generate().reshape(-1)
    r = random.Random(0)
    spans = [(0, t.size), (0, 1), (t.size - 1, t.size), (0, 0), (t.size, t.size)]
    spans += [(B - 1, B + 1), (B, 2 * B), (B + 7, 3 * B - 5)]
    spans += [tuple(sorted((r.randrange(t.size + 1), r.randrange(t.size + 1)))) for _ in range(10)]
    for a, b in spans:
        if b > t.size:
            continue
        pieces = [np.array(p, copy=True) for p in t.block_range(a, b)]
        got = np.concatenate(pieces) if pieces else flat[:0]
        assert got.dtype == flat.dtype and np.array_equal(got.view(np.uint8), flat[a:b].view(np.uint8)), (a, b)


def test_block_range_draws_only_the_overlapping_blocks(monkeypatch):
    t = one((10 * B,), "he_normal")
    drawn = []
    real = generate.Blockwise._fill_block
    monkeypatch.setattr(generate.Blockwise, "_fill_block",
                        lambda self, b, c, s: drawn.append(b) or real(self, b, c, s))
    for _ in t.block_range(3 * B + 5, 5 * B + 1):
        pass
    assert sorted(drawn) == [3, 4, 5]
    drawn.clear()
    for _ in t.block_range(7 * B, 8 * B):
        pass
    assert drawn == [7]


def test_block_range_rejects_ranges_outside_the_tensor():
    t = one((100,), "he_normal")
    for a, b in [(-1, 5), (5, 4), (0, 101)]:
        with pytest.raises(ValueError):
            list(t.block_range(a, b))


@pytest.mark.parametrize("fmt", ["npy", "safetensors"])
def test_artifact_byte_ranges(fmt):
    layers = [{"type": "tensor", "name": "a", "shape": [B + 3]}] if fmt == "npy" else [
        {"type": "dense", "name": "d", "in_features": 700, "out_features": 900},
        {"type": "dense", "name": "o", "in_features": 90, "out_features": 50, "scheme": "orthogonal"},
        {"type": "gru", "name": "g", "input_size": 30, "hidden_size": 40}]
    plan = plan_of({"architecture": {"layers": layers}, "seed": 9, "dtype": "bfloat16"})
    art = encode(plan, fmt)
    assert art.ranges
    full = b"".join(bytes(c) for c in art.chunks())
    r = random.Random(1)
    for _ in range(30):
        a = r.randrange(len(full) + 1)
        b = r.randrange(a, len(full) + 1)
        assert b"".join(bytes(c) for c in art.byte_range(a, b)) == full[a:b]
    with pytest.raises(ValueError):
        list(art.byte_range(0, len(full) + 1))
    assert not encode(plan, "npz").ranges and not encode(plan, "json").ranges


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 2, 3, 1000, B - 1, B])
def test_uniform_fill_is_numpys_bit_for_bit(dtype, n):
    t = np.dtype(dtype).type
    for seed in range(8):
        for low, high in [(-0.05, 0.05), (0.0, 1.0), (-3e-5, 7e-4), (-1e6, 1e6), (2.0, 2.5)]:
            a, b = np.empty(n, dtype), np.empty(n, dtype)
            ga = np.random.Generator(np.random.PCG64(seed))
            gb = np.random.Generator(np.random.PCG64(seed))
            ga.random(out=a, dtype=dtype)
            a *= t(high - low)
            a += t(low)
            np.clip(a, t(low), t(high), out=a)
            Uniform(low, high).fill(gb, b)
            assert np.array_equal(a.view(np.uint8), b.view(np.uint8)), (seed, low, high)
            assert ga.bit_generator.state == gb.bit_generator.state
            assert ga.random(3, dtype=dtype).tolist() == gb.random(3, dtype=dtype).tolist()


def test_uniform_fill_falls_back_to_numpy_when_a_half_word_is_buffered():
    ga, gb = (np.random.Generator(np.random.PCG64(4)) for _ in range(2))
    ga.random(dtype=np.float32)
    gb.random(dtype=np.float32)              # now a 32-bit half of a draw is buffered
    a, b = np.empty(1001, np.float32), np.empty(1001, np.float32)
    ga.random(out=a, dtype=np.float32)
    a *= np.float32(2.0)
    a += np.float32(-1.0)
    np.clip(a, np.float32(-1), np.float32(1), out=a)
    Uniform(-1.0, 1.0).fill(gb, b)
    assert np.array_equal(a, b) and ga.bit_generator.state == gb.bit_generator.state


def test_stream_across_tensors_equals_each_tensor_in_turn():
    doc = {"architecture": {"layers": [
        {"type": "dense", "name": "a", "in_features": 700, "out_features": 900},           # 3 blocks
        {"type": "layernorm", "name": "n", "normalized_shape": 900},                       # constants
        {"type": "dense", "name": "o", "in_features": 90, "out_features": 50, "scheme": "orthogonal"},
        {"type": "dense", "name": "b", "in_features": 300, "out_features": 200}]},
        "seed": 4, "dtype": "bfloat16"}
    plan = plan_of(doc)
    for parallel in (True, False):
        got = {}
        for t, values in generate.stream(plan.selected, parallel):
            got.setdefault(t.name, []).append(np.array(values, copy=True))
        assert list(got) == [t.name for t in plan.selected]
        for t in plan.selected:
            assert np.array_equal(np.concatenate(got[t.name]), t.generate().reshape(-1)), t.name
