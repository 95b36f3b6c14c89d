"""What an artifact's bytes depend on besides the request, the engine version and NumPy's version.

Every value is drawn from the block streams with IEEE additions, multiplications and divisions
(README, reproducibility contract), so its bits depend on nothing else, with one exception: the
``orthogonal`` scheme's Q is the QR of a Gaussian matrix computed by LAPACK (``numpy.linalg.qr``:
``dgeqrf``/``dorgqr`` of the BLAS/LAPACK library NumPy was built with), whose last bits can differ
between library versions, between the CPU kernels the library picks at run time (OpenBLAS's
``DYNAMIC_ARCH`` selects Haswell, SkylakeX, Zen... per CPU) and, conservatively, between thread
counts. Two replicas behind one load balancer may therefore hold different bytes for the same
document. The ETag of an artifact holding such a tensor therefore also covers ``identity()``::

    etag_value(plan) = fingerprint                                     no LAPACK tensor selected
                     = sha256({"fingerprint": fingerprint, "linalg": identity()})   otherwise

so a replica whose bytes could differ answers another ETag, and ``If-Range`` never lets a
sharded download stitch parts of two different matrices. Every other ETag is unchanged, and no
artifact byte depends on this module.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import json
import platform

import numpy as np

from .torch.init import QR_METHODS
from .torch.replay import torch_call

#: The schemes whose values come out of LAPACK (whole-matrix draws); sparse, identity, dirac and
#: the LSTM forget-gate bias are whole-matrix too, but computed with exact NumPy operations only.
LAPACK_SCHEMES = ("orthogonal", "delta_orthogonal")


def lapack_tensors(plan) -> list[str]:
    """The names of the selected tensors whose bytes come out of LAPACK: an ``orthogonal`` or
    ``delta_orthogonal`` draw, or with ``rng: torch`` a replayed ``torch.nn.init.orthogonal_`` (not a module
    constructor's values, which are uniform draws)."""
    out = []
    for t in plan.selected:
        if t.replay is not None:
            uses = torch_call(t)[0] in QR_METHODS
        else:
            uses = t.distribution.name in LAPACK_SCHEMES
        if uses:
            out.append(t.name)
    return out


@functools.lru_cache(maxsize=1)
def identity() -> dict:
    """The machine and BLAS/LAPACK library this process computes QR with: the architecture,
    NumPy's build dependencies (name, version, configuration) and, for OpenBLAS, the CPU kernel
    and thread count it selected at run time."""
    build = np.show_config(mode="dicts").get("Build Dependencies", {})
    libs = {k: {f: build.get(k, {}).get(f) for f in ("name", "version", "openblas configuration")}
            for k in ("blas", "lapack")}
    return {"machine": platform.machine(), **libs, "openblas": _openblas_runtime()}


def _openblas_runtime() -> dict | None:
    """OpenBLAS's own report, through its C API (the functions threadpoolctl calls), looked up
    from NumPy's LAPACK extension module (``dlsym`` searches its dependencies): the kernel it
    picked for this CPU, its thread count and configuration. None for another library."""
    try:
        from numpy.linalg import _umath_linalg

        lib = ctypes.CDLL(_umath_linalg.__file__)
    except (ImportError, OSError):
        return None
    for prefix, suffix in (("scipy_openblas", "64_"), ("scipy_openblas", ""), ("openblas", "64_"), ("openblas", "")):
        try:
            corename = getattr(lib, f"{prefix}_get_corename{suffix}")
            config = getattr(lib, f"{prefix}_get_config{suffix}")
            threads = getattr(lib, f"{prefix}_get_num_threads{suffix}")
        except AttributeError:
            continue
        corename.restype = config.restype = ctypes.c_char_p
        threads.restype = ctypes.c_int
        return {"core": corename().decode(errors="replace"), "threads": threads(),
                "config": config().decode(errors="replace")}
    return None


def etag_value(plan) -> str:
    """The value inside the ETag quotes of every response for ``plan`` (module docstring)."""
    fingerprint = plan.fingerprint
    if not lapack_tensors(plan):
        return fingerprint
    body = json.dumps({"fingerprint": fingerprint, "linalg": identity()}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()
