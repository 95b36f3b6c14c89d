"""CORS (service.api.cors): which origins get which headers, preflights, errors, Vary, and the
header lists against openapi.yaml. The fast path's CORS headers: tests/api/test_fastpath.py; a real
browser on another origin: tests/browser/test_cors_page.py."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from service import create_app
from service.api.cors import ALLOWED_REQUEST_HEADERS, EXPOSED, MAX_AGE

from .helpers import MLP, small

NOTEBOOK = "https://notebook.example.org"
LOCAL = "http://127.0.0.1:5173"
SERVICE = Path(__file__).resolve().parents[2] / "service"
EXPOSE_VALUE = ", ".join(EXPOSED)
SAFETENSORS = {**small(), "format": "safetensors"}


@pytest.fixture(scope="module")
def listed():
    return create_app({"cors_origins": f"{NOTEBOOK}, {LOCAL}"}).test_client()


@pytest.fixture(scope="module")
def anyone():
    return create_app({"cors_origins": "*"}).test_client()


@pytest.fixture(scope="module")
def off():
    return create_app({"cors_origins": ""}).test_client()


def cors_headers(r) -> dict:
    return {k: v for k, v in r.headers.items() if k.lower().startswith("access-control-")}


def vary(r) -> list[str]:
    return [v.strip() for v in r.headers.get("Vary", "").split(",") if v.strip()]


def preflight(client, path, origin=NOTEBOOK, method="POST", headers="content-type"):
    h = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        h["Access-Control-Request-Headers"] = headers
    return client.options(path, headers=h)


# ------------------------------------------------------------------ which origin gets what
@pytest.mark.parametrize("origin, allowed", [
    (NOTEBOOK, NOTEBOOK),
    (LOCAL, LOCAL),
    (None, None),                                    # not a cross-origin request
    ("", None),
    ("null", None),                                  # sandboxed frames, file: pages: never by name
    ("https://NOTEBOOK.example.org", None),          # browsers send lowercase: compared exactly
    (NOTEBOOK + "/", None),
    (NOTEBOOK + ".evil.example", None),              # a suffix trick
    ("https://evil-notebook.example.org", None),
    ("https://x.notebook.example.org", None),        # a subdomain is another origin
    ("http://notebook.example.org", None),           # another scheme
    (NOTEBOOK + ":443", None),                       # browsers never send the default port
    ("http://127.0.0.1:517", None),                  # a prefix
    ("http://127.0.0.1:51730", None),
    (f"{NOTEBOOK}, {LOCAL}", None),                  # two Origin values joined
    (f"{NOTEBOOK} ", None),
])
def test_only_a_listed_origin_exactly_gets_cors_headers(listed, origin, allowed):
    r = listed.get("/healthz", headers={} if origin is None else {"Origin": origin})
    assert r.status_code == 200
    if allowed is None:
        assert cors_headers(r) == {}
    else:
        assert cors_headers(r) == {"Access-Control-Allow-Origin": allowed, "Access-Control-Expose-Headers": EXPOSE_VALUE}
    assert vary(r) == ["Origin"]  # whoever asks: a cache must not serve one origin's answer to another


@pytest.mark.parametrize("origin", [NOTEBOOK, "https://anything.example", "null", None])
def test_star_allows_any_origin_and_varies_by_nothing(anyone, origin):
    r = anyone.post("/v1/plan", json=small(), headers={} if origin is None else {"Origin": origin})
    assert r.status_code == 200
    assert cors_headers(r) == {"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": EXPOSE_VALUE}
    assert "Vary" not in r.headers


@pytest.mark.parametrize("method, path, kw", [
    ("GET", "/healthz", {}), ("POST", "/v1/plan", {"json": small()}), ("POST", "/v1/weights", {"json": SAFETENSORS}),
    ("POST", "/v1/weights", {"json": {"seed": -1}}), ("GET", "/nowhere", {}),
    ("OPTIONS", "/v1/weights", {"headers": {"Access-Control-Request-Method": "POST"}}),
])
def test_off_by_default_changes_nothing(off, method, path, kw):
    headers = {"Origin": NOTEBOOK, "X-Request-ID": "same", **kw.pop("headers", {})}
    r = off.open(path, method=method, headers=headers, **kw)
    assert cors_headers(r) == {} and "Origin" not in vary(r)
    default = create_app().test_client().open(path, method=method, headers=headers, **kw)
    assert (r.status_code, r.get_data(), sorted(r.headers.items())) == \
           (default.status_code, default.get_data(), sorted(default.headers.items()))


# ------------------------------------------------------------------ preflights
PREFLIGHTS = [("/v1/weights", "POST", ["POST"]), ("/v1/plan", "POST", ["POST"]), ("/v1/diagnose", "POST", ["POST"]),
              ("/v1/schemes", "GET", ["GET", "HEAD"]), ("/v1/schemes/kaiming_normal", "GET", ["GET", "HEAD"]),
              ("/healthz", "GET", ["GET", "HEAD"]), ("/openapi.json", "GET", ["GET", "HEAD"]),
              ("/openapi.yaml", "GET", ["GET", "HEAD"])]


@pytest.mark.parametrize("path, method, methods", PREFLIGHTS)
@pytest.mark.parametrize("header", [None, *(h.lower() for h in ALLOWED_REQUEST_HEADERS),
                                    ",".join(h.lower() for h in ALLOWED_REQUEST_HEADERS)])
def test_a_preflight_from_a_listed_origin_allows_the_methods_and_headers(listed, path, method, methods, header):
    r = preflight(listed, path, method=method, headers=header)
    assert r.status_code == 200 and r.get_data() == b""
    assert cors_headers(r) == {"Access-Control-Allow-Origin": NOTEBOOK,
                               "Access-Control-Allow-Methods": ", ".join(methods),
                               "Access-Control-Allow-Headers": ", ".join(ALLOWED_REQUEST_HEADERS),
                               "Access-Control-Max-Age": str(MAX_AGE)}
    assert method in methods
    allowed = {h.strip().lower() for h in r.headers["Access-Control-Allow-Headers"].split(",")}
    assert set((header or "").split(",")) - {""} <= allowed  # what a browser checks (names are case-insensitive)
    assert vary(r) == ["Origin"] and set(r.headers["Allow"].split(", ")) == {*methods, "OPTIONS"}


def test_a_preflight_answer_does_not_depend_on_what_is_asked(listed):
    """The browser compares the method and headers it needs with the lists; the server lists the same."""
    want = cors_headers(preflight(listed, "/v1/plan"))
    for method, headers in [("PUT", None), ("DELETE", "x-secret"), ("POST", "authorization, cookie")]:
        r = preflight(listed, "/v1/plan", method=method, headers=headers)
        assert r.status_code == 200 and cors_headers(r) == want


@pytest.mark.parametrize("origin", ["https://evil.example", "null", NOTEBOOK + "/"])
def test_a_preflight_from_another_origin_gets_no_cors_headers(listed, origin):
    r = preflight(listed, "/v1/weights", origin=origin)
    assert r.status_code == 200 and r.get_data() == b""   # the answer anyone gets: the browser refuses it
    assert cors_headers(r) == {} and vary(r) == ["Origin"]


def test_a_preflight_of_an_unknown_path_is_a_404(listed):
    r = preflight(listed, "/v1/nothing")
    assert r.status_code == 404 and r.headers["Access-Control-Allow-Origin"] == NOTEBOOK


def test_credentials_are_never_allowed(listed, anyone):
    for client in (listed, anyone):
        for r in (preflight(client, "/v1/plan"), client.post("/v1/plan", json=small(), headers={"Origin": NOTEBOOK})):
            assert "Access-Control-Allow-Credentials" not in r.headers


# ------------------------------------------------------------------ errors carry the headers
def _boom(*a, **kw):
    raise KeyError("internal")


ERRORS = [
    (400, {"method": "POST", "path": "/v1/plan", "data": "{", "content_type": "application/json"}),
    (400, {"method": "GET", "path": "/v1/schemes", "headers": {"If-None-Match": "x" * 3000}}),
    (404, {"method": "GET", "path": "/v1/schemes/nope"}),
    (405, {"method": "DELETE", "path": "/v1/weights"}),
    (406, {"method": "GET", "path": "/healthz", "headers": {"Accept": "text/csv"}}),
    (413, {"method": "POST", "path": "/v1/weights", "json": {"architecture": {"layers": [
        {"type": "dense", "in_features": 3000, "out_features": 2000}]}}}),
    (415, {"method": "POST", "path": "/v1/plan", "data": "{}", "content_type": "text/plain"}),
    (416, {"method": "POST", "path": "/v1/weights", "json": SAFETENSORS, "headers": {"Range": "bytes=999999-"}}),
    (422, {"method": "POST", "path": "/v1/weights", "json": small(seed=-1)}),
    (500, {"method": "POST", "path": "/v1/plan", "json": small(seed=5)}),
]


@pytest.mark.parametrize("status, kw", ERRORS, ids=[str(s) for s, _ in ERRORS])
def test_problems_carry_the_cors_headers_and_the_same_bytes(listed, off, monkeypatch, status, kw):
    if status == 500:
        monkeypatch.setattr("service.api.weights.Report", _boom)
    kw = {**kw, "headers": {**kw.get("headers", {}), "Origin": NOTEBOOK, "X-Request-ID": "cors-error"}}
    r = listed.open(**kw)
    assert r.status_code == status and r.mimetype == "application/problem+json"
    assert r.headers["Access-Control-Allow-Origin"] == NOTEBOOK
    assert r.headers["Access-Control-Expose-Headers"] == EXPOSE_VALUE and "Origin" in vary(r)
    assert r.get_data() == off.open(**kw).get_data()  # problem bodies: byte-identical with CORS on


# ------------------------------------------------------------------ Vary
@pytest.mark.parametrize("origin", [NOTEBOOK, "https://evil.example", None])
def test_vary_adds_origin_to_accept(listed, origin):
    headers = {} if origin is None else {"Origin": origin}
    weights = listed.post("/v1/weights", json=small(), headers=headers)
    assert weights.headers["Vary"] == "Accept, Origin"
    again = listed.post("/v1/weights", json=small(), headers={**headers, "If-None-Match": weights.headers["ETag"]})
    assert again.status_code == 304 and again.headers["Vary"] == "Accept, Origin"
    assert listed.post("/v1/plan", json=small(), headers=headers).headers["Vary"] == "Origin"


def test_artifacts_are_unchanged_by_cors(listed, off):
    for doc in (SAFETENSORS, small(), {**MLP, "format": "npz"}):
        a = listed.post("/v1/weights", json=doc, headers={"Origin": NOTEBOOK})
        b = off.post("/v1/weights", json=doc)
        assert a.status_code == b.status_code == 200
        assert a.get_data() == b.get_data() and a.headers["ETag"] == b.headers["ETag"]


# ------------------------------------------------------------------ the lists, against openapi.yaml
#: Response headers openapi.yaml documents that a page need not read, and why.
NOT_EXPOSED = {
    "cache-control": "CORS-safelisted: readable anyway",
    "vary": "for caches, not pages",
    "x-content-type-options": "for the browser itself",
    "content-security-policy": "on HTML pages of this origin",
    "allow": "on a 405 the problem body lists allowed_methods; on a preflight it is the browser's",
}


def documented_response_headers(spec: dict) -> set[str]:
    out = set()

    def walk(node):
        if isinstance(node, dict):
            for name in (node.get("headers") or {}) if "description" in node else ():
                out.add(name.lower())
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(spec["paths"])
    walk(spec["components"]["responses"])
    return out


def test_every_documented_response_header_is_exposed_or_excluded_on_purpose(spec_dict):
    documented = {h for h in documented_response_headers(spec_dict) if not h.startswith("access-control-")}
    assert set(NOT_EXPOSED) <= documented
    assert documented - set(NOT_EXPOSED) == {h.lower() for h in EXPOSED}


def test_the_allowed_request_headers_are_the_documented_parameters(spec_dict):
    params = {p["name"].lower() for p in spec_dict["components"]["parameters"].values() if p["in"] == "header"}
    assert params | {"content-type", "accept"} == {h.lower() for h in ALLOWED_REQUEST_HEADERS}


def test_the_services_own_headers_are_named_in_one_place():
    """Every X-Weightinit-* header name in service/api is a constant of http.py (cors.EXPOSED lists them all)."""
    named = {}
    for path in (SERVICE / "api").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and re.fullmatch(r"X-Weightinit-[A-Za-z-]+", node.value):
                named.setdefault(node.value, set()).add(path.name)
    assert named and all(files == {"http.py"} for files in named.values()), named
    assert set(named) <= set(EXPOSED)


@pytest.mark.parametrize("name, kw", [
    ("preflight", {"method": "OPTIONS", "path": "/v1/weights",
                   "headers": {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}}),
    ("plan", {"method": "POST", "path": "/v1/plan", "json": small()}),
    ("weights", {"method": "POST", "path": "/v1/weights", "json": small()}),
    ("binary", {"method": "POST", "path": "/v1/weights", "json": SAFETENSORS}),
    ("schemes", {"method": "GET", "path": "/v1/schemes/he_normal"}),
    ("problem", {"method": "POST", "path": "/v1/weights", "json": small(seed=-1)}),
])
@pytest.mark.parametrize("origin", [NOTEBOOK, "https://evil.example"])
def test_cors_answers_match_openapi(listed, anyone, check_openapi, name, kw, origin):
    kw = {**kw, "headers": {**kw.get("headers", {}), "Origin": origin}}
    if "json" in kw:  # the checker builds the request from these arguments too
        body = kw.pop("json")
        kw.update(data=json.dumps(body), content_type="application/json")
    for client in (listed, anyone):
        check_openapi(kw, client.open(**kw))
