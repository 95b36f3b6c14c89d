"""``weightinit fetch``: sharded downloads assemble exactly what ``weightinit generate`` writes, and
any inconsistency fails loudly (exit 1, one line on stderr, no file left behind).

Failures are provoked by a small proxy in front of the real server that alters its answers:
parts carrying another ETag (a replica on another engine version), a part cut short (a replica
dying mid-part), a 200 instead of a 206 (a replica ignoring the Range), one bit flipped in the
middle of a large artifact; by a second replica on "another machine" whose LAPACK rounds QR
differently; by a fake service answering malformed responses; by a full disk, a failing worker,
a planted symlink and Ctrl-C.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import http.server
import json
import os
import signal
import struct
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT, start_server, stop_server
from tests.helpers import engine_sha256

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


def fetched(url: str, tmp_path: Path, doc: dict, name: str, *extra, into: Path | None = None):
    req = tmp_path / f"{name}.fetch.json"
    req.write_text(json.dumps(doc))
    out = (into or tmp_path) / name
    return cli("fetch", url, req, "-o", out, *extra), out


def partials(directory: Path) -> list[str]:
    """Partial downloads left in ``directory`` (whatever their name: fetch hides its own)."""
    return sorted(p.name for p in directory.iterdir() if "partial" in p.name)


def failed_with(r, *fragments: str) -> None:
    """Exit status 1 and exactly one line on stderr, ``weightinit: fetch failed: ...`` naming the cause."""
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert lines[0].startswith("weightinit: fetch failed:") and all(f in lines[0] for f in fragments), lines[0]


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
    assert partials(tmp_path) == []
    assert f"{len(expected)} bytes" in r.stderr
    assert " 1 parts" not in r.stderr and (" in 1 part" in r.stderr or not name.endswith((".npz", ".json")))


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
    """A proxy to the real server that alters /v1/weights answers according to ``mode``: ``etag``,
    ``short`` (the second answer), ``full`` (drops Range), ``flip`` (one bit of the artifact's middle
    byte, in whichever answer carries it) and ``flip-once`` (only the first time)."""

    daemon_threads = True

    def __init__(self, backend: str, mode: str):
        self.backend, self.mode, self.count, self.flipped = backend, mode, 0, 0
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
        if weights and srv.mode.startswith("flip") and r.status_code in (200, 206):
            payload = _flip_middle(srv, payload, out.get("Content-Range"))
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


def through(server, mode: str, tmp_path: Path, doc: dict, name: str, *extra):
    """``fetched`` through a Tamper proxy in ``mode``: (result, output path, the proxy)."""
    proxy = Tamper(server.url, mode)
    try:
        r, out = fetched(proxy.url, tmp_path, doc, name, *extra)
    finally:
        proxy.shutdown()
        proxy.server_close()
    return r, out, proxy


def _flip_middle(srv: Tamper, payload: bytes, content_range: str | None) -> bytes:
    """Flip one bit of the artifact's middle byte when this body (whole, or the part of
    ``content_range``) holds it; headers, digests included, pass unchanged."""
    first, total = 0, len(payload)
    if content_range:
        first, total = int(content_range.split()[1].split("-")[0]), int(content_range.rsplit("/", 1)[1])
    at = total // 2 - first
    with srv_lock:
        if not 0 <= at < len(payload) or (srv.mode == "flip-once" and srv.flipped):
            return payload
        srv.flipped += 1
    return payload[:at] + bytes([payload[at] ^ 0x10]) + payload[at + 1:]


@pytest.mark.parametrize("mode, message", [
    ("etag", "replicas differ"),
    ("short", "short read"),
    ("full", "not 206 Partial Content"),
])
def test_inconsistent_or_short_parts_fail_loudly(server, tmp_path, mode, message):
    r, out, _ = through(server, mode, tmp_path, MODEL, "bad.safetensors", "--parallel", "1", "--part-size", "400000")
    failed_with(r, message)
    assert not out.exists() and partials(tmp_path) == []


def test_a_short_part_is_retried_when_asked(server, tmp_path):
    r, out, _ = through(server, "short", tmp_path, MODEL, "retried.safetensors", "--parallel", "1", "--part-size",
                        "400000", "--retries", "1")
    assert r.returncode == 0, r.stderr
    assert "retrying (1/1)" in r.stderr
    assert out.read_bytes() == generated(tmp_path, MODEL, "retried-expected.safetensors")


def test_usage_errors(server, tmp_path):
    req = tmp_path / "r.json"
    req.write_text(json.dumps(MODEL))
    assert cli("fetch", server.url, req, "-o", tmp_path / "x.safetensors", "--parallel", "0").returncode == 2
    assert cli("fetch", "ftp://nowhere", req, "-o", tmp_path / "x.safetensors").returncode == 2


#: Documents generate refuses (status 2, one line naming the field): fetch refuses them alike, before any request.
BAD_DOCUMENTS = [
    ("seed", {**MODEL, "seed": -4}, "x.safetensors", "seed"),
    ("unknown-scheme", {**MODEL, "scheme": "nope"}, "x.safetensors", "unknown scheme"),
    ("npy-of-many", MODEL, "x.npy", "npy holds exactly one tensor"),
    ("not-an-object", [1], "x.safetensors", "JSON object"),
    ("hf-without-config", MODEL, "x.tar", "needs architecture.hf_config"),
]


@pytest.mark.parametrize("doc, name, needle", [c[1:] for c in BAD_DOCUMENTS], ids=[c[0] for c in BAD_DOCUMENTS])
def test_a_bad_document_exits_2_in_fetch_as_in_generate(tmp_path, doc, name, needle):
    """The same line and status 2 from both commands; fetch asks nothing of the (absent) service."""
    req = tmp_path / "bad.json"
    req.write_text(json.dumps(doc))
    gen = cli("generate", req, "-o", tmp_path / name)
    got = cli("fetch", "http://127.0.0.1:9", req, "-o", tmp_path / name)
    assert (gen.returncode, got.returncode) == (2, 2), gen.stderr + got.stderr
    assert got.stderr == gen.stderr and needle in got.stderr and got.stderr.count("\n") == 1, got.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json"]


@pytest.mark.parametrize("status", [400, 413, 422])
def test_the_services_refusal_of_the_document_exits_2(tmp_path, status):
    """A document valid here but refused by the service (its limits, another version): status 2, its problem."""
    problem = b'{"status": %d, "detail": "seed: too large"}' % status
    fake = Fake(GOOD_ST, "safetensors", plan_status=status, plan=problem)
    try:
        r, out = fetched(fake.url, tmp_path, ONE, "x.safetensors", "--timeout", "20")
    finally:
        fake.close()
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert lines[0].startswith("weightinit: error: the service refused the request document: ")
    assert f"answered {status} " in lines[0] and lines[0].endswith(": seed: too large")
    assert not out.exists() and partials(tmp_path) == []


@pytest.mark.parametrize("name, extra, ignored", [
    ("model.npz", ["--parallel", "4"], True),
    ("model.json", ["--parallel", "2"], True),
    ("model.npz", [], False),                              # not asked for: nothing to say
    ("model.json", ["--parallel", "1"], False),
    ("model.safetensors", ["--parallel", "3"], False),     # honoured
])
def test_parallel_says_when_it_cannot_apply(server, tmp_path, name, extra, ignored):
    """The summary line (the only line) says when --parallel was asked for a format fetched in one request."""
    r, out = fetched(server.url, tmp_path, {**MODEL, "tensors": ["attn.*"]}, name, "--no-progress", *extra)
    assert r.returncode == 0, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wrote "), r.stderr
    fmt = name.split(".")[1]
    note = f" in 1 part (--parallel ignored: {fmt} comes in one request, each byte depending on all before it), "
    assert (note in lines[0]) == ignored, lines[0]


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
    for length, size in [(1, 8 * MIB), (10 * MIB + 3, 8 * MIB), (100, 7), (5 * MIB, MIB)]:
        parts = split(length, size)
        assert parts[0][0] == 0 and parts[-1][1] == length
        assert all(a < b and b == c for (a, b), (c, _) in zip(parts, parts[1:] + [(length, None)]))


# ------------------------------------------------------------------------------ corruption, any size
#: 4096 x 4096 float32: a 64 MiB safetensors artifact, eight times the default digest bound.
BIG = {"architecture": {"layers": [{"type": "tensor", "name": "w", "shape": [4096, 4096]}]}, "scheme": "he_uniform",
       "seed": 3}
#: 16 MiB of float32: an npz above the digest bound (no Repr-Digest), checked by its CRC-32s.
MID = {"architecture": {"layers": [{"type": "tensor", "name": "big", "shape": [4096, 1024]}]}, "scheme": "he_normal",
       "seed": 5}


@pytest.mark.parametrize("doc, name, found", [
    (BIG, "big.safetensors", "differs from the part's Content-Digest"),
    (MID, "mid.npz", "CRC-32"),
])
def test_one_flipped_bit_in_a_large_artifact_fails_the_fetch(server, tmp_path, doc, name, found):
    r, out, proxy = through(server, "flip", tmp_path, doc, name, "--parallel", "4", "--no-progress")
    assert proxy.flipped == 1
    failed_with(r, found)
    assert not out.exists() and partials(tmp_path) == []


def test_a_part_flipped_once_is_fetched_again_with_retries(server, tmp_path):
    r, out, proxy = through(server, "flip-once", tmp_path, BIG, "again.safetensors", "--parallel", "4", "--retries",
                            "1", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert proxy.flipped == 1 and "retrying (1/1)" in r.stderr and "Content-Digest" in r.stderr
    assert hashlib.sha256(out.read_bytes()).hexdigest() == engine_sha256(BIG, "safetensors")


# ------------------------------------------------------------------------------ replicas that may differ
#: 1100 x 1100 float64 orthogonal: 9.7 MB, above the digest bound (so no Repr-Digest could tell two
#: matrices apart), its values out of LAPACK. Every part of it computes the whole QR: few parts.
ORTHO = {"architecture": {"layers": [{"type": "tensor", "name": "q", "shape": [1100, 1100],
                                      "scheme": "orthogonal"}]}, "seed": 4, "dtype": "float64"}


def other_machine_app():
    """gunicorn app factory: a replica on another machine type, whose LAPACK rounds the last bit
    of Q the other way (as another BLAS build or CPU kernel may)."""
    import platform

    import numpy as np

    from service import create_app

    real_qr = np.linalg.qr

    def qr(a, *args, **kwargs):
        q, r = real_qr(a, *args, **kwargs)
        return np.nextafter(q, np.inf), r

    np.linalg.qr = qr
    platform.machine = lambda: "other-machine"
    return create_app()


def test_replicas_whose_lapack_may_differ_are_never_stitched(server, tmp_path):
    (tmp_path / "other").mkdir()
    other = start_server(tmp_path / "other", env={"WEIGHTINIT_WORKERS": "1"},
                         app="tests.scale.test_fetch:other_machine_app()")
    try:
        both = f"{server.url},{other.url}"
        # an orthogonal matrix: the replicas' bytes differ, so must their ETags (If-Range then refuses)
        r, out = fetched(both, tmp_path, ORTHO, "q.safetensors", "--parallel", "2")  # two parts: one from each
        failed_with(r, "not 206 Partial Content", "LAPACK")
        assert not out.exists() and partials(tmp_path) == []
        plan_etags = [requests.post(u + "/v1/plan", json=ORTHO, timeout=TIMEOUT).headers["ETag"]
                      for u in (server.url, other.url)]
        assert plan_etags[0] != plan_etags[1]
        # each replica alone gives its own, consistent matrix
        mine, out = fetched(server.url, tmp_path, ORTHO, "mine.safetensors")
        theirs, out2 = fetched(other.url, tmp_path, ORTHO, "theirs.safetensors")
        assert mine.returncode == 0 and theirs.returncode == 0, mine.stderr + theirs.stderr
        assert out.read_bytes() == generated(tmp_path, ORTHO, "q-expected.safetensors") != out2.read_bytes()
        # anything else is the same on both machines: one ETag, parts from both fit
        r, out = fetched(both, tmp_path, ONE, "one.npy", "--parallel", "2", "--part-size", "1048576")
        assert r.returncode == 0, r.stderr
        assert out.read_bytes() == generated(tmp_path, ONE, "one-expected.npy")
    finally:
        stop_server(other)


# ------------------------------------------------------------------------------ the disk and the workers
def test_a_full_disk_fails_with_one_line_and_leaves_nothing(server, tmp_path):
    """A real full disk: a 4 MiB tmpfs (mounting needs root, which CI has) for artifacts of 13 MB."""
    assert os.geteuid() == 0, "this test mounts a tmpfs: run it as root (CI does)"
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], check=True, timeout=30)
    try:
        for name, extra in [("one.npy", ["--parallel", "2", "--part-size", "1048576"]), ("one.npz", [])]:
            r, out = fetched(server.url, tmp_path, ONE, name, *extra, into=disk)
            failed_with(r, "No space left on device")
            assert os.listdir(disk) == [], os.listdir(disk)
    finally:
        subprocess.run(["umount", str(disk)], check=True, timeout=30)


@pytest.mark.parametrize("target, message", [
    ("os.pwrite", "No space left on device"),           # the disk fills up while the parts arrive
    ("Progress.add", "RuntimeError in a fetch worker"),  # any other failure of a worker
])
def test_any_failure_in_any_worker_fails_the_fetch(server, tmp_path, monkeypatch, target, message):
    from service import fetch as fetch_module

    calls = []
    real = os.pwrite if target == "os.pwrite" else fetch_module.Progress.add

    def failing(*args):
        calls.append(1)
        if len(calls) == 5:  # mid-way: some parts are written, others not yet
            if target == "os.pwrite":
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            raise RuntimeError("unexpected")
        return real(*args)

    if target == "os.pwrite":
        monkeypatch.setattr(os, "pwrite", failing)
    else:
        monkeypatch.setattr(fetch_module.Progress, "add", failing)
    out = tmp_path / "w.npy"
    with pytest.raises(fetch_module.FetchError, match=message):
        fetch_module.fetch(server.url, ONE, str(out), "npy", parallel=3, part_size=1 << 20, progress=False)
    assert os.listdir(tmp_path) == []


def test_tiling_of_the_written_parts_is_checked():
    from service.fetch import FetchError, _check_tiling

    _check_tiling([(5, 9), (0, 5)], 9)
    for done, message in [([(0, 4)], "bytes 4-8 of 9 were never written"),
                          ([(0, 3), (4, 9)], "bytes 3-3 of 9 were never written"),
                          ([(0, 5), (3, 9)], "bytes 3-4 were written by two parts")]:
        with pytest.raises(FetchError, match=message):
            _check_tiling(done, 9)


# ------------------------------------------------------------------------------ the temporary file
@pytest.mark.parametrize("planted", ["symlink", "another run's file"])
def test_the_partial_file_never_follows_a_symlink_nor_overwrites_another_file(server, tmp_path, planted):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "w.npy"
    old_name = Path(f"{out}.partial")  # the predictable name of earlier versions
    if planted == "symlink":
        old_name.symlink_to(victim)
    else:
        old_name.write_bytes(b"another run's bytes")
    r, out = fetched(server.url, tmp_path, ONE, "w.npy", "--part-size", "1048576")
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == generated(tmp_path, ONE, "w-expected.npy") and not out.is_symlink()
    assert victim.read_text() == "precious"
    if planted == "symlink":
        assert old_name.is_symlink() and os.readlink(old_name) == str(victim)
    else:
        assert old_name.read_bytes() == b"another run's bytes"
    assert partials(tmp_path) == ["w.npy.partial"]  # only the planted one


def test_concurrent_runs_to_one_output_do_not_mix(server, tmp_path):
    req = tmp_path / "req.json"
    req.write_text(json.dumps(ONE))
    out = tmp_path / "w.npy"
    runs = [subprocess.Popen([sys.executable, "-m", "service", "fetch", server.url, str(req), "-o", str(out),
                              "--parallel", "2", "--part-size", "262144"], cwd=ROOT, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    errors = [p.communicate(timeout=TIMEOUT)[1] for p in runs]
    assert [p.returncode for p in runs] == [0, 0], errors
    assert out.read_bytes() == generated(tmp_path, ONE, "w-expected.npy")
    assert partials(tmp_path) == []


# ------------------------------------------------------------------------------ a fake service
TAG = "ab" * 32
BOUND = 8 << 20


def digest(data: bytes) -> str:
    return f"sha-256=:{base64.b64encode(hashlib.sha256(data).digest()).decode()}:"


def safetensors(header, data: bytes = b"") -> bytes:
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


GOOD_ST = safetensors({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, bytes(16))


class Fake(http.server.ThreadingHTTPServer):
    """A stand-in service on 127.0.0.1 for one artifact: ``/v1/plan`` gives its length and ETag,
    ``/v1/weights`` its ranges (206) or the whole (200), with every header a real server sends; a
    case replaces any of them (a value) or drops it (None). ``stall``: a 206 stops after 1000
    bytes and holds its connection until ``release`` is set (``stalled`` counts such parts)."""

    daemon_threads = True

    def __init__(self, artifact: bytes, fmt: str, plan: bytes | None = None, plan_status: int = 200,
                 plan_headers: dict | None = None, headers: dict | None = None, stall: bool = False):
        self.artifact, self.fmt, self.plan, self.plan_status = artifact, fmt, plan, plan_status
        self.plan_headers, self.headers, self.stall = plan_headers or {}, headers or {}, stall
        self.stalled = threading.Semaphore(0)
        self.release = threading.Event()
        super().__init__(("127.0.0.1", 0), _FakeHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def close(self) -> None:
        self.release.set()
        self.shutdown()
        self.server_close()


class _FakeHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _send(self, status: int, headers: dict, body: bytes, stall: bool = False):
        self.send_response(status)
        for k, v in headers.items():
            if v is not None:
                self.send_header(k, v)
        self.end_headers()
        if stall:
            self.wfile.write(body[:1000])
            self.wfile.flush()
            self.server.stalled.release()
            self.server.release.wait(TIMEOUT)
            self.close_connection = True
            return
        self.wfile.write(body)

    def do_POST(self):
        srv: Fake = self.server
        self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/v1/plan":
            body = srv.plan if srv.plan is not None else \
                json.dumps({"totals": {"bytes": {srv.fmt: len(srv.artifact)}}}).encode()
            return self._send(srv.plan_status, {"Content-Type": "application/json", "Content-Length": str(len(body)),
                                                "ETag": f'"{TAG}-plan"', **srv.plan_headers}, body)
        data, rng = srv.artifact, self.headers.get("Range")
        if rng and srv.fmt in ("npy", "safetensors", "hf"):
            a, b = (int(x) for x in rng.split("=")[1].split("-"))
            part = data[a:b + 1]
            headers = {"Content-Range": f"bytes {a}-{b}/{len(data)}", "Content-Length": str(len(part)),
                       "ETag": f'"{TAG}-{srv.fmt}"', "Content-Digest": digest(part),
                       "X-Weightinit-Digest-Max-Bytes": str(BOUND), **srv.headers}
            return self._send(206, headers, part, srv.stall)
        headers = {"Content-Length": str(len(data)), "ETag": f'"{TAG}-{srv.fmt}"', "Repr-Digest": digest(data),
                   **srv.headers}
        self._send(200, headers, data)


NPY_BAD = b"\x93NUMPY\x01\x00" + struct.pack("<H", 118) + b"{'descr': '<f4'}".ljust(117) + b"\n"
MALFORMED = [
    # (id, format, artifact, Fake keyword arguments, what the one line must say)
    ("plan-not-json", "safetensors", GOOD_ST, {"plan": b"<html>oops</html>"}, "not JSON"),
    ("plan-502-html", "safetensors", GOOD_ST, {"plan_status": 502, "plan": b"<html>bad gateway</html>"},
     "answered 502"),
    ("plan-a-list", "safetensors", GOOD_ST, {"plan": b"[1, 2]"}, "not a weightinit plan"),
    ("plan-size-text", "safetensors", GOOD_ST, {"plan": b'{"totals": {"bytes": {"safetensors": "12"}}}'},
     "not a byte count"),
    ("plan-no-etag", "safetensors", GOOD_ST, {"plan_headers": {"ETag": None}}, "sent no plan ETag"),
    ("no-content-range", "safetensors", GOOD_ST, {"headers": {"Content-Range": None}}, "Content-Range None"),
    ("content-length-text", "safetensors", GOOD_ST, {"headers": {"Content-Length": "12x"}}, "Content-Length '12x'"),
    ("content-digest-malformed", "safetensors", GOOD_ST, {"headers": {"Content-Digest": "sha-256=:!!:"}},
     "malformed Content-Digest"),
    ("content-digest-wrong", "safetensors", GOOD_ST, {"headers": {"Content-Digest": digest(b"other")}},
     "differs from the part's Content-Digest"),
    ("digest-bound-0", "safetensors", GOOD_ST,
     {"headers": {"Content-Digest": None, "X-Weightinit-Digest-Max-Bytes": "0"}}, "proves no part"),
    ("no-digest-no-bound", "safetensors", GOOD_ST,
     {"headers": {"Content-Digest": None, "X-Weightinit-Digest-Max-Bytes": None}}, "cannot be verified"),
    ("st-entry-not-object", "safetensors", safetensors({"w": 1}), {}, "malformed safetensors header"),
    ("st-header-a-list", "safetensors", safetensors([1, 2]), {}, "not a JSON object"),
    ("st-header-not-json", "safetensors", safetensors(b"{nope"), {}, "not JSON"),
    ("st-header-too-long", "safetensors", struct.pack("<Q", 1 << 40) + bytes(8), {}, "exceeds the file"),
    ("npy-header-incomplete", "npy", NPY_BAD, {}, "malformed .npy header"),
    ("npz-content-length-text", "npz", b"PK", {"headers": {"Content-Length": "lots"}}, "Content-Length 'lots'"),
    ("npz-not-a-zip", "npz", b"not a zip archive at all", {}, "npz"),
    ("json-no-repr-digest", "json", b"{}", {"headers": {"Repr-Digest": None}}, "without Repr-Digest"),
]


@pytest.mark.parametrize("fmt, artifact, kwargs, message", [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_a_malformed_response_fails_with_one_clear_line(tmp_path, fmt, artifact, kwargs, message):
    fake = Fake(artifact, fmt, **kwargs)
    try:
        r, out = fetched(fake.url, tmp_path, ONE, f"out.{fmt}", "--timeout", "20")
    finally:
        fake.close()
    failed_with(r, message)
    assert not out.exists() and partials(tmp_path) == []


# ------------------------------------------------------------------------------ Ctrl-C
def in_fetch_parts() -> list[str]:
    """Threads whose stack is in fetch's part loop (where the file is written): from the
    interpreter's own frames, whatever ``Thread.is_alive`` says."""
    names = {t.ident: t.name for t in threading.enumerate()}
    found = []
    for ident, frame in sys._current_frames().items():
        while frame is not None:
            code = frame.f_code
            if code.co_filename.endswith(os.path.join("service", "fetch.py")) and code.co_name in ("part", "_work"):
                found.append(names.get(ident, str(ident)))
                break
            frame = frame.f_back
    return found


