"""POST /v1/diagnose over HTTP (Flask test client) and the explorer page's routes.

Responses are checked against openapi.yaml with openapi-core (``check_openapi``)."""

from __future__ import annotations

import json
import re

import pytest

from service import create_app
from service.config import load_config
from service.core import diagnose as dg
from tests.helpers import diagnose_of, probe_of

from .helpers import assert_problem


def tanh_net(depth=3, width=8, **kw):
    layers = [{"type": "dense", "name": f"fc{i}", "in_features": width, "out_features": width, "activation": "tanh"}
              for i in range(depth)]
    return {"architecture": {"layers": layers}, **kw}


SMALL = tanh_net(width=64, schemes=["xavier_normal", "zeros", {"name": "normal", "std": 1.0}], batch=16, seed=5)


def test_diagnose_returns_the_engines_result(client, check_openapi):
    r = client.post("/v1/diagnose", json=SMALL)
    assert r.status_code == 200, r.get_data(as_text=True)[:500]
    check_openapi({"path": "/v1/diagnose", "method": "POST", "json": SMALL}, r)
    body = r.get_json()
    assert body == json.loads(json.dumps(diagnose_of(SMALL)))     # the same numbers as the engine
    assert [res["verdict"] for res in body["results"]] == ["healthy", "symmetric", "saturated"]
    assert r.headers["X-Weightinit-Seed"] == "5"
    assert re.fullmatch(r'"[0-9a-f]{64}-diagnose"', r.headers["ETag"])
    assert "immutable" in r.headers["Cache-Control"]


def test_diagnose_etag_and_304_before_running(client, monkeypatch, check_openapi):
    etag = client.post("/v1/diagnose", json=SMALL).headers["ETag"]

    def boom(*a, **k):
        raise AssertionError("ran although the ETag matched")

    monkeypatch.setattr(dg, "run", boom)
    kw = {"path": "/v1/diagnose", "method": "POST", "json": SMALL, "headers": {"If-None-Match": etag}}
    r = client.post("/v1/diagnose", json=SMALL, headers={"If-None-Match": etag})
    assert r.status_code == 304 and r.get_data() == b""
    assert r.headers["ETag"] == etag
    check_openapi(kw, r)
    other = client.post("/v1/diagnose", json={**SMALL, "seed": 6}, headers={"If-None-Match": etag})
    assert other.status_code == 500   # not a 304: the (sabotaged) run was reached


def test_diagnose_with_the_default_scheme_and_a_cnn(client, check_openapi):
    doc = {"architecture": {"layers": [
        {"type": "conv2d", "name": "c1", "in_channels": 3, "out_channels": 4, "kernel_size": 3, "activation": "relu"},
        {"type": "conv1d", "name": "bad", "in_channels": 4, "out_channels": 4, "kernel_size": 3}]}}
    r = client.post("/v1/diagnose", json=doc)
    body = assert_problem(r, 422, "invalid-document")
    assert "architecture.layers.1.type" in body["errors"]
    doc["architecture"]["layers"][1] = {"type": "dense", "name": "head", "in_features": 4 * 6 * 6, "out_features": 3,
                                        "activation": "softmax"}
    doc.update(spatial_size=[6, 6], batch=4)
    r = client.post("/v1/diagnose", json=doc)
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    check_openapi({"path": "/v1/diagnose", "method": "POST", "json": doc}, r)
    body = r.get_json()
    assert body["results"][0]["scheme"] == {"name": "auto"} and body["input_shape"] == [3, 6, 6]


@pytest.mark.parametrize("doc,field", [
    ({**SMALL, "colour": 1}, "colour"),
    ({**SMALL, "tensors": ["fc0.weight"]}, "tensors"),
    ({**SMALL, "schemes": []}, "schemes"),
    ({**SMALL, "schemes": ["he_normal"] * 9}, "schemes"),
    ({**SMALL, "schemes": ["he_normal", "nope"]}, "schemes.1.name"),
    ({**SMALL, "batch": 1}, "batch"),
    ({**SMALL, "batch": 5000}, "batch"),
    ({**SMALL, "batch": "16"}, "batch"),
    ({**SMALL, "spatial_size": [0]}, "spatial_size"),
    ({**SMALL, "seed": -1}, "seed"),
])
def test_invalid_documents_are_422_naming_the_field(client, doc, field, check_openapi):
    r = client.post("/v1/diagnose", json=doc)
    body = assert_problem(r, 422, "invalid-document")
    assert field in body["errors"], body
    check_openapi({"path": "/v1/diagnose", "method": "POST", "json": doc}, r)


