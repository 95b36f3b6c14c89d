"""Every error status as RFC 9457 problem+json, naming the field or the limit."""

from __future__ import annotations

import json

import pytest
from flask import Flask

from service import create_app
from service.api import errors
from service.core.distributions import WHOLE_MAX_ELEMENTS

from tests.helpers import plan_of

from .helpers import assert_problem, small


def post(client, path="/v1/weights", doc=None, **kw):
    if doc is not None:
        kw.setdefault("data", json.dumps(doc))
        kw.setdefault("content_type", "application/json")
    return client.post(path, **kw)


# ---------------------------------------------------------------- 400 malformed JSON
@pytest.mark.parametrize("body, fragment", [
    (b"{", "not valid JSON"),
    (b"", "empty"),
    (b"   ", "empty"),
    (b'{"seed": NaN, "architecture": {"layers": []}}', "not valid JSON"),
    (b'{"seed": Infinity}', "not valid JSON"),
    (b'{"seed": 1e999}', "not valid JSON"),
    (b"\xef\xbb\xbf{}", "not valid JSON"),
    (b'{"a": "\xff"}', "not valid JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
    (b'{"x": ' * 5000 + b"1" + b"}" * 5000, "not valid JSON"),
])
@pytest.mark.parametrize("path", ["/v1/weights", "/v1/plan"])
def test_malformed_json_is_400(client, body, fragment, path, check_openapi):
    r = client.post(path, data=body, content_type="application/json")
    p = assert_problem(r, 400, "malformed-json")
    assert fragment in p["detail"]
    check_openapi({"path": path, "method": "POST", "data": body, "content_type": "application/json"}, r)


def test_recursion_error_while_parsing_is_400(client, monkeypatch):
    import service.api.http as http

    def deep(_):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(http.orjson, "loads", deep)
    assert_problem(post(client, doc=small()), 400, "malformed-json")


def test_huge_integers_never_reach_a_slow_big_int_parse(client):
    head = b'{"architecture": {"layers": [{"type": "dense", "in_features": 2, "out_features": 2}]}, "seed": '
    # beyond a double: rejected by the parser (400)
    r = client.post("/v1/weights", data=head + b"9" * 4000 + b"}", content_type="application/json")
    assert "infinity" in assert_problem(r, 400, "malformed-json")["detail"]
    # beyond 64 bits: read as a float, so the schema names the field (422)
    for digits in (b"9" * 30, str(2 ** 64).encode()):
        r = client.post("/v1/weights", data=head + digits + b"}", content_type="application/json")
        assert list(assert_problem(r, 422, "invalid-document")["errors"]) == ["seed"]


# ---------------------------------------------------------------- 415
@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "application/json; charset=latin-1", "application/xml"])
def test_wrong_or_missing_content_type_is_415(client, content_type, check_openapi):
    kw = {"path": "/v1/weights", "method": "POST", "data": json.dumps(small())}
    if content_type:
        kw["content_type"] = content_type
    r = client.open(**kw)
    p = assert_problem(r, 415, "unsupported-media-type")
    assert p["supported"] == ["application/json"]
    check_openapi(kw, r)


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8", "application/merge-patch+json"])
def test_json_content_types_accepted(client, content_type):
    assert client.post("/v1/plan", data=json.dumps(small()), content_type=content_type).status_code == 200


