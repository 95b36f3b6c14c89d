"""Shared fixtures: a real gunicorn server on a free loopback port (session-scoped).

``server`` starts ``gunicorn -c gunicorn.conf.py 'service:create_app()'`` exactly as
scripts/serve.sh does, with PORT set to a free port and WEIGHTINIT_HOST=127.0.0.1, waits for
``/healthz`` and stops it after the session. Any test file can use it::

    def test_x(server):
        r = requests.get(server.url + "/healthz", timeout=10)

``server.worker_pids()`` lists the worker processes (children of the master), for memory
checks; ``server.access_log()`` is what gunicorn wrote to stdout so far.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


# One copy of the process helpers, shared with the benchmarks (which start servers the same way).
from harness.processes import children, free_port, terminate  # noqa: E402,F401  (re-exported to the tests)


@dataclass
class Server:
    url: str
    port: int
    proc: subprocess.Popen
    stdout: Path
    stderr: Path

    def worker_pids(self) -> list[int]:
        return children(self.proc.pid)

    def access_log(self) -> str:
        return self.stdout.read_text(errors="replace")

    def error_log(self) -> str:
        return self.stderr.read_text(errors="replace")


def start_server(tmpdir: Path, env: dict | None = None, timeout: float = 60.0,
                 app: str = "service:create_app()") -> Server:
    import requests

    port = free_port()
    stdout, stderr = tmpdir / "access.log", tmpdir / "error.log"
    full_env = {**os.environ, "PORT": str(port), "WEIGHTINIT_HOST": "127.0.0.1", **(env or {})}
    cmd = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), app]
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
    server = Server(f"http://127.0.0.1:{port}", port, proc, stdout, stderr)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {proc.returncode}:\n{server.error_log()}")
        try:
            if requests.get(server.url + "/healthz", timeout=2).status_code == 200:
                return server
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            stop_server(server)
            raise RuntimeError(f"gunicorn did not answer /healthz within {timeout}s:\n{server.error_log()}")
        time.sleep(0.1)


def stop_server(server: Server) -> None:
    terminate(server.proc)


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("gunicorn"))
    try:
        yield s
    finally:
        stop_server(s)
