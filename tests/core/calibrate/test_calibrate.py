"""LSUV calibration (service.core.calibrate) on its own: what the reference cannot check (bias_first,
dtypes and layouts, the iteration bound, the cost), on documents validated as the API validates them."""

from __future__ import annotations

import numpy as np
import pytest

from service.core import calibrate as cal
from service.core import diagnose as dg
from service.core.diagnose.measure import layer_params
from service.core.diagnose.network import Network
from service.core.dtypes import as_float
from service.document import load_calibrate_request


def mlp(**kw) -> dict:
    return {"architecture": {"layers": [
        {"type": "dense", "name": "a", "in_features": 12, "out_features": 24, "activation": "tanh"},
        {"type": "dense", "name": "b", "in_features": 24, "out_features": 16, "activation": "relu"},
        {"type": "dense", "name": "c", "in_features": 16, "out_features": 4}]}, "seed": 21, **kw}


def conv(**kw) -> dict:
    return {"architecture": {"layers": [
        {"type": "conv2d", "name": "k", "in_channels": 2, "out_channels": 6, "kernel_size": [3, 1], "activation": "relu"},
        {"type": "conv2d", "name": "g", "in_channels": 6, "out_channels": 4, "kernel_size": 3, "groups": 2,
         "activation": "relu"},
        {"type": "dense", "name": "fc", "in_features": 4 * 5 * 5, "out_features": 3}]}, "seed": 2,
        "calibration": {"batch": 8, "spatial_size": 5}, **kw}


def run(doc):
    job = cal.build(load_calibrate_request(doc))
    return job, cal.run(job)


def replay(job, plan):
    """Each layer's output std and unit means, recomputed from the calibrated tensors as stored."""
    by_name = {t.name: t for t in plan.tensors}
    weights, biases = [], []
    for st in job.probe.stages:
        wt, _, bt, _ = layer_params(job.plan, st)
        w = as_float(by_name[wt.name].generate(), wt.dtype).astype(np.float64)
        weights.append(np.ascontiguousarray(w.transpose(np.argsort(wt.spec.perm))))
        biases.append(None if bt is None else as_float(by_name[bt.name].generate(), bt.dtype).astype(np.float64))
    c = job.calibration
    x, _ = dg.probe_streams(job.probe_seed, c.batch, job.probe.input_shape, (0,))
    net = Network(job.probe.stages, weights, biases)
    return [(float(np.std(z, ddof=1)), z) for _, _, z, _ in net.forward(x)]


@pytest.mark.parametrize("doc", [
    mlp(), mlp(dtype="bfloat16"), mlp(dtype="float16", scheme="he_uniform", bias={"name": "normal", "std": 0.5}),
    mlp(dtype="float64", layout="keras", calibration={"bias_first": True}),
    conv(), conv(layout="keras", dtype="bfloat16", bias={"name": "uniform", "low": -1, "high": 1}),
], ids=["f32", "bf16", "f16-biased", "f64-keras-bias-first", "conv", "conv-keras-bf16"])
def test_the_reported_std_is_that_of_the_stored_weights(doc):
    job, plan = run(doc)
    stds = [s for s, _ in replay(job, plan)]
    assert [lay["std"] for lay in plan.summary["layers"]] == pytest.approx(stds, rel=1e-12)
    tol = job.calibration.tolerance
    assert all(abs(s - 1) <= tol for s in stds) and plan.summary["converged"]


def test_calibrated_weights_are_the_start_times_the_factor_in_storage_layout():
    job, plan = run(conv(layout="keras"))
    by_name = {t.name: t for t in plan.tensors}
    for lay, st in zip(plan.summary["layers"], job.probe.stages):
        wt = layer_params(job.plan, st)[0]
        start = wt.generate().astype(np.float64)
        assert by_name[wt.name].shape == wt.shape
        np.testing.assert_array_equal(by_name[wt.name].generate(), (start * lay["factor"]).astype(np.float32))


