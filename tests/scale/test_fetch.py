"""``weightinit fetch``: sharded downloads assemble exactly what ``weightinit generate`` writes, and
any inconsistency fails loudly (exit 1, one line on stderr, no file left behind).

Failures are provoked by a small proxy in front of the real server that alters its answers:
parts carrying another ETag (a replica on another engine version), a part cut short (a replica
dying mid-part), a 200 instead of a 206 (a replica ignoring the Range).
"""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT

TIMEOUT = 120
MODEL = {
    "architecture": {"layers": [
        {"type": "conv2d", "name": "c1", "in_channels": 3, "out_channels": 64, "kernel_size": 3},
        {"type": "embedding", "name": "emb", "num_embeddings": 3000, "embedding_dim": 300},
        {"type": "attention", "name": "attn", "embed_dim": 300, "num_heads": 6},
        {"type": "dense", "name": "head", "in_features": 300, "out_features": 3000, "scheme": "orthogonal"},
    ]},
    "scheme": "auto", "seed": 31, "dtype": "float16",
}
ONE = {"architecture": {"layers": [{"type": "tensor", "name": "w", "shape": [1500, 1100]}]}, "scheme": "he_uniform",
       "seed": 8, "dtype": "float64"}


def cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "service", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=TIMEOUT)


def generated(tmp_path: Path, doc: dict, name: str) -> bytes:
    req = tmp_path / f"{name}.request.json"
    req.write_text(json.dumps(doc))
    r = cli("generate", req, "-o", tmp_path / name)
    assert r.returncode == 0, r.stderr
    return (tmp_path / name).read_bytes()


def fetched(url: str, tmp_path: Path, doc: dict, name: str, *extra):
    req = tmp_path / f"{name}.fetch.json"
    req.write_text(json.dumps(doc))
    out = tmp_path / name
    return cli("fetch", url, req, "-o", out, *extra), out


@pytest.mark.parametrize("doc, name, extra", [
    (MODEL, "model.safetensors", ["--parallel", "4", "--part-size", "300001"]),
    (ONE, "one.npy", ["--parallel", "3", "--part-size", "1048576"]),
    (MODEL, "auto.safetensors", ["--parallel", "2"]),
    (MODEL, "model.npz", ["--parallel", "4"]),                 # no ranges: one request
    ({**MODEL, "tensors": ["attn.*"]}, "small.json", []),
])
def test_fetch_is_byte_identical_to_generate(server, tmp_path, doc, name, extra):
    expected = generated(tmp_path, doc, "expected-" + name)
    r, out = fetched(server.url, tmp_path, doc, name, *extra)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == expected
    assert not Path(f"{out}.partial").exists()
    assert f"{len(expected)} bytes" in r.stderr


def test_small_artifacts_are_checked_against_repr_digest(server, tmp_path):
    doc = {**MODEL, "tensors": ["c1.*", "attn.*"]}           # well under WEIGHTINIT_DIGEST_MAX_BYTES
    r, out = fetched(server.url, tmp_path, doc, "small.safetensors", "--parallel", "3", "--part-size", "65536")
    assert r.returncode == 0, r.stderr
    assert "Repr-Digest sha-256" in r.stderr and "safetensors header" in r.stderr
    assert out.read_bytes() == generated(tmp_path, doc, "small-expected.safetensors")


def test_several_replica_urls(server, tmp_path):
    urls = f"{server.url},{server.url.replace('127.0.0.1', 'localhost')}"
    r, out = fetched(urls, tmp_path, ONE, "two.npy", "--parallel", "2", "--part-size", "500000")
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == generated(tmp_path, ONE, "two-expected.npy")