@pytest.mark.parametrize("layers,field,words", [
    ([{"type": "lstm", "input_size": 4, "hidden_size": 4}], "architecture.layers.0.type", "diagnose runs"),
    ([{"type": "dense", "in_features": 4, "out_features": 4, "activation": "softmax"},
      {"type": "dense", "in_features": 4, "out_features": 2}], "architecture.layers.0.activation", "last layer"),
    ([{"type": "dense", "in_features": 4, "out_features": 5},
      {"type": "dense", "in_features": 4, "out_features": 2}], "architecture.layers.1.in_features", "output size 5"),
])
def test_engine_errors_are_422_naming_the_field(client, layers, field, words):
    r = client.post("/v1/diagnose", json={"architecture": {"layers": layers}})
    body = assert_problem(r, 422, "invalid-document")
    assert words in body["errors"][field][0]


@pytest.mark.parametrize("config,limit,requested", [
    ({"diagnose_max_batch": 8}, "diagnose_max_batch", 16),
    ({"diagnose_max_cost": 1000}, "diagnose_max_cost", None),
    ({"diagnose_max_bytes": 1 << 20}, "diagnose_max_bytes", None),
])
def test_limits_are_413_naming_the_limit_before_anything_runs(config, limit, requested, monkeypatch, check_openapi):
    app = create_app(config)
    client = app.test_client()
    from service.core.plan import TensorPlan

    def boom(*a, **k):
        raise AssertionError("drew weights before checking the limits")

    monkeypatch.setattr(TensorPlan, "generate", boom)
    doc = tanh_net(depth=4, width=128, batch=16)
    r = client.post("/v1/diagnose", json=doc)
    body = assert_problem(r, 413, "limit-exceeded")
    assert body["limit"] == limit and body["allowed"] == next(iter(config.values()))
    cost = dg.estimate_cost(probe_of(doc))
    expected = {"diagnose_max_batch": cost["batch"], "diagnose_max_cost": cost["multiply_adds"],
                "diagnose_max_bytes": cost["peak_bytes"]}[limit]
    assert body["requested"] == expected and (requested is None or requested == expected)
    assert limit in body["detail"]
    check_openapi({"path": "/v1/diagnose", "method": "POST", "json": doc}, r)


def test_limits_come_from_the_environment():
    cfg = load_config(environ={"WEIGHTINIT_DIAGNOSE_MAX_BATCH": "64", "WEIGHTINIT_DIAGNOSE_MAX_COST": "1_000_000",
                               "WEIGHTINIT_DIAGNOSE_MAX_BYTES": "2097152"})
    assert cfg.diagnose_limits() == {"max_batch": 64, "max_cost": 1_000_000, "max_bytes": 2097152}
    assert {"diagnose_max_batch", "diagnose_max_cost", "diagnose_max_bytes"} <= set(cfg.limits())
    with pytest.raises(Exception, match="WEIGHTINIT_DIAGNOSE_MAX_BATCH"):
        load_config(environ={"WEIGHTINIT_DIAGNOSE_MAX_BATCH": "5000"})


def test_defaults_fit_the_explorer_presets():
    """The page's presets (20 x 256 MLPs and the small CNN, batch 128, up to 8 schemes for the MLPs'
    default comparison of 3) run under the default limits."""
    cfg = load_config(environ={})
    mlp = tanh_net(depth=20, width=256, batch=128, schemes=["xavier_normal"] * 3)
    cost = dg.estimate_cost(probe_of(mlp))
    dg.check_limits(cost, cfg.diagnose_limits())
    assert cost["multiply_adds"] * 8 / 3 < cfg.diagnose_max_cost


