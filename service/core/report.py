"""The JSON report of a Plan: the theory of every selected tensor, optionally with values.

This is the one document shape the CLI (``plan``, ``generate -o x.json``), the npz manifest,
the safetensors metadata and the HTTP API share::

    {seed, scheme, bias, dtype, layout, rng, engine: {name, version, numpy, bit_generator,
     block_elements}, request: <normalized request>, layers: [...], totals: {...},
     tensors: [{name, layer, role, shape, dtype, scheme, distribution, parameters, fan_in,
                fan_out, gain, bounds, mean, variance, std, target_variance, warnings,
                [empirical, sha256, values]}]}
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from .dtypes import as_float
from .plan import Plan, TensorPlan


def empirical(t: TensorPlan, stored: np.ndarray) -> dict:
    x = as_float(stored.reshape(-1), t.dtype)
    return {"mean": float(np.mean(x, dtype=np.float64)), "std": float(np.std(x, dtype=np.float64)),
            "min": float(x.min()), "max": float(x.max())}


def sha256_of(stored: np.ndarray) -> str:
    """sha256 of the tensor's raw little-endian bytes in C order (bfloat16: its 16-bit patterns)."""
    return hashlib.sha256(np.ascontiguousarray(stored).data).hexdigest()


def report_text(plan: Plan) -> str:
    """The report without totals as compact JSON text: what the npz manifest and the safetensors
    metadata embed (memoized on the plan: sizing a plan's artifacts needs it twice)."""
    memo = plan.__dict__.get("_report_text")
    if memo is None:
        memo = plan.__dict__["_report_text"] = json.dumps(report(plan, with_totals=False), separators=(",", ":"))
    return memo


def totals(plan: Plan) -> dict:
    from ..encoders import sizes  # deferred: encoders import this module

    return {"tensors": len(plan.selected), "parameters": plan.total_elements,
            "bytes": sizes(plan)}


def report(plan: Plan, *, with_totals: bool = True) -> dict:
    """The report without values (what ``plan`` prints). Artifacts embed it without
    ``totals`` (their own sizes would depend on it)."""
    out = {**plan.header(), "layers": plan.layer_summary()}
    if with_totals:
        out["totals"] = totals(plan)
    out["tensors"] = [t.theory() for t in plan.selected]
    return out