def test_ctrl_c_ends_every_worker_before_the_file_is_closed(tmp_path):
    """In-process: SIGINT while two workers are blocked mid-part; when fetch returns (raising
    KeyboardInterrupt) no worker is still in its part loop, so none can write into a closed descriptor."""
    from service.fetch import fetch

    fake = Fake(bytes(8 << 20), "safetensors", stall=True)

    def interrupt():
        for _ in range(2):
            fake.stalled.acquire(timeout=TIMEOUT)
        os.kill(os.getpid(), signal.SIGINT)

    sender = threading.Thread(target=interrupt, daemon=True)
    sender.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            fetch(fake.url, ONE, str(tmp_path / "w.safetensors"), "safetensors", parallel=2, part_size=1 << 20,
                  timeout=TIMEOUT, progress=False)
        assert in_fetch_parts() == [], "fetch returned with workers still reading and writing parts"
        assert os.listdir(tmp_path) == []
    finally:
        fake.close()
        sender.join(TIMEOUT)


def test_ctrl_c_on_the_cli_prints_one_line_and_leaves_nothing(tmp_path):
    fake = Fake(bytes(8 << 20), "safetensors", stall=True)
    req = tmp_path / "req.json"
    req.write_text(json.dumps(ONE))
    out = tmp_path / "out" / "w.safetensors"
    out.parent.mkdir()
    try:
        p = subprocess.Popen([sys.executable, "-m", "service", "fetch", fake.url, str(req), "-o", str(out),
                              "--parallel", "2", "--part-size", "1048576"], cwd=ROOT, stderr=subprocess.PIPE,
                             text=True)
        assert all(fake.stalled.acquire(timeout=TIMEOUT) for _ in range(2))
        p.send_signal(signal.SIGINT)
        err = p.communicate(timeout=TIMEOUT)[1]
    finally:
        fake.close()
    assert p.returncode == 1 and err.strip() == "weightinit: fetch interrupted; partial file removed", err
    assert os.listdir(out.parent) == []
