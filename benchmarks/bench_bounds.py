"""What one hostile or careless request costs a worker: status, time, CPU, peak memory, answer size.

    python -m benchmarks.bench_bounds            # every case (about two minutes on main today)
    python -m benchmarks.bench_bounds --only glob

Each case runs against a fresh single-worker gunicorn (the production configuration otherwise),
so that the worker's peak RSS (``VmHWM``, reset before the case) and its CPU time belong to that
case alone. Every request is distinct work (its own seed), except where a row says "repeated".
The rows are the costs issue 12 section 2 names; the README's "Cost of one request" table states
the bounds they are held to.
"""

from __future__ import annotations

import argparse
import json
import os
import time

from .common import machine_header, table
from harness.processes import cpu_seconds, reset_peak, rss_kib

from .servers import request, start_gunicorn

MIB = 1 << 20


def _layers(n: int, width: int, scheme=None) -> list:
    out = []
    for i in range(n):
        layer = {"type": "dense", "name": f"l{i}", "in_features": width, "out_features": width}
        if scheme:
            layer["scheme"] = scheme
        out.append(layer)
    return out


def case_error_amplification():
    body = ('{"architecture":{"layers":[{"type":"tensor","name":"w","shape":[' + ",".join(["0"] * 500_000)
            + ']}]},"seed":1}').encode()
    return [("POST", "/v1/weights", body, {})]


def case_tensors_amplification():
    names = ",".join(['""'] * 250_000)  # each one invalid (1-256 characters)
    body = ('{"architecture":{"layers":[{"type":"dense","name":"fc","in_features":2,"out_features":2}]},'
            '"tensors":[' + names + '],"seed":2}').encode()
    return [("POST", "/v1/weights", body, {})]


def case_diagnose_schemes():
    body = ('{"architecture":{"layers":[{"type":"dense","name":"fc","in_features":2,"out_features":2}]},'
            '"schemes":[' + ",".join(['"nope"'] * 120_000) + '],"seed":3}').encode()
    return [("POST", "/v1/diagnose", body, {})]


def case_diagnose_orthogonal():
    doc = {"architecture": {"layers": _layers(7, 2048)}, "schemes": [{"name": "orthogonal", "gain": 1 + k / 10}
                                                                      for k in range(8)],
           "batch": 2, "seed": 4}
    return [("POST", "/v1/diagnose", json.dumps(doc).encode(), {})]


def case_orthogonal_ranges():
    # One 4096 x 4096 orthogonal matrix (the whole-matrix ceiling, 2^24 elements) fetched as 8 Range parts.
    doc = {"architecture": {"layers": [{"type": "tensor", "name": "q", "shape": [4096, 4096]}]},
           "scheme": "orthogonal", "seed": 5, "format": "safetensors"}
    body = json.dumps(doc).encode()
    total = 64 * MIB + 4096  # enough to cover the header; the last range is clipped by the server
    part = 8 * MIB
    return [("POST", "/v1/weights", body, {"Range": f"bytes={a}-{a + part - 1}"}) for a in range(0, total, part)]


def case_orthogonal_many():
    doc = {"architecture": {"layers": _layers(24, 2048)}, "scheme": "orthogonal", "seed": 6, "format": "safetensors"}
    return [("POST", "/v1/weights", json.dumps(doc).encode(), {})]


def case_cache_growth():
    # 200 distinct JSON answers of ~0.9 MB each (65,000 values), all under the cache's per-entry ceiling.
    out = []
    for seed in range(200):
        doc = {"architecture": {"layers": [{"type": "tensor", "name": "w", "shape": [250, 260]}]},
               "scheme": "he_normal", "seed": 1000 + seed}
        out.append(("POST", "/v1/weights", json.dumps(doc).encode(), {}))
    return out


