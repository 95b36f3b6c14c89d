"""GET /metrics and what each request adds to it, in one process (service.api.metrics).

Each case sends one request to an app whose cache already holds what the case needs, and checks
the change of every metric it should move, by exactly the amount: requests and both latency
histograms by route template and status, body bytes, response-cache lookups, 413s by limit and
values by scheme family and dtype. tests/ops/test_prometheus.py checks the same against a real
Prometheus scraping two gunicorn workers.
"""

from __future__ import annotations

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from service import create_app
from service.api import metrics
from service.api.fastpath import FastPath
from service.api.http import CACHE_KEY, FASTPATH_KEY
from service.core.linalg_identity import etag_value
from tests.helpers import LLAMA_TINY, plan_of

#: One dense layer 30 -> 20: 600 weight values (he_normal: variance_scaling) and 20 bias values (zeros: constant).
DENSE = {"architecture": {"layers": [{"type": "dense", "name": "fc", "in_features": 30, "out_features": 20}]},
         "scheme": "he_normal", "bias": "zeros", "seed": 7}
HALF = {**DENSE, "scheme": {"name": "uniform", "low": -0.5, "high": 0.5}, "dtype": "float16", "seed": 8}
NPY = {**DENSE, "tensors": ["fc.weight"], "format": "npy", "seed": 9}
#: 2,000 values: over max_json_elements = 1000 below.
BIG = {"architecture": {"layers": [{"type": "dense", "name": "fc", "in_features": 100, "out_features": 20}]}, "seed": 3}
#: A Hugging Face config as a sharded folder (a tar): its values are counted like any format's.
HF = {**LLAMA_TINY, "format": "hf", "max_shard_size": 20_000, "seed": 11}
WEIGHTS, PLAN = "/v1/weights", "/v1/plan"
DENSE_ETAG = f'"{etag_value(plan_of(DENSE))}-json"'


@pytest.fixture(scope="module")
def app():
    a = create_app({"max_json_elements": 1000})
    assert isinstance(a.wsgi_app, metrics.Instrumented) and isinstance(a.extensions[FASTPATH_KEY], FastPath)
    c = a.test_client()
    for doc in (DENSE, HALF):  # cached, JSON bodies attached: repeats are the fast path's
        for _ in range(2):
            assert c.post(WEIGHTS, json=doc).status_code == 200
    assert c.post(PLAN, json=DENSE).status_code == 200
    assert c.post(WEIGHTS, json=NPY).status_code == 200
    return a


def sample(name: str, **labels) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def snapshot() -> dict:
    """Every sample of the metrics of this module, keyed by (name, sorted labels)."""
    out = {}
    for family in metrics.REGISTRY.collect():
        for s in family.samples:
            if not s.name.endswith("_created") and "_bucket" not in s.name:
                out[s.name, tuple(sorted(s.labels.items()))] = s.value
    return out


def changes(before: dict, after: dict) -> dict:
    """The samples that moved, with their change (durations: 'moved' only, their value is the clock's)."""
    out = {}
    for key, value in after.items():
        delta = value - before.get(key, 0.0)
        if delta:
            out[key] = "moved" if key[0].endswith("_seconds_sum") else delta
    return out


def key(name, **labels):
    return name, tuple(sorted(labels.items()))


def exchange_counts(endpoint: str, status: str, body_bytes: int) -> dict:
    """What any answered request adds: one request, one observation in each histogram, its body bytes."""
    out = {key("weightinit_http_requests_total", endpoint=endpoint, status=status): 1.0,
           key("weightinit_http_request_duration_seconds_count", endpoint=endpoint, status=status): 1.0,
           key("weightinit_http_request_duration_seconds_sum", endpoint=endpoint, status=status): "moved",
           key("weightinit_http_response_start_seconds_count", endpoint=endpoint, status=status): 1.0,
           key("weightinit_http_response_start_seconds_sum", endpoint=endpoint, status=status): "moved"}
    if body_bytes:
        out[key("weightinit_http_response_body_bytes_total", endpoint=endpoint, status=status)] = float(body_bytes)
    return out


def cache(endpoint: str, result: str) -> dict:
    return {key("weightinit_response_cache_requests_total", endpoint=endpoint, result=result): 1.0}


