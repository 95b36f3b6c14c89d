"""Load and faults against real gunicorn servers on loopback (slow: CI runs them).

- wrk, 20 s at 64 connections, a rotating mix of plan, small JSON and small binary requests:
  no non-2xx response, no socket error, no worker restart, worker RSS at the end within 10% of
  its value after a warm-up that filled every worker's response cache (no per-request leak);
  prints req/s and latency percentiles.
- 50 clients that hang up in the middle of a large streamed response: the worker stops drawing
  (its CPU goes idle), frees the stream (no RSS growth, no thread leak) and keeps serving; the
  engine's pipelined prefetch cancels cleanly on GeneratorExit (checked in-process).
- A worker killed with SIGKILL mid-request: the client sees a truncated body, gunicorn replaces
  the worker, and the next requests get the engine's exact bytes.
- More stalled connections than threads (request headers that stop, a body that stops, downloads
  nobody reads, connections that send nothing): /healthz still answers within the bound that
  WEIGHTINIT_IO_TIMEOUT gives (gunicorn.conf.py explains it), and each stalled kind gets its end.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest
import requests

from service.api.cache import MAX_ENTRIES
from service.core import streams

from tests.helpers import plan_of
from tests.helpers import artifact_of as encode

from .conftest import (HERE, TIMEOUT, cpu_seconds, healthy, proc_threads, rss_kib, single_worker, start_server,
                       stop_server, wait_for)

pytestmark = pytest.mark.slow

SMALL = {"architecture": {"layers": [{"type": "dense", "name": "fc", "in_features": 32, "out_features": 16,
                                      "activation": "tanh"}]}, "seed": 3}
#: 8192 x 8192 float32 = 256 MiB as npy: far more than any socket buffer, streamed.
BIG = {"architecture": {"layers": [{"type": "tensor", "name": "big", "shape": [8192, 8192]}]}, "seed": 9,
       "format": "npy"}


def engine_bytes(doc: dict, fmt: str) -> bytes:
    return b"".join(bytes(c) for c in encode(plan_of({k: v for k, v in doc.items() if k != "format"}), fmt).chunks())


def post(server, doc, **kw):
    return requests.post(server.url + "/v1/weights", json=doc, timeout=TIMEOUT, **kw)


def http_request(doc: dict) -> bytes:
    body = json.dumps(doc).encode()
    return (b"POST /v1/weights HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


# ------------------------------------------------------------------ wrk
#: Requests per worker before the baseline RSS is read. A worker's response cache (service/api/cache.py)
#: grows until it holds MAX_ENTRIES (512) entries: for this mix (nine requests in ten are new bodies) a
#: full cache is ~6 MB by its own count and ~10 MiB of RSS, some 15% of a worker, so a baseline read
#: before it is full measures the cache filling up, not a leak. While the full cache's entries are
#: replaced, live Python objects and malloc's bytes in use stay flat, but the allocators' free pools
#: (pymalloc arenas, one malloc arena per thread) grow by a few MiB more and level off. Six times
#: MAX_ENTRIES fills the cache and most of that; ten times leaves less (measured with six: 0-7%, and
#: once 12% in CI); a leak of 4 KiB per request (thousands of requests per worker in 20 s) exceeds
#: the 10% (checked: +15%).
WARM_REQUESTS_PER_WORKER = 10 * MAX_ENTRIES
#: The warm-up runs in rounds this long until it has sent that many requests, at most WARM_ROUNDS of them.
WARM_ROUND_SECONDS, WARM_ROUNDS = 5, 24


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk (Debian package `wrk`, scripts/test-deps.sh) missing")
def test_wrk_mix_20s_64_connections(tmp_path):
    s = start_server(tmp_path)  # the shipped configuration: one worker per core, gthread
    try:
        pids = wait_for(lambda: len(s.worker_pids()) == (os.cpu_count() or 1) and s.worker_pids(), 30)
        assert pids

        def wrk(seconds: int, block: int) -> dict:
            """One wrk run of the mix; ``block`` picks seeds no other block uses (wrk_mix.lua)."""
            r = subprocess.run(["wrk", "-t2", "-c64", f"-d{seconds}s", "--timeout", "10s", "--latency",
                                "-s", str(HERE / "wrk_mix.lua"), s.url, "--", str(block)],
                               capture_output=True, text=True, timeout=seconds + 60)
            assert r.returncode == 0, r.stderr
            m = re.search(r"^WRK_RESULT (\{.*\})$", r.stdout, re.M)
            assert m, r.stdout
            return {**json.loads(m.group(1)), "text": r.stdout}

        # warm-up: imports, every request kind on every worker, full response caches, allocator pools
        warmed, rounds = 0, 0
        while warmed < WARM_REQUESTS_PER_WORKER * len(pids):
            assert rounds < WARM_ROUNDS, f"warm-up: only {warmed} requests in {rounds} rounds of {WARM_ROUND_SECONDS} s"
            rounds += 1
            warmed += wrk(WARM_ROUND_SECONDS, block=rounds)["requests"]
        warm = {pid: rss_kib(pid) for pid in pids}
        res = wrk(20, block=0)
        final = {pid: rss_kib(pid) for pid in pids}
        rps = res["requests"] / (res["duration_us"] / 1e6)
        print(f"\nwrk 20 s, 64 connections, {len(pids)} workers x gthread: {res['requests']} requests, {rps:.0f} req/s, "
              f"{res['bytes'] / res['duration_us']:.1f} MB/s; latency p50 {res['p50_us'] / 1000:.1f} ms, "
              f"p90 {res['p90_us'] / 1000:.1f} ms, p99 {res['p99_us'] / 1000:.1f} ms, max {res['max_us'] / 1000:.1f} ms; "
              f"errors connect {res['connect']} read {res['read']} write {res['write']} timeout {res['timeout']} "
              f"non-2xx {res['status']}")
        print(f"warm-up: {warmed} requests in {rounds} rounds of {WARM_ROUND_SECONDS} s")
        for pid in pids:
            print(f"worker {pid}: RSS after warm-up {warm[pid] / 1024:.1f} MiB, after the run {final[pid] / 1024:.1f} MiB "
                  f"({(final[pid] - warm[pid]) / warm[pid]:+.1%})")
        assert res["requests"] > 1000
        assert res["status"] == 0, "non-2xx responses under load"
        assert (res["connect"], res["read"], res["write"], res["timeout"]) == (0, 0, 0, 0), res["text"]
        assert "Non-2xx" not in res["text"] and "Socket errors" not in res["text"]
        assert s.worker_pids() == pids, "a worker was restarted under load"
        for pid in pids:
            assert abs(final[pid] - warm[pid]) <= 0.10 * warm[pid], (pid, warm[pid], final[pid])
        err = s.error_log()
        assert "Traceback" not in err and "WORKER TIMEOUT" not in err and "Worker exiting" not in err
        assert healthy(s)
    finally:
        stop_server(s)


# ------------------------------------------------------------------ clients that hang up mid-stream
def test_pipelined_prefetch_stops_and_waits_on_generator_exit():
    """Closing the generator mid-way cancels the queued blocks and waits for the running ones, so
    no task writes into a buffer after the consumer let go, and nothing runs on afterwards."""
    lock = threading.Lock()
    started, finished = [], []

    def produce(i, slot):
        with lock:
            started.append(i)
        time.sleep(0.05)
        with lock:
            finished.append(i)
        return i

    gen = streams.pipelined(200, produce, depth=4)
    assert [next(gen) for _ in range(3)] == [0, 1, 2]
    gen.close()  # GeneratorExit inside: the finally cancels and waits
    with lock:
        assert sorted(started) == sorted(finished), "a block was still being drawn after close()"
        count = len(started)
    assert count <= 3 + 4 + 1
    time.sleep(0.3)
    assert len(started) == count, "blocks went on being drawn after close()"


def test_an_artifact_stream_closes_its_encoder_on_every_exit():
    """The view's stream closes the encoder's generator (whose finally cancels the prefetch)
    whether the server closes it, the client hangs up on the direct socket path, or it stalls."""
    import dataclasses

    from service.api.weights import _stream

    artifact = encode(plan_of({k: v for k, v in BIG.items() if k != "format"}), "npy")
    closed = []

    def chunks():
        try:
            yield from artifact.chunks()
        finally:
            closed.append(True)

    art = dataclasses.replace(artifact, chunks=chunks)
    gen = _stream(art, "t")  # through the server: it closes the iterator
    assert all(isinstance(next(gen), bytes) for _ in range(3))
    gen.close()
    assert closed == [True]

    class Sock:
        def __init__(self, error):
            self.error, self.calls = error, 0

        def sendall(self, data):
            self.calls += 1
            if self.calls > 2:
                raise self.error

    for error in (BrokenPipeError(32, "gone"), ConnectionResetError(104, "reset"), BlockingIOError(11, "stalled")):
        closed.clear()
        gen = _stream(art, "t", None, Sock(error))  # direct to the socket (gunicorn, HTTP/1.1)
        assert next(gen) == b""
        with pytest.raises((BrokenPipeError, ConnectionResetError)):  # a stall is closed like a hang-up
            next(gen)
        assert closed == [True], error


def test_clients_hanging_up_mid_stream_leave_the_worker_clean(tmp_path):
    s = start_server(tmp_path, env={"WEIGHTINIT_WORKERS": "1"})
    try:
        pid = single_worker(s)
        request = http_request(BIG)
        expected_length = encode(plan_of({k: v for k, v in BIG.items() if k != "format"}), "npy").length  # lazy

        def hang_up_after(nbytes: int):
            with socket.create_connection(("127.0.0.1", s.port), timeout=30) as c:
                c.sendall(request)
                got = b""
                while len(got) < nbytes:
                    chunk = c.recv(1 << 16)
                    assert chunk, "the server closed first"
                    got += chunk
                head = got.split(b"\r\n\r\n", 1)[0]
                assert head.startswith(b"HTTP/1.1 200")
                assert int(re.search(rb"(?i)content-length: *(\d+)", head).group(1)) == expected_length
                # RST instead of FIN: the worker's next write fails at once
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")

        for _ in range(5):  # warm-up
            hang_up_after(1 << 20)
        time.sleep(1)
        rss0, threads0 = rss_kib(pid), proc_threads(pid)
        t0 = time.monotonic()
        for i in range(50):
            hang_up_after((1 << 20) * (1 + i % 4))
        elapsed = time.monotonic() - t0
        # the worker stops drawing once its writes fail: it goes idle, it does not finish 50 x 256 MiB
        assert wait_for(lambda: s.access_log().count('"POST /v1/weights HTTP/1.1" 200') >= 55, 30)
        c0 = cpu_seconds(pid)
        time.sleep(2)
        idle_cpu = cpu_seconds(pid) - c0
        rss1, threads1 = rss_kib(pid), proc_threads(pid)
        print(f"\n50 hang-ups in {elapsed:.1f}s: worker {pid} RSS {rss0 / 1024:.1f} -> {rss1 / 1024:.1f} MiB, "
              f"threads {threads0} -> {threads1}, CPU over the next 2 s {idle_cpu:.2f} s")
        assert idle_cpu < 0.3, f"the worker kept working ({idle_cpu:.2f} s CPU in 2 s) after its clients left"
        assert rss1 - rss0 < 16 * 1024, f"worker RSS grew by {(rss1 - rss0) / 1024:.1f} MiB over 50 hang-ups"
        # threads pools grow lazily up to their size: main + gthread's 4 request threads + the engine's
        # block-drawing pool (one per core) + gthread's poller helpers; a leak would pass it after 50 streams
        assert threads1 <= 1 + 4 + (os.cpu_count() or 1) + 2, (threads0, threads1)
        assert single_worker(s) == pid
        assert "Traceback" not in s.error_log(), s.error_log()[-3000:]
        r = post(s, {**SMALL, "format": "safetensors"})
        assert r.status_code == 200 and r.content == engine_bytes(SMALL, "safetensors")
    finally:
        stop_server(s)


# ------------------------------------------------------------------ SIGKILL
def test_a_worker_killed_mid_request_is_replaced(tmp_path):
    s = start_server(tmp_path, env={"WEIGHTINIT_WORKERS": "1"})
    try:
        pid = single_worker(s)
        received = 0
        killed = False
        with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)):
            with requests.post(s.url + "/v1/weights", json=BIG, stream=True, timeout=TIMEOUT) as r:
                assert r.status_code == 200
                length = int(r.headers["Content-Length"])
                for chunk in r.iter_content(1 << 20):
                    received += len(chunk)
                    # Once: the bytes already in flight keep arriving after the kill, and the master
                    # may reap the worker between a look at its pid and a second kill.
                    if received >= 4 << 20 and not killed:
                        os.kill(pid, signal.SIGKILL)
                        killed = True
        assert killed and 4 << 20 <= received < length, "the client must see a truncated body"
        new = wait_for(lambda: [p for p in s.worker_pids() if p != pid], 30)
        assert new and pid not in s.worker_pids(), "gunicorn did not replace the killed worker"
        assert wait_for(lambda: healthy(s), 30)
        for fmt in ("json", "npz", "safetensors"):
            r = post(s, {**SMALL, "format": fmt})
            assert r.status_code == 200 and r.content == engine_bytes(SMALL, fmt), fmt
        assert s.proc.poll() is None, "the master died"
        assert re.search(rf"Worker \(pid:{pid}\) was sent SIGKILL|Worker \(pid:{pid}\) exited", s.error_log()), \
            s.error_log()[-2000:]
    finally:
        stop_server(s)


# ------------------------------------------------------------------ slow and stalled clients
def test_stalled_clients_cannot_pin_every_thread(tmp_path):
    io_timeout, threads = 3, 2
    s = start_server(tmp_path, env={"WEIGHTINIT_WORKERS": "1", "WEIGHTINIT_THREADS": str(threads),
                                    "WEIGHTINIT_IO_TIMEOUT": str(io_timeout), "WEIGHTINIT_KEEPALIVE": "2"})
    conns: list[tuple[str, socket.socket]] = []
    try:
        pid = single_worker(s)
        body = json.dumps(SMALL).encode()

        def connect(kind: str, payload: bytes):
            c = socket.create_connection(("127.0.0.1", s.port), timeout=60)
            if payload:
                c.sendall(payload)
            conns.append((kind, c))

        for _ in range(threads):
            connect("headers", b"POST /v1/weights HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: appl")
            connect("body", b"POST /v1/weights HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body[:10])
            connect("download", http_request(BIG))
            connect("silent", b"")
        stalled = len(conns)
        assert stalled > threads * 3
        t0 = time.monotonic()
        r = requests.get(s.url + "/healthz", timeout=120)
        waited = time.monotonic() - t0
        # each stalled connection holds a thread for at most max(io_timeout, gthread's 5 s first-byte wait)
        bound = math.ceil(stalled / threads) * max(io_timeout, 5) + 5
        print(f"\n{stalled} stalled connections on {threads} threads (io_timeout {io_timeout} s): "
              f"/healthz answered in {waited:.1f} s (bound {bound} s)")
        assert r.status_code == 200 and waited < bound

        def outcome(c: socket.socket) -> bytes:
            data = b""
            c.settimeout(30)
            try:
                while True:
                    chunk = c.recv(1 << 20)
                    if not chunk:
                        return data
                    data += chunk
            except (ConnectionResetError, TimeoutError):
                return data

        # every stalled connection was taken before /healthz (the pool is FIFO); a download is cut
        # once it has made no progress for io_timeout seconds: give the last one that long
        time.sleep(io_timeout + 2)
        for kind, c in conns:
            data = outcome(c)
            if kind == "headers":  # cut by gunicorn while parsing: no response at all
                assert data == b"", data[:200]
            elif kind == "body":  # the app read a body that stopped: 408 problem
                assert data.startswith(b"HTTP/1.1 408"), data[-400:]
                assert b"urn:weightinit:problem:request-timeout" in data
            elif kind == "download":  # the response nobody read: cut short of its Content-Length
                head, rest = data.split(b"\r\n\r\n", 1)
                length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
                assert head.startswith(b"HTTP/1.1 200") and len(rest) < length
            else:  # sent nothing: parked, then closed after keepalive
                assert data == b""
        assert single_worker(s) == pid, "a worker was restarted"
        r = post(s, {**SMALL, "format": "npz"})
        assert r.status_code == 200 and r.content == engine_bytes(SMALL, "npz")
    finally:
        for _, c in conns:
            c.close()
        stop_server(s)


def test_without_io_timeout_the_same_stalls_would_pin_the_threads():
    """Guard for the test above: the bound it checks is only reachable through SO_RCVTIMEO /
    SO_SNDTIMEO, which gunicorn.conf.py sets on the listening sockets (inherited on accept)."""
    import struct

    listener = socket.create_server(("127.0.0.1", 0))
    tv = struct.pack("ll", 1, 0)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)
    with listener, socket.create_connection(listener.getsockname()):
        accepted, _ = listener.accept()
        with accepted:
            accepted.setblocking(False)
            accepted.setblocking(True)  # what gthread does: Python's timeout is gone, the kernel's stays
            assert accepted.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, 16) == tv
            t0 = time.monotonic()
            with pytest.raises(BlockingIOError):
                accepted.recv(1)
            assert 0.5 < time.monotonic() - t0 < 5