# ---------------------------------------------------------------- 422
@pytest.mark.parametrize("doc, field", [
    ({"seed": 1}, "architecture"),
    (small(seed=-1), "seed"),
    (small(seed="5"), "seed"),
    (small(seed=True), "seed"),
    (small(dtype="int8"), "dtype"),
    (small(layout="jax"), "layout"),
    (small(format="pt"), "format"),
    (small(colour="red"), "colour"),
    (small(scheme="xavier"), "scheme.name"),
    (small(scheme={"name": "he_normal", "std": 1}), "scheme.std"),
    (small(scheme={"name": "normal", "std": 0}), "scheme.std"),
    (small(scheme={"name": "uniform", "low": 1, "high": 0}), "scheme.low"),
    (small(scheme={"name": "sparse"}), "scheme.sparsity"),
    (small(bias=True), "bias"),
    (small(tensors=[]), "tensors"),
    ({"architecture": {"layers": []}}, "architecture.layers"),
    ({"architecture": {"layers": [{"type": "dense", "in_features": 0, "out_features": 2}]}}, "architecture.layers.0.in_features"),
    ({"architecture": {"layers": [{"type": "dense", "in_features": 2.5, "out_features": 2}]}}, "architecture.layers.0.in_features"),
    ({"architecture": {"layers": [{"type": "dense", "in_features": 2}]}}, "architecture.layers.0.out_features"),
    ({"architecture": {"layers": [{"type": "dense", "in_features": 2, "out_features": 2, "kernel_size": 3}]}},
     "architecture.layers.0.kernel_size"),
    ({"architecture": {"layers": [{"type": "mlp"}]}}, "architecture.layers.0.type"),
    ({"architecture": {"layers": [{"type": "conv2d", "in_channels": 3, "out_channels": 4, "kernel_size": 3, "groups": 2}]}},
     "architecture.layers.0.groups"),
    ({"architecture": {"layers": [{"type": "conv2d", "in_channels": 3, "out_channels": 4, "kernel_size": [3]}]}},
     "architecture.layers.0.kernel_size"),
    ({"architecture": {"layers": [{"type": "attention", "embed_dim": 10, "num_heads": 3}]}}, "architecture.layers.0.embed_dim"),
    ({"architecture": {"layers": [{"type": "dense", "in_features": 2, "out_features": 2, "activation": "swish"}]}},
     "architecture.layers.0.activation"),
    ({"architecture": {"layers": [{"type": "dense", "in_features": 2, "out_features": 2, "name": "a b"}]}},
     "architecture.layers.0.name"),
    ({"architecture": {"layers": [{"type": "dense", "in_features": 2, "out_features": 2,
                                   "scheme": {"name": "normal", "std": "1"}}]}}, "architecture.layers.0.scheme.std"),
])
def test_invalid_document_is_422_naming_the_field(client, doc, field, check_openapi):
    r = post(client, doc=doc)
    p = assert_problem(r, 422, "invalid-document")
    assert field in p["errors"], p
    assert all(isinstance(m, str) and m for msgs in p["errors"].values() for m in msgs)
    assert p["detail"].startswith(next(iter(p["errors"])))
    check_openapi({"path": "/v1/weights", "method": "POST", "data": json.dumps(doc), "content_type": "application/json"}, r)


@pytest.mark.parametrize("doc, field, fragment", [
    # engine-level (SpecError) checks that marshmallow leaves to the engine
    (small(tensors=["nope.*"]), "tensors.0", "matches no tensor"),
    ({"architecture": {"layers": [{"type": "dense", "name": "a", "in_features": 2, "out_features": 2},
                                  {"type": "dense", "name": "a", "in_features": 2, "out_features": 2}]}},
     "architecture.layers.1.name", "duplicate"),
    ({"architecture": {"layers": [{"type": "tensor", "shape": [5]}]}, "scheme": "orthogonal"}, "scheme", "orthogonal"),
    ({"architecture": {"layers": [{"type": "embedding", "num_embeddings": 3, "embedding_dim": 2, "bias": "zeros"}]}},
     "architecture.layers.0.bias", "no bias"),
    (small(format="npy"), "format", "npz or safetensors"),
])
def test_engine_errors_are_422_naming_the_field(client, doc, field, fragment):
    p = assert_problem(post(client, doc=doc), 422, "invalid-document")
    assert list(p["errors"]) == [field], p
    assert fragment in p["errors"][field][0]


def test_plan_accepts_format_but_validates_it(client):
    assert client.post("/v1/plan", json=small(format="npz")).status_code == 200
    assert_problem(client.post("/v1/plan", json=small(format="pt")), 422, "invalid-document")


# ---------------------------------------------------------------- 413, before any allocation
def limited(**cfg):
    return create_app(cfg).test_client()


