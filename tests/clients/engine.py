"""What the clients must decode: the engine's own arrays, as bit patterns, for exact comparison.

Both client examples can dump every tensor they decoded as ``{name, dtype, shape, sha256,
bits, f64_bits}``: ``bits`` the stored element bit patterns (hex, the dtype's width: float16 and
bfloat16 16 bits, float32 32, float64 64) and ``f64_bits`` the decoded value widened to a double
(hex, 64 bits). Both are compared here with ``plan_of(doc).selected[i].generate()``.
"""

from __future__ import annotations

import copy
import hashlib

import numpy as np

from tests.helpers import plan_of
from service.core.dtypes import as_float

SAFETENSORS_CODES = {"float32": "F32", "float64": "F64", "float16": "F16", "bfloat16": "BF16"}


def request(dtype: str, seed: int = 7) -> dict:
    """A small model whose tensors cover normal, uniform and constant draws, grouped convolution,
    and (in float16/bfloat16) subnormal values from a tiny-std tensor."""
    return {
        "architecture": {"layers": [
            {"type": "dense", "name": "fc1", "in_features": 24, "out_features": 16, "activation": "relu"},
            {"type": "conv2d", "name": "conv", "in_channels": 4, "out_channels": 6, "kernel_size": [3, 3],
             "groups": 2, "activation": "tanh"},
            {"type": "tensor", "name": "tiny", "shape": [8, 16], "scheme": {"name": "normal", "std": 1e-5}},
            {"type": "dense", "name": "head", "in_features": 16, "out_features": 3, "activation": "softmax",
             "bias": "zeros"},
        ]},
        "scheme": "auto",
        "bias": {"name": "uniform", "low": -0.1, "high": 0.1},
        "seed": seed,
        "dtype": dtype,
    }


def expected(doc: dict) -> dict[str, dict]:
    """name -> {dtype, shape, sha256, bits, f64_bits} of every selected tensor, from the engine."""
    plan = plan_of(copy.deepcopy(doc))
    out = {}
    for t in plan.selected:
        stored = np.ascontiguousarray(t.generate())
        width = stored.dtype.itemsize
        bits = stored.reshape(-1).view(f"<u{width}")
        values = as_float(stored.reshape(-1), t.dtype).astype(np.float64).view("<u8")
        out[t.name] = {
            "dtype": SAFETENSORS_CODES[t.dtype.name],
            "shape": list(t.shape),
            "sha256": hashlib.sha256(stored.data).hexdigest(),
            "bits": [f"{b:0{2 * width}x}" for b in bits.tolist()],
            "f64_bits": [f"{b:016x}" for b in values.tolist()],
        }
    return out


def assert_dumped_equal(dumped: list[dict], want: dict[str, dict], names: list[str], where: str) -> None:
    """The tensors a client dumped are exactly ``names``, and each equals the engine's bit for bit."""
    assert [d["name"] for d in dumped] == names, f"{where}: tensors {[d['name'] for d in dumped]}, expected {names}"
    for d in dumped:
        w = want[d["name"]]
        label = f"{where} {d['name']}"
        assert d["dtype"] == w["dtype"], label
        assert list(d["shape"]) == w["shape"], label
        assert d["sha256"] == w["sha256"], label
        assert len(d["bits"]) == len(w["bits"]), label
        bad = [i for i, (a, b) in enumerate(zip(d["bits"], w["bits"])) if a != b]
        assert not bad, f"{label}: stored bits differ at {len(bad)} elements, first #{bad[0]}: " \
                        f"{d['bits'][bad[0]]} != {w['bits'][bad[0]]}"
        bad = [i for i, (a, b) in enumerate(zip(d["f64_bits"], w["f64_bits"])) if a != b]
        assert not bad, f"{label}: decoded values differ at {len(bad)} elements, first #{bad[0]}: " \
                        f"{d['f64_bits'][bad[0]]} != {w['f64_bits'][bad[0]]}"
