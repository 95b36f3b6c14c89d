"""Against a real gunicorn process (``server`` fixture, tests/conftest.py) with ``requests``:
every format decoded and compared with the engine's arrays, bytes equal to the CLI's, the
304 path, a 413, slow clients not pinning the workers, the access log, OpenAPI conformance,
and a 100M-element stream read in chunks while the worker's memory stays bounded."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import requests

from tests.helpers import plan_of
from service.core.dtypes import bfloat16_bits_to_float32, float32_to_bfloat16_bits
from tests.helpers import artifact_of as encode

from .conftest import ROOT
from .helpers import MIXED, MLP

TIMEOUT = 120


def post(server, doc, path="/v1/weights", **kw) -> requests.Response:
    return requests.post(server.url + path, json=doc, timeout=TIMEOUT, **kw)


def expected_arrays(doc: dict) -> dict[str, np.ndarray]:
    plan = plan_of({k: v for k, v in doc.items() if k != "format"})
    return {t.name: t.generate() for t in plan.selected}


def read_safetensors_raw(data: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    """A minimal safetensors reader (NumPy has no bfloat16, so the package cannot load BF16):
    header JSON, then each tensor's bytes as the storage dtype (BF16 -> uint16 bit patterns)."""
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    codes = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "BF16": "<u2"}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        out[name] = np.frombuffer(data[base + begin:base + end], dtype=codes[info["dtype"]]).reshape(info["shape"])
    return header, out


def assert_json_values_equal(values, expected: np.ndarray, dtype: str):
    if dtype == "bfloat16":
        got = float32_to_bfloat16_bits(np.array(values, dtype=np.float32))
    else:
        got = np.array(values, dtype=np.float64).astype(expected.dtype)
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


# ---------------------------------------------------------------- formats decoded
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
def test_every_format_decodes_to_the_engine_arrays(server, dtype):
    doc = {**MIXED, "dtype": dtype}
    expected = expected_arrays(doc)

    r = post(server, doc)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    body = r.json()
    assert [t["name"] for t in body["tensors"]] == list(expected)
    for t in body["tensors"]:
        assert_json_values_equal(t["values"], expected[t["name"]], dtype)
        assert t["sha256"] == hashlib.sha256(expected[t["name"]].tobytes()).hexdigest()

    r = post(server, {**doc, "format": "npz"})
    assert r.headers["Content-Type"] == "application/zip"
    with np.load(io.BytesIO(r.content), allow_pickle=False) as npz:
        assert set(npz.files) == set(expected) | {"manifest"}
        for name, arr in expected.items():
            np.testing.assert_array_equal(npz[name], arr)
            assert npz[name].dtype == arr.dtype
        assert json.loads(str(npz["manifest"]))["dtype"] == dtype

    r = post(server, doc, headers={"Accept": "application/vnd.safetensors"})
    assert r.headers["Content-Type"] == "application/vnd.safetensors"
    header, raw = read_safetensors_raw(r.content)
    meta = json.loads(header["__metadata__"]["weightinit"])
    assert meta["seed"] == 1234 and meta["engine"]["numpy"] == np.__version__ and meta["dtype"] == dtype
    if dtype == "bfloat16":
        assert {info["dtype"] for k, info in header.items() if k != "__metadata__"} == {"BF16"}
        for name, arr in expected.items():
            np.testing.assert_array_equal(raw[name], arr)  # the same bit patterns
            np.testing.assert_array_equal(bfloat16_bits_to_float32(raw[name]), bfloat16_bits_to_float32(arr))
    else:
        from safetensors.numpy import load

        loaded = load(r.content)  # the safetensors package itself reads it
        for name, arr in expected.items():
            np.testing.assert_array_equal(loaded[name], arr)
            assert loaded[name].dtype == arr.dtype

    name = "conv.weight"
    r = post(server, {**doc, "tensors": [name]}, headers={"Accept": "application/x-npy"})
    assert r.headers["Content-Type"] == "application/x-npy"
    arr = np.load(io.BytesIO(r.content), allow_pickle=False)
    np.testing.assert_array_equal(arr, expected[name])
    assert r.headers["X-Weightinit-Seed"] == "1234" and r.headers["X-Weightinit-Scheme"] == "auto"


