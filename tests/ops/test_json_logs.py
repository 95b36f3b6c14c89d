"""WEIGHTINIT_LOG_FORMAT=json: every line gunicorn writes to either log is one JSON object with the
same members (service/api/logs.py), against a real gunicorn answering every kind of request: 200,
206, 304, 404, 413, 422, a streamed download, a client hanging up mid-stream, and a 500 whose
traceback must stay inside its one line. Debug level, so that gunicorn's own chatter is checked too.
"""

from __future__ import annotations

import json
import socket
import time
from datetime import datetime

import pytest
import requests

from service.api.logs import FIELDS
from tests.conftest import start_server, stop_server

TIMEOUT = 60
DENSE = {"architecture": {"layers": [{"type": "dense", "name": "fc", "in_features": 30, "out_features": 20}]},
         "scheme": "he_normal", "seed": 77}
#: 4M float32 values (16 MiB), streamed (over digest_max_bytes)
LARGE = {"architecture": {"layers": [{"type": "tensor", "name": "w", "shape": [2048, 2048]}]}, "seed": 78,
         "format": "safetensors"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("json-logs"), app="tests.hardening.faulty_app:create()",
                     env={"WEIGHTINIT_LOG_FORMAT": "json", "WEIGHTINIT_LOG_LEVEL": "debug", "WEIGHTINIT_WORKERS": "2",
                          "WEIGHTINIT_MAX_JSON_ELEMENTS": "1000", "WEIGHTINIT_DIGEST_MAX_BYTES": "65536"})
    try:
        yield s
    finally:
        stop_server(s)


def lines(text: str) -> list[dict]:
    """Every line of a log as a JSON object (the assertion names the first that is not)."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        try:
            obj = json.loads(line)
        except ValueError:
            raise AssertionError(f"line {n} is not JSON: {line[:300]!r}") from None
        assert isinstance(obj, dict), line
        out.append(obj)
    return out


def hang_up_mid_stream(server, rid: str) -> int:
    """POST for a 16 MiB stream, read its headers and 256 KiB of it, close: returns its Content-Length."""
    body = json.dumps(LARGE).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as s:
        s.sendall(b"POST /v1/weights HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"X-Request-ID: " + rid.encode() + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        got = b""
        while b"\r\n\r\n" not in got or len(got) < 256 << 10:
            chunk = s.recv(65536)
            assert chunk, got[:200]
            got += chunk
        head = got.split(b"\r\n\r\n", 1)[0].decode()
        assert head.startswith("HTTP/1.1 200"), head
        length = int(next(h.split(":", 1)[1] for h in head.split("\r\n") if h.lower().startswith("content-length:")))
    return length


def test_every_line_of_both_logs_is_a_json_object_with_the_fields(server):
    url = server.url
    sent = {}  # request id -> (method, path, status, body bytes or None, seed, fingerprint)

    def call(rid, method, path, status, *, seed=None, fingerprint=None, **kw):
        r = requests.request(method, url + path, headers={"X-Request-ID": rid, **kw.pop("headers", {})},
                             timeout=TIMEOUT, **kw)
        assert r.status_code == status, (rid, r.status_code, r.text[:300])
        sent[rid] = (method, path, status, len(r.content), seed, fingerprint)
        return r

    first = call("log-200", "POST", "/v1/weights", 200, json=DENSE, seed=77)
    etag = first.headers["ETag"]
    fingerprint = etag.strip('"').split("-")[0]
    sent["log-200"] = sent["log-200"][:5] + (fingerprint,)
    call("log-plan", "POST", "/v1/plan", 200, json=DENSE, seed=77,
         fingerprint=requests.post(url + "/v1/plan", json=DENSE, timeout=TIMEOUT).headers["ETag"].strip('"').split("-")[0])
    call("log-304", "POST", "/v1/weights", 304, json=DENSE, headers={"If-None-Match": etag}, seed=77,
         fingerprint=fingerprint)
    npy = {**DENSE, "tensors": ["fc.weight"], "format": "npy"}
    npy_etag = requests.post(url + "/v1/weights", json=npy, timeout=TIMEOUT).headers["ETag"]
    call("log-206", "POST", "/v1/weights", 206, json=npy, headers={"Range": "bytes=-1024"}, seed=77,
         fingerprint=npy_etag.strip('"').split("-")[0])
    # Output options are named in the ETag after the format ("-safetensors.minimal"): still its fingerprint
    minimal = {**DENSE, "format": "safetensors", "metadata": "minimal"}
    r = call("log-options", "POST", "/v1/weights", 200, json=minimal, seed=77)
    assert r.headers["ETag"].endswith('-safetensors.minimal"'), r.headers["ETag"]
    sent["log-options"] = sent["log-options"][:5] + (r.headers["ETag"].strip('"').split("-")[0],)
    call("log-413", "POST", "/v1/weights", 413, json={**DENSE, "architecture": {"layers": [
        {"type": "dense", "name": "fc", "in_features": 100, "out_features": 20}]}})
    call("log-422", "POST", "/v1/weights", 422, json={**DENSE, "seed": -1})
    call("log-404", "GET", "/v1/schemes/no_such_scheme", 404)
    call("log-404-path", "GET", "/no/such/path", 404)
    large = call("log-stream", "POST", "/v1/weights", 200, json=LARGE, seed=78)
    assert "Repr-Digest" not in large.headers and len(large.content) > 16 << 20
    sent["log-stream"] = sent["log-stream"][:5] + (large.headers["ETag"].strip('"').split("-")[0],)
    call("log-500", "GET", "/__test__/boom", 500)
    length = hang_up_mid_stream(server, "log-hangup")

    # The access lines are written as each response ends; the hang-up's when the server notices it
    deadline = time.monotonic() + TIMEOUT
    while '"log-hangup"' not in server.access_log() and time.monotonic() < deadline:
        time.sleep(0.1)
    access, errors = lines(server.access_log()), lines(server.error_log())

    for log, kind in ((access, "access"), (errors, "error")):
        assert log, kind
        for obj in log:
            assert set(FIELDS) <= set(obj), obj
            assert obj["log"] == kind and obj["level"] in ("debug", "info", "warning", "error", "critical"), obj
            assert datetime.fromisoformat(obj["time"].replace("Z", "+00:00")).tzinfo is not None
    by_rid = {obj["request_id"]: obj for obj in access}
    for rid, (method, path, status, nbytes, seed, fp) in sent.items():
        obj = by_rid[rid]
        assert (obj["method"], obj["path"], obj["status"], obj["bytes"], obj["seed"], obj["fingerprint"]) == \
            (method, path, status, nbytes, seed, fp), (rid, obj)
        assert isinstance(obj["duration"], float) and obj["duration"] >= 0 and obj["message"] is None
        assert obj["remote"] == "127.0.0.1" and obj["user_agent"].startswith("python-requests/")
    cut = by_rid["log-hangup"]
    assert cut["status"] == 200 and 256 << 10 <= cut["bytes"] < length and cut["seed"] == 78, cut
    # The 500's traceback is one line of the error log, under its request id
    boom = [obj for obj in errors if obj["request_id"] == "log-500"]
    assert len(boom) == 1 and boom[0]["level"] == "error" and boom[0]["status"] == 500, boom
    assert boom[0]["path"] == "/__test__/boom" and "Traceback" in boom[0]["exception"]
    assert any(obj["logger"] == "gunicorn.error" and obj["level"] == "debug" for obj in errors)
