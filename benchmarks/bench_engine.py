"""Engine speed: one 50M-element float32 tensor per scheme family, our block generator next to
NumPy whole-array generation and torch.nn.init in the same process and run.

    python -m benchmarks.bench_engine [--elements N] [--repeat R]

"ours (stream)" draws every block into reused buffers (what the HTTP streams do);
"ours (array)" fills one fresh array (what JSON and the CLI use). Ratios are time / torch's.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from benchmarks.common import machine_header, median_time, table
from service import document

FAMILIES = [
    # (family, our scheme, numpy whole-array baseline, torch init)
    ("uniform", "xavier_uniform", "uniform", "xavier_uniform_"),
    ("normal", "he_normal", "normal", "kaiming_normal_"),
    ("truncated normal", {"name": "truncated_normal", "std": 0.02, "low": -0.04, "high": 0.04}, "truncated", "trunc_normal_"),
]


def numpy_whole(kind: str, n: int):
    """NumPy whole-array generation (float64 uniform then cast; float32 normal), the in-process baseline."""
    rng = np.random.default_rng(0)
    if kind == "uniform":
        return lambda: rng.uniform(-0.01, 0.01, size=n).astype(np.float32)
    if kind == "normal":
        return lambda: rng.standard_normal(n, dtype=np.float32) * np.float32(0.01)

    def trunc():  # rejection in whole-array form
        x = rng.standard_normal(n, dtype=np.float32)
        bad = np.flatnonzero(np.abs(x) > 2)
        while bad.size:
            x[bad] = rng.standard_normal(bad.size, dtype=np.float32)
            bad = bad[np.abs(x[bad]) > 2]
        return x * np.float32(0.02)

    return trunc


def _torch(init: str, n: int):
    try:
        import torch
    except ImportError:
        return None
    rows = 5000
    w = torch.empty(rows, n // rows)
    fn = getattr(torch.nn.init, init)
    if init == "trunc_normal_":
        return lambda: fn(w, std=0.02, a=-0.04, b=0.04)
    return lambda: fn(w)


def run(n: int = 50_000_000, repeat: int = 5) -> str:
    rows_out = []
    rows = 5000
    for family, scheme, np_kind, torch_init in FAMILIES:
        doc = {"architecture": {"layers": [{"type": "tensor", "name": "t", "shape": [rows, n // rows]}]},
               "scheme": scheme}
        t = document.plan(doc).selected[0]

        def stream():
            for _ in t.blocks():
                pass

        ours_stream = median_time(stream, repeat)
        ours_array = median_time(t.generate, repeat)
        np_time = median_time(numpy_whole(np_kind, n), repeat)
        tfn = _torch(torch_init, n)
        torch_time = median_time(tfn, repeat) if tfn else math.nan
        rows_out.append([family, f"torch.nn.init.{torch_init}", torch_time * 1e3, ours_stream * 1e3, ours_array * 1e3,
                         np_time * 1e3, ours_stream / torch_time, ours_array / torch_time])
    head = ["family", "torch baseline", "torch ms", "ours stream ms", "ours array ms", "numpy whole-array ms",
            "stream / torch", "array / torch"]
    return f"{n:,} float32 elements, median of {repeat}\n\n" + table(head, rows_out)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--elements", type=int, default=50_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    print(machine_header())
    print()
    print(run(a.elements, a.repeat))


if __name__ == "__main__":
    main()
