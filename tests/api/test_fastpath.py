"""The lean path (service.api.fastpath) answers exactly what Flask answers.

Each request is sent twice to an app whose cache already knows it: once with the fast path on,
once with it off (Flask all the way). Status, body and every header but X-Request-ID (fresh
each time unless the client sent one) must be equal; and anything the fast path does not know
(misses, errors, ranges, binary artifacts, odd content types, long headers) must fall through.
"""

from __future__ import annotations

import io
import json

import pytest

from service import create_app
from service.api.fastpath import FastPath
from service.api.http import FASTPATH_KEY

from .helpers import MIXED, MLP

SAFETENSORS = {**MLP, "format": "safetensors"}
SMALL = {"architecture": {"layers": [{"type": "dense", "name": "fc", "in_features": 30, "out_features": 20}]}, "seed": 4}


@pytest.fixture
def app():
    a = create_app()
    assert isinstance(a.extensions[FASTPATH_KEY], FastPath)
    return a


def both(app, path, doc, headers=None, raw=None):
    c = app.test_client()
    kw = {"data": raw if raw is not None else json.dumps(doc), "content_type": "application/json",
          "headers": {**(headers or {}), "X-Request-ID": "compare-1"}}
    c.post(path, **kw)  # warm the cache (a miss: Flask)
    app.extensions[FASTPATH_KEY].enabled = False
    slow = c.post(path, **kw)
    app.extensions[FASTPATH_KEY].enabled = True
    hits = app.extensions["weightinit.cache"].hits
    fast = c.post(path, **kw)
    return slow, fast, app.extensions["weightinit.cache"].hits - hits


def headers(r):
    return sorted((k, v) for k, v in r.headers.items())


@pytest.mark.parametrize("path, doc, extra", [
    ("/v1/plan", MIXED, {}),
    ("/v1/weights", SMALL, {}),
    ("/v1/weights", {**MIXED, "format": "json"}, {"Accept": "application/json"}),
    ("/v1/plan", MLP, {"Accept": "application/json, */*;q=0.1"}),
])
def test_cached_200s_are_identical(app, path, doc, extra):
    slow, fast, hits = both(app, path, doc, extra)
    assert slow.status_code == fast.status_code == 200
    assert fast.get_data() == slow.get_data()
    assert headers(fast) == headers(slow)
    assert hits == 1  # served by the fast path, from the cache


def test_large_json_bodies_are_not_kept_and_fall_through(app):
    slow, fast, hits = both(app, "/v1/weights", MLP)              # 200K values: over 1 MiB of JSON
    assert fast.get_data() == slow.get_data() and headers(fast) == headers(slow)
    assert hits == 2                                              # looked up by both layers


@pytest.mark.parametrize("path, doc", [("/v1/plan", MIXED), ("/v1/weights", MLP), ("/v1/weights", SAFETENSORS)])
def test_304s_are_identical(app, path, doc):
    c = app.test_client()
    etag = c.post(path, json=doc).headers["ETag"]
    for inm in (etag, f'"nope", {etag}', "*", "W/" + etag):
        slow, fast, _ = both(app, path, doc, {"If-None-Match": inm})
        assert slow.status_code == fast.status_code == 304, inm
        assert fast.get_data() == slow.get_data() == b""
        assert headers(fast) == headers(slow)


