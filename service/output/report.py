"""The report of a Plan: the theory of every selected tensor, computed once per request.

This is the one document shape the CLI (``plan``, ``generate -o x.json``), the npz manifest, the
safetensors metadata and the HTTP API share::

    {seed, scheme, bias, dtype, layout, rng, engine: {name, version, numpy, bit_generator,
     block_elements}, request: <normalized request>, layers: [...], totals: {...},
     tensors: [{name, layer, role, shape, dtype, scheme, distribution, parameters, fan_in,
                fan_out, gain, bounds, mean, variance, std, target_variance, warnings,
                [empirical, sha256, values]}]}

``totals`` (the artifacts' sizes) is added by ``formats.document``: artifacts embed the report
without it (their own sizes would depend on it).
"""

from __future__ import annotations

import hashlib
import json
import math
from functools import cached_property

import numpy as np

from ..core.distributions import Constant
from ..core.dtypes import as_float
from ..core.plan import Plan, TensorPlan


#: ``json.dumps(..., separators=(",", ":"))``, the same text, made once: a report is a tree (no cycle to
#: check for), and building an encoder per call costs as much as a small report.
COMPACT_JSON = json.JSONEncoder(separators=(",", ":"), check_circular=False)


def empirical(t: TensorPlan, stored: np.ndarray) -> dict:
    """Mean, std, min and max of the stored values: ``np.mean(x, dtype=float64)`` and
    ``np.std(x, dtype=float64)`` to the last bit, computed with the ufuncs those call (the same
    pairwise float64 sums, the mean subtracted in float64) without their Python wrappers, which
    cost more than the arithmetic on the small tensors of most requests.

    A constant 0 or 1 (biases, normalization scales) needs no pass: every partial sum of its
    values is an integer, exact in float64, so its mean is the constant itself and its std 0
    (not -0.0: NumPy's sum of -0.0 values is +0.0)."""
    d = t.distribution
    if isinstance(d, Constant) and d.value in (0.0, 1.0) and math.copysign(1.0, d.value) > 0 \
            and not (d.value and t.spec.zero_rows):  # an embedding's padding row is 0 whatever the scheme
        c = float(d.value)
        return {"mean": c, "std": 0.0, "min": c, "max": c}
    x = as_float(stored.reshape(-1), t.dtype)
    n = x.size
    mean = np.add.reduce(x, dtype=np.float64, keepdims=True)
    np.true_divide(mean, n, out=mean)
    d = np.subtract(x, mean, dtype=np.float64)
    np.multiply(d, d, out=d)
    var = np.add.reduce(d, dtype=np.float64) / n
    return {"mean": float(mean[0]), "std": float(np.sqrt(var)), "min": float(np.minimum.reduce(x)),
            "max": float(np.maximum.reduce(x))}


def sha256_of(stored: np.ndarray) -> str:
    """sha256 of the tensor's raw little-endian bytes in C order (bfloat16: its 16-bit patterns)."""
    return hashlib.sha256(np.ascontiguousarray(stored).data).hexdigest()


class Report:
    """The report of one plan, each part computed once: every output of the request shares it."""

    def __init__(self, plan: Plan):
        self.plan = plan

    @cached_property
    def _head(self) -> dict:
        return {**self.plan.header(), "layers": self.plan.layer_summary()}

    @cached_property
    def _tensors(self) -> list[dict]:
        return [t.theory() for t in self.plan.selected]

    def document(self, totals: dict | None = None) -> dict:
        """The report as a fresh document (its tensor entries are new dicts: the JSON encoder adds to them)."""
        out = dict(self._head)
        if totals is not None:
            out["totals"] = totals
        out["tensors"] = [dict(th) for th in self._tensors]
        return out

    @cached_property
    def text(self) -> str:
        """The report without totals as compact JSON text: what the npz manifest and the safetensors
        metadata embed."""
        return COMPACT_JSON.encode(self.document())
