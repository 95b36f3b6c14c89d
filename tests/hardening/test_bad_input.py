"""Bad input against a real gunicorn server (one worker, the shipped configuration), table-driven.

Every case asserts the exact status and an RFC 9457 problem body that names what was wrong: the
field path (422), the limit (413), the header (400), the media types (406, 415) or the parse
error (400). Then: a request for 10^12 elements is refused before anything is allocated (the
worker's peak RSS, from /proc, does not move), tensor names that could reach a filename, a
header or safetensors metadata are refused by the HTTP layer and the engine alike, and after
the whole table the same worker (same pid) still answers a normal request with the engine's
exact bytes."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import time

import numpy as np
import pytest
import requests

from service.api.app import MAX_HEADER_LENGTHS
from tests.helpers import plan_of, problem_of
from tests.helpers import artifact_of as encode

from .conftest import TIMEOUT, raw_request, reset_peak, rss_kib, single_worker

JSON_CT = {"Content-Type": "application/json"}


def layer(**kw) -> dict:
    return {"type": "dense", "name": "fc", "in_features": 3, "out_features": 2, "activation": "tanh", **kw}


def doc(*layers, **kw) -> dict:
    return {"architecture": {"layers": list(layers) or [layer()]}, "seed": 42, **kw}


def dumps(obj) -> bytes:
    return json.dumps(obj).encode()


TENSOR_1E12 = {"architecture": {"layers": [{"type": "tensor", "name": "t", "shape": [1_000_000, 1_000_000]}]}}
VALID = dumps(doc())

# (id, path, body bytes, extra headers, status, problem kind, what the problem must name)
#   names: {"errors": field} | {"limit": name} | {"detail": substring} | {"header": name} | {"acceptable": [...]}
CASES = [
    # --- JSON that does not parse (400)
    ("malformed", "/v1/weights", b'{"architecture": {"layers": [}', {}, 400, "malformed-json",
     {"detail": "not valid JSON"}),
    ("truncated", "/v1/weights", VALID[: len(VALID) // 2], {}, 400, "malformed-json", {"detail": "not valid JSON"}),
    ("empty body", "/v1/weights", b"", {}, 400, "malformed-json", {"detail": "empty"}),
    ("whitespace body", "/v1/plan", b" \n\t ", {}, 400, "malformed-json", {"detail": "empty"}),
    ("nested 10000 deep (arrays)", "/v1/weights", b'{"architecture": {"layers": ' + b"[" * 10_000 + b"]" * 10_000 + b"}}",
     {}, 400, "malformed-json", {"detail": "depth limit exceeded"}),
    ("nested 10000 deep (objects)", "/v1/plan", b'{"a":' * 10_000 + b"1" + b"}" * 10_000, {}, 400, "malformed-json",
     {"detail": "depth limit exceeded"}),
    ("NaN literal", "/v1/weights", VALID.replace(b'"seed": 42', b'"scheme": {"name": "normal", "std": NaN}'), {}, 400,
     "malformed-json", {"detail": "not valid JSON"}),
    ("Infinity literal", "/v1/weights", VALID.replace(b"42", b"Infinity"), {}, 400, "malformed-json",
     {"detail": "not valid JSON"}),
    ("-Infinity literal", "/v1/plan", VALID.replace(b"42", b"-Infinity"), {}, 400, "malformed-json",
     {"detail": "not valid JSON"}),
    ("1e309 overflows a double", "/v1/weights",
     dumps(doc(scheme={"name": "normal", "std": 1.0})).replace(b"1.0", b"1e309"), {}, 400, "malformed-json",
     {"detail": "infinity"}),
    ("UTF-8 BOM", "/v1/weights", b"\xef\xbb\xbf" + VALID, {}, 400, "malformed-json", {"detail": "BOM"}),
    ("invalid UTF-8", "/v1/weights", VALID.replace(b'"fc"', b'"\xff\xfe"'), {}, 400, "malformed-json",
     {"detail": "UTF-8"}),
    # --- not an object (422 on the document itself)
    ("array body", "/v1/weights", b"[1, 2]", {}, 422, "invalid-document", {"errors": "_schema"}),
    ("string body", "/v1/weights", b'"architecture"', {}, 422, "invalid-document", {"errors": "_schema"}),
    ("number body", "/v1/plan", b"42", {}, 422, "invalid-document", {"errors": "_schema"}),
    ("null body", "/v1/weights", b"null", {}, 422, "invalid-document", {"errors": "_schema"}),
    # --- content types (415)
    ("no Content-Type", "/v1/weights", VALID, {"Content-Type": None}, 415, "unsupported-media-type",
     {"detail": "send Content-Type: application/json"}),
    ("text/plain", "/v1/weights", VALID, {"Content-Type": "text/plain"}, 415, "unsupported-media-type",
     {"detail": "text/plain"}),
    ("form-urlencoded", "/v1/plan", VALID, {"Content-Type": "application/x-www-form-urlencoded"}, 415,
     "unsupported-media-type", {"detail": "application/x-www-form-urlencoded"}),
    ("multipart", "/v1/weights", VALID, {"Content-Type": "multipart/form-data; boundary=x"}, 415,
     "unsupported-media-type", {"detail": "multipart/form-data"}),
    ("JSON in latin-1", "/v1/weights", VALID, {"Content-Type": "application/json; charset=latin-1"}, 415,
     "unsupported-media-type", {"detail": "latin-1"}),
    # --- numbers: size, sign, type (422 naming the field)
    ("integer of 300 digits (seed)", "/v1/weights", VALID.replace(b"42", b"9" * 300), {}, 422, "invalid-document",
     {"errors": "seed"}),
    ("integer of 300 digits (dimension)", "/v1/weights",
     dumps(doc(layer(in_features=7))).replace(b'"in_features": 7', b'"in_features": ' + b"1" * 300), {}, 422,
     "invalid-document", {"errors": "architecture.layers.0.in_features"}),
    ("seed -1", "/v1/weights", dumps(doc(seed=-1)), {}, 422, "invalid-document", {"errors": "seed"}),
    ("seed 2**63", "/v1/weights", dumps(doc(seed=2 ** 63)), {}, 422, "invalid-document", {"errors": "seed"}),
    ("seed 2**64 (read as a float)", "/v1/plan", dumps(doc(seed=2 ** 64)), {}, 422, "invalid-document",
     {"errors": "seed"}),
    ("seed 1.5", "/v1/weights", dumps(doc(seed=1.5)), {}, 422, "invalid-document", {"errors": "seed"}),
    ("seed -0.0 (a float, not an integer)", "/v1/weights", dumps(doc(seed=-0.0)), {}, 422, "invalid-document",
     {"errors": "seed"}),
    ("std 1e308", "/v1/weights", dumps(doc(scheme={"name": "normal", "std": 1e308})), {}, 422, "invalid-document",
     {"errors": "scheme.std"}),
    ("std -0.0 is not > 0", "/v1/weights", dumps(doc(scheme={"name": "normal", "std": -0.0})), {}, 422,
     "invalid-document", {"errors": "scheme.std"}),
    ("mean -1e308", "/v1/plan", dumps(doc(scheme={"name": "normal", "mean": -1e308})), {}, 422, "invalid-document",
     {"errors": "scheme.mean"}),
    ("gain 1e308", "/v1/weights", dumps(doc(scheme={"name": "he_normal", "gain": 1e308})), {}, 422,
     "invalid-document", {"errors": "scheme.gain"}),
    ("scheme parameter null", "/v1/weights", dumps(doc(scheme={"name": "uniform", "high": None})), {}, 422,
     "invalid-document", {"errors": "scheme.high"}),
    ("float16 overflow (uniform 1e6)", "/v1/weights",
     dumps(doc(scheme={"name": "uniform", "low": -1e6, "high": 1e6}, dtype="float16")), {}, 422, "invalid-document",
     {"errors": "scheme"}),
    ("float16 overflow (layer normal std 1e4)", "/v1/plan",
     dumps(doc(layer(scheme={"name": "normal", "std": 1e4}), dtype="float16")), {}, 422, "invalid-document",
     {"errors": "architecture.layers.0.scheme"}),
    ("string where a number goes (seed)", "/v1/weights", dumps(doc(seed="42")), {}, 422, "invalid-document",
     {"errors": "seed"}),
    ("string where a number goes (dimension)", "/v1/weights", dumps(doc(layer(in_features="3"))), {}, 422,
     "invalid-document", {"errors": "architecture.layers.0.in_features"}),
    ("string where a number goes (std)", "/v1/weights", dumps(doc(scheme={"name": "normal", "std": "1"})), {}, 422,
     "invalid-document", {"errors": "scheme.std"}),
    ("number where a string goes (dtype)", "/v1/weights", dumps(doc(dtype=32)), {}, 422, "invalid-document",
     {"errors": "dtype"}),
    ("number where a string goes (name)", "/v1/weights", dumps(doc(layer(name=5))), {}, 422, "invalid-document",
     {"errors": "architecture.layers.0.name"}),
    ("number where a string goes (scheme)", "/v1/plan", dumps(doc(scheme=5)), {}, 422, "invalid-document",
     {"errors": "scheme"}),
    ("number where a string goes (tensors)", "/v1/weights", dumps(doc(tensors=[1])), {}, 422, "invalid-document",
     {"errors": "tensors.0"}),
    ("object where a layer type goes", "/v1/weights", dumps(doc(layer(type={}))), {}, 422, "invalid-document",
     {"errors": "architecture.layers.0.type"}),
    ("boolean as integer (seed)", "/v1/weights", dumps(doc(seed=True)), {}, 422, "invalid-document",
     {"errors": "seed"}),
    ("boolean as integer (dimension)", "/v1/weights", dumps(doc(layer(out_features=False))), {}, 422,
     "invalid-document", {"errors": "architecture.layers.0.out_features"}),
    ("boolean as number (gain)", "/v1/weights", dumps(doc(scheme={"name": "he_normal", "gain": True})), {}, 422,
     "invalid-document", {"errors": "scheme.gain"}),
    ("integer as boolean (truncate)", "/v1/weights", dumps(doc(scheme={"name": "he_normal", "truncate": 1})), {},
     422, "invalid-document", {"errors": "scheme.truncate"}),
    # --- dimensions
    ("dimension 0", "/v1/weights", dumps(doc(layer(in_features=0))), {}, 422, "invalid-document",
     {"errors": "architecture.layers.0.in_features"}),
    ("dimension -0", "/v1/weights", VALID.replace(b'"in_features": 3', b'"in_features": -0'), {}, 422,
     "invalid-document", {"errors": "architecture.layers.0.in_features"}),
    ("dimension negative", "/v1/weights", dumps(doc(layer(out_features=-3))), {}, 422, "invalid-document",
     {"errors": "architecture.layers.0.out_features"}),
    ("shape with a 0", "/v1/weights", dumps(doc({"type": "tensor", "name": "t", "shape": [4, 0]})), {}, 422,
     "invalid-document", {"errors": "architecture.layers.0.shape.1"}),
    ("kernel size negative", "/v1/plan",
     dumps(doc({"type": "conv2d", "in_channels": 2, "out_channels": 2, "kernel_size": [3, -1]})), {}, 422,
     "invalid-document", {"errors": "architecture.layers.0.kernel_size"}),
    ("dimension 2**31 + 1", "/v1/weights", dumps(doc(layer(in_features=2 ** 31 + 1))), {}, 422, "invalid-document",
     {"errors": "architecture.layers.0.in_features"}),
    # --- limits (413 naming the limit), decided before any value is drawn
    ("10^12 elements as npz", "/v1/weights", dumps({**TENSOR_1E12, "format": "npz"}), {}, 413, "limit-exceeded",
     {"limit": "max_binary_elements"}),
    ("10^12 elements as JSON", "/v1/weights", dumps(TENSOR_1E12), {}, 413, "limit-exceeded",
     {"limit": "max_json_elements"}),
    ("2^248 elements in a plan", "/v1/plan", dumps(doc({"type": "tensor", "name": "t", "shape": [2 ** 31] * 8})), {},
     413, "limit-exceeded", {"limit": "max_plan_elements"}),
    ("orthogonal 2^25 elements", "/v1/plan",
     dumps(doc({"type": "tensor", "name": "t", "shape": [8192, 4096]}, scheme="orthogonal")), {}, 413,
     "limit-exceeded", {"limit": "whole_matrix_elements"}),
    ("1001 layers", "/v1/plan", dumps(doc(*[layer(name=f"l{i}") for i in range(1001)])), {}, 413, "limit-exceeded",
     {"limit": "max_layers"}),
    # --- unknown names (422 naming the field)
    ("unknown scheme", "/v1/weights", dumps(doc(scheme="xavier")), {}, 422, "invalid-document",
     {"errors": "scheme.name"}),
    ("unknown scheme parameter", "/v1/weights", dumps(doc(scheme={"name": "he_normal", "std": 1})), {}, 422,
     "invalid-document", {"errors": "scheme.std"}),
    ("unknown top-level field", "/v1/weights", dumps(doc(colour="red")), {}, 422, "invalid-document",
     {"errors": "colour"}),
    ("unknown layer field", "/v1/weights", dumps(doc(layer(kernel_size=3))), {}, 422, "invalid-document",
     {"errors": "architecture.layers.0.kernel_size"}),
    ("unknown layer type", "/v1/weights", dumps(doc(layer(type="dense2"))), {}, 422, "invalid-document",
     {"errors": "architecture.layers.0.type"}),
    ("unknown activation", "/v1/weights", dumps(doc(layer(activation="swish"))), {}, 422, "invalid-document",
     {"errors": "architecture.layers.0.activation"}),
    ("unknown dtype", "/v1/weights", dumps(doc(dtype="int8")), {}, 422, "invalid-document", {"errors": "dtype"}),
    ("unknown format", "/v1/weights", dumps(doc(format="pickle")), {}, 422, "invalid-document",
     {"errors": "format"}),
    # --- names that would reach a filename, a header or safetensors metadata
    *[(f"layer name {label}", "/v1/weights", dumps(doc(layer(name=name), format="safetensors")), {}, 422,
       "invalid-document", {"errors": "architecture.layers.0.name"})
      for label, name in [("with /", "a/b"), ("..", ".."), ("../x", "../x"), ("with a quote", 'a"b'),
                          ("with a single quote", "a'b"), ("with a newline", "a\nb"), ("with CR LF", "a\r\nX-Evil: 1"),
                          ("with NUL", "a\x00b"), ("non-ASCII", "caf\u00e9"), ("with a space", "a b"),
                          ("with a backslash", "a\\b"), ("empty", ""), ("129 characters", "a" * 129)]],
    ("tensors pattern with a path", "/v1/weights", dumps(doc(tensors=["../../etc/passwd"])), {}, 422,
     "invalid-document", {"errors": "tensors.0"}),
    # --- semantics
    ("duplicate layer names", "/v1/weights", dumps(doc(layer(name="x"), layer(name="x", in_features=2))), {}, 422,
     "invalid-document", {"errors": "architecture.layers.1.name"}),
    ("tensors selecting nothing", "/v1/weights", dumps(doc(tensors=["nothing.*"])), {}, 422, "invalid-document",
     {"errors": "tensors.0"}),
    ("npy with several tensors", "/v1/weights", dumps(doc(format="npy")), {}, 422, "invalid-document",
     {"errors": "format"}),
    ("npy with several tensors (Accept)", "/v1/weights", VALID, {"Accept": "application/x-npy"}, 422,
     "invalid-document", {"errors": "format"}),
    ("groups not dividing channels", "/v1/weights",
     dumps(doc({"type": "conv2d", "in_channels": 3, "out_channels": 4, "kernel_size": 3, "groups": 2})), {}, 422,
     "invalid-document", {"errors": "architecture.layers.0.groups"}),
    # --- negotiation (406)
    ("format npz with Accept: application/json", "/v1/weights", dumps(doc(format="npz")),
     {"Accept": "application/json"}, 406, "not-acceptable", {"acceptable": ["application/zip"]}),
    ("format json with Accept: application/zip", "/v1/weights", dumps(doc(format="json")),
     {"Accept": "application/zip"}, 406, "not-acceptable", {"acceptable": ["application/json"]}),
    ("Accept nothing the API sends", "/v1/weights", VALID, {"Accept": "text/html"}, 406, "not-acceptable",
     {"detail": "text/html"}),
    ("plan with Accept: application/zip", "/v1/plan", VALID, {"Accept": "application/zip"}, 406, "not-acceptable",
     {"acceptable": ["application/json"]}),
    # --- headers
    ("If-None-Match over 2048 characters", "/v1/weights", VALID, {"If-None-Match": '"' + "a" * 3000 + '"'}, 400,
     "bad-request", {"header": "If-None-Match"}),
    ("Range over 200 characters", "/v1/weights", dumps(doc(format="safetensors")), {"Range": "bytes=" + "0" * 300 + "-"},
     400, "bad-request", {"header": "Range"}),
    ("If-Range over 200 characters", "/v1/weights", dumps(doc(format="safetensors")),
     {"Range": "bytes=0-1", "If-Range": '"' + "f" * 250 + '"'}, 400, "bad-request", {"header": "If-Range"}),
]


def _post(server, path, body, headers):
    h = {**JSON_CT, **headers}
    h = {k: v for k, v in h.items() if v is not None}
    return requests.post(server.url + path, data=body, headers=h, timeout=TIMEOUT)


def assert_problem(r: requests.Response, status: int, kind: str) -> dict:
    assert r.status_code == status, (r.status_code, r.text[:500])
    assert r.headers["Content-Type"] == "application/problem+json"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert int(r.headers["Content-Length"]) == len(r.content)
    body = r.json()
    assert body["type"] == f"urn:weightinit:problem:{kind}"
    assert body["status"] == status and body["title"] and body["detail"]
    assert body["request_id"] == r.headers["X-Request-ID"]
    assert "Traceback" not in r.text and 'File "' not in r.text
    return body


@pytest.fixture(scope="module")
def worker(one_worker_server):
    return single_worker(one_worker_server)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(one_worker_server, worker, case):
    _, path, body, headers, status, kind, names = case
    r = _post(one_worker_server, path, body, headers)
    p = assert_problem(r, status, kind)
    for key, value in names.items():
        if key == "errors":
            assert value in p["errors"], (value, p["errors"])
            assert p["errors"][value] and all(isinstance(m, str) and m for m in p["errors"][value])
            assert p["detail"].startswith(value.split(".")[0])
        elif key == "limit":
            assert p["limit"] == value and isinstance(p["allowed"], int)
            assert p["requested"] is None or p["requested"] > p["allowed"]
        elif key == "detail":
            assert value in p["detail"], p["detail"]
        elif key == "header":
            assert p["header"] == value and p["allowed"] == MAX_HEADER_LENGTHS[value]
            assert value in p["detail"]
        elif key == "acceptable":
            assert p["acceptable"] == value
        else:  # pragma: no cover - a typo in the table
            raise AssertionError(key)


def test_the_table_covers_every_problem_kind_a_request_can_cause():
    assert {c[5] for c in CASES} == {"malformed-json", "invalid-document", "unsupported-media-type",
                                     "limit-exceeded", "not-acceptable", "bad-request"}


TINY = 5e-324  # the smallest subnormal double: variances underflow to 0, ranges to no width
SUBNORMAL_SCHEMES = [
    *[{"name": "variance_scaling", "scale": TINY, "distribution": d} for d in ("uniform", "normal", "truncated_normal")],
    {"name": "normal", "std": TINY}, {"name": "normal", "std": 1e-300, "mean": 1e-300}, {"name": "orthogonal", "gain": TINY},
    {"name": "sparse", "sparsity": 0.0, "std": TINY}, {"name": "he_normal", "gain": TINY},
    {"name": "uniform", "low": -TINY, "high": TINY}, {"name": "truncated_normal", "std": TINY, "low": -TINY, "high": TINY},
    {"name": "identity", "gain": TINY}, {"name": "constant", "value": TINY},
]


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
def test_subnormal_parameters_never_fail_the_server(one_worker_server, dtype):
    """200, or a 422 naming the scheme; never a 500. Found by fuzzing: variances that underflow to 0 divided warnings (policies) and the
    diagnostics' scale ratio by zero, and histogram ranges narrower than their bins broke numpy."""
    layers = [layer(name="a", in_features=4, out_features=4), layer(name="b", in_features=4, out_features=4,
                                                                    activation="relu")]
    for scheme in SUBNORMAL_SCHEMES:
        d = doc(*layers, scheme=scheme, dtype=dtype)
        for path, body in [("/v1/plan", d), ("/v1/weights", {**d, "format": "safetensors"}), ("/v1/weights", d),
                           ("/v1/diagnose", {**d, "schemes": [scheme], "batch": 8})]:
            r = _post(one_worker_server, path, dumps(body), {})
            assert r.status_code in (200, 422), (path, scheme, r.status_code, r.text[:300])
            if r.status_code == 422:  # e.g. a uniform bound that underflows to 0: named, not a crash
                assert_problem(r, 422, "invalid-document")
                assert any(k.startswith(("scheme", "schemes")) for k in r.json()["errors"]), r.json()