def values(**by_kind) -> dict:
    """values(variance_scaling__float32=600) -> the change of weightinit_values_total."""
    return {key("weightinit_values_total", family=k.split("__")[0], dtype=k.split("__")[1]): float(n)
            for k, n in by_kind.items()}


def limit(name: str) -> dict:
    return {key("weightinit_limit_exceeded_total", limit=name): 1.0}


CASES = [
    # (name, request kwargs, status, endpoint, the other changes)
    ("plan from the cache (fast path)", dict(method="POST", path=PLAN, json=DENSE), "200", PLAN, cache(PLAN, "hit")),
    ("plan, new document", dict(method="POST", path=PLAN, json={**DENSE, "seed": 1001}), "200", PLAN,
     cache(PLAN, "miss")),
    ("weights JSON from the cache (fast path)", dict(method="POST", path=WEIGHTS, json=DENSE), "200", WEIGHTS,
     {**cache(WEIGHTS, "hit"), **values(variance_scaling__float32=600, constant__float32=20)}),
    ("weights JSON, float16, uniform", dict(method="POST", path=WEIGHTS, json=HALF), "200", WEIGHTS,
     {**cache(WEIGHTS, "hit"), **values(random__float16=600, constant__float16=20)}),
    ("weights JSON, new document", dict(method="POST", path=WEIGHTS, json={**DENSE, "seed": 1002}), "200", WEIGHTS,
     {**cache(WEIGHTS, "miss"), **values(variance_scaling__float32=600, constant__float32=20)}),
    ("304 (fast path)", dict(method="POST", path=WEIGHTS, json=DENSE, headers={"If-None-Match": DENSE_ETAG}), "304",
     WEIGHTS, cache(WEIGHTS, "hit")),
    ("206: the last 1024 bytes of a float32 npy are 256 values", dict(
        method="POST", path=WEIGHTS, json=NPY, headers={"Range": "bytes=-1024"}), "206", WEIGHTS,
     {**cache(WEIGHTS, "hit"), **values(variance_scaling__float32=256)}),
    ("hf folder (tar), sharded", dict(method="POST", path=WEIGHTS, json=HF), "200", WEIGHTS,
     {**cache(WEIGHTS, "miss"), **values(random__float32=8704, constant__float32=80)}),  # hf_default: normal, ones
    ("npy, whole", dict(method="POST", path=WEIGHTS, json=NPY), "200", WEIGHTS,
     {**cache(WEIGHTS, "hit"), **values(variance_scaling__float32=600)}),
    ("413 max_json_elements", dict(method="POST", path=WEIGHTS, json=BIG), "413", WEIGHTS,
     {**cache(WEIGHTS, "miss"), **limit("max_json_elements")}),
    ("413 max_body_bytes, before any lookup", dict(method="POST", path=WEIGHTS, data=b"{" + b" " * (1 << 20) + b"}",
                                                   content_type="application/json"), "413", WEIGHTS,
     limit("max_body_bytes")),
    ("422", dict(method="POST", path=WEIGHTS, json={**DENSE, "seed": -1}), "422", WEIGHTS, cache(WEIGHTS, "miss")),
    ("scheme", dict(method="GET", path="/v1/schemes/kaiming_normal"), "200", "/v1/schemes/{name}", {}),
    ("unknown scheme", dict(method="GET", path="/v1/schemes/nope"), "404", "/v1/schemes/{name}", {}),
    ("unknown path", dict(method="GET", path="/no/such/path"), "404", "unmatched", {}),
    ("wrong method", dict(method="DELETE", path=PLAN), "405", "unmatched", {}),
    ("health", dict(method="GET", path="/healthz"), "200", "/healthz", {}),
]


@pytest.mark.parametrize("name, kw, status, endpoint, other", CASES, ids=[c[0] for c in CASES])
def test_each_request_moves_exactly_its_metrics(app, name, kw, status, endpoint, other):
    hits = app.extensions[CACHE_KEY].hits
    before = snapshot()
    r = app.test_client().open(buffered=True, **kw)
    after = snapshot()
    assert str(r.status_code) == status, r.get_data()[:300]
    assert changes(before, after) == {**exchange_counts(endpoint, status, len(r.get_data())), **other}
    if "fast path" in name:  # answered before Flask: its only lookup is the fast path's
        assert app.extensions[CACHE_KEY].hits - hits == 1


