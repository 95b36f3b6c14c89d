"""Running a probe: the seeded input and output gradient, each scheme's forward and backward pass
and statistics, and the response document (docs/diagnose.md)."""

from __future__ import annotations

import hashlib
import json

import numpy as np

from ..plan import Plan, engine_info
from ..streams import block_rng
from . import measure, verdict
from .cost import check_limits, estimate_cost
from .measure import (activation_range, as_number, dead, histogram, layer_params, moments, saturated, symmetric,
                      tensor_report, unit_std)
from .network import Network
from .request import DiagnoseRequest, Probe, build_probe
from .verdict import problems, warnings

#: Bumped whenever a statistic, threshold, sentence or cost estimate changes (part of the ETag).
DIAGNOSE_VERSION = 3  # 3: the cost counts the elementwise work and the answer (cost.py)
#: spawn_key of the probe streams: beyond any tensor position (see ``streams``).
PROBE_KEY = 1 << 40
THRESHOLDS = {"band": verdict.BAND, "saturation": verdict.SATURATION_LIMIT, "tanh_saturated": measure.TANH_SATURATED,
              "sigmoid_saturated": [measure.SIGMOID_SATURATED, 1 - measure.SIGMOID_SATURATED],
              "symmetry_rtol": measure.SYMMETRY_RTOL, "dead_warning": verdict.DEAD_WARN,
              "saturation_warning": verdict.SATURATION_WARN}


def probe_streams(seed: int, batch: int, input_shape: tuple, output_shape: tuple):
    """The probe input and output gradient (same for every scheme of a request)."""
    return (block_rng(seed, PROBE_KEY, 0).standard_normal((batch, *input_shape)),
            block_rng(seed, PROBE_KEY, 1).standard_normal((batch, *output_shape)))


def _run_scheme(probe: Probe, plan: Plan, spec: dict, x: np.ndarray, g_out: np.ndarray) -> dict:
    with np.errstate(all="ignore"):  # overflow is measured (reported as such), not a warning
        return _run_scheme_inner(probe, plan, spec, x, g_out)


def _run_scheme_inner(probe: Probe, plan: Plan, spec: dict, x: np.ndarray, g_out: np.ndarray) -> dict:
    stages = probe.stages
    params = [layer_params(plan, st) for st in stages]
    net = Network(stages, [p[1] for p in params], [p[3] for p in params])
    ref_unit = unit_std(x)
    layers = []
    for st, (wt, w, bt, b) in zip(stages, params):
        layers.append({
            "name": st.name, "index": st.index, "type": st.type, "activation_function": st.activation.describe(),
            "output_shape": list(st.out_shape), "units": st.units,
            "weight": tensor_report(wt, w), "bias": tensor_report(bt, b) if bt is not None else None,
            "pre_activation": {"mean": None, "std": None, "unit_std": None},
            "activation": {"mean": None, "std": None, "histogram": None},
            "saturated_fraction": None, "dead_fraction": None, "symmetric": False,
            "gradient_std": None, "pre_activation_gradient_norm": None,
            "weight_gradient_norm": None, "bias_gradient_norm": None,
            "forward_ratio": None, "backward_ratio": None, "overflow": False, "ran": False, "problems": [],
        })
    complete = True
    for i, _, z, a in net.forward(x):
        lay, act = layers[i], stages[i].activation
        lay["ran"] = True
        finite = bool(np.isfinite(z).all() and np.isfinite(a).all() and np.isfinite(net.outputs[i]).all())
        lay["overflow"] = not finite
        lay["pre_activation"] = {**moments(z), "unit_std": as_number(unit_std(z)) if finite else None}
        lay["activation"] = {**moments(a), "histogram": histogram(a, *activation_range(act, a)) if finite else None}
        lay["saturated_fraction"] = saturated(act, a)
        lay["dead_fraction"] = dead(act, a)
        lay["symmetric"] = finite and symmetric(z)
        lay["forward_ratio"] = as_number(unit_std(z) / ref_unit) if finite else None
        complete = finite
    grad = {}  # stage index (-1: the input) -> RMS over the batch of dl/d(what it passes on), per example
    if complete:
        ref_delta = None
        for i, da, delta, dW, db in net.backward(g_out):
            grad[i] = float(np.sqrt(np.sum(da * da) / len(da)))
            if i < 0:
                break
            lay = layers[i]
            norm = float(np.sqrt(np.sum(delta * delta) / len(delta)))
            if ref_delta is None:
                ref_delta = norm
            lay["gradient_std"] = as_number(np.std(da))
            lay["pre_activation_gradient_norm"] = as_number(norm)
            lay["weight_gradient_norm"] = as_number(np.linalg.norm(dW))
            lay["bias_gradient_norm"] = as_number(np.linalg.norm(db)) if db is not None else None
            # No gradient at all at the last layer means no weight below it can learn either.
            lay["backward_ratio"] = as_number(norm / ref_delta) if ref_delta > 0 else 0.0
    inside = verdict.branch_layers(stages)
    for st, lay in zip(stages, layers):
        lay["problems"] = problems(lay, inside.get(st.index))
    weight_tensors = [p[0] for p in params]
    stream = _stream(probe, net, grad, x) if probe.residual else None
    outcome, first_bad, why = verdict.verdict(stages, layers, weight_tensors, stream)
    out = {"scheme": spec, "verdict": outcome, "first_bad_layer": first_bad, "explanation": why,
           "warnings": warnings(stages, layers, weight_tensors, [p[2] for p in params]),
           "layers": layers}
    if stream is not None:
        out["stream"] = stream
    return out


