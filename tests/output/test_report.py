"""The report's empirical statistics: np.mean / np.std (dtype float64), np.min, np.max to the last
bit, whether computed with the ufuncs those call or, for a constant 0 or 1, without a pass."""

from __future__ import annotations

import numpy as np
import pytest

from service import document
from service.core.dtypes import as_float
from service.output.report import empirical

SCHEMES = ["he_normal", "xavier_uniform", "zeros", "ones", {"name": "constant", "value": 1.0},
           {"name": "constant", "value": -0.0}, {"name": "constant", "value": 0.1}, {"name": "constant", "value": -1.0}]


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
@pytest.mark.parametrize("scheme", SCHEMES, ids=str)
@pytest.mark.parametrize("shape", [[1], [7], [1000, 3], [300000]])
def test_empirical_is_numpys_to_the_last_bit(dtype, scheme, shape):
    plan = document.plan({"architecture": {"layers": [{"type": "tensor", "name": "w", "shape": shape}]},
                          "scheme": scheme, "dtype": dtype, "seed": 11})
    t = plan.selected[0]
    stored = t.generate()
    x = as_float(stored.reshape(-1), t.dtype)
    expected = {"mean": float(np.mean(x, dtype=np.float64)), "std": float(np.std(x, dtype=np.float64)),
                "min": float(np.min(x)), "max": float(np.max(x))}
    assert repr(empirical(t, stored)) == repr(expected)  # repr: -0.0 and 0.0 differ
