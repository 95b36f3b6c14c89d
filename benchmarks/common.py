"""Shared benchmark helpers: medians of repeated runs, machine/version header, Markdown tables."""

from __future__ import annotations

import os
import platform
import statistics
import time


def median_time(fn, repeat: int = 5, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def machine_header() -> str:
    import numpy as np

    try:
        import torch

        tv = f"torch {torch.__version__} ({torch.get_num_threads()} threads)"
    except ImportError:
        tv = "torch not installed"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return (f"machine: {cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, numpy {np.__version__}, {tv}")


def table(headers: list[str], rows: list[list]) -> str:
    def fmt(v):
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)
