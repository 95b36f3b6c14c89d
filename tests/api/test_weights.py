"""POST /v1/plan and POST /v1/weights through the Flask test client: bodies, negotiation,
caching (ETag, 304), headers."""

from __future__ import annotations

import base64
import hashlib
import io
import json

import numpy as np
import pytest

from service import create_app
from tests.helpers import plan_of
from tests.helpers import report_of as report
from tests.helpers import artifact_of as encode
from service.version import ENGINE_VERSION

from .helpers import MIXED, MLP, assert_problem, small


def engine_bytes(doc: dict, fmt: str) -> bytes:
    """What the encoders (and so the CLI) produce for this document."""
    plan = plan_of({k: v for k, v in doc.items() if k != "format"})
    return b"".join(bytes(c) for c in encode(plan, fmt).chunks())


def fingerprint(doc: dict) -> str:
    return plan_of({k: v for k, v in doc.items() if k != "format"}).fingerprint


# ---------------------------------------------------------------- /v1/plan
def test_plan_is_the_report_without_values(client, check_openapi):
    kw = {"path": "/v1/plan", "method": "POST", "json": MIXED}
    r = client.open(**kw)
    assert r.status_code == 200 and r.mimetype == "application/json"
    body = r.get_json()
    assert body == json.loads(json.dumps(report(plan_of(MIXED))))
    assert all("values" not in t for t in body["tensors"])
    # the chosen scheme per layer for auto, and why
    by_layer = {layer["name"]: layer for layer in body["layers"]}
    assert by_layer["conv"]["scheme"] == "he_normal" and by_layer["conv"]["chosen_by"] == "auto"
    assert "leaky_relu" in by_layer["conv"]["reason"]
    assert by_layer["head"]["scheme"] == "orthogonal" and by_layer["head"]["chosen_by"] == "layer"
    assert by_layer["emb"]["scheme"] == "xavier_uniform"
    # totals: parameters and bytes per format
    plan = plan_of(MIXED)
    assert body["totals"]["parameters"] == plan.total_elements
    assert body["totals"]["bytes"]["safetensors"] == len(engine_bytes(MIXED, "safetensors"))
    assert body["totals"]["bytes"]["npz"] == len(engine_bytes(MIXED, "npz"))
    t = next(t for t in body["tensors"] if t["name"] == "conv.weight")
    for key in ("shape", "dtype", "fan_in", "fan_out", "gain", "distribution", "bounds", "mean", "variance", "std",
                "target_variance", "warnings"):
        assert key in t
    assert t["shape"] == [6, 2, 3] and t["fan_in"] == 6 and t["fan_out"] == 18
    check_openapi(kw, r)


def test_plan_headers_and_304(client):
    r = client.post("/v1/plan", json=MLP)
    etag = r.headers["ETag"]
    assert etag == f'"{fingerprint(MLP)}-plan"'
    assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert r.headers["X-Weightinit-Seed"] == "42" and r.headers["X-Weightinit-Scheme"] == "he_normal"
    r2 = client.post("/v1/plan", json=MLP, headers={"If-None-Match": etag})
    assert r2.status_code == 304 and r2.get_data() == b"" and r2.headers["ETag"] == etag


# ---------------------------------------------------------------- /v1/weights JSON
def test_json_weights_equal_the_engine_and_carry_a_digest(client, check_openapi):
    kw = {"path": "/v1/weights", "method": "POST", "json": MIXED}
    r = client.open(**kw)
    assert r.status_code == 200 and r.mimetype == "application/json"
    raw = r.get_data()
    assert raw == engine_bytes(MIXED, "json")
    assert int(r.headers["Content-Length"]) == len(raw)
    assert r.headers["Repr-Digest"] == f"sha-256=:{base64.b64encode(hashlib.sha256(raw).digest()).decode()}:"
    assert "Content-Disposition" not in r.headers
    body = json.loads(raw)
    plan = plan_of(MIXED)
    for entry, t in zip(body["tensors"], plan.selected, strict=True):
        expected = t.generate()
        got = np.array(entry["values"], dtype=np.float32)
        assert got.shape == expected.shape
        np.testing.assert_array_equal(got, expected)
        assert entry["sha256"] == hashlib.sha256(expected.tobytes()).hexdigest()
        assert set(entry["empirical"]) == {"mean", "std", "min", "max"}
    check_openapi(kw, r)


def test_json_float16_values_are_shortest_round_trip(client):
    doc = small(dtype="float16")
    body = client.post("/v1/weights", json=doc).get_json()
    expected = plan_of(doc).selected[0].generate()
    values = body["tensors"][0]["values"]
    np.testing.assert_array_equal(np.array(values, dtype=np.float16), expected)
    assert all(len(repr(v).replace("-", "").replace("0.", "")) <= 8 for row in values for v in row)


# ---------------------------------------------------------------- binary formats
@pytest.mark.parametrize("fmt, media_type", [("npy", "application/x-npy"), ("npz", "application/zip"),
                                             ("safetensors", "application/vnd.safetensors")])