def test_body_over_max_body_bytes_is_413_from_content_length(check_openapi):
    c = limited(max_body_bytes=1000)
    doc = small(tensors=["fc.*"] * 200)
    r = post(c, doc=doc)
    p = assert_problem(r, 413, "limit-exceeded")
    assert (p["limit"], p["requested"], p["allowed"]) == ("max_body_bytes", len(json.dumps(doc)), 1000)


def test_chunked_body_over_max_body_bytes_is_413():
    import io

    c = limited(max_body_bytes=1000)
    body = json.dumps(small(tensors=["fc.*"] * 200)).encode()
    r = c.post("/v1/weights", input_stream=io.BytesIO(body), content_type="application/json",
               headers={"Transfer-Encoding": "chunked"}, environ_overrides={"wsgi.input_terminated": True})
    p = assert_problem(r, 413, "limit-exceeded")
    assert p["limit"] == "max_body_bytes" and p["allowed"] == 1000 and p["requested"] is None
    exact = json.dumps(small()).encode().ljust(1000)  # exactly at the limit: accepted
    r = c.post("/v1/plan", input_stream=io.BytesIO(exact), content_type="application/json",
               headers={"Transfer-Encoding": "chunked"}, environ_overrides={"wsgi.input_terminated": True})
    assert r.status_code == 200


def test_too_many_layers_is_413_before_validation():
    c = limited(max_layers=3)
    layer = {"type": "dense", "in_features": 2, "out_features": 2, "bogus": True}  # invalid, but counted first
    p = assert_problem(post(c, doc={"architecture": {"layers": [layer] * 4}}), 413, "limit-exceeded")
    assert (p["limit"], p["requested"], p["allowed"]) == ("max_layers", 4, 3)
    assert post(c, doc={"architecture": {"layers": [{"type": "dense", "in_features": 2, "out_features": 2}] * 3}}).status_code == 200


def test_too_many_tensors_is_413():
    c = limited(max_tensors=5)
    doc = {"architecture": {"layers": [{"type": "attention", "embed_dim": 4, "num_heads": 2}]}}  # 8 tensors
    p = assert_problem(post(c, doc=doc), 413, "limit-exceeded")
    assert p["limit"] == "max_tensors" and p["allowed"] == 5 and p["requested"] > 5
    assert_problem(post(c, path="/v1/plan", doc=doc), 413, "limit-exceeded")


def test_json_element_limit_is_413_and_binary_formats_have_their_own(check_openapi):
    c = limited(max_json_elements=100)
    doc = {"architecture": {"layers": [{"type": "dense", "in_features": 10, "out_features": 11}]}}  # 110 + 11
    kw = {"path": "/v1/weights", "method": "POST", "data": json.dumps(doc), "content_type": "application/json"}
    r = c.open(**kw)
    p = assert_problem(r, 413, "limit-exceeded")
    assert (p["limit"], p["requested"], p["allowed"]) == ("max_json_elements", 121, 100)
    assert "npz or safetensors" in p["detail"]
    check_openapi(kw, r)
    assert post(c, doc={**doc, "format": "npz"}).status_code == 200
    assert post(c, doc={**doc, "tensors": ["0.bias"]}).status_code == 200   # only the selection counts
    assert post(c, path="/v1/plan", doc=doc).status_code == 200              # plans draw nothing


def test_binary_element_limit_is_413_without_allocating(client):
    # 2^37 + 2^20 float64 elements = 1 TiB: a 413 from the plan's arithmetic, answered at once.
    n = 2 ** 37 + 2 ** 20
    doc = {"architecture": {"layers": [{"type": "tensor", "shape": [1 << 20, (1 << 17) + 1]}]}, "dtype": "float64",
           "format": "safetensors"}
    p = assert_problem(post(client, doc=doc), 413, "limit-exceeded")
    assert (p["limit"], p["requested"], p["allowed"]) == ("max_binary_elements", n, 2 ** 37)
    plan = client.post("/v1/plan", json=doc)
    assert plan.status_code == 200 and plan.get_json()["totals"]["parameters"] == n