@pytest.mark.parametrize("origins, origin", [
    ("https://a.example, http://127.0.0.1:5173", "http://127.0.0.1:5173"),   # listed: Allow-Origin, Expose, Vary
    ("https://a.example, http://127.0.0.1:5173", "https://b.example"),       # not listed: Vary only
    ("https://a.example, http://127.0.0.1:5173", None),
    ("*", "https://b.example"),
])
@pytest.mark.parametrize("path, doc", [("/v1/plan", MIXED), ("/v1/weights", SMALL)])
def test_cors_headers_are_identical_on_both_paths(origins, origin, path, doc):
    """The fast path answers a cross-origin request from the cache with Flask's CORS headers (Cors.apply)."""
    app = create_app({"cors_origins": origins})
    extra = {} if origin is None else {"Origin": origin}
    slow, fast, hits = both(app, path, doc, extra)
    assert slow.status_code == fast.status_code == 200 and hits == 1
    assert headers(fast) == headers(slow)
    assert ("Access-Control-Allow-Origin" in fast.headers) == (origins == "*" or origin in origins.split(", "))
    etag = fast.headers["ETag"]
    slow, fast, hits = both(app, path, doc, {**extra, "If-None-Match": etag})
    assert slow.status_code == fast.status_code == 304 and hits == 1
    assert headers(fast) == headers(slow)


@pytest.mark.parametrize("case", ["miss", "error", "range", "binary", "charset", "long-inm", "no-length", "xml"])
def test_everything_else_falls_through_to_flask(app, case):
    c = app.test_client()
    doc, hdrs, ctype, data = {**MIXED, "seed": 991}, {}, "application/json", None
    if case == "error":
        doc = {**doc, "seed": -5}
    elif case == "range":
        doc, hdrs = SAFETENSORS, {"Range": "bytes=0-9"}
    elif case == "binary":
        doc = SAFETENSORS
    elif case == "charset":
        ctype = "application/json; charset=latin-1"
    elif case == "long-inm":
        hdrs = {"If-None-Match": '"' + "x" * 3000 + '"'}
    elif case == "xml":
        ctype = "application/xml"
    if case != "miss":
        c.post("/v1/weights", json=doc)  # cached if valid
    data = json.dumps(doc).encode()
    if case == "no-length":
        hdrs = {"Transfer-Encoding": "chunked"}
    hits = app.extensions["weightinit.cache"].hits
    app.extensions[FASTPATH_KEY].enabled = False
    slow = c.post("/v1/weights", data=data, content_type=ctype, headers={**hdrs, "X-Request-ID": "r"})
    app.extensions[FASTPATH_KEY].enabled = True
    fast = c.post("/v1/weights", data=data, content_type=ctype, headers={**hdrs, "X-Request-ID": "r"})
    assert fast.status_code == slow.status_code
    assert fast.get_data() == slow.get_data()  # problem bodies too: both requests carry X-Request-ID r
    if case in ("miss", "error", "charset", "long-inm", "xml"):
        assert app.extensions["weightinit.cache"].hits - hits <= 1  # Flask's own lookup at most, not ours


def test_a_body_that_stops_arriving_still_reaches_flask_as_it_came(app):
    """The fast path read part of the body, then the stream failed: Flask must meet the same failure."""

    class Stalling(io.RawIOBase):
        def __init__(self, data):
            self.data = data

        def readable(self):
            return True

        def readinto(self, b):
            if self.data:
                n = min(len(b), len(self.data), 10)
                b[:n] = self.data[:n]
                self.data = self.data[n:]
                return n
            raise OSError("timed out")

    body = json.dumps(MIXED).encode()
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/v1/plan", "CONTENT_TYPE": "application/json",
               "CONTENT_LENGTH": str(len(body) + 50), "wsgi.input": Stalling(body), "SERVER_NAME": "x",
               "SERVER_PORT": "80", "wsgi.url_scheme": "http", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.errors": io.StringIO()}
    out = {}
    chunks = app.wsgi_app(environ, lambda status, headers, exc=None: out.update(status=status))
    assert out["status"].startswith("408"), out
    assert b"request-timeout" in b"".join(chunks)


def test_cached_binary_entries_count_their_header():
    from service.api.cache import ResponseCache

    a = create_app()
    c = a.test_client()
    assert c.post("/v1/weights", json={**MIXED, "format": "safetensors"}).status_code == 200
    stats = a.extensions["weightinit.cache"].stats()
    assert stats["entries"] == 1 and stats["bytes"] > 1000  # the safetensors header, report included
    assert isinstance(a.extensions["weightinit.cache"], ResponseCache)