def test_binary_formats_stream_the_encoder_bytes(client, fmt, media_type, check_openapi):
    doc = {**MLP, "format": fmt, **({"tensors": ["fc1.weight"]} if fmt == "npy" else {})}
    kw = {"path": "/v1/weights", "method": "POST", "json": doc}
    # By default an artifact this small (< digest_max_bytes) is built in memory to carry Repr-Digest;
    # with the threshold at 0 it streams, like every larger one.
    small = client.open(**kw)
    digest = base64.b64encode(hashlib.sha256(small.get_data()).digest()).decode()
    assert small.headers["Repr-Digest"] == f"sha-256=:{digest}:" and small.get_data() == engine_bytes(doc, fmt)
    r = create_app({"digest_max_bytes": 0}).test_client().open(**kw, buffered=False)
    assert r.status_code == 200 and r.mimetype == media_type
    assert r.is_streamed
    raw = r.get_data()
    assert raw == engine_bytes(doc, fmt)
    assert int(r.headers["Content-Length"]) == len(raw)
    name = f"weightinit-seed42-{fingerprint(doc)[:16]}.{fmt}"
    assert r.headers["Content-Disposition"] == f'attachment; filename="{name}"'
    assert r.headers["X-Weightinit-Seed"] == "42" and r.headers["X-Weightinit-Scheme"] == "he_normal"
    assert "Repr-Digest" not in r.headers
    r.close()
    check_openapi(kw, client.open(**kw))


def test_binary_body_is_a_generator_of_bounded_chunks(app, monkeypatch):
    """Never the whole artifact in one buffer: the body is yielded block by block."""
    import service.api.weights as weights

    sizes = []
    real = weights._stream

    def spy(artifact, rid, *args):
        for chunk in real(artifact, rid, *args):
            assert isinstance(chunk, bytes)
            sizes.append(len(chunk))
            yield chunk

    monkeypatch.setattr(weights, "_stream", spy)
    doc = {"architecture": {"layers": [{"type": "tensor", "shape": [1000, 1500]}]}, "format": "npy"}  # 6 MB
    r = create_app({"digest_max_bytes": 1 << 20}).test_client().post("/v1/weights", json=doc)  # 6 MB > 1 MiB: streamed
    assert r.status_code == 200 and len(r.get_data()) == 6_000_128
    assert len(sizes) > 5 and max(sizes) <= 4 * 262_144


def test_npz_and_safetensors_decode_to_the_engine_arrays(client):
    from safetensors.numpy import load as st_load

    plan = plan_of(MIXED)
    npz = np.load(io.BytesIO(client.post("/v1/weights", json={**MIXED, "format": "npz"}).get_data()), allow_pickle=False)
    st = st_load(client.post("/v1/weights", json=MIXED, headers={"Accept": "application/vnd.safetensors"}).get_data())
    for t in plan.selected:
        np.testing.assert_array_equal(npz[t.name], t.generate())
        np.testing.assert_array_equal(st[t.name], t.generate())
    manifest = json.loads(str(npz["manifest"]))
    assert manifest["seed"] == 1234 and manifest["engine"]["version"] == ENGINE_VERSION


# ---------------------------------------------------------------- negotiation
@pytest.mark.parametrize("accept, fmt, content_type", [
    (None, "json", "application/json"),
    ("*/*", "json", "application/json"),
    ("application/*", "json", "application/json"),
    ("application/json", "json", "application/json"),
    ("application/x-npy", "npy", "application/x-npy"),
    ("application/zip", "npz", "application/zip"),
    ("application/vnd.safetensors", "safetensors", "application/vnd.safetensors"),
    ("application/octet-stream", "safetensors", "application/octet-stream"),
    ("text/html;q=0.9, application/zip;q=0.5", "npz", "application/zip"),
    ("application/json;q=0.1, application/vnd.safetensors", "safetensors", "application/vnd.safetensors"),
])
def test_accept_picks_the_format(client, accept, fmt, content_type):
    doc = small(tensors=["fc.weight"])
    r = client.post("/v1/weights", json=doc, headers={"Accept": accept} if accept else {})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.mimetype == content_type
    assert r.get_data() == engine_bytes(doc, fmt)
    assert r.headers["ETag"].endswith(f'-{fmt}"') and r.headers["Vary"] == "Accept"


@pytest.mark.parametrize("body_format, accept", [
    ("npz", "*/*"), ("npz", "application/zip"), ("npz", "application/*"), ("json", "application/json, */*;q=0.1"),
    ("safetensors", "application/octet-stream"), ("npy", None),
])
def test_body_format_with_a_compatible_accept(client, body_format, accept):
    doc = small(format=body_format, tensors=["fc.weight"])
    r = client.post("/v1/weights", json=doc, headers={"Accept": accept} if accept else {})
    assert r.status_code == 200
    assert r.get_data() == engine_bytes(doc, body_format)


