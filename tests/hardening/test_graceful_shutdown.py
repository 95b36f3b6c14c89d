"""SIGTERM to gunicorn's master with a large download in flight (slow: CI runs them).

What Kubernetes (deploy/k8s/deployment.yaml) and `docker stop` rely on:

- the download in flight finishes, every byte the engine's (sha-256 of the body against the
  engine's own encoder), while new connections are already refused: the listening socket is
  closed at once, not when the last stream ends (gunicorn.conf.py, post_worker_init);
- the master exits 0 within the grace period (WEIGHTINIT_GRACEFUL_TIMEOUT);
- a download still running when the grace period ends is cut: the client gets a prefix of the
  engine's bytes shorter than Content-Length, never a whole-looking body, and the master exits;
- a reload (SIGHUP) stops the old workers the same way but keeps the port listening for the new.

The client holds its download back (reads nothing, or a little at a time) while the test sends
SIGTERM, so the download spans the signal by construction, not by a race.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import json
import signal
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.helpers import engine_sha256

from .conftest import start_server, stop_server, wait_for

pytestmark = pytest.mark.slow

#: 4096 x 4096 float32 = 64 MiB as npy: many times what the socket buffers of both ends hold.
BIG = {"architecture": {"layers": [{"type": "tensor", "name": "big", "shape": [4096, 4096]}]}, "seed": 11,
       "format": "npy"}
#: How long a test waits for a state it expects (a bound, not a measurement).
BOUND = 15.0


@contextmanager
def download(port: int) -> Iterator[http.client.HTTPResponse]:
    """POST BIG and hand over the response once its headers are in (the body still to read)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", "/v1/weights", body=json.dumps(BIG), headers={"Content-Type": "application/json"})
        with conn.getresponse() as resp:
            assert resp.status == 200, resp.read()[:500]
            yield resp
    finally:
        conn.close()


def connect_outcome(port: int) -> str:
    """What a new client gets: "refused", or "accepted" (the kernel completed the handshake)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return "accepted"
    except ConnectionRefusedError:
        return "refused"
    except OSError as e:  # a handshake nobody completes (a full backlog) counts as not refused
        assert e.errno in (errno.ETIMEDOUT, None), e
        return "accepted"


def read_all(resp: http.client.HTTPResponse, *, step: int, pause: float, deadline: float) -> bytes:
    """Read ``step`` bytes at a time with ``pause`` seconds between reads until EOF, a reset, or
    ``deadline`` (monotonic; past it the test fails: the server never ended the response)."""
    out = bytearray()
    while True:
        assert time.monotonic() < deadline, f"the response did not end ({len(out)} bytes read)"
        try:
            chunk = resp.read(step)
        except ConnectionResetError:
            return bytes(out)
        if not chunk:  # http.client returns b"" at EOF, even one short of Content-Length
            return bytes(out)
        out += chunk
        if pause:
            time.sleep(pause)


def test_sigterm_finishes_the_download_in_flight_and_refuses_new_connections(tmp_path):
    graceful = 20
    s = start_server(tmp_path, env={"WEIGHTINIT_GRACEFUL_TIMEOUT": str(graceful), "WEIGHTINIT_WORKERS": "2"})
    try:
        with download(s.port) as resp:
            length = int(resp.getheader("Content-Length"))
            head = resp.read(1 << 20)  # the stream is under way; the rest waits in the server
            sent = time.monotonic()
            s.proc.send_signal(signal.SIGTERM)
            # Every worker closes its copy of the listening socket as it stops accepting, so the
            # port refuses connections while the download is still being served (the master,
            # which exits only after its workers, is still there).
            assert wait_for(lambda: connect_outcome(s.port) == "refused", BOUND), \
                f"new connections still accepted {BOUND} s after SIGTERM"
            assert s.proc.poll() is None, "the master exited before the download in flight ended"
            body = head + read_all(resp, step=1 << 20, pause=0, deadline=sent + graceful)
        assert len(body) == length == 128 + 4 * 4096 * 4096
        assert engine_sha256(BIG, "npy") == hashlib.sha256(body).hexdigest()
        assert s.proc.wait(timeout=max(1.0, sent + graceful - time.monotonic())) == 0
        log = s.error_log()
        assert "Traceback" not in log and "SIGKILL" not in log, log[-3000:]
    finally:
        stop_server(s)


def test_a_download_longer_than_the_grace_period_is_cut(tmp_path):
    graceful = 3
    # WEIGHTINIT_IO_TIMEOUT well above the grace period: the cut is the grace period's, not a stall's.
    s = start_server(tmp_path, env={"WEIGHTINIT_GRACEFUL_TIMEOUT": str(graceful), "WEIGHTINIT_WORKERS": "1",
                                    "WEIGHTINIT_IO_TIMEOUT": "60"})
    try:
        with download(s.port) as resp:
            length = int(resp.getheader("Content-Length"))
            sent = time.monotonic()
            s.proc.send_signal(signal.SIGTERM)
            # 128 KiB every 0.1 s: 64 MiB would take 50 s, the grace period is 3 s; after the cut
            # the client still drains what the socket buffers hold (a few MiB).
            body = read_all(resp, step=1 << 17, pause=0.1, deadline=sent + graceful + 2 * BOUND)
        assert 0 < len(body) < length, (len(body), length)
        assert engine_sha256(BIG, "npy", len(body)) == hashlib.sha256(body).hexdigest()
        assert s.proc.wait(timeout=BOUND) == 0
    finally:
        stop_server(s)


def test_a_reload_keeps_the_port_listening(tmp_path):
    """SIGHUP replaces the workers gracefully: the old worker, stopping alone, closes only its own
    copy of the listening socket, so new connections reach the new workers while it finishes."""
    s = start_server(tmp_path, env={"WEIGHTINIT_GRACEFUL_TIMEOUT": "20", "WEIGHTINIT_WORKERS": "1"})
    try:
        (old,) = wait_for(s.worker_pids, BOUND)
        with download(s.port) as resp:
            head = resp.read(1 << 20)
            s.proc.send_signal(signal.SIGHUP)
            assert wait_for(lambda: set(s.worker_pids()) - {old}, BOUND), "no new worker after SIGHUP"
            for _ in range(5):  # every one a new connection, answered by the new worker
                with socket.create_connection(("127.0.0.1", s.port), timeout=BOUND) as c:
                    c.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                    assert c.recv(64).startswith(b"HTTP/1.1 200 "), "a new connection was not answered"
            assert old in s.worker_pids(), "the old worker exited before its download ended"
            body = head + read_all(resp, step=1 << 20, pause=0, deadline=time.monotonic() + BOUND)
        assert engine_sha256(BIG, "npy") == hashlib.sha256(body).hexdigest()
        assert wait_for(lambda: old not in s.worker_pids(), BOUND), "the old worker did not exit"
        assert s.proc.poll() is None
    finally:
        stop_server(s)