# ---------------------------------------------------------------- bytes equal the CLI's
@pytest.mark.parametrize("fmt", ["json", "npy", "npz", "safetensors"])
def test_bytes_equal_what_the_cli_writes(server, fmt, tmp_path):
    doc = {**MLP, **({"tensors": ["1.weight"]} if fmt == "npy" else {}), "dtype": "float16"}
    (tmp_path / "req.json").write_text(json.dumps(doc))
    out = tmp_path / f"out.{fmt}"
    subprocess.run([sys.executable, "-m", "service", "generate", str(tmp_path / "req.json"), "-o", str(out)],
                   cwd=ROOT, check=True, capture_output=True, timeout=TIMEOUT)
    r = post(server, {**doc, "format": fmt})
    assert r.status_code == 200
    assert int(r.headers["Content-Length"]) == len(r.content)
    assert r.content == out.read_bytes()


# ---------------------------------------------------------------- caching, limits
def test_304_over_http(server):
    doc = {**MLP, "format": "npz"}
    first = post(server, doc)
    etag = first.headers["ETag"]
    t0 = time.monotonic()
    again = post(server, doc, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["ETag"] == etag and "immutable" in again.headers["Cache-Control"]
    assert time.monotonic() - t0 < 5
    assert post(server, {**doc, "seed": 43}, headers={"If-None-Match": etag}).status_code == 200


def test_413_over_http_is_immediate(server):
    doc = {"architecture": {"layers": [{"type": "tensor", "shape": [1 << 20, (1 << 17) + 1]}]}, "format": "safetensors"}
    r = post(server, doc)
    assert r.status_code == 413 and r.headers["Content-Type"] == "application/problem+json"
    p = r.json()
    assert (p["limit"], p["requested"], p["allowed"]) == ("max_binary_elements", 2 ** 37 + 2 ** 20, 2 ** 37)
    big = b'{"architecture": {"layers": []}, "pad": "' + b"x" * (2 << 20) + b'"}'
    r = requests.post(server.url + "/v1/weights", data=big, headers={"Content-Type": "application/json"}, timeout=TIMEOUT)
    assert r.status_code == 413 and r.json()["limit"] == "max_body_bytes"


def test_request_id_reaches_the_access_log(server):
    rid = f"trace-{time.time_ns()}"
    r = requests.get(server.url + "/healthz", headers={"X-Request-ID": rid}, timeout=TIMEOUT)
    assert r.headers["X-Request-ID"] == rid
    deadline = time.monotonic() + 10
    while rid not in server.access_log() and time.monotonic() < deadline:
        time.sleep(0.05)
    line = next(line for line in server.access_log().splitlines() if rid in line)
    assert '"GET /healthz HTTP/1.1" 200' in line and f"rid={rid}" in line


def test_http_responses_validate_against_openapi(server, openapi):
    from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

    exchanges = [
        requests.Request("GET", server.url + "/healthz"),
        requests.Request("GET", server.url + "/v1/schemes"),
        requests.Request("GET", server.url + "/v1/schemes/glorot_normal"),
        requests.Request("POST", server.url + "/v1/plan", json=MIXED),
        requests.Request("POST", server.url + "/v1/weights", json=MIXED),
        requests.Request("POST", server.url + "/v1/weights", json={**MLP, "format": "npz"}),
        requests.Request("POST", server.url + "/v1/weights", json={**MLP, "seed": -1}),
        requests.Request("POST", server.url + "/v1/weights", json=MLP, headers={"Accept": "text/html"}),
        requests.Request("POST", server.url + "/v1/weights", data=b"{", headers={"Content-Type": "application/json"}),
    ]
    with requests.Session() as s:
        for req in exchanges:
            prepared = s.prepare_request(req)
            r = s.send(prepared, timeout=TIMEOUT)
            openapi.validate_response(RequestsOpenAPIRequest(prepared), RequestsOpenAPIResponse(r))


# ---------------------------------------------------------------- streaming
def worker_rss_kib(pid: int, field: str = "VmRSS") -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def test_slow_clients_do_not_pin_the_workers(server):
    """Streams nobody reads (one per worker) leave the service answering (gthread)."""
    doc = {"architecture": {"layers": [{"type": "tensor", "shape": [8192, 8192]}]}, "format": "npy"}  # 256 MiB
    stalled = []
    try:
        for seed in range(len(server.worker_pids()) + 1):
            r = requests.post(server.url + "/v1/weights", json={**doc, "seed": seed}, stream=True, timeout=TIMEOUT)
            assert r.status_code == 200
            next(r.iter_content(1 << 16))  # read a little, then stall
            stalled.append(r)
        t0 = time.monotonic()
        assert requests.get(server.url + "/healthz", timeout=10).status_code == 200
        assert post(server, MLP, path="/v1/plan").status_code == 200
        assert time.monotonic() - t0 < 5
    finally:
        for r in stalled:
            r.close()


@pytest.mark.slow
def test_100m_element_stream_in_bounded_worker_memory(server):
    n = 100_000_000
    doc = {"architecture": {"layers": [{"type": "tensor", "name": "big", "shape": [10_000, 10_000]}]},
           "scheme": "he_normal", "seed": 7, "format": "safetensors"}
    plan = plan_of({k: v for k, v in doc.items() if k != "format"})
    assert plan.total_elements == n
    artifact = encode(plan, "safetensors")

    pids = server.worker_pids()
    assert pids, "no gunicorn workers found"
    for pid in pids:  # reset the peak-RSS counters (VmHWM) so the peak below is this request's
        try:
            with open(f"/proc/{pid}/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass
    baseline = {pid: worker_rss_kib(pid) for pid in pids}
    peak = dict(baseline)
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            for pid in pids:
                try:
                    peak[pid] = max(peak[pid], worker_rss_kib(pid))
                except (OSError, AssertionError):
                    pass
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    digest = hashlib.sha256()
    received = chunks = 0
    t0 = time.monotonic()
    try:
        with requests.post(server.url + "/v1/weights", json=doc, stream=True, timeout=TIMEOUT) as r:
            assert r.status_code == 200
            assert int(r.headers["Content-Length"]) == artifact.length > 4 * n
            for chunk in r.iter_content(chunk_size=1 << 20):
                digest.update(chunk)
                received += len(chunk)
                chunks += 1
    finally:
        stop.set()
        sampler.join()
    elapsed = time.monotonic() - t0
    for pid in pids:
        try:
            peak[pid] = max(peak[pid], worker_rss_kib(pid, "VmHWM"))
        except OSError:
            pass
    growth_mib = max(peak[pid] - baseline[pid] for pid in pids) / 1024
    print(f"\n100M float32 safetensors: {received} bytes in {chunks} chunks, {elapsed:.2f}s "
          f"({received / elapsed / 1e6:.0f} MB/s); worker RSS baseline "
          f"{ {p: round(b / 1024) for p, b in baseline.items()} } MiB, peak growth {growth_mib:.1f} MiB")
    assert received == artifact.length
    expected = hashlib.sha256()
    for chunk in artifact.chunks():
        expected.update(chunk)
    assert digest.hexdigest() == expected.hexdigest()
    assert growth_mib < 200, f"worker RSS grew by {growth_mib:.0f} MiB while streaming"


def test_large_json_is_streamed_in_pieces_and_equals_one_orjson_call(server):
    # 600 x 500 float32 (300,000 values): printed by the compiled printer on the engine's threads,
    # written to the socket piece by piece; the bytes, length and digest are those of one orjson call.
    import base64

    import orjson

    from service.output.jsonenc import _OPTS
    from tests.helpers import with_values

    doc = {"architecture": {"layers": [{"type": "tensor", "name": "w", "shape": [600, 500]}]},
           "scheme": "he_normal", "seed": 77, "format": "json"}
    r = post(server, doc)
    assert r.status_code == 200
    want = orjson.dumps(with_values(plan_of({k: v for k, v in doc.items() if k != "format"})),
                        option=_OPTS)
    assert r.content == want
    assert int(r.headers["Content-Length"]) == len(want)
    assert r.headers["Repr-Digest"] == f"sha-256=:{base64.b64encode(hashlib.sha256(want).digest()).decode()}:"
