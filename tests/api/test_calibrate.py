"""POST /v1/calibrate over HTTP (Flask test client): the calibrated weights in every format, the
summary and its headers, the ETag and 304, field errors (422) and limits (413).

Responses are checked against openapi.yaml with openapi-core (``check_openapi``)."""

from __future__ import annotations

import io
import json
import re
import zipfile

import numpy as np
import pytest
from safetensors.numpy import load as load_safetensors

from service import create_app
from service.core import calibrate as cal
from service.document import load_calibrate_request
from tests.helpers import LLAMA_TINY

from .helpers import assert_problem

MLP = {"architecture": {"layers": [
    {"type": "dense", "name": "fc1", "in_features": 16, "out_features": 32, "activation": "relu"},
    {"type": "dense", "name": "fc2", "in_features": 32, "out_features": 8}]},
    "seed": 3, "bias": {"name": "normal", "std": 0.2}, "calibration": {"batch": 64, "tolerance": 0.01}}


def engine(doc):
    """The calibrated plan of a document, as the engine makes it."""
    return cal.run(cal.build(load_calibrate_request(doc)))


def post(client, doc, check_openapi=None, **kw):
    r = client.post("/v1/calibrate", json=doc, **kw)
    if check_openapi is not None:
        check_openapi({"path": "/v1/calibrate", "method": "POST", "json": doc, **kw}, r)
    return r


def test_json_answer_carries_the_weights_and_the_summary(client, check_openapi):
    r = post(client, MLP, check_openapi)
    assert r.status_code == 200, r.get_data(as_text=True)[:500]
    body = r.get_json()
    plan = engine(MLP)
    assert body["calibration"] == json.loads(json.dumps(plan.summary))
    assert body["calibration"]["settings"] == {"tolerance": 0.01, "max_iterations": 10, "batch": 64, "probe_seed": 3,
                                               "bias_first": False}
    layers = body["calibration"]["layers"]
    assert [lay["name"] for lay in layers] == ["fc1", "fc2"] and body["calibration"]["converged"]
    assert all(abs(lay["std"] - 1) <= 0.01 for lay in layers)
    by_name = {t["name"]: t for t in body["tensors"]}
    for lay in layers:
        t = by_name[f"{lay['name']}.weight"]
        assert t["calibration"] == {"factor": lay["factor"], "iterations": lay["iterations"], "converged": True}
        assert t["scheme"]["name"] == "orthogonal"   # the default start
        start = next(u for u in plan.job.plan.tensors if u.name == t["name"]).generate().astype(np.float64)
        np.testing.assert_allclose(np.array(t["values"]), start * lay["factor"], rtol=1e-6)
    assert "calibration" not in by_name["fc1.bias"]   # not shifted: the starting bias
    assert r.headers["X-Weightinit-Calibration-Factors"] == ",".join(repr(lay["factor"]) for lay in layers)
    assert r.headers["X-Weightinit-Calibration-Iterations"] == ",".join(str(lay["iterations"]) for lay in layers)
    assert re.fullmatch(r'"[0-9a-f]{64}-calibrate-json"', r.headers["ETag"])
    assert r.headers["X-Weightinit-Scheme"] == "orthogonal" and "immutable" in r.headers["Cache-Control"]


@pytest.mark.parametrize("fmt", ["safetensors", "npz"])
def test_binary_formats_carry_the_same_values_and_the_summary(client, check_openapi, fmt):
    as_json = post(client, MLP).get_json()
    doc = {**MLP, "format": fmt}
    r = post(client, doc, check_openapi)
    assert r.status_code == 200 and r.headers["Content-Disposition"].startswith("attachment")
    assert r.headers["X-Weightinit-Calibration-Factors"] == \
        ",".join(repr(lay["factor"]) for lay in as_json["calibration"]["layers"])
    if fmt == "safetensors":
        tensors = load_safetensors(r.data)
        n = int.from_bytes(r.data[:8], "little")
        report = json.loads(json.loads(r.data[8:8 + n])["__metadata__"]["weightinit"])
    else:
        z = zipfile.ZipFile(io.BytesIO(r.data))
        tensors = {name[:-4]: np.load(io.BytesIO(z.read(name))) for name in z.namelist() if name != "manifest.npy"}
        report = json.loads(str(np.load(io.BytesIO(z.read("manifest.npy")))))
    assert report["calibration"] == as_json["calibration"]
    for t in as_json["tensors"]:
        np.testing.assert_array_equal(tensors[t["name"]], np.array(t["values"], dtype=np.float32))