def case_glob():
    # 500 layers with long names; 1,024 distinct patterns of ~250 characters, each matching only the last
    # layer's weight, so that every pattern is tried against every tensor name
    layers = [{"type": "dense", "name": "a" * 120 + f"{i:03d}", "in_features": 4, "out_features": 4}
              for i in range(500)]
    patterns = []
    for k in range(1024):
        stars = ["*a"] * (60 + k % 59)
        stars[k // 59] = "*[a]"
        patterns.append("".join(stars) + "*a499.weight")
    doc = {"architecture": {"layers": layers}, "tensors": patterns, "seed": 7}
    return [("POST", "/v1/plan", json.dumps(doc).encode(), {})]


def case_ceiling_plan():
    # max_tensors: 1,000 layers (max_layers) of 4 tensors each
    layers = [{"type": "lstm", "name": f"r{i}", "input_size": 64, "hidden_size": 64} for i in range(1000)]
    return [("POST", "/v1/plan", json.dumps({"architecture": {"layers": layers}, "seed": 8}).encode(), {})]


def case_ceiling_json():
    doc = {"architecture": {"layers": [{"type": "tensor", "name": "w", "shape": [2048, 2048]}]},
           "scheme": {"name": "truncated_normal", "std": 0.02}, "seed": 9}  # 4,194,304 values = max_json_elements
    return [("POST", "/v1/weights", json.dumps(doc).encode(), {})]


def case_ceiling_binary():
    doc = {"architecture": {"layers": [{"type": "tensor", "name": "w", "shape": [32768, 32768]}]},
           "scheme": "he_normal", "seed": 10, "format": "safetensors"}  # 2^30 values = max_binary_elements, 4 GiB
    return [("POST", "/v1/weights", json.dumps(doc).encode(), {})]


def case_ceiling_orthogonal():
    doc = {"architecture": {"layers": [{"type": "tensor", "name": "q", "shape": [4096, 4096]}]},
           "scheme": "orthogonal", "seed": 11, "format": "npy"}  # the largest whole matrix, 2^24 elements
    return [("POST", "/v1/weights", json.dumps(doc).encode(), {})]


def case_ceiling_torch():
    doc = {"architecture": {"layers": [{"type": "tensor", "name": "w", "shape": [8192, 4096]}]},
           "scheme": "he_normal", "rng": "torch", "seed": 12, "format": "npy"}  # 2^25 = max_torch_elements
    return [("POST", "/v1/weights", json.dumps(doc).encode(), {})]


def case_ceiling_diagnose():
    # just under diagnose_max_cost (2e10 multiply-adds): 8 schemes, batch 192, 4 layers of 1024
    doc = {"architecture": {"layers": _layers(4, 1024)}, "batch": 192, "seed": 13,
           "schemes": ["he_normal", "xavier_uniform", "lecun_normal", "zeros", {"name": "normal", "std": 0.01},
                       {"name": "normal", "std": 1}, "uniform_fan_in", "he_uniform"]}
    return [("POST", "/v1/diagnose", json.dumps(doc).encode(), {})]


CASES = {
    "shape: 500,000 zeros (0.95 MiB body)": ("errors", case_error_amplification),
    "tensors: 250,000 empty names": ("errors", case_tensors_amplification),
    "diagnose schemes: 120,000 unknown names": ("errors", case_diagnose_schemes),
    "diagnose: 8 orthogonal schemes x 7 layers 2048 wide, batch 2": ("matrix", case_diagnose_orthogonal),
    "safetensors 4096x4096 orthogonal as 8 Range parts": ("matrix", case_orthogonal_ranges),
    "safetensors 24 layers 2048x2048 orthogonal": ("matrix", case_orthogonal_many),
    "200 distinct JSON answers of 0.9 MB (cache)": ("cache", case_cache_growth),
    "plan: long glob patterns x 500 layers": ("glob", case_glob),
    "ceiling: plan of 4,000 tensors (1,000 LSTM layers)": ("ceilings", case_ceiling_plan),
    "ceiling: JSON of 4,194,304 truncated normals": ("ceilings", case_ceiling_json),
    "ceiling: safetensors of 2^30 normals (4 GiB, streamed)": ("ceilings", case_ceiling_binary),
    "ceiling: npy of one 4096x4096 orthogonal": ("ceilings", case_ceiling_orthogonal),
    "ceiling: rng torch, 2^25 kaiming_normal_ values": ("ceilings", case_ceiling_torch),
    "ceiling: diagnose, 8 schemes x 4 layers of 1024, batch 192": ("ceilings", case_ceiling_diagnose),
}


def run_case(name: str, build) -> list:
    server = start_gunicorn("service:create_app()", "bounds", env={"WEIGHTINIT_WORKERS": "1"})
    try:
        (pid,) = server.workers()
        request(server.port, "GET", "/healthz")
        idle = rss_kib(pid)
        reset_peak(pid)
        cpu0, t0 = cpu_seconds(pid), time.perf_counter()
        statuses, sizes = [], 0
        for method, path, body, headers in build():
            status, _, got = request(server.port, method, path, body, headers)
            statuses.append(status)
            sizes += got
        wall = time.perf_counter() - t0
        cpu = cpu_seconds(pid) - cpu0
        peak = rss_kib(pid, "VmHWM")
        end = rss_kib(pid)
        alive = server.proc.poll() is None and server.workers() == [pid]
    finally:
        server.stop()
    kinds = sorted(set(statuses))
    status = ", ".join(f"{s} x{statuses.count(s)}" if statuses.count(s) > 1 else str(s) for s in kinds)
    return [name, status, round(wall, 2), round(cpu, 2), round((peak - idle) / 1024, 1), round((end - idle) / 1024, 1),
            sizes, "yes" if alive else "no (replaced)"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", choices=sorted({k for k, _ in CASES.values()}), help="one group of cases")
    args = p.parse_args(argv)
    print(machine_header())
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    rows = [run_case(name, build) for name, (kind, build) in CASES.items() if args.only in (None, kind)]
    print(table(["request", "status", "wall s", "worker CPU s", "peak RSS MiB over idle", "RSS after MiB over idle",
                 "answer bytes", "same worker"], rows))
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
