"""HTTP Range on POST /v1/weights (npy, safetensors), and the LRU of validated requests.

206 with Content-Range for one satisfiable range (bytes=a-b, a-, -n); 416 with
``Content-Range: bytes */length`` past the end; the whole artifact (200) for no, malformed or
several ranges, a mismatching If-Range, and for json/npz; 304 before any of it. A streamed
range draws only the blocks of values it overlaps.
"""

from __future__ import annotations

import json

import pytest

from service import create_app
from tests.helpers import plan_of
from service.core import generate
from tests.helpers import artifact_of as encode

from .helpers import MIXED, assert_problem

BIG = {"architecture": {"layers": [{"type": "tensor", "name": "w", "shape": [2000, 1000]}]}, "scheme": "he_normal",
       "seed": 5}                       # 2M float32 = 8 blocks of 262,144 values
MULTI = {**MIXED, "dtype": "bfloat16"}


def whole(doc: dict, fmt: str) -> bytes:
    plan = plan_of({k: v for k, v in doc.items() if k != "format"})
    return b"".join(bytes(c) for c in encode(plan, fmt).chunks())


@pytest.fixture(scope="module")
def streaming_client():
    """digest_max_bytes 0: every binary artifact streams (no in-memory build), ranges included."""
    return create_app({"digest_max_bytes": 0}).test_client()


def post(client, doc, **headers):
    return client.post("/v1/weights", data=json.dumps(doc), content_type="application/json", headers=headers)