def test_bias_first_zeroes_each_units_mean_then_rescaling_moves_it():
    job, plan = run(mlp(bias={"name": "normal", "std": 0.5}, calibration={"bias_first": True, "tolerance": 0.001}))
    first = plan.summary["layers"][0]
    assert first["bias_shifted"]
    # with the starting weights and the shifted bias, every unit of the first layer has zero mean
    wt, w0, bt, _ = layer_params(job.plan, job.probe.stages[0])
    b = next(t for t in plan.tensors if t.name == bt.name).generate().astype(np.float64)
    x, _ = dg.probe_streams(job.probe_seed, job.calibration.batch, job.probe.input_shape, (0,))
    z0 = x @ w0.T + b
    np.testing.assert_allclose(z0.mean(axis=0), 0, atol=1e-6)   # float32 rounding of the bias
    # after the weights are rescaled by f, unit j's mean is (f - 1) * mean_j(W0 x): no longer zero
    _, z = replay(job, plan)[0]
    np.testing.assert_allclose(z.mean(axis=0), (first["factor"] - 1) * (x @ w0.T).mean(axis=0), atol=1e-5)
    assert np.abs(z.mean(axis=0)).max() > 1e-3
    plain = run(mlp(bias={"name": "normal", "std": 0.5}, calibration={"tolerance": 0.001}))[1]
    assert plain.summary["layers"][0]["factor"] != first["factor"]


def test_max_iterations_bounds_the_rescalings():
    # biases of std 3 keep every layer's output std above 1: no rescaling of the weights gets there
    doc = mlp(bias={"name": "normal", "std": 3.0}, calibration={"max_iterations": 3})
    _, plan = run(doc)
    assert [lay["iterations"] for lay in plan.summary["layers"]][0] == 3
    assert not plan.summary["layers"][0]["converged"] and not plan.summary["converged"]


def test_probe_seed_defaults_to_the_documents_seed():
    _, a = run(mlp())
    _, b = run(mlp(calibration={"probe_seed": 21}))
    _, c = run(mlp(calibration={"probe_seed": 22}))
    assert a.summary["layers"] == b.summary["layers"] != c.summary["layers"]
    assert a.summary["settings"]["probe_seed"] == 21


def test_cost_counts_one_forward_pass_per_rescaling():
    def cost(**c):
        return cal.estimate_cost(cal.build(load_calibrate_request(mlp(calibration=c))))

    job = cal.build(load_calibrate_request(mlp(calibration={"batch": 64})))
    forward = job.probe.batch * sum(st.macs for st in job.probe.stages)
    assert cost(batch=64, max_iterations=20)["multiply_adds"] - cost(batch=64, max_iterations=10)["multiply_adds"] \
        == 10 * forward
    assert cost(batch=64, bias_first=True)["multiply_adds"] - cost(batch=64)["multiply_adds"] == forward


def test_a_layer_with_constant_outputs_is_an_error_naming_calibration():
    from service.core import SpecError
    job = cal.build(load_calibrate_request(mlp(scheme="zeros", bias="zeros")))
    with pytest.raises(SpecError) as e:
        cal.run(job)
    assert e.value.field == "calibration" and "layer 'a'" in e.value.message



PEAK_CASES = {
    "mlp": {"architecture": {"layers": [
        {"type": "dense", "name": f"fc{i}", "in_features": 256, "out_features": 256, "activation": "relu"}
        for i in range(8)]}, "scheme": "he_normal", "bias": {"name": "normal", "std": 0.1},
        "calibration": {"batch": 256}},
    "orthogonal-wide": {"architecture": {"layers": [
        {"type": "dense", "name": "a", "in_features": 512, "out_features": 512, "activation": "tanh"},
        {"type": "dense", "name": "b", "in_features": 512, "out_features": 512}]}, "calibration": {"batch": 8}},
    "cnn-bf16": conv(dtype="bfloat16", calibration={"batch": 256, "spatial_size": 5, "bias_first": True}),
}


@pytest.mark.parametrize("case", PEAK_CASES)
def test_peak_bytes_bounds_the_real_peak(case):
    """The estimate (diagnose's, which also holds a backward pass) bounds what NumPy really allocates while
    calibrating and writing the calibrated tensors (tracemalloc sees NumPy's buffers)."""
    import tracemalloc

    job = cal.build(load_calibrate_request(PEAK_CASES[case]))
    est = cal.estimate_cost(job)["peak_bytes"]
    tracemalloc.start()
    try:
        plan = cal.run(job)
        for t in plan.tensors:
            t.generate()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= est, (peak, est)