def test_wrong_accept_is_406_and_wrong_content_type_is_415(client):
    assert_problem(client.post("/v1/diagnose", json=SMALL, headers={"Accept": "application/x-npy"}), 406, "not-acceptable")
    assert_problem(client.post("/v1/diagnose", data=json.dumps(SMALL), content_type="text/plain"), 415,
                   "unsupported-media-type")
    assert_problem(client.post("/v1/diagnose", data=b"{", content_type="application/json"), 400, "malformed-json")


def test_too_many_layers_is_413_before_validation():
    client = create_app({"max_layers": 2}).test_client()
    body = assert_problem(client.post("/v1/diagnose", json=tanh_net(depth=3)), 413, "limit-exceeded")
    assert body["limit"] == "max_layers"


# --------------------------------------------------------------------------- the explorer's routes

def test_explorer_page_is_local_and_has_a_csp(client, check_openapi, spec_dict):
    r = client.get("/")
    assert r.status_code == 200 and r.mimetype == "text/html"
    check_openapi({"path": "/", "method": "GET"}, r)
    csp = r.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'self'" and directives["script-src"] == "'self'"
    assert "unsafe" not in csp
    html = r.get_data(as_text=True)
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "inline script"
    assert " style=" not in html and "<style" not in html          # style-src 'self' forbids inline styles too
    refs = re.findall(r'(?:src|href)="([^"#]+)"', html)
    assets = [u for u in refs if u.startswith("/explorer/")]
    assert {a.rsplit("/", 1)[1] for a in assets} == {"explorer.js", "plots.js", "explorer.css"}
    for u in refs:
        assert u.startswith("/") or u.startswith("data:"), f"external reference {u}"
    for a in assets:
        asset = client.get(a)
        assert asset.status_code == 200 and asset.get_data()
        documented = spec_dict["paths"]["/explorer/{name}"]["get"]
        assert asset.mimetype in documented["responses"]["200"]["content"]
        assert a.rsplit("/", 1)[1] in documented["parameters"][0]["schema"]["enum"]
        if a.endswith(".js"):
            assert asset.mimetype == "text/javascript"
            text = asset.get_data(as_text=True)
            assert "eval(" not in text and "new Function" not in text and "innerHTML" not in text


def test_documented_explorer_files_are_the_served_ones(spec_dict):
    from service.api.diagnose import EXPLORER_FILES

    documented = spec_dict["paths"]["/explorer/{name}"]["get"]
    assert documented["parameters"][0]["schema"]["enum"] == list(EXPLORER_FILES)
    assert set(documented["responses"]["200"]["content"]) == set(EXPLORER_FILES.values())


def test_explorer_serves_nothing_else(client):
    for name in ("index.html", "..%2Fdiagnose.py", "x.js"):
        assert client.get(f"/explorer/{name}").status_code == 404


def test_explorer_assets_revalidate(client):
    r = client.get("/explorer/explorer.js")
    again = client.get("/explorer/explorer.js", headers={"If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304


def test_the_pages_presets_are_valid_diagnose_documents(client):
    """The presets in explorer.js are real documents: extract the CNN's layers and run them."""
    js = client.get("/explorer/explorer.js").get_data(as_text=True)
    assert 'dense("fc", 32 * 8 * 8, 128, "relu")' in js and 'spatial: "8x8"' in js
    layers = [
        {"type": "conv2d", "name": f"conv{i + 1}", "in_channels": cin, "out_channels": cout, "kernel_size": 3,
         "activation": "relu"} for i, (cin, cout) in enumerate([(3, 16), (16, 32), (32, 32), (32, 32)])
    ] + [{"type": "dense", "name": "fc", "in_features": 2048, "out_features": 128, "activation": "relu"},
         {"type": "dense", "name": "head", "in_features": 128, "out_features": 10, "activation": "softmax"}]
    r = client.post("/v1/diagnose", json={"architecture": {"layers": layers}, "spatial_size": [8, 8], "batch": 16,
                                          "schemes": ["he_normal", "torch_default"]})
    assert r.status_code == 200
    assert [res["verdict"] for res in r.get_json()["results"]] == ["healthy", "vanishing"]
