"""What one hostile or careless request costs a worker: status, time, CPU, peak memory, answer size.

    python -m benchmarks.bench_bounds                      # every case (over ten minutes on a loaded machine)
    python -m benchmarks.bench_bounds --only ceilings      # the README's "Cost of one request" table
    python -m benchmarks.bench_bounds --only ceilings --match torch

Each case runs against a fresh single-worker gunicorn (the production configuration otherwise),
so that the worker's peak RSS (``VmHWM``, reset before the case) and its CPU time belong to that
case alone. Every request is distinct work (its own seed), except where a row says "repeated".
The rows are the costs issue 12 section 2 names. The ``ceilings`` rows are, for each endpoint, the
largest request the default limits admit and the answer to the same request one step over them;
the README's "Cost of one request" table states them. The 2^37-value binary ceiling is not
streamed whole: its row is the 2^28-value measurement times 2^9, and says so.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from harness.processes import cpu_seconds, reset_peak, rss_kib

from .common import machine_header, table
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


# The ceilings: for each endpoint, the most one request can ask under the default limits, and (the
# second builder) the same request one step over them, whose answer is printed instead of measured.

def _doc(layers, **kw) -> bytes:
    return json.dumps({"architecture": {"layers": layers}, **kw}).encode()


def _tensor(name, shape):
    return {"type": "tensor", "name": name, "shape": shape}


def _attention(n):
    # attention has the most tensors per layer (q, k, v, out: a weight and a bias each): 8
    return [{"type": "attention", "name": f"a{i}", "embed_dim": 8, "num_heads": 2} for i in range(n)]


def _bert(blocks: int) -> dict:
    # BertForMaskedLM has the most tensors per block of the families (16) plus 10 around them: 16,394 at 1024 blocks
    return {"model_type": "bert", "architectures": ["BertForMaskedLM"], "vocab_size": 8, "hidden_size": 8,
            "intermediate_size": 8, "num_hidden_layers": blocks, "num_attention_heads": 2,
            "max_position_embeddings": 8, "type_vocab_size": 2}


def ceiling_layers_plan(over=False):
    # max_layers (1000) layers of the type with the most tensors: 8,000 tensors (max_tensors, 65,536, is out of reach)
    return [("POST", "/v1/plan", _doc(_attention(1001 if over else 1000), seed=8), {})]


def ceiling_hf_plan(over=False):
    # the hf_config with the most tensors: 1024 blocks (the most a config may have) of BERT
    return [("POST", "/v1/plan", json.dumps({"architecture": {"hf_config": _bert(1025 if over else 1024)},
                                             "seed": 14}).encode(), {})]


def ceiling_hf_folder(over=False):
    # the same model as an hf folder in 500 KB shards whose headers each embed the 13 MB report (metadata: full):
    # 4 shards, 53 MiB of headers held in memory, the most under max_hf_header_bytes (64 MiB); 400 KB shards are 5
    doc = {"architecture": {"hf_config": _bert(1024)}, "seed": 15, "format": "hf", "metadata": "full",
           "max_shard_size": "400KB" if over else "500KB"}
    return [("POST", "/v1/weights", json.dumps(doc).encode(), {})]


def ceiling_glob(over=False):
    # max_pattern_work (2^25): 1000 dense layers with 124-character names (2,000 tensors) x 67 distinct patterns of
    # 250 characters (33.5e6; 68 patterns are 34e6), each a chain of stars that matches only the last layer's weight
    layers = [{"type": "dense", "name": "a" * 120 + f"{i:04d}", "in_features": 2, "out_features": 2}
              for i in range(1000)]
    patterns = []
    for k in range(68 if over else 67):
        stars = ["*a"] * 115
        stars[k] = "*[a]"
        patterns.append(("".join(stars) + "*0999.weight").ljust(250, "*"))
    return [("POST", "/v1/plan", _doc(layers, tensors=patterns, seed=7), {})]


def ceiling_json(over=False):
    # 4,194,304 values = max_json_elements
    return [("POST", "/v1/weights", _doc([_tensor("w", [2048 + over, 2048])],
                                         scheme={"name": "truncated_normal", "std": 0.02}, seed=9), {})]


BINARY_SLICE = 1 << 28  # values measured; the README states the ceiling (2^37 values) as 2^9 times this


def ceiling_binary(over=False):
    # 2^28 normals as safetensors (1 GiB); one step over: 2^37 + 1 values
    if over:
        return [("POST", "/v1/weights", _doc([_tensor("w", [1 << 19, 1 << 18]), _tensor("b", [1])],
                                             seed=10, format="safetensors"), {})]
    return [("POST", "/v1/weights", _doc([_tensor("w", [1 << 14, 1 << 14])], scheme="he_normal", seed=10,
                                         format="safetensors"), {})]


def ceiling_range(over=False):
    # a 256 MiB Range part from the middle of a 2^37-value (512 GiB) safetensors artifact: a part draws only
    # the values it carries; one step over: the whole of a 2^37 + 1 value artifact asked as one part
    if over:
        return [("POST", "/v1/weights", _doc([_tensor("w", [1 << 19, 1 << 18]), _tensor("b", [1])], seed=16,
                                             format="safetensors"), {"Range": "bytes=0-"})]
    start = 1 << 38
    return [("POST", "/v1/weights", _doc([_tensor("w", [1 << 19, 1 << 18])], scheme="he_normal", seed=16,
                                         format="safetensors"), {"Range": f"bytes={start}-{start + (1 << 28) - 1}"})]


def ceiling_orthogonal(over=False):
    # the largest whole matrix (2^24 elements, whole_matrix_elements), in float64: 1.8e11 of max_matrix_flops'
    # 2.7e11, and exactly max_matrix_bytes (640 MiB: the Gaussian, Q, R, a transposed copy, the float64 result);
    # one step over: two of them
    layers = [_tensor("q", [4096, 4096])] + ([_tensor("r", [4096, 4096])] if over else [])
    return [("POST", "/v1/weights", _doc(layers, scheme="orthogonal", dtype="float64", seed=11,
                                         format="npz" if over else "npy"), {})]


def ceiling_torch(over=False):
    # 2^25 kaiming_normal_ values = max_torch_elements
    return [("POST", "/v1/weights", _doc([_tensor("w", [8192 + over, 4096])], scheme="he_normal", rng="torch",
                                         seed=12, format="npy"), {})]


def ceiling_diagnose(over=False):
    # 8 schemes x 4 dense layers of 1024, batch 192: 1.93e10 multiply-adds of diagnose_max_cost's 2e10;
    # batch 200 is 2.01e10
    doc = {"architecture": {"layers": _layers(4, 1024)}, "batch": 200 if over else 192, "seed": 13,
           "schemes": ["he_normal", "xavier_uniform", "lecun_normal", "zeros", {"name": "normal", "std": 0.01},
                       {"name": "normal", "std": 1}, "uniform_fan_in", "he_uniform"]}
    return [("POST", "/v1/diagnose", json.dumps(doc).encode(), {})]


def ceiling_diagnose_bytes(over=False):
    # diagnose_max_bytes (512 MiB, estimated): 483 dense layers of 64, batch 1024 (the activations kept for the
    # backward pass); 484 layers are over
    doc = {"architecture": {"layers": _layers(484 if over else 483, 64)}, "batch": 1024, "seed": 18,
           "schemes": ["he_normal"]}
    return [("POST", "/v1/diagnose", json.dumps(doc).encode(), {})]


def ceiling_diagnose_narrow(over=False):
    # the most CPU: 8 schemes x 1000 (max_layers) dense layers of 28, batch 1024: 1.93e10 multiply-adds and ~470 MB
    # estimated, both under their limits; narrow layers make the per-element work (activations, statistics,
    # histograms: batch x width per layer), which the cost does not count, outweigh the multiply-adds. Width 29 is
    # 2.07e10 multiply-adds
    doc = {"architecture": {"layers": _layers(1000, 29 if over else 28)}, "batch": 1024, "seed": 20,
           "schemes": ["he_normal", "xavier_uniform", "lecun_normal", "zeros", {"name": "normal", "std": 0.01},
                       {"name": "normal", "std": 1}, "uniform_fan_in", "he_uniform"]}
    return [("POST", "/v1/diagnose", json.dumps(doc).encode(), {})]


def ceiling_body(over=False):
    # max_body_bytes: a 1 MiB body (one layer, padded with a long value of an unknown key: one 422)
    pad = (1 << 20) + over - len(_doc(_layers(1, 2), seed=17, x=""))
    return [("POST", "/v1/weights", _doc(_layers(1, 2), seed=17, x="a" * pad), {})]


@dataclass(frozen=True)
class Case:
    kind: str
    build: Callable[..., list]
    over: bool = False   # the builder takes over=True: the same request one step over a limit
    scale: int = 1       # the ceiling is this many times the request measured (the row says so)


CASES = {
    "shape: 500,000 zeros (0.95 MiB body)": Case("errors", case_error_amplification),
    "tensors: 250,000 empty names": Case("errors", case_tensors_amplification),
    "diagnose schemes: 120,000 unknown names": Case("errors", case_diagnose_schemes),
    "diagnose: 8 orthogonal schemes x 7 layers 2048 wide, batch 2": Case("matrix", case_diagnose_orthogonal),
    "safetensors 4096x4096 orthogonal as 8 Range parts": Case("matrix", case_orthogonal_ranges),
    "safetensors 24 layers 2048x2048 orthogonal": Case("matrix", case_orthogonal_many),
    "200 distinct JSON answers of 0.9 MB (cache)": Case("cache", case_cache_growth),
    "plan: long glob patterns x 500 layers": Case("glob", case_glob),
    "body: 1 MiB (max_body_bytes)": Case("ceilings", ceiling_body, True),
    "plan: 1000 attention layers (8,000 tensors)": Case("ceilings", ceiling_layers_plan, True),
    "plan: hf_config BERT, 1024 blocks (16,394 tensors)": Case("ceilings", ceiling_hf_plan, True),
    "plan: 67 glob patterns x 2,000 tensors (max_pattern_work)": Case("ceilings", ceiling_glob, True),
    "hf folder: BERT 1024 blocks, metadata full, 4 shards": Case("ceilings", ceiling_hf_folder, True),
    "JSON: 2^22 truncated normals": Case("ceilings", ceiling_json, True),
    "safetensors: 2^28 normals (1 GiB)": Case("ceilings", ceiling_binary, True, 1 << 9),  # and 2^37 = 2^9 x 2^28
    "Range part: 256 MiB from the middle of 2^37 values": Case("ceilings", ceiling_range, True),
    "npy: one 4096x4096 orthogonal, float64": Case("ceilings", ceiling_orthogonal, True),
    "rng torch: 2^25 kaiming_normal_ values (npy)": Case("ceilings", ceiling_torch, True),
    "diagnose: 1.93e10 multiply-adds (8 schemes, batch 192)": Case("ceilings", ceiling_diagnose, True),
    "diagnose: 512 MiB estimated (483 layers of 64, batch 1024)": Case("ceilings", ceiling_diagnose_bytes, True),
    "diagnose: 8 schemes x 1000 layers of 28, batch 1024": Case("ceilings", ceiling_diagnose_narrow, True),
}


def answer(port: int, requests: list) -> str:
    """The answer to the request(s) one step over: status, problem type (its last word) and ``limit``."""
    method, path, body, headers = requests[0]
    status, _, got = request(port, method, path, body, headers, keep=True)
    try:
        problem = json.loads(bytes(got))
    except ValueError:
        return str(status)
    kind = problem.get("type", "").rsplit(":", 1)[-1]
    limit = problem.get("limit") or ",".join(problem.get("errors", {}))
    return f"{status} {kind} {limit}".strip()


def run_case(name: str, case: Case) -> list[list]:
    """The case's row (and, for a case with a ``scale``, the ceiling's row extrapolated from it)."""
    server = start_gunicorn("service:create_app()", "bounds", env={"WEIGHTINIT_WORKERS": "1"})
    try:
        (pid,) = server.workers()
        request(server.port, "GET", "/healthz")
        idle = rss_kib(pid)
        reset_peak(pid)
        cpu0, t0 = cpu_seconds(pid), time.perf_counter()
        statuses, sizes = [], 0
        for method, path, body, headers in case.build():
            status, _, got = request(server.port, method, path, body, headers)
            statuses.append(status)
            sizes += got
        wall = time.perf_counter() - t0
        cpu = cpu_seconds(pid) - cpu0
        peak = rss_kib(pid, "VmHWM")
        end = rss_kib(pid)
        over = answer(server.port, case.build(over=True)) if case.over else ""
        alive = server.proc.poll() is None and server.workers() == [pid]
    finally:
        server.stop()
    kinds = sorted(set(statuses))
    status = ", ".join(f"{s} x{statuses.count(s)}" if statuses.count(s) > 1 else str(s) for s in kinds)
    row = [name, status, round(wall, 2), round(cpu, 2), round((peak - idle) / 1024, 1), round((end - idle) / 1024, 1),
           sizes, "yes" if alive else "no (replaced)", over]
    if case.scale == 1:
        return [row]
    return [row, [f"{name}, x {case.scale} (extrapolated)", status, round(wall * case.scale), round(cpu * case.scale),
                  row[4], row[5], sizes * case.scale, row[7], over]]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", choices=sorted({c.kind for c in CASES.values()}), help="one group of cases")
    p.add_argument("--match", default="", help="only the cases whose name contains this text")
    args = p.parse_args(argv)
    print(machine_header())
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    rows = [row for name, case in CASES.items() if args.only in (None, case.kind) and args.match in name for row in run_case(name, case)]
    print(table(["request", "status", "wall s", "worker CPU s", "peak RSS MiB over idle", "RSS after MiB over idle",
                 "answer bytes", "same worker", "one step over: status, type, limit"], rows))
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