def test_metrics_answers_the_text_format(app, check_openapi):
    c = app.test_client()
    kw = {"path": "/metrics", "method": "GET", "headers": {"Accept": "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"}}
    r = c.open(**kw)
    assert r.status_code == 200
    check_openapi(kw, r)
    assert r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert r.headers["Cache-Control"] == "no-store" and r.headers["X-Request-ID"]
    names = {f.name for f in text_string_to_metric_families(r.get_data(as_text=True))}
    assert {"weightinit_http_requests", "weightinit_http_request_duration_seconds", "weightinit_http_response_start_seconds",
            "weightinit_http_response_body_bytes", "weightinit_values", "weightinit_limit_exceeded",
            "weightinit_response_cache_requests", "weightinit_http_responses_in_progress"} <= names
    assert c.get("/metrics", headers={"Accept": "application/json"}).status_code == 406


def test_labels_never_carry_seeds_paths_or_ids(app):
    c = app.test_client()
    before = snapshot()
    c.post(WEIGHTS, json={**DENSE, "seed": 918273645}, headers={"X-Request-ID": "rid-5550123"}, buffered=True)
    c.get("/v1/schemes/zz-no-such-scheme-zz", buffered=True)
    c.get("/zz/raw/path/zz", buffered=True)
    moved = changes(before, snapshot())
    text = c.get("/metrics").get_data(as_text=True)
    for secret in ("918273645", "5550123", "zz-no-such-scheme-zz", "zz/raw/path"):
        assert secret not in text
    endpoints = {value for name, labels in moved for label, value in labels if label == "endpoint"}
    assert endpoints == {WEIGHTS, "/v1/schemes/{name}", "unmatched"}


def test_a_stream_cut_short_counts_the_bytes_that_went_out(app):
    """The server takes two pieces of a streamed artifact and hangs up: only the first was written."""
    doc = {**DENSE, "architecture": {"layers": [{"type": "dense", "name": "fc", "in_features": 1000,
                                                  "out_features": 600}]}, "format": "safetensors", "seed": 11}
    a = create_app({"digest_max_bytes": 0})  # stream every binary artifact
    body = json.dumps(doc).encode()
    environ = a.test_request_context(WEIGHTS, method="POST", data=body, content_type="application/json").request.environ
    status = {}
    before = snapshot()
    pieces = a.wsgi_app(environ, lambda s, h, exc=None: status.update(status=s, headers=dict(h)))
    it = iter(pieces)
    first = next(it)
    second = next(it)
    pieces.close()
    assert status["status"].startswith("200") and int(status["headers"]["Content-Length"]) > len(first) + len(second)
    moved = changes(before, snapshot())
    assert moved[key("weightinit_http_response_body_bytes_total", endpoint=WEIGHTS, status="200")] == len(first)
    assert moved[key("weightinit_http_requests_total", endpoint=WEIGHTS, status="200")] == 1


def test_responses_in_progress_go_up_and_down(app):
    a = create_app({"digest_max_bytes": 0})
    doc = {**DENSE, "format": "safetensors", "seed": 12}
    environ = a.test_request_context(WEIGHTS, method="POST", data=json.dumps(doc), content_type="application/json") \
        .request.environ
    gauge = ("weightinit_http_responses_in_progress", {"endpoint": WEIGHTS})
    before = sample(gauge[0], **gauge[1])
    body = a.wsgi_app(environ, lambda s, h, exc=None: None)
    assert sample(gauge[0], **gauge[1]) == before + 1
    b"".join(body)
    body.close()
    assert sample(gauge[0], **gauge[1]) == before


def test_metrics_off_means_no_route_and_no_layer():
    a = create_app({"metrics": "off", "max_json_elements": 1000})
    assert isinstance(a.wsgi_app, FastPath)
    before = snapshot()
    c = a.test_client()
    assert c.get("/metrics").status_code == 404
    assert c.post(WEIGHTS, json={**BIG, "seed": 4}).status_code == 413
    assert changes(before, snapshot()) == {}