def test_a_10mb_body_is_refused_before_it_is_read(one_worker_server):
    big = b'{"architecture": {"layers": []}, "pad": "' + b"x" * (10 << 20) + b'"}'
    t0 = time.monotonic()
    p = assert_problem(_post(one_worker_server, "/v1/weights", big, {}), 413, "limit-exceeded")
    assert (p["limit"], p["requested"], p["allowed"]) == ("max_body_bytes", len(big), 1 << 20)
    assert time.monotonic() - t0 < 20


def test_a_10mb_chunked_body_is_cut_at_the_limit(one_worker_server):
    def chunks():  # no Content-Length: werkzeug reads at most max_body_bytes + 1
        yield b'{"architecture": {"layers": []}, "pad": "'
        for _ in range(10):
            yield b"x" * (1 << 20)
        yield b'"}'

    r = requests.post(one_worker_server.url + "/v1/weights", data=chunks(), headers=JSON_CT, timeout=TIMEOUT)
    p = assert_problem(r, 413, "limit-exceeded")
    assert (p["limit"], p["requested"], p["allowed"]) == ("max_body_bytes", None, 1 << 20)


def test_a_body_shorter_than_its_content_length_is_never_taken_for_a_whole_one(one_worker_server):
    """The body ends (the client half-closes) before Content-Length: 408, even when what arrived is
    valid JSON, and even for a body the server has answered before (the cached fast path)."""
    body = VALID + b" " * 64
    assert _post(one_worker_server, "/v1/weights", VALID + b" " * 64, {}).status_code == 200  # now cached
    for announced in (len(body) + 1, len(body) + 1000):
        raw = raw_request(one_worker_server.port,
                          b"POST /v1/weights HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                          b"Content-Length: " + str(announced).encode() + b"\r\n\r\n" + body)
        head, _, payload = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408"), raw[:300]
        p = json.loads(payload)
        assert p["type"] == "urn:weightinit:problem:request-timeout" and "Content-Length" in p["detail"]


def test_a_request_for_1e12_elements_allocates_nothing(one_worker_server, worker):
    """10^12 float64 would be 8 TB: refused from the element count alone; the worker's peak RSS
    (VmHWM, reset first where the kernel allows) does not move."""
    big = {**TENSOR_1E12, "dtype": "float64"}
    for _ in range(3):  # warm up this code path (imports, caches) before measuring
        _post(one_worker_server, "/v1/weights", dumps({**big, "format": "safetensors"}), {})
    can_reset = reset_peak(worker)
    before_rss, before_peak = rss_kib(worker), rss_kib(worker, "VmHWM")
    for fmt in ("json", "npy", "npz", "safetensors"):
        p = assert_problem(_post(one_worker_server, "/v1/weights", dumps({**big, "format": fmt}), {}), 413,
                           "limit-exceeded")
        assert p["requested"] == 10 ** 12
    after_rss, after_peak = rss_kib(worker), rss_kib(worker, "VmHWM")
    print(f"\nworker {worker}: RSS {before_rss} -> {after_rss} KiB, peak {before_peak} -> {after_peak} KiB "
          f"(peak reset: {can_reset})")
    assert after_rss - before_rss < 2048, "RSS grew by more than 2 MiB refusing 10^12 elements"
    if can_reset:
        assert after_peak - before_peak < 2048, "peak RSS grew by more than 2 MiB refusing 10^12 elements"


def test_names_that_could_reach_files_headers_or_metadata_are_refused_at_every_entry_point():
    """The CLI validates through the same boundary (service.document) as HTTP: no entry point reaches
    the engine with a name that could become a path, a header or a metadata key."""
    for name in ["a/b", "..", "../x", 'a"b', "a\nb", "a\x00b", "caf\u00e9", "a b", "", "a" * 129, ".hidden", "x."]:
        field, _, _ = problem_of(doc(layer(name=name)))
        assert field == "architecture.layers.0.name", (name, field)


def test_what_reaches_filenames_headers_and_metadata_is_safe(one_worker_server):
    """The filename comes from the seed and the fingerprint only; headers from the registry; the
    safetensors header is ASCII JSON; npz entry names are the (checked) tensor names."""
    d = doc(layer(name="Fc-1.proj_out"), format="safetensors", seed=2 ** 63 - 1)
    r = _post(one_worker_server, "/v1/weights", dumps(d), {})
    assert r.status_code == 200
    disposition = r.headers["Content-Disposition"]
    assert disposition == f'attachment; filename="weightinit-seed{2 ** 63 - 1}-{r.headers["ETag"][1:17]}.safetensors"'
    for value in r.headers.values():
        assert value.isascii() and "\n" not in value and "\r" not in value
    (n,) = struct.unpack("<Q", r.content[:8])
    header = r.content[8:8 + n]
    assert header.isascii()
    assert set(json.loads(header)) == {"__metadata__", "Fc-1.proj_out.weight", "Fc-1.proj_out.bias"}
    r = _post(one_worker_server, "/v1/weights", dumps({**d, "format": "npz"}), {})
    import zipfile

    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        assert z.namelist() == ["manifest.npy", "Fc-1.proj_out.weight.npy", "Fc-1.proj_out.bias.npy"]


def test_request_ids_that_could_inject_into_logs_or_headers_are_replaced(one_worker_server):
    for rid in ["a b", "x" * 129, "caf\u00e9", "-leading-dash", "id\tTab"]:
        r = raw_request(one_worker_server.port,
                        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nX-Request-ID: "
                        + rid.encode("utf-8") + b"\r\n\r\n")
        head = r.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        assert head.startswith("HTTP/1.1 200"), head
        echoed = next(line.split(": ", 1)[1] for line in head.split("\r\n") if line.lower().startswith("x-request-id:"))
        assert echoed != rid and len(echoed) == 32 and echoed.isalnum(), echoed
    ok = "trace-1.2:3+4=5/6"
    assert requests.get(one_worker_server.url + "/healthz", headers={"X-Request-ID": ok},
                        timeout=TIMEOUT).headers["X-Request-ID"] == ok


def test_paths_outside_the_served_files_are_404(one_worker_server):
    for path in ["/docs/..%2f..%2fservice%2fconfig.py", "/docs/../openapi.yaml/..", "/explorer/..%2findex.html",
                 "/explorer/%2e%2e/%2e%2e/etc/passwd", "/static/explorer/index.html", "/service/config.py",
                 "/docs/__init__.py", "/explorer/explorer.js%00.css"]:
        r = raw_request(one_worker_server.port,
                        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        status = int(r.split(b" ", 2)[1])
        assert status in (400, 404), (path, r[:200])
        assert b"import " not in r and b"root:" not in r


def test_unsupported_methods_answer_405_with_allow(one_worker_server):
    for method, path, allowed in [("DELETE", "/v1/weights", "OPTIONS, POST"), ("PUT", "/v1/plan", "OPTIONS, POST"),
                                  ("POST", "/healthz", "GET, HEAD, OPTIONS")]:
        r = requests.request(method, one_worker_server.url + path, timeout=TIMEOUT)
        p = assert_problem(r, 405, "method-not-allowed")
        assert r.headers["Allow"] == allowed and p["allowed_methods"] == allowed.split(", ")


def test_zz_after_the_whole_suite_the_same_worker_answers_correctly(one_worker_server, worker):
    """Runs last in this module (pytest keeps file order): the worker that took every bad request
    above is still the one serving (no crash, no restart), and its bytes equal the engine's."""
    assert single_worker(one_worker_server) == worker
    d = {"architecture": {"layers": [{"type": "dense", "name": "fc1", "in_features": 64, "out_features": 32,
                                      "activation": "relu"}, {"type": "conv2d", "name": "c", "in_channels": 4,
                                                              "out_channels": 8, "kernel_size": [3, 3]}]},
         "scheme": "he_normal", "seed": 1234, "dtype": "float16"}
    plan = plan_of(d)
    for fmt in ("json", "npz", "safetensors"):
        r = _post(one_worker_server, "/v1/weights", dumps({**d, "format": fmt}), {})
        assert r.status_code == 200
        expected = b"".join(bytes(c) for c in encode(plan, fmt).chunks())
        assert r.content == expected, fmt
    r = _post(one_worker_server, "/v1/weights", dumps({**d, "tensors": ["fc1.weight"], "format": "npy"}), {})
    np.testing.assert_array_equal(np.load(io.BytesIO(r.content), allow_pickle=False), plan.selected[0].generate())
    assert hashlib.sha256(r.content).digest() == hashlib.sha256(
        b"".join(bytes(c) for c in encode(plan_of({**d, "tensors": ["fc1.weight"]}), "npy").chunks())).digest()
    err = one_worker_server.error_log()
    assert "Traceback" not in err, err[-3000:]
    assert "Worker exiting" not in err and err.count("Booting worker") == 1

