"""Benchmark plumbing: gunicorn servers on loopback, a lean HTTP/1.1 client, wrk, process memory.

The servers run exactly like production (``gunicorn -c gunicorn.conf.py``), on free loopback
ports, started and stopped by the benchmark itself. The client receives every byte of a response
into one reused buffer (so the client's own allocations do not dominate what is measured) and
checks the status line and ``Content-Length``.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from harness.processes import children, free_port, reset_peak, rss_kib, terminate  # noqa: F401  (re-exported)

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen
    logdir: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def workers(self) -> list[int]:
        return children(self.proc.pid)

    def stop(self) -> None:
        terminate(self.proc)


def start_gunicorn(app: str, name: str, env: dict | None = None, timeout: float = 60.0) -> Server:
    """``gunicorn -c gunicorn.conf.py APP`` on a free loopback port; waits until it answers."""
    port = free_port()
    logdir = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    full_env = {**os.environ, "PORT": str(port), "WEIGHTINIT_HOST": "127.0.0.1", "WEIGHTINIT_LOG_LEVEL": "warning",
                **(env or {})}
    cmd = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "--access-logfile", "/dev/null", app]
    with open(logdir / "out.log", "wb") as out, open(logdir / "err.log", "wb") as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
    server = Server(name, port, proc, logdir)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{name}: gunicorn exited: {(logdir / 'err.log').read_text()[-2000:]}")
        try:
            status, _, _ = request(port, "GET", "/healthz" if "service" in app else "/")
            if status == 200:
                return server
        except OSError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"{name}: no answer within {timeout}s")
        time.sleep(0.1)


_BUF = bytearray(1 << 22)
_KEEP = bytearray(1 << 24)


def request(port: int, method: str, path: str, body: bytes = b"", headers: dict | None = None,
            keep: bool = False) -> tuple[int, dict, bytes | int]:
    """One request on a fresh connection: (status, headers, body if ``keep`` else the body's length).

    Every byte is received (into a reused buffer unless ``keep``); a body shorter than its
    Content-Length raises."""
    head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    if body:
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    with socket.create_connection(("127.0.0.1", port), timeout=600) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        data = b""
        while b"\r\n\r\n" not in data:
            more = s.recv(65536)
            if not more:
                raise ConnectionError("connection closed before the headers")
            data += more
        raw_head, rest = data.split(b"\r\n\r\n", 1)
        lines = raw_head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        length = int(hdrs.get("content-length", -1))
        if keep:  # every byte into one reused buffer (allocated once: fresh memory page-faults), copied after
            global _KEEP
            if length < 0:
                raise ConnectionError("keep=True needs a Content-Length")
            if len(_KEEP) < length:
                _KEEP = bytearray(length)
            view = memoryview(_KEEP)
            view[:len(rest)] = rest
            got = len(rest)
            while got < length:
                n = s.recv_into(view[got:length])
                if not n:
                    raise ConnectionError(f"short body: {got} of {length} bytes")
                got += n
            return status, hdrs, view[:length]
        got = len(rest)
        view = memoryview(_BUF)
        while True:
            n = s.recv_into(view)
            if not n:
                break
            got += n
        if length >= 0 and got != length:
            raise ConnectionError(f"short body: {got} of {length} bytes")
        return status, hdrs, got


def wrk(url: str, *, seconds: int, connections: int = 8, threads: int = 2, script: str | None = None) -> dict:
    """Run wrk; returns {rps, p50_ms, p99_ms, non2xx, errors}."""
    exe = shutil.which("wrk")
    if exe is None:
        raise RuntimeError("wrk is not installed (Debian package wrk; scripts/test-deps.sh installs it)")
    cmd = [exe, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script or "")
        lua = f.name
    if script:
        cmd[1:1] = ["-s", lua]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    finally:
        os.unlink(lua)

    def latency(label: str) -> float:
        m = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return {"rps": rps, "p50_ms": latency("50"), "p99_ms": latency("99"),
            "non2xx": int(non2xx.group(1)) if non2xx else 0, "errors": errors.group(0) if errors else "", "raw": out}


def wrk_post_script(body: str, headers: dict | None = None, vary_seed: bool = False) -> str:
    """A wrk Lua script POSTing ``body`` (JSON); with ``vary_seed`` every request gets a new seed."""
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    lines = ['wrk.method = "POST"'] + [f'wrk.headers["{k}"] = {lua_string(v)}' for k, v in hdrs.items()]
    if not vary_seed:
        lines.append(f"wrk.body = {lua_string(body)}")
        return "\n".join(lines) + "\n"
    assert '"seed": 0' in body
    head, tail = body.split('"seed": 0', 1)
    # Every request of the run gets its own seed: setup() numbers the wrk threads (each has its own Lua
    # state, whose math.random would start from the same sequence in every thread), and each thread
    # counts from its number times 10^9, so no two requests of any connection share a seed.
    lines += [f"local head = {lua_string(head)}", f"local tail = {lua_string(tail)}",
              "local threads = 0",
              "function setup(thread)",
              "  threads = threads + 1",
              '  thread:set("id", threads)',
              "end",
              "local n = 0",
              "function init(args)",
              '  n = (tonumber(wrk.thread:get("id")) or 0) * 1000000000',
              "end",
              "request = function()",
              "  n = n + 1",
              '  return wrk.format(nil, nil, nil, head .. \'"seed": \' .. n .. tail)',
              "end"]
    return "\n".join(lines) + "\n"


def lua_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
