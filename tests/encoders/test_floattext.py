"""The compiled float32 printer (service/encoders/floattext.py, _f32text.c) prints exactly what
orjson prints, and the JSON encoder built on it gives the same bytes as a single orjson call."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import orjson
import pytest

from service.core import build_plan
from service.encoders import floattext
from service.encoders.jsonenc import _OPTS, document_with_values, encode_json

C = floattext.BACKEND == "c"
needs_c = pytest.mark.skipif(not C, reason="the C printer is not built (no C compiler at install)")


def orjson_text(a):
    return orjson.dumps(a, option=orjson.OPT_SERIALIZE_NUMPY)


def printed(a, parts=None):
    return b"".join(bytes(p) for p in floattext.dumps(a, parts=parts))


def test_ci_builds_the_printer():
    if os.environ.get("CI"):
        assert C, "the C float printer was not built"


def _edges() -> np.ndarray:
    vals = []
    with np.errstate(over="ignore"):
        for e in range(-45, 39):
            for m in (1, 2, 3, 5, 7, 9, 1.5, 2.5, 9.999999, 1.0000001, 4.999999, 5.000001, 1.2345678):
                vals.append(np.float32(m * 10.0 ** e))
    for k in range(-149, 128):
        p = np.float32(2.0 ** k)
        vals += [p, np.nextafter(p, np.float32(0)), np.nextafter(p, np.float32(np.inf))]
    vals += [np.float32(x) for x in (3.4028235e38, 1.17549435e-38, 1.4e-45, 16777216, 16777217, 0.1, 0.3, 1e9,
                                     999999999, 1e-34, 1e-33, 123456.0, 0.000001, 0.0000001, 1e12, 1e13)]
    vals = np.array([v for v in vals if np.isfinite(v) and v != 0], dtype=np.float32)
    return np.concatenate([vals, -vals])


CASES = {
    "edges": lambda rng: np.resize(_edges(), 70_000),
    "edges 2-D": lambda rng: np.resize(_edges(), (7, 10_000)),
    "random bit patterns (any exponent)": lambda rng: _finite(rng.integers(0, 2 ** 32, 200_000, dtype=np.uint64)
                                                              .astype(np.uint32).view(np.float32)),
    "random bit patterns (the exact range)": lambda rng: _bits(rng, 2_000_000).reshape(2000, 1000),
    "initial weights": lambda rng: (rng.standard_normal((1000, 1000)) * 0.05).astype(np.float32),
    "uniforms": lambda rng: rng.random(1_000_000).astype(np.float32),
    "integers": lambda rng: np.arange(-70_000, 70_000, dtype=np.float32),
    "short decimals": lambda rng: (np.arange(0, 100_000) / 1000).astype(np.float32),
    "zeros, NaN, infinities": lambda rng: np.array([np.inf, np.nan, 1.0, -0.0, 0.0, -np.inf] * 12_000,
                                                   np.float32).reshape(6, 12_000),
    "3-D": lambda rng: rng.standard_normal((4, 5, 6000)).astype(np.float32),
    "one row": lambda rng: rng.standard_normal((1, 70_000)).astype(np.float32),
}


def _finite(a):
    return np.where(np.isfinite(a), a, np.float32(1.5)).astype(np.float32)


def _bits(rng, n):
    e = rng.integers(127 - 113, 127 + 30, n)
    m = rng.integers(0, 2 ** 23, n)
    s = rng.integers(0, 2, n)
    return ((s << 31) | (e << 23) | m).astype(np.uint32).view(np.float32)


@needs_c
@pytest.mark.parametrize("case", sorted(CASES))
def test_prints_exactly_what_orjson_prints(case):
    a = CASES[case](np.random.default_rng(abs(hash(case)) % 2 ** 32))
    want = orjson_text(a)
    got = printed(a)
    if got != want:  # name the first value that differs
        w, g = (x.decode().replace("[", "").replace("]", "").split(",") for x in (want, got))
        i = next(i for i, (x, y) in enumerate(zip(w, g)) if x != y)
        raise AssertionError(f"value {i} ({a.reshape(-1)[i]!r}): orjson {w[i]}, printed {g[i]}")


@needs_c
@pytest.mark.parametrize("parts", [1, 2, 3, 7])
def test_slices_join_to_the_same_text(parts):
    a = (np.random.default_rng(1).standard_normal((301, 300)) * 0.1).astype(np.float32)
    assert printed(a, parts=parts) == orjson_text(a)


def test_what_it_does_not_print_goes_to_orjson():
    for a in (np.zeros((0, 5), np.float32), np.float32(1.5).reshape(()), np.arange(10, dtype=np.float32),
              np.arange(100_000, dtype=np.float64)):
        assert printed(a) == orjson_text(a)


@pytest.mark.parametrize("text, expected", [
    ("1.0", (1, 1, 0)), ("-0.000015", (15, 2, -5)), ("1200000000.0", (12, 2, 9)), ("1e-7", (1, 1, -7)),
    ("1.5e+13", (15, 2, 13)), ("0.33333334", (33333334, 8, -1)), ("123.456", (123456, 6, 2)),
])
def test_digits_of_orjson_text(text, expected):
    assert floattext.digits_of(text) == expected


DOCS = [
    {"architecture": {"layers": [{"type": "tensor", "name": "w", "shape": [1000, 1000]}]}, "scheme": "he_normal",
     "seed": 1},
    {"architecture": {"layers": [{"type": "dense", "name": "a", "in_features": 300, "out_features": 700},
                                 {"type": "dense", "name": "b", "in_features": 700, "out_features": 900}]},
     "scheme": "xavier_uniform", "seed": 3},
    {"architecture": {"layers": [{"type": "tensor", "name": "w", "shape": [300_000]}]}, "scheme": "he_normal",
     "seed": 4},
    {"architecture": {"layers": [{"type": "tensor", "name": "w", "shape": [3, 100, 400]}]},
     "scheme": {"name": "constant", "value": 0.25}, "seed": 5},
    {"architecture": {"layers": [{"type": "tensor", "name": "w", "shape": [500, 300]}]}, "scheme": "he_normal",
     "seed": 6, "dtype": "bfloat16"},
]


@pytest.mark.parametrize("i", range(len(DOCS)))
def test_json_artifact_equals_one_orjson_call(i):
    artifact = encode_json(build_plan(DOCS[i]))
    body = b"".join(bytes(p) for p in artifact.chunks())
    want = orjson.dumps(document_with_values(build_plan(DOCS[i])), option=_OPTS)
    assert body == want
    assert artifact.length == len(want)
    assert artifact.sha256 == hashlib.sha256(want).hexdigest()