def _stream(probe: Probe, net: Network, grad: dict, x: np.ndarray) -> list:
    """The residual stream after each branch: its RMS and variance over the batch (every token and feature),
    their ratio to the probe input's, and the RMS of the gradient reaching it, as a ratio to the output's."""
    ref = float(np.sqrt(np.mean(x * x)))
    g_ref = grad.get(len(probe.stages) - 1)
    out, st = [], probe.stages
    for k, (first, last) in enumerate(probe.residual):
        s = net.outputs[last] if last < len(net.outputs) else None  # None: the forward pass stopped before it
        rms = float(np.sqrt(np.mean(s * s))) if s is not None else None
        norm = "pre" if st[first].type == "layernorm" else \
            "post" if last + 1 < len(st) and st[last + 1].type == "layernorm" else "none"
        g = grad.get(last)
        out.append({
            "branch": k, "first_layer": st[first].name, "last_layer": st[last].name, "norm": norm,
            "rms": as_number(rms) if rms is not None else None,
            "variance": as_number(np.var(s)) if s is not None else None,
            "ratio": as_number(rms / ref) if rms is not None else None,
            "gradient_rms": as_number(g) if g is not None else None,
            "gradient_ratio": as_number(g / g_ref) if g is not None and g_ref else None,
        })
    return out


def run(probe: Probe, cost: dict | None = None) -> dict:
    """Run a validated request (limits already checked): the response document."""
    out_shape = probe.stages[-1].next_shape
    if probe.tokens is not None:
        out_shape = (probe.tokens, *out_shape)
    x, g_out = probe_streams(probe.seed, probe.batch, probe.input_shape, out_shape)
    if probe.tokens is not None:  # every token is a row of the network's batch
        x, g_out = x.reshape(-1, x.shape[-1]), g_out.reshape(-1, g_out.shape[-1])
    results = [_run_scheme(probe, plan, spec, x, g_out) for plan, spec in zip(probe.plans, probe.schemes)]
    return {
        "seed": probe.seed,
        "batch": probe.batch,
        "dtype": probe.document["dtype"],
        "layout": probe.document["layout"],
        "input_shape": list(probe.input_shape),
        "output_shape": list(out_shape),
        "engine": engine_info(),
        "request": probe.request(),
        "cost": cost if cost is not None else estimate_cost(probe),
        "thresholds": {**THRESHOLDS, **({"stream_growth": verdict.STREAM_GROWTH} if probe.residual else {})},
        "results": results,
    }


def diagnose(request: DiagnoseRequest, *, limits: dict | None = None) -> dict:
    """Build the probe, check ``limits`` (see ``check_limits``) on the estimated cost before anything is
    drawn, and run: ``{seed, batch, ..., results: [one per scheme, in request order]}``."""
    probe = build_probe(request)
    cost = estimate_cost(probe)
    check_limits(cost, limits)
    return run(probe, cost)


def fingerprint(probe: "Probe") -> str:
    """sha256 of the normalized request, the engine and the diagnostics' version: the response
    is a pure function of it (the HTTP ETag)."""
    body = json.dumps({"request": probe.request(), "engine": engine_info(), "diagnose": DIAGNOSE_VERSION},
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()
