"""GET /metrics scraped by a real Prometheus (Debian's ``prometheus``) from gunicorn with two workers.

The test starts gunicorn (two workers) and a Prometheus on loopback that scrapes it every second,
pins one keep-alive connection to each worker (which worker accepted a connection is read from
/proc), makes a known number of requests of every kind on both, waits for a scrape taken after
the last of them, and asks Prometheus's HTTP API for every count: requests and latency
observations by endpoint and status, body bytes, cache hits and misses, 413s by limit and values
by family and dtype must be exactly what the test did, summed over both workers (and nothing of
the earlier run whose files were left in the metrics directory). ``promtool check metrics`` must
accept the exposition, the README's PromQL examples must run, and a worker killed mid-stream must
leave no response in progress behind.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from http.client import HTTPConnection
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from harness.processes import free_port, socket_owner, terminate
from tests.conftest import ROOT, start_server, stop_server

pytestmark = pytest.mark.skipif(not (shutil.which("prometheus") and shutil.which("promtool")),
                                reason="Debian's prometheus (prometheus, promtool) is not installed: "
                                       "scripts/test-deps.sh installs it")

TIMEOUT = 60
#: Endpoints asked by others than the test: Prometheus (/metrics), start_server's polling (/healthz).
NOT_OURS = ("/metrics", "/healthz")
PLAN, WEIGHTS = "/v1/plan", "/v1/weights"
LIMITS = {"WEIGHTINIT_MAX_JSON_ELEMENTS": "1000", "WEIGHTINIT_MAX_LAYERS": "5", "WEIGHTINIT_MAX_BODY_BYTES": "65536",
          "WEIGHTINIT_DIGEST_MAX_BYTES": "65536"}


def dense(seed: int, n_in: int = 30, n_out: int = 20, **kw) -> dict:
    """One dense layer: n_in x n_out he_normal weights (variance_scaling) and n_out zero biases (constant)."""
    return {"architecture": {"layers": [{"type": "dense", "name": "fc", "in_features": n_in, "out_features": n_out}]},
            "scheme": "he_normal", "bias": "zeros", "seed": seed, **kw}


class Client:
    """Requests on one connection, each recorded as (endpoint, status, body bytes)."""

    def __init__(self, port: int, log: list):
        self.conn = HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
        self.conn.connect()
        self.local_port = self.conn.sock.getsockname()[1]
        self.log = log

    def call(self, endpoint: str, method: str, path: str, doc=None, headers=None, body: bytes | None = None):
        if doc is not None:
            body = json.dumps(doc).encode()
        hdrs = {"Content-Type": "application/json", **(headers or {})} if body is not None else dict(headers or {})
        self.conn.request(method, path, body=body, headers=hdrs)
        r = self.conn.getresponse()
        data = r.read()
        # http.client reconnects silently: the connection must still be the one pinned to its worker
        assert self.conn.sock is not None and self.conn.sock.getsockname()[1] == self.local_port, "reconnected"
        self.log.append((endpoint, str(r.status), len(data)))
        return r, data


def pin_one_connection_per_worker(server, log: list) -> dict[int, Client]:
    """Open connections (each asks /v1/schemes, so that a worker accepts it) until each worker holds one."""
    workers = server.worker_pids()
    assert len(workers) == 2, workers
    pinned: dict[int, Client] = {}
    for _ in range(60):
        c = Client(server.port, log)
        r, _ = c.call("/v1/schemes", "GET", "/v1/schemes")
        assert r.status == 200
        owner = socket_owner(workers, server.port, c.local_port)
        assert owner in workers, (owner, workers)
        if owner in pinned:
            c.conn.close()
        else:
            pinned[owner] = c
        if len(pinned) == 2:
            return pinned
    raise AssertionError(f"60 connections and only worker(s) {list(pinned)} of {workers} accepted any")


def exercise(c: Client, i: int) -> tuple[Counter, Counter, Counter]:
    """Every kind of request on one pinned connection, with documents no other connection sends.
    Returns the cache lookups by (endpoint, result), the 413s by limit, the values by (family, dtype)."""
    cache, limits, values = Counter(), Counter(), Counter()
    base = 1000 * (i + 1)
    for _ in range(3):  # a plan: a miss, then answered from the cache (the fast path)
        assert c.call(PLAN, "POST", PLAN, dense(base))[0].status == 200
    cache[PLAN, "miss"] += 1
    cache[PLAN, "hit"] += 2
    r, _ = c.call(WEIGHTS, "POST", WEIGHTS, dense(base + 1))  # JSON weights: a miss, then a hit
    assert r.status == 200
    assert c.call(WEIGHTS, "POST", WEIGHTS, dense(base + 1))[0].status == 200
    assert c.call(WEIGHTS, "POST", WEIGHTS, dense(base + 1), {"If-None-Match": r.getheader("ETag")})[0].status == 304
    cache[WEIGHTS, "miss"] += 1
    cache[WEIGHTS, "hit"] += 2
    values["variance_scaling", "float32"] += 2 * 600
    values["constant", "float32"] += 2 * 20
    # 206: the last 1024 bytes of one float32 tensor's .npy are 256 of its values
    npy = dense(base + 2, tensors=["fc.weight"], format="npy")
    assert c.call(WEIGHTS, "POST", WEIGHTS, npy, {"Range": "bytes=-1024"})[0].status == 206
    cache[WEIGHTS, "miss"] += 1
    values["variance_scaling", "float32"] += 256
    # A download streamed (over digest_max_bytes): 512 x 300 float16 weights, 300 biases
    big = dense(base + 3, 512, 300, dtype="float16", format="safetensors")
    r, data = c.call(WEIGHTS, "POST", WEIGHTS, big)
    assert r.status == 200 and r.getheader("Repr-Digest") is None and len(data) > 65536
    cache[WEIGHTS, "miss"] += 1
    values["variance_scaling", "float16"] += 512 * 300
    values["constant", "float16"] += 300
    # 413s after a lookup (the limits are checked on what the cache does not know) and a 422
    assert c.call(WEIGHTS, "POST", WEIGHTS, dense(base + 4, 100, 20))[0].status == 413  # 2,020 > 1000 JSON values
    limits["max_json_elements"] += 1
    six = {"architecture": {"layers": [{"type": "dense", "in_features": 2, "out_features": 2}] * 6}, "seed": base}
    assert c.call(WEIGHTS, "POST", WEIGHTS, six)[0].status == 413
    limits["max_layers"] += 1
    assert c.call(PLAN, "POST", PLAN, dense(-base))[0].status == 422
    cache[WEIGHTS, "miss"] += 2
    cache[PLAN, "miss"] += 1
    assert c.call("/v1/schemes/{name}", "GET", "/v1/schemes/he_normal")[0].status == 200
    return cache, limits, values


def unpinned(server, log: list) -> Counter:
    """Requests whose counts do not depend on the worker: no cache lookup. Returns the 413s by limit."""
    c = Client(server.port, log)
    assert c.call("/v1/schemes/{name}", "GET", "/v1/schemes/no_such_scheme")[0].status == 404
    assert c.call("unmatched", "GET", "/no/such/path")[0].status == 404
    assert c.call(WEIGHTS, "POST", WEIGHTS, body=b" " * 70_000)[0].status == 413  # max_body_bytes, before any lookup
    c.conn.close()
    return Counter({"max_body_bytes": 1})


def scraped(server, predicate):
    """Poll our own /metrics until ``predicate(text)`` (the workers count a request when its stream is
    closed, just after the client has read its last byte); bounded."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        text = requests.get(server.url + "/metrics", timeout=TIMEOUT).text
        if predicate(text) or time.monotonic() > deadline:
            return text
        time.sleep(0.1)


