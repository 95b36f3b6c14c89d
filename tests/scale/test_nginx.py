"""The scale-out topology without Docker: deploy/nginx.conf in front of two gunicorn instances.

nginx (Debian package, installed by scripts/test-deps.sh) runs in the foreground with the real
deploy/nginx.conf, only its upstream servers, listen address and paths swapped for loopback
ports and a temporary directory. Two ``gunicorn -c gunicorn.conf.py`` instances serve on other
loopback ports. Checked:

- a sharded ``weightinit fetch`` through nginx of a multi-tensor architecture is byte-identical
  to a single-process ``python -m service generate`` of the same document, and both instances
  served parts of it. The instances run with the default ``WEIGHTINIT_DIGEST_MAX_BYTES`` (8 MiB):
  the whole artifact (> 10 MiB) streams, and every 1 MiB part carries its ``Content-Digest``,
  which nginx must pass through untouched (fetch accepts only proven parts);
- with one instance killed (SIGKILL, master and workers) in the middle of a run of requests,
  every request sent after the kill still succeeds, through the other (nginx's
  ``proxy_next_upstream``), and a sharded fetch still assembles the same bytes.

Request counts and durations are bounded; every process is stopped in a finalizer.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT, children, free_port, start_server, stop_server

pytestmark = pytest.mark.slow

CONF = ROOT / "deploy" / "nginx.conf"
TIMEOUT = 120
DOC = {
    "architecture": {"layers": [
        {"type": "embedding", "name": "emb", "num_embeddings": 4000, "embedding_dim": 256},
        {"type": "lstm", "name": "rnn", "input_size": 256, "hidden_size": 256},
        {"type": "dense", "name": "proj", "in_features": 256, "out_features": 1024, "scheme": "orthogonal"},
        {"type": "layernorm", "name": "ln", "normalized_shape": 1024},
        {"type": "dense", "name": "head", "in_features": 1024, "out_features": 4000, "activation": "softmax"},
    ]},
    "scheme": "auto", "seed": 2024, "dtype": "bfloat16",
}


def nginx_binary() -> str:
    exe = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if exe is None:
        pytest.fail("nginx is not installed: scripts/test-deps.sh installs it (Debian package nginx)")
    return exe


def nginx_config(backends: list[int], port: int, prefix: Path) -> str:
    """deploy/nginx.conf with loopback upstreams, a loopback listen port and paths under ``prefix``."""
    text = CONF.read_text()
    upstream = "\n".join(
        ["    upstream weightinit {", "        zone weightinit 256k;"]
        + [f"        server 127.0.0.1:{p} max_fails=2 fail_timeout=10s;" for p in backends]
        + ["        keepalive 64;", "    }"])
    text, n1 = re.subn(r"# upstream:begin.*?# upstream:end", upstream, text, flags=re.S)
    text, n2 = re.subn(r"# listen:begin.*?# listen:end", f"listen 127.0.0.1:{port};", text, flags=re.S)
    assert n1 == n2 == 1, "deploy/nginx.conf lost its upstream:/listen: markers"
    text = text.replace("/tmp/", f"{prefix}/")
    text = text.replace("error_log /dev/stderr", f"error_log {prefix}/error.log")
    text = text.replace("access_log /dev/stdout", f"access_log {prefix}/access.log")
    return text


class Nginx:
    def __init__(self, backends: list[int]):
        self.prefix = Path(tempfile.mkdtemp(prefix="weightinit-nginx-"))
        os.chmod(self.prefix, 0o755)
        self.port = free_port()
        conf = self.prefix / "nginx.conf"
        conf.write_text(nginx_config(backends, self.port, self.prefix))
        exe = nginx_binary()
        check = subprocess.run([exe, "-t", "-p", str(self.prefix), "-c", str(conf)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        with open(self.prefix / "stderr.log", "wb") as err:
            self.proc = subprocess.Popen([exe, "-p", str(self.prefix), "-c", str(conf), "-g", "daemon off;"],
                                         stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while True:
            assert self.proc.poll() is None, (self.prefix / "stderr.log").read_text()
            try:
                if requests.get(self.url + "/healthz", timeout=5).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "nginx did not answer /healthz through an upstream"
            time.sleep(0.1)

    def access_log(self) -> str:
        p = self.prefix / "access.log"
        return p.read_text() if p.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        shutil.rmtree(self.prefix, ignore_errors=True)


@pytest.fixture
def topology(tmp_path):
    servers, nginx = [], None
    try:
        for i in range(2):
            d = tmp_path / f"gunicorn{i}"
            d.mkdir()
            servers.append(start_server(d, env={"WEIGHTINIT_WORKERS": "1"}))
        nginx = Nginx([s.port for s in servers])
        yield nginx, servers
    finally:
        if nginx is not None:
            nginx.stop()
        for s in servers:
            stop_server(s)


def kill_instance(server) -> None:
    """SIGKILL a gunicorn instance, workers and master: a crashed replica."""
    for pid in children(server.proc.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    server.proc.kill()
    server.proc.wait(timeout=10)


def generate(tmp_path: Path, fmt: str) -> bytes:
    req = tmp_path / "request.json"
    req.write_text(__import__("json").dumps(DOC))
    out = tmp_path / f"single.{fmt}"
    r = subprocess.run([sys.executable, "-m", "service", "generate", str(req), "-o", str(out)], cwd=ROOT,
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    return out.read_bytes()


def fetch(url: str, tmp_path: Path, name: str, parallel: int = 4, part_size: int = 1 << 20):
    req = tmp_path / "request.json"
    req.write_text(__import__("json").dumps(DOC))
    out = tmp_path / name
    r = subprocess.run([sys.executable, "-m", "service", "fetch", url, str(req), "-o", str(out), "--parallel",
                        str(parallel), "--part-size", str(part_size)], cwd=ROOT, capture_output=True, text=True,
                       timeout=TIMEOUT)
    return r, out


def weights_requests(server) -> int:
    return len(re.findall(r'"POST /v1/weights HTTP/1\.1" 206', server.access_log()))


def test_sharded_fetch_through_nginx_is_byte_identical(topology, tmp_path):
    nginx, servers = topology
    expected = generate(tmp_path, "safetensors")
    assert len(expected) > 10 << 20  # several parts per connection
    r, out = fetch(nginx.url, tmp_path, "fetched.safetensors")
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == expected
    assert not (tmp_path / "fetched.safetensors.partial").exists()
    # nginx passed every part's Content-Digest through, and fetch checked each one against its bytes
    parts = -(-len(expected) // (1 << 20))
    assert f"Content-Digest sha-256 of every part ({parts})" in r.stderr, r.stderr
    # round-robin: both instances served parts, and nginx passed 206 answers through
    served = [weights_requests(s) for s in servers]
    assert all(n > 0 for n in served), served
    assert sum(served) == parts
    assert nginx.access_log().count('"POST /v1/weights HTTP/1.1" 206') == sum(served)


def test_requests_survive_a_killed_instance(topology, tmp_path):
    nginx, servers = topology
    small = {"architecture": {"layers": [{"type": "dense", "name": "fc", "in_features": 64, "out_features": 32}]}}
    statuses_after = []
    for i in range(40):
        if i == 15:
            kill_instance(servers[0])
        body = {**small, "seed": i, "format": "safetensors" if i % 2 else "json"}
        r = requests.post(nginx.url + ("/v1/weights" if i % 3 else "/v1/plan"), json=body, timeout=30)
        if i >= 15:
            statuses_after.append(r.status_code)
        else:
            assert r.status_code == 200
    assert statuses_after == [200] * 25, statuses_after
    # nginx marked the dead instance failed and keeps sending everything to the live one
    assert "127.0.0.1:%d" % servers[0].port in (nginx.prefix / "error.log").read_text()
    expected = generate(tmp_path, "safetensors")
    r, out = fetch(nginx.url, tmp_path, "after-kill.safetensors", parallel=3)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == expected