# ------------------------------------------------------------------------------ failures
class Tamper(http.server.ThreadingHTTPServer):
    """A proxy to the real server that alters /v1/weights answers according to ``mode``."""

    daemon_threads = True

    def __init__(self, backend: str, mode: str):
        self.backend, self.mode, self.count = backend, mode, 0
        super().__init__(("127.0.0.1", 0), _Handler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        srv: Tamper = self.server
        body = self.rfile.read(int(self.headers["Content-Length"]))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "connection")}
        weights = self.path.endswith("/v1/weights")
        with srv_lock:
            srv.count += weights
            nth = srv.count
        if weights and srv.mode == "full":
            headers.pop("Range", None)
        r = requests.post(srv.backend + self.path, data=body, headers=headers, timeout=60)
        payload = r.content
        out = {k: v for k, v in r.headers.items() if k.lower() not in ("connection", "transfer-encoding", "keep-alive")}
        cut = None
        if weights and nth == 2:  # the second part goes wrong
            if srv.mode == "etag":
                out["ETag"] = '"' + "0" * 64 + out["ETag"][65:]
            elif srv.mode == "short":
                cut = len(payload) // 2
        self.send_response(r.status_code)
        for k, v in out.items():
            self.send_header(k, v)
        if cut is not None:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload if cut is None else payload[:cut])
        if cut is not None:
            self.close_connection = True


srv_lock = threading.Lock()


@pytest.mark.parametrize("mode, message", [
    ("etag", "replicas differ"),
    ("short", "short read"),
    ("full", "not 206 Partial Content"),
])
def test_inconsistent_or_short_parts_fail_loudly(server, tmp_path, mode, message):
    proxy = Tamper(server.url, mode)
    try:
        r, out = fetched(proxy.url, tmp_path, MODEL, "bad.safetensors", "--parallel", "1", "--part-size", "400000")
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert r.returncode == 1, r.stderr
    assert message in r.stderr and r.stderr.startswith("weightinit: fetch failed:")
    assert not out.exists() and not Path(f"{out}.partial").exists()


def test_a_short_part_is_retried_when_asked(server, tmp_path):
    proxy = Tamper(server.url, "short")
    try:
        r, out = fetched(proxy.url, tmp_path, MODEL, "retried.safetensors", "--parallel", "1", "--part-size", "400000",
                         "--retries", "1")
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert r.returncode == 0, r.stderr
    assert "retrying (1/1)" in r.stderr
    assert out.read_bytes() == generated(tmp_path, MODEL, "retried-expected.safetensors")


def test_usage_errors(server, tmp_path):
    req = tmp_path / "r.json"
    req.write_text(json.dumps(MODEL))
    assert cli("fetch", server.url, req, "-o", tmp_path / "x.safetensors", "--parallel", "0").returncode == 2
    assert cli("fetch", "ftp://nowhere", req, "-o", tmp_path / "x.safetensors").returncode == 2
    r = cli("fetch", server.url, req, "-o", tmp_path / "x.npy")   # npy holds one tensor: the plan says so
    assert r.returncode == 1 and "npy holds exactly one tensor" in r.stderr
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**MODEL, "seed": -4}))
    r = cli("fetch", server.url, bad, "-o", tmp_path / "x.safetensors")
    assert r.returncode == 1 and "422" in r.stderr and "seed" in r.stderr


def test_progress_bar_draws_on_stderr(capsys):
    from service.fetch import MIB, Progress, split

    bar = Progress(4 * MIB, enabled=True)
    bar.add(MIB)
    bar._last = 0.0  # redraw now, not 0.1 s later
    bar.add(3 * MIB)
    bar.add(-MIB)    # a failed part's bytes are taken back before its retry
    bar._last = 0.0
    bar.add(MIB)
    bar.finish()
    err = capsys.readouterr().err
    assert "[" + "#" * 30 + "] 100.0%" in err and "4.0 MiB" in err and err.endswith("\n")
    quiet = Progress(10, enabled=False)
    quiet.add(10)
    quiet.finish()
    assert capsys.readouterr().err == ""
    # parts tile the artifact exactly
    for length, parallel, size in [(1, 4, None), (10 * MIB + 3, 3, None), (100, 2, 7), (5 * MIB, 1, MIB)]:
        parts = split(length, parallel, size)
        assert parts[0][0] == 0 and parts[-1][1] == length
        assert all(a < b and b == c for (a, b), (c, _) in zip(parts, parts[1:] + [(length, None)]))