@pytest.mark.parametrize("body_format, accept", [
    ("npz", "application/json"), ("json", "application/zip"), ("safetensors", "application/x-npy"),
    ("npy", "application/json;q=1, application/x-npy;q=0"),
])
def test_body_format_excluded_by_accept_is_406(client, body_format, accept):
    r = client.post("/v1/weights", json=small(format=body_format, tensors=["fc.weight"]), headers={"Accept": accept})
    p = assert_problem(r, 406, "not-acceptable")
    assert body_format in p["detail"] and "Accept" in p["detail"]


@pytest.mark.parametrize("accept", ["text/html", "image/*", "application/xml", "application/problem+json",
                                    "application/json;q=0"])
def test_unsupported_accept_is_406(client, accept):
    p = assert_problem(client.post("/v1/weights", json=small(), headers={"Accept": accept}), 406, "not-acceptable")
    assert "application/json" in p["acceptable"] and "application/vnd.safetensors" in p["acceptable"]


# ---------------------------------------------------------------- caching
def test_etag_is_strong_stable_and_covers_request_and_format(client):
    a = client.post("/v1/weights", json=small()).headers["ETag"]
    assert a == f'"{fingerprint(small())}-json"' and not a.startswith("W/")
    # the same normalized request, spelled differently: same ETag
    spelled = {"seed": 42, "architecture": {"layers": [{"activation": "tanh", "out_features": 2, "in_features": 3,
                                                          "name": "fc", "type": "dense"}]}, "dtype": "float32",
               "scheme": "auto", "layout": "torch"}
    assert client.post("/v1/weights", json=spelled).headers["ETag"] == a
    others = {client.post("/v1/weights", json=d).headers["ETag"] for d in
              (small(seed=43), small(dtype="float64"), small(scheme="he_normal"), small(format="npz"),
               small(layout="keras"), small(tensors=["fc.weight"]))}
    assert a not in others and len(others) == 6


def test_if_none_match_answers_304_before_generating(client, monkeypatch, check_openapi):
    import service.api.weights as weights

    doc = {**MLP, "format": "safetensors"}
    first = client.post("/v1/weights", json=doc)
    etag = first.headers["ETag"]

    def no_generation(*a, **kw):
        raise AssertionError("nothing may be generated for a 304")

    monkeypatch.setattr("service.core.plan.TensorPlan.generate", no_generation)
    monkeypatch.setattr("service.core.plan.TensorPlan.blocks", no_generation)
    for inm in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        kw = {"path": "/v1/weights", "method": "POST", "json": doc, "headers": {"If-None-Match": inm}}
        r = client.open(**kw)
        assert r.status_code == 304, inm
        assert r.get_data() == b""
        assert r.headers["ETag"] == etag and r.headers["Cache-Control"] == first.headers["Cache-Control"]
        assert r.headers["X-Weightinit-Version"] == ENGINE_VERSION
        check_openapi(kw, r)
    monkeypatch.undo()
    # a different format of the same document does not match
    assert client.post("/v1/weights", json={**doc, "format": "npz"}, headers={"If-None-Match": etag}).status_code == 200
    assert weights  # the module under test


def test_json_304_too(client):
    etag = client.post("/v1/weights", json=small()).headers["ETag"]
    assert client.post("/v1/weights", json=small(), headers={"If-None-Match": etag}).status_code == 304
    assert client.post("/v1/weights", json=small(), headers={"If-None-Match": '"nope"'}).status_code == 200


def test_cache_max_age_is_configurable():
    from service import create_app

    r = create_app({"cache_max_age": 60}).test_client().post("/v1/weights", json=small())
    assert r.headers["Cache-Control"] == "public, max-age=60, immutable"


# ---------------------------------------------------------------- headers on every response
@pytest.mark.parametrize("incoming, echoed", [
    ("abc-123", True), ("4f1c2b9e:trace/17+x=y.z_", True), ("x" * 128, True),
    ("x" * 129, False), ("has space", False), ("-leading-dash", False), ("évian", False), ("", False),
])
def test_request_id_is_echoed_when_sane(client, incoming, echoed):
    for r in (client.get("/healthz", headers={"X-Request-ID": incoming}),
              client.post("/v1/weights", json={"bad": 1}, headers={"X-Request-ID": incoming})):
        rid = r.headers["X-Request-ID"]
        if echoed:
            assert rid == incoming
        else:
            assert rid != incoming and len(rid) == 32 and rid.isalnum()


def test_generated_request_ids_differ(client):
    assert client.get("/healthz").headers["X-Request-ID"] != client.get("/healthz").headers["X-Request-ID"]


@pytest.mark.parametrize("method, path, kw", [
    ("get", "/healthz", {}), ("get", "/v1/schemes", {}), ("get", "/openapi.yaml", {}), ("get", "/docs", {}),
    ("post", "/v1/plan", {"json": {}}), ("post", "/v1/weights", {"json": small(format="npz")}), ("get", "/missing", {}),
])
def test_common_headers_on_every_response(client, method, path, kw):
    r = getattr(client, method)(path, **kw)
    assert r.headers["X-Weightinit-Version"] == ENGINE_VERSION
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["X-Request-ID"]