def total_requests(text: str) -> float:
    """Requests counted in an exposition, but for the endpoints others ask too."""
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == "weightinit_http_requests_total" and s.labels["endpoint"] not in NOT_OURS)


class Prometheus:
    def __init__(self, tmp: Path, target_port: int):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = tmp / "prometheus.yml"
        config.write_text(f"""global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: weightinit
    static_configs:
      - targets: ["127.0.0.1:{target_port}"]
""")
        self.log = tmp / "prometheus.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=tmp)
        deadline = time.monotonic() + TIMEOUT
        while True:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                if requests.get(self.url + "/-/ready", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, f"prometheus not ready in {TIMEOUT}s:\n{self.log.read_text()}"
            time.sleep(0.1)

    def query(self, promql: str) -> list:
        r = requests.get(self.url + "/api/v1/query", params={"query": promql}, timeout=TIMEOUT)
        body = r.json()
        assert r.status_code == 200 and body["status"] == "success", (promql, body)
        return body["data"]["result"]

    def by(self, promql: str, *labels: str) -> dict:
        """An instant vector as {label values: number}."""
        return {tuple(s["metric"].get(k, "") for k in labels): float(s["value"][1]) for s in self.query(promql)}

    def wait_for_scrape_after(self, t: float) -> None:
        deadline = time.monotonic() + TIMEOUT
        while True:
            stamps = [float(s["value"][1]) for s in self.query('timestamp(up{job="weightinit"} == 1)')]
            if stamps and stamps[0] > t:
                return
            assert time.monotonic() < deadline, f"no successful scrape after {t}:\n{self.log.read_text()}"
            time.sleep(0.2)

    def stop(self):
        terminate(self.proc)


def leave_an_earlier_run(directory: Path) -> None:
    """Metric files as a previous gunicorn would have left them (and a file that is not one of them)."""
    directory.mkdir()
    subprocess.run([sys.executable, "-c", "from service.api import metrics; "
                    "metrics.REQUESTS.labels('/v1/plan', '200').inc(1000); metrics.VALUES.labels('random', 'float64').inc(5)"],
                   env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}, cwd=ROOT, check=True, timeout=TIMEOUT)
    assert any(p.suffix == ".db" for p in directory.iterdir())
    (directory / "not-metrics.txt").write_text("kept")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("prometheus")
    leave_an_earlier_run(tmp / "metrics")
    server = start_server(tmp, env={"WEIGHTINIT_WORKERS": "2", "WEIGHTINIT_KEEPALIVE": "300",
                                    "WEIGHTINIT_METRICS_DIR": str(tmp / "metrics"), **LIMITS})
    assert (tmp / "metrics" / "not-metrics.txt").read_text() == "kept"
    try:
        prometheus = Prometheus(tmp, server.port)
        try:
            yield server, prometheus
        finally:
            prometheus.stop()
    finally:
        stop_server(server)


