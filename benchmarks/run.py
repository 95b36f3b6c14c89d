"""All of weightinit's benchmarks, side by side in one run: ``python -m benchmarks.run``.

Prints Markdown (what BENCHMARKS.md keeps): the machine and versions, then one table per
question, each a ratio of two things measured in the same run, interleaved repetition by
repetition (so that a busy machine slows both sides alike), as medians of several runs. It
starts its own gunicorn servers on loopback (``gunicorn -c gunicorn.conf.py``, the production
configuration) and stops them at the end.

1. Large artifact: ``POST /v1/weights`` of one 50M-element float32 tensor as .npy and as
   .safetensors, the client receiving every byte over loopback, against ``torch.nn.init`` on the
   same shape in-process and NumPy whole-array generation in-process. Target: service / torch <= 1.
2. JSON: a 1M-element float32 tensor end to end against ``json.dumps(a.tolist())`` of the same
   array in-process; the values are parsed back and compared bit for bit. Target: >= 15x faster.
3. Small requests under wrk (8 connections): a 3-layer MLP as JSON, and ``/v1/plan``, against a
   hello-world Flask view on the same gunicorn configuration, every request with a new seed (no
   cache can answer it). Targets: >= 50% and >= 60% of its requests per second (p99 latency
   reported). The same requests with one body repeated (answered from the cache) on their own lines.
4. Memory: the worker's peak RSS above idle while it streams a 1 GiB safetensors artifact (four
   8192x8192 float32 tensors). Target: <= 64 MiB. Also: the default limits accept 2^29 elements.
5. ``304 Not Modified`` under wrk against hello world. Target: >= 90% of its requests per second.
6. The engine alone (``benchmarks.bench_engine``): blocks drawn in-process against torch and NumPy.

Every request of tables 1, 2 and 4 uses a seed not used before in the run, so no cache answers it.
In table 3 the target rows give every request its own seed (each wrk thread counts from its own
start); the repeated-body rows send one body over and over (as a client polling one document does),
which the service's per-worker cache answers.

    python -m benchmarks.run [--quick] [--repeat N] [--wrk-seconds S] [--skip-engine]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import subprocess
import threading
import time

import numpy as np
import orjson

from benchmarks.bench_engine import numpy_whole
from benchmarks.common import machine_header, table
from benchmarks.servers import (reset_peak, request, rss_kib, start_gunicorn, wrk, wrk_post_script)
from service import document

ROWS, COLS = 5000, 10_000  # 50M elements
FAMILIES = [
    # (family, our scheme, torch init, numpy whole-array kind)
    ("uniform", "xavier_uniform", "xavier_uniform_", "uniform"),
    ("normal", "he_normal", "kaiming_normal_", "normal"),
    ("truncated normal", {"name": "truncated_normal", "std": 0.02, "low": -0.04, "high": 0.04}, "trunc_normal_",
     "truncated"),
]
MLP = {"architecture": {"layers": [
    {"type": "dense", "name": "fc1", "in_features": 32, "out_features": 64, "activation": "relu"},
    {"type": "dense", "name": "fc2", "in_features": 64, "out_features": 64, "activation": "relu"},
    {"type": "dense", "name": "out", "in_features": 64, "out_features": 10, "activation": "softmax"}]},
    "scheme": "he_normal", "seed": 0}

_seed = iter(range(1, 1 << 30))


def fresh_seed() -> int:
    return next(_seed)


def versions() -> str:
    import gunicorn
    from importlib.metadata import version

    from service.version import ENGINE_VERSION

    def tool(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            return "not installed"

    return (f"weightinit engine {ENGINE_VERSION}; gunicorn {gunicorn.__version__}, flask {version('flask')}, "
            f"orjson {version('orjson')}; {tool(['wrk', '--version'])}; Linux {platform.release()}")


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def median(xs) -> float:
    return statistics.median(xs) if xs else math.nan


# ---------------------------------------------------------------------------------------- 1
def torch_init(name: str):
    try:
        import torch
    except ImportError:
        return None
    w = torch.empty(ROWS, COLS)
    fn = getattr(torch.nn.init, name)
    if name == "trunc_normal_":
        return lambda: fn(w, std=0.02, a=-0.04, b=0.04)
    return lambda: fn(w)


def large_artifacts(service, repeat: int, trunc_repeat: int) -> str:
    rows = []
    for family, scheme, torch_name, np_kind in FAMILIES:
        reps = trunc_repeat if family == "truncated normal" else repeat
        tfn = torch_init(torch_name)
        nfn = numpy_whole(np_kind, ROWS * COLS)
        times = {"npy": [], "safetensors": [], "torch": [], "numpy": []}
        nbytes = {}

        def fetch(fmt):
            doc = {"architecture": {"layers": [{"type": "tensor", "name": "w", "shape": [ROWS, COLS]}]},
                   "scheme": scheme, "seed": fresh_seed(), "format": fmt}
            status, _, n = request(service.port, "POST", "/v1/weights", orjson.dumps(doc))
            assert status == 200, status
            nbytes[fmt] = n

        fetch("npy")  # warm-up: imports, thread pool, page cache
        if tfn:
            tfn()
        for _ in range(reps):
            times["npy"].append(timed(lambda: fetch("npy")))
            times["safetensors"].append(timed(lambda: fetch("safetensors")))
            if tfn:
                times["torch"].append(timed(tfn))
            times["numpy"].append(timed(nfn))
        t = median(times["torch"])
        rows.append([family, f"torch.nn.init.{torch_name}", t * 1e3, median(times["npy"]) * 1e3,
                     median(times["safetensors"]) * 1e3, median(times["numpy"]) * 1e3,
                     median(times["npy"]) / t, median(times["safetensors"]) / t, median(times["numpy"]) / t,
                     "yes" if max(median(times["npy"]), median(times["safetensors"])) / t <= 1.0 else "**no**"])
    head = ["family", "torch in-process", "torch ms", "HTTP .npy ms", "HTTP .safetensors ms", "NumPy whole-array ms",
            "npy / torch", "safetensors / torch", "NumPy / torch", "<= 1.0"]
    return (f"{ROWS * COLS:,} float32 values ({nbytes.get('npy', 0):,} bytes as .npy) per request, the client "
            f"reading every byte over loopback; medians of {repeat} ({trunc_repeat} for the truncated normal, "
            f"whose torch side takes seconds)\n\n" + table(head, rows))


# ---------------------------------------------------------------------------------------- 2
def json_vs_dumps(service, repeat: int) -> str:

    service_t, dumps_t = [], []
    checked = 0
    for i in range(repeat + 1):
        seed = fresh_seed()
        doc = {"architecture": {"layers": [{"type": "tensor", "name": "w", "shape": [1000, 1000]}]},
               "scheme": "he_normal", "seed": seed, "format": "json"}
        body = orjson.dumps(doc)
        t0 = time.perf_counter()
        status, _, payload = request(service.port, "POST", "/v1/weights", body, keep=True)
        elapsed = time.perf_counter() - t0
        assert status == 200
        a = document.plan({k: v for k, v in doc.items() if k != "format"}).selected[0].generate()
        got = np.array(orjson.loads(bytes(payload))["tensors"][0]["values"], dtype=np.float32)
        if got.shape != a.shape or not np.array_equal(got.view(np.uint32), a.view(np.uint32)):
            raise AssertionError("JSON values do not round-trip to the engine's float32 values")
        checked += a.size
        d = timed(lambda: json.dumps(a.tolist()))
        if i:  # the first pair warms up
            service_t.append(elapsed)
            dumps_t.append(d)
    s, d = median(service_t), median(dumps_t)
    rows = [["1,000 x 1,000 float32 (he_normal)", d * 1e3, s * 1e3, d / s, "yes" if d / s >= 15 else "**no**"]]
    return (f"medians of {repeat}; every response parsed back: {checked:,} values compared bit for bit with the "
            f"engine's float32 array, all equal\n\n" +
            table(["tensor", "json.dumps(a.tolist()) ms", "HTTP JSON end to end ms", "speed-up", ">= 15x"], rows))


# ---------------------------------------------------------------------------------------- 3, 5
def small_requests(service, hello, seconds: int, repeat: int) -> str:
    mlp = json.dumps(MLP)
    # the ETag of the MLP as safetensors, for the 304 row
    status, hdrs, _ = request(service.port, "POST", "/v1/weights", orjson.dumps({**MLP, "format": "safetensors"}))
    etag = hdrs["etag"]
    hello_row = ("hello world (GET /)", hello, "/", None, None)
    distinct = [  # the targets: every request new work
        ("MLP weights as JSON, distinct bodies (a new seed per request)", service, "/v1/weights",
         wrk_post_script(mlp, vary_seed=True), 0.50),
        ("/v1/plan of the MLP, distinct bodies", service, "/v1/plan", wrk_post_script(mlp, vary_seed=True), 0.60),
    ]
    repeated = [  # one body over and over: the per-worker cache answers
        ("MLP weights as JSON, one body repeated", service, "/v1/weights", wrk_post_script(mlp), None),
        ("/v1/plan of the MLP, one body repeated", service, "/v1/plan", wrk_post_script(mlp), None),
        ("304 (If-None-Match, MLP safetensors)", service, "/v1/weights",
         wrk_post_script(json.dumps({**MLP, "format": "safetensors"}), {"If-None-Match": etag}), 0.90),
    ]
    cases = [hello_row, *distinct, *repeated]
    results = {c[0]: [] for c in cases}
    p99 = {c[0]: [] for c in cases}
    for _ in range(repeat):  # interleaved: each round runs every case once
        for name, srv, path, script, _ in cases:
            r = wrk(srv.url + path, seconds=seconds, script=script)
            if r["non2xx"] and "304" not in name:
                raise AssertionError(f"{name}: {r['non2xx']} non-2xx responses\n{r['raw']}")
            results[name].append(r["rps"])
            p99[name].append(r["p99_ms"])
    base = median(results[hello_row[0]])

    def rows(group):
        out = []
        for name, _, _, _, target in group:
            rps = median(results[name])
            ratio = rps / base
            out.append([name, round(rps), median(p99[name]), ratio,
                        "" if target is None else (f">= {target:.2f}: " + ("yes" if ratio >= target else "**no**"))])
        return out

    head = ["request", "req/s", "p99 ms", "/ hello world", "target"]
    return (f"wrk, 2 threads, 8 connections, {seconds} s per run, medians of {repeat} interleaved runs; "
            f"the MLP is 32-64-64-10 (6,922 values)\n\n"
            f"Distinct bodies (every request new work; the targets):\n\n" + table(head, rows([hello_row, *distinct])) +
            "\n\nRepeated bodies (answered from the per-worker cache):\n\n" + table(head, rows(repeated)))


# ---------------------------------------------------------------------------------------- 4
def memory(env: dict) -> str:
    from service.config import load_config
    from service import limits

    srv = start_gunicorn("service:create_app()", "memory", env={**env, "WEIGHTINIT_WORKERS": "1"})
    try:
        pid = srv.workers()[0]
        small = {"architecture": {"layers": [{"type": "tensor", "name": "w", "shape": [1024, 1024]}]},
                 "format": "safetensors"}
        for _ in range(3):  # warm: imports, thread pool, buffers
            request(srv.port, "POST", "/v1/weights", orjson.dumps({**small, "seed": fresh_seed()}))
        time.sleep(0.5)
        idle = rss_kib(pid)
        reset_peak(pid)
        doc = {"architecture": {"layers": [{"type": "tensor", "name": f"w{i}", "shape": [8192, 8192]}
                                           for i in range(4)]}, "seed": fresh_seed(), "format": "safetensors"}
        peak = [idle]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], rss_kib(pid))
                time.sleep(0.01)

        th = threading.Thread(target=sample, daemon=True)
        th.start()
        t0 = time.perf_counter()
        try:
            status, _, n = request(srv.port, "POST", "/v1/weights", orjson.dumps(doc))
        finally:
            stop.set()
            th.join()
        elapsed = time.perf_counter() - t0
        peak[0] = max(peak[0], rss_kib(pid, "VmHWM"))
        growth = (peak[0] - idle) / 1024
        # 2^29 elements pass the default limits: If-None-Match: * answers 304 after every limit check,
        # before anything is drawn.
        big = {"architecture": {"layers": [{"type": "tensor", "name": "w", "shape": [1 << 15, 1 << 14]}]},
               "format": "safetensors"}
        st304, _, _ = request(srv.port, "POST", "/v1/weights", orjson.dumps(big), {"If-None-Match": "*"})
        cfg = load_config({})
        plan = document.plan({k: v for k, v in big.items() if k != "format"})
        limits.check_elements(plan, "safetensors", cfg)
    finally:
        srv.stop()
    rows = [["4 x 8192 x 8192 float32 safetensors", f"{n:,}", elapsed * 1e3, n / elapsed / 1e6, idle / 1024,
             peak[0] / 1024, growth, "yes" if growth <= 64 else "**no**"]]
    return ("one worker; RSS sampled every 10 ms and VmHWM (peak) read after the stream\n\n" +
            table(["artifact", "bytes", "ms", "MB/s", "idle RSS MiB", "peak RSS MiB", "growth MiB", "<= 64 MiB"], rows) +
            f"\n\nDefault limits: max_binary_elements = {cfg.max_binary_elements:,} (2^{cfg.max_binary_elements.bit_length() - 1});"
            f" a {plan.total_elements:,}-element (2^29) safetensors request passes every limit "
            f"(HTTP {st304} to `If-None-Match: *`, answered after the limit checks). JSON stays at "
            f"max_json_elements = {cfg.max_json_elements:,}.")


# ---------------------------------------------------------------------------------------- main
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5, help="repetitions of each large-artifact and JSON measurement")
    ap.add_argument("--wrk-seconds", type=int, default=3)
    ap.add_argument("--wrk-repeat", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")
    ap.add_argument("--skip-engine", action="store_true", help="leave out the engine-only table")
    ap.add_argument("--only", choices=["large", "json", "small", "memory", "engine"], action="append")
    a = ap.parse_args(argv)
    if a.quick:
        a.repeat, a.wrk_seconds, a.wrk_repeat = 2, 2, 1
    only = set(a.only or ["large", "json", "small", "memory", "engine"])
    if a.skip_engine:
        only.discard("engine")
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"# weightinit benchmarks\n\n`python -m benchmarks.run` ({started})\n")
    print(f"- {machine_header()}\n- {versions()}\n- gunicorn.conf.py defaults: gthread, one worker per core, "
          f"WEIGHTINIT_THREADS threads; everything on loopback\n- {load()} at the start (other work on the "
          f"machine slows the multi-process HTTP side more than in-process torch: compare runs by their load)\n")
    env = {}
    service = hello = None
    try:
        if only & {"large", "json", "small"}:
            service = start_gunicorn("service:create_app()", "service", env=env)
        if "small" in only:
            hello = start_gunicorn("benchmarks.hello:app", "hello", env=env)
        if "large" in only:
            print("## 1. Large artifact over HTTP vs in-process torch.nn.init\n")
            print(large_artifacts(service, a.repeat, max(1, min(a.repeat, 3))), "\n", flush=True)
        if "json" in only:
            print("## 2. JSON end to end vs json.dumps(a.tolist())\n")
            print(json_vs_dumps(service, a.repeat), "\n", flush=True)
        if "small" in only:
            print("## 3 and 5. Small requests and 304 under wrk vs hello world\n")
            print(small_requests(service, hello, a.wrk_seconds, a.wrk_repeat), "\n", flush=True)
    finally:
        for s in (service, hello):
            if s is not None:
                s.stop()
    if "memory" in only:
        print("## 4. Worker memory while streaming 1 GiB\n")
        print(memory(env), "\n", flush=True)
    if "engine" in only:
        from benchmarks.bench_engine import run as engine_run

        print("## 6. The engine alone (benchmarks.bench_engine)\n")
        print(engine_run(ROWS * COLS, 3 if a.quick else 5), "\n", flush=True)
    print(f"{load()} at the end.")


def load() -> str:
    import os

    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} (1 / 5 / 15 min, {os.cpu_count()} cores)"


if __name__ == "__main__":
    main()
