"""Running a calibrate request: the probe (the diagnose engine's), its cost and limits, LSUV, and the
calibrated plan whose tensors the output formats write like any other.

The calibrated plan is the request's plan with each weight (and each shifted bias) replaced by a
``CalibratedTensor``: the same theory (the starting scheme's), its values computed here, and a
``calibration`` entry (factor, rescalings); the report's head gets the summary (``calibration``:
settings and one entry per layer), so JSON, the npz manifest and the safetensors metadata carry it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields
from functools import cached_property

import numpy as np

from .. import diagnose as dg
from ..diagnose.cost import drawing_work
from ..diagnose.measure import layer_params
from ..dtypes import to_storage
from ..generate import Source
from ..linalg_identity import identity as linalg_identity
from ..plan import Plan, TensorPlan, engine_info
from .lsuv import calibrate as lsuv_calibrate
from .request import CalibrateRequest, Calibration, runnable

#: Bumped whenever the algorithm or the summary changes (part of the ETag).
CALIBRATE_VERSION = 1
#: What the summary says is measured.
STATISTIC = ("std of each layer's outputs (before its activation) over every element of the probe batch, "
             "Bessel-corrected, as torch.Tensor.std()")

#: limits key -> (cost key, field the error names, what it counts), as ``diagnose.check_limits`` takes them:
#: calibration is held to the diagnose limits (the same engine), under its own words.
LIMITS = {
    "max_batch": ("batch", "calibration.batch", "examples in the probe batch"),
    "max_cost": ("multiply_adds", "calibration.max_iterations",
                 "multiply-adds (drawing, and every layer's forward pass, at most max_iterations + 1 times)"),
    "max_bytes": ("peak_bytes", "architecture", "bytes of working memory"),
}


@dataclass(frozen=True)
class Job:
    """A calibrate request ready to run: the probe (one plan, the network) and the calibration."""

    probe: dg.Probe
    calibration: Calibration

    @property
    def plan(self) -> Plan:
        return self.probe.plans[0]

    @property
    def probe_seed(self) -> int:
        c = self.calibration
        return self.probe.seed if c.probe_seed is None else c.probe_seed

    def settings(self) -> dict:
        return self.calibration.document(self.probe.seed)

    @cached_property
    def fingerprint(self) -> str:
        """sha256 of the normalized request, the calibration, the engine and the algorithm's version (the
        artifact's file name, as ``Plan.fingerprint``)."""
        body = json.dumps({"request": self.plan.document, "calibration": self.settings(),
                           "engine": engine_info(self.plan.request.rng), "calibrate": CALIBRATE_VERSION},
                          sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(body.encode()).hexdigest()

    @cached_property
    def etag_value(self) -> str:
        """sha256 of the fingerprint and the machine's BLAS/LAPACK (``linalg_identity``): the factors come
        out of float64 matrix products, whose last bits can depend on the BLAS kernel, so the calibrated
        weights are a pure function of both (the HTTP ETag)."""
        body = json.dumps({"fingerprint": self.fingerprint, "linalg": linalg_identity()}, sort_keys=True,
                          separators=(",", ":"))
        return hashlib.sha256(body.encode()).hexdigest()


def build(req: CalibrateRequest) -> Job:
    """The network and its plan (nothing drawn); SpecError names the first field the engine cannot run."""
    runnable(req.request)
    c = req.calibration
    probe = dg.build_probe(dg.DiagnoseRequest(req.request, None, c.batch, c.spatial_size))
    return Job(probe, c)


def estimate_cost(job: Job) -> dict:
    """What calibrating costs, from the document alone: drawing the starting weights (as diagnose counts
    it), then per layer at most 1 + max_iterations forward passes (one more with ``bias_first``);
    ``peak_bytes`` is diagnose's estimate, an upper bound (it also holds a backward pass)."""
    c = job.calibration
    passes = 1 + c.max_iterations + int(c.bias_first)
    forward = sum(st.macs for st in job.probe.stages)
    return {**dg.estimate_cost(job.probe),
            "multiply_adds": passes * job.probe.batch * forward + drawing_work(job.probe)}


def check_limits(cost: dict, limits: dict | None) -> None:
    """SpecError (413, naming ``diagnose_<key>``) when the cost exceeds a configured diagnose limit."""
    dg.check_limits(cost, limits, table=LIMITS)


class Computed(Source):
    """Values computed by the calibration (storage dtype, storage shape), sliced like a whole matrix."""

    def whole(self) -> np.ndarray:
        return self.t.values.reshape(-1)


@dataclass
class CalibratedTensor(TensorPlan):
    """A tensor of the calibrated plan: the starting tensor's plan and theory, its calibrated values."""

    values: np.ndarray | None = None
    calibration: dict | None = None

    @property
    def source(self) -> Source:
        return Computed(self)

    def theory(self) -> dict:
        return {**super().theory(), "calibration": self.calibration}


@dataclass
class CalibratedPlan(Plan):
    """The request's plan with its calibrated tensors; its fingerprint and header name the calibration."""

    job: Job | None = None
    summary: dict | None = None

    @cached_property
    def fingerprint(self) -> str:
        return self.job.fingerprint

    def header(self) -> dict:
        return {**super().header(), "calibration": self.summary}


def _calibrated(t: TensorPlan, values: np.ndarray, entry: dict) -> CalibratedTensor:
    return CalibratedTensor(**{f.name: getattr(t, f.name) for f in fields(TensorPlan)}, values=values,
                            calibration=entry)


def run(job: Job) -> CalibratedPlan:
    """Draw the starting weights, calibrate layer by layer, and return the calibrated plan (limits checked
    before: ``estimate_cost``, ``check_limits``)."""
    probe, c, plan = job.probe, job.calibration, job.plan
    x, _ = dg.probe_streams(job.probe_seed, c.batch, probe.input_shape, (0,))  # (0,): no output gradient
    params = [layer_params(plan, st) for st in probe.stages]
    results, shifted = lsuv_calibrate(
        probe.stages, [p[1] for p in params], [p[3] for p in params],
        [(p[0].dtype, p[2].dtype if p[2] is not None else None) for p in params], x,
        tolerance=c.tolerance, max_iterations=c.max_iterations, bias_first=c.bias_first)
    replaced = {}
    for (wt, w, bt, _), r, b in zip(params, results, shifted):
        replaced[wt.name] = _calibrated(wt, _storage(w * r.factor, wt), {"factor": r.factor, "iterations": r.iterations,
                                                                         "converged": r.converged})
        if b is not None:
            replaced[bt.name] = _calibrated(bt, _storage(b, bt), {"bias_shifted": True})
    summary = {"method": "lsuv", "version": CALIBRATE_VERSION, "settings": job.settings(), "statistic": STATISTIC,
               "converged": all(r.converged for r in results), "layers": [r.document() for r in results]}
    fixed = {f.name: getattr(plan, f.name) for f in fields(Plan)}
    fixed.update(tensors=[replaced.get(t.name, t) for t in plan.tensors],
                 selected=[replaced.get(t.name, t) for t in plan.selected])
    return CalibratedPlan(**fixed, job=job, summary=summary)


def _storage(values: np.ndarray, t: TensorPlan) -> np.ndarray:
    """float64 values in PyTorch's view -> the tensor's storage dtype and layout (``layer_params`` undone)."""
    v = values.transpose(t.spec.perm) if values.ndim > 1 else values
    return to_storage(np.ascontiguousarray(v, dtype=t.dtype.compute), t.dtype).reshape(t.shape)