def test_npy_of_a_single_tensor_and_minimal_metadata(client, check_openapi):
    one = {"architecture": {"layers": [{"type": "dense", "name": "fc", "in_features": 8, "out_features": 4}]},
           "bias": False, "format": "npy"}
    r = post(client, one, check_openapi)
    assert r.status_code == 200
    w = np.load(io.BytesIO(r.data))
    assert w.shape == (4, 8) and float(r.headers["X-Weightinit-Calibration-Factors"]) > 0
    minimal = post(client, {**MLP, "format": "safetensors", "metadata": "minimal"}, check_openapi)
    n = int.from_bytes(minimal.data[:8], "little")
    assert json.loads(minimal.data[8:8 + n])["__metadata__"] == {"format": "pt"}
    assert minimal.headers["ETag"].endswith('-calibrate-safetensors.minimal"')
    assert minimal.headers["X-Weightinit-Calibration-Iterations"]   # the headers carry it still


def test_deterministic_and_304_before_anything_is_drawn(client, monkeypatch, check_openapi):
    first, again = post(client, MLP), post(client, MLP)
    assert first.data == again.data and first.headers["ETag"] == again.headers["ETag"]
    etag = first.headers["ETag"]
    for changed in ({**MLP, "calibration": {**MLP["calibration"], "bias_first": True}},
                    {**MLP, "calibration": {**MLP["calibration"], "probe_seed": 4}}, {**MLP, "seed": 4}):
        assert post(client, changed).headers["ETag"] != etag
    from service.core.plan import TensorPlan

    def boom(*a, **k):
        raise AssertionError("drew weights although the ETag matched")

    monkeypatch.setattr(TensorPlan, "generate", boom)
    r = post(client, MLP, check_openapi, headers={"If-None-Match": etag})
    assert r.status_code == 304 and r.get_data() == b"" and r.headers["ETag"] == etag


def test_bias_first_shifts_each_units_mean_before_rescaling(client):
    plain = post(client, MLP).get_json()
    shifted = post(client, {**MLP, "calibration": {**MLP["calibration"], "bias_first": True}}).get_json()
    assert all(lay["bias_shifted"] for lay in shifted["calibration"]["layers"])
    b = {t["name"]: t for t in shifted["tensors"]}["fc1.bias"]
    assert b["calibration"] == {"bias_shifted": True}
    # the order matters: the factors differ from those of the unshifted biases
    assert [lay["factor"] for lay in plain["calibration"]["layers"]] != \
        [lay["factor"] for lay in shifted["calibration"]["layers"]]


@pytest.mark.parametrize("change,field,words", [
    ({"calibration": {"tolerance": 1.5}}, "calibration.tolerance", "less than or equal to 1.0"),
    ({"calibration": {"max_iterations": 0}}, "calibration.max_iterations", "greater than or equal to 1"),
    ({"calibration": {"max_iterations": 101}}, "calibration.max_iterations", "less than or equal to 100"),
    ({"calibration": {"batch": 1}}, "calibration.batch", "greater than or equal to 2"),
    ({"calibration": {"bias_first": 1}}, "calibration.bias_first", "Not a valid boolean"),
    ({"calibration": {"probe_seed": -1}}, "calibration.probe_seed", "greater than or equal to 0"),
    ({"calibration": {"tolerence": 0.1}}, "calibration.tolerence", "Unknown field"),
    ({"calibration": 3}, "calibration", "Invalid input type"),
    ({"tensors": ["fc1.*"]}, "tensors", "tensor selection does not apply"),
    ({"format": "hf"}, "format", ""),
    ({"architecture": {"layers": [{"type": "lstm", "name": "rnn", "input_size": 4, "hidden_size": 8}]}},
     "architecture.layers.0.type", "layer 'rnn' is a 'lstm'"),
    ({"architecture": LLAMA_TINY["architecture"]}, "architecture.hf_config", "/v1/calibrate runs"),
    ({"scheme": "zeros", "bias": "zeros"}, "calibration", "std 0"),
])
def test_bad_documents_are_422_naming_the_field(client, check_openapi, change, field, words):
    doc = {**MLP, **change}
    r = post(client, doc, check_openapi)
    body = assert_problem(r, 422, "invalid-document")
    assert field in body["errors"], body
    assert words in body["errors"][field][0]


