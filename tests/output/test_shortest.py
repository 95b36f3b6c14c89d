"""16-bit floats print as the shortest decimal that round-trips in their own dtype."""

import numpy as np

from service.core.dtypes import DTYPES, float32_to_bfloat16_bits
from service.output.jsonenc import _f64_to_bf16_bits, shortest_decimal


def _all_finite_16bit():
    return np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)


def test_float16_every_value_round_trips_and_is_shortest():
    bits = _all_finite_16bit()
    vals = bits.view(np.float16)
    finite = np.isfinite(vals)
    vals = vals[finite]
    out = shortest_decimal(vals, DTYPES["float16"])
    texts = [repr(float(x)) for x in out]
    back = np.array([float(t) for t in texts]).astype(np.float16)
    assert np.array_equal(back.view(np.uint16), vals.view(np.uint16))
    # numpy's repr of a float16 is its shortest round-trip decimal: ours is never longer.
    for v, t in zip(vals[::97], texts[::97]):
        ref = np.format_float_positional(v, unique=True, trim="-")
        digits = lambda s: len(s.replace("-", "").replace(".", "").lstrip("0").split("e")[0].rstrip("0") or "0")
        assert digits(t) <= digits(ref), (v, t, ref)


def test_bfloat16_every_value_round_trips():
    bits = _all_finite_16bit()
    f32 = (bits.astype(np.uint32) << 16).view(np.float32)
    keep = np.isfinite(f32)
    bits, f32 = bits[keep], f32[keep]
    out = shortest_decimal(bits, DTYPES["bfloat16"])
    back = np.array([float(repr(float(x))) for x in out])
    # Parse -> the nearest bfloat16, one correct rounding from the parsed float64.
    assert np.array_equal(_f64_to_bf16_bits(back), bits)
    # A reader that goes through float32 first gets the same bits for every normal value.
    normal = np.abs(f32) >= 2.0 ** -126
    assert np.array_equal(float32_to_bfloat16_bits(back[normal].astype(np.float32)), bits[normal])
    lengths = [len(repr(float(x)).split("e")[0].replace("-", "").replace(".", "").strip("0")) for x in out[1000:2000]]
    assert max(lengths) <= 4