def test_prometheus_counts_every_request_of_both_workers(stack):
    server, prom = stack
    log: list = []
    pinned = pin_one_connection_per_worker(server, log)
    cache, limits, values = Counter(), Counter(), Counter()
    for i, c in enumerate(pinned.values()):
        more = exercise(c, i)
        cache += more[0]
        limits += more[1]
        values += more[2]
    limits += unpinned(server, log)
    for c in pinned.values():
        c.conn.close()
    requests_made = Counter((e, s) for e, s, _ in log)
    body_bytes = Counter()
    for e, s, n in log:
        body_bytes[e, s] += n
    # Each worker answered its pinned connection's requests; every request counted, then a scrape after that
    text = scraped(server, lambda t: total_requests(t) >= len(log))
    assert total_requests(text) == len(log)
    done = time.time()
    prom.wait_for_scrape_after(done)

    ours = '{job="weightinit", endpoint!~"/metrics|/healthz"}'
    assert prom.by(f"sum by (endpoint, status) (weightinit_http_requests_total{ours})",
                   "endpoint", "status") == dict(requests_made)
    for histogram in ("weightinit_http_request_duration_seconds", "weightinit_http_response_start_seconds"):
        assert prom.by(f"sum by (endpoint, status) ({histogram}_count{ours})",
                       "endpoint", "status") == dict(requests_made), histogram
        inf = prom.by(f'sum by (endpoint, status) ({histogram}_bucket{{job="weightinit", '
                      f'endpoint!~"/metrics|/healthz", le="+Inf"}})', "endpoint", "status")
        assert inf == dict(requests_made), histogram
    assert prom.by(f"sum by (endpoint, status) (weightinit_http_response_body_bytes_total{ours})",
                   "endpoint", "status") == dict(body_bytes)
    assert prom.by("sum by (endpoint, result) (weightinit_response_cache_requests_total)",
                   "endpoint", "result") == dict(cache)
    assert prom.by("sum by (limit) (weightinit_limit_exceeded_total)", "limit") == {(k,): v for k, v in limits.items()}
    assert prom.by("sum by (family, dtype) (weightinit_values_total)", "family", "dtype") == dict(values)
    assert prom.by(f"sum(weightinit_http_responses_in_progress{ours})") == {(): 0.0}


def test_promtool_accepts_the_exposition(stack):
    server, _ = stack
    text = requests.get(server.url + "/metrics", timeout=TIMEOUT).text
    assert "weightinit_http_requests_total" in text
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), r.stdout + r.stderr


def test_the_readme_promql_examples_run(stack):
    _, prom = stack
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Operating it"):]
    section = section[:section.index("\n## ", 1)]
    examples = re.findall(r"```promql\n(.*?)```", section, re.S)
    queries = [q.strip() for block in examples for q in block.split("\n\n") if q.strip()]
    assert len(queries) >= 2
    for q in queries:
        prom.query("\n".join(line for line in q.splitlines() if not line.startswith("#")))


def in_progress(server, endpoint: str) -> float:
    text = requests.get(server.url + "/metrics", timeout=TIMEOUT).text
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == "weightinit_http_responses_in_progress" and s.labels["endpoint"] == endpoint)


def test_a_worker_killed_mid_stream_leaves_no_response_in_progress(stack):
    """gunicorn.conf.py's child_exit drops a dead worker's live gauges: without it, the stream the
    worker was sending when it died would count as in progress for as long as the instance runs."""
    server, _ = stack
    doc = json.dumps(dense(5, 4096, 4096, format="safetensors")).encode()  # 64 MiB, streamed
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as s:
        s.sendall(b"POST /v1/weights HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: " + str(len(doc)).encode() + b"\r\n\r\n" + doc)
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(4096)
        assert head.startswith(b"HTTP/1.1 200"), head[:200]
        workers = server.worker_pids()
        owner = socket_owner(workers, server.port, s.getsockname()[1])
        assert owner in workers and in_progress(server, WEIGHTS) == 1  # the client reads no more: it stays in flight
        os.kill(owner, signal.SIGKILL)
        deadline = time.monotonic() + TIMEOUT
        while (owner in server.worker_pids() or len(server.worker_pids()) != 2) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert owner not in server.worker_pids() and len(server.worker_pids()) == 2  # replaced
    deadline = time.monotonic() + TIMEOUT
    while in_progress(server, WEIGHTS) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert in_progress(server, WEIGHTS) == 0