@pytest.mark.parametrize("config,limit", [
    ({"diagnose_max_batch": 32}, "diagnose_max_batch"),
    ({"diagnose_max_cost": 1000}, "diagnose_max_cost"),
    ({"diagnose_max_bytes": 1 << 20}, "diagnose_max_bytes"),
    ({"max_json_elements": 100}, "max_json_elements"),
])
def test_limits_are_413_naming_the_limit_before_anything_is_drawn(config, limit, monkeypatch, check_openapi):
    client = create_app(config).test_client()
    from service.core.plan import TensorPlan

    def boom(*a, **k):
        raise AssertionError("drew weights before checking the limits")

    monkeypatch.setattr(TensorPlan, "generate", boom)
    doc = {**MLP, "architecture": {"layers": [
        {"type": "dense", "name": "fc1", "in_features": 256, "out_features": 256, "activation": "relu"},
        {"type": "dense", "name": "fc2", "in_features": 256, "out_features": 8}]}}
    r = post(client, doc, check_openapi)
    body = assert_problem(r, 413, "limit-exceeded")
    assert body["limit"] == limit and body["allowed"] == next(iter(config.values()))
    if limit.startswith("diagnose_"):
        cost = cal.estimate_cost(cal.build(load_calibrate_request(doc)))
        key = {"diagnose_max_batch": "batch", "diagnose_max_cost": "multiply_adds", "diagnose_max_bytes": "peak_bytes"}
        assert body["requested"] == cost[key[limit]]


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
def test_tiny_or_subnormal_starts_are_answered_never_a_500(client, dtype):
    """Weights that underflow (a subnormal scale) give outputs of std 0 or below float precision: rescaled,
    or a 422 naming the field; never a 500, never non-finite weights."""
    from tests.hardening.test_bad_input import SUBNORMAL_SCHEMES
    for scheme in SUBNORMAL_SCHEMES:
        doc = {**MLP, "scheme": scheme, "dtype": dtype, "bias": "zeros", "calibration": {"batch": 8}}
        r = post(client, doc)
        assert r.status_code in (200, 422), (scheme, r.status_code, r.get_data(as_text=True)[:300])
        if r.status_code == 422:
            errors = assert_problem(r, 422, "invalid-document")["errors"]
            assert all(k.startswith(("scheme", "calibration")) for k in errors), errors
        else:
            for t in r.get_json()["tensors"]:
                assert np.isfinite(np.array(t["values"], dtype=np.float64)).all(), (scheme, t["name"])


def test_the_etag_names_the_blas_the_bytes_and_file_name_do_not(client, monkeypatch):
    doc = {**MLP, "format": "safetensors"}
    here = post(client, doc)
    import importlib
    monkeypatch.setattr(importlib.import_module("service.core.calibrate.run"), "linalg_identity", lambda: {"machine": "elsewhere"})
    there = post(client, doc)
    assert here.headers["ETag"] != there.headers["ETag"]
    assert here.data == there.data and here.headers["Content-Disposition"] == there.headers["Content-Disposition"]
    weights = client.post("/v1/weights", json={k: v for k, v in doc.items() if k != "calibration"})
    assert weights.headers["Content-Disposition"] != here.headers["Content-Disposition"]   # not the uncalibrated file


def test_the_format_is_negotiated_as_for_weights(client, check_openapi):
    r = post(client, MLP, check_openapi, headers={"Accept": "application/vnd.safetensors"})
    assert r.status_code == 200 and r.mimetype == "application/vnd.safetensors"
    assert r.headers["ETag"].endswith('-calibrate-safetensors"')
    r = post(client, {**MLP, "format": "npz"}, check_openapi, headers={"Accept": "application/json"})
    assert_problem(r, 406, "not-acceptable")