@pytest.mark.parametrize("fmt, doc", [("npy", BIG), ("safetensors", MULTI), ("safetensors", BIG)])
@pytest.mark.parametrize("small", [True, False], ids=["in-memory", "streamed"])
def test_ranges_are_slices_of_the_whole_artifact(client, streaming_client, fmt, doc, small):
    c = client if small else streaming_client
    doc = {**doc, "format": fmt}
    full = whole(doc, fmt)
    n = len(full)
    r200 = post(c, doc)
    assert r200.status_code == 200 and r200.headers["Accept-Ranges"] == "bytes"
    assert r200.get_data() == full
    for header, (a, b) in [(f"bytes=0-{n - 1}", (0, n)), ("bytes=0-0", (0, 1)), ("bytes=7-1048583", (7, 1048584)),
                           (f"bytes={n - 5}-", (n - 5, n)), ("bytes=-100", (n - 100, n)),
                           (f"bytes={n // 3}-{n + 5000}", (n // 3, n)), (f"bytes=-{n + 10}", (0, n)),
                           ("bytes=1048575-2097152", (1048575, 2097153))]:
        if b > n:
            continue
        r = post(c, doc, Range=header)
        assert r.status_code == 206, (header, r.status_code)
        assert r.get_data() == full[a:b], header
        assert r.headers["Content-Range"] == f"bytes {a}-{b - 1}/{n}"
        assert int(r.headers["Content-Length"]) == b - a
        assert r.headers["ETag"] == r200.headers["ETag"]
        assert r.headers["Content-Disposition"] == r200.headers["Content-Disposition"]
        assert r.headers["Accept-Ranges"] == "bytes"
        assert ("Repr-Digest" in r.headers) == small  # of the whole artifact, when it is built in memory
        if small:
            assert r.headers["Repr-Digest"] == r200.headers["Repr-Digest"]


def test_206_and_416_validate_against_openapi(client, check_openapi):
    doc = {**BIG, "format": "safetensors"}
    n = len(whole(doc, "safetensors"))
    kw = {"path": "/v1/weights", "method": "POST", "json": doc, "headers": {"Range": "bytes=100-199"}}
    r = client.open(**kw)
    assert r.status_code == 206
    check_openapi(kw, r)
    kw = {"path": "/v1/weights", "method": "POST", "json": doc, "headers": {"Range": f"bytes={n}-"}}
    r = client.open(**kw)
    body = assert_problem(r, 416, "range-not-satisfiable")
    assert r.headers["Content-Range"] == f"bytes */{n}"
    assert body["length"] == n
    check_openapi(kw, r)


@pytest.mark.parametrize("header", ["bytes=-0", "bytes=99999999999-"])
def test_unsatisfiable_ranges_are_416(client, header):
    r = post(client, {**BIG, "format": "npy"}, Range=header)
    assert_problem(r, 416, "range-not-satisfiable")
    assert r.headers["Content-Range"] == f"bytes */{len(whole(BIG, 'npy'))}"


@pytest.mark.parametrize("header", ["bytes=5-2", "bytes=0-1,5-9", "items=0-5", "bytes=", "bytes=-", "bytes=a-b",
                                    "bytes=1-2-3"])
def test_malformed_or_multiple_ranges_are_ignored(client, header):
    doc = {**BIG, "format": "npy"}
    r = post(client, doc, Range=header)
    assert r.status_code == 200 and r.get_data() == whole(doc, "npy")
    assert "Content-Range" not in r.headers


def test_if_range_must_be_the_etag(client):
    doc = {**BIG, "format": "safetensors"}
    etag = post(client, doc).headers["ETag"]
    r = post(client, doc, Range="bytes=10-19", **{"If-Range": etag})
    assert r.status_code == 206 and r.get_data() == whole(doc, "safetensors")[10:20]
    other = etag.replace("-safetensors", "-npy")
    for if_range in (other, "W/" + etag, "Wed, 21 Oct 2015 07:28:00 GMT"):
        r = post(client, doc, Range="bytes=10-19", **{"If-Range": if_range})
        assert r.status_code == 200 and len(r.get_data()) == len(whole(doc, "safetensors")), if_range


@pytest.mark.parametrize("fmt", ["json", "npz"])
def test_range_is_ignored_where_bytes_depend_on_all_before(client, fmt):
    doc = {**MIXED, "format": fmt}
    r = post(client, doc, Range="bytes=0-9")
    assert r.status_code == 200 and len(r.get_data()) > 10
    assert r.headers.get("Accept-Ranges", "none") == "none" and "Content-Range" not in r.headers


def test_if_none_match_wins_over_range(client):
    doc = {**BIG, "format": "npy"}
    etag = post(client, doc).headers["ETag"]
    r = post(client, doc, Range="bytes=0-9", **{"If-None-Match": etag})
    assert r.status_code == 304 and r.get_data() == b""


def test_a_streamed_range_draws_only_the_blocks_it_overlaps(streaming_client, monkeypatch):
    drawn = []
    real = generate.Blockwise._fill_block

    def spy(self, b, compute, storage):
        drawn.append(b)
        return real(self, b, compute, storage)

    monkeypatch.setattr(generate.Blockwise, "_fill_block", spy)
    doc = {**BIG, "format": "npy"}
    header = len(whole(doc, "npy")) - 2_000_000 * 4
    drawn.clear()
    block = 262_144 * 4
    a = header + 5 * block + 10          # inside block 5 ...
    b = header + 6 * block + 99          # ... into block 6
    r = post(streaming_client, doc, Range=f"bytes={a}-{b}")
    assert r.status_code == 206 and len(r.get_data()) == b - a + 1
    assert sorted(drawn) == [5, 6]
    drawn.clear()
    r = post(streaming_client, doc, Range="bytes=0-50")  # the header only: no value drawn
    assert r.status_code == 206 and drawn == []


# ------------------------------------------------------------------------------------ cache
def test_repeated_bodies_are_served_from_the_cache(client):
    from service.api.http import CACHE_KEY

    app = create_app()
    c = app.test_client()
    doc = {**MIXED, "seed": 77}
    first = c.post("/v1/plan", json=doc)
    stats = app.extensions[CACHE_KEY].stats()
    second = c.post("/v1/plan", json=doc)
    assert app.extensions[CACHE_KEY].stats()["hits"] == stats["hits"] + 1
    assert first.get_data() == second.get_data() and first.headers["ETag"] == second.headers["ETag"]
    # JSON artifacts: same bytes and digest from the cache
    w1, w2 = c.post("/v1/weights", json=doc), c.post("/v1/weights", json=doc)
    assert w1.get_data() == w2.get_data() and w1.headers["Repr-Digest"] == w2.headers["Repr-Digest"]
    # the Accept header is part of the key: a different format is a different entry
    r = c.post("/v1/weights", json=doc, headers={"Accept": "application/vnd.safetensors"})
    assert r.status_code == 200 and r.mimetype == "application/vnd.safetensors"
    r = c.post("/v1/plan", json=doc, headers={"Accept": "text/html"})
    assert r.status_code == 406
    # errors are answered every time, never cached
    bad = {**doc, "seed": -1}
    assert c.post("/v1/plan", json=bad).status_code == 422
    before = app.extensions[CACHE_KEY].stats()["entries"]
    assert c.post("/v1/plan", json=bad).status_code == 422
    assert app.extensions[CACHE_KEY].stats()["entries"] == before


def test_the_cache_is_bounded():
    from service.api.cache import Entry, ResponseCache

    cache = ResponseCache(max_entries=3, max_bytes=100)
    for i in range(5):
        cache.put(ResponseCache.key(str(i)), Entry({}, body=b"x" * 10))
    assert cache.stats()["entries"] == 3 and cache.get(ResponseCache.key("0")) is None
    cache.put(ResponseCache.key("big"), Entry({}, body=b"y" * 60))
    cache.put(ResponseCache.key("big2"), Entry({}, body=b"y" * 60))
    assert cache.stats()["bytes"] <= 100
    assert ResponseCache.key("a", "b") != ResponseCache.key("ab", "") != ResponseCache.key("ab")


def test_a_model_over_max_binary_elements_can_be_fetched_in_parts():
    """The limit bounds the values of one response: a Range part is held to it by what it carries."""
    c = create_app({"max_binary_elements": 1 << 29}).test_client()
    doc = {"architecture": {"layers": [{"type": "tensor", "name": "w", "shape": [1 << 15, 1 << 14]},
                                       {"type": "tensor", "name": "v", "shape": [16]}]}, "format": "safetensors"}
    assert_problem(post(c, doc), 413, "limit-exceeded")                        # whole: 2^29 + 16 values
    r = post(c, doc, Range="bytes=0-1048575")
    assert r.status_code == 206 and len(r.get_data()) == 1 << 20
    assert_problem(post(c, doc, Range=f"bytes=0-{4 * (1 << 29) + 100}"), 413, "limit-exceeded")
    assert_problem(post(c, doc, Range="bytes=0-1,4-5"), 413, "limit-exceeded")  # ignored range: whole
    assert_problem(post(c, doc), 413, "limit-exceeded")                        # also from the cache
    assert_problem(post(c, {**doc, "format": "npz"}, Range="bytes=0-99"), 413, "limit-exceeded")
