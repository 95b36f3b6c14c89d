"""Fixtures and helpers for the hardening tests: dedicated gunicorn servers on loopback (the
session ``server`` of tests/conftest.py is shared with other suites; these tests kill workers,
change timeouts and measure worker memory, so each module gets its own), /proc readers, and
raw-socket HTTP for the requests an HTTP library refuses to send."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
import requests

from harness.processes import cpu_seconds, reset_peak, rss_kib
from tests.conftest import Server, children, start_server, stop_server

HERE = Path(__file__).resolve().parent
TIMEOUT = 60


def proc_threads(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    raise AssertionError(f"no Threads for pid {pid}")


def wait_for(predicate, timeout: float, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            return value
        time.sleep(interval)


def raw_request(port: int, data: bytes, *, timeout: float = 30.0, read_limit: int = 1 << 20) -> bytes:
    """Send raw bytes to 127.0.0.1:port and return what comes back until EOF (at most read_limit)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while len(out) < read_limit:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
        return out


def single_worker(server: Server) -> int:
    pids = wait_for(server.worker_pids, 30)
    assert len(pids) == 1, pids
    return pids[0]


def healthy(server: Server) -> bool:
    try:
        return requests.get(server.url + "/healthz", timeout=5).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture(scope="module")
def one_worker_server(tmp_path_factory):
    """gunicorn with the shipped configuration and one worker (so /proc figures are that worker's)."""
    s = start_server(tmp_path_factory.mktemp("gunicorn-1w"), env={"WEIGHTINIT_WORKERS": "1"})
    try:
        yield s
    finally:
        stop_server(s)


__all__ = ["Server", "children", "start_server", "stop_server", "rss_kib", "proc_threads", "cpu_seconds",
           "reset_peak", "wait_for", "raw_request", "single_worker", "healthy", "TIMEOUT", "HERE"]