def test_binary_limit_allows_2_pow_29_elements(client):
    # The planning side of the requirement: 2^29 elements pass every limit check (no values drawn: 304).
    doc = {"architecture": {"layers": [{"type": "tensor", "shape": [1 << 15, 1 << 14]}]}, "format": "npy"}
    etag = f'"{plan_of({k: v for k, v in doc.items() if k != "format"}).fingerprint}-npy"'
    r = post(client, doc=doc, headers={"If-None-Match": etag})
    assert r.status_code == 304


def test_whole_matrix_limit_is_413(client):
    n = 4097  # 4097^2 > 2^24
    doc = {"architecture": {"layers": [{"type": "tensor", "shape": [n, n], "scheme": "orthogonal"}]}, "format": "npy"}
    p = assert_problem(post(client, doc=doc), 413, "limit-exceeded")
    assert (p["limit"], p["requested"], p["allowed"]) == ("whole_matrix_elements", n * n, WHOLE_MAX_ELEMENTS)


# ---------------------------------------------------------------- 404, 405, 406
def test_unknown_path_is_404(client, check_openapi):
    r = client.get("/v2/weights")
    p = assert_problem(r, 404, "not-found")
    assert p["instance"] == "/v2/weights"


def test_wrong_method_is_405_with_allow(client):
    for method, path, allowed in [("get", "/v1/weights", {"POST"}), ("put", "/v1/plan", {"POST"}),
                                  ("delete", "/v1/schemes", {"GET", "HEAD"}), ("post", "/healthz", {"GET", "HEAD"})]:
        r = getattr(client, method)(path)
        p = assert_problem(r, 405, "method-not-allowed")
        assert allowed <= set(p["allowed_methods"])
        assert set(r.headers["Allow"].replace(" ", "").split(",")) == set(p["allowed_methods"])


@pytest.mark.parametrize("path, method", [("/v1/plan", "POST"), ("/v1/schemes", "GET"), ("/healthz", "GET"),
                                          ("/v1/schemes/he_normal", "GET"), ("/openapi.json", "GET")])
def test_json_endpoints_answer_406_to_a_non_json_accept(client, path, method, check_openapi):
    kw = {"path": path, "method": method, "headers": {"Accept": "text/csv"}}
    if method == "POST":
        kw.update(data=json.dumps(small()), content_type="application/json")
    r = client.open(**kw)
    p = assert_problem(r, 406, "not-acceptable")
    assert p["acceptable"] == ["application/json"]
    check_openapi(kw, r)


# ---------------------------------------------------------------- 500
def test_unexpected_error_is_a_500_without_internals(monkeypatch, caplog):
    app = create_app()

    def boom(*a, **kw):
        raise KeyError("secret-internal-detail /srv/x.py")

    monkeypatch.setattr("service.api.weights.Report", boom)
    r = app.test_client().post("/v1/plan", json=small(), headers={"X-Request-ID": "trace-500"})
    p = assert_problem(r, 500, "internal")
    text = r.get_data(as_text=True)
    assert "secret" not in text and "Traceback" not in text and "KeyError" not in text and ".py" not in text
    assert "trace-500" in p["detail"]
    assert any("trace-500" in rec.getMessage() for rec in caplog.records)  # the traceback goes to the log


def test_every_http_exception_is_a_problem():
    from werkzeug.exceptions import ImATeapot

    app = create_app()

    @app.get("/teapot")
    def teapot():
        raise ImATeapot()

    r = app.test_client().get("/teapot")
    p = assert_problem(r, 418, "http-error")
    assert p["title"] == "I'm a teapot"


def test_problem_types_are_documented(spec_dict):
    assert set(errors.TYPES.values()) == set(spec_dict["components"]["schemas"]["ProblemType"]["enum"])


def test_register_covers_http_exception_and_exception():
    app = Flask("x")
    errors.register(app)
    from werkzeug.exceptions import HTTPException

    spec = app.error_handler_spec[None][None]
    assert HTTPException in spec and Exception in spec
