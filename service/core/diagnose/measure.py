"""What is measured per layer and per tensor: moments, unit std, histograms, saturation, dead units,
symmetry (docs/diagnose.md)."""

from __future__ import annotations

import math

import numpy as np

from ..activations import Activation
from ..dtypes import as_float
from ..plan import Plan, TensorPlan
from .network import Stage

HIST_BINS = 40
TANH_SATURATED = 0.99
SIGMOID_SATURATED = 0.01
SYMMETRY_RTOL = 1e-9


def as_number(x) -> float | None:
    """x as a float, or None when it is not finite (JSON has no inf or NaN)."""
    x = float(x)
    return x if math.isfinite(x) else None


def moments(v: np.ndarray) -> dict:
    return {"mean": as_number(np.mean(v)), "std": as_number(np.std(v))}


def _unit_view(v: np.ndarray) -> np.ndarray:
    """(B, U, *S) -> (U, B*prod(S)): one row per unit."""
    return np.moveaxis(v, 1, 0).reshape(v.shape[1], -1)


def unit_std(v: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.var(_unit_view(v), axis=1))))


def symmetric(z: np.ndarray) -> bool:
    if z.shape[1] < 2:
        return False
    u = _unit_view(z)
    scale = float(np.max(np.abs(u)))
    return float(np.max(np.abs(u - u[:1]))) <= SYMMETRY_RTOL * scale


def histogram(v: np.ndarray, lo: float, hi: float) -> dict | None:
    if not (math.isfinite(lo) and math.isfinite(hi)) or not np.isfinite(v).all():
        return None
    # an empty span, or one too narrow for HIST_BINS distinct edges (subnormal values), is widened
    if not hi > lo or not (hi - lo) / HIST_BINS > 0 or len(set(np.linspace(lo, hi, HIST_BINS + 1).tolist())) <= HIST_BINS:
        pad = max(abs(lo), 1.0) * 0.5
        lo, hi = lo - pad, hi + pad
    counts, edges = np.histogram(v, bins=HIST_BINS, range=(lo, hi))
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def activation_range(act: Activation, a: np.ndarray) -> tuple[float, float]:
    if act.name == "tanh":
        return -1.0, 1.0
    if act.name in ("sigmoid", "softmax"):
        return 0.0, 1.0
    m = float(np.max(np.abs(a))) if a.size else 0.0
    if m == 0.0:
        m = 1.0
    return (0.0, m) if act.name == "relu" else (-m, m)


def saturated(act: Activation, a: np.ndarray) -> float | None:
    if act.name == "tanh":
        return float(np.mean(np.abs(a) > TANH_SATURATED))
    if act.name == "sigmoid":
        return float(np.mean((a < SIGMOID_SATURATED) | (a > 1.0 - SIGMOID_SATURATED)))
    return None


def dead(act: Activation, a: np.ndarray) -> float | None:
    if act.name != "relu":
        return None
    return float(np.mean(~np.any(_unit_view(a) != 0.0, axis=1)))


def tensor_report(t: TensorPlan, values: np.ndarray) -> dict:
    """A tensor's theory (as /v1/plan reports it), its empirical moments and a histogram."""
    th = t.theory()
    x = values.reshape(-1)
    lo, hi = float(x.min()), float(x.max())
    if th["bounds"] is not None:
        lo, hi = min(lo, th["bounds"][0]), max(hi, th["bounds"][1])
    th["empirical"] = {"mean": as_number(x.mean()), "std": as_number(x.std()), "min": as_number(x.min()), "max": as_number(x.max())}
    th["histogram"] = histogram(x, lo, hi)
    return th


def layer_params(plan: Plan, st: Stage):
    """(weight TensorPlan, float64 weight in PyTorch's view, bias TensorPlan or None, bias or None); a
    layernorm's scale and shift are its weight and bias."""
    ts = [t for t in plan.tensors if t.spec.layer_index == st.index]
    wt = next(t for t in ts if t.spec.role in ("weight", "norm_weight"))
    bt = next((t for t in ts if t.spec.role in ("bias", "norm_bias")), None)

    def values(t):
        v = as_float(t.generate(), t.dtype).astype(np.float64)
        inv = np.argsort(t.spec.perm)  # storage layout -> PyTorch view
        return np.ascontiguousarray(v.transpose(inv)) if v.ndim > 1 else v

    w = values(wt)
    return wt, w, bt, (values(bt) if bt is not None else None)
