"""Whole-matrix tensors, drawn once per process and kept: the parts of one artifact share them.

Orthogonal, sparse, identity, dirac and the forget-gate bias are drawn as whole matrices (an
orthogonal 4096 x 4096 is a QR of several seconds). Every HTTP ``Range`` part that touches such a
tensor, every part of a sharded fetch, needs the whole matrix to cut its bytes from; without a
cache each part would draw and factor it again.

Entries are keyed by everything a tensor's values depend on (the reproducibility contract:
seed, position, shape, layout, dtype and distribution), hold the stored values (read-only), and
are bounded by bytes, least recently used first out: ``WEIGHTINIT_MATRIX_CACHE_BYTES`` per
process (128 MiB by default, 0 turns the cache off; a matrix larger than the bound is drawn and
not kept). Concurrent requests for one matrix wait for a single draw (single flight).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import Callable, Hashable

import numpy as np

DEFAULT_BYTES = 1 << 27


class MatrixCache:
    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._drawing: dict[Hashable, threading.Lock] = {}
        self.draws = self.hits = 0

    def get_or_draw(self, key: Hashable, draw: Callable[[], np.ndarray]) -> np.ndarray:
        """The cached values of ``key``, or ``draw()``'s (kept when they fit), read-only."""
        with self._lock:
            hit = self._take(key)
            if hit is not None:
                return hit
            gate = self._drawing.setdefault(key, threading.Lock())
        with gate:  # one draw per key at a time; the others find it cached when the gate opens
            with self._lock:
                hit = self._take(key)
                if hit is not None:
                    return hit
            try:
                values = draw()
            finally:
                with self._lock:
                    self._drawing.pop(key, None)
            values.setflags(write=False)
            with self._lock:
                self.draws += 1
                if 0 < values.nbytes <= self.max_bytes:
                    self._items[key] = values
                    self._bytes += values.nbytes
                    while self._bytes > self.max_bytes:
                        _, old = self._items.popitem(last=False)
                        self._bytes -= old.nbytes
            return values

    def _take(self, key):
        values = self._items.get(key)
        if values is not None:
            self._items.move_to_end(key)
            self.hits += 1
        return values

    def stats(self) -> dict:
        with self._lock:
            return {"entries": len(self._items), "bytes": self._bytes, "draws": self.draws, "hits": self.hits}


_CACHE: MatrixCache | None = None
_CACHE_PID = None


def cache() -> MatrixCache:
    """The process's cache (rebuilt after a fork: gunicorn workers do not share one)."""
    global _CACHE, _CACHE_PID
    if _CACHE is None or _CACHE_PID != os.getpid():
        raw = os.environ.get("WEIGHTINIT_MATRIX_CACHE_BYTES", "").strip().replace("_", "")
        _CACHE = MatrixCache(int(raw) if raw else DEFAULT_BYTES)
        _CACHE_PID = os.getpid()
    return _CACHE
