"""How throughput grows with workers, and what a 7B-parameter model costs on one replica.

    python -m benchmarks.bench_scaling [--quick]

1. Workers: the same gunicorn configuration with WEIGHTINIT_WORKERS=1 and 2, measured under
   (a) wrk, 8 connections, small JSON requests with a new seed each (CPU-bound: no cache helps),
   (b) 4 concurrent clients each downloading 50M float32 values as .npy (generation + sending).
2. A 7B-parameter model (a Llama-7B-shaped stack: 32 blocks of attention + gated MLP) on one
   replica: its plan (exact tensors and bytes) is computed outright; its generation is measured
   on a scaled-down model of the same shape (every width / 4, so ~1/16 of the values) fetched with
   ``weightinit fetch --parallel 2`` and with one stream, with the worker's peak RSS; then
   extrapolated by the ratio of bytes (generation is linear in the number of values).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import orjson

from benchmarks.common import machine_header, table
from benchmarks.servers import ROOT, request, reset_peak, rss_kib, start_gunicorn, wrk, wrk_post_script
from service import document
from service.output import formats
from service.output.report import Report

MLP = {"architecture": {"layers": [
    {"type": "dense", "name": "fc1", "in_features": 32, "out_features": 64, "activation": "relu"},
    {"type": "dense", "name": "fc2", "in_features": 64, "out_features": 64, "activation": "relu"},
    {"type": "dense", "name": "out", "in_features": 64, "out_features": 10}]}, "scheme": "he_normal", "seed": 0}


def llama(width: int, inter: int, vocab: int, blocks: int, dtype: str = "bfloat16") -> dict:
    layers = [{"type": "embedding", "name": "embed", "num_embeddings": vocab, "embedding_dim": width}]
    for i in range(blocks):
        layers += [
            {"type": "layernorm", "name": f"b{i}.ln1", "normalized_shape": width, "bias": False},
            {"type": "attention", "name": f"b{i}.attn", "embed_dim": width, "num_heads": 32, "bias": False},
            {"type": "layernorm", "name": f"b{i}.ln2", "normalized_shape": width, "bias": False},
            {"type": "dense", "name": f"b{i}.gate", "in_features": width, "out_features": inter, "bias": False},
            {"type": "dense", "name": f"b{i}.up", "in_features": width, "out_features": inter, "bias": False},
            {"type": "dense", "name": f"b{i}.down", "in_features": inter, "out_features": width, "bias": False},
        ]
    layers += [{"type": "layernorm", "name": "norm", "normalized_shape": width, "bias": False},
               {"type": "dense", "name": "lm_head", "in_features": width, "out_features": vocab, "bias": False}]
    return {"architecture": {"layers": layers}, "scheme": {"name": "normal", "std": 0.02}, "seed": 7, "dtype": dtype}


SEVEN_B = llama(4096, 11008, 32000, 32)
SMALL = llama(1024, 2752, 8000, 32)


CONFIGS = [
    ("1 worker x 2 generator threads", {"WEIGHTINIT_WORKERS": "1", "WEIGHTINIT_GEN_THREADS": "2"}),
    ("2 workers x 2 generator threads (the defaults)", {"WEIGHTINIT_WORKERS": "2", "WEIGHTINIT_GEN_THREADS": "0"}),
    ("2 workers x 1 generator thread", {"WEIGHTINIT_WORKERS": "2", "WEIGHTINIT_GEN_THREADS": "1"}),
]


def workers_table(seconds: int, repeat: int) -> str:
    """Every configuration runs at once (an idle server costs nothing); repetitions alternate."""
    servers = []
    try:
        for i, (name, env) in enumerate(CONFIGS):
            servers.append(start_gunicorn("service:create_app()", f"cfg{i}", env=env))
        rps = {name: [] for name, _ in CONFIGS}
        rates = {name: [] for name, _ in CONFIGS}
        seed = iter(range(10 ** 6, 10 ** 7))
        for _ in range(repeat):
            for (name, _), srv in zip(CONFIGS, servers):
                rps[name].append(wrk(srv.url + "/v1/weights", seconds=seconds,
                                     script=wrk_post_script(json.dumps(MLP), vary_seed=True))["rps"])
                done = []

                def client():
                    doc = {"architecture": {"layers": [{"type": "tensor", "name": "w", "shape": [5000, 10000]}]},
                           "scheme": "xavier_uniform", "seed": next(seed), "format": "npy"}
                    done.append(request(srv.port, "POST", "/v1/weights", orjson.dumps(doc))[2])

                t0 = time.perf_counter()
                threads = [threading.Thread(target=client) for _ in range(4)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                rates[name].append(sum(done) / (time.perf_counter() - t0) / 1e6)
    finally:
        for srv in servers:
            srv.stop()
    rows = [[name, round(statistics.median(rps[name])), statistics.median(rates[name])] for name, _ in CONFIGS]
    return (f"medians of {repeat} alternating runs; wrk 8 connections {seconds} s, every request a new seed (no "
            "cache); 4 clients each downloading 200 MB (50M float32 as .npy) at once\n\n" +
            table(["configuration (2 cores)", "small JSON req/s", "4 x 200 MB downloads, MB/s total"], rows))


def seven_b(parallel: int) -> str:
    t0 = time.perf_counter()
    plan7 = document.plan(SEVEN_B)
    plan_s = time.perf_counter() - t0
    bytes7 = formats.totals(Report(plan7))["bytes"]["safetensors"]
    plan_small = document.plan(SMALL)
    bytes_small = formats.totals(Report(plan_small))["bytes"]["safetensors"]
    srv = start_gunicorn("service:create_app()", "7b", env={"WEIGHTINIT_WORKERS": "2"})
    out_rows = []
    try:
        pids = srv.workers()
        request(srv.port, "POST", "/v1/plan", orjson.dumps(SMALL))  # warm
        t0 = time.perf_counter()
        status, _, _ = request(srv.port, "POST", "/v1/plan", orjson.dumps(SEVEN_B))
        plan_http = time.perf_counter() - t0
        assert status == 200
        with tempfile.TemporaryDirectory() as tmp:
            req = os.path.join(tmp, "small.json")
            with open(req, "w") as f:
                json.dump(SMALL, f)
            for label, par in ((f"fetch --parallel {parallel}", parallel), ("one stream (fetch --parallel 1, one part)", 1)):
                for pid in pids:
                    reset_peak(pid)
                idle = {pid: rss_kib(pid) for pid in pids}
                out = os.path.join(tmp, "small.safetensors")
                extra = [] if par > 1 else ["--part-size", str(bytes_small)]
                t0 = time.perf_counter()
                r = subprocess.run([sys.executable, "-m", "service", "fetch", srv.url, req, "-o", out, "--parallel",
                                    str(par), "--no-progress", *extra], cwd=ROOT, capture_output=True, text=True)
                elapsed = time.perf_counter() - t0
                assert r.returncode == 0, r.stderr
                growth = max(rss_kib(pid, "VmHWM") - idle[pid] for pid in pids) / 1024
                rate = bytes_small / elapsed
                out_rows.append([label, f"{bytes_small:,}", elapsed, rate / 1e6, growth, bytes7 / rate / 60])
                os.unlink(out)
    finally:
        srv.stop()
    head = (f"7B-shaped model: {plan7.total_elements:,} values in {len(plan7.selected)} tensors, "
            f"{bytes7:,} bytes as bfloat16 safetensors (float32: {plan7.total_elements * 4 + 8 + (bytes7 - 2 * plan7.total_elements - 8):,}); "
            f"its plan takes {plan_s * 1e3:.0f} ms to build in-process, {plan_http * 1e3:.0f} ms over HTTP.\n"
            f"Scaled-down model (widths / 4): {plan_small.total_elements:,} values, {bytes_small:,} bytes; "
            f"ratio of bytes 7B / small = {bytes7 / bytes_small:.2f}.\n\n")
    return head + table(["download", "bytes", "seconds", "MB/s", "worker peak RSS growth MiB",
                         "7B extrapolated, minutes"], out_rows)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--parallel", type=int, default=2)
    a = ap.parse_args(argv)
    print(f"- {machine_header()}\n")
    print("## Workers\n")
    print(workers_table(2 if a.quick else 5, 1 if a.quick else 3), "\n", flush=True)
    print("## A 7B-parameter model on one replica\n")
    print(seven_b(a.parallel), "\n", flush=True)


if __name__ == "__main__":
    main()
